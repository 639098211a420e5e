//! A followed `stdin` source (`paths = ["-"]`, `follow = true`): lines piped into
//! `logveil run` are appended to the source's spool as they come, like syslog over TCP, and
//! committed from there exactly once. At the end of the input the source finishes (its spool
//! is read to the end and committed). What was read but not yet appended (at most
//! [`super::syslog::FLUSH_AFTER`] of it) is lost if the process is killed: a pipe has no
//! acknowledgement. Under backpressure, stdin is not read (the writer of the pipe waits).

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::SpoolHandle;
use super::syslog::{BATCH_BYTES, FLUSH_AFTER, Framer};

/// Reads standard input into the spool until its end or `stop`.
pub async fn serve(
    source: String,
    max_line: usize,
    spool: SpoolHandle,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut input = tokio::io::stdin();
    let mut framer = Framer::lines();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending = Vec::with_capacity(BATCH_BYTES);
    let (mut n, mut cut) = (0u64, 0u64);
    let mut eof = false;
    let mut flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
    loop {
        while let Some(c) = framer.next(max_line, eof, &mut pending) {
            n += 1;
            cut += u64::from(c);
        }
        let due = tokio::time::Instant::now() >= flush_at;
        if !pending.is_empty() && (pending.len() >= BATCH_BYTES || due || eof) {
            let data = std::mem::replace(&mut pending, Vec::with_capacity(BATCH_BYTES));
            if spool.append_waiting(data).await.is_err() {
                return;
            }
            metrics::counter!("logveil_stdin_lines_total", "source" => source.clone()).increment(n);
            if cut > 0 {
                metrics::counter!("logveil_stdin_truncated_total", "source" => source.clone())
                    .increment(cut);
            }
            (n, cut) = (0, 0);
        }
        if due || pending.is_empty() {
            flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
        }
        if eof {
            return;
        }
        spool.wait_for_room(Duration::from_millis(50)).await;
        if spool.stopping() {
            eof = true;
            continue;
        }
        tokio::select! {
            r = input.read(&mut chunk) => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(k) => framer.buf.extend_from_slice(&chunk[..k]),
            },
            () = tokio::time::sleep_until(flush_at), if !pending.is_empty() => {}
            () = &mut stop => eof = true,
        }
    }
}

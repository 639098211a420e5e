//! A followed `stdin` source (`paths = ["-"]`, `follow = true`): lines piped into
//! `logveil run` are appended to the source's spool as they come, like syslog over TCP, and
//! committed from there exactly once. At the end of the input the source finishes (its spool
//! is read to the end and committed). A pipe has no acknowledgement: what was read but not
//! yet appended (at most [`super::syslog::FLUSH_AFTER`] of it, and a last line without its
//! newline when the run is stopped) is lost if the process stops before. Under backpressure,
//! stdin is not read (the writer of the pipe waits). A line longer than the line limit is
//! kept one byte longer than the limit, so that the pipeline quarantines it as too long, as
//! it does for files.

use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::SpoolHandle;
use super::syslog::{BATCH_BYTES, FLUSH_AFTER, Framer};

/// Reads standard input into the spool until its end or `stop`. A read error other than an
/// interruption is returned (after what was read before it is appended).
pub async fn serve(
    source: String,
    max_line: usize,
    spool: SpoolHandle,
    stop: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    tokio::pin!(stop);
    let mut input = tokio::io::stdin();
    let mut framer = Framer::lines();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending = Vec::with_capacity(BATCH_BYTES);
    let (mut n, mut cut) = (0u64, 0u64);
    // The end of the input (its last line is complete even without a newline), or a stop (a
    // last line without its newline is not taken: it may go on).
    let (mut eof, mut stopped) = (false, false);
    let mut failed = None;
    let mut flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
    loop {
        while let Some(c) = framer.next(max_line + 1, eof, &mut pending) {
            n += 1;
            cut += u64::from(c);
        }
        let due = tokio::time::Instant::now() >= flush_at;
        let last = eof || stopped;
        if !pending.is_empty() && (pending.len() >= BATCH_BYTES || due || last) {
            let data = std::mem::replace(&mut pending, Vec::with_capacity(BATCH_BYTES));
            if spool.append_waiting(data).await.is_err() {
                return Ok(()); // the spool failed: reported by its writer
            }
            metrics::counter!("logveil_stdin_lines_total", "source" => source.clone()).increment(n);
            if cut > 0 {
                metrics::counter!("logveil_stdin_too_long_total", "source" => source.clone())
                    .increment(cut);
            }
            (n, cut) = (0, 0);
        }
        if due || pending.is_empty() {
            flush_at = tokio::time::Instant::now() + FLUSH_AFTER;
        }
        if last {
            spool.stop();
            return failed.map_or(Ok(()), Err);
        }
        // Backpressure: stdin is not read (unless stopping).
        tokio::select! {
            () = spool.wait_for_room(Duration::from_millis(50)) => {}
            () = &mut stop => {
                stopped = true;
                continue;
            }
        }
        tokio::select! {
            r = input.read(&mut chunk) => match r {
                Ok(0) => eof = true,
                Ok(k) => framer.feed(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A non-blocking descriptor with nothing to read yet.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    failed = Some(e);
                    eof = true;
                }
            },
            () = tokio::time::sleep_until(flush_at), if !pending.is_empty() => {}
            () = &mut stop => stopped = true,
        }
    }
}

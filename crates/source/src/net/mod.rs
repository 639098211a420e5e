//! The network sources of `logveil run`: an HTTP endpoint for NDJSON batches of session
//! events ([`http`]) and syslog over UDP, TCP and TLS ([`syslog`]); and a followed standard
//! input ([`stdin`]), which works the same way. They run on a tokio runtime and do no parsing
//! (beyond HTTP's check that each line is JSON): what they accept goes to the source's
//! [`Spool`], one writer thread per
//! spool appending in groups, and is acknowledged (HTTP 200) only once durable there. The
//! pipeline's worker threads read the spool back like a followed file.
//!
//! Backpressure: when a spool's backlog (durable bytes not yet committed to Parquet) passes
//! its limit, HTTP answers 503, syslog over TCP and TLS and a followed stdin stop reading (the
//! senders' windows fill, the pipe's writer waits) and syslog over UDP drops datagrams,
//! counted.

pub mod http;
pub mod stdin;
pub mod syslog;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::spool::{Spool, SpoolError, SpoolWriter};

/// Why a spool append failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("the pipeline is stopping")]
    Stopping,
    #[error("the spool's queue is full")]
    Busy,
    #[error("the spool cannot be written; see the log")]
    Failed,
}

struct Append {
    data: Vec<u8>,
    reply: oneshot::Sender<Result<(), AppendError>>,
}

/// A listener's way into its spool: appends are queued (bounded) to the spool's writer
/// thread, which writes and syncs them in groups.
#[derive(Clone)]
pub struct SpoolHandle {
    tx: crossbeam_channel::Sender<Append>,
    spool: Spool,
    max_backlog: u64,
    /// Set once the listeners are told to stop: new work is refused.
    stopping: Arc<AtomicBool>,
    /// Set once the listeners have stopped: the writer finishes the queue and ends.
    closed: Arc<AtomicBool>,
    /// Set when the spool could not be written.
    failed: Arc<AtomicBool>,
}

/// Bytes one group of appends may hold (then it is written and synced, and the next begins).
const GROUP_BYTES: usize = 8 << 20;
/// Appends waiting for the writer at most.
const QUEUE: usize = 1024;

impl SpoolHandle {
    /// Starts the writer thread of `writer`'s spool. The thread ends, returning the first
    /// write error if any, once [`close`](SpoolHandle::close) was called and the queue is
    /// empty, or at the first write error, after setting `on_failure` (which should stop the
    /// listeners: nothing more can be taken).
    pub fn start(
        writer: SpoolWriter,
        max_backlog: u64,
        on_failure: Arc<AtomicBool>,
    ) -> (SpoolHandle, std::thread::JoinHandle<Result<(), SpoolError>>) {
        let (tx, rx) = crossbeam_channel::bounded::<Append>(QUEUE);
        let spool = writer.spool().clone();
        let closed = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let mut writer = writer;
        let (closed2, stopping2, failed2) = (closed.clone(), stopping.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("logveil-spool".into())
            .spawn(move || -> Result<(), SpoolError> {
                loop {
                    let first = match rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(a) => a,
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                            if closed2.load(Ordering::Acquire) && rx.is_empty() {
                                return Ok(());
                            }
                            // Idle: a segment whose events are all committed goes now.
                            let retired = writer.retire_if_committed();
                            if let Err(e) = retired {
                                failed2.store(true, Ordering::Release);
                                stopping2.store(true, Ordering::Release);
                                on_failure.store(true, Ordering::Release);
                                return Err(e);
                            }
                            continue;
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
                    };
                    let mut group = vec![first];
                    let mut bytes = group[0].data.len();
                    while bytes < GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(a) => {
                                bytes += a.data.len();
                                group.push(a);
                            }
                            Err(_) => break,
                        }
                    }
                    let parts: Vec<&[u8]> = group.iter().map(|a| a.data.as_slice()).collect();
                    if let Err(e) = writer.append(&parts) {
                        // Nothing more is taken: what is queued and what comes is refused.
                        failed2.store(true, Ordering::Release);
                        stopping2.store(true, Ordering::Release);
                        on_failure.store(true, Ordering::Release);
                        for a in group.into_iter().chain(rx.try_iter()) {
                            let _ = a.reply.send(Err(AppendError::Failed));
                        }
                        return Err(e);
                    }
                    for a in group {
                        let _ = a.reply.send(Ok(()));
                    }
                }
            })
            .expect("spawning the spool writer thread");
        (
            SpoolHandle {
                tx,
                spool,
                max_backlog,
                stopping,
                closed,
                failed,
            },
            thread,
        )
    }

    /// Whether new data should wait (or be refused): the spool's backlog is over its limit.
    pub fn backpressured(&self) -> bool {
        self.spool.backlog() > self.max_backlog
    }

    /// Whether the spool could not be written (the listeners are stopping).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Whether the listeners were told to stop (or the spool failed).
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Tells the listeners sharing this handle to stop taking new work.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// The listeners have stopped: the writer thread writes what is queued, then ends.
    pub fn close(&self) {
        self.stop();
        self.closed.store(true, Ordering::Release);
    }

    /// Appends whole lines (ending with a newline) and waits until they are durable.
    pub async fn append(&self, data: Vec<u8>) -> Result<(), AppendError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(AppendError::Stopping);
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Append { data, reply })
            .map_err(|e| match e {
                crossbeam_channel::TrySendError::Full(_) => AppendError::Busy,
                crossbeam_channel::TrySendError::Disconnected(_) => AppendError::Stopping,
            })?;
        answer(rx).await
    }

    /// [`append`](SpoolHandle::append), waiting while the queue is full.
    pub async fn append_waiting(&self, data: Vec<u8>) -> Result<(), AppendError> {
        let mut data = data;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(AppendError::Stopping);
            }
            let (reply, rx) = oneshot::channel();
            match self.tx.try_send(Append { data, reply }) {
                Ok(()) => return answer(rx).await,
                Err(crossbeam_channel::TrySendError::Full(a)) => {
                    data = a.data;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    return Err(AppendError::Stopping);
                }
            }
        }
    }

    /// Waits while the spool is backpressured (or until stopping).
    pub async fn wait_for_room(&self, poll: Duration) {
        while self.backpressured() && !self.stopping() {
            tokio::time::sleep(poll).await;
        }
    }
}

/// The writer's answer; an append queued just as the writer ended is never answered, so the
/// wait is bounded.
async fn answer(rx: oneshot::Receiver<Result<(), AppendError>>) -> Result<(), AppendError> {
    match tokio::time::timeout(REPLY_WITHIN, rx).await {
        Ok(Ok(r)) => r,
        _ => Err(AppendError::Stopping),
    }
}

/// How long an append waits for the writer at most (a group's write and sync take
/// milliseconds; this is for an append queued as the writer ended).
const REPLY_WITHIN: Duration = Duration::from_secs(30);

/// Resolves once `flag` is set (checked every 50 ms).
pub async fn stopped(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replaces the bytes that would split a message into lines (`\n`, `\r`) with spaces, and
/// cuts it to `max` bytes. Returns whether it was cut.
pub(crate) fn push_line(out: &mut Vec<u8>, msg: &[u8], max: usize) -> bool {
    let mut msg = msg;
    while let [rest @ .., b'\n' | b'\r' | 0] = msg {
        msg = rest;
    }
    let cut = msg.len() > max;
    let msg = &msg[..msg.len().min(max)];
    let start = out.len();
    out.extend_from_slice(msg);
    for b in &mut out[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.push(b'\n');
    cut
}

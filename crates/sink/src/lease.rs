//! Root-wide exclusive locks that work on object storage too: the retention sweep and
//! erasures take one so that only one of them changes a root at a time.
//!
//! On local disk it is an advisory file lock ([`Storage::lock`]), released by the kernel when
//! its process dies. Object stores have no locks, so there it is a *lease*: an object naming
//! its holder and when the lease ends, created only if absent (`If-None-Match: *`) and renewed
//! by a thread of the holder's with conditional puts (`If-Match`) every [`RENEW_EVERY`]
//! until it is dropped, when the object is deleted. Another process may take a lease over
//! (a conditional put on the version it read, so two never both do) only when
//! - it has ended: its holder stopped renewing it for [`LEASE_TTL`] (killed, or cut off from
//!   the store); clocks of the machines involved must agree to well within that, or
//! - its holder was a process of this machine (same boot, same PID namespace) that is no
//!   longer running: a killed sweep or erasure rerun on the same host need not wait.
//!
//! A holder that fails to renew (the store unreachable, or the lease taken over after it
//! ended) records it: [`Exclusive::check`] then fails, and a long operation that checks
//! between steps stops instead of running beside its successor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::UpdateVersion;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::storage::{Locked, Storage};
use crate::{Result, SinkError};

/// How long a lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(120);

/// How often a holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);

/// The content of a lease object.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseRecord {
    format: String,
    /// Unique per acquisition.
    holder: String,
    /// `hostname`, for the operator.
    host: String,
    pid: u32,
    /// The boot and PID namespace of the holder's machine (Linux), so that a process of the
    /// same machine can tell whether the holder still runs.
    #[serde(default)]
    machine: Option<String>,
    acquired_at_ms: u64,
    expires_at_ms: u64,
}

impl LeaseRecord {
    fn describe(&self) -> String {
        format!(
            "process {} on {} (lease taken {} s ago, ends in {} s unless renewed)",
            self.pid,
            self.host,
            now_ms().saturating_sub(self.acquired_at_ms) / 1000,
            self.expires_at_ms.saturating_sub(now_ms()) / 1000
        )
    }

    /// Whether another process may take the lease over now.
    fn is_abandoned(&self) -> bool {
        if self.expires_at_ms < now_ms() {
            return true;
        }
        let here = machine();
        here.is_some()
            && self.machine == here
            && self.pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This machine's boot id and PID namespace (Linux only): processes that agree on both see
/// the same PIDs.
fn machine() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

/// A root-wide exclusive lock, held until dropped.
#[must_use = "the lock is released when this is dropped"]
pub struct Exclusive {
    _file: Option<std::fs::File>,
    lease: Option<Lease>,
}

impl std::fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.lease {
            Some(_) => "Exclusive(lease)",
            None => "Exclusive(file)",
        })
    }
}

impl Exclusive {
    /// Fails if the lease could not be renewed in time and may have passed to another
    /// process: the holder must stop changing the root.
    pub fn check(&self) -> Result<()> {
        match &self.lease {
            Some(l) if l.lost.load(Ordering::SeqCst) => Err(SinkError::Fenced {
                path: l.path.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

struct Lease {
    storage: Storage,
    path: Path,
    holder: String,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // Deleted only while it is still ours (an object store has no conditional delete:
        // the window is the time between this read and the delete).
        if let Ok(Some((b, _))) = self.storage.get_versioned(&self.path)
            && serde_json::from_slice::<LeaseRecord>(&b).is_ok_and(|r| r.holder == self.holder)
        {
            let _ = self.storage.delete(&self.path);
        }
    }
}

fn encode(r: &LeaseRecord) -> Bytes {
    let mut v = serde_json::to_vec_pretty(r).expect("lease serialises");
    v.push(b'\n');
    Bytes::from(v)
}

impl Storage {
    /// Takes the root-wide lock `<root>/<rel>` without waiting: `Ok(Err(who))` when another
    /// process holds it, `who` saying which (for the operator). Local disk: a file lock;
    /// object storage: a lease (module documentation); other stores (in memory): no lock.
    pub fn exclusive(&self, rel: &str) -> Result<std::result::Result<Exclusive, String>> {
        if !self.is_remote() {
            return Ok(match self.lock(rel, false)? {
                Locked::Held(f) => Ok(Exclusive {
                    _file: Some(f),
                    lease: None,
                }),
                Locked::NotLocal => Ok(Exclusive {
                    _file: None,
                    lease: None,
                }),
                Locked::Busy => Err("another process on this machine".to_string()),
            });
        }
        let path = Path::from(rel);
        let holder = format!(
            "{}-{}-{}",
            std::process::id(),
            now_ms(),
            blake3::hash(
                format!("{:?}{:?}", std::thread::current().id(), SystemTime::now()).as_bytes()
            )
            .to_hex()
            .get(..12)
            .unwrap_or_default()
        );
        let record = |acquired_at_ms| LeaseRecord {
            format: "logveil-lease".into(),
            holder: holder.clone(),
            host: host(),
            pid: std::process::id(),
            machine: machine(),
            acquired_at_ms,
            expires_at_ms: acquired_at_ms + LEASE_TTL.as_millis() as u64,
        };
        for _ in 0..8 {
            let current = self.get_versioned(&path)?;
            let expect = match &current {
                None => None,
                Some((b, v)) => match serde_json::from_slice::<LeaseRecord>(b) {
                    // Ours: a put the store applied whose answer was lost.
                    Ok(r) if r.holder == holder => {
                        return Ok(Ok(Exclusive {
                            _file: None,
                            lease: Some(self.start_renewing(path, r, v.clone())),
                        }));
                    }
                    Ok(r) if !r.is_abandoned() => return Ok(Err(r.describe())),
                    // Abandoned, or not a lease at all (damaged): replaced on the version read.
                    _ => Some(v.clone()),
                },
            };
            let mine = record(now_ms());
            if let Some(v) = self.put_versioned(&path, encode(&mine), expect)? {
                return Ok(Ok(Exclusive {
                    _file: None,
                    lease: Some(self.start_renewing(path, mine, v)),
                }));
            }
            // Another process changed it between our read and put: look again.
        }
        Ok(Err("processes racing for it".into()))
    }

    fn start_renewing(&self, path: Path, mut record: LeaseRecord, v: UpdateVersion) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let version = Arc::new(Mutex::new(v));
        let (storage, p, l, holder) = (
            self.clone(),
            path.clone(),
            lost.clone(),
            record.holder.clone(),
        );
        let renewer = std::thread::Builder::new()
            .name("logveil-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW_EVERY) {
                    record.expires_at_ms = now_ms() + LEASE_TTL.as_millis() as u64;
                    let expect = version.lock().map(|g| g.clone()).ok();
                    match storage.put_versioned(&p, encode(&record), expect) {
                        Ok(Some(v)) => {
                            if let Ok(mut g) = version.lock() {
                                *g = v;
                            }
                        }
                        // Taken over: it had ended, so this process was cut off for a while.
                        Ok(None) => {
                            l.store(true, Ordering::SeqCst);
                            return;
                        }
                        // Not renewed this time; lost only once it has ended.
                        Err(_) => {
                            if now_ms() + RENEW_EVERY.as_millis() as u64 >= record.expires_at_ms {
                                l.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })
            .ok();
        if renewer.is_none() {
            lost.store(true, Ordering::SeqCst);
        }
        Lease {
            storage: self.clone(),
            path,
            holder,
            lost,
            stop: Some(stop),
            renewer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_of_a_dead_process_of_this_machine_is_abandoned_a_live_ones_is_not() {
        let Some(here) = machine() else {
            return;
        };
        let mut r = LeaseRecord {
            format: "logveil-lease".into(),
            holder: "x".into(),
            host: host(),
            pid: u32::MAX - 1,
            machine: Some(here),
            acquired_at_ms: now_ms(),
            expires_at_ms: now_ms() + 60_000,
        };
        assert!(r.is_abandoned(), "no such process");
        r.pid = 1;
        assert!(!r.is_abandoned(), "PID 1 runs");
        r.machine = Some("another machine".into());
        r.pid = u32::MAX - 1;
        assert!(
            !r.is_abandoned(),
            "another machine's PIDs are not ours to check"
        );
        r.expires_at_ms = now_ms() - 1;
        assert!(r.is_abandoned(), "ended");
        assert!(!r.describe().is_empty());
    }

    #[test]
    fn a_lease_is_exclusive_until_dropped() {
        let storage = Storage::object_store_remote(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "mem://".into(),
        );
        let first = storage.exclusive("_retention/sweep.lock").unwrap().unwrap();
        let who = storage
            .exclusive("_retention/sweep.lock")
            .unwrap()
            .unwrap_err();
        assert!(
            who.contains(&format!("process {}", std::process::id())),
            "{who}"
        );
        first.check().unwrap();
        drop(first);
        assert!(
            !storage
                .exists(&Path::from("_retention/sweep.lock"))
                .unwrap()
        );
        let again = storage.exclusive("_retention/sweep.lock").unwrap();
        assert!(again.is_ok());
    }
}

//! Root-wide exclusive locks that work on object storage too: the retention sweep and
//! erasures take one so that only one of them changes a root at a time.
//!
//! On local disk it is an advisory file lock ([`Storage::lock`]), released by the kernel when
//! its process dies. Object stores have no locks, so there it is a *lease*: an object naming
//! its holder and when the lease ends, created only if absent (`If-None-Match: *`) and renewed
//! by a thread of the holder's with conditional puts (`If-Match`) every [`RENEW_EVERY`]
//! until it is dropped, when it is ended in place (a conditional put on the version last
//! written: a lease lost to another process is never touched). Another process may take a lease over
//! (a conditional put on the version it read, so two never both do) only when
//! - it has ended: its holder stopped renewing it for [`LEASE_TTL`] (killed, or cut off from
//!   the store); clocks of the machines involved must agree to well within that, or
//! - its holder was a process of this machine (same boot, same PID namespace) that is no
//!   longer running: a killed sweep or erasure rerun on the same host need not wait.
//!
//! A holder knows its lease is surely its own only until its last confirmed write plus
//! [`LEASE_TTL`], less one renewal period: past that (the store unreachable), or once the
//! lease was taken over, [`Exclusive::check`] fails, and a long operation that checks
//! between steps stops instead of running beside its successor. A renewal whose answer was
//! lost is recognised by reading the lease back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
            "process {} on {} (lease taken {} s ago, ends in {} s unless renewed: a killed holder's is taken over then)",
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
            && !process_runs(self.pid)
    }
}

/// Whether a process of this PID namespace runs (one of another user's counts: `EPERM`).
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
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
    /// Fails once the lease may have passed to another process (taken over, or not renewed
    /// in time: the store unreachable): the holder must stop changing the root.
    pub fn check(&self) -> Result<()> {
        match &self.lease {
            Some(l) if !l.state.held() => Err(SinkError::Fenced {
                path: l.path.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

/// What a holder knows of its lease, shared with the thread that renews it.
struct LeaseState {
    /// Taken over by another process.
    lost: AtomicBool,
    /// Until when (ms since 1970) the lease is surely still ours: the start of the last
    /// confirmed write plus [`LEASE_TTL`], less one renewal period of margin.
    safe_until_ms: AtomicU64,
    /// The version of the lease object last written.
    version: Mutex<UpdateVersion>,
}

impl LeaseState {
    fn held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && now_ms() < self.safe_until_ms.load(Ordering::SeqCst)
    }

    fn confirm(&self, written_at_ms: u64, v: UpdateVersion) {
        if let Ok(mut g) = self.version.lock() {
            *g = v;
        }
        self.safe_until_ms.store(
            written_at_ms + (LEASE_TTL - RENEW_EVERY).as_millis() as u64,
            Ordering::SeqCst,
        );
    }

    fn version(&self) -> Option<UpdateVersion> {
        self.version.lock().map(|g| g.clone()).ok()
    }
}

struct Lease {
    storage: Storage,
    path: Path,
    record: LeaseRecord,
    state: Arc<LeaseState>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // Released by ending it, on the version last written: a successor's lease (this one
        // was lost) is never touched. The next holder takes the ended lease over.
        if !self.state.lost.load(Ordering::SeqCst) {
            self.record.expires_at_ms = 0;
            let _ =
                self.storage
                    .put_versioned(&self.path, encode(&self.record), self.state.version());
        }
    }
}

fn encode(r: &LeaseRecord) -> Bytes {
    let mut v = serde_json::to_vec_pretty(r).expect("lease serialises");
    v.push(b'\n');
    Bytes::from(v)
}

fn decode(b: &[u8]) -> Option<LeaseRecord> {
    serde_json::from_slice(b).ok()
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
        for _ in 0..8 {
            let current = self.get_versioned(&path)?;
            let expect = match &current {
                None => None,
                Some((b, v)) => match decode(b) {
                    // Ours: a put the store applied whose answer was lost.
                    Some(r) if r.holder == holder => {
                        let at = r.acquired_at_ms;
                        return Ok(Ok(self.hold(path, r, v.clone(), at)));
                    }
                    Some(r) if !r.is_abandoned() => return Ok(Err(r.describe())),
                    // Ended, abandoned, or not a lease at all (damaged): replaced on the
                    // version read.
                    _ => Some(v.clone()),
                },
            };
            let at = now_ms();
            let mine = LeaseRecord {
                format: "logveil-lease".into(),
                holder: holder.clone(),
                host: host(),
                pid: std::process::id(),
                machine: machine(),
                acquired_at_ms: at,
                expires_at_ms: at + LEASE_TTL.as_millis() as u64,
            };
            if let Some(v) = self.put_versioned(&path, encode(&mine), expect)? {
                return Ok(Ok(self.hold(path, mine, v, at)));
            }
            // Another process changed it between our read and put: look again.
        }
        Ok(Err("processes racing for it".into()))
    }

    /// A lease just written (at `written_at_ms`, version `v`), renewed until dropped.
    fn hold(
        &self,
        path: Path,
        record: LeaseRecord,
        v: UpdateVersion,
        written_at_ms: u64,
    ) -> Exclusive {
        let state = Arc::new(LeaseState {
            lost: AtomicBool::new(false),
            safe_until_ms: AtomicU64::new(0),
            version: Mutex::new(v.clone()),
        });
        state.confirm(written_at_ms, v);
        let (stop, stopped) = mpsc::channel::<()>();
        let (storage, p, st, mut r) = (self.clone(), path.clone(), state.clone(), record.clone());
        let renewer = std::thread::Builder::new()
            .name("logveil-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW_EVERY) {
                    let sent = now_ms();
                    r.expires_at_ms = sent + LEASE_TTL.as_millis() as u64;
                    match storage.put_versioned(&p, encode(&r), st.version()) {
                        Ok(Some(v)) => st.confirm(sent, v),
                        // Refused: taken over (it had ended), or our last write was applied
                        // but its answer lost, which left our version stale.
                        Ok(None) => match storage.get_versioned(&p) {
                            Ok(Some((b, v)))
                                if decode(&b).is_some_and(|x| x.holder == r.holder) =>
                            {
                                if let Ok(mut g) = st.version.lock() {
                                    *g = v;
                                }
                            }
                            Ok(_) => {
                                st.lost.store(true, Ordering::SeqCst);
                                return;
                            }
                            Err(_) => {}
                        },
                        // Not renewed this time: the lease is surely ours only until the
                        // last confirmed write's margin runs out (`check`).
                        Err(_) => {}
                    }
                }
            })
            .ok();
        if renewer.is_none() {
            state.lost.store(true, Ordering::SeqCst);
        }
        Exclusive {
            _file: None,
            lease: Some(Lease {
                storage: self.clone(),
                path,
                record,
                state,
                stop: Some(stop),
                renewer,
            }),
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
        // A process that has exited (and been reaped).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut r = LeaseRecord {
            format: "logveil-lease".into(),
            holder: "x".into(),
            host: host(),
            pid: dead,
            machine: Some(here),
            acquired_at_ms: now_ms(),
            expires_at_ms: now_ms() + 60_000,
        };
        assert!(r.is_abandoned(), "no such process");
        r.pid = 1;
        assert!(!r.is_abandoned(), "PID 1 runs");
        r.machine = Some("another machine".into());
        r.pid = dead;
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
        // Released: ended in place, and taken over by the next one.
        let (b, _) = storage
            .get_versioned(&Path::from("_retention/sweep.lock"))
            .unwrap()
            .unwrap();
        assert_eq!(decode(&b).unwrap().expires_at_ms, 0);
        let again = storage.exclusive("_retention/sweep.lock").unwrap();
        assert!(again.is_ok());
    }
}

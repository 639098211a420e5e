//! The audit log: an append-only JSON Lines file in which privacy-relevant operations (key
//! created, key shredded, holds, suppression changes) are recorded, one object per line. Each
//! entry carries the hash of the entry before it (`prev`) and its own (`hash`, BLAKE3 over
//! `prev` and the entry's other fields), so removing, reordering or editing any line breaks
//! the chain, which [`AuditLog::verify`] detects.
//!
//! An entry is written with one `write` to a file opened for appending, then fsynced; a torn
//! last line (crash mid-write) is reported by `verify`, never silently accepted. On object
//! storage, which cannot append, the log is one object replaced whole by a conditional put
//! (see `Storage::update`), so concurrent writers never drop each other's entries.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use logveil_sink::Storage;
use object_store::path::Path as StorePath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Result, RetentionError};

/// Where an output root keeps its audit log (holds, suppression changes), relative to the
/// root. Deletion receipts have their own chain ([`crate::receipts`]).
pub const ROOT_AUDIT_PATH: &str = "_retention/audit.jsonl";

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3 …
    pub seq: u64,
    /// RFC 3339 time of the operation.
    pub at: String,
    /// What happened, e.g. `key_created`, `key_shredded`.
    pub action: String,
    /// Who ran it (the operating-system user, or `--operator`).
    pub operator: String,
    /// Operation-specific facts (ids, periods, reasons). Never identifiers or key material.
    pub details: Map<String, Value>,
    pub prev: String,
    pub hash: String,
}

/// Hash of an entry: BLAKE3 over a fixed serialisation of everything but `hash`.
pub(crate) fn entry_hash(e: &AuditEntry) -> String {
    let body = serde_json::json!({
        "seq": e.seq,
        "at": e.at,
        "action": e.action,
        "operator": e.operator,
        "details": e.details,
        "prev": e.prev,
    });
    let mut h = blake3::Hasher::new_derive_key("logveil audit log entry v1");
    h.update(body.to_string().as_bytes());
    h.finalize().to_hex().to_string()
}

/// An audit log: a local file, or an object.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Object storage holding the log at `path` (relative to the root).
    object: Option<Storage>,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>) -> AuditLog {
        AuditLog {
            path: path.into(),
            object: None,
        }
    }

    /// The audit log of a local output root.
    pub fn of_root(root: &Path) -> AuditLog {
        AuditLog::new(root.join(ROOT_AUDIT_PATH))
    }

    /// The audit log of an output root, local or object storage.
    pub fn of_storage(storage: &Storage) -> AuditLog {
        match storage.local_root() {
            Some(root) => AuditLog::of_root(root),
            None => AuditLog {
                path: PathBuf::from(ROOT_AUDIT_PATH),
                object: Some(storage.clone()),
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn display(&self) -> String {
        match &self.object {
            Some(s) => format!("{}/{}", s.label(), self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    fn object_path(&self) -> StorePath {
        StorePath::from(self.path.to_string_lossy().as_ref())
    }

    /// Every entry, after checking the chain from the first line to the last.
    pub fn verify(&self) -> Result<Vec<AuditEntry>> {
        if let Some(storage) = &self.object {
            let Some(bytes) = storage.get(&self.object_path())? else {
                return Ok(Vec::new());
            };
            return self.check(&String::from_utf8_lossy(&bytes));
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RetentionError::Read {
                    path: self.display(),
                    source,
                });
            }
        };
        self.check(&text)
    }

    /// The entries of `text`, after checking their chain.
    fn check(&self, text: &str) -> Result<Vec<AuditEntry>> {
        let chain = |line: usize, what: String| RetentionError::Chain {
            path: self.display(),
            line,
            what,
        };
        if !text.is_empty() && !text.ends_with('\n') {
            return Err(chain(
                text.lines().count(),
                "the last line is incomplete (a write was interrupted)".into(),
            ));
        }
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut prev = GENESIS.to_string();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let e: AuditEntry = serde_json::from_str(line)
                .map_err(|err| chain(n, format!("not an audit entry (column {})", err.column())))?;
            if e.seq != n as u64 {
                return Err(chain(
                    n,
                    format!("sequence number {} where {n} was expected", e.seq),
                ));
            }
            if e.prev != prev {
                return Err(chain(n, "prev does not match the entry before".into()));
            }
            if entry_hash(&e) != e.hash {
                return Err(chain(n, "hash does not match the entry's content".into()));
            }
            prev = e.hash.clone();
            entries.push(e);
        }
        Ok(entries)
    }

    /// Appends an entry (after verifying the chain so far) and syncs it to disk.
    pub fn append(
        &self,
        at: &str,
        action: &str,
        operator: &str,
        details: Map<String, Value>,
    ) -> Result<AuditEntry> {
        if let Some(storage) = &self.object {
            let mut written = None;
            // Entries in the log when it was first read: on a retry, an entry after them just
            // like ours is ours (a put the store applied but whose answer was lost, then
            // refused as stale), not to be written twice.
            let mut first_len: Option<usize> = None;
            storage.update(&self.object_path(), |old| {
                let text = old.map(|b| String::from_utf8_lossy(b).into_owned());
                let existing = self.check(text.as_deref().unwrap_or("")).map_err(|e| {
                    logveil_sink::SinkError::BadManifest {
                        path: self.display(),
                        what: e.to_string(),
                    }
                })?;
                if let Some(n) = first_len
                    && let Some(mine) = existing.iter().skip(n).find(|e| {
                        e.at == at
                            && e.action == action
                            && e.operator == operator
                            && e.details == details
                    })
                {
                    written = Some(mine.clone());
                    return Ok(None);
                }
                first_len.get_or_insert(existing.len());
                let e = next_entry(&existing, at, action, operator, details.clone());
                let mut out = text.unwrap_or_default();
                out.push_str(&serde_json::to_string(&e).expect("audit entry serialises"));
                out.push('\n');
                written = Some(e);
                Ok(Some(Bytes::from(out)))
            })?;
            return Ok(written.expect("an update that wrote made an entry"));
        }
        let existing = self.verify()?;
        let e = next_entry(&existing, at, action, operator, details);
        let mut line = serde_json::to_string(&e).expect("audit entry serialises");
        line.push('\n');
        let write_err = |source| RetentionError::Write {
            path: self.display(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(write_err)?;
        f.write_all(line.as_bytes()).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        Ok(e)
    }
}

/// The entry that follows `existing`.
fn next_entry(
    existing: &[AuditEntry],
    at: &str,
    action: &str,
    operator: &str,
    details: Map<String, Value>,
) -> AuditEntry {
    let mut e = AuditEntry {
        seq: existing.len() as u64 + 1,
        at: at.to_string(),
        action: action.to_string(),
        operator: operator.to_string(),
        details,
        prev: existing
            .last()
            .map_or_else(|| GENESIS.to_string(), |p| p.hash.clone()),
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(k: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("key_id".into(), Value::from(k));
        m
    }

    #[test]
    fn chain_appends_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("a/audit.jsonl"));
        assert!(log.verify().unwrap().is_empty());
        let a = log
            .append("t1", "key_created", "ops", details("k-1"))
            .unwrap();
        let b = log
            .append("t2", "key_shredded", "ops", details("k-1"))
            .unwrap();
        assert_eq!(a.prev, GENESIS);
        assert_eq!(b.prev, a.hash);
        assert_eq!(log.verify().unwrap(), vec![a, b]);
    }

    #[test]
    fn tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::new(&p);
        for i in 0..3 {
            log.append("t", "key_created", "ops", details(&format!("k-{i}")))
                .unwrap();
        }
        let good = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        let cases = [
            (good.replace("k-1", "k-9"), "hash"),
            (format!("{}\n{}\n", lines[0], lines[2]), "sequence"),
            (format!("{}\n{}\n", lines[1], lines[2]), "sequence"),
            (good[..good.len() - 5].to_string(), "incomplete"),
        ];
        for (bad, what) in cases {
            std::fs::write(&p, bad).unwrap();
            let e = log.verify().unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
            assert!(log.append("t", "x", "ops", Map::new()).is_err());
        }
    }

    /// An object store whose first conditional put is applied but answered as refused (its
    /// answer lost, the client's retry refused as stale).
    #[derive(Debug)]
    struct LostAnswer {
        inner: object_store::memory::InMemory,
        lost: std::sync::atomic::AtomicBool,
    }

    impl std::fmt::Display for LostAnswer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("LostAnswer")
        }
    }

    #[async_trait::async_trait]
    impl object_store::ObjectStore for LostAnswer {
        async fn put_opts(
            &self,
            location: &StorePath,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            let conditional = !matches!(opts.mode, object_store::PutMode::Overwrite);
            let r = self.inner.put_opts(location, payload, opts).await?;
            if conditional && !self.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(object_store::Error::Precondition {
                    path: location.to_string(),
                    source: "the retry of an applied put".into(),
                });
            }
            Ok(r)
        }
        async fn put_multipart_opts(
            &self,
            location: &StorePath,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &StorePath,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<StorePath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<StorePath>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&StorePath>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&StorePath>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &StorePath,
            to: &StorePath,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn an_append_whose_answer_was_lost_is_written_once() {
        let store = std::sync::Arc::new(LostAnswer {
            inner: object_store::memory::InMemory::new(),
            lost: std::sync::atomic::AtomicBool::new(true),
        });
        let storage = Storage::object_store_remote(store.clone(), "mem://".into());
        let log = AuditLog::of_storage(&storage);
        log.append("2026-01-01T00:00:00Z", "hold_placed", "a", details("1"))
            .unwrap();
        // The next conditional put is applied, then answered as refused.
        store.lost.store(false, std::sync::atomic::Ordering::SeqCst);
        let e = log
            .append("2026-01-01T00:00:01Z", "hold_released", "a", details("2"))
            .unwrap();
        assert!(store.lost.load(std::sync::atomic::Ordering::SeqCst));
        let all = log.verify().unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!((e.seq, all[1].action.as_str()), (2, "hold_released"));
    }
}

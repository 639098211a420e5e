//! Deletion receipts: a hash-chained log of every partition the retention sweep removed,
//! kept through the root's storage (local disk or object store) as immutable segments
//! `_retention/receipts/0000000001.jsonl`, `…2.jsonl`, one per sweep batch.
//!
//! Entries have the shape of the audit log's ([`AuditEntry`]: `seq`, `at`, `action`,
//! `operator`, `details`, `prev`, `hash`) and the chain runs across segments: the first entry
//! of a segment carries the hash of the last entry of the one before. Object stores cannot
//! append, so a batch is written as a new object with a create-only put: two writers can never
//! both write segment N, and a reader never sees half a segment.

use bytes::Bytes;
use logveil_sink::Storage;
use object_store::path::Path;
use serde_json::{Map, Value};

use crate::audit::{AuditEntry, GENESIS, entry_hash};
use crate::{Result, RetentionError};

/// Where the segments live, relative to the root.
pub const RECEIPTS_DIR: &str = "_retention/receipts";

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub at: String,
    pub action: String,
    pub operator: String,
    pub details: Map<String, Value>,
}

/// The receipts of one root.
#[derive(Clone, Debug)]
pub struct ReceiptLog {
    storage: Storage,
}

fn segment_path(n: u64) -> Path {
    Path::from(format!("{RECEIPTS_DIR}/{n:010}.jsonl"))
}

/// Segment number of a listed object, if it is a segment.
fn segment_number(p: &Path) -> Option<u64> {
    let name = p.filename()?;
    let n = name.strip_suffix(".jsonl")?;
    (n.len() == 10).then_some(())?;
    n.parse().ok()
}

impl ReceiptLog {
    pub fn new(storage: Storage) -> ReceiptLog {
        ReceiptLog { storage }
    }

    fn label(&self, n: u64) -> String {
        format!("{}/{}", self.storage.label(), segment_path(n))
    }

    /// Segment numbers, ascending. Other objects in the directory are reported.
    fn segments(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        for o in self.storage.list(&Path::from(RECEIPTS_DIR))? {
            match segment_number(&o.location) {
                Some(n) => out.push(n),
                None => {
                    return Err(RetentionError::Invalid {
                        path: format!("{}/{}", self.storage.label(), o.location),
                        what: "not a receipt segment (receipts are never edited or added by hand); move it out of the directory"
                            .into(),
                    });
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Parses one segment, checking the chain from `prev` and sequence numbers from
    /// `next_seq`.
    fn read_segment(&self, n: u64, mut prev: String, next_seq: u64) -> Result<Vec<AuditEntry>> {
        let chain = |line: usize, what: String| RetentionError::Receipts {
            path: self.label(n),
            line,
            what,
        };
        let Some(bytes) = self.storage.get(&segment_path(n))? else {
            return Err(chain(0, "the segment disappeared while it was read".into()));
        };
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| chain(0, format!("not UTF-8 (byte offset {})", e.valid_up_to())))?;
        if text.is_empty() || !text.ends_with('\n') {
            return Err(chain(
                text.lines().count(),
                "the segment is empty or its last line is incomplete".into(),
            ));
        }
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let ln = i + 1;
            let e: AuditEntry = serde_json::from_str(line)
                .map_err(|err| chain(ln, format!("not a receipt (column {})", err.column())))?;
            let want = next_seq + i as u64;
            if e.seq != want {
                return Err(chain(
                    ln,
                    format!("sequence number {} where {want} was expected", e.seq),
                ));
            }
            if e.prev != prev {
                return Err(chain(ln, "prev does not match the entry before".into()));
            }
            if entry_hash(&e) != e.hash {
                return Err(chain(ln, "hash does not match the entry's content".into()));
            }
            prev = e.hash.clone();
            out.push(e);
        }
        Ok(out)
    }

    /// Every entry, after checking the whole chain: segments numbered 1, 2, 3 … without
    /// gaps, sequence numbers continuous, every `prev` and `hash` right.
    pub fn verify(&self) -> Result<Vec<AuditEntry>> {
        let mut all: Vec<AuditEntry> = Vec::new();
        for (i, n) in self.segments()?.into_iter().enumerate() {
            if n != i as u64 + 1 {
                return Err(RetentionError::Receipts {
                    path: self.label(i as u64 + 1),
                    line: 0,
                    what: "segment missing (the segments must be numbered without gaps)".into(),
                });
            }
            let prev = all
                .last()
                .map_or_else(|| GENESIS.to_string(), |e| e.hash.clone());
            let next_seq = all.len() as u64 + 1;
            all.extend(self.read_segment(n, prev, next_seq)?);
        }
        Ok(all)
    }

    /// The last segment's number and entries (`(0, [])` when there are none). Only the last
    /// segment is read: appending costs the same however long the log is.
    pub fn tail(&self) -> Result<(u64, Vec<AuditEntry>)> {
        let Some(&n) = self.segments()?.last() else {
            return Ok((0, Vec::new()));
        };
        let bytes = self.storage.get(&segment_path(n))?.unwrap_or_default();
        let mut out = Vec::new();
        for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            let e: AuditEntry =
                serde_json::from_str(line).map_err(|err| RetentionError::Receipts {
                    path: self.label(n),
                    line: i + 1,
                    what: format!("not a receipt (column {})", err.column()),
                })?;
            out.push(e);
        }
        if out.is_empty() {
            return Err(RetentionError::Receipts {
                path: self.label(n),
                line: 0,
                what: "the segment is empty".into(),
            });
        }
        Ok((n, out))
    }

    /// Appends `entries` as one new segment (all or nothing) and returns them as written.
    /// If another writer created the segment first, the chain is re-read and the append
    /// retried.
    pub fn append(&self, entries: &[NewEntry]) -> Result<Vec<AuditEntry>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        for _ in 0..8 {
            let (n, tail) = self.tail()?;
            let (mut seq, mut prev) = match tail.last() {
                Some(e) => (e.seq + 1, e.hash.clone()),
                None => (1, GENESIS.to_string()),
            };
            let mut text = String::new();
            let mut out = Vec::with_capacity(entries.len());
            for ne in entries {
                let mut e = AuditEntry {
                    seq,
                    at: ne.at.clone(),
                    action: ne.action.clone(),
                    operator: ne.operator.clone(),
                    details: ne.details.clone(),
                    prev: prev.clone(),
                    hash: String::new(),
                };
                e.hash = entry_hash(&e);
                text.push_str(&serde_json::to_string(&e).expect("receipt serialises"));
                text.push('\n');
                prev = e.hash.clone();
                seq += 1;
                out.push(e);
            }
            let body = Bytes::from(text);
            let path = segment_path(n + 1);
            if self.storage.put_new(&path, body.clone())? {
                return Ok(out);
            }
            // Taken. If by this very write (an object store that applied a put whose answer
            // was lost, then refused the retry), it is done.
            if self.storage.get(&path)?.is_some_and(|b| b == body) {
                return Ok(out);
            }
        }
        Err(RetentionError::Usage(format!(
            "could not append to {}/{RECEIPTS_DIR}: other writers kept adding segments; is another sweep running?",
            self.storage.label()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> NewEntry {
        let mut d = Map::new();
        d.insert(
            "partition".into(),
            Value::from(format!("dt=2026-01-01/hour={i:02}")),
        );
        NewEntry {
            at: "2026-02-01T00:00:00Z".into(),
            action: "partition_deleted".into(),
            operator: "ops".into(),
            details: d,
        }
    }

    #[test]
    fn chain_runs_across_segments() {
        for storage in [Storage::memory(), {
            let d = tempfile::tempdir().unwrap().keep();
            Storage::local(&d).unwrap()
        }] {
            let log = ReceiptLog::new(storage.clone());
            assert!(log.verify().unwrap().is_empty());
            let a = log.append(&[entry(0), entry(1)]).unwrap();
            let b = log.append(&[entry(2)]).unwrap();
            assert_eq!(a[0].prev, GENESIS);
            assert_eq!(b[0].prev, a[1].hash);
            assert_eq!(b[0].seq, 3);
            let all = log.verify().unwrap();
            assert_eq!(all.len(), 3);
            assert_eq!(log.tail().unwrap().0, 2);
        }
    }

    #[test]
    fn tampering_and_gaps_are_detected() {
        let storage = Storage::memory();
        let log = ReceiptLog::new(storage.clone());
        for i in 0..3 {
            log.append(&[entry(i)]).unwrap();
        }
        let p2 = segment_path(2);
        let good = storage.get(&p2).unwrap().unwrap();
        let edited = String::from_utf8(good.to_vec())
            .unwrap()
            .replace("hour=01", "hour=09");
        storage.put(&p2, Bytes::from(edited)).unwrap();
        assert!(log.verify().unwrap_err().to_string().contains("hash"));
        storage.delete(&p2).unwrap();
        assert!(
            log.verify()
                .unwrap_err()
                .to_string()
                .contains("segment missing")
        );
        storage.put(&p2, good).unwrap();
        log.verify().unwrap();
        storage
            .put(
                &Path::from(format!("{RECEIPTS_DIR}/notes.txt")),
                Bytes::new(),
            )
            .unwrap();
        assert!(log.verify().is_err());
    }
}

//! Read-only views of a root's retention: [`status`] (per dataset: partitions, rows, bytes,
//! oldest and newest, next expiry, overdue and held) and [`verify`] (the receipt chain is
//! intact and every receipted partition's files are gone).

use std::collections::{BTreeMap, BTreeSet};

use logveil_model::HourKey;
use logveil_model::time::format_rfc3339;
use logveil_sink::Storage;
use logveil_sink::manifest::{MANIFEST_NAME, Manifest, TOMBSTONES_DIR, partition_expiry};
use object_store::path::Path;
use serde::Serialize;

use crate::holds::{Hold, HoldSet};
use crate::receipts::ReceiptLog;
use crate::sweep::{LAST_SWEEP_PATH, ManifestState, Problem, below, datasets, partition_key};
use crate::{Result, RetentionError};

/// One dataset's retention state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DatasetStatus {
    pub dataset: String,
    pub kind: String,
    pub retention_days: u32,
    pub partitions: u64,
    pub rows: u64,
    pub bytes: u64,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// The earliest expiry still ahead.
    pub next_expiry: Option<String>,
    /// Expired, not held, not yet swept.
    pub overdue: u64,
    /// Expired but kept by a legal hold.
    pub held: u64,
    /// Partitions whose manifest is missing or unreadable.
    pub without_manifest: u64,
    /// Parquet files in partitions that their manifest does not list (a run killed between
    /// publishing and recording them).
    pub unlisted_files: u64,
}

/// A hold as `status` shows it: its record and whether it is in force.
#[derive(Clone, Debug, Serialize)]
pub struct HoldStatus {
    #[serde(flatten)]
    pub hold: Hold,
    pub in_force: bool,
}

/// The root's retention state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    pub now: String,
    pub datasets: Vec<DatasetStatus>,
    pub holds: Vec<HoldStatus>,
    /// Partitions an interrupted sweep left half-deleted (the next sweep completes them).
    pub pending_tombstones: u64,
    /// `_retention/last_sweep.json`, if a sweep has completed.
    pub last_sweep: Option<serde_json::Value>,
    pub problems: Vec<Problem>,
}

/// Walks every partition of every dataset (one listing per dataset, one manifest read per
/// partition).
pub fn status(storage: &Storage, now: i64) -> Result<Status> {
    let holds = HoldSet::load(storage)?;
    let mut out = Status {
        now: format_rfc3339(now),
        ..Status::default()
    };
    for (name, marker) in datasets(storage)? {
        let marker = match marker {
            Ok(m) => m,
            Err(what) => {
                out.problems.push(Problem {
                    path: format!("{name}/"),
                    what,
                    needs_attention: true,
                });
                continue;
            }
        };
        let mut ds = DatasetStatus {
            dataset: name.clone(),
            kind: marker.kind.clone(),
            retention_days: marker.retention_days,
            ..DatasetStatus::default()
        };
        // Objects per partition.
        let mut parts: BTreeMap<HourKey, Vec<(String, u64)>> = BTreeMap::new();
        let prefix = Path::from(name.as_str());
        for o in storage.list(&prefix)? {
            let Some(rel) = below(&o.location, &prefix) else {
                continue;
            };
            let mut it = rel.splitn(3, '/');
            let (Some(dt), Some(hour), Some(file)) = (it.next(), it.next(), it.next()) else {
                continue; // the marker, the lock, staging
            };
            if let Some(key) = partition_key(dt, hour) {
                parts
                    .entry(key)
                    .or_default()
                    .push((file.to_string(), o.size));
            }
        }
        let mut next: Option<i64> = None;
        for (key, files) in &parts {
            let (state, m) = crate::sweep::read_manifest(storage, &name, *key)?;
            let expiry = partition_expiry(
                *key,
                marker.retention_days,
                m.as_ref().and_then(Manifest::expires_micros),
            );
            ds.partitions += 1;
            match &m {
                Some(m) => {
                    ds.rows += m.rows;
                    ds.bytes += m.bytes;
                    let listed: BTreeSet<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
                    ds.unlisted_files += files
                        .iter()
                        .filter(|(f, _)| f.ends_with(".parquet") && !listed.contains(f.as_str()))
                        .count() as u64;
                }
                None => {
                    ds.without_manifest += 1;
                    ds.bytes += files
                        .iter()
                        .filter(|(f, _)| f != MANIFEST_NAME)
                        .map(|(_, b)| b)
                        .sum::<u64>();
                    out.problems.push(Problem {
                        path: format!("{name}/{}/{MANIFEST_NAME}", key.dir()),
                        what: match state {
                            ManifestState::Missing => "missing",
                            _ => "unreadable",
                        }
                        .into(),
                        needs_attention: false,
                    });
                }
            }
            if expiry <= now {
                if holds
                    .blocking(Some(&name), key.start_micros(), key.end_micros(), now)
                    .is_empty()
                {
                    ds.overdue += 1;
                } else {
                    ds.held += 1;
                }
            } else {
                next = Some(next.map_or(expiry, |n| n.min(expiry)));
            }
        }
        ds.oldest = parts.keys().next().map(|k| k.dir());
        ds.newest = parts.keys().next_back().map(|k| k.dir());
        ds.next_expiry = next.map(format_rfc3339);
        out.datasets.push(ds);
    }
    out.holds = holds
        .all()
        .iter()
        .map(|h| HoldStatus {
            hold: h.clone(),
            in_force: h.in_force(now),
        })
        .collect();
    out.pending_tombstones = storage.list(&Path::from(TOMBSTONES_DIR))?.len() as u64;
    out.last_sweep = storage
        .get(&Path::from(LAST_SWEEP_PATH))?
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(out)
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// Receipts in the chain.
    pub receipts: u64,
    /// Receipted partitions checked against a fresh listing.
    pub partitions_checked: u64,
    /// Files named in receipts that still exist.
    pub files_remaining: Vec<String>,
    /// Tombstones of an interrupted sweep (not a failure: the next sweep completes them).
    pub pending_tombstones: u64,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.files_remaining.is_empty()
    }
}

/// Checks the receipt chain, then re-lists storage and checks that no file a receipt names
/// is still there. A broken chain is an error.
pub fn verify(storage: &Storage) -> Result<Verification> {
    let entries = ReceiptLog::new(storage.clone()).verify()?;
    let mut v = Verification {
        receipts: entries.len() as u64,
        ..Verification::default()
    };
    // One listing per dataset that has receipts.
    let mut by_dataset: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.action == "partition_deleted") {
        let s = |k: &str| {
            e.details
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let (Some(ds), Some(part)) = (s("dataset"), s("partition")) else {
            return Err(RetentionError::Invalid {
                path: format!("{}/{}", storage.label(), crate::receipts::RECEIPTS_DIR),
                what: format!("receipt {} names no dataset or partition", e.seq),
            });
        };
        let files = e
            .details
            .get("files")
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        by_dataset.entry(ds).or_default().push((part, files));
    }
    for (ds, parts) in by_dataset {
        let present: BTreeSet<String> = storage
            .list(&Path::from(ds.as_str()))?
            .into_iter()
            .map(|o| o.location.to_string())
            .collect();
        for (part, files) in parts {
            v.partitions_checked += 1;
            for f in files {
                let p = format!("{ds}/{part}/{f}");
                if present.contains(&p) {
                    v.files_remaining.push(p);
                }
            }
        }
    }
    v.pending_tombstones = storage.list(&Path::from(TOMBSTONES_DIR))?.len() as u64;
    Ok(v)
}

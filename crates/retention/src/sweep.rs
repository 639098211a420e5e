//! The retention sweep: finds partitions whose expiry has passed and deletes them, in an
//! order that keeps readers and crashes safe, leaving a deletion receipt for each.
//!
//! A partition expires at the earlier of the `expires_at` in its manifest and its end plus
//! the dataset's current retention (`<dataset>/_dataset.json`). A partition whose manifest is
//! missing or unreadable is judged by its path (`dt=`/`hour=`) and the dataset's retention
//! alone, and its receipt says so. A dataset without a readable marker is never swept: it is
//! reported as a problem.
//!
//! Deleting one partition:
//! 1. under the dataset's lock (shared with ingest commits): re-read the manifest and decide
//!    again; write the tombstone `_retention/tombstones/<dataset>/dt=…/hour=….json` (the
//!    decision, with every file to remove and its size and checksum); remove the manifest,
//!    which makes the partition invisible to logveil's readers and closes it to ingest;
//! 2. delete the files, then list the partition again to prove it empty;
//! 3. append the receipts of a batch of partitions as one receipt segment;
//! 4. remove the batch's tombstones.
//!
//! A sweep interrupted anywhere (kill -9) leaves tombstones; the next sweep completes them
//! first, without writing a receipt twice. Only an expired, unheld partition ever gets a
//! tombstone, so no interruption can lead to deleting anything unexpired.
//!
//! The sweep reads only what can have expired: per dataset it lists the day directories
//! (cheap), visits the days whose first hour could have expired under the shortest retention
//! the dataset ever had, and stops at the first day that cannot. Its cost grows with the
//! number of expired partitions, not with the data kept.

use std::collections::BTreeSet;

use bytes::Bytes;
use logveil_model::HourKey;
use logveil_model::time::{
    MICROS_PER_DAY, MICROS_PER_HOUR, days_from_civil, format_rfc3339, parse_rfc3339,
};
use logveil_sink::manifest::{
    DatasetMarker, MANIFEST_NAME, Manifest, TOMBSTONES_DIR, lock_dataset, manifest_path,
    partition_expiry, partition_path, tombstone_path,
};
use logveil_sink::storage::Locked;
use logveil_sink::{SinkError, Storage};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::holds::{Hold, HoldSet};
use crate::receipts::{NewEntry, ReceiptLog};
use crate::{Result, RetentionError};

/// The root's status file of the last completed sweep (for monitoring).
pub const LAST_SWEEP_PATH: &str = "_retention/last_sweep.json";

/// Partitions whose receipts are written as one segment.
const BATCH: usize = 256;

/// A point in the delete sequence, reported to the [`Hook`] right after it is reached.
/// Tests use it to crash the process at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A tombstone was written.
    Tombstoned,
    /// A partition's manifest was removed.
    ManifestRemoved,
    /// One file of a partition was deleted.
    FileDeleted,
    /// A batch's receipts were appended.
    Receipted,
    /// A tombstone was removed (its partition is done).
    TombstoneRemoved,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Tombstoned => "tombstoned",
            Step::ManifestRemoved => "manifest_removed",
            Step::FileDeleted => "file_deleted",
            Step::Receipted => "receipted",
            Step::TombstoneRemoved => "tombstone_removed",
        }
    }

    pub const ALL: [Step; 5] = [
        Step::Tombstoned,
        Step::ManifestRemoved,
        Step::FileDeleted,
        Step::Receipted,
        Step::TombstoneRemoved,
    ];
}

/// Called at every [`Step`].
pub type Hook<'a> = &'a (dyn Fn(Step) + Sync);

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The instant expiry is judged at (µs).
    pub now: i64,
    /// Report what would be deleted; change nothing.
    pub dry_run: bool,
    /// Who runs it (recorded in receipts).
    pub operator: String,
    /// Unique id of this sweep (recorded in tombstones and receipts).
    pub sweep_id: String,
}

/// How a partition's manifest was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestState {
    Ok,
    Missing,
    Corrupt,
}

/// One file of a partition being deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TombFile {
    /// Path below the partition directory.
    pub name: String,
    pub bytes: u64,
    /// BLAKE3 from the manifest (absent for files the manifest does not list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub in_manifest: bool,
}

/// A hold that kept a partition past its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRef {
    pub id: String,
    pub reason: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
}

/// The recorded decision to delete a partition: written before anything is removed, removed
/// after the receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub format: String,
    /// `<sweep id>/<dataset>/dt=…/hour=…`: receipts name it, so none is written twice.
    pub id: String,
    pub sweep_id: String,
    pub dataset: String,
    pub dt: String,
    pub hour: u32,
    pub partition_start: String,
    pub expires_at: String,
    pub retention_days: u32,
    pub manifest: ManifestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub files: Vec<TombFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delayed_by: Vec<HoldRef>,
    pub tombstoned_at: String,
    pub operator: String,
    /// The manifest as it was, so that a partition a legal hold now covers can be restored
    /// if none of its files has been deleted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_manifest: Option<Manifest>,
}

impl Tombstone {
    fn key(&self) -> Option<HourKey> {
        partition_key(
            &format!("dt={}", self.dt),
            &format!("hour={:02}", self.hour),
        )
    }
}

/// A partition deleted (or, in a dry run, to be deleted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub dataset: String,
    pub partition: String,
    pub expires_at: String,
    pub manifest: ManifestState,
    pub rows: Option<u64>,
    pub bytes: u64,
    pub files: usize,
    /// Completed after an earlier sweep was interrupted.
    pub recovered: bool,
}

/// An expired partition kept by a legal hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    pub dataset: String,
    pub partition: String,
    pub expires_at: String,
    pub holds: Vec<String>,
}

/// Something irregular the sweep found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub what: String,
    /// Left as it is until an operator looks at it (otherwise handled by a documented rule,
    /// e.g. a partition without a manifest judged by its path).
    pub needs_attention: bool,
}

/// What a sweep did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepReport {
    pub sweep_id: String,
    pub now: String,
    pub dry_run: bool,
    pub deleted: Vec<Deleted>,
    pub held: Vec<Held>,
    pub problems: Vec<Problem>,
    /// Partitions whose expiry was evaluated.
    pub partitions_examined: u64,
}

/// `dt=YYYY-MM-DD` + `hour=HH` → the partition.
pub fn partition_key(dt: &str, hour: &str) -> Option<HourKey> {
    let d = dt.strip_prefix("dt=")?;
    let h: i64 = hour.strip_prefix("hour=")?.parse().ok()?;
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !(0..24).contains(&h) {
        return None;
    }
    let y: i64 = d[..4].parse().ok()?;
    let m: u32 = d[5..7].parse().ok()?;
    let day: u32 = d[8..].parse().ok()?;
    if !(1..=12).contains(&m) || day == 0 || day > logveil_model::time::days_in_month(y, m) {
        return None;
    }
    Some(HourKey(days_from_civil(y, m, day) * 24 + h))
}

/// The last path segment of a listed prefix.
fn last_segment(p: &Path) -> String {
    p.parts()
        .next_back()
        .map(|x| x.as_ref().to_string())
        .unwrap_or_default()
}

/// Datasets of a root: its top-level directories other than `_retention`, with their
/// markers. A directory without a readable marker is returned with the error.
pub fn datasets(storage: &Storage) -> Result<Vec<(String, Result<DatasetMarker, String>)>> {
    let top = storage.list_level(&Path::from(""))?;
    let mut out = Vec::new();
    for p in top.common_prefixes {
        let name = last_segment(&p);
        if name == "_retention" || name.is_empty() {
            continue;
        }
        let marker = match DatasetMarker::read(storage, &name) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(format!(
                "{name}/ has no _dataset.json: its retention is unknown, so it is not swept; restore the marker or remove the directory"
            )),
            Err(e) => Err(format!(
                "{e}; its partitions are not swept until it is fixed"
            )),
        };
        if marker.is_err() && !has_partitions(storage, &name)? {
            continue; // not a dataset at all
        }
        out.push((name, marker));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn has_partitions(storage: &Storage, dataset: &str) -> Result<bool> {
    Ok(storage
        .list_level(&Path::from(dataset))?
        .common_prefixes
        .iter()
        .any(|p| last_segment(p).starts_with("dt=")))
}

/// Day directories of a dataset, ascending: `(dt=…, first hour of the day)`.
pub fn days(storage: &Storage, dataset: &str) -> Result<Vec<(String, HourKey)>> {
    let mut out: Vec<(String, HourKey)> = storage
        .list_level(&Path::from(dataset))?
        .common_prefixes
        .iter()
        .filter_map(|p| {
            let dt = last_segment(p);
            let key = partition_key(&dt, "hour=00")?;
            Some((dt, key))
        })
        .collect();
    out.sort_by_key(|d| d.1);
    Ok(out)
}

/// Hour partitions of one day directory, ascending; directories that are not partitions
/// are returned as problems.
pub fn hours(storage: &Storage, dataset: &str, dt: &str) -> Result<(Vec<HourKey>, Vec<String>)> {
    let mut keys = Vec::new();
    let mut odd = Vec::new();
    for p in storage
        .list_level(&Path::from(format!("{dataset}/{dt}")))?
        .common_prefixes
    {
        let h = last_segment(&p);
        match partition_key(dt, &h) {
            Some(k) => keys.push(k),
            None => odd.push(p.to_string()),
        }
    }
    keys.sort();
    Ok((keys, odd))
}

/// Reads a partition's manifest, classifying what was found.
pub fn read_manifest(
    storage: &Storage,
    dataset: &str,
    key: HourKey,
) -> Result<(ManifestState, Option<Manifest>)> {
    match Manifest::read(storage, &manifest_path(dataset, key)) {
        Ok(Some(m)) if m.expires_micros().is_some() => Ok((ManifestState::Ok, Some(m))),
        Ok(Some(_)) => Ok((ManifestState::Corrupt, None)),
        Ok(None) => Ok((ManifestState::Missing, None)),
        Err(SinkError::BadManifest { .. }) => Ok((ManifestState::Corrupt, None)),
        Err(e) => Err(e.into()),
    }
}

/// Holds covering `[from, to)` of `dataset` that were in force at some time after `expiry`
/// and before `now`: the holds that delayed a deletion.
fn delaying_holds(
    holds: &HoldSet,
    dataset: &str,
    key: HourKey,
    expiry: i64,
    now: i64,
) -> Vec<HoldRef> {
    let t = |s: &str| parse_rfc3339(s.as_bytes());
    holds
        .all()
        .iter()
        .filter(|h| h.covers(Some(dataset), key.start_micros(), key.end_micros()))
        .filter(|h| t(&h.created_at).is_none_or(|c| c < now))
        .filter(|h: &&Hold| {
            let ended = [h.released_at.as_deref(), h.until.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(t)
                .min();
            ended.is_none_or(|e| e > expiry)
        })
        .map(|h| HoldRef {
            id: h.id.clone(),
            reason: h.reason.clone(),
            owner: h.owner.clone(),
            released_at: h.released_at.clone(),
        })
        .collect()
}

/// Runs sweeps over one root.
pub struct Sweeper<'a> {
    storage: Storage,
    hook: Option<Hook<'a>>,
}

/// A decided deletion waiting for its receipt.
struct Pending {
    tombstone: Tombstone,
    deleted_at: i64,
    verification: String,
    recovered: bool,
}

impl<'a> Sweeper<'a> {
    pub fn new(storage: Storage) -> Sweeper<'a> {
        Sweeper {
            storage,
            hook: None,
        }
    }

    /// Calls `hook` at every step of the delete sequence.
    pub fn with_hook(mut self, hook: Hook<'a>) -> Sweeper<'a> {
        self.hook = Some(hook);
        self
    }

    fn step(&self, s: Step) {
        if let Some(h) = self.hook {
            h(s);
        }
    }

    /// Runs one sweep.
    pub fn sweep(&self, opts: &SweepOptions) -> Result<SweepReport> {
        let _lock = self.lock_root(opts.dry_run)?;
        let holds = HoldSet::load(&self.storage)?;
        let mut report = SweepReport {
            sweep_id: opts.sweep_id.clone(),
            now: format_rfc3339(opts.now),
            dry_run: opts.dry_run,
            ..SweepReport::default()
        };
        let log = ReceiptLog::new(self.storage.clone());
        let mut pending: Vec<Pending> = Vec::new();
        let mut tombstoned: BTreeSet<(String, HourKey)> = BTreeSet::new();

        // 1. Finish what an interrupted sweep started.
        let (_, tail) = log.tail()?;
        let receipted: BTreeSet<String> = tail
            .iter()
            .filter_map(|e| e.details.get("tombstone_id")?.as_str().map(str::to_string))
            .collect();
        for o in self.storage.list(&Path::from(TOMBSTONES_DIR))? {
            let t = match self
                .storage
                .get(&o.location)?
                .and_then(|b| serde_json::from_slice::<Tombstone>(&b).ok())
            {
                Some(t) if t.key().is_some() => t,
                _ => {
                    report.problems.push(Problem {
                        path: o.location.to_string(),
                        what: "unreadable tombstone: the partition it names may be half-deleted; inspect it, then delete the tombstone and sweep again".into(),
                        needs_attention: true,
                    });
                    continue;
                }
            };
            let key = t.key().expect("checked");
            tombstoned.insert((t.dataset.clone(), key));
            // A hold placed since the tombstone was written wins: the partition is restored
            // if it is still whole, otherwise what is left of it is kept until the hold ends.
            let blocking = holds.blocking(
                Some(&t.dataset),
                key.start_micros(),
                key.end_micros(),
                opts.now,
            );
            if !blocking.is_empty() && !receipted.contains(&t.id) {
                let restored = !opts.dry_run && self.restore(&t, key, &o.location)?;
                report.held.push(Held {
                    dataset: t.dataset.clone(),
                    partition: key.dir(),
                    expires_at: t.expires_at.clone(),
                    holds: blocking.iter().map(|h| h.id.clone()).collect(),
                });
                if !restored && !opts.dry_run {
                    report.problems.push(Problem {
                        path: o.location.to_string(),
                        what: "held, but an interrupted sweep had already deleted part of it; the rest is kept and its deletion completes when the hold ends".into(),
                        needs_attention: false,
                    });
                }
                continue;
            }
            report.deleted.push(deleted_of(&t, true));
            if opts.dry_run {
                continue;
            }
            if receipted.contains(&t.id) {
                // Receipted; only the tombstone was left.
                self.storage.delete(&o.location)?;
                self.step(Step::TombstoneRemoved);
                continue;
            }
            self.hide(&t.dataset, key)?;
            let verification = self.remove_files(&t, key)?;
            pending.push(Pending {
                tombstone: t,
                deleted_at: opts.now,
                verification,
                recovered: true,
            });
            if pending.len() >= BATCH {
                self.flush(&log, &mut pending, opts)?;
            }
        }

        // 2. New expiries.
        for (dataset, marker) in datasets(&self.storage)? {
            let marker = match marker {
                Ok(m) => m,
                Err(what) => {
                    report.problems.push(Problem {
                        path: format!("{dataset}/"),
                        what,
                        needs_attention: true,
                    });
                    continue;
                }
            };
            let floor = i64::from(marker.floor_days()) * MICROS_PER_DAY;
            for (dt, first) in days(&self.storage, &dataset)? {
                if first.start_micros() + MICROS_PER_HOUR + floor > opts.now {
                    break; // this day and every later one are too young
                }
                let (keys, odd) = hours(&self.storage, &dataset, &dt)?;
                for p in odd {
                    report.problems.push(Problem {
                        path: p,
                        what: "not an hour partition (hour=00 … hour=23); left as it is".into(),
                        needs_attention: true,
                    });
                }
                for key in keys {
                    if key.end_micros() + floor > opts.now {
                        break;
                    }
                    if tombstoned.contains(&(dataset.clone(), key)) {
                        continue;
                    }
                    report.partitions_examined += 1;
                    let Some(plan) =
                        self.plan(&dataset, &marker, key, &holds, opts, &mut report)?
                    else {
                        continue;
                    };
                    if opts.dry_run {
                        report.deleted.push(deleted_of(&plan, false));
                        continue;
                    }
                    let Some(t) = self.tombstone(&marker, key, &holds, opts, plan)? else {
                        continue;
                    };
                    let verification = self.remove_files(&t, key)?;
                    report.deleted.push(deleted_of(&t, false));
                    pending.push(Pending {
                        tombstone: t,
                        deleted_at: opts.now,
                        verification,
                        recovered: false,
                    });
                    if pending.len() >= BATCH {
                        self.flush(&log, &mut pending, opts)?;
                    }
                }
            }
        }
        self.flush(&log, &mut pending, opts)?;
        if !opts.dry_run {
            let status = serde_json::json!({
                "format": "logveil-last-sweep",
                "sweep_id": opts.sweep_id,
                "finished_at": format_rfc3339(opts.now),
                "deleted": report.deleted.len(),
                "held": report.held.len(),
                "problems": report.problems.len(),
            });
            let mut text = serde_json::to_vec_pretty(&status).expect("status serialises");
            text.push(b'\n');
            self.storage
                .put(&Path::from(LAST_SWEEP_PATH), Bytes::from(text))?;
        }
        Ok(report)
    }

    /// One sweep at a time per local root (object stores: the receipt segments' create-only
    /// puts keep concurrent sweeps from both recording).
    fn lock_root(&self, dry_run: bool) -> Result<Option<std::fs::File>> {
        if dry_run {
            return Ok(None);
        }
        match self.storage.lock("_retention/sweep.lock", false)? {
            Locked::Held(f) => Ok(Some(f)),
            Locked::NotLocal => Ok(None),
            Locked::Busy => Err(RetentionError::Usage(format!(
                "another retention sweep is running on {}; let it finish (a killed sweep releases its lock)",
                self.storage.label()
            ))),
        }
    }

    /// Decides on one partition without changing anything: `Some(plan)` if it is to be
    /// deleted (its tombstone as it would be written).
    fn plan(
        &self,
        dataset: &str,
        marker: &DatasetMarker,
        key: HourKey,
        holds: &HoldSet,
        opts: &SweepOptions,
        report: &mut SweepReport,
    ) -> Result<Option<Tombstone>> {
        let (state, manifest) = read_manifest(&self.storage, dataset, key)?;
        let expiry = partition_expiry(
            key,
            marker.retention_days,
            manifest.as_ref().and_then(Manifest::expires_micros),
        );
        if expiry > opts.now {
            return Ok(None);
        }
        let blocking = holds.blocking(
            Some(dataset),
            key.start_micros(),
            key.end_micros(),
            opts.now,
        );
        if !blocking.is_empty() {
            report.held.push(Held {
                dataset: dataset.to_string(),
                partition: key.dir(),
                expires_at: format_rfc3339(expiry),
                holds: blocking.iter().map(|h| h.id.clone()).collect(),
            });
            return Ok(None);
        }
        let prefix = partition_path(dataset, key);
        let listed = self.storage.list(&prefix)?;
        if listed.is_empty() {
            return Ok(None); // nothing left (an empty directory)
        }
        if state != ManifestState::Ok {
            report.problems.push(Problem {
                path: manifest_path(dataset, key).to_string(),
                what: format!(
                    "manifest {}: judged by its path and the dataset's retention ({} days); {}",
                    if state == ManifestState::Missing {
                        "missing"
                    } else {
                        "unreadable"
                    },
                    marker.retention_days,
                    if opts.dry_run {
                        "would be deleted"
                    } else {
                        "deleted, with a receipt saying so"
                    }
                ),
                needs_attention: false,
            });
        }
        let prefix_len = prefix.as_ref().len() + 1;
        let files = listed
            .iter()
            .filter(|o| o.location.filename() != Some(MANIFEST_NAME) || state != ManifestState::Ok)
            .map(|o| {
                let name = o.location.as_ref()[prefix_len..].to_string();
                let listed_in = manifest
                    .as_ref()
                    .and_then(|m| m.files.iter().find(|f| f.name == name));
                TombFile {
                    bytes: o.size,
                    blake3: listed_in.map(|f| f.blake3.clone()),
                    rows: listed_in.map(|f| f.rows),
                    in_manifest: listed_in.is_some(),
                    name,
                }
            })
            .collect();
        Ok(Some(Tombstone {
            format: "logveil-tombstone".into(),
            id: format!("{}/{dataset}/{}", opts.sweep_id, key.dir()),
            sweep_id: opts.sweep_id.clone(),
            dataset: dataset.to_string(),
            dt: key.date(),
            hour: key.hour(),
            partition_start: format_rfc3339(key.start_micros()),
            expires_at: format_rfc3339(expiry),
            retention_days: manifest.as_ref().map_or(marker.retention_days, |m| {
                m.retention_days.min(marker.retention_days)
            }),
            manifest: state,
            rows: manifest.as_ref().map(|m| m.rows),
            files,
            delayed_by: delaying_holds(holds, dataset, key, expiry, opts.now),
            tombstoned_at: format_rfc3339(opts.now),
            operator: opts.operator.clone(),
            saved_manifest: manifest,
        }))
    }

    /// Under the dataset's lock: decides again (an ingest may have appended meanwhile),
    /// writes the tombstone and removes the manifest. `None` if the partition is no longer
    /// to be deleted.
    fn tombstone(
        &self,
        marker: &DatasetMarker,
        key: HourKey,
        holds: &HoldSet,
        opts: &SweepOptions,
        plan: Tombstone,
    ) -> Result<Option<Tombstone>> {
        let dataset = plan.dataset.clone();
        let _lock = lock_dataset(&self.storage, &dataset)?;
        let mut scratch = SweepReport::default();
        let Some(t) = self.plan(&dataset, marker, key, holds, opts, &mut scratch)? else {
            return Ok(None);
        };
        let mut text = serde_json::to_vec_pretty(&t).expect("tombstone serialises");
        text.push(b'\n');
        self.storage
            .put(&tombstone_path(&dataset, key), Bytes::from(text))?;
        self.step(Step::Tombstoned);
        self.storage.delete(&manifest_path(&dataset, key))?;
        self.step(Step::ManifestRemoved);
        Ok(Some(t))
    }

    /// Undoes a tombstone whose partition is still whole (every file it lists is there):
    /// puts the manifest back if it was removed, then removes the tombstone. Under the
    /// dataset's lock. `false` (nothing changed) if any file is already gone.
    fn restore(&self, t: &Tombstone, key: HourKey, tomb: &Path) -> Result<bool> {
        let _lock = lock_dataset(&self.storage, &t.dataset)?;
        let prefix = partition_path(&t.dataset, key);
        for f in &t.files {
            if !self
                .storage
                .exists(&Path::from(format!("{prefix}/{}", f.name)))?
            {
                return Ok(false);
            }
        }
        let mpath = manifest_path(&t.dataset, key);
        if t.manifest == ManifestState::Ok && !self.storage.exists(&mpath)? {
            let Some(m) = &t.saved_manifest else {
                return Ok(false);
            };
            let mut text = serde_json::to_vec_pretty(m).expect("manifest serialises");
            text.push(b'\n');
            self.storage.put(&mpath, Bytes::from(text))?;
        }
        self.storage.delete(tomb)?;
        Ok(true)
    }

    /// Removes the manifest of a tombstoned partition (recovery), under the dataset's lock.
    fn hide(&self, dataset: &str, key: HourKey) -> Result<()> {
        let _lock = lock_dataset(&self.storage, dataset)?;
        self.storage.delete(&manifest_path(dataset, key))?;
        self.step(Step::ManifestRemoved);
        Ok(())
    }

    /// Deletes a tombstoned partition's files, then anything else still under it (nothing
    /// can be added: commits refuse tombstoned partitions), and proves it empty.
    fn remove_files(&self, t: &Tombstone, key: HourKey) -> Result<String> {
        let prefix = partition_path(&t.dataset, key);
        for f in &t.files {
            self.storage
                .delete(&Path::from(format!("{prefix}/{}", f.name)))?;
            self.step(Step::FileDeleted);
        }
        for o in self.storage.list(&prefix)? {
            self.storage.delete(&o.location)?;
            self.step(Step::FileDeleted);
        }
        if let Some(root) = self.storage.local_root() {
            // Temporary files of writes a crash interrupted (`name#N`) are invisible to
            // object_store's listing; they go with the directory.
            let dir = root.join(prefix.as_ref());
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    if let Some(day) = dir.parent() {
                        let _ = std::fs::remove_dir(day); // only if now empty
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(RetentionError::Write {
                        path: dir.display().to_string(),
                        source,
                    });
                }
            }
        }
        let left = self.storage.list(&prefix)?.len();
        Ok(if left == 0 {
            "gone".into()
        } else {
            format!("{left} objects remain")
        })
    }

    /// Appends the receipts of `pending` as one segment, then removes their tombstones.
    fn flush(
        &self,
        log: &ReceiptLog,
        pending: &mut Vec<Pending>,
        opts: &SweepOptions,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let entries: Vec<NewEntry> = pending.iter().map(|p| receipt(p, opts)).collect();
        log.append(&entries)?;
        self.step(Step::Receipted);
        for p in pending.drain(..) {
            let key = p.tombstone.key().expect("tombstones have valid keys");
            self.storage
                .delete(&tombstone_path(&p.tombstone.dataset, key))?;
            self.step(Step::TombstoneRemoved);
        }
        Ok(())
    }
}

fn deleted_of(t: &Tombstone, recovered: bool) -> Deleted {
    Deleted {
        dataset: t.dataset.clone(),
        partition: format!("dt={}/hour={:02}", t.dt, t.hour),
        expires_at: t.expires_at.clone(),
        manifest: t.manifest,
        rows: t.rows,
        bytes: t.files.iter().map(|f| f.bytes).sum(),
        files: t.files.len(),
        recovered,
    }
}

fn receipt(p: &Pending, opts: &SweepOptions) -> NewEntry {
    let t = &p.tombstone;
    let mut d = Map::new();
    let mut put = |k: &str, v: Value| {
        d.insert(k.into(), v);
    };
    put("tombstone_id", t.id.clone().into());
    put("sweep_id", opts.sweep_id.clone().into());
    put("dataset", t.dataset.clone().into());
    put(
        "partition",
        format!("dt={}/hour={:02}", t.dt, t.hour).into(),
    );
    put("partition_start", t.partition_start.clone().into());
    put("expires_at", t.expires_at.clone().into());
    put("retention_days", t.retention_days.into());
    put("tombstoned_at", t.tombstoned_at.clone().into());
    put("deleted_at", format_rfc3339(p.deleted_at).into());
    put(
        "manifest",
        serde_json::to_value(t.manifest).expect("state serialises"),
    );
    put("rows", t.rows.map_or(Value::Null, Value::from));
    put("bytes", t.files.iter().map(|f| f.bytes).sum::<u64>().into());
    put(
        "files",
        serde_json::to_value(&t.files).expect("files serialise"),
    );
    if !t.delayed_by.is_empty() {
        put(
            "delayed_by_holds",
            serde_json::to_value(&t.delayed_by).expect("holds serialise"),
        );
    }
    put("verification", p.verification.clone().into());
    if p.recovered {
        put("recovered", true.into());
    }
    NewEntry {
        at: format_rfc3339(p.deleted_at),
        action: "partition_deleted".into(),
        operator: t.operator.clone(),
        details: d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_parse_strictly() {
        let k = partition_key("dt=2026-11-27", "hour=05").unwrap();
        assert_eq!(k.dir(), "dt=2026-11-27/hour=05");
        for (d, h) in [
            ("dt=2026-11-31", "hour=05"),
            ("dt=2026-11-27", "hour=24"),
            ("2026-11-27", "hour=05"),
            ("dt=2026-1-27", "hour=05"),
            ("dt=2026-11-27", "h=05"),
        ] {
            assert!(partition_key(d, h).is_none(), "{d} {h}");
        }
    }
}

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
//! first, without writing a receipt twice, unless a hold placed since covers the partition
//! (then it is restored from the tombstone's copy of the manifest while still whole, or kept
//! as it is until the hold ends). Only an expired, unheld partition ever gets a tombstone, so
//! no interruption can lead to deleting anything unexpired. A storage failure on one
//! partition is reported and the sweep goes on; the receipts of what was deleted are written
//! even when the sweep then fails.
//!
//! The sweep reads only what can have expired: per dataset it lists the day directories
//! (cheap), visits the days whose first hour could have expired under the shortest retention
//! its partitions may carry (the marker's floor), and stops at the first day that cannot. Its
//! cost grows with the number of expired partitions, not with the data kept. While a floor
//! below the retention is set, the sweep also checks whether any partition still needs it and
//! drops it when none does.

use std::collections::BTreeSet;

use bytes::Bytes;
use logveil_model::HourKey;
use logveil_model::time::{MICROS_PER_HOUR, days_micros, format_rfc3339, parse_rfc3339};
use logveil_sink::journal::{CHECKPOINTS_DIR, JournalState};
use logveil_sink::lease::Exclusive;
use logveil_sink::manifest::{
    DatasetMarker, MANIFEST_NAME, Manifest, TOMBSTONES_DIR, lock_dataset, manifest_path,
    partition_expiry, partition_path, raise_floor, tombstone_path,
};
use logveil_sink::{SinkError, Storage};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::holds::{Hold, HoldSet};
use crate::receipts::{NewEntry, ReceiptLog};
use crate::{Result, RetentionError};

/// The root's lock (a file lock on local disk, a lease on object storage): one sweep, or one
/// erasure (`logveil subject erase`, which shares the receipt chain and the partitions), at a
/// time.
pub const ROOT_LOCK: &str = "_retention/sweep.lock";

/// How old (by the real clock) a staged upload must be before the sweep removes it, if no
/// pending commit lists it. A followed source publishes within a commit interval, but a
/// batch `ingest` keeps its finished files staged until its end: a week leaves room for the
/// longest backfill, and an orphan of a killed or fenced process is gone a week later.
pub const STAGING_MAX_AGE_MICROS: i64 = 7 * 24 * MICROS_PER_HOUR;

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
    /// The real time when the sweep started (µs), recorded beside `now` in receipts.
    pub wall_clock: i64,
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
    /// Datasets whose retention floor was raised (see [`raise_floor`]).
    pub floors_raised: Vec<String>,
    /// Staged uploads removed (or, in a dry run, to be removed): older than
    /// [`STAGING_MAX_AGE_MICROS`], listed by no pending commit. Never visible to readers, but
    /// rows all the same (and, on object storage, paid for).
    pub staged_removed: u64,
}

/// `dt=YYYY-MM-DD` + `hour=HH` → the partition. Only the canonical spelling the sink
/// writes is accepted (`hour=5` or `dt=+202-…` are not partitions).
pub fn partition_key(dt: &str, hour: &str) -> Option<HourKey> {
    HourKey::from_dirs(dt, hour)
}

/// The last path segment of a listed prefix.
fn last_segment(p: &Path) -> String {
    p.parts()
        .next_back()
        .map(|x| x.as_ref().to_string())
        .unwrap_or_default()
}

/// The part of `location` below `prefix` (`None` for the prefix itself, e.g. a zero-byte
/// "directory" object some S3 tools create, or for anything outside it).
pub(crate) fn below(location: &Path, prefix: &Path) -> Option<String> {
    let parts: Vec<String> = location
        .prefix_match(prefix)?
        .map(|p| p.as_ref().to_string())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether a top-level directory can be a dataset: the names logveil writes (letters,
/// digits, `_`, `-`). Anything else (`lost+found`, `.snapshot`) is not looked at.
fn dataset_like(name: &str) -> bool {
    !name.is_empty()
        && name != "_retention"
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Datasets of a root: its top-level directories that look like datasets, with their
/// markers. A directory without a readable marker is returned with the error (if it holds
/// partitions, or cannot be listed).
pub fn datasets(storage: &Storage) -> Result<Vec<(String, Result<DatasetMarker, String>)>> {
    let top = storage.list_level(&Path::from(""))?;
    let mut out = Vec::new();
    for p in top.common_prefixes {
        let name = last_segment(&p);
        if !dataset_like(&name) {
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
        if marker.is_err() {
            match has_partitions(storage, &name) {
                Ok(false) => continue, // not a dataset at all
                Ok(true) => {}
                Err(e) => {
                    out.push((name, Err(format!("cannot list it: {e}"))));
                    continue;
                }
            }
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
pub type Days = Vec<(String, HourKey)>;

/// The day directories of a dataset, and the `dt=…` directories that are not valid dates.
pub fn days(storage: &Storage, dataset: &str) -> Result<(Days, Vec<String>)> {
    let mut out = Vec::new();
    let mut odd = Vec::new();
    for p in storage.list_level(&Path::from(dataset))?.common_prefixes {
        let dt = last_segment(&p);
        match partition_key(&dt, "hour=00") {
            Some(key) => out.push((dt, key)),
            None if dt.starts_with("dt=") => odd.push(p.to_string()),
            None => {} // _staging and the like
        }
    }
    out.sort_by_key(|d| d.1);
    Ok((out, odd))
}

/// Hour partitions of one day directory, ascending, and the directories in it that are not
/// partitions.
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

/// A deletion done and waiting for its receipt.
struct Pending {
    tombstone: Tombstone,
    recovered: bool,
}

/// The state of one sweep.
struct Run<'r> {
    opts: &'r SweepOptions,
    holds: HoldSet,
    log: ReceiptLog,
    report: SweepReport,
    pending: Vec<Pending>,
    /// Partitions with a tombstone (done in the recovery pass).
    tombstoned: BTreeSet<(String, HourKey)>,
    /// The root's lock (none for a dry run).
    lock: Option<Exclusive>,
}

impl Run<'_> {
    /// Reports directories that are not partitions (left as they are).
    fn odd(&mut self, paths: Vec<String>, what: &str) {
        for path in paths {
            self.report.problems.push(Problem {
                path,
                what: what.to_string(),
                needs_attention: true,
            });
        }
    }

    /// Records a failure that leaves something as it is; the sweep goes on.
    fn attention(&mut self, path: String, e: impl std::fmt::Display) {
        self.report.problems.push(Problem {
            path,
            what: format!("{e}; left as it is (the next sweep tries again)"),
            needs_attention: true,
        });
    }
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

    /// Runs one sweep. A partition that cannot be dealt with (a storage error, an odd
    /// directory) becomes a problem in the report and the sweep goes on; the receipts of
    /// every partition deleted are written even if the sweep then fails.
    pub fn sweep(&self, opts: &SweepOptions) -> Result<SweepReport> {
        let lock = self.lock_root(opts.dry_run)?;
        let mut run = Run {
            lock,
            opts,
            holds: HoldSet::load(&self.storage)?,
            log: ReceiptLog::new(self.storage.clone()),
            report: SweepReport {
                sweep_id: opts.sweep_id.clone(),
                now: format_rfc3339(opts.now),
                dry_run: opts.dry_run,
                ..SweepReport::default()
            },
            pending: Vec::new(),
            tombstoned: BTreeSet::new(),
        };
        let swept = self
            .recover(&mut run)
            .and_then(|()| self.sweep_datasets(&mut run))
            .and_then(|()| self.clean_staging(&mut run));
        let flushed = self.flush(&mut run);
        swept?;
        flushed?;
        let report = run.report;
        if !opts.dry_run {
            let status = serde_json::json!({
                "format": "logveil-last-sweep",
                "sweep_id": opts.sweep_id,
                "finished_at": format_rfc3339(opts.now),
                "recorded_at": format_rfc3339(opts.wall_clock),
                "deleted": report.deleted.len(),
                "held": report.held.len(),
                "problems": report.problems.len(),
                "needs_attention": report.problems.iter().filter(|p| p.needs_attention).count(),
            });
            let mut text = serde_json::to_vec_pretty(&status).expect("status serialises");
            text.push(b'\n');
            self.storage
                .put(&Path::from(LAST_SWEEP_PATH), Bytes::from(text))?;
        }
        Ok(report)
    }

    /// Step one of a sweep: finishes what interrupted sweeps started. First it drops the
    /// tombstones whose receipts were written (so no later flush can receipt them again),
    /// then it completes the others, unless a hold placed since protects them.
    fn recover(&self, run: &mut Run) -> Result<()> {
        // Every receipt segment, not only the last: an erasure (`logveil subject erase`) may
        // have appended one after the interrupted sweep's. Read only when there is
        // something to recover.
        let tombstones = self.storage.list(&Path::from(TOMBSTONES_DIR))?;
        let receipted: BTreeSet<String> = if tombstones.is_empty() {
            BTreeSet::new()
        } else {
            run.log
                .verify()?
                .iter()
                .filter_map(|e| e.details.get("tombstone_id")?.as_str().map(str::to_string))
                .collect()
        };
        let mut open = Vec::new();
        for o in tombstones {
            let t = match self.storage.get(&o.location) {
                Ok(b) => b.and_then(|b| serde_json::from_slice::<Tombstone>(&b).ok()),
                Err(e) => {
                    run.attention(o.location.to_string(), e);
                    continue;
                }
            };
            let Some((t, key)) = t.and_then(|t| t.key().map(|k| (t, k))) else {
                run.report.problems.push(Problem {
                    path: o.location.to_string(),
                    what: "unreadable tombstone: the partition it names may be half-deleted; inspect it, then delete the tombstone and sweep again".into(),
                    needs_attention: true,
                });
                continue;
            };
            run.tombstoned.insert((t.dataset.clone(), key));
            if receipted.contains(&t.id) {
                run.report.deleted.push(deleted_of(&t, true));
                if !run.opts.dry_run {
                    match self.storage.delete(&o.location) {
                        Ok(()) => self.step(Step::TombstoneRemoved),
                        Err(e) => run.attention(o.location.to_string(), e),
                    }
                }
            } else {
                open.push((o.location, t, key));
            }
        }
        for (loc, t, key) in open {
            let blocking = run.holds.blocking(
                Some(&t.dataset),
                key.start_micros(),
                key.end_micros(),
                run.opts.now,
            );
            if !blocking.is_empty() {
                run.report.held.push(Held {
                    dataset: t.dataset.clone(),
                    partition: key.dir(),
                    expires_at: t.expires_at.clone(),
                    holds: blocking.iter().map(|h| h.id.clone()).collect(),
                });
                if run.opts.dry_run {
                    continue;
                }
                match self.restore(&t, key, &loc) {
                    Ok(true) => {}
                    Ok(false) => run.report.problems.push(Problem {
                        path: loc.to_string(),
                        what: "held, but an interrupted sweep had already deleted part of it; the rest is kept and its deletion completes when the hold ends".into(),
                        needs_attention: false,
                    }),
                    Err(e) => run.attention(loc.to_string(), e),
                }
                continue;
            }
            run.report.deleted.push(deleted_of(&t, true));
            if run.opts.dry_run {
                continue;
            }
            match self
                .hide(&t.dataset, key)
                .and_then(|()| self.remove_files(&t, key))
            {
                Ok(()) => {
                    run.pending.push(Pending {
                        tombstone: t,
                        recovered: true,
                    });
                    if run.pending.len() >= BATCH {
                        self.flush(run)?;
                    }
                }
                Err(e) => {
                    run.report.deleted.pop();
                    run.attention(format!("{}/{}", t.dataset, key.dir()), e);
                }
            }
        }
        Ok(())
    }

    /// Step two: new expiries, dataset by dataset.
    fn sweep_datasets(&self, run: &mut Run) -> Result<()> {
        for (dataset, marker) in datasets(&self.storage)? {
            let marker = match marker {
                Ok(m) => m,
                Err(what) => {
                    run.report.problems.push(Problem {
                        path: format!("{dataset}/"),
                        what,
                        needs_attention: true,
                    });
                    continue;
                }
            };
            let floor = days_micros(marker.floor_days());
            let (days, odd) = match days(&self.storage, &dataset) {
                Ok(d) => d,
                Err(e) => {
                    run.attention(format!("{dataset}/"), e);
                    continue;
                }
            };
            run.odd(odd, "not a day partition (dt=YYYY-MM-DD); left as it is");
            for (dt, first) in days {
                if first.start_micros() + MICROS_PER_HOUR + floor > run.opts.now {
                    break; // this day and every later one are too young
                }
                let (keys, odd) = match hours(&self.storage, &dataset, &dt) {
                    Ok(h) => h,
                    Err(e) => {
                        run.attention(format!("{dataset}/{dt}/"), e);
                        continue;
                    }
                };
                run.odd(
                    odd,
                    "not an hour partition (hour=00 … hour=23); left as it is",
                );
                for key in keys {
                    if key.end_micros() + floor > run.opts.now {
                        break;
                    }
                    if run.tombstoned.contains(&(dataset.clone(), key)) {
                        continue;
                    }
                    run.report.partitions_examined += 1;
                    // A lease on object storage that could not be renewed may be another
                    // sweep's now: stop (the next sweep finishes what this one started).
                    if let Some(l) = &run.lock {
                        l.check()?;
                    }
                    if let Err(e) = self.sweep_partition(run, &dataset, &marker, key) {
                        run.attention(format!("{dataset}/{}/", key.dir()), e);
                    }
                    if run.pending.len() >= BATCH {
                        self.flush(run)?;
                    }
                }
            }
            // A floor below the retention makes every sweep look further back; once the
            // partitions written under the shorter retention are gone it is not needed.
            if !run.opts.dry_run && marker.floor_days() < marker.retention_days {
                match raise_floor(&self.storage, &marker) {
                    Ok(true) => run.report.floors_raised.push(dataset.clone()),
                    Ok(false) => {}
                    Err(e) => run.attention(format!("{dataset}/_dataset.json"), e),
                }
            }
        }
        Ok(())
    }

    /// Step three: staged uploads no commit will publish (a process killed between writing a
    /// file and its commit's journal entry, or fenced by another instance). Those a pending
    /// epoch of any source's journal lists are kept for its recovery; an erasure's while one
    /// is pending; anything younger than [`STAGING_MAX_AGE_MICROS`] (it may be in use).
    fn clean_staging(&self, run: &mut Run) -> Result<()> {
        let mut listed = std::collections::HashSet::new();
        for o in self.storage.list(&Path::from(CHECKPOINTS_DIR))? {
            if !o.location.as_ref().ends_with(".json") {
                continue;
            }
            let Some(bytes) = self.storage.get(&o.location)? else {
                continue;
            };
            match serde_json::from_slice::<JournalState>(&bytes) {
                Ok(j) => listed.extend(
                    j.pending
                        .into_iter()
                        .flat_map(|p| p.files)
                        .filter_map(|f| f.staged),
                ),
                Err(e) => {
                    // Line and column only: serde's message may quote the journal's values.
                    run.attention(
                        o.location.to_string(),
                        format!(
                            "not a readable journal (JSON error at line {}, column {}): staged uploads are not cleaned while it is not",
                            e.line(),
                            e.column()
                        ),
                    );
                    return Ok(());
                }
            }
        }
        let erasing = !self
            .storage
            .list(&Path::from("_retention/erasures/pending"))?
            .is_empty();
        for (dataset, _) in datasets(&self.storage)? {
            for o in self
                .storage
                .list(&Path::from(format!("{dataset}/_staging")))?
            {
                let age = run.opts.wall_clock - o.last_modified.timestamp_micros();
                let erasure = o
                    .location
                    .filename()
                    .is_some_and(|n| n.starts_with("erase-"));
                if age < STAGING_MAX_AGE_MICROS
                    || listed.contains(o.location.as_ref())
                    || (erasing && erasure)
                {
                    continue;
                }
                if !run.opts.dry_run {
                    self.storage.delete(&o.location)?;
                }
                run.report.staged_removed += 1;
            }
        }
        Ok(())
    }

    /// Decides on one partition and, unless this is a dry run, deletes it.
    fn sweep_partition(
        &self,
        run: &mut Run,
        dataset: &str,
        marker: &DatasetMarker,
        key: HourKey,
    ) -> Result<()> {
        let plan = match self.plan(dataset, marker, key, &run.holds, run.opts)? {
            Decision::Keep => return Ok(()),
            Decision::Held(h) => {
                run.report.held.push(h);
                return Ok(());
            }
            Decision::Delete(t) => *t,
        };
        if run.opts.dry_run {
            note_manifest(run, &plan);
            run.report.deleted.push(deleted_of(&plan, false));
            return Ok(());
        }
        let Some(t) = self.tombstone(dataset, marker, key, &run.holds, run.opts)? else {
            return Ok(()); // decided otherwise under the lock
        };
        note_manifest(run, &t);
        // From here the tombstone stands: an error leaves it for the next sweep.
        self.remove_files(&t, key)?;
        run.report.deleted.push(deleted_of(&t, false));
        run.pending.push(Pending {
            tombstone: t,
            recovered: false,
        });
        Ok(())
    }

    /// One sweep (or erasure, `logveil subject erase`) at a time per root: a file lock on
    /// local disk, a lease on object storage (`logveil_sink::lease`).
    fn lock_root(&self, dry_run: bool) -> Result<Option<Exclusive>> {
        if dry_run {
            return Ok(None);
        }
        match self.storage.exclusive(ROOT_LOCK)? {
            Ok(l) => Ok(Some(l)),
            Err(who) => Err(RetentionError::Usage(format!(
                "another retention sweep or erasure is running on {} ({who}); let it finish (a killed one releases its lock)",
                self.storage.label()
            ))),
        }
    }

    /// Decides on one partition without changing anything.
    fn plan(
        &self,
        dataset: &str,
        marker: &DatasetMarker,
        key: HourKey,
        holds: &HoldSet,
        opts: &SweepOptions,
    ) -> Result<Decision> {
        let (state, manifest) = read_manifest(&self.storage, dataset, key)?;
        let expiry = partition_expiry(
            key,
            marker.retention_days,
            manifest.as_ref().and_then(Manifest::expires_micros),
        );
        if expiry > opts.now {
            return Ok(Decision::Keep);
        }
        let blocking = holds.blocking(
            Some(dataset),
            key.start_micros(),
            key.end_micros(),
            opts.now,
        );
        if !blocking.is_empty() {
            return Ok(Decision::Held(Held {
                dataset: dataset.to_string(),
                partition: key.dir(),
                expires_at: format_rfc3339(expiry),
                holds: blocking.iter().map(|h| h.id.clone()).collect(),
            }));
        }
        let prefix = partition_path(dataset, key);
        let mut files = Vec::new();
        for o in self.storage.list(&prefix)? {
            let Some(name) = below(&o.location, &prefix) else {
                continue;
            };
            if name == MANIFEST_NAME && state == ManifestState::Ok {
                continue; // removed as step 1, not as a file
            }
            let listed_in = manifest
                .as_ref()
                .and_then(|m| m.files.iter().find(|f| f.name == name));
            files.push(TombFile {
                bytes: o.size,
                blake3: listed_in.map(|f| f.blake3.clone()),
                rows: listed_in.map(|f| f.rows),
                in_manifest: listed_in.is_some(),
                name,
            });
        }
        if files.is_empty() && state != ManifestState::Ok {
            return Ok(Decision::Keep); // nothing left (an empty directory)
        }
        Ok(Decision::Delete(Box::new(Tombstone {
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
        })))
    }

    /// Under the dataset's lock: decides again (an ingest may have appended meanwhile),
    /// writes the tombstone and removes the manifest. `None` if the partition is no longer
    /// to be deleted.
    fn tombstone(
        &self,
        dataset: &str,
        marker: &DatasetMarker,
        key: HourKey,
        holds: &HoldSet,
        opts: &SweepOptions,
    ) -> Result<Option<Tombstone>> {
        let _lock = lock_dataset(&self.storage, dataset)?;
        let Decision::Delete(t) = self.plan(dataset, marker, key, holds, opts)? else {
            return Ok(None);
        };
        let t = *t;
        let mut text = serde_json::to_vec_pretty(&t).expect("tombstone serialises");
        text.push(b'\n');
        self.storage
            .put(&tombstone_path(dataset, key), Bytes::from(text))?;
        self.step(Step::Tombstoned);
        self.storage.delete(&manifest_path(dataset, key))?;
        self.step(Step::ManifestRemoved);
        Ok(Some(t))
    }

    /// Undoes a tombstone whose partition is still whole (every data file it lists is
    /// there): puts the manifest back if it was removed, then removes the tombstone. Under
    /// the dataset's lock. `false` (nothing changed) if any file is already gone.
    fn restore(&self, t: &Tombstone, key: HourKey, tomb: &Path) -> Result<bool> {
        let _lock = lock_dataset(&self.storage, &t.dataset)?;
        let prefix = partition_path(&t.dataset, key);
        for f in t.files.iter().filter(|f| f.name != MANIFEST_NAME) {
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
            // A manifest written meanwhile (object storage has no dataset lock) is newer
            // than the tombstone's copy: the saved entries join it rather than replace it.
            self.storage.update(&mpath, |current| {
                let Some(current) = current else {
                    return Ok(Some(m.to_bytes()));
                };
                let mut now = Manifest::parse(&mpath, current)?;
                let missing: Vec<_> = m
                    .files
                    .iter()
                    .filter(|f| !now.files.iter().any(|x| x.name == f.name))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(None);
                }
                now.files.extend(missing);
                now.recount();
                Ok(Some(now.to_bytes()))
            })?;
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
    /// can be added: commits refuse tombstoned partitions), and proves it empty; if it is
    /// not, the tombstone stays and the next sweep tries again.
    fn remove_files(&self, t: &Tombstone, key: HourKey) -> Result<()> {
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
        if left > 0 {
            return Err(RetentionError::Usage(format!(
                "{left} objects are still under {prefix} after deleting it (another writer?)"
            )));
        }
        Ok(())
    }

    /// Appends the receipts of the pending deletions as one segment, then removes their
    /// tombstones.
    fn flush(&self, run: &mut Run) -> Result<()> {
        if run.pending.is_empty() {
            return Ok(());
        }
        let entries: Vec<NewEntry> = run.pending.iter().map(|p| receipt(p, run.opts)).collect();
        run.log.append(&entries)?;
        self.step(Step::Receipted);
        for p in run.pending.drain(..) {
            let key = p.tombstone.key().expect("tombstones have valid keys");
            let path = tombstone_path(&p.tombstone.dataset, key);
            match self.storage.delete(&path) {
                Ok(()) => self.step(Step::TombstoneRemoved),
                // Receipted: the next sweep only removes the tombstone.
                Err(e) => run.report.problems.push(Problem {
                    path: path.to_string(),
                    what: format!("{e}; receipted, the next sweep removes it"),
                    needs_attention: false,
                }),
            }
        }
        Ok(())
    }
}

/// What to do with a partition.
enum Decision {
    Keep,
    Held(Held),
    Delete(Box<Tombstone>),
}

/// Reports a partition deleted (or to be) without a readable manifest: the rule that judged
/// it, not a failure.
fn note_manifest(run: &mut Run, t: &Tombstone) {
    if t.manifest == ManifestState::Ok {
        return;
    }
    run.report.problems.push(Problem {
        path: format!(
            "{}/dt={}/hour={:02}/{MANIFEST_NAME}",
            t.dataset, t.dt, t.hour
        ),
        what: format!(
            "manifest {}: judged by its path and the dataset's retention ({} days); {}",
            if t.manifest == ManifestState::Missing {
                "missing"
            } else {
                "unreadable"
            },
            t.retention_days,
            if run.opts.dry_run {
                "would be deleted"
            } else {
                "deleted, with a receipt saying so"
            }
        ),
        needs_attention: false,
    });
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
    put("deleted_at", format_rfc3339(opts.now).into());
    put("recorded_at", format_rfc3339(opts.wall_clock).into());
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
    // remove_files listed the partition after deleting it and found nothing.
    put("verification", "gone".into());
    if p.recovered {
        put("recovered", true.into());
    }
    NewEntry {
        at: format_rfc3339(opts.now),
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
            ("dt=2026-11-27", "hour=5"),
            ("dt=2026-11-27", "hour=+5"),
            ("dt=+202-11-27", "hour=05"),
            ("dt=2026-11-27", "hour=005"),
        ] {
            assert!(partition_key(d, h).is_none(), "{d} {h}");
        }
    }
}

//! Partition manifests: `<dataset>/dt=…/hour=…/_manifest.json`.
//!
//! A manifest says what a partition holds and when it expires: dataset, partition bounds,
//! `expires_at` (partition end + the dataset's retention), every file with its row count,
//! size, BLAKE3 checksum and time range, the key ids that made its pseudonyms, the schema and
//! logveil versions. The leading underscore keeps DuckDB, Spark and Polars from reading it as
//! data. Manifests are rewritten whole and atomically (staged, fsynced, renamed) after the
//! files they list are visible; concurrent local writers (ingest runs, the retention sweep)
//! serialise on a per-dataset lock file.
//!
//! [`commit`] is how files enter a partition: under the lock it refuses partitions that are
//! expired or being deleted (a tombstone in `_retention/tombstones/`), so late data never
//! resurrects a swept partition, then publishes the files and rewrites the manifest.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use logveil_model::time::{days_micros, format_rfc3339};
use logveil_model::{DatasetKind, HourKey, SCHEMA_VERSION};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::storage::{Locked, Storage};
use crate::writer::WrittenFile;
use crate::{Result, SinkError};

/// A dataset: its name (directory), kind (schema) and retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSpec {
    pub name: String,
    pub kind: DatasetKind,
    pub retention_days: u32,
    /// Whether `retention_days` was configured (true) or is the kind's default (false). A
    /// default never overrides the retention recorded for an existing dataset.
    pub retention_explicit: bool,
}

impl DatasetSpec {
    pub fn with_defaults(kind: DatasetKind) -> DatasetSpec {
        DatasetSpec {
            name: kind.default_name().to_string(),
            kind,
            retention_days: kind.default_retention_days(),
            retention_explicit: false,
        }
    }
}

/// Facts about the run that wrote files.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: String,
    /// The key ring's epochs: (start in µs, key id), oldest first; the first starts at
    /// `i64::MIN`. A file's key is the one of its partition's epoch.
    pub key_epochs: Vec<(i64, String)>,
    pub dev_key: bool,
    pub now_micros: i64,
}

impl RunInfo {
    /// Id of the key whose epoch holds `ts`.
    pub fn key_id_at(&self, ts: i64) -> Option<String> {
        let i = self.key_epochs.partition_point(|(from, _)| *from <= ts);
        self.key_epochs
            .get(i.checked_sub(1)?)
            .map(|(_, id)| id.clone())
    }
}

/// One file of a partition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub blake3: String,
    pub min_ts: String,
    pub max_ts: String,
    pub run_id: String,
    pub key_ids: Vec<String>,
    pub dev_key: bool,
    pub written_at: String,
}

/// The manifest of one partition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub manifest_version: u32,
    pub dataset: String,
    pub kind: String,
    pub dt: String,
    pub hour: u32,
    pub partition_start: String,
    pub partition_end: String,
    pub retention_days: u32,
    pub expires_at: String,
    pub schema_version: u32,
    pub logveil_version: String,
    pub key_ids: Vec<String>,
    pub dev_key: bool,
    pub rows: u64,
    pub bytes: u64,
    pub files: Vec<ManifestFile>,
    pub updated_at: String,
    /// For a rollup's partition (kind `rollup`): how it was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<RollupFacts>,
}

/// How a rollup partition was computed (see the `logveil-rollup` crate). Its one file is
/// replaced whole whenever its inputs change, so these facts describe that file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RollupFacts {
    /// The raw dataset it aggregates.
    pub source: String,
    /// `hour` or `day`.
    pub window: String,
    /// Fewest distinct subjects a published row stands for.
    pub k: u32,
    /// BLAKE3 of the rollup's definition (columns, subject, k…): a changed definition
    /// recomputes every window whose raw data still exists.
    pub definition: String,
    /// BLAKE3 over the input files (partition, name, checksum): unchanged inputs are not
    /// recomputed, so replays never count twice.
    pub inputs: String,
    /// Raw partitions and rows read.
    pub input_partitions: u32,
    /// Those partitions (`dt=…/hour=…`): a window missing one of them later (swept) is
    /// never recomputed from the rest.
    #[serde(default)]
    pub partitions: Vec<String>,
    pub input_rows: u64,
    /// Raw rows left out because they lack consent to statistics (session events).
    pub rows_without_consent: u64,
    /// Groups published as their own row.
    pub groups: u64,
    /// Groups with fewer than `k` subjects: merged into the `other` row, or dropped with it
    /// when even the merged row has fewer than `k`.
    pub groups_suppressed: u64,
    /// Whether an `other` row was published.
    pub other_row: bool,
    /// Events in no published row (their group and the `other` row both fell under `k`).
    pub events_suppressed: u64,
}

pub const MANIFEST_NAME: &str = "_manifest.json";

/// The longest retention a dataset may have: 100 years. Markers and manifests that record
/// more are not valid (a damaged number must never make everything look expired).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Where the retention sweep records partitions it is deleting (see the retention crate).
pub const TOMBSTONES_DIR: &str = "_retention/tombstones";

/// Path of a partition's manifest.
pub fn manifest_path(dataset: &str, key: HourKey) -> Path {
    Path::from(format!("{dataset}/{}/{MANIFEST_NAME}", key.dir()))
}

/// Directory (prefix) of a partition.
pub fn partition_path(dataset: &str, key: HourKey) -> Path {
    Path::from(format!("{dataset}/{}", key.dir()))
}

/// Path of the tombstone of a partition being deleted.
pub fn tombstone_path(dataset: &str, key: HourKey) -> Path {
    Path::from(format!(
        "{TOMBSTONES_DIR}/{dataset}/dt={}/hour={:02}.json",
        key.date(),
        key.hour()
    ))
}

impl Manifest {
    /// `expires_at` in µs, if it is a valid time.
    pub fn expires_micros(&self) -> Option<i64> {
        logveil_model::time::parse_rfc3339(self.expires_at.as_bytes())
    }

    /// Sets `rows` and `bytes` to the sums of the files listed.
    pub fn recount(&mut self) {
        self.rows = self.files.iter().map(|f| f.rows).sum();
        self.bytes = self.files.iter().map(|f| f.bytes).sum();
    }

    /// The manifest as it is written: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Bytes {
        let mut text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        text.push(b'\n');
        Bytes::from(text)
    }

    /// Reads and parses a manifest; `Ok(None)` if it does not exist.
    pub fn read(storage: &Storage, path: &Path) -> Result<Option<Manifest>> {
        let Some(bytes) = storage.get(path)? else {
            return Ok(None);
        };
        Manifest::parse(path, &bytes).map(Some)
    }

    /// Parses a manifest read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let m = serde_json::from_slice::<Manifest>(bytes).map_err(|e| SinkError::BadManifest {
            path: path.to_string(),
            what: format!("JSON error at line {}, column {}", e.line(), e.column()),
        })?;
        if m.retention_days > MAX_RETENTION_DAYS {
            return Err(SinkError::BadManifest {
                path: path.to_string(),
                what: format!(
                    "retention_days {} is more than {MAX_RETENTION_DAYS}",
                    m.retention_days
                ),
            });
        }
        Ok(m)
    }
}

/// When a partition expires: partition end + the dataset's retention, or earlier if its
/// manifest records an earlier expiry (written under a shorter retention). A shortened
/// retention thus applies to data already written; a lengthened one only to partitions
/// written (or appended to) after the change.
pub fn partition_expiry(key: HourKey, retention_days: u32, recorded: Option<i64>) -> i64 {
    let by_dataset = key.end_micros().saturating_add(days_micros(retention_days));
    recorded.map_or(by_dataset, |r| r.min(by_dataset))
}

/// Takes the dataset's lock (local disk only; held until the file is dropped). Ingest
/// commits and the retention sweep take it, so a partition is never appended to and
/// deleted at once.
pub fn lock_dataset(storage: &Storage, dataset: &str) -> Result<Option<std::fs::File>> {
    Ok(
        match storage.lock(&format!("{dataset}/_manifest.lock"), true)? {
            Locked::Held(f) => Some(f),
            Locked::Busy | Locked::NotLocal => None,
        },
    )
}

/// `<dataset>/_dataset.json`: what kind of rows a dataset holds, written on its first use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatasetMarker {
    pub format: String,
    pub dataset: String,
    pub kind: String,
    pub schema_version: u32,
    /// The dataset's retention: every write applies it to the partitions it touches.
    pub retention_days: u32,
    /// The shortest retention its partitions may still carry (absent: `retention_days`).
    /// Partitions written under it may expire before `retention_days` says; the sweep looks
    /// that far back, and drops the floor once no partition needs it ([`raise_floor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_floor_days: Option<u32>,
}

impl DatasetMarker {
    /// The shortest retention any partition of the dataset may carry.
    pub fn floor_days(&self) -> u32 {
        self.retention_floor_days
            .map_or(self.retention_days, |f| f.min(self.retention_days))
    }

    /// Reads `<dataset>/_dataset.json`; `Ok(None)` if the dataset has none.
    pub fn read(storage: &Storage, dataset: &str) -> Result<Option<DatasetMarker>> {
        let path = marker_path(dataset);
        let Some(bytes) = storage.get(&path)? else {
            return Ok(None);
        };
        DatasetMarker::parse(&path, &bytes).map(Some)
    }

    /// A marker's content, checked.
    fn parse(path: &Path, bytes: &[u8]) -> Result<DatasetMarker> {
        let m: DatasetMarker =
            serde_json::from_slice(bytes).map_err(|e| SinkError::BadManifest {
                path: path.to_string(),
                what: format!("JSON error at line {}, column {}", e.line(), e.column()),
            })?;
        let floor = m.retention_floor_days.unwrap_or(0);
        if m.retention_days > MAX_RETENTION_DAYS || floor > MAX_RETENTION_DAYS {
            return Err(SinkError::BadManifest {
                path: path.to_string(),
                what: format!(
                    "retention_days {} / retention_floor_days {floor}: at most {MAX_RETENTION_DAYS} days",
                    m.retention_days
                ),
            });
        }
        Ok(m)
    }

    fn to_bytes(&self) -> Bytes {
        let mut text = serde_json::to_vec_pretty(self).expect("marker serialises");
        text.push(b'\n');
        Bytes::from(text)
    }
}

/// Path of a dataset's marker.
pub fn marker_path(dataset: &str) -> Path {
    Path::from(format!("{dataset}/{DATASET_MARKER}"))
}

/// Name of the dataset marker inside the dataset's directory.
pub const DATASET_MARKER: &str = "_dataset.json";

/// What [`ensure_dataset`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnsuredDataset {
    /// The spec to write with (retention as recorded, unless explicitly changed).
    pub spec: DatasetSpec,
    /// `(old, new)` when an explicit setting changed the recorded retention.
    pub retention_changed: Option<(u32, u32)>,
}

/// Creates the dataset's marker, or checks that the dataset holds rows of `spec.kind` and of
/// this schema version, so that one dataset never mixes schemas. Retention is a property of
/// the dataset: a default retention adopts the recorded one; an explicit one that differs
/// replaces it (and is reported).
pub fn ensure_dataset(storage: &Storage, spec: &DatasetSpec) -> Result<EnsuredDataset> {
    let path = marker_path(&spec.name);
    // Serialised with commits and sweeps: a retention change never loses the floor. On
    // object storage the decision is made again on the marker as it is when written (a
    // conditional put), so instances starting together agree.
    let _lock = lock_dataset(storage, &spec.name)?;
    let mut out = None;
    storage.update(&path, |current| {
        let have = current
            .map(|b| DatasetMarker::parse(&path, b))
            .transpose()?;
        let mut want = DatasetMarker {
            format: "logveil-dataset".into(),
            dataset: spec.name.clone(),
            kind: spec.kind.as_str().into(),
            schema_version: SCHEMA_VERSION,
            retention_days: spec.retention_days,
            retention_floor_days: None,
        };
        let mut spec = spec.clone();
        let mut retention_changed = None;
        if let Some(have) = have {
            if have.kind != want.kind || have.schema_version != want.schema_version {
                return Err(SinkError::DatasetMismatch {
                    dataset: spec.name.clone(),
                    have: format!("{} rows, schema version {}", have.kind, have.schema_version),
                    want: format!("{} rows, schema version {}", want.kind, want.schema_version),
                });
            }
            if have.retention_days == spec.retention_days || !spec.retention_explicit {
                spec.retention_days = have.retention_days;
                out = Some(EnsuredDataset {
                    spec,
                    retention_changed,
                });
                return Ok(None);
            }
            retention_changed = Some((have.retention_days, spec.retention_days));
            want.retention_days = spec.retention_days;
            let floor = have.floor_days().min(spec.retention_days);
            want.retention_floor_days = (floor < spec.retention_days).then_some(floor);
        } else {
            // A marker lost and written again: partitions already there may have been
            // written under a shorter retention, which the sweep must still find.
            let floor = recorded_floor(storage, &spec.name)?.min(spec.retention_days);
            want.retention_floor_days = (floor < spec.retention_days).then_some(floor);
        }
        out = Some(EnsuredDataset {
            spec,
            retention_changed,
        });
        Ok(Some(want.to_bytes()))
    })?;
    Ok(out.expect("the marker was judged"))
}

/// The shortest retention recorded in the manifests already under `dataset` (`u32::MAX` when
/// there are none). Unreadable manifests are skipped: their partitions are judged by the
/// dataset's retention anyway.
fn recorded_floor(storage: &Storage, dataset: &str) -> Result<u32> {
    let mut floor = u32::MAX;
    for o in storage.list(&Path::from(dataset))? {
        if o.location.filename() == Some(MANIFEST_NAME)
            && let Ok(Some(m)) = Manifest::read(storage, &o.location)
        {
            floor = floor.min(m.retention_days);
        }
    }
    Ok(floor)
}

/// Sets a dataset's retention floor to what its partitions still need: the shortest
/// retention their manifests record, dropping the floor once none is shorter than the
/// dataset's retention (the partitions written under a shorter one are gone). `seen` is the
/// marker the caller judged by; if the marker changed since, nothing is done. Reads every
/// manifest of the dataset, under its lock. Returns whether the marker was rewritten.
pub fn raise_floor(storage: &Storage, seen: &DatasetMarker) -> Result<bool> {
    let _lock = lock_dataset(storage, &seen.dataset)?;
    let path = marker_path(&seen.dataset);
    // Conditional on the marker as read (object storage): an ingest that changed the
    // retention meanwhile wins, and this is decided again on its marker.
    storage.update(&path, |current| {
        let Some(mut m) = current
            .map(|b| DatasetMarker::parse(&path, b))
            .transpose()?
        else {
            return Ok(None);
        };
        if &m != seen {
            return Ok(None);
        }
        let needed = recorded_floor(storage, &m.dataset)?;
        let floor = (needed < m.retention_days).then_some(needed);
        if floor == m.retention_floor_days {
            return Ok(None);
        }
        m.retention_floor_days = floor;
        Ok(Some(m.to_bytes()))
    })
}

/// What [`commit`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Partitions whose files were published and recorded.
    pub partitions: usize,
    /// Partitions refused because they had expired at the run's `now`, or were being deleted
    /// by a retention sweep: `(partition, rows)`. Their files were discarded, never visible.
    pub expired: Vec<(HourKey, u64)>,
}

/// Commits finished files: under the dataset's lock, each partition that is neither expired
/// nor tombstoned gets its files published and its manifest rewritten (created as needed);
/// the files of the other partitions are discarded. On error, files not yet published are
/// left for the caller to [`discard`](crate::discard).
pub fn commit(
    storage: &Storage,
    spec: &DatasetSpec,
    files: &[WrittenFile],
    run: &RunInfo,
) -> Result<CommitReport> {
    commit_impl(storage, spec, files, run, true)
}

/// [`commit`] for files a journal records (see [`crate::journal`]): on error nothing is
/// removed, since the journal's recovery completes the commit from the staged files.
pub fn commit_recorded(
    storage: &Storage,
    spec: &DatasetSpec,
    files: &[WrittenFile],
    run: &RunInfo,
) -> Result<CommitReport> {
    commit_impl(storage, spec, files, run, false)
}

fn commit_impl(
    storage: &Storage,
    spec: &DatasetSpec,
    files: &[WrittenFile],
    run: &RunInfo,
    discard_on_error: bool,
) -> Result<CommitReport> {
    let mut by_part: BTreeMap<HourKey, Vec<&WrittenFile>> = BTreeMap::new();
    for f in files {
        by_part.entry(f.partition).or_default().push(f);
    }
    let mut report = CommitReport::default();
    if by_part.is_empty() {
        return Ok(report);
    }
    let _lock = lock_dataset(storage, &spec.name)?;
    let now = format_rfc3339(run.now_micros);
    let parts: Vec<(HourKey, Vec<&WrittenFile>)> = by_part.into_iter().collect();
    for (i, (key, files)) in parts.iter().enumerate() {
        match commit_partition(storage, spec, *key, files, run, &now) {
            Ok(None) => report.partitions += 1,
            Ok(Some(rows)) => report.expired.push((*key, rows)),
            Err(e) if !discard_on_error => return Err(e),
            Err(e) => {
                // This partition and the later ones were not recorded: none of their files
                // may stay (on object stores a finished upload is already visible).
                for (_, files) in &parts[i..] {
                    for f in files {
                        let _ = storage.discard(&f.upload);
                        let _ = storage.delete(&f.upload.dest);
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(report)
}

/// Commits one partition's files; `Some(rows)` if the partition was refused (expired or
/// tombstoned) and its files discarded.
fn commit_partition(
    storage: &Storage,
    spec: &DatasetSpec,
    key: HourKey,
    files: &[&WrittenFile],
    run: &RunInfo,
    now: &str,
) -> Result<Option<u64>> {
    let path = manifest_path(&spec.name, key);
    let existing = Manifest::read(storage, &path)?;
    let expiry = partition_expiry(
        key,
        spec.retention_days,
        existing.as_ref().and_then(Manifest::expires_micros),
    );
    if expiry <= run.now_micros || storage.exists(&tombstone_path(&spec.name, key))? {
        let owned: Vec<WrittenFile> = files.iter().map(|f| (*f).clone()).collect();
        // A journaled commit completed after a crash may find a file already published
        // into the refused partition: it is this commit's (names are unique per run), and
        // no manifest will ever list it.
        // (A file the manifest already lists stays: that commit got through.)
        let listed = |name: &str| {
            existing
                .as_ref()
                .is_some_and(|m| m.files.iter().any(|x| x.name == name))
        };
        for f in &owned {
            if !listed(&f.name)
                && f.upload
                    .staged
                    .as_ref()
                    .is_some_and(|st| !storage.exists(st).unwrap_or(true))
            {
                storage.delete(&f.upload.dest)?;
            }
        }
        crate::writer::discard(storage, &owned)?;
        return Ok(Some(files.iter().map(|f| f.rows).sum()));
    }
    // Publish; a file found already published (a commit completed after a crash) is
    // recorded as it is, and one that is neither staged nor published (discarded by an
    // earlier attempt) is not recorded at all.
    let mut present: Vec<&WrittenFile> = Vec::with_capacity(files.len());
    for f in files {
        match &f.upload.staged {
            Some(staged) if storage.exists(staged)? => {
                storage.publish(&f.upload)?;
                present.push(f);
            }
            _ if storage.exists(&f.upload.dest)? => present.push(f),
            _ => {}
        }
    }
    if present.is_empty() {
        return Ok(None);
    }
    // The manifest is read again as it is replaced: on object storage another instance may
    // have appended to the partition meanwhile (a conditional put refuses the stale copy).
    let mut first = Some(existing);
    storage.update(&path, |current| {
        let existing = match first.take() {
            // Unchanged since it was read above (local disk: under the lock).
            Some(e) if !storage.is_remote() => e,
            _ => current.map(|b| Manifest::parse(&path, b)).transpose()?,
        };
        Ok(Some(merged_manifest(
            existing, spec, key, &present, run, now,
        )))
    })?;
    Ok(None)
}

/// `existing` (or a new manifest) with `present` recorded in it, serialised.
fn merged_manifest(
    existing: Option<Manifest>,
    spec: &DatasetSpec,
    key: HourKey,
    present: &[&WrittenFile],
    run: &RunInfo,
    now: &str,
) -> Bytes {
    let mut m = match existing {
        Some(m) => m,
        None => Manifest {
            format: "logveil-manifest".into(),
            manifest_version: 1,
            dataset: spec.name.clone(),
            kind: spec.kind.as_str().into(),
            dt: key.date(),
            hour: key.hour(),
            partition_start: format_rfc3339(key.start_micros()),
            partition_end: format_rfc3339(key.end_micros()),
            retention_days: spec.retention_days,
            expires_at: String::new(),
            schema_version: SCHEMA_VERSION,
            logveil_version: String::new(),
            key_ids: Vec::new(),
            dev_key: false,
            rows: 0,
            bytes: 0,
            files: Vec::new(),
            updated_at: String::new(),
            rollup: None,
        },
    };
    for f in present {
        // Already recorded (a commit completed again after a crash): the entry stands, as an
        // erasure may have rewritten the file and its entry since.
        if m.files.iter().any(|x| x.name == f.name) {
            continue;
        }
        m.files.push(ManifestFile {
            name: f.name.clone(),
            rows: f.rows,
            bytes: f.bytes(),
            blake3: f.blake3().to_string(),
            min_ts: format_rfc3339(f.min_ts),
            max_ts: format_rfc3339(f.max_ts),
            run_id: run.run_id.clone(),
            key_ids: run.key_id_at(key.start_micros()).into_iter().collect(),
            dev_key: run.dev_key,
            written_at: now.to_string(),
        });
    }
    // The dataset's current retention applies to the whole partition.
    m.retention_days = spec.retention_days;
    m.expires_at = format_rfc3339(partition_expiry(key, spec.retention_days, None));
    m.schema_version = SCHEMA_VERSION;
    m.logveil_version = env!("CARGO_PKG_VERSION").into();
    m.key_ids = m
        .files
        .iter()
        .flat_map(|f| f.key_ids.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    m.dev_key = m.files.iter().any(|f| f.dev_key);
    m.recount();
    m.updated_at = now.to_string();
    m.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The marker's rules, through the conditional-put path object storage takes.
    #[test]
    fn a_marker_is_created_adopted_and_changed_only_explicitly() {
        let storage = Storage::object_store_remote(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "mem://".into(),
        );
        let spec = |days, explicit| DatasetSpec {
            retention_days: days,
            retention_explicit: explicit,
            ..DatasetSpec::with_defaults(DatasetKind::Access)
        };
        let e = ensure_dataset(&storage, &spec(30, false)).unwrap();
        assert_eq!((e.spec.retention_days, e.retention_changed), (30, None));
        // A default adopts the recorded retention; an explicit one replaces it, with a floor.
        let e = ensure_dataset(&storage, &spec(90, false)).unwrap();
        assert_eq!((e.spec.retention_days, e.retention_changed), (30, None));
        let e = ensure_dataset(&storage, &spec(90, true)).unwrap();
        assert_eq!(e.retention_changed, Some((30, 90)));
        let m = DatasetMarker::read(&storage, "access").unwrap().unwrap();
        assert_eq!((m.retention_days, m.retention_floor_days), (90, Some(30)));
        // No partition needs the floor any more: it is dropped, unless the marker moved on.
        let mut stale = m.clone();
        stale.retention_days = 7;
        assert!(!raise_floor(&storage, &stale).unwrap());
        assert!(raise_floor(&storage, &m).unwrap());
        let m = DatasetMarker::read(&storage, "access").unwrap().unwrap();
        assert_eq!(m.retention_floor_days, None);
        let other = DatasetSpec {
            name: "access".into(),
            ..DatasetSpec::with_defaults(DatasetKind::Session)
        };
        assert!(matches!(
            ensure_dataset(&storage, &other),
            Err(SinkError::DatasetMismatch { .. })
        ));
    }
}

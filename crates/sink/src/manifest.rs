//! Partition manifests: `<dataset>/dt=…/hour=…/_manifest.json`.
//!
//! A manifest says what a partition holds and when it expires: dataset, partition bounds,
//! `expires_at` (partition end + the dataset's retention), every file with its row count,
//! size, BLAKE3 checksum and time range, the key ids that made its pseudonyms, the schema and
//! logveil versions. The leading underscore keeps DuckDB, Spark and Polars from reading it as
//! data. Manifests are rewritten whole and atomically (staged, fsynced, renamed) after the
//! files they list are visible; concurrent local writers serialise on a lock file.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use logveil_model::time::{MICROS_PER_DAY, format_rfc3339};
use logveil_model::{DatasetKind, HourKey, SCHEMA_VERSION};
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::storage::Storage;
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
}

pub const MANIFEST_NAME: &str = "_manifest.json";

/// Path of a partition's manifest.
pub fn manifest_path(dataset: &str, key: HourKey) -> Path {
    Path::from(format!("{dataset}/{}/{MANIFEST_NAME}", key.dir()))
}

fn lock_dataset(storage: &Storage, dataset: &str) -> Result<Option<std::fs::File>> {
    let Some(root) = storage.local_root() else {
        return Ok(None);
    };
    let dir = root.join(dataset);
    let io = |source| SinkError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("_manifest.lock"))
        .map_err(io)?;
    f.lock().map_err(io)?;
    Ok(Some(f))
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
}

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
    let path = Path::from(format!("{}/_dataset.json", spec.name));
    let mut want = DatasetMarker {
        format: "logveil-dataset".into(),
        dataset: spec.name.clone(),
        kind: spec.kind.as_str().into(),
        schema_version: SCHEMA_VERSION,
        retention_days: spec.retention_days,
    };
    let mut spec = spec.clone();
    let mut retention_changed = None;
    if let Some(bytes) = storage.get(&path)? {
        let have: DatasetMarker =
            serde_json::from_slice(&bytes).map_err(|e| SinkError::BadManifest {
                path: path.to_string(),
                what: format!("JSON error at line {}, column {}", e.line(), e.column()),
            })?;
        if have.kind != want.kind || have.schema_version != want.schema_version {
            return Err(SinkError::DatasetMismatch {
                dataset: spec.name.clone(),
                have: format!("{} rows, schema version {}", have.kind, have.schema_version),
                want: format!("{} rows, schema version {}", want.kind, want.schema_version),
            });
        }
        if have.retention_days == spec.retention_days {
            return Ok(EnsuredDataset {
                spec,
                retention_changed,
            });
        }
        if !spec.retention_explicit {
            spec.retention_days = have.retention_days;
            return Ok(EnsuredDataset {
                spec,
                retention_changed,
            });
        }
        retention_changed = Some((have.retention_days, spec.retention_days));
        want.retention_days = spec.retention_days;
    }
    let mut text = serde_json::to_vec_pretty(&want).expect("marker serialises");
    text.push(b'\n');
    storage.put(&path, Bytes::from(text))?;
    Ok(EnsuredDataset {
        spec,
        retention_changed,
    })
}

/// Adds `files` to their partitions' manifests (creating them as needed). Returns the
/// number of partitions touched.
pub fn commit_manifests(
    storage: &Storage,
    spec: &DatasetSpec,
    files: &[WrittenFile],
    run: &RunInfo,
) -> Result<usize> {
    let mut by_part: BTreeMap<HourKey, Vec<&WrittenFile>> = BTreeMap::new();
    for f in files {
        by_part.entry(f.partition).or_default().push(f);
    }
    if by_part.is_empty() {
        return Ok(0);
    }
    let _lock = lock_dataset(storage, &spec.name)?;
    let now = format_rfc3339(run.now_micros);
    for (key, files) in &by_part {
        let path = manifest_path(&spec.name, *key);
        let mut m = match storage.get(&path)? {
            Some(bytes) => {
                serde_json::from_slice::<Manifest>(&bytes).map_err(|e| SinkError::BadManifest {
                    path: path.to_string(),
                    what: format!("JSON error at line {}, column {}", e.line(), e.column()),
                })?
            }
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
            },
        };
        for f in files {
            m.files.retain(|x| x.name != f.name);
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
                written_at: now.clone(),
            });
        }
        // The dataset's current retention applies to the whole partition.
        m.retention_days = spec.retention_days;
        m.expires_at =
            format_rfc3339(key.end_micros() + spec.retention_days as i64 * MICROS_PER_DAY);
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
        m.rows = m.files.iter().map(|f| f.rows).sum();
        m.bytes = m.files.iter().map(|f| f.bytes).sum();
        m.updated_at = now.clone();
        let mut text = serde_json::to_vec_pretty(&m).expect("manifest serialises");
        text.push(b'\n');
        storage.put(&path, Bytes::from(text))?;
    }
    Ok(by_part.len())
}

//! Building a rollup: which windows need (re)computing, reading their raw partitions, and
//! committing each window's one file with its manifest.
//!
//! A window's rollup is a function of the raw files its partitions list: the manifest of the
//! rollup partition records a digest of those inputs (partition, file name, checksum) and of
//! the rollup's definition, and a window is recomputed only when either differs. Replaying a
//! build, or running it twice, therefore rewrites nothing and counts nothing twice.
//!
//! A window is rebuilt only while all of its raw partitions are live: once one has expired,
//! is being swept, or is gone although the rollup was built from it (its manifest records
//! which partitions it read), the window is frozen and its rollup outlives the raw data as
//! it is.
//! Raw partitions expired at `now` are never read, even if the sweep has not removed them.
//!
//! Each window has one file, `<rollup>/dt=…/hour=…/rollup.parquet` (a day's window sits in
//! its `hour=00`). It is written to `<rollup>/_staging/` and renamed over the previous one, so
//! a reader sees the old rollup or the new one, never both; then the manifest is rewritten.
//! A crash between the two leaves the new file under the old manifest, whose input digest
//! no longer matches: the next build rewrites both.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use logveil_model::time::format_rfc3339;
use logveil_model::{DatasetKind, HourKey, SCHEMA_VERSION};
use logveil_sink::manifest::{
    DatasetMarker, MANIFEST_NAME, ManifestFile, lock_dataset, manifest_path, marker_path,
    partition_expiry, tombstone_path,
};
use logveil_sink::{Manifest, RollupFacts, Storage};
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::RollupError;
use crate::agg::{Columns, Table};
use crate::spec::{Plan, RollupSpec};

/// Name of a window's file inside its partition.
pub const FILE_NAME: &str = "rollup.parquet";
/// The `kind` recorded in a rollup's dataset marker and manifests.
pub const KIND: &str = "rollup";

/// What a build covers.
#[derive(Clone, Debug)]
pub struct Options {
    /// Expiry is judged at this instant (µs).
    pub now_micros: i64,
    /// Only windows that start at or after / before these hours.
    pub from: Option<HourKey>,
    pub to: Option<HourKey>,
    /// Only windows that ended at or before this instant (µs): a running daemon builds
    /// closed windows, and rebuilds them when late data changes their inputs.
    pub closed_by: Option<i64>,
    /// Recompute windows whose inputs did not change.
    pub rebuild: bool,
    /// Threads reading a window's files (at least 1).
    pub threads: usize,
    pub run_id: String,
}

/// What a build did, for one rollup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub rollup: String,
    pub windows_built: u64,
    pub windows_unchanged: u64,
    /// Windows left as they are because a raw partition of theirs has expired or is being
    /// swept (the rollup outlives the raw data).
    pub windows_frozen: u64,
    /// Windows whose rollup partition has itself expired or is being swept.
    pub windows_expired: u64,
    pub input_rows: u64,
    pub rows_without_consent: u64,
    pub groups: u64,
    pub groups_suppressed: u64,
    pub events_suppressed: u64,
}

/// The raw dataset's kind, from its marker; `None` if the dataset does not exist yet.
pub fn source_kind(
    storage: &Storage,
    spec: &RollupSpec,
) -> Result<Option<DatasetKind>, RollupError> {
    let Some(m) = DatasetMarker::read(storage, &spec.source)? else {
        return Ok(None);
    };
    DatasetKind::parse(&m.kind)
        .map(Some)
        .ok_or_else(|| RollupError::Definition {
            rollup: spec.name.clone(),
            what: format!(
                "dataset {:?} holds {} rows, not raw events: roll up a raw dataset",
                spec.source, m.kind
            ),
        })
}

/// Creates the rollup's dataset marker (kind `rollup`), or checks it and records a changed
/// retention. A directory holding another kind of dataset is refused.
fn ensure_marker(storage: &Storage, spec: &RollupSpec) -> Result<(), RollupError> {
    let _lock = lock_dataset(storage, &spec.name)?;
    let have = DatasetMarker::read(storage, &spec.name)?;
    if let Some(h) = &have {
        if h.kind != KIND {
            return Err(RollupError::Definition {
                rollup: spec.name.clone(),
                what: format!(
                    "directory {:?} already holds a {} dataset; give the rollup another name",
                    spec.name, h.kind
                ),
            });
        }
        if h.retention_days == spec.retention_days {
            return Ok(());
        }
    }
    let floor = have
        .as_ref()
        .map(|h| h.floor_days().min(spec.retention_days))
        .filter(|f| *f < spec.retention_days);
    let m = DatasetMarker {
        format: "logveil-dataset".into(),
        dataset: spec.name.clone(),
        kind: KIND.into(),
        schema_version: SCHEMA_VERSION,
        retention_days: spec.retention_days,
        retention_floor_days: floor,
    };
    let mut text = serde_json::to_vec_pretty(&m).expect("marker serialises");
    text.push(b'\n');
    storage.put(&marker_path(&spec.name), Bytes::from(text))?;
    Ok(())
}

/// Hours of `dataset` that have a manifest, ascending.
fn partitions(storage: &Storage, dataset: &str) -> Result<Vec<HourKey>, RollupError> {
    let mut out = BTreeSet::new();
    for o in storage.list(&Path::from(dataset))? {
        let parts: Vec<&str> = o.location.as_ref().split('/').collect();
        if let [_, dt, hour, name] = parts.as_slice()
            && *name == MANIFEST_NAME
            && let Some(k) = HourKey::from_dirs(dt, hour)
        {
            out.insert(k);
        }
    }
    Ok(out.into_iter().collect())
}

/// Builds (or brings up to date) every window of one rollup.
pub fn build(storage: &Storage, plan: &Plan, opts: &Options) -> Result<Report, RollupError> {
    let spec = &plan.spec;
    let mut report = Report {
        rollup: spec.name.clone(),
        ..Report::default()
    };
    let Some(source_marker) = DatasetMarker::read(storage, &spec.source)? else {
        return Ok(report); // nothing ingested yet
    };
    ensure_marker(storage, spec)?;
    // Windows of another length or source would stay beside the new ones, and readers
    // would count both: such a change needs a new rollup name.
    if let Some(last) = partitions(storage, &spec.name)?.last()
        && let Some(m) = Manifest::read(storage, &manifest_path(&spec.name, *last))?
        && let Some(r) = &m.rollup
        && (r.window != spec.window.as_str() || r.source != spec.source)
    {
        return Err(RollupError::Definition {
            rollup: spec.name.clone(),
            what: format!(
                "it holds {} windows of dataset {:?}, and is now declared with {} windows of {:?}; give the changed rollup a new name (the old one keeps its data until it expires)",
                r.window,
                r.source,
                spec.window.as_str(),
                spec.source
            ),
        });
    }
    let hours = spec.window.hours();
    let mut windows: BTreeMap<i64, Vec<HourKey>> = BTreeMap::new();
    for k in partitions(storage, &spec.source)? {
        windows.entry(k.0.div_euclid(hours)).or_default().push(k);
    }
    let definition = spec.definition_digest();
    for (w, keys) in windows {
        let start = HourKey(w * hours);
        let end = HourKey(start.0 + hours).start_micros();
        if opts.from.is_some_and(|f| start < f)
            || opts.to.is_some_and(|t| start > t)
            || opts.closed_by.is_some_and(|c| end > c)
        {
            continue;
        }
        build_window(
            storage,
            plan,
            opts,
            &source_marker,
            &definition,
            start,
            &keys,
            &mut report,
        )?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn build_window(
    storage: &Storage,
    plan: &Plan,
    opts: &Options,
    source_marker: &DatasetMarker,
    definition: &str,
    start: HourKey,
    keys: &[HourKey],
    report: &mut Report,
) -> Result<(), RollupError> {
    let spec = &plan.spec;
    // The window's own partition: expired or being swept means nothing to do.
    let out_manifest = manifest_path(&spec.name, start);
    let existing = Manifest::read(storage, &out_manifest)?;
    let out_expiry = partition_expiry(start, spec.retention_days, None);
    if out_expiry <= opts.now_micros || storage.exists(&tombstone_path(&spec.name, start))? {
        report.windows_expired += 1;
        return Ok(());
    }
    // The window's first hour expires first: once it has (by the dataset's shortest
    // retention), part of the window may be gone, whether or not its manifest is still there.
    if partition_expiry(start, source_marker.floor_days(), None) <= opts.now_micros {
        report.windows_frozen += 1;
        return Ok(());
    }
    // Inputs: every live raw partition of the window, or none if one has gone.
    let mut inputs = Vec::new();
    for key in keys {
        let Some(m) = Manifest::read(storage, &manifest_path(&spec.source, *key))? else {
            continue;
        };
        let expiry = partition_expiry(*key, source_marker.floor_days(), m.expires_micros());
        if expiry <= opts.now_micros || storage.exists(&tombstone_path(&spec.source, *key))? {
            report.windows_frozen += 1;
            return Ok(());
        }
        inputs.push((*key, m));
    }
    // A partition read before and gone now (swept) freezes the window: recomputing it from
    // the partitions left would lose what the gone one contributed.
    if let Some(r) = existing.as_ref().and_then(|m| m.rollup.as_ref())
        && r.partitions
            .iter()
            .any(|p| !inputs.iter().any(|(k, _)| &k.dir() == p))
    {
        report.windows_frozen += 1;
        return Ok(());
    }
    let mut digest = blake3::Hasher::new();
    for (key, m) in &inputs {
        let mut files: Vec<&ManifestFile> = m.files.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for f in files {
            digest.update(format!("{}/{} {}\n", key.dir(), f.name, f.blake3).as_bytes());
        }
    }
    let inputs_digest = digest.finalize().to_hex()[..32].to_string();
    if !opts.rebuild
        && let Some(r) = existing.as_ref().and_then(|m| m.rollup.as_ref())
        && r.definition == definition
        && r.inputs == inputs_digest
    {
        report.windows_unchanged += 1;
        return Ok(());
    }

    let dev_key = inputs.iter().any(|(_, m)| m.dev_key);
    // The files are shared out among the threads, each aggregating into a table of its
    // own; the tables are then merged (every measure merges exactly, in any order).
    let files: Vec<(HourKey, &str)> = inputs
        .iter()
        .flat_map(|(key, m)| m.files.iter().map(move |f| (*key, f.name.as_str())))
        .collect();
    let threads = opts.threads.clamp(1, files.len().max(1));
    let tables: Vec<Result<Table, RollupError>> = std::thread::scope(|scope| {
        let files = &files;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut table = Table::new(plan);
                    for (key, name) in files.iter().skip(t).step_by(threads) {
                        read_file(storage, plan, &spec.source, *key, name, &mut table)?;
                    }
                    Ok(table)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a rollup thread panicked"))
            .collect()
    });
    let mut tables = tables.into_iter();
    let mut table = tables.next().expect("at least one thread")?;
    for t in tables {
        table.absorb(t?);
    }
    let (rows, without_consent) = (table.rows, table.rows_without_consent);
    let outcome = table.finish(start.start_micros())?;
    let batch = outcome.batch.as_ref().expect("finish builds a batch");

    // Write the window's file, staged, then swap it in.
    let dest = Path::from(format!("{}/{}/{FILE_NAME}", spec.name, start.dir()));
    let staging = Path::from(format!(
        "{}/_staging/rollup-{}-{}.parquet.tmp",
        spec.name, start.0, inputs_digest
    ));
    let footer = vec![
        KeyValue::new("logveil.rollup".into(), spec.name.clone()),
        KeyValue::new("logveil.rollup.source".into(), spec.source.clone()),
        KeyValue::new("logveil.rollup.k".into(), spec.k.to_string()),
        KeyValue::new(
            "logveil.rollup.window".into(),
            spec.window.as_str().to_string(),
        ),
    ];
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_key_value_metadata(Some(footer))
        .set_created_by(format!("logveil version {}", env!("CARGO_PKG_VERSION")))
        .build();
    let parquet_err = |source| RollupError::Parquet {
        path: dest.to_string(),
        source,
    };
    let mut upload = storage.upload(dest.clone(), staging)?;
    {
        let mut w = ArrowWriter::try_new(&mut upload, plan.schema.clone(), Some(props))
            .map_err(parquet_err)?;
        w.write(batch).map_err(parquet_err)?;
        w.close().map_err(parquet_err)?;
    }
    let committed = upload.finish()?;

    let now = format_rfc3339(opts.now_micros);
    let facts = RollupFacts {
        source: spec.source.clone(),
        window: spec.window.as_str().into(),
        k: spec.k,
        definition: definition.to_string(),
        inputs: inputs_digest,
        input_partitions: inputs.len() as u32,
        partitions: inputs.iter().map(|(k, _)| k.dir()).collect(),
        input_rows: rows,
        rows_without_consent: without_consent,
        groups: outcome.groups,
        groups_suppressed: outcome.groups_suppressed,
        other_row: outcome.other_row,
        events_suppressed: outcome.events_suppressed,
    };
    let file = ManifestFile {
        name: FILE_NAME.into(),
        rows: batch.num_rows() as u64,
        bytes: committed.bytes,
        blake3: committed.blake3.clone(),
        min_ts: format_rfc3339(start.start_micros()),
        max_ts: format_rfc3339(start.start_micros()),
        run_id: opts.run_id.clone(),
        key_ids: Vec::new(),
        dev_key,
        written_at: now.clone(),
    };
    let end = HourKey(start.0 + spec.window.hours() - 1);
    let m = Manifest {
        format: "logveil-manifest".into(),
        manifest_version: 1,
        dataset: spec.name.clone(),
        kind: KIND.into(),
        dt: start.date(),
        hour: start.hour(),
        partition_start: format_rfc3339(start.start_micros()),
        partition_end: format_rfc3339(end.end_micros()),
        retention_days: spec.retention_days,
        expires_at: format_rfc3339(out_expiry),
        schema_version: SCHEMA_VERSION,
        logveil_version: env!("CARGO_PKG_VERSION").into(),
        key_ids: Vec::new(),
        dev_key,
        rows: file.rows,
        bytes: file.bytes,
        files: vec![file],
        updated_at: now,
        rollup: Some(facts),
    };
    let mut text = serde_json::to_vec_pretty(&m).expect("manifest serialises");
    text.push(b'\n');
    {
        let _lock = lock_dataset(storage, &spec.name)?;
        if storage.exists(&tombstone_path(&spec.name, start))? {
            // A sweep started on this partition meanwhile: leave it to the sweep.
            storage.discard(&committed)?;
            report.windows_expired += 1;
            return Ok(());
        }
        storage.replace(&committed)?;
        storage.put(&out_manifest, Bytes::from(text))?;
    }
    report.windows_built += 1;
    report.input_rows += rows;
    report.rows_without_consent += without_consent;
    report.groups += outcome.groups;
    report.groups_suppressed += outcome.groups_suppressed;
    report.events_suppressed += outcome.events_suppressed;
    Ok(())
}

/// Adds one raw file's rows to the table, reading only the plan's columns.
fn read_file(
    storage: &Storage,
    plan: &Plan,
    dataset: &str,
    key: HourKey,
    name: &str,
    table: &mut Table,
) -> Result<(), RollupError> {
    let rel = format!("{dataset}/{}/{name}", key.dir());
    let parquet_err = |source| RollupError::Parquet {
        path: rel.clone(),
        source,
    };
    let local = storage.local_root().map(|r| r.join(&rel));
    match local {
        Some(path) => {
            let file = std::fs::File::open(&path).map_err(|source| RollupError::Io {
                path: rel.clone(),
                source,
            })?;
            let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
            read_batches(plan, b, table, &rel)
        }
        None => {
            let Some(bytes) = storage.get(&Path::from(rel.as_str()))? else {
                return Err(RollupError::Io {
                    path: rel.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "listed in the partition's manifest but missing",
                    ),
                });
            };
            let b = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet_err)?;
            read_batches(plan, b, table, &rel)
        }
    }
}

fn read_batches<R: parquet::file::reader::ChunkReader + 'static>(
    plan: &Plan,
    b: ParquetRecordBatchReaderBuilder<R>,
    table: &mut Table,
    rel: &str,
) -> Result<(), RollupError> {
    let parquet_err = |source| RollupError::Parquet {
        path: rel.to_string(),
        source,
    };
    let present: Vec<&str> = plan
        .read
        .iter()
        .map(String::as_str)
        .filter(|c| b.schema().field_with_name(c).is_ok())
        .collect();
    let mask = ProjectionMask::columns(b.parquet_schema(), present.iter().copied());
    let reader = b
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(parquet_err)?;
    for batch in reader {
        let batch = batch.map_err(|e| RollupError::Arrow {
            rollup: plan.spec.name.clone(),
            source: e,
        })?;
        let cols: Columns = plan
            .read
            .iter()
            .map(|c| batch.column_by_name(c).cloned())
            .collect();
        table.add(&cols)?;
    }
    Ok(())
}

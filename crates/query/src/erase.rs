//! Data-subject requests, erasure (privacy policy §7.3): every file that holds a subject's
//! rows is rewritten without them, and a receipt of what changed joins the root's
//! hash-chained deletion receipts.
//!
//! The partitions come from a [`find`](crate::subject::SubjectSearch::find) (pseudonyms of
//! every live key epoch, expired partitions left to the sweep). One partition at a time,
//! under its dataset's lock (shared with ingest commits and the retention sweep):
//! 1. each file listed in the manifest is checked against its manifest checksum, read, and
//!    written again without the subject's rows to `<dataset>/_staging/` (a file whose rows
//!    all were the subject's is to be removed instead);
//! 2. the journal `_retention/erasures/pending/<request>.json` records every change (file,
//!    rows and checksum before and after) before any of them is made;
//! 3. each new file is renamed over its old name: a reader sees the old file or the new one,
//!    never both and never neither (the file keeps its name, so Hive readers that list the
//!    directory never see the subject's rows twice or a gap);
//! 4. the manifest is rewritten with the new rows, sizes and checksums; files to remove are
//!    dropped from it, then deleted.
//!
//! Then a new find must return no row outside held partitions; the receipts (one per
//! partition, one for the request) are appended as one segment and the journal removed.
//! An erasure interrupted anywhere (kill -9) is finished by running it again with the same
//! request id and identifiers: the journal tells which new files are already in place (their
//! checksum), so receipts report what the first run removed. Another request's unfinished
//! erasure must be finished first.
//!
//! A partition under a legal hold in force is not rewritten: the erasure is queued
//! (`_retention/erasures/queued/<request>.json`, holding the subject's pseudonyms, never the
//! identifiers) and [`apply_queued`] carries it out once no hold covers it any more.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, MapArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch, not};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};
use logveil_model::HourKey;
use logveil_model::time::format_rfc3339;
use logveil_retention::receipts::{NewEntry, ReceiptLog};
use logveil_retention::sweep::ROOT_LOCK;
use logveil_retention::{HoldSet, check_request_id};
use logveil_sink::Storage;
use logveil_sink::lease::Exclusive;
use logveil_sink::manifest::{
    Manifest, lock_dataset, manifest_path, partition_path, tombstone_path,
};
use logveil_sink::writer::rewrite_properties;
use object_store::path::Path as StorePath;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::subject::{DayRange, FindReport, Needles, SubjectSearch};
use crate::{QueryError, QueryOptions};

/// Where erasures in progress and queued erasures are recorded, relative to the root.
pub const ERASURES_DIR: &str = "_retention/erasures";

fn pending_path(request: &str) -> StorePath {
    StorePath::from(format!("{ERASURES_DIR}/pending/{request}.json"))
}

fn queued_path(request: &str) -> StorePath {
    StorePath::from(format!("{ERASURES_DIR}/queued/{request}.json"))
}

/// One file an erasure changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    pub dataset: String,
    /// `dt=YYYY-MM-DD/hour=HH`.
    pub partition: String,
    pub file: String,
    pub rows_before: u64,
    pub rows_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub blake3_before: String,
    /// `None`: every row was the subject's, and the file was removed.
    pub blake3_after: Option<String>,
}

impl FileChange {
    pub fn rows_removed(&self) -> u64 {
        self.rows_before.saturating_sub(self.rows_after)
    }
}

/// A partition left as it is because a legal hold covers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPartition {
    pub dataset: String,
    pub partition: String,
    /// Ids of the holds in force over it.
    pub holds: Vec<String>,
    /// The subject's rows in it.
    pub rows: u64,
}

/// A partition an erasure could not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub dataset: String,
    pub partition: String,
    pub why: String,
}

/// The journal of an erasure in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Journal {
    format: String,
    request_id: String,
    started_at: String,
    /// [`Needles::digest`] of the subject and period: a rerun must be for the same ones.
    subject: String,
    /// The pseudonyms and period searched, so that `--resume` can finish the erasure as it
    /// was started (after a key rotation, say). Pseudonyms, never identifiers.
    needles: Needles,
    days: DayRange,
    changes: Vec<FileChange>,
}

/// An erasure waiting for legal holds to end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Queued {
    pub format: String,
    pub request_id: String,
    pub queued_at: String,
    pub needles: Needles,
    pub days: DayRange,
    pub held: Vec<HeldPartition>,
}

/// A point in the erasure, reported to the hook right after it is reached (tests crash the
/// process at each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EraseStep {
    /// The journal records a partition's changes.
    Journaled,
    /// A new file replaced an old one.
    Replaced,
    /// A partition's manifest was rewritten.
    ManifestWritten,
    /// A file whose rows all were the subject's was deleted.
    FileRemoved,
    /// The receipts were appended.
    Receipted,
}

impl EraseStep {
    pub fn as_str(self) -> &'static str {
        match self {
            EraseStep::Journaled => "journaled",
            EraseStep::Replaced => "replaced",
            EraseStep::ManifestWritten => "manifest_written",
            EraseStep::FileRemoved => "file_removed",
            EraseStep::Receipted => "receipted",
        }
    }

    pub const ALL: [EraseStep; 5] = [
        EraseStep::Journaled,
        EraseStep::Replaced,
        EraseStep::ManifestWritten,
        EraseStep::FileRemoved,
        EraseStep::Receipted,
    ];
}

/// How an erasure runs.
pub struct EraseOptions<'a> {
    pub request_id: String,
    /// Who runs it (recorded in the receipts).
    pub operator: String,
    /// The real time (µs), recorded in receipts and the journal.
    pub wall_clock: i64,
    /// Called at every [`EraseStep`].
    pub hook: Option<&'a (dyn Fn(EraseStep) + Sync)>,
}

impl EraseOptions<'_> {
    fn step(&self, s: EraseStep) {
        if let Some(h) = self.hook {
            h(s);
        }
    }
}

/// What an erasure did.
#[derive(Clone, Debug)]
pub struct EraseReport {
    pub request_id: String,
    /// Whether it finished an interrupted run of the same request.
    pub resumed: bool,
    /// Where the subject's rows were before (counts per dataset and partition).
    pub before: FindReport,
    pub changes: Vec<FileChange>,
    /// Partitions kept because of legal holds (the erasure is queued for them).
    pub held: Vec<HeldPartition>,
    /// Partitions left unchanged because a file could not be erased (changed behind
    /// logveil's back, unreadable): the erasure is incomplete.
    pub skipped: Vec<Skipped>,
    /// The subject's rows a find still sees outside held partitions (0 when complete).
    pub rows_left: u64,
    /// Sequence numbers of the receipts written.
    pub receipts: Vec<u64>,
}

impl EraseReport {
    pub fn rows_removed(&self) -> u64 {
        self.changes.iter().map(FileChange::rows_removed).sum()
    }

    /// Partitions rewritten.
    pub fn partitions(&self) -> usize {
        self.changes
            .iter()
            .map(|c| (&c.dataset, &c.partition))
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Decides, row by row, whether a row is the subject's: the same test as the find's
/// predicate (pseudonym columns, scrubbed forms in `message` and in attribute values).
struct Matcher {
    columns: [(&'static str, HashSet<String>); 3],
    forms: Vec<String>,
}

impl Matcher {
    /// The columns [`mask`](Self::mask) looks at.
    const READS: [&'static str; 5] = [
        "ip_pseudonym",
        "device_pseudonym",
        "account_pseudonym",
        "message",
        "attributes",
    ];

    fn new(n: &Needles) -> Matcher {
        let set = |v: &Vec<String>| v.iter().cloned().collect::<HashSet<_>>();
        Matcher {
            columns: [
                ("ip_pseudonym", set(&n.ip)),
                ("device_pseudonym", set(&n.device)),
                ("account_pseudonym", set(&n.account)),
            ],
            forms: n
                .ip
                .iter()
                .map(|p| format!("<ip:{p}>"))
                .chain(n.text_id.iter().map(|p| format!("<id:{p}>")))
                .collect(),
        }
    }

    fn has_form(&self, s: &str) -> bool {
        self.forms.iter().any(|f| s.contains(f.as_str()))
    }

    /// True for the subject's rows.
    fn mask(&self, b: &RecordBatch) -> Result<BooleanArray, QueryError> {
        let mut hit = vec![false; b.num_rows()];
        let text = |name: &str| -> Result<Option<_>, QueryError> {
            let Some(c) = b.column_by_name(name) else {
                return Ok(None);
            };
            if !matches!(
                c.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) {
                return Ok(None);
            }
            Ok(Some(cast(c, &DataType::Utf8)?))
        };
        for (name, set) in &self.columns {
            if set.is_empty() {
                continue;
            }
            if let Some(c) = text(name)? {
                for (i, v) in c.as_string::<i32>().iter().enumerate() {
                    hit[i] |= v.is_some_and(|v| set.contains(v));
                }
            }
        }
        if !self.forms.is_empty() {
            if let Some(c) = text("message")? {
                for (i, v) in c.as_string::<i32>().iter().enumerate() {
                    hit[i] |= v.is_some_and(|v| self.has_form(v));
                }
            }
            if let Some(m) = b
                .column_by_name("attributes")
                .and_then(|c| c.as_any().downcast_ref::<MapArray>())
            {
                let values = cast(m.values(), &DataType::Utf8)?;
                let values = values.as_string::<i32>();
                let offsets = m.value_offsets();
                for (i, h) in hit.iter_mut().enumerate() {
                    if m.is_null(i) || *h {
                        continue;
                    }
                    let (a, z) = (offsets[i] as usize, offsets[i + 1] as usize);
                    *h = (a..z).any(|j| values.is_valid(j) && self.has_form(values.value(j)));
                }
            }
        }
        Ok(BooleanArray::from(hit))
    }
}

/// A file rewritten without the subject's rows, staged, not yet in place.
struct Staged {
    change: FileChange,
    committed: Option<logveil_sink::storage::Committed>,
}

fn rewrite_err(path: &StorePath, e: impl std::fmt::Display) -> QueryError {
    QueryError::Rewrite {
        path: path.to_string(),
        what: e.to_string(),
    }
}

/// Reads one file and, if it holds any of the subject's rows, writes the others to a staged
/// upload (none at all if every row was the subject's). `None`: nothing to remove.
fn rewrite_file(
    storage: &Storage,
    path: &StorePath,
    staging: StorePath,
    bytes: Bytes,
    matcher: &Matcher,
) -> Result<Option<(u64, u64, Option<logveil_sink::storage::Committed>)>, QueryError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .map_err(|e| rewrite_err(path, e))?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let schema = builder.schema().clone();
    let footer: Vec<_> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter(|k| k.key != "ARROW:schema")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // First pass, over the columns the matcher reads only: does the file hold the subject
    // at all? Most files of a partition do not.
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| Matcher::READS.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let projection = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut removed = 0u64;
    for b in builder
        .with_projection(projection)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| rewrite_err(path, e))?
    {
        let b = b.map_err(|e| rewrite_err(path, e))?;
        removed += matcher.mask(&b)?.true_count() as u64;
    }
    if removed == 0 {
        return Ok(None);
    }
    let kept = total.checked_sub(removed).ok_or_else(|| {
        rewrite_err(
            path,
            format!("the footer counts {total} rows, the row groups hold more"),
        )
    })?;
    if kept == 0 {
        return Ok(Some((total, 0, None)));
    }
    let upload = storage.upload(path.clone(), staging)?;
    let props = rewrite_properties(&schema, footer);
    let mut w =
        ArrowWriter::try_new(upload, schema, Some(props)).map_err(|e| rewrite_err(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| rewrite_err(path, e))?;
    for b in reader {
        let b = b.map_err(|e| rewrite_err(path, e))?;
        let keep = not(&matcher.mask(&b)?)?;
        let b = filter_record_batch(&b, &keep)?;
        if b.num_rows() > 0 {
            w.write(&b).map_err(|e| rewrite_err(path, e))?;
        }
    }
    let upload = w.into_inner().map_err(|e| rewrite_err(path, e))?;
    let committed = upload.finish()?;
    Ok(Some((total, kept, Some(committed))))
}

fn put_json<T: Serialize>(storage: &Storage, path: &StorePath, v: &T) -> Result<(), QueryError> {
    let mut text = serde_json::to_vec_pretty(v).expect("journal serialises");
    text.push(b'\n');
    storage.put(path, Bytes::from(text))?;
    Ok(())
}

fn get_json<T: for<'de> Deserialize<'de>>(
    storage: &Storage,
    path: &StorePath,
) -> Result<Option<T>, QueryError> {
    let Some(bytes) = storage.get(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| QueryError::Rewrite {
            path: format!("{}/{path}", storage.label()),
            what: format!(
                "not readable (JSON error at line {}, column {})",
                e.line(),
                e.column()
            ),
        })
}

/// What happened to one partition.
#[derive(Default)]
struct Outcome {
    /// Changes in place (those of an interrupted run included).
    done: Vec<FileChange>,
    /// Why the partition was left as it was (a file that changed behind logveil's back, or
    /// one that cannot be read): nothing of it was changed.
    skipped: Option<String>,
}

/// A file of a partition: listed in its manifest (with the checksum recorded there) or
/// only present in its directory (published by a commit interrupted before its manifest
/// was written; readers see it all the same).
struct PartFile {
    name: String,
    recorded: Option<String>,
}

/// Erases one partition's rows of the subject, under the dataset's lock. With
/// `finish_only` (a hold placed since an interrupted run), only the changes the journal
/// says are already made are completed; nothing else is rewritten.
fn erase_partition(
    storage: &Storage,
    dataset: &str,
    key: HourKey,
    matcher: &Matcher,
    journal: &mut Journal,
    eo: &EraseOptions,
    finish_only: bool,
) -> Result<Outcome, QueryError> {
    let _lock = lock_dataset(storage, dataset)?;
    let part = key.dir();
    let mpath = manifest_path(dataset, key);
    let manifest = Manifest::read(storage, &mpath)?;
    // No manifest and a tombstone: the sweep is deleting it; leave it to the sweep.
    if manifest.is_none() && storage.exists(&tombstone_path(dataset, key))? {
        return Ok(Outcome::default());
    }
    let mut files: Vec<PartFile> = manifest
        .iter()
        .flat_map(|m| &m.files)
        .map(|f| PartFile {
            name: f.name.clone(),
            recorded: Some(f.blake3.clone()),
        })
        .collect();
    let prefix = partition_path(dataset, key);
    let mut unlisted = Vec::new();
    for o in storage.list(&prefix)? {
        let name = o
            .location
            .as_ref()
            .strip_prefix(prefix.as_ref())
            .and_then(|n| n.strip_prefix('/'))
            .unwrap_or_default();
        if name.ends_with(".parquet")
            && !name.contains('/')
            && !files.iter().any(|f| f.name == name)
        {
            unlisted.push(name.to_string());
        }
    }
    let mut out = Outcome::default();
    for name in unlisted {
        let removal = journal.changes.iter().any(|c| {
            c.dataset == dataset
                && c.partition == part
                && c.file == name
                && c.blake3_after.is_none()
        });
        if removal {
            // Dropped from the manifest by an interrupted run of this erasure, not deleted yet.
            files.push(PartFile {
                name,
                recorded: None,
            });
        } else {
            // Published by an ingest commit that was interrupted before its manifest: the
            // pipeline's recovery records it as it was, so it must not change under it.
            out.skipped = Some(format!(
                "{}/{prefix}/{name} is not in the partition's manifest yet (an interrupted commit): run the pipeline (or `logveil run --once`) to complete it, then erase again",
                storage.label()
            ));
            return Ok(out);
        }
    }
    let mut staged: Vec<Staged> = Vec::new();
    let label = |path: &StorePath| format!("{}/{path}", storage.label());
    for f in &files {
        let path = StorePath::from(format!("{dataset}/{part}/{}", f.name));
        let journaled = journal
            .changes
            .iter()
            .find(|c| c.dataset == dataset && c.partition == part && c.file == f.name)
            .cloned();
        let bytes = match storage.get(&path) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                out.skipped = Some(format!("cannot read {}: {e}", label(&path)));
                break;
            }
        };
        let sum = blake3::hash(&bytes).to_hex().to_string();
        match &journaled {
            Some(j) if j.blake3_after.as_deref() == Some(sum.as_str()) => {
                out.done.push(j.clone());
                continue;
            }
            // A removal taken out of the manifest, the file not deleted yet: finish it.
            Some(j)
                if j.blake3_after.is_none() && f.recorded.is_none() && j.blake3_before == sum =>
            {
                out.done.push(j.clone());
                continue;
            }
            _ if finish_only => continue,
            Some(j) if j.blake3_before == sum => {}
            _ if f.recorded.as_ref().is_none_or(|r| *r == sum) => {}
            _ => {
                out.skipped = Some(QueryError::Changed { path: label(&path) }.to_string());
                break;
            }
        }
        let staging = StorePath::from(format!(
            "{dataset}/_staging/erase-{}-{}.tmp",
            eo.request_id, f.name
        ));
        match rewrite_file(storage, &path, staging, bytes.clone(), matcher) {
            Ok(None) => {}
            Ok(Some((before, after, committed))) => staged.push(Staged {
                change: FileChange {
                    dataset: dataset.to_string(),
                    partition: part.clone(),
                    file: f.name.clone(),
                    rows_before: before,
                    rows_after: after,
                    bytes_before: bytes.len() as u64,
                    bytes_after: committed.as_ref().map_or(0, |c| c.bytes),
                    blake3_before: sum,
                    blake3_after: committed.as_ref().map(|c| c.blake3.clone()),
                },
                committed,
            }),
            Err(e) => {
                out.skipped = Some(e.to_string());
                break;
            }
        }
    }
    if out.skipped.is_some() {
        // Nothing new of this partition is made; what an interrupted run already made
        // (in `done`) is completed below.
        for s in staged.drain(..) {
            if let Some(c) = &s.committed {
                let _ = storage.discard(c);
            }
        }
    }
    // Removals an interrupted run already made (a removed file still on disk is found
    // above, as a file the manifest no longer lists, and removed again).
    for j in journal
        .changes
        .iter()
        .filter(|c| c.dataset == dataset && c.partition == part && c.blake3_after.is_none())
    {
        if !files.iter().any(|f| f.name == j.file) {
            out.done.push(j.clone());
        }
    }
    if !staged.is_empty() {
        // The journal first: a crash from here on is finished by running the request again.
        for s in &staged {
            journal.changes.retain(|c| {
                !(c.dataset == s.change.dataset
                    && c.partition == s.change.partition
                    && c.file == s.change.file)
            });
            journal.changes.push(s.change.clone());
        }
        put_json(storage, &pending_path(&eo.request_id), journal)?;
        eo.step(EraseStep::Journaled);
        for s in &staged {
            if let Some(c) = &s.committed {
                storage.replace(c)?;
                eo.step(EraseStep::Replaced);
            }
        }
        out.done.extend(staged.into_iter().map(|s| s.change));
    }
    if out.done.is_empty() {
        return Ok(out);
    }
    // The manifest says what is in place. It is changed as it is now, not as it was read:
    // on object storage another instance's commit may have added files to the partition
    // since (a conditional put, retried, keeps them).
    if manifest.is_some() {
        let written = storage.update(&mpath, |current| {
            let Some(current) = current else {
                return Ok(None);
            };
            let mut m = Manifest::parse(&mpath, current)?;
            let before = m.clone();
            for c in &out.done {
                match &c.blake3_after {
                    None => m.files.retain(|f| f.name != c.file),
                    Some(sum) => {
                        if let Some(f) = m.files.iter_mut().find(|f| f.name == c.file) {
                            f.rows = c.rows_after;
                            f.bytes = c.bytes_after;
                            f.blake3 = sum.clone();
                        }
                    }
                }
            }
            if m == before {
                return Ok(None);
            }
            m.recount();
            m.updated_at = format_rfc3339(eo.wall_clock);
            Ok(Some(m.to_bytes()))
        })?;
        if written {
            eo.step(EraseStep::ManifestWritten);
        }
    }
    for c in out.done.iter().filter(|c| c.blake3_after.is_none()) {
        let path = StorePath::from(format!("{dataset}/{part}/{}", c.file));
        if storage.exists(&path)? {
            storage.delete(&path)?;
            eo.step(EraseStep::FileRemoved);
        }
    }
    Ok(out)
}

/// Parses `dt=YYYY-MM-DD/hour=HH`.
fn partition_key(p: &str) -> Option<HourKey> {
    let (dt, hour) = p.split_once('/')?;
    HourKey::from_dirs(dt, hour)
}

/// Takes the root's erasure lock (the retention sweep's): one erasure or sweep at a time.
fn lock_root(storage: &Storage) -> Result<Exclusive, QueryError> {
    storage.exclusive(ROOT_LOCK)?.map_err(|who| {
        QueryError::Busy(format!(
            "another erasure or retention sweep is running on {} ({who}); let it finish (a killed one releases its lock)",
            storage.label()
        ))
    })
}

/// The request of the erasure an interrupted run left, if any.
fn pending(storage: &Storage) -> Result<Option<String>, QueryError> {
    Ok(storage
        .list(&StorePath::from(format!("{ERASURES_DIR}/pending")))?
        .iter()
        .filter_map(|o| {
            o.location
                .filename()?
                .strip_suffix(".json")
                .map(String::from)
        })
        .next())
}

/// Erases the subject's rows (given as pseudonyms) from every dataset under the root; see
/// the module documentation for the order of steps.
pub fn erase(
    opts: &QueryOptions,
    needles: Needles,
    days: DayRange,
    eo: &EraseOptions,
) -> Result<EraseReport, QueryError> {
    check_request_id(&eo.request_id).map_err(QueryError::Usage)?;
    let storage = crate::open_root(&opts.root)?;
    // One erasure at a time, never beside a retention sweep: they share the receipt chain
    // and the partitions.
    let root_lock = lock_root(&storage)?;
    // Another request's unfinished erasure first: its rewritten files are in place, its
    // manifests may not be.
    if let Some(other) = pending(&storage)?.filter(|p| *p != eo.request_id) {
        return Err(QueryError::Pending { request: other });
    }
    let journal = get_json::<Journal>(&storage, &pending_path(&eo.request_id))?;
    if let Some(j) = &journal
        && j.subject != needles.digest(days)
    {
        return Err(QueryError::Usage(format!(
            "the interrupted erasure of request {} was for other identifiers, key epochs or --from/--to: run it again with the same ones, or finish it as it was with `logveil subject erase --root {} --resume`",
            eo.request_id,
            opts.root.display()
        )));
    }
    run(opts, &storage, &root_lock, needles, days, eo, journal)
}

/// Finishes the erasure an interrupted run left (with the pseudonyms and period its journal
/// records, whatever the key ring holds now). `None` if there is none.
pub fn resume(
    opts: &QueryOptions,
    operator: &str,
    wall_clock: i64,
) -> Result<Option<EraseReport>, QueryError> {
    let storage = crate::open_root(&opts.root)?;
    let root_lock = lock_root(&storage)?;
    let Some(request) = pending(&storage)? else {
        return Ok(None);
    };
    let Some(j) = get_json::<Journal>(&storage, &pending_path(&request))? else {
        return Ok(None);
    };
    let eo = EraseOptions {
        request_id: request,
        operator: operator.to_string(),
        wall_clock,
        hook: None,
    };
    let (needles, days) = (j.needles.clone(), j.days);
    run(opts, &storage, &root_lock, needles, days, &eo, Some(j)).map(Some)
}

/// The erasure proper, under the root's lock; `journal` is an interrupted run's.
fn run(
    opts: &QueryOptions,
    storage: &Storage,
    root_lock: &Exclusive,
    needles: Needles,
    days: DayRange,
    eo: &EraseOptions,
    journal: Option<Journal>,
) -> Result<EraseReport, QueryError> {
    let storage = storage.clone();
    let now_text = format_rfc3339(eo.wall_clock);
    let resumed = journal.is_some();
    let mut journal = journal.unwrap_or_else(|| Journal {
        format: "logveil-erasure-journal".into(),
        request_id: eo.request_id.clone(),
        started_at: now_text.clone(),
        subject: needles.digest(days),
        needles: needles.clone(),
        days,
        changes: Vec::new(),
    });
    let log = ReceiptLog::new(storage.clone());
    let before = SubjectSearch::with_needles(opts, needles.clone(), days)?.find()?;
    // Interrupted after its receipts were written: everything was done; the receipts stand.
    if resumed {
        let ours: Vec<_> = log
            .verify()?
            .into_iter()
            .filter(|e| {
                e.details.get("request_id") == Some(&json!(eo.request_id))
                    && e.details.get("started_at") == Some(&json!(journal.started_at))
            })
            .collect();
        if let Some(summary) = ours.iter().find(|e| e.action == "subject_erasure") {
            let held: Vec<HeldPartition> = summary
                .details
                .get("held_partitions")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let skipped: Vec<Skipped> = summary
                .details
                .get("partitions_not_erased")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            let rows_left = summary
                .details
                .get("rows_left")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            finish(&storage, eo, &journal, &held, &needles, days)?;
            return Ok(EraseReport {
                request_id: eo.request_id.clone(),
                resumed,
                before,
                changes: journal.changes,
                held,
                skipped,
                rows_left,
                receipts: ours.iter().map(|e| e.seq).collect(),
            });
        }
    }
    // The partitions to visit: where the find saw the subject, and where an interrupted run
    // left changes (a find no longer sees rows there).
    let mut targets: BTreeMap<(String, HourKey), u64> = BTreeMap::new();
    for f in &before.datasets {
        for (k, n) in &f.partitions {
            targets.insert((f.dataset.clone(), *k), *n);
        }
    }
    for c in &journal.changes {
        if let Some(k) = partition_key(&c.partition) {
            targets.entry((c.dataset.clone(), k)).or_insert(0);
        }
    }
    let holds = HoldSet::load(&storage)?;
    let matcher = Matcher::new(&needles);
    let mut changes = Vec::new();
    let mut held = Vec::new();
    let mut skipped = Vec::new();
    for ((dataset, key), rows) in &targets {
        // Holds in force now, by the real clock: `--now` moves expiry, never a hold.
        let blocking: Vec<String> = holds
            .blocking(
                Some(dataset),
                key.start_micros(),
                key.end_micros(),
                eo.wall_clock,
            )
            .into_iter()
            .map(|h| h.id.clone())
            .collect();
        let finish_only = !blocking.is_empty();
        if finish_only {
            held.push(HeldPartition {
                dataset: dataset.clone(),
                partition: key.dir(),
                holds: blocking,
                rows: *rows,
            });
            // A partition an interrupted run changed is completed even under a hold placed
            // since (its files are already rewritten); nothing more of it is.
            if !journal
                .changes
                .iter()
                .any(|c| c.dataset == *dataset && c.partition == key.dir())
            {
                continue;
            }
        }
        // A lease on object storage that could not be renewed may be another process's now:
        // stop; the journal lets a rerun finish.
        root_lock.check()?;
        let out = erase_partition(
            &storage,
            dataset,
            *key,
            &matcher,
            &mut journal,
            eo,
            finish_only,
        )?;
        changes.extend(out.done);
        if let Some(why) = out.skipped {
            skipped.push(Skipped {
                dataset: dataset.clone(),
                partition: key.dir(),
                why,
            });
        }
    }
    // Verify: a new search (new listing, new footers) must not see the subject outside
    // held partitions.
    let after = SubjectSearch::with_needles(opts, needles.clone(), days)?.find()?;
    let held_keys: HashSet<(&str, String)> = held
        .iter()
        .map(|h| (h.dataset.as_str(), h.partition.clone()))
        .collect();
    let mut rows_left = 0u64;
    for f in &after.datasets {
        for (k, n) in &f.partitions {
            if !held_keys.contains(&(f.dataset.as_str(), k.dir())) {
                rows_left += n;
            }
        }
    }
    let facts = Facts {
        before: &before,
        held: &held,
        rows_left,
        resumed,
        started_at: &journal.started_at,
        skipped: &skipped,
    };
    root_lock.check()?;
    let receipts = write_receipts(&log, eo, &facts, &changes)?;
    eo.step(EraseStep::Receipted);
    finish(&storage, eo, &journal, &held, &needles, days)?;
    Ok(EraseReport {
        request_id: eo.request_id.clone(),
        resumed,
        before,
        changes,
        held,
        skipped,
        rows_left,
        receipts,
    })
}

/// After the receipts: the queue (held partitions wait for their holds; none held, nothing
/// queued), staged copies left by interrupted runs, then the journal.
fn finish(
    storage: &Storage,
    eo: &EraseOptions,
    journal: &Journal,
    held: &[HeldPartition],
    needles: &Needles,
    days: DayRange,
) -> Result<(), QueryError> {
    if held.is_empty() {
        storage.delete(&queued_path(&eo.request_id))?;
    } else {
        put_json(
            storage,
            &queued_path(&eo.request_id),
            &Queued {
                format: "logveil-queued-erasure".into(),
                request_id: eo.request_id.clone(),
                queued_at: format_rfc3339(eo.wall_clock),
                needles: needles.clone(),
                days,
                held: held.to_vec(),
            },
        )?;
    }
    let datasets: BTreeSet<&str> = journal.changes.iter().map(|c| c.dataset.as_str()).collect();
    let prefix = format!("erase-{}-", eo.request_id);
    for d in datasets {
        for o in storage.list(&StorePath::from(format!("{d}/_staging")))? {
            if o.location
                .filename()
                .is_some_and(|n| n.starts_with(&prefix))
            {
                storage.delete(&o.location)?;
            }
        }
    }
    storage.delete(&pending_path(&eo.request_id))?;
    Ok(())
}

/// What the request's receipt says beside the changes.
struct Facts<'a> {
    before: &'a FindReport,
    held: &'a [HeldPartition],
    rows_left: u64,
    resumed: bool,
    started_at: &'a str,
    skipped: &'a [Skipped],
}

/// One receipt per partition rewritten and one for the request, as one segment of the
/// root's deletion receipts.
fn write_receipts(
    log: &ReceiptLog,
    eo: &EraseOptions,
    facts: &Facts,
    changes: &[FileChange],
) -> Result<Vec<u64>, QueryError> {
    let Facts {
        before,
        held,
        rows_left,
        resumed,
        started_at,
        skipped,
    } = *facts;
    let at = format_rfc3339(eo.wall_clock);
    let mut by_partition: BTreeMap<(&str, &str), Vec<&FileChange>> = BTreeMap::new();
    for c in changes {
        by_partition
            .entry((c.dataset.as_str(), c.partition.as_str()))
            .or_default()
            .push(c);
    }
    let mut entries = Vec::new();
    for ((dataset, partition), files) in &by_partition {
        let mut d = Map::new();
        d.insert("request_id".into(), json!(eo.request_id));
        d.insert("started_at".into(), json!(started_at));
        d.insert("dataset".into(), json!(dataset));
        d.insert("partition".into(), json!(partition));
        d.insert(
            "rows_removed".into(),
            json!(files.iter().map(|c| c.rows_removed()).sum::<u64>()),
        );
        d.insert(
            "files".into(),
            Value::Array(
                files
                    .iter()
                    .map(|c| {
                        json!({
                            "name": c.file,
                            "rows_before": c.rows_before,
                            "rows_after": c.rows_after,
                            "blake3_before": c.blake3_before,
                            "blake3_after": c.blake3_after,
                        })
                    })
                    .collect(),
            ),
        );
        entries.push(NewEntry {
            at: at.clone(),
            action: "subject_rows_erased".into(),
            operator: eo.operator.clone(),
            details: d,
        });
    }
    let mut d = Map::new();
    d.insert("request_id".into(), json!(eo.request_id));
    d.insert("partitions".into(), json!(by_partition.len()));
    d.insert("files".into(), json!(changes.len()));
    d.insert(
        "rows_removed".into(),
        json!(changes.iter().map(FileChange::rows_removed).sum::<u64>()),
    );
    d.insert("rows_left".into(), json!(rows_left));
    d.insert(
        "verified".into(),
        json!(rows_left == 0 && skipped.is_empty()),
    );
    d.insert(
        "partitions_not_erased".into(),
        serde_json::to_value(skipped).expect("skipped partitions serialise"),
    );
    d.insert("resumed".into(), json!(resumed));
    d.insert("started_at".into(), json!(started_at));
    d.insert(
        "held_partitions".into(),
        serde_json::to_value(held).expect("holds serialise"),
    );
    d.insert(
        "datasets_searched".into(),
        json!(
            before
                .datasets
                .iter()
                .map(|f| f.dataset.clone())
                .collect::<Vec<_>>()
        ),
    );
    d.insert(
        "key_epochs_searched".into(),
        json!(before.needles.live_epochs),
    );
    d.insert(
        "key_epochs_shredded".into(),
        json!(before.needles.shredded_epochs),
    );
    entries.push(NewEntry {
        at,
        action: "subject_erasure".into(),
        operator: eo.operator.clone(),
        details: d,
    });
    Ok(log.append(&entries)?.iter().map(|e| e.seq).collect())
}

/// The erasures waiting for holds, by request id.
pub fn queued(root: &std::path::Path) -> Result<Vec<Queued>, QueryError> {
    let storage = crate::open_root(root)?;
    let mut out = Vec::new();
    for o in storage.list(&StorePath::from(format!("{ERASURES_DIR}/queued")))? {
        if let Some(q) = get_json::<Queued>(&storage, &o.location)? {
            out.push(q);
        }
    }
    out.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    Ok(out)
}

/// Carries out every queued erasure that no hold in force blocks any more (those still
/// blocked are left queued). Returns what each one did.
pub fn apply_queued(
    opts: &QueryOptions,
    operator: &str,
    wall_clock: i64,
) -> Result<Vec<EraseReport>, QueryError> {
    let storage = crate::open_root(&opts.root)?;
    let holds = HoldSet::load(&storage)?;
    let mut out = Vec::new();
    // An interrupted erasure (a queued one, say) is finished first.
    out.extend(resume(opts, operator, wall_clock)?);
    for q in queued(&opts.root)? {
        let blocked = q.held.iter().any(|h| {
            partition_key(&h.partition).is_some_and(|k| {
                !holds
                    .blocking(
                        Some(&h.dataset),
                        k.start_micros(),
                        k.end_micros(),
                        wall_clock,
                    )
                    .is_empty()
            })
        });
        if blocked {
            continue;
        }
        let eo = EraseOptions {
            request_id: q.request_id.clone(),
            operator: operator.to_string(),
            wall_clock,
            hook: None,
        };
        out.push(erase(opts, q.needles, q.days, &eo)?);
    }
    Ok(out)
}

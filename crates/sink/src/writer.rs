//! Routes rows to hour partitions and streams each partition into Parquet files.
//!
//! One writer per worker thread and dataset. Rows collect in Arrow builders per partition;
//! a full batch is encoded into the partition's open Parquet file (zstd, dictionary encoding
//! for repetitive columns, delta encoding for timestamps). A file is closed when it reaches
//! its row limit, when too many partitions are open (least recently used first), or at the
//! end of the run; closing uploads the footer and makes the file visible atomically.

use std::collections::HashMap;

use arrow_schema::SchemaRef;
use logveil_model::HourKey;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::builders::RowBuilder;
use crate::manifest::DatasetSpec;
use crate::selfcheck::{self, Finding};
use crate::storage::{Committed, Storage, Upload};
use crate::{Result, SinkError};

/// How often (in rows) idle partitions are looked for.
const IDLE_CHECK_EVERY: u64 = 1 << 16;
/// Rows between checks of the writer's memory across its open partitions.
const BUDGET_CHECK_EVERY: u64 = 1 << 12;

/// Tuning of the sink. Defaults suit analytics: about a million rows per row group.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Rows collected per partition before a batch is encoded.
    pub batch_rows: usize,
    /// Rows per Parquet row group…
    pub row_group_rows: usize,
    /// … unless its encoded data (held in memory until the row group is written) reaches
    /// this many bytes first: bounds a writer's memory per open partition.
    pub row_group_bytes: usize,
    /// Rows per file before it is closed and a new one started.
    pub max_file_rows: u64,
    /// Open partitions per writer before the least recently used one is closed.
    pub max_open_partitions: usize,
    /// A partition that received no row during this many rows pushed to other partitions
    /// is closed, so time-ordered input keeps about one partition (and its memory) open.
    pub idle_close_rows: u64,
    pub zstd_level: i32,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            batch_rows: 64 * 1024,
            row_group_rows: 1 << 20,
            row_group_bytes: 16 << 20,
            max_file_rows: 8 << 20,
            max_open_partitions: 24,
            idle_close_rows: 256 * 1024,
            zstd_level: 1,
        }
    }
}

/// A complete file this writer produced. It becomes visible when [`commit`](crate::commit)
/// records it (or is removed with [`discard`]): a run commits its files only when all of its
/// work has succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFile {
    pub partition: HourKey,
    /// File name within the partition directory.
    pub name: String,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub upload: Committed,
}

impl WrittenFile {
    pub fn bytes(&self) -> u64 {
        self.upload.bytes
    }

    pub fn blake3(&self) -> &str {
        &self.upload.blake3
    }
}

/// Removes finished files that will not be published. Best effort: returns the first error
/// after trying every file.
pub fn discard(storage: &Storage, files: &[WrittenFile]) -> Result<()> {
    let mut first = Ok(());
    for f in files {
        if let Err(e) = storage.discard(&f.upload)
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

struct OpenFile {
    name: String,
    path: String,
    writer: ArrowWriter<Upload>,
    rows: u64,
    min_ts: i64,
    max_ts: i64,
}

struct Part<B> {
    builder: B,
    file: Option<OpenFile>,
    min_ts: i64,
    max_ts: i64,
    last_used: u64,
}

/// `batch` with the given columns replaced by nulls.
fn null_out(
    batch: arrow_array::RecordBatch,
    columns: &[usize],
) -> std::result::Result<arrow_array::RecordBatch, arrow_schema::ArrowError> {
    let schema = batch.schema();
    let rows = batch.num_rows();
    let mut cols = batch.columns().to_vec();
    for &i in columns {
        if let Some(f) = schema.fields().get(i) {
            cols[i] = arrow_array::new_null_array(f.data_type(), rows);
        }
    }
    arrow_array::RecordBatch::try_new(schema, cols)
}

/// Footer entries for the files of one partition.
pub type PartitionFooter = std::sync::Arc<dyn Fn(HourKey) -> Vec<KeyValue> + Send + Sync>;

/// Writes one dataset's rows into hour partitions.
pub struct PartitionWriter<B: RowBuilder> {
    storage: Storage,
    spec: DatasetSpec,
    cfg: SinkConfig,
    props: WriterProperties,
    schema: SchemaRef,
    file_prefix: String,
    /// Extra footer entries per partition (e.g. the key id of the partition's epoch).
    partition_footer: Option<PartitionFooter>,
    footer: Vec<KeyValue>,
    seq: u32,
    tick: u64,
    parts: HashMap<HourKey, Part<B>, foldhash::fast::RandomState>,
    written: Vec<WrittenFile>,
    /// Columns the dataset's policy drops: written as nulls.
    null_columns: Vec<usize>,
    /// Partitions the privacy self-check failed: withheld, never published.
    failed: HashMap<HourKey, Withheld, foldhash::fast::RandomState>,
}

/// A partition the privacy self-check withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withheld {
    pub dataset: String,
    pub partition: HourKey,
    /// The first finding (column and kind; never the value).
    pub finding: Finding,
    /// Rows of the partition withheld by this writer.
    pub rows: u64,
}

/// What a writer produced: files to publish, and partitions withheld by the self-check.
#[derive(Debug, Default)]
pub struct Finished {
    pub files: Vec<WrittenFile>,
    pub withheld: Vec<Withheld>,
}

/// Columns with a Parquet bloom filter per row group: the pseudonyms a data-subject request
/// searches for (not `session_pseudonym`: a request names no session, and a row group
/// holds too many of them for a filter to be of use).
pub const PSEUDONYM_COLUMNS: [&str; 3] = ["ip_pseudonym", "device_pseudonym", "account_pseudonym"];
/// False-positive rate of those filters at `BLOOM_MAX_NDV` distinct values (lower in
/// practice: parquet-rs rounds a filter up to a power of two).
const BLOOM_FPP: f64 = 0.01;
/// The filters are sized for this many distinct values in a row group (64 KiB each while
/// the row group is open, counted in the writer's `memory_size` and so in the sink's memory
/// budget), then folded down to what the values present need when written. A row group
/// with more distinct pseudonyms gets more false positives, never a false negative.
const BLOOM_MAX_NDV: u64 = 32 * 1024;

fn writer_properties(
    schema: &SchemaRef,
    cfg: &SinkConfig,
    footer: Vec<KeyValue>,
) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(cfg.zstd_level).unwrap_or_default(),
        ))
        .set_max_row_group_row_count(Some(cfg.row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_key_value_metadata(Some(footer))
        .set_created_by(format!("logveil version {}", env!("CARGO_PKG_VERSION")));
    for f in schema.fields() {
        if PSEUDONYM_COLUMNS.contains(&f.name().as_str()) {
            // A data-subject request looks up a handful of pseudonyms: a row group whose
            // filter says "absent" is skipped unread.
            let col = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_bloom_filter_enabled(col.clone(), true)
                .set_column_bloom_filter_fpp(col.clone(), BLOOM_FPP)
                .set_column_bloom_filter_max_ndv(col, BLOOM_MAX_NDV);
        }
        if matches!(f.data_type(), arrow_schema::DataType::Timestamp(..)) {
            // Timestamps rarely repeat; delta encoding beats a dictionary.
            let col = ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
    }
    b.build()
}

/// The properties of a file rewritten whole by someone other than the sink (an erasure
/// removing a data subject's rows): what the sink would write for this schema, with this
/// footer, so the new file keeps its compression, statistics and bloom filters.
pub fn rewrite_properties(schema: &SchemaRef, footer: Vec<KeyValue>) -> WriterProperties {
    writer_properties(schema, &SinkConfig::default(), footer)
}

impl<B: RowBuilder> PartitionWriter<B> {
    /// `file_prefix` must be unique per writer across all runs (e.g. `<run id>-w<worker>`);
    /// file names are `part-<prefix>-<seq>.parquet`. `footer` goes into every file's
    /// key/value metadata.
    pub fn new(
        storage: Storage,
        spec: DatasetSpec,
        cfg: SinkConfig,
        file_prefix: String,
        footer: Vec<KeyValue>,
    ) -> Self {
        let schema = B::KIND.schema();
        let props = writer_properties(&schema, &cfg, footer.clone());
        PartitionWriter {
            storage,
            spec,
            cfg,
            props,
            schema,
            file_prefix,
            partition_footer: None,
            footer,
            seq: 0,
            tick: 0,
            parts: HashMap::default(),
            written: Vec::new(),
            failed: HashMap::default(),
            null_columns: Vec::new(),
        }
    }

    /// Writes these columns (indices into the schema; nullable ones) as nulls, whatever the
    /// rows held: the dataset's policy dropped them.
    pub fn with_null_columns(mut self, columns: Vec<usize>) -> Self {
        self.null_columns = columns;
        self
    }

    /// Adds footer entries computed per partition to every file of that partition.
    pub fn with_partition_footer(mut self, f: PartitionFooter) -> Self {
        self.partition_footer = Some(f);
        self
    }

    pub fn spec(&self) -> &DatasetSpec {
        &self.spec
    }

    /// Adds one row.
    #[inline]
    pub fn push(&mut self, row: &B::Row<'_>) -> Result<()> {
        let ts = B::partition_ts(row);
        let key = HourKey::of_micros(ts);
        if !self.failed.is_empty()
            && let Some(w) = self.failed.get_mut(&key)
        {
            // The partition failed closed: its rows are counted, not kept.
            w.rows += 1;
            return Ok(());
        }
        self.tick += 1;
        if self.tick.is_multiple_of(IDLE_CHECK_EVERY) {
            self.close_idle()?;
        }
        if self.tick.is_multiple_of(BUDGET_CHECK_EVERY) && self.parts.len() > 1 {
            self.keep_to_budget()?;
        }
        if !self.failed.is_empty()
            && let Some(w) = self.failed.get_mut(&key)
        {
            // The checks above closed this row's partition, and it failed closed.
            w.rows += 1;
            return Ok(());
        }
        if !self.parts.contains_key(&key) {
            if self.parts.len() >= self.cfg.max_open_partitions {
                self.evict_lru()?;
            }
            let cap = self.cfg.batch_rows.min(4096);
            self.parts.insert(
                key,
                Part {
                    builder: B::with_capacity(cap),
                    file: None,
                    min_ts: i64::MAX,
                    max_ts: i64::MIN,
                    last_used: 0,
                },
            );
        }
        let part = self.parts.get_mut(&key).expect("inserted above");
        part.last_used = self.tick;
        part.builder.append(row);
        part.min_ts = part.min_ts.min(ts);
        part.max_ts = part.max_ts.max(ts);
        if part.builder.len() >= self.cfg.batch_rows {
            self.flush_part(key, false)?;
        }
        Ok(())
    }

    /// Keeps the writer's memory about that of one partition, however many are open: rows
    /// waiting in builders are at most `batch_rows` in all, and encoded row groups waiting in
    /// open files at most `row_group_bytes` in all. Over the encoded budget, the biggest row
    /// group is written out if it is a good part of it; otherwise the least recently used
    /// partition is closed, so that a few cold partitions never cut the hot one's row groups
    /// small.
    fn keep_to_budget(&mut self) -> Result<()> {
        let pending: usize = self.parts.values().map(|p| p.builder.len()).sum();
        if pending >= self.cfg.batch_rows
            && let Some(key) = self
                .parts
                .iter()
                .max_by_key(|(_, p)| p.builder.len())
                .map(|(k, _)| *k)
        {
            self.flush_part(key, false)?;
        }
        let encoded: usize = self
            .parts
            .values()
            .filter_map(|p| p.file.as_ref())
            .map(|f| f.writer.memory_size())
            .sum();
        if encoded < self.cfg.row_group_bytes {
            return Ok(());
        }
        let biggest = self
            .parts
            .values_mut()
            .filter_map(|p| p.file.as_mut())
            .max_by_key(|f| f.writer.memory_size());
        match biggest {
            Some(f) if f.writer.memory_size() >= self.cfg.row_group_bytes / 4 => {
                f.writer.flush().map_err(|source| SinkError::Parquet {
                    path: f.path.clone(),
                    source,
                })?;
            }
            _ => self.evict_lru()?,
        }
        Ok(())
    }

    fn close_idle(&mut self) -> Result<()> {
        let horizon = self.tick.saturating_sub(self.cfg.idle_close_rows);
        let idle: Vec<HourKey> = self
            .parts
            .iter()
            .filter(|(_, p)| p.last_used < horizon)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            self.flush_part(key, true)?;
            self.parts.remove(&key);
        }
        Ok(())
    }

    fn evict_lru(&mut self) -> Result<()> {
        if let Some(key) = self
            .parts
            .iter()
            .min_by_key(|(_, p)| p.last_used)
            .map(|(k, _)| *k)
        {
            self.flush_part(key, true)?;
            self.parts.remove(&key);
        }
        Ok(())
    }

    /// Encodes the partition's pending rows; with `close`, also closes its file.
    fn flush_part(&mut self, key: HourKey, close: bool) -> Result<()> {
        let Some(part) = self.parts.get_mut(&key) else {
            return Ok(());
        };
        if !part.builder.is_empty() {
            let rows = part.builder.len();
            let batch = part.builder.finish().map_err(|source| SinkError::Arrow {
                dataset: self.spec.name.clone(),
                source,
            })?;
            if !close {
                // Arrow builders restart empty after `finish`: reserve for the next batch
                // instead of regrowing (and copying) from zero.
                part.builder = B::with_capacity(rows);
            }
            let batch = if self.null_columns.is_empty() {
                batch
            } else {
                null_out(batch, &self.null_columns).map_err(|source| SinkError::Arrow {
                    dataset: self.spec.name.clone(),
                    source,
                })?
            };
            if let Some(finding) = selfcheck::scan_batch(&batch) {
                return self.withhold(key, finding, rows as u64);
            }
            let Some(part) = self.parts.get_mut(&key) else {
                return Ok(());
            };
            if part.file.is_none() {
                self.seq += 1;
                let name = format!("part-{}-{:05}.parquet", self.file_prefix, self.seq);
                let dest = Path::from(format!("{}/{}/{}", self.spec.name, key.dir(), name));
                let staging = Path::from(format!("{}/_staging/{}.tmp", self.spec.name, name));
                let upload = self.storage.upload(dest.clone(), staging)?;
                let props = match &self.partition_footer {
                    None => self.props.clone(),
                    Some(f) => {
                        let mut footer = self.footer.clone();
                        footer.extend(f(key));
                        writer_properties(&self.schema, &self.cfg, footer)
                    }
                };
                let writer = ArrowWriter::try_new(upload, self.schema.clone(), Some(props))
                    .map_err(|source| SinkError::Parquet {
                        path: dest.to_string(),
                        source,
                    })?;
                part.file = Some(OpenFile {
                    name,
                    path: dest.to_string(),
                    writer,
                    rows: 0,
                    min_ts: i64::MAX,
                    max_ts: i64::MIN,
                });
            }
            let f = part.file.as_mut().expect("opened above");
            f.writer
                .write(&batch)
                .map_err(|source| SinkError::Parquet {
                    path: f.path.clone(),
                    source,
                })?;
            if f.writer.memory_size() >= self.cfg.row_group_bytes {
                f.writer.flush().map_err(|source| SinkError::Parquet {
                    path: f.path.clone(),
                    source,
                })?;
            }
            f.rows += batch.num_rows() as u64;
            f.min_ts = f.min_ts.min(part.min_ts);
            f.max_ts = f.max_ts.max(part.max_ts);
            part.min_ts = i64::MAX;
            part.max_ts = i64::MIN;
        }
        let Some(part) = self.parts.get_mut(&key) else {
            return Ok(());
        };
        let full = part
            .file
            .as_ref()
            .is_some_and(|f| f.rows >= self.cfg.max_file_rows);
        if (close || full)
            && let Some(f) = part.file.take()
        {
            let upload = f.writer.into_inner().map_err(|source| SinkError::Parquet {
                path: f.path.clone(),
                source,
            })?;
            let upload = upload.finish()?;
            self.written.push(WrittenFile {
                partition: key,
                name: f.name,
                rows: f.rows,
                min_ts: f.min_ts,
                max_ts: f.max_ts,
                upload,
            });
        }
        Ok(())
    }

    /// Fails a partition closed: its open file is abandoned (the upload aborts), its finished
    /// files are discarded, and its later rows are only counted.
    fn withhold(&mut self, key: HourKey, finding: Finding, rows: u64) -> Result<()> {
        let mut withheld_rows = rows;
        if let Some(part) = self.parts.get_mut(&key) {
            withheld_rows += part.file.take().map_or(0, |f| f.rows);
            withheld_rows += part.builder.len() as u64;
            part.builder = B::with_capacity(0);
        }
        self.parts.remove(&key);
        let (gone, keep): (Vec<WrittenFile>, Vec<WrittenFile>) = std::mem::take(&mut self.written)
            .into_iter()
            .partition(|f| f.partition == key);
        self.written = keep;
        withheld_rows += gone.iter().map(|f| f.rows).sum::<u64>();
        discard(&self.storage, &gone)?;
        self.failed.insert(
            key,
            Withheld {
                dataset: self.spec.name.clone(),
                partition: key,
                finding,
                rows: withheld_rows,
            },
        );
        Ok(())
    }

    /// Files finished so far, not yet handed out by [`Self::finish`].
    pub fn finished_files(&self) -> usize {
        self.written.len()
    }

    /// Writes everything pending and closes all files. Returns the finished files, not yet
    /// published.
    /// Fails (after discarding every file) if the privacy self-check withheld a partition; use
    /// [`Self::finish_checked`] to publish the rest and report the withheld partitions.
    pub fn finish(self) -> Result<Vec<WrittenFile>> {
        let storage = self.storage.clone();
        let f = self.finish_checked()?;
        match f.withheld.first() {
            None => Ok(f.files),
            Some(w) => {
                let _ = discard(&storage, &f.files);
                Err(SinkError::SelfCheck {
                    dataset: w.dataset.clone(),
                    partition: w.partition.dir(),
                    column: w.finding.column.clone(),
                    kind: w.finding.kind.as_str(),
                })
            }
        }
    }

    /// Writes everything pending and closes all files. Returns the finished files (not yet
    /// published) and the partitions the privacy self-check withheld.
    pub fn finish_checked(mut self) -> Result<Finished> {
        let mut keys: Vec<HourKey> = self.parts.keys().copied().collect();
        keys.sort();
        for k in keys {
            self.flush_part(k, true)?;
        }
        let mut withheld: Vec<Withheld> = self.failed.drain().map(|(_, w)| w).collect();
        withheld.sort_by_key(|w| w.partition);
        Ok(Finished {
            files: std::mem::take(&mut self.written),
            withheld,
        })
    }
}

impl<B: RowBuilder> Drop for PartitionWriter<B> {
    /// A writer dropped without [`PartitionWriter::finish`] (an error, a failed job) removes
    /// the files it had finished; open uploads abort themselves.
    fn drop(&mut self) {
        let _ = discard(&self.storage, &self.written);
    }
}

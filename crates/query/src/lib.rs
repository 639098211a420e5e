//! `logveil query`: SQL over an output root with Apache DataFusion, aware of expiry.
//!
//! Every dataset under the root (a directory with a `_dataset.json`: raw datasets, the
//! quarantine and rollups) is registered as a table of its name, read as Hive-partitioned
//! Parquet with typed partition columns `dt` (DATE) and `hour` (INT).
//!
//! Expiry is judged once, when the query starts, at its `now`: a partition whose expiry has
//! passed, or that the retention sweep is deleting (a tombstone), is invisible even if its
//! files are still there. The table is a view that lets through only the partitions judged
//! visible (a filter on `dt` and `hour` alone, which DataFusion applies to the file listing
//! before it opens a file), so a partition that appears after the judgement is not shown
//! either: the query reads one consistent set of partitions.
//!
//! Results stream: [`Results`] hands out record batches as DataFusion produces them.
//!
//! A root may be object storage (`s3://bucket/prefix`): DataFusion reads it through the
//! sink's own store (`store`), judged from the same manifests and tombstones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{Expr, SessionConfig, SessionContext, cast, col, lit};
use futures::{StreamExt, TryStreamExt};
use logveil_model::{DatasetKind, HourKey};
use logveil_sink::Storage;
use logveil_sink::manifest::{
    DATASET_MARKER, DatasetMarker, Manifest, manifest_path, marker_path, partition_expiry,
    tombstone_path,
};
use object_store::path::Path as StorePath;

pub mod erase;
mod store;
pub mod subject;

pub use datafusion::arrow;
pub use datafusion::parquet;

/// Errors of `logveil query`. DataFusion's messages name tables, columns and the statement's
/// own literals; the datasets hold no raw identifier for them to quote.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Sink(#[from] logveil_sink::SinkError),
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("internal error: {0} (please report it)")]
    Internal(String),
    #[error(transparent)]
    Retention(#[from] logveil_retention::RetentionError),
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Usage(String),
    /// Another erasure or retention sweep holds the root.
    #[error("{0}")]
    Busy(String),
    #[error(
        "the erasure of request {request} was interrupted: finish it first by running `logveil subject erase --request-id {request}` again with the same identifiers"
    )]
    Pending { request: String },
    #[error(
        "{path}: its checksum is not the one its manifest records: it changed since logveil committed it, so it is not rewritten (nothing of this partition was erased); find out what changed it"
    )]
    Changed { path: String },
    #[error("cannot rewrite {path}: {what}")]
    Rewrite { path: String, what: String },
}

impl QueryError {
    /// A mistake in the statement (syntax, an unknown table or column, a type mismatch the
    /// planner sees), as opposed to a failure while reading the data.
    pub fn is_statement_error(&self) -> bool {
        match self {
            QueryError::DataFusion(e) => matches!(
                e.find_root(),
                DataFusionError::SQL(..)
                    | DataFusionError::Plan(_)
                    | DataFusionError::SchemaError(..)
                    | DataFusionError::NotImplemented(_)
            ),
            _ => false,
        }
    }
}

/// What a query runs against.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    pub root: PathBuf,
    /// Expiry is judged at this instant (µs).
    pub now_micros: i64,
    /// DataFusion's target partitions (threads).
    pub threads: usize,
}

/// A registered table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    /// `access`, `session`, …, `quarantine`, `rollup`.
    pub kind: String,
    /// Partitions a query can see.
    pub visible: usize,
    /// Partitions hidden because they have expired or are being swept.
    pub hidden: usize,
    /// Why the dataset could not be registered (then it is not a table of the session).
    pub error: Option<String>,
}

/// The hour partitions of one dataset that hold Parquet files, judged at `now`:
/// (visible, hidden).
fn judge(
    storage: &Storage,
    dataset: &str,
    marker: &DatasetMarker,
    now: i64,
) -> Result<(Vec<HourKey>, Vec<HourKey>), QueryError> {
    let mut with_files = BTreeSet::new();
    for o in storage.list(&StorePath::from(dataset))? {
        let parts: Vec<&str> = o.location.as_ref().split('/').collect();
        if let [_, dt, hour, name] = parts.as_slice()
            && name.ends_with(".parquet")
            && let Some(k) = HourKey::from_dirs(dt, hour)
        {
            with_files.insert(k);
        }
    }
    let (mut visible, mut hidden) = (Vec::new(), Vec::new());
    for key in with_files {
        // A damaged manifest does not make a partition visible for longer: its path and the
        // dataset's shortest retention still decide.
        let recorded = Manifest::read(storage, &manifest_path(dataset, key))
            .ok()
            .flatten()
            .and_then(|m| m.expires_micros());
        let expiry = partition_expiry(key, marker.floor_days(), recorded);
        if expiry <= now || storage.exists(&tombstone_path(dataset, key))? {
            hidden.push(key);
        } else {
            visible.push(key);
        }
    }
    Ok((visible, hidden))
}

/// A predicate on the partition directories' names (`dt`, `hour` as text) true exactly for
/// the given partitions: `dt IN (…)` for days with all 24 hours, `dt = d AND hour IN (…)` for
/// the others, OR-ed as a balanced tree (a month of partial days stays a shallow
/// expression). Canonical spellings only (`hour=07`, never `hour=7` or a stray
/// `dt=tmp`): nothing else is a partition. Comparing text, not numbers, matters: DataFusion
/// turns `hour = 7` into the listing prefix `hour=7`, which no directory has.
fn only_partitions(keys: &[HourKey]) -> Expr {
    let mut by_day: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for k in keys {
        by_day
            .entry(k.0.div_euclid(24))
            .or_default()
            .push(format!("{:02}", k.hour()));
    }
    let date = |day: i64| lit(HourKey(day * 24).date());
    let mut whole = Vec::new();
    let mut terms = Vec::new();
    for (day, hours) in by_day {
        if hours.len() == 24 {
            whole.push(date(day));
        } else {
            let hours = hours.into_iter().map(lit).collect();
            terms.push(
                col("dt")
                    .eq(date(day))
                    .and(col("hour").in_list(hours, false)),
            );
        }
    }
    if !whole.is_empty() {
        // `hour` bounded too: a stray `hour=24` or `hour=7` directory is no partition.
        let hours = (0..24).map(|h| lit(format!("{h:02}"))).collect();
        terms.push(
            col("dt")
                .in_list(whole, false)
                .and(col("hour").in_list(hours, false)),
        );
    }
    balanced_or(terms)
}

fn balanced_or(mut terms: Vec<Expr>) -> Expr {
    if terms.is_empty() {
        return lit(false);
    }
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut it = terms.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => a.or(b),
                None => a,
            });
        }
        terms = next;
    }
    terms.pop().expect("one term left")
}

/// Datasets under the root: directories with a dataset marker, by name.
fn datasets(root: &Path, storage: &Storage) -> Result<Vec<String>, QueryError> {
    if storage.local_root().is_none() {
        let mut out = Vec::new();
        for p in storage.list_level(&StorePath::default())?.common_prefixes {
            if let Some(name) = p.filename()
                && storage.exists(&marker_path(name))?
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        return Ok(out);
    }
    let rd = std::fs::read_dir(root).map_err(|source| QueryError::Io {
        path: root.display().to_string(),
        source,
    })?;
    let mut out: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().join(DATASET_MARKER).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    Ok(out)
}

/// The partition columns, as every table has them.
fn partition_cols() -> Vec<(String, DataType)> {
    vec![
        ("dt".to_string(), DataType::Date32),
        ("hour".to_string(), DataType::Int32),
    ]
}

/// The partition columns as the listing reads them: the directories' names, as text. The
/// view filters on these, then casts them to [`partition_cols`].
fn listed_partition_cols() -> Vec<(String, DataType)> {
    vec![
        ("dt".to_string(), DataType::Utf8),
        ("hour".to_string(), DataType::Utf8),
    ]
}

/// An output root judged at a query's `now`: its storage, its datasets and its tables.
pub(crate) struct Judgement {
    storage: Storage,
    judged: Vec<Judged>,
    tables: Vec<TableInfo>,
}

/// One dataset of the root, judged at the query's `now`.
pub(crate) struct Judged {
    name: String,
    marker: DatasetMarker,
    visible: Vec<HourKey>,
    hidden: Vec<HourKey>,
}

/// Reads every dataset's marker and judges its partitions. Blocking, and to be called
/// outside a tokio runtime: the sink's storage waits for its object store on an executor of
/// its own, which a runtime's cooperative budget would starve (it spun forever once a query
/// judged more partitions than the budget).
/// A dataset that cannot be read (an unreadable marker or listing) gets its reason in its
/// [`TableInfo`] and is not registered, so it fails only the queries that name it.
pub(crate) fn judge_root(opts: &QueryOptions) -> Result<Judgement, QueryError> {
    let storage = open_root(&opts.root)?;
    let mut judged = Vec::new();
    let mut tables = Vec::new();
    for name in datasets(&opts.root, &storage)? {
        let mut info = TableInfo {
            name: name.clone(),
            kind: String::new(),
            visible: 0,
            hidden: 0,
            error: None,
        };
        let j = DatasetMarker::read(&storage, &name)
            .map_err(QueryError::from)
            .and_then(|m| {
                let Some(marker) = m else { return Ok(None) };
                let (visible, hidden) = judge(&storage, &name, &marker, opts.now_micros)?;
                Ok(Some((marker, visible, hidden)))
            });
        match j {
            Ok(Some((marker, visible, hidden))) => {
                info.kind = marker.kind.clone();
                info.visible = visible.len();
                info.hidden = hidden.len();
                judged.push(Judged {
                    name,
                    marker,
                    visible,
                    hidden,
                });
            }
            Ok(None) => {}
            Err(e) => info.error = Some(e.to_string()),
        }
        tables.push(info);
    }
    Ok(Judgement {
        storage,
        judged,
        tables,
    })
}

/// An output root: a local directory, or object storage (`s3://bucket/prefix`, configured
/// from the environment like every command that takes `--root`).
pub fn open_root(root: &Path) -> Result<Storage, QueryError> {
    let location = root.to_string_lossy();
    if logveil_sink::storage::is_remote_location(&location) {
        Ok(Storage::open(&location, &BTreeMap::new())?)
    } else {
        Ok(Storage::local(root)?)
    }
}

/// Where a root's tables are, as DataFusion lists them.
enum TableRoot {
    Local(PathBuf),
    /// The root's URL (`s3://bucket/prefix`, no trailing slash).
    Remote(String),
}

impl TableRoot {
    /// The URL of a directory under the root (`rel`: `access`, `access/dt=…/hour=…`).
    fn url(&self, rel: &str) -> Result<ListingTableUrl, DataFusionError> {
        match self {
            TableRoot::Local(root) => directory_url(&root.join(rel)),
            TableRoot::Remote(base) => {
                let url = url::Url::parse(&format!("{base}/{rel}/")).map_err(|e| {
                    DataFusionError::Configuration(format!("{base}/{rel}: not a URL: {e}"))
                })?;
                ListingTableUrl::try_new(url, None)
            }
        }
    }
}

/// Registers the judged datasets in a new session, each as an expiry-aware view. A dataset
/// that cannot be registered (an unreadable footer, columns that do not merge) is left out
/// with the reason in its [`TableInfo`].
pub(crate) async fn session(
    opts: &QueryOptions,
    judgement: Judgement,
) -> Result<(SessionContext, Vec<TableInfo>), QueryError> {
    let Judgement {
        storage,
        judged,
        mut tables,
    } = judgement;
    let config = SessionConfig::new()
        .with_target_partitions(opts.threads.max(1))
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    let root = if storage.is_remote() {
        // DataFusion reads the bucket through the sink's own client (one set of
        // credentials and connections), registered for the bucket's URL.
        let base = storage.label().to_string();
        let url = url::Url::parse(&base)
            .map_err(|e| QueryError::Usage(format!("--root {base}: not a URL: {e}")))?;
        let bucket = url::Url::parse(&url[..url::Position::BeforePath])
            .map_err(|e| QueryError::Usage(format!("--root {base}: not a URL: {e}")))?;
        // DataFusion decodes the table URLs' paths (`%20` is a space), as the sink did.
        let decoded = object_store_df::path::Path::from_url_path(url.path())
            .map_err(|e| QueryError::Usage(format!("--root {base}: bad prefix: {e}")))?;
        let prefix = url.path().trim_matches('/').to_string();
        ctx.register_object_store(
            &bucket,
            Arc::new(store::RootStore::new(storage, decoded.as_ref())),
        );
        TableRoot::Remote(
            format!("{}/{prefix}", &url[..url::Position::BeforePath])
                .trim_end_matches('/')
                .to_string(),
        )
    } else {
        TableRoot::Local(opts.root.clone())
    };
    for j in judged {
        if let Err(e) = register(&ctx, &root, &j).await
            && let Some(info) = tables.iter_mut().find(|t| t.name == j.name)
        {
            info.error = Some(e.to_string());
        }
    }
    Ok((ctx, tables))
}

/// Registers one judged dataset's view.
async fn register(ctx: &SessionContext, root: &TableRoot, j: &Judged) -> Result<(), QueryError> {
    let (name, visible, hidden) = (j.name.as_str(), &j.visible, &j.hidden);
    let listing = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(listed_partition_cols());
    // A raw dataset's columns are its kind's (files from before a column was added lack
    // it and read as nulls): no footer is read to register it. A rollup's columns depend
    // on its definition: they come from the footers of the visible partitions' files
    // (merged), or with nothing visible from the hidden ones' (never their rows).
    let file_schema = match DatasetKind::parse(&j.marker.kind) {
        Some(kind) => kind.schema(),
        None => {
            let from = if visible.is_empty() {
                &hidden
            } else {
                &visible
            };
            if from.is_empty() {
                // Nothing to take the columns from: an empty table with the partition
                // columns, so that counting its rows says 0 rather than "no such table".
                let schema = Arc::new(Schema::new(
                    partition_cols()
                        .into_iter()
                        .map(|(n, t)| Field::new(n, t, false))
                        .collect::<Vec<_>>(),
                ));
                ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
                return Ok(());
            }
            let state = ctx.state();
            let schemas: Vec<Schema> = futures::stream::iter(from.iter().map(|k| {
                let (listing, state) = (&listing, &state);
                let url = root.url(&format!("{name}/{}", k.dir()));
                async move {
                    let schema = listing.infer_schema(state, &url?).await?;
                    Ok::<_, DataFusionError>(schema.as_ref().clone())
                }
            }))
            .buffered(16)
            .try_collect()
            .await?;
            Arc::new(Schema::try_merge(schemas).map_err(DataFusionError::from)?)
        }
    };
    let columns: Vec<Expr> = file_schema
        .fields()
        .iter()
        .map(|f| col(f.name().as_str()))
        .chain(
            partition_cols()
                .into_iter()
                .map(|(n, t)| cast(col(n.as_str()), t).alias(n)),
        )
        .collect();
    let config = ListingTableConfig::new(root.url(name)?)
        .with_listing_options(listing)
        .with_schema(file_schema);
    let table = ListingTable::try_new(config)?;
    // Filter on the names as listed (pruned on the listing), then type them: the user's
    // filters on `dt` and `hour` are on the typed columns, still partition columns only.
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?
        .filter(only_partitions(visible))?
        .project(columns)?
        .build()?;
    ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))?;
    Ok(())
}

/// The URL of a local directory, taken literally (`ListingTableUrl::parse` would read `*`,
/// `?` or `[` in a path as a glob).
fn directory_url(dir: &Path) -> Result<ListingTableUrl, DataFusionError> {
    let absolute = std::path::absolute(dir)?;
    let url = url::Url::from_directory_path(&absolute).map_err(|()| {
        DataFusionError::Configuration(format!("{} is not an absolute path", absolute.display()))
    })?;
    ListingTableUrl::try_new(url, None)
}

/// A running query: its schema, the tables it could see, and its batches as they come.
pub struct Results {
    // Dropped before the runtime (field order), inside it (see `Drop`).
    stream: Option<SendableRecordBatchStream>,
    runtime: Arc<tokio::runtime::Runtime>,
    schema: SchemaRef,
    tables: Vec<TableInfo>,
}

impl Results {
    /// The result's columns (known before the first batch).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Every dataset registered, with its visible and hidden partition counts.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }
}

impl Iterator for Results {
    type Item = Result<RecordBatch, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = self.stream.as_mut()?;
        let next = self.runtime.block_on(stream.next());
        if next.is_none() {
            self.stream = None;
        }
        next.map(|r| r.map_err(QueryError::from))
    }
}

impl Drop for Results {
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        self.stream.take();
    }
}

/// The runtime DataFusion's operators run on: `threads` workers.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, QueryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        // Planning recurses over the expression tree; unoptimised (test) builds of
        // DataFusion need more than tokio's 2 MiB.
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .map_err(|source| QueryError::Io {
            path: "the query runtime".into(),
            source,
        })
}

/// Plans one SQL statement (or its plan, with `explain`) and starts it. DataFusion's
/// operators run on a runtime of `opts.threads` workers, owned by the [`Results`].
pub fn query(opts: &QueryOptions, sql: &str, explain: bool) -> Result<Results, QueryError> {
    let judgement = judge_root(opts)?;
    let runtime = runtime(opts.threads)?;
    let (stream, schema, tables) = runtime.block_on(async {
        let (ctx, tables) = session(opts, judgement).await?;
        // Queries only: no DDL, no DML (`COPY … TO`, `INSERT`), no `SET`.
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let mut df = ctx.sql_with_options(sql, read_only).await?;
        if explain {
            df = df.explain(false, false)?;
        }
        let schema = Arc::new(df.schema().as_arrow().clone());
        let stream = df.execute_stream().await?;
        Ok::<_, QueryError>((stream, schema, tables))
    })?;
    Ok(Results {
        stream: Some(stream),
        runtime: Arc::new(runtime),
        schema,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(day: i64, hour: i64) -> HourKey {
        HourKey(day * 24 + hour)
    }

    #[test]
    fn the_partition_predicate_names_whole_days_and_single_hours() {
        let mut keys: Vec<HourKey> = (0..24).map(|h| key(20_000, h)).collect();
        keys.push(key(20_001, 3));
        keys.push(key(20_001, 4));
        let e = only_partitions(&keys).to_string();
        assert!(e.contains("dt IN ("), "{e}");
        assert!(e.contains(r#"hour IN ([Utf8("03"), Utf8("04")])"#), "{e}");
        assert_eq!(only_partitions(&[]).to_string(), "Boolean(false)");
    }

    #[test]
    fn a_long_or_stays_shallow() {
        fn depth(e: &Expr) -> usize {
            match e {
                Expr::BinaryExpr(b) if b.op == datafusion::logical_expr::Operator::Or => {
                    1 + depth(&b.left).max(depth(&b.right))
                }
                _ => 0,
            }
        }
        let keys: Vec<HourKey> = (0..1000).map(|d| key(20_000 + d, 5)).collect();
        assert!(depth(&only_partitions(&keys)) <= 10);
    }
}

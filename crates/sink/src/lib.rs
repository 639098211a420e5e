//! The Parquet sink: Hive-partitioned datasets (`<root>/<dataset>/dt=YYYY-MM-DD/hour=HH/`),
//! written through `object_store` so that local disk and object storage are configuration.
//!
//! - [`builders`] fills Arrow builders from privacy-safe rows, one batch at a time.
//! - [`writer`] routes rows to hour partitions and streams them into zstd Parquet files that
//!   become visible only when complete (staged name, fsync, rename).
//! - [`manifest`] keeps each partition's `_manifest.json` (files, row counts, checksums, key
//!   ids and the partition's expiry) and commits new files into partitions.
//! - [`journal`] ties the commits of a resumable source to its position (exactly once).
//! - [`storage`] is the thin synchronous layer over `object_store`.

pub mod builders;
pub mod journal;
pub mod lease;
pub mod manifest;
pub mod selfcheck;
pub mod storage;
pub mod writer;

pub use builders::{
    AccessBuilder, AppBuilder, ProxyUsageBuilder, QuarantineBuilder, RowBuilder, SessionBuilder,
    SyslogBuilder,
};
pub use manifest::{CommitReport, DatasetSpec, Manifest, RollupFacts, RunInfo, commit};
pub use parquet::file::metadata::KeyValue;
pub use storage::Storage;
pub use writer::{
    Finished, PartitionFooter, PartitionWriter, SinkConfig, Withheld, WrittenFile, discard,
};

/// Errors of the sink. Messages name the object and never contain row data.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("storage error on {path}: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("cannot open output root {root}: {source}")]
    Root {
        root: String,
        source: object_store::Error,
    },
    #[error("parquet error writing {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("arrow error building a batch for {dataset}: {source}")]
    Arrow {
        dataset: String,
        source: arrow_schema::ArrowError,
    },
    #[error(
        "{path} is not valid ({what}); restore it from backup, or move it aside (the next run writes a new one listing only its own files)"
    )]
    BadManifest { path: String, what: String },
    #[error("source journal {path} is not valid ({what})")]
    BadJournal { path: String, what: String },
    #[error(
        "dataset {dataset} holds {have}, not {want}; write to another dataset (--dataset) or another output root"
    )]
    DatasetMismatch {
        dataset: String,
        have: String,
        want: String,
    },
    #[error(
        "privacy self-check failed: dataset {dataset}, partition {partition}, column {column} holds a raw {kind}; the partition was withheld (not published). A privacy rule let an identifier through: report it, and re-ingest the partition's hour once fixed"
    )]
    SelfCheck {
        dataset: String,
        partition: String,
        column: String,
        kind: &'static str,
    },
    #[error("cannot use output root {location}: {what}")]
    Location { location: String, what: String },
    #[error(
        "{path} kept changing under concurrent writers ({attempts} conditional puts refused); retry the operation"
    )]
    Contended { path: String, attempts: u32 },
    #[error(
        "{path} was changed by another process: another instance took over this source's position (a consumer-group rebalance); this one gives it up"
    )]
    Fenced { path: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = SinkError> = std::result::Result<T, E>;

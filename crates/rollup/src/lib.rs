//! Rollups: k-anonymous aggregates of a raw dataset, written as their own Hive-partitioned
//! datasets (`<root>/<rollup>/dt=…/hour=…/rollup.parquet`) with their own, long retention,
//! so that "how many people used the billing page last quarter" has an answer after the raw
//! partitions are gone (privacy policy §9.4).
//!
//! - [`spec`]: a rollup's declaration and its plan against the raw schema (no pseudonym is
//!   ever a group key).
//! - [`agg`]: the group table of one window, distinct counts (exact, then HyperLogLog),
//!   quantiles (DDSketch) and the disclosure control (`k`).
//! - [`build`]: which windows to recompute, reading raw partitions, committing a window's
//!   file and manifest.

pub mod agg;
pub mod build;
pub mod spec;

pub use build::{Options, Report, build, source_kind};
pub use spec::{Plan, RollupSpec, Window};

/// Errors of rollups. Messages name rollups, datasets and files, never row values.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("rollup {rollup}: {what}")]
    Definition { rollup: String, what: String },
    #[error(transparent)]
    Sink(#[from] logveil_sink::SinkError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("parquet error on {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("rollup {rollup}: arrow error: {source}")]
    Arrow {
        rollup: String,
        source: arrow_schema::ArrowError,
    },
}

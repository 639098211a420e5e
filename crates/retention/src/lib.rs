//! Retention of logveil's datasets. For now this crate owns two records that retention and key
//! destruction share: legal holds ([`holds`]: periods of a dataset that must not be deleted or
//! made unlinkable) and the append-only, hash-chained audit log ([`audit`]) in which
//! destructive operations are recorded. The partition sweep builds on both.
//!
//! Nothing here prints.

pub mod audit;
pub mod holds;

pub use audit::{AuditEntry, AuditLog};
pub use holds::{Hold, HoldSet};

/// Problems with holds or the audit log. Messages say which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {what}")]
    Invalid { path: String, what: String },
    #[error(
        "audit log {path} is broken at line {line}: {what}; it has been modified or truncated outside logveil; keep it as evidence and start a new log with --audit"
    )]
    Chain {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Storage(#[from] logveil_sink::SinkError),
}

pub type Result<T, E = RetentionError> = std::result::Result<T, E>;

//! Retention of logveil's datasets:
//!
//! - [`sweep`] deletes expired partitions (tombstone, files, receipt), crash-safely;
//! - [`receipts`] is the hash-chained log of deletion receipts, kept through the root's
//!   storage (local disk or object store);
//! - [`status`] shows each dataset's retention state and verifies the receipts;
//! - [`holds`] are legal holds: periods of a dataset that must not be deleted or made
//!   unlinkable;
//! - [`audit`] is the local hash-chained audit log of key and hold operations.
//!
//! Nothing here prints.

pub mod audit;
pub mod holds;
pub mod receipts;
pub mod status;
pub mod sweep;
#[doc(hidden)]
pub mod synth;

pub use audit::{AuditEntry, AuditLog};

/// Data-subject request ids name files (erasure journals and queues): 1 to 64 letters,
/// digits, `.`, `_` or `-`, not starting with `.`.
pub fn check_request_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "request id {id:?}: use 1 to 64 letters, digits, '.', '_' or '-' (not starting with '.')"
        ))
    }
}
pub use holds::{Hold, HoldSet};
pub use receipts::ReceiptLog;
pub use status::{Status, Verification, status, verify};
pub use sweep::{Step, SweepOptions, SweepReport, Sweeper};

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
    #[error(
        "deletion receipts {path} are broken at line {line}: {what}; they were modified outside logveil: keep them as evidence and restore the segment from a backup (`logveil retention verify` fails until the chain is whole)"
    )]
    Receipts {
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

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_file_names() {
        assert!(super::check_request_id("dsr-2026-0042").is_ok());
        for bad in ["", ".hidden", "a/b", "x y", "..", &"a".repeat(65)] {
            assert!(super::check_request_id(bad).is_err(), "{bad:?}");
        }
    }
}

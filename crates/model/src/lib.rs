//! The shared vocabulary of logveil: dataset names and Arrow schemas, the privacy-safe row
//! types that flow from the privacy engine into the sink, drop and quarantine reasons, and
//! UTC time helpers (civil dates, hour partitions, RFC 3339 and CLF timestamps).
//!
//! Every other crate depends on this one; it depends on nothing of logveil's.

pub mod reason;
pub mod row;
pub mod rule;
pub mod schema;
pub mod time;

pub use reason::{DropReason, QuarantineReason};
pub use row::{AccessRow, AppRow, ProxyUsageRow, QuarantineRow, SessionRow, SyslogRow, UaFields};
pub use rule::{Rule, RuleCounts};
pub use schema::{DatasetKind, SCHEMA_VERSION};
pub use time::HourKey;

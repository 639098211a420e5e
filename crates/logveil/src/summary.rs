//! The run summary: one human line on stderr and, with `--summary-json`, a JSON object on
//! stdout whose fields are a stable interface for scripts (docs/OPERATIONS.md).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::ingest::{Counts, RunContext};

#[derive(Serialize)]
pub struct Summary {
    pub lines_read: u64,
    pub records_written: BTreeMap<String, u64>,
    pub dropped: BTreeMap<String, u64>,
    pub quarantined: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub partitions: u64,
    pub unknown_fields_dropped: u64,
    /// Proxy requests folded into `proxy_usage` aggregates (not stored one by one).
    pub proxy_requests_aggregated: u64,
    pub files: u64,
    /// `{dataset: {rule id: applications}}`: every drop, redaction and pseudonymisation,
    /// under the id of the privacy rule (and policy clause) that made it.
    pub rules: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Partitions the privacy self-check withheld (a raw address or email in a column).
    pub self_check_withheld: Vec<WithheldPartition>,
    pub seconds: f64,
    pub lines_per_second: f64,
    pub bytes_read: u64,
    pub run_id: String,
    /// Key of the current epoch (the one new events are pseudonymised with).
    pub key_id: String,
    /// Keys of the epochs of the partitions written.
    pub key_ids: Vec<String>,
    pub dev_key: bool,
    pub output: String,
}

/// A partition withheld by the privacy self-check.
#[derive(Debug, Serialize)]
pub struct WithheldPartition {
    pub dataset: String,
    pub dt: String,
    pub hour: u32,
    pub column: String,
    pub kind: &'static str,
    pub rows: u64,
}

impl Summary {
    pub fn new(c: &Counts, seconds: f64, ctx: &RunContext) -> Summary {
        Summary {
            lines_read: c.lines_read,
            records_written: c.records_written.clone(),
            dropped: c.dropped.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            quarantined: c.quarantined_total(),
            quarantined_by_reason: c
                .quarantined
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            partitions: c.partitions.len() as u64,
            unknown_fields_dropped: c.unknown_fields_dropped,
            proxy_requests_aggregated: c.aggregated,
            files: c.files,
            rules: c
                .rules
                .iter()
                .map(|(d, r)| (d.clone(), r.nonzero().collect()))
                .filter(|(_, m): &(String, BTreeMap<_, _>)| !m.is_empty())
                .collect(),
            self_check_withheld: c
                .withheld
                .iter()
                .map(|w| WithheldPartition {
                    dataset: w.dataset.clone(),
                    dt: w.partition.date(),
                    hour: w.partition.hour(),
                    column: w.finding.column.clone(),
                    kind: w.finding.kind.as_str(),
                    rows: w.rows,
                })
                .collect(),
            seconds,
            lines_per_second: if seconds > 0.0 {
                c.lines_read as f64 / seconds
            } else {
                0.0
            },
            bytes_read: c.bytes_read,
            run_id: ctx.run_id.clone(),
            key_id: ctx.ring.key_at(ctx.now_micros).id().to_string(),
            key_ids: c
                .partitions
                .iter()
                .map(|(_, hour)| {
                    let start = logveil_model::HourKey(*hour).start_micros();
                    ctx.ring.key_at(start).id().to_string()
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            dev_key: ctx.ring.is_development(),
            output: ctx.storage.label().to_string(),
        }
    }

    pub fn human(&self) -> String {
        let written: Vec<String> = self
            .records_written
            .iter()
            .map(|(k, v)| format!("{v} to {k}"))
            .collect();
        let dropped: u64 = self.dropped.values().sum();
        let aggregated = if self.proxy_requests_aggregated > 0 {
            format!(
                ", {} proxy requests aggregated",
                self.proxy_requests_aggregated
            )
        } else {
            String::new()
        };
        format!(
            "{} lines read, {} records written ({}){aggregated}, {} dropped, {} quarantined; {} files in {} partitions; {:.2}s ({:.0} lines/s){}",
            self.lines_read,
            self.records_written.values().sum::<u64>(),
            if written.is_empty() {
                "none".to_string()
            } else {
                written.join(", ")
            },
            dropped,
            self.quarantined,
            self.files,
            self.partitions,
            self.seconds,
            self.lines_per_second,
            if self.dev_key {
                " [DEVELOPMENT KEY]"
            } else {
                ""
            }
        )
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("summary serialises")
    }
}

//! Aggregation of proxy metadata into `proxy_usage` rows (policy §5.2.3: limited technical
//! metadata, temporarily, never destinations). Each proxied request adds to the sums of its
//! (time window, account pseudonym, client network, status class); nothing per request is
//! kept. Memory is bounded: when the number of groups reaches a limit, the sums so far are
//! emitted as partial rows and counting starts afresh. Rows are therefore *additive*: an
//! analyst sums `requests`, `bytes_*` and `duration_ms_sum` over equal keys (and takes the
//! max of `duration_ms_max`).

use std::collections::HashMap;

use logveil_model::ProxyUsageRow;
use logveil_parse::proxy::ProxyRecord;

use crate::engine::ProxyFacts;

/// Default aggregation window: one hour.
pub const DEFAULT_WINDOW_SECONDS: u32 = 3600;
/// Default number of groups held before partial rows are emitted (about 20 MB per worker).
pub const DEFAULT_MAX_GROUPS: usize = 1 << 16;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    window_start: i64,
    facts: ProxyFacts,
    /// 1–5 for 1xx–5xx, 0 for none or out of range.
    status_class: u8,
}

#[derive(Clone, Copy, Default)]
struct Sums {
    requests: u64,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms_sum: u64,
    duration_ms_max: u64,
}

const STATUS_CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// Sums proxy requests per window, account, network and status class.
pub struct ProxyAggregator {
    window_micros: i64,
    window_seconds: u32,
    max_groups: usize,
    groups: HashMap<GroupKey, Sums, foldhash::fast::RandomState>,
}

impl ProxyAggregator {
    /// `window_seconds` must be at least 1 (values below are raised to 1).
    pub fn new(window_seconds: u32, max_groups: usize) -> ProxyAggregator {
        let window_seconds = window_seconds.max(1);
        ProxyAggregator {
            window_micros: i64::from(window_seconds) * 1_000_000,
            window_seconds,
            max_groups: max_groups.max(1),
            groups: HashMap::default(),
        }
    }

    /// Number of groups held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// True when the caller should [`drain`](Self::drain) before adding more.
    pub fn is_full(&self) -> bool {
        self.groups.len() >= self.max_groups
    }

    /// Adds one request.
    pub fn add(&mut self, rec: &ProxyRecord<'_>, facts: ProxyFacts) {
        let window_start = rec.ts_micros.div_euclid(self.window_micros) * self.window_micros;
        let status_class = match rec.status {
            Some(s @ 100..=599) => (s / 100) as u8,
            _ => 0,
        };
        let sums = self
            .groups
            .entry(GroupKey {
                window_start,
                facts,
                status_class,
            })
            .or_default();
        let d = rec.duration_ms.unwrap_or(0);
        sums.requests += 1;
        sums.bytes_in = sums.bytes_in.saturating_add(rec.bytes_in.unwrap_or(0));
        sums.bytes_out = sums.bytes_out.saturating_add(rec.bytes_out.unwrap_or(0));
        sums.duration_ms_sum = sums.duration_ms_sum.saturating_add(d);
        sums.duration_ms_max = sums.duration_ms_max.max(d);
    }

    /// Emits every group as a row (in window order) and empties the aggregator.
    pub fn drain<E>(
        &mut self,
        key_ids: &[String],
        mut emit: impl FnMut(&ProxyUsageRow<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        // Taking the map also frees its table: a drained aggregator holds no memory.
        let mut groups: Vec<(GroupKey, Sums)> =
            std::mem::take(&mut self.groups).into_iter().collect();
        groups.sort_unstable_by_key(|(k, _)| k.window_start);
        for (k, s) in &groups {
            emit(&ProxyUsageRow {
                window_start_micros: k.window_start,
                window_seconds: self.window_seconds,
                account_pseudonym: k.facts.account.as_ref().map(|a| a.as_str()),
                ip_network: k.facts.network.as_str(),
                status_class: STATUS_CLASSES
                    .get(usize::from(k.status_class))
                    .copied()
                    .unwrap_or("none"),
                requests: s.requests,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                duration_ms_sum: s.duration_ms_sum,
                duration_ms_max: s.duration_ms_max,
                key_id: key_ids
                    .get(k.facts.epoch as usize)
                    .map_or("", String::as_str),
            })?;
        }
        Ok(())
    }
}

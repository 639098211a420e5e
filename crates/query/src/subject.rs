//! Data-subject requests, finding: which rows of which partitions hold a subject.
//!
//! The datasets hold pseudonyms, never the identifiers a person can prove (their IP
//! addresses, device ids, account id). [`Needles::new`] turns those into the pseudonyms of
//! every key epoch that still has its key; epochs whose key was shredded are listed as
//! anonymised, since nothing can link their rows to anyone any more. [`find`] then counts,
//! per dataset and partition, the visible rows whose pseudonym columns hold one of them, or
//! whose free text (`message`) holds the scrubbed form `<ip:P>` or `<id:P>` that the
//! scrubber writes for an address or a device UUID. It runs as one query per dataset through
//! the same expiry-aware session as `logveil query`, so partitions expired at `now` are
//! treated as gone, and pruning by partition (`--from`/`--to`), Parquet statistics and
//! bloom filters applies.
//!
//! The raw identifiers live only in [`Subject`], whose `Debug` does not show them; nothing
//! here writes or returns them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, Date32Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_nested::expr_fn::{array_to_string, map_values};
use datafusion::prelude::{Expr, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use logveil_model::HourKey;
use logveil_privacy::KeyRing;
use logveil_privacy::pseudonym::{IdKind, Pseudonymiser};
use serde::{Deserialize, Serialize};

use crate::{QueryError, QueryOptions, Results, TableInfo, session};

/// The identifiers a data subject proved are theirs.
#[derive(Clone, Default)]
pub struct Subject {
    pub ips: Vec<IpAddr>,
    pub device_ids: Vec<String>,
    pub account_ids: Vec<String>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Subject {{ {} ip(s), {} device id(s), {} account id(s) }}",
            self.ips.len(),
            self.device_ids.len(),
            self.account_ids.len()
        )
    }
}

impl Subject {
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.device_ids.is_empty() && self.account_ids.is_empty()
    }
}

/// The subject's pseudonyms under every live key epoch. `Debug` shows counts only.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Needles {
    pub ip: Vec<String>,
    pub device: Vec<String>,
    pub account: Vec<String>,
    /// Pseudonyms of the forms `<id:P>` the scrubber writes in free text for a UUID (always
    /// hashed as a device id, whatever the UUID names): of every device and account id given
    /// that is a UUID.
    pub text_id: Vec<String>,
    /// Key ids whose pseudonyms were computed.
    pub live_epochs: Vec<String>,
    /// Key ids whose key was shredded: their rows are anonymised and cannot be found.
    pub shredded_epochs: Vec<String>,
}

impl std::fmt::Debug for Needles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Needles {{ {} ip, {} device, {} account, {} text pseudonym(s); epochs {:?}, shredded {:?} }}",
            self.ip.len(),
            self.device.len(),
            self.account.len(),
            self.text_id.len(),
            self.live_epochs,
            self.shredded_epochs
        )
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The spellings of an id that the logs may hold: as given (ids are hashed exactly as
/// written), and for a UUID also without braces, in lower and in upper case (one device
/// logs its UUID in either case, Windows in braces).
fn spellings(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    let bare = id
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(id);
    if is_uuid(bare) {
        for v in [
            bare.to_string(),
            bare.to_ascii_lowercase(),
            bare.to_ascii_uppercase(),
        ] {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

impl Needles {
    pub fn new(ring: &KeyRing, s: &Subject) -> Needles {
        let mut n = Needles::default();
        let devices: Vec<String> = s.device_ids.iter().flat_map(|d| spellings(d)).collect();
        let accounts: Vec<String> = s.account_ids.iter().flat_map(|a| spellings(a)).collect();
        let uuids: Vec<&String> = devices
            .iter()
            .chain(&accounts)
            .filter(|v| is_uuid(v))
            .collect();
        for key in ring.keys() {
            let Some(p) = Pseudonymiser::try_new(key) else {
                n.shredded_epochs.push(key.id().to_string());
                continue;
            };
            n.live_epochs.push(key.id().to_string());
            n.ip.extend(
                s.ips
                    .iter()
                    .map(|a| p.ip_pseudonym(*a).as_str().to_string()),
            );
            let hash = |kind, v: &String| p.pseudonym(kind, v.as_bytes()).as_str().to_string();
            n.device
                .extend(devices.iter().map(|v| hash(IdKind::Device, v)));
            n.account
                .extend(accounts.iter().map(|v| hash(IdKind::Account, v)));
            for u in &uuids {
                let t = hash(IdKind::Device, u);
                if !n.text_id.contains(&t) {
                    n.text_id.push(t);
                }
            }
        }
        n
    }

    /// A digest of the pseudonyms and the period: which subject an erasure journal is for,
    /// without naming them.
    pub fn digest(&self, days: DayRange) -> String {
        let mut h = blake3::Hasher::new_derive_key("logveil erasure subject v1");
        for list in [&self.ip, &self.device, &self.account, &self.text_id] {
            let mut sorted: Vec<&String> = list.iter().collect();
            sorted.sort();
            for v in sorted {
                h.update(v.as_bytes());
                h.update(b"\n");
            }
            h.update(b"|");
        }
        h.update(format!("{:?}-{:?}", days.from, days.to).as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// The predicate on a table with these columns (name, type) that holds for the subject's
    /// rows, or `None` if the table has no column that could hold them.
    fn predicate(&self, columns: &[(String, DataType)]) -> Option<Expr> {
        let has = |name: &str| columns.iter().any(|(n, _)| n == name);
        let is_text = |name: &str| {
            columns.iter().any(|(n, t)| {
                n == name && matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            })
        };
        let mut terms = Vec::new();
        for (column, values) in [
            ("ip_pseudonym", &self.ip),
            ("device_pseudonym", &self.device),
            ("account_pseudonym", &self.account),
        ] {
            if has(column) && !values.is_empty() {
                terms.push(
                    col(column).in_list(values.iter().map(|v| lit(v.as_str())).collect(), false),
                );
            }
        }
        // The scrubber's forms in free text: `<ip:P>` for an address, `<id:P>` for a UUID.
        // Pseudonyms are hex digits: nothing in them is a LIKE wildcard.
        let forms: Vec<String> = self
            .ip
            .iter()
            .map(|p| format!("%<ip:{p}>%"))
            .chain(self.text_id.iter().map(|p| format!("%<id:{p}>%")))
            .collect();
        if is_text("message") {
            terms.extend(forms.iter().map(|f| col("message").like(lit(f.as_str()))));
        }
        if columns
            .iter()
            .any(|(n, t)| n == "attributes" && matches!(t, DataType::Map(..)))
        {
            // `app.attributes`: kept fields, their values scrubbed like `message`.
            let values = array_to_string(map_values(col("attributes")), lit("\u{1f}"));
            terms.extend(forms.iter().map(|f| values.clone().like(lit(f.as_str()))));
        }
        terms.into_iter().reduce(Expr::or)
    }
}

/// Where a subject's rows are in one dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub dataset: String,
    pub kind: String,
    /// Visible partitions holding the subject's rows, and how many rows each holds.
    pub partitions: Vec<(HourKey, u64)>,
    /// Partitions not searched because they had expired at `now` or were being swept
    /// (their files may still be on disk until the sweep deletes them).
    pub expired_partitions: usize,
}

impl Found {
    pub fn rows(&self) -> u64 {
        self.partitions.iter().map(|(_, n)| n).sum()
    }
}

/// The answer to a find.
#[derive(Clone, Debug)]
pub struct FindReport {
    pub needles: Needles,
    /// Every dataset searched, in name order, including those where nothing was found.
    pub datasets: Vec<Found>,
    /// Datasets not searched, and why: rollups (aggregates with no pseudonym), the
    /// quarantine (lines are scrubbed with placeholders that name no one), datasets without
    /// a column that could hold the identifiers given, and any dataset that could not be
    /// read (the report must say so rather than leave it out).
    pub not_searched: Vec<(String, String)>,
}

/// Days (since 1970-01-01) bounding the search, both inclusive.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct DayRange {
    pub from: Option<i32>,
    pub to: Option<i32>,
}

/// A search for one subject over an output root: the datasets judged at `now` (expired
/// partitions invisible), registered once, and the predicate for each. [`find`](Self::find)
/// counts the subject's rows; [`rows`](Self::rows) streams them (export).
pub struct SubjectSearch {
    runtime: Arc<tokio::runtime::Runtime>,
    ctx: SessionContext,
    tables: Vec<TableInfo>,
    retention: BTreeMap<String, u32>,
    needles: Needles,
    days: DayRange,
}

/// What can be searched in one dataset: its predicate, or why it is not searched.
enum Plan {
    Search(Expr),
    Skip(String),
}

impl SubjectSearch {
    /// Judges the root and registers its datasets, for the subject's pseudonyms.
    pub fn open(
        opts: &QueryOptions,
        ring: &KeyRing,
        subject: &Subject,
        days: DayRange,
    ) -> Result<SubjectSearch, QueryError> {
        Self::with_needles(opts, Needles::new(ring, subject), days)
    }

    /// As [`open`](Self::open), for pseudonyms already computed (a queued erasure).
    pub fn with_needles(
        opts: &QueryOptions,
        needles: Needles,
        days: DayRange,
    ) -> Result<SubjectSearch, QueryError> {
        let judgement = crate::judge_root(opts)?;
        let retention = judgement
            .judged
            .iter()
            .map(|j| (j.name.clone(), j.marker.retention_days))
            .collect();
        let runtime = crate::runtime(opts.threads)?;
        let (ctx, tables) = runtime.block_on(session(opts, judgement))?;
        Ok(SubjectSearch {
            runtime: Arc::new(runtime),
            ctx,
            tables,
            retention,
            needles,
            days,
        })
    }

    pub fn needles(&self) -> &Needles {
        &self.needles
    }

    /// Every dataset of the root, as judged.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// The retention (days) a dataset's marker records.
    pub fn retention_days(&self, dataset: &str) -> Option<u32> {
        self.retention.get(dataset).copied()
    }

    /// The predicate for a dataset, or why it is not searched.
    async fn plan(&self, t: &TableInfo) -> Result<Option<Plan>, QueryError> {
        let why = match (&t.error, t.kind.as_str()) {
            (Some(e), _) => format!("could not be read: {e}"),
            (None, "") => return Ok(None),
            (None, "rollup") => "aggregates: no pseudonym, k-anonymous".to_string(),
            (None, "quarantine") => {
                "scrubbed lines: identifiers masked, not pseudonymised".to_string()
            }
            _ => {
                let df = self.ctx.table(t.name.as_str()).await?;
                let columns: Vec<(String, DataType)> = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().clone()))
                    .collect();
                let Some(mut pred) = self.needles.predicate(&columns) else {
                    return Ok(Some(Plan::Skip(
                        "no column that could hold these identifiers".to_string(),
                    )));
                };
                let day = |d: i32| lit(ScalarValue::Date32(Some(d)));
                if let Some(from) = self.days.from {
                    pred = col("dt").gt_eq(day(from)).and(pred);
                }
                if let Some(to) = self.days.to {
                    pred = col("dt").lt_eq(day(to)).and(pred);
                }
                return Ok(Some(Plan::Search(pred)));
            }
        };
        Ok(Some(Plan::Skip(why)))
    }

    /// Counts the subject's rows per dataset and partition.
    pub fn find(&self) -> Result<FindReport, QueryError> {
        self.runtime.block_on(async {
            let mut datasets = Vec::new();
            let mut not_searched = Vec::new();
            for t in &self.tables {
                let pred = match self.plan(t).await? {
                    None => continue,
                    Some(Plan::Skip(why)) => {
                        not_searched.push((t.name.clone(), why));
                        continue;
                    }
                    Some(Plan::Search(pred)) => pred,
                };
                let batches = self
                    .ctx
                    .table(t.name.as_str())
                    .await?
                    .filter(pred)?
                    .aggregate(
                        vec![col("dt"), col("hour")],
                        vec![count(lit(1)).alias("rows")],
                    )?
                    .collect()
                    .await?;
                let mut partitions = Vec::new();
                for b in &batches {
                    let (Some(dt), Some(hour), Some(rows)) = (
                        b.column(0).as_any().downcast_ref::<Date32Array>(),
                        b.column(1).as_any().downcast_ref::<Int32Array>(),
                        b.column(2).as_any().downcast_ref::<Int64Array>(),
                    ) else {
                        return Err(QueryError::Internal(
                            "unexpected column types in a find".into(),
                        ));
                    };
                    for i in 0..b.num_rows() {
                        if dt.is_null(i) || hour.is_null(i) {
                            continue;
                        }
                        let key = HourKey(i64::from(dt.value(i)) * 24 + i64::from(hour.value(i)));
                        partitions.push((key, rows.value(i).max(0) as u64));
                    }
                }
                partitions.sort();
                datasets.push(Found {
                    dataset: t.name.clone(),
                    kind: t.kind.clone(),
                    partitions,
                    expired_partitions: t.hidden,
                });
            }
            Ok(FindReport {
                needles: self.needles.clone(),
                datasets,
                not_searched,
            })
        })
    }

    /// The subject's rows of one dataset, streamed in no particular order (`None` if the
    /// dataset is not searched).
    pub fn rows(&self, dataset: &str) -> Result<Option<Results>, QueryError> {
        let Some(t) = self.tables.iter().find(|t| t.name == dataset) else {
            return Ok(None);
        };
        let runtime = self.runtime.clone();
        let started = runtime.block_on(async {
            let Some(Plan::Search(pred)) = self.plan(t).await? else {
                return Ok(None);
            };
            let df = self.ctx.table(dataset).await?.filter(pred)?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let stream = df.execute_stream().await?;
            Ok::<_, QueryError>(Some((stream, schema)))
        })?;
        Ok(started.map(|(stream, schema)| Results {
            stream: Some(stream),
            runtime,
            schema,
            tables: Vec::new(),
        }))
    }
}

/// Finds the subject's rows in every dataset under the root.
pub fn find(
    opts: &QueryOptions,
    ring: &KeyRing,
    subject: &Subject,
    days: DayRange,
) -> Result<FindReport, QueryError> {
    SubjectSearch::open(opts, ring, subject, days)?.find()
}

/// What a dataset of this kind holds, in the words of the privacy policy (§1.12, §4.3), for
/// the cover sheet of an export.
pub fn category(kind: &str) -> &'static str {
    match kind {
        "access" => {
            "technical logs (policy 4.3): requests to our websites and dashboard: time, pseudonymised IP address and its network, method, page visited (without query string), status, size, browser and device family"
        }
        "session" => {
            "session and analytics data (policy 4.3, 6): events from the dashboard, browser extension and apps: time, pseudonymised device, account and session ids, page, event name, app and browser data, consent"
        }
        "syslog" => {
            "technical logs (policy 4.3): system messages of our servers, with IP addresses and device ids replaced by pseudonyms"
        }
        "app" => {
            "technical logs (policy 4.3): application messages of our services, with identifiers pseudonymised and secrets removed"
        }
        "proxy_usage" => {
            "proxy session metadata (policy 5.2.3): time, pseudonymised account and IP address, bytes and duration; never destinations or content"
        }
        _ => "other technical data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_has_its_spellings_and_other_ids_only_their_own() {
        let u = "6F1C2B9E-0C1A-4B7E-9A51-2F7D0B1C3E4A";
        let s = spellings(&format!("{{{u}}}"));
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s.contains(&u.to_string()) && s.contains(&u.to_ascii_lowercase()));
        assert_eq!(spellings("Acct-7"), vec!["Acct-7".to_string()]);
        assert!(!is_uuid("6f1c2b9e-0c1a-4b7e-9a51-2f7d0b1c3e4"));
    }

    #[test]
    fn the_predicate_covers_every_column_that_can_hold_the_subject() {
        let ring = KeyRing::development();
        let subject = Subject {
            ips: vec!["203.0.113.9".parse().unwrap()],
            device_ids: vec!["6f1c2b9e-0c1a-4b7e-9a51-2f7d0b1c3e4a".into()],
            account_ids: vec!["a-1".into()],
        };
        let n = Needles::new(&ring, &subject);
        assert_eq!(
            (n.ip.len(), n.device.len(), n.account.len(), n.text_id.len()),
            (1, 2, 1, 2)
        );
        let utf8 = |c: &str| (c.to_string(), DataType::Utf8);
        let attributes = (
            "attributes".to_string(),
            DataType::Map(
                std::sync::Arc::new(datafusion::arrow::datatypes::Field::new(
                    "entries",
                    DataType::Struct(
                        vec![
                            datafusion::arrow::datatypes::Field::new("keys", DataType::Utf8, false),
                            datafusion::arrow::datatypes::Field::new(
                                "values",
                                DataType::Utf8,
                                true,
                            ),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            ),
        );
        let app = [
            utf8("ip_pseudonym"),
            utf8("device_pseudonym"),
            utf8("message"),
            attributes,
        ];
        let e = n.predicate(&app).unwrap().to_string();
        for needle in [
            "ip_pseudonym IN",
            "device_pseudonym IN",
            "message LIKE",
            "map_values",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        assert!(!e.contains("account_pseudonym"), "{e}");
        assert!(n.predicate(&[utf8("path")]).is_none());
        // Debug shows counts, never pseudonyms.
        assert!(!format!("{n:?}").contains(&n.ip[0]));
    }
}

//! What a rollup is: its declaration ([`RollupSpec`], from `[rollups.NAME]` in the pipeline
//! config), checked against the raw dataset's schema into a [`Plan`]: which raw columns to
//! read, how each becomes a group key, and the rollup's output schema.
//!
//! A rollup never groups by a pseudonym (or by `key_id`, the timestamp or free text), so no
//! pseudonym can reach it; pseudonym columns are only ever counted (`subject`, `distinct`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::RollupError;

/// How long a rollup row's window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Window {
    Hour,
    Day,
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "hour" => Some(Window::Hour),
            "day" => Some(Window::Day),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// Hours in one window.
    pub fn hours(self) -> i64 {
        match self {
            Window::Hour => 1,
            Window::Day => 24,
        }
    }
}

/// The default `k`: the fewest distinct subjects a published row may stand for.
pub const DEFAULT_K: u32 = 5;
/// The largest `k` accepted (distinct counts are exact far beyond it).
pub const MAX_K: u32 = 1000;
/// The default retention of a rollup: two years.
pub const DEFAULT_RETENTION_DAYS: u32 = 730;

/// A rollup as declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupSpec {
    /// The rollup's dataset name (its directory under the root).
    pub name: String,
    /// The raw dataset it aggregates.
    pub source: String,
    pub window: Window,
    /// Columns of the source, or the derived `status_class` (`2xx`… from `status`) and
    /// `ip_family` (`ipv4`/`ipv6` from `ip_network`).
    pub group_by: Vec<String>,
    /// The pseudonym column that identifies a subject (a person's device, address…); `k`
    /// counts distinct values of it.
    pub subject: String,
    /// More columns whose distinct values are counted per group (`distinct_<column>`).
    pub distinct: Vec<String>,
    /// A numeric column summarised by quantiles (`<column>_p50`, `_p90`, `_p99`).
    pub quantiles: Option<String>,
    pub k: u32,
    pub retention_days: u32,
}

impl RollupSpec {
    /// A stable digest of everything that decides the rollup's content: a change recomputes
    /// every window whose raw data still exists.
    pub fn definition_digest(&self) -> String {
        let text = format!(
            "v1\nsource={}\nwindow={}\ngroup_by={}\nsubject={}\ndistinct={}\nquantiles={}\nk={}\n",
            self.source,
            self.window.as_str(),
            self.group_by.join(","),
            self.subject,
            self.distinct.join(","),
            self.quantiles.as_deref().unwrap_or(""),
            self.k,
        );
        blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
    }
}

/// The value type of a group-by column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimType {
    Utf8,
    UInt8,
    UInt16,
    UInt32,
    Boolean,
}

impl DimType {
    fn of(t: &DataType) -> Option<DimType> {
        Some(match t {
            DataType::Utf8 => DimType::Utf8,
            DataType::UInt8 => DimType::UInt8,
            DataType::UInt16 => DimType::UInt16,
            DataType::UInt32 => DimType::UInt32,
            DataType::Boolean => DimType::Boolean,
            _ => return None,
        })
    }

    pub fn data_type(self) -> DataType {
        match self {
            DimType::Utf8 => DataType::Utf8,
            DimType::UInt8 => DataType::UInt8,
            DimType::UInt16 => DataType::UInt16,
            DimType::UInt32 => DataType::UInt32,
            DimType::Boolean => DataType::Boolean,
        }
    }
}

/// How one group-by column is computed from the raw columns read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The raw column at this index of the read columns.
    Column { input: usize, ty: DimType },
    /// `2xx`… from the `status` column at this index.
    StatusClass { input: usize },
    /// `ipv4` / `ipv6` from the `ip_network` column at this index.
    IpFamily { input: usize },
}

impl Dim {
    pub fn ty(&self) -> DimType {
        match self {
            Dim::Column { ty, .. } => *ty,
            Dim::StatusClass { .. } | Dim::IpFamily { .. } => DimType::Utf8,
        }
    }
}

/// A counted column: its index among the read columns, and whether its values are
/// pseudonyms (which differ between key epochs: counted per epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub input: usize,
    pub pseudonym: bool,
}

/// A rollup checked against its source's schema.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spec: RollupSpec,
    /// Raw columns to read, by name, in the order the indices below refer to.
    pub read: Vec<String>,
    pub key_id: usize,
    /// `consent_statistics`, when the source records consent: rows without it are skipped.
    pub consent: Option<usize>,
    pub dims: Vec<Dim>,
    pub subject: Counted,
    pub distinct: Vec<Counted>,
    /// The quantile column and whether it is a float.
    pub quantiles: Option<(usize, bool)>,
    pub schema: SchemaRef,
}

/// Columns that can never be grouped by: free text, time, keys.
const NEVER_GROUP: [&str; 8] = [
    "ts",
    "key_id",
    "message",
    "attributes",
    "line",
    "detail",
    "ingested_at",
    "window_start",
];

fn is_pseudonym(name: &str) -> bool {
    name.ends_with("_pseudonym")
}

impl Plan {
    /// Checks `spec` against the raw dataset's schema.
    pub fn new(spec: &RollupSpec, source: &Schema) -> Result<Plan, RollupError> {
        let bad = |what: String| RollupError::Definition {
            rollup: spec.name.clone(),
            what,
        };
        if spec.k == 0 || spec.k > MAX_K {
            return Err(bad(format!("k = {} must be 1 to {MAX_K}", spec.k)));
        }
        if spec.group_by.is_empty() {
            return Err(bad("group_by is empty; name at least one column".into()));
        }
        let mut read: Vec<String> = Vec::new();
        let mut input = |name: &str| -> usize {
            if let Some(i) = read.iter().position(|r| r == name) {
                return i;
            }
            read.push(name.to_string());
            read.len() - 1
        };
        let field = |name: &str| source.field_with_name(name).ok();
        let need = |name: &str, why: &str| {
            field(name).ok_or_else(|| {
                bad(format!(
                    "{why} {name:?} is not a column of dataset {:?} (see docs/SCHEMA.md)",
                    spec.source
                ))
            })
        };
        need("key_id", "the key column")?;
        let key_id = input("key_id");
        let consent = field("consent_statistics").map(|_| input("consent_statistics"));
        let mut dims = Vec::new();
        let mut out = vec![Field::new(
            "window_start",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        )];
        for name in &spec.group_by {
            if out.iter().any(|f| f.name() == name) {
                return Err(bad(format!("group_by names {name:?} twice")));
            }
            let dim = match name.as_str() {
                "status_class" if field("status_class").is_none() => {
                    need("status", "status_class is derived from")?;
                    Dim::StatusClass {
                        input: input("status"),
                    }
                }
                "ip_family" => {
                    need("ip_network", "ip_family is derived from")?;
                    Dim::IpFamily {
                        input: input("ip_network"),
                    }
                }
                _ => {
                    let f = need(name, "group_by column")?;
                    if is_pseudonym(name) || NEVER_GROUP.contains(&name.as_str()) {
                        return Err(bad(format!(
                            "cannot group by {name:?}: rollups never hold pseudonyms, keys, times or free text (count pseudonyms with `subject` or `distinct`)"
                        )));
                    }
                    let ty = DimType::of(f.data_type()).ok_or_else(|| {
                        bad(format!(
                            "cannot group by {name:?}: its type {} is not text, an unsigned integer or a boolean",
                            f.data_type()
                        ))
                    })?;
                    Dim::Column {
                        input: input(name),
                        ty,
                    }
                }
            };
            out.push(Field::new(name, dim.ty().data_type(), true));
            dims.push(dim);
        }
        out.push(Field::new("other", DataType::Boolean, false));
        out.push(Field::new("events", DataType::UInt64, false));
        out.push(Field::new("subjects", DataType::UInt64, false));
        let f = need(&spec.subject, "subject")?;
        if !is_pseudonym(&spec.subject) || f.data_type() != &DataType::Utf8 {
            return Err(bad(format!(
                "subject {:?} must be a pseudonym column (ip_pseudonym, device_pseudonym, account_pseudonym, session_pseudonym)",
                spec.subject
            )));
        }
        let subject = Counted {
            input: input(&spec.subject),
            pseudonym: true,
        };
        let mut distinct = Vec::new();
        for name in &spec.distinct {
            let f = need(name, "distinct column")?;
            if f.data_type() != &DataType::Utf8 {
                return Err(bad(format!("distinct column {name:?} must be text")));
            }
            let col = format!("distinct_{name}");
            if out.iter().any(|f| f.name() == &col) {
                return Err(bad(format!("distinct names {name:?} twice")));
            }
            out.push(Field::new(col, DataType::UInt64, false));
            distinct.push(Counted {
                input: input(name),
                pseudonym: is_pseudonym(name),
            });
        }
        let quantiles = match &spec.quantiles {
            None => None,
            Some(name) => {
                let f = need(name, "quantiles column")?;
                let float = match f.data_type() {
                    DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => false,
                    DataType::Float64 => true,
                    t => {
                        return Err(bad(format!(
                            "quantiles column {name:?} must be numeric, not {t}"
                        )));
                    }
                };
                for p in ["p50", "p90", "p99"] {
                    out.push(Field::new(format!("{name}_{p}"), DataType::Float64, true));
                }
                Some((input(name), float))
            }
        };
        Ok(Plan {
            spec: spec.clone(),
            read,
            key_id,
            consent,
            dims,
            subject,
            distinct,
            quantiles,
            schema: Arc::new(Schema::new(out)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logveil_model::DatasetKind;

    pub(crate) fn spec(source: &str, group_by: &[&str], subject: &str) -> RollupSpec {
        RollupSpec {
            name: "r".into(),
            source: source.into(),
            window: Window::Hour,
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            subject: subject.into(),
            distinct: vec![],
            quantiles: None,
            k: 5,
            retention_days: 730,
        }
    }

    #[test]
    fn plans_columns_and_derived_dimensions() {
        let mut s = spec(
            "access",
            &["path", "status_class", "ip_family", "browser_family"],
            "ip_pseudonym",
        );
        s.distinct = vec!["ip_network".into()];
        s.quantiles = Some("request_time_us".into());
        let p = Plan::new(&s, &DatasetKind::Access.schema()).unwrap();
        let names: Vec<&str> = p
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "window_start",
                "path",
                "status_class",
                "ip_family",
                "browser_family",
                "other",
                "events",
                "subjects",
                "distinct_ip_network",
                "request_time_us_p50",
                "request_time_us_p90",
                "request_time_us_p99"
            ]
        );
        assert!(p.consent.is_none());
        assert!(!p.distinct[0].pseudonym);
        let session = spec("session", &["page"], "device_pseudonym");
        assert!(
            Plan::new(&session, &DatasetKind::Session.schema())
                .unwrap()
                .consent
                .is_some()
        );
    }

    #[test]
    fn refuses_pseudonyms_text_and_unknown_columns() {
        let schema = DatasetKind::Session.schema();
        for (group, subject, want) in [
            (
                &["device_pseudonym"][..],
                "device_pseudonym",
                "never hold pseudonyms",
            ),
            (&["key_id"][..], "device_pseudonym", "never hold pseudonyms"),
            (&["nope"][..], "device_pseudonym", "not a column"),
            (&["page"][..], "page", "must be a pseudonym"),
            (&[][..], "device_pseudonym", "group_by is empty"),
            (&["page", "page"][..], "device_pseudonym", "twice"),
        ] {
            let err = Plan::new(&spec("session", group, subject), &schema)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{group:?}/{subject}: {err}");
        }
        let mut s = spec("session", &["page"], "device_pseudonym");
        s.k = 0;
        assert!(Plan::new(&s, &schema).is_err());
    }

    #[test]
    fn the_definition_digest_follows_what_changes_content() {
        let a = spec("access", &["path"], "ip_pseudonym");
        let mut b = a.clone();
        b.retention_days = 10;
        assert_eq!(a.definition_digest(), b.definition_digest());
        b.k = 6;
        assert_ne!(a.definition_digest(), b.definition_digest());
    }
}

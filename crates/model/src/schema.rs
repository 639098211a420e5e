//! The Arrow schemas of logveil's datasets. These are the contract with analysts: a change
//! that is not purely additive bumps [`SCHEMA_VERSION`] (recorded in every manifest and in
//! every Parquet footer). Column meanings are documented in `docs/SCHEMA.md`.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the dataset schemas below.
pub const SCHEMA_VERSION: u32 = 1;

/// The shape of a dataset's rows. Dataset *names* are configurable; kinds are not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    Access,
    Session,
    Quarantine,
}

impl DatasetKind {
    /// Default dataset name (the directory under the output root).
    pub fn default_name(self) -> &'static str {
        match self {
            DatasetKind::Access => "access",
            DatasetKind::Session => "session",
            DatasetKind::Quarantine => "_quarantine",
        }
    }

    /// Default retention in days after the end of a partition's hour.
    pub fn default_retention_days(self) -> u32 {
        match self {
            DatasetKind::Access => 30,
            DatasetKind::Session => 90,
            DatasetKind::Quarantine => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Access => "access",
            DatasetKind::Session => "session",
            DatasetKind::Quarantine => "quarantine",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            DatasetKind::Access => access_schema(),
            DatasetKind::Session => session_schema(),
            DatasetKind::Quarantine => quarantine_schema(),
        }
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn ua_fields() -> Vec<Field> {
    vec![
        utf8("browser_family", false),
        Field::new("browser_major", DataType::UInt32, true),
        utf8("os_family", false),
        Field::new("os_major", DataType::UInt32, true),
        utf8("device_class", false),
    ]
}

/// Columns of the `access` dataset, in order.
pub fn access_schema() -> SchemaRef {
    let mut f = vec![
        Field::new("ts", ts_type(), false),
        utf8("ip_pseudonym", false),
        utf8("ip_network", false),
        utf8("method", true),
        utf8("path", true),
        utf8("protocol", true),
        Field::new("status", DataType::UInt16, true),
        Field::new("bytes_sent", DataType::UInt64, true),
        utf8("referrer_host", true),
    ];
    f.extend(ua_fields());
    f.push(utf8("key_id", false));
    Arc::new(Schema::new(f))
}

/// Marketing columns of the `session` dataset, in the order of `SessionRow::marketing`.
pub const MARKETING_FIELDS: [&str; 8] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "fbclid",
    "msclkid",
];

/// Columns of the `session` dataset, in order.
pub fn session_schema() -> SchemaRef {
    let mut f = vec![
        Field::new("ts", ts_type(), false),
        utf8("event", false),
        utf8("app", false),
        utf8("app_version", true),
        utf8("session_pseudonym", true),
        utf8("device_pseudonym", true),
        utf8("account_pseudonym", true),
        utf8("ip_pseudonym", true),
        utf8("ip_network", true),
        utf8("page", true),
        utf8("referrer_host", true),
        Field::new("duration_ms", DataType::UInt64, true),
        utf8("locale", true),
        Field::new("consent_preferences", DataType::Boolean, false),
        Field::new("consent_statistics", DataType::Boolean, false),
        Field::new("consent_marketing", DataType::Boolean, false),
    ];
    f.extend(MARKETING_FIELDS.iter().map(|n| utf8(n, true)));
    f.extend(ua_fields());
    f.push(utf8("key_id", false));
    Arc::new(Schema::new(f))
}

/// Columns of the `_quarantine` dataset, in order.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ingested_at", ts_type(), false),
        utf8("dataset", false),
        utf8("source", false),
        Field::new("line_number", DataType::UInt64, false),
        Field::new("byte_offset", DataType::UInt64, false),
        utf8("reason", false),
        utf8("detail", false),
        utf8("line", false),
    ]))
}

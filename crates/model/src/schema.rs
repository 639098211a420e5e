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
    Syslog,
    App,
    ProxyUsage,
    Quarantine,
}

impl DatasetKind {
    /// Default dataset name (the directory under the output root).
    pub fn default_name(self) -> &'static str {
        match self {
            DatasetKind::Access => "access",
            DatasetKind::Session => "session",
            DatasetKind::Syslog => "syslog",
            DatasetKind::App => "app",
            DatasetKind::ProxyUsage => "proxy_usage",
            DatasetKind::Quarantine => "_quarantine",
        }
    }

    /// Default retention in days after the end of a partition's hour.
    pub fn default_retention_days(self) -> u32 {
        match self {
            DatasetKind::Access => 30,
            DatasetKind::Session => 90,
            DatasetKind::Syslog => 30,
            DatasetKind::App => 30,
            // Proxy metadata is kept only temporarily (policy §5.2.3).
            DatasetKind::ProxyUsage => 7,
            DatasetKind::Quarantine => 7,
        }
    }

    /// The kind named by [`DatasetKind::as_str`] (as dataset markers record it).
    pub fn parse(s: &str) -> Option<DatasetKind> {
        [
            DatasetKind::Access,
            DatasetKind::Session,
            DatasetKind::Syslog,
            DatasetKind::App,
            DatasetKind::ProxyUsage,
            DatasetKind::Quarantine,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Access => "access",
            DatasetKind::Session => "session",
            DatasetKind::Syslog => "syslog",
            DatasetKind::App => "app",
            DatasetKind::ProxyUsage => "proxy_usage",
            DatasetKind::Quarantine => "quarantine",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            DatasetKind::Access => access_schema(),
            DatasetKind::Session => session_schema(),
            DatasetKind::Syslog => syslog_schema(),
            DatasetKind::App => app_schema(),
            DatasetKind::ProxyUsage => proxy_usage_schema(),
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
    // Added after version 1 (additive): custom formats with `$request_time`, `%D` or `%T`.
    f.push(Field::new("request_time_us", DataType::UInt64, true));
    Arc::new(Schema::new(f))
}

/// Columns of the `syslog` dataset, in order.
pub fn syslog_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", ts_type(), false),
        utf8("protocol", false),
        Field::new("facility", DataType::UInt8, true),
        Field::new("severity", DataType::UInt8, true),
        utf8("hostname", true),
        utf8("app_name", true),
        utf8("proc_id", true),
        utf8("msg_id", true),
        utf8("sd_ids", true),
        utf8("message", false),
        utf8("key_id", false),
    ]))
}

/// The type of the `attributes` column of the `app` dataset: a map of kept field names to
/// their scrubbed text.
pub fn attributes_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![
                Field::new("keys", DataType::Utf8, false),
                Field::new("values", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Columns of the `app` dataset (logfmt and JSON application logs), in order.
pub fn app_schema() -> SchemaRef {
    let mut f = vec![
        Field::new("ts", ts_type(), false),
        utf8("app", false),
        utf8("level", true),
        utf8("message", true),
        utf8("ip_pseudonym", true),
        utf8("ip_network", true),
        utf8("device_pseudonym", true),
        utf8("account_pseudonym", true),
        utf8("method", true),
        utf8("path", true),
        Field::new("status", DataType::UInt16, true),
        Field::new("duration_ms", DataType::Float64, true),
    ];
    f.extend(ua_fields());
    f.push(Field::new("attributes", attributes_type(), true));
    f.push(utf8("key_id", false));
    Arc::new(Schema::new(f))
}

/// Columns of the `proxy_usage` dataset: aggregated proxy metadata, one row per window,
/// account, client network and status class.
pub fn proxy_usage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts_type(), false),
        Field::new("window_seconds", DataType::UInt32, false),
        utf8("account_pseudonym", true),
        utf8("ip_network", false),
        utf8("status_class", false),
        Field::new("requests", DataType::UInt64, false),
        Field::new("bytes_in", DataType::UInt64, false),
        Field::new("bytes_out", DataType::UInt64, false),
        Field::new("duration_ms_sum", DataType::UInt64, false),
        Field::new("duration_ms_max", DataType::UInt64, false),
        utf8("key_id", false),
    ]))
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

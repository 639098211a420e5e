//! Privacy-safe rows: what the privacy engine hands to the sink. Nothing in these types may
//! hold a raw identifier; they borrow from the input line or from the engine's caches.

/// User-agent classification (the raw user agent is never stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UaFields<'a> {
    pub browser_family: &'a str,
    pub browser_major: Option<u32>,
    pub os_family: &'a str,
    pub os_major: Option<u32>,
    /// `desktop`, `mobile`, `tablet`, `bot` or `other`.
    pub device_class: &'a str,
}

/// One row of the `access` dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRow<'a> {
    /// Event time, microseconds since the Unix epoch, UTC.
    pub ts_micros: i64,
    pub ip_pseudonym: &'a str,
    pub ip_network: &'a str,
    pub method: Option<&'a str>,
    /// Request path without query string or fragment, identifiers scrubbed.
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status: Option<u16>,
    pub bytes_sent: Option<u64>,
    /// Scheme and host of the referrer only.
    pub referrer_host: Option<&'a str>,
    pub ua: UaFields<'a>,
    pub key_id: &'a str,
    /// Time taken to serve the request (custom formats only).
    pub request_time_us: Option<u64>,
}

/// One row of the `session` dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRow<'a> {
    pub ts_micros: i64,
    pub event: &'a str,
    pub app: &'a str,
    pub app_version: Option<&'a str>,
    pub session_pseudonym: Option<&'a str>,
    pub device_pseudonym: Option<&'a str>,
    pub account_pseudonym: Option<&'a str>,
    pub ip_pseudonym: Option<&'a str>,
    pub ip_network: Option<&'a str>,
    pub page: Option<&'a str>,
    pub referrer_host: Option<&'a str>,
    pub duration_ms: Option<u64>,
    /// Kept only with preferences consent.
    pub locale: Option<&'a str>,
    pub consent_preferences: bool,
    pub consent_statistics: bool,
    pub consent_marketing: bool,
    /// Marketing attribution, kept only with marketing consent: utm_source, utm_medium,
    /// utm_campaign, utm_term, utm_content, gclid, fbclid, msclkid (in this order).
    pub marketing: [Option<&'a str>; 8],
    pub ua: UaFields<'a>,
    pub key_id: &'a str,
}

/// One row of the `syslog` dataset. Free text has been scrubbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogRow<'a> {
    pub ts_micros: i64,
    /// `rfc5424` or `rfc3164`.
    pub protocol: &'a str,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// Comma-separated SD-IDs of the structured data (parameter values are not kept).
    pub sd_ids: Option<&'a str>,
    pub message: &'a str,
    pub key_id: &'a str,
}

/// One row of the `app` dataset (mapped logfmt / JSON application logs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AppRow<'a> {
    pub ts_micros: i64,
    pub app: &'a str,
    pub level: Option<&'a str>,
    pub message: Option<&'a str>,
    pub ip_pseudonym: Option<&'a str>,
    pub ip_network: Option<&'a str>,
    pub device_pseudonym: Option<&'a str>,
    pub account_pseudonym: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub status: Option<u16>,
    pub duration_ms: Option<f64>,
    pub ua: UaFields<'a>,
    /// Names of the kept attributes (the mapping's `keep` list)…
    pub attribute_names: &'a [String],
    /// …and their scrubbed values, in the same order (`None`: absent in this record).
    pub attribute_values: &'a [Option<String>],
    pub key_id: &'a str,
}

/// One row of the `proxy_usage` dataset: the sums for one window, account, network and
/// status class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyUsageRow<'a> {
    pub window_start_micros: i64,
    pub window_seconds: u32,
    pub account_pseudonym: Option<&'a str>,
    pub ip_network: &'a str,
    /// `1xx` … `5xx`, or `none` when the log had no status.
    pub status_class: &'a str,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms_sum: u64,
    pub duration_ms_max: u64,
    pub key_id: &'a str,
}

/// One row of the `_quarantine` dataset. `line` has been scrubbed and truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuarantineRow<'a> {
    pub ingested_at_micros: i64,
    pub dataset: &'a str,
    pub source: &'a str,
    pub line_number: u64,
    pub byte_offset: u64,
    pub reason: &'a str,
    /// Which part of the line was wrong, e.g. `column 14: expected '['` (never the raw value).
    pub detail: &'a str,
    pub line: &'a str,
}

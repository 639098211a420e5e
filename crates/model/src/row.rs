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

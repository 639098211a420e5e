//! Why a line did not become a row: deliberate drops (policy) and quarantine (bad input).

/// A record removed on purpose by the privacy rules. Dropped records are counted, never stored,
/// not even in quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Proxy traffic (CONNECT, absolute-form targets, proxy event types, destination fields).
    ProxyTraffic,
    /// A session event without statistics consent (or without a consent object at all).
    NoStatisticsConsent,
    /// The key of the event's epoch was shredded: the event is older than any data that may
    /// still be linked, and nothing may be pseudonymised under another epoch's key.
    KeyShredded,
    /// The subject objected to processing (§7.4): on the suppression list.
    Objection,
    /// The subject's processing is restricted (§7.7): on the suppression list.
    Restriction,
    /// The event's partition had already expired when it arrived (retention, §9.1).
    Expired,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::ProxyTraffic,
        DropReason::NoStatisticsConsent,
        DropReason::KeyShredded,
        DropReason::Objection,
        DropReason::Restriction,
        DropReason::Expired,
    ];

    /// The privacy rule that drops the record.
    pub fn rule(self) -> crate::Rule {
        match self {
            DropReason::ProxyTraffic => crate::Rule::ProxyContent,
            DropReason::NoStatisticsConsent => crate::Rule::ConsentStatistics,
            DropReason::KeyShredded => crate::Rule::KeyShredded,
            DropReason::Objection => crate::Rule::Objection,
            DropReason::Restriction => crate::Rule::Restriction,
            DropReason::Expired => crate::Rule::Expired,
        }
    }

    /// Stable snake_case name used in summaries and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::ProxyTraffic => "proxy_traffic",
            DropReason::NoStatisticsConsent => "no_statistics_consent",
            DropReason::KeyShredded => "key_shredded",
            DropReason::Objection => "objection",
            DropReason::Restriction => "restriction",
            DropReason::Expired => "expired_on_arrival",
        }
    }
}

/// Why a line was quarantined: it could not be turned into a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuarantineReason {
    /// The line does not match the declared format.
    Malformed,
    /// The timestamp is missing or not a valid date and time.
    BadTimestamp,
    /// The client address is neither an IPv4 nor an IPv6 address.
    BadClientAddress,
    /// A JSON line that is not valid JSON, or has a field of the wrong type.
    BadJson,
    /// A required field is missing.
    MissingField,
    /// The line is longer than the configured maximum.
    LineTooLong,
    /// The event time is further in the future than the run allows (`--max-future`).
    FutureTimestamp,
}

impl QuarantineReason {
    pub const ALL: [QuarantineReason; 7] = [
        QuarantineReason::Malformed,
        QuarantineReason::BadTimestamp,
        QuarantineReason::BadClientAddress,
        QuarantineReason::BadJson,
        QuarantineReason::MissingField,
        QuarantineReason::LineTooLong,
        QuarantineReason::FutureTimestamp,
    ];

    /// Stable snake_case name used in summaries, metrics and the `_quarantine` dataset.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::Malformed => "malformed",
            QuarantineReason::BadTimestamp => "bad_timestamp",
            QuarantineReason::BadClientAddress => "bad_client_address",
            QuarantineReason::BadJson => "bad_json",
            QuarantineReason::MissingField => "missing_field",
            QuarantineReason::LineTooLong => "line_too_long",
            QuarantineReason::FutureTimestamp => "future_timestamp",
        }
    }
}

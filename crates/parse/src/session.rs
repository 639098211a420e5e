//! Session events: one JSON object per line, sent by the web, extension and mobile apps.
//! Deserialized with serde_json through a hand-written map visitor, borrowing strings from
//! the line (an owned copy only when JSON escapes force one), without `flatten` and without
//! an intermediate `serde_json::Value`.
//!
//! Rules:
//!
//! * Required: `ts` (an RFC 3339 string), `event` and `app` (strings). Absent or `null` gives
//!   [`QuarantineReason::MissingField`]; a `ts` that is a string but not RFC 3339 gives
//!   [`QuarantineReason::BadTimestamp`].
//! * Optional fields may be absent or `null` (both mean absent). `consent` is `None` when
//!   absent or `null` (the caller fails closed); inside it, a missing or `null` key is `false`
//!   and other keys are ignored.
//! * Keys are matched exactly (case-sensitive), after JSON unescaping. Keys that look like a
//!   proxy destination (see [`is_destination_key`], case-insensitive) set
//!   [`SessionEvent::destination_field`]; any other unknown key is skipped with
//!   [`IgnoredAny`] and counted in [`SessionEvent::unknown_fields`] (destination keys are not
//!   counted there).
//! * **Duplicate keys are an error** ([`QuarantineReason::BadJson`]) for every key this parser
//!   reads, at top level and inside `consent`: parsers disagree on which duplicate wins, and a
//!   second `consent` or `ts` must not be able to override the first one silently. Duplicate
//!   unknown keys are simply counted once per occurrence.
//! * Invalid JSON, a value of the wrong type, or anything after the object gives
//!   [`QuarantineReason::BadJson`], with the column reported by serde_json (0-based).
//!
//! Errors never carry input bytes: serde_json's `Display` (which quotes offending values) is
//! never used, only its column and category.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use logveil_model::QuarantineReason;
use logveil_model::schema::MARKETING_FIELDS;
use logveil_model::time::parse_rfc3339;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::ParseError;

/// The consent flags of a session event. A key missing inside `consent` is `false`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consent {
    pub necessary: bool,
    pub preferences: bool,
    pub statistics: bool,
    pub marketing: bool,
}

/// One parsed session event. Strings borrow from the line unless JSON escapes forced a copy.
///
/// `Debug` redacts identifiers, addresses, pages, referrers, user agents and marketing values.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionEvent<'a> {
    /// Event time, microseconds since the Unix epoch, UTC.
    pub ts_micros: i64,
    pub event: Cow<'a, str>,
    pub app: Cow<'a, str>,
    pub session_id: Option<Cow<'a, str>>,
    pub device_id: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub page: Option<Cow<'a, str>>,
    pub referrer: Option<Cow<'a, str>>,
    pub duration_ms: Option<u64>,
    pub app_version: Option<Cow<'a, str>>,
    pub locale: Option<Cow<'a, str>>,
    /// `None` when the key is absent or `null`.
    pub consent: Option<Consent>,
    /// In the order of [`MARKETING_FIELDS`]: utm_source, utm_medium, utm_campaign, utm_term,
    /// utm_content, gclid, fbclid, msclkid.
    pub marketing: [Option<Cow<'a, str>>; 8],
    /// True if any top-level key looks like a proxy destination ([`is_destination_key`]).
    pub destination_field: bool,
    /// Number of other top-level keys that were ignored (dropped).
    pub unknown_fields: u32,
}

impl std::fmt::Debug for SessionEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |v: &Option<Cow<'_, str>>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("SessionEvent")
            .field("ts_micros", &self.ts_micros)
            .field("event_len", &self.event.len())
            .field("app_len", &self.app.len())
            .field("session_id", &present(&self.session_id))
            .field("device_id", &present(&self.device_id))
            .field("account_id", &present(&self.account_id))
            .field("ip", &present(&self.ip))
            .field("user_agent", &present(&self.user_agent))
            .field("page", &present(&self.page))
            .field("referrer", &present(&self.referrer))
            .field("duration_ms", &self.duration_ms)
            .field("app_version", &present(&self.app_version))
            .field("locale", &present(&self.locale))
            .field("consent", &self.consent)
            .field(
                "marketing",
                &self.marketing.iter().filter(|m| m.is_some()).count(),
            )
            .field("destination_field", &self.destination_field)
            .field("unknown_fields", &self.unknown_fields)
            .finish()
    }
}

/// Parses one JSON session event (without its line terminator).
///
/// Never panics. See the module docs for the rules and the error reasons.
pub fn parse_session(line: &[u8]) -> Result<SessionEvent<'_>, ParseError> {
    // JSON text is UTF-8 (RFC 8259 §8.1); serde_json does not check values it skips.
    crate::error::require_utf8(line)?;
    let expected = Cell::new(EXPECT_OBJECT);
    let mut de = serde_json::Deserializer::from_slice(line);
    let raw = RawSeed {
        expected: &expected,
    }
    .deserialize(&mut de)
    .and_then(|raw| {
        expected.set(EXPECT_END);
        de.end().map(|()| raw)
    })
    .map_err(|e| json_error(&e, expected.get()))?;
    raw.validate().map_err(|v| match v {
        Invalid::Missing(expected) => ParseError::new(QuarantineReason::MissingField, 0, expected),
        Invalid::BadTs(ts) => ParseError::new(
            QuarantineReason::BadTimestamp,
            offset_in(line, &ts).map_or(0, |o| o.saturating_sub(1)),
            EXPECT_TS,
        ),
    })
}

/// True if a top-level key names a proxy destination (case-insensitive): one of `dest`,
/// `dest_host`, `dest_ip`, `dest_port`, `destination`, `url`, `target`, `target_host`,
/// `target_url`, `upstream`, `upstream_host`, `proxy_host`, `remote_host`, `request_url`,
/// `host`, `hostname`, `domain`, `sni`, `server_name`, `full_url`, or any key starting with
/// `dest_`, `target_`, `upstream_` or `proxy_`.
pub fn is_destination_key(key: &str) -> bool {
    // Compared without separators and case: `dest_host`, `destHost`, `Dest-Host` are one key.
    const KEYS: [&str; 20] = [
        "dest",
        "desthost",
        "destip",
        "destport",
        "destination",
        "url",
        "target",
        "targethost",
        "targeturl",
        "upstream",
        "upstreamhost",
        "proxyhost",
        "remotehost",
        "requesturl",
        "host",
        "hostname",
        "domain",
        "sni",
        "servername",
        "fullurl",
    ];
    const PREFIXES: [&str; 4] = ["dest", "target", "upstream", "proxy"];
    let k = key.as_bytes();
    // A prefix counts when a word boundary follows it: a separator or a camelCase capital
    // (`dest_port`, `destPort`), not `destroyed`.
    let prefixed = PREFIXES.iter().any(|p| {
        k.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
            && k.get(p.len())
                .is_some_and(|&b| matches!(b, b'_' | b'-' | b'.') || b.is_ascii_uppercase())
    });
    if prefixed {
        return true;
    }
    let norm = k
        .iter()
        .filter(|b| !matches!(b, b'_' | b'-' | b'.'))
        .map(u8::to_ascii_lowercase);
    KEYS.iter().any(|d| d.bytes().eq(norm.clone()))
}

const EXPECT_OBJECT: &str = "a JSON object";
const EXPECT_KEY: &str = "a string key or '}'";
const EXPECT_END: &str = "end of line after the JSON object";
const EXPECT_UNIQUE: &str = "each key at most once";
const EXPECT_TS: &str = "an RFC 3339 timestamp string in \"ts\"";
const EXPECT_ANY: &str = "any JSON value";

/// Maps a serde_json error to a `BadJson` parse error without using its `Display`.
fn json_error(e: &serde_json::Error, expected: &'static str) -> ParseError {
    use serde_json::error::Category;
    let expected = match e.classify() {
        Category::Eof => "more input (truncated JSON)",
        Category::Syntax if expected == EXPECT_END => EXPECT_END,
        Category::Syntax => "valid JSON",
        Category::Data | Category::Io => expected,
    };
    ParseError::new(
        QuarantineReason::BadJson,
        e.column().saturating_sub(1),
        expected,
    )
}

/// Byte offset of `s` inside `line`, if `s` is borrowed from it (an owned copy made because
/// of escapes lies elsewhere in memory and gives `None`).
fn offset_in(line: &[u8], s: &str) -> Option<usize> {
    let off = (s.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    (off.checked_add(s.len())? <= line.len()).then_some(off)
}

/// A string value: borrowed from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(CowStr)
    }
}

/// The top-level keys this parser knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Ts,
    Event,
    App,
    SessionId,
    DeviceId,
    AccountId,
    Ip,
    UserAgent,
    Page,
    Referrer,
    DurationMs,
    AppVersion,
    Locale,
    Consent,
    Marketing(usize),
    Destination,
    Unknown,
}

impl Key {
    fn classify(k: &str) -> Key {
        match k {
            "ts" => Key::Ts,
            "event" => Key::Event,
            "app" => Key::App,
            "session_id" => Key::SessionId,
            "device_id" => Key::DeviceId,
            "account_id" => Key::AccountId,
            "ip" => Key::Ip,
            "user_agent" => Key::UserAgent,
            "page" => Key::Page,
            "referrer" => Key::Referrer,
            "duration_ms" => Key::DurationMs,
            "app_version" => Key::AppVersion,
            "locale" => Key::Locale,
            "consent" => Key::Consent,
            _ => match MARKETING_FIELDS.iter().position(|m| *m == k) {
                Some(i) => Key::Marketing(i),
                None if is_destination_key(k) => Key::Destination,
                None => Key::Unknown,
            },
        }
    }

    /// Bit for duplicate detection (`None` for keys that may repeat).
    fn bit(self) -> Option<u32> {
        let n = match self {
            Key::Ts => 0,
            Key::Event => 1,
            Key::App => 2,
            Key::SessionId => 3,
            Key::DeviceId => 4,
            Key::AccountId => 5,
            Key::Ip => 6,
            Key::UserAgent => 7,
            Key::Page => 8,
            Key::Referrer => 9,
            Key::DurationMs => 10,
            Key::AppVersion => 11,
            Key::Locale => 12,
            Key::Consent => 13,
            Key::Marketing(i) => 14 + i as u32,
            Key::Destination | Key::Unknown => return None,
        };
        Some(1 << n)
    }

    /// What the value of this key must be (for error messages).
    fn expected(self) -> &'static str {
        match self {
            Key::Ts => "a string in \"ts\"",
            Key::Event => "a string in \"event\"",
            Key::App => "a string in \"app\"",
            Key::SessionId => "a string or null in \"session_id\"",
            Key::DeviceId => "a string or null in \"device_id\"",
            Key::AccountId => "a string or null in \"account_id\"",
            Key::Ip => "a string or null in \"ip\"",
            Key::UserAgent => "a string or null in \"user_agent\"",
            Key::Page => "a string or null in \"page\"",
            Key::Referrer => "a string or null in \"referrer\"",
            Key::DurationMs => "an unsigned integer or null in \"duration_ms\"",
            Key::AppVersion => "a string or null in \"app_version\"",
            Key::Locale => "a string or null in \"locale\"",
            Key::Consent => "an object or null in \"consent\"",
            Key::Marketing(0) => "a string or null in \"utm_source\"",
            Key::Marketing(1) => "a string or null in \"utm_medium\"",
            Key::Marketing(2) => "a string or null in \"utm_campaign\"",
            Key::Marketing(3) => "a string or null in \"utm_term\"",
            Key::Marketing(4) => "a string or null in \"utm_content\"",
            Key::Marketing(5) => "a string or null in \"gclid\"",
            Key::Marketing(6) => "a string or null in \"fbclid\"",
            Key::Marketing(_) => "a string or null in \"msclkid\"",
            Key::Destination | Key::Unknown => EXPECT_ANY,
        }
    }
}

/// Deserializes a key with a classifier, without allocating (escaped keys are classified
/// from serde_json's scratch buffer).
struct KeySeed<K>(fn(&str) -> K);

impl<'de, K> DeserializeSeed<'de> for KeySeed<K> {
    type Value = K;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K, D::Error> {
        struct V<K>(fn(&str) -> K);
        impl<K> Visitor<'_> for V<K> {
            type Value = K;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
                Ok((self.0)(v))
            }
        }
        d.deserialize_str(V(self.0))
    }
}

/// The event as read, before the required fields are checked.
#[derive(Default)]
struct RawSession<'a> {
    ts: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    app: Option<Cow<'a, str>>,
    session_id: Option<Cow<'a, str>>,
    device_id: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    ip: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    page: Option<Cow<'a, str>>,
    referrer: Option<Cow<'a, str>>,
    duration_ms: Option<u64>,
    app_version: Option<Cow<'a, str>>,
    locale: Option<Cow<'a, str>>,
    consent: Option<Consent>,
    marketing: [Option<Cow<'a, str>>; 8],
    destination_field: bool,
    unknown_fields: u32,
}

enum Invalid<'a> {
    Missing(&'static str),
    BadTs(Cow<'a, str>),
}

impl<'a> RawSession<'a> {
    fn validate(self) -> Result<SessionEvent<'a>, Invalid<'a>> {
        let ts = self.ts.ok_or(Invalid::Missing("a \"ts\" field"))?;
        let Some(ts_micros) = parse_rfc3339(ts.as_bytes()) else {
            return Err(Invalid::BadTs(ts));
        };
        let event = self.event.ok_or(Invalid::Missing("an \"event\" field"))?;
        let app = self.app.ok_or(Invalid::Missing("an \"app\" field"))?;
        Ok(SessionEvent {
            ts_micros,
            event,
            app,
            session_id: self.session_id,
            device_id: self.device_id,
            account_id: self.account_id,
            ip: self.ip,
            user_agent: self.user_agent,
            page: self.page,
            referrer: self.referrer,
            duration_ms: self.duration_ms,
            app_version: self.app_version,
            locale: self.locale,
            consent: self.consent,
            marketing: self.marketing,
            destination_field: self.destination_field,
            unknown_fields: self.unknown_fields,
        })
    }
}

/// Reads the top-level object, recording in `expected` what the parser expects next so that
/// an error can say so without quoting the input.
struct RawSeed<'c> {
    expected: &'c Cell<&'static str>,
}

impl<'de, 'c> DeserializeSeed<'de> for RawSeed<'c> {
    type Value = RawSession<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawSession<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

fn opt_str<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_value::<Option<CowStr<'de>>>()?.map(|s| s.0))
}

impl<'de, 'c> Visitor<'de> for RawSeed<'c> {
    type Value = RawSession<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSession<'de>, A::Error> {
        let mut raw = RawSession::default();
        let mut seen = 0u32;
        loop {
            self.expected.set(EXPECT_KEY);
            let Some(key) = map.next_key_seed(KeySeed(Key::classify))? else {
                break;
            };
            if let Some(bit) = key.bit() {
                if seen & bit != 0 {
                    self.expected.set(EXPECT_UNIQUE);
                    return Err(de::Error::custom("duplicate key"));
                }
                seen |= bit;
            }
            self.expected.set(key.expected());
            match key {
                Key::Ts => raw.ts = opt_str(&mut map)?,
                Key::Event => raw.event = opt_str(&mut map)?,
                Key::App => raw.app = opt_str(&mut map)?,
                Key::SessionId => raw.session_id = opt_str(&mut map)?,
                Key::DeviceId => raw.device_id = opt_str(&mut map)?,
                Key::AccountId => raw.account_id = opt_str(&mut map)?,
                Key::Ip => raw.ip = opt_str(&mut map)?,
                Key::UserAgent => raw.user_agent = opt_str(&mut map)?,
                Key::Page => raw.page = opt_str(&mut map)?,
                Key::Referrer => raw.referrer = opt_str(&mut map)?,
                Key::DurationMs => raw.duration_ms = map.next_value()?,
                Key::AppVersion => raw.app_version = opt_str(&mut map)?,
                Key::Locale => raw.locale = opt_str(&mut map)?,
                Key::Consent => {
                    raw.consent = map.next_value_seed(ConsentSeed {
                        expected: self.expected,
                    })?;
                }
                Key::Marketing(i) => {
                    let v = opt_str(&mut map)?;
                    if let Some(slot) = raw.marketing.get_mut(i) {
                        *slot = v;
                    }
                }
                Key::Destination => {
                    map.next_value::<IgnoredAny>()?;
                    raw.destination_field = true;
                }
                Key::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                    raw.unknown_fields = raw.unknown_fields.saturating_add(1);
                }
            }
        }
        Ok(raw)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConsentKey {
    Necessary,
    Preferences,
    Statistics,
    Marketing,
    Other,
}

impl ConsentKey {
    fn classify(k: &str) -> ConsentKey {
        match k {
            "necessary" => ConsentKey::Necessary,
            "preferences" => ConsentKey::Preferences,
            "statistics" => ConsentKey::Statistics,
            "marketing" => ConsentKey::Marketing,
            _ => ConsentKey::Other,
        }
    }
}

/// `consent`: `null` or an object of booleans.
struct ConsentSeed<'c> {
    expected: &'c Cell<&'static str>,
}

impl<'de, 'c> DeserializeSeed<'de> for ConsentSeed<'c> {
    type Value = Option<Consent>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Consent>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, 'c> Visitor<'de> for ConsentSeed<'c> {
    type Value = Option<Consent>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a consent object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Consent>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Consent>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Consent>, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Consent>, A::Error> {
        let mut c = Consent::default();
        let mut seen = 0u8;
        loop {
            self.expected.set(EXPECT_KEY);
            let Some(key) = map.next_key_seed(KeySeed(ConsentKey::classify))? else {
                break;
            };
            let (slot, bit, expected) = match key {
                ConsentKey::Necessary => {
                    (&mut c.necessary, 1, "a boolean in \"consent.necessary\"")
                }
                ConsentKey::Preferences => (
                    &mut c.preferences,
                    2,
                    "a boolean in \"consent.preferences\"",
                ),
                ConsentKey::Statistics => {
                    (&mut c.statistics, 4, "a boolean in \"consent.statistics\"")
                }
                ConsentKey::Marketing => {
                    (&mut c.marketing, 8, "a boolean in \"consent.marketing\"")
                }
                ConsentKey::Other => {
                    self.expected.set(EXPECT_ANY);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if seen & bit != 0 {
                self.expected.set(EXPECT_UNIQUE);
                return Err(de::Error::custom("duplicate key"));
            }
            seen |= bit;
            self.expected.set(expected);
            // `null` counts as not given: false, failing closed.
            *slot = map.next_value::<Option<bool>>()?.unwrap_or(false);
        }
        Ok(Some(c))
    }
}

/// Borrowing deserialization for use with any serde deserializer (e.g.
/// `serde_json::from_slice`). Missing required fields and a bad `ts` become serde errors;
/// [`parse_session`] is the entry point that also classifies errors into quarantine reasons.
impl<'de: 'a, 'a> Deserialize<'de> for SessionEvent<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expected = Cell::new(EXPECT_OBJECT);
        let raw = RawSeed {
            expected: &expected,
        }
        .deserialize(d)?;
        raw.validate().map_err(|v| match v {
            Invalid::Missing(what) => de::Error::custom(format_args!("missing {what}")),
            Invalid::BadTs(_) => de::Error::custom(format_args!("expected {EXPECT_TS}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"ts":"2026-11-28T10:15:30.123Z","event":"page_view","session_id":"s-1","device_id":"d-1","account_id":"a-1","ip":"203.0.113.77","user_agent":"Mozilla/5.0","page":"/pricing?plan=pro","referrer":"https://www.google.com/","duration_ms":1234,"app":"web","app_version":"1.2.3","locale":"de-DE","consent":{"necessary":true,"preferences":false,"statistics":true,"marketing":true},"utm_source":"newsletter","utm_medium":"email","utm_campaign":"winter","utm_term":"t","utm_content":"c","gclid":"g","fbclid":"f","msclkid":"m"}"#;

    fn ok(line: &str) -> SessionEvent<'_> {
        match parse_session(line.as_bytes()) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        }
    }

    fn err(line: &[u8]) -> ParseError {
        match parse_session(line) {
            Ok(e) => panic!("parsed: {e:?}"),
            Err(e) => e,
        }
    }

    #[allow(clippy::ptr_arg)] // The variant is the point.
    fn is_borrowed(c: &Cow<'_, str>) -> bool {
        matches!(c, Cow::Borrowed(_))
    }

    #[test]
    fn full_event_borrows_everything() {
        let e = ok(FULL);
        assert_eq!(
            e.ts_micros,
            parse_rfc3339(b"2026-11-28T10:15:30.123Z").unwrap()
        );
        assert_eq!(e.event, "page_view");
        assert_eq!(e.app, "web");
        assert_eq!(e.session_id.as_deref(), Some("s-1"));
        assert_eq!(e.device_id.as_deref(), Some("d-1"));
        assert_eq!(e.account_id.as_deref(), Some("a-1"));
        assert_eq!(e.ip.as_deref(), Some("203.0.113.77"));
        assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(e.page.as_deref(), Some("/pricing?plan=pro"));
        assert_eq!(e.referrer.as_deref(), Some("https://www.google.com/"));
        assert_eq!(e.duration_ms, Some(1234));
        assert_eq!(e.app_version.as_deref(), Some("1.2.3"));
        assert_eq!(e.locale.as_deref(), Some("de-DE"));
        assert_eq!(
            e.consent,
            Some(Consent {
                necessary: true,
                preferences: false,
                statistics: true,
                marketing: true
            })
        );
        let m: Vec<_> = e.marketing.iter().map(|m| m.as_deref()).collect();
        assert_eq!(
            m,
            [
                Some("newsletter"),
                Some("email"),
                Some("winter"),
                Some("t"),
                Some("c"),
                Some("g"),
                Some("f"),
                Some("m")
            ]
        );
        assert!(!e.destination_field);
        assert_eq!(e.unknown_fields, 0);
        assert!(is_borrowed(&e.event) && is_borrowed(&e.app));
        for s in [&e.session_id, &e.ip, &e.page, &e.referrer, &e.marketing[7]] {
            assert!(is_borrowed(s.as_ref().unwrap()));
        }
    }

    #[test]
    fn escaped_strings_are_owned() {
        let e = ok(
            r#"{"ts":"2026-01-01T00:00:00Z","event":"cl\u0069ck","app":"ios","page":"/a\"b\\c","user_agent":"caf\u00e9 \ud83d\ude00"}"#,
        );
        assert_eq!(e.event, "click");
        assert!(!is_borrowed(&e.event));
        assert!(is_borrowed(&e.app));
        assert_eq!(e.page.as_deref(), Some(r#"/a"b\c"#));
        assert!(!is_borrowed(e.page.as_ref().unwrap()));
        assert_eq!(e.user_agent.as_deref(), Some("café 😀"));
        // Raw UTF-8 needs no copy.
        let e = ok(r#"{"ts":"2026-01-01T00:00:00Z","event":"é","app":"ios"}"#);
        assert!(is_borrowed(&e.event));
    }

    #[test]
    fn nulls_are_absent() {
        let e = ok(
            r#"{"ts":"2026-01-01T00:00:00+02:00","event":"session_end","app":"android","session_id":null,"ip":null,"duration_ms":null,"consent":null,"utm_source":null,"referrer":null}"#,
        );
        assert_eq!(e.ts_micros, parse_rfc3339(b"2025-12-31T22:00:00Z").unwrap());
        assert_eq!((e.session_id, e.ip, e.referrer), (None, None, None));
        assert_eq!(e.duration_ms, None);
        assert_eq!(e.consent, None);
        assert_eq!(e.marketing[0], None);
        assert_eq!(e.unknown_fields, 0);
        for required in ["ts", "event", "app"] {
            let line = FULL.replacen(
                &format!("\"{required}\":"),
                &format!("\"{required}\":null,\"x{required}\":"),
                1,
            );
            assert_eq!(
                err(line.as_bytes()).reason,
                QuarantineReason::MissingField,
                "{required}"
            );
        }
    }

    #[test]
    fn consent_missing_or_partial() {
        let e = ok(r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web"}"#);
        assert_eq!(e.consent, None);
        let e = ok(
            r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","consent":{"statistics":true,"necessary":null,"extra":{"deep":[1,2]}}}"#,
        );
        assert_eq!(
            e.consent,
            Some(Consent {
                necessary: false,
                preferences: false,
                statistics: true,
                marketing: false
            })
        );
        let e = ok(r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","consent":{}}"#);
        assert_eq!(e.consent, Some(Consent::default()));
        for bad in [
            r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","consent":true}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","consent":{"statistics":"yes"}}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","consent":{"statistics":1}}"#,
        ] {
            assert_eq!(
                err(bad.as_bytes()).reason,
                QuarantineReason::BadJson,
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_fields_counted_and_destinations_detected() {
        let e = ok(
            r#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","foo":1,"bar":{"a":[null,true]},"Event":"x","foo":2}"#,
        );
        assert_eq!(e.unknown_fields, 4);
        assert!(!e.destination_field);
        for key in [
            "dest",
            "DEST_HOST",
            "dest_ip",
            "dest_port",
            "Destination",
            "url",
            "target",
            "target_host",
            "target_url",
            "upstream",
            "upstream_host",
            "proxy_host",
            "remote_host",
            "request_url",
            "Host",
            "hostname",
            "domain",
            "SNI",
            "server_name",
            "full_url",
            "dest_anything",
            "Target_x",
            "upstream_addr",
            "PROXY_pass",
            "h\\u006fst",
        ] {
            let line = format!(
                r#"{{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","{key}":"example.com","other":1}}"#
            );
            let e = ok(&line);
            assert!(e.destination_field, "{key}");
            assert_eq!(e.unknown_fields, 1, "{key}");
        }
        for key in [
            "destinations",
            "urls",
            "proxy",
            "hosts",
            "my_url",
            "targets",
        ] {
            assert!(!is_destination_key(key), "{key}");
        }
    }

    #[test]
    fn wrong_types_are_bad_json() {
        for (line, expected) in [
            (
                r#"{"ts":1,"event":"click","app":"web"}"#,
                "a string in \"ts\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":["x"],"app":"web"}"#,
                "a string in \"event\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","ip":123}"#,
                "a string or null in \"ip\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","duration_ms":-5}"#,
                "an unsigned integer or null in \"duration_ms\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","duration_ms":1.5}"#,
                "an unsigned integer or null in \"duration_ms\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","duration_ms":"12"}"#,
                "an unsigned integer or null in \"duration_ms\"",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","gclid":false}"#,
                "a string or null in \"gclid\"",
            ),
            (r#"["ts","event"]"#, EXPECT_OBJECT),
            (r#""just a string""#, EXPECT_OBJECT),
            ("null", EXPECT_OBJECT),
        ] {
            let e = err(line.as_bytes());
            assert_eq!(
                (e.reason, e.expected),
                (QuarantineReason::BadJson, expected),
                "{line}"
            );
        }
    }

    #[test]
    fn invalid_json_and_columns() {
        let e = err(br#"{"ts":"2026-01-01T00:00:00Z","event" "x"}"#);
        assert_eq!((e.reason, e.column), (QuarantineReason::BadJson, 37));
        let e = err(br#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web"} {}"#);
        assert_eq!(
            (e.reason, e.expected),
            (QuarantineReason::BadJson, EXPECT_END)
        );
        assert_eq!(e.column, 54);
        let e = err(br#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web""#);
        assert_eq!(e.reason, QuarantineReason::BadJson);
        assert_eq!(err(b"").reason, QuarantineReason::BadJson);
        assert_eq!(err(b"\xff\xfe").reason, QuarantineReason::BadJson);
        assert_eq!(err(b"{\"ts\":\"\xff\"}").reason, QuarantineReason::BadJson);
        // Trailing whitespace is fine.
        assert!(
            parse_session(b" {\"ts\":\"2026-01-01T00:00:00Z\",\"event\":\"x\",\"app\":\"web\"}  ")
                .is_ok()
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        for line in [
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","ts":"2026-01-01T00:00:00Z"}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","consent":{"statistics":false},"consent":{"statistics":true}}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","consent":{"statistics":false,"statistics":true}}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","ip":null,"ip":"203.0.113.77"}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","gclid":"a","gclid":"b"}"#,
        ] {
            let e = err(line.as_bytes());
            assert_eq!(
                (e.reason, e.expected),
                (QuarantineReason::BadJson, EXPECT_UNIQUE),
                "{line}"
            );
        }
    }

    #[test]
    fn missing_fields_and_bad_timestamps() {
        for (line, expected) in [
            (r#"{"event":"x","app":"web"}"#, "a \"ts\" field"),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","app":"web"}"#,
                "an \"event\" field",
            ),
            (
                r#"{"ts":"2026-01-01T00:00:00Z","event":"x"}"#,
                "an \"app\" field",
            ),
            ("{}", "a \"ts\" field"),
        ] {
            let e = err(line.as_bytes());
            assert_eq!(
                (e.reason, e.expected),
                (QuarantineReason::MissingField, expected)
            );
        }
        for (line, col) in [
            (
                r#"{"event":"x","app":"web","ts":"2026-02-30T00:00:00Z"}"#,
                30,
            ),
            (r#"{"ts":"yesterday","event":"x","app":"web"}"#, 6),
            (r#"{"ts":"","event":"x","app":"web"}"#, 6),
            (r#"{"ts":"2026-01-01\u0054x","event":"x","app":"web"}"#, 0),
        ] {
            let e = err(line.as_bytes());
            assert_eq!(
                (e.reason, e.column),
                (QuarantineReason::BadTimestamp, col),
                "{line}"
            );
        }
    }

    #[test]
    fn errors_never_contain_input() {
        let planted = [
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","ip":203.0.113.77}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","ip":["203.0.113.77"]}"#,
            r#"{"ts":"203.0.113.77","event":"alice@example.com","app":"web"}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","duration_ms":"203.0.113.77"}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","consent":{"statistics":"alice@example.com"}}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","account_id":alice@example.com}"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","account_id":"alice@example.com"} "203.0.113.77""#,
            r#"{"ip":"203.0.113.77","account_id":"alice@example.com"}"#,
            r#"{"203.0.113.77":"alice@example.com","203.0.113.77":1"#,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"x","app":"web","alice@example.com":tru}"#,
            r#""alice@example.com""#,
            r#"alice@example.com 203.0.113.77"#,
            r#"{"duration_ms":203011377}"#,
        ];
        for line in planted {
            let e = err(line.as_bytes());
            let shown = format!("{e} {e:?}");
            for secret in [
                "203.0.113.77",
                "alice@example.com",
                "203.0",
                "alice",
                "example",
            ] {
                assert!(!shown.contains(secret), "{shown} for {line}");
            }
        }
    }

    #[test]
    fn serde_deserialize_impl_borrows() {
        let e: SessionEvent<'_> = serde_json::from_str(FULL).unwrap();
        assert_eq!(e, ok(FULL));
        assert!(is_borrowed(&e.event));
        assert!(serde_json::from_str::<SessionEvent<'_>>(r#"{"event":"x","app":"y"}"#).is_err());
    }

    #[test]
    fn destination_keys_in_any_spelling() {
        for k in [
            "dest_host",
            "destHost",
            "Dest-Host",
            "DEST_IP",
            "targetURL",
            "target_url",
            "upstream_addr",
            "proxyPort",
            "proxy_x",
            "serverName",
            "SNI",
            "url",
            "full-url",
            "dest",
        ] {
            assert!(is_destination_key(k), "{k}");
        }
        for k in [
            "destroyed_at",
            "description",
            "targets_met",
            "urls_seen",
            "hosting_plan",
            "screen",
            "email",
        ] {
            assert!(!is_destination_key(k), "{k}");
        }
    }
}

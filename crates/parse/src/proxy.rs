//! Proxy-traffic logs: the Squid native access log and logveil's JSON proxy-gateway log.
//! Both describe proxy traffic, so the parser extracts **only** the metadata the policy
//! allows (§5.2.3): time, client address (to be pseudonymised/truncated by the privacy
//! engine), account, status, bytes, duration. Destination host, URL, port, path, peer
//! address, method target and content type are skipped without being returned: they cannot
//! leak downstream because they never leave this module. They are not even copied: the Squid
//! parser only scans over them for the next separator, and the JSON parser skips every value
//! it does not read with serde's [`IgnoredAny`] (serde_json then only scans the bytes, it
//! neither unescapes nor buffers them).
//!
//! # Squid native format ([`ProxyFormat::Squid`], [`parse_squid`])
//!
//! ```text
//! time elapsed client code/status bytes method URL user hierarchy/peer type
//! 1286536309.450 85 192.0.2.68 TCP_MISS/200 411 GET http://example.com/ - DIRECT/1.2.3.4 text/html
//! ```
//!
//! (Squid's `logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt`.)
//!
//! * Fields are separated by one or more spaces or tabs; leading and trailing separators are
//!   allowed (Squid 2 pads the time to 9 columns, the elapsed time to 6).
//! * `time`: epoch seconds, optionally `.` and a fraction (Squid writes milliseconds; digits
//!   beyond microseconds are truncated). Squid writes the time the request **ended**;
//!   [`ProxyRecord::ts_micros`] is what the log says, not corrected by `elapsed`. Anything
//!   else, or a time before 1970 or from year 10000 on, gives
//!   [`QuarantineReason::BadTimestamp`]. The time is checked *after* the rest of the line, so
//!   a line that is not Squid-shaped at all is `Malformed`, not a bad timestamp.
//! * `elapsed`: milliseconds (decimal digits, `-` for unknown) → `duration_ms`.
//! * `client`: any token, returned as written (IPv4, IPv6, host name; the engine validates).
//! * `code/status`: a result code of `A-Z`, `0-9`, `_` (`TCP_MISS`, `TCP_DENIED`,
//!   `UDP_CLIENT_STALE_MEM_ABORTED`, `NONE`, `NONE_NONE`, `TAG_NONE`, `ERR_CONNECT_FAIL`, …),
//!   `/`, and one to three digits (`-` also accepted). `000`/`0`/`-` give `status: None`;
//!   otherwise the status must be in `100..=999`. The result code itself is not returned.
//! * `bytes`: bytes delivered to the client (decimal, `-` for unknown) → `bytes_out`;
//!   `bytes_in` is always `None` (the native format does not log request sizes).
//! * `method`, `URL`: any token each, skipped unread (for `CONNECT` the URL is `host:port`).
//! * `user`: `-` gives `account: None`, anything else is returned as written.
//! * `hierarchy/peer`: a hierarchy code of `A-Z`, `0-9`, `_` (`DIRECT`, `HIER_NONE`,
//!   `FIRST_UP_PARENT`, …) followed by `/`; the peer after it is skipped unread. Checking the
//!   code guards against a URL with an unescaped space shifting a URL fragment into `user`.
//! * `type`: required, skipped unread. Anything after it (e.g. the request and reply headers
//!   of `log_mime_hdrs on`) is ignored unread.
//! * Numbers must fit in `u64`; an overflow is `Malformed`.
//!
//! Every error other than a bad timestamp is [`QuarantineReason::Malformed`], with the byte
//! offset of the offending field (or the end of the line when fields are missing).
//!
//! # JSON proxy-gateway format ([`ProxyFormat::Json`], [`parse_proxy_json`])
//!
//! One JSON object per line, e.g.
//!
//! ```text
//! {"ts":"2026-11-28T12:00:00.123Z","account_id":"acct-42","client_ip":"203.0.113.7",
//!  "method":"CONNECT","dest_host":"example.org","dest_port":443,"url":null,"status":200,
//!  "bytes_in":1200,"bytes_out":53000,"duration_ms":840}
//! ```
//!
//! Accepted keys (exact, case-sensitive, after JSON unescaping; aliases of one field are
//! interchangeable):
//!
//! * time (**required**): `ts`, `time`, `timestamp` — an RFC 3339 string (the CLF time
//!   `10/Oct/2000:13:55:36 -0700` is accepted too), or an epoch number: below `1e11` it is
//!   seconds, below `1e14` milliseconds (fractions allowed in both), anything larger is a bad
//!   timestamp.
//! * client (**required**): `client_ip`, `client`, `src_ip` — a string.
//! * account: `account_id`, `account`, `user` — a string or a non-negative integer.
//! * status: `status`, `status_code` — an integer in `100..=999`; `0` means none.
//! * bytes_in: `bytes_in`, `bytes_up`, `request_bytes` — a non-negative integer (client →
//!   proxy).
//! * bytes_out: `bytes_out`, `bytes_down`, `response_bytes` — a non-negative integer (proxy →
//!   client).
//! * duration_ms: `duration_ms`, `elapsed_ms` — a non-negative number of milliseconds (a
//!   fraction is truncated).
//!
//! (The same lists are exported as [`JSON_TIME_KEYS`], [`JSON_CLIENT_KEYS`], … .)
//!
//! * Every value may also be `null`, meaning absent. For `client` and `account`, `""` and
//!   `"-"` also mean absent.
//! * Every other key (`dest_host`, `dest_port`, `url`, `method`, `peer`, `headers`, nested
//!   objects…) is skipped unread with [`IgnoredAny`].
//! * **Duplicates: the first occurrence wins.** Once one key of a field has been seen (even
//!   with `null`), later keys of the same field (the same key again or an alias) are skipped
//!   unread.
//! * Not a JSON object, invalid JSON, anything but whitespace after the object, or a value of
//!   the wrong type or range (a negative or overflowing byte count, status `42`…) gives
//!   [`QuarantineReason::BadJson`]. A missing (or `null`) time or client gives
//!   [`QuarantineReason::MissingField`]; a time of the right type that is not a valid time
//!   (or is before 1970 / from year 10000 on) gives [`QuarantineReason::BadTimestamp`], at
//!   the opening quote of the time string (at the value's last byte for a number or a string
//!   with escapes). Other errors are at serde_json's column (0-based).
//!
//! Errors never carry input bytes: serde_json's `Display` (which may quote input) is never
//! used, only its column and category.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use logveil_model::QuarantineReason;
use logveil_model::time::{END_OF_TIME, MICROS_PER_SECOND, parse_clf_time, parse_rfc3339};
use memchr::{memchr, memchr2};
use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::ParseError;

/// Which proxy log layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFormat {
    /// Squid native `access.log`:
    /// `time elapsed client code/status bytes method URL user hierarchy/peer type`.
    Squid,
    /// One JSON object per line from the proxy gateway (fields documented in docs/SCHEMA.md).
    Json,
}

/// Metadata of one proxied request. `Debug` redacts the client and account.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyRecord<'a> {
    /// Request time (start or end as the format records it), µs since the epoch, UTC.
    pub ts_micros: i64,
    /// Client address as written (validated by the privacy engine).
    pub client: Cow<'a, [u8]>,
    /// Account / user name of the proxy customer, if the log has one (`-` gives `None`).
    pub account: Option<Cow<'a, [u8]>>,
    /// HTTP status sent to the client; `None` when the log has none (`000`, `-`).
    pub status: Option<u16>,
    /// Bytes received from the client, when known.
    pub bytes_in: Option<u64>,
    /// Bytes sent to the client, when known.
    pub bytes_out: Option<u64>,
    /// Duration of the request in milliseconds, when known.
    pub duration_ms: Option<u64>,
}

impl std::fmt::Debug for ProxyRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyRecord")
            .field("ts_micros", &self.ts_micros)
            .field("client_len", &self.client.len())
            .field("account_len", &self.account.as_ref().map(|a| a.len()))
            .field("status", &self.status)
            .field("bytes_in", &self.bytes_in)
            .field("bytes_out", &self.bytes_out)
            .field("duration_ms", &self.duration_ms)
            .finish()
    }
}

/// Parses one proxy log line (without its line terminator) in the given format.
///
/// Never panics. See the module docs for the grammar of each format and the error reasons.
pub fn parse_proxy(line: &[u8], format: ProxyFormat) -> Result<ProxyRecord<'_>, ParseError> {
    match format {
        ProxyFormat::Squid => parse_squid(line),
        ProxyFormat::Json => parse_proxy_json(line),
    }
}

// ---------------------------------------------------------------------------------------------
// Squid native format
// ---------------------------------------------------------------------------------------------

/// Parses one line of Squid's native `access.log` format (see the module docs).
///
/// Never panics and never allocates: `client` and `account` borrow from the line.
pub fn parse_squid(line: &[u8]) -> Result<ProxyRecord<'_>, ParseError> {
    let mut fields = Fields { line, pos: 0 };
    let mut next = |expected: &'static str| {
        fields.next().ok_or(ParseError::new(
            QuarantineReason::Malformed,
            line.len(),
            expected,
        ))
    };
    let (time_at, time) = next("a Squid timestamp (epoch seconds)")?;
    let (elapsed_at, elapsed) = next("the elapsed time in milliseconds")?;
    let (_, client) = next("the client address")?;
    let (code_at, code) = next("a result code and status (CODE/NNN)")?;
    let (bytes_at, bytes) = next("the byte count")?;
    // The method is not secret, but nothing here needs it.
    let _method = next("the request method")?;
    // The URL (for CONNECT: `host:port`) is skipped: never read, never returned.
    let _url = next("the request URL")?;
    let (_, user) = next("the user name or '-'")?;
    let (hier_at, hier) = next("a hierarchy code and peer (CODE/peer)")?;
    // The content type is skipped, and so is anything after it.
    let _type = next("the content type")?;

    let malformed =
        |at: usize, expected| ParseError::new(QuarantineReason::Malformed, at, expected);
    let duration_ms = dec_or_dash(elapsed).ok_or(malformed(
        elapsed_at,
        "the elapsed time in milliseconds (digits or '-')",
    ))?;
    let status = squid_status(code).map_err(|off| {
        malformed(
            code_at.saturating_add(off),
            "a result code and status (CODE/NNN)",
        )
    })?;
    let bytes_out =
        dec_or_dash(bytes).ok_or(malformed(bytes_at, "the byte count (digits or '-')"))?;
    let account = (user != b"-").then_some(Cow::Borrowed(user));
    let hier_code_len = code_word_len(hier);
    if hier_code_len == 0 || hier.get(hier_code_len) != Some(&b'/') {
        return Err(malformed(
            hier_at.saturating_add(hier_code_len),
            "a hierarchy code and peer (CODE/peer)",
        ));
    }
    let ts_micros = squid_time(time).ok_or(ParseError::new(
        QuarantineReason::BadTimestamp,
        time_at,
        "a Squid timestamp (epoch seconds[.fraction], 1970..=9999)",
    ))?;
    Ok(ProxyRecord {
        ts_micros,
        client: Cow::Borrowed(client),
        account,
        status,
        bytes_in: None,
        bytes_out,
        duration_ms,
    })
}

/// Space- or tab-separated fields of a line, with their byte offsets.
struct Fields<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        let rest = self.line.get(self.pos..)?;
        let start = self.pos + rest.iter().position(|&b| b != b' ' && b != b'\t')?;
        let rest = self.line.get(start..)?;
        let len = memchr2(b' ', b'\t', rest).unwrap_or(rest.len());
        self.pos = start + len;
        Some((start, rest.get(..len)?))
    }
}

/// An unsigned decimal that fits in `u64` (at least one digit, nothing else).
fn dec(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u64, |v, &c| {
        if c.is_ascii_digit() {
            v.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// `-` gives `Some(None)`, a decimal `Some(Some(n))`, anything else `None`.
fn dec_or_dash(b: &[u8]) -> Option<Option<u64>> {
    if b == b"-" {
        Some(None)
    } else {
        dec(b).map(Some)
    }
}

/// Length of the leading run of `A-Z`, `0-9`, `_` (a Squid result or hierarchy code).
fn code_word_len(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'))
        .unwrap_or(b.len())
}

/// `CODE/NNN` → the status (`000` and `-` give `None`); on error, the offset in the field.
fn squid_status(field: &[u8]) -> Result<Option<u16>, usize> {
    let code_len = code_word_len(field);
    if code_len == 0 || field.get(code_len) != Some(&b'/') {
        return Err(code_len);
    }
    let digits = field.get(code_len + 1..).unwrap_or_default();
    if digits == b"-" {
        return Ok(None);
    }
    if digits.len() > 3 {
        return Err(code_len + 1);
    }
    match dec(digits) {
        Some(0) => Ok(None),
        Some(n @ 100..=999) => u16::try_from(n).map(Some).map_err(|_| code_len + 1),
        _ => Err(code_len + 1),
    }
}

/// `seconds[.fraction]` since the epoch → µs, in `[1970, 10000)`.
fn squid_time(t: &[u8]) -> Option<i64> {
    let (secs, frac) = match memchr(b'.', t) {
        Some(i) => {
            let (secs, dot_frac) = t.split_at_checked(i)?;
            let frac = dot_frac.get(1..)?;
            if frac.is_empty() {
                return None;
            }
            (secs, frac)
        }
        None => (t, &b""[..]),
    };
    let secs = i64::try_from(dec(secs)?).ok()?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let micros = frac
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(6)
        .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    let ts = secs.checked_mul(MICROS_PER_SECOND)?.checked_add(micros)?;
    (ts < END_OF_TIME).then_some(ts)
}

// ---------------------------------------------------------------------------------------------
// JSON proxy-gateway format
// ---------------------------------------------------------------------------------------------

/// Keys accepted for the request time (required).
pub const JSON_TIME_KEYS: [&str; 3] = ["ts", "time", "timestamp"];
/// Keys accepted for the client address (required).
pub const JSON_CLIENT_KEYS: [&str; 3] = ["client_ip", "client", "src_ip"];
/// Keys accepted for the proxy customer's account / user name.
pub const JSON_ACCOUNT_KEYS: [&str; 3] = ["account_id", "account", "user"];
/// Keys accepted for the HTTP status.
pub const JSON_STATUS_KEYS: [&str; 2] = ["status", "status_code"];
/// Keys accepted for the bytes received from the client.
pub const JSON_BYTES_IN_KEYS: [&str; 3] = ["bytes_in", "bytes_up", "request_bytes"];
/// Keys accepted for the bytes sent to the client.
pub const JSON_BYTES_OUT_KEYS: [&str; 3] = ["bytes_out", "bytes_down", "response_bytes"];
/// Keys accepted for the duration in milliseconds.
pub const JSON_DURATION_KEYS: [&str; 2] = ["duration_ms", "elapsed_ms"];

/// Parses one line of logveil's JSON proxy-gateway format (see the module docs).
///
/// Never panics. Strings borrow from the line unless JSON escapes force a copy; skipped
/// values are never copied.
pub fn parse_proxy_json(line: &[u8]) -> Result<ProxyRecord<'_>, ParseError> {
    // JSON text is UTF-8 (RFC 8259 §8.1); serde_json does not check values it skips.
    crate::error::require_utf8(line)?;
    let ctx = Ctx {
        line,
        expected: Cell::new(EXPECT_OBJECT),
        bad_ts_at: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(line);
    let raw = RawSeed { ctx: &ctx }
        .deserialize(&mut de)
        .and_then(|raw| {
            ctx.expected.set(EXPECT_END);
            de.end().map(|()| raw)
        })
        .map_err(|e| ctx.error(&e))?;
    let missing = |expected| ParseError::new(QuarantineReason::MissingField, 0, expected);
    Ok(ProxyRecord {
        ts_micros: raw
            .ts
            .flatten()
            .ok_or(missing("a \"ts\", \"time\" or \"timestamp\" field"))?,
        client: raw
            .client
            .flatten()
            .ok_or(missing("a \"client_ip\", \"client\" or \"src_ip\" field"))?,
        account: raw.account.flatten(),
        status: raw.status.flatten(),
        bytes_in: raw.bytes_in.flatten(),
        bytes_out: raw.bytes_out.flatten(),
        duration_ms: raw.duration_ms.flatten(),
    })
}

const EXPECT_OBJECT: &str = "a JSON object";
const EXPECT_KEY: &str = "a string key or '}'";
const EXPECT_END: &str = "end of line after the JSON object";
const EXPECT_ANY: &str = "any JSON value";
const EXPECT_TS: &str = "an RFC 3339 or CLF time string, or epoch seconds/milliseconds";

/// Error context shared by the visitors: what is expected next, and where a bad time was.
struct Ctx<'l> {
    line: &'l [u8],
    expected: Cell<&'static str>,
    /// Set when the time value had the right type but was not a valid time: the column of the
    /// value if known (a borrowed string), else `Some(None)`.
    bad_ts_at: Cell<Option<Option<usize>>>,
}

impl Ctx<'_> {
    /// Maps a serde_json error to a parse error without using its `Display`.
    fn error(&self, e: &serde_json::Error) -> ParseError {
        use serde_json::error::Category;
        let column = e.column().saturating_sub(1);
        if let Some(at) = self.bad_ts_at.get() {
            return ParseError::new(
                QuarantineReason::BadTimestamp,
                at.unwrap_or(column),
                EXPECT_TS,
            );
        }
        let expected = self.expected.get();
        let expected = match e.classify() {
            Category::Eof => "more input (truncated JSON)",
            Category::Syntax if expected == EXPECT_END => EXPECT_END,
            Category::Syntax => "valid JSON",
            Category::Data | Category::Io => expected,
        };
        ParseError::new(QuarantineReason::BadJson, column, expected)
    }

    /// Byte offset of `s` in the line, if it is borrowed from it.
    fn offset_of(&self, s: &[u8]) -> Option<usize> {
        let off = (s.as_ptr() as usize).checked_sub(self.line.as_ptr() as usize)?;
        (off.checked_add(s.len())? <= self.line.len()).then_some(off)
    }
}

/// The fields this parser reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Time,
    Client,
    Account,
    Status,
    BytesIn,
    BytesOut,
    Duration,
    Other,
}

impl Key {
    fn classify(k: &str) -> Key {
        match k {
            "ts" | "time" | "timestamp" => Key::Time,
            "client_ip" | "client" | "src_ip" => Key::Client,
            "account_id" | "account" | "user" => Key::Account,
            "status" | "status_code" => Key::Status,
            "bytes_in" | "bytes_up" | "request_bytes" => Key::BytesIn,
            "bytes_out" | "bytes_down" | "response_bytes" => Key::BytesOut,
            "duration_ms" | "elapsed_ms" => Key::Duration,
            _ => Key::Other,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Key::Time => EXPECT_TS,
            Key::Client => "a string or null for the client address",
            Key::Account => "a string, non-negative integer or null for the account",
            Key::Status => "an integer status (100..=999, or 0) or null",
            Key::BytesIn | Key::BytesOut => "a non-negative integer or null for a byte count",
            Key::Duration => "a non-negative number or null for the duration",
            Key::Other => EXPECT_ANY,
        }
    }
}

/// Deserializes a key with a classifier, without allocating (escaped keys are classified
/// from serde_json's scratch buffer).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::classify(v))
    }
}

/// The fields as read: outer `None` = not seen yet, `Some(None)` = seen as `null`/absent.
#[derive(Default)]
struct RawProxy<'a> {
    ts: Option<Option<i64>>,
    client: Option<Option<Cow<'a, [u8]>>>,
    account: Option<Option<Cow<'a, [u8]>>>,
    status: Option<Option<u16>>,
    bytes_in: Option<Option<u64>>,
    bytes_out: Option<Option<u64>>,
    duration_ms: Option<Option<u64>>,
}

struct RawSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_, '_> {
    type Value = RawProxy<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawProxy<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

/// Reads the value into `slot` unless the field was already seen (first wins), in which
/// case the value is skipped unread.
fn first<'de, A, S>(map: &mut A, slot: &mut Option<S::Value>, seed: S) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    S: DeserializeSeed<'de>,
{
    if slot.is_some() {
        map.next_value::<IgnoredAny>()?;
    } else {
        *slot = Some(map.next_value_seed(seed)?);
    }
    Ok(())
}

impl<'de> Visitor<'de> for RawSeed<'_, '_> {
    type Value = RawProxy<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawProxy<'de>, A::Error> {
        let mut raw = RawProxy::default();
        loop {
            self.ctx.expected.set(EXPECT_KEY);
            let Some(key) = map.next_key_seed(KeySeed)? else {
                break;
            };
            self.ctx.expected.set(key.expected());
            match key {
                Key::Time => first(&mut map, &mut raw.ts, TimeSeed { ctx: self.ctx })?,
                Key::Client => first(&mut map, &mut raw.client, BytesSeed { numbers: false })?,
                Key::Account => first(&mut map, &mut raw.account, BytesSeed { numbers: true })?,
                Key::Status => first(&mut map, &mut raw.status, StatusSeed)?,
                Key::BytesIn => first(&mut map, &mut raw.bytes_in, U64Seed)?,
                Key::BytesOut => first(&mut map, &mut raw.bytes_out, U64Seed)?,
                Key::Duration => first(&mut map, &mut raw.duration_ms, DurationSeed)?,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// A string (or, with `numbers`, a non-negative integer) as bytes; `null`, `""` and `"-"`
/// give `None`.
struct BytesSeed {
    numbers: bool,
}

impl<'de> DeserializeSeed<'de> for BytesSeed {
    type Value = Option<Cow<'de, [u8]>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn non_empty<'a>(v: Cow<'a, [u8]>) -> Option<Cow<'a, [u8]>> {
    (!v.is_empty() && *v != *b"-").then_some(v)
}

impl<'de> Visitor<'de> for BytesSeed {
    type Value = Option<Cow<'de, [u8]>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(non_empty(Cow::Borrowed(v.as_bytes())))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(non_empty(Cow::Owned(v.as_bytes().to_vec())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        if self.numbers {
            Ok(Some(Cow::Owned(v.to_string().into_bytes())))
        } else {
            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
        }
    }
}

/// The time: a string (RFC 3339 or CLF) or an epoch number (seconds or milliseconds by
/// magnitude); `null` gives `None`. A value of the right type that is not a valid time is an
/// error recorded in [`Ctx::bad_ts_at`].
struct TimeSeed<'c, 'l> {
    ctx: &'c Ctx<'l>,
}

/// Epoch numbers below this are seconds (up to year 5138), up to [`EPOCH_MS_LIMIT`]
/// milliseconds (from 1973-03-03).
const EPOCH_SECONDS_LIMIT: f64 = 1e11;
const EPOCH_MS_LIMIT: f64 = 1e14;

impl TimeSeed<'_, '_> {
    fn bad<T, E: de::Error>(&self, at: Option<usize>) -> Result<T, E> {
        self.ctx.bad_ts_at.set(Some(at));
        Err(E::custom("invalid time"))
    }

    fn check<E: de::Error>(&self, ts: Option<i64>, at: Option<usize>) -> Result<Option<i64>, E> {
        match ts.filter(|t| (0..END_OF_TIME).contains(t)) {
            Some(t) => Ok(Some(t)),
            None => self.bad(at),
        }
    }

    fn parse_str<E: de::Error>(&self, v: &str, at: Option<usize>) -> Result<Option<i64>, E> {
        let b = v.as_bytes();
        self.check(parse_rfc3339(b).or_else(|| parse_clf_time(b)), at)
    }
}

impl<'de> DeserializeSeed<'de> for TimeSeed<'_, '_> {
    type Value = Option<i64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TimeSeed<'_, '_> {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECT_TS)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Option<i64>, E> {
        // The column of the opening quote.
        let at = self
            .ctx
            .offset_of(v.as_bytes())
            .map(|o| o.saturating_sub(1));
        self.parse_str(v, at)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<i64>, E> {
        self.parse_str(v, None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i64>, E> {
        let ts = if v < 100_000_000_000 {
            i64::try_from(v)
                .ok()
                .and_then(|s| s.checked_mul(MICROS_PER_SECOND))
        } else if v < 100_000_000_000_000 {
            i64::try_from(v).ok().and_then(|ms| ms.checked_mul(1_000))
        } else {
            None
        };
        self.check(ts, None)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i64>, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => self.bad(None),
        }
    }
    // In range by construction (< 1e17 < i64::MAX), so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<i64>, E> {
        let micros = if !(0.0..EPOCH_MS_LIMIT).contains(&v) {
            None
        } else if v < EPOCH_SECONDS_LIMIT {
            Some((v * 1e6).round())
        } else {
            Some((v * 1e3).round())
        };
        self.check(micros.map(|m| m as i64), None)
    }
}

/// An HTTP status: `100..=999`, `0` (none) or `null`.
struct StatusSeed;

impl<'de> DeserializeSeed<'de> for StatusSeed {
    type Value = Option<u16>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u16>, D::Error> {
        match Option::<u64>::deserialize(d)? {
            None | Some(0) => Ok(None),
            Some(n @ 100..=999) => Ok(u16::try_from(n).ok()),
            Some(n) => Err(de::Error::invalid_value(
                de::Unexpected::Unsigned(n),
                &"an HTTP status",
            )),
        }
    }
}

/// A non-negative integer or `null`.
struct U64Seed;

impl<'de> DeserializeSeed<'de> for U64Seed {
    type Value = Option<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        Option::<u64>::deserialize(d)
    }
}

/// A non-negative number of milliseconds (fraction truncated) or `null`.
struct DurationSeed;

impl<'de> DeserializeSeed<'de> for DurationSeed {
    type Value = Option<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DurationSeed {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative number or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<u64>, E> {
        // Below 2^64: `as` would saturate, but an overflow is an error.
        if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            Ok(Some(v as u64))
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logveil_model::time::{MICROS_PER_DAY, days_from_civil};

    #[test]
    fn end_of_time_is_year_10000() {
        assert_eq!(END_OF_TIME, days_from_civil(10000, 1, 1) * MICROS_PER_DAY);
    }

    #[test]
    fn key_lists_match_the_classifier() {
        for (keys, key) in [
            (&JSON_TIME_KEYS[..], Key::Time),
            (&JSON_CLIENT_KEYS[..], Key::Client),
            (&JSON_ACCOUNT_KEYS[..], Key::Account),
            (&JSON_STATUS_KEYS[..], Key::Status),
            (&JSON_BYTES_IN_KEYS[..], Key::BytesIn),
            (&JSON_BYTES_OUT_KEYS[..], Key::BytesOut),
            (&JSON_DURATION_KEYS[..], Key::Duration),
        ] {
            for k in keys {
                assert_eq!(Key::classify(k), key, "{k}");
            }
        }
        for k in ["dest_host", "url", "TS", "Client_IP", "method", "peer"] {
            assert_eq!(Key::classify(k), Key::Other, "{k}");
        }
    }

    #[test]
    fn squid_time_shapes() {
        assert_eq!(squid_time(b"0"), Some(0));
        assert_eq!(squid_time(b"1.5"), Some(1_500_000));
        assert_eq!(squid_time(b"1.1234567"), Some(1_123_456));
        assert_eq!(squid_time(b"253402300799.999"), Some(END_OF_TIME - 1_000));
        for bad in [
            &b""[..],
            b".",
            b"1.",
            b".5",
            b"1.5.",
            b"1.-5",
            b"-1",
            b"+1",
            b"253402300800",
            b"99999999999999999999999",
        ] {
            assert_eq!(squid_time(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn squid_status_shapes() {
        assert_eq!(squid_status(b"TCP_MISS/200"), Ok(Some(200)));
        assert_eq!(squid_status(b"NONE/000"), Ok(None));
        assert_eq!(squid_status(b"NONE/0"), Ok(None));
        assert_eq!(squid_status(b"NONE/-"), Ok(None));
        assert_eq!(squid_status(b"X/999"), Ok(Some(999)));
        assert_eq!(squid_status(b"/200"), Err(0));
        assert_eq!(squid_status(b"tcp_miss/200"), Err(0));
        assert_eq!(squid_status(b"TCP_MISS200"), Err(11));
        assert_eq!(squid_status(b"TCP_MISS/"), Err(9));
        assert_eq!(squid_status(b"TCP_MISS/2000"), Err(9));
        assert_eq!(squid_status(b"TCP_MISS/42"), Err(9));
        assert_eq!(squid_status(b"TCP_MISS/20x"), Err(9));
    }
}

//! Application logs in logfmt (`key=value …`) or JSON (one object per line, any shape), mapped
//! onto the `app` dataset's fields by an [`AppMapping`] from the pipeline config: a new
//! service is onboarded by naming which of its fields is the timestamp, the client IP, the
//! device id, the message… Fields the mapping does not name are skipped (fail closed) and
//! counted. Values borrow from the line unless escapes had to be decoded.
//!
//! [`AppParser::new`] compiles the mapping into per-level lookup tables (field name → roles and
//! `keep` slots, with each candidate's rank), so a line is read in one pass over its fields,
//! without building a tree and without allocating, except for values whose escapes had to be
//! decoded and the [`AppRecord::kept`] vector when `keep` is not empty.
//!
//! Rules:
//!
//! * **Names.** Each role lists candidate names; the first candidate *in the list* that is
//!   present in the line wins, wherever it appears in the line. A JSON name with dots
//!   (`client.ip`) matches a literal key (`"client.ip"`), nested objects (`{"client":
//!   {"ip": …}}`) and any mix (`{"client": {"ip.v4": …}}` for `client.ip.v4`). logfmt keys are
//!   flat: a dotted name matches the literal key. Keys are compared exactly (case-sensitive,
//!   after JSON unescaping). Empty names never match.
//! * **Duplicate keys: the first occurrence wins** (later ones are ignored, not an error).
//! * **Absent values.** JSON `null` and empty strings (JSON `""`, logfmt `key=` / `key=""`)
//!   count as absent for roles (the next candidate may win); a bare logfmt `key` is present
//!   with the value `true`. `keep` slots take empty strings as they are.
//! * **Text roles** (level, message, ip, ids, user agent, method, path) take strings; JSON
//!   numbers and booleans are taken as their JSON text (`"user_id": 42` gives `"42"`); JSON
//!   objects and arrays are not text and count as absent.
//! * **`keep`** takes any value; non-string JSON values (objects and arrays included) are
//!   given as their raw JSON text, exactly as written in the line.
//! * **`status`**: an integer from 100 to 999, written as three digits in a JSON number or a
//!   string; anything else gives `None` (the line is kept).
//! * **`duration_ms`**: a number or a numeric string, finite and not negative, else `None`.
//! * **Timestamp** (required): absent gives [`QuarantineReason::MissingField`], present but
//!   unusable gives [`QuarantineReason::BadTimestamp`] (column of the value). With
//!   [`TimestampFormat::Auto`], text is RFC 3339 (`T` or space separator), leniently extended
//!   to ISO 8601 shapes loggers write: a missing zone is taken as **UTC**, a comma may start
//!   the fraction (Python's `2026-01-01 10:00:00,123`) and the offset may be `+hhmm` or `+hh`.
//!   A number, or a string holding a decimal number, is a Unix time whose magnitude gives the
//!   unit: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else
//!   nanoseconds (decimal text is converted exactly; exponents go through `f64`).
//!   [`TimestampFormat::Rfc3339`] accepts strict RFC 3339 text only; the `Unix*` formats take a
//!   number or numeric string in that unit. Times before 1970 or from year 10000 on are bad.
//! * **`unmapped_fields`** counts the top-level JSON fields (resp. logfmt pairs) whose name
//!   the mapping does not name. A JSON object that is only a path prefix of a named field
//!   (`client` for `client.ip`) is not counted; a non-object value there is.
//! * **JSON syntax** is RFC 8259 as serde_json reads it (same escapes, lone surrogates,
//!   control characters, invalid UTF-8, numbers out of `f64` range, more than 127 nested
//!   levels and trailing characters are all errors), except that a leading UTF-8 byte order
//!   mark is skipped. Errors are [`QuarantineReason::BadJson`] with the byte offset; a line
//!   that is not a JSON object is `BadJson` too. logfmt syntax is described in
//!   [`crate::logfmt`]; its errors are [`QuarantineReason::Malformed`].
//!
//! Errors never carry input bytes; `Debug` of a record shows which roles are present only.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use logveil_model::QuarantineReason;
use logveil_model::time::{END_OF_TIME, parse_rfc3339, plausible_time};

use crate::error::ParseError;
use crate::logfmt::{self, LogfmtValue};

/// Input syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppFormat {
    /// `key=value` pairs (see [`crate::logfmt`]).
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// How the timestamp field is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampFormat {
    /// RFC 3339 / ISO 8601 text (`T` or space separator), or a Unix timestamp number whose
    /// magnitude tells seconds, milliseconds, microseconds or nanoseconds.
    #[default]
    Auto,
    /// Strict RFC 3339 text (`T` or space separator, zone required).
    Rfc3339,
    /// A number or numeric string of seconds since the Unix epoch (fraction allowed).
    UnixSeconds,
    /// Milliseconds since the Unix epoch.
    UnixMillis,
    /// Microseconds since the Unix epoch.
    UnixMicros,
    /// Nanoseconds since the Unix epoch (truncated to microseconds).
    UnixNanos,
}

/// Which source field plays which role. Each role lists candidate field names, tried in order
/// (the first present wins); JSON names may be dotted paths into nested objects
/// (`client.ip`). An empty list means the role is not mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppMapping {
    pub timestamp: Vec<String>,
    pub timestamp_format: TimestampFormat,
    pub level: Vec<String>,
    pub message: Vec<String>,
    pub ip: Vec<String>,
    pub device_id: Vec<String>,
    pub account_id: Vec<String>,
    pub user_agent: Vec<String>,
    pub method: Vec<String>,
    pub path: Vec<String>,
    pub status: Vec<String>,
    pub duration_ms: Vec<String>,
    /// Further fields kept as scrubbed text attributes, by exact name (or dotted path).
    pub keep: Vec<String>,
}

fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for AppMapping {
    /// Common field names of Go, Python, Node and Rust loggers.
    fn default() -> Self {
        AppMapping {
            timestamp: names(&["ts", "time", "timestamp", "@timestamp", "t"]),
            timestamp_format: TimestampFormat::Auto,
            level: names(&["level", "lvl", "severity", "log.level"]),
            message: names(&["msg", "message", "event"]),
            ip: names(&["ip", "client_ip", "remote_addr", "remote_ip", "client.ip"]),
            device_id: names(&["device_id", "deviceId"]),
            account_id: names(&["account_id", "user_id", "accountId", "userId"]),
            user_agent: names(&["user_agent", "userAgent", "ua", "http.user_agent"]),
            method: names(&["method", "http.method"]),
            // Not `url`: app logs often hold absolute URLs there, which the privacy engine
            // must treat as proxy destinations (and drop). Map it explicitly if it is relative.
            path: names(&["path", "uri", "http.path"]),
            status: names(&["status", "status_code", "http.status_code"]),
            duration_ms: names(&["duration_ms", "latency_ms", "elapsed_ms"]),
            keep: Vec::new(),
        }
    }
}

/// One application log record, mapped. `Debug` shows which roles are present, not values.
#[derive(Clone, PartialEq)]
pub struct AppRecord<'a> {
    pub ts_micros: i64,
    pub level: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
    pub ip: Option<Cow<'a, str>>,
    pub device_id: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub path: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    pub duration_ms: Option<f64>,
    /// Values of [`AppMapping::keep`], in the same order (`None` when absent). Non-string
    /// JSON values are given as their JSON text.
    pub kept: Vec<Option<Cow<'a, str>>>,
    /// Fields present in the line that the mapping does not name (skipped).
    pub unmapped_fields: u32,
}

impl std::fmt::Debug for AppRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRecord")
            .field("ts_micros", &self.ts_micros)
            .field("has_ip", &self.ip.is_some())
            .field("has_device_id", &self.device_id.is_some())
            .field("has_account_id", &self.account_id.is_some())
            .field("has_message", &self.message.is_some())
            .field("status", &self.status)
            .field("kept", &self.kept.iter().filter(|k| k.is_some()).count())
            .field("unmapped_fields", &self.unmapped_fields)
            .finish()
    }
}

/// A compiled mapping for one input syntax. Reuse one per worker thread.
#[derive(Clone, Debug)]
pub struct AppParser {
    mapping: AppMapping,
    format: AppFormat,
    /// Lookup tables, one per dotted prefix of the mapped names; `nodes[0]` is the top level.
    nodes: Vec<Node>,
}

impl AppParser {
    /// Compiles `mapping` for `format`: builds the name lookup tables once.
    pub fn new(mapping: AppMapping, format: AppFormat) -> AppParser {
        let nodes = build_nodes(&mapping);
        AppParser {
            mapping,
            format,
            nodes,
        }
    }

    /// The mapping this parser was built from.
    pub fn mapping(&self) -> &AppMapping {
        &self.mapping
    }

    /// The input syntax this parser reads.
    pub fn format(&self) -> AppFormat {
        self.format
    }

    /// Parses and maps one line. A line without a usable timestamp is an error
    /// (`missing_field` or `bad_timestamp`); invalid JSON is `bad_json`; invalid logfmt is
    /// `malformed`. Never panics; see the module docs for the rules.
    pub fn parse<'a>(&mut self, line: &'a [u8]) -> Result<AppRecord<'a>, ParseError> {
        let mut found = Found::new(self.mapping.keep.len());
        let unmapped = match self.format {
            AppFormat::Logfmt => self.read_logfmt(line, &mut found)?,
            AppFormat::Json => self.read_json(line, &mut found)?,
        };
        self.finish(found, unmapped)
    }

    fn read_logfmt<'a>(&self, line: &'a [u8], found: &mut Found<'a>) -> Result<u32, ParseError> {
        let mut unmapped = 0u32;
        let Some(root) = self.nodes.first() else {
            return Ok(0);
        };
        for pair in logfmt::pairs(line) {
            let (key, value) = pair?;
            let Some(entry) = root.keys.get(key).filter(|e| !e.targets.is_empty()) else {
                unmapped = unmapped.saturating_add(1);
                continue;
            };
            if !entry.targets.iter().any(|t| found.wants(*t)) {
                continue;
            }
            let key_at = (key.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
            let (at, raw) = match value {
                LogfmtValue::KeyOnly => (key_at, Raw::Flag),
                LogfmtValue::Empty => (key_at + key.len() + 1, Raw::Str(Cow::Borrowed(""))),
                v => (key_at + key.len() + 1, Raw::Str(v.decode())),
            };
            for t in &entry.targets {
                found.offer(*t, at, &raw);
            }
        }
        Ok(unmapped)
    }

    fn read_json<'a>(&self, line: &'a [u8], found: &mut Found<'a>) -> Result<u32, ParseError> {
        let mut j = Json {
            b: line,
            i: 0,
            depth: 0,
        };
        if line.starts_with(b"\xEF\xBB\xBF") {
            j.i = 3;
        }
        j.ws();
        if j.peek() != Some(b'{') {
            return Err(j.err(EXPECT_OBJECT));
        }
        let unmapped = j.object(&self.nodes, 0, true, found)?;
        j.ws();
        if j.i < line.len() {
            return Err(j.err(EXPECT_END));
        }
        Ok(unmapped)
    }

    fn finish<'a>(&self, found: Found<'a>, unmapped: u32) -> Result<AppRecord<'a>, ParseError> {
        let [
            ts,
            level,
            message,
            ip,
            device_id,
            account_id,
            user_agent,
            method,
            path,
            status,
            duration,
        ] = found.roles;
        let format = self.mapping.timestamp_format;
        let Some(ts) = ts else {
            return Err(ParseError::new(
                QuarantineReason::MissingField,
                0,
                "a timestamp field named by the mapping",
            ));
        };
        let Some(ts_micros) = timestamp(&ts.raw, format) else {
            return Err(ParseError::new(
                QuarantineReason::BadTimestamp,
                ts.at,
                expected_ts(format),
            ));
        };
        Ok(AppRecord {
            ts_micros,
            level: text(level),
            message: text(message),
            ip: text(ip),
            device_id: text(device_id),
            account_id: text(account_id),
            user_agent: text(user_agent),
            method: text(method),
            path: text(path),
            status: status.and_then(|h| status_code(h.raw.number_text()?)),
            duration_ms: duration.and_then(|h| duration_ms(h.raw.number_text()?)),
            kept: found.kept,
            unmapped_fields: unmapped,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled mapping

/// Role slots, in the order of [`AppRecord`]'s fields; `keep` slots follow.
const TS: usize = 0;
const ROLES: usize = 11;

/// One place a named field's value may go: a role (`slot < ROLES`) or a `keep` entry
/// (`slot - ROLES`), with the rank of the name among the role's candidates (lower wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Target {
    slot: usize,
    rank: usize,
}

/// The field names looked for at one level of a JSON line (or in a logfmt line: the top
/// level's targets only).
#[derive(Clone, Debug, Default)]
struct Node {
    keys: HashMap<Box<[u8]>, Entry, BuildHasherDefault<KeyHash>>,
}

/// What a key at some level means: the slots its value goes to, and the level to read when
/// its value is an object and longer names continue below it.
#[derive(Clone, Debug, Default)]
struct Entry {
    targets: Vec<Target>,
    child: Option<usize>,
}

/// A cheap hash for field names (short, and the table is built from config, not from input,
/// so collisions only cost a comparison): the length and up to 16 bytes, read 8 at a time.
#[derive(Clone, Copy, Default)]
struct KeyHash(u64);

impl KeyHash {
    #[inline]
    fn mix(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(b) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

impl Hasher for KeyHash {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.mix(n as u64);
        if n <= 8 {
            self.mix(word(bytes));
        } else {
            // First and last 8 bytes (overlapping when shorter than 16).
            self.mix(word(bytes));
            self.mix(word(bytes.get(n - 8..).unwrap_or_default()));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds one lookup table per dotted prefix of the mapped names. A name `a.b.c` is a key
/// `a.b.c` at the top level, and also a key `a` (or `a.b`) whose object holds the rest: the
/// table of the level reached after reading keys whose dotted join is `P` lists the
/// remainders of the names starting with `P.`. Tables are shared per prefix, so their number
/// is at most the number of dots in the names, plus one.
fn build_nodes(m: &AppMapping) -> Vec<Node> {
    let roles: [&Vec<String>; ROLES] = [
        &m.timestamp,
        &m.level,
        &m.message,
        &m.ip,
        &m.device_id,
        &m.account_id,
        &m.user_agent,
        &m.method,
        &m.path,
        &m.status,
        &m.duration_ms,
    ];
    let mut names: Vec<(&str, Target)> = Vec::new();
    for (slot, list) in roles.iter().enumerate() {
        for (rank, name) in list.iter().enumerate() {
            names.push((name, Target { slot, rank }));
        }
    }
    for (i, name) in m.keep.iter().enumerate() {
        names.push((
            name,
            Target {
                slot: ROLES + i,
                rank: 0,
            },
        ));
    }
    names.retain(|(n, _)| !n.is_empty());

    let mut nodes = vec![Node::default()];
    let mut prefixes: Vec<String> = vec![String::new()];
    let mut ids: HashMap<String, usize> = HashMap::from([(String::new(), 0)]);
    let mut next = 0;
    while let Some(prefix) = prefixes.get(next).cloned() {
        let id = next;
        next += 1;
        for (name, target) in &names {
            let rest = if prefix.is_empty() {
                Some(*name)
            } else {
                name.strip_prefix(prefix.as_str())
                    .and_then(|r| r.strip_prefix('.'))
            };
            let Some(rest) = rest.filter(|r| !r.is_empty()) else {
                continue;
            };
            let mut found_child: Vec<(&str, usize)> = Vec::new();
            for (dot, _) in rest.match_indices('.') {
                let Some((key, tail)) = rest.split_at_checked(dot) else {
                    continue;
                };
                if key.is_empty() || tail.len() <= 1 {
                    continue;
                }
                let child_prefix = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                let cid = match ids.get(&child_prefix) {
                    Some(&c) => c,
                    None => {
                        nodes.push(Node::default());
                        let c = nodes.len() - 1;
                        ids.insert(child_prefix.clone(), c);
                        prefixes.push(child_prefix);
                        c
                    }
                };
                found_child.push((key, cid));
            }
            if let Some(node) = nodes.get_mut(id) {
                let e = node.keys.entry(rest.as_bytes().into()).or_default();
                if !e.targets.contains(target) {
                    e.targets.push(*target);
                }
                for (key, cid) in found_child {
                    node.keys.entry(key.as_bytes().into()).or_default().child = Some(cid);
                }
            }
        }
    }
    nodes
}

// ---------------------------------------------------------------------------------------------
// Values found in a line

/// A value as read, before it is converted for its slot.
#[derive(Clone)]
enum Raw<'a> {
    /// A JSON string (unescaped) or a logfmt value (decoded).
    Str(Cow<'a, str>),
    /// A JSON number, as written.
    Num(&'a str),
    /// A JSON boolean, as written.
    Bool(&'a str),
    /// A JSON object or array, as written.
    Composite(&'a str),
    /// A logfmt key without a value.
    Flag,
}

impl<'a> Raw<'a> {
    /// The value as text for a `keep` slot or a text role.
    fn text(&self) -> Cow<'a, str> {
        match self {
            Raw::Str(s) => s.clone(),
            Raw::Num(s) | Raw::Bool(s) | Raw::Composite(s) => Cow::Borrowed(s),
            Raw::Flag => Cow::Borrowed("true"),
        }
    }

    /// The text of a value that may hold a number (a JSON number or a string).
    fn number_text(&self) -> Option<&str> {
        match self {
            Raw::Str(s) => Some(s),
            Raw::Num(s) => Some(s),
            Raw::Bool(_) | Raw::Composite(_) | Raw::Flag => None,
        }
    }
}

/// The value held by a role, with the rank of the name it came from and its column.
struct Held<'a> {
    rank: usize,
    at: usize,
    raw: Raw<'a>,
}

/// What one line has given so far.
struct Found<'a> {
    roles: [Option<Held<'a>>; ROLES],
    kept: Vec<Option<Cow<'a, str>>>,
}

impl<'a> Found<'a> {
    fn new(keep: usize) -> Self {
        Found {
            roles: std::array::from_fn(|_| None),
            kept: vec![None; keep],
        }
    }

    /// Whether a value for `t` would be taken (its slot is empty or holds a lower-ranked
    /// name). Equal ranks do not replace: the first duplicate wins.
    fn wants(&self, t: Target) -> bool {
        match t.slot.checked_sub(ROLES) {
            None => self
                .roles
                .get(t.slot)
                .is_some_and(|h| h.as_ref().is_none_or(|h| t.rank < h.rank)),
            Some(k) => self.kept.get(k).is_some_and(Option::is_none),
        }
    }

    fn offer(&mut self, t: Target, at: usize, raw: &Raw<'a>) {
        if !self.wants(t) {
            return;
        }
        match t.slot.checked_sub(ROLES) {
            None => {
                // Objects and arrays are no text; the timestamp takes them to report them.
                if matches!(raw, Raw::Composite(_)) && t.slot != TS {
                    return;
                }
                // An empty string carries nothing: a later candidate may still win (an empty
                // timestamp is reported as a bad one).
                if t.slot != TS && matches!(raw, Raw::Str(s) if s.is_empty()) {
                    return;
                }
                if let Some(slot) = self.roles.get_mut(t.slot) {
                    *slot = Some(Held {
                        rank: t.rank,
                        at,
                        raw: raw.clone(),
                    });
                }
            }
            Some(k) => {
                if let Some(slot) = self.kept.get_mut(k) {
                    *slot = Some(raw.text());
                }
            }
        }
    }
}

fn text(h: Option<Held<'_>>) -> Option<Cow<'_, str>> {
    h.map(|h| h.raw.text())
}

/// A status code: exactly three digits, 100 to 999.
fn status_code(s: &str) -> Option<u16> {
    match s.as_bytes() {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// A duration: a finite, non-negative number.
fn duration_ms(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    // `+ 0.0` turns -0 into 0.
    (v.is_finite() && v >= 0.0).then_some(v + 0.0)
}

// ---------------------------------------------------------------------------------------------
// Timestamps

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    fn of_magnitude(v: f64) -> Unit {
        if v < 1e11 {
            Unit::Seconds
        } else if v < 1e14 {
            Unit::Millis
        } else if v < 1e17 {
            Unit::Micros
        } else {
            Unit::Nanos
        }
    }

    /// Microseconds per unit, as a float.
    fn micros(self) -> f64 {
        match self {
            Unit::Seconds => 1e6,
            Unit::Millis => 1e3,
            Unit::Micros => 1.0,
            Unit::Nanos => 1e-3,
        }
    }
}

fn expected_ts(f: TimestampFormat) -> &'static str {
    match f {
        TimestampFormat::Auto => "an RFC 3339 timestamp or a Unix time number",
        TimestampFormat::Rfc3339 => "an RFC 3339 timestamp",
        TimestampFormat::UnixSeconds => "a Unix time in seconds",
        TimestampFormat::UnixMillis => "a Unix time in milliseconds",
        TimestampFormat::UnixMicros => "a Unix time in microseconds",
        TimestampFormat::UnixNanos => "a Unix time in nanoseconds",
    }
}

fn timestamp(raw: &Raw<'_>, f: TimestampFormat) -> Option<i64> {
    let unit = match f {
        TimestampFormat::Auto => None,
        TimestampFormat::Rfc3339 => {
            return match raw {
                Raw::Str(s) => parse_rfc3339(s.as_bytes()),
                _ => None,
            };
        }
        TimestampFormat::UnixSeconds => Some(Unit::Seconds),
        TimestampFormat::UnixMillis => Some(Unit::Millis),
        TimestampFormat::UnixMicros => Some(Unit::Micros),
        TimestampFormat::UnixNanos => Some(Unit::Nanos),
    };
    match (raw, unit) {
        (Raw::Str(s), None) => iso_lenient(s.as_bytes()).or_else(|| unix_time(s, None)),
        (Raw::Str(s), Some(u)) => unix_time(s, Some(u)),
        (Raw::Num(s), u) => unix_time(s, u),
        _ => None,
    }
}

/// A Unix time written as a decimal number, in `unit` or by magnitude.
fn unix_time(s: &str, unit: Option<Unit>) -> Option<i64> {
    let (int, frac, dot) = match s.split_once('.') {
        Some((int, frac)) => (int, frac, true),
        None => (s, "", false),
    };
    let decimal = (1..=20).contains(&int.len())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(dot && frac.is_empty());
    if decimal {
        // Exact: integer part and the fraction digits that matter.
        let n: u128 = int.parse().ok()?;
        let unit = unit.unwrap_or_else(|| Unit::of_magnitude(n as f64));
        let (mul, frac_digits) = match unit {
            Unit::Seconds => (1_000_000u128, 6),
            Unit::Millis => (1_000, 3),
            Unit::Micros | Unit::Nanos => (1, 0),
        };
        let mut f = 0u128;
        let mut digits = frac.bytes();
        for _ in 0..frac_digits {
            f = f * 10 + u128::from(digits.next().map_or(0, |d| d - b'0'));
        }
        let micros = n.checked_mul(mul)?;
        let micros = if unit == Unit::Nanos {
            micros / 1000
        } else {
            micros + f
        };
        return plausible_time(i64::try_from(micros).ok()?);
    }
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let unit = unit.unwrap_or_else(|| Unit::of_magnitude(v));
    let micros = (v * unit.micros()).floor();
    if micros >= END_OF_TIME as f64 {
        return None;
    }
    plausible_time(micros as i64)
}

/// A small stack buffer for rewriting an ISO 8601 timestamp into RFC 3339.
struct Buf {
    b: [u8; 40],
    len: usize,
}

impl Buf {
    fn push(&mut self, c: u8) -> Option<()> {
        *self.b.get_mut(self.len)? = c;
        self.len += 1;
        Some(())
    }

    fn extend(&mut self, s: &[u8]) -> Option<()> {
        s.iter().try_for_each(|&c| self.push(c))
    }

    fn as_slice(&self) -> &[u8] {
        self.b.get(..self.len).unwrap_or_default()
    }
}

/// RFC 3339, or the ISO 8601 variants loggers write (see the module docs): no zone (UTC), a
/// comma before the fraction, `+hhmm` or `+hh` offsets.
fn iso_lenient(b: &[u8]) -> Option<i64> {
    if let Some(t) = parse_rfc3339(b) {
        return Some(t);
    }
    let (head, mut rest) = b.split_at_checked(19)?;
    let mut buf = Buf { b: [0; 40], len: 0 };
    buf.extend(head)?;
    if let Some((&(b'.' | b','), r)) = rest.split_first() {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        let (digits, after) = r.split_at_checked(n)?;
        buf.push(b'.')?;
        // Digits beyond nanoseconds do not matter (microseconds are kept).
        buf.extend(digits.get(..9).unwrap_or(digits))?;
        rest = after;
    }
    match rest {
        [] => buf.push(b'Z')?,
        [s @ (b'+' | b'-'), h1, h2, m1, m2] => buf.extend(&[*s, *h1, *h2, b':', *m1, *m2])?,
        [s @ (b'+' | b'-'), h1, h2] => buf.extend(&[*s, *h1, *h2, b':', b'0', b'0'])?,
        _ => buf.extend(rest)?,
    }
    parse_rfc3339(buf.as_slice())
}

// ---------------------------------------------------------------------------------------------
// JSON

const EXPECT_OBJECT: &str = "a JSON object";
const EXPECT_END: &str = "end of line after the JSON object";
const EXPECT_KEY: &str = "a string key";
const EXPECT_COLON: &str = "':' after a key";
const EXPECT_VALUE: &str = "a JSON value";
const EXPECT_OBJ_NEXT: &str = "',' or '}'";
const EXPECT_ARR_NEXT: &str = "',' or ']'";
const EXPECT_STR_END: &str = "a closing '\"' (truncated JSON)";
const EXPECT_ESCAPE: &str = "a valid JSON escape";
const EXPECT_NO_CONTROL: &str = "no control character inside a string";
const EXPECT_UTF8: &str = "valid UTF-8 in a string";
const EXPECT_DIGIT: &str = "a digit";
const EXPECT_FINITE: &str = "a number within the range of a 64-bit float";
const EXPECT_DEPTH: &str = "at most 127 nested levels";

/// serde_json's nesting limit (its recursion limit of 128, counted the same way).
const MAX_DEPTH: u32 = 127;

/// A zero-copy JSON reader over one line. It validates exactly what it skips, so a line is
/// accepted exactly when `serde_json::from_slice::<Value>` accepts it (BOM aside).
struct Json<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Json<'a> {
    fn err(&self, expected: &'static str) -> ParseError {
        ParseError::new(QuarantineReason::BadJson, self.i, expected)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8, expected: &'static str) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(expected))
        }
    }

    /// Enters an object or array (at its opening bracket).
    fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(EXPECT_DEPTH));
        }
        self.depth += 1;
        self.i += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.i += 1;
    }

    /// The text between `from` and the current position (always ASCII-delimited JSON text
    /// that was validated, so UTF-8).
    fn text_from(&self, from: usize) -> Result<&'a str, ParseError> {
        let s = self.b.get(from..self.i).unwrap_or_default();
        std::str::from_utf8(s).map_err(|_| self.err(EXPECT_UTF8))
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|c| (c as char).to_digit(16))
                .ok_or_else(|| self.err(EXPECT_ESCAPE))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    /// A string at its opening quote: validated (escapes, paired surrogates, no control
    /// characters, UTF-8). Returns the bytes between the quotes and whether they hold escapes.
    fn string(&mut self) -> Result<(&'a str, bool), ParseError> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Fast path: plain bytes.
            let rest = self.b.get(self.i..).unwrap_or_default();
            self.i += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(rest.len());
            match self.peek() {
                None => return Err(self.err(EXPECT_STR_END)),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.i += 1;
                        }
                        Some(b'u') => {
                            self.i += 1;
                            let n = self.hex4()?;
                            if (0xDC00..0xE000).contains(&n) {
                                return Err(self.err(EXPECT_ESCAPE));
                            }
                            if (0xD800..0xDC00).contains(&n) {
                                self.eat(b'\\', EXPECT_ESCAPE)?;
                                self.eat(b'u', EXPECT_ESCAPE)?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err(EXPECT_ESCAPE));
                                }
                            }
                        }
                        _ => return Err(self.err(EXPECT_ESCAPE)),
                    }
                }
                Some(_) => return Err(self.err(EXPECT_NO_CONTROL)),
            }
        }
        let body = self.b.get(start..self.i).unwrap_or_default();
        let s = std::str::from_utf8(body).map_err(|e| {
            ParseError::new(
                QuarantineReason::BadJson,
                start + e.valid_up_to(),
                EXPECT_UTF8,
            )
        })?;
        self.i += 1;
        Ok((s, escaped))
    }

    /// A string value or key, unescaped (allocates only when it holds escapes).
    fn string_cow(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let (s, escaped) = self.string()?;
        Ok(if escaped {
            Cow::Owned(logfmt::unescape(s.as_bytes()))
        } else {
            Cow::Borrowed(s)
        })
    }

    /// A number, as serde_json reads it (grammar of RFC 8259, finite as an `f64`).
    fn number(&mut self) -> Result<&'a str, ParseError> {
        let start = self.i;
        let digits = |j: &mut Json<'a>| {
            let n =
                j.b.get(j.i..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
            j.i += n;
            n
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.err(EXPECT_DIGIT)),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            float = true;
            if digits(self) == 0 {
                return Err(self.err(EXPECT_DIGIT));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err(EXPECT_DIGIT));
            }
        }
        let s = self.text_from(start)?;
        if (float || s.len() > 20) && !s.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(ParseError::new(
                QuarantineReason::BadJson,
                start,
                EXPECT_FINITE,
            ));
        }
        Ok(s)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<&'a str, ParseError> {
        let start = self.i;
        for &c in word {
            self.eat(c, EXPECT_VALUE)?;
        }
        self.text_from(start)
    }

    /// A key and its colon, not decoded (for skipped objects).
    fn skip_key(&mut self) -> Result<(), ParseError> {
        if self.peek() != Some(b'"') {
            return Err(self.err(EXPECT_KEY));
        }
        self.string()?;
        self.ws();
        self.eat(b':', EXPECT_COLON)
    }

    /// Validates and skips one value (iteratively: nesting cannot overflow the stack).
    fn skip_value(&mut self) -> Result<(), ParseError> {
        let base = self.depth;
        // Bit `n` set: the container at relative level `n` is an object.
        let mut objects: u128 = 0;
        loop {
            self.ws();
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    self.enter()?;
                    let level = self.depth - base - 1;
                    let bit = 1u128.checked_shl(level).unwrap_or(0);
                    self.ws();
                    if c == b'{' {
                        objects |= bit;
                        if self.peek() == Some(b'}') {
                            self.leave();
                        } else {
                            self.skip_key()?;
                            continue;
                        }
                    } else {
                        objects &= !bit;
                        if self.peek() == Some(b']') {
                            self.leave();
                        } else {
                            continue;
                        }
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => {
                    self.literal(b"true")?;
                }
                Some(b'f') => {
                    self.literal(b"false")?;
                }
                Some(b'n') => {
                    self.literal(b"null")?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => return Err(self.err(EXPECT_VALUE)),
            }
            // After a value: close finished containers, or go on after a comma.
            loop {
                if self.depth <= base {
                    return Ok(());
                }
                let level = self.depth - base - 1;
                let object = objects.checked_shr(level).unwrap_or(0) & 1 == 1;
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if object => self.leave(),
                    Some(b']') if !object => self.leave(),
                    _ if object => return Err(self.err(EXPECT_OBJ_NEXT)),
                    _ => return Err(self.err(EXPECT_ARR_NEXT)),
                }
            }
        }
    }

    /// One value for a mapped name. `None` for `null`.
    fn value(&mut self) -> Result<Option<Raw<'a>>, ParseError> {
        let start = self.i;
        Ok(Some(match self.peek() {
            Some(b'"') => Raw::Str(self.string_cow()?),
            Some(b'{' | b'[') => {
                self.skip_value()?;
                Raw::Composite(self.text_from(start)?)
            }
            Some(b't') => Raw::Bool(self.literal(b"true")?),
            Some(b'f') => Raw::Bool(self.literal(b"false")?),
            Some(b'n') => {
                self.literal(b"null")?;
                return Ok(None);
            }
            Some(b'-' | b'0'..=b'9') => Raw::Num(self.number()?),
            _ => return Err(self.err(EXPECT_VALUE)),
        }))
    }

    /// An object at its opening brace, read against `nodes[node]`. Returns the number of
    /// fields it had that the mapping does not name (counted at the top level only).
    fn object(
        &mut self,
        nodes: &[Node],
        node: usize,
        top: bool,
        found: &mut Found<'a>,
    ) -> Result<u32, ParseError> {
        self.enter()?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.leave();
            return Ok(0);
        }
        let table = nodes.get(node);
        let mut unmapped = 0u32;
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err(EXPECT_KEY));
            }
            let key = self.string_cow()?;
            self.ws();
            self.eat(b':', EXPECT_COLON)?;
            self.ws();
            let entry = table.and_then(|t| t.keys.get(key.as_bytes()));
            let named = match entry {
                None => {
                    self.skip_value()?;
                    false
                }
                Some(e) => {
                    let at = self.i;
                    match e.child {
                        Some(child) if self.peek() == Some(b'{') => {
                            self.object(nodes, child, false, found)?;
                            if e.targets.iter().any(|t| found.wants(*t)) {
                                let raw = Raw::Composite(self.text_from(at)?);
                                for t in &e.targets {
                                    found.offer(*t, at, &raw);
                                }
                            }
                            true
                        }
                        _ if e.targets.iter().any(|t| found.wants(*t)) => {
                            if let Some(raw) = self.value()? {
                                for t in &e.targets {
                                    found.offer(*t, at, &raw);
                                }
                            }
                            true
                        }
                        _ => {
                            self.skip_value()?;
                            !e.targets.is_empty()
                        }
                    }
                }
            };
            if top && !named {
                unmapped = unmapped.saturating_add(1);
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.leave();
                    return Ok(unmapped);
                }
                _ => return Err(self.err(EXPECT_OBJ_NEXT)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logveil_model::time::format_rfc3339;

    fn own(c: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
        c.map(|c| Cow::Owned(c.into_owned()))
    }

    /// An owned copy (the tests parse temporaries).
    fn owned(r: AppRecord<'_>) -> AppRecord<'static> {
        AppRecord {
            ts_micros: r.ts_micros,
            level: own(r.level),
            message: own(r.message),
            ip: own(r.ip),
            device_id: own(r.device_id),
            account_id: own(r.account_id),
            user_agent: own(r.user_agent),
            method: own(r.method),
            path: own(r.path),
            status: r.status,
            duration_ms: r.duration_ms,
            kept: r.kept.into_iter().map(own).collect(),
            unmapped_fields: r.unmapped_fields,
        }
    }

    fn json(line: &str) -> Result<AppRecord<'static>, ParseError> {
        AppParser::new(AppMapping::default(), AppFormat::Json)
            .parse(line.as_bytes())
            .map(owned)
    }

    fn lf(line: &str) -> Result<AppRecord<'static>, ParseError> {
        AppParser::new(AppMapping::default(), AppFormat::Logfmt)
            .parse(line.as_bytes())
            .map(owned)
    }

    fn reason(r: Result<AppRecord<'_>, ParseError>) -> (QuarantineReason, usize) {
        let e = r.unwrap_err();
        (e.reason, e.column)
    }

    const T0: &str = "2026-11-28T10:15:30Z";

    fn t0() -> i64 {
        parse_rfc3339(T0.as_bytes()).unwrap()
    }

    #[test]
    fn logfmt_line_maps_roles() {
        let line = format!(
            "ts={T0} level=info msg=\"user \\\"x\\\" logged in\" ip=203.0.113.7 \
             method=GET path=/a?b=c status=404 duration_ms=12.5 extra=1 flag"
        );
        let r = AppParser::new(AppMapping::default(), AppFormat::Logfmt)
            .parse(line.as_bytes())
            .unwrap();
        assert_eq!(r.ts_micros, t0());
        assert_eq!(r.level.as_deref(), Some("info"));
        assert_eq!(r.message.as_deref(), Some("user \"x\" logged in"));
        assert!(matches!(r.message, Some(Cow::Owned(_))));
        assert!(matches!(r.ip, Some(Cow::Borrowed("203.0.113.7"))));
        assert_eq!(r.method.as_deref(), Some("GET"));
        assert_eq!(r.path.as_deref(), Some("/a?b=c"));
        assert_eq!(r.status, Some(404));
        assert_eq!(r.duration_ms, Some(12.5));
        assert_eq!(r.unmapped_fields, 2);
        assert_eq!(r.device_id, None);
    }

    #[test]
    fn json_line_maps_roles_and_paths() {
        let line = format!(
            r#"{{"time":"{T0}","severity":"warn","message":"m\u00e9","client":{{"ip":"198.51.100.1","port":9}},
            "http":{{"method":"POST","status_code":"503"}},"userId":42,"latency_ms":"7","other":[1,{{"a":null}}]}}"#
        );
        let r = json(&line).unwrap();
        assert_eq!(r.ts_micros, t0());
        assert_eq!(r.level.as_deref(), Some("warn"));
        assert_eq!(r.message.as_deref(), Some("mé"));
        assert_eq!(r.ip.as_deref(), Some("198.51.100.1"));
        // `http.method` is a candidate; `http.status_code` too.
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.status, Some(503));
        assert_eq!(r.account_id.as_deref(), Some("42"));
        assert_eq!(r.duration_ms, Some(7.0));
        // `other` only.
        assert_eq!(r.unmapped_fields, 1);
    }

    #[test]
    fn literal_dotted_keys_and_mixed_paths() {
        let m = AppMapping {
            keep: vec!["a.b.c".into(), "x.y".into()],
            ..AppMapping::default()
        };
        let mut p = AppParser::new(m, AppFormat::Json);
        for line in [
            r#"{"ts":1,"a.b.c":"v","x.y":1}"#,
            r#"{"ts":1,"a":{"b.c":"v"},"x":{"y":1}}"#,
            r#"{"ts":1,"a.b":{"c":"v"},"x":{"y":1,"z":2}}"#,
            r#"{"ts":1,"a":{"b":{"c":"v"}},"x":{"y":1}}"#,
        ] {
            let r = p.parse(line.as_bytes()).unwrap();
            assert_eq!(r.kept[0].as_deref(), Some("v"), "{line}");
            assert_eq!(r.kept[1].as_deref(), Some("1"), "{line}");
            assert_eq!(r.unmapped_fields, 0, "{line}");
        }
        // A prefix whose value is not an object is skipped and counted.
        let r = p.parse(br#"{"ts":1,"a":"flat"}"#).unwrap();
        assert_eq!((r.kept[0].as_ref(), r.unmapped_fields), (None, 1));
        // logfmt: dotted names match literal keys only.
        let m = AppMapping {
            keep: vec!["a.b".into()],
            ..AppMapping::default()
        };
        let mut p = AppParser::new(m, AppFormat::Logfmt);
        let r = p.parse(b"ts=1 a.b=v a=w").unwrap();
        assert_eq!((r.kept[0].as_deref(), r.unmapped_fields), (Some("v"), 1));
    }

    #[test]
    fn candidate_order_and_duplicates() {
        // `ts` is listed before `time`: it wins even when it comes later in the line.
        let r = json(r#"{"time":"2000-01-01T00:00:00Z","ts":"2026-11-28T10:15:30Z"}"#).unwrap();
        assert_eq!(r.ts_micros, t0());
        // First duplicate wins.
        let r = json(&format!(r#"{{"ts":"{T0}","ip":"a","ip":"b"}}"#)).unwrap();
        assert_eq!(r.ip.as_deref(), Some("a"));
        let r = lf(&format!("ts={T0} ip=a ip=b ts=junk")).unwrap();
        assert_eq!(r.ip.as_deref(), Some("a"));
        // null is absent: the next candidate wins.
        let r = json(&format!(
            r#"{{"ts":null,"time":"{T0}","msg":null,"message":"m"}}"#
        ))
        .unwrap();
        assert_eq!((r.ts_micros, r.message.as_deref()), (t0(), Some("m")));
        // Objects are not text.
        let r = json(&format!(r#"{{"ts":"{T0}","msg":{{"a":1}},"message":"m"}}"#)).unwrap();
        assert_eq!(r.message.as_deref(), Some("m"));
    }

    #[test]
    fn kept_values_are_raw_json_text() {
        let m = AppMapping {
            keep: vec![
                "o".into(),
                "n".into(),
                "b".into(),
                "s".into(),
                "z".into(),
                "x".into(),
            ],
            ..AppMapping::default()
        };
        let mut p = AppParser::new(m, AppFormat::Json);
        let r = p
            .parse(br#"{"ts":1,"o":{ "k" : [1, 2.50] },"n":-1.50e3,"b":false,"s":"q\"","z":null}"#)
            .unwrap();
        let kept: Vec<Option<&str>> = r.kept.iter().map(|k| k.as_deref()).collect();
        assert_eq!(
            kept,
            [
                Some(r#"{ "k" : [1, 2.50] }"#),
                Some("-1.50e3"),
                Some("false"),
                Some("q\""),
                None,
                None
            ]
        );
    }

    #[test]
    fn timestamps() {
        let at = |v: &str| json(&format!(r#"{{"ts":{v}}}"#)).map(|r| format_rfc3339(r.ts_micros));
        let ok = |v: &str, want: &str| assert_eq!(at(v).as_deref(), Ok(want), "{v}");
        ok(r#""2026-11-28T10:15:30Z""#, T0);
        ok(r#""2026-11-28 10:15:30""#, T0);
        ok(r#""2026-11-28T10:15:30.5""#, "2026-11-28T10:15:30.500000Z");
        ok(
            r#""2026-11-28 10:15:30,250""#,
            "2026-11-28T10:15:30.250000Z",
        );
        ok(r#""2026-11-28T12:15:30+0200""#, T0);
        ok(r#""2026-11-28T12:15:30+02""#, T0);
        ok(
            r#""2026-11-28T10:15:30.123456789123Z""#,
            "2026-11-28T10:15:30.123456Z",
        );
        ok("1795860930", T0);
        ok(r#""1795860930""#, T0);
        ok("1795860930.25", "2026-11-28T10:15:30.250000Z");
        ok("1795860930250", "2026-11-28T10:15:30.250000Z");
        ok("1795860930250001", "2026-11-28T10:15:30.250001Z");
        ok("1795860930250001999", "2026-11-28T10:15:30.250001Z");
        ok("1.79586093e9", T0);
        ok("0", "1970-01-01T00:00:00Z");
        for bad in [
            "-1",
            r#""yesterday""#,
            "true",
            r#""""#,
            "[1]",
            "1e300",
            r#""2026-13-01T00:00:00Z""#,
            "999999999999999999999",
        ] {
            assert_eq!(
                json(&format!(r#"{{"x":1, "ts":{bad}}}"#)).map(|_| ()),
                Err(ParseError::new(
                    QuarantineReason::BadTimestamp,
                    13,
                    "an RFC 3339 timestamp or a Unix time number"
                )),
                "{bad}"
            );
        }
        assert_eq!(
            reason(json(r#"{"msg":"x"}"#)).0,
            QuarantineReason::MissingField
        );
        assert_eq!(
            reason(json(r#"{"ts":null}"#)).0,
            QuarantineReason::MissingField
        );
        assert_eq!(reason(lf("msg=x")).0, QuarantineReason::MissingField);
        assert_eq!(reason(lf("a=1 ts")), (QuarantineReason::BadTimestamp, 4));
        assert_eq!(reason(lf("a=1 ts=")), (QuarantineReason::BadTimestamp, 7));

        let fmt = |f: TimestampFormat, line: &str| {
            let m = AppMapping {
                timestamp_format: f,
                ..AppMapping::default()
            };
            AppParser::new(m, AppFormat::Logfmt)
                .parse(line.as_bytes())
                .map(|r| r.ts_micros)
                .ok()
        };
        assert_eq!(fmt(TimestampFormat::UnixMillis, "ts=1500"), Some(1_500_000));
        assert_eq!(fmt(TimestampFormat::UnixMillis, "ts=1.5"), Some(1_500));
        assert_eq!(fmt(TimestampFormat::UnixSeconds, "ts=1.5"), Some(1_500_000));
        assert_eq!(fmt(TimestampFormat::UnixMicros, "ts=1500"), Some(1_500));
        assert_eq!(fmt(TimestampFormat::UnixNanos, "ts=1500"), Some(1));
        assert_eq!(
            fmt(TimestampFormat::Rfc3339, &format!("ts={T0}")),
            Some(t0())
        );
        assert_eq!(
            fmt(TimestampFormat::Rfc3339, "ts=\"2026-11-28 10:15:30\""),
            None
        );
        assert_eq!(fmt(TimestampFormat::Rfc3339, "ts=1500"), None);
        assert_eq!(fmt(TimestampFormat::UnixSeconds, &format!("ts={T0}")), None);
    }

    #[test]
    fn status_and_duration() {
        let r = |v: &str| json(&format!(r#"{{"ts":1,"status":{v},"duration_ms":{v}}}"#)).unwrap();
        assert_eq!(
            (r("200").status, r("200").duration_ms),
            (Some(200), Some(200.0))
        );
        assert_eq!(r(r#""999""#).status, Some(999));
        for none in [
            "99",
            "1000",
            "200.0",
            r#""20x""#,
            r#""+200""#,
            "true",
            "-200",
            r#""""#,
        ] {
            assert_eq!(r(none).status, None, "{none}");
        }
        assert_eq!(r("0.25").duration_ms, Some(0.25));
        assert_eq!(r(r#""1e3""#).duration_ms, Some(1000.0));
        for none in ["-1", r#""inf""#, r#""NaN""#, r#""12ms""#, "false"] {
            assert_eq!(r(none).duration_ms, None, "{none}");
        }
    }

    #[test]
    fn json_errors() {
        for (line, col) in [
            ("", 0),
            ("[1]", 0),
            ("\"s\"", 0),
            ("{", 1),
            (r#"{"ts":1"#, 7),
            (r#"{"ts":1,}"#, 8),
            (r#"{"ts":1} x"#, 9),
            (r#"{"ts":01}"#, 7),
            (r#"{"ts":"\x"}"#, 8),
            (r#"{"ts":"\ud800"}"#, 13),
            (r#"{"a":1e999,"ts":1}"#, 5),
            ("{\"ts\":\"a\u{1}\"}", 8),
            (r#"{"ts":tru}"#, 9),
            (r#"{ts:1}"#, 1),
        ] {
            assert_eq!(
                reason(json(line)),
                (QuarantineReason::BadJson, col),
                "{line}"
            );
        }
        let bad_utf8 = b"{\"ts\":1,\"x\":\"\xff\"}";
        let e = AppParser::new(AppMapping::default(), AppFormat::Json)
            .parse(bad_utf8)
            .unwrap_err();
        assert_eq!((e.reason, e.column), (QuarantineReason::BadJson, 13));
        // BOM skipped, whitespace around.
        assert!(json("\u{feff} { \"ts\" : 1 } \t").is_ok());
        // Nesting: 127 levels are fine, 128 are not (as serde_json).
        let deep = |n: usize| {
            format!(
                r#"{{"ts":1,"x":{}1{}}}"#,
                "[".repeat(n - 1),
                "]".repeat(n - 1)
            )
        };
        assert!(json(&deep(127)).is_ok());
        assert_eq!(reason(json(&deep(128))).0, QuarantineReason::BadJson);
        assert!(serde_json::from_str::<serde_json::Value>(&deep(127)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(128)).is_err());
    }

    #[test]
    fn logfmt_errors() {
        assert_eq!(
            reason(lf("ts=1 msg=\"open")),
            (QuarantineReason::Malformed, 9)
        );
        assert_eq!(reason(lf("ts=1 \"k\"=v")), (QuarantineReason::Malformed, 5));
    }

    #[test]
    fn errors_and_debug_never_show_input() {
        let mut p = AppParser::new(AppMapping::default(), AppFormat::Json);
        let mut l = AppParser::new(AppMapping::default(), AppFormat::Logfmt);
        let secrets = ["203.0.113.77", "alice@example.com"];
        let lines = [
            r#"{"ts":"203.0.113.77","ip":"alice@example.com"}"#,
            r#"{"ip":"203.0.113.77","account_id":"alice@example.com"}"#,
            r#"{"203.0.113.77":"alice@example.com""#,
            r#"{"ts":1,"ip":"203.0.113.77","user_id":"alice@example.com"}"#,
            r#"ts=1 ip=203.0.113.77 user_id="alice@example.com"#,
            r#"ts=203.0.113.77 ip="alice@example.com""#,
        ];
        for line in lines {
            for r in [p.parse(line.as_bytes()), l.parse(line.as_bytes())] {
                let shown = match r {
                    Ok(r) => format!("{r:?}"),
                    Err(e) => format!("{e} {e:?}"),
                };
                for s in secrets {
                    assert!(!shown.contains(s), "{shown}");
                }
            }
        }
    }

    #[test]
    fn tables_are_shared_per_prefix() {
        let m = AppMapping {
            keep: vec!["a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a".into()],
            ..AppMapping::default()
        };
        let p = AppParser::new(m, AppFormat::Json);
        assert!(p.nodes.len() < 40, "{}", p.nodes.len());
        let deep = format!(
            r#"{{"ts":1,{}"a":"v"{}}}"#,
            r#""a":{"#.repeat(19),
            "}".repeat(19)
        );
        let mut p = p;
        assert_eq!(
            p.parse(deep.as_bytes()).unwrap().kept[0].as_deref(),
            Some("v")
        );
    }
}

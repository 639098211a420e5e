//! Access-log lines in the nginx/Apache `combined` and `common` (CLF) formats, parsed with
//! nom on raw bytes, without copying and without allocating.
//!
//! ```text
//! common:   client ident user [time] "request" status bytes
//! combined: client ident user [time] "request" status bytes "referrer" "user-agent" [extra…]
//! ```
//!
//! Grammar, as accepted here:
//!
//! * Fields are separated by one or more spaces. Leading spaces are not allowed (the client
//!   must start at column 0); trailing spaces are.
//! * `client`, `ident`, `user`, `status` and `bytes` are runs of non-space bytes. `-` means
//!   absent (except for the client, which is returned as written; validating it is the
//!   caller's job).
//! * `time` is `[` + the CLF time (`10/Oct/2000:13:55:36 -0700`) + `]`, parsed with
//!   [`logveil_model::time::parse_clf_time`]. A bare `-`, `[-]` or any invalid time gives
//!   [`QuarantineReason::BadTimestamp`].
//! * Quoted fields end at the first `"` not escaped by a backslash (Apache writes `\"` and
//!   `\\`; nginx writes `\x22`, which needs nothing special). The bytes between the quotes are
//!   returned raw; escapes are **not** decoded. A bare `-` (no quotes) is accepted wherever a
//!   quoted field is expected and means absent, as some Apache setups write it.
//! * `status` is three digits in `100..=999`; `bytes` is an unsigned decimal (at most
//!   `u64::MAX`).
//! * `common` lines end after `bytes` (trailing spaces allowed). `combined` lines may carry
//!   extra space-separated fields after the user agent (nginx custom formats append
//!   `"$http_x_forwarded_for"` and the like); they are ignored without being looked at.
//! * Any byte value may appear inside fields; nothing requires UTF-8.
//!
//! Every error other than a bad timestamp is [`QuarantineReason::Malformed`], with the byte
//! offset where the line stopped matching. Errors never carry input bytes.

use logveil_model::QuarantineReason;
use logveil_model::time::parse_clf_time;
use memchr::{memchr, memchr2};
use nom::bytes::complete::take_while1;
use nom::error::ErrorKind;
use nom::{IResult, Parser};

use crate::error::ParseError;

/// Which access-log layout a line is expected to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessFormat {
    /// Common Log Format plus quoted referrer and user agent (and optionally more fields).
    Combined,
    /// Common Log Format: client, ident, user, time, request, status, bytes.
    Common,
}

/// The request line field (`"$request"` / `%r`). `Debug` redacts the target and raw bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// The field is `-` or empty (`""`): the client sent no request line.
    Missing,
    /// `METHOD target PROTOCOL`, or `METHOD /target` (HTTP/0.9, no protocol).
    Parsed {
        /// ASCII letters only, case as written (`GET`, `get`, `PROPFIND`).
        method: &'a [u8],
        /// The request target as written (origin, absolute, authority or asterisk form).
        target: &'a [u8],
        /// `HTTP/<digits>[.<digits>]`, e.g. `HTTP/1.1`, `HTTP/2.0`, `HTTP/2`, `HTTP/3`.
        protocol: Option<&'a [u8]>,
    },
    /// Anything else the server wrote there (garbage, TLS handshakes as `\x16\x03…`, a lone
    /// method): kept only as raw bytes so the caller can count or discard it.
    Raw(&'a [u8]),
}

/// One parsed access-log line. Every slice borrows from the input line.
///
/// `Debug` shows only lengths of the raw fields: they hold addresses, user names and URLs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AccessLine<'a> {
    /// The client address as written (IPv4, IPv6 or anything else; not validated here).
    pub client: &'a [u8],
    /// RFC 1413 identity; `-` gives `None`.
    pub ident: Option<&'a [u8]>,
    /// Authenticated user; `-` gives `None`.
    pub user: Option<&'a [u8]>,
    /// Request time, microseconds since the Unix epoch, UTC.
    pub ts_micros: i64,
    pub request: Request<'a>,
    /// HTTP status; `-` gives `None`.
    pub status: Option<u16>,
    /// Response size; `-` gives `None`.
    pub bytes_sent: Option<u64>,
    /// Combined only: raw bytes between the quotes (escapes not decoded); `-` or empty gives
    /// `None`.
    pub referrer: Option<&'a [u8]>,
    /// Combined only: raw bytes between the quotes (escapes not decoded); `-` or empty gives
    /// `None`.
    pub user_agent: Option<&'a [u8]>,
    /// Time taken to serve the request, in microseconds (custom formats with
    /// `$request_time`, `%D` or `%T` only; always `None` for `combined` and `common`).
    pub request_time_us: Option<u64>,
}

/// Length of an optional raw field, for redacted `Debug` output.
fn len_of(f: Option<&[u8]>) -> Option<usize> {
    f.map(<[u8]>::len)
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Missing => f.write_str("Missing"),
            Request::Parsed {
                method,
                target,
                protocol,
            } => f
                .debug_struct("Parsed")
                .field("method", &String::from_utf8_lossy(method))
                .field("target_len", &target.len())
                .field("protocol", &protocol.map(String::from_utf8_lossy))
                .finish(),
            Request::Raw(r) => f.debug_struct("Raw").field("len", &r.len()).finish(),
        }
    }
}

impl std::fmt::Debug for AccessLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLine")
            .field("client_len", &self.client.len())
            .field("ident_len", &len_of(self.ident))
            .field("user_len", &len_of(self.user))
            .field("ts_micros", &self.ts_micros)
            .field("request", &self.request)
            .field("status", &self.status)
            .field("bytes_sent", &self.bytes_sent)
            .field("referrer_len", &len_of(self.referrer))
            .field("user_agent_len", &len_of(self.user_agent))
            .field("request_time_us", &self.request_time_us)
            .finish()
    }
}

/// Parses one access-log line (without its line terminator) in the given format.
///
/// Never panics and never allocates. On failure the error says why (a bad timestamp, or a
/// malformed line), at which byte offset, and what was expected there.
pub fn parse_access(line: &[u8], format: AccessFormat) -> Result<AccessLine<'_>, ParseError> {
    match access_line(line, format) {
        Ok((_, parsed)) => Ok(parsed),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(f.into_error(line.len())),
        // Only streaming parsers report `Incomplete`; all parsers here are complete ones.
        Err(nom::Err::Incomplete(_)) => Err(ParseError::new(
            QuarantineReason::Malformed,
            line.len(),
            "more input",
        )),
    }
}

/// nom error: where (as the length of the unparsed rest) and why parsing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fail {
    rest_len: usize,
    reason: QuarantineReason,
    expected: &'static str,
}

impl Fail {
    fn into_error(self, line_len: usize) -> ParseError {
        ParseError::new(
            self.reason,
            line_len.saturating_sub(self.rest_len),
            self.expected,
        )
    }
}

impl nom::error::ParseError<&[u8]> for Fail {
    fn from_error_kind(input: &[u8], _kind: ErrorKind) -> Self {
        Fail {
            rest_len: input.len(),
            reason: QuarantineReason::Malformed,
            expected: "a valid field",
        }
    }

    fn append(_input: &[u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, O> = IResult<&'a [u8], O, Fail>;

/// A `Malformed` failure at the start of `at`.
fn malformed<'a, O>(at: &[u8], expected: &'static str) -> Res<'a, O> {
    Err(nom::Err::Error(Fail {
        rest_len: at.len(),
        reason: QuarantineReason::Malformed,
        expected,
    }))
}

/// Runs `parser`, replacing any failure by a `Malformed` one at the start of the input,
/// expecting `expected`.
fn expect<'a, O, P>(mut parser: P, expected: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, O>
where
    P: Parser<&'a [u8], Output = O, Error = Fail>,
{
    move |i: &'a [u8]| match parser.parse(i) {
        Ok(ok) => Ok(ok),
        Err(nom::Err::Incomplete(n)) => Err(nom::Err::Incomplete(n)),
        Err(_) => malformed(i, expected),
    }
}

/// One or more spaces between fields.
fn sep(i: &[u8]) -> Res<'_, &[u8]> {
    expect(take_while1(|c| c == b' '), "' '")(i)
}

/// A non-empty run of non-space bytes. Fields are short, so a plain scan beats memchr here.
fn token<'a>(i: &'a [u8], expected: &'static str) -> Res<'a, &'a [u8]> {
    let end = i.iter().position(|&c| c == b' ').unwrap_or(i.len());
    match i.split_at_checked(end) {
        Some((tok, rest)) if !tok.is_empty() => Ok((rest, tok)),
        _ => malformed(i, expected),
    }
}

fn dash_is_none(v: &[u8]) -> Option<&[u8]> {
    if v == b"-" { None } else { Some(v) }
}

/// `-` or an empty value means absent.
pub(crate) fn dash_or_empty_is_none(v: &[u8]) -> Option<&[u8]> {
    if v.is_empty() || v == b"-" {
        None
    } else {
        Some(v)
    }
}

/// True if `i` starts with a bare `-` field (followed by a space or the end of the line).
fn is_bare_dash(i: &[u8]) -> bool {
    i.first() == Some(&b'-') && matches!(i.get(1), None | Some(b' '))
}

/// What a bracketed CLF timestamp must look like.
pub(crate) const CLF_EXPECTED: &str = "a timestamp like [10/Oct/2000:13:55:36 -0700]";

/// `[` CLF time `]`.
fn timestamp(i: &[u8]) -> Res<'_, i64> {
    const EXPECTED: &str = CLF_EXPECTED;
    let bad_ts = |at: &[u8]| -> nom::Err<Fail> {
        nom::Err::Error(Fail {
            rest_len: at.len(),
            reason: QuarantineReason::BadTimestamp,
            expected: EXPECTED,
        })
    };
    match i.split_first() {
        Some((b'[', body)) => {
            let Some(close) = memchr(b']', body) else {
                return malformed(&[], "']' closing the timestamp");
            };
            let (text, rest) = body.split_at_checked(close).unwrap_or((body, &[]));
            let rest = rest.get(1..).unwrap_or_default();
            match parse_clf_time(text) {
                Some(ts) => Ok((rest, ts)),
                None => Err(bad_ts(body)),
            }
        }
        _ if is_bare_dash(i) => Err(bad_ts(i)),
        _ => malformed(i, "'[' opening the timestamp"),
    }
}

/// Offset in `body` (the bytes after an opening `"`) of the closing quote: the first `"` not
/// preceded by an escaping backslash (`\"`, and `\\` escapes the backslash). `None` if the
/// field is not closed before the end of `body`.
pub(crate) fn closing_quote(body: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(hay) = body.get(pos..) {
        let off = memchr2(b'"', b'\\', hay)?;
        let at = pos + off;
        if body.get(at) == Some(&b'"') {
            return Some(at);
        }
        // A backslash: skip it and the byte it escapes.
        pos = at + 2;
    }
    None
}

/// A `"`-quoted field; returns the raw bytes between the quotes (see [`closing_quote`]).
fn quoted<'a>(i: &'a [u8], expected: &'static str) -> Res<'a, &'a [u8]> {
    let Some((b'"', body)) = i.split_first() else {
        return malformed(i, expected);
    };
    match closing_quote(body) {
        Some(at) => {
            let value = body.get(..at).unwrap_or_default();
            let rest = body.get(at + 1..).unwrap_or_default();
            Ok((rest, value))
        }
        None => malformed(&[], "'\"' closing the quoted field"),
    }
}

/// A quoted field or a bare `-`; returns the raw content (`-` for the bare dash).
fn quoted_or_dash<'a>(i: &'a [u8], expected: &'static str) -> Res<'a, &'a [u8]> {
    if is_bare_dash(i) {
        let (dash, rest) = i.split_at_checked(1).unwrap_or((i, &[]));
        return Ok((rest, dash));
    }
    quoted(i, expected)
}

/// `HTTP/<digits>[.<digits>]`.
pub(crate) fn is_http_version(p: &[u8]) -> bool {
    let Some(v) = p.strip_prefix(b"HTTP/") else {
        return false;
    };
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    match memchr(b'.', v) {
        None => digits(v),
        Some(dot) => match v.split_at_checked(dot) {
            Some((major, minor)) => digits(major) && digits(minor.get(1..).unwrap_or_default()),
            None => false,
        },
    }
}

/// Splits the raw request field into method, target and protocol, or keeps it raw.
pub(crate) fn classify_request(r: &[u8]) -> Request<'_> {
    if r.is_empty() || r == b"-" {
        return Request::Missing;
    }
    let method_len = r
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(r.len());
    let Some((method, after)) = r.split_at_checked(method_len) else {
        return Request::Raw(r);
    };
    let Some((b' ', after)) = after.split_first() else {
        return Request::Raw(r);
    };
    if method.is_empty() || after.is_empty() {
        return Request::Raw(r);
    }
    match memchr(b' ', after) {
        // HTTP/0.9: `GET /path`, origin-form target only.
        None if after.first() == Some(&b'/') => Request::Parsed {
            method,
            target: after,
            protocol: None,
        },
        None => Request::Raw(r),
        Some(sp) => {
            let (target, proto) = after.split_at_checked(sp).unwrap_or((after, &[]));
            let proto = proto.get(1..).unwrap_or_default();
            if target.is_empty() || !is_http_version(proto) {
                return Request::Raw(r);
            }
            Request::Parsed {
                method,
                target,
                protocol: Some(proto),
            }
        }
    }
}

/// What a status field must look like.
pub(crate) const STATUS_EXPECTED: &str = "a 3-digit status (100-999) or '-'";
/// What a byte-count field must look like.
pub(crate) const BYTES_EXPECTED: &str = "a byte count or '-'";

/// A status field's value: `Some(None)` for `-`, `Some(Some(code))` for `100..=999`, `None`
/// if invalid.
pub(crate) fn status_value(tok: &[u8]) -> Option<Option<u16>> {
    match tok {
        b"-" => Some(None),
        &[a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let v = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            (v >= 100).then_some(Some(v))
        }
        _ => None,
    }
}

/// A byte-count field's value: `Some(None)` for `-`, `Some(Some(n))` for an unsigned decimal
/// up to `u64::MAX`, `None` if invalid (including empty).
pub(crate) fn bytes_value(tok: &[u8]) -> Option<Option<u64>> {
    if tok == b"-" {
        return Some(None);
    }
    if tok.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in tok {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(Some(v))
}

fn status(i: &[u8]) -> Res<'_, Option<u16>> {
    let (rest, tok) = token(i, STATUS_EXPECTED)?;
    match status_value(tok) {
        Some(v) => Ok((rest, v)),
        None => malformed(i, STATUS_EXPECTED),
    }
}

fn bytes_sent(i: &[u8]) -> Res<'_, Option<u64>> {
    let (rest, tok) = token(i, BYTES_EXPECTED)?;
    match bytes_value(tok) {
        Some(v) => Ok((rest, v)),
        None => malformed(i, BYTES_EXPECTED),
    }
}

/// Trailing spaces, then the end of the line.
fn end_of_line(i: &[u8]) -> Res<'_, ()> {
    let rest = i.iter().position(|&c| c != b' ');
    match rest.and_then(|p| i.get(p..)) {
        None => Ok((&[], ())),
        Some(junk) => malformed(junk, "end of line"),
    }
}

fn access_line(i: &[u8], format: AccessFormat) -> Res<'_, AccessLine<'_>> {
    let (i, client) = token(i, "a client address")?;
    let (i, _) = sep(i)?;
    let (i, ident) = token(i, "an ident or '-'")?;
    let (i, _) = sep(i)?;
    let (i, user) = token(i, "a user or '-'")?;
    let (i, _) = sep(i)?;
    let (i, ts_micros) = timestamp(i)?;
    let (i, _) = sep(i)?;
    let (i, request) = quoted_or_dash(i, "'\"' opening the request")?;
    let (i, _) = sep(i)?;
    let (i, status) = status(i)?;
    let (i, _) = sep(i)?;
    let (i, bytes_sent) = bytes_sent(i)?;
    let mut parsed = AccessLine {
        client,
        ident: dash_is_none(ident),
        user: dash_is_none(user),
        ts_micros,
        request: classify_request(request),
        status,
        bytes_sent,
        referrer: None,
        user_agent: None,
        request_time_us: None,
    };
    let i = match format {
        AccessFormat::Common => end_of_line(i)?.0,
        AccessFormat::Combined => {
            let (i, _) = sep(i)?;
            let (i, referrer) = quoted_or_dash(i, "'\"' opening the referrer")?;
            let (i, _) = sep(i)?;
            let (i, user_agent) = quoted_or_dash(i, "'\"' opening the user agent")?;
            // Extra fields may follow, separated by a space; they are not examined.
            if !matches!(i.first(), None | Some(b' ')) {
                return malformed(i, "' ' or end of line");
            }
            parsed.referrer = dash_or_empty_is_none(referrer);
            parsed.user_agent = dash_or_empty_is_none(user_agent);
            i
        }
    };
    Ok((i, parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logveil_model::time::parse_rfc3339;

    const COMBINED: &[u8] = b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1\" 200 203023 \"http://semicomplete.com/presentations/logstash-monitorama-2013/\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36\"";

    fn combined(line: &[u8]) -> AccessLine<'_> {
        match parse_access(line, AccessFormat::Combined) {
            Ok(l) => l,
            Err(e) => panic!("{e} in {:?}", String::from_utf8_lossy(line)),
        }
    }

    fn err(line: &[u8], format: AccessFormat) -> ParseError {
        match parse_access(line, format) {
            Ok(l) => panic!("parsed: {l:?}"),
            Err(e) => e,
        }
    }

    fn ts(s: &str) -> i64 {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn combined_ipv4() {
        let l = combined(COMBINED);
        assert_eq!(l.client, b"83.149.9.216");
        assert_eq!(l.ident, None);
        assert_eq!(l.user, None);
        assert_eq!(l.ts_micros, ts("2015-05-17T10:05:03Z"));
        assert_eq!(
            l.request,
            Request::Parsed {
                method: b"GET",
                target: b"/presentations/logstash-monitorama-2013/images/kibana-search.png",
                protocol: Some(b"HTTP/1.1"),
            }
        );
        assert_eq!(l.status, Some(200));
        assert_eq!(l.bytes_sent, Some(203_023));
        assert_eq!(
            l.referrer,
            Some(&b"http://semicomplete.com/presentations/logstash-monitorama-2013/"[..])
        );
        assert!(l.user_agent.unwrap().starts_with(b"Mozilla/5.0 (Macintosh"));
    }

    #[test]
    fn ipv6_client_ident_user_and_offset() {
        let l = combined(
            b"2001:db8::1 ident bob [10/Oct/2000:13:55:36 -0700] \"get /x HTTP/1.0\" 404 - \"-\" \"\"",
        );
        assert_eq!(l.client, b"2001:db8::1");
        assert_eq!(l.ident, Some(&b"ident"[..]));
        assert_eq!(l.user, Some(&b"bob"[..]));
        assert_eq!(l.ts_micros, ts("2000-10-10T20:55:36Z"));
        assert_eq!(
            l.request,
            Request::Parsed {
                method: b"get",
                target: b"/x",
                protocol: Some(b"HTTP/1.0")
            }
        );
        assert_eq!(l.status, Some(404));
        assert_eq!(l.bytes_sent, None);
        assert_eq!(l.referrer, None);
        assert_eq!(l.user_agent, None);
    }

    #[test]
    fn dash_fields_everywhere() {
        let l = combined(b"- - - [10/Oct/2000:13:55:36 +0000] \"-\" - - \"-\" \"-\"");
        assert_eq!(l.client, b"-");
        assert_eq!((l.ident, l.user), (None, None));
        assert_eq!(l.request, Request::Missing);
        assert_eq!((l.status, l.bytes_sent), (None, None));
        assert_eq!((l.referrer, l.user_agent), (None, None));
        // Bare dashes instead of quoted fields.
        let l = combined(b"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] - 400 0 - -");
        assert_eq!(l.request, Request::Missing);
        assert_eq!((l.referrer, l.user_agent), (None, None));
    }

    #[test]
    fn escaped_quotes_in_request_referrer_and_ua() {
        let line = br#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a\"b\\ HTTP/1.1" 200 1 "http://r/\"q\"" "UA \"quoted\" \\""#;
        let l = combined(line);
        assert_eq!(
            l.request,
            Request::Parsed {
                method: b"GET",
                target: br#"/a\"b\\"#,
                protocol: Some(b"HTTP/1.1")
            }
        );
        assert_eq!(l.referrer, Some(&br#"http://r/\"q\""#[..]));
        assert_eq!(l.user_agent, Some(&br#"UA \"quoted\" \\"#[..]));
        // nginx's \x22 needs no special handling.
        let l = combined(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET /a\x22b HTTP/1.1" 200 1 "-" "x\x22y""#);
        assert_eq!(l.user_agent, Some(&br#"x\x22y"#[..]));
    }

    #[test]
    fn non_utf8_in_path_and_ua() {
        let mut line = b"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /caf\xe9\xff HTTP/1.1\" 200 5 \"-\" \"bot\xc3\x28\x80\xfe\"".to_vec();
        let l = combined(&line);
        assert_eq!(
            l.request,
            Request::Parsed {
                method: b"GET",
                target: b"/caf\xe9\xff",
                protocol: Some(b"HTTP/1.1")
            }
        );
        assert_eq!(l.user_agent, Some(&b"bot\xc3\x28\x80\xfe"[..]));
        line.extend_from_slice(b" \xff\xfe");
        assert!(parse_access(&line, AccessFormat::Combined).is_ok());
    }

    #[test]
    fn http2_and_http3_and_http09() {
        for (req, proto) in [
            (&b"GET /x HTTP/2.0"[..], Some(&b"HTTP/2.0"[..])),
            (b"GET /x HTTP/2", Some(b"HTTP/2")),
            (b"GET /x HTTP/3", Some(b"HTTP/3")),
            (b"GET /x HTTP/3.0", Some(b"HTTP/3.0")),
            (b"GET /x", None),
        ] {
            assert_eq!(
                classify_request(req),
                Request::Parsed {
                    method: b"GET",
                    target: b"/x",
                    protocol: proto
                }
            );
        }
        assert_eq!(
            classify_request(b"CONNECT example.com:443 HTTP/1.1"),
            Request::Parsed {
                method: b"CONNECT",
                target: b"example.com:443",
                protocol: Some(b"HTTP/1.1")
            }
        );
        assert_eq!(
            classify_request(b"PRI * HTTP/2.0"),
            Request::Parsed {
                method: b"PRI",
                target: b"*",
                protocol: Some(b"HTTP/2.0")
            }
        );
    }

    #[test]
    fn garbage_requests_are_raw() {
        for raw in [
            &br"\x16\x03\x01\x02\x00\x01"[..],
            br"\x05\x01\x00",
            b"GET",
            b"GET ",
            b"GET  /x HTTP/1.1",
            b"GET /x HTTP/1.1 extra",
            b"GET /x FOO/1.1",
            b"GET /x HTTP/",
            b"GET /x HTTP/1.",
            b"G3T /x HTTP/1.1",
            b"hello world",
            b" /x HTTP/1.1",
            b"\x16\x03\x01",
        ] {
            assert_eq!(classify_request(raw), Request::Raw(raw), "{raw:?}");
        }
        let l = combined(
            br#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03\x01\x02\x00\x01" 400 150 "-" "-""#,
        );
        assert_eq!(l.request, Request::Raw(br"\x16\x03\x01\x02\x00\x01"));
        let l = combined(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET" 400 0 "-" "-""#);
        assert_eq!(l.request, Request::Raw(b"GET"));
        let l = combined(br#"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "" 400 0 "" """#);
        assert_eq!(l.request, Request::Missing);
        assert_eq!((l.referrer, l.user_agent), (None, None));
    }

    #[test]
    fn extra_trailing_fields_and_spaces() {
        let mut line = COMBINED.to_vec();
        line.extend_from_slice(b" \"203.0.113.9, 10.0.0.1\" 0.002 [upstream] -   ");
        let l = combined(&line);
        assert_eq!(l, combined(COMBINED));
        // Runs of spaces between fields.
        let l = combined(
            b"1.2.3.4  -   - [10/Oct/2000:13:55:36 +0000]  \"GET / HTTP/1.1\"  200   7  \"-\"  \"ua\"",
        );
        assert_eq!(l.bytes_sent, Some(7));
        assert_eq!(l.user_agent, Some(&b"ua"[..]));
    }

    #[test]
    fn common_vs_combined() {
        let common = b"127.0.0.1 bob frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326";
        let l = parse_access(common, AccessFormat::Common).unwrap();
        assert_eq!(l.user, Some(&b"frank"[..]));
        assert_eq!((l.referrer, l.user_agent), (None, None));
        assert_eq!(l.bytes_sent, Some(2326));
        // Trailing spaces are fine in common, more fields are not.
        let mut spaced = common.to_vec();
        spaced.extend_from_slice(b"  ");
        assert!(parse_access(&spaced, AccessFormat::Common).is_ok());
        let e = err(COMBINED, AccessFormat::Common);
        assert_eq!(e.reason, QuarantineReason::Malformed);
        assert_eq!(e.expected, "end of line");
        assert_eq!(
            e.column,
            memchr::memmem::find(COMBINED, b" \"http").unwrap() + 1
        );
        // A common line is not a combined line.
        let e = err(common, AccessFormat::Combined);
        assert_eq!(
            (e.reason, e.column),
            (QuarantineReason::Malformed, common.len())
        );
    }

    #[test]
    fn bad_timestamps() {
        for (line, col) in [
            (
                &b"1.2.3.4 - - [10/Foo/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1"[..],
                13,
            ),
            (
                b"1.2.3.4 - - [31/Feb/2000:13:55:36 -0700] \"GET / HTTP/1.1\" 200 1",
                13,
            ),
            (
                b"1.2.3.4 - - [10/Oct/2000:13:55:36] \"GET / HTTP/1.1\" 200 1",
                13,
            ),
            (b"1.2.3.4 - - [-] \"GET / HTTP/1.1\" 200 1", 13),
            (b"1.2.3.4 - - [] \"GET / HTTP/1.1\" 200 1", 13),
            (b"1.2.3.4 - - - \"GET / HTTP/1.1\" 200 1", 12),
            (b"- - - [1234] - - -", 7),
        ] {
            let e = err(line, AccessFormat::Common);
            assert_eq!(e.reason, QuarantineReason::BadTimestamp, "{e}");
            assert_eq!(e.column, col);
        }
        let e = err(
            b"1.2.3.4 - - 10/Oct/2000:13:55:36 -0700 \"GET / HTTP/1.1\" 200 1",
            AccessFormat::Common,
        );
        assert_eq!((e.reason, e.column), (QuarantineReason::Malformed, 12));
    }

    #[test]
    fn malformed_fields_and_columns() {
        let base = "1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] ";
        let n = base.len();
        for (tail, col, expected) in [
            (
                "\"GET / HTTP/1.1\" 20 1",
                n + 17,
                "a 3-digit status (100-999) or '-'",
            ),
            (
                "\"GET / HTTP/1.1\" 099 1",
                n + 17,
                "a 3-digit status (100-999) or '-'",
            ),
            (
                "\"GET / HTTP/1.1\" 2000 1",
                n + 17,
                "a 3-digit status (100-999) or '-'",
            ),
            ("\"GET / HTTP/1.1\" 200 1x", n + 21, "a byte count or '-'"),
            (
                "\"GET / HTTP/1.1\" 200 18446744073709551616",
                n + 21,
                "a byte count or '-'",
            ),
            ("\"GET / HTTP/1.1\"200 1", n + 16, "' '"),
            ("GET / HTTP/1.1 200 1", n, "'\"' opening the request"),
            (
                "\"GET / HTTP/1.1 200 1",
                n + 21,
                "'\"' closing the quoted field",
            ),
            (
                "\"GET / HTTP/1.1\" 200 1 \"-\" \"ua\"x",
                n + 31,
                "' ' or end of line",
            ),
        ] {
            let line = format!("{base}{tail}");
            let e = err(line.as_bytes(), AccessFormat::Combined);
            assert_eq!(e.reason, QuarantineReason::Malformed, "{tail}");
            assert_eq!((e.column, e.expected), (col, expected), "{tail}");
        }
        let e = err(
            b" 1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"-\" 200 1",
            AccessFormat::Common,
        );
        assert_eq!((e.reason, e.column), (QuarantineReason::Malformed, 0));
        assert_eq!(
            parse_access(
                b"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"-\" 200 18446744073709551615",
                AccessFormat::Common
            )
            .unwrap()
            .bytes_sent,
            Some(u64::MAX)
        );
        // A trailing backslash cannot escape the end of the line.
        let e = err(
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] \"GET /\\",
            AccessFormat::Common,
        );
        assert_eq!(e.expected, "'\"' closing the quoted field");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let common = b"127.0.0.1 bob frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326";
        for n in 0..COMBINED.len() {
            let e = err(&COMBINED[..n], AccessFormat::Combined);
            assert!(e.column <= n, "prefix {n}: {e}");
        }
        // A common line cut inside the byte count is still a valid (shorter) line; every cut
        // before the byte count starts must fail.
        let last_field = common.len() - 4;
        for n in 0..last_field {
            let e = err(&common[..n], AccessFormat::Common);
            assert!(e.column <= n, "prefix {n}: {e}");
        }
        for n in last_field + 1..=common.len() {
            assert!(parse_access(&common[..n], AccessFormat::Common).is_ok());
        }
    }
}

//! Custom access-log layouts: an nginx `log_format` string or an Apache `LogFormat` string is
//! compiled once, at start-up, into a parser that yields the same [`AccessLine`] as the
//! hand-written `combined` parser (and about as fast).
//!
//! # Compiling
//!
//! A format is split into literal text and fields (`$var`/`${var}` for nginx; `%x`,
//! `%>s`, `%{arg}x` for Apache; `%%` is a literal `%`). In both dialects `\"`, `\\`, `\t` and
//! `\n` in the format are unescaped, so a `LogFormat` string may be given as written in
//! `httpd.conf` (`\"%r\"`) or with plain quotes (`"%r"`). Fields that map to [`AccessLine`]
//! (nginx; Apache):
//!
//! * `client`: `$remote_addr`; `%a`, `%h`, `%{c}a` (the first of these present, in this order).
//! * `ident`: `%l` (nginx has none: write a literal `-`).
//! * `user`: `$remote_user`; `%u`.
//! * `ts_micros`: `$time_local`, `$time_iso8601`, `$msec`; `%t`, `%{sec}t`, `%{msec}t`,
//!   `%{usec}t`, `%{strftime layout}t`.
//! * `request`: `$request`, else `$request_method` + `$request_uri` (or `$uri`) and
//!   optionally `$server_protocol`; `%r`, else `%m` + `%U` and optionally `%H`.
//! * `status`: `$status`; `%>s`, else `%s`/`%<s`.
//! * `bytes_sent`: `$body_bytes_sent`, else `$bytes_sent`; `%b`/`%B`, else `%O`.
//! * `referrer`, `user_agent`: `$http_referer`, `$http_user_agent`; `%{Referer}i`,
//!   `%{User-Agent}i` (header names in any case).
//! * `request_time_us`: `$request_time` (seconds, `0.123`); `%D` (µs), else `%T`/`%{s}T`
//!   (seconds), `%{ms}T`, `%{us}T`.
//!
//! Every other variable is an *opaque* field: its bytes are skipped and never stored. That
//! includes `$http_x_forwarded_for`, `$proxy_add_x_forwarded_for` and `%{X-Forwarded-For}i`,
//! which hold client addresses. If a field is given twice, or by two variables (`$msec` and
//! `$time_local`), the preferred one (list order, else the first) is used and the others are
//! opaque. Unknown Apache directives are an error; unknown nginx variables are opaque.
//!
//! A format must have a client address and a time field, and two fields must be separated
//! by literal text (`%U%q` is rejected): see [`FormatError`].
//!
//! `%{strftime}t` supports `%Y %m %d %e %H %M %S %b %z %T %F %%` and literal bytes; without
//! `%z` the time is taken as UTC. `%{msec_frac}t`/`%{usec_frac}t` are opaque.
//!
//! # Parsing
//!
//! * A space in the format matches one or more spaces (as in the `combined` parser); every
//!   other literal byte must match exactly.
//! * A field written between double quotes (`"$request"`) is a *quoted* field: it ends at the
//!   first `"` not escaped by a backslash (escapes are kept, not decoded), and a bare `-`
//!   without quotes is accepted for it. A `$time_local` between `[` `]`, and Apache's `%t`,
//!   is a bracketed CLF time, with the same rules as the `combined` parser.
//! * Any other field ends at the first byte of the literal text that follows it
//!   (`$host:$server_port` splits at the first `:`). An unbracketed `$time_local` spans one
//!   space. List-valued fields (`$upstream_*`, the forwarded-for headers) continue over
//!   `, ` and ` : ` separators, as nginx writes `0.002, 0.003 : 0.001`.
//! * Field values: `-` means absent for optional fields (and for the time-taken fields);
//!   the client is returned as written (validated later by the engine); `status`, byte counts
//!   and times are parsed like the `combined` parser does. An empty client (or unquoted
//!   ident or user) is malformed; an empty referrer, user agent or request is absent; an
//!   opaque field may be empty. As a run of spaces is one separator, an empty unquoted field
//!   between two spaces cannot be told apart (nginx writes `-` for empty values).
//! * End of line: if the format ends with a quoted field, a bracketed time or literal text
//!   (like `combined`), the line may go on after a space with extra fields, which are
//!   ignored; if it ends with an unquoted field that maps to `AccessLine` (like `common`),
//!   only trailing spaces may follow it; an unquoted opaque last field takes the rest of the
//!   line.
//!
//! Errors: a bad or missing time gives [`QuarantineReason::BadTimestamp`]; everything else
//! [`QuarantineReason::Malformed`], with the byte offset. Errors never hold input bytes.

use logveil_model::QuarantineReason;
use logveil_model::time::{
    END_OF_TIME, MICROS_PER_SECOND, MONTH_ABBREVS, civil_to_micros, parse_clf_time, parse_rfc3339,
    plausible_time,
};

use crate::access::{
    AccessLine, BYTES_EXPECTED, CLF_EXPECTED, Request, STATUS_EXPECTED, bytes_value,
    classify_request, closing_quote, dash_or_empty_is_none, is_http_version, status_value,
};
use crate::error::ParseError;

/// nginx's predefined `combined` format.
pub const NGINX_COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" \
                                  $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
/// The Common Log Format in nginx variables.
pub const NGINX_COMMON: &str =
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent";
/// Apache's `combined` `LogFormat`.
pub const APACHE_COMBINED: &str =
    "%h %l %u %t \\\"%r\\\" %>s %b \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"";
/// Apache's `common` `LogFormat`.
pub const APACHE_COMMON: &str = "%h %l %u %t \\\"%r\\\" %>s %b";

/// A compiled log format. Build it with [`LogFormat::nginx`] or [`LogFormat::apache`].
#[derive(Clone, Debug)]
pub struct LogFormat {
    segs: Box<[Seg]>,
    /// Compose the request from method/target/protocol fields (no whole-request field).
    request_parts: bool,
    /// What may follow the last segment.
    tail: Tail,
}

/// Why a format string could not be compiled. The message says what is wrong, names the
/// offending variable or directive where there is one, and gives its byte offset in the
/// format string (config text, never log data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format string is empty.
    #[error("log format is empty (byte 0)")]
    Empty,
    /// A syntax error: a `$` or `%` not followed by a name, an unclosed `{`…
    #[error("log format: {what} at byte {offset}")]
    Syntax {
        /// Byte offset of the `$` or `%` that starts the bad item.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// An Apache directive (or a `%{…}t` time conversion) that is not supported.
    #[error("log format: unsupported directive `{name}` at byte {offset}: {why}")]
    Unsupported {
        /// Byte offset of the directive.
        offset: usize,
        /// The directive as written.
        name: String,
        /// Why, or what to use instead.
        why: &'static str,
    },
    /// Two fields with no literal text between them: the line cannot be split.
    #[error(
        "log format: `{second}` at byte {offset} directly follows `{first}`; put literal \
         text (e.g. a space) between two fields"
    )]
    AdjacentFields {
        /// Byte offset of the second field.
        offset: usize,
        /// The first field as written.
        first: String,
        /// The second field as written.
        second: String,
    },
    /// No field gives the client address.
    #[error(
        "log format has no client address field (bytes 0..{len}): add `$remote_addr` \
         (nginx) or `%h` (Apache)"
    )]
    MissingClient {
        /// Length of the format string.
        len: usize,
    },
    /// No field gives the request time.
    #[error(
        "log format has no time field (bytes 0..{len}): add `[$time_local]` (nginx) or `%t` \
         (Apache)"
    )]
    MissingTime {
        /// Length of the format string.
        len: usize,
    },
}

impl LogFormat {
    /// Compiles an nginx `log_format` string, e.g.
    /// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent`.
    pub fn nginx(spec: &str) -> Result<LogFormat, FormatError> {
        compile(spec, Dialect::Nginx)
    }

    /// Compiles an Apache `LogFormat` string, e.g. `%h %l %u %t \"%r\" %>s %b`.
    pub fn apache(spec: &str) -> Result<LogFormat, FormatError> {
        compile(spec, Dialect::Apache)
    }

    /// Parses one line (without its terminator). Never panics, never allocates.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<AccessLine<'a>, ParseError> {
        let col = |rest: &[u8]| line.len() - rest.len();
        let mut out = AccessLine {
            client: &[],
            ident: None,
            user: None,
            ts_micros: 0,
            request: Request::Missing,
            status: None,
            bytes_sent: None,
            referrer: None,
            user_agent: None,
            request_time_us: None,
        };
        let mut parts = Parts::default();
        let mut rest = line;
        for seg in self.segs.iter() {
            match seg {
                Seg::Space => rest = spaces(rest).ok_or_else(|| malformed(col(rest), "' '"))?,
                Seg::Lit(lit) => rest = literal(rest, lit, col(rest))?,
                Seg::Field(f) => {
                    rest = match f.op {
                        Op::Client => {
                            let (v, after) = space_token(rest);
                            if v.is_empty() {
                                return Err(malformed(col(rest), "a client address"));
                            }
                            out.client = v;
                            after
                        }
                        Op::Ident | Op::User => {
                            let (v, after) = space_token(rest);
                            if v.is_empty() {
                                return Err(malformed(col(rest), f.kind.expected()));
                            }
                            if f.op == Op::Ident {
                                out.ident = dash_or_empty_is_none(v);
                            } else {
                                out.user = dash_or_empty_is_none(v);
                            }
                            after
                        }
                        Op::Status => {
                            let (v, after) = space_token(rest);
                            out.status = status_value(v)
                                .ok_or_else(|| malformed(col(rest), STATUS_EXPECTED))?;
                            after
                        }
                        Op::Bytes => {
                            let (v, after) = space_token(rest);
                            out.bytes_sent = bytes_value(v)
                                .ok_or_else(|| malformed(col(rest), BYTES_EXPECTED))?;
                            after
                        }
                        Op::Request | Op::Referrer | Op::UserAgent => {
                            let (v, after) = quoted_or_dash(rest, col(rest))?;
                            match f.op {
                                Op::Request => out.request = classify_request(v),
                                Op::Referrer => out.referrer = dash_or_empty_is_none(v),
                                _ => out.user_agent = dash_or_empty_is_none(v),
                            }
                            after
                        }
                        Op::Generic => {
                            let at = col(rest);
                            let (value, vcol, len) = f.scan.scan(rest, at, f.kind.is_opaque())?;
                            if f.non_empty && value.is_empty() {
                                return Err(malformed(at, f.kind.expected()));
                            }
                            f.kind.store(value, vcol, at, &mut out, &mut parts)?;
                            rest.get(len..).unwrap_or_default()
                        }
                    };
                    if f.spaces_after {
                        rest = spaces(rest).ok_or_else(|| malformed(col(rest), "' '"))?;
                    }
                }
            }
        }
        match self.tail {
            Tail::Done => {}
            Tail::Extras => {
                if !matches!(rest.first(), None | Some(b' ')) {
                    return Err(malformed(col(rest), "' ' or end of line"));
                }
            }
            Tail::Spaces => {
                if let Some(junk) = rest.iter().position(|&c| c != b' ') {
                    return Err(malformed(col(rest) + junk, "end of line"));
                }
            }
        }
        if self.request_parts {
            out.request = compose_request(parts.method, parts.target, parts.protocol);
        }
        Ok(out)
    }
}

/// A space-terminated token and the rest of the line after it.
#[inline(always)]
fn space_token(rest: &[u8]) -> (&[u8], &[u8]) {
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    rest.split_at_checked(end).unwrap_or((rest, &[]))
}

/// A quoted field followed by a space or the end, or a bare `-` (at column `col`): the value
/// and the rest of the line after the field.
#[inline(always)]
fn quoted_or_dash(rest: &[u8], col: usize) -> Result<(&[u8], &[u8]), ParseError> {
    match rest.split_first() {
        Some((b'"', body)) => match closing_quote(body) {
            Some(at) => Ok((
                body.get(..at).unwrap_or_default(),
                body.get(at + 1..).unwrap_or_default(),
            )),
            None => Err(malformed(col + rest.len(), "'\"' closing the quoted field")),
        },
        Some((b'-', next)) if matches!(next.first(), None | Some(b' ')) => {
            Ok((rest.get(..1).unwrap_or_default(), next))
        }
        _ => Err(malformed(col, "'\"' opening a quoted field")),
    }
}

fn malformed(col: usize, expected: &'static str) -> ParseError {
    ParseError::new(QuarantineReason::Malformed, col, expected)
}

fn bad_ts(col: usize, expected: &'static str) -> ParseError {
    ParseError::new(QuarantineReason::BadTimestamp, col, expected)
}

/// Matches a literal (runs of spaces collapsed to one space, which matches one or more) at
/// column `col`; returns the rest of the line.
fn literal<'a>(rest: &'a [u8], lit: &[u8], col: usize) -> Result<&'a [u8], ParseError> {
    let mut i = 0usize;
    for &b in lit {
        if b == b' ' {
            let n = rest
                .get(i..)
                .unwrap_or_default()
                .iter()
                .take_while(|&&c| c == b' ')
                .count();
            if n == 0 {
                return Err(malformed(col + i, "' '"));
            }
            i += n;
        } else if rest.get(i) == Some(&b) {
            i += 1;
        } else {
            return Err(malformed(col + i, "literal text of the log format"));
        }
    }
    Ok(rest.get(i..).unwrap_or_default())
}

/// One or more spaces: the rest after them, or `None` if there is no space.
#[inline(always)]
fn spaces(rest: &[u8]) -> Option<&[u8]> {
    let n = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
    if n == 0 { None } else { rest.get(n..) }
}

/// Request-line parts collected from separate fields.
#[derive(Default)]
struct Parts<'a> {
    method: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
}

/// `Parsed` from separate method/target/protocol fields: a method of ASCII letters and a
/// target other than `-`. A `-` or empty method means no request; any other method, or a
/// missing target, keeps the method as `Raw`. A protocol that is not `HTTP/x[.y]` is dropped.
fn compose_request<'a>(
    method: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
) -> Request<'a> {
    let Some(method) = method.and_then(dash_or_empty_is_none) else {
        return Request::Missing;
    };
    match target.and_then(dash_or_empty_is_none) {
        Some(target) if method.iter().all(u8::is_ascii_alphabetic) => Request::Parsed {
            method,
            target,
            protocol: protocol.filter(|p| is_http_version(p)),
        },
        _ => Request::Raw(method),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Nginx,
    Apache,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tail {
    /// Nothing more to check (the last field took the rest of the line).
    Done,
    /// Only trailing spaces.
    Spaces,
    /// End of line, or a space and extra fields (ignored).
    Extras,
}

#[derive(Clone, Debug)]
enum Seg {
    /// One or more spaces.
    Space,
    /// Literal bytes; a space in them matches one or more spaces.
    Lit(Box<[u8]>),
    Field(Field),
}

#[derive(Clone, Debug)]
struct Field {
    /// A fast path for the common (meaning, extent) pairs, else `Generic`.
    op: Op,
    kind: Kind,
    scan: Scan,
    /// An empty value is malformed (unquoted client, ident and user).
    non_empty: bool,
    /// One or more spaces follow (a `Seg::Space` folded into the field: fewer dispatches).
    spaces_after: bool,
}

/// Single-dispatch fast paths for most fields of `combined`: space-terminated tokens and
/// quoted fields followed by a space. Each is equivalent to its `Kind` with
/// `Scan::Token { term: b' ' }` or `Scan::Quoted { after: b' ' }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Client,
    Ident,
    User,
    Status,
    Bytes,
    Request,
    Referrer,
    UserAgent,
    Generic,
}

impl Op {
    fn of(kind: &Kind, scan: &Scan) -> Op {
        let plain = |term: &u8, list: &bool, two: &bool| *term == b' ' && !*list && !*two;
        match (kind, scan) {
            (
                k,
                Scan::Token {
                    term,
                    list,
                    two_words,
                },
            ) if plain(term, list, two_words) => match k {
                Kind::Client => Op::Client,
                Kind::Ident => Op::Ident,
                Kind::User => Op::User,
                Kind::Status => Op::Status,
                Kind::Bytes => Op::Bytes,
                _ => Op::Generic,
            },
            (Kind::Request, Scan::Quoted { after: b' ' }) => Op::Request,
            (Kind::Referrer, Scan::Quoted { after: b' ' }) => Op::Referrer,
            (Kind::UserAgent, Scan::Quoted { after: b' ' }) => Op::UserAgent,
            _ => Op::Generic,
        }
    }
}

/// What a field's value means.
#[derive(Clone, Debug)]
enum Kind {
    Client,
    Ident,
    User,
    /// `10/Oct/2000:13:55:36 -0700`; the flag says whether it was bracketed (error message).
    TimeClf(bool),
    TimeIso,
    /// Epoch time: a decimal with an optional fraction; µs = value × 10^n (`$msec`: 6).
    TimeEpoch(u32),
    TimeStrftime(Box<[Piece]>),
    Request,
    Method,
    Target,
    Protocol,
    Status,
    Bytes,
    Referrer,
    UserAgent,
    /// Time taken: a decimal with an optional fraction; µs = value × 10^n (`%D`: 0).
    RequestTime(u32),
    Opaque,
}

/// How a field's extent is found in the line.
#[derive(Clone, Debug)]
enum Scan {
    /// Up to the first `term` byte (or the end of the line).
    Token {
        term: u8,
        list: bool,
        two_words: bool,
    },
    /// The last field, not self-delimited, mapped: a space-free token (`two_words`: one
    /// inner space allowed, for a bare CLF time); only trailing spaces may follow.
    LastToken { two_words: bool },
    /// The last field, opaque: the rest of the line.
    Rest,
    /// `"…"` or a bare `-` followed by the end, a space or `after`.
    Quoted { after: u8 },
    /// `[…]` around a CLF time.
    Bracket,
    /// A `%{strftime}t` layout, matched against the line.
    Pattern(Box<[Piece]>),
}

impl Scan {
    /// Returns the value, its column, and the number of line bytes the field spans.
    #[inline(always)]
    fn scan<'a>(
        &self,
        rest: &'a [u8],
        col: usize,
        opaque: bool,
    ) -> Result<(&'a [u8], usize, usize), ParseError> {
        match self {
            Scan::Token {
                term,
                list,
                two_words,
            } => {
                let mut end = if *two_words {
                    match rest.iter().position(|&c| c == b' ') {
                        Some(sp) => {
                            let after = rest.get(sp + 1..).unwrap_or_default();
                            sp + 1 + after.iter().position(|c| c == term).unwrap_or(after.len())
                        }
                        None => rest.len(),
                    }
                } else {
                    rest.iter().position(|c| c == term).unwrap_or(rest.len())
                };
                if *list && *term == b' ' {
                    end = list_end(rest, end);
                }
                let value = rest.get(..end).unwrap_or_default();
                Ok((value, col, end))
            }
            Scan::LastToken { two_words } => {
                let first = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
                let end = if *two_words && first < rest.len() {
                    let after = rest.get(first + 1..).unwrap_or_default();
                    first + 1 + after.iter().position(|&c| c == b' ').unwrap_or(after.len())
                } else {
                    first
                };
                Ok((rest.get(..end).unwrap_or_default(), col, end))
            }
            Scan::Rest => Ok((rest, col, rest.len())),
            Scan::Quoted { after } => {
                if rest.first() == Some(&b'-')
                    && (matches!(rest.get(1), None | Some(b' ')) || rest.get(1) == Some(after))
                {
                    return Ok((rest.get(..1).unwrap_or_default(), col, 1));
                }
                let Some((b'"', body)) = rest.split_first() else {
                    return Err(malformed(col, "'\"' opening a quoted field"));
                };
                match closing_quote(body) {
                    Some(at) => Ok((body.get(..at).unwrap_or_default(), col + 1, at + 2)),
                    None => Err(malformed(col + rest.len(), "'\"' closing the quoted field")),
                }
            }
            Scan::Bracket => match rest.split_first() {
                Some((b'[', body)) => match memchr::memchr(b']', body) {
                    Some(close) => Ok((body.get(..close).unwrap_or_default(), col + 1, close + 2)),
                    None => Err(malformed(col + rest.len(), "']' closing the timestamp")),
                },
                Some((b'-', next)) if matches!(next.first(), None | Some(b' ')) => {
                    if opaque {
                        Ok((rest.get(..1).unwrap_or_default(), col, 1))
                    } else {
                        Err(bad_ts(col, CLF_EXPECTED))
                    }
                }
                _ => Err(malformed(col, "'[' opening the timestamp")),
            },
            Scan::Pattern(pieces) => match match_pattern(pieces, rest) {
                Some((_, n)) => Ok((rest.get(..n).unwrap_or_default(), col, n)),
                None => Err(bad_ts(col, STRFTIME_EXPECTED)),
            },
        }
    }
}

const STRFTIME_EXPECTED: &str = "a time in the layout of the format's %{...}t";

/// Extends a list value (`a, b : c`) past `, ` and ` : ` separators.
fn list_end(rest: &[u8], mut end: usize) -> usize {
    loop {
        let tail = rest.get(end..).unwrap_or_default();
        let skip = if end > 0 && rest.get(end - 1) == Some(&b',') && tail.first() == Some(&b' ') {
            1
        } else if tail.starts_with(b" : ") {
            3
        } else {
            return end;
        };
        let next = tail.get(skip..).unwrap_or_default();
        let n = next.iter().position(|&c| c == b' ').unwrap_or(next.len());
        if n == 0 {
            return end;
        }
        end += skip + n;
    }
}

impl Kind {
    fn is_opaque(&self) -> bool {
        matches!(self, Kind::Opaque)
    }

    /// What an empty value should have been (fields checked with `non_empty`).
    fn expected(&self) -> &'static str {
        match self {
            Kind::Ident => "an ident or '-'",
            Kind::User => "a user or '-'",
            _ => "a client address",
        }
    }

    /// Checks `value` (at column `vcol`; the field starts at `col`) and stores it.
    #[inline(always)]
    fn store<'a>(
        &self,
        value: &'a [u8],
        vcol: usize,
        col: usize,
        out: &mut AccessLine<'a>,
        parts: &mut Parts<'a>,
    ) -> Result<(), ParseError> {
        match self {
            Kind::Opaque => {}
            Kind::Client => {
                if value.is_empty() {
                    return Err(malformed(col, "a client address"));
                }
                out.client = value;
            }
            Kind::Ident => out.ident = dash_or_empty_is_none(value),
            Kind::User => out.user = dash_or_empty_is_none(value),
            Kind::TimeClf(bracketed) => {
                out.ts_micros = match parse_clf_time(value) {
                    Some(ts) => ts,
                    None if *bracketed => return Err(bad_ts(vcol, CLF_EXPECTED)),
                    None => return Err(bad_ts(vcol, "a time like 10/Oct/2000:13:55:36 -0700")),
                }
            }
            Kind::TimeIso => {
                out.ts_micros = parse_rfc3339(value)
                    .ok_or_else(|| bad_ts(vcol, "an RFC 3339 time like 2000-10-10T20:55:36Z"))?;
            }
            Kind::TimeEpoch(digits) => {
                out.ts_micros = scaled_decimal(value, *digits)
                    .and_then(|t| i64::try_from(t).ok())
                    .filter(|&t| t < END_OF_TIME)
                    .ok_or_else(|| bad_ts(vcol, "an epoch time like 1700000000.123"))?;
            }
            Kind::TimeStrftime(pieces) => {
                out.ts_micros = match match_pattern(pieces, value) {
                    Some((ts, n)) if n == value.len() => ts,
                    _ => return Err(bad_ts(vcol, STRFTIME_EXPECTED)),
                }
            }
            Kind::Request => out.request = classify_request(value),
            Kind::Method => parts.method = Some(value),
            Kind::Target => parts.target = Some(value),
            Kind::Protocol => parts.protocol = Some(value),
            Kind::Status => {
                out.status = status_value(value).ok_or_else(|| malformed(col, STATUS_EXPECTED))?;
            }
            Kind::Bytes => {
                out.bytes_sent =
                    bytes_value(value).ok_or_else(|| malformed(col, BYTES_EXPECTED))?;
            }
            Kind::Referrer => out.referrer = dash_or_empty_is_none(value),
            Kind::UserAgent => out.user_agent = dash_or_empty_is_none(value),
            Kind::RequestTime(digits) => {
                out.request_time_us = if value == b"-" {
                    None
                } else {
                    Some(scaled_decimal(value, *digits).ok_or_else(|| {
                        malformed(col, "a time taken like 0.123 (seconds) or '-'")
                    })?)
                }
            }
        }
        Ok(())
    }
}

/// An unsigned decimal with an optional fraction (`12`, `0.123`), times 10^`digits`;
/// fraction digits beyond that precision are truncated (but must be digits).
fn scaled_decimal(v: &[u8], digits: u32) -> Option<u64> {
    let (int, frac) = match memchr::memchr(b'.', v) {
        Some(dot) => {
            let (int, frac) = v.split_at_checked(dot)?;
            let frac = frac.get(1..)?;
            if frac.is_empty() {
                return None;
            }
            (int, frac)
        }
        None => (v, &[][..]),
    };
    if int.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in int {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    let mut used = 0u32;
    for &c in frac {
        if !c.is_ascii_digit() {
            return None;
        }
        if used < digits {
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            used += 1;
        }
    }
    for _ in used..digits {
        n = n.checked_mul(10)?;
    }
    Some(n)
}

/// One element of a `%{strftime}t` layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    Lit(u8),
    Year,
    Month,
    MonthAbbr,
    Day,
    /// `%e`: day of month, space-padded.
    DaySpace,
    Hour,
    Minute,
    Second,
    /// `%z`: `+hhmm` / `-hhmm`.
    Zone,
}

fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    let (a, c) = (*b.get(at)?, *b.get(at + 1)?);
    (a.is_ascii_digit() && c.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(c - b'0'))
}

/// Matches a strftime layout at the start of `b`; returns the time (µs, UTC) and the number
/// of bytes matched.
fn match_pattern(pieces: &[Piece], b: &[u8]) -> Option<(i64, usize)> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut off) = (0i64, 0u32, 0u32, 0, 0, 0, 0i64);
    let mut i = 0usize;
    for p in pieces {
        match p {
            Piece::Lit(c) => {
                if b.get(i) != Some(c) {
                    return None;
                }
                i += 1;
            }
            Piece::Year => {
                y = i64::from(two_digits(b, i)? * 100 + two_digits(b, i + 2)?);
                i += 4;
            }
            Piece::Month => {
                mo = two_digits(b, i)?;
                i += 2;
            }
            Piece::MonthAbbr => {
                let name = b.get(i..i + 3)?;
                let idx = MONTH_ABBREVS.iter().position(|m| &m[..] == name)?;
                mo = u32::try_from(idx).ok()? + 1;
                i += 3;
            }
            Piece::Day => {
                d = two_digits(b, i)?;
                i += 2;
            }
            Piece::DaySpace => {
                d = match (b.get(i), b.get(i + 1)) {
                    (Some(b' '), Some(&c)) if c.is_ascii_digit() => u32::from(c - b'0'),
                    _ => two_digits(b, i)?,
                };
                i += 2;
            }
            Piece::Hour => {
                h = two_digits(b, i)?;
                i += 2;
            }
            Piece::Minute => {
                mi = two_digits(b, i)?;
                i += 2;
            }
            Piece::Second => {
                s = two_digits(b, i)?;
                i += 2;
            }
            Piece::Zone => {
                let sign = match b.get(i)? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (oh, om) = (two_digits(b, i + 1)?, two_digits(b, i + 3)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                off = sign * i64::from(oh * 3600 + om * 60);
                i += 5;
            }
        }
    }
    let ts = civil_to_micros(y, mo, d, h, mi, s, 0)? - off * MICROS_PER_SECOND;
    plausible_time(ts).map(|ts| (ts, i))
}

// ---------------------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------------------

/// Which `AccessLine` field a variable feeds; with a rank (lower wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Client,
    Ident,
    User,
    Time,
    Request,
    Method,
    Target,
    Protocol,
    Status,
    Bytes,
    Referrer,
    UserAgent,
    RequestTime,
}

/// How a variable's extent is found, before its neighbours are known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    Token,
    /// A list (`a, b : c`).
    List,
    /// A CLF time: bracketed if written between `[` `]`, else two words.
    Clf,
    /// Apache `%t`: always bracketed.
    Bracketed,
    Pattern(Box<[Piece]>),
}

#[derive(Debug)]
struct Var {
    kind: Kind,
    slot: Option<(Slot, u8)>,
    shape: Shape,
    offset: usize,
    name: String,
}

#[derive(Debug)]
enum Item {
    Lit(Vec<u8>),
    Var(Var),
}

fn compile(spec: &str, dialect: Dialect) -> Result<LogFormat, FormatError> {
    if spec.is_empty() {
        return Err(FormatError::Empty);
    }
    let mut items = tokenize(spec, dialect)?;
    // Two fields in a row cannot be told apart.
    for pair in items.windows(2) {
        if let [Item::Var(a), Item::Var(b)] = pair {
            return Err(FormatError::AdjacentFields {
                offset: b.offset,
                first: a.name.clone(),
                second: b.name.clone(),
            });
        }
    }
    demote_duplicates(&mut items);
    let has = |slot: Slot| {
        items
            .iter()
            .any(|it| matches!(it, Item::Var(v) if v.slot.map(|s| s.0) == Some(slot)))
    };
    if !has(Slot::Client) {
        return Err(FormatError::MissingClient { len: spec.len() });
    }
    if !has(Slot::Time) {
        return Err(FormatError::MissingTime { len: spec.len() });
    }
    let request_parts = !has(Slot::Request);
    if request_parts && !(has(Slot::Method) && has(Slot::Target)) {
        // A method without a target (or the reverse) cannot make a request: skip them.
        for it in &mut items {
            if let Item::Var(v) = it
                && matches!(
                    v.slot,
                    Some((Slot::Method | Slot::Target | Slot::Protocol, _))
                )
            {
                v.kind = Kind::Opaque;
                v.slot = None;
            }
        }
    }
    let segs = build_segments(items)?;
    let tail = match segs.last() {
        Some(Seg::Field(Field {
            scan: Scan::LastToken { .. },
            ..
        })) => Tail::Spaces,
        Some(Seg::Field(Field {
            scan: Scan::Rest, ..
        })) => Tail::Done,
        _ => Tail::Extras,
    };
    Ok(LogFormat {
        segs: segs.into_boxed_slice(),
        request_parts,
        tail,
    })
}

/// Keeps the best-ranked variable of each slot (first on ties); the others become opaque.
fn demote_duplicates(items: &mut [Item]) {
    let mut best: Vec<(Slot, u8, usize)> = Vec::new();
    for (idx, it) in items.iter().enumerate() {
        if let Item::Var(Var {
            slot: Some((slot, rank)),
            ..
        }) = it
        {
            match best.iter_mut().find(|b| b.0 == *slot) {
                Some(b) if *rank < b.1 => *b = (*slot, *rank, idx),
                Some(_) => {}
                None => best.push((*slot, *rank, idx)),
            }
        }
    }
    for (idx, it) in items.iter_mut().enumerate() {
        if let Item::Var(v) = it
            && let Some((slot, _)) = v.slot
            && !best.iter().any(|b| b.0 == slot && b.2 == idx)
        {
            v.kind = Kind::Opaque;
            v.slot = None;
        }
    }
}

/// Turns literals and variables into segments: quoted and bracketed fields take their
/// delimiters from the neighbouring literals; other fields get their terminator.
fn build_segments(items: Vec<Item>) -> Result<Vec<Seg>, FormatError> {
    // Literal bytes still available on each side, as (start, end) into each literal.
    let mut bounds: Vec<(usize, usize)> = items
        .iter()
        .map(|it| match it {
            Item::Lit(l) => (0, l.len()),
            Item::Var(_) => (0, 0),
        })
        .collect();
    let lit_at = |items: &[Item], i: Option<usize>| -> Option<usize> {
        match items.get(i?) {
            Some(Item::Lit(_)) => i,
            _ => None,
        }
    };
    // Which variables are quoted / bracketed.
    let mut delimited = vec![false; items.len()];
    for idx in 0..items.len() {
        let Some(Item::Var(v)) = items.get(idx) else {
            continue;
        };
        let (open, close) = match v.shape {
            Shape::Clf => (b'[', b']'),
            _ => (b'"', b'"'),
        };
        let (Some(p), Some(n)) = (
            lit_at(&items, idx.checked_sub(1)),
            lit_at(&items, Some(idx + 1)),
        ) else {
            continue;
        };
        let (Some(Item::Lit(pl)), Some(Item::Lit(nl))) = (items.get(p), items.get(n)) else {
            continue;
        };
        let (Some(&(ps, pe)), Some(&(ns, ne))) = (bounds.get(p), bounds.get(n)) else {
            continue;
        };
        let opens = pe > ps && pe.checked_sub(1).and_then(|i| pl.get(i)) == Some(&open);
        let closes = ne > ns && nl.get(ns) == Some(&close);
        if opens && closes {
            if let Some(b) = bounds.get_mut(p) {
                b.1 -= 1;
            }
            if let Some(b) = bounds.get_mut(n) {
                b.0 += 1;
            }
            if let Some(d) = delimited.get_mut(idx) {
                *d = true;
            }
        }
    }
    // Segments, with fields' scans filled in once their successor is known.
    enum Pending {
        Lit(Vec<u8>),
        Var(Var, bool),
    }
    let mut pending: Vec<Pending> = Vec::new();
    for ((it, (s, e)), delim) in items.into_iter().zip(bounds).zip(delimited) {
        match it {
            Item::Lit(l) => {
                let l = l.get(s..e).unwrap_or_default();
                if !l.is_empty() {
                    pending.push(Pending::Lit(collapse_spaces(l)));
                }
            }
            Item::Var(v) => pending.push(Pending::Var(v, delim)),
        }
    }
    let starts: Vec<Option<u8>> = pending
        .iter()
        .map(|p| match p {
            Pending::Lit(l) => l.first().copied(),
            Pending::Var(v, true) => Some(if v.shape == Shape::Clf { b'[' } else { b'"' }),
            Pending::Var(v, false) => match &v.shape {
                Shape::Bracketed => Some(b'['),
                Shape::Pattern(p) => match p.first() {
                    Some(Piece::Lit(c)) => Some(*c),
                    _ => None,
                },
                _ => None,
            },
        })
        .collect();
    let count = pending.len();
    let mut segs = Vec::with_capacity(count);
    let mut prev_name: Option<String> = None;
    for (idx, p) in pending.into_iter().enumerate() {
        let next = starts.get(idx + 1).copied();
        let is_last = idx + 1 == count;
        match p {
            Pending::Lit(l) => {
                prev_name = None;
                segs.push(if l == b" " {
                    Seg::Space
                } else {
                    Seg::Lit(l.into_boxed_slice())
                });
            }
            Pending::Var(v, delim) => {
                let opaque = v.kind.is_opaque();
                let scan = match (&v.shape, delim) {
                    (Shape::Clf, true) => Scan::Bracket,
                    (_, true) => Scan::Quoted {
                        after: next.flatten().unwrap_or(b' '),
                    },
                    (Shape::Bracketed, _) => Scan::Bracket,
                    (Shape::Pattern(p), _) => Scan::Pattern(p.clone()),
                    (shape, false) => {
                        let two_words = *shape == Shape::Clf;
                        if is_last {
                            if opaque {
                                Scan::Rest
                            } else {
                                Scan::LastToken { two_words }
                            }
                        } else if let Some(term) = next.flatten() {
                            Scan::Token {
                                term,
                                list: *shape == Shape::List,
                                two_words,
                            }
                        } else {
                            // Followed by a field that does not start with a fixed byte.
                            return Err(FormatError::AdjacentFields {
                                offset: v.offset,
                                first: prev_name.unwrap_or_default(),
                                second: v.name,
                            });
                        }
                    }
                };
                let kind = match v.kind {
                    Kind::TimeClf(_) => Kind::TimeClf(matches!(scan, Scan::Bracket)),
                    k => k,
                };
                let non_empty = matches!(kind, Kind::Client)
                    || matches!(kind, Kind::Ident | Kind::User)
                        && matches!(scan, Scan::Token { .. } | Scan::LastToken { .. });
                prev_name = Some(v.name);
                segs.push(Seg::Field(Field {
                    op: Op::of(&kind, &scan),
                    kind,
                    scan,
                    non_empty,
                    spaces_after: false,
                }));
            }
        }
    }
    Ok(fold_spaces(segs))
}

/// Folds a space separator into the field before it, unless it ends the format.
fn fold_spaces(segs: Vec<Seg>) -> Vec<Seg> {
    let count = segs.len();
    let mut out: Vec<Seg> = Vec::with_capacity(count);
    for (idx, seg) in segs.into_iter().enumerate() {
        if matches!(seg, Seg::Space)
            && idx + 1 < count
            && let Some(Seg::Field(f)) = out.last_mut()
            && !f.spaces_after
        {
            f.spaces_after = true;
            continue;
        }
        out.push(seg);
    }
    out
}

/// Runs of spaces become one space (which matches one or more).
fn collapse_spaces(l: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(l.len());
    for &c in l {
        if !(c == b' ' && out.last() == Some(&b' ')) {
            out.push(c);
        }
    }
    out
}

/// Splits a format into literals and variables (dialect syntax, no semantics across items).
fn tokenize(spec: &str, dialect: Dialect) -> Result<Vec<Item>, FormatError> {
    let b = spec.as_bytes();
    let mut items = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        let var = match (c, dialect) {
            (b'\\', _) => {
                match b.get(i + 1) {
                    Some(b'"') => lit.push(b'"'),
                    Some(b'\\') => lit.push(b'\\'),
                    Some(b'\'') => lit.push(b'\''),
                    Some(b't') => lit.push(b'\t'),
                    Some(b'n') => lit.push(b'\n'),
                    Some(&other) => lit.extend_from_slice(&[b'\\', other]),
                    None => lit.push(b'\\'),
                }
                i += 2;
                continue;
            }
            (b'$', Dialect::Nginx) => {
                let (v, end) = nginx_var(spec, i)?;
                i = end;
                v
            }
            (b'%', Dialect::Apache) if b.get(i + 1) == Some(&b'%') => {
                lit.push(b'%');
                i += 2;
                continue;
            }
            (b'%', Dialect::Apache) => {
                let (v, end) = apache_directive(spec, i)?;
                i = end;
                v
            }
            _ => {
                lit.push(c);
                i += 1;
                continue;
            }
        };
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(&mut lit)));
        }
        items.push(Item::Var(var));
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

fn var(kind: Kind, slot: Option<(Slot, u8)>, shape: Shape, offset: usize, name: &str) -> Var {
    Var {
        kind,
        slot,
        shape,
        offset,
        name: name.to_owned(),
    }
}

/// `$name` or `${name}` at `at`; returns the variable and the offset after it.
fn nginx_var(spec: &str, at: usize) -> Result<(Var, usize), FormatError> {
    let b = spec.as_bytes();
    let is_name = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let (start, end, after) = if b.get(at + 1) == Some(&b'{') {
        let start = at + 2;
        let len = b
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| is_name(c))
            .count();
        if b.get(start + len) != Some(&b'}') {
            return Err(FormatError::Syntax {
                offset: at,
                what: "'${' not closed by '}' after a variable name",
            });
        }
        (start, start + len, start + len + 1)
    } else {
        let start = at + 1;
        let len = b
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| is_name(c))
            .count();
        (start, start + len, start + len)
    };
    let name = spec.get(start..end).unwrap_or_default();
    if name.is_empty() {
        return Err(FormatError::Syntax {
            offset: at,
            what: "'$' not followed by a variable name",
        });
    }
    let written = spec.get(at..after).unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let (kind, slot, shape) = match lower.as_str() {
        "remote_addr" => (Kind::Client, Some((Slot::Client, 0)), Shape::Token),
        "remote_user" => (Kind::User, Some((Slot::User, 0)), Shape::Token),
        "time_local" => (Kind::TimeClf(true), Some((Slot::Time, 0)), Shape::Clf),
        "time_iso8601" => (Kind::TimeIso, Some((Slot::Time, 0)), Shape::Token),
        "msec" => (Kind::TimeEpoch(6), Some((Slot::Time, 0)), Shape::Token),
        "request" => (Kind::Request, Some((Slot::Request, 0)), Shape::Token),
        "request_method" => (Kind::Method, Some((Slot::Method, 0)), Shape::Token),
        "request_uri" => (Kind::Target, Some((Slot::Target, 0)), Shape::Token),
        "uri" | "document_uri" => (Kind::Target, Some((Slot::Target, 1)), Shape::Token),
        "server_protocol" => (Kind::Protocol, Some((Slot::Protocol, 0)), Shape::Token),
        "status" => (Kind::Status, Some((Slot::Status, 0)), Shape::Token),
        "body_bytes_sent" => (Kind::Bytes, Some((Slot::Bytes, 0)), Shape::Token),
        "bytes_sent" => (Kind::Bytes, Some((Slot::Bytes, 1)), Shape::Token),
        "http_referer" => (Kind::Referrer, Some((Slot::Referrer, 0)), Shape::Token),
        "http_user_agent" => (Kind::UserAgent, Some((Slot::UserAgent, 0)), Shape::Token),
        "request_time" => (
            Kind::RequestTime(6),
            Some((Slot::RequestTime, 0)),
            Shape::Token,
        ),
        n if n.starts_with("upstream_")
            || n == "http_x_forwarded_for"
            || n == "proxy_add_x_forwarded_for" =>
        {
            (Kind::Opaque, None, Shape::List)
        }
        _ => (Kind::Opaque, None, Shape::Token),
    };
    Ok((var(kind, slot, shape, at, written), after))
}

/// An Apache directive at `at` (`%` + modifiers + optional `{arg}` + letter).
fn apache_directive(spec: &str, at: usize) -> Result<(Var, usize), FormatError> {
    let b = spec.as_bytes();
    let mut i = at + 1;
    let mut arg: Option<&str> = None;
    let mut gt = false;
    loop {
        match b.get(i) {
            Some(b'<') => i += 1,
            Some(b'>') => {
                gt = true;
                i += 1;
            }
            Some(c) if c.is_ascii_digit() || *c == b',' || *c == b'!' => i += 1,
            Some(b'{') if arg.is_none() => {
                let Some(close) = memchr::memchr(b'}', b.get(i..).unwrap_or_default()) else {
                    return Err(FormatError::Syntax {
                        offset: at,
                        what: "'%{' not closed by '}'",
                    });
                };
                arg = spec.get(i + 1..i + close);
                i += close + 1;
            }
            _ => break,
        }
    }
    let letter = match b.get(i) {
        Some(b'^') => {
            let code = spec.get(i..i + 3).unwrap_or_default();
            if !matches!(code, "^ti" | "^to") {
                return Err(FormatError::Syntax {
                    offset: at,
                    what: "'%^' not followed by 'ti' or 'to'",
                });
            }
            i += 3;
            None
        }
        Some(&c) if c.is_ascii_alphabetic() => {
            i += 1;
            Some(c)
        }
        Some(_) => {
            return Err(FormatError::Syntax {
                offset: at,
                what: "'%' not followed by a directive letter (write '%%' for a literal '%')",
            });
        }
        None => {
            return Err(FormatError::Syntax {
                offset: at,
                what: "'%' at the end of the format (write '%%' for a literal '%')",
            });
        }
    };
    let written = spec.get(at..i).unwrap_or_default();
    let unsupported = |why: &'static str| FormatError::Unsupported {
        offset: at,
        name: written.to_owned(),
        why,
    };
    let opaque = (Kind::Opaque, None, Shape::Token);
    let header = arg.map(str::to_ascii_lowercase);
    let (kind, slot, shape) = match (letter, arg) {
        (None, _) => opaque,
        (Some(b'a'), None) => (Kind::Client, Some((Slot::Client, 0)), Shape::Token),
        (Some(b'a'), Some("c")) => (Kind::Client, Some((Slot::Client, 2)), Shape::Token),
        (Some(b'h'), _) => (Kind::Client, Some((Slot::Client, 1)), Shape::Token),
        (Some(b'l'), _) => (Kind::Ident, Some((Slot::Ident, 0)), Shape::Token),
        (Some(b'u'), _) => (Kind::User, Some((Slot::User, 0)), Shape::Token),
        (Some(b't'), None) => (Kind::TimeClf(true), Some((Slot::Time, 0)), Shape::Bracketed),
        (Some(b't'), Some(fmt)) => {
            let fmt = fmt
                .strip_prefix("begin:")
                .or_else(|| fmt.strip_prefix("end:"))
                .unwrap_or(fmt);
            match fmt {
                "sec" => (Kind::TimeEpoch(6), Some((Slot::Time, 0)), Shape::Token),
                "msec" => (Kind::TimeEpoch(3), Some((Slot::Time, 0)), Shape::Token),
                "usec" => (Kind::TimeEpoch(0), Some((Slot::Time, 0)), Shape::Token),
                "msec_frac" | "usec_frac" => opaque,
                _ => {
                    let pieces = strftime(fmt).map_err(unsupported)?;
                    (
                        Kind::TimeStrftime(pieces.clone()),
                        Some((Slot::Time, 0)),
                        Shape::Pattern(pieces),
                    )
                }
            }
        }
        (Some(b'r'), _) => (Kind::Request, Some((Slot::Request, 0)), Shape::Token),
        (Some(b'm'), _) => (Kind::Method, Some((Slot::Method, 0)), Shape::Token),
        (Some(b'U'), _) => (Kind::Target, Some((Slot::Target, 0)), Shape::Token),
        (Some(b'H'), _) => (Kind::Protocol, Some((Slot::Protocol, 0)), Shape::Token),
        (Some(b's'), _) => (
            Kind::Status,
            Some((Slot::Status, if gt { 0 } else { 1 })),
            Shape::Token,
        ),
        (Some(b'b' | b'B'), _) => (Kind::Bytes, Some((Slot::Bytes, 0)), Shape::Token),
        (Some(b'O'), _) => (Kind::Bytes, Some((Slot::Bytes, 1)), Shape::Token),
        (Some(b'D'), _) => (
            Kind::RequestTime(0),
            Some((Slot::RequestTime, 0)),
            Shape::Token,
        ),
        (Some(b'T'), None | Some("s")) => (
            Kind::RequestTime(6),
            Some((Slot::RequestTime, 1)),
            Shape::Token,
        ),
        (Some(b'T'), Some("ms")) => (
            Kind::RequestTime(3),
            Some((Slot::RequestTime, 1)),
            Shape::Token,
        ),
        (Some(b'T'), Some("us")) => (
            Kind::RequestTime(0),
            Some((Slot::RequestTime, 1)),
            Shape::Token,
        ),
        (Some(b'i'), Some(_)) => match header.as_deref() {
            Some("referer" | "referrer") => {
                (Kind::Referrer, Some((Slot::Referrer, 0)), Shape::Token)
            }
            Some("user-agent") => (Kind::UserAgent, Some((Slot::UserAgent, 0)), Shape::Token),
            Some("x-forwarded-for" | "forwarded") => (Kind::Opaque, None, Shape::List),
            _ => opaque,
        },
        (Some(b'i' | b'o' | b'e' | b'n' | b'C' | b'x'), None) => {
            return Err(unsupported("this directive needs a {name} argument"));
        }
        (Some(b'o' | b'e' | b'n' | b'C' | b'x'), Some(_)) => opaque,
        (
            Some(
                b'A' | b'f' | b'I' | b'k' | b'L' | b'p' | b'P' | b'q' | b'R' | b'S' | b'v' | b'V'
                | b'X' | b'a' | b'T',
            ),
            _,
        ) => opaque,
        (Some(_), _) => return Err(unsupported("not an Apache mod_log_config directive")),
    };
    Ok((var(kind, slot, shape, at, written), i))
}

/// Compiles a `%{…}t` strftime layout.
fn strftime(fmt: &str) -> Result<Box<[Piece]>, &'static str> {
    let mut pieces = Vec::new();
    let mut it = fmt.bytes();
    while let Some(c) = it.next() {
        if c != b'%' {
            pieces.push(Piece::Lit(c));
            continue;
        }
        match it.next() {
            Some(b'Y') => pieces.push(Piece::Year),
            Some(b'm') => pieces.push(Piece::Month),
            Some(b'b' | b'h') => pieces.push(Piece::MonthAbbr),
            Some(b'd') => pieces.push(Piece::Day),
            Some(b'e') => pieces.push(Piece::DaySpace),
            Some(b'H') => pieces.push(Piece::Hour),
            Some(b'M') => pieces.push(Piece::Minute),
            Some(b'S') => pieces.push(Piece::Second),
            Some(b'z') => pieces.push(Piece::Zone),
            Some(b'%') => pieces.push(Piece::Lit(b'%')),
            Some(b'T') => pieces.extend([
                Piece::Hour,
                Piece::Lit(b':'),
                Piece::Minute,
                Piece::Lit(b':'),
                Piece::Second,
            ]),
            Some(b'F') => pieces.extend([
                Piece::Year,
                Piece::Lit(b'-'),
                Piece::Month,
                Piece::Lit(b'-'),
                Piece::Day,
            ]),
            _ => {
                return Err(
                    "only %Y %m %d %e %H %M %S %b %z %T %F %% are supported in %{...}t; \
                     use %t, %{sec}t, %{msec}t or %{usec}t",
                );
            }
        }
    }
    let has = |p: &[Piece]| pieces.iter().any(|x| p.contains(x));
    if !(has(&[Piece::Year])
        && has(&[Piece::Month, Piece::MonthAbbr])
        && has(&[Piece::Day, Piece::DaySpace])
        && has(&[Piece::Hour])
        && has(&[Piece::Minute])
        && has(&[Piece::Second]))
    {
        return Err("a %{...}t time needs the year, month, day, hour, minute and second");
    }
    Ok(pieces.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(scaled_decimal(b"0.123", 6), Some(123_000));
        assert_eq!(scaled_decimal(b"12", 3), Some(12_000));
        assert_eq!(scaled_decimal(b"1.23456789", 6), Some(1_234_567));
        assert_eq!(scaled_decimal(b"1.", 6), None);
        assert_eq!(scaled_decimal(b".5", 6), None);
        assert_eq!(scaled_decimal(b"1.2x", 6), None);
        assert_eq!(scaled_decimal(b"", 0), None);
        assert_eq!(scaled_decimal(b"99999999999999999999", 0), None);
    }

    #[test]
    fn lists() {
        let r = b"0.002, 0.003 : 0.001 next";
        assert_eq!(list_end(r, 6), 20);
        assert_eq!(list_end(b"- x", 1), 1);
        assert_eq!(list_end(b"1, ", 2), 2);
    }

    #[test]
    fn strftime_layouts() {
        let p = strftime("%Y-%m-%d %H:%M:%S").unwrap();
        let (ts, n) = match_pattern(&p, b"2000-10-10 20:55:36 rest").unwrap();
        assert_eq!(
            (ts, n),
            (parse_rfc3339(b"2000-10-10T20:55:36Z").unwrap(), 19)
        );
        let p = strftime("%d/%b/%Y:%T %z").unwrap();
        let (ts, _) = match_pattern(&p, b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(ts, parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap());
        assert!(match_pattern(&p, b"31/Feb/2000:13:55:36 -0700").is_none());
        assert!(strftime("%H:%M:%S").is_err());
        assert!(strftime("%F %T.%f").is_err());
    }
}

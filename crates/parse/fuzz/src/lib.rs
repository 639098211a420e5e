//! Shared property checks for the fuzz targets in `fuzz_targets/`: sub-slice (zero-copy)
//! checks, the timestamp range every parser promises, and a privacy check that a record's
//! `Debug` output does not echo the input.

use std::borrow::Cow;

use logveil_parse::ParseError;

/// First instant of year 10000 in µs since the epoch; every parsed time is in `0..TS_END`.
pub const TS_END: i64 = 253_402_300_800 * 1_000_000;

/// Asserts a parsed timestamp is in the range every parser promises (1970 to year 9999).
pub fn check_ts(ts: i64) {
    assert!((0..TS_END).contains(&ts), "timestamp {ts} out of range");
}

/// True if `inner` lies entirely inside `outer` (same allocation, by address).
pub fn is_subslice(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    // An empty slice may be a dangling pointer (e.g. `&[]`): accept it.
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

/// Asserts `inner` borrows from `outer`.
pub fn assert_sub(outer: &[u8], inner: &[u8], what: &str) {
    assert!(
        is_subslice(outer, inner),
        "{what} does not borrow from the input"
    );
}

/// Asserts a `Cow<str>` that borrows, borrows from `outer`.
#[allow(clippy::ptr_arg)] // Borrowed vs Owned is the point.
pub fn assert_cow_str(outer: &[u8], v: &Cow<'_, str>, what: &str) {
    if let Cow::Borrowed(s) = v {
        assert_sub(outer, s.as_bytes(), what);
    }
}

/// Asserts a `Cow<[u8]>` that borrows, borrows from `outer`.
#[allow(clippy::ptr_arg)] // Borrowed vs Owned is the point.
pub fn assert_cow_bytes(outer: &[u8], v: &Cow<'_, [u8]>, what: &str) {
    if let Cow::Borrowed(s) = v {
        assert_sub(outer, s, what);
    }
}

/// Asserts an error points inside the line (or just past its end).
pub fn check_err(line: &[u8], e: &ParseError) {
    assert!(
        e.column <= line.len(),
        "error column {} beyond line length {}",
        e.column,
        line.len()
    );
}

/// Window length for the leak check: any echo of 8 or more input bytes containing `/`, `.` or
/// `@` (URLs, paths, host names, addresses, e-mails) counts as a leak.
const LEAK_WINDOW: usize = 8;

fn is_marker(b: u8) -> bool {
    matches!(b, b'/' | b'.' | b'@')
}

/// Asserts that `debug` (a record's `Debug` output, with the parts the record is allowed to
/// show already removed by the caller) does not contain any run of [`LEAK_WINDOW`] or more
/// input bytes that holds a `/`, `.` or `@`.
///
/// Sound: an echoed run of 8+ bytes holding a marker contains an 8-byte window holding that
/// marker, and such a window needs a marker in `debug` too, so a `debug` without markers
/// passes at once.
pub fn assert_no_leak(input: &[u8], debug: &str, what: &str) {
    let d = debug.as_bytes();
    if !d.iter().copied().any(is_marker) || input.len() < LEAK_WINDOW {
        return;
    }
    for w in input.windows(LEAK_WINDOW) {
        if w.iter().copied().any(is_marker) && d.windows(LEAK_WINDOW).any(|x| x == w) {
            panic!("{what}: Debug output echoes input bytes");
        }
    }
}

/// Splits `data` into lines like the pipeline does: `\n` terminators, a trailing `\r`
/// removed, blank lines skipped.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// Properties of an [`logveil_parse::AccessLine`] from `combined`, `common` or a custom
/// format: every slice borrows from `line`, values are in range, and `Debug` shows lengths
/// (plus the method and HTTP version) only.
pub fn check_access(line: &[u8], a: &logveil_parse::AccessLine<'_>) {
    use logveil_parse::Request;
    assert_sub(line, a.client, "client");
    assert!(!a.client.is_empty(), "empty client accepted");
    for (f, what) in [
        (a.ident, "ident"),
        (a.user, "user"),
        (a.referrer, "referrer"),
        (a.user_agent, "user_agent"),
    ] {
        if let Some(f) = f {
            assert_sub(line, f, what);
        }
    }
    for (f, what) in [(a.referrer, "referrer"), (a.user_agent, "user_agent")] {
        assert!(
            f.is_none_or(|f| !f.is_empty() && f != b"-"),
            "{what}: empty or '-' must be None"
        );
    }
    check_ts(a.ts_micros);
    if let Some(s) = a.status {
        assert!((100..=999).contains(&s), "status {s} out of range");
    }
    let mut debug = format!("{a:?}");
    match a.request {
        Request::Missing => {}
        Request::Raw(r) => assert_sub(line, r, "raw request"),
        Request::Parsed {
            method,
            target,
            protocol,
        } => {
            assert_sub(line, method, "method");
            assert_sub(line, target, "target");
            assert!(!method.is_empty(), "empty method");
            assert!(
                method.iter().all(u8::is_ascii_alphabetic),
                "method with non-letters"
            );
            assert!(!target.is_empty(), "empty target");
            if let Some(p) = protocol {
                assert_sub(line, p, "protocol");
                assert!(p.starts_with(b"HTTP/"), "protocol not HTTP/…");
                // The HTTP version is shown on purpose: remove it before the leak check.
                debug = debug.replace(&String::from_utf8_lossy(p).into_owned(), "");
            }
        }
    }
    assert_no_leak(line, &debug, "AccessLine");
}

/// The application-log parser a selector byte chooses: `sel % 6` picks the timestamp format
/// (0 is `Auto`) and `sel & 0x80` adds `keep` fields (flat, dotted and nested names).
pub fn app_parser(
    sel: u8,
    format: logveil_parse::applog::AppFormat,
) -> logveil_parse::applog::AppParser {
    use logveil_parse::applog::{AppMapping, AppParser, TimestampFormat};
    let timestamp_format = match sel % 6 {
        0 => TimestampFormat::Auto,
        1 => TimestampFormat::Rfc3339,
        2 => TimestampFormat::UnixSeconds,
        3 => TimestampFormat::UnixMillis,
        4 => TimestampFormat::UnixMicros,
        _ => TimestampFormat::UnixNanos,
    };
    let mut mapping = AppMapping {
        timestamp_format,
        ..AppMapping::default()
    };
    if sel & 0x80 != 0 {
        mapping.keep = ["user", "req.id", "tags", "msg", "a.b.c", ""]
            .map(String::from)
            .to_vec();
    }
    AppParser::new(mapping, format)
}

/// Properties of an [`logveil_parse::applog::AppRecord`]: values in range, borrowed values
/// point into the line, one `kept` slot per `keep` name, and `Debug` does not echo the line.
pub fn check_app_record(line: &[u8], keep: usize, r: &logveil_parse::applog::AppRecord<'_>) {
    check_ts(r.ts_micros);
    if let Some(s) = r.status {
        assert!((100..=999).contains(&s), "status {s} out of range");
    }
    if let Some(d) = r.duration_ms {
        assert!(
            d.is_finite() && d >= 0.0,
            "duration_ms {d} not finite and >= 0"
        );
    }
    assert_eq!(r.kept.len(), keep, "one kept slot per keep name");
    let fields = [
        (&r.level, "level"),
        (&r.message, "message"),
        (&r.ip, "ip"),
        (&r.device_id, "device_id"),
        (&r.account_id, "account_id"),
        (&r.user_agent, "user_agent"),
        (&r.method, "method"),
        (&r.path, "path"),
    ];
    for (f, what) in fields.into_iter().chain(r.kept.iter().map(|k| (k, "kept"))) {
        // A bare logfmt `key` is the flag value `true`, a static string.
        if let Some(v) = f.as_ref().filter(|v| **v != "true") {
            assert_cow_str(line, v, what);
        }
    }
    assert_no_leak(line, &format!("{r:?}"), "AppRecord");
}

/// Properties of a [`logveil_parse::ProxyRecord`]: values in range, a non-empty client, an
/// account neither empty nor `-`, both borrowed from the line when not copied, and `Debug`
/// does not echo the line.
pub fn check_proxy(line: &[u8], r: &logveil_parse::ProxyRecord<'_>) {
    check_ts(r.ts_micros);
    if let Some(s) = r.status {
        assert!((100..=999).contains(&s), "status {s} out of range");
    }
    assert_cow_bytes(line, &r.client, "client");
    // Squid's client is any token as written (`-` included); JSON treats `-` as absent.
    assert!(!r.client.is_empty(), "empty client accepted");
    if let Some(a) = &r.account {
        assert_cow_bytes(line, a, "account");
        assert!(
            !a.is_empty() && **a != *b"-",
            "absent account returned as Some"
        );
    }
    assert_no_leak(line, &format!("{r:?}"), "ProxyRecord");
}

/// Realistic nginx `log_format` strings for `custom_nginx`.
pub const NGINX_FORMATS: &[&str] = &[
    logveil_parse::custom::NGINX_COMBINED,
    logveil_parse::custom::NGINX_COMMON,
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
     \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\"",
    "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \
     \"$http_referer\" \"$http_user_agent\" rt=$request_time uct=\"$upstream_connect_time\" \
     uht=\"$upstream_header_time\" urt=\"$upstream_response_time\"",
    "$host:$server_port $remote_addr - $remote_user [$time_local] \"$request\" $status \
     $body_bytes_sent $request_length $request_time $upstream_response_time $scheme \
     $ssl_protocol $ssl_cipher",
    "$time_iso8601 $remote_addr $request_method $request_uri $server_protocol $status \
     $bytes_sent $request_time",
    "$msec $remote_addr \"$request\" $status $body_bytes_sent $upstream_addr",
    "{\"time\":\"$time_iso8601\",\"ip\":\"$remote_addr\",\"request\":\"$request\",\
     \"status\":$status,\"ua\":\"$http_user_agent\"}",
    "$remote_addr [$time_local] $request_method ${uri}?$args $status",
];

/// Realistic Apache `LogFormat` strings for `custom_apache`.
pub const APACHE_FORMATS: &[&str] = &[
    logveil_parse::custom::APACHE_COMBINED,
    logveil_parse::custom::APACHE_COMMON,
    "%v:%p %h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"",
    "%a %l %u %t \"%r\" %>s %b %D",
    "%h %{X-Forwarded-For}i %l %u %t \"%r\" %>s %b %T",
    "[%{%d/%b/%Y:%T %z}t] %h %>s %b",
    "%{%Y-%m-%d %H:%M:%S}t %a %m %U %H %s %B",
    "%{sec}t %a %>s %B %{ms}T",
    "%h %l %u [%{msec}t] \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"",
];

/// The `custom_*` targets. Selector byte < 0xC0: a realistic format (`sel % len`) and the rest
/// is the line. Otherwise the rest is `FORMAT\nLINE` (format as lossy UTF-8). Compiling and
/// parsing never panic; a parsed line passes [`check_access`]; for the four built-in
/// `combined`/`common` formats a line both parsers accept gives the same `AccessLine` as
/// `parse_access` (the module's documented promise).
pub fn custom_target(data: &[u8], nginx: bool) {
    use logveil_parse::custom::{self, LogFormat};
    use logveil_parse::{AccessFormat, parse_access};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let formats = if nginx { NGINX_FORMATS } else { APACHE_FORMATS };
    let fuzzed;
    let (spec, line): (&str, &[u8]) = if sel < 0xC0 {
        (formats[usize::from(sel) % formats.len()], rest)
    } else {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        fuzzed = String::from_utf8_lossy(&rest[..cut]).into_owned();
        (&fuzzed, rest.get(cut + 1..).unwrap_or_default())
    };
    let compiled = if nginx {
        LogFormat::nginx(spec)
    } else {
        LogFormat::apache(spec)
    };
    let f = match compiled {
        Ok(f) => f,
        Err(e) => {
            assert!(sel >= 0xC0, "a realistic format does not compile: {e}");
            let _ = e.to_string();
            return;
        }
    };
    let _ = format!("{f:?}");
    let parsed = f.parse(line);
    match &parsed {
        Ok(a) => check_access(line, a),
        Err(e) => check_err(line, e),
    }
    let builtin = match spec {
        custom::NGINX_COMBINED | custom::APACHE_COMBINED => Some(AccessFormat::Combined),
        custom::NGINX_COMMON | custom::APACHE_COMMON => Some(AccessFormat::Common),
        _ => None,
    };
    if let (Some(fmt), Ok(a)) = (builtin, &parsed)
        && let Ok(b) = parse_access(line, fmt)
    {
        assert_eq!(*a, b, "custom {fmt:?} and parse_access disagree");
    }
}

/// Parses `line` with `serde_json::Value` to cross-check a JSON parser that accepted it.
/// `None` when `Value` refuses only a number beyond `f64` range: in values the parsers skip
/// unread (`IgnoredAny`) serde_json does not range-check numbers, and RFC 8259 allows them.
pub fn json_value(line: &[u8]) -> Option<serde_json::Value> {
    match serde_json::from_slice(line) {
        Ok(v) => Some(v),
        Err(e) if e.to_string().starts_with("number out of range") => None,
        Err(e) => panic!("accepted line is not valid JSON: {e}"),
    }
}

//! Conformance of the proxy-log parsers (Squid native and the JSON proxy-gateway format):
//! hand-written edge cases, netdata's Squid fixtures (read in place from `$LOGVEIL_CORPUS` or
//! `<workspace>/../shared/corpus`, never copied), a canary test proving that destinations
//! (host, URL, path, query, port, peer, content type) never come out of the parser, and
//! property tests (no panics; lines printed from random values parse back to those values).

mod common;

use common::{corpus_dir, lines};

use std::borrow::Cow;

use logveil_model::QuarantineReason;
use logveil_model::time::parse_rfc3339;
use logveil_parse::ParseError;
use logveil_parse::proxy::{
    JSON_ACCOUNT_KEYS, JSON_BYTES_IN_KEYS, JSON_BYTES_OUT_KEYS, JSON_CLIENT_KEYS,
    JSON_DURATION_KEYS, JSON_STATUS_KEYS, JSON_TIME_KEYS, ProxyFormat, ProxyRecord, parse_proxy,
    parse_proxy_json, parse_squid,
};
use proptest::prelude::*;

fn squid(line: &str) -> ProxyRecord<'_> {
    match parse_proxy(line.as_bytes(), ProxyFormat::Squid) {
        Ok(r) => r,
        Err(e) => panic!("{e} for {line}"),
    }
}

fn squid_err(line: &str) -> ParseError {
    match parse_proxy(line.as_bytes(), ProxyFormat::Squid) {
        Ok(r) => panic!("parsed {r:?}: {line}"),
        Err(e) => e,
    }
}

fn json(line: &str) -> ProxyRecord<'_> {
    match parse_proxy(line.as_bytes(), ProxyFormat::Json) {
        Ok(r) => r,
        Err(e) => panic!("{e} for {line}"),
    }
}

fn json_err(line: &str) -> ParseError {
    match parse_proxy(line.as_bytes(), ProxyFormat::Json) {
        Ok(r) => panic!("parsed {r:?}: {line}"),
        Err(e) => e,
    }
}

fn ts(s: &str) -> i64 {
    parse_rfc3339(s.as_bytes()).unwrap()
}

#[allow(clippy::ptr_arg)] // The variant is the point.
fn is_borrowed(c: &Cow<'_, [u8]>) -> bool {
    matches!(c, Cow::Borrowed(_))
}

// ---------------------------------------------------------------------------------------------
// Squid
// ---------------------------------------------------------------------------------------------

const SQUID: &str = "1286536309.450     85 192.168.0.68 TCP_MISS/200 411 GET http://example.com/ - DIRECT/1.2.3.4 text/html";

#[test]
fn squid_reference_line() {
    let r = squid(SQUID);
    assert_eq!(
        r,
        ProxyRecord {
            ts_micros: 1_286_536_309_450_000,
            client: Cow::Borrowed(b"192.168.0.68"),
            account: None,
            status: Some(200),
            bytes_in: None,
            bytes_out: Some(411),
            duration_ms: Some(85),
        }
    );
    assert!(is_borrowed(&r.client));
    assert_eq!(r.ts_micros, ts("2010-10-08T11:11:49.450Z"));
    // The same through the direct entry point.
    assert_eq!(parse_squid(SQUID.as_bytes()).unwrap(), r);
}

/// (line, client, account, status, bytes_out, duration_ms)
type SquidVariant = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<u16>,
    Option<u64>,
    Option<u64>,
);

#[test]
fn squid_variants() {
    let cases: &[SquidVariant] = &[
        // IPv6 client, user name, CONNECT with an authority-form target.
        (
            "1764331200.001   1520 2001:db8::7 TCP_TUNNEL/200 53000 CONNECT example.org:443 alice HIER_DIRECT/2001:db8::1 -",
            "2001:db8::7",
            Some("alice"),
            Some(200),
            Some(53000),
            Some(1520),
        ),
        // Denied, with a realm-qualified user.
        (
            "1764331200.002      0 10.0.0.9 TCP_DENIED/403 3944 GET http://blocked.example/ bob@CORP.EXAMPLE HIER_NONE/- text/html",
            "10.0.0.9",
            Some("bob@CORP.EXAMPLE"),
            Some(403),
            Some(3944),
            Some(0),
        ),
        // NONE/000: no status; Squid 5 error "URLs".
        (
            "1764331200.003      0 ::1 NONE/000 0 NONE error:transaction-end-before-headers - HIER_NONE/- -",
            "::1",
            None,
            None,
            Some(0),
            Some(0),
        ),
        (
            "1764331200.004      5 203.0.113.5 NONE_NONE/400 3851 NONE error:invalid-request - HIER_NONE/- text/html",
            "203.0.113.5",
            None,
            Some(400),
            Some(3851),
            Some(5),
        ),
        (
            "1764331200.005     12 203.0.113.5 TAG_NONE/503 0 CONNECT example.net:8443 - HIER_NONE/- -",
            "203.0.113.5",
            None,
            Some(503),
            Some(0),
            Some(12),
        ),
        (
            "1764331200.006  60000 203.0.113.5 ERR_READ_TIMEOUT/504 0 GET http://slow.example/ - FIRST_UP_PARENT/proxy.example -",
            "203.0.113.5",
            None,
            Some(504),
            Some(0),
            Some(60000),
        ),
        // Suffixes, IPv4-mapped client, `-` for unknown numbers.
        (
            "1764331200.007      - ::ffff:192.0.2.1 TCP_MISS_ABORTED/- - GET http://a.example/ - TIMEOUT_DIRECT/192.0.2.80 -",
            "::ffff:192.0.2.1",
            None,
            None,
            None,
            None,
        ),
        // Squid 2 padding (leading spaces), tabs, no fraction, trailing spaces.
        (
            "  999999999 \t 7\t192.0.2.1 UDP_HIT/200 12 ICP_QUERY http://x.example/ - NONE/- -   ",
            "192.0.2.1",
            None,
            Some(200),
            Some(12),
            Some(7),
        ),
        // log_mime_hdrs on: request and reply headers appended after the type are ignored.
        (
            "1764331200.008     40 192.0.2.2 TCP_HIT/304 230 GET http://h.example/ carol NONE/- text/css [Host: h.example\\r\\nCookie: s=1\\r\\n] [HTTP/1.1 304 Not Modified\\r\\n]",
            "192.0.2.2",
            Some("carol"),
            Some(304),
            Some(230),
            Some(40),
        ),
        // Status 603 appears in netdata's fixtures; u64::MAX still fits.
        (
            "1764331200.009 18446744073709551615 h.example TCP_CF_NEGATIVE_NEGATIVE_ABORTED/603 18446744073709551615 PURGE cache_object://localhost/counters - HIER_SINGLE_PARENT/203.0.113.200 model/plain",
            "h.example",
            None,
            Some(603),
            Some(u64::MAX),
            Some(u64::MAX),
        ),
    ];
    for &(line, client, account, status, bytes_out, duration_ms) in cases {
        let r = squid(line);
        assert_eq!(r.client.as_ref(), client.as_bytes(), "{line}");
        assert_eq!(r.account.as_deref(), account.map(str::as_bytes), "{line}");
        assert_eq!(r.status, status, "{line}");
        assert_eq!(r.bytes_in, None, "{line}");
        assert_eq!(r.bytes_out, bytes_out, "{line}");
        assert_eq!(r.duration_ms, duration_ms, "{line}");
        assert!(is_borrowed(&r.client) && r.account.as_ref().is_none_or(is_borrowed));
    }
    assert_eq!(squid(cases[0].0).ts_micros, ts("2025-11-28T12:00:00.001Z"));
    assert_eq!(squid(cases[7].0).ts_micros, 999_999_999_000_000);
    // Fractions: more digits than µs are truncated; one digit is tenths.
    let r = squid("1.1234567 1 c X/200 1 GET u - D/- t");
    assert_eq!(r.ts_micros, 1_123_456);
    let r = squid("1.5 1 c X/200 1 GET u - D/- t");
    assert_eq!(r.ts_micros, 1_500_000);
}

#[test]
fn squid_errors() {
    use QuarantineReason::{BadTimestamp, Malformed};
    // (line, reason, column)
    let cases: &[(&str, QuarantineReason, usize)] = &[
        ("", Malformed, 0),
        ("   ", Malformed, 3),
        // Missing fields: reported at the end of the line.
        (
            "1286536309.450 85 192.168.0.68 TCP_MISS/200 411 GET http://example.com/ - DIRECT/1.2.3.4",
            Malformed,
            88,
        ),
        ("1286536309.450 85", Malformed, 17),
        // Status not CODE/NNN.
        (
            "1286536309.450 85 c TCP_MISS 411 GET u - DIRECT/- t",
            Malformed,
            28,
        ),
        (
            "1286536309.450 85 c 200 411 GET u - DIRECT/- t",
            Malformed,
            23,
        ),
        (
            "1286536309.450 85 c tcp_miss/200 411 GET u - DIRECT/- t",
            Malformed,
            20,
        ),
        (
            "1286536309.450 85 c TCP_MISS/42 411 GET u - DIRECT/- t",
            Malformed,
            29,
        ),
        (
            "1286536309.450 85 c TCP_MISS/2000 411 GET u - DIRECT/- t",
            Malformed,
            29,
        ),
        (
            "1286536309.450 85 c TCP_MISS/20x 411 GET u - DIRECT/- t",
            Malformed,
            29,
        ),
        // Numbers that do not parse or overflow u64.
        (
            "1286536309.450 x85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            Malformed,
            15,
        ),
        (
            "1286536309.450 -5 c TCP_MISS/200 411 GET u - DIRECT/- t",
            Malformed,
            15,
        ),
        (
            "1286536309.450 18446744073709551616 c TCP_MISS/200 411 GET u - DIRECT/- t",
            Malformed,
            15,
        ),
        (
            "1286536309.450 85 c TCP_MISS/200 99999999999999999999999 GET u - DIRECT/- t",
            Malformed,
            33,
        ),
        (
            "1286536309.450 85 c TCP_MISS/200 4.1 GET u - DIRECT/- t",
            Malformed,
            33,
        ),
        // A URL with an unescaped space shifts fields: caught at the hierarchy field.
        (
            "1286536309.450 85 c TCP_MISS/200 411 GET http://x/a b - DIRECT/- t",
            Malformed,
            54,
        ),
        (
            "1286536309.450 85 c TCP_MISS/200 411 GET u - direct/- t",
            Malformed,
            45,
        ),
        (
            "1286536309.450 85 c TCP_MISS/200 411 GET u - DIRECT t",
            Malformed,
            51,
        ),
        // Bad times on otherwise valid lines.
        (
            "yesterday 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        (
            "-1 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        (
            "1e9 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        (
            "1286536309. 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        (
            "  253402300800 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            2,
        ),
        (
            "99999999999999999999999 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        (
            "2026-11-28T12:00:00Z 85 c TCP_MISS/200 411 GET u - DIRECT/- t",
            BadTimestamp,
            0,
        ),
        // Garbage is malformed (not a bad timestamp): it fails before the time is looked at.
        (
            "Unmatched! The rat the cat the dog chased killed ate the malt!",
            Malformed,
            11,
        ),
        (
            "localhost - - [22/Mar/2009:09:30:31 +0100] \"POST /example.com HTTP/2.0\" 300 2698",
            Malformed,
            14,
        ),
    ];
    for &(line, reason, column) in cases {
        let e = squid_err(line);
        assert_eq!((e.reason, e.column), (reason, column), "{line}: {e}");
    }
}

#[test]
fn squid_max_time() {
    let r = squid("253402300799.999999 1 c X/200 1 GET u - D/- t");
    assert_eq!(r.ts_micros, ts("9999-12-31T23:59:59.999999Z"));
    assert_eq!(squid("0 1 c X/200 1 GET u - D/- t").ts_micros, 0);
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

const JSON: &str = r#"{"ts":"2026-11-28T12:00:00.123Z","account_id":"acct-42","client_ip":"203.0.113.7","method":"CONNECT","dest_host":"example.org","dest_port":443,"url":null,"status":200,"bytes_in":1200,"bytes_out":53000,"duration_ms":840}"#;

#[test]
fn json_reference_line() {
    let r = json(JSON);
    assert_eq!(
        r,
        ProxyRecord {
            ts_micros: ts("2026-11-28T12:00:00.123Z"),
            client: Cow::Borrowed(b"203.0.113.7"),
            account: Some(Cow::Borrowed(b"acct-42")),
            status: Some(200),
            bytes_in: Some(1200),
            bytes_out: Some(53000),
            duration_ms: Some(840),
        }
    );
    assert!(is_borrowed(&r.client) && is_borrowed(r.account.as_ref().unwrap()));
    assert_eq!(parse_proxy_json(JSON.as_bytes()).unwrap(), r);
}

#[test]
fn json_aliases_and_optional_fields() {
    let groups: [(&[&str], &str); 7] = [
        (&JSON_TIME_KEYS, "\"2026-11-28T12:00:00Z\""),
        (&JSON_CLIENT_KEYS, "\"2001:db8::1\""),
        (&JSON_ACCOUNT_KEYS, "\"u1\""),
        (&JSON_STATUS_KEYS, "404"),
        (&JSON_BYTES_IN_KEYS, "10"),
        (&JSON_BYTES_OUT_KEYS, "20"),
        (&JSON_DURATION_KEYS, "30"),
    ];
    // Every alias of every field, each combined with the first key of the others.
    for (g, (keys, _)) in groups.iter().enumerate() {
        for alias in keys.iter() {
            let fields: Vec<String> = groups
                .iter()
                .enumerate()
                .map(|(i, (ks, v))| format!("\"{}\":{v}", if i == g { alias } else { ks[0] }))
                .collect();
            let line = format!("{{{}}}", fields.join(","));
            let r = json(&line);
            assert_eq!(
                r,
                ProxyRecord {
                    ts_micros: ts("2026-11-28T12:00:00Z"),
                    client: Cow::Borrowed(b"2001:db8::1"),
                    account: Some(Cow::Borrowed(b"u1")),
                    status: Some(404),
                    bytes_in: Some(10),
                    bytes_out: Some(20),
                    duration_ms: Some(30),
                },
                "{line}"
            );
        }
    }
    // Only the required fields; nulls, "" and "-" are absent.
    let r = json(r#"{"time":"2026-11-28T12:00:00Z","client":"192.0.2.1"}"#);
    assert_eq!(
        (r.account, r.status, r.bytes_in, r.bytes_out, r.duration_ms),
        (None, None, None, None, None)
    );
    let r = json(
        r#"{"time":"2026-11-28T12:00:00Z","client":"192.0.2.1","user":null,"status":null,"bytes_in":null,"bytes_out":null,"duration_ms":null}"#,
    );
    assert_eq!(
        (r.account, r.status, r.bytes_in, r.bytes_out, r.duration_ms),
        (None, None, None, None, None)
    );
    for acct in ["\"\"", "\"-\""] {
        let line = format!(r#"{{"ts":0,"client":"c","account":{acct}}}"#);
        assert_eq!(json(&line).account, None);
    }
    // Status 0 is "none"; numeric accounts become their decimal form.
    let r = json(r#"{"ts":0,"client":"c","status":0,"account_id":42}"#);
    assert_eq!((r.status, r.account.as_deref()), (None, Some(&b"42"[..])));
    // Fractional durations are truncated.
    assert_eq!(
        json(r#"{"ts":0,"client":"c","elapsed_ms":840.9}"#).duration_ms,
        Some(840)
    );
}

#[test]
fn json_time_shapes() {
    for (value, expected) in [
        (
            "\"2026-11-28T13:00:00.5+01:00\"",
            ts("2026-11-28T12:00:00.5Z"),
        ),
        ("\"28/Nov/2026:12:00:00 +0000\"", ts("2026-11-28T12:00:00Z")),
        ("1795867200", ts("2026-11-28T12:00:00Z")),
        ("1795867200.123", ts("2026-11-28T12:00:00.123Z")),
        ("1795867200123", ts("2026-11-28T12:00:00.123Z")),
        ("1795867200123.4", ts("2026-11-28T12:00:00.1234Z")),
        ("0", 0),
        ("99999999999", 99_999_999_999_000_000),
        ("100000000000", 100_000_000_000_000),
        ("\"2026-11-28T12:00:00\\u005a\"", ts("2026-11-28T12:00:00Z")),
    ] {
        let line = format!(r#"{{"client_ip":"c","ts":{value}}}"#);
        assert_eq!(json(&line).ts_micros, expected, "{value}");
    }
    for (value, column) in [
        ("\"yesterday\"", 22),
        ("\"\"", 22),
        ("\"2026-02-30T00:00:00Z\"", 22),
        ("\"1969-12-31T23:59:59Z\"", 22),
        // Escaped strings and numbers: the column of the value's last byte.
        ("\"x\\u0079\"", 30),
        ("-1", 23),
        ("-0.5", 25),
        ("100000000000000", 36),
        ("1e300", 26),
    ] {
        let line = format!(r#"{{"client_ip":"c","ts":{value}}}"#);
        let e = json_err(&line);
        assert_eq!(
            (e.reason, e.column),
            (QuarantineReason::BadTimestamp, column),
            "{value}: {e}"
        );
    }
}

#[test]
fn json_escapes_and_duplicates() {
    // Escaped strings are decoded (and owned); raw UTF-8 stays borrowed.
    let r = json(
        r#"{"ts":0,"client_ip":"2001:db8::\u0031","account_id":"caf\u00e9 \"q\" \\ \ud83d\ude00"}"#,
    );
    assert_eq!(r.client.as_ref(), b"2001:db8::1");
    assert!(!is_borrowed(&r.client));
    assert_eq!(r.account.as_deref(), Some("café \"q\" \\ 😀".as_bytes()));
    let r = json(r#"{"ts":0,"client_ip":"c","account":"café"}"#);
    assert!(is_borrowed(r.account.as_ref().unwrap()));
    // Escaped keys are recognised.
    let r = json(r#"{"t\u0073":0,"client\u005fip":"c"}"#);
    assert_eq!(r.client.as_ref(), b"c");

    // Duplicates: the first occurrence of a field wins, for the same key and for aliases;
    // later values are skipped unread (even if they have the wrong type).
    let r = json(
        r#"{"ts":0,"ts":"garbage","client_ip":"a","client":"b","src_ip":["x"],"status":200,"status_code":"x","status":404,"bytes_in":1,"bytes_up":-2,"bytes_out":3,"bytes_out":1e99,"duration_ms":5,"elapsed_ms":{},"user":"u1","account_id":"u2"}"#,
    );
    assert_eq!(
        r,
        ProxyRecord {
            ts_micros: 0,
            client: Cow::Borrowed(b"a"),
            account: Some(Cow::Borrowed(b"u1")),
            status: Some(200),
            bytes_in: Some(1),
            bytes_out: Some(3),
            duration_ms: Some(5),
        }
    );
    // A first `null` also wins.
    let e = json_err(r#"{"ts":0,"client_ip":null,"client":"b"}"#);
    assert_eq!(e.reason, QuarantineReason::MissingField);
    let r = json(r#"{"ts":0,"client":"b","account":null,"account_id":"x"}"#);
    assert_eq!(r.account, None);
}

#[test]
fn json_errors() {
    use QuarantineReason::{BadJson, MissingField};
    let cases: &[(&str, QuarantineReason)] = &[
        ("", BadJson),
        ("   ", BadJson),
        ("null", BadJson),
        ("[1,2]", BadJson),
        ("\"ts\"", BadJson),
        ("42", BadJson),
        ("{", BadJson),
        (r#"{"ts":0,"client":"c""#, BadJson),
        (r#"{"ts":0,"client":"c"} {}"#, BadJson),
        (r#"{"ts":0,"client":"c"}x"#, BadJson),
        (r#"{"ts":0,"client":"c",}"#, BadJson),
        (r#"{ts:0}"#, BadJson),
        ("{\"ts\":0,\"client\":\"\u{1}\"}", BadJson),
        // Wrong types and ranges.
        (r#"{"ts":true,"client":"c"}"#, BadJson),
        (r#"{"ts":["2026-11-28T12:00:00Z"],"client":"c"}"#, BadJson),
        (r#"{"ts":0,"client":42}"#, BadJson),
        (r#"{"ts":0,"client":{"ip":"c"}}"#, BadJson),
        (r#"{"ts":0,"client":"c","account":-1}"#, BadJson),
        (r#"{"ts":0,"client":"c","account":1.5}"#, BadJson),
        (r#"{"ts":0,"client":"c","status":"200"}"#, BadJson),
        (r#"{"ts":0,"client":"c","status":42}"#, BadJson),
        (r#"{"ts":0,"client":"c","status":1000}"#, BadJson),
        (r#"{"ts":0,"client":"c","status":200.0}"#, BadJson),
        (r#"{"ts":0,"client":"c","bytes_in":-1}"#, BadJson),
        (r#"{"ts":0,"client":"c","bytes_out":1.5}"#, BadJson),
        // Overflowing numbers: not a u64.
        (
            r#"{"ts":0,"client":"c","bytes_out":18446744073709551616}"#,
            BadJson,
        ),
        (
            r#"{"ts":0,"client":"c","bytes_in":99999999999999999999999}"#,
            BadJson,
        ),
        (r#"{"ts":0,"client":"c","duration_ms":1e30}"#, BadJson),
        (r#"{"ts":0,"client":"c","duration_ms":-3}"#, BadJson),
        (r#"{"ts":0,"client":"c","duration_ms":"3"}"#, BadJson),
        // Invalid JSON inside a skipped value is still invalid JSON.
        (r#"{"ts":0,"client":"c","url":"unterminated}"#, BadJson),
        (r#"{"ts":0,"client":"c","headers":{"a":[1,}}"#, BadJson),
        // Missing required fields.
        ("{}", MissingField),
        (r#"{"client":"c"}"#, MissingField),
        (r#"{"ts":null,"client":"c"}"#, MissingField),
        (r#"{"ts":0}"#, MissingField),
        (r#"{"ts":0,"client":""}"#, MissingField),
        (r#"{"ts":0,"client":"-"}"#, MissingField),
        (r#"{"ts":0,"Client":"c"}"#, MissingField),
        (r#"{"ts":0,"meta":{"client":"c"}}"#, MissingField),
    ];
    for &(line, reason) in cases {
        let e = json_err(line);
        assert_eq!(e.reason, reason, "{line}: {e}");
        assert!(e.column <= line.len(), "{line}: {e}");
    }
    let e = json_err(r#"{"ts":0,"client":"c","status":42}"#);
    assert_eq!(
        e.to_string(),
        "bad_json at column 32: expected an integer status (100..=999, or 0) or null"
    );
    let e = json_err(r#"{"ts":0,"client":"c"} {}"#);
    assert_eq!(e.expected, "end of line after the JSON object");
    // Invalid UTF-8 in a string that is read is bad JSON.
    let e = parse_proxy_json(b"{\"ts\":0,\"client\":\"\xff\"}").unwrap_err();
    assert_eq!(e.reason, BadJson);
    // Whitespace around the object is fine.
    assert!(parse_proxy_json(b" \t{\"ts\":0,\"client\":\"c\"}  ").is_ok());
}

#[test]
fn errors_never_contain_input() {
    let planted = [
        "1286536309.450 85 203.0.113.77 TCP_MISS/2x0 411 GET http://alice.example/ alice DIRECT/- t",
        "alice@example.com 85 203.0.113.77 TCP_MISS/200 411 GET u alice DIRECT/- t",
        r#"{"ts":"alice@example.com","client":"203.0.113.77"}"#,
        r#"{"ts":0,"client":203.0.113.77}"#,
        r#"{"ts":0,"client":"203.0.113.77","account":["alice@example.com"]}"#,
        r#"{"ts":0,"client":"203.0.113.77","status":"alice@example.com"}"#,
        r#"{"ts":0,"client":"203.0.113.77"} "alice@example.com""#,
        r#"{"alice@example.com":tru}"#,
        "alice@example.com 203.0.113.77",
    ];
    for line in planted {
        for format in [ProxyFormat::Squid, ProxyFormat::Json] {
            let e = parse_proxy(line.as_bytes(), format).unwrap_err();
            let shown = format!("{e} {e:?}");
            for secret in ["203.0.113.77", "alice", "example", "203.0"] {
                assert!(!shown.contains(secret), "{shown} for {line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canaries: destinations never come out
// ---------------------------------------------------------------------------------------------

const CANARIES: [&str; 6] = [
    "canary-dest.example",
    "/secret-path-canary",
    "token=canary",
    "canary-peer",
    "canary/type",
    "65535",
];

/// Everything a record exposes: its `Debug` output and every field.
fn exposed(r: &ProxyRecord<'_>) -> Vec<String> {
    vec![
        format!("{r:?}"),
        String::from_utf8_lossy(&r.client).into_owned(),
        r.account
            .as_ref()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .unwrap_or_default(),
        format!(
            "{} {:?} {:?} {:?} {:?}",
            r.ts_micros, r.status, r.bytes_in, r.bytes_out, r.duration_ms
        ),
    ]
}

fn assert_no_canary(r: &ProxyRecord<'_>, line: &str) {
    for shown in exposed(r) {
        for c in CANARIES {
            assert!(!shown.contains(c), "{c} leaked via {shown:?} from {line}");
        }
    }
}

/// Offset of a borrowed slice inside the line (to prove where a field came from).
fn offset_in(line: &str, s: &[u8]) -> usize {
    (s.as_ptr() as usize) - (line.as_ptr() as usize)
}

#[test]
fn canaries_never_leave_the_parser() {
    let squid_lines = [
        "1764331200.001 85 192.0.2.1 TCP_MISS/200 411 GET http://canary-dest.example:65535/secret-path-canary?token=canary - DIRECT/canary-peer canary/type",
        "1764331200.002 85 2001:db8::1 TCP_TUNNEL/200 411 CONNECT canary-dest.example:65535 alice HIER_DIRECT/canary-dest.example -",
        "1764331200.003 85 192.0.2.1 TCP_DENIED/403 0 POST https://canary-dest.example/secret-path-canary?token=canary bob FIRST_UP_PARENT/canary-peer canary/type [Host: canary-dest.example] [X-Token: token=canary]",
        "1764331200.004 85 192.0.2.1 NONE/000 0 token=canary /secret-path-canary - HIER_NONE/canary-peer canary/type",
    ];
    for line in squid_lines {
        let r = squid(line);
        assert_no_canary(&r, line);
        // The client and the user come from their own columns (fields 3 and 8).
        let fields: Vec<&str> = line.split(' ').collect();
        let client_at = fields[..2].iter().map(|f| f.len() + 1).sum::<usize>();
        assert_eq!(offset_in(line, &r.client), client_at, "{line}");
        if let Some(a) = &r.account {
            let user_at = fields[..7].iter().map(|f| f.len() + 1).sum::<usize>();
            assert_eq!(offset_in(line, a), user_at, "{line}");
        }
    }
    let json_lines = [
        r#"{"ts":"2026-11-28T12:00:00Z","client_ip":"192.0.2.1","dest_host":"canary-dest.example","dest_port":65535,"url":"https://canary-dest.example/secret-path-canary?token=canary","method":"CONNECT","target":"canary-dest.example:65535","peer":"canary-peer","content_type":"canary/type"}"#,
        r#"{"headers":{"Host":"canary-dest.example","Cookie":"token=canary","x":[{"path":"/secret-path-canary"}]},"ts":0,"client":"192.0.2.1","account":"acct-1","account_id":"canary-dest.example","user":"token=canary"}"#,
        r#"{"ts":0,"client":"192.0.2.1","url":"https:\/\/canary-dest.example\/secret-path-canary?token\u003dcanary","upstream":{"peer":"canary-peer","port":65535},"client_ip":"canary-dest.example"}"#,
        r#"{"ts":0,"src_ip":"2001:db8::2","canary-dest.example":"/secret-path-canary","token=canary":["canary-peer",65535,null,true,{"canary/type":1.5e3}]}"#,
    ];
    for line in json_lines {
        let r = json(line);
        assert_no_canary(&r, line);
    }
    // Failing lines with canaries: the errors hold no input either.
    for (line, format) in [
        (
            "1764331200.001 85 192.0.2.1 TCP_MISS/2000 411 GET http://canary-dest.example/secret-path-canary - DIRECT/canary-peer canary/type",
            ProxyFormat::Squid,
        ),
        (
            r#"{"ts":0,"url":"https://canary-dest.example/secret-path-canary?token=canary"}"#,
            ProxyFormat::Json,
        ),
        (
            r#"{"ts":"canary-dest.example","client":"c"}"#,
            ProxyFormat::Json,
        ),
    ] {
        let e = parse_proxy(line.as_bytes(), format).unwrap_err();
        let shown = format!("{e} {e:?}");
        for c in CANARIES {
            assert!(!shown.contains(c), "{shown}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// netdata corpus
// ---------------------------------------------------------------------------------------------

/// netdata's go.d squidlog fixtures: 484 native-format lines (IPv4/IPv6/host-name clients,
/// result codes NONE, TCP_CF_NEGATIVE_NEGATIVE_ABORTED, UDP_CLIENT_STALE_MEM_ABORTED, statuses
/// 000..603) plus garbage netdata inserts on purpose to test its "unmatched" counter.
#[test]
fn netdata_squid_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let mut parsed = 0;
    let mut rejected = Vec::new();
    for file in [
        "netdata/netdata_squid_access.log",
        "netdata/netdata_squid_unknown.log",
    ] {
        let data = std::fs::read(dir.join(file)).unwrap();
        for (n, line) in lines(&data).enumerate() {
            match parse_proxy(line, ProxyFormat::Squid) {
                Ok(r) => {
                    parsed += 1;
                    // Independent cross-check with a naive whitespace split.
                    let text = std::str::from_utf8(line).unwrap();
                    let f: Vec<&str> = text.split_whitespace().collect();
                    assert_eq!(f.len(), 10, "{file}:{}", n + 1);
                    let (secs, ms) = f[0].split_once('.').unwrap();
                    let want_ts = secs.parse::<i64>().unwrap() * 1_000_000
                        + ms.parse::<i64>().unwrap() * 1000;
                    assert_eq!(r.ts_micros, want_ts);
                    assert_eq!(r.duration_ms, Some(f[1].parse().unwrap()));
                    assert_eq!(r.client.as_ref(), f[2].as_bytes());
                    let status: u16 = f[3].rsplit_once('/').unwrap().1.parse().unwrap();
                    assert_eq!(r.status, (status != 0).then_some(status));
                    assert_eq!(r.bytes_out, Some(f[4].parse().unwrap()));
                    assert_eq!(
                        r.account,
                        (f[7] != "-").then(|| Cow::Borrowed(f[7].as_bytes()))
                    );
                    assert_eq!(r.bytes_in, None);
                }
                Err(e) => rejected.push((file, n + 1, e, line.to_vec())),
            }
        }
    }
    println!(
        "netdata squid: {parsed} parsed, {} rejected (garbage)",
        rejected.len()
    );
    // Every rejected line must really not be a Squid line: its first field is not an epoch
    // time. They are the 16 "Unmatched! The rat the cat…" lines netdata plants in
    // access.log, and unknown.log's single line, which is a Common Log Format line
    // (`localhost - - [22/Mar/2009:09:30:31 +0100] "POST …" 300 2698`), i.e. a web-server log.
    for (file, n, e, line) in &rejected {
        println!("  rejected {file}:{n}: {e}");
        assert_eq!(e.reason, QuarantineReason::Malformed, "{file}:{n}");
        let first = line.split(|&b| b == b' ').next().unwrap();
        assert!(
            !first.iter().all(|b| b.is_ascii_digit() || *b == b'.'),
            "{file}:{n} looks like a Squid line"
        );
        assert!(
            line.starts_with(b"Unmatched! ") || line.starts_with(b"localhost - - ["),
            "{file}:{n}"
        );
    }
    assert_eq!((parsed, rejected.len()), (484, 17));
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// A Squid line's values, and the line printed from them.
#[derive(Debug, Clone)]
struct SquidCase {
    secs: u64,
    millis: u64,
    elapsed: Option<u64>,
    client: String,
    code: String,
    status: Option<u16>,
    bytes: Option<u64>,
    method: String,
    url: String,
    user: Option<String>,
    hier: String,
    peer: String,
    mime: String,
    extra: String,
    seps: Vec<String>,
}

impl SquidCase {
    fn line(&self) -> String {
        let num = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let fields = [
            format!("{}.{:03}", self.secs, self.millis),
            format!("{:>6}", num(self.elapsed)),
            self.client.clone(),
            format!(
                "{}/{}",
                self.code,
                self.status.map_or("000".to_owned(), |s| format!("{s:03}"))
            ),
            num(self.bytes),
            self.method.clone(),
            self.url.clone(),
            self.user.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{}/{}", self.hier, self.peer),
            self.mime.clone(),
        ];
        let mut line = String::new();
        for (f, sep) in fields.iter().zip(&self.seps) {
            line.push_str(f);
            line.push_str(sep);
        }
        line.push_str(&self.extra);
        line
    }
}

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string())
}

fn ipv6() -> impl Strategy<Value = String> {
    any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string())
}

fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,60}"
}

fn squid_case() -> impl Strategy<Value = SquidCase> {
    (
        (
            0u64..253_402_300_800,
            0u64..1000,
            proptest::option::of(any::<u64>()),
        ),
        prop_oneof![ipv4(), ipv6(), "[a-z0-9.-]{1,30}"],
        ("[A-Z0-9_]{1,30}", proptest::option::of(100u16..=999)),
        proptest::option::of(any::<u64>()),
        ("[A-Z]{1,10}", token()),
        proptest::option::of(token().prop_filter("not -", |u| u != "-")),
        ("[A-Z0-9_]{1,20}", "[!-~]{0,40}", token()),
        // Trailing separators, or extra fields (log_mime_hdrs), or nothing.
        prop_oneof![Just(String::new()), " [!-~ ]{0,40}", "[ \t]{1,3}"],
        proptest::collection::vec("[ \t]{1,3}", 9..=9),
    )
        .prop_map(
            |(
                (secs, millis, elapsed),
                client,
                (code, status),
                bytes,
                (method, url),
                user,
                (hier, peer, mime),
                extra,
                mut seps,
            )| {
                seps.push(String::new());
                SquidCase {
                    secs,
                    millis,
                    elapsed,
                    client,
                    code,
                    status,
                    bytes,
                    method,
                    url,
                    user,
                    hier,
                    peer,
                    mime,
                    extra,
                    seps,
                }
            },
        )
}

/// The JSON values of a gateway line, and a line printed from them with random aliases,
/// random destination fields and a random key order.
fn json_case() -> impl Strategy<Value = (ProxyRecord<'static>, String)> {
    let key = |keys: &'static [&'static str]| proptest::sample::select(keys);
    // The time as RFC 3339 (any µs), epoch seconds (below 1e11) or epoch milliseconds (from
    // 1e11 to 1e14): each form's magnitude range, so the expected value is unambiguous.
    let time = prop_oneof![
        (0i64..253_402_300_800_000_000).prop_map(|t| (
            t,
            serde_json::Value::String(logveil_model::time::format_rfc3339(t))
        )),
        (0i64..100_000_000_000).prop_map(|s| (s * 1_000_000, s.into())),
        (100_000_000_000i64..100_000_000_000_000).prop_map(|ms| (ms * 1_000, ms.into())),
    ];
    (
        (time, key(&JSON_TIME_KEYS)),
        (prop_oneof![ipv4(), ipv6()], key(&JSON_CLIENT_KEYS)),
        (
            proptest::option::of("[ -~\u{e9}\u{1F600}]{1,20}"),
            key(&JSON_ACCOUNT_KEYS),
        ),
        (proptest::option::of(100u16..=999), key(&JSON_STATUS_KEYS)),
        (proptest::option::of(any::<u64>()), key(&JSON_BYTES_IN_KEYS)),
        (
            proptest::option::of(any::<u64>()),
            key(&JSON_BYTES_OUT_KEYS),
        ),
        (proptest::option::of(any::<u64>()), key(&JSON_DURATION_KEYS)),
        proptest::collection::vec(("[a-z_]{1,12}", "[ -~]{0,30}"), 0..4),
    )
        .prop_flat_map(
            |(
                ((ts, ts_json), ts_key),
                (client, client_key),
                (acct, acct_key),
                (status, status_key),
                (bin, bin_key),
                (bout, bout_key),
                (dur, dur_key),
                extra,
            )| {
                let acct = acct.filter(|a| a != "-");
                let opt = |v: Option<u64>| v.map_or(serde_json::Value::Null, Into::into);
                let mut pairs: Vec<(String, serde_json::Value)> = vec![
                    (ts_key.to_owned(), ts_json),
                    (client_key.to_owned(), client.clone().into()),
                    (
                        acct_key.to_owned(),
                        acct.clone().map_or(serde_json::Value::Null, Into::into),
                    ),
                    (status_key.to_owned(), opt(status.map(u64::from))),
                    (bin_key.to_owned(), opt(bin)),
                    (bout_key.to_owned(), opt(bout)),
                    (dur_key.to_owned(), opt(dur)),
                    ("dest_host".to_owned(), "canary-dest.example".into()),
                ];
                for (k, v) in extra {
                    if is_unknown_key(&k) {
                        pairs.push((k, v.into()));
                    }
                }
                let record = ProxyRecord {
                    ts_micros: ts,
                    client: Cow::Owned(client.into_bytes()),
                    account: acct
                        .filter(|a| !a.is_empty())
                        .map(|a| Cow::Owned(a.into_bytes())),
                    status,
                    bytes_in: bin,
                    bytes_out: bout,
                    duration_ms: dur,
                };
                (Just(record), Just(pairs).prop_shuffle())
            },
        )
        .prop_map(|(record, pairs)| {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect();
            (record, format!("{{{}}}", body.join(",")))
        })
}

/// True if `k` is none of the keys the parser reads (so an extra field does not collide).
fn is_unknown_key(k: &str) -> bool {
    ![
        &JSON_TIME_KEYS[..],
        &JSON_CLIENT_KEYS,
        &JSON_ACCOUNT_KEYS,
        &JSON_STATUS_KEYS,
        &JSON_BYTES_IN_KEYS,
        &JSON_BYTES_OUT_KEYS,
        &JSON_DURATION_KEYS,
    ]
    .iter()
    .any(|ks| ks.contains(&k))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..400)) {
        for format in [ProxyFormat::Squid, ProxyFormat::Json] {
            if let Err(e) = parse_proxy(&line, format) {
                prop_assert!(e.column <= line.len());
            }
        }
    }

    #[test]
    fn squid_like_and_json_like_never_panic(
        fields in proptest::collection::vec("[0-9.A-Z_/ -]{0,12}|[!-~]{0,20}", 0..14),
        js in "[{}\\[\\]\":,0-9a-z_\\\\. e+-]{0,120}",
    ) {
        let line = fields.join(" ");
        if let Err(e) = parse_squid(line.as_bytes()) {
            prop_assert!(e.column <= line.len());
        }
        if let Err(e) = parse_proxy_json(js.as_bytes()) {
            prop_assert!(e.column <= js.len());
        }
    }

    #[test]
    fn squid_lines_round_trip(case in squid_case()) {
        let line = case.line();
        let r = parse_squid(line.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(r.ts_micros, (case.secs * 1_000_000 + case.millis * 1000) as i64);
        prop_assert_eq!(r.duration_ms, case.elapsed);
        prop_assert_eq!(r.client.as_ref(), case.client.as_bytes());
        prop_assert_eq!(r.status, case.status);
        prop_assert_eq!(r.bytes_out, case.bytes);
        prop_assert_eq!(r.bytes_in, None);
        prop_assert_eq!(r.account.as_deref(), case.user.as_deref().map(str::as_bytes));
    }

    #[test]
    fn json_lines_round_trip((want, line) in json_case()) {
        let r = parse_proxy_json(line.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(r, want, "{}", line);
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput (informal, not a timing assertion)
// ---------------------------------------------------------------------------------------------

/// `cargo test --release -p logveil-parse --test proxy_conformance -- --ignored --nocapture`
#[test]
#[ignore = "informal throughput figure; run in release with --ignored --nocapture"]
fn throughput() {
    let n = 200_000;
    let squid_lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{}.{:03} {:>6} 203.0.113.{} TCP_MISS/200 {} GET http://host{}.example/path/{}?q={} user{} HIER_DIRECT/198.51.100.{} text/html",
                1_764_331_200 + i,
                i % 1000,
                i % 5000,
                i % 256,
                i * 7,
                i % 100,
                i,
                i,
                i % 50,
                i % 256
            )
        })
        .collect();
    let json_lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"ts":"2026-11-28T12:{:02}:{:02}.123Z","account_id":"acct-{}","client_ip":"203.0.113.{}","method":"CONNECT","dest_host":"host{}.example","dest_port":443,"url":null,"status":200,"bytes_in":{},"bytes_out":{},"duration_ms":{},"headers":{{"ua":"Mozilla/5.0 (X11; Linux x86_64)","x":[1,2,3]}}}}"#,
                i / 60 % 60,
                i % 60,
                i % 50,
                i % 256,
                i % 100,
                i * 3,
                i * 11,
                i % 5000
            )
        })
        .collect();
    for (name, format, data) in [
        ("squid", ProxyFormat::Squid, &squid_lines),
        ("json", ProxyFormat::Json, &json_lines),
    ] {
        let bytes: usize = data.iter().map(String::len).sum();
        let start = std::time::Instant::now();
        let mut ok = 0u64;
        for l in data.iter() {
            ok += u64::from(parse_proxy(l.as_bytes(), format).is_ok());
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(ok, n);
        println!(
            "{name}: {:.2} M lines/s, {:.0} MB/s ({} lines, {} bytes/line avg)",
            n as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6,
            n,
            bytes / n as usize
        );
    }
}

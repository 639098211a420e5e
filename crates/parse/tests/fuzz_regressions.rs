//! Regression tests for inputs found by the fuzz targets in `crates/parse/fuzz` (minimised by
//! hand or with `cargo fuzz tmin`). Inputs are synthetic byte strings, never corpus lines.

use logveil_model::QuarantineReason;
use logveil_parse::applog::{AppFormat, AppMapping, AppParser};
use logveil_parse::{ProxyFormat, parse_proxy, parse_session};

/// Found by `session_json`: invalid UTF-8 inside a string value that the parser skips (an
/// unknown key) was accepted, although the line is not JSON (RFC 8259 §8.1: UTF-8) and the
/// module promises `BadJson` for invalid JSON. serde_json does not validate UTF-8 in strings
/// it ignores (`IgnoredAny`).
#[test]
fn session_rejects_invalid_utf8_in_skipped_value() {
    let line = b"{\"ts\":\"2026-11-28T10:15:30Z\",\"event\":\"e\",\"app\":\"a\",\"x\":\"\xff\"}";
    let e = parse_session(line).expect_err("invalid UTF-8 accepted");
    assert_eq!(e.reason, QuarantineReason::BadJson);
}

/// Same as above, in a key that names a proxy destination (also skipped unread).
#[test]
fn session_rejects_invalid_utf8_in_destination_value() {
    let line =
        b"{\"ts\":\"2026-11-28T10:15:30Z\",\"event\":\"e\",\"app\":\"a\",\"dest_host\":\"\xff\"}";
    let e = parse_session(line).expect_err("invalid UTF-8 accepted");
    assert_eq!(e.reason, QuarantineReason::BadJson);
}

/// The applog module documents invalid UTF-8 as a JSON error; in an unmapped (skipped) field
/// it must not be accepted either.
#[test]
fn applog_json_rejects_invalid_utf8_in_unmapped_value() {
    let mut p = AppParser::new(AppMapping::default(), AppFormat::Json);
    let line = b"{\"ts\":\"2026-01-01T00:00:00Z\",\"x\":\"\xff\"}";
    let e = p.parse(line).expect_err("invalid UTF-8 accepted");
    assert_eq!(e.reason, QuarantineReason::BadJson);
}

/// The proxy JSON parser skips destination fields with `IgnoredAny`; invalid UTF-8 there
/// makes the line invalid JSON, which the module documents as `BadJson`.
#[test]
fn proxy_json_rejects_invalid_utf8_in_skipped_value() {
    let line =
        b"{\"ts\":\"2026-11-28T12:00:00Z\",\"client_ip\":\"203.0.113.7\",\"dest_host\":\"\xff\"}";
    let e = parse_proxy(line, ProxyFormat::Json).expect_err("invalid UTF-8 accepted");
    assert_eq!(e.reason, QuarantineReason::BadJson);
}

//! `parse_session` on the whole input: never panics; on success the line is valid JSON whose
//! object (read independently with `serde_json::Value`) holds exactly the values returned,
//! borrowed strings point into the line and `Debug` does not echo it; on failure the column
//! is inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_model::schema::MARKETING_FIELDS;
use logveil_model::time::parse_rfc3339;
use logveil_parse::{is_destination_key, parse_session};
use logveil_parse_fuzz::{assert_cow_str, assert_no_leak, check_err, check_ts, json_value};
use serde_json::Value;

const KNOWN: [&str; 14] = [
    "ts",
    "event",
    "app",
    "session_id",
    "device_id",
    "account_id",
    "ip",
    "user_agent",
    "page",
    "referrer",
    "duration_ms",
    "app_version",
    "locale",
    "consent",
];

fuzz_target!(|line: &[u8]| {
    let ev = match parse_session(line) {
        Ok(ev) => ev,
        Err(e) => {
            check_err(line, &e);
            return;
        }
    };
    check_ts(ev.ts_micros);
    assert_no_leak(line, &format!("{ev:?}"), "SessionEvent");

    // Accepted lines are UTF-8 (tests/fuzz_regressions.rs).
    assert!(std::str::from_utf8(line).is_ok(), "accepted a line that is not UTF-8");
    // Duplicate known keys are rejected, so serde_json's last-wins map sees the same values.
    let Some(v) = json_value(line) else {
        return;
    };
    let obj = v.as_object().expect("accepted line is not a JSON object");
    let ts = obj
        .get("ts")
        .and_then(Value::as_str)
        .expect("ts not a string");
    assert_eq!(parse_rfc3339(ts.as_bytes()), Some(ev.ts_micros), "ts");
    assert_eq!(
        obj.get("event").and_then(Value::as_str),
        Some(&*ev.event),
        "event"
    );
    assert_eq!(
        obj.get("app").and_then(Value::as_str),
        Some(&*ev.app),
        "app"
    );
    assert_cow_str(line, &ev.event, "event");
    assert_cow_str(line, &ev.app, "app");
    let optional = [
        ("session_id", &ev.session_id),
        ("device_id", &ev.device_id),
        ("account_id", &ev.account_id),
        ("ip", &ev.ip),
        ("user_agent", &ev.user_agent),
        ("page", &ev.page),
        ("referrer", &ev.referrer),
        ("app_version", &ev.app_version),
        ("locale", &ev.locale),
    ];
    let marketing = MARKETING_FIELDS.iter().zip(ev.marketing.iter());
    for (key, got) in optional.into_iter().chain(marketing.map(|(k, m)| (*k, m))) {
        let want = obj.get(key).and_then(Value::as_str);
        assert_eq!(got.as_deref(), want, "{key}");
        if let Some(g) = got {
            assert_cow_str(line, g, key);
        }
    }
    assert_eq!(
        ev.duration_ms,
        obj.get("duration_ms").and_then(Value::as_u64),
        "duration_ms"
    );
    match obj.get("consent").filter(|c| !c.is_null()) {
        None => assert_eq!(ev.consent, None, "consent"),
        Some(c) => {
            let got = ev.consent.expect("consent object not returned");
            let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
            assert_eq!(got.necessary, flag("necessary"), "consent.necessary");
            assert_eq!(got.preferences, flag("preferences"), "consent.preferences");
            assert_eq!(got.statistics, flag("statistics"), "consent.statistics");
            assert_eq!(got.marketing, flag("marketing"), "consent.marketing");
        }
    }
    let mut destination = false;
    let mut unknown = 0u32;
    for k in obj.keys() {
        if KNOWN.contains(&k.as_str()) || MARKETING_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if is_destination_key(k) {
            destination = true;
        } else {
            unknown += 1;
        }
    }
    assert_eq!(ev.destination_field, destination, "destination_field");
    // Repeated unknown keys are counted per occurrence; the map keeps one of each.
    assert!(ev.unknown_fields >= unknown, "unknown_fields");
});

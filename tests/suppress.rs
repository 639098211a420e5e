//! End-to-end tests of the suppression list (privacy policy §7.4 objection, §7.7 restriction):
//! `logveil subject object|restrict|lift|suppressions`, and ingest dropping the listed
//! subjects' events (counted under their own rules) across key rotations, with no raw
//! identifier in the list or the audit log.

use std::path::{Path, PathBuf};

mod common;
use common::*;

const OBJECTOR_IP: &str = "198.51.100.23";
const OBJECTOR_DEVICE: &str = "dev-objector-7f3a9c";
const RESTRICTED_ACCOUNT: &str = "acct-restricted-5521";

fn access_lines() -> String {
    let mut s = String::new();
    for (ip, day) in [
        (OBJECTOR_IP, "15/Nov/2026"),
        ("203.0.113.9", "15/Nov/2026"),
        // The objector's address written as IPv4-mapped IPv6, and after a key rotation.
        ("::ffff:198.51.100.23", "02/Dec/2026"),
        ("203.0.113.9", "02/Dec/2026"),
    ] {
        s.push_str(&format!(
            "{ip} - - [{day}:10:00:00 +0000] \"GET /dashboard HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
        ));
    }
    s
}

fn session_lines() -> String {
    let consent =
        r#""consent":{"necessary":true,"preferences":true,"statistics":true,"marketing":false}"#;
    let ev = |device: &str, account: &str, ip: &str| {
        format!(
            r#"{{"ts":"2026-11-27T10:00:00Z","event":"page_view","app":"web","device_id":"{device}","account_id":"{account}","ip":"{ip}","page":"/dashboard",{consent}}}"#
        ) + "\n"
    };
    [
        ev(OBJECTOR_DEVICE, "acct-1", "192.0.2.10"),
        ev("dev-other-1", RESTRICTED_ACCOUNT, "192.0.2.11"),
        ev("dev-other-2", "acct-2", "192.0.2.12"),
    ]
    .concat()
}

fn ingest(keys: &Path, format: &str, input: &Path, out: &Path) -> serde_json::Value {
    let o = ok(bin()
        .args(["ingest", "--format", format, "--summary-json", "--keys"])
        .arg(keys)
        // The events span November and December: judge them as of December.
        .args(["--now", "2026-12-03T00:00:00Z"])
        .arg("--out")
        .arg(out)
        .arg(input));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    ok(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
        "--from",
        "2026-12-01",
        "--now",
        "2026-11-20T00:00:00Z",
    ]));
    let access = dir.path().join("access.log");
    std::fs::write(&access, access_lines()).unwrap();
    let sessions = dir.path().join("sessions.jsonl");
    std::fs::write(&sessions, session_lines()).unwrap();
    let out = dir.path().join("out");
    (dir, keys, access, sessions, out)
}

fn suppress(cmd: &str, keys: &Path, out: &Path, request: &str, ids: &[&str]) {
    ok(bin()
        .args(["subject", cmd, "--keys"])
        .arg(keys)
        .arg("--root")
        .arg(out)
        .args(["--request-id", request])
        .args(ids));
}

#[test]
fn listed_subjects_are_dropped_and_counted_across_epochs() {
    let (dir, keys, access, sessions, out) = setup();
    suppress(
        "object",
        &keys,
        &out,
        "DSR-1",
        &["--ip", OBJECTOR_IP, "--device-id", OBJECTOR_DEVICE],
    );
    suppress(
        "restrict",
        &keys,
        &out,
        "DSR-2",
        &["--account-id", RESTRICTED_ACCOUNT],
    );

    let s = ingest(&keys, "combined", &access, &out);
    assert_eq!(s["records_written"]["access"], 2, "{s}");
    assert_eq!(s["dropped"]["objection"], 2, "both epochs: {s}");
    assert_eq!(s["rules"]["access"]["objection/7.4"], 2, "{s}");

    let s = ingest(&keys, "session-json", &sessions, &out);
    assert_eq!(s["records_written"]["session"], 1, "{s}");
    assert_eq!(s["dropped"]["objection"], 1, "{s}");
    assert_eq!(s["dropped"]["restriction"], 1, "{s}");
    assert_eq!(s["rules"]["session"]["restriction/7.7"], 1, "{s}");

    // Nothing anywhere holds the raw identifiers, including the list and the audit log.
    for (p, t) in all_output_text(&out) {
        for raw in [OBJECTOR_IP, OBJECTOR_DEVICE, RESTRICTED_ACCOUNT] {
            assert!(!t.contains(raw), "{raw} in {}", p.display());
        }
    }
    let audit = text(&std::fs::read(out.join("_retention/audit.jsonl")).unwrap());
    assert_eq!(audit.matches("suppression_added").count(), 2);

    let l = ok(bin()
        .args(["subject", "suppressions", "--json", "--root"])
        .arg(&out));
    let v: serde_json::Value = serde_json::from_slice(&l.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["ips"], 1);

    // Lifted: the subject's events are ingested again.
    ok(bin()
        .args(["subject", "lift", "--request-id", "DSR-1", "--root"])
        .arg(&out));
    let out2 = dir.path().join("out2");
    std::fs::create_dir_all(out2.join("_privacy")).unwrap();
    std::fs::copy(
        out.join("_privacy/suppression.json"),
        out2.join("_privacy/suppression.json"),
    )
    .unwrap();
    let s = ingest(&keys, "combined", &access, &out2);
    assert_eq!(s["records_written"]["access"], 4, "{s}");
    assert!(s["dropped"]["objection"].is_null(), "{s}");
}

#[test]
fn bad_requests_are_refused_without_echoing_identifiers() {
    let (_dir, keys, _, _, out) = setup();
    let o = run(bin()
        .args(["subject", "object", "--keys"])
        .arg(&keys)
        .arg("--root")
        .arg(&out)
        .args(["--request-id", "DSR-9", "--ip", "not-an-ip-secret-77"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !text(&o.stderr).contains("secret-77"),
        "{}",
        text(&o.stderr)
    );
    let o = run(bin()
        .args(["subject", "object", "--keys"])
        .arg(&keys)
        .arg("--root")
        .arg(&out)
        .args(["--request-id", "DSR-9"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(bin()
        .args(["subject", "lift", "--request-id", "nope", "--root"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(2));
    // A damaged list stops ingest instead of being ignored.
    std::fs::create_dir_all(out.join("_privacy")).unwrap();
    std::fs::write(out.join("_privacy/suppression.json"), "{").unwrap();
    let input = out.join("../a.log");
    std::fs::write(&input, access_lines()).unwrap();
    let o = run(bin()
        .args(["ingest", "--format", "combined", "--keys"])
        .arg(&keys)
        .arg("--out")
        .arg(&out)
        .arg(&input));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("suppression"),
        "{}",
        text(&o.stderr)
    );
}

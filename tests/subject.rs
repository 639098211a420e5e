//! `logveil subject find`: a subject planted across datasets and two key epochs is found
//! exactly (each dataset's rows and partitions), whether named by IP address, device id or
//! account id; other subjects are not counted; a shredded epoch is reported as anonymised
//! and no longer searched; no raw identifier reaches the output; pseudonym columns carry
//! the bloom filters that let a lookup skip row groups.
#![cfg(feature = "query")]

mod common;

use std::path::{Path, PathBuf};

use common::*;

const IP: &str = "203.0.113.77";
const DEVICE: &str = "dev-canary-4242";
const ACCOUNT: &str = "acct-canary-77";
const NOW: &str = "2026-11-28T12:00:00Z";

fn access(hour: u32, minute: u32, ip: &str) -> String {
    format!(
        "{ip} - - [27/Nov/2026:{hour:02}:{minute:02}:00 +0000] \"GET /dashboard HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0\"\n"
    )
}

fn session(hour: u32, minute: u32, device: &str, account: &str, ip: &str) -> String {
    format!(
        "{{\"ts\":\"2026-11-27T{hour:02}:{minute:02}:00.000Z\",\"event\":\"page_view\",\"session_id\":\"s-{device}-{hour}\",\"device_id\":\"{device}\",\"account_id\":\"{account}\",\"ip\":\"{ip}\",\"page\":\"/dashboard\",\"app\":\"web\",\"consent\":{{\"necessary\":true,\"statistics\":true}}}}\n"
    )
}

fn syslog(hour: u32, minute: u32, ip: &str) -> String {
    format!(
        "<38>Nov 27 {hour:02}:{minute:02}:00 gw sshd[811]: Failed password for root from {ip} port 52011 ssh2\n"
    )
}

/// Two key epochs (the second from 12:00 on 27 November); the subject in hours 06 and 18
/// of access (3 + 2 requests), session (2 + 1 events: IP, device and account) and syslog
/// (1 message naming the address, in hour 18); other people everywhere.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    ok(bin().args(["keys", "rotate", "--keys"]).arg(&keys).args([
        "--from",
        "2026-11-27T12:00:00Z",
        "--now",
        "2026-11-20T00:00:00Z",
    ]));
    let mut a = String::new();
    let mut s = String::new();
    let mut l = String::new();
    for (hour, mine_access, mine_session) in [(6, 3, 2), (18, 2, 1)] {
        for i in 0..40 {
            a += &access(hour, i % 60, &format!("198.51.100.{}", i + 1));
            s += &session(
                hour,
                i % 60,
                &format!("dev-{i}"),
                &format!("acct-{i}"),
                &format!("192.0.2.{}", i + 1),
            );
            l += &syslog(hour, i % 60, &format!("198.51.100.{}", i + 1));
        }
        for i in 0..mine_access {
            a += &access(hour, 50 + i, IP);
        }
        for i in 0..mine_session {
            s += &session(hour, 50 + i, DEVICE, ACCOUNT, IP);
        }
    }
    l += &syslog(18, 59, IP);
    let root = dir.path().join("data");
    for (name, body, format) in [
        ("a.log", a, "combined"),
        ("s.jsonl", s, "session-json"),
        ("l.log", l, "syslog"),
    ] {
        ingest(dir.path(), &keys, &root, name, &body, format);
    }
    (dir, keys, root)
}

fn ingest(dir: &Path, keys: &Path, root: &Path, name: &str, body: &str, format: &str) {
    let input = dir.join(name);
    std::fs::write(&input, body).unwrap();
    ok(bin()
        .args(["ingest", "--format", format, "--no-progress", "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(root)
        .arg(&input));
}

fn find(root: &Path, keys: &Path, args: &[&str]) -> serde_json::Value {
    let o = ok(bin()
        .args(["subject", "find", "--json", "--now", NOW, "--keys"])
        .arg(keys)
        .arg("--root")
        .arg(root)
        .args(args));
    for out in [text(&o.stdout), text(&o.stderr)] {
        for raw in [IP, DEVICE, ACCOUNT] {
            assert!(!out.contains(raw), "{raw} in the output of a find: {out}");
        }
    }
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A dataset's name, its rows and its partitions (`dt/hour`, rows).
type Found = (String, u64, Vec<(String, u64)>);

fn by_dataset(report: &serde_json::Value) -> Vec<Found> {
    report["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let parts = d["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        format!(
                            "{}/{:02}",
                            p["dt"].as_str().unwrap(),
                            p["hour"].as_u64().unwrap()
                        ),
                        p["rows"].as_u64().unwrap(),
                    )
                })
                .collect();
            (
                d["dataset"].as_str().unwrap().to_string(),
                d["rows"].as_u64().unwrap(),
                parts,
            )
        })
        .collect()
}

#[test]
fn a_subject_is_found_in_every_dataset_and_epoch() {
    let (_dir, keys, root) = setup();
    let r = find(
        &root,
        &keys,
        &[
            "--ip",
            IP,
            "--device-id",
            DEVICE,
            "--account-id",
            ACCOUNT,
            "--request-id",
            "dsr-1",
        ],
    );
    let h = |hour: &str, n: u64| (format!("2026-11-27/{hour}"), n);
    assert_eq!(
        by_dataset(&r),
        vec![
            ("access".to_string(), 5, vec![h("06", 3), h("18", 2)]),
            ("session".to_string(), 3, vec![h("06", 2), h("18", 1)]),
            ("syslog".to_string(), 1, vec![h("18", 1)]),
        ],
        "{r}"
    );
    assert_eq!(r["rows"], 9);
    assert_eq!(r["request_id"], "dsr-1");
    assert_eq!(r["key_epochs_searched"].as_array().unwrap().len(), 2);
    assert!(r["not_searched"].to_string().contains("_quarantine"), "{r}");

    // Each identifier alone finds its own rows: the device and the account only in session.
    let by = |args: &[&str]| {
        by_dataset(&find(&root, &keys, args))
            .into_iter()
            .map(|(d, n, _)| (d, n))
            .collect::<Vec<_>>()
    };
    let s = |a: u64, se: u64, sy: u64| {
        vec![
            ("access".to_string(), a),
            ("session".to_string(), se),
            ("syslog".to_string(), sy),
        ]
    };
    // Ids that are not UUIDs are looked for in columns only (the scrubber pseudonymises
    // UUIDs in text, nothing else that names a device or an account).
    let one = |d: &str, n: u64| (d.to_string(), n);
    assert_eq!(by(&["--device-id", DEVICE]), vec![one("session", 3)]);
    assert_eq!(by(&["--account-id", ACCOUNT]), vec![one("session", 3)]);
    // Another person's address finds theirs only; an unknown subject finds nothing.
    assert_eq!(by(&["--ip", "198.51.100.1"]), s(2, 0, 2));
    assert_eq!(
        by(&["--ip", "2001:db8::99", "--device-id", "nobody"]),
        s(0, 0, 0)
    );
    // The time range narrows the search to whole days.
    assert_eq!(by(&["--ip", IP, "--from", "2026-11-28"]), s(0, 0, 0));
    assert_eq!(by(&["--ip", IP, "--to", "2026-11-27"]), s(5, 3, 1));
}

#[test]
fn a_shredded_epoch_is_anonymised_and_not_searched() {
    let (_dir, keys, root) = setup();
    ok(bin()
        .args(["keys", "shred", "--keys"])
        .arg(&keys)
        .args([
            "--before",
            "2026-11-27T12:00:00Z",
            "--now",
            "2026-11-28T12:00:00Z",
            "--root",
        ])
        .arg(&root));
    let r = find(&root, &keys, &["--ip", IP, "--device-id", DEVICE]);
    let h = |hour: &str, n: u64| (format!("2026-11-27/{hour}"), n);
    assert_eq!(
        by_dataset(&r),
        vec![
            ("access".to_string(), 2, vec![h("18", 2)]),
            ("session".to_string(), 1, vec![h("18", 1)]),
            ("syslog".to_string(), 1, vec![h("18", 1)]),
        ],
        "{r}"
    );
    assert_eq!(r["key_epochs_searched"].as_array().unwrap().len(), 1);
    assert_eq!(r["key_epochs_shredded"].as_array().unwrap().len(), 1);
}

#[test]
fn a_find_needs_an_identifier_and_never_echoes_one() {
    let (_dir, keys, root) = setup();
    let o = run(bin()
        .args(["subject", "find", "--keys"])
        .arg(&keys)
        .arg("--root")
        .arg(&root));
    assert_eq!(o.status.code(), Some(2));
    let o = run(bin()
        .args(["subject", "find", "--ip", "203.0.113.777", "--keys"])
        .arg(&keys)
        .arg("--root")
        .arg(&root));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !text(&o.stderr).contains("203.0.113.777"),
        "{}",
        text(&o.stderr)
    );
    // The text report names datasets and counts only.
    let o = ok(bin()
        .args(["subject", "find", "--now", NOW, "--ip", IP, "--keys"])
        .arg(&keys)
        .arg("--root")
        .arg(&root));
    let t = text(&o.stdout);
    assert!(
        t.contains("access") && t.contains("2026-11-27 06:00 to 2026-11-27 18:59 UTC"),
        "{t}"
    );
    assert!(!t.contains(IP), "{t}");
}

#[test]
fn pseudonym_columns_carry_bloom_filters() {
    let (_dir, _keys, root) = setup();
    use parquet::file::reader::{FileReader, SerializedFileReader};
    for (dataset, with_filter) in [
        ("access", &["ip_pseudonym"][..]),
        (
            "session",
            &["device_pseudonym", "account_pseudonym", "ip_pseudonym"][..],
        ),
    ] {
        let files: Vec<_> = files_under(&root.join(dataset))
            .into_iter()
            .filter(|p| is_parquet(p))
            .collect();
        assert!(!files.is_empty());
        for f in files {
            let r = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
            for rg in r.metadata().row_groups() {
                for c in rg.columns() {
                    let name = c.column_path().string();
                    assert_eq!(
                        c.bloom_filter_offset().is_some(),
                        with_filter.contains(&name.as_str()),
                        "{dataset}.{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_uuid_is_found_in_any_case_with_or_without_braces_and_in_messages() {
    let (dir, keys, root) = setup();
    let uuid = "6f1c2b9e-0c1a-4b7e-9a51-2f7d0b1c3e4a";
    // The app logs the device's UUID in lower case; a syslog message names it in upper case.
    let s = session(8, 1, uuid, "acct-other", "192.0.2.200")
        + &session(8, 2, uuid, "acct-other", "192.0.2.200");
    ingest(dir.path(), &keys, &root, "s2.jsonl", &s, "session-json");
    let l = format!(
        "<38>Nov 27 08:03:00 gw app[9]: session opened for device {}\n",
        uuid.to_ascii_uppercase()
    );
    ingest(dir.path(), &keys, &root, "l2.log", &l, "syslog");
    let braced = format!("{{{}}}", uuid.to_ascii_uppercase());
    let r = find(&root, &keys, &["--device-id", &braced]);
    let n: Vec<(String, u64)> = by_dataset(&r).into_iter().map(|(d, n, _)| (d, n)).collect();
    assert_eq!(
        n,
        vec![("session".to_string(), 2), ("syslog".to_string(), 1)],
        "{r}"
    );
    // A UUID given as an account id is found where the scrubber wrote it (as `<id:P>`).
    let r = find(&root, &keys, &["--account-id", uuid]);
    let n: Vec<(String, u64)> = by_dataset(&r).into_iter().map(|(d, n, _)| (d, n)).collect();
    assert_eq!(
        n,
        vec![("session".to_string(), 0), ("syslog".to_string(), 1)],
        "{r}"
    );
    let raw = by_dataset(&r);
    assert!(!r.to_string().contains(uuid) && !format!("{raw:?}").contains(uuid));
}

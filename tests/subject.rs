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

// ---------------------------------------------------------------------------------------------
// Export, erasure and requests
// ---------------------------------------------------------------------------------------------

const ALL_IDS: [&str; 6] = ["--ip", IP, "--device-id", DEVICE, "--account-id", ACCOUNT];

fn subject_cmd(cmd: &str, root: &Path, keys: &Path) -> std::process::Command {
    let mut c = bin();
    c.env_remove("LOGVEIL_TEST_CRASH_AT")
        .args(["subject", cmd, "--now", NOW, "--keys"])
        .arg(keys)
        .arg("--root")
        .arg(root);
    c
}

/// No raw identifier in a command's output.
fn clean(o: &std::process::Output) {
    for out in [text(&o.stdout), text(&o.stderr)] {
        for raw in [IP, DEVICE, ACCOUNT] {
            assert!(!out.contains(raw), "{raw} in the output: {out}");
        }
    }
}

/// Every Parquet file under the root: (path below the root, BLAKE3, rows).
fn snapshot(root: &Path) -> std::collections::BTreeMap<String, (String, u64)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    files_under(root)
        .into_iter()
        .filter(|p| is_parquet(p) && !p.to_string_lossy().contains("_staging"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let rows = SerializedFileReader::new(std::fs::File::open(&p).unwrap())
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows() as u64;
            (
                p.strip_prefix(root).unwrap().to_string_lossy().into_owned(),
                (blake3::hash(&bytes).to_hex().to_string(), rows),
            )
        })
        .collect()
}

/// Every row of a dataset as CSV lines (sorted), through `logveil query`.
fn rows_csv(root: &Path, dataset: &str) -> Vec<String> {
    let o = ok(bin()
        .args(["query", "--format", "csv", "--now", NOW, "--root"])
        .arg(root)
        .arg(format!("SELECT * FROM {dataset}")));
    let mut lines: Vec<String> = text(&o.stdout).lines().skip(1).map(String::from).collect();
    lines.sort();
    lines
}

/// The subject alone in one more file (hour 10 of access): an erasure removes that file.
fn plant_a_file_of_the_subject_only(dir: &Path, keys: &Path, root: &Path) {
    let a = access(10, 1, IP) + &access(10, 2, IP);
    ingest(dir, keys, root, "mine.log", &a, "combined");
}

/// Every manifest lists exactly the Parquet files of its partition, with their rows, sizes
/// and checksums, and their sums.
fn manifests_match(root: &Path) {
    let files = snapshot(root);
    for m in files_under(root)
        .into_iter()
        .filter(|p| p.ends_with("_manifest.json"))
    {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        let dir = m
            .parent()
            .unwrap()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut listed = 0;
        let mut rows = 0;
        for f in v["files"].as_array().unwrap() {
            let path = format!("{dir}/{}", f["name"].as_str().unwrap());
            let (sum, n) = files
                .get(&path)
                .unwrap_or_else(|| panic!("{path} is listed, not there"));
            assert_eq!(f["blake3"].as_str().unwrap(), sum, "{path}");
            assert_eq!(f["rows"].as_u64().unwrap(), *n, "{path}");
            let size = std::fs::metadata(root.join(&path)).unwrap().len();
            assert_eq!(f["bytes"].as_u64().unwrap(), size, "{path}");
            listed += 1;
            rows += n;
        }
        assert_eq!(v["rows"].as_u64().unwrap(), rows, "{dir}");
        let present = files
            .keys()
            .filter(|p| p.starts_with(&format!("{dir}/")))
            .count();
        assert_eq!(present, listed, "{dir}: files not in the manifest");
    }
}

fn erase(root: &Path, keys: &Path, request: &str, ids: &[&str]) -> serde_json::Value {
    let o = ok(subject_cmd("erase", root, keys)
        .args(["--json", "--request-id", request])
        .args(ids));
    clean(&o);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn receipts(root: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut segs: Vec<PathBuf> = files_under(&root.join("_retention/receipts"));
    segs.sort();
    for s in segs {
        for l in std::fs::read_to_string(s).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

#[test]
fn an_export_holds_exactly_the_subjects_rows_with_a_cover_sheet() {
    let (dir, keys, root) = setup();
    let out = dir.path().join("export");
    let o = ok(subject_cmd("export", &root, &keys)
        .args(ALL_IDS)
        .args(["--request-id", "dsr-2", "--received", "2026-11-20"])
        .arg("--out")
        .arg(&out));
    clean(&o);
    let cover: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("cover.json")).unwrap()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "README.txt",
            "access.jsonl",
            "cover.json",
            "session.jsonl",
            "syslog.jsonl"
        ]
    );
    let lines = |f: &str| {
        std::fs::read_to_string(out.join(f))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        (
            lines("access.jsonl"),
            lines("session.jsonl"),
            lines("syslog.jsonl")
        ),
        (5, 3, 1)
    );
    let ds = cover["datasets"].as_array().unwrap();
    let facts: Vec<(String, u64, u64)> = ds
        .iter()
        .map(|d| {
            (
                d["dataset"].as_str().unwrap().to_string(),
                d["rows"].as_u64().unwrap(),
                d["retention_days"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        vec![
            ("access".to_string(), 5, 30),
            ("session".to_string(), 3, 90),
            ("syslog".to_string(), 1, 30)
        ],
        "{cover}"
    );
    assert_eq!(cover["request_id"], "dsr-2");
    assert_eq!(ds[0]["period"]["from"], "2026-11-27T06:00:00Z");
    assert_eq!(ds[0]["period"]["to"], "2026-11-27T19:00:00Z");
    assert_eq!(cover["key_epochs_searched"].as_array().unwrap().len(), 2);
    assert_eq!(cover["identifiers_searched"]["ip"], 1);
    assert!(cover["not_searched"].to_string().contains("_quarantine"));
    let readme = std::fs::read_to_string(out.join("README.txt")).unwrap();
    assert!(readme.contains("access (5 rows"), "{readme}");
    // Each exported access row is one of the subject's: their pseudonym, nobody else's.
    let access_rows = std::fs::read_to_string(out.join("access.jsonl")).unwrap();
    let pseudonyms: std::collections::BTreeSet<String> = access_rows
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ip_pseudonym"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(pseudonyms.len(), 2, "one per key epoch: {pseudonyms:?}");
    // No identifier anywhere in the export.
    for (p, t) in all_output_text(&out) {
        for raw in [IP, DEVICE, ACCOUNT] {
            assert!(!t.contains(raw), "{raw} in {}", p.display());
        }
    }
    // CSV and Parquet hold the same rows; an existing directory is never overwritten.
    for (format, file) in [("csv", "session.csv"), ("parquet", "session.parquet")] {
        let o2 = dir.path().join(format!("export-{format}"));
        ok(subject_cmd("export", &root, &keys)
            .args(ALL_IDS)
            .args(["--format", format])
            .arg("--out")
            .arg(&o2));
        let n = if format == "csv" {
            std::fs::read_to_string(o2.join(file))
                .unwrap()
                .lines()
                .count()
                - 1
        } else {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            SerializedFileReader::new(std::fs::File::open(o2.join(file)).unwrap())
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows() as usize
        };
        assert_eq!(n, 3, "{format}");
    }
    let o = run(subject_cmd("export", &root, &keys)
        .args(["--ip", IP])
        .arg("--out")
        .arg(&out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    // The request is on record, received on the 20th: due on 20 December.
    let o = ok(bin()
        .args(["subject", "requests", "--json", "--root"])
        .arg(&root));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["request_id"], "dsr-2", "{r}");
    assert_eq!(r[0]["received"], "2026-11-20T00:00:00Z");
    assert_eq!(r[0]["deadline"], "2026-12-20T00:00:00Z");
    assert_eq!(r[0]["status"], "answered");
}

#[test]
fn an_erasure_removes_exactly_the_subject_with_verified_receipts() {
    let (dir, keys, root) = setup();
    plant_a_file_of_the_subject_only(dir.path(), &keys, &root);
    let before = snapshot(&root);
    let csv_before: Vec<(&str, Vec<String>)> = ["access", "session", "syslog"]
        .into_iter()
        .map(|d| (d, rows_csv(&root, d)))
        .collect();
    let out = dir.path().join("mine");
    ok(subject_cmd("export", &root, &keys)
        .args(ALL_IDS)
        .args(["--format", "csv"])
        .arg("--out")
        .arg(&out));

    let r = erase(&root, &keys, "dsr-3", &ALL_IDS);
    assert_eq!(r["rows_removed"], 11, "{r}");
    assert_eq!(r["verified"], true);
    assert_eq!(r["resumed"], false);
    // A find sees nothing any more.
    let f = find(&root, &keys, &ALL_IDS);
    assert_eq!(f["rows"], 0, "{f}");

    // Every other row is still there, unchanged: before = after + what the export held.
    for (d, rows) in &csv_before {
        let mut after = rows_csv(&root, d);
        let exported = std::fs::read_to_string(out.join(format!("{d}.csv"))).unwrap();
        after.extend(exported.lines().skip(1).map(String::from));
        after.sort();
        assert_eq!(&after, rows, "{d}");
    }
    // Files without the subject are untouched; the subject's own file is gone.
    let after = snapshot(&root);
    let mut changed = 0;
    for (path, (sum, rows)) in &before {
        match after.get(path) {
            None => assert!(path.contains("hour=10"), "{path} removed"),
            Some((s, n)) if s == sum => assert_eq!(n, rows),
            Some((_, n)) => {
                changed += 1;
                assert!(n < rows, "{path}");
            }
        }
    }
    assert_eq!(changed, 5, "access 06 and 18, session 06 and 18, syslog 18");
    assert!(
        after
            .keys()
            .any(|p| p.starts_with("syslog") && p.contains("hour=06"))
    );
    // Manifests match the files again (rows, sizes, checksums).
    manifests_match(&root);

    // Receipts: one per partition and one for the request, in a chain that verifies.
    let all = receipts(&root);
    let per_partition: Vec<&serde_json::Value> = all
        .iter()
        .filter(|e| e["action"] == "subject_rows_erased")
        .collect();
    assert_eq!(per_partition.len(), 6);
    let summary = all.last().unwrap();
    assert_eq!(summary["action"], "subject_erasure");
    assert_eq!(summary["details"]["rows_removed"], 11);
    assert_eq!(summary["details"]["verified"], true);
    ok(bin().args(["retention", "verify", "--root"]).arg(&root));
    // Erasing again is a no-op with a receipt of its own.
    let r = erase(&root, &keys, "dsr-3", &ALL_IDS);
    assert_eq!(r["rows_removed"], 0, "{r}");
    assert_eq!(snapshot(&root), after);
    assert_eq!(receipts(&root).len(), all.len() + 1);
    // Nothing logveil wrote holds an identifier.
    for (p, t) in all_output_text(&root) {
        for raw in [IP, DEVICE, ACCOUNT] {
            assert!(!t.contains(raw), "{raw} in {}", p.display());
        }
    }
    let o = ok(bin()
        .args(["subject", "requests", "--json", "--root"])
        .arg(&root));
    let q: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q[0]["status"], "answered", "{q}");
}

#[test]
fn erasing_an_unknown_subject_changes_nothing_and_leaves_a_receipt() {
    let (_dir, keys, root) = setup();
    let before = snapshot(&root);
    let r = erase(
        &root,
        &keys,
        "dsr-4",
        &["--ip", "2001:db8::7", "--device-id", "nobody"],
    );
    assert_eq!(
        (r["rows_removed"].as_u64(), r["verified"].as_bool()),
        (Some(0), Some(true))
    );
    assert_eq!(snapshot(&root), before);
    let all = receipts(&root);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["details"]["request_id"], "dsr-4");
    assert_eq!(all[0]["details"]["rows_removed"], 0);
    // An erasure names its request.
    let o = run(subject_cmd("erase", &root, &keys).args(["--ip", IP]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_erasure_killed_at_any_step_converges() {
    let steps = [
        "journaled:1",
        "replaced:1",
        "replaced:3",
        "manifest_written:1",
        "manifest_written:4",
        "file_removed:1",
        "receipted:1",
    ];
    for step in steps {
        let (dir, keys, root) = setup();
        plant_a_file_of_the_subject_only(dir.path(), &keys, &root);
        let o = run(subject_cmd("erase", &root, &keys)
            .env("LOGVEIL_TEST_CRASH_AT", step)
            .args(["--json", "--request-id", "dsr-5"])
            .args(ALL_IDS));
        assert!(!o.status.success(), "{step}: did not crash");
        // Whatever is in view is whole: every file readable, every manifest's file there.
        for (path, _) in snapshot(&root) {
            assert!(!path.contains("erase-"), "{step}: {path}");
        }
        // Another request waits for the interrupted one.
        let o = run(subject_cmd("erase", &root, &keys).args([
            "--request-id",
            "dsr-6",
            "--ip",
            "192.0.2.1",
        ]));
        assert_eq!(o.status.code(), Some(1), "{step}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains("dsr-5"), "{}", text(&o.stderr));
        // The interrupted request is finished only with the identifiers it was for.
        let o = run(subject_cmd("erase", &root, &keys).args(["--request-id", "dsr-5", "--ip", IP]));
        assert_eq!(o.status.code(), Some(2), "{step}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("other identifiers"),
            "{}",
            text(&o.stderr)
        );
        // ... or as it was started, with --resume (no identifiers needed).
        let r = if step.starts_with("replaced") {
            let o = ok(bin()
                .args([
                    "subject", "erase", "--resume", "--json", "--now", NOW, "--root",
                ])
                .arg(&root));
            clean(&o);
            serde_json::from_slice(&o.stdout).unwrap()
        } else {
            erase(&root, &keys, "dsr-5", &ALL_IDS)
        };
        assert_eq!(r["resumed"], true, "{step}: {r}");
        assert_eq!(r["rows_removed"], 11, "{step}: {r}");
        assert_eq!(r["verified"], true, "{step}: {r}");
        assert_eq!(find(&root, &keys, &ALL_IDS)["rows"], 0, "{step}");
        manifests_match(&root);
        ok(bin().args(["retention", "verify", "--root"]).arg(&root));
        let all = receipts(&root);
        let summaries: Vec<_> = all
            .iter()
            .filter(|e| e["action"] == "subject_erasure")
            .collect();
        assert_eq!(summaries.len(), 1, "{step}: one receipt for the request");
        assert_eq!(summaries[0]["details"]["rows_removed"], 11, "{step}");
        assert!(
            files_under(&root)
                .iter()
                .all(|p| !p.to_string_lossy().contains("erase-")),
            "{step}: a staged file was left"
        );
        // The other request can run now.
        erase(&root, &keys, "dsr-6", &["--ip", "192.0.2.1"]);
    }
}

#[test]
fn a_legal_hold_turns_an_erasure_into_a_queued_restriction() {
    let (_dir, keys, root) = setup();
    let o = ok(bin()
        .args(["retention", "hold", "--root"])
        .arg(&root)
        .args([
            "--dataset",
            "access",
            "--from",
            "2026-11-27T18:00:00Z",
            "--to",
            "2026-11-27T19:00:00Z",
            "--reason",
            "claim 7",
            "--owner",
            "legal",
            "--now",
            NOW,
        ]));
    let hold = text(&o.stdout).trim().to_string();
    let r = erase(&root, &keys, "dsr-7", &ALL_IDS);
    assert_eq!(r["rows_removed"], 7, "everything but access 18: {r}");
    assert_eq!(r["held"][0]["partition"], "dt=2026-11-27/hour=18", "{r}");
    assert_eq!(r["held"][0]["rows"], 2);
    assert_eq!(r["verified"], true);
    let f = find(&root, &keys, &ALL_IDS);
    assert_eq!(f["rows"], 2, "{f}");
    // Restricted meanwhile: on the suppression list; the request is answered.
    let o = ok(bin()
        .args(["subject", "suppressions", "--json", "--root"])
        .arg(&root));
    assert!(text(&o.stdout).contains("dsr-7"), "{}", text(&o.stdout));
    let o = ok(bin()
        .args(["subject", "requests", "--json", "--root"])
        .arg(&root));
    assert!(
        text(&o.stdout).contains("erasure_queued"),
        "{}",
        text(&o.stdout)
    );
    // Nothing happens while the hold lasts; once released, the queue is carried out.
    let queued = |root: &Path| {
        ok(bin()
            .args([
                "subject", "erase", "--queued", "--json", "--now", NOW, "--root",
            ])
            .arg(root))
    };
    queued(&root);
    assert_eq!(find(&root, &keys, &ALL_IDS)["rows"], 2);
    ok(bin()
        .args(["retention", "release", "--root"])
        .arg(&root)
        .args(["--id", &hold, "--now", NOW]));
    let o = queued(&root);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["rows_removed"], 2, "{r}");
    assert_eq!(find(&root, &keys, &ALL_IDS)["rows"], 0);
    assert!(!root.join("_retention/erasures/queued/dsr-7.json").exists());
}

#[test]
fn app_rows_are_found_exported_and_erased_by_address_and_in_text() {
    let (dir, keys, root) = setup();
    let line = |minute: u32, ip: &str, message: &str| {
        format!(
            "{{\"time\": \"2026-11-27T09:{minute:02}:00Z\", \"level\": \"INFO\", \"message\": \"{message}\", \"client\": {{\"ip\": \"{ip}\", \"device_id\": \"c0ffee00-6d03-479d-8475-f9dcf981c3{minute:02}\"}}, \"http\": {{\"method\": \"GET\", \"path\": \"/api/v1/status\", \"status_code\": 200}}, \"trace_id\": \"t-{minute}\"}}\n"
        )
    };
    let mut body = String::new();
    for m in 0..3 {
        body += &line(m, &format!("192.0.2.{}", m + 10), "payment accepted");
    }
    body += &line(10, IP, "payment accepted");
    body += &line(11, IP, "login ok");
    // Someone else's event that names the subject's address in its text.
    body += &line(12, "192.0.2.50", &format!("blocked a retry from {IP}"));
    ingest(dir.path(), &keys, &root, "app.jsonl", &body, "json");

    let r = find(&root, &keys, &["--ip", IP]);
    let app = by_dataset(&r)
        .into_iter()
        .find(|(d, ..)| d == "app")
        .expect("app searched");
    assert_eq!(app.1, 3, "{r}");

    for format in ["csv", "json"] {
        let out = dir.path().join(format!("app-{format}"));
        let o = ok(subject_cmd("export", &root, &keys)
            .args(["--ip", IP, "--format", format])
            .arg("--out")
            .arg(&out));
        clean(&o);
        let file = if format == "csv" {
            "app.csv"
        } else {
            "app.jsonl"
        };
        let t = std::fs::read_to_string(out.join(file)).unwrap();
        let rows = t.lines().count() - usize::from(format == "csv");
        assert_eq!(rows, 3, "{format}: {t}");
        assert!(t.contains("attributes"), "{format}: {t}");
        assert!(!t.contains(IP), "{format}");
    }

    let before = rows_csv(&root, "app");
    let r = erase(&root, &keys, "dsr-8", &["--ip", IP]);
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(rows_csv(&root, "app").len(), before.len() - 3);
    assert_eq!(find(&root, &keys, &["--ip", IP])["rows"], 0);
    manifests_match(&root);
}

#[test]
fn a_file_changed_behind_logveils_back_is_left_and_reported() {
    let (_dir, keys, root) = setup();
    let manifest = root.join("access/dt=2026-11-27/hour=06/_manifest.json");
    let good = std::fs::read_to_string(&manifest).unwrap();
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let sum = v["files"][0]["blake3"].as_str().unwrap().to_string();
    std::fs::write(&manifest, good.replace(&sum, &"0".repeat(64))).unwrap();
    let o = run(subject_cmd("erase", &root, &keys)
        .args(["--json", "--request-id", "dsr-10"])
        .args(ALL_IDS));
    clean(&o);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verified"], false, "{r}");
    assert_eq!(
        r["not_erased"][0]["partition"], "dt=2026-11-27/hour=06",
        "{r}"
    );
    assert_eq!(r["rows_removed"], 6, "all but access 06: {r}");
    // The other partitions are erased and receipted; the request stays open.
    let f = find(&root, &keys, &ALL_IDS);
    assert_eq!(f["rows"], 3, "{f}");
    let o = ok(bin()
        .args(["subject", "requests", "--json", "--root"])
        .arg(&root));
    let q: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q[0]["status"], "open", "{q}");
    // Once the manifest is right again, the erasure completes.
    std::fs::write(&manifest, good).unwrap();
    let r = erase(&root, &keys, "dsr-10", &ALL_IDS);
    assert_eq!(
        (r["rows_removed"].as_u64(), r["verified"].as_bool()),
        (Some(3), Some(true))
    );
    manifests_match(&root);
}

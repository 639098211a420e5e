//! Object storage end to end: `logveil` writing to and sweeping an S3 bucket (moto's S3
//! server on 127.0.0.1:9000, started by `.ci/run`). The bucket is mirrored to a local
//! directory over plain HTTP, so the same checks as on local disk apply (rows, manifests,
//! canaries). Without the server the tests say so in one line and pass, unless
//! `LOGVEIL_REQUIRE_S3=1` (CI), where its absence fails them.

use std::path::Path;
use std::process::Command;

mod common;
use common::s3::*;
use common::*;

fn fixture(name: &str) -> std::path::PathBuf {
    workspace_root().join("fixtures").join(name)
}

/// Client addresses of the access fixture (the first field of each line).
fn fixture_ips() -> Vec<String> {
    let t = text(&std::fs::read(fixture("access.log")).unwrap());
    let mut ips: Vec<String> = t
        .lines()
        .filter_map(|l| l.split(' ').next())
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string)
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn ingest(root: &str, input: &Path, format: &str, dataset: Option<&str>) -> Command {
    let mut c = s3_bin();
    c.args(["ingest", "--dev-key", "--format", format, "--out", root]);
    if let Some(d) = dataset {
        c.args(["--dataset", d]);
    }
    c.arg(input);
    c
}

#[test]
fn ingest_writes_the_same_rows_to_s3_as_to_disk_and_leaks_nothing() {
    if !s3_available("ingest_writes_the_same_rows_to_s3_as_to_disk_and_leaks_nothing") {
        return;
    }
    let bucket = new_bucket("ingest");
    let root = format!("s3://{bucket}/lake");
    let out = ok(&mut ingest(&root, &fixture("access.log"), "combined", None));
    let stderr = text(&out.stderr);
    let local = tempfile::tempdir().unwrap();
    ok(bin()
        .args(["ingest", "--dev-key", "--format", "combined", "--out"])
        .arg(local.path())
        .arg(fixture("access.log")));
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    let lake = m.path().join("lake");
    assert!(parquet_rows(&lake, "access") > 0);
    assert_eq!(
        parquet_rows(&lake, "access"),
        parquet_rows(local.path(), "access")
    );
    // Same partitions, each with a manifest listing exactly its files.
    let parts = |root: &Path| -> Vec<String> {
        let mut v: Vec<String> = files_under(&root.join("access"))
            .iter()
            .filter(|p| p.ends_with("_manifest.json"))
            .map(|p| {
                p.parent()
                    .unwrap()
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(parts(&lake), parts(local.path()));
    for dir in parts(&lake) {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lake.join(&dir).join("_manifest.json")).unwrap())
                .unwrap();
        let listed: Vec<String> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        let mut present: Vec<String> = files_under(&lake.join(&dir))
            .iter()
            .filter(|p| is_parquet(p))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        present.sort();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort();
        assert_eq!(listed_sorted, present, "{dir}");
    }
    // Nothing staged or half-written is left in the bucket.
    for k in keys(&bucket) {
        assert!(!k.contains("_staging"), "{k}");
    }
    // No client address reaches the bucket or the output.
    let ips = fixture_ips();
    assert!(!ips.is_empty());
    for (p, t) in all_output_text(m.path()) {
        for ip in &ips {
            let leaked = t
                .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .any(|tok| tok == ip);
            assert!(!leaked, "{ip} in {}", p.display());
        }
    }
    for ip in &ips {
        assert!(!stderr.contains(ip.as_str()), "{ip} in stderr");
    }
}

#[test]
fn concurrent_writers_to_one_partition_keep_every_file_in_its_manifest() {
    if !s3_available("concurrent_writers_to_one_partition_keep_every_file_in_its_manifest") {
        return;
    }
    let bucket = new_bucket("concurrent");
    let root = format!("s3://{bucket}/lake");
    // Four processes append the same hours at once: every manifest update is a conditional
    // put, so none of them may lose another's files.
    let children: Vec<_> = (0..4)
        .map(|_| {
            ingest(&root, &fixture("access.log"), "combined", None)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let local = tempfile::tempdir().unwrap();
    ok(bin()
        .args(["ingest", "--dev-key", "--format", "combined", "--out"])
        .arg(local.path())
        .arg(fixture("access.log")));
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    let lake = m.path().join("lake");
    assert_eq!(
        parquet_rows(&lake, "access"),
        4 * parquet_rows(local.path(), "access")
    );
    let mut listed_rows = 0;
    let mut listed_files = 0;
    for p in files_under(&lake.join("access")) {
        if p.ends_with("_manifest.json") {
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            listed_rows += m["rows"].as_u64().unwrap();
            listed_files += m["files"].as_array().unwrap().len();
        }
    }
    let parquet: Vec<_> = files_under(&lake.join("access"))
        .into_iter()
        .filter(|p| is_parquet(p))
        .collect();
    assert_eq!(listed_files, parquet.len());
    assert_eq!(listed_rows, parquet_rows(&lake, "access"));
}

#[test]
fn retention_sweeps_verifies_and_holds_on_s3() {
    if !s3_available("retention_sweeps_verifies_and_holds_on_s3") {
        return;
    }
    let bucket = new_bucket("retention");
    let root = format!("s3://{bucket}/lake");
    ok(&mut ingest(&root, &fixture("access.log"), "combined", None));
    ok(&mut ingest(
        &root,
        &fixture("session.jsonl"),
        "session-json",
        None,
    ));
    // A hold on the sessions, recorded in the audit log (an object on S3).
    ok(s3_bin().args([
        "retention",
        "hold",
        "--root",
        &root,
        "--dataset",
        "session",
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-01",
        "--reason",
        "case 7",
        "--owner",
        "legal",
    ]));
    // Far enough ahead that the access rows (30 days) and sessions (90) have expired.
    let sweep = [
        "retention",
        "sweep",
        "--root",
        &root,
        "--now",
        "2027-06-01T00:00:00Z",
        "--allow-future-now",
        "--json",
    ];
    // The root's lease, held by a live process of another machine: the sweep waits for it
    // (refused, naming the holder); once it has ended, the sweep takes it over.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let lease = |expires_at_ms: i64| {
        let body = serde_json::json!({
            "format": "logveil-lease", "holder": "h-1", "host": "node-b", "pid": 4242,
            "machine": "another-boot/pid:[1]", "acquired_at_ms": now_ms - 1000,
            "expires_at_ms": expires_at_ms,
        });
        let (status, _) = http(
            "PUT",
            &format!("/{bucket}/lake/_retention/sweep.lock"),
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200);
    };
    lease(now_ms + 600_000);
    let o = run(s3_bin().args(sweep));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("node-b"), "{}", text(&o.stderr));
    lease(now_ms - 1);
    let out = ok(s3_bin().args(sweep));
    let (status, body) = http("GET", &format!("/{bucket}/lake/_retention/sweep.lock"), b"");
    assert_eq!(status, 200);
    let released: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        released["expires_at_ms"], 0,
        "the lease is released: {released}"
    );
    assert_ne!(released["host"], "node-b", "taken over");
    let report = text(&out.stdout);
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    let lake = m.path().join("lake");
    assert_eq!(parquet_rows(&lake, "access"), 0, "{report}");
    assert!(parquet_rows(&lake, "session") > 0, "held: {report}");
    assert!(
        files_under(&lake.join("_retention"))
            .iter()
            .any(|p| p.to_string_lossy().contains("receipts")),
        "deletion receipts in the bucket"
    );
    let out = ok(s3_bin().args(["retention", "verify", "--root", &root]));
    let verified = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!verified.to_lowercase().contains("broken"), "{verified}");
    let audit = std::fs::read_to_string(lake.join("_retention/audit.jsonl")).unwrap();
    assert!(audit.contains("hold_placed"), "{audit}");
    let out = ok(s3_bin().args(["retention", "status", "--root", &root, "--json"]));
    assert!(text(&out.stdout).contains("session"));
}

/// Every manifest under `lake/<dataset>` lists exactly the Parquet files beside it, with
/// their row counts.
fn manifests_match(lake: &Path, dataset: &str) {
    for m in files_under(&lake.join(dataset))
        .into_iter()
        .filter(|p| p.ends_with("_manifest.json"))
    {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        let dir = m.parent().unwrap();
        let mut listed: Vec<(String, u64)> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["rows"].as_u64().unwrap(),
                )
            })
            .collect();
        listed.sort();
        let mut present: Vec<(String, u64)> = files_under(dir)
            .iter()
            .filter(|p| is_parquet(p))
            .map(|p| {
                let rows = parquet::file::reader::SerializedFileReader::new(
                    std::fs::File::open(p).unwrap(),
                )
                .map(|r| {
                    parquet::file::reader::FileReader::metadata(&r)
                        .file_metadata()
                        .num_rows() as u64
                })
                .unwrap();
                (p.file_name().unwrap().to_string_lossy().into_owned(), rows)
            })
            .collect();
        present.sort();
        assert_eq!(listed, present, "{}", m.display());
    }
}

/// `logveil subject erase --json` of one address on an S3 root, aborted at `crash`
/// (`LOGVEIL_TEST_CRASH_AT`) if given.
fn erase_s3(root: &str, ip: &str, request: &str, crash: Option<&str>) -> std::process::Output {
    let mut c = s3_bin();
    c.args([
        "subject",
        "erase",
        "--dev-key",
        "--json",
        "--request-id",
        request,
    ])
    .args(["--root", root, "--ip", ip]);
    if let Some(step) = crash {
        c.env("LOGVEIL_TEST_CRASH_AT", step);
    }
    run(&mut c)
}

/// The fixture's address with the most lines.
fn busiest_ip() -> String {
    let t = text(&std::fs::read(fixture("access.log")).unwrap());
    fixture_ips()
        .into_iter()
        .max_by_key(|ip| {
            t.lines()
                .filter(|l| l.starts_with(&format!("{ip} ")))
                .count()
        })
        .unwrap()
}

/// The first column of the first row of CSV with a header.
fn first_number(csv: &str) -> u64 {
    let row = csv.lines().nth(1).unwrap_or_default();
    row.split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{csv}"))
}

/// `logveil query` and the data-subject requests on an S3 root give the answers they give on
/// disk. An erasure killed right after replacing its first file, then run again, removes
/// exactly the subject's rows: manifests stay true, receipts in the bucket verify, nothing
/// staged is left, and the address reaches neither the output nor the bucket.
#[cfg(feature = "query")]
#[test]
fn query_find_export_and_erase_work_on_s3() {
    if !s3_available("query_find_export_and_erase_work_on_s3") {
        return;
    }
    let bucket = new_bucket("dsr");
    let root = format!("s3://{bucket}/lake");
    ok(&mut ingest(&root, &fixture("access.log"), "combined", None));
    let local = tempfile::tempdir().unwrap();
    let local_root = local.path().display().to_string();
    ok(bin()
        .args(["ingest", "--dev-key", "--format", "combined", "--out"])
        .arg(local.path())
        .arg(fixture("access.log")));
    let sql = "SELECT count(*) AS n, count(DISTINCT ip_pseudonym) AS ips, min(dt) AS first, \
               max(hour) AS last FROM access";
    let query = |root: &str| {
        let o = ok(s3_bin().args(["query", "--format", "csv", "--root", root, sql]));
        text(&o.stdout)
    };
    let on_s3 = query(&root);
    assert_eq!(on_s3, query(&local_root));
    let total = first_number(&on_s3);
    assert!(total > 0, "{on_s3}");

    // The address with the most rows, found alike on S3 and on disk.
    let ip = busiest_ip();
    let find = |root: &str| -> serde_json::Value {
        let o = ok(s3_bin().args([
            "subject",
            "find",
            "--dev-key",
            "--json",
            "--root",
            root,
            "--ip",
            &ip,
        ]));
        assert!(!text(&o.stdout).contains(&ip) && !text(&o.stderr).contains(&ip));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let found = find(&root);
    let rows = found["rows"].as_u64().unwrap();
    assert!(rows > 1, "{found}");
    assert_eq!(found["rows"], find(&local_root)["rows"]);
    let out = tempfile::tempdir().unwrap();
    let o = ok(s3_bin()
        .args([
            "subject",
            "export",
            "--dev-key",
            "--root",
            &root,
            "--ip",
            &ip,
            "--out",
        ])
        .arg(out.path().join("export")));
    assert!(!text(&o.stderr).contains(&ip));
    let exported = std::fs::read_to_string(out.path().join("export/access.jsonl")).unwrap();
    assert_eq!(exported.lines().count() as u64, rows);

    // Killed (abort) right after its first file is replaced, then finished by a rerun.
    let erase = |crash: Option<&str>| erase_s3(&root, &ip, "dsr-s3", crash);
    let o = erase(Some("replaced:1"));
    assert!(!o.status.success(), "did not crash: {}", text(&o.stderr));
    let o = erase(None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(!stdout.contains(&ip) && !stderr.contains(&ip), "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["rows_removed"].as_u64(), Some(rows), "{r}");
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(find(&root)["rows"], 0);
    let after = query(&root);
    let left = first_number(&after);
    assert_eq!(left, total - rows, "{after}");
    ok(s3_bin().args(["retention", "verify", "--root", &root]));

    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    let lake = m.path().join("lake");
    manifests_match(&lake, "access");
    assert_eq!(parquet_rows(&lake, "access"), total - rows);
    for k in keys(&bucket) {
        assert!(!k.contains("_staging") && !k.contains("erase-"), "{k}");
        assert!(!k.contains("erasures/pending"), "{k}");
    }
    let receipts = all_output_text(&lake.join("_retention"))
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("receipts"))
        .map(|(_, t)| t)
        .collect::<String>();
    assert!(
        receipts.contains("subject_erasure"),
        "receipts in the bucket"
    );
    for (p, t) in all_output_text(m.path()) {
        let leaked = t
            .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
            .any(|tok| tok == ip);
        assert!(!leaked, "{ip} in {}", p.display());
    }
}

/// A pipeline with a rollup, run once against S3 and once against disk: the same rollup rows
/// (read back with `logveil query` from each), and after a sweep far ahead the raw rows are
/// gone from the bucket while the rollup stays.
#[cfg(feature = "query")]
#[test]
fn rollups_on_s3_match_disk_and_outlive_the_raw_rows() {
    if !s3_available("rollups_on_s3_match_disk_and_outlive_the_raw_rows") {
        return;
    }
    let bucket = new_bucket("rollup");
    let s3_root = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    let local_root = dir.path().join("data").display().to_string();
    let pipeline = |name: &str, root: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                r#"
[output]
root = "{root}"

[keys]
dev_key = true

[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = ["{log}"]
follow = true

[rollups.pages]
dataset = "access"
window = "day"
group_by = ["path", "status_class"]
subject = "ip_pseudonym"
k = 2
retention_days = 400
"#,
                log = fixture("access.log").display(),
            ),
        )
        .unwrap();
        p
    };
    for (name, root) in [("s3.toml", &s3_root), ("local.toml", &local_root)] {
        let p = pipeline(name, root);
        ok(s3_bin().args(["run", "--once"]).arg(&p));
        ok(s3_bin().arg("rollup").arg(&p));
    }
    let rows = |root: &str| {
        let o = ok(s3_bin().args([
            "query",
            "--format",
            "csv",
            "--root",
            root,
            "SELECT * FROM pages ORDER BY window_start, path, status_class, other",
        ]));
        text(&o.stdout)
    };
    let on_s3 = rows(&s3_root);
    assert!(on_s3.lines().count() > 1, "rollup rows: {on_s3}");
    assert_eq!(on_s3, rows(&local_root));
    ok(s3_bin().args([
        "retention",
        "sweep",
        "--root",
        &s3_root,
        "--now",
        "2027-03-01T00:00:00Z",
        "--allow-future-now",
    ]));
    let count = |table: &str| {
        let o = ok(s3_bin().args([
            "query",
            "--format",
            "csv",
            "--root",
            &s3_root,
            "--now",
            "2027-03-01T00:00:00Z",
            &format!("SELECT count(*) FROM {table}"),
        ]));
        text(&o.stdout).lines().nth(1).unwrap().trim().to_string()
    };
    assert_eq!(count("access"), "0");
    assert_ne!(count("pages"), "0");
    assert!(keys(&bucket).iter().any(|k| k.starts_with("lake/pages/")));
    assert!(
        !keys(&bucket)
            .iter()
            .any(|k| k.starts_with("lake/access/dt="))
    );
}

/// A network source spools what it accepts to local disk until it is committed: with an
/// object-storage root (no local directory to default to) `spool_dir` must be set.
#[test]
fn a_network_source_with_an_s3_root_needs_a_spool_dir() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        "[output]\nroot = \"s3://logs/lake\"\n[keys]\ndev_key = true\n[[sources]]\nname = \"events\"\nformat = \"session-json\"\n[sources.http]\naddress = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let o = run(s3_bin()
        .current_dir(dir.path())
        .args(["run", "--no-progress"])
        .arg(&p));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("spool_dir"), "{}", text(&o.stderr));
    assert!(!dir.path().join("_spool").exists());
}

/// An erasure interrupted after journaling its first partition, while another instance then
/// commits more rows of the subject into the same partitions: the rerun erases those too and
/// keeps every other row of the new files, manifests agreeing with the files.
#[cfg(feature = "query")]
#[test]
fn an_erasure_resumed_after_other_commits_keeps_them() {
    if !s3_available("an_erasure_resumed_after_other_commits_keeps_them") {
        return;
    }
    let bucket = new_bucket("erase-commits");
    let root = format!("s3://{bucket}/lake");
    ok(&mut ingest(&root, &fixture("access.log"), "combined", None));
    let count = || {
        let o = ok(s3_bin().args([
            "query",
            "--format",
            "csv",
            "--root",
            &root,
            "SELECT count(*) FROM access",
        ]));
        first_number(&text(&o.stdout))
    };
    let total = count();
    let ip = busiest_ip();
    let o = ok(s3_bin().args([
        "subject",
        "find",
        "--dev-key",
        "--json",
        "--root",
        &root,
        "--ip",
        &ip,
    ]));
    let found: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = found["rows"].as_u64().unwrap();
    assert!(rows > 1, "{found}");
    let erase = |crash: Option<&str>| erase_s3(&root, &ip, "dsr-7", crash);
    let o = erase(Some("journaled:1"));
    assert!(!o.status.success(), "did not crash: {}", text(&o.stderr));
    // Another instance's commit: the same lines again, new files in the same partitions.
    ok(&mut ingest(&root, &fixture("access.log"), "combined", None));
    assert_eq!(count(), 2 * total);
    let o = erase(None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains(&ip) && !text(&o.stderr).contains(&ip));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["verified"], true, "{r}");
    let removed = r["rows_removed"].as_u64().unwrap();
    assert_eq!(removed, 2 * rows, "the subject's rows of both copies: {r}");
    assert_eq!(count(), 2 * total - removed);
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    let lake = m.path().join("lake");
    manifests_match(&lake, "access");
    assert_eq!(parquet_rows(&lake, "access"), 2 * total - removed);
    assert!(!keys(&bucket).iter().any(|k| k.contains("erase-")));
}

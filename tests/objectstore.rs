//! Object storage end to end: `logveil` writing to and sweeping an S3 bucket (moto's S3
//! server on 127.0.0.1:9000, started by `.ci/run`). The bucket is mirrored to a local
//! directory over plain HTTP, so the same checks as on local disk apply (rows, manifests,
//! canaries). Without the server the tests say so in one line and pass, unless
//! `LOGVEIL_REQUIRE_S3=1` (CI), where its absence fails them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

mod common;
use common::*;

const ENDPOINT: &str = "127.0.0.1:9000";

/// Whether the S3 server is there; `false` (after saying so) lets a test skip.
fn s3_available(test: &str) -> bool {
    if TcpStream::connect(ENDPOINT).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("LOGVEIL_REQUIRE_S3").is_none(),
        "LOGVEIL_REQUIRE_S3 is set but no S3 server answers on {ENDPOINT}"
    );
    eprintln!("skipping {test}: no S3 server on {ENDPOINT} (moto_server -H 127.0.0.1 -p 9000)");
    false
}

/// One HTTP/1.1 request to the S3 server; status and body. moto does not check signatures,
/// but serves objects only to requests that carry one.
fn http(method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(ENDPOINT).expect("S3 server");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {ENDPOINT}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=logveil-test/20261205/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=00\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

/// A new, empty bucket of its own for one test.
fn new_bucket(test: &str) -> String {
    let name = format!(
        "lv-{}-{}-{}",
        test.replace('_', "-"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000
    );
    let name = name[..name.len().min(63)].trim_end_matches('-').to_string();
    let (status, body) = http("PUT", &format!("/{name}"), b"");
    assert_eq!(status, 200, "{}", text(&body));
    name
}

/// Every key in a bucket.
fn keys(bucket: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let q = match &token {
            Some(t) => format!("/{bucket}?list-type=2&continuation-token={}", urlenc(t)),
            None => format!("/{bucket}?list-type=2"),
        };
        let (status, body) = http("GET", &q, b"");
        assert_eq!(status, 200, "{}", text(&body));
        let xml = text(&body);
        out.extend(tags(&xml, "Key"));
        token = tags(&xml, "NextContinuationToken").into_iter().next();
        if token.is_none() {
            out.sort();
            return out;
        }
    }
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// Copies a bucket into `dir` (keys become paths).
fn mirror(bucket: &str, dir: &Path) {
    for k in keys(bucket) {
        let (status, body) = http("GET", &format!("/{bucket}/{k}"), b"");
        assert_eq!(status, 200, "GET {k}");
        let p = dir.join(&k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// The binary, pointed at the S3 server with the usual AWS variables.
fn s3_bin() -> Command {
    let mut c = bin();
    c.env("AWS_ENDPOINT_URL", format!("http://{ENDPOINT}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "logveil-test")
        .env("AWS_SECRET_ACCESS_KEY", "logveil-test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    c
}

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
    let out = ok(s3_bin().args([
        "retention",
        "sweep",
        "--root",
        &root,
        "--now",
        "2027-06-01T00:00:00Z",
        "--allow-future-now",
        "--json",
    ]));
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

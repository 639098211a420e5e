//! S3 helpers for the end-to-end tests: moto's S3 server on 127.0.0.1:9000 (started by
//! `.ci/run`), spoken to over plain HTTP: new buckets, listings, and mirrors of a bucket in a
//! local directory so that the local-disk checks apply.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use super::{bin, text};

pub const ENDPOINT: &str = "127.0.0.1:9000";

/// Whether the S3 server is there; `false` (after saying so) lets a test skip.
pub fn s3_available(test: &str) -> bool {
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
pub fn http(method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
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

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
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
pub fn new_bucket(test: &str) -> String {
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
pub fn keys(bucket: &str) -> Vec<String> {
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

pub fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// Copies a bucket into `dir` (keys become paths).
pub fn mirror(bucket: &str, dir: &Path) {
    for k in keys(bucket) {
        let (status, body) = http("GET", &format!("/{bucket}/{k}"), b"");
        assert_eq!(status, 200, "GET {k}");
        let p = dir.join(&k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// The binary, pointed at the S3 server with the usual AWS variables.
pub fn s3_bin() -> Command {
    let mut c = bin();
    c.env("AWS_ENDPOINT_URL", format!("http://{ENDPOINT}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "logveil-test")
        .env("AWS_SECRET_ACCESS_KEY", "logveil-test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE");
    c
}

/// Runs `count` instances of `logveil run --once PIPELINE` at once (pointed at the S3
/// server), waits for all, asserts they succeeded; returns their stderr.
pub fn run_instances(conf: &Path, count: usize) -> String {
    let children: Vec<_> = (0..count)
        .map(|_| {
            s3_bin()
                .args(["run", "--once"])
                .arg(conf)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut stderr = String::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let e = text(&out.stderr);
        assert!(out.status.success(), "{e}");
        stderr.push_str(&e);
    }
    stderr
}

/// Asserts that `dataset` under the mirrored `lake` holds exactly `n` rows whose `column`
/// (an unsigned integer unique per record) has `n` distinct values (every record landed,
/// none twice), and that its manifests list exactly those rows.
pub fn assert_exactly_once(lake: &Path, dataset: &str, column: &str, n: usize, stderr: &str) {
    let values = super::column_values_u64(lake, dataset, column);
    let distinct: std::collections::BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(distinct.len(), n, "every record landed\n{stderr}");
    assert_eq!(values.len(), n, "no record landed twice\n{stderr}");
    let mut listed = 0;
    for p in super::files_under(&lake.join(dataset)) {
        if p.ends_with("_manifest.json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            listed += v["rows"].as_u64().unwrap();
        }
    }
    assert_eq!(listed, n as u64, "manifests list every row once");
}

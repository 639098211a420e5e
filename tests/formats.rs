//! End-to-end tests of the parser suite through the binary: syslog, logfmt and JSON
//! application logs, Squid and JSON proxy logs, a custom nginx `log_format`, and
//! `--format auto`, on the fixtures in `fixtures/` (written by `fixtures/make_formats.py`,
//! with canaries planted). No canary may reach any output; proxy logs yield only aggregated
//! `proxy_usage` metadata.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("fixtures").join(name)
}

/// Canary tokens planted in the fixture files, found by their documented prefixes (see
/// fixtures/make_formats.py): maximal runs of token characters starting with a prefix.
fn planted_canaries(files: &[PathBuf]) -> Vec<String> {
    const PREFIXES: [&str; 7] = [
        "198.51.100.",
        "2001:db8:cafe:",
        "canary.",
        "SeCrEt",
        "c0ffee00-",
        "canary-dest-",
        "canary-path-",
    ];
    let mut out = std::collections::BTreeSet::new();
    for f in files {
        let t = std::fs::read_to_string(f).unwrap();
        for p in PREFIXES {
            let mut from = 0;
            while let Some(i) = t[from..].find(p) {
                let start = from + i;
                let end = t[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || ".:@_-".contains(c)))
                    .map_or(t.len(), |e| start + e);
                let tok = t[start..end].trim_end_matches(['.', ':', '-']);
                // Too short to be a whole canary (e.g. a prefix followed by a separator).
                if tok.len() > p.len() + 2 {
                    out.insert(tok.to_string());
                }
                from = end.max(start + 1);
            }
        }
    }
    out.into_iter().collect()
}

fn summary_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("summary JSON on stdout")
}

fn ingest(root: &Path, keys: &Path, args: &[&str], input: &Path) -> std::process::Output {
    ok(bin()
        .arg("ingest")
        .args(args)
        .args(["--summary-json", "--no-progress", "-j", "2", "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(root)
        .arg(input))
}

fn keygen(dir: &Path) -> PathBuf {
    let keys = dir.join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    keys
}

#[test]
fn every_format_keeps_its_good_lines_and_no_canary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let keys = keygen(dir.path());
    let nginx_format = std::fs::read_to_string(fixture("nginx_timed.format")).unwrap();
    let nginx_format = nginx_format.trim_end();
    // (args, fixture, dataset, written, dropped, quarantined)
    type Case<'a> = (&'a [&'a str], &'a str, &'a str, u64, u64, u64);
    let cases: [Case; 6] = [
        (
            &[
                "--format",
                "syslog",
                "--reference-time",
                "2026-11-28T12:00:00Z",
            ],
            "syslog.log",
            "syslog",
            397,
            0,
            3,
        ),
        (&["--format", "logfmt"], "app.logfmt", "app", 397, 1, 2),
        (
            &[
                "--format",
                "json",
                "--dataset",
                "app_json",
                "--map",
                "ip=client.ip",
                "--map",
                "device_id=client.device_id",
                "--map",
                "keep=trace_id",
            ],
            "app.jsonl",
            "app_json",
            397,
            0,
            3,
        ),
        (
            &["--log-format", nginx_format],
            "nginx_timed.log",
            "access",
            398,
            1,
            1,
        ),
        (&["--format", "squid"], "squid.log", "proxy_usage", 0, 0, 2),
        (
            &["--format", "proxy-json"],
            "proxy.jsonl",
            "proxy_usage",
            0,
            0,
            1,
        ),
    ];
    let mut outputs = Vec::new();
    for (args, file, dataset, written, dropped, quarantined) in cases {
        let o = ingest(&root, &keys, args, &fixture(file));
        let s = summary_of(&o);
        assert_eq!(s["lines_read"], 400, "{file}: {s}");
        if dataset != "proxy_usage" {
            assert_eq!(s["records_written"][dataset], written, "{file}: {s}");
        }
        let d: u64 = s["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(d, dropped, "{file}: {s}");
        assert_eq!(s["quarantined"], quarantined, "{file}: {s}");
        outputs.push(o);
    }

    // Proxy logs: only aggregates; every good request is counted once.
    let aggregated: u64 = outputs[4..]
        .iter()
        .map(|o| summary_of(o)["proxy_requests_aggregated"].as_u64().unwrap())
        .sum();
    assert_eq!(aggregated, 398 + 399);
    let rows = column_values_u64(&root, "proxy_usage", "requests");
    assert_eq!(rows.iter().sum::<u64>(), aggregated);
    assert!(rows.len() < aggregated as usize, "requests were aggregated");
    let classes = column_values(&root, "proxy_usage", "status_class");
    assert!(
        classes
            .iter()
            .all(|c| ["none", "2xx", "4xx", "5xx"].contains(&c.as_str()))
    );
    assert!(
        column_values(&root, "proxy_usage", "ip_network")
            .iter()
            .all(|n| n.ends_with("/24") || n.ends_with("/48"))
    );

    // The custom format kept request times and paths without queries.
    let paths = column_values(&root, "access", "path");
    assert!(!paths.is_empty() && paths.iter().all(|p| !p.contains('?')));
    assert!(column_values_u64(&root, "access", "request_time_us").len() == 398);

    // Syslog rows carry their header fields; messages are scrubbed.
    let apps = column_values(&root, "syslog", "app_name");
    for a in ["sshd", "dashboard", "nginx", "CRON"] {
        assert!(
            apps.iter().any(|x| x == a),
            "{a} missing from syslog app_name"
        );
    }

    // App logs: identifiers pseudonymised, levels normalised, kept attributes present.
    let levels = column_values(&root, "app", "level");
    assert!(
        levels
            .iter()
            .all(|l| ["info", "warn", "error"].contains(&l.as_str()))
    );
    assert_eq!(
        column_values(&root, "app_json", "device_pseudonym").len(),
        397
    );
    assert_eq!(column_values(&root, "app_json", "ip_pseudonym").len(), 397);

    // No canary anywhere: data, footers, manifests, quarantine, stdout, stderr.
    let inputs: Vec<PathBuf> = [
        "syslog.log",
        "app.logfmt",
        "app.jsonl",
        "nginx_timed.log",
        "squid.log",
        "proxy.jsonl",
    ]
    .iter()
    .map(|f| fixture(f))
    .collect();
    let canaries = planted_canaries(&inputs);
    assert!(
        canaries.len() > 1000,
        "only {} canaries found",
        canaries.len()
    );
    for c in ["canary-dest-", "SeCrEt", "c0ffee00-", "canary-path-"] {
        assert!(canaries.iter().any(|x| x.starts_with(c)), "no {c} canary");
    }
    let everything = all_output_text(&root);
    assert!(
        everything
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("proxy_usage"))
    );
    for (p, t) in &everything {
        for c in &canaries {
            assert!(
                !t.contains(c.as_str()),
                "canary {c:?} found in {}",
                p.display()
            );
        }
        // Destinations are never stored, not even the generic parts of them.
        assert!(
            !t.contains("example.net"),
            "a proxy destination in {}",
            p.display()
        );
    }
    for o in &outputs {
        for c in &canaries {
            assert!(!text(&o.stdout).contains(c.as_str()) && !text(&o.stderr).contains(c.as_str()));
        }
    }
}

#[test]
fn auto_detects_each_fixture_and_refuses_to_guess() {
    let dir = tempfile::tempdir().unwrap();
    for (file, chosen) in [
        ("access.log", "combined"),
        ("session.jsonl", "session-json"),
        ("syslog.log", "syslog"),
        ("app.logfmt", "logfmt"),
        ("app.jsonl", "json"),
        ("squid.log", "squid"),
        ("proxy.jsonl", "proxy-json"),
    ] {
        let o = ok(bin()
            .args([
                "ingest",
                "--format",
                "auto",
                "--dev-key",
                "--no-progress",
                "--out",
            ])
            .arg(dir.path().join(file))
            .arg(fixture(file)));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("auto chose {chosen} (")),
            "{file}: {err}"
        );
    }
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\nworld 198.51.100.77\n\nnothing to see\n").unwrap();
    let o = run(bin()
        .args(["ingest", "--format", "auto", "--dev-key", "--out"])
        .arg(dir.path().join("junk"))
        .arg(&junk));
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("cannot tell the format") && err.contains("--format"),
        "{err}"
    );
    assert!(!err.contains("198.51.100.77"));
    // A pipe or device could not be read again after sniffing: refused, never half-read.
    let o = run(bin()
        .args(["ingest", "--format", "auto", "--dev-key", "--out"])
        .arg(dir.path().join("dev"))
        .arg("/dev/null"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("regular file"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bad_source_settings_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture("app.logfmt");
    for (args, needle) in [
        (vec!["--log-format", "$remote_addr $status"], "time"),
        (vec!["--log-format", "[$time_local] $status"], "remote_addr"),
        (vec!["--format", "squid", "--map", "ip=x"], "mapping"),
        (
            vec!["--format", "logfmt", "--map", "colour=x"],
            "unknown role",
        ),
        (
            vec!["--format", "squid", "--window-seconds", "7"],
            "divisor",
        ),
        (vec!["--format", "rfc3164", "--utc-offset", "2"], "offset"),
    ] {
        let o = run(bin()
            .arg("ingest")
            .args(&args)
            .args(["--dev-key", "--out"])
            .arg(dir.path().join("o"))
            .arg(&f));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn proxy_quarantine_withholds_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let input = dir.path().join("bad.log");
    std::fs::write(
        &input,
        "1795780800.000 12 203.0.113.9 TCP_MISS/xyz 100 GET http://secret-dest.example.org/a - HIER_NONE/- -\n",
    )
    .unwrap();
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "squid",
            "--dev-key",
            "--summary-json",
            "--no-progress",
            "--out",
        ])
        .arg(&root)
        .arg(&input));
    assert_eq!(summary_of(&o)["quarantined"], 1);
    let lines = column_values(&root, "_quarantine", "line");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("withheld"), "{lines:?}");
    for (_, t) in all_output_text(&root) {
        assert!(!t.contains("secret-dest"));
    }
}

#[test]
fn duckdb_reads_the_new_datasets() {
    if Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        assert!(
            std::env::var_os("LOGVEIL_REQUIRE_DUCKDB").is_none(),
            "duckdb is required (LOGVEIL_REQUIRE_DUCKDB) but not importable"
        );
        println!("skipping: python3 -c 'import duckdb' failed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let keys = keygen(dir.path());
    ingest(
        &root,
        &keys,
        &["--format", "syslog"],
        &fixture("syslog.log"),
    );
    ingest(
        &root,
        &keys,
        &["--format", "logfmt", "--map", "keep=request_id"],
        &fixture("app.logfmt"),
    );
    ingest(&root, &keys, &["--format", "squid"], &fixture("squid.log"));
    let script = r#"
import duckdb, json, sys
root = sys.argv[1]
con = duckdb.connect()
out = {}
for ds in ["syslog", "app", "proxy_usage"]:
    out[ds] = con.execute(f"SELECT count(*) FROM read_parquet('{root}/{ds}/**/*.parquet', hive_partitioning = true)").fetchall()[0][0]
out["attr"] = con.execute(f"SELECT count(*) FROM read_parquet('{root}/app/**/*.parquet') WHERE attributes['request_id'] LIKE 'req-%'").fetchall()[0][0]
out["requests"] = con.execute(f"SELECT sum(requests) FROM read_parquet('{root}/proxy_usage/**/*.parquet')").fetchall()[0][0]
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "duckdb failed: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["syslog"], 397);
    assert_eq!(v["app"], 397);
    assert_eq!(v["attr"], 397);
    assert_eq!(v["requests"], 398);
}

/// Identifiers no scrubber pattern recognises (account ids, device names, user names, MACs)
/// must not survive in quarantine either: values of key/value formats are masked, custom
/// layouts are withheld.
#[test]
fn quarantine_masks_values_the_scrubber_cannot_recognise() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let secrets = [
        "acc_867795902409",
        "DEV-ABC-123",
        "alice-the-user",
        "AA-BB-CC-DD-EE-FF",
        "DEVICE-XYZ-42",
    ];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--format", "json"],
            r#"{"time":"2026-11-28T12:00:00Z","account_id":"acc_867795902409","mac":"AA-BB-CC-DD-EE-FF","msg":"trunc"#,
        ),
        (
            &["--format", "logfmt"],
            "ts=2026-11-28T12:00:00Z device_id=DEV-ABC-123 user=alice-the-user msg=\"unterminated",
        ),
        (
            &["--format", "rfc5424"],
            r#"<165>1 2003-10-11T22:14:15.003 host app - - [meta deviceId="DEV-ABC-123" user="alice-the-user"] bad ts"#,
        ),
        (
            &[
                "--log-format",
                r#"$time_iso8601 $remote_user $remote_addr "$request" $status dev=$http_x_device_id"#,
            ],
            r#"2026-11-28T12:00:00+00:00 alice-the-user 203.0.113.5 "GET / HTTP/1.1" abc dev=DEVICE-XYZ-42"#,
        ),
    ];
    for (i, (args, line)) in cases.iter().enumerate() {
        let input = dir.path().join(format!("in{i}.log"));
        std::fs::write(&input, format!("{line}\n")).unwrap();
        let o = ok(bin()
            .arg("ingest")
            .args(*args)
            .args(["--dev-key", "--summary-json", "--no-progress", "--out"])
            .arg(&root)
            .arg(&input));
        assert_eq!(summary_of(&o)["quarantined"], 1, "{args:?}");
    }
    let lines = column_values(&root, "_quarantine", "line");
    assert_eq!(lines.len(), 4);
    for (_, t) in all_output_text(&root) {
        for s in secrets {
            assert!(!t.contains(s), "{s} in quarantine: {lines:?}");
        }
    }
    // Keys and structure stay visible for debugging.
    assert!(lines.iter().any(|l| l.contains("account_id")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("deviceId=")), "{lines:?}");
}

/// When a worker's aggregation table fills, the partial rows it writes are counted too.
#[test]
fn proxy_rows_are_counted_when_the_table_fills() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let input = dir.path().join("squid.log");
    let mut s = String::new();
    for i in 0..70_000u64 {
        s.push_str(&format!(
            "{}.000 5 203.0.113.9 TCP_MISS/200 100 GET http://x.example.org/ - HIER_DIRECT/- -\n",
            1_795_780_800 + i
        ));
    }
    std::fs::write(&input, s).unwrap();
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "squid",
            "--window-seconds",
            "1",
            "-j",
            "1",
        ])
        .args(["--dev-key", "--summary-json", "--no-progress", "--out"])
        .arg(&root)
        .arg(&input));
    let s = summary_of(&o);
    assert_eq!(s["proxy_requests_aggregated"], 70_000);
    assert_eq!(s["records_written"]["proxy_usage"], 70_000);
    assert_eq!(parquet_rows(&root, "proxy_usage"), 70_000);
}

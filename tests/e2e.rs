//! End-to-end tests: run the `logveil` binary on generated and real inputs and inspect every
//! byte it leaves behind. The privacy tests plant canaries (raw IPs, device ids, emails, query
//! secrets, proxy destinations) and prove that none reaches any output: decoded Parquet values,
//! Parquet footers, manifests, quarantine, stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use logveil_fixtures::{AccessFormat, Config, Expected};
use parquet::file::reader::{FileReader, SerializedFileReader};

mod common;
use common::*;

fn keygen(dir: &Path) -> PathBuf {
    let keys = dir.join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    keys
}

fn gen_access(cfg: &Config, n: u64, path: &Path) -> Expected {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    logveil_fixtures::write_access(cfg, AccessFormat::Combined, n, &mut f).unwrap()
}

fn gen_sessions(cfg: &Config, n: u64, path: &Path) -> Expected {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    logveil_fixtures::write_sessions(cfg, n, &mut f).unwrap()
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary JSON: {e}: {}", text(&out.stdout)))
}

fn assert_no_canaries(haystack: &str, canaries: &[String], what: &str) {
    for c in canaries {
        assert!(
            !haystack.contains(c.as_str()),
            "canary {c:?} found in {what}"
        );
    }
}

#[test]
fn canaries_never_reach_any_output_and_good_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let out_root = dir.path().join("out");
    let cfg = Config {
        seed: 7,
        canaries: true,
        ..Config::default()
    };
    let access_in = dir.path().join("access.log");
    let session_in = dir.path().join("session.jsonl");
    let ea = gen_access(&cfg, 20_000, &access_in);
    let es = gen_sessions(&cfg, 10_000, &session_in);
    let planted = logveil_fixtures::canaries(cfg.seed);
    let canaries: Vec<String> = planted.all().map(str::to_string).collect();
    assert!(canaries.len() >= 10);
    // Emails are also planted percent-encoded: search for their local parts too.
    let mut needles = canaries.clone();
    needles.extend(
        planted
            .emails
            .iter()
            .filter_map(|e| e.split('@').next())
            .map(str::to_string),
    );
    // The canaries really are in the input.
    let input =
        text(&std::fs::read(&access_in).unwrap()) + &text(&std::fs::read(&session_in).unwrap());
    for c in &canaries {
        assert!(input.contains(c.as_str()), "canary {c} not planted");
    }

    let a = ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--summary-json",
            "--threads",
            "2",
            "--keys",
        ])
        .arg(&keys)
        .arg("--out")
        .arg(&out_root)
        .arg(&access_in));
    let sa = summary(&a);
    let s = ok(bin()
        .args([
            "ingest",
            "--format",
            "session-json",
            "--summary-json",
            "--threads",
            "1",
            "--keys",
        ])
        .arg(&keys)
        .arg("--out")
        .arg(&out_root)
        .arg(&session_in));
    let ss = summary(&s);

    // Counts match what the generator planted.
    assert_eq!(sa["lines_read"], ea.lines);
    assert_eq!(sa["records_written"]["access"], ea.valid, "{sa}");
    assert_eq!(sa["dropped"]["proxy_traffic"], ea.proxy, "{sa}");
    assert_eq!(sa["quarantined"], ea.malformed, "{sa}");
    assert_eq!(ss["records_written"]["session"], es.valid, "{ss}");
    assert_eq!(ss["dropped"]["proxy_traffic"], es.proxy, "{ss}");
    assert_eq!(
        ss["dropped"]["no_statistics_consent"], es.no_consent,
        "{ss}"
    );
    assert_eq!(ss["quarantined"], es.malformed, "{ss}");
    assert_eq!(parquet_rows(&out_root, "access"), ea.valid);
    assert_eq!(parquet_rows(&out_root, "session"), es.valid);
    assert_eq!(
        parquet_rows(&out_root, "_quarantine"),
        ea.malformed + es.malformed
    );

    // No canary anywhere: data, footers, manifests, quarantine, stdout, stderr.
    let outputs = all_output_text(&out_root);
    assert!(outputs.iter().any(|(p, _)| p.ends_with("_manifest.json")));
    for (p, t) in &outputs {
        assert_no_canaries(t, &needles, &p.display().to_string());
    }
    for o in [&a, &s] {
        assert_no_canaries(&text(&o.stdout), &needles, "stdout");
        assert_no_canaries(&text(&o.stderr), &needles, "stderr");
    }

    // Legitimate data is there: dashboard paths, without query strings.
    let paths = column_values(&out_root, "access", "path");
    assert!(paths.iter().all(|p| !p.contains('?')));
    let present = logveil_fixtures::dashboard_paths()
        .iter()
        .filter(|d| paths.iter().any(|p| p == *d))
        .count();
    assert!(present >= 10, "only {present} dashboard paths survived");
    let pages = column_values(&out_root, "session", "page");
    assert!(!pages.is_empty() && pages.iter().all(|p| !p.contains('?')));
    let key_ids = column_values(&out_root, "access", "key_id");
    assert!(key_ids.iter().all(|k| k.starts_with("k-")));
}

#[test]
fn demo_pipeline_runs_on_the_shipped_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    // The shipped demo config, with its output redirected away from the repository's ./data.
    let conf = std::fs::read_to_string(root.join("pipelines/demo.toml")).unwrap();
    assert!(conf.contains("root = \"data\""));
    let conf = conf.replace(
        "root = \"data\"",
        &format!("root = {:?}", dir.path().join("data")),
    );
    let conf_path = dir.path().join("demo.toml");
    std::fs::write(&conf_path, conf).unwrap();
    let out = ok(bin().current_dir(&root).arg("run").arg(&conf_path).args([
        "--once",
        "--summary-json",
        "--no-progress",
    ]));
    let s = summary(&out);
    assert!(
        s["records_written"]["access"].as_u64().unwrap() > 1000,
        "{s}"
    );
    assert!(
        s["records_written"]["session"].as_u64().unwrap() > 500,
        "{s}"
    );
    assert!(s["dropped"]["proxy_traffic"].as_u64().unwrap() > 0, "{s}");
    assert!(s["quarantined"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["dev_key"], true);
    assert!(text(&out.stderr).contains("DEVELOPMENT key"));
    assert_eq!(
        parquet_rows(&dir.path().join("data"), "access"),
        s["records_written"]["access"].as_u64().unwrap()
    );

    // Every drop is counted under the rule (and policy clause) that made it, per dataset.
    let rules = &s["rules"];
    let rule = |ds: &str, id: &str| rules[ds][id].as_u64().unwrap_or(0);
    let datasets: Vec<&String> = rules.as_object().unwrap().keys().collect();
    let sum = |id: &str| datasets.iter().map(|d| rule(d, id)).sum::<u64>();
    assert_eq!(
        sum("proxy-content/5.2.3"),
        s["dropped"]["proxy_traffic"].as_u64().unwrap(),
        "{s}"
    );
    assert_eq!(
        sum("consent-statistics/14.2"),
        s["dropped"]["no_statistics_consent"].as_u64().unwrap_or(0),
        "{s}"
    );
    assert_eq!(
        sum("proxy-aggregate/5.2.3"),
        s["proxy_requests_aggregated"].as_u64().unwrap()
    );
    assert_eq!(
        sum("minimise/1.12.2"),
        s["unknown_fields_dropped"].as_u64().unwrap()
    );
    // Each access row had its address pseudonymised and truncated.
    let access = s["records_written"]["access"].as_u64().unwrap();
    assert_eq!(rule("access", "pseudonymise-ip/1.12.2"), access);
    assert_eq!(rule("access", "truncate-ip/1.12.2"), access);
    for id in [
        "strip-query/1.12.2",
        "referrer-host/1.12.2",
        "pseudonymise-device/1.12.2",
        "scrub-text/1.12.2",
    ] {
        assert!(sum(id) > 0, "{id}: {s}");
    }
}

#[test]
fn keys_are_required_and_must_be_private() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("a.log");
    std::fs::write(
        &input,
        "192.0.2.1 - - [27/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n",
    )
    .unwrap();
    let o = run(bin()
        .args(["ingest", "--format", "combined", "--out"])
        .arg(dir.path().join("o"))
        .arg(&input));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("logveil keygen"),
        "{}",
        text(&o.stderr)
    );

    let keys = keygen(dir.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o640)).unwrap();
        let o = run(bin()
            .args(["ingest", "--format", "combined", "--keys"])
            .arg(&keys)
            .arg("--out")
            .arg(dir.path().join("o"))
            .arg(&input));
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o.stderr).contains("chmod 600"), "{}", text(&o.stderr));
        let secret = text(&std::fs::read(&keys).unwrap());
        let hex: String = secret
            .split("\"key\": \"")
            .nth(1)
            .unwrap()
            .chars()
            .take(64)
            .collect();
        assert!(!text(&o.stderr).contains(&hex[..16]));
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // keygen refuses to overwrite; `keys rotate` adds an epoch.
    let o = run(bin().args(["keygen", "--out"]).arg(&keys));
    assert_eq!(o.status.code(), Some(2));
    ok(bin().args(["keys", "rotate", "--keys"]).arg(&keys));

    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(dir.path().join("d"))
        .arg(&input));
    assert!(text(&o.stderr).contains("DEVELOPMENT key"));
    assert_eq!(summary(&o)["key_id"], "dev-insecure");
    let m = files_under(&dir.path().join("d"))
        .into_iter()
        .find(|p| p.ends_with("_manifest.json"))
        .unwrap();
    assert!(text(&std::fs::read(m).unwrap()).contains("\"dev_key\": true"));
}

#[test]
fn fatal_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(bin()
        .args(["ingest", "--format", "combined", "--dev-key", "--out"])
        .arg(dir.path())
        .arg("/nonexistent/access.log"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("/nonexistent/access.log"),
        "{}",
        text(&o.stderr)
    );

    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let input = dir.path().join("a.log");
    std::fs::write(
        &input,
        "192.0.2.1 - - [27/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n",
    )
    .unwrap();
    let o = run(bin()
        .args(["ingest", "--format", "combined", "--dev-key", "--out"])
        .arg(blocker.join("sub"))
        .arg(&input));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("output root"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("192.0.2.1"));
}

#[test]
fn stdin_and_gzip_inputs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::default();
    let plain = dir.path().join("a.log");
    let e = gen_access(&cfg, 3000, &plain);
    let gz = dir.path().join("a.log.gz");
    let mut enc = flate2_encoder(&gz);
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    drop(enc);
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(dir.path().join("o"))
        .arg(&gz));
    assert_eq!(summary(&o)["records_written"]["access"], e.valid);
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(dir.path().join("o2"))
        .stdin(std::fs::File::open(&plain).unwrap()));
    assert_eq!(summary(&o)["records_written"]["access"], e.valid);
}

fn flate2_encoder(p: &Path) -> impl std::io::Write {
    // Minimal gzip writer via the system's gzip, to keep flate2 out of the test's dependencies.
    struct Gz(std::process::Child);
    impl std::io::Write for Gz {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.stdin.as_mut().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gz {
        fn drop(&mut self) {
            drop(self.0.stdin.take());
            self.0.wait().unwrap();
        }
    }
    let f = std::fs::File::create(p).unwrap();
    Gz(Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(f)
        .spawn()
        .unwrap())
}

/// DuckDB (from pip, installed by .ci/run) reads every dataset with hive partitioning and
/// finds the rows the summary reported.
#[test]
fn duckdb_reads_the_output() {
    let probe = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("LOGVEIL_REQUIRE_DUCKDB").is_none(),
            "duckdb is required (LOGVEIL_REQUIRE_DUCKDB) but not importable"
        );
        println!(
            "skipping: python3 -c 'import duckdb' failed (pip install duckdb to run this test)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let cfg = Config::default();
    let a_in = dir.path().join("a.log");
    let s_in = dir.path().join("s.jsonl");
    gen_access(&cfg, 5000, &a_in);
    gen_sessions(&cfg, 3000, &s_in);
    let a = summary(&ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(&out_root)
        .arg(&a_in)));
    let s = summary(&ok(bin()
        .args([
            "ingest",
            "--format",
            "session-json",
            "--dev-key",
            "--summary-json",
            "--out",
        ])
        .arg(&out_root)
        .arg(&s_in)));
    let script = r#"
import duckdb, json, sys
root = sys.argv[1]
con = duckdb.connect()
out = {}
for ds in ["access", "session", "_quarantine"]:
    q = f"SELECT count(*), count(DISTINCT dt), min(hour), max(hour) FROM read_parquet('{root}/{ds}/**/*.parquet', hive_partitioning = true)"
    n, dts, hmin, hmax = con.execute(q).fetchall()[0]
    out[ds] = n
typ = con.execute(f"SELECT typeof(ts) FROM read_parquet('{root}/access/**/*.parquet', hive_partitioning = true) LIMIT 1").fetchall()[0][0]
out["ts_type"] = typ
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&out_root)
        .output()
        .unwrap();
    assert!(o.status.success(), "duckdb failed: {}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["access"], a["records_written"]["access"]);
    assert_eq!(v["session"], s["records_written"]["session"]);
    assert_eq!(
        v["_quarantine"].as_u64().unwrap(),
        a["quarantined"].as_u64().unwrap() + s["quarantined"].as_u64().unwrap()
    );
    assert_eq!(v["ts_type"], "TIMESTAMP WITH TIME ZONE");
}

/// kill -9 in the middle of an ingest: every visible Parquet file is complete and readable,
/// and every manifest lists only files that exist.
#[test]
fn kill_during_ingest_leaves_nothing_half_written_in_view() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.log");
    gen_access(&Config::default(), 400_000, &input);
    let out_root = dir.path().join("out");
    for delay_ms in [150u64, 600] {
        let mut child = bin()
            .args([
                "ingest",
                "--format",
                "combined",
                "--dev-key",
                "--no-progress",
                "--out",
            ])
            .arg(&out_root)
            .arg(&input)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for p in files_under(&out_root) {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".parquet") {
                let r = SerializedFileReader::new(std::fs::File::open(&p).unwrap()).unwrap_or_else(
                    |e| panic!("{} is not a complete Parquet file: {e}", p.display()),
                );
                let n = r.get_row_iter(None).unwrap().count() as i64;
                assert_eq!(n, r.metadata().file_metadata().num_rows());
            } else if name == "_manifest.json" {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                for f in m["files"].as_array().unwrap() {
                    assert!(
                        p.parent()
                            .unwrap()
                            .join(f["name"].as_str().unwrap())
                            .exists()
                    );
                }
            } else {
                // Anything else must be invisible to readers: staged under _staging or a lock.
                let s = p.to_string_lossy();
                assert!(
                    s.contains("/_staging/") || name.starts_with('_') || name.starts_with('.'),
                    "{s}"
                );
            }
        }
    }
}

/// A dataset holds one kind of rows; retention is recorded with it and a default never
/// overrides it.
#[test]
fn datasets_keep_their_kind_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let a_in = dir.path().join("a.log");
    let s_in = dir.path().join("s.jsonl");
    gen_access(&Config::default(), 500, &a_in);
    gen_sessions(&Config::default(), 300, &s_in);
    ok(bin()
        .args([
            "ingest",
            "--format",
            "combined",
            "--dev-key",
            "--retention-days",
            "365",
            "--out",
        ])
        .arg(&out_root)
        .arg(&a_in));
    // A later ingest with the default retention keeps the dataset's 365 days.
    ok(bin()
        .args(["ingest", "--format", "combined", "--dev-key", "--out"])
        .arg(&out_root)
        .arg(&a_in));
    let m = files_under(&out_root.join("access"))
        .into_iter()
        .find(|p| p.ends_with("_manifest.json"))
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap();
    assert_eq!(m["retention_days"], 365);
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_root.join("access/_dataset.json")).unwrap())
            .unwrap();
    assert_eq!(marker["kind"], "access");
    assert_eq!(marker["retention_days"], 365);

    // Session events cannot go into the access dataset; nothing is written.
    let before = files_under(&out_root).len();
    let o = run(bin()
        .args([
            "ingest",
            "--format",
            "session-json",
            "--dataset",
            "access",
            "--dev-key",
            "--out",
        ])
        .arg(&out_root)
        .arg(&s_in));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("dataset access holds access rows"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(files_under(&out_root).len(), before);
}

/// A job that fails half-way (here: a truncated gzip input read by several workers) makes
/// nothing visible and leaves no staged files behind.
#[test]
fn a_failed_job_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.log");
    gen_access(&Config::default(), 200_000, &plain);
    let gz = dir.path().join("a.log.gz");
    let mut enc = flate2_encoder(&gz);
    std::io::Write::write_all(&mut enc, &std::fs::read(&plain).unwrap()).unwrap();
    drop(enc);
    let full = std::fs::read(&gz).unwrap();
    let cut = dir.path().join("cut.log.gz");
    std::fs::write(&cut, &full[..full.len() * 3 / 4]).unwrap();
    let out_root = dir.path().join("out");
    for threads in ["1", "2"] {
        let o = run(bin()
            .args([
                "ingest",
                "--format",
                "combined",
                "--dev-key",
                "--no-progress",
                "--threads",
                threads,
                "--out",
            ])
            .arg(&out_root)
            .arg(&cut));
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("cut.log.gz"),
            "{}",
            text(&o.stderr)
        );
        let left: Vec<_> = files_under(&out_root)
            .into_iter()
            .filter(|p| !p.ends_with("_dataset.json") && !p.ends_with("_manifest.lock"))
            .collect();
        assert!(left.is_empty(), "threads {threads}: {left:?}");
    }
}

/// `run --out DIR --keys FILE` runs the shipped demo as it is, into another root and with a
/// real key ring, without editing the file.
#[test]
fn run_overrides_the_pipelines_root_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let keys = dir.path().join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    let out_root = dir.path().join("elsewhere");
    let out = ok(bin()
        .current_dir(&root)
        .args([
            "run",
            "pipelines/demo.toml",
            "--once",
            "--summary-json",
            "--no-progress",
            "--out",
        ])
        .arg(&out_root)
        .arg("--keys")
        .arg(&keys));
    let s = summary(&out);
    assert_eq!(s["dev_key"], false, "{s}");
    assert!(!text(&out.stderr).contains("DEVELOPMENT key"));
    assert_eq!(
        parquet_rows(&out_root, "access"),
        s["records_written"]["access"].as_u64().unwrap()
    );
}

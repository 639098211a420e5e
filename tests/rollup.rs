//! Rollups end to end: no published row stands for fewer than k subjects (a subject with a
//! page of their own cannot be singled out), no pseudonym reaches a rollup, a window is
//! recomputed whole (never counted twice), and a rollup outlives the raw partitions it was
//! built from.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// `n` combined-format lines from `ip` for `path`, on 27 November 2026 at 10:mm.
fn lines(ip: &str, path: &str, ua: &str, n: usize) -> String {
    lines_at(10, ip, path, ua, n)
}

fn lines_at(hour: u32, ip: &str, path: &str, ua: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{ip} - - [27/Nov/2026:{hour:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" 200 512 \"-\" \"{ua}\"\n",
                i % 60,
                (i * 7) % 60
            )
        })
        .collect()
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0";
/// The planted subject: one address, with a page nobody else visits.
const LONE_IP: &str = "203.0.113.77";
const LONE_PATH: &str = "/billing/invoices/lonely";

fn pipeline(dir: &Path, access_retention: u32) -> std::path::PathBuf {
    let p = dir.join("pipeline.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[output]
root = "{root}"
[keys]
dev_key = true
[datasets.access]
retention_days = {access_retention}
[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = ["{log}"]
follow = true
[rollups.views]
dataset = "access"
window = "day"
group_by = ["path", "browser_family", "status_class"]
subject = "ip_pseudonym"
distinct = ["ip_network"]
k = 5
retention_days = 400
"#,
            root = dir.join("data").display(),
            log = dir.join("access.log").display(),
        ),
    )
    .unwrap();
    p
}

/// 12 addresses on /dashboard with Chrome, 3 on /settings with Firefox, and the lone subject.
fn write_log(dir: &Path) {
    let mut log = String::new();
    for i in 0..12 {
        log += &lines(&format!("198.51.100.{i}"), "/dashboard", CHROME, 4);
    }
    for i in 0..3 {
        log += &lines(&format!("192.0.2.{i}"), "/settings", FIREFOX, 2);
    }
    log += &lines(LONE_IP, LONE_PATH, FIREFOX, 30);
    std::fs::write(dir.join("access.log"), log).unwrap();
}

/// The planted log run through the pipeline once: (its directory, the pipeline, the output
/// root, the day window's rollup file).
fn ingested(access_retention: u32) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let p = pipeline(dir.path(), access_retention);
    ok(bin().args(["run", "--once", "--no-progress"]).arg(&p));
    let root = dir.path().join("data");
    let file = root.join("views/dt=2026-11-27/hour=00/rollup.parquet");
    (dir, p, root, file)
}

/// `logveil rollup --json ARGS… PIPELINE`: the first rollup's report.
fn rollup_report(p: &Path, args: &[&str]) -> Value {
    let o = ok(bin().args(["rollup", "--json"]).args(args).arg(p));
    let rep: Value = serde_json::from_slice(&o.stdout).unwrap();
    rep[0].clone()
}

/// `logveil retention sweep` of the root as of `now`.
fn sweep(root: &Path, now: &str) {
    ok(bin()
        .args([
            "retention",
            "sweep",
            "--allow-future-now",
            "--now",
            now,
            "--root",
        ])
        .arg(root));
}

fn manifest(root: &Path) -> Value {
    let p = root.join("views/dt=2026-11-27/hour=00/_manifest.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn raw_rows(root: &Path) -> u64 {
    parquet_rows(root, "access")
}

#[test]
fn no_rollup_row_singles_out_a_subject() {
    let (_dir, _p, root, _file) = ingested(30);

    let subjects = column_values_u64(&root, "views", "subjects");
    assert!(!subjects.is_empty());
    assert!(
        subjects.iter().all(|s| *s >= 5),
        "a row stands for fewer than k subjects: {subjects:?}"
    );
    let paths = column_values(&root, "views", "path");
    assert_eq!(paths, ["/dashboard"], "only the large group is its own row");
    let m = manifest(&root);
    let r = &m["rollup"];
    assert_eq!(r["k"], 5);
    // /settings (3 subjects) and the lone page (1) merge into 4 subjects: fewer than k, so
    // the other row is dropped too.
    assert_eq!(r["groups"], 1);
    assert_eq!(r["groups_suppressed"], 2);
    assert_eq!(r["other_row"], false);
    assert_eq!(r["events_suppressed"], 3 * 2 + 30);
    assert_eq!(r["input_rows"].as_u64(), Some(raw_rows(&root)));

    // Nothing of the subject reaches the rollup: not the page, not the address, not a
    // pseudonym of any raw row.
    let pseudonyms = column_values(&root, "access", "ip_pseudonym");
    assert!(!pseudonyms.is_empty());
    for (path, text) in all_output_text(&root.join("views")) {
        for needle in [LONE_IP, LONE_PATH, "lonely"] {
            assert!(!text.contains(needle), "{needle} in {}", path.display());
        }
        for p in &pseudonyms {
            assert!(
                !text.contains(p.as_str()),
                "a pseudonym in {}",
                path.display()
            );
        }
    }
}

#[test]
fn a_window_is_recomputed_whole_and_never_counted_twice() {
    let (dir, p, root, file) = ingested(30);
    let first = std::fs::read(&file).unwrap();
    let events = |root: &Path| -> u64 { column_values_u64(root, "views", "events").iter().sum() };
    let total = |root: &Path| {
        events(root)
            + manifest(root)["rollup"]["events_suppressed"]
                .as_u64()
                .unwrap()
    };
    assert_eq!(total(&root), raw_rows(&root));

    // Building again changes nothing: the inputs are the same.
    let rep = rollup_report(&p, &[]);
    assert_eq!(rep["windows_unchanged"], 1, "{rep}");
    assert_eq!(rep["windows_built"], 0);
    assert_eq!(std::fs::read(&file).unwrap(), first);

    // More lines arrive (the followed file grows): the window is recomputed from all of
    // its raw files, and still has one file.
    let mut more = String::new();
    for i in 0..6 {
        more += &lines(&format!("192.0.2.{}", 10 + i), "/settings", FIREFOX, 1);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("access.log"))
        .unwrap();
    std::io::Write::write_all(&mut f, more.as_bytes()).unwrap();
    ok(bin().args(["run", "--once", "--no-progress"]).arg(&p));
    assert_eq!(total(&root), raw_rows(&root));
    let paths = column_values(&root, "views", "path");
    assert_eq!(
        paths,
        ["/dashboard", "/settings"],
        "9 subjects now visit /settings"
    );
    let files: Vec<_> = files_under(&root.join("views"))
        .into_iter()
        .filter(|p| is_parquet(p))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");

    // --rebuild recomputes to the same content.
    let before = std::fs::read(&file).unwrap();
    ok(bin().args(["rollup", "--rebuild"]).arg(&p));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "a rebuild is deterministic"
    );
}

#[test]
fn a_rollup_outlives_the_raw_data_and_expired_raw_data_is_never_read() {
    let (_dir, p, root, file) = ingested(2);
    let first = std::fs::read(&file).unwrap();

    // Two days later the raw partition has expired but is not swept yet: the window is
    // frozen (a rebuild would read expired data), the rollup stays as it is.
    let later = "2026-12-01T12:00:00Z";
    let rep = rollup_report(&p, &["--rebuild", "--now", later]);
    assert_eq!(rep["windows_frozen"], 1, "{rep}");
    assert_eq!(rep["windows_built"], 0);
    assert_eq!(std::fs::read(&file).unwrap(), first);

    // The sweep deletes the raw partition; the rollup remains, readable.
    sweep(&root, later);
    assert_eq!(raw_rows(&root), 0, "raw data swept");
    assert_eq!(std::fs::read(&file).unwrap(), first);
    assert!(parquet_rows(&root, "views") > 0);
    ok(bin().args(["rollup", "--now", later]).arg(&p));
    assert_eq!(std::fs::read(&file).unwrap(), first);

    // Declared again with hour windows, it would hold both: refused.
    let conf = std::fs::read_to_string(&p)
        .unwrap()
        .replace(r#"window = "day""#, r#"window = "hour""#);
    std::fs::write(&p, conf).unwrap();
    let o = run(bin().args(["rollup", "--now", later]).arg(&p));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("give the changed rollup a new name"),
        "{}",
        text(&o.stderr)
    );
}

/// The sweep deletes a day's partitions hour by hour: a day window is never recomputed from
/// the hours that are left.
#[test]
fn a_day_is_never_recomputed_from_the_hours_the_sweep_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for i in 0..6 {
        log += &lines_at(0, &format!("198.51.100.{i}"), "/dashboard", CHROME, 2);
        log += &lines_at(20, &format!("192.0.2.{i}"), "/dashboard", CHROME, 1);
    }
    std::fs::write(dir.path().join("access.log"), log).unwrap();
    let p = pipeline(dir.path(), 2);
    ok(bin().args(["run", "--once", "--no-progress"]).arg(&p));
    let root = dir.path().join("data");
    let events = || -> u64 { column_values_u64(&root, "views", "events").iter().sum() };
    assert_eq!(events(), 18);
    assert_eq!(
        manifest(&root)["rollup"]["partitions"],
        serde_json::json!(["dt=2026-11-27/hour=00", "dt=2026-11-27/hour=20"])
    );
    // Hour 00 has expired (and is swept), hour 20 has not.
    let mid = "2026-11-29T12:00:00Z";
    sweep(&root, mid);
    assert!(!root.join("access/dt=2026-11-27/hour=00").exists());
    assert!(root.join("access/dt=2026-11-27/hour=20").exists());
    let rep = rollup_report(&p, &["--rebuild", "--now", mid]);
    assert_eq!(rep["windows_frozen"], 1, "{rep}");
    assert_eq!(events(), 18, "the day still counts both hours");
}

#[test]
fn a_rollup_that_would_group_by_a_pseudonym_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let p = pipeline(dir.path(), 30);
    let conf = std::fs::read_to_string(&p).unwrap().replace(
        r#"group_by = ["path", "browser_family", "status_class"]"#,
        r#"group_by = ["path", "ip_pseudonym"]"#,
    );
    std::fs::write(&p, conf).unwrap();
    let o = run(bin().args(["run", "--once", "--no-progress"]).arg(&p));
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("line 14: rollup views"), "{err}");
    assert!(err.contains("never hold pseudonyms"), "{err}");
    assert!(!dir.path().join("data").exists(), "nothing ran");
}

/// A running daemon builds the windows that have closed, without being stopped.
#[test]
fn a_running_daemon_builds_closed_windows() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let p = pipeline(dir.path(), 30);
    let conf = std::fs::read_to_string(&p).unwrap().replace(
        "[keys]",
        "[runtime]\ncommit_interval_ms = 100\nrollup_interval_s = 1\n[keys]",
    );
    std::fs::write(&p, conf).unwrap();
    let mut child = bin()
        .args(["run", "--no-progress"])
        .arg(&p)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = dir
        .path()
        .join("data/views/dt=2026-11-27/hour=00/rollup.parquet");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let running = child.try_wait().unwrap().is_none();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(running, "the daemon stopped early: {status:?}");
    assert!(file.exists(), "no rollup while running");
    assert!(status.success(), "{status:?}");
    assert!(
        column_values_u64(&dir.path().join("data"), "views", "subjects")
            .iter()
            .all(|s| *s >= 5)
    );
}

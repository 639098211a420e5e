//! `logveil run` with followed sources: resuming from the journal, rotation while running,
//! SIGTERM, and kill -9 at random moments while lines are being written: every line written
//! is in the Parquet output exactly once. Each line carries a unique number in its
//! `bytes_sent` field, which the output keeps as it is.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn line(n: u64) -> String {
    format!(
        "198.51.100.{} - - [27/Nov/2026:{:02}:{:02}:{:02} +0000] \"GET /stream HTTP/1.1\" 200 {n} \"-\" \"curl/8\"\n",
        n % 250 + 1,
        (n / 3600) % 24,
        (n / 60) % 60,
        n % 60
    )
}

fn append(p: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    let text: String = (from..to).map(line).collect();
    f.write_all(text.as_bytes()).unwrap();
}

fn pipeline(dir: &Path, commit_ms: u64) -> PathBuf {
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"[output]
root = {root:?}
[keys]
dev_key = true
[runtime]
now = "2026-11-28T12:00:00Z"
commit_interval_ms = {commit_ms}
poll_interval_ms = 20
[[sources]]
name = "web"
format = "combined"
dataset = "access"
paths = [{glob:?}]
follow = true
"#,
            root = dir.join("out"),
            glob = dir.join("in/access.log*").display().to_string(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    p
}

fn spawn(conf: &Path) -> Child {
    bin()
        .args(["run", "--no-progress"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `logveil run CONF`, its stderr going to a file (read while it runs).
fn spawn_logged(conf: &Path, stderr: &Path) -> Child {
    bin()
        .args(["run", "--no-progress"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

fn run_once(conf: &Path) {
    ok(bin().args(["run", "--no-progress", "--once"]).arg(conf));
}

/// Every number in the output, with how often it appears.
fn seen(dir: &Path) -> BTreeMap<u64, u32> {
    let mut m = BTreeMap::new();
    for v in column_values_u64(&dir.join("out"), "access", "bytes_sent") {
        *m.entry(v).or_default() += 1;
    }
    m
}

fn assert_exactly_once(dir: &Path, n: u64, what: &str) {
    let s = seen(dir);
    let twice: Vec<_> = s.iter().filter(|(_, c)| **c > 1).map(|(v, _)| *v).collect();
    let missing: Vec<_> = (0..n).filter(|v| !s.contains_key(v)).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && s.len() as u64 == n,
        "{what}: {} distinct of {n}; repeated {:?}; missing {:?}",
        s.len(),
        &twice[..twice.len().min(20)],
        &missing[..missing.len().min(20)]
    );
}

#[test]
fn once_reads_what_is_new_since_the_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 200);
    let log = dir.path().join("in/access.log");
    append(&log, 0, 300);
    run_once(&conf);
    assert_exactly_once(dir.path(), 300, "first run");
    append(&log, 300, 500);
    std::fs::rename(&log, dir.path().join("in/access.log.1")).unwrap();
    append(&log, 500, 700);
    run_once(&conf);
    assert_exactly_once(dir.path(), 700, "after appending and rotating");
    let j: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out/_checkpoints/web.json")).unwrap(),
    )
    .unwrap();
    assert!(j["pending"].is_null(), "{j}");
    assert_eq!(j["position"].as_array().unwrap().len(), 2, "{j}");
}

#[test]
fn sigterm_commits_what_was_read_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A long commit interval: only the stop commits.
    let conf = pipeline(dir.path(), 60_000);
    let log = dir.path().join("in/access.log");
    append(&log, 0, 400);
    let mut child = spawn(&conf);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until the lines have been read (the progress counters are not visible: poll the
    // staging directory for the open epoch's files, or just give it time).
    std::thread::sleep(Duration::from_millis(700));
    unsafe_kill(child.id(), "TERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert_exactly_once(dir.path(), 400, "after SIGTERM");
}

/// `kill -TERM` / `kill -9` through the `kill` command (no libc in the tests).
fn unsafe_kill(pid: u32, sig: &str) {
    let s = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(s.success());
}

/// A deterministic xorshift for the kill schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_at_random_moments_loses_and_repeats_nothing() {
    let seed: u64 = std::env::var("LOGVEIL_STREAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let dir = tempfile::tempdir().unwrap();
    // Commit often, so that kills land before, during and after commits.
    let conf = pipeline(dir.path(), 30);
    let log = dir.path().join("in/access.log");
    let mut written = 0u64;
    let mut rotations = 0;
    const RUNS: usize = 30;
    for run in 0..RUNS {
        let mut child = spawn(&conf);
        let life = Duration::from_millis(50 + rng.below(400));
        let start = Instant::now();
        while start.elapsed() < life {
            let n = 1 + rng.below(60);
            append(&log, written, written + n);
            written += n;
            if rng.below(40) == 0 {
                rotations += 1;
                std::fs::rename(&log, dir.path().join(format!("in/access.log.{rotations}")))
                    .unwrap();
            }
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.signal() != Some(9) {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("run {run} ended by itself before it was killed: {status:?}: {err}");
        }
    }
    // A last run reads everything that is left, then stops.
    run_once(&conf);
    assert_exactly_once(
        dir.path(),
        written,
        &format!("{RUNS} runs killed with SIGKILL, {rotations} rotations, seed {seed}"),
    );
}

#[test]
fn followed_sources_need_unique_plain_names() {
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 200);
    let text = std::fs::read_to_string(&conf).unwrap();
    let twice = format!("{text}\n{}", &text[text.find("[[sources]]").unwrap()..]);
    std::fs::write(&conf, twice).unwrap();
    let o = run(bin().args(["run", "--once"]).arg(&conf));
    assert_eq!(o.status.code(), Some(2), "{}", text_of(&o.stderr));
    assert!(text_of(&o.stderr).contains("two sources are named"));
    std::fs::write(&conf, text.replace("name = \"web\"", "name = \"../web\"")).unwrap();
    let o = run(bin().args(["run", "--once"]).arg(&conf));
    assert_eq!(o.status.code(), Some(2), "{}", text_of(&o.stderr));
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

#[test]
fn metrics_health_and_ready_are_served_without_identifiers() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 200);
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace(
            "poll_interval_ms = 20",
            "poll_interval_ms = 20\nmetrics_address = \"127.0.0.1:0\"",
        ),
    )
    .unwrap();
    let log = dir.path().join("in/access.log");
    append(&log, 0, 100);
    let mut child = spawn(&conf);
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut l = String::new();
        assert!(
            err.read_line(&mut l).unwrap() > 0,
            "no metrics address announced"
        );
        if let Some(rest) = l.split("metrics on http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    assert_eq!(http_get(&addr, "/health").0, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (code, body) = http_get(&addr, "/metrics");
        assert_eq!(code, 200);
        if body.contains("logveil_lines_read_total{source=\"web\"} 100") {
            break body;
        }
        assert!(Instant::now() < deadline, "no commit counted:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(http_get(&addr, "/ready").0, 200);
    for want in [
        "logveil_records_written_total{source=\"web\",dataset=\"access\"} 100",
        "logveil_commits_total{source=\"web\"}",
        "logveil_commit_seconds_bucket",
        "logveil_rule_applications_total{dataset=\"access\",rule=\"pseudonymise-ip/1.12.2\"} 100",
        "logveil_source_lag_bytes{source=\"web\"} 0",
    ] {
        assert!(body.contains(want), "{want} missing from\n{body}");
    }
    assert!(
        !body.contains("198.51.100."),
        "a raw address in the metrics"
    );
    assert_eq!(http_get(&addr, "/nope").0, 404);
    unsafe_kill(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_exactly_once(dir.path(), 100, "with metrics");
}

#[test]
fn one_process_per_source_journal() {
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 200);
    append(&dir.path().join("in/access.log"), 0, 10);
    let mut child = spawn(&conf);
    // Wait until the daemon holds the journal.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("out/_checkpoints/web.json").exists() {
        assert!(Instant::now() < deadline, "no commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run(bin().args(["run", "--once"]).arg(&conf));
    assert_eq!(o.status.code(), Some(1), "{}", text_of(&o.stderr));
    assert!(text_of(&o.stderr).contains("another logveil process is reading source"));
    unsafe_kill(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    assert_exactly_once(dir.path(), 10, "one daemon, one refused --once");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("out/_checkpoints"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the journals are the operator's");
    }
}

/// Rows of `dataset` once there are at least `n` (waits up to 30 s).
fn wait_rows(dir: &Path, dataset: &str, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = parquet_rows(&dir.join("out"), dataset);
        if rows >= n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_running_on_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 100);
    let log = dir.path().join("in/access.log");
    append(&log, 0, 200);
    let errf = dir.path().join("stderr");
    let mut child = spawn_logged(&conf, &errf);
    assert_eq!(wait_rows(dir.path(), "access", 200), 200);
    // Not valid: the running pipeline goes on.
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace("format = \"combined\"", "format = \"nonsense\""),
    )
    .unwrap();
    unsafe_kill(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "stopped on an invalid config"
    );
    // Valid, but with a source read once: a reload would read it again, so it is refused.
    std::fs::write(
        &conf,
        format!(
            "{good}\n[[sources]]\nname = \"once\"\nformat = \"combined\"\ndataset = \"other\"\npaths = [{:?}]\n",
            log.display().to_string()
        ),
    )
    .unwrap();
    unsafe_kill(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "stopped on a refused reload"
    );
    append(&log, 200, 300);
    assert_eq!(wait_rows(dir.path(), "access", 300), 300);
    // Valid, writing another dataset: lines after the reload go there, none twice.
    std::fs::write(
        &conf,
        good.replace("dataset = \"access\"", "dataset = \"access2\""),
    )
    .unwrap();
    unsafe_kill(child.id(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&errf)
        .unwrap()
        .contains("starting again")
    {
        assert!(Instant::now() < deadline, "no reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    append(&log, 300, 400);
    assert_eq!(wait_rows(dir.path(), "access2", 100), 100);
    unsafe_kill(child.id(), "TERM");
    let st = child.wait().unwrap();
    let err = std::fs::read_to_string(&errf).unwrap();
    assert!(st.success(), "{st:?}: {err}");
    assert!(
        err.contains("is not reloaded, so the running pipeline goes on"),
        "{err}"
    );
    assert!(err.contains("source once is read once"), "{err}");
    assert_exactly_once(dir.path(), 300, "before the reload");
    let after = column_values_u64(&dir.path().join("out"), "access2", "bytes_sent");
    let mut after = after;
    after.sort();
    assert_eq!(after, (300..400).collect::<Vec<u64>>());
}

#[test]
fn rotation_by_rename_copy_truncate_and_gzip_under_load_loses_and_repeats_nothing() {
    let mut rng = Rng(0x51f1_5eed_u64 | 1);
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), 50);
    let log = dir.path().join("in/access.log");
    let errf = dir.path().join("stderr");
    let mut child = spawn_logged(&conf, &errf);
    let mut written = 0u64;
    let (mut renamed, mut copied, mut gzipped) = (0, 0, 0);
    for i in 0..60u32 {
        let n = 1 + rng.below(80);
        append(&log, written, written + n);
        written += n;
        std::thread::sleep(Duration::from_millis(rng.below(25)));
        if i % 6 != 5 {
            continue;
        }
        let k = renamed + copied + 1;
        let rotated = dir.path().join(format!("in/access.log.{k}"));
        if rng.below(2) == 0 {
            // logrotate's default: rename, and the writer opens a new file.
            std::fs::rename(&log, &rotated).unwrap();
            renamed += 1;
        } else {
            // copytruncate: copy, then cut the original to nothing; writing goes on in it.
            std::fs::copy(&log, &rotated).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .unwrap()
                .set_len(0)
                .unwrap();
            copied += 1;
        }
        // delaycompress: the rotation before this one is compressed now.
        let older = dir.path().join(format!("in/access.log.{}", k - 1));
        if k > 1 && older.exists() && rng.below(2) == 0 {
            let data = std::fs::read(&older).unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&data).unwrap();
            std::fs::write(
                older.with_extension(format!("{}.gz", k - 1)),
                gz.finish().unwrap(),
            )
            .unwrap();
            std::fs::remove_file(&older).unwrap();
            gzipped += 1;
        }
    }
    // Everything written is committed while running, then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (parquet_rows(&dir.path().join("out"), "access") as u64) < written
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe_kill(child.id(), "TERM");
    let st = child.wait().unwrap();
    assert!(
        st.success(),
        "{st:?}: {}",
        std::fs::read_to_string(&errf).unwrap()
    );
    assert!(
        renamed > 0 && copied > 0,
        "{renamed} renamed, {copied} copied"
    );
    assert_exactly_once(
        dir.path(),
        written,
        &format!("{renamed} renames, {copied} copy-truncates, {gzipped} compressed"),
    );
}

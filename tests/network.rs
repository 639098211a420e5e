//! `logveil run` with network sources: HTTP batches from concurrent clients, refusals with
//! reasons, backpressure (503), kill -9 while clients post (no acknowledged event is lost or
//! repeated), and syslog over TCP and UDP. Each event carries a unique number in
//! `duration_ms`, which the `session` dataset keeps as it is; planted canaries (an IP
//! address, a device id) must reach no output.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CANARY_IP: &str = "203.0.113.77";
const CANARY_DEVICE: &str = "canarydevice7f3a9e";

fn event(n: u64) -> String {
    format!(
        "{{\"ts\":\"2026-11-27T{:02}:{:02}:00Z\",\"event\":\"page_view\",\"app\":\"web\",\"duration_ms\":{n},\"ip\":\"{CANARY_IP}\",\"device_id\":\"{CANARY_DEVICE}\",\"page\":\"/dashboard\",\"consent\":{{\"statistics\":true}}}}\n",
        (n / 60) % 24,
        n % 60
    )
}

fn batch(from: u64, to: u64) -> Vec<u8> {
    (from..to).map(event).collect::<String>().into_bytes()
}

/// A port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pipeline(dir: &Path, port: u16, extra_http: &str, runtime: &str) -> PathBuf {
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
poll_interval_ms = 20
{runtime}
[[sources]]
name = "events"
format = "session-json"
[sources.http]
address = "127.0.0.1:{port}"
{extra_http}
"#,
            root = dir.join("out"),
        ),
    )
    .unwrap();
    p
}

fn spawn(conf: &Path, stderr: &Path) -> Child {
    spawn_with(conf, stderr, &[])
}

/// `logveil run CONF` with extra environment variables, its stderr going to a file.
fn spawn_with(conf: &Path, stderr: &Path, env: &[(&str, &str)]) -> Child {
    bin()
        .args(["run", "--no-progress"])
        .arg(conf)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// One request; `None` when the connection failed (the server is not there).
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // A refusal may come before the whole body is sent: write errors are not the answer.
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn post(port: u16, body: &[u8]) -> Option<(u16, String)> {
    request(port, "POST", "/v1/events", body, &[])
}

fn wait_listening(port: u16, child: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("logveil exited before listening: {st:?}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn stop(mut child: Child) {
    signal(child.id(), "-TERM");
    let st = child.wait().unwrap();
    assert!(st.success(), "exit after SIGTERM: {st:?}");
}

/// Every number in `session.duration_ms`, with how often it appears.
fn seen(dir: &Path) -> BTreeMap<u64, u32> {
    let mut m = BTreeMap::new();
    for v in column_values_u64(&dir.join("out"), "session", "duration_ms") {
        *m.entry(v).or_default() += 1;
    }
    m
}

fn assert_no_canaries(dir: &Path, also: &[&Path]) {
    for (p, text) in all_output_text(&dir.join("out")) {
        if p.components().any(|c| c.as_os_str() == "_spool") {
            continue; // the spool holds raw events until their commit, by design
        }
        for c in [CANARY_IP, CANARY_DEVICE] {
            assert!(!text.contains(c), "{c} in {}", p.display());
        }
    }
    for p in also {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        for c in [CANARY_IP, CANARY_DEVICE] {
            assert!(!t.contains(c), "{c} in {}", p.display());
        }
    }
}

fn spool_segments(dir: &Path) -> usize {
    files_under(&dir.join("out/_spool/events"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .count()
}

#[test]
fn batches_from_concurrent_clients_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = pipeline(dir.path(), port, "", "commit_interval_ms = 300");
    let err = dir.path().join("stderr");
    let mut child = spawn(&conf, &err);
    wait_listening(port, &mut child);
    const CLIENTS: u64 = 4;
    const BATCHES: u64 = 25;
    const SIZE: u64 = 200;
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            s.spawn(move || {
                for b in 0..BATCHES {
                    let from = (c * BATCHES + b) * SIZE;
                    let (status, body) = post(port, &batch(from, from + SIZE)).expect("answered");
                    assert_eq!(status, 200, "{body}");
                    assert_eq!(body.trim(), format!("{{\"accepted\":{SIZE}}}"));
                }
            });
        }
    });
    stop(child);
    let n = CLIENTS * BATCHES * SIZE;
    let s = seen(dir.path());
    assert_eq!(s.len() as u64, n, "distinct events");
    assert!(s.values().all(|c| *c == 1), "an event was written twice");
    assert!(s.keys().all(|k| *k < n));
    // Committed and stopped: no raw event is left in the spool.
    assert_eq!(spool_segments(dir.path()), 0);
    assert_no_canaries(dir.path(), &[&err]);
}

#[test]
fn refusals_say_why_and_take_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = pipeline(
        dir.path(),
        port,
        "max_body_bytes = 65536\ntoken_env = \"LOGVEIL_TEST_TOKEN\"",
        "commit_interval_ms = 300",
    );
    let err = dir.path().join("stderr");
    let mut child = spawn_with(&conf, &err, &[("LOGVEIL_TEST_TOKEN", "s3cret-token")]);
    wait_listening(port, &mut child);
    let auth = [("Authorization", "Bearer s3cret-token")];
    let one = batch(0, 1);
    // No token, a wrong token.
    assert_eq!(post(port, &one).unwrap().0, 401);
    let wrong = [("Authorization", "Bearer s3cret-tokem")];
    assert_eq!(
        request(port, "POST", "/v1/events", &one, &wrong).unwrap().0,
        401
    );
    // Wrong path, wrong method, unknown encoding.
    assert_eq!(request(port, "POST", "/v2/x", &one, &auth).unwrap().0, 404);
    assert_eq!(
        request(port, "GET", "/v1/events", b"", &auth).unwrap().0,
        405
    );
    let br = [auth[0], ("Content-Encoding", "br")];
    assert_eq!(
        request(port, "POST", "/v1/events", &one, &br).unwrap().0,
        415
    );
    // Too large.
    let big = batch(0, 1000);
    assert!(big.len() > 65536);
    let (st, body) = request(port, "POST", "/v1/events", &big, &auth).unwrap();
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("65536"), "{body}");
    // Not NDJSON at all: the answer names the line, never its text.
    let array = format!("[{}]", event(1).trim_end());
    let (st, body) = request(port, "POST", "/v1/events", array.as_bytes(), &auth).unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("line 1") && !body.contains(CANARY_IP),
        "{body}"
    );
    // A batch with one bad line is taken; the bad line is quarantined, and reported.
    let mut mixed = batch(10, 12);
    mixed.extend_from_slice(format!("{{\"ip\":\"{CANARY_IP}\", broken\n").as_bytes());
    let (st, body) = request(port, "POST", "/v1/events", &mixed, &auth).unwrap();
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["invalid"], 1);
    assert_eq!(v["first_invalid"]["line"], 3);
    assert!(!body.contains(CANARY_IP), "{body}");
    // gzip'd.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&batch(20, 25)).unwrap();
    let gz = gz.finish().unwrap();
    let enc = [auth[0], ("Content-Encoding", "gzip")];
    let (st, body) = request(port, "POST", "/v1/events", &gz, &enc).unwrap();
    assert_eq!(st, 200, "{body}");
    stop(child);
    let s = seen(dir.path());
    assert_eq!(
        s.keys().copied().collect::<Vec<_>>(),
        vec![10, 11, 20, 21, 22, 23, 24],
        "only the accepted batches"
    );
    assert_eq!(parquet_rows(&dir.path().join("out"), "_quarantine"), 1);
    assert_no_canaries(dir.path(), &[&err]);
    let e = std::fs::read_to_string(&err).unwrap();
    assert!(!e.contains("s3cret-token"), "the token was logged");
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
// The slow sink is a hook of debug builds.
#[cfg_attr(not(debug_assertions), ignore)]
fn a_slow_pipeline_answers_503_instead_of_buffering() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A deliberately slow sink: every commit takes a second (a debug-build hook), so the
    // spool's backlog grows past its 1 MiB.
    let conf = pipeline(
        dir.path(),
        port,
        "",
        "commit_interval_ms = 100\nmax_spool_bytes = 1048576",
    );
    let err = dir.path().join("stderr");
    let mut child = spawn_with(&conf, &err, &[("LOGVEIL_TEST_SLOW_COMMIT_MS", "1000")]);
    wait_listening(port, &mut child);
    // Four clients offer 160 MB; memory must not follow.
    let statuses: Vec<(u64, u16, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|c| {
                s.spawn(move || {
                    (0..100u64)
                        .map(|i| {
                            let b = c * 100 + i;
                            let (st, body) = post(port, &batch(b * 1000, b * 1000 + 1000)).unwrap();
                            (b, st, body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let rss = peak_rss_mib(child.id());
    let accepted: Vec<u64> = statuses
        .iter()
        .filter(|s| s.1 == 200)
        .map(|s| s.0)
        .collect();
    let refused = statuses.iter().filter(|s| s.1 == 503).count();
    assert!(
        !accepted.is_empty() && refused > 0,
        "{} accepted, {refused} refused",
        accepted.len()
    );
    assert!(
        statuses.iter().all(|s| s.1 == 200 || s.1 == 503),
        "{:?}",
        statuses.iter().find(|s| s.1 != 200 && s.1 != 503)
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.1 == 503 && s.2.contains("backpressure")),
        "503 says why"
    );
    assert!(rss < 256, "peak RSS {rss} MiB with a slow sink");
    stop(child);
    // What was accepted is all there, once; nothing else.
    let s = seen(dir.path());
    assert_eq!(s.len(), accepted.len() * 1000);
    assert!(s.values().all(|c| *c == 1));
    assert!(accepted.iter().all(|b| s.contains_key(&(b * 1000))));
}

#[test]
fn kill_9_while_clients_post_loses_and_repeats_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = pipeline(dir.path(), port, "", "commit_interval_ms = 100");
    let err = dir.path().join("stderr");
    const SIZE: u64 = 100;
    let rounds: u64 = std::env::var("LOGVEIL_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut acked: Vec<u64> = Vec::new(); // batch numbers answered 200
    let mut next = 0u64;
    let mut rng = 0x9e3779b97f4a7c15u64;
    for round in 0..rounds {
        let mut child = spawn(&conf, &err);
        wait_listening(port, &mut child);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(50 + rng % 400);
        let start = Instant::now();
        let stop_at = start + kill_after;
        let pid = child.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
            signal(pid, "-KILL");
        });
        // One client posting batch after batch until the server is gone.
        loop {
            let b = next;
            next += 1;
            match post(port, &batch(b * SIZE, b * SIZE + SIZE)) {
                Some((200, _)) => acked.push(b),
                Some((503, _)) => {}
                _ => break,
            }
            if Instant::now() > stop_at + Duration::from_secs(5) {
                break;
            }
        }
        killer.join().unwrap();
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(9), "round {round}: {st:?}");
    }
    // A last run reads what the spool still holds.
    ok(bin().args(["run", "--no-progress", "--once"]).arg(&conf));
    let s = seen(dir.path());
    let twice: Vec<_> = s.iter().filter(|(_, c)| **c > 1).map(|(v, _)| *v).collect();
    assert!(
        twice.is_empty(),
        "written twice: {:?}",
        &twice[..twice.len().min(20)]
    );
    let missing: Vec<u64> = acked
        .iter()
        .flat_map(|b| b * SIZE..b * SIZE + SIZE)
        .filter(|v| !s.contains_key(v))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        acked.len() as u64 >= rounds,
        "too few batches were acknowledged to mean anything"
    );
    eprintln!(
        "{rounds} kill -9 rounds: {} batches acknowledged, {} events in the output",
        acked.len(),
        s.len()
    );
}

#[test]
fn syslog_over_tcp_and_udp_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("p.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[output]
root = {root:?}
[keys]
dev_key = true
[runtime]
now = "2026-11-28T12:00:00Z"
commit_interval_ms = 200
poll_interval_ms = 20
[[sources]]
name = "auth-syslog"
format = "syslog"
[sources.syslog]
udp = "127.0.0.1:{port}"
tcp = "127.0.0.1:{port}"
"#,
            root = dir.path().join("out"),
        ),
    )
    .unwrap();
    let err = dir.path().join("stderr");
    let mut child = spawn(&conf, &err);
    wait_listening(port, &mut child);
    let msg = |n: u64| {
        format!(
            "<38>1 2026-11-27T10:{:02}:{:02}Z auth-1 sshd 411 - - Accepted publickey for n{n} from {CANARY_IP}",
            (n / 60) % 60,
            n % 60
        )
    };
    // TCP: newline framing, then octet counting, on one connection.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut text = String::new();
    for n in 0..300 {
        text.push_str(&msg(n));
        text.push('\n');
    }
    for n in 300..600 {
        let m = msg(n);
        text.push_str(&format!("{} {m}", m.len()));
    }
    s.write_all(text.as_bytes()).unwrap();
    drop(s);
    // UDP: one message per datagram (paced: the kernel may drop a burst).
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 600..650 {
        u.send_to(msg(n).as_bytes(), ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // Wait until everything is committed, then stop.
    let start = Instant::now();
    while parquet_rows(&dir.path().join("out"), "syslog") < 650 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} rows",
            parquet_rows(&dir.path().join("out"), "syslog")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(child);
    assert_eq!(parquet_rows(&dir.path().join("out"), "syslog"), 650);
    assert_no_canaries(dir.path(), &[&err]);
}

#[test]
fn network_sources_are_checked_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bad = [
        ("format = \"combined\"", "NDJSON"),
        (
            "format = \"session-json\"\npaths = [\"x.log\"]",
            "reads no files",
        ),
    ];
    for (src, why) in bad {
        let p = dir.path().join("bad.toml");
        std::fs::write(
            &p,
            format!(
                "[output]\nroot = \"out\"\n[keys]\ndev_key = true\n[[sources]]\nname = \"e\"\n{src}\n[sources.http]\naddress = \"127.0.0.1:{port}\"\n"
            ),
        )
        .unwrap();
        let out = run(bin().args(["run", "--no-progress"]).arg(&p));
        assert_eq!(out.status.code(), Some(2), "{src}");
        assert!(text(&out.stderr).contains(why), "{}", text(&out.stderr));
    }
    // A port in use is an error at start-up, naming the source and the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = taken.local_addr().unwrap().port();
    let conf = pipeline(dir.path(), tport, "", "");
    let out = run(bin().args(["run", "--no-progress"]).arg(&conf));
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("source events") && e.contains(&tport.to_string()),
        "{e}"
    );
}

#[test]
fn a_followed_stdin_is_committed_through_its_spool_and_ends_with_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("p.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[output]
root = {root:?}
[keys]
dev_key = true
[runtime]
now = "2026-11-28T12:00:00Z"
commit_interval_ms = 100
poll_interval_ms = 20
[[sources]]
name = "piped"
format = "session-json"
paths = ["-"]
follow = true
"#,
            root = dir.path().join("out"),
        ),
    )
    .unwrap();
    let err = dir.path().join("stderr");
    let mut child = bin()
        .args(["run", "--no-progress"])
        .arg(&conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // In pieces, with pauses (several epochs), the last line without its newline.
    for part in 0..5u64 {
        stdin
            .write_all(&batch(part * 500, part * 500 + 500))
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    // A line over the line limit (64 KiB) is quarantined as too long, as in a file.
    let long = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(70_000));
    stdin.write_all(long.as_bytes()).unwrap();
    stdin.write_all(event(2500).trim_end().as_bytes()).unwrap();
    drop(stdin);
    let st = child.wait().unwrap();
    assert!(
        st.success(),
        "{st:?}: {}",
        std::fs::read_to_string(&err).unwrap()
    );
    let s = seen(dir.path());
    assert_eq!(s.len(), 2501);
    assert!(s.values().all(|c| *c == 1));
    assert_eq!(parquet_rows(&dir.path().join("out"), "_quarantine"), 1);
    assert_eq!(
        files_under(&dir.path().join("out/_spool/piped"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
            .count(),
        0,
        "nothing raw is left"
    );
    assert_no_canaries(dir.path(), &[&err]);
}

/// A self-signed certificate for localhost and 127.0.0.1 (PEM files), made with the openssl
/// command; `None` (the test skips) without it.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    st.success().then_some((cert, key))
}

#[test]
fn syslog_over_tls_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        eprintln!("skipped: no openssl command to make a test certificate");
        return;
    };
    let port = free_port();
    let conf = dir.path().join("p.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[output]
root = {root:?}
[keys]
dev_key = true
[runtime]
now = "2026-11-28T12:00:00Z"
commit_interval_ms = 200
poll_interval_ms = 20
[[sources]]
name = "auth-syslog-tls"
format = "syslog"
[sources.syslog]
tls = "127.0.0.1:{port}"
tls_cert = {cert:?}
tls_key = {key:?}
"#,
            root = dir.path().join("out"),
        ),
    )
    .unwrap();
    let err = dir.path().join("stderr");
    let mut child = spawn(&conf, &err);
    wait_listening(port, &mut child);
    // A TLS client trusting only the test certificate.
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut text = String::new();
    for n in 0..200u64 {
        let m = format!(
            "<38>1 2026-11-27T11:{:02}:{:02}Z auth-1 sshd 411 - - Failed password for n{n} from {CANARY_IP}",
            n / 60,
            n % 60
        );
        // RFC 5425: octet-counted frames.
        text.push_str(&format!("{} {m}", m.len()));
    }
    tls.write_all(text.as_bytes()).unwrap();
    tls.flush().unwrap();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    drop(tls);
    let start = Instant::now();
    while parquet_rows(&dir.path().join("out"), "syslog") < 200 {
        assert!(start.elapsed() < Duration::from_secs(60), "not committed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A plain-TCP client on the TLS port gets nothing in.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = plain.write_all(b"<38>1 2026-11-27T12:00:00Z h a - - - plain text\n");
    drop(plain);
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    assert_eq!(parquet_rows(&dir.path().join("out"), "syslog"), 200);
    assert_no_canaries(dir.path(), &[&err]);
}

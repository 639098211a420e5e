//! NATS JetStream to S3, end to end: session events published to a stream (nats-server with
//! JetStream on 127.0.0.1:4222, started by `.ci/run`) land in an S3 bucket (moto) exactly
//! once, with one instance killed mid-commit (its messages redelivered to the others after
//! `ack_wait`) and two more sharing the durable consumer; canaries planted in the events leak
//! nowhere. Without the servers the test says so in one line and passes, unless
//! `LOGVEIL_REQUIRE_NATS=1` (CI).

use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

mod common;
use common::s3::*;
use common::*;

const NATS: &str = "127.0.0.1:4222";

fn nats_available(test: &str) -> bool {
    if TcpStream::connect(NATS).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("LOGVEIL_REQUIRE_NATS").is_none(),
        "LOGVEIL_REQUIRE_NATS is set but no NATS server answers on {NATS}"
    );
    eprintln!("skipping {test}: no NATS server on {NATS} (nats-server -js -a 127.0.0.1 -p 4222)");
    false
}

/// Publishes the events (acknowledged by JetStream), creating the stream first if `create`.
fn publish(stream: &str, subject: &str, events: &[String], create: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://{NATS}")).await.unwrap();
        let js = async_nats::jetstream::new(client);
        if create {
            js.create_stream(async_nats::jetstream::stream::Config {
                name: stream.to_string(),
                subjects: vec![format!("{stream}.>")],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let mut acks = Vec::new();
        for e in events {
            acks.push(
                js.publish(subject.to_string(), e.clone().into())
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
    });
}

/// Session events, each with its own device id, address, session id and duration.
fn events(n: usize) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut canaries = Vec::new();
    for i in 0..n {
        let ip = format!("203.0.{}.{}", 113 + i / 250, 1 + i % 250);
        let device = format!("d3v1ce{i:010x}");
        let session = format!("5e551on-{i:08}-zq");
        out.push(format!(
            r#"{{"ts":"2026-11-27T{:02}:{:02}:00.000Z","event":"page_view","session_id":"{session}","device_id":"{device}","ip":"{ip}","user_agent":"ProxyApp/3.2.1 (Android 14; SM-S928B)","page":"/dashboard/usage","app":"android","app_version":"3.2.1","duration_ms":{},"consent":{{"necessary":true,"preferences":true,"statistics":true,"marketing":false}}}}"#,
            10 + i % 5,
            i % 60,
            1000 + i
        ));
        canaries.extend([ip, device, session]);
    }
    (out, canaries)
}

fn pipeline(dir: &Path, root: &str, stream: &str) -> std::path::PathBuf {
    let p = dir.join("nats.toml");
    std::fs::write(
        &p,
        format!(
            r#"
[output]
root = "{root}"

[output.storage]
aws_endpoint = "http://{ENDPOINT}"
aws_allow_http = "true"

[keys]
dev_key = true

[runtime]
commit_interval_ms = 1000
threads = 1

[datasets.session]
retention_days = 90

[[sources]]
name = "events"
format = "session-json"
dataset = "session"

[sources.nats]
url = "nats://{NATS}"
stream = "{stream}"
consumer = "logveil"
subject = "{stream}.session"
ack_wait_s = 3
"#
        ),
    )
    .unwrap();
    p
}

/// `pipelines/nats-s3.toml` runs as it is against the CI servers (stream `EVENTS`, bucket
/// `logs`).
#[test]
fn the_example_pipeline_runs_as_it_is() {
    let test = "the_example_pipeline_runs_as_it_is";
    if !nats_available(test) || !s3_available(test) {
        return;
    }
    let _ = http("PUT", "/logs", b"");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (lines, canaries) = events(40);
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://{NATS}")).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.session".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        for l in &lines {
            js.publish("events.session", l.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let out = ok(s3_bin().current_dir(workspace_root()).args([
        "run",
        "pipelines/nats-s3.toml",
        "--once",
        "--no-progress",
    ]));
    let stderr = text(&out.stderr);
    let m = tempfile::tempdir().unwrap();
    mirror("logs", m.path());
    let durations = column_values_u64(&m.path().join("lake"), "session", "duration_ms");
    for i in 0..40u64 {
        assert!(
            durations.contains(&(1000 + i)),
            "event {i} landed\n{stderr}"
        );
    }
    for c in &canaries {
        assert!(!stderr.contains(c.as_str()));
    }
}

#[test]
fn events_land_in_s3_exactly_once_across_a_killed_instance() {
    let test = "events_land_in_s3_exactly_once_across_a_killed_instance";
    if !nats_available(test) || !s3_available(test) {
        return;
    }
    let stream = format!(
        "EV{}x{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() % 100_000
    );
    let n = 900;
    let (lines, canaries) = events(n);
    let subject = format!("{stream}.session");
    publish(&stream, &subject, &lines[..600], true);
    let bucket = new_bucket("nats");
    let root = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), &root, &stream);

    // The first instance dies (abort, like kill -9) right after journaling its first commit
    // (the first 600 events).
    let out = s3_bin()
        .args(["run"])
        .arg(&conf)
        .env("LOGVEIL_TEST_CRASH_AT", "journaled:1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stderr));
    publish(&stream, &subject, &lines[600..], false);

    // Two more share the consumer and the new events; the dead one's messages come back
    // after ack_wait, and its pending commit is completed instead of repeated.
    let stderr = run_instances(&conf, 2);
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    // Each event has its own duration.
    assert_exactly_once(&m.path().join("lake"), "session", "duration_ms", n, &stderr);
    for (p, t) in all_output_text(m.path()) {
        for c in &canaries {
            let leaked = if c.contains('.') {
                t.split(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .any(|tok| tok == c)
            } else {
                t.contains(c.as_str())
            };
            assert!(!leaked, "{c} in {}", p.display());
        }
    }
    for c in &canaries {
        assert!(!stderr.contains(c.as_str()), "{c} on stderr");
    }
}

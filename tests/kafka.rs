//! Kafka to S3, end to end: records produced to a topic (a Kafka-protocol broker on
//! 127.0.0.1:19092, tansu, started by `.ci/run`) land in an S3 bucket (moto) exactly once,
//! with one instance killed mid-commit and two more sharing the partitions in one consumer
//! group; canaries planted in the records leak nowhere. Without the servers the test says so
//! in one line and passes, unless `LOGVEIL_REQUIRE_KAFKA=1` (CI).

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

mod common;
use common::s3::*;
use common::*;

const BROKER: &str = "127.0.0.1:19092";

fn kafka_available(test: &str) -> bool {
    if TcpStream::connect(BROKER).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("LOGVEIL_REQUIRE_KAFKA").is_none(),
        "LOGVEIL_REQUIRE_KAFKA is set but no broker answers on {BROKER}"
    );
    eprintln!("skipping {test}: no Kafka broker on {BROKER} (see .ci/run: tansu broker)");
    false
}

fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let r = futures::executor::block_on(admin.create_topics(
        [&topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .unwrap();
    for t in r {
        t.unwrap();
    }
}

fn produce(topic: &str, lines: &[String]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (i, l) in lines.iter().enumerate() {
        let key = format!("k{i}");
        loop {
            match p.send(BaseRecord::to(topic).key(&key).payload(l)) {
                Ok(()) => break,
                Err((_, _)) => {
                    p.poll(Duration::from_millis(50));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Access-log lines, each with its own client address, path and secret query token.
fn records(n: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut ips = Vec::new();
    let mut secrets = Vec::new();
    for i in 0..n {
        let ip = format!("198.51.{}.{}", 100 + i / 250, 1 + i % 250);
        let secret = format!("zqxSECRET{i:05}vw");
        lines.push(format!(
            "{ip} - - [27/Nov/2026:{:02}:{:02}:07 +0000] \"GET /item/{i}?token={secret} HTTP/1.1\" 200 {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0\"",
            8 + (i % 3),
            i % 60,
            100 + i
        ));
        ips.push(ip);
        secrets.push(secret);
    }
    (lines, ips, secrets)
}

fn pipeline(dir: &Path, root: &str, topic: &str, group: &str) -> std::path::PathBuf {
    let p = dir.join("kafka.toml");
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

[[sources]]
name = "edge"
format = "combined"
dataset = "access"

[sources.kafka]
brokers = "{BROKER}"
group = "{group}"
topics = ["{topic}"]
options = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}
"#
        ),
    )
    .unwrap();
    p
}

/// `pipelines/kafka-s3.toml` runs as it is against the CI servers (topic `access`, bucket
/// `logs`).
#[test]
fn the_example_pipeline_runs_as_it_is() {
    let test = "the_example_pipeline_runs_as_it_is";
    if !kafka_available(test) || !s3_available(test) {
        return;
    }
    // Other runs may have made them already.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .create()
        .unwrap();
    let _ = futures::executor::block_on(admin.create_topics(
        [&NewTopic::new("access", 3, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ));
    let _ = http("PUT", "/logs", b"");
    let (lines, ips, _) = records(50);
    produce("access", &lines);
    let out = ok(s3_bin().current_dir(workspace_root()).args([
        "run",
        "pipelines/kafka-s3.toml",
        "--once",
        "--no-progress",
    ]));
    let stderr = text(&out.stderr);
    let m = tempfile::tempdir().unwrap();
    mirror("logs", m.path());
    let sizes = column_values_u64(&m.path().join("lake"), "access", "bytes_sent");
    for i in 0..50u64 {
        assert!(sizes.contains(&(100 + i)), "record {i} landed\n{stderr}");
    }
    for ip in &ips {
        assert!(!stderr.contains(ip.as_str()));
    }
}

#[test]
fn records_land_in_s3_exactly_once_across_a_killed_instance_and_a_rebalance() {
    let test = "records_land_in_s3_exactly_once_across_a_killed_instance_and_a_rebalance";
    if !kafka_available(test) || !s3_available(test) {
        return;
    }
    let tag = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let topic = format!("access-{tag}");
    let group = format!("logveil-{tag}");
    create_topic(&topic, 3);
    let n = 900;
    let (lines, ips, secrets) = records(n);
    produce(&topic, &lines);
    let bucket = new_bucket("kafka");
    let root = format!("s3://{bucket}/lake");
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(dir.path(), &root, &topic, &group);

    // The first instance dies (abort, like kill -9) right after journaling its second commit:
    // that commit's files are staged, recorded, and not yet published.
    let out = s3_bin()
        .args(["run"])
        .arg(&conf)
        .env("LOGVEIL_TEST_CRASH_AT", "journaled:2")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stderr));

    // Two more share the partitions (the dead one's membership times out first).
    let stderr = run_instances(&conf, 2);
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    // Each record has its own byte count.
    assert_exactly_once(&m.path().join("lake"), "access", "bytes_sent", n, &stderr);
    // Canaries: no address, no query secret, anywhere in the bucket or on stderr.
    for (p, t) in all_output_text(m.path()) {
        for s in &secrets {
            assert!(!t.contains(s.as_str()), "{s} in {}", p.display());
        }
        for ip in &ips {
            let leaked = t
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|tok| tok == ip);
            assert!(!leaked, "{ip} in {}", p.display());
        }
    }
    for ip in &ips {
        assert!(!stderr.contains(ip.as_str()), "{ip} on stderr");
    }
}

/// A topic written by a transactional producer: `--once` reads to the end (the transaction
/// markers after each transaction are not records left to read), every record once. (That a
/// `read_committed` consumer skips aborted transactions is the broker's part: tansu 0.6
/// hands their records out all the same, to confluent-kafka's consumer too, so aborts are
/// not tested here.)
#[test]
fn once_reads_a_transactional_topic_past_its_markers() {
    let test = "once_reads_a_transactional_topic_past_its_markers";
    if !kafka_available(test) || !s3_available(test) {
        return;
    }
    let tag = format!("{}-tx", std::process::id());
    let topic = format!("access-{tag}");
    create_topic(&topic, 2);
    let (lines, _, _) = records(90);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("transactional.id", format!("logveil-test-{tag}"))
        .create()
        .unwrap();
    let t = Duration::from_secs(30);
    p.init_transactions(t).unwrap();
    for batch in lines.chunks(30) {
        p.begin_transaction().unwrap();
        for (i, l) in batch.iter().enumerate() {
            let key = format!("k{i}");
            while p.send(BaseRecord::to(&topic).key(&key).payload(l)).is_err() {
                p.poll(Duration::from_millis(50));
            }
        }
        p.commit_transaction(t).unwrap();
    }
    let bucket = new_bucket("kafka-tx");
    let dir = tempfile::tempdir().unwrap();
    let conf = pipeline(
        dir.path(),
        &format!("s3://{bucket}/lake"),
        &topic,
        &format!("logveil-{tag}"),
    );
    let stderr = run_instances(&conf, 1);
    let m = tempfile::tempdir().unwrap();
    mirror(&bucket, m.path());
    assert_exactly_once(&m.path().join("lake"), "access", "bytes_sent", 90, &stderr);
}

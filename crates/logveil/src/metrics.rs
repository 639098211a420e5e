//! Observability of `logveil run`: counters and gauges through the `metrics` facade, exported
//! in the Prometheus text format, and a small HTTP endpoint (`[runtime] metrics_address`)
//! serving `/metrics`, `/health` (the process is up) and `/ready` (every followed source has
//! resumed from its journal). Labels are source names, dataset names, reasons and rule ids:
//! never anything read from the input.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::ingest::Counts;

/// What the endpoint needs to answer.
#[derive(Clone)]
pub struct Endpoint {
    handle: PrometheusHandle,
    /// Followed sources that have not resumed yet.
    pub starting: Arc<AtomicUsize>,
    /// Set when the run is stopping (SIGTERM/SIGINT): no longer ready.
    pub stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

/// Installs the recorder and serves the endpoint on `addr` from a thread of its own.
/// Returns the address actually bound (port 0 picks one).
pub fn serve(
    addr: &str,
    sources: usize,
    stopping: Arc<AtomicBool>,
) -> Result<(SocketAddr, Endpoint)> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
        .context("configuring the metrics histograms")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("metrics_address {addr}: cannot listen there"))?;
    let bound = listener.local_addr()?;
    let ep = Endpoint {
        handle,
        starting: Arc::new(AtomicUsize::new(sources)),
        stopping,
    };
    let served = ep.clone();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            // A thread per connection (at most a few at once), each with a deadline, so that
            // a slow or idle client never holds up the probes.
            let busy = Arc::new(AtomicUsize::new(0));
            for conn in listener.incoming() {
                let conn = match conn {
                    Ok(c) => c,
                    Err(_) => {
                        // E.g. out of file descriptors: do not spin.
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                if busy.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    continue; // dropped: the client retries
                }
                busy.fetch_add(1, Ordering::Relaxed);
                let (ep, done) = (served.clone(), busy.clone());
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .spawn(move || {
                        let _ = answer(conn, &ep);
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    // The closure, and its decrement, went with the failed spawn.
                    busy.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })
        .context("starting the metrics thread")?;
    Ok((bound, ep))
}

/// Connections answered at once.
const MAX_CONNECTIONS: usize = 8;

fn answer(mut conn: TcpStream, ep: &Endpoint) -> std::io::Result<()> {
    // The whole request must arrive within this.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    // The request line is all that matters: read until its end.
    while !req.contains(&b'\n') && req.len() < 8192 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or(&[])
        .strip_suffix(b"\r")
        .unwrap_or_else(|| req.split(|b| *b == b'\n').next().unwrap_or(&[]));
    let mut parts = line.split(|b| *b == b' ');
    let method = parts.next().unwrap_or(&[]);
    let target = parts.next().unwrap_or(&[]);
    let path = target.split(|b| *b == b'?').next().unwrap_or(&[]);
    let head = method == b"HEAD";
    let method: &[u8] = if head { b"GET" } else { method };
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4", ep.handle.render()),
        (b"GET", b"/health") => ("200 OK", "text/plain", "ok\n".to_string()),
        (b"GET", b"/ready") => {
            if ep.starting.load(Ordering::Relaxed) == 0 && !ep.stopping.load(Ordering::Relaxed) {
                ("200 OK", "text/plain", "ready\n".to_string())
            } else {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    "not ready\n".to_string(),
                )
            }
        }
        (b"GET", _) => (
            "404 Not Found",
            "text/plain",
            "/metrics, /health, /ready\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if head { "" } else { body.as_str() }
    )
}

/// Records one committed epoch of a followed source.
pub fn record_epoch(source: &str, c: &Counts, commit: Duration) {
    let s = source.to_string();
    counter!("logveil_lines_read_total", "source" => s.clone()).increment(c.lines_read);
    counter!("logveil_bytes_read_total", "source" => s.clone()).increment(c.bytes_read);
    counter!("logveil_files_written_total", "source" => s.clone()).increment(c.files);
    counter!("logveil_commits_total", "source" => s.clone()).increment(1);
    histogram!("logveil_commit_seconds", "source" => s.clone()).record(commit.as_secs_f64());
    gauge!("logveil_last_commit_timestamp_seconds", "source" => s.clone())
        .set(crate::now_micros() as f64 / 1e6);
    for (ds, n) in &c.records_written {
        counter!("logveil_records_written_total", "source" => s.clone(), "dataset" => ds.clone())
            .increment(*n);
    }
    for (reason, n) in &c.dropped {
        counter!("logveil_dropped_total", "source" => s.clone(), "reason" => *reason).increment(*n);
    }
    for (reason, n) in &c.quarantined {
        counter!("logveil_quarantined_total", "source" => s.clone(), "reason" => *reason)
            .increment(*n);
    }
    for (ds, rules) in &c.rules {
        for (rule, n) in rules.nonzero() {
            counter!("logveil_rule_applications_total", "dataset" => ds.clone(), "rule" => rule)
                .increment(n);
        }
    }
}

/// Gauges of a followed source between commits.
pub fn record_state(source: &str, lag_bytes: u64, queued: usize, files: usize) {
    let s = source.to_string();
    gauge!("logveil_source_lag_bytes", "source" => s.clone()).set(lag_bytes as f64);
    gauge!("logveil_queue_chunks", "source" => s.clone()).set(queued as f64);
    gauge!("logveil_followed_files", "source" => s).set(files as f64);
}

/// A Kafka source: records on its assigned partitions not read yet (when the brokers
/// answered), and rebalances seen.
pub fn record_kafka(source: &str, lag_records: Option<u64>, rebalances: u64) {
    let s = source.to_string();
    if let Some(lag) = lag_records {
        gauge!("logveil_kafka_lag_records", "source" => s.clone()).set(lag as f64);
    }
    gauge!("logveil_kafka_rebalances", "source" => s).set(rebalances as f64);
}

/// A network source's spool: durable bytes not committed yet (what backpressure limits).
pub fn record_spool(source: &str, backlog: u64) {
    gauge!("logveil_spool_backlog_bytes", "source" => source.to_string()).set(backlog as f64);
}

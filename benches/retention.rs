//! Retention sweep cost: does it grow with the number of expired partitions, or with the
//! data kept? Builds roots of hourly partitions on local disk (one 1 KiB stand-in file plus
//! a manifest each, laid out as the sink writes them), sweeps them with a clock chosen so
//! that exactly E partitions have expired, and prints the wall time (median of 3 fresh
//! roots). Also times `status` over the whole root and a dry run.
//!
//!     cargo bench -p logveil-retention --bench retention
//!
//! Set `LOGVEIL_BENCH_DIR` to put the roots on another disk (default: the system temp dir).

use std::path::{Path, PathBuf};
use std::time::Instant;

use logveil_model::HourKey;
use logveil_model::time::{MICROS_PER_DAY, MICROS_PER_HOUR, parse_rfc3339};
use logveil_retention::{SweepOptions, Sweeper, synth};
use logveil_sink::Storage;

const RETENTION_DAYS: u32 = 30;

fn base() -> HourKey {
    HourKey::of_micros(parse_rfc3339(b"2025-01-01T00:00:00Z").expect("valid time"))
}

/// A root with `total` hourly partitions of dataset `access`, written without fsync.
fn build(dir: &Path, total: i64) {
    let write = |(p, b): (object_store::path::Path, bytes::Bytes)| {
        let f = dir.join(p.as_ref());
        std::fs::create_dir_all(f.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(f, b).expect("write");
    };
    write(synth::marker("access", "access", RETENTION_DAYS));
    for h in 0..total {
        for o in synth::partition(
            "access",
            "access",
            RETENTION_DAYS,
            HourKey(base().0 + h),
            1,
            1024,
        ) {
            write(o);
        }
    }
}

/// The instant at which exactly `expired` partitions have expired.
fn now_for(expired: i64) -> i64 {
    base().start_micros() + expired * MICROS_PER_HOUR + i64::from(RETENTION_DAYS) * MICROS_PER_DAY
}

fn scratch() -> PathBuf {
    std::env::var_os("LOGVEIL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // Criterion-style filters are accepted and ignored (`cargo bench` passes `--bench`).
    println!(
        "{:>8} {:>8} {:>10} {:>12} {:>14}",
        "total", "expired", "examined", "sweep s", "ms/expired"
    );
    let cases: [(i64, i64); 7] = [
        (10_000, 0),
        (10_000, 10),
        (1_000, 100),
        (10_000, 100),
        (100_000, 100),
        (10_000, 1_000),
        (10_000, 10_000),
    ];
    for (total, expired) in cases {
        let mut times = Vec::new();
        let mut examined = 0;
        for _ in 0..3 {
            let dir = tempfile::tempdir_in(scratch()).expect("temp dir");
            build(dir.path(), total);
            let storage = Storage::local(dir.path()).expect("root");
            let opts = SweepOptions {
                now: now_for(expired),
                wall_clock: now_for(expired),
                dry_run: false,
                operator: "bench".into(),
                sweep_id: "bench".into(),
            };
            let t = Instant::now();
            let r = Sweeper::new(storage).sweep(&opts).expect("sweep");
            times.push(t.elapsed().as_secs_f64());
            assert_eq!(r.deleted.len() as i64, expired);
            examined = r.partitions_examined;
        }
        let s = median(times);
        println!(
            "{total:>8} {expired:>8} {examined:>10} {s:>12.3} {:>14}",
            if expired > 0 {
                format!("{:.2}", s * 1000.0 / expired as f64)
            } else {
                "-".into()
            }
        );
    }

    // Read-only views over the whole 10,000-partition root.
    let dir = tempfile::tempdir_in(scratch()).expect("temp dir");
    build(dir.path(), 10_000);
    let storage = Storage::local(dir.path()).expect("root");
    let t = Instant::now();
    let st = logveil_retention::status(&storage, now_for(1_000)).expect("status");
    let status_s = t.elapsed().as_secs_f64();
    assert_eq!(st.datasets[0].partitions, 10_000);
    let t = Instant::now();
    let r = Sweeper::new(storage)
        .sweep(&SweepOptions {
            now: now_for(1_000),
            wall_clock: now_for(1_000),
            dry_run: true,
            operator: "bench".into(),
            sweep_id: "bench-dry".into(),
        })
        .expect("dry run");
    let dry_s = t.elapsed().as_secs_f64();
    assert_eq!(r.deleted.len(), 1_000);
    println!(
        "status over 10000 partitions: {status_s:.3} s; dry run finding 1000 expired: {dry_s:.3} s"
    );
}

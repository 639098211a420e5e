//! Criterion benchmarks of the core path, stage by stage, on generated combined-format lines
//! (the same generator as the demo and the end-to-end benchmark):
//!
//! - `parse/combined`: nom parser alone;
//! - `pseudonymise/*`: keyed BLAKE3 of an IP, with and without the per-worker cache;
//! - `engine/access`: parse + the whole privacy engine (proxy rules, pseudonyms, path,
//!   referrer, user agent);
//! - `encode/access`: parse + engine + Arrow builders + zstd Parquet into memory;
//! - `selfcheck/*`: the privacy self-check scanning the access batches' string columns.
//!
//! Free-text scrubbing has its own bench in the privacy crate (`benches/scrub.rs`).
//!
//! Run: `cargo bench -p logveil --bench core`. Throughput is reported per line and per byte.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logveil_fixtures::{AccessFormat, Config};
use logveil_parse::access::{AccessFormat as Fmt, parse_access};
use logveil_privacy::keys::Algorithm;
use logveil_privacy::pseudonym::{IpCache, Pseudonymiser, Truncation};
use logveil_privacy::{Engine, EngineConfig, Key, KeyRing, Outcome};
use logveil_sink::{AccessBuilder, RowBuilder};
use std::hint::black_box;

const LINES: u64 = 100_000;

fn input() -> (Vec<u8>, Vec<(usize, usize)>) {
    let cfg = Config {
        malformed_share: 0.0,
        ..Config::default()
    };
    let mut buf = Vec::new();
    logveil_fixtures::write_access(&cfg, AccessFormat::Combined, LINES, &mut buf).unwrap();
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            spans.push((start, i));
            start = i + 1;
        }
    }
    (buf, spans)
}

fn benches(c: &mut Criterion) {
    let (buf, spans) = input();
    let lines: Vec<&[u8]> = spans.iter().map(|&(a, b)| &buf[a..b]).collect();
    let bytes = buf.len() as u64;

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("combined", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for l in &lines {
                ok += parse_access(l, Fmt::Combined).is_ok() as u64;
            }
            black_box(ok)
        })
    });
    g.finish();

    let key = Key::development();
    let p = Pseudonymiser::new(&key);
    let t = Truncation::default();
    let clients: Vec<&[u8]> = lines
        .iter()
        .filter_map(|l| l.split(|b| *b == b' ').next())
        .collect();
    let mut g = c.benchmark_group("pseudonymise");
    g.throughput(Throughput::Elements(clients.len() as u64));
    g.bench_function("ip_uncached", |b| {
        b.iter(|| {
            for cl in &clients {
                if let Some(ip) = logveil_privacy::pseudonym::parse_ip(cl) {
                    black_box(p.ip_pseudonym(ip));
                    black_box(t.network(ip));
                }
            }
        })
    });
    let hmac = Pseudonymiser::new(
        &Key::generate(Algorithm::HmacSha256, None, String::new()).expect("randomness"),
    );
    g.bench_function("ip_uncached_hmac_sha256", |b| {
        b.iter(|| {
            for cl in &clients {
                if let Some(ip) = logveil_privacy::pseudonym::parse_ip(cl) {
                    black_box(hmac.ip_pseudonym(ip));
                }
            }
        })
    });
    g.bench_function("ip_cached", |b| {
        let mut cache = IpCache::new(1 << 16);
        b.iter(|| {
            for cl in &clients {
                black_box(cache.lookup(cl, &p, &t));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("access", |b| {
        let mut engine = Engine::new(&KeyRing::development(), EngineConfig::default());
        b.iter(|| {
            let mut kept = 0u64;
            for l in &lines {
                if let Ok(rec) = parse_access(l, Fmt::Combined)
                    && let Outcome::Keep(row) = engine.access(&rec)
                {
                    kept += row.status.unwrap_or(0) as u64;
                }
            }
            black_box(kept)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(20);
    g.bench_function("access_parquet_zstd", |b| {
        let mut engine = Engine::new(&KeyRing::development(), EngineConfig::default());
        b.iter(|| {
            let mut builder = AccessBuilder::with_capacity(64 * 1024);
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut w = parquet::arrow::ArrowWriter::try_new(
                Vec::with_capacity(8 << 20),
                logveil_model::DatasetKind::Access.schema(),
                Some(props),
            )
            .unwrap();
            for l in &lines {
                if let Ok(rec) = parse_access(l, Fmt::Combined)
                    && let Outcome::Keep(row) = engine.access(&rec)
                {
                    builder.append(&row);
                    if builder.len() >= 64 * 1024 {
                        w.write(&builder.finish().unwrap()).unwrap();
                    }
                }
            }
            w.write(&builder.finish().unwrap()).unwrap();
            black_box(w.into_inner().unwrap().len())
        })
    });
    g.finish();

    // The privacy self-check over the same rows, as Arrow batches (what the writer scans
    // before each batch is encoded).
    let mut engine = Engine::new(&KeyRing::development(), EngineConfig::default());
    let mut builder = AccessBuilder::with_capacity(64 * 1024);
    let mut batches = Vec::new();
    for l in &lines {
        if let Ok(rec) = parse_access(l, Fmt::Combined)
            && let Outcome::Keep(row) = engine.access(&rec)
        {
            builder.append(&row);
            if builder.len() >= 64 * 1024 {
                batches.push(builder.finish().unwrap());
            }
        }
    }
    batches.push(builder.finish().unwrap());
    let mut g = c.benchmark_group("selfcheck");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("access_batches", |b| {
        b.iter(|| {
            for batch in &batches {
                assert!(logveil_sink::selfcheck::scan_batch(black_box(batch)).is_none());
            }
        })
    });
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);

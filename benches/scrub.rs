//! Criterion benchmark of free-text scrubbing (`logveil_privacy::scrub`) on real syslog text:
//! loghub Linux + OpenSSH lines when the corpus is present (`$LOGVEIL_CORPUS` or
//! `../shared/corpus`), else the shipped `fixtures/syslog.log`.
//!
//! - `scrub/<input>/markers`: `scrub_text` (IPs and UUIDs become typed markers);
//! - `scrub/<input>/pseudonyms`: `scrub_text_with(.., Some(p), ..)` (IPs and UUIDs become their
//!   keyed pseudonyms: one BLAKE3 per address found);
//! - `scrub/<input>_messages/*`: the same on the message part only (after the RFC 3164 header
//!   `Mmm dd hh:mm:ss host tag:`), which is what the engine scrubs for syslog rows.
//!
//! Throughput is in bytes of input (one newline per line not counted).
//!
//! Run: `cargo bench -p logveil-privacy --bench scrub`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logveil_privacy::Key;
use logveil_privacy::pseudonym::Pseudonymiser;
use logveil_privacy::scrub::{scrub_text, scrub_text_with};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn lines() -> (&'static str, Vec<Vec<u8>>) {
    let corpus = std::env::var_os("LOGVEIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    let loghub = corpus.join("syslog/loghub");
    let (name, files) = if loghub.is_dir() {
        (
            "loghub_linux_openssh",
            vec![loghub.join("Linux_2k.log"), loghub.join("OpenSSH_2k.log")],
        )
    } else {
        println!("scrub bench: no corpus, using fixtures/syslog.log");
        ("fixture_syslog", vec![root().join("fixtures/syslog.log")])
    };
    let mut out = Vec::new();
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        out.extend(
            data.split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    (name, out)
}

/// The message of an RFC 3164 line: what follows the first ": " after the header (the whole
/// line if there is none).
fn message(line: &[u8]) -> Vec<u8> {
    match line.windows(2).position(|w| w == b": ") {
        Some(p) if p > 15 => line[p + 2..].to_vec(),
        _ => line.to_vec(),
    }
}

fn bench_set(c: &mut Criterion, name: &str, lines: &[Vec<u8>], p: &Pseudonymiser) {
    let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let mut g = c.benchmark_group(format!("scrub/{name}"));
    g.throughput(Throughput::Bytes(bytes));
    let mut out = String::new();
    g.bench_function("markers", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in lines {
                scrub_text(black_box(l), 4096, &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    g.bench_function("pseudonyms", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in lines {
                scrub_text_with(black_box(l), 4096, Some(p), &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let (name, lines) = lines();
    let p = Pseudonymiser::new(&Key::development());
    bench_set(c, name, &lines, &p);
    let messages: Vec<Vec<u8>> = lines.iter().map(|l| message(l)).collect();
    bench_set(c, &format!("{name}_messages"), &messages, &p);
}

criterion_group!(scrub, benches);
criterion_main!(scrub);

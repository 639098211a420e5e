//! Criterion benchmarks of every parser alone (the parse step, before privacy and sink), on the
//! shipped fixtures and, when present, on real corpora (`$LOGVEIL_CORPUS` or
//! `../shared/corpus`: loghub Linux + OpenSSH syslog, the Apache combined 2k log).
//!
//! Each input is measured twice: in `lines/*` (throughput in lines/s) and `bytes/*` (MB/s).
//!
//! Run: `cargo bench -p logveil-parse --bench parsers` (add a filter, e.g. `-- syslog`).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logveil_parse::access::{AccessFormat, parse_access};
use logveil_parse::applog::{AppFormat, AppMapping, AppParser};
use logveil_parse::custom::LogFormat;
use logveil_parse::detect::detect;
use logveil_parse::proxy::{ProxyFormat, parse_proxy};
use logveil_parse::session::parse_session;
use logveil_parse::syslog::{SyslogMode, SyslogOptions, parse_syslog};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("LOGVEIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    dir.is_dir().then_some(dir)
}

fn read_lines(paths: &[PathBuf], keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in paths {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        out.extend(
            data.split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty() && keep(l))
                .map(<[u8]>::to_vec),
        );
    }
    out
}

/// Benchmarks `parse` over `lines` (counting successes, which are asserted to be most).
fn bench(c: &mut Criterion, name: &str, lines: &[Vec<u8>], mut parse: impl FnMut(&[u8]) -> bool) {
    let ok = lines.iter().filter(|l| parse(l)).count();
    assert!(
        ok * 10 >= lines.len() * 9,
        "{name}: only {ok} of {} lines parse",
        lines.len()
    );
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    for (group, tp) in [
        ("lines", Throughput::Elements(lines.len() as u64)),
        ("bytes", Throughput::Bytes(bytes)),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(tp);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in lines {
                    n += usize::from(parse(black_box(l)));
                }
                black_box(n)
            })
        });
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let fx = |n: &str| root().join("fixtures").join(n);
    let opts = SyslogOptions {
        reference_micros: 1_795_780_800_000_000, // 2026-11-28T12:00:00Z
        local_offset_secs: 0,
    };

    let access = read_lines(&[fx("access.log")], |_| true);
    bench(c, "combined", &access, |l| {
        parse_access(l, AccessFormat::Combined).is_ok()
    });
    let nginx = LogFormat::nginx(logveil_parse::custom::NGINX_COMBINED).unwrap();
    bench(c, "custom_nginx_combined", &access, |l| {
        nginx.parse(l).is_ok()
    });
    let timed_format = std::fs::read_to_string(fx("nginx_timed.format")).unwrap();
    let timed = LogFormat::nginx(timed_format.trim_end()).unwrap();
    let timed_lines = read_lines(&[fx("nginx_timed.log")], |_| true);
    bench(c, "custom_nginx_timed", &timed_lines, |l| {
        timed.parse(l).is_ok()
    });

    let sessions = read_lines(&[fx("session.jsonl")], |_| true);
    bench(c, "session_json", &sessions, |l| parse_session(l).is_ok());

    let is_5424 = |l: &[u8]| {
        l.starts_with(b"<")
            && l.iter()
                .position(|&b| b == b'>')
                .is_some_and(|i| l.get(i + 1..i + 3) == Some(b"1 "))
    };
    let s5424 = read_lines(&[fx("syslog.log")], is_5424);
    bench(c, "rfc5424", &s5424, |l| {
        parse_syslog(l, SyslogMode::Rfc5424, &opts).is_ok()
    });
    let s3164 = read_lines(&[fx("syslog.log")], |l| !is_5424(l));
    bench(c, "rfc3164", &s3164, |l| {
        parse_syslog(l, SyslogMode::Rfc3164, &opts).is_ok()
    });
    if let Some(dir) = corpus() {
        let loghub = read_lines(
            &[
                dir.join("syslog/loghub/Linux_2k.log"),
                dir.join("syslog/loghub/OpenSSH_2k.log"),
            ],
            |_| true,
        );
        bench(c, "rfc3164_loghub", &loghub, |l| {
            parse_syslog(l, SyslogMode::Auto, &opts).is_ok()
        });
        let apache = read_lines(&[dir.join("access/apache_combined_2k.log")], |_| true);
        bench(c, "combined_apache_2k", &apache, |l| {
            parse_access(l, AccessFormat::Combined).is_ok()
        });
    } else {
        println!("corpus not found: skipping rfc3164_loghub and combined_apache_2k");
    }

    let logfmt_lines = read_lines(&[fx("app.logfmt")], |_| true);
    let mut lf = AppParser::new(AppMapping::default(), AppFormat::Logfmt);
    bench(c, "logfmt", &logfmt_lines, |l| lf.parse(l).is_ok());
    let json_lines = read_lines(&[fx("app.jsonl")], |_| true);
    let mapping = AppMapping {
        ip: vec!["client.ip".into()],
        device_id: vec!["client.device_id".into()],
        method: vec!["http.method".into()],
        path: vec!["http.path".into()],
        status: vec!["http.status_code".into()],
        keep: vec!["trace_id".into()],
        ..AppMapping::default()
    };
    let mut js = AppParser::new(mapping, AppFormat::Json);
    bench(c, "json_app", &json_lines, |l| js.parse(l).is_ok());

    let squid = read_lines(&[fx("squid.log")], |_| true);
    bench(c, "squid", &squid, |l| {
        parse_proxy(l, ProxyFormat::Squid).is_ok()
    });
    let pj = read_lines(&[fx("proxy.jsonl")], |_| true);
    bench(c, "proxy_json", &pj, |l| {
        parse_proxy(l, ProxyFormat::Json).is_ok()
    });

    let sample: Vec<&[u8]> = access.iter().take(64).map(Vec::as_slice).collect();
    c.bench_function("detect/64_combined_lines", |b| {
        b.iter(|| black_box(detect(black_box(&sample)).is_ok()))
    });
}

criterion_group! {
    name = parsers;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(parsers);

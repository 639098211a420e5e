//! `detect` on the input split into lines (blank lines dropped, at most 64 lines).
//!
//! Properties: never panics; an empty sample is refused; on success the evidence reads
//! `N of M sampled lines parse as NAME` with M the sample size, N >= 90 % of M, NAME the
//! chosen format's name, and at least N lines really parse with that format's parser; the
//! messages never echo input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::applog::AppFormat;
use logveil_parse::detect::{Detected, MIN_SHARE, detect};
use logveil_parse::syslog::strip_octet_count;
use logveil_parse::{
    AccessFormat, ProxyFormat, SyslogMode, SyslogOptions, parse_access, parse_proxy, parse_session,
    parse_syslog,
};
use logveil_parse_fuzz::{app_parser, assert_no_leak, lines};

fn parses(f: Detected, line: &[u8]) -> bool {
    let opts = SyslogOptions {
        reference_micros: 4_102_444_800_000_000,
        local_offset_secs: 0,
    };
    let frame = strip_octet_count(line).unwrap_or(line);
    match f {
        Detected::SessionJson => parse_session(line).is_ok(),
        Detected::ProxyJson => parse_proxy(line, ProxyFormat::Json).is_ok(),
        Detected::Json => app_parser(0, AppFormat::Json).parse(line).is_ok(),
        Detected::Rfc5424 => parse_syslog(frame, SyslogMode::Rfc5424, &opts).is_ok(),
        Detected::Rfc3164 => parse_syslog(frame, SyslogMode::Rfc3164, &opts).is_ok(),
        Detected::Combined => parse_access(line, AccessFormat::Combined).is_ok(),
        Detected::Common => parse_access(line, AccessFormat::Common).is_ok(),
        Detected::Squid => parse_proxy(line, ProxyFormat::Squid).is_ok(),
        Detected::Logfmt => app_parser(0, AppFormat::Logfmt).parse(line).is_ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    let sample: Vec<&[u8]> = lines(data).take(64).collect();
    match detect(&sample) {
        Ok(d) => {
            assert!(!sample.is_empty(), "a format detected from no lines");
            assert_no_leak(data, &d.evidence, "evidence");
            let (n, tail) = d.evidence.split_once(" of ").expect("evidence shape");
            let n: usize = n.parse().expect("evidence count");
            let want = format!(
                "{} sampled lines parse as {}",
                sample.len(),
                d.format.name()
            );
            assert_eq!(tail, want, "evidence text");
            assert!(n <= sample.len());
            assert!(
                n as f64 >= MIN_SHARE * sample.len() as f64,
                "share below MIN_SHARE"
            );
            let ok = sample.iter().filter(|l| parses(d.format, l)).count();
            assert!(ok >= n, "evidence claims more lines than parse");
        }
        Err(msg) => assert_no_leak(data, &msg, "detect error"),
    }
});

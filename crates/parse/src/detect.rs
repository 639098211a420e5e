//! Format detection for `--format auto`: runs a sample of lines through each parser and picks
//! the most specific format that (nearly) every sampled line parses as. Refuses to guess when
//! no format explains at least [`MIN_SHARE`] of the sample, so a wrong guess never silently
//! quarantines (or worse, mis-splits) a whole file.

use crate::access::{AccessFormat, parse_access};
use crate::applog::{AppFormat, AppMapping, AppParser};
use crate::proxy::{ProxyFormat, parse_proxy};
use crate::session::parse_session;
use crate::syslog::{SyslogMode, SyslogOptions, parse_syslog, strip_octet_count};

/// Share of sampled lines a format must parse to be chosen.
pub const MIN_SHARE: f64 = 0.9;

/// A format detection can choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    Combined,
    Common,
    SessionJson,
    Rfc5424,
    Rfc3164,
    /// RFC 5424 and RFC 3164 lines mixed: the lenient syslog parser.
    Syslog,
    Logfmt,
    Json,
    Squid,
    ProxyJson,
}

impl Detected {
    /// Candidates, most specific first: the first that explains the sample wins.
    const ORDER: [Detected; 10] = [
        Detected::SessionJson,
        Detected::ProxyJson,
        Detected::Json,
        Detected::Rfc5424,
        Detected::Combined,
        Detected::Common,
        Detected::Squid,
        Detected::Rfc3164,
        Detected::Syslog,
        Detected::Logfmt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Detected::Combined => "combined",
            Detected::Common => "common",
            Detected::SessionJson => "session-json",
            Detected::Rfc5424 => "rfc5424",
            Detected::Rfc3164 => "rfc3164",
            Detected::Syslog => "syslog",
            Detected::Logfmt => "logfmt",
            Detected::Json => "json",
            Detected::Squid => "squid",
            Detected::ProxyJson => "proxy-json",
        }
    }
}

/// The choice and why it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub format: Detected,
    /// E.g. `48 of 50 sampled lines parse as combined`.
    pub evidence: String,
}

/// JSON keys that name a proxy destination: a JSON log with them is a proxy log.
/// (`url` alone is not enough: application logs have it too.)
const DESTINATION_KEYS: [&[u8]; 6] = [
    b"\"dest_host\"",
    b"\"dest_port\"",
    b"\"destination\"",
    b"\"target_host\"",
    b"\"upstream_host\"",
    b"\"dest_ip\"",
];

fn parses(f: Detected, line: &[u8], app_logfmt: &mut AppParser, app_json: &mut AppParser) -> bool {
    let opts = SyslogOptions {
        // Detection checks syntax only; any reference clock after the data will do.
        reference_micros: 4_102_444_800_000_000, // 2100-01-01
        local_offset_secs: 0,
    };
    let json_object = line.trim_ascii_start().starts_with(b"{");
    match f {
        Detected::SessionJson => json_object && parse_session(line).is_ok(),
        Detected::ProxyJson => {
            json_object
                && DESTINATION_KEYS
                    .iter()
                    .any(|k| memchr::memmem::find(line, k).is_some())
                && parse_proxy(line, ProxyFormat::Json).is_ok()
        }
        Detected::Json => json_object && app_json.parse(line).is_ok(),
        Detected::Rfc5424 => {
            let frame = strip_octet_count(line).unwrap_or(line);
            parse_syslog(frame, SyslogMode::Rfc5424, &opts).is_ok()
        }
        Detected::Rfc3164 | Detected::Syslog => {
            let mode = if f == Detected::Syslog {
                SyslogMode::Auto
            } else {
                SyslogMode::Rfc3164
            };
            let frame = strip_octet_count(line).unwrap_or(line);
            parse_syslog(frame, mode, &opts).is_ok()
        }
        Detected::Combined => parse_access(line, AccessFormat::Combined).is_ok(),
        Detected::Common => parse_access(line, AccessFormat::Common).is_ok(),
        Detected::Squid => parse_proxy(line, ProxyFormat::Squid).is_ok(),
        Detected::Logfmt => {
            !json_object
                && memchr::memchr_iter(b'=', line).count() >= 2
                && app_logfmt.parse(line).is_ok()
        }
    }
}

/// Chooses a format for `lines` (without terminators; blank lines already removed), or says
/// why it cannot.
pub fn detect(lines: &[&[u8]]) -> Result<Detection, String> {
    if lines.is_empty() {
        return Err("the input has no lines to look at".into());
    }
    let mut logfmt = AppParser::new(AppMapping::default(), AppFormat::Logfmt);
    let mut json = AppParser::new(AppMapping::default(), AppFormat::Json);
    let mut best: Option<(Detected, usize)> = None;
    for f in Detected::ORDER {
        let ok = lines
            .iter()
            .filter(|l| parses(f, l, &mut logfmt, &mut json))
            .count();
        if ok as f64 >= MIN_SHARE * lines.len() as f64 {
            return Ok(Detection {
                format: f,
                evidence: format!(
                    "{ok} of {} sampled lines parse as {}",
                    lines.len(),
                    f.name()
                ),
            });
        }
        if best.is_none_or(|(_, n)| ok > n) {
            best = Some((f, ok));
        }
    }
    Err(match best {
        Some((f, n)) if n > 0 => format!(
            "the best match, {}, explains only {n} of {} sampled lines",
            f.name(),
            lines.len()
        ),
        _ => format!(
            "none of the {} sampled lines matches a known format",
            lines.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_refused() {
        assert!(detect(&[]).is_err());
        let e = detect(&[b"hello world", b"\x00\x01 nothing"]).unwrap_err();
        assert!(e.contains("none of the 2"), "{e}");
    }
}

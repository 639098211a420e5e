//! From what the user wrote (command-line flags or a `[[sources]]` table) to a resolved
//! [`ParserSpec`]: format names, custom `log_format` strings, application-log field mappings,
//! syslog clock settings, proxy aggregation windows, and `--format auto` sniffing.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use logveil_model::time::parse_rfc3339;
use logveil_parse::applog::{AppMapping, TimestampFormat};
use logveil_parse::custom::LogFormat;
use logveil_parse::detect::{Detected, detect};
use logveil_source::Input;
use serde::Deserialize;

use crate::ingest::{Format, ParserSpec};

/// Longest proxy aggregation window accepted: one day.
pub const MAX_WINDOW_SECONDS: u32 = 86_400;

/// One field name or a list of candidates.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn into_vec(self) -> Vec<String> {
        match self {
            Names::One(s) => vec![s],
            Names::Many(v) => v,
        }
    }
}

/// `[sources.mapping]`: which source field plays which role. A role that is not mentioned
/// keeps its default candidates (docs/CONFIGURATION.md); `role = []` unmaps it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConf {
    pub timestamp: Option<Names>,
    pub timestamp_format: Option<String>,
    pub level: Option<Names>,
    pub message: Option<Names>,
    pub ip: Option<Names>,
    pub device_id: Option<Names>,
    pub account_id: Option<Names>,
    pub user_agent: Option<Names>,
    pub method: Option<Names>,
    pub path: Option<Names>,
    pub status: Option<Names>,
    pub duration_ms: Option<Names>,
    pub keep: Option<Names>,
}

impl MappingConf {
    /// Applies `--map role=field` flags (repeatable; several for one role are candidates).
    pub fn from_flags(flags: &[String]) -> Result<MappingConf> {
        let mut m = MappingConf::default();
        for f in flags {
            let (role, field) = f
                .split_once('=')
                .ok_or_else(|| anyhow!("--map {f:?}: expected ROLE=FIELD, e.g. ip=client.ip"))?;
            let field = field.to_string();
            if role == "timestamp_format" {
                m.timestamp_format = Some(field);
                continue;
            }
            let slot = m
                .role_mut(role)
                .ok_or_else(|| anyhow!("--map {f:?}: unknown role {role:?}; roles are {ROLES}"))?;
            let mut v = slot.take().map(Names::into_vec).unwrap_or_default();
            v.push(field);
            *slot = Some(Names::Many(v));
        }
        Ok(m)
    }

    fn role_mut(&mut self, role: &str) -> Option<&mut Option<Names>> {
        Some(match role {
            "timestamp" => &mut self.timestamp,
            "level" => &mut self.level,
            "message" => &mut self.message,
            "ip" => &mut self.ip,
            "device_id" => &mut self.device_id,
            "account_id" => &mut self.account_id,
            "user_agent" => &mut self.user_agent,
            "method" => &mut self.method,
            "path" => &mut self.path,
            "status" => &mut self.status,
            "duration_ms" => &mut self.duration_ms,
            "keep" => &mut self.keep,
            _ => return None,
        })
    }

    pub fn to_mapping(&self) -> Result<AppMapping> {
        let mut m = AppMapping::default();
        let set = |dst: &mut Vec<String>, src: &Option<Names>| {
            if let Some(n) = src {
                *dst = n.clone().into_vec();
            }
        };
        set(&mut m.timestamp, &self.timestamp);
        set(&mut m.level, &self.level);
        set(&mut m.message, &self.message);
        set(&mut m.ip, &self.ip);
        set(&mut m.device_id, &self.device_id);
        set(&mut m.account_id, &self.account_id);
        set(&mut m.user_agent, &self.user_agent);
        set(&mut m.method, &self.method);
        set(&mut m.path, &self.path);
        set(&mut m.status, &self.status);
        set(&mut m.duration_ms, &self.duration_ms);
        set(&mut m.keep, &self.keep);
        if let Some(tf) = &self.timestamp_format {
            m.timestamp_format = match tf.as_str() {
                "auto" => TimestampFormat::Auto,
                "rfc3339" => TimestampFormat::Rfc3339,
                "unix" | "unix_s" => TimestampFormat::UnixSeconds,
                "unix_ms" => TimestampFormat::UnixMillis,
                "unix_us" => TimestampFormat::UnixMicros,
                "unix_ns" => TimestampFormat::UnixNanos,
                other => bail!(
                    "mapping timestamp_format {other:?}: use auto, rfc3339, unix, unix_ms, unix_us or unix_ns"
                ),
            };
        }
        if m.timestamp.is_empty() {
            bail!("mapping: timestamp must name at least one field (every row needs a time)");
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &m.keep {
            if k.is_empty() || k.len() > 64 || !seen.insert(k) {
                bail!("mapping keep: {k:?} is empty, longer than 64 bytes or listed twice");
            }
        }
        Ok(m)
    }
}

const ROLES: &str = "timestamp, timestamp_format, level, message, ip, device_id, account_id, user_agent, method, path, status, duration_ms, keep";

/// Source settings shared by `logveil ingest` flags and `[[sources]]` tables.
#[derive(Clone, Debug, Default)]
pub struct SourceSettings {
    pub format: Option<Format>,
    pub log_format: Option<String>,
    pub app: Option<String>,
    pub mapping: Option<MappingConf>,
    pub window_seconds: Option<u32>,
    pub reference_time: Option<String>,
    pub utc_offset: Option<String>,
}

/// Parses `+HH:MM`, `-HH:MM` or `Z` into seconds east of UTC.
fn parse_offset(s: &str) -> Result<i32> {
    if s == "Z" || s == "UTC" {
        return Ok(0);
    }
    let bad = || anyhow!("utc offset {s:?}: expected +HH:MM or -HH:MM (or Z)");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

impl SourceSettings {
    /// Resolves the parser. `source` names the source in messages and is the default service
    /// name of application logs; `inputs` are sniffed for `auto`, and the decision is
    /// returned as a note for the operator.
    pub fn resolve(&self, source: &str, inputs: &[Input]) -> Result<(ParserSpec, Option<String>)> {
        let mut note = None;
        let format = match (self.format, &self.log_format) {
            (None, Some(_)) | (Some(Format::Combined | Format::Common), Some(_)) => {
                Format::Combined
            }
            (Some(f), Some(_)) => bail!(
                "log_format describes an access log: it cannot be combined with format {}",
                f.name()
            ),
            (Some(Format::Auto), None) => {
                let (f, why) = sniff(inputs)?;
                note = Some(format!("--format auto chose {} ({why})", f.name()));
                f
            }
            (Some(f), None) => f,
            (None, None) => {
                bail!("no format: pass --format (or --log-format for a custom access log)")
            }
        };
        let mut spec = ParserSpec::for_format(format, self.app.as_deref().unwrap_or(source))
            .ok_or_else(|| anyhow!("format auto was not resolved"))?;
        if let Some(lf) = &self.log_format {
            let compiled = if lf.contains('%') && !lf.contains('$') {
                LogFormat::apache(lf)
            } else {
                LogFormat::nginx(lf)
            };
            spec = ParserSpec::Custom(Arc::new(compiled.map_err(|e| anyhow!("{e}"))?));
        }
        let only_for = |what: &str, fmts: &str| {
            anyhow!(
                "{what} applies only to {fmts} sources, not {}",
                format.name()
            )
        };
        match &mut spec {
            ParserSpec::App { mapping, .. } => {
                if let Some(m) = &self.mapping {
                    *mapping = Arc::new(m.to_mapping()?);
                }
            }
            _ if self.mapping.is_some() => {
                return Err(only_for("a field mapping", "logfmt and json"));
            }
            _ => {}
        }
        if self.app.is_some() && !matches!(spec, ParserSpec::App { .. }) {
            return Err(only_for("app", "logfmt and json"));
        }
        if let Some(app) = &self.app
            && (app.is_empty() || app.len() > 64 || app.chars().any(|c| c.is_control()))
        {
            bail!("app {app:?}: use a short service name (1-64 characters)");
        }
        match &mut spec {
            ParserSpec::Proxy { window_seconds, .. } => {
                if let Some(w) = self.window_seconds {
                    if w == 0 || w > MAX_WINDOW_SECONDS || 86_400 % w != 0 {
                        bail!(
                            "window_seconds {w}: use a divisor of one day between 1 and {MAX_WINDOW_SECONDS} (e.g. 300, 3600, 86400)"
                        );
                    }
                    *window_seconds = w;
                }
            }
            _ if self.window_seconds.is_some() => {
                return Err(only_for("window_seconds", "squid and proxy-json"));
            }
            _ => {}
        }
        match &mut spec {
            ParserSpec::Syslog {
                reference_micros,
                local_offset_secs,
                ..
            } => {
                if let Some(t) = &self.reference_time {
                    *reference_micros = Some(parse_rfc3339(t.as_bytes()).ok_or_else(|| {
                        anyhow!(
                            "reference time {t:?}: expected RFC 3339, e.g. 2026-11-28T00:00:00Z"
                        )
                    })?);
                }
                if let Some(o) = &self.utc_offset {
                    *local_offset_secs = parse_offset(o)?;
                }
            }
            _ if self.reference_time.is_some() || self.utc_offset.is_some() => {
                return Err(only_for("reference_time and utc_offset", "syslog"));
            }
            _ => {}
        }
        Ok((spec, note))
    }
}

/// How much of the first input `auto` reads.
const SNIFF_BYTES: u64 = 64 * 1024;
const SNIFF_LINES: usize = 64;

/// Reads the first lines of the first input and asks the detector.
fn sniff(inputs: &[Input]) -> Result<(Format, String)> {
    let input = inputs
        .first()
        .ok_or_else(|| anyhow!("--format auto needs an input"))?;
    // The sniffed bytes are read again when the job runs: only a regular file can be.
    match input {
        Input::File(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()) => {}
        Input::File(_) => bail!(
            "--format auto reads the first lines of {} and then reads it again, which needs a regular file (not a pipe or device); name the format",
            input.name()
        ),
        Input::Stdin => {
            bail!("--format auto reads the first lines of a file; with stdin, name the format")
        }
    }
    let mut buf = Vec::new();
    input
        .open()?
        .take(SNIFF_BYTES)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {} to detect its format", input.name()))?;
    let lines: Vec<&[u8]> = buf
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(SNIFF_LINES)
        .collect();
    // The last line may be cut by the byte limit.
    let lines = if buf.len() as u64 >= SNIFF_BYTES && lines.len() > 1 {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    match detect(lines) {
        Ok(d) => Ok((
            match d.format {
                Detected::Combined => Format::Combined,
                Detected::Common => Format::Common,
                Detected::SessionJson => Format::SessionJson,
                Detected::Rfc5424 => Format::Rfc5424,
                Detected::Rfc3164 => Format::Rfc3164,
                Detected::Syslog => Format::Syslog,
                Detected::Logfmt => Format::Logfmt,
                Detected::Json => Format::Json,
                Detected::Squid => Format::Squid,
                Detected::ProxyJson => Format::ProxyJson,
            },
            d.evidence,
        )),
        Err(why) => bail!(
            "--format auto cannot tell the format of {}: {why}; pass --format explicitly",
            input.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00").unwrap(), 7200);
        assert_eq!(parse_offset("-05:30").unwrap(), -19800);
        assert_eq!(parse_offset("Z").unwrap(), 0);
        for bad in [
            "2", "+2", "+99:00", "+02:61", "02:00", "+-5:00", "+05:-3", "+5:00",
        ] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn map_flags() {
        let m = MappingConf::from_flags(&["ip=client.ip".into(), "keep=a".into(), "keep=b".into()])
            .unwrap()
            .to_mapping()
            .unwrap();
        assert_eq!(m.ip, vec!["client.ip"]);
        assert_eq!(m.keep, vec!["a", "b"]);
        assert!(MappingConf::from_flags(&["nope=x".into()]).is_err());
        assert!(MappingConf::from_flags(&["ip".into()]).is_err());
    }
}

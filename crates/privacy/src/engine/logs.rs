//! Privacy rules for syslog, application (logfmt/JSON) and proxy records: the same engine,
//! caches and scratch buffers as access logs and session events, other record shapes.
//!
//! - syslog: header tokens are kept when they are harmless tokens, otherwise scrubbed; the
//!   message is scrubbed; structured-data parameter values are never kept (only SD-IDs).
//! - app logs: only mapped fields reach the row; identifiers become pseudonyms, the IP a
//!   pseudonym and a network, the path loses its query, free text is scrubbed; a request to a
//!   proxy destination is dropped as proxy traffic.
//! - proxy logs: only the account pseudonym and the client network leave the engine; the
//!   caller aggregates them (see [`crate::proxy_usage`]).

use logveil_model::{AppRow, DropReason, QuarantineReason, Rule, SyslogRow};
use logveil_parse::applog::AppRecord;
use logveil_parse::proxy::ProxyRecord;
use logveil_parse::syslog::SyslogMessage;

use super::{Engine, Outcome, as_bytes, method_str, safe_token};
use crate::pseudonym::{IdKind, Network, Pseudonym};
use crate::{scrub, url};

/// Longest scrubbed message kept (longer ones are cut at a character boundary, with `…`).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest scrubbed attribute value kept.
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// What the engine lets through of a proxy record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProxyFacts {
    pub account: Option<Pseudonym>,
    pub network: Network,
    /// Index of the key epoch (into [`Engine::key_ids`]) the account pseudonym was made in.
    pub epoch: u32,
}

/// Scratch buffers for the record kinds of this module.
#[derive(Default)]
pub(super) struct LogScratch {
    host: String,
    app: String,
    proc_id: String,
    msg_id: String,
    sd_ids: String,
    message: String,
    attributes: Vec<Option<String>>,
}

/// Whether a token embeds an address: four runs of 1–3 digits joined by `-`, `.` or `_`
/// (`ip-10-0-0-1`, `c-73-15-2-9.hsd1…`), or a MAC address (six hex pairs joined by `:` or `-`,
/// or twelve hex digits in a row).
fn embeds_address(s: &[u8]) -> bool {
    /// `n` consecutive parts (split at `seps`) that all satisfy `part`.
    fn run_of(s: &[u8], seps: &[u8], n: usize, part: impl Fn(&[u8]) -> bool) -> bool {
        let mut run = 0;
        s.split(|b| seps.contains(b)).any(|p| {
            run = if part(p) { run + 1 } else { 0 };
            run >= n
        })
    }
    let octet = |p: &[u8]| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit);
    let hex_pair = |p: &[u8]| p.len() == 2 && p.iter().all(u8::is_ascii_hexdigit);
    run_of(s, b"-._", 4, octet)
        || run_of(s, b":-", 6, hex_pair)
        || s.split(|b| !b.is_ascii_hexdigit()).any(|r| r.len() >= 12)
}

/// A header token (hostname, app name, process or message id) kept as written when it is a
/// harmless token that embeds no address, replaced by `<host>` when it embeds one, and
/// scrubbed otherwise (an IP address as hostname becomes `<ip>`).
fn token<'s>(raw: Option<&'s [u8]>, max: usize, buf: &'s mut String) -> Option<&'s str> {
    let raw = raw.filter(|r| !r.is_empty())?;
    if embeds_address(raw) {
        buf.clear();
        buf.push_str("<host>");
        return Some(buf.as_str());
    }
    if let Ok(s) = std::str::from_utf8(raw)
        && safe_token(s, max)
    {
        return Some(s);
    }
    scrub::scrub_text(raw, max, buf);
    (!buf.is_empty()).then_some(buf.as_str())
}

/// HTTP methods kept in the `app` dataset's `method` column (anything else becomes null).
const HTTP_METHODS: [&str; 15] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "QUERY",
];

/// The SD-IDs of validated RFC 5424 structured data, comma-separated; parameter values are
/// skipped (they hold addresses, user names, anything). An id that is not a harmless token is
/// written as `?`.
fn sd_ids(sd: &[u8], out: &mut String) {
    out.clear();
    let mut i = 0;
    while let Some(&b) = sd.get(i) {
        if b != b'[' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = sd
            .get(start..)
            .and_then(|r| r.iter().position(|&c| c == b' ' || c == b']'))
            .map_or(sd.len(), |p| start + p);
        if !out.is_empty() {
            out.push(',');
        }
        match sd
            .get(start..end)
            .and_then(|id| std::str::from_utf8(id).ok())
        {
            // `name@enterprise-number` is the RFC's private SD-ID form.
            Some(id) if id.len() <= 32 && safe_sd_id(id) => {
                out.push_str(id);
            }
            _ => out.push('?'),
        }
        // Skip to the end of the element: `]` outside a quoted value.
        let mut j = end;
        let mut quoted = false;
        while let Some(&c) = sd.get(j) {
            match c {
                b'\\' if quoted => j += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            j += 1;
        }
        i = j + 1;
    }
}

/// `name` or `name@enterprise-number` (digits and dots after the `@`).
fn safe_sd_id(id: &str) -> bool {
    match id.split_once('@') {
        None => safe_token(id, 32),
        Some((name, number)) => {
            safe_token(name, 32)
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        }
    }
}

/// Log levels reduced to a closed list: `trace`, `debug`, `info`, `warn`, `error`, `fatal`,
/// `other`. Numeric levels are pino/bunyan's (10…60).
pub fn normalise_level(level: &str) -> &'static str {
    let l = level.trim();
    let eq = |s: &str| l.eq_ignore_ascii_case(s);
    if eq("trace") || eq("10") || eq("finest") {
        "trace"
    } else if eq("debug") || eq("dbug") || eq("20") || eq("fine") || eq("verbose") {
        "debug"
    } else if eq("info") || eq("information") || eq("notice") || eq("30") || eq("i") {
        "info"
    } else if eq("warn") || eq("warning") || eq("40") || eq("w") {
        "warn"
    } else if eq("error") || eq("err") || eq("50") || eq("e") || eq("severe") {
        "error"
    } else if [
        "fatal",
        "critical",
        "crit",
        "panic",
        "alert",
        "emerg",
        "emergency",
        "60",
    ]
    .iter()
    .any(|s| eq(s))
    {
        "fatal"
    } else {
        "other"
    }
}

impl Engine {
    /// Syslog message → `syslog` row. `fallback_ts` is used when the message has no time
    /// (RFC 5424 NILVALUE): the caller passes its reception or ingestion time.
    pub fn syslog<'s>(
        &'s mut self,
        m: &SyslogMessage<'s>,
        fallback_ts: i64,
    ) -> Outcome<SyslogRow<'s>> {
        let ts_micros = m.ts_micros.unwrap_or(fallback_ts);
        if !self.enter_epoch(ts_micros) {
            return Outcome::Drop(DropReason::KeyShredded);
        }
        let l = &mut self.l;
        let hostname = token(m.hostname, 255, &mut l.host);
        let app_name = token(m.app_name, 48, &mut l.app);
        let proc_id = token(m.proc_id, 128, &mut l.proc_id);
        let msg_id = token(m.msg_id, 32, &mut l.msg_id);
        let sd = m.structured_data.map(|sd| {
            sd_ids(sd, &mut l.sd_ids);
            l.sd_ids.as_str()
        });
        // Addresses and UUIDs in the text become their pseudonyms (of this event's epoch), so
        // the message stays joinable with the identifier columns.
        let ids = Some(&self.pseudonymiser);
        scrub::scrub_text_with(m.message, MAX_MESSAGE_BYTES, ids, &mut l.message);
        let changed = |raw: Option<&[u8]>, out: Option<&str>| {
            raw.filter(|r| !r.is_empty())
                .is_some_and(|r| out.is_none_or(|o| o.as_bytes() != r))
        };
        let scrubbed = l.message.as_bytes() != m.message
            || changed(m.hostname, hostname)
            || changed(m.app_name, app_name)
            || changed(m.proc_id, proc_id)
            || changed(m.msg_id, msg_id);
        if scrubbed {
            self.rules.bump(Rule::ScrubText);
        }
        Outcome::Keep(SyslogRow {
            ts_micros,
            protocol: m.protocol.as_str(),
            facility: m.facility,
            severity: m.severity,
            hostname,
            app_name,
            proc_id,
            msg_id,
            sd_ids: sd.filter(|s| !s.is_empty()),
            message: &l.message,
            key_id: &self.key_ids[self.cur],
        })
    }

    /// Application log record → `app` row. `app` names the service (from the config);
    /// `attribute_names` is the mapping's `keep` list, in the order of `rec.kept`.
    pub fn app<'s>(
        &'s mut self,
        rec: &'s AppRecord<'s>,
        app: &'s str,
        attribute_names: &'s [String],
    ) -> Outcome<AppRow<'s>> {
        let method = rec
            .method
            .as_deref()
            .and_then(|m| method_str(m.as_bytes()))
            .filter(|m| HTTP_METHODS.iter().any(|h| h.eq_ignore_ascii_case(m)));
        // An absolute URL, `host:port` or protocol-relative `//host/…` names a destination.
        if method.is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
            || rec.path.as_deref().is_some_and(|p| {
                url::is_proxy_target(p.as_bytes()) || p.trim_start().starts_with("//")
            })
        {
            return Outcome::Drop(DropReason::ProxyTraffic);
        }
        if let Some(r) = self.suppressed(
            as_bytes(&rec.ip),
            as_bytes(&rec.device_id),
            as_bytes(&rec.account_id),
        ) {
            return Outcome::Drop(r);
        }
        if !self.enter_epoch(rec.ts_micros) {
            return Outcome::Drop(DropReason::KeyShredded);
        }
        let ip = rec.ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "-");
        self.s.ip = match ip {
            None => None,
            Some(ip) => {
                let facts =
                    self.ips
                        .lookup(ip.as_bytes(), &self.pseudonymiser, &self.cfg.truncation);
                if facts.is_none() {
                    return Outcome::Quarantine {
                        reason: QuarantineReason::BadClientAddress,
                        detail: "the mapped ip field is not an IPv4 or IPv6 address",
                    };
                }
                facts
            }
        };
        let p = &self.pseudonymiser;
        let pseudo = |kind, v: &Option<std::borrow::Cow<'_, str>>| {
            v.as_deref()
                .filter(|v| !v.is_empty() && *v != "-")
                .map(|v| p.pseudonym(kind, v.as_bytes()))
        };
        self.s.ids = [
            None,
            pseudo(IdKind::Device, &rec.device_id),
            pseudo(IdKind::Account, &rec.account_id),
        ];
        let has_path = rec.path.as_deref().is_some_and(|pg| {
            let ok = url::clean_path(pg.as_bytes(), &mut self.s.path);
            if ok && let Some(p) = self.policy.as_deref().filter(|p| p.rewrites_paths()) {
                p.rewrite_path(pg.as_bytes(), &mut self.s.path);
            }
            ok
        });
        let l = &mut self.l;
        let ids = Some(&self.pseudonymiser);
        let has_message = rec.message.as_deref().is_some_and(|m| {
            scrub::scrub_text_with(m.as_bytes(), MAX_MESSAGE_BYTES, ids, &mut l.message);
            true
        });
        l.attributes.resize(rec.kept.len(), None);
        for (slot, v) in l.attributes.iter_mut().zip(&rec.kept) {
            *slot = v.as_deref().map(|v| {
                let mut out = slot.take().unwrap_or_default();
                scrub::scrub_text_with(v.as_bytes(), MAX_ATTRIBUTE_BYTES, ids, &mut out);
                out
            });
        }
        let r = &mut self.rules;
        if self.s.ip.is_some() {
            r.bump(Rule::PseudonymiseIp);
            r.bump(Rule::TruncateIp);
        }
        if self.s.ids[1].is_some() {
            r.bump(Rule::PseudonymiseDevice);
        }
        if self.s.ids[2].is_some() {
            r.bump(Rule::PseudonymiseAccount);
        }
        if rec.path.as_deref().is_some_and(|p| p.contains('?')) {
            r.bump(Rule::StripQuery);
        }
        let message_changed = rec
            .message
            .as_deref()
            .is_some_and(|m| m != l.message.as_str());
        let attribute_changed = l
            .attributes
            .iter()
            .zip(&rec.kept)
            .any(|(o, i)| o.as_deref() != i.as_deref());
        if message_changed || attribute_changed {
            r.bump(Rule::ScrubText);
        }
        let ua = self
            .uas
            .classify(rec.user_agent.as_deref().map(str::as_bytes));
        let this = &*self;
        let s = &this.s;
        Outcome::Keep(AppRow {
            ts_micros: rec.ts_micros,
            app,
            level: rec.level.as_deref().map(normalise_level),
            message: has_message.then_some(this.l.message.as_str()),
            ip_pseudonym: s.ip.as_ref().map(|f| f.pseudonym.as_str()),
            ip_network: s.ip.as_ref().map(|f| f.network.as_str()),
            device_pseudonym: s.ids[1].as_ref().map(Pseudonym::as_str),
            account_pseudonym: s.ids[2].as_ref().map(Pseudonym::as_str),
            method,
            path: has_path.then_some(s.path.as_str()),
            status: rec.status,
            duration_ms: rec.duration_ms.filter(|d| d.is_finite() && *d >= 0.0),
            ua: ua.fields(),
            attribute_names: attribute_names.get(..rec.kept.len()).unwrap_or_default(),
            attribute_values: &this.l.attributes,
            key_id: &this.key_ids[this.cur],
        })
    }

    /// Proxy record → the facts that may be aggregated: account pseudonym and client network.
    pub fn proxy(&mut self, rec: &ProxyRecord<'_>) -> Outcome<ProxyFacts> {
        if let Some(r) = self.suppressed(Some(&rec.client), None, rec.account.as_deref()) {
            return Outcome::Drop(r);
        }
        if !self.enter_epoch(rec.ts_micros) {
            return Outcome::Drop(DropReason::KeyShredded);
        }
        let Some(ip) = self
            .ips
            .lookup(&rec.client, &self.pseudonymiser, &self.cfg.truncation)
        else {
            return Outcome::Quarantine {
                reason: QuarantineReason::BadClientAddress,
                detail: "client address is not an IPv4 or IPv6 address",
            };
        };
        let account = rec
            .account
            .as_deref()
            .filter(|a| !a.is_empty() && *a != b"-")
            .map(|a| self.pseudonymiser.pseudonym(IdKind::Account, a));
        if account.is_some() {
            self.rules.bump(Rule::PseudonymiseAccount);
        }
        self.rules.bump(Rule::TruncateIp);
        Outcome::Keep(ProxyFacts {
            account,
            network: ip.network,
            epoch: self.cur as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        for (i, o) in [
            ("INFO", "info"),
            ("Warning", "warn"),
            ("30", "info"),
            ("crit", "fatal"),
            ("E", "error"),
            ("user@example.com", "other"),
        ] {
            assert_eq!(normalise_level(i), o, "{i}");
        }
    }

    #[test]
    fn embedded_addresses() {
        for yes in [
            "ip-10-0-0-1.ec2.internal",
            "c-73-15-2-9.hsd1.ca.comcast.net",
            "host-192-168-1-10",
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "001a2b3c4d5e",
            "10.0.0.1",
        ] {
            assert!(embeds_address(yes.as_bytes()), "{yes}");
        }
        for no in [
            "web-1",
            "auth-1.example.com",
            "sshd",
            "1234",
            "node-2-3",
            "v1.2.3",
            "CRON",
        ] {
            assert!(!embeds_address(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn sd_ids_skip_values() {
        let mut out = String::new();
        sd_ids(
            br#"[exampleSDID@32473 iut="3" eventSource="Application\] x" eventID="1011"][origin ip="192.0.2.1"]"#,
            &mut out,
        );
        assert_eq!(out, "exampleSDID@32473,origin");
        sd_ids(br#"[203.0.113.9 a="b"]"#, &mut out);
        assert_eq!(out, "?");
    }
}

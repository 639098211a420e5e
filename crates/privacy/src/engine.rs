//! The privacy engine: turns a parsed record into a privacy-safe row, or decides it must be
//! dropped (proxy traffic, no consent) or quarantined. This is where the policy's promises are
//! kept: allow-listed fields only, pseudonyms instead of identifiers, networks instead of
//! addresses, paths without queries, referrers reduced to scheme and site, consent enforced.
//!
//! One engine per worker thread; it owns its caches and scratch buffers, so the hot path does
//! not allocate. Rows borrow from the engine and the input line until the next call.

use logveil_model::{AccessRow, DropReason, QuarantineReason, Rule, RuleCounts, SessionRow};
use logveil_parse::access::{AccessLine, Request};
use logveil_parse::session::SessionEvent;

mod logs;

pub use logs::{MAX_ATTRIBUTE_BYTES, MAX_MESSAGE_BYTES, ProxyFacts, normalise_level};

use std::sync::Arc;

use crate::keys::KeyRing;
use crate::policy::{ConsentCategory, DatasetPolicy};
use crate::pseudonym::{IdKind, IpCache, IpFacts, Pseudonym, Pseudonymiser, Truncation};
use crate::suppress::{Ground, Suppressor};
use crate::ua::UaCache;
use crate::{scrub, url};

/// What became of a record.
#[derive(Debug)]
pub enum Outcome<R> {
    Keep(R),
    Drop(DropReason),
    Quarantine {
        reason: QuarantineReason,
        detail: &'static str,
    },
}

/// Engine settings (the policy-engine issue generalises these).
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    pub truncation: Truncation,
    pub ip_cache_entries: usize,
    pub ua_cache_entries: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            truncation: Truncation::default(),
            ip_cache_entries: 1 << 16,
            ua_cache_entries: 1 << 14,
        }
    }
}

#[derive(Default)]
struct Scratch {
    ip: Option<IpFacts>,
    path: String,
    referrer: String,
    ids: [Option<Pseudonym>; 3],
    marketing: [String; 8],
}

/// An optional text field as bytes.
pub(crate) fn as_bytes<'a>(v: &'a Option<std::borrow::Cow<'_, str>>) -> Option<&'a [u8]> {
    v.as_deref().map(str::as_bytes)
}

/// Event names that are proxy traffic by definition.
fn is_proxy_event(event: &str) -> bool {
    let e = event.as_bytes();
    let starts = |p: &[u8]| e.len() >= p.len() && e[..p.len()].eq_ignore_ascii_case(p);
    starts(b"proxy")
        || starts(b"tunnel")
        || starts(b"connect")
        || event.eq_ignore_ascii_case("browse")
}

/// A request field that did not parse but still names a proxy destination (fail closed):
/// `CONNECT` with any whitespace after it, an absolute URL anywhere, or a `host:port` or
/// absolute-form target in second position.
fn looks_like_proxy_request(raw: &[u8]) -> bool {
    let mut words = raw
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    if first.eq_ignore_ascii_case(b"CONNECT") || memchr::memmem::find(raw, b"://").is_some() {
        return true;
    }
    words.next().is_some_and(url::is_proxy_target)
}

/// A short token of safe characters (event names, app names, versions, locales) that does
/// not look like an identifier (UUID, long hex or digit run, token, IP address).
fn safe_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'+'))
        && url::classify_segment(s.as_bytes()).is_none()
}

fn ascii_str(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        std::str::from_utf8(b).ok()
    } else {
        None
    }
}

/// HTTP method as written, if it is a plausible method token.
fn method_str(m: &[u8]) -> Option<&str> {
    if m.is_empty() || m.len() > 20 || !m.iter().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    ascii_str(m)
}

/// Protocol if it looks like `HTTP/<digits>[.<digits>]`.
fn protocol_str(p: &[u8]) -> Option<&str> {
    let v = p.strip_prefix(b"HTTP/")?;
    let ok = !v.is_empty() && v.len() <= 4 && v.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    if ok { ascii_str(p) } else { None }
}

/// One key epoch as the engine sees it.
struct EpochSlot {
    from: i64,
    to: i64,
    /// `None` once the key was shredded: events of the epoch are dropped.
    pseudonymiser: Option<Pseudonymiser>,
}

/// Per-worker privacy engine.
pub struct Engine {
    epochs: Vec<EpochSlot>,
    key_ids: Vec<String>,
    /// The epoch of the record being processed, and whether its key is live.
    cur: usize,
    live: bool,
    /// The current epoch's pseudonymiser (a copy; epochs change rarely).
    pseudonymiser: Pseudonymiser,
    dev_key: bool,
    cfg: EngineConfig,
    /// Address cache of the current epoch, and of the one before (events near an epoch
    /// boundary arrive interleaved).
    ips: IpCache,
    ips_prev: (usize, IpCache),
    /// Field-level rule applications (drops are counted by the caller from the outcome).
    rules: RuleCounts,
    /// Subjects whose events are dropped (objection, restriction); `None` when nobody is.
    suppressor: Option<Arc<Suppressor>>,
    /// The dataset's declared policy (templates, kept parameters, extra proxy markers,
    /// consent category); `None`: the built-in one.
    policy: Option<Arc<DatasetPolicy>>,
    uas: UaCache,
    s: Scratch,
    l: logs::LogScratch,
}

impl Engine {
    pub fn new(ring: &KeyRing, cfg: EngineConfig) -> Engine {
        let epochs: Vec<EpochSlot> = ring
            .epochs()
            .iter()
            .zip(ring.keys())
            .map(|(e, k)| EpochSlot {
                from: e.from,
                to: e.to,
                pseudonymiser: Pseudonymiser::try_new(k),
            })
            .collect();
        let cur = epochs.len() - 1;
        // Until the first record picks its epoch, any live key serves as placeholder.
        let placeholder = epochs
            .iter()
            .rev()
            .find_map(|e| e.pseudonymiser.clone())
            .unwrap_or_else(|| Pseudonymiser::new(&crate::keys::Key::development()));
        Engine {
            live: epochs[cur].pseudonymiser.is_some(),
            key_ids: ring.keys().iter().map(|k| k.id().to_string()).collect(),
            epochs,
            cur,
            pseudonymiser: placeholder,
            dev_key: ring.is_development(),
            cfg,
            ips: IpCache::new(cfg.ip_cache_entries),
            ips_prev: (usize::MAX, IpCache::new(cfg.ip_cache_entries)),
            rules: RuleCounts::default(),
            suppressor: None,
            policy: None,
            uas: UaCache::new(cfg.ua_cache_entries),
            s: Scratch::default(),
            l: logs::LogScratch::default(),
        }
    }

    /// Applies a dataset's declared policy (its prefixes replace the configured ones).
    pub fn with_policy(mut self, p: Arc<DatasetPolicy>) -> Engine {
        self.cfg.truncation = p.truncation;
        self.policy = Some(p);
        self
    }

    /// Drops the events of the subjects on this suppression list.
    pub fn with_suppressor(mut self, s: Option<Arc<Suppressor>>) -> Engine {
        self.suppressor = s;
        self
    }

    /// Whether any of the record's identifiers is on the suppression list.
    #[inline]
    fn suppressed(
        &self,
        ip: Option<&[u8]>,
        device: Option<&[u8]>,
        account: Option<&[u8]>,
    ) -> Option<DropReason> {
        let s = self.suppressor.as_deref()?;
        fn present(v: Option<&[u8]>) -> Option<&[u8]> {
            v.filter(|v| !v.is_empty() && *v != b"-")
        }
        let g = present(ip)
            .and_then(crate::pseudonym::parse_ip)
            .and_then(|a| s.ip(a))
            .or_else(|| present(device).and_then(|d| s.id(IdKind::Device, d)))
            .or_else(|| present(account).and_then(|a| s.id(IdKind::Account, a)))?;
        Some(match g {
            Ground::Objection => DropReason::Objection,
            Ground::Restriction => DropReason::Restriction,
        })
    }

    /// Field-level rule applications since the last call (pseudonymisations, truncations,
    /// stripped queries, reduced referrers, scrubbed text, consent-gated fields).
    pub fn take_rule_counts(&mut self) -> RuleCounts {
        std::mem::take(&mut self.rules)
    }

    /// Id of the key of the last record's epoch.
    pub fn key_id(&self) -> &str {
        &self.key_ids[self.cur]
    }

    /// Ids of every epoch's key, oldest first (indexed by [`ProxyFacts::epoch`]).
    pub fn key_ids(&self) -> &[String] {
        &self.key_ids
    }

    /// Makes the epoch holding `ts` current; false if its key was shredded (the record must
    /// be dropped: nothing may be pseudonymised under another epoch's key).
    #[inline]
    fn enter_epoch(&mut self, ts: i64) -> bool {
        let e = &self.epochs[self.cur];
        if e.from <= ts && ts < e.to {
            return self.live;
        }
        self.switch_epoch(ts)
    }

    #[cold]
    fn switch_epoch(&mut self, ts: i64) -> bool {
        let i = self
            .epochs
            .partition_point(|e| e.from <= ts)
            .saturating_sub(1);
        let prev = self.cur;
        self.cur = i;
        self.live = match &self.epochs[i].pseudonymiser {
            Some(p) => {
                self.pseudonymiser = p.clone();
                true
            }
            None => false,
        };
        if self.live {
            if self.ips_prev.0 != i {
                self.ips_prev.1.clear();
            }
            std::mem::swap(&mut self.ips, &mut self.ips_prev.1);
            self.ips_prev.0 = prev;
        }
        self.live
    }

    pub fn is_dev_key(&self) -> bool {
        self.dev_key
    }

    /// Access-log record → `access` row.
    pub fn access<'s>(&'s mut self, line: &AccessLine<'s>) -> Outcome<AccessRow<'s>> {
        let (method, has_path, protocol) = match line.request {
            Request::Parsed {
                method,
                target,
                protocol,
            } => {
                if method.eq_ignore_ascii_case(b"CONNECT") || url::is_proxy_target(target) {
                    return Outcome::Drop(DropReason::ProxyTraffic);
                }
                let has_path = url::clean_path(target, &mut self.s.path);
                if has_path && let Some(p) = self.policy.as_deref().filter(|p| p.rewrites_paths()) {
                    p.rewrite_path(target, &mut self.s.path);
                }
                (
                    method_str(method),
                    has_path,
                    protocol.and_then(protocol_str),
                )
            }
            // Garbage in the request field (TLS handshakes, scanners): the record is kept
            // for its status and timing, but nothing of the garbage is.
            Request::Raw(raw) if looks_like_proxy_request(raw) => {
                return Outcome::Drop(DropReason::ProxyTraffic);
            }
            Request::Missing | Request::Raw(_) => (None, false, None),
        };
        if let Some(r) = self.suppressed(Some(line.client), None, None) {
            return Outcome::Drop(r);
        }
        if !self.enter_epoch(line.ts_micros) {
            return Outcome::Drop(DropReason::KeyShredded);
        }
        let Some(ip) = self
            .ips
            .lookup(line.client, &self.pseudonymiser, &self.cfg.truncation)
        else {
            return Outcome::Quarantine {
                reason: QuarantineReason::BadClientAddress,
                detail: "client address is not an IPv4 or IPv6 address",
            };
        };
        self.s.ip = Some(ip);
        let has_ref = line
            .referrer
            .is_some_and(|r| url::referrer_host(r, &mut self.s.referrer));
        self.rules.bump(Rule::PseudonymiseIp);
        self.rules.bump(Rule::TruncateIp);
        if let Request::Parsed { target, .. } = line.request
            && memchr::memchr(b'?', target).is_some()
        {
            self.rules.bump(Rule::StripQuery);
        }
        if line.referrer.is_some_and(|r| !r.is_empty() && r != b"-") {
            self.rules.bump(Rule::ReferrerHost);
        }
        let ua = self.uas.classify(line.user_agent);
        let this = &*self;
        let ip = this.s.ip.as_ref().expect("set above");
        Outcome::Keep(AccessRow {
            ts_micros: line.ts_micros,
            ip_pseudonym: ip.pseudonym.as_str(),
            ip_network: ip.network.as_str(),
            method,
            path: has_path.then_some(this.s.path.as_str()),
            protocol,
            status: line.status,
            bytes_sent: line.bytes_sent,
            referrer_host: has_ref.then_some(this.s.referrer.as_str()),
            ua: ua.fields(),
            key_id: &this.key_ids[this.cur],
            request_time_us: line.request_time_us,
        })
    }

    /// Session event → `session` row.
    pub fn session<'s>(&'s mut self, ev: &'s SessionEvent<'s>) -> Outcome<SessionRow<'s>> {
        if ev.destination_field
            || is_proxy_event(&ev.event)
            || self
                .policy
                .as_deref()
                .is_some_and(|p| p.is_proxy_event(&ev.event))
        {
            return Outcome::Drop(DropReason::ProxyTraffic);
        }
        let need_marketing = self
            .policy
            .as_deref()
            .is_some_and(|p| p.consent == ConsentCategory::Marketing);
        let Some(consent) = ev
            .consent
            .filter(|c| c.statistics && (c.marketing || !need_marketing))
        else {
            return Outcome::Drop(DropReason::NoStatisticsConsent);
        };
        if let Some(r) = self.suppressed(
            as_bytes(&ev.ip),
            as_bytes(&ev.device_id),
            as_bytes(&ev.account_id),
        ) {
            return Outcome::Drop(r);
        }
        if !self.enter_epoch(ev.ts_micros) {
            return Outcome::Drop(DropReason::KeyShredded);
        }
        if !safe_token(&ev.event, 64) {
            return Outcome::Quarantine {
                reason: QuarantineReason::Malformed,
                detail: "event name is not a short token of letters, digits and _-.:+",
            };
        }
        if !safe_token(&ev.app, 32) {
            return Outcome::Quarantine {
                reason: QuarantineReason::Malformed,
                detail: "app is not a short token of letters, digits and _-.:+",
            };
        }
        let p = &self.pseudonymiser;
        let pseudo = |kind, v: &Option<std::borrow::Cow<'_, str>>| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| p.pseudonym(kind, v.as_bytes()))
        };
        self.s.ids = [
            pseudo(IdKind::Session, &ev.session_id),
            pseudo(IdKind::Device, &ev.device_id),
            pseudo(IdKind::Account, &ev.account_id),
        ];
        // An unusable address is dropped from the row, not a reason to lose the event.
        self.s.ip = ev.ip.as_deref().and_then(|ip| {
            self.ips
                .lookup(ip.as_bytes(), &self.pseudonymiser, &self.cfg.truncation)
        });
        let has_page = ev.page.as_deref().is_some_and(|pg| {
            let ok = url::clean_path(pg.as_bytes(), &mut self.s.path);
            if ok && let Some(p) = self.policy.as_deref().filter(|p| p.rewrites_paths()) {
                p.rewrite_path(pg.as_bytes(), &mut self.s.path);
            }
            ok
        });
        let has_ref = ev
            .referrer
            .as_deref()
            .is_some_and(|r| url::referrer_host(r.as_bytes(), &mut self.s.referrer));
        let mut marketing = [false; 8];
        if consent.marketing {
            for (i, v) in ev.marketing.iter().enumerate() {
                let Some(v) = v.as_deref().filter(|v| !v.is_empty()) else {
                    continue;
                };
                let out = &mut self.s.marketing[i];
                if i >= 5 {
                    // Click ids are opaque tokens: keep them only if they look like one.
                    let ok = v.len() <= 256
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    out.clear();
                    if ok {
                        out.push_str(v);
                    }
                } else {
                    scrub::scrub_text(v.as_bytes(), 128, out);
                }
                marketing[i] = !out.is_empty();
            }
        }
        let r = &mut self.rules;
        for (id, rule) in self.s.ids.iter().zip([
            Rule::PseudonymiseSession,
            Rule::PseudonymiseDevice,
            Rule::PseudonymiseAccount,
        ]) {
            if id.is_some() {
                r.bump(rule);
            }
        }
        if self.s.ip.is_some() {
            r.bump(Rule::PseudonymiseIp);
            r.bump(Rule::TruncateIp);
        }
        if ev.page.as_deref().is_some_and(|p| p.contains('?')) {
            r.bump(Rule::StripQuery);
        }
        if ev.referrer.as_deref().is_some_and(|x| !x.is_empty()) {
            r.bump(Rule::ReferrerHost);
        }
        if !consent.marketing
            && ev
                .marketing
                .iter()
                .any(|m| m.as_deref().is_some_and(|m| !m.is_empty()))
        {
            r.bump(Rule::ConsentMarketing);
        }
        if !consent.preferences && ev.locale.as_deref().is_some_and(|l| !l.is_empty()) {
            r.bump(Rule::ConsentPreferences);
        }
        let ua = self
            .uas
            .classify(ev.user_agent.as_deref().map(str::as_bytes));
        let this = &*self;
        let s = &this.s;
        Outcome::Keep(SessionRow {
            ts_micros: ev.ts_micros,
            event: &ev.event,
            app: &ev.app,
            app_version: ev.app_version.as_deref().filter(|v| safe_token(v, 32)),
            session_pseudonym: s.ids[0].as_ref().map(Pseudonym::as_str),
            device_pseudonym: s.ids[1].as_ref().map(Pseudonym::as_str),
            account_pseudonym: s.ids[2].as_ref().map(Pseudonym::as_str),
            ip_pseudonym: s.ip.as_ref().map(|f| f.pseudonym.as_str()),
            ip_network: s.ip.as_ref().map(|f| f.network.as_str()),
            page: has_page.then_some(s.path.as_str()),
            referrer_host: has_ref.then_some(s.referrer.as_str()),
            duration_ms: ev.duration_ms,
            locale: ev
                .locale
                .as_deref()
                .filter(|l| consent.preferences && safe_token(l, 35)),
            consent_preferences: consent.preferences,
            consent_statistics: consent.statistics,
            consent_marketing: consent.marketing,
            marketing: std::array::from_fn(|i| marketing[i].then_some(s.marketing[i].as_str())),
            ua: ua.fields(),
            key_id: &this.key_ids[this.cur],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::safe_token;

    #[test]
    fn safe_tokens() {
        for ok in [
            "page_view",
            "session_start",
            "web",
            "3.2.1",
            "17.4.1+build.7",
            "en-US",
            "zh-Hant-TW",
        ] {
            assert!(safe_token(ok, 64), "{ok}");
        }
        for bad in [
            "",
            "page view",
            "a@b.example",
            "3f2a9c1e-0000-4000-8000-000000000001",
            "view_3f2a9c1e00004000800000000000000a",
            "192.0.2.1",
            "20261128093000",
        ] {
            assert!(!safe_token(bad, 64), "{bad}");
        }
    }
}

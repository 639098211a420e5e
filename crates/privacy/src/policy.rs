//! Per-dataset privacy policy: what an operator may declare about a dataset (which columns are
//! kept, network prefixes, path templates, allow-listed query parameters, extra proxy markers,
//! the consent category required) resolved against the dataset's kind into a validated
//! [`DatasetPolicy`] that the engine and the writer apply.
//!
//! The policy can only narrow what is stored, never widen it (fail closed): columns can be
//! dropped but not added, prefixes are capped, proxy markers and consent requirements can be
//! added but the built-in ones cannot be removed. Every setting names the rule it feeds, so the
//! effective policy ([`DatasetPolicy::describe`]) is traceable to the privacy policy's clauses.

use std::fmt::Write as _;

use logveil_model::{DatasetKind, Rule};

use crate::pseudonym::Truncation;
use crate::url;

/// Longest prefixes that may be stored: longer would keep (nearly) whole addresses.
pub const MAX_IPV4_PREFIX: u8 = 24;
pub const MAX_IPV6_PREFIX: u8 = 64;

/// A consent category of the cookie policy (§14.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsentCategory {
    Necessary,
    Preferences,
    Statistics,
    Marketing,
}

impl ConsentCategory {
    pub fn parse(s: &str) -> Option<ConsentCategory> {
        Some(match s {
            "necessary" => ConsentCategory::Necessary,
            "preferences" => ConsentCategory::Preferences,
            "statistics" => ConsentCategory::Statistics,
            "marketing" => ConsentCategory::Marketing,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConsentCategory::Necessary => "necessary",
            ConsentCategory::Preferences => "preferences",
            ConsentCategory::Statistics => "statistics",
            ConsentCategory::Marketing => "marketing",
        }
    }
}

/// What the operator wrote (all optional); see docs/CONFIGURATION.md.
#[derive(Clone, Debug, Default)]
pub struct PolicyInput {
    pub columns: Option<Vec<String>>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    pub path_templates: Vec<String>,
    pub keep_query_params: Vec<String>,
    pub proxy_events: Vec<String>,
    pub consent: Option<String>,
}

/// A setting that cannot be applied; `field` and `index` locate it in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {what}")]
pub struct PolicyError {
    pub field: &'static str,
    /// Position within a list setting.
    pub index: Option<usize>,
    pub what: String,
}

fn err(field: &'static str, index: Option<usize>, what: impl Into<String>) -> PolicyError {
    PolicyError {
        field,
        index,
        what: what.into(),
    }
}

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Literal(String),
    /// `:name`: any one segment, stored as `:name`.
    Param(String),
    /// `*` at the end: any rest, kept as cleaned.
    Rest,
}

/// A path template such as `/users/:user/settings` or `/files/:owner/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segs: Vec<Seg>,
}

impl PathTemplate {
    fn parse(t: &str) -> Result<PathTemplate, String> {
        let Some(rest) = t.strip_prefix('/') else {
            return Err(format!("{t:?} must start with '/'"));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        let mut params = 0;
        for (i, p) in parts.iter().enumerate() {
            if *p == "*" {
                if i + 1 != parts.len() {
                    return Err(format!("{t:?}: '*' may only end a template"));
                }
                segs.push(Seg::Rest);
            } else if let Some(name) = p.strip_prefix(':') {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!("{t:?}: parameter {p:?} must be ':' and a name"));
                }
                params += 1;
                segs.push(Seg::Param(p.to_string()));
            } else {
                if p.contains(['?', '#', '%', '*']) {
                    return Err(format!("{t:?}: segment {p:?} has '?', '#', '%' or '*'"));
                }
                segs.push(Seg::Literal(p.to_string()));
            }
        }
        if params == 0 {
            return Err(format!("{t:?} has no ':parameter' to replace"));
        }
        Ok(PathTemplate {
            text: t.to_string(),
            segs,
        })
    }

    /// Rewrites `path` (already cleaned) in place if it matches.
    fn apply(&self, path: &mut String) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut out = String::with_capacity(path.len());
        for (i, s) in self.segs.iter().enumerate() {
            match s {
                Seg::Rest => {
                    for p in &parts[i..] {
                        out.push('/');
                        out.push_str(p);
                    }
                    *path = out;
                    return true;
                }
                Seg::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return false;
                    }
                    out.push('/');
                    out.push_str(l);
                }
                Seg::Param(name) => {
                    if parts.get(i).is_none_or(|p| p.is_empty()) {
                        return false;
                    }
                    out.push('/');
                    out.push_str(name);
                }
            }
        }
        if parts.len() != self.segs.len() {
            return false;
        }
        *path = out;
        true
    }
}

/// The validated policy of one dataset.
#[derive(Clone, Debug)]
pub struct DatasetPolicy {
    pub kind: DatasetKind,
    /// Names of the kind's columns, in schema order, and whether each is kept.
    columns: Vec<(String, bool)>,
    pub truncation: Truncation,
    templates: Vec<PathTemplate>,
    keep_params: Vec<String>,
    proxy_events: Vec<String>,
    pub consent: ConsentCategory,
}

fn has_paths(kind: DatasetKind) -> bool {
    matches!(
        kind,
        DatasetKind::Access | DatasetKind::Session | DatasetKind::App
    )
}

fn has_addresses(kind: DatasetKind) -> bool {
    has_paths(kind) || kind == DatasetKind::ProxyUsage
}

impl DatasetPolicy {
    /// The built-in policy of a kind, with the run's network prefixes.
    pub fn default_for(kind: DatasetKind, truncation: Truncation) -> DatasetPolicy {
        DatasetPolicy::resolve(kind, &PolicyInput::default(), truncation)
            .expect("the built-in policy is valid")
    }

    /// Validates `input` against `kind`. `defaults` are the pipeline-wide prefixes.
    pub fn resolve(
        kind: DatasetKind,
        input: &PolicyInput,
        defaults: Truncation,
    ) -> Result<DatasetPolicy, PolicyError> {
        let schema = kind.schema();
        let mut columns: Vec<(String, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), true))
            .collect();
        if let Some(keep) = &input.columns {
            for (i, c) in keep.iter().enumerate() {
                if !columns.iter().any(|(n, _)| n == c) {
                    return Err(err(
                        "columns",
                        Some(i),
                        format!(
                            "{c:?} is not a column of the {} schema (columns: {})",
                            kind.as_str(),
                            columns
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            for (f, (name, kept)) in schema.fields().iter().zip(columns.iter_mut()) {
                *kept = keep.iter().any(|c| c == name);
                if !*kept && !f.is_nullable() {
                    return Err(err(
                        "columns",
                        None,
                        format!(
                            "{name:?} is required by the {} schema and cannot be dropped; add it to columns",
                            kind.as_str()
                        ),
                    ));
                }
            }
        }
        let v4 = input.ipv4_prefix.unwrap_or(defaults.ipv4_prefix);
        let v6 = input.ipv6_prefix.unwrap_or(defaults.ipv6_prefix);
        if (input.ipv4_prefix.is_some() || input.ipv6_prefix.is_some()) && !has_addresses(kind) {
            return Err(err(
                "ipv4_prefix",
                None,
                format!("the {} dataset stores no addresses", kind.as_str()),
            ));
        }
        if v4 > MAX_IPV4_PREFIX {
            return Err(err(
                "ipv4_prefix",
                None,
                format!(
                    "{v4} is longer than {MAX_IPV4_PREFIX}: it would store (nearly) whole addresses"
                ),
            ));
        }
        if v6 > MAX_IPV6_PREFIX {
            return Err(err(
                "ipv6_prefix",
                None,
                format!(
                    "{v6} is longer than {MAX_IPV6_PREFIX}: it would store (nearly) whole addresses"
                ),
            ));
        }
        if !has_paths(kind) {
            if !input.path_templates.is_empty() {
                return Err(err(
                    "path_templates",
                    None,
                    format!("the {} dataset has no paths", kind.as_str()),
                ));
            }
            if !input.keep_query_params.is_empty() {
                return Err(err(
                    "keep_query_params",
                    None,
                    format!("the {} dataset has no paths", kind.as_str()),
                ));
            }
        }
        let mut templates = Vec::new();
        for (i, t) in input.path_templates.iter().enumerate() {
            templates.push(PathTemplate::parse(t).map_err(|w| err("path_templates", Some(i), w))?);
        }
        for (i, p) in input.keep_query_params.iter().enumerate() {
            let ok = !p.is_empty()
                && p.len() <= 64
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !ok {
                return Err(err(
                    "keep_query_params",
                    Some(i),
                    format!("{p:?} is not a parameter name (letters, digits, '_', '-', '.')"),
                ));
            }
            let lower = p.to_ascii_lowercase();
            if lower
                .split(['_', '-', '.'])
                .any(|w| SECRET_PARAMS.contains(&w) || w.ends_with("token") || w.ends_with("key"))
            {
                return Err(err(
                    "keep_query_params",
                    Some(i),
                    format!(
                        "{p:?} looks like it carries a secret or an identifier; it cannot be kept"
                    ),
                ));
            }
        }
        if !input.proxy_events.is_empty() && kind != DatasetKind::Session {
            return Err(err(
                "proxy_events",
                None,
                "only session datasets have events",
            ));
        }
        for (i, e) in input.proxy_events.iter().enumerate() {
            let body = e.strip_suffix('*').unwrap_or(e);
            if body.is_empty() || body.contains('*') {
                return Err(err(
                    "proxy_events",
                    Some(i),
                    format!("{e:?}: an event name, or a prefix followed by '*'"),
                ));
            }
        }
        let consent = match &input.consent {
            None => ConsentCategory::Statistics,
            Some(c) => {
                if kind != DatasetKind::Session {
                    return Err(err("consent", None, "only session events carry consent"));
                }
                let cat = ConsentCategory::parse(c).ok_or_else(|| {
                    err(
                        "consent",
                        None,
                        format!("{c:?}: one of statistics, marketing (policy §14.4 categories)"),
                    )
                })?;
                if cat < ConsentCategory::Statistics {
                    return Err(err(
                        "consent",
                        None,
                        format!(
                            "session analytics are statistics data (policy §14.2, §14.4): requiring only {c:?} consent would store them without it; use statistics or marketing"
                        ),
                    ));
                }
                cat
            }
        };
        Ok(DatasetPolicy {
            kind,
            columns,
            truncation: Truncation {
                ipv4_prefix: v4,
                ipv6_prefix: v6,
            },
            templates,
            keep_params: input.keep_query_params.clone(),
            proxy_events: input
                .proxy_events
                .iter()
                .map(|e| e.to_ascii_lowercase())
                .collect(),
            consent,
        })
    }

    /// Indices of the columns the policy drops (written as nulls).
    pub fn dropped_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, (_, kept))| !kept)
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether an event name is proxy traffic by this policy's extra markers.
    pub fn is_proxy_event(&self, event: &str) -> bool {
        self.proxy_events.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => {
                event.len() >= prefix.len()
                    && event.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            }
            None => event.eq_ignore_ascii_case(p),
        })
    }

    /// Whether a path needs the policy's rewriting at all.
    pub fn rewrites_paths(&self) -> bool {
        !self.templates.is_empty() || !self.keep_params.is_empty()
    }

    /// Applies templates to a cleaned path and appends allow-listed query parameters of the
    /// raw target (values other than small numbers and short harmless words become `:value`).
    pub fn rewrite_path(&self, raw: &[u8], path: &mut String) {
        for t in &self.templates {
            if t.apply(path) {
                break;
            }
        }
        if self.keep_params.is_empty() {
            return;
        }
        let Some(q) = memchr::memchr(b'?', raw).map(|i| &raw[i + 1..]) else {
            return;
        };
        let q = q.split(|b| *b == b'#').next().unwrap_or_default();
        let mut first = true;
        for pair in q.split(|b| *b == b'&') {
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            if !self.keep_params.iter().any(|p| p.as_bytes() == k) {
                continue;
            }
            path.push(if first { '?' } else { '&' });
            first = false;
            path.push_str(std::str::from_utf8(k).unwrap_or_default());
            path.push('=');
            // Small numbers (page=2) and short words (tab=usage) survive; anything that could
            // be an identifier does not.
            let small_number = !v.is_empty() && v.len() <= 4 && v.iter().all(u8::is_ascii_digit);
            let safe = small_number
                || (v.len() <= 32
                    && v.iter()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    && url::classify_segment(v).is_none());
            if safe {
                path.push_str(std::str::from_utf8(v).unwrap_or_default());
            } else {
                path.push_str(":value");
            }
        }
    }

    /// The effective policy, one line per setting, each with the rule that enforces it.
    pub fn describe(&self, name: &str, retention_days: u32) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "dataset {name} (kind {}, retention {retention_days} days)",
            self.kind.as_str()
        );
        let kept: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| c.1)
            .map(|c| c.0.as_str())
            .collect();
        let dropped: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| !c.1)
            .map(|c| c.0.as_str())
            .collect();
        let _ = writeln!(s, "  columns kept: {}", kept.join(", "));
        if !dropped.is_empty() {
            let _ = writeln!(
                s,
                "  columns dropped (null) [{}]: {}",
                Rule::Minimise.id(),
                dropped.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "  anything else in the input [{}]: dropped",
            Rule::Minimise.id()
        );
        let col = |c: &str| self.columns.iter().any(|(n, k)| n == c && *k);
        for (c, rule, what) in [
            (
                "ip_pseudonym",
                Rule::PseudonymiseIp,
                "client address → keyed pseudonym of its epoch",
            ),
            (
                "device_pseudonym",
                Rule::PseudonymiseDevice,
                "device id → keyed pseudonym",
            ),
            (
                "session_pseudonym",
                Rule::PseudonymiseSession,
                "session id → keyed pseudonym",
            ),
            (
                "account_pseudonym",
                Rule::PseudonymiseAccount,
                "account id → keyed pseudonym",
            ),
        ] {
            if col(c) {
                let _ = writeln!(s, "  {c} [{}]: {what}", rule.id());
            }
        }
        if col("ip_network") {
            let _ = writeln!(
                s,
                "  ip_network [{}]: IPv4 /{}, IPv6 /{}",
                Rule::TruncateIp.id(),
                self.truncation.ipv4_prefix,
                self.truncation.ipv6_prefix
            );
        }
        for c in ["path", "page"] {
            if col(c) {
                let _ = writeln!(
                    s,
                    "  {c} [{}]: query and fragment removed, identifier segments → :id/:uuid/…",
                    Rule::StripQuery.id()
                );
                for t in &self.templates {
                    let _ = writeln!(s, "    template {}", t.text);
                }
                if !self.keep_params.is_empty() {
                    let _ = writeln!(
                        s,
                        "    query parameters kept: {}",
                        self.keep_params.join(", ")
                    );
                }
            }
        }
        if col("referrer_host") {
            let _ = writeln!(
                s,
                "  referrer_host [{}]: scheme and site only",
                Rule::ReferrerHost.id()
            );
        }
        for c in ["message", "attributes"] {
            if col(c) {
                let _ = writeln!(s, "  {c} [{}]: free text scrubbed", Rule::ScrubText.id());
            }
        }
        if self.kind == DatasetKind::Syslog {
            let _ = writeln!(
                s,
                "  header tokens [{}]: kept when harmless, else <host>/scrubbed; structured-data values dropped",
                Rule::ScrubText.id()
            );
        }
        match self.kind {
            DatasetKind::Session => {
                let _ = writeln!(
                    s,
                    "  proxy traffic [{}]: proxy*/tunnel*/connect*/browse events and destination fields dropped",
                    Rule::ProxyContent.id()
                );
                if !self.proxy_events.is_empty() {
                    let _ = writeln!(s, "    also events: {}", self.proxy_events.join(", "));
                }
                let _ = writeln!(
                    s,
                    "  consent [{}]: events without {} consent dropped",
                    Rule::ConsentStatistics.id(),
                    self.consent.as_str()
                );
                let _ = writeln!(
                    s,
                    "  marketing fields [{}]: only with marketing consent",
                    Rule::ConsentMarketing.id()
                );
                let _ = writeln!(
                    s,
                    "  locale [{}]: only with preferences consent",
                    Rule::ConsentPreferences.id()
                );
            }
            DatasetKind::Access | DatasetKind::App => {
                let _ = writeln!(
                    s,
                    "  proxy traffic [{}]: CONNECT and absolute/authority-form targets dropped",
                    Rule::ProxyContent.id()
                );
            }
            DatasetKind::ProxyUsage => {
                let _ = writeln!(
                    s,
                    "  proxy requests [{}]: summed per window, account and network; no destination is read",
                    Rule::ProxyAggregate.id()
                );
            }
            _ => {}
        }
        if self.kind != DatasetKind::Quarantine {
            let _ = writeln!(
                s,
                "  shredded key epochs [{}]: events dropped",
                Rule::KeyShredded.id()
            );
        }
        if has_addresses(self.kind) {
            let _ = writeln!(
                s,
                "  suppression list [{}, {}]: listed subjects' events dropped",
                Rule::Objection.id(),
                Rule::Restriction.id()
            );
        }
        let _ = writeln!(
            s,
            "  before commit [{}]: a raw address or email in any string column withholds the partition",
            Rule::SelfCheck.id()
        );
        s
    }
}

/// Words that make a query parameter unkeepable, whatever the policy says: it names a secret
/// or an identifier (`api_key`, `session_id`, `user-email`, `client_ip` …).
const SECRET_PARAMS: [&str; 27] = [
    "token",
    "key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "auth",
    "session",
    "sid",
    "email",
    "mail",
    "user",
    "username",
    "login",
    "sig",
    "signature",
    "code",
    "ip",
    "addr",
    "address",
    "device",
    "account",
    "uid",
    "id",
    "phone",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(kind: DatasetKind, i: PolicyInput) -> Result<DatasetPolicy, PolicyError> {
        DatasetPolicy::resolve(kind, &i, Truncation::default())
    }

    #[test]
    fn columns_are_an_allow_list() {
        let p = resolve(
            DatasetKind::Session,
            PolicyInput {
                columns: Some(
                    [
                        "ts",
                        "event",
                        "app",
                        "consent_preferences",
                        "consent_statistics",
                        "consent_marketing",
                        "key_id",
                        "browser_family",
                        "os_family",
                        "device_class",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                ..Default::default()
            },
        )
        .unwrap();
        let dropped = p.dropped_columns();
        let names: Vec<String> = DatasetKind::Session
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert!(dropped.iter().any(|i| names[*i] == "device_pseudonym"));
        assert!(!dropped.iter().any(|i| names[*i] == "event"));
        let e = resolve(
            DatasetKind::Access,
            PolicyInput {
                columns: Some(vec!["ts".into(), "nope".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!((e.field, e.index), ("columns", Some(1)));
        let e = resolve(
            DatasetKind::Access,
            PolicyInput {
                columns: Some(vec!["ts".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.what.contains("required"), "{e}");
    }

    #[test]
    fn settings_can_only_narrow() {
        let bad = [
            PolicyInput {
                ipv4_prefix: Some(32),
                ..Default::default()
            },
            PolicyInput {
                ipv6_prefix: Some(128),
                ..Default::default()
            },
            PolicyInput {
                consent: Some("necessary".into()),
                ..Default::default()
            },
            PolicyInput {
                keep_query_params: vec!["api_token".into()],
                ..Default::default()
            },
            PolicyInput {
                keep_query_params: vec!["user_email".into()],
                ..Default::default()
            },
            PolicyInput {
                path_templates: vec!["/users/bob".into()],
                ..Default::default()
            },
            PolicyInput {
                path_templates: vec!["users/:id".into()],
                ..Default::default()
            },
            PolicyInput {
                proxy_events: vec!["*".into()],
                ..Default::default()
            },
        ];
        for b in bad {
            assert!(resolve(DatasetKind::Session, b.clone()).is_err(), "{b:?}");
        }
        assert!(
            resolve(
                DatasetKind::Syslog,
                PolicyInput {
                    ipv4_prefix: Some(16),
                    ..Default::default()
                }
            )
            .is_err()
        );
        assert!(
            resolve(
                DatasetKind::Access,
                PolicyInput {
                    consent: Some("marketing".into()),
                    ..Default::default()
                }
            )
            .is_err()
        );
        let p = resolve(
            DatasetKind::Session,
            PolicyInput {
                consent: Some("marketing".into()),
                ipv4_prefix: Some(16),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.consent, ConsentCategory::Marketing);
        assert_eq!(p.truncation.ipv4_prefix, 16);
    }

    #[test]
    fn templates_and_kept_parameters() {
        let p = resolve(
            DatasetKind::Access,
            PolicyInput {
                path_templates: vec!["/users/:user/settings".into(), "/files/:owner/*".into()],
                keep_query_params: vec!["page".into(), "tab".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let run = |raw: &str| {
            let mut out = String::new();
            assert!(url::clean_path(raw.as_bytes(), &mut out));
            p.rewrite_path(raw.as_bytes(), &mut out);
            out
        };
        assert_eq!(run("/users/bob/settings"), "/users/:user/settings");
        assert_eq!(run("/users/bob/other"), "/users/bob/other");
        assert_eq!(run("/files/ana/a/b.txt"), "/files/:owner/a/b.txt");
        assert_eq!(
            run("/list?page=2&email=a@b.example&tab=x#f"),
            "/list?page=2&tab=x"
        );
        assert_eq!(
            run("/list?page=3f2a9c1e-0000-4000-8000-000000000001"),
            "/list?page=:value"
        );
        assert_eq!(run("/list?page=a%40b"), "/list?page=:value");
    }

    #[test]
    fn extra_proxy_events_and_description() {
        let p = resolve(
            DatasetKind::Session,
            PolicyInput {
                proxy_events: vec!["vpn_*".into(), "route".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            p.is_proxy_event("VPN_start")
                && p.is_proxy_event("route")
                && !p.is_proxy_event("router")
        );
        let d = p.describe("session", 90);
        for id in [
            "pseudonymise-device/1.12.2",
            "consent-statistics/14.2",
            "proxy-content/5.2.3",
            "self-check/10.1",
        ] {
            assert!(d.contains(id), "{id}: {d}");
        }
    }
}

//! The privacy rules, each tied to the clause of the privacy policy it enforces. Every drop,
//! redaction and pseudonymisation the engine performs is counted under one of these ids (per
//! dataset, in the run summary's `rules` object), and `docs/PRIVACY.md` maps each clause to
//! its rules and to the tests that prove them.
//!
//! Ids are stable: `<what>/<clause>`. New rules may be added; ids are never reused.

/// A privacy rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rule {
    /// Proxy traffic (CONNECT, absolute-form targets, proxy events, destination fields) is
    /// dropped: "The Company does not collect or store proxy traffic".
    ProxyContent,
    /// Proxy gateway requests are folded into per-window sums; no request is stored.
    ProxyAggregate,
    /// A session event without statistics consent is dropped.
    ConsentStatistics,
    /// Marketing fields (UTM, click ids) of an event without marketing consent are dropped.
    ConsentMarketing,
    /// Preference data (locale) of an event without preferences consent is dropped.
    ConsentPreferences,
    /// Fields outside the dataset's output schema (unknown JSON fields, unmapped fields) are
    /// dropped.
    Minimise,
    /// An IP address becomes a keyed pseudonym.
    PseudonymiseIp,
    /// An IP address is stored only as its network (/24, /48 by default).
    TruncateIp,
    /// A device id becomes a keyed pseudonym.
    PseudonymiseDevice,
    /// A session id becomes a keyed pseudonym.
    PseudonymiseSession,
    /// An account id becomes a keyed pseudonym.
    PseudonymiseAccount,
    /// A URL's query string is removed.
    StripQuery,
    /// A referrer is reduced to scheme and host.
    ReferrerHost,
    /// Free text (messages, attributes, header tokens) had identifiers or secrets replaced.
    ScrubText,
    /// An event of a key epoch whose key was shredded is dropped (it could only be stored
    /// linkable under another key).
    KeyShredded,
    /// An event of a subject who objected to processing (suppression list) is dropped.
    Objection,
    /// An event of a subject whose processing is restricted (suppression list) is dropped.
    Restriction,
    /// A partition in which the self-check found a raw address or email is withheld (its
    /// rows are counted here, never published).
    SelfCheck,
    /// An event whose partition had already expired when it arrived is dropped: late data
    /// never resurrects a partition the retention sweep deleted (or is about to).
    Expired,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::ProxyContent,
        Rule::ProxyAggregate,
        Rule::ConsentStatistics,
        Rule::ConsentMarketing,
        Rule::ConsentPreferences,
        Rule::Minimise,
        Rule::PseudonymiseIp,
        Rule::TruncateIp,
        Rule::PseudonymiseDevice,
        Rule::PseudonymiseSession,
        Rule::PseudonymiseAccount,
        Rule::StripQuery,
        Rule::ReferrerHost,
        Rule::ScrubText,
        Rule::KeyShredded,
        Rule::Objection,
        Rule::Restriction,
        Rule::SelfCheck,
        Rule::Expired,
    ];
    pub const COUNT: usize = Rule::ALL.len();

    /// Stable id, `<what>/<policy clause>`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ProxyContent => "proxy-content/5.2.3",
            Rule::ProxyAggregate => "proxy-aggregate/5.2.3",
            Rule::ConsentStatistics => "consent-statistics/14.2",
            Rule::ConsentMarketing => "consent-marketing/14.2",
            Rule::ConsentPreferences => "consent-preferences/14.2",
            Rule::Minimise => "minimise/1.12.2",
            Rule::PseudonymiseIp => "pseudonymise-ip/1.12.2",
            Rule::TruncateIp => "truncate-ip/1.12.2",
            Rule::PseudonymiseDevice => "pseudonymise-device/1.12.2",
            Rule::PseudonymiseSession => "pseudonymise-session/1.12.2",
            Rule::PseudonymiseAccount => "pseudonymise-account/1.12.2",
            Rule::StripQuery => "strip-query/1.12.2",
            Rule::ReferrerHost => "referrer-host/1.12.2",
            Rule::ScrubText => "scrub-text/1.12.2",
            Rule::KeyShredded => "key-shredded/9.4",
            Rule::Objection => "objection/7.4",
            Rule::Restriction => "restriction/7.7",
            Rule::SelfCheck => "self-check/10.1",
            Rule::Expired => "expired-on-arrival/9.1",
        }
    }

    /// The clause of the privacy policy the rule enforces.
    pub fn clause(self) -> &'static str {
        let id = self.id();
        &id[id.find('/').map_or(0, |i| i + 1)..]
    }
}

/// Counts per rule (indexed by `Rule as usize`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts(pub [u64; Rule::COUNT]);

impl RuleCounts {
    #[inline]
    pub fn add(&mut self, r: Rule, n: u64) {
        self.0[r as usize] += n;
    }

    #[inline]
    pub fn bump(&mut self, r: Rule) {
        self.0[r as usize] += 1;
    }

    pub fn get(&self, r: Rule) -> u64 {
        self.0[r as usize]
    }

    pub fn merge(&mut self, o: &RuleCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }

    /// Non-zero counts, by rule id.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Rule::ALL
            .iter()
            .filter(|r| self.get(**r) > 0)
            .map(|r| (r.id(), self.get(*r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_ordered_like_all() {
        let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::COUNT);
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(
                !r.clause().is_empty()
                    && r.clause().chars().all(|c| c.is_ascii_digit() || c == '.')
            );
        }
    }
}

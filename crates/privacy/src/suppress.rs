//! The suppression list (privacy policy §7.4 objection, §7.7 restriction): subjects whose
//! events are dropped at ingest, each drop counted under `objection/7.4` or `restriction/7.7`.
//!
//! The list never holds a raw identifier. An entry holds keyed hashes of the identifiers the
//! subject proved (IP addresses, device ids, account ids) under the ring's *suppression key*, a
//! key used for nothing else: its hashes appear in no dataset, so the list cannot be joined
//! with the output, and, unlike the epoch keys, it is not shredded, so an objection keeps
//! working across key rotations (per-epoch pseudonyms could not be extended to an epoch created
//! after the objection without the raw identifier). Lifting an objection deletes the entry.
//!
//! The list is a small JSON document (`<root>/_privacy/suppression.json`); the binary reads and
//! writes it through the root's storage.

use std::collections::HashMap;
use std::net::IpAddr;

use logveil_model::Rule;
use serde::{Deserialize, Serialize};

use crate::keys::Key;
use crate::pseudonym::{IdKind, Pseudonym, Pseudonymiser, canonical_ip, parse_ip};

/// Where a root keeps its suppression list.
pub const SUPPRESSION_PATH: &str = "_privacy/suppression.json";
const FORMAT: &str = "logveil-suppression";

/// Why a subject's events are suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ground {
    /// §7.4: the subject objected to the processing.
    Objection,
    /// §7.7: processing is restricted (e.g. while accuracy is contested).
    Restriction,
}

impl Ground {
    pub fn rule(self) -> Rule {
        match self {
            Ground::Objection => Rule::Objection,
            Ground::Restriction => Rule::Restriction,
        }
    }
}

/// One subject's entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub request_id: String,
    pub ground: Ground,
    pub added_at: String,
    /// Id of the suppression key the hashes were made with.
    pub key_id: String,
    /// Hashes of IP addresses (canonical form, as for `ip_pseudonym`).
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub device_ids: Vec<String>,
    #[serde(default)]
    pub account_ids: Vec<String>,
}

/// Problems with a suppression list or a request to change it.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("suppression list is not valid: {0}; restore it from backup (it is never ignored)")]
    Invalid(String),
    #[error("{0}")]
    Request(String),
}

/// The whole list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionList {
    pub entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    entries: Vec<Entry>,
}

impl SuppressionList {
    pub fn from_json(bytes: &[u8]) -> Result<SuppressionList, SuppressError> {
        let f: File = serde_json::from_slice(bytes).map_err(|e| {
            SuppressError::Invalid(format!(
                "JSON error at line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        if f.format != FORMAT || f.version != 1 {
            return Err(SuppressError::Invalid(format!(
                "expected format \"{FORMAT}\" version 1"
            )));
        }
        Ok(SuppressionList { entries: f.entries })
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(&File {
            format: FORMAT.into(),
            version: 1,
            entries: self.entries.clone(),
        })
        .expect("suppression list serialises");
        v.push(b'\n');
        v
    }

    /// Adds an entry for a subject from the identifiers they proved. Raw values are hashed
    /// here and dropped; an IP that does not parse is an error that does not repeat it.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        key: &Key,
        request_id: &str,
        ground: Ground,
        added_at: &str,
        ips: &[String],
        device_ids: &[String],
        account_ids: &[String],
    ) -> Result<&Entry, SuppressError> {
        if request_id.trim().is_empty() {
            return Err(SuppressError::Request("a --request-id is required".into()));
        }
        if self.entries.iter().any(|e| e.request_id == request_id) {
            return Err(SuppressError::Request(format!(
                "request {request_id} is already on the suppression list"
            )));
        }
        if ips.is_empty() && device_ids.is_empty() && account_ids.is_empty() {
            return Err(SuppressError::Request(
                "name at least one identifier (--ip, --device-id, --account-id)".into(),
            ));
        }
        let p = Pseudonymiser::try_new(key)
            .ok_or_else(|| SuppressError::Request("the suppression key has no material".into()))?;
        let mut hashed_ips = Vec::with_capacity(ips.len());
        for (i, ip) in ips.iter().enumerate() {
            let a = parse_ip(ip.trim().as_bytes()).ok_or_else(|| {
                SuppressError::Request(format!(
                    "--ip number {} is not an IPv4 or IPv6 address",
                    i + 1
                ))
            })?;
            hashed_ips.push(p.ip_pseudonym(a).as_str().to_string());
        }
        let hash = |kind, v: &[String]| {
            v.iter()
                .filter(|x| !x.is_empty())
                .map(|x| p.pseudonym(kind, x.as_bytes()).as_str().to_string())
                .collect::<Vec<_>>()
        };
        self.entries.push(Entry {
            request_id: request_id.to_string(),
            ground,
            added_at: added_at.to_string(),
            key_id: key.id().to_string(),
            ips: hashed_ips,
            device_ids: hash(IdKind::Device, device_ids),
            account_ids: hash(IdKind::Account, account_ids),
        });
        Ok(self.entries.last().expect("pushed"))
    }

    /// Removes a request's entry; returns it.
    pub fn lift(&mut self, request_id: &str) -> Result<Entry, SuppressError> {
        let i = self
            .entries
            .iter()
            .position(|e| e.request_id == request_id)
            .ok_or_else(|| {
                SuppressError::Request(format!("no suppression entry for request {request_id}"))
            })?;
        Ok(self.entries.remove(i))
    }
}

/// What the engine consults: hashes of suppressed identifiers under the suppression key.
pub struct Suppressor {
    p: Pseudonymiser,
    set: HashMap<(u8, [u8; 32]), Ground, foldhash::fast::RandomState>,
}

fn raw(p: &str) -> Option<[u8; 32]> {
    p.as_bytes().try_into().ok()
}

impl Suppressor {
    /// `None` when nothing is suppressed (the engine then skips the check entirely). Entries
    /// made with another suppression key cannot match and are an error.
    pub fn new(
        list: &SuppressionList,
        key: Option<&Key>,
    ) -> Result<Option<Suppressor>, SuppressError> {
        if list.entries.is_empty() {
            return Ok(None);
        }
        let key = key.ok_or_else(|| {
            SuppressError::Invalid(
                "it has entries, but the key ring has no suppression key (was the ring replaced?)"
                    .into(),
            )
        })?;
        let p = Pseudonymiser::try_new(key)
            .ok_or_else(|| SuppressError::Invalid("the suppression key has no material".into()))?;
        let mut set = HashMap::default();
        for e in &list.entries {
            if e.key_id != key.id() {
                return Err(SuppressError::Invalid(format!(
                    "request {} was hashed with suppression key {}, but the ring's is {}",
                    e.request_id,
                    e.key_id,
                    key.id()
                )));
            }
            for (kind, hashes) in [
                (IdKind::Ip, &e.ips),
                (IdKind::Device, &e.device_ids),
                (IdKind::Account, &e.account_ids),
            ] {
                for h in hashes {
                    let h = raw(h).ok_or_else(|| {
                        SuppressError::Invalid(format!(
                            "request {}: a hash is malformed",
                            e.request_id
                        ))
                    })?;
                    set.insert((kind as u8, h), e.ground);
                }
            }
        }
        Ok(Some(Suppressor { p, set }))
    }

    fn hit(&self, kind: IdKind, h: Pseudonym) -> Option<Ground> {
        let mut k = [0u8; 32];
        k.copy_from_slice(h.as_str().as_bytes());
        self.set.get(&(kind as u8, k)).copied()
    }

    /// Whether an address is suppressed.
    pub fn ip(&self, ip: IpAddr) -> Option<Ground> {
        self.hit(IdKind::Ip, self.p.ip_pseudonym(canonical_ip(ip)))
    }

    /// Whether an identifier of `kind` (device or account id, as written) is suppressed.
    pub fn id(&self, kind: IdKind, value: &[u8]) -> Option<Ground> {
        self.hit(kind, self.p.pseudonym(kind, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    #[test]
    fn add_match_lift_and_no_raw_values() {
        let key = Key::generate(Algorithm::Blake3, None, String::new()).unwrap();
        let mut l = SuppressionList::default();
        l.add(
            &key,
            "REQ-1",
            Ground::Objection,
            "t",
            &["::ffff:198.51.100.7".into()],
            &["dev-4242-canary".into()],
            &[],
        )
        .unwrap();
        l.add(
            &key,
            "REQ-2",
            Ground::Restriction,
            "t",
            &[],
            &[],
            &["acct-77".into()],
        )
        .unwrap();
        assert!(
            l.add(
                &key,
                "REQ-2",
                Ground::Objection,
                "t",
                &[],
                &[],
                &["x".into()]
            )
            .is_err()
        );
        assert!(
            l.add(&key, "REQ-3", Ground::Objection, "t", &[], &[], &[])
                .is_err()
        );
        let e = l
            .add(
                &key,
                "REQ-4",
                Ground::Objection,
                "t",
                &["nope".into()],
                &[],
                &[],
            )
            .unwrap_err()
            .to_string();
        assert!(!e.contains("nope"), "{e}");
        let json = String::from_utf8(l.to_json()).unwrap();
        for raw in ["198.51.100.7", "dev-4242", "acct-77"] {
            assert!(!json.contains(raw), "{raw} in {json}");
        }
        let l = SuppressionList::from_json(json.as_bytes()).unwrap();
        let s = Suppressor::new(&l, Some(&key)).unwrap().unwrap();
        assert_eq!(
            s.ip("198.51.100.7".parse().unwrap()),
            Some(Ground::Objection)
        );
        assert_eq!(s.ip("198.51.100.8".parse().unwrap()), None);
        assert_eq!(
            s.id(IdKind::Device, b"dev-4242-canary"),
            Some(Ground::Objection)
        );
        assert_eq!(s.id(IdKind::Account, b"dev-4242-canary"), None);
        assert_eq!(s.id(IdKind::Account, b"acct-77"), Some(Ground::Restriction));

        let other = Key::generate(Algorithm::Blake3, None, String::new()).unwrap();
        assert!(Suppressor::new(&l, Some(&other)).is_err());
        assert!(Suppressor::new(&l, None).is_err());
        let mut l = l;
        l.lift("REQ-1").unwrap();
        l.lift("REQ-2").unwrap();
        assert!(l.lift("REQ-2").is_err());
        assert!(Suppressor::new(&l, None).unwrap().is_none());
    }
}

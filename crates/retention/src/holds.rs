//! Legal holds (privacy policy §9.3: data kept longer "for the establishment, exercise or
//! defence of legal claims"): a hold names a dataset (or `*` for all) and a period of event
//! time; while it is in force, nothing in that period may be deleted by the retention sweep,
//! and no key whose epoch overlaps it may be shredded.
//!
//! Holds live in `<root>/_retention/holds.json`, rewritten whole and atomically through the
//! root's storage (local disk or object store). Released holds stay in the file, with who
//! released them and when, so the record of why data was kept is never lost.

use bytes::Bytes;
use logveil_model::time::{format_rfc3339, parse_rfc3339};
use logveil_sink::Storage;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::{Result, RetentionError};

/// Where the holds of a root are kept.
pub const HOLDS_PATH: &str = "_retention/holds.json";
const FORMAT: &str = "logveil-holds";

/// One legal hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// `h-<n>`, unique within the root.
    pub id: String,
    /// Dataset name, or `*` for every dataset.
    pub dataset: String,
    /// Start of the held period of event time (RFC 3339, inclusive).
    pub from: String,
    /// End of the held period (RFC 3339, exclusive).
    pub to: String,
    pub reason: String,
    pub owner: String,
    pub created_at: String,
    /// The hold lapses by itself at this time (RFC 3339), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_by: Option<String>,
}

impl Hold {
    fn micros(t: &str) -> i64 {
        parse_rfc3339(t.as_bytes()).unwrap_or(i64::MIN)
    }

    pub fn from_micros(&self) -> i64 {
        Self::micros(&self.from)
    }

    pub fn to_micros(&self) -> i64 {
        Self::micros(&self.to)
    }

    /// Whether the hold is in force at `now`: not released and not lapsed.
    pub fn in_force(&self, now: i64) -> bool {
        self.released_at.is_none() && self.until.as_deref().is_none_or(|u| now < Self::micros(u))
    }

    /// Whether the hold covers any of `[from, to)` of `dataset` (`None`: any dataset).
    pub fn covers(&self, dataset: Option<&str>, from: i64, to: i64) -> bool {
        let ds = match dataset {
            None => true,
            Some(d) => self.dataset == "*" || self.dataset == d,
        };
        ds && self.from_micros() < to && from < self.to_micros()
    }
}

#[derive(Serialize, Deserialize)]
struct HoldsFile {
    format: String,
    version: u32,
    holds: Vec<Hold>,
}

/// The holds of one root.
#[derive(Clone, Debug, Default)]
pub struct HoldSet {
    holds: Vec<Hold>,
}

impl HoldSet {
    /// Reads the holds (none if the file does not exist). A file that exists but cannot be
    /// read is an error: a hold must never be ignored because its record is damaged.
    pub fn load(storage: &Storage) -> Result<HoldSet> {
        let path = Path::from(HOLDS_PATH);
        let Some(bytes) = storage.get(&path)? else {
            return Ok(HoldSet::default());
        };
        HoldSet::parse(storage, &bytes)
    }

    fn parse(storage: &Storage, bytes: &[u8]) -> Result<HoldSet> {
        let invalid = |what: String| RetentionError::Invalid {
            path: format!("{}/{HOLDS_PATH}", storage.label()),
            what,
        };
        let file: HoldsFile = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "JSON error at line {}, column {}; fix it by hand or restore it from backup (holds are never ignored)",
                e.line(),
                e.column()
            ))
        })?;
        if file.format != FORMAT || file.version != 1 {
            return Err(invalid(format!("expected format \"{FORMAT}\" version 1")));
        }
        for h in &file.holds {
            // A damaged `until` must not end a hold silently.
            for t in [Some(&h.from), Some(&h.to), h.until.as_ref()]
                .into_iter()
                .flatten()
            {
                if parse_rfc3339(t.as_bytes()).is_none() {
                    return Err(invalid(format!(
                        "hold {}: {t:?} is not an RFC 3339 time",
                        h.id
                    )));
                }
            }
        }
        Ok(HoldSet { holds: file.holds })
    }

    fn to_bytes(&self) -> Bytes {
        let file = HoldsFile {
            format: FORMAT.into(),
            version: 1,
            holds: self.holds.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&file).expect("holds serialise");
        text.push(b'\n');
        Bytes::from(text)
    }

    /// Changes the holds file with `f` and saves it: on object storage by a conditional put
    /// retried against concurrent writers, so that no hold placed meanwhile is lost.
    fn modify<T>(storage: &Storage, mut f: impl FnMut(&mut HoldSet) -> Result<T>) -> Result<T> {
        // Local disk: writers serialise on a lock (object storage: the conditional put).
        let _lock = storage.lock("_retention/holds.lock", true)?;
        let mut out: Option<Result<T>> = None;
        storage.update(&Path::from(HOLDS_PATH), |current| {
            let set = match current {
                Some(b) => HoldSet::parse(storage, b),
                None => Ok(HoldSet::default()),
            };
            let mut set = match set {
                Ok(s) => s,
                Err(e) => {
                    out = Some(Err(e));
                    return Ok(None);
                }
            };
            match f(&mut set) {
                Ok(v) => {
                    out = Some(Ok(v));
                    Ok(Some(set.to_bytes()))
                }
                Err(e) => {
                    out = Some(Err(e));
                    Ok(None)
                }
            }
        })?;
        out.expect("update calls its closure at least once")
    }

    pub fn all(&self) -> &[Hold] {
        &self.holds
    }

    /// Holds in force at `now` that cover `[from, to)` of `dataset` (`None`: any dataset).
    pub fn blocking(&self, dataset: Option<&str>, from: i64, to: i64, now: i64) -> Vec<&Hold> {
        self.holds
            .iter()
            .filter(|h| h.in_force(now) && h.covers(dataset, from, to))
            .collect()
    }

    /// Adds a hold and saves the set; returns the new hold.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        storage: &Storage,
        dataset: &str,
        from: i64,
        to: i64,
        reason: &str,
        owner: &str,
        until: Option<i64>,
        now: i64,
    ) -> Result<Hold> {
        if from >= to {
            return Err(RetentionError::Usage(
                "a hold's --from must be before its --to".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(RetentionError::Usage(
                "a hold needs a --reason (it is the record of why data is kept)".into(),
            ));
        }
        HoldSet::modify(storage, |set| {
            let n = set
                .holds
                .iter()
                .filter_map(|h| h.id.strip_prefix("h-")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            let hold = Hold {
                id: format!("h-{n}"),
                dataset: dataset.to_string(),
                from: format_rfc3339(from),
                to: format_rfc3339(to),
                reason: reason.to_string(),
                owner: owner.to_string(),
                created_at: format_rfc3339(now),
                until: until.map(format_rfc3339),
                released_at: None,
                released_by: None,
            };
            set.holds.push(hold.clone());
            Ok(hold)
        })
    }

    /// Releases a hold (kept in the file, marked released) and saves the set.
    pub fn release(storage: &Storage, id: &str, by: &str, now: i64) -> Result<Hold> {
        HoldSet::modify(storage, |set| {
            let Some(h) = set.holds.iter_mut().find(|h| h.id == id) else {
                return Err(RetentionError::Usage(format!(
                    "no hold {id}; `logveil retention holds --root …` lists them"
                )));
            };
            if h.released_at.is_some() {
                return Err(RetentionError::Usage(format!(
                    "hold {id} is already released"
                )));
            }
            h.released_at = Some(format_rfc3339(now));
            h.released_by = Some(by.to_string());
            Ok(h.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;
    const T: i64 = 1_793_491_200_000_000; // 2026-11-01

    #[test]
    fn add_block_release() {
        let dir = tempfile::tempdir().unwrap();
        let st = Storage::local(dir.path()).unwrap();
        assert!(HoldSet::load(&st).unwrap().all().is_empty());
        let h = HoldSet::add(&st, "access", T, T + 10 * DAY, "case 42", "legal", None, T).unwrap();
        assert_eq!(h.id, "h-1");
        let h2 =
            HoldSet::add(&st, "*", T, T + DAY, "audit", "legal", Some(T + 2 * DAY), T).unwrap();
        assert_eq!(h2.id, "h-2");
        let set = HoldSet::load(&st).unwrap();
        assert_eq!(
            set.blocking(Some("access"), T + 5 * DAY, T + 6 * DAY, T)
                .len(),
            1
        );
        assert_eq!(
            set.blocking(Some("session"), T + 5 * DAY, T + 6 * DAY, T)
                .len(),
            0
        );
        assert_eq!(set.blocking(None, T - DAY, T + 1, T).len(), 2);
        assert_eq!(
            set.blocking(Some("session"), T, T + 1, T + 3 * DAY).len(),
            0
        ); // lapsed
        assert_eq!(
            set.blocking(Some("access"), T + 10 * DAY, T + 11 * DAY, T)
                .len(),
            0
        );
        HoldSet::release(&st, "h-1", "legal", T + DAY).unwrap();
        assert!(HoldSet::release(&st, "h-1", "legal", T + DAY).is_err());
        assert!(HoldSet::release(&st, "h-9", "legal", T + DAY).is_err());
        let set = HoldSet::load(&st).unwrap();
        assert_eq!(
            set.blocking(Some("access"), T + 5 * DAY, T + 6 * DAY, T + DAY)
                .len(),
            0
        );
        assert_eq!(set.all().len(), 2, "released holds stay on record");
        assert!(HoldSet::add(&st, "access", T, T, "x", "y", None, T).is_err());
        assert!(HoldSet::add(&st, "access", T, T + 1, " ", "y", None, T).is_err());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_no_holds() {
        let dir = tempfile::tempdir().unwrap();
        let st = Storage::local(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("_retention")).unwrap();
        std::fs::write(dir.path().join(HOLDS_PATH), "{not json").unwrap();
        let e = HoldSet::load(&st).unwrap_err().to_string();
        assert!(e.contains("never ignored"), "{e}");
    }
}

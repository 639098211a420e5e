//! Key rings: the secrets from which every pseudonym is derived, one per epoch.
//!
//! A key ring is a small JSON file (`logveil keygen`) holding a sequence of 32-byte keys. Each
//! key has a public id, an algorithm (keyed BLAKE3, or HMAC-SHA256 where a deployment requires
//! it) and the start of its epoch: a key is used for every event whose *event time* falls in
//! `[valid_from, next key's valid_from)`, so a partition (one hour) is always pseudonymised with
//! exactly one key. The first key's epoch reaches back to the beginning of time.
//!
//! `logveil keys rotate` appends a key for a future epoch; `logveil keys shred --before DATE`
//! destroys the material of every key whose epoch ended by DATE. A shredded key keeps its id and
//! epoch in the ring (so readers can tell "anonymised" from "unknown") but its material is gone
//! from the file: from then on nobody, the operator included, can recompute those pseudonyms.
//!
//! The file must be private to its owner (mode 0600): a ring that group or others can read is
//! refused. Key material is zeroised when dropped, and never appears in logs, errors or `Debug`
//! output; only key ids do.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use logveil_model::time::{MICROS_PER_HOUR, format_rfc3339, parse_rfc3339};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Key id used for the built-in development key.
pub const DEV_KEY_ID: &str = "dev-insecure";

/// Problems with a key ring. Messages name the file and say what to do; they never contain
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key ring {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key ring {path} is readable by group or others (mode {mode:04o}); run `chmod 600 {path}` and make sure only the pipeline's user can read it"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "key ring {path} is not valid: {what}; restore it from your backup, or create a new one with `logveil keygen --out {path}`"
    )]
    Invalid { path: PathBuf, what: String },
    #[error("cannot write key ring {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key ring {path} already exists; use `logveil keys rotate` to add a key for a new epoch"
    )]
    Exists { path: PathBuf },
    #[error("cannot rotate: {0}")]
    Rotate(String),
    #[error("cannot shred: {0}")]
    Shred(String),
    #[error("no randomness available from the operating system: {0}")]
    Random(String),
}

/// The keyed hash a key is used with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Keyed BLAKE3 (the default: fast, 256-bit keys).
    #[default]
    Blake3,
    /// HMAC-SHA256, for deployments whose rules require a FIPS-approved construction.
    HmacSha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Blake3 => "blake3",
            Algorithm::HmacSha256 => "hmac-sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "blake3" => Some(Algorithm::Blake3),
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            _ => None,
        }
    }
}

/// Key material: zeroised on drop, never printed.
#[derive(Clone)]
pub(crate) struct Secret(Zeroizing<[u8; 32]>);

impl Secret {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// One key: id, epoch, and (unless shredded) its secret.
#[derive(Clone)]
pub struct Key {
    id: String,
    secret: Option<Secret>,
    algorithm: Algorithm,
    created_at: String,
    /// Start of the epoch (µs since the epoch, UTC, whole hour); `None` for the first key.
    valid_from: Option<i64>,
    shredded_at: Option<String>,
}

impl Key {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Start of this key's epoch; `None` means "since the beginning of time".
    pub fn valid_from(&self) -> Option<i64> {
        self.valid_from
    }

    pub fn is_shredded(&self) -> bool {
        self.secret.is_none()
    }

    pub fn shredded_at(&self) -> Option<&str> {
        self.shredded_at.as_deref()
    }

    pub(crate) fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// A new random key for an epoch starting at `valid_from` (`None`: the first epoch). Its
    /// id is derived from the secret by a one-way hash, so the id reveals nothing about the
    /// key but is stable for it.
    pub fn generate(
        algorithm: Algorithm,
        valid_from: Option<i64>,
        created_at: String,
    ) -> Result<Key, KeyError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut secret[..]).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Key::from_secret(secret, algorithm, valid_from, created_at))
    }

    fn from_secret(
        secret: Zeroizing<[u8; 32]>,
        algorithm: Algorithm,
        valid_from: Option<i64>,
        created_at: String,
    ) -> Key {
        Key {
            id: key_id(&secret),
            secret: Some(Secret(secret)),
            algorithm,
            created_at,
            valid_from,
            shredded_at: None,
        }
    }

    /// The development key: public, fixed, and marked as such everywhere it is used.
    pub fn development() -> Key {
        Key {
            id: DEV_KEY_ID.to_string(),
            secret: Some(Secret(Zeroizing::new(blake3::derive_key(
                "logveil development key, not secret, never for production",
                b"",
            )))),
            algorithm: Algorithm::Blake3,
            created_at: String::new(),
            valid_from: None,
            shredded_at: None,
        }
    }

    pub fn is_development(&self) -> bool {
        self.id == DEV_KEY_ID
    }
}

fn key_id(secret: &[u8; 32]) -> String {
    let h = blake3::derive_key("logveil key id v1", secret);
    format!("k-{}", hex(&h[..8]))
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("valid_from", &self.valid_from)
            .field(
                "secret",
                &if self.secret.is_some() {
                    "<redacted>"
                } else {
                    "<shredded>"
                },
            )
            .finish()
    }
}

/// One key's epoch as `keys list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Epoch {
    pub key_id: String,
    pub algorithm: Algorithm,
    /// Inclusive start (µs); `i64::MIN` for the first epoch.
    pub from: i64,
    /// Exclusive end (µs); `i64::MAX` for the last epoch.
    pub to: i64,
    pub created_at: String,
    pub shredded_at: Option<String>,
}

impl Epoch {
    pub fn is_shredded(&self) -> bool {
        self.shredded_at.is_some()
    }

    /// `from` as RFC 3339, or `-∞`.
    pub fn from_text(&self) -> String {
        if self.from == i64::MIN {
            "-inf".into()
        } else {
            format_rfc3339(self.from)
        }
    }

    /// `to` as RFC 3339, or `+∞`.
    pub fn to_text(&self) -> String {
        if self.to == i64::MAX {
            "+inf".into()
        } else {
            format_rfc3339(self.to)
        }
    }
}

/// A sequence of keys, one per epoch, ordered by epoch start; plus, once the first subject
/// objected, the suppression key (see [`crate::suppress`]).
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<Key>,
    suppression: Option<Key>,
}

#[derive(Serialize, Deserialize)]
struct KeyRingFile {
    format: String,
    version: u32,
    keys: Vec<KeyFile>,
    /// Keys only the suppression list: never used for output, never shredded with epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suppression_key: Option<KeyFile>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    id: String,
    #[serde(default)]
    algorithm: Algorithm,
    /// RFC 3339; absent for the first epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_from: Option<String>,
    created_at: String,
    /// 64 hex digits; absent once shredded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shredded_at: Option<String>,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        if let Some(k) = &mut self.key {
            k.zeroize();
        }
    }
}

const FORMAT: &str = "logveil-keyring";
const VERSION: u32 = 2;

impl KeyRing {
    /// A ring holding only the development key.
    pub fn development() -> KeyRing {
        let mut dev = Key::development();
        dev.id = "s-dev-insecure".into();
        KeyRing {
            keys: vec![Key::development()],
            suppression: Some(dev),
        }
    }

    /// A ring with one key whose epoch covers all time.
    pub fn new(key: Key) -> KeyRing {
        KeyRing {
            keys: vec![Key {
                valid_from: None,
                ..key
            }],
            suppression: None,
        }
    }

    /// The key of the suppression list, if one was made.
    pub fn suppression_key(&self) -> Option<&Key> {
        self.suppression.as_ref()
    }

    /// The key of the suppression list, made (with the newest key's algorithm) if missing.
    /// The caller saves the ring.
    pub fn ensure_suppression_key(&mut self, created_at: String) -> Result<&Key, KeyError> {
        if self.suppression.is_none() {
            let mut k = Key::generate(self.latest().algorithm, None, created_at)?;
            k.id = format!("s-{}", &k.id[2..]);
            self.suppression = Some(k);
        }
        Ok(self.suppression.as_ref().expect("set above"))
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn is_development(&self) -> bool {
        self.keys.iter().any(Key::is_development)
    }

    /// The epochs, oldest first.
    pub fn epochs(&self) -> Vec<Epoch> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| Epoch {
                key_id: k.id.clone(),
                algorithm: k.algorithm,
                from: k.valid_from.unwrap_or(i64::MIN),
                to: self
                    .keys
                    .get(i + 1)
                    .and_then(|n| n.valid_from)
                    .unwrap_or(i64::MAX),
                created_at: k.created_at.clone(),
                shredded_at: k.shredded_at.clone(),
            })
            .collect()
    }

    /// The key whose epoch holds `ts`.
    pub fn key_at(&self, ts: i64) -> &Key {
        let i = self
            .keys
            .partition_point(|k| k.valid_from.is_none_or(|f| f <= ts));
        &self.keys[i.saturating_sub(1)]
    }

    /// The newest key (the one for events from its epoch start on).
    pub fn latest(&self) -> &Key {
        self.keys.last().expect("a ring has at least one key")
    }

    /// Appends `key` for a new epoch starting at `from`, which must be a whole hour (so that
    /// every hour partition has one key), after the newest epoch's start, and not in the past
    /// (events already written keep their key).
    pub fn rotate(&mut self, key: Key, from: i64, now: i64) -> Result<(), KeyError> {
        if self.is_development() {
            return Err(KeyError::Rotate(
                "the development key cannot be rotated; create a real ring with `logveil keygen`"
                    .into(),
            ));
        }
        if from.rem_euclid(MICROS_PER_HOUR) != 0 {
            return Err(KeyError::Rotate(format!(
                "an epoch must start on a whole hour (UTC), and {} does not; pass e.g. --from {}",
                format_rfc3339(from),
                format_rfc3339(from - from.rem_euclid(MICROS_PER_HOUR) + MICROS_PER_HOUR)
            )));
        }
        if from < now {
            let next_hour = now - now.rem_euclid(MICROS_PER_HOUR) + MICROS_PER_HOUR;
            return Err(KeyError::Rotate(format!(
                "the new epoch would start at {}, in the past: data already written keeps its key; pass --from {} or later",
                format_rfc3339(from),
                format_rfc3339(next_hour)
            )));
        }
        if let Some(last) = self.latest().valid_from
            && from <= last
        {
            return Err(KeyError::Rotate(format!(
                "the newest epoch already starts at {}; a new one must start after it",
                format_rfc3339(last)
            )));
        }
        self.keys.push(Key {
            valid_from: Some(from),
            ..key
        });
        Ok(())
    }

    /// Epochs that ended by `before` and still hold key material: what `shred(before)` would
    /// destroy.
    pub fn shreddable(&self, before: i64) -> Vec<Epoch> {
        self.epochs()
            .into_iter()
            .filter(|e| e.to <= before && !e.is_shredded())
            .collect()
    }

    /// Destroys the material of every key whose epoch ended by `before` (which must not be in
    /// the future: an epoch still in use is never shredded). Returns the epochs shredded.
    /// The caller saves the ring and records the shredding in the audit log.
    pub fn shred(&mut self, before: i64, now: i64, at: &str) -> Result<Vec<Epoch>, KeyError> {
        if self.is_development() {
            return Err(KeyError::Shred(
                "the development key is public; there is nothing to shred".into(),
            ));
        }
        if before > now {
            return Err(KeyError::Shred(format!(
                "--before {} is in the future; keys can only be shredded once their epoch is over",
                format_rfc3339(before)
            )));
        }
        let doomed = self.shreddable(before);
        for e in &doomed {
            let k = self
                .keys
                .iter_mut()
                .find(|k| k.id == e.key_id)
                .expect("epoch of this ring");
            k.secret = None; // Zeroizing clears the bytes on drop.
            k.shredded_at = Some(at.to_string());
        }
        Ok(doomed)
    }

    /// Loads a ring, refusing one that group or others can read.
    pub fn load(path: &Path) -> Result<KeyRing, KeyError> {
        let read_err = |source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read_err)?);
        Self::parse(&text).map_err(|what| KeyError::Invalid {
            path: path.to_path_buf(),
            what,
        })
    }

    fn parse(text: &str) -> Result<KeyRing, String> {
        // serde_json's messages may quote values, and values here are secrets: report
        // only the position.
        let file: KeyRingFile = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a logveil key ring (JSON error at line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if file.format != FORMAT {
            return Err(format!("expected format \"{FORMAT}\""));
        }
        if file.version != VERSION {
            return Err(format!(
                "version {} is not supported (this logveil reads version {VERSION}, which has key epochs)",
                file.version
            ));
        }
        if file.keys.is_empty() {
            return Err("it holds no keys".into());
        }
        let mut keys: Vec<Key> = Vec::with_capacity(file.keys.len());
        for (i, k) in file.keys.iter().enumerate() {
            let valid_from = match (&k.valid_from, i) {
                (None, 0) => None,
                (None, _) => return Err(format!("key {} has no valid_from", k.id)),
                (Some(t), _) => {
                    let t = parse_rfc3339(t.as_bytes()).ok_or_else(|| {
                        format!("key {}: valid_from is not an RFC 3339 time", k.id)
                    })?;
                    if let Some(prev) = keys.last()
                        && prev.valid_from.is_some_and(|p| p >= t)
                    {
                        return Err(format!(
                            "key {} starts before the key listed ahead of it; epochs must be in order",
                            k.id
                        ));
                    }
                    Some(t)
                }
            };
            let key = match (&k.key, &k.shredded_at) {
                (Some(hex), None) => {
                    let secret =
                        unhex32(hex).ok_or_else(|| format!("key {} is not 64 hex digits", k.id))?;
                    let key =
                        Key::from_secret(secret, k.algorithm, valid_from, k.created_at.clone());
                    if key.id != k.id {
                        return Err(format!("key id {} does not match its key material", k.id));
                    }
                    key
                }
                (None, Some(at)) => Key {
                    id: k.id.clone(),
                    secret: None,
                    algorithm: k.algorithm,
                    created_at: k.created_at.clone(),
                    valid_from,
                    shredded_at: Some(at.clone()),
                },
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "key {} is marked shredded but still holds key material",
                        k.id
                    ));
                }
                (None, None) => {
                    return Err(format!("key {} has no key material", k.id));
                }
            };
            keys.push(key);
        }
        let suppression = match &file.suppression_key {
            None => None,
            Some(k) => {
                let secret = k
                    .key
                    .as_deref()
                    .and_then(unhex32)
                    .ok_or_else(|| "the suppression key is not 64 hex digits".to_string())?;
                let mut key = Key::from_secret(secret, k.algorithm, None, k.created_at.clone());
                if k.id != format!("s-{}", &key.id[2..]) {
                    return Err(format!(
                        "suppression key id {} does not match its key material",
                        k.id
                    ));
                }
                key.id = k.id.clone();
                Some(key)
            }
        };
        Ok(KeyRing { keys, suppression })
    }

    /// Writes the ring with mode 0600, atomically (temporary file, fsync, rename, fsync of
    /// the directory).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = KeyRingFile {
            format: FORMAT.to_string(),
            version: VERSION,
            keys: self
                .keys
                .iter()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    algorithm: k.algorithm,
                    valid_from: k.valid_from.map(format_rfc3339),
                    created_at: k.created_at.clone(),
                    key: k.secret.as_ref().map(|s| hex(s.bytes())),
                    shredded_at: k.shredded_at.clone(),
                })
                .collect(),
            suppression_key: self.suppression.as_ref().map(|k| KeyFile {
                id: k.id.clone(),
                algorithm: k.algorithm,
                valid_from: None,
                created_at: k.created_at.clone(),
                key: k.secret.as_ref().map(|s| hex(s.bytes())),
                shredded_at: None,
            }),
        };
        let mut text =
            Zeroizing::new(serde_json::to_string_pretty(&file).expect("key ring serialises"));
        drop(file);
        text.push('\n');
        let write_err = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(write_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(write_err)?;
        }
        f.write_all(text.as_bytes()).map_err(write_err)?;
        f.sync_all().map_err(write_err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(write_err)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

fn unhex32(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char).to_digit(16)?;
        let lo = (b[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = MICROS_PER_HOUR;
    /// 2026-11-01T00:00:00Z and 2026-12-01T00:00:00Z.
    const NOV: i64 = 1_793_491_200_000_000;
    const DEC: i64 = NOV + 30 * 24 * H;

    fn new_key() -> Key {
        Key::generate(Algorithm::Blake3, None, "2026-11-28T00:00:00Z".into()).unwrap()
    }

    fn secret_hex(k: &Key) -> String {
        hex(k.secret().unwrap().bytes())
    }

    #[test]
    fn constants_are_the_dates_they_claim() {
        assert_eq!(format_rfc3339(NOV), "2026-11-01T00:00:00Z");
        assert_eq!(format_rfc3339(DEC), "2026-12-01T00:00:00Z");
    }

    #[test]
    fn save_load_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        let mut ring = KeyRing::new(new_key());
        ring.save(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let loaded = KeyRing::load(&p).unwrap();
        assert_eq!(loaded.latest().id(), ring.latest().id());
        assert_eq!(secret_hex(loaded.latest()), secret_hex(ring.latest()));

        let first = ring.latest().id().to_string();
        ring.rotate(new_key(), DEC, NOV).unwrap();
        ring.save(&p).unwrap();
        let loaded = KeyRing::load(&p).unwrap();
        assert_ne!(loaded.latest().id(), first);
        assert_eq!(loaded.latest().valid_from(), Some(DEC));
        assert!(loaded.get(&first).is_some());
    }

    #[test]
    fn epochs_pick_the_key_of_the_event_time() {
        let mut ring = KeyRing::new(new_key());
        let a = ring.latest().id().to_string();
        ring.rotate(new_key(), NOV, NOV - 5 * H).unwrap();
        let b = ring.latest().id().to_string();
        ring.rotate(new_key(), DEC, NOV).unwrap();
        let c = ring.latest().id().to_string();
        assert_eq!(ring.key_at(i64::MIN).id(), a);
        assert_eq!(ring.key_at(NOV - 1).id(), a);
        assert_eq!(ring.key_at(NOV).id(), b);
        assert_eq!(ring.key_at(DEC - 1).id(), b);
        assert_eq!(ring.key_at(DEC).id(), c);
        assert_eq!(ring.key_at(i64::MAX).id(), c);
        let e = ring.epochs();
        assert_eq!((e[0].from, e[0].to), (i64::MIN, NOV));
        assert_eq!((e[1].from, e[1].to), (NOV, DEC));
        assert_eq!((e[2].from, e[2].to), (DEC, i64::MAX));
    }

    #[test]
    fn rotation_rules() {
        let mut ring = KeyRing::new(new_key());
        let e = ring
            .rotate(new_key(), NOV + 1, NOV)
            .unwrap_err()
            .to_string();
        assert!(e.contains("whole hour"), "{e}");
        let e = ring
            .rotate(new_key(), NOV - H, NOV)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in the past"), "{e}");
        assert!(ring.rotate(new_key(), NOV, NOV + 10).is_err());
        ring.rotate(new_key(), NOV, NOV).unwrap();
        let e = ring.rotate(new_key(), NOV, NOV).unwrap_err().to_string();
        assert!(e.contains("after it"), "{e}");
        assert!(KeyRing::development().rotate(new_key(), DEC, NOV).is_err());
    }

    #[test]
    fn shredding_destroys_material_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        let mut ring = KeyRing::new(new_key());
        ring.rotate(new_key(), NOV, NOV - H).unwrap();
        ring.rotate(new_key(), DEC, NOV).unwrap();
        ring.save(&p).unwrap();
        let old = secret_hex(&ring.keys()[0]);
        let mid = secret_hex(&ring.keys()[1]);

        let e = ring.shred(DEC + H, DEC, "x").unwrap_err().to_string();
        assert!(e.contains("future"), "{e}");
        // Before December: only the first epoch ended by then... and November's ended at DEC.
        let gone = ring
            .shred(DEC - H, DEC + 2 * H, "2026-12-01T02:00:00Z")
            .unwrap();
        assert_eq!(gone.len(), 1);
        assert!(ring.keys()[0].is_shredded() && !ring.keys()[1].is_shredded());
        let gone = ring
            .shred(DEC, DEC + 2 * H, "2026-12-01T02:00:00Z")
            .unwrap();
        assert_eq!(gone.len(), 1);
        assert!(ring.keys()[1].is_shredded());
        assert!(!ring.keys()[2].is_shredded());
        ring.save(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&old) && !text.contains(&mid));
        let loaded = KeyRing::load(&p).unwrap();
        assert!(loaded.keys()[0].is_shredded() && loaded.keys()[1].is_shredded());
        assert_eq!(
            loaded.key_at(NOV).shredded_at(),
            Some("2026-12-01T02:00:00Z")
        );
        // Shredding again is a no-op.
        let mut again = loaded.clone();
        assert!(again.shred(DEC, DEC + 2 * H, "y").unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_readable_ring() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        KeyRing::new(new_key()).save(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyRing::load(&p).unwrap_err();
        assert!(
            matches!(e, KeyError::Permissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"));
    }

    #[test]
    fn errors_never_show_key_material() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        let ring = KeyRing::new(new_key());
        ring.save(&p).unwrap();
        let secret = secret_hex(ring.latest());
        // Corrupt the id so the key fails its check, and the JSON so parsing fails.
        let text = std::fs::read_to_string(&p).unwrap();
        for bad in [
            text.replace("\"k-", "\"k-0"),
            text.replace('}', ""),
            text.replace(&secret[..10], "zz"),
            text.replace("\"created_at\"", "\"shredded_at\": \"x\", \"created_at\""),
        ] {
            std::fs::write(&p, &bad).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let e = KeyRing::load(&p).unwrap_err().to_string();
            assert!(
                !e.contains(&secret[..16]) && !e.contains(&secret[20..36]),
                "{e}"
            );
        }
        assert!(!format!("{:?}", ring).contains(&secret[..16]));
    }

    #[test]
    fn old_versions_are_refused_with_a_reason() {
        let e =
            KeyRing::parse(r#"{"format":"logveil-keyring","version":1,"active":"k","keys":[]}"#)
                .unwrap_err();
        assert!(e.contains("version 1"), "{e}");
    }
}

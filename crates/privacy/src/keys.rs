//! Key rings: the secret from which every pseudonym is derived.
//!
//! A key ring is a small JSON file (`logveil keygen`) holding one or more 32-byte keys, each
//! with a public key id, and which one is active. The file must be private to its owner
//! (mode 0600): a ring that group or others can read is refused. Keys never appear in logs,
//! errors or `Debug` output; only key ids do. Old keys stay in the ring after a rotation so
//! that data-subject requests can still find rows written under them; deleting a key from the
//! ring ("shredding") makes every pseudonym made with it unlinkable for good.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
        "key ring {path} is not valid: {what}; regenerate it with `logveil keygen --out {path}`"
    )]
    Invalid { path: PathBuf, what: String },
    #[error("cannot write key ring {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key ring {path} already exists; pass --rotate to add a new active key to it")]
    Exists { path: PathBuf },
    #[error("no randomness available from the operating system: {0}")]
    Random(String),
}

/// One key: id and secret.
#[derive(Clone)]
pub struct Key {
    id: String,
    secret: [u8; 32],
    created_at: String,
}

impl Key {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// A new random key. Its id is derived from the secret by a one-way hash, so the id
    /// reveals nothing about the key but is stable for it.
    pub fn generate(created_at: String) -> Result<Key, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Key::from_secret(secret, created_at))
    }

    fn from_secret(secret: [u8; 32], created_at: String) -> Key {
        let h = blake3::derive_key("logveil key id v1", &secret);
        let id = format!("k-{}", hex(&h[..8]));
        Key {
            id,
            secret,
            created_at,
        }
    }

    /// The development key: public, fixed, and marked as such everywhere it is used.
    pub fn development() -> Key {
        Key {
            id: DEV_KEY_ID.to_string(),
            secret: blake3::derive_key(
                "logveil development key, not secret, never for production",
                b"",
            ),
            created_at: String::new(),
        }
    }

    pub fn is_development(&self) -> bool {
        self.id == DEV_KEY_ID
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A set of keys, one of them active (used for new data).
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<Key>,
    active: usize,
}

#[derive(Serialize, Deserialize)]
struct KeyRingFile {
    format: String,
    version: u32,
    active: String,
    keys: Vec<KeyFile>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    id: String,
    created_at: String,
    key: String,
}

const FORMAT: &str = "logveil-keyring";

impl KeyRing {
    /// A ring holding only the development key.
    pub fn development() -> KeyRing {
        KeyRing {
            keys: vec![Key::development()],
            active: 0,
        }
    }

    pub fn new(key: Key) -> KeyRing {
        KeyRing {
            keys: vec![key],
            active: 0,
        }
    }

    pub fn active(&self) -> &Key {
        &self.keys[self.active]
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn get(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Adds a key and makes it the active one.
    pub fn rotate(&mut self, key: Key) {
        self.keys.push(key);
        self.active = self.keys.len() - 1;
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
        let text = std::fs::read_to_string(path).map_err(read_err)?;
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
        if file.format != FORMAT || file.version != 1 {
            return Err(format!("expected format \"{FORMAT}\" version 1"));
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in &file.keys {
            let secret =
                unhex32(&k.key).ok_or_else(|| format!("key {} is not 64 hex digits", k.id))?;
            let key = Key::from_secret(secret, k.created_at.clone());
            if key.id != k.id {
                return Err(format!("key id {} does not match its key material", k.id));
            }
            keys.push(key);
        }
        let active = keys
            .iter()
            .position(|k| k.id == file.active)
            .ok_or_else(|| format!("active key {} is not in the ring", file.active))?;
        Ok(KeyRing { keys, active })
    }

    /// Writes the ring with mode 0600, atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let file = KeyRingFile {
            format: FORMAT.to_string(),
            version: 1,
            active: self.active().id.clone(),
            keys: self
                .keys
                .iter()
                .map(|k| KeyFile {
                    id: k.id.clone(),
                    created_at: k.created_at.clone(),
                    key: hex(&k.secret),
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file).expect("key ring serialises");
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

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
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

    #[test]
    fn save_load_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        let mut ring = KeyRing::new(Key::generate("2026-11-28T00:00:00Z".into()).unwrap());
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
        assert_eq!(loaded.active().id(), ring.active().id());
        assert_eq!(loaded.active().secret(), ring.active().secret());

        let first = ring.active().id().to_string();
        ring.rotate(Key::generate("2026-11-29T00:00:00Z".into()).unwrap());
        ring.save(&p).unwrap();
        let loaded = KeyRing::load(&p).unwrap();
        assert_ne!(loaded.active().id(), first);
        assert!(loaded.get(&first).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_readable_ring() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.json");
        KeyRing::new(Key::generate(String::new()).unwrap())
            .save(&p)
            .unwrap();
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
        let ring = KeyRing::new(Key::generate(String::new()).unwrap());
        ring.save(&p).unwrap();
        let secret = hex(ring.active().secret());
        // Corrupt the id so the key fails its check, and the JSON so parsing fails.
        let text = std::fs::read_to_string(&p).unwrap();
        for bad in [
            text.replace("\"k-", "\"k-0"),
            text.replace('}', ""),
            text.replace(&secret[..10], "zz"),
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
}

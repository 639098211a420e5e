//! `logveil keygen` and `logveil keys list|rotate|shred`:
//! key epochs, crypto-shredding with its audit trail, and the legal holds that block it.
//!
//! The key ring is the truth about which keys exist and which were shredded; the audit log
//! (`<ring>.audit.jsonl` beside the ring, hash-chained) records when and by whom. A crash
//! between saving the ring and appending to the log is repaired by the next mutating command,
//! which appends the missing entries marked `"recovered": true`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use logveil_model::time::{MICROS_PER_HOUR, format_rfc3339, parse_rfc3339};
use logveil_privacy::{Algorithm, Epoch, Key, KeyRing};
use logveil_retention::{AuditLog, HoldSet};
use logveil_sink::Storage;
use serde_json::{Map, Value, json};

use crate::usage;

#[derive(Args)]
pub struct KeygenArgs {
    /// Where to write the key ring (refused if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Keyed hash for pseudonyms: blake3 (default) or hmac-sha256.
    #[arg(long, default_value = "blake3", value_parser = parse_algorithm)]
    pub algorithm: Algorithm,
    /// Audit log (default: beside the ring, `<name>.audit.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Who runs this, for the audit log (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Removed: use `logveil keys rotate`.
    #[arg(long, hide = true)]
    pub rotate: bool,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the ring's key epochs (ids, periods, algorithm, shredded or live) and check the
    /// audit log's chain.
    List(KeysListArgs),
    /// Add a key for a new epoch starting at --from (default: the next whole hour). Events
    /// are pseudonymised with the key of their own time.
    Rotate(KeysRotateArgs),
    /// Destroy the key material of every epoch that ended by --before: their pseudonyms can
    /// then never be linked again, by anyone. Refused while a legal hold covers such an epoch.
    Shred(KeysShredArgs),
}

#[derive(Args)]
pub struct RingArgs {
    /// The key ring.
    #[arg(long, value_name = "FILE")]
    pub keys: PathBuf,
    /// Audit log (default: beside the ring, `<name>.audit.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

#[derive(Args)]
pub struct KeysListArgs {
    #[command(flatten)]
    pub ring: RingArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct KeysRotateArgs {
    #[command(flatten)]
    pub ring: RingArgs,
    /// Start of the new epoch: a whole hour, RFC 3339 or YYYY-MM-DD (UTC), not in the past.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Keyed hash of the new key (default: the newest key's).
    #[arg(long, value_parser = parse_algorithm)]
    pub algorithm: Option<Algorithm>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "scheduled rotation")]
    pub reason: String,
    #[arg(long)]
    pub operator: Option<String>,
    /// Evaluate "now" at this time (RFC 3339; for tests and audits).
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

#[derive(Args)]
pub struct KeysShredArgs {
    #[command(flatten)]
    pub ring: RingArgs,
    /// Shred every key whose epoch ended at or before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub before: String,
    /// Output root(s) written with this ring: their legal holds are honoured. Repeatable;
    /// at least one.
    #[arg(long = "root", value_name = "DIR", required = true)]
    pub roots: Vec<PathBuf>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "retention period over")]
    pub reason: String,
    #[arg(long)]
    pub operator: Option<String>,
    /// Say what would be shredded, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::parse(s).ok_or_else(|| format!("{s:?}: expected blake3 or hmac-sha256"))
}

/// RFC 3339, or a date `YYYY-MM-DD` meaning its midnight UTC.
pub fn parse_when(flag: &str, s: &str) -> Result<i64> {
    let t = if s.len() == 10 {
        parse_rfc3339(format!("{s}T00:00:00Z").as_bytes())
    } else {
        parse_rfc3339(s.as_bytes())
    };
    t.ok_or_else(|| {
        usage(format!(
            "{flag} {s:?}: expected an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)"
        ))
    })
}

pub(crate) fn now_or(flag: &Option<String>) -> Result<i64> {
    match flag {
        Some(s) => parse_when("--now", s),
        None => Ok(crate::now_micros()),
    }
}

/// Who runs a command, for audit logs: `--operator`, else `$USER`.
pub(crate) fn operator(o: &Option<String>) -> String {
    o.clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn audit_log(ring: &Path, audit: &Option<PathBuf>) -> AuditLog {
    AuditLog::new(audit.clone().unwrap_or_else(|| {
        let stem = ring
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "keys".into());
        ring.with_file_name(format!("{stem}.audit.jsonl"))
    }))
}

/// RFC 3339 time truncated to the second.
pub(crate) fn second(t: i64) -> String {
    format_rfc3339(t - t.rem_euclid(1_000_000))
}

fn epoch_details(e: &Epoch) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("key_id".into(), json!(e.key_id));
    m.insert("algorithm".into(), json!(e.algorithm.as_str()));
    m.insert("epoch_from".into(), json!(e.from_text()));
    m.insert("epoch_to".into(), json!(e.to_text()));
    m
}

/// Appends audit entries the ring implies but the log lacks (a crash after saving the ring).
fn reconcile(ring: &KeyRing, log: &AuditLog, now: i64, op: &str) -> Result<()> {
    let entries = log
        .verify()
        .with_context(|| format!("audit log {}", log.path().display()))?;
    let has = |action: &str, id: &str| {
        entries
            .iter()
            .any(|e| e.action == action && e.details.get("key_id") == Some(&json!(id)))
    };
    for e in ring.epochs() {
        for (action, needed) in [("key_created", true), ("key_shredded", e.is_shredded())] {
            if needed && !has(action, &e.key_id) {
                let mut d = epoch_details(&e);
                d.insert("recovered".into(), json!(true));
                log.append(&second(now), action, op, d)?;
            }
        }
    }
    Ok(())
}

pub fn cmd_keygen(a: KeygenArgs) -> Result<()> {
    if a.rotate {
        return Err(usage(
            "`keygen --rotate` is gone: key epochs are rotated with `logveil keys rotate --keys FILE [--from TIME]`",
        ));
    }
    if a.out.exists() {
        return Err(logveil_privacy::KeyError::Exists { path: a.out }.into());
    }
    let now = crate::now_micros();
    let key = Key::generate(a.algorithm, None, second(now))?;
    let ring = KeyRing::new(key);
    ring.save(&a.out)?;
    let log = audit_log(&a.out, &a.audit);
    let mut d = epoch_details(&ring.epochs()[0]);
    d.insert("reason".into(), json!("new key ring"));
    log.append(&second(now), "key_created", &operator(&a.operator), d)?;
    say!(
        info,
        "wrote key ring {} (key {}, {}, mode 0600); audit log {}",
        a.out.display(),
        ring.latest().id(),
        a.algorithm.as_str(),
        log.path().display()
    );
    Ok(())
}

pub fn cmd_keys(c: KeysCommand) -> Result<()> {
    match c {
        KeysCommand::List(a) => keys_list(a),
        KeysCommand::Rotate(a) => keys_rotate(a),
        KeysCommand::Shred(a) => keys_shred(a),
    }
}

fn keys_list(a: KeysListArgs) -> Result<()> {
    let ring = KeyRing::load(&a.ring.keys)?;
    let log = audit_log(&a.ring.keys, &a.ring.audit);
    let audit = match log.verify() {
        Ok(e) => format!("{} entries, chain intact", e.len()),
        Err(e) => format!("BROKEN: {e}"),
    };
    let epochs = ring.epochs();
    if a.json {
        println!(
            "{}",
            json!({
                "keys": epochs.iter().map(|e| json!({
                    "key_id": e.key_id,
                    "algorithm": e.algorithm.as_str(),
                    "from": e.from_text(),
                    "to": e.to_text(),
                    "created_at": e.created_at,
                    "state": if e.is_shredded() { "shredded" } else { "live" },
                    "shredded_at": e.shredded_at,
                })).collect::<Vec<_>>(),
                "audit_log": log.path().display().to_string(),
                "audit": audit,
            })
        );
    } else {
        println!(
            "{:<20} {:<12} {:<21} {:<21} STATE",
            "KEY ID", "ALGORITHM", "FROM", "TO"
        );
        for e in &epochs {
            let state = match &e.shredded_at {
                Some(at) => format!("shredded {at}"),
                None => "live".into(),
            };
            println!(
                "{:<20} {:<12} {:<21} {:<21} {state}",
                e.key_id,
                e.algorithm.as_str(),
                e.from_text(),
                e.to_text()
            );
        }
        println!("audit log {}: {audit}", log.path().display());
    }
    Ok(())
}

fn keys_rotate(a: KeysRotateArgs) -> Result<()> {
    let now = now_or(&a.now)?;
    let op = operator(&a.operator);
    let mut ring = KeyRing::load(&a.ring.keys)?;
    let log = audit_log(&a.ring.keys, &a.ring.audit);
    reconcile(&ring, &log, now, &op)?;
    let from = match &a.from {
        Some(s) => parse_when("--from", s)?,
        None => now - now.rem_euclid(MICROS_PER_HOUR) + MICROS_PER_HOUR,
    };
    let algorithm = a.algorithm.unwrap_or(ring.latest().algorithm());
    ring.rotate(Key::generate(algorithm, None, second(now))?, from, now)?;
    ring.save(&a.ring.keys)?;
    let e = ring.epochs().pop().expect("just added");
    let mut d = epoch_details(&e);
    d.insert("reason".into(), json!(a.reason));
    log.append(&second(now), "key_created", &op, d)?;
    say!(
        info,
        "key {} ({}) pseudonymises events from {}; earlier epochs keep their keys",
        e.key_id,
        algorithm.as_str(),
        e.from_text()
    );
    Ok(())
}

fn keys_shred(a: KeysShredArgs) -> Result<()> {
    let now = now_or(&a.now)?;
    let before = parse_when("--before", &a.before)?;
    let op = operator(&a.operator);
    let mut ring = KeyRing::load(&a.ring.keys)?;
    let log = audit_log(&a.ring.keys, &a.ring.audit);
    if !a.dry_run {
        reconcile(&ring, &log, now, &op)?;
    }
    let doomed = ring.shreddable(before);
    if doomed.is_empty() {
        say!(
            info,
            "no live key has an epoch that ended by {}; nothing to shred",
            format_rfc3339(before)
        );
        return Ok(());
    }
    // A legal hold anywhere this ring was used blocks shredding the epochs it covers.
    let mut blocked = Vec::new();
    for root in &a.roots {
        let storage = root_storage(root)?;
        let holds = HoldSet::load(&storage)?;
        for e in &doomed {
            for h in holds.blocking(None, e.from, e.to, now) {
                blocked.push(format!(
                    "key {} (epoch {} to {}) is needed by hold {} on dataset {} ({} to {}, reason: {}, owner {}) in {}",
                    e.key_id,
                    e.from_text(),
                    e.to_text(),
                    h.id,
                    h.dataset,
                    h.from,
                    h.to,
                    h.reason,
                    h.owner,
                    root.display()
                ));
            }
        }
    }
    if !blocked.is_empty() {
        return Err(usage(format!(
            "refusing to shred while legal holds need the keys:\n  {}\nrelease the holds (`logveil retention release`) or shred an earlier --before",
            blocked.join("\n  ")
        )));
    }
    if a.dry_run {
        for e in &doomed {
            println!(
                "would shred {} (epoch {} to {})",
                e.key_id,
                e.from_text(),
                e.to_text()
            );
        }
        return Ok(());
    }
    let at = second(now);
    let shredded = ring.shred(before, now, &at)?;
    ring.save(&a.ring.keys)?;
    for e in &shredded {
        let mut d = epoch_details(e);
        d.insert("before".into(), json!(format_rfc3339(before)));
        d.insert("reason".into(), json!(a.reason));
        log.append(&at, "key_shredded", &op, d)?;
        say!(
            info,
            "shredded key {} (epoch {} to {}): its pseudonyms can no longer be linked",
            e.key_id,
            e.from_text(),
            e.to_text()
        );
    }
    Ok(())
}

/// The storage of an output root: a local directory, or object storage (`s3://bucket/prefix`,
/// `gs://…`, `az://…`) configured from the environment (`AWS_*`…).
pub(crate) fn root_storage(root: &Path) -> Result<Storage> {
    open_root(root, &std::collections::BTreeMap::new())
}

/// [`root_storage`] with storage options (a pipeline's `[output.storage]`).
pub(crate) fn open_root(
    root: &Path,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<Storage> {
    let Some(location) = root.to_str() else {
        anyhow::bail!("output root {}: not valid UTF-8", root.display());
    };
    Storage::open(location, options).with_context(|| format!("output root {}", root.display()))
}

//! `logveil subject object|restrict|lift|suppressions`: the suppression list of a root
//! (privacy policy §7.4 objection, §7.7 restriction). Ingest into the root drops the events of
//! listed subjects and counts them under `objection/7.4` or `restriction/7.7`.
//!
//! Identifiers given on the command line are hashed with the ring's suppression key at once and
//! never written anywhere; additions and removals are recorded in the root's audit log.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use logveil_privacy::KeyRing;
use logveil_privacy::suppress::{Ground, SUPPRESSION_PATH, SuppressionList, Suppressor};
use logveil_retention::AuditLog;
use logveil_sink::Storage;
use object_store::path::Path as StorePath;
use serde_json::{Map, json};

use crate::keys_cmd::{operator, root_storage, second};
use crate::usage;

#[derive(Subcommand)]
pub enum SubjectCommand {
    /// The subject objects to processing (§7.4): drop their future events at ingest.
    Object(SuppressArgs),
    /// Restrict processing of the subject's data (§7.7): drop their future events at ingest.
    Restrict(SuppressArgs),
    /// Lift an objection or restriction: remove the request's entry from the list.
    Lift(LiftArgs),
    /// List the suppression entries (request ids, grounds, how many identifiers; no values).
    Suppressions(ListArgs),
    /// Find the subject's rows (§7.1 access): datasets, partitions and row counts, searched
    /// with the pseudonyms of every live key epoch.
    #[cfg(feature = "query")]
    Find(Box<crate::subject_find::FindArgs>),
    /// Export the subject's rows (§7.1 access, §7.5 portability) with a cover sheet into a
    /// new directory: JSON Lines, CSV or Parquet.
    #[cfg(feature = "query")]
    Export(Box<crate::subject_export::ExportArgs>),
    /// Erase the subject's rows (§7.3): files rewritten without them, receipts, verified by a
    /// new find. Under a legal hold the erasure is queued and the subject restricted.
    #[cfg(feature = "query")]
    Erase(Box<crate::subject_erase::EraseArgs>),
    /// List data-subject requests with their 30-day deadlines (§7.10), from the audit log.
    Requests(crate::requests::RequestsArgs),
}

#[derive(Args)]
pub struct SuppressArgs {
    /// Output root whose ingest honours the list.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// The key ring (its suppression key is created on first use).
    #[arg(long, value_name = "FILE")]
    pub keys: PathBuf,
    /// The data-subject request this answers.
    #[arg(long)]
    pub request_id: String,
    #[command(flatten)]
    pub ids: Identifiers,
    #[arg(long)]
    pub operator: Option<String>,
}

/// The identifiers a data subject proved are theirs (`object`, `restrict`, `find`).
#[derive(Args)]
pub struct Identifiers {
    /// An IP address the subject proved is theirs. Repeatable.
    #[arg(long = "ip", value_name = "ADDRESS")]
    pub ips: Vec<String>,
    /// A device id of the subject. Repeatable.
    #[arg(long = "device-id", value_name = "ID")]
    pub device_ids: Vec<String>,
    /// An account id of the subject. Repeatable.
    #[arg(long = "account-id", value_name = "ID")]
    pub account_ids: Vec<String>,
}

#[derive(Args)]
pub struct LiftArgs {
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long)]
    pub request_id: String,
    #[arg(long)]
    pub operator: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// The root's suppression list (empty if there is none).
pub fn load_list(st: &Storage) -> Result<SuppressionList> {
    match st.get(&StorePath::from(SUPPRESSION_PATH))? {
        None => Ok(SuppressionList::default()),
        Some(b) => SuppressionList::from_json(&b)
            .map_err(|e| usage(format!("{}/{SUPPRESSION_PATH}: {e}", st.label()))),
    }
}

/// What ingest into `st` must suppress, checked against the ring.
pub fn suppressor(st: &Storage, ring: &KeyRing) -> Result<Option<Suppressor>> {
    let list = load_list(st)?;
    Suppressor::new(&list, ring.suppression_key())
        .map_err(|e| usage(format!("{}/{SUPPRESSION_PATH}: {e}", st.label())))
}

fn now_text() -> String {
    second(crate::now_micros())
}

pub fn cmd_subject(c: SubjectCommand) -> Result<()> {
    match c {
        #[cfg(feature = "query")]
        SubjectCommand::Find(a) => crate::subject_find::cmd_find(*a),
        #[cfg(feature = "query")]
        SubjectCommand::Export(a) => crate::subject_export::cmd_export(*a),
        #[cfg(feature = "query")]
        SubjectCommand::Erase(a) => crate::subject_erase::cmd_erase(*a),
        SubjectCommand::Requests(a) => crate::requests::cmd_requests(a),
        SubjectCommand::Object(a) => add(a, Ground::Objection),
        SubjectCommand::Restrict(a) => add(a, Ground::Restriction),
        SubjectCommand::Lift(a) => {
            let st = root_storage(&a.root)?;
            let mut list = load_list(&st)?;
            let e = list.lift(&a.request_id).map_err(|e| usage(e.to_string()))?;
            st.put(&StorePath::from(SUPPRESSION_PATH), list.to_json().into())?;
            let mut d = Map::new();
            d.insert("request_id".into(), json!(e.request_id));
            d.insert("ground".into(), json!(e.ground));
            AuditLog::of_storage(&st).append(
                &now_text(),
                "suppression_lifted",
                &operator(&a.operator),
                d,
            )?;
            say!(
                info,
                "request {} lifted; the subject's events are ingested again",
                e.request_id
            );
            Ok(())
        }
        SubjectCommand::Suppressions(a) => {
            let list = load_list(&root_storage(&a.root)?)?;
            if a.json {
                let v: Vec<_> = list
                    .entries
                    .iter()
                    .map(|e| {
                        json!({
                            "request_id": e.request_id,
                            "ground": e.ground,
                            "added_at": e.added_at,
                            "ips": e.ips.len(),
                            "device_ids": e.device_ids.len(),
                            "account_ids": e.account_ids.len(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string(&v)?);
                return Ok(());
            }
            println!(
                "{:<24} {:<12} {:<21} IDENTIFIERS",
                "REQUEST", "GROUND", "ADDED"
            );
            for e in &list.entries {
                println!(
                    "{:<24} {:<12} {:<21} {} ip, {} device, {} account",
                    e.request_id,
                    match e.ground {
                        Ground::Objection => "objection",
                        Ground::Restriction => "restriction",
                    },
                    e.added_at,
                    e.ips.len(),
                    e.device_ids.len(),
                    e.account_ids.len()
                );
            }
            Ok(())
        }
    }
}

fn add(a: SuppressArgs, ground: Ground) -> Result<()> {
    logveil_retention::check_request_id(&a.request_id).map_err(usage)?;
    let n = suppress(&a.root, &a.keys, &a.request_id, ground, &a.ids, &a.operator)?;
    say!(
        info,
        "request {}: {n} identifier(s) on the suppression list of {}; ingest drops their events from now on",
        a.request_id,
        a.root.display()
    );
    Ok(())
}

/// Puts the subject on the root's suppression list under `request_id` (the ring's
/// suppression key is created on first use) and records it in the audit log. Returns how
/// many identifiers were listed.
pub fn suppress(
    root: &std::path::Path,
    keys: &std::path::Path,
    request_id: &str,
    ground: Ground,
    ids: &Identifiers,
    op: &Option<String>,
) -> Result<usize> {
    let mut ring = KeyRing::load(keys)?;
    if ring.is_development() {
        return Err(usage(
            "the development key is public: a suppression list hashed with it would reveal who objected; use a real key ring",
        ));
    }
    let had_key = ring.suppression_key().is_some();
    let key = ring.ensure_suppression_key(now_text())?.clone();
    if !had_key {
        ring.save(keys)?;
    }
    let st = root_storage(root)?;
    let mut list = load_list(&st)?;
    let at = now_text();
    let e = list
        .add(
            &key,
            request_id,
            ground,
            &at,
            &ids.ips,
            &ids.device_ids,
            &ids.account_ids,
        )
        .map_err(|e| usage(e.to_string()))?
        .clone();
    st.put(&StorePath::from(SUPPRESSION_PATH), list.to_json().into())?;
    let mut d = Map::new();
    d.insert("request_id".into(), json!(e.request_id));
    d.insert("ground".into(), json!(e.ground));
    d.insert("suppression_key".into(), json!(e.key_id));
    d.insert(
        "identifiers".into(),
        json!({"ip": e.ips.len(), "device_id": e.device_ids.len(), "account_id": e.account_ids.len()}),
    );
    AuditLog::of_storage(&st).append(&at, "suppression_added", &operator(op), d)?;
    Ok(e.ips.len() + e.device_ids.len() + e.account_ids.len())
}

//! `logveil subject erase`: removes a data subject's rows from every dataset (privacy policy
//! §7.3), with receipts in the root's hash-chained deletion receipts, then checks that a new
//! find sees nothing (`logveil_query::erase` has the crash-safe order of steps).
//!
//! Partitions under a legal hold are kept: the erasure is queued for them and the subject is
//! put on the suppression list as a restriction (§7.7), so ingest drops their new events
//! meanwhile; `--queued` carries out queued erasures whose holds have ended.

use anyhow::Result;
use clap::Args;
use logveil_privacy::suppress::Ground;
use logveil_query::QueryError;
use logveil_query::erase::{EraseOptions, EraseReport, EraseStep, apply_queued, erase, resume};
use logveil_query::subject::Needles;
use serde_json::json;

use crate::keys_cmd::operator;
use crate::subject_find::{SearchArgs, prepare, query_options};
use crate::usage;

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// Carry out the erasures queued behind legal holds that have ended since (no
    /// identifiers needed: the queue holds their pseudonyms).
    #[arg(long, conflicts_with_all = ["ips", "device_ids", "account_ids", "resume"])]
    pub queued: bool,
    /// Finish the erasure an interrupted run left, as it was started (the pseudonyms and
    /// period its journal records; no identifiers needed, whatever keys were rotated since).
    #[arg(long, conflicts_with_all = ["ips", "device_ids", "account_ids"])]
    pub resume: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_erase(a: EraseArgs) -> Result<()> {
    let op = operator(&a.search.request.operator);
    let hook = crate::retention_cmd::crash_hook(EraseStep::as_str);
    if a.queued || a.resume {
        let opts = query_options(&a.search.root, &a.search.now, a.search.threads)?;
        let reports = if a.queued {
            apply_queued(&opts, &op, crate::now_micros())
        } else {
            resume(&opts, &op, crate::now_micros()).map(|r| r.into_iter().collect())
        }
        .map_err(usage_or_failure)?;
        if reports.is_empty() {
            say!(
                info,
                "{}",
                if a.queued {
                    "no queued erasure is free of legal holds"
                } else {
                    "no interrupted erasure to finish"
                }
            );
        }
        for r in &reports {
            let args = crate::requests::RequestArgs {
                request_id: Some(r.request_id.clone()),
                received: None,
                operator: a.search.request.operator.clone(),
            };
            args.record(&a.search.root, step(r), facts(r))?;
            print_report(r, a.json)?;
        }
        return reports.iter().try_for_each(verified);
    }
    let Some(request_id) = a.search.request.request_id.clone() else {
        return Err(usage(
            "an erasure needs --request-id (it names the erasure's journal and receipts)",
        ));
    };
    let p = prepare(&a.search)?;
    let needles = Needles::new(&p.ring, &p.subject);
    let eo = EraseOptions {
        request_id,
        operator: op,
        wall_clock: crate::now_micros(),
        hook: hook.as_deref(),
    };
    let r = erase(&p.opts, needles, p.days, &eo).map_err(usage_or_failure)?;
    if !r.held.is_empty() {
        match &a.search.keys {
            Some(keys) if !p.ring.is_development() => {
                match crate::subject_cmd::suppress(
                    &a.search.root,
                    keys,
                    &r.request_id,
                    Ground::Restriction,
                    &a.search.ids,
                    &a.search.request.operator,
                ) {
                    Ok(_) => say!(
                        info,
                        "request {}: on the suppression list as a restriction while the hold lasts",
                        r.request_id
                    ),
                    Err(e) => say!(
                        warn,
                        "request {}: not put on the suppression list: {e:#}",
                        r.request_id
                    ),
                }
            }
            _ => say!(
                warn,
                "request {}: held rows are kept; with the development key the subject cannot be put on the suppression list",
                r.request_id
            ),
        }
    }
    a.search
        .request
        .record(&a.search.root, step(&r), facts(&r))?;
    print_report(&r, a.json)?;
    verified(&r)
}

/// A refusal that the operator can fix by running the command differently exits 2.
fn usage_or_failure(e: QueryError) -> anyhow::Error {
    match e {
        QueryError::Usage(m) => usage(m),
        e => anyhow::Error::new(e),
    }
}

fn step(r: &EraseReport) -> &'static str {
    if r.rows_left > 0 || !r.skipped.is_empty() {
        "erasure_incomplete"
    } else if r.held.is_empty() {
        "erased"
    } else {
        "erasure_queued"
    }
}

fn facts(r: &EraseReport) -> serde_json::Value {
    json!({
        "rows_removed": r.rows_removed(),
        "partitions": r.partitions(),
        "held_partitions": r.held.len(),
        "partitions_not_erased": r.skipped.len(),
        "rows_left": r.rows_left,
        "receipts": r.receipts,
    })
}

fn verified(r: &EraseReport) -> Result<()> {
    if !r.skipped.is_empty() {
        anyhow::bail!(
            "request {}: {} partition(s) could not be erased (listed above); the others were, with receipts",
            r.request_id,
            r.skipped.len()
        );
    }
    if r.rows_left > 0 {
        anyhow::bail!(
            "request {}: a new find still sees {} row(s) of the subject outside held partitions (new data arrived during the erasure?): run the erasure again",
            r.request_id,
            r.rows_left
        );
    }
    Ok(())
}

fn print_report(r: &EraseReport, as_json: bool) -> Result<()> {
    if as_json {
        let v = json!({
            "request_id": r.request_id,
            "resumed": r.resumed,
            "rows_removed": r.rows_removed(),
            "partitions": r.partitions(),
            "files": r.changes,
            "held": r.held,
            "not_erased": r.skipped,
            "rows_left": r.rows_left,
            "verified": r.rows_left == 0 && r.skipped.is_empty(),
            "receipts": r.receipts,
            "key_epochs_searched": r.before.needles.live_epochs,
            "key_epochs_shredded": r.before.needles.shredded_epochs,
            "not_searched": r.before.not_searched.iter().map(|(d, why)| json!({"dataset": d, "why": why})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "request {}{}: {} row(s) removed from {} file(s) in {} partition(s)",
        r.request_id,
        if r.resumed { " (resumed)" } else { "" },
        r.rows_removed(),
        r.changes.len(),
        r.partitions()
    );
    for h in &r.held {
        println!(
            "held: {} {} ({} row(s)) by {}: erasure queued until the hold ends",
            h.dataset,
            h.partition,
            h.rows,
            h.holds.join(", ")
        );
    }
    for s in &r.skipped {
        println!("NOT ERASED: {} {}: {}", s.dataset, s.partition, s.why);
    }
    println!(
        "verified: {} (a new find sees {} row(s) outside held partitions); receipts {}",
        if r.rows_left == 0 && r.skipped.is_empty() {
            "yes"
        } else {
            "NO"
        },
        r.rows_left,
        r.receipts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !r.before.needles.shredded_epochs.is_empty() {
        println!(
            "key epochs shredded (already anonymised): {}",
            r.before.needles.shredded_epochs.join(", ")
        );
    }
    Ok(())
}

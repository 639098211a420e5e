//! `logveil subject find`: where a data subject's rows are (privacy policy §7.1 access, the
//! first step of export and erasure). The identifiers given are turned into pseudonyms under
//! every live key epoch (`logveil_query::subject`) and never written anywhere; the report
//! names datasets, partitions, row counts and key ids only.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use logveil_privacy::KeyRing;
use logveil_privacy::pseudonym::parse_ip;
use logveil_query::QueryOptions;
use logveil_query::subject::{DayRange, FindReport, Subject, find};
use serde_json::json;

use crate::keys_cmd::{now_or, parse_when, second};
use crate::usage;

/// What every request command that searches the data takes (`find`, `export`, `erase`).
#[derive(Args)]
pub struct SearchArgs {
    /// Output root to search.
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// The key ring the data was written with (every epoch whose key is not shredded is
    /// searched).
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Search data written with the public development key (demo and tests).
    #[arg(long)]
    pub dev_key: bool,
    #[command(flatten)]
    pub ids: crate::subject_cmd::Identifiers,
    /// Only partitions on or after this day (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Only partitions on or before this day.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    #[command(flatten)]
    pub request: crate::requests::RequestArgs,
    /// Judge expiry at this time (RFC 3339) instead of the clock: partitions expired by then
    /// are not searched (they count as deleted). Only the flag sets it, not LOGVEIL_NOW.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A search, ready to run: where, with which pseudonyms, over which days.
pub struct Prepared {
    pub opts: QueryOptions,
    pub ring: KeyRing,
    pub subject: Subject,
    pub days: DayRange,
}

/// The options of a query over `root`, judged at `--now` (warned when not the clock).
pub fn query_options(
    root: &std::path::Path,
    now: &Option<String>,
    threads: Option<usize>,
) -> Result<QueryOptions> {
    if !logveil_sink::storage::is_remote_location(&root.to_string_lossy()) && !root.is_dir() {
        return Err(usage(format!("--root {}: not a directory", root.display())));
    }
    let now = now_or(now)?;
    if (now - crate::now_micros()).abs() > 60_000_000 {
        say!(
            warn,
            "judging expiry at {}, not at the clock: partitions expired by then are not searched, others that have expired since are",
            second(now)
        );
    }
    Ok(QueryOptions {
        root: root.to_path_buf(),
        now_micros: now,
        threads: threads.unwrap_or_else(crate::rollup_cmd::all_cores),
    })
}

/// Checks the arguments and loads the key ring.
pub fn prepare(a: &SearchArgs) -> Result<Prepared> {
    let mut subject = Subject::default();
    for (i, ip) in a.ids.ips.iter().enumerate() {
        // The value is not echoed: it is the identifier being looked for.
        let ip = parse_ip(ip.trim().as_bytes()).ok_or_else(|| {
            usage(format!(
                "--ip number {} is not an IPv4 or IPv6 address",
                i + 1
            ))
        })?;
        subject.ips.push(ip);
    }
    // Ids are hashed exactly as written (as ingest does); a UUID is also looked for in other
    // cases and without braces (`logveil_query::subject`).
    let given = |v: &Vec<String>| v.iter().filter(|s| !s.is_empty()).cloned().collect();
    subject.device_ids = given(&a.ids.device_ids);
    subject.account_ids = given(&a.ids.account_ids);
    if subject.is_empty() {
        return Err(usage(
            "name at least one identifier (--ip, --device-id, --account-id)",
        ));
    }
    a.request.check()?;
    let opts = query_options(&a.root, &a.now, a.threads)?;
    let ring = crate::load_ring(a.keys.as_deref(), a.dev_key)?;
    let day = |flag: &str, s: &Option<String>| -> Result<Option<i32>> {
        s.as_deref()
            .map(|s| parse_when(flag, s).map(|us| us.div_euclid(86_400_000_000) as i32))
            .transpose()
    };
    let days = DayRange {
        from: day("--from", &a.from)?,
        to: day("--to", &a.to)?,
    };
    Ok(Prepared {
        opts,
        ring,
        subject,
        days,
    })
}

pub fn cmd_find(a: FindArgs) -> Result<()> {
    let p = prepare(&a.search)?;
    let report = find(&p.opts, &p.ring, &p.subject, p.days)?;
    let request_id = &a.search.request.request_id;
    a.search.request.record(
        &a.search.root,
        "found",
        json!({"rows": report.datasets.iter().map(|f| f.rows()).sum::<u64>()}),
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&report, request_id))?
        );
    } else {
        print_text(&report, request_id);
    }
    Ok(())
}

pub fn to_json(r: &FindReport, request_id: &Option<String>) -> serde_json::Value {
    let datasets: Vec<_> = r
        .datasets
        .iter()
        .map(|f| {
            json!({
                "dataset": f.dataset,
                "kind": f.kind,
                "rows": f.rows(),
                "expired_partitions_not_searched": f.expired_partitions,
                "partitions": f.partitions.iter().map(|(k, n)| json!({
                    "dt": k.date(), "hour": k.hour(), "rows": n,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "request_id": request_id,
        "rows": r.datasets.iter().map(|f| f.rows()).sum::<u64>(),
        "datasets": datasets,
        "not_searched": r.not_searched.iter().map(|(d, why)| json!({"dataset": d, "why": why})).collect::<Vec<_>>(),
        "key_epochs_searched": r.needles.live_epochs,
        "key_epochs_shredded": r.needles.shredded_epochs,
    })
}

fn print_text(r: &FindReport, request_id: &Option<String>) {
    if let Some(id) = request_id {
        println!("request {id}");
    }
    println!(
        "{:<20} {:>10} {:>11}  PERIOD",
        "DATASET", "ROWS", "PARTITIONS"
    );
    for f in &r.datasets {
        let period = match (f.partitions.first(), f.partitions.last()) {
            (Some((a, _)), Some((b, _))) => format!(
                "{} {:02}:00 to {} {:02}:59 UTC",
                a.date(),
                a.hour(),
                b.date(),
                b.hour()
            ),
            _ => "-".into(),
        };
        println!(
            "{:<20} {:>10} {:>11} {:>8}  {}",
            f.dataset,
            f.rows(),
            f.partitions.len(),
            f.expired_partitions,
            period
        );
    }
    for (d, why) in &r.not_searched {
        println!("{d:<20} not searched: {why}");
    }
    if r.datasets.iter().any(|f| f.expired_partitions > 0) {
        println!(
            "EXPIRED: partitions past their expiry (or being swept), not searched; the sweep deletes them"
        );
    }
    println!(
        "key epochs searched: {}",
        if r.needles.live_epochs.is_empty() {
            "none".to_string()
        } else {
            r.needles.live_epochs.join(", ")
        }
    );
    if !r.needles.shredded_epochs.is_empty() {
        println!(
            "key epochs shredded (their rows are anonymised, no one can be found in them): {}",
            r.needles.shredded_epochs.join(", ")
        );
    }
}

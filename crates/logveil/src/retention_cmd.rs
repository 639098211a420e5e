//! `logveil retention …`: the expiry sweep, its status and the verification of its receipts
//! (`sweep`, `status`, `verify`), and legal holds (`hold`, `release`, `holds`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use logveil_retention::status::HoldStatus;
use logveil_retention::{AuditLog, HoldSet, Step, SweepOptions, Sweeper};
use serde_json::Map;

use crate::keys_cmd::{now_or, operator, parse_when, root_storage, second};
use crate::{NeedsAttention, usage};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Place a legal hold: data of the dataset in [--from, --to) is neither swept nor made
    /// unlinkable (no key covering it is shredded) until the hold is released or lapses.
    Hold(HoldArgs),
    /// Release a hold (it stays on record as released).
    Release(ReleaseArgs),
    /// List holds, in force and released.
    Holds(HoldsArgs),
    /// Delete every partition whose expiry has passed (except held ones), with a deletion
    /// receipt for each; completes any sweep that was interrupted.
    Sweep(SweepArgs),
    /// Per dataset: partitions, rows, bytes, oldest and newest, next expiry, overdue, held.
    Status(StatusArgs),
    /// Check the receipt chain and that every receipted partition's files are gone.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct SweepArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Judge expiry at this time (RFC 3339) instead of the clock.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Report what would be deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Accept a --now later than the system clock for a real sweep (it deletes partitions
    /// before their time: for tests and rehearsals on copies).
    #[arg(long)]
    pub allow_future_now: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Recorded in receipts as who ran the sweep (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Judge expiry at this time (RFC 3339) instead of the clock.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct HoldArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// Dataset name, or `*` for all.
    #[arg(long)]
    pub dataset: String,
    /// Start of the held event time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the held event time, exclusive.
    #[arg(long, value_name = "TIME")]
    pub to: String,
    #[arg(long)]
    pub reason: String,
    /// The hold lapses by itself at this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Who owns the hold (default: $USER).
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

#[derive(Args)]
pub struct ReleaseArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub owner: Option<String>,
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
}

#[derive(Args)]
pub struct HoldsArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_retention(c: RetentionCommand) -> Result<()> {
    match c {
        RetentionCommand::Hold(a) => {
            let now = now_or(&a.now)?;
            let from = parse_when("--from", &a.from)?;
            let to = parse_when("--to", &a.to)?;
            let until = a
                .until
                .as_deref()
                .map(|u| parse_when("--until", u))
                .transpose()?;
            if a.dataset != "*"
                && a.dataset != "_quarantine"
                && !crate::config::valid_dataset_name(&a.dataset)
            {
                return Err(usage(format!(
                    "--dataset {:?}: a dataset name (letters, digits, '_' or '-'), _quarantine or '*'",
                    a.dataset
                )));
            }
            let storage = root_storage(&a.root)?;
            let owner = operator(&a.owner);
            let h = HoldSet::add(
                &storage, &a.dataset, from, to, &a.reason, &owner, until, now,
            )
            .map_err(|e| usage(e.to_string()))?;
            let mut d = Map::new();
            d.insert("hold".into(), serde_json::to_value(&h)?);
            AuditLog::of_storage(&storage).append(&second(now), "hold_placed", &owner, d)?;
            say!(
                info,
                "hold {} placed on {} from {} to {}",
                h.id,
                h.dataset,
                h.from,
                h.to
            );
            println!("{}", h.id);
            Ok(())
        }
        RetentionCommand::Release(a) => {
            let now = now_or(&a.now)?;
            let storage = root_storage(&a.root)?;
            let by = operator(&a.owner);
            let h =
                HoldSet::release(&storage, &a.id, &by, now).map_err(|e| usage(e.to_string()))?;
            let mut d = Map::new();
            d.insert("hold".into(), serde_json::to_value(&h)?);
            AuditLog::of_storage(&storage).append(&second(now), "hold_released", &by, d)?;
            say!(info, "hold {} released", h.id);
            Ok(())
        }
        RetentionCommand::Holds(a) => {
            let storage = root_storage(&a.root)?;
            let set = HoldSet::load(&storage)?;
            let now = crate::now_micros();
            if a.json {
                println!("{}", serde_json::to_string(set.all())?);
                return Ok(());
            }
            println!(
                "{:<6} {:<14} {:<21} {:<21} {:<10} {:<12} REASON",
                "ID", "DATASET", "FROM", "TO", "STATE", "OWNER"
            );
            for h in set.all() {
                println!(
                    "{:<6} {:<14} {:<21} {:<21} {:<10} {:<12} {}",
                    h.id,
                    h.dataset,
                    h.from,
                    h.to,
                    if h.in_force(now) {
                        "in force"
                    } else if h.released_at.is_some() {
                        "released"
                    } else {
                        "lapsed"
                    },
                    h.owner,
                    h.reason
                );
            }
            Ok(())
        }
        RetentionCommand::Sweep(a) => sweep(a),
        RetentionCommand::Status(a) => status(a),
        RetentionCommand::Verify(a) => verify(a),
    }
}

/// Test hook, in debug builds only: `LOGVEIL_TEST_CRASH_AT=STEP:N` aborts the process (as
/// kill -9 would: no clean-up, no flush) when a crash-safe operation reaches STEP for the
/// N-th time (`any` for every step). The sweep's steps are `tombstoned`, `manifest_removed`,
/// `file_deleted`, `receipted` and `tombstone_removed`; an erasure's are `journaled`,
/// `replaced`, `manifest_written`, `file_removed` and `receipted`. Release builds have no
/// such hook.
pub(crate) fn crash_hook<S: Copy + 'static>(
    name: fn(S) -> &'static str,
) -> Option<Box<dyn Fn(S) + Sync>> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var("LOGVEIL_TEST_CRASH_AT").ok()?;
    let (step, n) = spec.split_once(':')?;
    let n: u64 = n.parse().ok()?;
    let step = step.to_string();
    let seen = std::sync::atomic::AtomicU64::new(0);
    Some(Box::new(move |s: S| {
        if (step == "any" || step == name(s))
            && seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == n
        {
            std::process::abort();
        }
    }))
}

fn sweep(a: SweepArgs) -> Result<()> {
    let wall = crate::now_micros();
    let now = now_or(&a.now)?;
    // A clock ahead of the real one deletes data that has not expired: only on purpose.
    if now > wall + 60_000_000 && !a.dry_run && !a.allow_future_now {
        return Err(usage(format!(
            "--now {} is later than the system clock ({}): that would delete partitions that have not expired yet. Use --dry-run to see what it would do, or add --allow-future-now if that is what you want",
            second(now),
            second(wall)
        )));
    }
    let storage = root_storage(&a.root)?;
    let opts = SweepOptions {
        now,
        wall_clock: wall,
        dry_run: a.dry_run,
        operator: operator(&a.operator),
        sweep_id: crate::new_run_id(wall),
    };
    let hook = crash_hook(Step::as_str);
    let mut sweeper = Sweeper::new(storage);
    if let Some(h) = &hook {
        sweeper = sweeper.with_hook(h.as_ref());
    }
    let r = sweeper.sweep(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let verb = if a.dry_run { "would delete" } else { "deleted" };
        for d in &r.deleted {
            println!(
                "{verb:<12} {:<14} {}  expired {}  {} rows  {} files  {} bytes{}{}",
                d.dataset,
                d.partition,
                d.expires_at,
                d.rows.map_or_else(|| "?".to_string(), |n| n.to_string()),
                d.files,
                d.bytes,
                if d.recovered {
                    "  (completing an interrupted sweep)"
                } else {
                    ""
                },
                match d.manifest {
                    logveil_retention::sweep::ManifestState::Ok => "",
                    logveil_retention::sweep::ManifestState::Missing => "  (no manifest)",
                    logveil_retention::sweep::ManifestState::Corrupt => "  (unreadable manifest)",
                }
            );
        }
        for h in &r.held {
            println!(
                "{:<12} {:<14} {}  expired {}  by {}",
                "held",
                h.dataset,
                h.partition,
                h.expires_at,
                h.holds.join(", ")
            );
        }
    }
    say!(
        info,
        "sweep {} at {}: {} partitions {}, {} held, {} examined{}",
        r.sweep_id,
        r.now,
        r.deleted.len(),
        if a.dry_run {
            "would be deleted (dry run)"
        } else {
            "deleted"
        },
        r.held.len(),
        r.partitions_examined,
        if r.problems.is_empty() {
            String::new()
        } else {
            format!(", {} problems", r.problems.len())
        }
    );
    if r.staged_removed > 0 {
        say!(
            info,
            "{} staged upload(s) older than a week that no commit will publish {}",
            r.staged_removed,
            if a.dry_run {
                "would be removed (dry run)"
            } else {
                "removed"
            }
        );
    }
    for d in &r.floors_raised {
        say!(
            info,
            "dataset {d}: retention floor updated (partitions written under a shorter retention are gone); sweeps look back less far"
        );
    }
    for p in &r.problems {
        say!(warn, "{}: {}", p.path, p.what);
    }
    let unresolved = r.problems.iter().filter(|p| p.needs_attention).count();
    if unresolved > 0 {
        return Err(NeedsAttention(format!(
            "{unresolved} problems were left as they are; see the warnings above"
        ))
        .into());
    }
    Ok(())
}

fn status(a: StatusArgs) -> Result<()> {
    let now = now_or(&a.now)?;
    let storage = root_storage(&a.root)?;
    let s = logveil_retention::status(&storage, now)?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    println!(
        "{:<14} {:>5} {:>10} {:>10} {:>12} {:<22} {:<22} {:<21} {:>7} {:>5}",
        "DATASET",
        "DAYS",
        "PARTITIONS",
        "ROWS",
        "BYTES",
        "OLDEST",
        "NEWEST",
        "NEXT EXPIRY",
        "OVERDUE",
        "HELD"
    );
    for d in &s.datasets {
        println!(
            "{:<14} {:>5} {:>10} {:>10} {:>12} {:<22} {:<22} {:<21} {:>7} {:>5}",
            d.dataset,
            d.retention_days,
            d.partitions,
            d.rows,
            d.bytes,
            d.oldest.as_deref().unwrap_or("-"),
            d.newest.as_deref().unwrap_or("-"),
            d.next_expiry.as_deref().unwrap_or("-"),
            d.overdue,
            d.held
        );
    }
    let live: Vec<_> = s.holds.iter().filter(|h| h.in_force).collect();
    if !live.is_empty() {
        println!();
        println!("holds in force:");
        for HoldStatus { hold: h, .. } in live {
            println!(
                "  {} {} [{}, {}) owner {}{}: {}",
                h.id,
                h.dataset,
                h.from,
                h.to,
                h.owner,
                h.until
                    .as_deref()
                    .map(|u| format!(", until {u}"))
                    .unwrap_or_default(),
                h.reason
            );
        }
    }
    match &s.last_sweep {
        Some(l) => println!(
            "\nlast sweep: {} ({} deleted)",
            l.get("finished_at").and_then(|v| v.as_str()).unwrap_or("?"),
            l.get("deleted").and_then(|v| v.as_u64()).unwrap_or(0)
        ),
        None => println!("\nlast sweep: never"),
    }
    if s.pending_tombstones > 0 {
        println!(
            "{} partitions are half-deleted by an interrupted sweep; the next sweep completes them",
            s.pending_tombstones
        );
    }
    for d in s.datasets.iter().filter(|d| d.unlisted_files > 0) {
        say!(
            warn,
            "dataset {}: {} Parquet files are not in their partition's manifest (a run was killed between publishing and recording them)",
            d.dataset,
            d.unlisted_files
        );
    }
    for p in &s.problems {
        say!(warn, "{}: {}", p.path, p.what);
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let storage = root_storage(&a.root)?;
    let v = logveil_retention::verify(&storage)?;
    let audit = AuditLog::of_storage(&storage).verify()?;
    if a.json {
        println!("{}", serde_json::to_string(&v)?);
    }
    say!(
        info,
        "receipt chain intact ({} receipts); {} deleted partitions checked, {} files still present; audit log intact ({} entries){}",
        v.receipts,
        v.partitions_checked,
        v.files_remaining.len(),
        audit.len(),
        if v.pending_tombstones > 0 {
            format!(
                "; {} partitions await completion by the next sweep",
                v.pending_tombstones
            )
        } else {
            String::new()
        }
    );
    if !v.passed() {
        for f in &v.files_remaining {
            say!(info, "still present: {f}");
        }
        anyhow::bail!(
            "verification failed: {} files named in deletion receipts still exist",
            v.files_remaining.len()
        );
    }
    Ok(())
}

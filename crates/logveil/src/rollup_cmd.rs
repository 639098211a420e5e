//! `logveil rollup PIPELINE.toml`: builds or brings up to date the pipeline's `[rollups]`
//! (k-anonymous aggregates that outlive the raw data), and the same step at the end of a
//! `run` ([`build_all`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use logveil_model::HourKey;
use logveil_rollup::{Options, Plan, Report};
use logveil_sink::Storage;

use crate::keys_cmd::{now_or, parse_when, root_storage};

#[derive(Args)]
pub struct RollupArgs {
    /// The pipeline whose `[rollups.NAME]` tables to build.
    pub pipeline: PathBuf,
    /// Output root (default: the pipeline's `[output] root`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Judge expiry at this time (RFC 3339) instead of the clock (default: the pipeline's
    /// `[runtime] now`, if set).
    #[arg(long, value_name = "RFC3339", env = "LOGVEIL_NOW")]
    pub now: Option<String>,
    /// Only windows starting at or after this date or time.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Only windows starting at or before this date or time.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Recompute windows whose raw data did not change (still only while it exists).
    #[arg(long)]
    pub rebuild: bool,
    /// Threads reading a window's files (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
    /// Only this rollup (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_rollup(a: RollupArgs) -> Result<()> {
    let (p, jobs) = crate::load_pipeline(&a.pipeline)?;
    let mut plans = p
        .rollup_plans(&jobs)
        .map_err(|e| crate::usage(format!("{e:#}")))?;
    if let Some(unknown) = a
        .only
        .iter()
        .find(|n| !plans.iter().any(|p| &p.spec.name == *n))
    {
        return Err(crate::usage(format!(
            "--only {unknown}: the pipeline has no [rollups.{unknown}]"
        )));
    }
    if !a.only.is_empty() {
        plans.retain(|p| a.only.contains(&p.spec.name));
    }
    if plans.is_empty() {
        say!(info, "{}: no [rollups] to build", a.pipeline.display());
        return Ok(());
    }
    let now = now_or(&a.now.clone().or_else(|| p.runtime.now.clone()))?;
    let hour = |flag: &str, s: &Option<String>| -> Result<Option<HourKey>> {
        s.as_deref()
            .map(|s| parse_when(flag, s).map(HourKey::of_micros))
            .transpose()
    };
    let opts = Options {
        now_micros: now,
        from: hour("--from", &a.from)?,
        to: hour("--to", &a.to)?,
        closed_by: None,
        rebuild: a.rebuild,
        threads: a.threads.unwrap_or_else(all_cores),
        run_id: crate::new_run_id(now),
    };
    let root = a.out.as_deref().unwrap_or(&p.output.root);
    let storage = root_storage(root)?;
    let reports = build_all(&storage, &plans, &opts)?;
    if a.json {
        let v: Vec<serde_json::Value> = reports.iter().map(report_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for r in &reports {
            say!(info, "{}", human(r, &plans));
        }
    }
    Ok(())
}

/// Threads when `-j` is not given: all cores.
pub(crate) fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Builds every rollup, one after the other.
pub fn build_all(storage: &Storage, plans: &[Plan], opts: &Options) -> Result<Vec<Report>> {
    plans
        .iter()
        .map(|p| {
            logveil_rollup::build(storage, p, opts)
                .with_context(|| format!("building rollup {}", p.spec.name))
        })
        .collect()
}

/// Builds the rollups after a run (`run` calls this once everything is committed).
pub fn after_run(root: &Path, plans: &[Plan], now: i64) -> Result<()> {
    build_quietly(root, plans, now, None, all_cores())
}

/// Builds what changed, printing only the rollups that built a window; `closed_by` limits
/// the build to windows that have ended.
fn build_quietly(
    root: &Path,
    plans: &[Plan],
    now: i64,
    closed_by: Option<i64>,
    threads: usize,
) -> Result<()> {
    if plans.is_empty() {
        return Ok(());
    }
    let storage = root_storage(root)?;
    let opts = Options {
        now_micros: now,
        from: None,
        to: None,
        closed_by,
        rebuild: false,
        threads,
        run_id: crate::new_run_id(now),
    };
    for r in build_all(&storage, plans, &opts)? {
        if r.windows_built > 0 {
            say!(info, "{}", human(&r, plans));
        }
    }
    Ok(())
}

/// While a daemon runs: every `interval`, builds the windows that have closed (and those
/// whose inputs changed since), until `stop`. `fixed_now` is the run's clock if it has one.
/// Failures are reported and retried at the next interval.
pub fn periodic(
    root: PathBuf,
    plans: Vec<Plan>,
    fixed_now: Option<i64>,
    interval: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("rollups".into())
        .spawn(move || {
            use std::sync::atomic::Ordering;
            let step = std::time::Duration::from_millis(200);
            loop {
                let start = std::time::Instant::now();
                while start.elapsed() < interval {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(step.min(interval));
                }
                let now = fixed_now.unwrap_or_else(crate::now_micros);
                // One thread: the run's workers come first.
                if let Err(e) = build_quietly(&root, &plans, now, Some(now), 1) {
                    say!(warn, "rollups: {e:#} (retried in {} s)", interval.as_secs());
                }
            }
        })
        .expect("spawning the rollup thread")
}

fn human(r: &Report, plans: &[Plan]) -> String {
    let k = plans
        .iter()
        .find(|p| p.spec.name == r.rollup)
        .map_or(0, |p| p.spec.k);
    format!(
        "rollup {}: {} windows built, {} unchanged, {} frozen (raw data expired), {} expired; {} raw rows ({} without consent to statistics) → {} groups, {} suppressed (fewer than k={k} subjects), {} events in no published row",
        r.rollup,
        r.windows_built,
        r.windows_unchanged,
        r.windows_frozen,
        r.windows_expired,
        r.input_rows,
        r.rows_without_consent,
        r.groups,
        r.groups_suppressed,
        r.events_suppressed,
    )
}

fn report_json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "rollup": r.rollup,
        "windows_built": r.windows_built,
        "windows_unchanged": r.windows_unchanged,
        "windows_frozen": r.windows_frozen,
        "windows_expired": r.windows_expired,
        "input_rows": r.input_rows,
        "rows_without_consent": r.rows_without_consent,
        "groups": r.groups,
        "groups_suppressed": r.groups_suppressed,
        "events_suppressed": r.events_suppressed,
    })
}

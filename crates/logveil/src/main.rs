//! The `logveil` command: configuration, keys, I/O, progress, summaries and exit codes.
//! Library crates do the work; this binary is the only place that prints.
//!
//! Exit codes: 0 success (bad lines are quarantined, not failures); 1 a fatal runtime error
//! (unreadable input, unwritable output); 2 bad usage or configuration (including keys); 3 the
//! run finished but the privacy self-check withheld partitions; 4 a retention sweep finished
//! but left something for an operator (e.g. a dataset without `_dataset.json`).

// First: its `say!` macro is used by the others.
#[macro_use]
mod diag;
mod config;
mod generate;
mod ingest;
mod kafka;
mod keys_cmd;
mod listen;
mod metrics;
mod nats;
#[cfg(feature = "query")]
mod query_cmd;
mod requests;
mod retention_cmd;
mod rollup_cmd;
mod sources;
mod stream;
mod subject_cmd;
#[cfg(feature = "query")]
mod subject_erase;
#[cfg(feature = "query")]
mod subject_export;
#[cfg(feature = "query")]
mod subject_find;
mod summary;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use logveil_model::time::format_rfc3339;
use logveil_privacy::pseudonym::Truncation;
use logveil_privacy::{EngineConfig, KeyRing};
use logveil_sink::DatasetSpec;
use logveil_source::Input;

use crate::ingest::{Counts, Format, Job, Progress, RunContext, RunOptions};
use crate::sources::{MappingConf, SourceSettings};

#[derive(Parser)]
#[command(
    name = "logveil",
    version,
    about = "Privacy-preserving log ingestion: logs in, pseudonymised hour-partitioned Parquet out."
)]
struct Cli {
    /// Log level for logveil's own diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "LOGVEIL_LOG")]
    log: String,
    /// Write logveil's messages on stderr as JSON, one object per line (for log collectors)
    /// instead of text lines.
    #[arg(long, global = true, env = "LOGVEIL_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest log files (or stdin) into a dataset.
    Ingest(Box<IngestArgs>),
    /// Run a pipeline described by a TOML file (see docs/CONFIGURATION.md).
    Run(RunArgs),
    /// Create a key ring (mode 0600) with one key, and its audit log.
    Keygen(keys_cmd::KeygenArgs),
    /// Key epochs: list, rotate, shred (crypto-shredding of old epochs).
    #[command(subcommand)]
    Keys(keys_cmd::KeysCommand),
    /// Retention: expire partitions (sweep, status, verify) and legal holds.
    #[command(subcommand)]
    Retention(retention_cmd::RetentionCommand),
    /// Privacy policy: `policy check PIPELINE.toml` validates a pipeline's policy and prints
    /// the effective policy of each dataset, with the rule (and policy clause) behind each line.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Build the pipeline's rollups: k-anonymous aggregates kept after the raw data expires
    /// (`run` builds them too, once everything is committed).
    Rollup(rollup_cmd::RollupArgs),
    /// SQL over the datasets of an output root (DataFusion); expired partitions are
    /// invisible even before the sweep deletes them.
    #[cfg(feature = "query")]
    Query(Box<query_cmd::QueryArgs>),
    /// Data-subject requests: find, export, erase, object, restrict; requests and deadlines.
    #[command(subcommand)]
    Subject(subject_cmd::SubjectCommand),
    /// Generate synthetic logs for demos, tests and benchmarks.
    Generate(generate::GenerateArgs),
}

#[derive(Args)]
struct KeyArgs {
    /// Key ring written by `logveil keygen` (must be mode 0600).
    #[arg(long, value_name = "FILE", conflicts_with = "dev_key")]
    keys: Option<PathBuf>,
    /// Use the public development key. Output is marked as made with it. Never in production.
    #[arg(long)]
    dev_key: bool,
}

#[derive(Args)]
struct CommonRunArgs {
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Print a JSON summary on stdout (see docs/OPERATIONS.md for its fields).
    #[arg(long)]
    summary_json: bool,
    /// No progress display, even on a terminal.
    #[arg(long)]
    no_progress: bool,
    /// Lines longer than this are quarantined as `line_too_long`.
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    max_line_bytes: usize,
    /// Events later than the clock plus this are quarantined as `future_timestamp`
    /// (e.g. 30m, 6h, 1d).
    #[arg(long, default_value = "1d", value_name = "DURATION", value_parser = parse_duration)]
    max_future: i64,
    /// Evaluate "now" at this time (RFC 3339): which partitions have expired (late events
    /// are dropped) and how far the future reaches. For replays, backfills and tests.
    #[arg(long, value_name = "RFC3339", env = "LOGVEIL_NOW")]
    now: Option<String>,
}

/// `90s`, `30m`, `6h`, `2d` → µs.
fn parse_duration(s: &str) -> Result<i64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 6h or 1d"))?;
    let per = match unit {
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => logveil_model::time::MICROS_PER_HOUR,
        "d" => logveil_model::time::MICROS_PER_DAY,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d (e.g. 6h)")),
    };
    n.checked_mul(per)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[derive(Args)]
struct IngestArgs {
    /// Input format. Each writes one dataset kind: combined, common and --log-format →
    /// `access`; session-json → `session`; syslog, rfc5424, rfc3164 → `syslog`; logfmt,
    /// json → `app`; squid, proxy-json → `proxy_usage` (aggregated metadata only).
    #[arg(long, value_enum, required_unless_present = "log_format")]
    format: Option<Format>,
    /// A custom access-log layout: an nginx `log_format` string
    /// ('$remote_addr - $remote_user [$time_local] "$request" $status …') or an Apache
    /// `LogFormat` string ('%h %l %u %t "%r" %>s %b …'). Implies an access log.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Dataset name (default by format: access, session, syslog, app or proxy_usage).
    #[arg(long)]
    dataset: Option<String>,
    /// logfmt/json: map a source field to a role, e.g. `--map ip=client.ip --map keep=request_id`
    /// (roles: timestamp, timestamp_format, level, message, ip, device_id, account_id,
    /// user_agent, method, path, status, duration_ms, keep). Repeatable.
    #[arg(long = "map", value_name = "ROLE=FIELD")]
    map: Vec<String>,
    /// logfmt/json: service name written to the `app` column (default: the dataset name).
    #[arg(long)]
    app: Option<String>,
    /// squid/proxy-json: aggregation window in seconds (a divisor of one day).
    #[arg(long, value_name = "SECONDS")]
    window_seconds: Option<u32>,
    /// syslog/rfc3164: reference clock for timestamps without a year (default: now), RFC 3339.
    #[arg(long, value_name = "RFC3339")]
    reference_time: Option<String>,
    /// syslog/rfc3164: the senders' UTC offset for timestamps without a zone (default Z).
    #[arg(long, value_name = "+HH:MM")]
    utc_offset: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Output root directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Retention of the dataset in days (default: access, syslog, app 30; session 90;
    /// proxy_usage 7).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=config::MAX_RETENTION_DAYS as i64))]
    retention_days: Option<u32>,
    /// Prefix length of stored IPv4 networks.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(0..=config::MAX_IPV4_PREFIX as i64))]
    ipv4_prefix: u8,
    /// Prefix length of stored IPv6 networks.
    #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u8).range(0..=config::MAX_IPV6_PREFIX as i64))]
    ipv6_prefix: u8,
    #[command(flatten)]
    run: CommonRunArgs,
    /// Input files; none or `-` reads stdin. Gzip is detected and decompressed.
    files: Vec<String>,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a pipeline config (exit 2 with the line and the reason if it is not valid) and
    /// print the effective privacy policy of every dataset it writes.
    Check(PolicyCheckArgs),
}

#[derive(Args)]
struct PolicyCheckArgs {
    /// Pipeline configuration file.
    pipeline: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// Pipeline configuration file.
    pipeline: PathBuf,
    /// Output root instead of the pipeline's `[output] root`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Key ring instead of the pipeline's `[keys]` (file or development key).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Followed sources: stop once every file has been read to its end, instead of waiting
    /// for more.
    #[arg(long)]
    once: bool,
    #[command(flatten)]
    run: CommonRunArgs,
}

/// An error in how logveil was invoked or configured (exit code 2).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    diag::init(
        if cli.log_json {
            diag::LogFormat::Json
        } else {
            diag::LogFormat::Text
        },
        &cli.log,
    );
    let result = match cli.command {
        Command::Ingest(a) => cmd_ingest(*a),
        Command::Run(a) => cmd_run(a),
        Command::Keygen(a) => keys_cmd::cmd_keygen(a),
        Command::Keys(a) => keys_cmd::cmd_keys(a),
        Command::Retention(a) => retention_cmd::cmd_retention(a),
        Command::Subject(a) => subject_cmd::cmd_subject(a),
        Command::Rollup(a) => rollup_cmd::cmd_rollup(a),
        #[cfg(feature = "query")]
        Command::Query(a) => query_cmd::cmd_query(*a),
        Command::Policy(PolicyCommand::Check(a)) => cmd_policy_check(a),
        Command::Generate(a) => generate::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.is::<UsageError>() || e.is::<logveil_privacy::KeyError>() {
                2
            } else if e.is::<SelfCheckFailed>() {
                3
            } else if e.is::<NeedsAttention>() {
                4
            } else {
                1
            };
            say!(error, "{e:#}");
            ExitCode::from(code)
        }
    }
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub(crate) fn new_run_id(now: i64) -> String {
    let mut r = [0u8; 3];
    let _ = getrandom::fill(&mut r);
    let ts: String = format_rfc3339(now - now % 1_000_000)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{ts}-{:02x}{:02x}{:02x}", r[0], r[1], r[2])
}

pub(crate) fn load_ring(keys: Option<&Path>, dev_key: bool) -> Result<KeyRing> {
    match (keys, dev_key) {
        (Some(p), _) => Ok(KeyRing::load(p)?),
        (None, true) => {
            say!(
                warn,
                "using the public DEVELOPMENT key: pseudonyms made with it can be recomputed by anyone who has the source code. Output is marked key_id=\"dev-insecure\". Never use it for real data; create a key ring with `logveil keygen --out keys.json` and pass --keys keys.json"
            );
            Ok(KeyRing::development())
        }
        (None, false) => Err(usage(
            "no keys: pass --keys FILE (create one with `logveil keygen --out FILE`), or --dev-key for a demo",
        )),
    }
}

fn threads(requested: Option<usize>) -> usize {
    match requested {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    }
}

fn run_options(c: &CommonRunArgs, threads_conf: Option<usize>, trunc: Truncation) -> RunOptions {
    RunOptions {
        threads: threads(c.threads.or(threads_conf)),
        max_line_bytes: c.max_line_bytes.max(256),
        max_future_micros: c.max_future,
        engine: EngineConfig {
            truncation: trunc,
            ..EngineConfig::default()
        },
        ..RunOptions::default()
    }
}

fn cmd_ingest(a: IngestArgs) -> Result<()> {
    let files = if a.files.is_empty() {
        vec!["-".to_string()]
    } else {
        a.files.clone()
    };
    let inputs: Vec<Input> = files.iter().map(|f| Input::from_arg(f)).collect();
    let settings = SourceSettings {
        format: a.format,
        log_format: a.log_format.clone(),
        app: a.app.clone(),
        mapping: if a.map.is_empty() {
            None
        } else {
            Some(MappingConf::from_flags(&a.map).map_err(|e| usage(format!("{e:#}")))?)
        },
        window_seconds: a.window_seconds,
        reference_time: a.reference_time.clone(),
        utc_offset: a.utc_offset.clone(),
    };
    if let Some(name) = &a.dataset
        && !config::valid_dataset_name(name)
    {
        return Err(usage(format!(
            "--dataset {name:?}: use letters, digits, '_' or '-'"
        )));
    }
    // The service name of application logs defaults to the dataset name.
    let source = a.dataset.as_deref().unwrap_or("app");
    let (parser, note) = settings
        .resolve(source, &inputs)
        .map_err(|e| usage(format!("{e:#}")))?;
    if let Some(n) = note {
        say!(info, "{n}");
    }
    let kind = parser.kind();
    let name = a
        .dataset
        .clone()
        .unwrap_or_else(|| kind.default_name().to_string());
    let mut dataset = DatasetSpec {
        name: name.clone(),
        ..DatasetSpec::with_defaults(kind)
    };
    if let Some(d) = a.retention_days {
        dataset.retention_days = d;
        dataset.retention_explicit = true;
    }
    let ring = load_ring(a.keys.keys.as_deref(), a.keys.dev_key)?;
    let trunc = Truncation {
        ipv4_prefix: a.ipv4_prefix,
        ipv6_prefix: a.ipv6_prefix,
    };
    let job = Job {
        index: 0,
        name: name.clone(),
        parser,
        policy: Arc::new(logveil_privacy::policy::DatasetPolicy::default_for(
            dataset.kind,
            trunc,
        )),
        dataset,
        inputs,
        follow: false,
        fingerprint_lines: 1,
        listen: None,
        kafka: None,
        nats: None,
    };
    let opts = run_options(&a.run, None, trunc);
    execute(&a.out, ring, opts, &[job], &a.run)
}

/// Loads and validates a pipeline and resolves its jobs (printing the notes, e.g. what
/// `--format auto` chose); every problem is a usage error.
pub(crate) fn load_pipeline(path: &Path) -> Result<(config::Pipeline, Vec<Job>)> {
    let p = config::Pipeline::load(path).map_err(|e| usage(format!("{e:#}")))?;
    let (jobs, notes) = p
        .jobs()
        .map_err(|e| usage(format!("{}: {e:#}", path.display())))?;
    // Rollups are checked at start-up too, so a run never fails on them at its end.
    p.rollup_plans(&jobs).map_err(|e| usage(format!("{e:#}")))?;
    for n in notes {
        say!(info, "{n}");
    }
    Ok((p, jobs))
}

fn cmd_policy_check(a: PolicyCheckArgs) -> Result<()> {
    let (p, jobs) = load_pipeline(&a.pipeline)?;
    println!("pipeline {}: valid", a.pipeline.display());
    println!(
        "keys: {}",
        match (&p.keys.file, p.keys.dev_key) {
            (Some(f), _) => format!("key ring {}", f.display()),
            (None, true) => "the public DEVELOPMENT key (demo only)".into(),
            (None, false) => "none configured (a run will refuse to start)".into(),
        }
    );
    let mut seen = std::collections::BTreeSet::new();
    for j in &jobs {
        println!("source {} → dataset {}", j.name, j.dataset.name);
    }
    for j in &jobs {
        if seen.insert(j.dataset.name.clone()) {
            println!();
            print!(
                "{}",
                j.policy.describe(&j.dataset.name, j.dataset.retention_days)
            );
        }
    }
    let q = p.dataset("_quarantine", logveil_model::DatasetKind::Quarantine);
    println!();
    println!(
        "dataset _quarantine (retention {} days): bad lines, masked and scrubbed (proxy and custom-layout lines withheld entirely)",
        q.retention_days
    );
    Ok(())
}

fn cmd_run(a: RunArgs) -> Result<()> {
    // First of all: SIGHUP's default action ends the process, and a reload's new process must
    // not die of a second SIGHUP sent while it starts (a followed run watches this flag).
    let hup = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")?;
    let (p, jobs) = load_pipeline(&a.pipeline)?;
    let ring = match &a.keys {
        Some(k) => load_ring(Some(k), false)?,
        None => load_ring(p.keys.file.as_deref(), p.keys.dev_key)?,
    };
    let trunc = Truncation {
        ipv4_prefix: p.privacy.ipv4_prefix,
        ipv6_prefix: p.privacy.ipv6_prefix,
    };
    let mut opts = run_options(&a.run, p.runtime.threads, trunc);
    opts.quarantine = p.dataset("_quarantine", logveil_model::DatasetKind::Quarantine);
    let mut run = a.run;
    if run.now.is_none() {
        run.now.clone_from(&p.runtime.now);
    }
    let root = a.out.as_deref().unwrap_or(&p.output.root);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Set by SIGTERM/SIGINT only: a reload asked for meanwhile is not carried out.
    let terminated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if jobs.iter().any(|j| j.follow) {
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            // A second signal while stopping exits at once (safe: commits are journaled).
            signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
                .context("installing the SIGTERM/SIGINT handlers")?;
            signal_hook::flag::register(sig, stop.clone())
                .context("installing the SIGTERM/SIGINT handlers")?;
            signal_hook::flag::register(sig, terminated.clone())
                .context("installing the SIGTERM/SIGINT handlers")?;
        }
    }
    let reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if jobs.iter().any(|j| j.follow) {
        watch_sighup(
            hup,
            a.pipeline.clone(),
            a.keys.clone(),
            stop.clone(),
            reload.clone(),
        )?;
    }
    let followed = jobs.iter().filter(|j| j.follow).count();
    // A spool holds what a network source accepted until it is committed: on an
    // object-storage root there is no root directory to default to, and a spool relative to
    // the working directory could be lost on a restart.
    if logveil_sink::storage::is_remote_location(&root.to_string_lossy())
        && p.runtime.spool_dir.is_none()
        && let Some(j) = jobs.iter().find(|j| j.follow && j.listen.is_some())
    {
        return Err(usage(format!(
            "source {}: with an object-storage root, set [runtime] spool_dir to a local directory that survives restarts (network sources and a followed stdin keep what they accepted there until it is committed)",
            j.name
        )));
    }
    let metrics = match (&p.runtime.metrics_address, followed) {
        (Some(addr), n) if n > 0 => {
            let (bound, ep) = metrics::serve(addr, n, stop.clone())?;
            say!(info, "metrics on http://{bound}/metrics (/health, /ready)");
            Some(ep)
        }
        _ => None,
    };
    let stream = stream::StreamOptions {
        commit_interval: std::time::Duration::from_millis(
            p.runtime.commit_interval_ms.unwrap_or(5000).max(10),
        ),
        commit_bytes: p.runtime.commit_bytes.unwrap_or(128 << 20).max(1 << 20),
        poll_interval: std::time::Duration::from_millis(
            p.runtime.poll_interval_ms.unwrap_or(250).clamp(10, 60_000),
        ),
        once: a.once,
        stop,
        metrics,
        drain_timeout: std::time::Duration::from_secs(30),
        // (An object-storage root with network sources needs `spool_dir`: checked above.)
        spool_dir: p
            .runtime
            .spool_dir
            .clone()
            .unwrap_or_else(|| root.join("_spool")),
        max_spool_bytes: p.runtime.max_spool_bytes.unwrap_or(256 << 20).max(1 << 20),
    };
    // A daemon builds the rollups' closed windows as it goes.
    let plans = p.rollup_plans(&jobs)?;
    let rollup_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let interval = p.runtime.rollup_interval_s.unwrap_or(300);
    let rollups = (!a.once && followed > 0 && !plans.is_empty() && interval > 0).then(|| {
        let fixed_now = run
            .now
            .as_deref()
            .and_then(|n| keys_cmd::parse_when("--now", n).ok());
        rollup_cmd::periodic(
            root.to_path_buf(),
            plans.clone(),
            fixed_now,
            Duration::from_secs(interval),
            rollup_stop.clone(),
        )
    });
    let result = execute_with(
        root,
        &p.output.storage,
        ring,
        opts,
        &jobs,
        &run,
        Some(&stream),
    );
    rollup_stop.store(true, std::sync::atomic::Ordering::Release);
    if let Some(t) = rollups {
        let _ = t.join();
    }
    let reloading = reload.load(std::sync::atomic::Ordering::Acquire)
        && !terminated.load(std::sync::atomic::Ordering::Acquire);
    if result.is_ok() && !reloading {
        // Everything read is committed: bring the rollups up to date.
        rollup_cmd::after_run(root, &plans, keys_cmd::now_or(&run.now)?)?;
    }
    match result {
        Ok(()) if reloading => {}
        // Reported already; the daemon goes on with the new pipeline all the same.
        Err(e) if reloading && e.is::<SelfCheckFailed>() => say!(error, "{e:#}"),
        other => return other,
    }
    // Everything is committed: start again, as the same command, with the new pipeline. A
    // SIGHUP that comes while the new process starts is ignored (the disposition survives
    // exec) until it installs its handler.
    use std::os::unix::process::CommandExt;
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "logveil".into());
    let exe = if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().context("finding logveil's own executable to start again")?
    };
    let err = std::process::Command::new(exe).arg0(arg0).args(args).exec();
    Err(anyhow::anyhow!(
        "SIGHUP: everything was committed, but logveil could not start again: {err}; start it again by hand"
    ))
}

/// What a reload must check before it stops anything: everything `cmd_run` would refuse at
/// start-up that can be checked without the running pipeline's sockets.
fn check_reload(pipeline: &Path, keys: Option<&Path>) -> Result<()> {
    let (p, jobs) = load_pipeline(pipeline)?;
    match (keys.or(p.keys.file.as_deref()), p.keys.dev_key) {
        (Some(k), _) => {
            KeyRing::load(k)?;
        }
        (None, true) => {}
        (None, false) => {
            return Err(usage(
                "no keys: the pipeline names no key ring ([keys] file) and no --keys was given",
            ));
        }
    }
    if let Some(j) = jobs.iter().find(|j| !j.follow) {
        return Err(usage(format!(
            "source {} is read once: a reload would read it again; restart instead (or make the source followed)",
            j.name
        )));
    }
    if let Some(j) = jobs
        .iter()
        .find(|j| matches!(j.listen, Some(listen::Listen::Stdin)))
    {
        return Err(usage(format!(
            "source {} follows standard input, which a reload cannot hand over whole; restart instead",
            j.name
        )));
    }
    for j in &jobs {
        if let Some(listen::Listen::Syslog { tls: Some(t), .. }) = &j.listen {
            logveil_source::net::syslog::tls_acceptor(&t.cert, &t.key)
                .map_err(|e| usage(format!("source {}: {e}", j.name)))?;
        }
    }
    Ok(())
}

/// SIGHUP: reload the pipeline where safe. The new pipeline (and key ring, TLS certificates)
/// is checked first ([`check_reload`]); if it is not valid, or cannot be reloaded (sources read
/// once, a followed stdin), the running pipeline goes on and the reason is printed. If it is,
/// the run stops as for SIGTERM (every source commits what it read) and starts again with it,
/// in the same process (`exec`): sources resume from their journals, so nothing is lost or
/// read twice. Network sources refuse connections while it restarts.
fn watch_sighup(
    hup: Arc<std::sync::atomic::AtomicBool>,
    pipeline: PathBuf,
    keys: Option<PathBuf>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    reload: Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    use std::sync::atomic::Ordering;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::AcqRel) {
                    match check_reload(&pipeline, keys.as_deref()) {
                        Ok(()) => {
                            say!(
                                info,
                                "SIGHUP: {} is valid; committing, then starting again with it",
                                pipeline.display()
                            );
                            reload.store(true, Ordering::Release);
                            stop.store(true, Ordering::Release);
                            return;
                        }
                        Err(e) => say!(
                            warn,
                            "SIGHUP: {} is not reloaded, so the running pipeline goes on: {e:#}",
                            pipeline.display()
                        ),
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
        .context("starting the SIGHUP thread")?;
    Ok(())
}

fn execute(
    root: &Path,
    ring: KeyRing,
    opts: RunOptions,
    jobs: &[Job],
    c: &CommonRunArgs,
) -> Result<()> {
    execute_with(root, &Default::default(), ring, opts, jobs, c, None)
}

/// Runs the jobs: those read once in order, then the followed ones, each on its own thread,
/// until they stop.
fn execute_with(
    root: &Path,
    storage_options: &std::collections::BTreeMap<String, String>,
    ring: KeyRing,
    mut opts: RunOptions,
    jobs: &[Job],
    c: &CommonRunArgs,
    stream: Option<&stream::StreamOptions>,
) -> Result<()> {
    let storage = keys_cmd::open_root(root, storage_options)?;
    // Datasets are checked (kind, schema) and their retention settled before anything is
    // written: a run that would mix schemas writes nothing.
    let mut jobs = jobs.to_vec();
    let specs = jobs
        .iter_mut()
        .map(|j| &mut j.dataset)
        .chain(std::iter::once(&mut opts.quarantine));
    for spec in specs {
        let ensured = logveil_sink::manifest::ensure_dataset(&storage, spec)
            .with_context(|| format!("dataset {}", spec.name))?;
        if let Some((old, new)) = ensured.retention_changed {
            say!(
                info,
                "dataset {}: retention changed from {old} to {new} days",
                spec.name
            );
        }
        *spec = ensured.spec;
    }
    let suppressor = subject_cmd::suppressor(&storage, &ring)?.map(Arc::new);
    let now = match &c.now {
        Some(t) => keys_cmd::parse_when("--now", t)?,
        None => now_micros(),
    };
    let ctx = RunContext {
        storage,
        ring,
        suppressor,
        run_id: new_run_id(now),
        now_micros: now,
        clock_fixed: c.now.is_some(),
        opts,
        progress: Arc::new(Progress::default()),
    };
    let started = Instant::now();
    let show = !c.no_progress && std::io::stderr().is_terminal();
    let progress = show.then(|| progress_bar(ctx.progress.clone()));
    let mut total = Counts::default();
    let result = (|| -> Result<()> {
        for job in jobs.iter().filter(|j| !j.follow) {
            let counts =
                ingest::run_job(&ctx, job).with_context(|| format!("source {}", job.name))?;
            total.merge(&counts);
        }
        let followed: Vec<&Job> = jobs.iter().filter(|j| j.follow).collect();
        if let (Some(so), false) = (stream, followed.is_empty()) {
            say!(
                info,
                "following {} source(s){}",
                followed.len(),
                if so.once {
                    " until their files are read to the end"
                } else {
                    "; SIGTERM or Ctrl-C commits what was read and stops"
                }
            );
            // Network sources: their spools, and (unless --once) their listeners.
            let mut spools = Vec::new();
            for job in followed.iter().filter(|j| j.listen.is_some()) {
                let dir = listen::spool_path(&so.spool_dir, &job.name);
                let spool = logveil_source::spool::Spool::open(&dir)
                    .with_context(|| format!("source {}", job.name))?;
                spools.push((
                    job.name.clone(),
                    job.listen.clone().expect("network source"),
                    spool,
                ));
            }
            // With --once, only a followed stdin is read (to its end); network sources read
            // what their spools hold.
            let listening: Vec<_> = spools
                .iter()
                .filter(|(_, l, _)| !so.once || matches!(l, listen::Listen::Stdin))
                .cloned()
                .collect();
            let listeners = if listening.is_empty() {
                None
            } else {
                let l = listen::Listeners::start(
                    &listening,
                    ctx.opts.max_line_bytes,
                    so.max_spool_bytes,
                    so.stop.clone(),
                )?;
                for (name, what, _) in &listening {
                    let verb = match what {
                        listen::Listen::Stdin => "reading",
                        _ => "listening on",
                    };
                    say!(info, "source {name}: {verb} {}", what.describe());
                }
                Some(l)
            };
            let already = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let results: Vec<Result<ingest::Counts>> = std::thread::scope(|s| {
                let handles: Vec<_> = followed
                    .iter()
                    .map(|job| {
                        let ctx = &ctx;
                        let spool = spools
                            .iter()
                            .find(|(n, _, _)| *n == job.name)
                            .map(|(_, _, sp)| sp.clone());
                        // Files stop on SIGTERM; a network source once its listeners have
                        // (with --once, at once: it reads what its spool holds).
                        let until = match (&spool, &listeners) {
                            (None, _) => so.stop.clone(),
                            (Some(_), Some(l)) => l.done(&job.name).unwrap_or(already.clone()),
                            (Some(_), None) => already.clone(),
                        };
                        s.spawn(move || {
                            let r = if job.kafka.is_some() {
                                kafka::run_kafka(ctx, job, so, &until)
                            } else if job.nats.is_some() {
                                nats::run_nats(ctx, job, so, &until)
                            } else {
                                stream::run_follow(ctx, job, so, spool, &until)
                            }
                            .with_context(|| format!("source {}", job.name));
                            if r.is_err() {
                                // One source failed: the others commit and stop too.
                                so.stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                            r
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a source thread panicked")))
                    })
                    .collect()
            });
            let net_errors = listeners.map(listen::Listeners::finish).unwrap_or_default();
            for r in results {
                total.merge(&r?);
            }
            if let Some(e) = net_errors.first() {
                anyhow::bail!("{e}");
            }
        }
        Ok(())
    })();
    if let Some((bar, stop)) = progress {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = bar.join();
    }
    result?;
    let secs = started.elapsed().as_secs_f64();
    let s = summary::Summary::new(&total, secs, &ctx);
    say!(info, "{}", s.human());
    if c.summary_json {
        println!("{}", s.json());
    }
    if !s.self_check_withheld.is_empty() {
        for w in &s.self_check_withheld {
            say!(
                alert,
                "PRIVACY SELF-CHECK FAILED: {} dt={} hour={:02}: column {} holds a raw {}; {} rows withheld (not published)",
                w.dataset,
                w.dt,
                w.hour,
                w.column,
                w.kind,
                w.rows
            );
        }
        return Err(SelfCheckFailed(s.self_check_withheld.len()).into());
    }
    Ok(())
}

/// The command finished, but left something for an operator to look at (exit code 4).
#[derive(Debug)]
pub(crate) struct NeedsAttention(pub String);

impl std::fmt::Display for NeedsAttention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NeedsAttention {}

/// The run finished, but the privacy self-check withheld partitions (exit code 3).
#[derive(Debug)]
struct SelfCheckFailed(usize);

impl std::fmt::Display for SelfCheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the privacy self-check withheld {} partition(s): a privacy rule let a raw identifier through. Everything else was published. Report it (with the lines above, which hold no data), and re-ingest those hours once fixed",
            self.0
        )
    }
}

impl std::error::Error for SelfCheckFailed {}

type ProgressHandle = (
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
);

fn progress_bar(p: Arc<Progress>) -> ProgressHandle {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let start = Instant::now();
        while !stop2.load(Ordering::Relaxed) {
            let lines = p.lines.load(Ordering::Relaxed);
            let bytes = p.bytes.load(Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{lines} lines, {:.1} MB read ({:.0} lines/s)",
                bytes as f64 / 1e6,
                lines as f64 / secs
            ));
            bar.tick();
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (h, stop)
}

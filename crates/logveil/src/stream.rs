//! Sources with `follow = true` in `logveil run`: their files are followed as they grow
//! (`logveil_source::follow`), or, for network sources, their spool is read as the listeners
//! fill it (`logveil_source::spool`); what was read is committed every few seconds as one epoch,
//! exactly once: the source's journal (`_checkpoints/<source>.json`) records each epoch's
//! files before they become visible and the position after their lines once they are, and a
//! start first completes an epoch a crash left half-committed. Runs until stopped (SIGTERM,
//! SIGINT: the current epoch is committed first) or, with `--once`, until every file has been
//! read to its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use logveil_sink::journal::{CHECKPOINTS_DIR, Journal};
use logveil_sink::storage::Locked;
use logveil_source::follow::{FilePosition, FollowOptions, Follower};
use logveil_source::spool::{Spool, SpoolPosition, SpoolReader};
use serde_json::{Value, json};

use crate::ingest::{
    Counts, Epoch, Job, RunContext, Worker, commit_results, note_progress, run_info,
};

/// How followed sources run.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// An epoch is committed after this long.
    pub commit_interval: Duration,
    /// … or once it has read this many bytes (for a spool, at most half its backlog limit,
    /// so that commits, not backpressure, keep up with a fast source).
    pub commit_bytes: u64,
    /// Pause between polls when nothing new was found.
    pub poll_interval: Duration,
    /// Stop once every file has been read to its end (instead of waiting for more).
    pub once: bool,
    /// Set by SIGTERM/SIGINT (or a failing source): commit what was read, then stop.
    pub stop: Arc<AtomicBool>,
    /// A network source's reader, once stopped, goes on until it has read all the spool
    /// holds, for at most this long (the rest is read by the next run).
    pub drain_timeout: Duration,
    /// Network sources: where their spools are (`<dir>/<source>`).
    pub spool_dir: std::path::PathBuf,
    /// Network sources: uncommitted spool bytes above which they push back.
    pub max_spool_bytes: u64,
    /// The metrics endpoint, when there is one.
    pub metrics: Option<crate::metrics::Endpoint>,
}

/// Polls in a row that found nothing new after which `--once` considers the files read. One
/// is enough: nothing is expected to write to them meanwhile, and whatever a renamed file
/// still receives is read by the next run (its position is committed).
const ONCE_IDLE_POLLS: u32 = 1;

fn positions_json(p: &[FilePosition]) -> Value {
    Value::Array(
        p.iter()
            .map(|p| {
                json!({
                    "fingerprint": p.fingerprint,
                    "offset": p.offset,
                    "line": p.line,
                    "path": p.path.display().to_string(),
                })
            })
            .collect(),
    )
}

fn positions_of(v: &Value) -> Result<Vec<FilePosition>> {
    let Some(a) = v.as_array() else {
        return Ok(Vec::new()); // nothing committed yet
    };
    a.iter()
        .map(|p| {
            Some(FilePosition {
                fingerprint: p.get("fingerprint")?.as_str()?.to_string(),
                offset: p.get("offset")?.as_u64()?,
                line: p.get("line")?.as_u64()?,
                path: p.get("path")?.as_str()?.into(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .context("the source's journal holds a position that is not a file position")
}

/// Test hook, in debug builds only: `LOGVEIL_TEST_SLOW_COMMIT_MS=N` makes every commit of a
/// followed source wait N ms first (a deliberately slow sink, for the backpressure test).
/// Release builds have no such hook.
fn slow_sink_hook() {
    if !cfg!(debug_assertions) {
        return;
    }
    if let Some(ms) = std::env::var("LOGVEIL_TEST_SLOW_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn spool_position_of(v: &Value) -> Option<SpoolPosition> {
    Some(SpoolPosition {
        spool: v.get("spool")?.as_str()?.to_string(),
        offset: v.get("offset")?.as_u64()?,
        line: v.get("line")?.as_u64()?,
    })
}

/// What a followed source reads: files, or a network source's spool.
enum Reader {
    Files(Follower),
    Spool(SpoolReader),
}

impl Reader {
    /// Up to a few chunks of new lines.
    fn poll(&mut self) -> (Vec<logveil_source::Chunk>, Vec<String>) {
        match self {
            Reader::Files(f) => {
                let (c, e) = f.poll();
                (c, e.into_iter().map(|e| e.to_string()).collect())
            }
            Reader::Spool(r) => {
                let mut out = Vec::new();
                for _ in 0..4 {
                    match r.poll() {
                        Ok(Some(c)) => out.push(c),
                        Ok(None) => break,
                        Err(e) => return (out, vec![e.to_string()]),
                    }
                }
                (out, Vec::new())
            }
        }
    }

    /// The position a commit records.
    fn position(&self) -> Value {
        match self {
            Reader::Files(f) => positions_json(&f.positions()),
            Reader::Spool(r) => {
                let p = r.position();
                json!({ "spool": p.spool, "offset": p.offset, "line": p.line })
            }
        }
    }

    /// Bytes not read yet, and files being read.
    fn lag(&self) -> (u64, usize) {
        match self {
            Reader::Files(f) => f.lag(),
            Reader::Spool(r) => (r.lag(), 1),
        }
    }

    /// After a commit: a spool drops what is committed (`last`: all of it, the listeners
    /// having stopped).
    fn committed(&self, last: bool) -> Result<()> {
        if let Reader::Spool(r) = self {
            let offset = r.position().offset;
            if last {
                r.spool().release_all(offset)
            } else {
                r.spool().release(offset)
            }
            .context("removing committed spool segments")?;
        }
        Ok(())
    }
}

/// The clock of a new epoch: the run's, if fixed, else the current time.
pub(crate) fn epoch_clock(ctx: &RunContext) -> i64 {
    if ctx.clock_fixed {
        ctx.now_micros
    } else {
        crate::now_micros()
    }
}

/// Takes the lock of a source's journals (`_checkpoints/<source>.lock`; local disk only,
/// where nothing else keeps a second process away). `hint` says what to do when another
/// process holds it.
pub(crate) fn lock_source(
    ctx: &RunContext,
    job: &Job,
    hint: &str,
) -> Result<Option<std::fs::File>> {
    match ctx
        .storage
        .lock(&format!("{CHECKPOINTS_DIR}/{}.lock", job.name), false)
        .context("locking the source's journal")?
    {
        Locked::Busy => anyhow::bail!(
            "another logveil process is reading source {} into {} (its journal is locked); {hint}",
            job.name,
            ctx.storage.label()
        ),
        Locked::Held(f) => Ok(Some(f)),
        Locked::NotLocal => Ok(None),
    }
}

/// Follows one source until stopped (`until`: SIGTERM for files; for a network source, its
/// listeners having stopped); returns its counts.
pub fn run_follow(
    ctx: &RunContext,
    job: &Job,
    opts: &StreamOptions,
    spool: Option<Spool>,
    until: &AtomicBool,
) -> Result<Counts> {
    // One process per source journal: two would read the same lines and overwrite each
    // other's positions.
    let _lock = lock_source(
        ctx,
        job,
        "stop it first, or give this pipeline's source another name",
    )?;
    let mut journal =
        Journal::open(ctx.storage.clone(), &job.name).context("opening the source's journal")?;
    let recovered = journal
        .recover(
            |d| {
                if d == job.dataset.name {
                    Some(job.dataset.clone())
                } else if d == ctx.opts.quarantine.name {
                    Some(ctx.opts.quarantine.clone())
                } else {
                    None
                }
            },
            &run_info(ctx),
        )
        .context("completing the commit an earlier run left pending")?;
    if let Some(e) = recovered.epoch {
        let refused: u64 = recovered
            .reports
            .iter()
            .flat_map(|(_, r)| r.expired.iter().map(|(_, rows)| rows))
            .sum();
        say!(
            info,
            "source {}: completed epoch {e}, left pending by an earlier run{}",
            job.name,
            if refused > 0 {
                format!(
                    "; {refused} of its rows were in partitions that have expired or are being swept since, and were dropped"
                )
            } else {
                String::new()
            }
        );
    }
    let drain = spool.is_some();
    let mut follower = match spool {
        Some(spool) => Reader::Spool(
            spool
                .reader(
                    job.name.as_str().into(),
                    spool_position_of(&journal.state().position),
                    ctx.opts.chunk_bytes.max(ctx.opts.max_line_bytes * 2),
                    ctx.opts.max_line_bytes,
                )
                .context("opening the source's spool")?,
        ),
        None => {
            let patterns: Vec<String> = job.inputs.iter().map(|i| i.name()).collect();
            let fopts = FollowOptions {
                chunk_size: ctx.opts.chunk_bytes,
                max_line: ctx.opts.max_line_bytes,
                fingerprint_lines: job.fingerprint_lines,
                ..FollowOptions::default()
            };
            Reader::Files(Follower::new(
                patterns,
                fopts,
                positions_of(&journal.state().position)?,
            ))
        }
    };
    // Committed before this run: nothing older is needed.
    follower.committed(false)?;
    let mut stopped_at: Option<Instant> = None;
    if let Some(m) = &opts.metrics {
        m.starting.fetch_sub(1, Ordering::Relaxed);
    }
    let mut total = Counts::default();
    let mut epoch = journal.state().epoch;
    let mut last_position = journal.state().position.clone();
    // Idle polls in a row (across epochs: a commit does not make the files less idle).
    let mut idle = 0u32;
    loop {
        epoch += 1;
        let now = epoch_clock(ctx);
        let threads = ctx.opts.threads.max(1);
        let mut lines = 0u64;
        let (finished, results) = std::thread::scope(|s| -> Result<_> {
            // Workers parse, protect and write; this thread reads. The channel is bounded:
            // when the workers fall behind, reading waits (the files wait on disk).
            let (tx, rx) = crossbeam_channel::bounded::<logveil_source::Chunk>(threads * 2);
            let workers: Vec<_> = (0..threads)
                .map(|i| {
                    let rx = rx.clone();
                    // Epoch and thread make the worker's file names unique within the run.
                    let id = epoch as usize * threads + i;
                    s.spawn(move || -> Result<_> {
                        let mut w = Worker::new_at(ctx, job, id, now);
                        for c in rx {
                            w.process(&c)?;
                        }
                        w.finish()
                    })
                })
                .collect();
            drop(rx);
            let started = Instant::now();
            let mut read_error = None;
            let mut bytes = 0u64;
            let commit_bytes = if drain {
                opts.commit_bytes.min(opts.max_spool_bytes / 2).max(1)
            } else {
                opts.commit_bytes
            };
            let finished = loop {
                // Seen before the poll: a network source is drained only by a poll that found
                // nothing after its listeners had stopped.
                let stop = until.load(Ordering::Acquire);
                let (chunks, errors) = follower.poll();
                if drain && let Some(e) = errors.first() {
                    // A spool that cannot be read is not skipped: that would lose data.
                    read_error = Some(anyhow::anyhow!("{e}"));
                    break true;
                }
                for e in errors {
                    say!(warn, "source {}: {e}", job.name);
                }
                if chunks.is_empty() {
                    idle += 1;
                } else {
                    idle = 0;
                }
                let mut workers_gone = false;
                for c in chunks {
                    note_progress(ctx, &c);
                    lines += c.line_count();
                    bytes += c.data.len() as u64;
                    if tx.send(c).is_err() {
                        workers_gone = true; // a worker failed: its error is below
                        break;
                    }
                }
                if opts.metrics.is_some() {
                    let (lag, files) = follower.lag();
                    crate::metrics::record_state(&job.name, lag, tx.len(), files);
                    if let Reader::Spool(r) = &follower {
                        crate::metrics::record_spool(&job.name, r.spool().backlog());
                    }
                }
                if stop {
                    stopped_at.get_or_insert_with(Instant::now);
                }
                // A network source, once its listeners stopped, reads its spool to the end.
                let drained = !drain
                    || idle > 0
                    || stopped_at.is_some_and(|t| t.elapsed() >= opts.drain_timeout);
                // --once: files stop once read; a spool once its writer is done (`until`).
                let once_done = opts.once && !drain && idle >= ONCE_IDLE_POLLS;
                if workers_gone || (stop && drained) || once_done {
                    break true;
                }
                if started.elapsed() >= opts.commit_interval || bytes >= commit_bytes {
                    break false;
                }
                if idle > 0 {
                    // In slices, so that a stop is noticed soon even with a long interval.
                    let wake = Instant::now() + opts.poll_interval;
                    while Instant::now() < wake
                        && !opts.stop.load(Ordering::Relaxed)
                        && !until.load(Ordering::Relaxed)
                    {
                        std::thread::sleep(
                            wake.saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(100)),
                        );
                    }
                }
            };
            drop(tx);
            // Every worker is joined before an error is returned, so that none is left
            // writing; the files of an epoch that fails are never recorded.
            let joined: Vec<Result<_>> = workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
                })
                .collect();
            let mut results = Vec::with_capacity(threads);
            let mut first_err = read_error;
            for r in joined {
                match r {
                    Ok(o) => results.push(o),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_err {
                for (_, out) in &results {
                    out.discard(&ctx.storage);
                }
                return Err(e);
            }
            Ok((finished, results))
        })?;
        let position = follower.position();
        if lines > 0 || position != last_position {
            slow_sink_hook();
            let commit_started = Instant::now();
            let counts = commit_results(
                ctx,
                job,
                results,
                Some(Epoch {
                    journal: &mut journal,
                    epoch,
                    position: position.clone(),
                }),
            )?;
            if opts.metrics.is_some() {
                crate::metrics::record_epoch(&job.name, &counts, commit_started.elapsed());
            }
            total.merge(&counts);
            last_position = position;
            follower.committed(false)?;
        } else {
            epoch -= 1; // nothing read: no epoch
        }
        if finished {
            if until.load(Ordering::Relaxed) {
                follower.committed(true)?;
            }
            return Ok(total);
        }
    }
}

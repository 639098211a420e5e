//! Sources with `follow = true` in `logveil run`: their files are followed as they grow
//! (`logveil_source::follow`), and what was read is committed every few seconds as one epoch,
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
use serde_json::{Value, json};

use crate::ingest::{
    Counts, Epoch, Job, RunContext, Worker, commit_results, note_progress, run_info,
};

/// How followed sources run.
#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// An epoch is committed after this long.
    pub commit_interval: Duration,
    /// Pause between polls when nothing new was found.
    pub poll_interval: Duration,
    /// Stop once every file has been read to its end (instead of waiting for more).
    pub once: bool,
    /// Set by SIGTERM/SIGINT: commit what was read, then stop.
    pub stop: Arc<AtomicBool>,
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

/// Follows one source until stopped; returns its counts.
pub fn run_follow(ctx: &RunContext, job: &Job, opts: &StreamOptions) -> Result<Counts> {
    // One process per source journal: two would read the same lines and overwrite each
    // other's positions.
    let _lock = match ctx
        .storage
        .lock(&format!("{CHECKPOINTS_DIR}/{}.lock", job.name), false)
        .context("locking the source's journal")?
    {
        Locked::Busy => anyhow::bail!(
            "another logveil process is following this source into {} (its journal is locked); stop it first, or give this pipeline's source another name",
            ctx.storage.label()
        ),
        Locked::Held(f) => Some(f),
        Locked::NotLocal => None,
    };
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
        eprintln!(
            "logveil: source {}: completed epoch {e}, left pending by an earlier run{}",
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
    let patterns: Vec<String> = job.inputs.iter().map(|i| i.name()).collect();
    let fopts = FollowOptions {
        chunk_size: ctx.opts.chunk_bytes,
        max_line: ctx.opts.max_line_bytes,
        fingerprint_lines: job.fingerprint_lines,
        ..FollowOptions::default()
    };
    let mut follower = Follower::new(patterns, fopts, positions_of(&journal.state().position)?);
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
        let now = if ctx.clock_fixed {
            ctx.now_micros
        } else {
            crate::now_micros()
        };
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
            let finished = loop {
                let (chunks, errors) = follower.poll();
                for e in errors {
                    eprintln!("logveil: warning: source {}: {e}", job.name);
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
                    if tx.send(c).is_err() {
                        workers_gone = true; // a worker failed: its error is below
                        break;
                    }
                }
                if opts.metrics.is_some() {
                    let (lag, files) = follower.lag();
                    crate::metrics::record_state(&job.name, lag, tx.len(), files);
                }
                let stop = opts.stop.load(Ordering::Relaxed) || workers_gone;
                if stop || (opts.once && idle >= ONCE_IDLE_POLLS) {
                    break true;
                }
                if started.elapsed() >= opts.commit_interval {
                    break false;
                }
                if idle > 0 {
                    // In slices, so that a stop is noticed soon even with a long interval.
                    let until = Instant::now() + opts.poll_interval;
                    while Instant::now() < until && !opts.stop.load(Ordering::Relaxed) {
                        std::thread::sleep(
                            until
                                .saturating_duration_since(Instant::now())
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
            let mut first_err = None;
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
        let position = positions_json(&follower.positions());
        if lines > 0 || position != last_position {
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
        } else {
            epoch -= 1; // nothing read: no epoch
        }
        if finished {
            return Ok(total);
        }
    }
}

//! Kafka sources in `logveil run`: one consumer-group member per source
//! (`logveil_source::kafka`), committing every few seconds, exactly once per partition.
//!
//! Each partition has its own journal, `_checkpoints/<source>/<topic>/<partition>.json`, like
//! a followed file's: an epoch's files are recorded in it (staged, invisible) before they are
//! published, and the offset after their records once they are. When the group assigns a
//! partition, its journal is read first: a pending epoch (a crash, or an instance killed
//! mid-commit) is completed, and reading resumes at the journal's offset, whatever the group
//! had committed. Offsets are committed to the group after each partition's commit.
//!
//! Several instances in one group share the partitions. On object storage every journal
//! write is a conditional put, so an instance that lost a partition in a rebalance it has
//! not noticed yet cannot overwrite the new owner's position: its commit is refused and its
//! files are discarded (the new owner reads those records again). Records of partitions
//! revoked during an epoch are dropped the same way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use logveil_sink::journal::{CHECKPOINTS_DIR, Journal};
use logveil_sink::storage::Locked;
use logveil_sink::{DatasetSpec, SinkError};
use logveil_source::kafka::{KafkaOptions, KafkaReader, Resume};
use serde_json::json;

use crate::ingest::{
    Counts, Epoch, Job, RunContext, Worker, commit_results, note_progress, run_info,
};
use crate::stream::StreamOptions;

/// A Kafka source's settings (`[sources.kafka]`).
#[derive(Clone, Debug)]
pub struct KafkaSpec {
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    pub options: BTreeMap<String, String>,
}

/// With `--once`: stop when every assigned partition has been read to its end, or when no
/// partition was assigned for this long.
const ONCE_UNASSIGNED: Duration = Duration::from_secs(20);

fn journal_name(source: &str, topic: &str, partition: i32) -> String {
    format!("{source}/{topic}/{partition}")
}

type Journals = Arc<Mutex<BTreeMap<(String, i32), Journal>>>;

fn lock(j: &Journals) -> std::sync::MutexGuard<'_, BTreeMap<(String, i32), Journal>> {
    j.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one partition read during an epoch.
struct Part<'r> {
    worker: Worker<'r>,
    last: i64,
}

/// Consumes one Kafka source until stopped; returns its counts.
pub fn run_kafka(
    ctx: &RunContext,
    job: &Job,
    opts: &StreamOptions,
    until: &AtomicBool,
) -> Result<Counts> {
    let spec = job.kafka.as_ref().context("not a Kafka source")?;
    // On local disk one process per source: without conditional puts nothing would fence a
    // second one. Object storage fences every journal write instead.
    let _lock = match ctx
        .storage
        .lock(&format!("{CHECKPOINTS_DIR}/{}.lock", job.name), false)
        .context("locking the source's journals")?
    {
        Locked::Busy => anyhow::bail!(
            "another logveil process is consuming this source into {} (its journals are locked); on a local output root run one instance per Kafka source, or write to object storage to run several",
            ctx.storage.label()
        ),
        Locked::Held(f) => Some(f),
        Locked::NotLocal => None,
    };
    let journals: Journals = Arc::new(Mutex::new(BTreeMap::new()));
    let resume: Resume = {
        let journals = journals.clone();
        let storage = ctx.storage.clone();
        let source = job.name.clone();
        let datasets: Vec<DatasetSpec> = vec![job.dataset.clone(), ctx.opts.quarantine.clone()];
        let run = run_info(ctx);
        Arc::new(move |topic: &str, partition: i32| {
            let mut j = Journal::open(storage.clone(), &journal_name(&source, topic, partition))
                .map_err(|e| e.to_string())?;
            let recovered = j
                .recover(|d| datasets.iter().find(|s| s.name == d).cloned(), &run)
                .map_err(|e| e.to_string())?;
            if let Some(e) = recovered.epoch {
                say!(
                    info,
                    "source {source}: partition {topic}/{partition}: completed epoch {e}, left pending by an earlier or another instance"
                );
            }
            let next = j.state().position.get("next").and_then(|v| v.as_i64());
            lock(&journals).insert((topic.to_string(), partition), j);
            Ok(next)
        })
    };
    let mut reader = KafkaReader::new(
        &KafkaOptions {
            source: job.name.clone(),
            brokers: spec.brokers.clone(),
            group: spec.group.clone(),
            topics: spec.topics.clone(),
            options: spec.options.clone(),
            max_line: ctx.opts.max_line_bytes,
        },
        resume,
    )?;
    if let Some(m) = &opts.metrics {
        m.starting.fetch_sub(1, Ordering::Relaxed);
    }
    let started = Instant::now();
    let mut total = Counts::default();
    let mut epoch: u64 = 0;
    let mut ever_assigned = false;
    loop {
        epoch += 1;
        let now = if ctx.clock_fixed {
            ctx.now_micros
        } else {
            crate::now_micros()
        };
        let generation = reader.generation();
        let mut parts: BTreeMap<(String, i32), Part<'_>> = BTreeMap::new();
        let epoch_started = Instant::now();
        let mut bytes = 0u64;
        let finished = loop {
            let stop = until.load(Ordering::Acquire) || opts.stop.load(Ordering::Acquire);
            let left = opts
                .commit_bytes
                .saturating_sub(bytes)
                .max(1)
                .min(usize::MAX as u64) as usize;
            let batches = reader
                .poll(opts.poll_interval.min(Duration::from_millis(500)), left)
                .with_context(|| format!("source {}", job.name))?;
            let got = !batches.is_empty();
            for b in batches {
                note_progress(ctx, &b.chunk);
                bytes += b.chunk.data.len() as u64;
                let key = (b.topic.clone(), b.partition);
                let part = match parts.get_mut(&key) {
                    Some(p) => p,
                    None => {
                        // Epoch and partition make the worker's file names unique in the run.
                        let id = (epoch as usize) * 100_000 + (b.partition.max(0) as usize);
                        parts.entry(key).or_insert(Part {
                            worker: Worker::new_at(ctx, job, id, now),
                            last: b.last,
                        })
                    }
                };
                part.worker.process(&b.chunk)?;
                part.last = b.last;
            }
            ever_assigned |= !reader.assigned().is_empty();
            if stop {
                break true;
            }
            if opts.once && !got {
                let assigned = !reader.assigned().is_empty();
                if assigned && reader.lag(Duration::from_secs(5)) == Some(0) && parts.is_empty() {
                    break true;
                }
                if !assigned && !ever_assigned && started.elapsed() >= ONCE_UNASSIGNED {
                    break true;
                }
                if !assigned && ever_assigned && parts.is_empty() {
                    break true;
                }
                if assigned && !parts.is_empty() {
                    break false; // commit what was read, then look again
                }
            }
            if epoch_started.elapsed() >= opts.commit_interval || bytes >= opts.commit_bytes {
                break false;
            }
        };
        let commit_started = Instant::now();
        let changed_owner = reader.generation() != generation;
        for ((topic, partition), part) in parts {
            let result = part.worker.finish()?;
            // Revoked during the epoch: its next owner reads these records again.
            if changed_owner && !reader.owns(&topic, partition) {
                result.1.discard(&ctx.storage);
                continue;
            }
            let mut map = lock(&journals);
            let Some(journal) = map.get_mut(&(topic.clone(), partition)) else {
                result.1.discard(&ctx.storage);
                continue;
            };
            if journal.changed()? {
                // Another instance wrote this partition's journal: it owns it now.
                result.1.discard(&ctx.storage);
                map.remove(&(topic.clone(), partition));
                say!(
                    warn,
                    "source {}: partition {topic}/{partition} was taken over by another instance; its records read here are left to it",
                    job.name
                );
                continue;
            }
            let next = part.last + 1;
            let position = json!({ "topic": topic, "partition": partition, "next": next });
            let journal_epoch = journal.state().epoch + 1;
            match commit_results(
                ctx,
                job,
                vec![result],
                Some(Epoch {
                    journal,
                    epoch: journal_epoch,
                    position,
                }),
            ) {
                Ok(counts) => {
                    if opts.metrics.is_some() {
                        crate::metrics::record_epoch(&job.name, &counts, commit_started.elapsed());
                    }
                    total.merge(&counts);
                    drop(map);
                    // The group's offset follows the journal (lag tools, new groups).
                    if let Err(e) = reader.commit(&topic, partition, next) {
                        say!(warn, "{e}");
                    }
                }
                Err(e) if is_fenced(&e) => {
                    map.remove(&(topic.clone(), partition));
                    say!(
                        warn,
                        "source {}: partition {topic}/{partition} was taken over by another instance while committing; its records read here are left to it",
                        job.name
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if opts.metrics.is_some() {
            let lag = reader.lag(Duration::from_secs(1));
            crate::metrics::record_kafka(&job.name, lag, reader.rebalances());
        }
        if finished {
            return Ok(total);
        }
    }
}

fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<SinkError>(),
            Some(SinkError::Fenced { .. })
        )
    })
}

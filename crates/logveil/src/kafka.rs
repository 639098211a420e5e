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
//! Several instances in one group share the partitions. Rebalancing is eager: records read
//! before a rebalance are never committed (the partition's owner, this instance or another,
//! reads them again from the journal's offset, where the assignment put the consumer). On
//! object storage every journal write is a conditional put, so an instance that lost a
//! partition in a rebalance it has not noticed yet cannot overwrite the new owner's
//! position: its commit is refused, and it takes the journal as it is now (completing what it
//! holds) and reads on from its offset.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use logveil_sink::journal::Journal;
use logveil_sink::{DatasetSpec, RunInfo, SinkError, Storage};
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
    first: i64,
    last: i64,
}

/// The offset a partition's journal resumes at.
pub(crate) fn next_of(j: &Journal) -> Option<i64> {
    j.state().position.get("next").and_then(|v| v.as_i64())
}

/// Opens a partition's journal and completes the epoch it holds pending, if any, retried a
/// few times (a zombie owner finishing that epoch meanwhile, or a passing storage error, is
/// no reason to stop the source). Returns the journal and the epoch it completed.
pub(crate) fn open_and_recover(
    storage: &Storage,
    name: &str,
    datasets: &[DatasetSpec],
    run: &RunInfo,
) -> Result<(Journal, Option<u64>), SinkError> {
    let mut attempt = 0u32;
    loop {
        let r = Journal::open(storage.clone(), name).and_then(|mut j| {
            let rec = j.recover(|d| datasets.iter().find(|s| s.name == d).cloned(), run)?;
            Ok((j, rec.epoch))
        });
        match r {
            Ok(v) => return Ok(v),
            Err(e @ SinkError::BadJournal { .. }) => return Err(e),
            Err(_) if attempt < 4 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            Err(e) => return Err(e),
        }
    }
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
    let _lock = crate::stream::lock_source(
        ctx,
        job,
        "on a local output root run one instance per Kafka source, or write to object storage to run several",
    )?;
    let datasets = vec![job.dataset.clone(), ctx.opts.quarantine.clone()];
    let journals: Journals = Arc::new(Mutex::new(BTreeMap::new()));
    let resume: Resume = {
        let journals = journals.clone();
        let storage = ctx.storage.clone();
        let source = job.name.clone();
        let datasets = datasets.clone();
        let base = run_info(ctx);
        let clock_fixed = ctx.clock_fixed;
        Arc::new(move |topic: &str, partition: i32| {
            // A recovered epoch's partitions are judged expired or not by the clock of now.
            let mut run = base.clone();
            if !clock_fixed {
                run.now_micros = run.now_micros.max(crate::now_micros());
            }
            let name = journal_name(&source, topic, partition);
            let (j, completed) =
                open_and_recover(&storage, &name, &datasets, &run).map_err(|e| e.to_string())?;
            if let Some(e) = completed {
                say!(
                    info,
                    "source {source}: partition {topic}/{partition}: completed epoch {e}, left pending by an earlier or another instance"
                );
            }
            let next = next_of(&j);
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
    let mut total = Counts::default();
    let mut epoch: u64 = 0;
    let mut ever_assigned = false;
    let mut unassigned_since: Option<Instant> = Some(Instant::now());
    loop {
        epoch += 1;
        let now = crate::stream::epoch_clock(ctx);
        // By partition and the assignment generation its records were read under.
        let mut parts: BTreeMap<(String, i32, u64), Part<'_>> = BTreeMap::new();
        let epoch_started = Instant::now();
        let mut bytes = 0u64;
        let finished = loop {
            let stop = until.load(Ordering::Acquire) || opts.stop.load(Ordering::Acquire);
            let left = opts.commit_bytes.saturating_sub(bytes).clamp(1, 1 << 30) as usize;
            let batches = reader
                .poll(opts.poll_interval.min(Duration::from_millis(500)), left)
                .with_context(|| format!("source {}", job.name))?;
            let got = !batches.is_empty();
            for b in batches {
                note_progress(ctx, &b.chunk);
                bytes += b.chunk.data.len() as u64;
                let key = (b.topic.clone(), b.partition, b.generation);
                let n = parts.len();
                let part = parts.entry(key).or_insert_with(|| Part {
                    // Epoch and place make the worker's file names unique in the run.
                    worker: Worker::new_at(ctx, job, epoch as usize * 100_000 + n, now),
                    first: b.first,
                    last: b.last,
                });
                part.worker.process(&b.chunk)?;
                part.last = b.last;
            }
            let assigned = !reader.assigned().is_empty();
            ever_assigned |= assigned;
            if assigned {
                unassigned_since = None;
            } else {
                unassigned_since.get_or_insert_with(Instant::now);
            }
            if stop {
                break true;
            }
            if opts.once && !got {
                if assigned && !parts.is_empty() {
                    break false; // commit what was read, then look again
                }
                if assigned && reader.lag(Duration::from_secs(5)) == Some(0) {
                    break true;
                }
                // Without partitions (more members than partitions, or between a revocation
                // and the next assignment) for long enough: the others have them.
                if !assigned
                    && parts.is_empty()
                    && unassigned_since.is_some_and(|t| t.elapsed() >= ONCE_UNASSIGNED)
                {
                    if !ever_assigned {
                        say!(
                            warn,
                            "source {}: no partition of {} was assigned in {} s; stopping (--once) without reading",
                            job.name,
                            spec.topics.join(", "),
                            ONCE_UNASSIGNED.as_secs()
                        );
                    }
                    break true;
                }
            }
            if epoch_started.elapsed() >= opts.commit_interval || bytes >= opts.commit_bytes {
                break false;
            }
        };
        let commit_started = Instant::now();
        let generation = reader.generation();
        for ((topic, partition, read_in), part) in parts {
            let result = part.worker.finish()?;
            // Read before a rebalance: the partition was revoked (and maybe given back, from
            // its journal's offset), so these records are read again. Never commit them.
            if read_in != generation || !reader.owns(&topic, partition) {
                result.1.discard(&ctx.storage);
                continue;
            }
            let mut map = lock(&journals);
            let Some(journal) = map.get_mut(&(topic.clone(), partition)) else {
                result.1.discard(&ctx.storage);
                continue;
            };
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
                    drop(map);
                    if opts.metrics.is_some() {
                        crate::metrics::record_epoch(&job.name, &counts, commit_started.elapsed());
                    }
                    total.merge(&counts);
                    // The group's offset follows the journal (lag tools, new groups).
                    if let Err(e) = reader.commit(&topic, partition, next) {
                        say!(warn, "{e}");
                    }
                }
                Err(e) if is_fenced(&e) => {
                    // Another writer moved the journal (an instance that had the partition
                    // a moment ago, or this one's own write retried after a lost answer):
                    // take it as it is now, complete what it holds, read on from its offset.
                    let name = journal_name(&job.name, &topic, partition);
                    let (j, _) = open_and_recover(&ctx.storage, &name, &datasets, &run_info(ctx))
                        .with_context(|| {
                        format!("source {}: partition {topic}/{partition}", job.name)
                    })?;
                    let resume_at = next_of(&j);
                    map.insert((topic.clone(), partition), j);
                    drop(map);
                    say!(
                        warn,
                        "source {}: partition {topic}/{partition}: its journal was moved by another writer; reading on from its position",
                        job.name
                    );
                    // No position kept: read this epoch's records again.
                    reader
                        .seek(&topic, partition, resume_at.unwrap_or(part.first))
                        .with_context(|| format!("source {}", job.name))?;
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

pub(crate) fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<SinkError>(),
            Some(SinkError::Fenced { .. })
        )
    })
}

//! NATS JetStream sources in `logveil run`: a member of a durable pull consumer
//! (`logveil_source::nats`) that commits every few seconds and acknowledges a message only
//! once the files holding it are committed, so that every message is in the output exactly
//! once.
//!
//! JetStream has no partitions to own: the instances of one consumer receive messages in turn,
//! and an unacknowledged message is redelivered, after `ack_wait`, to any of them. Each
//! instance therefore keeps a journal of its own, `_checkpoints/<source>/<run id>.json`, whose
//! position lists the stream sequences it committed and has not seen acknowledged yet. An epoch
//! runs begin (files and sequences, staged) → manifests → finish → acks. A redelivered message
//! (delivery count above 1) is checked against every instance's journal first: a pending epoch
//! that holds it is completed (its instance died mid-commit) and a committed one is just
//! acknowledged; only a message no journal holds is processed. Journals of instances whose
//! sequences are all acknowledged are removed. In-flight messages get progress acks so that a
//! slow commit is not taken for a dead instance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use logveil_sink::DatasetSpec;
use logveil_sink::journal::{CHECKPOINTS_DIR, Journal};
use logveil_source::nats::{NatsOptions, NatsReader};
use logveil_source::{Chunk, append_lines};
use object_store::path::Path as StorePath;
use serde_json::{Value, json};

use crate::ingest::{
    Counts, Epoch, Job, RunContext, Worker, commit_results, note_progress, run_info,
};
use crate::kafka::{is_fenced, open_and_recover};
use crate::stream::StreamOptions;

/// A NATS source's settings (`[sources.nats]`).
#[derive(Clone, Debug)]
pub struct NatsSpec {
    pub url: String,
    pub stream: String,
    pub consumer: String,
    pub subject: String,
    pub ack_wait: Duration,
    pub token_env: Option<String>,
    pub create_stream: bool,
}

/// Sequences as `[[from, to], …]` ranges (inclusive).
fn ranges(seqs: &BTreeSet<u64>) -> Value {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some(r) if r[1] + 1 == s => r[1] = s,
            _ => out.push([s, s]),
        }
    }
    json!(out)
}

fn in_ranges(v: &Value, seq: u64) -> bool {
    v.as_array().is_some_and(|a| {
        a.iter().any(|r| {
            matches!((r.get(0).and_then(Value::as_u64), r.get(1).and_then(Value::as_u64)),
                (Some(a), Some(b)) if a <= seq && seq <= b)
        })
    })
}

fn max_in_ranges(v: &Value) -> u64 {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get(1).and_then(Value::as_u64))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// How long another instance's journal must have been left alone before it may be removed.
const STALE_JOURNAL: Duration = Duration::from_secs(3600);

/// Time since an object was last written.
fn chrono_age(t: impl Into<std::time::SystemTime>) -> Duration {
    std::time::SystemTime::now()
        .duration_since(t.into())
        .unwrap_or_default()
}

/// The other instances' journals: the sequences they committed, completing any epoch one
/// of them left pending.
struct Others<'c> {
    ctx: &'c RunContext,
    job: &'c Job,
    mine: String,
    /// Unacknowledged committed sequences, by instance journal.
    committed: BTreeMap<String, Value>,
}

impl Others<'_> {
    fn dir(&self) -> String {
        format!("{CHECKPOINTS_DIR}/{}/", self.job.name)
    }

    /// Reads every other journal again, completing the epochs they hold pending (until none
    /// is: a live owner may begin its next one meanwhile). A journal is removed only when it
    /// holds nothing pending, every sequence it lists is acknowledged (`ack_floor`) and it
    /// has not been written for [`STALE_JOURNAL`]: an instance alive but idle that finds its
    /// journal gone starts a new one (its `begin` is refused once, and nothing it holds is
    /// acknowledged until committed again).
    fn refresh(&mut self, ack_floor: u64) -> Result<()> {
        self.committed.clear();
        let dir = self.dir();
        let listed = self
            .ctx
            .storage
            .list(&StorePath::from(dir.as_str()))
            .context("listing the source's journals")?;
        let datasets: Vec<DatasetSpec> =
            vec![self.job.dataset.clone(), self.ctx.opts.quarantine.clone()];
        for o in listed {
            let key = o.location.to_string();
            let Some(instance) = key
                .strip_prefix(dir.as_str())
                .and_then(|k| k.strip_suffix(".json"))
            else {
                continue;
            };
            if instance == self.mine || instance.contains('/') {
                continue;
            }
            let name = format!("{}/{instance}", self.job.name);
            let (j, completed) =
                open_and_recover(&self.ctx.storage, &name, &datasets, &run_info(self.ctx))
                    .with_context(|| format!("the journal of instance {instance}"))?;
            if let Some(e) = completed {
                say!(
                    info,
                    "source {}: completed epoch {e} of instance {instance}, left pending when it stopped",
                    self.job.name
                );
            }
            let unacked = j
                .state()
                .position
                .get("unacked")
                .cloned()
                .unwrap_or(Value::Null);
            let stale = chrono_age(o.last_modified) >= STALE_JOURNAL;
            if stale && j.state().pending.is_none() && max_in_ranges(&unacked) <= ack_floor {
                let _ = self.ctx.storage.delete(&o.location);
                continue;
            }
            self.committed.insert(instance.to_string(), unacked);
        }
        Ok(())
    }

    fn holds(&self, seq: u64) -> bool {
        self.committed.values().any(|v| in_ranges(v, seq))
    }
}

/// Consumes one NATS source until stopped; returns its counts.
pub fn run_nats(
    ctx: &RunContext,
    job: &Job,
    opts: &StreamOptions,
    until: &AtomicBool,
) -> Result<Counts> {
    let spec = job.nats.as_ref().context("not a NATS source")?;
    // On local disk one process per source: without conditional puts nothing would keep two
    // from overwriting each other's journals.
    let _lock = crate::stream::lock_source(
        ctx,
        job,
        "on a local output root run one instance per NATS source, or write to object storage to run several",
    )?;
    let mut reader = NatsReader::new(&NatsOptions {
        source: job.name.clone(),
        url: spec.url.clone(),
        stream: spec.stream.clone(),
        consumer: spec.consumer.clone(),
        subject: spec.subject.clone(),
        ack_wait: spec.ack_wait,
        token: spec.token_env.clone(),
        create_stream: spec.create_stream,
    })?;
    let ack_wait = reader.ack_wait().max(Duration::from_secs(1));
    let datasets = [job.dataset.clone(), ctx.opts.quarantine.clone()];
    let journal_name = format!("{}/{}", job.name, ctx.run_id);
    let mut journal = Journal::open(ctx.storage.clone(), &journal_name)?;
    let mut others = Others {
        ctx,
        job,
        mine: ctx.run_id.clone(),
        committed: BTreeMap::new(),
    };
    let floor = reader.pending()?.ack_floor;
    others.refresh(floor)?;
    if let Some(m) = &opts.metrics {
        m.starting.fetch_sub(1, Ordering::Relaxed);
    }
    // Committed here, acknowledgement not confirmed yet.
    let mut unconfirmed: BTreeSet<u64> = BTreeSet::new();
    let mut total = Counts::default();
    let mut epoch: u64 = 0;
    let mut last_progress = Instant::now();
    let mut drained_since: Option<Instant> = None;
    loop {
        epoch += 1;
        let now = crate::stream::epoch_clock(ctx);
        let mut worker = Worker::new_at(ctx, job, epoch as usize, now);
        let mut seqs: BTreeSet<u64> = BTreeSet::new();
        let mut bytes = 0u64;
        let epoch_started = Instant::now();
        let finished = loop {
            let stop = until.load(Ordering::Acquire) || opts.stop.load(Ordering::Acquire);
            let msgs = reader
                .fetch(1000, opts.poll_interval.min(Duration::from_millis(500)))
                .with_context(|| format!("source {}", job.name))?;
            if msgs.iter().any(|m| m.delivered > 1) {
                let floor = reader.pending()?.ack_floor;
                others.refresh(floor)?;
                unconfirmed.retain(|s| *s > floor);
            }
            let got = !msgs.is_empty();
            let mut chunk: Option<Chunk> = None;
            let mut ack_now = Vec::new();
            for m in msgs {
                let seq = m.stream_sequence;
                if unconfirmed.contains(&seq) {
                    ack_now.push(seq); // committed here, its ack was lost
                    continue;
                }
                if seqs.contains(&seq) {
                    continue; // in this epoch already
                }
                if m.delivered > 1 && others.holds(seq) {
                    ack_now.push(seq); // another instance committed it
                    continue;
                }
                let c = chunk.get_or_insert_with(|| {
                    Chunk::whole_lines(
                        format!("nats:{}", spec.stream).into(),
                        seq,
                        0,
                        Vec::new(),
                        0,
                        Vec::new(),
                    )
                });
                bytes += append_lines(c, &m.payload, ctx.opts.max_line_bytes) as u64;
                seqs.insert(seq);
            }
            if let Some(c) = chunk {
                note_progress(ctx, &c);
                worker.process(&c)?;
            }
            if !ack_now.is_empty() {
                reader.ack(&ack_now)?;
                for s in &ack_now {
                    unconfirmed.remove(s);
                }
            }
            if last_progress.elapsed() >= ack_wait / 3 {
                reader.progress(false)?;
                last_progress = Instant::now();
            }
            if stop {
                break true;
            }
            if opts.once && !got {
                if !seqs.is_empty() {
                    break false;
                }
                // Done once nothing is left undelivered and nothing is unacknowledged, or,
                // if another instance holds messages, once a dead one's would have come back.
                let p = reader.pending()?;
                if p.undelivered == 0 {
                    let since = *drained_since.get_or_insert_with(Instant::now);
                    if p.unacked == 0 || since.elapsed() >= ack_wait + Duration::from_secs(5) {
                        break true;
                    }
                } else {
                    drained_since = None;
                }
            }
            if epoch_started.elapsed() >= opts.commit_interval || bytes >= opts.commit_bytes {
                break false;
            }
        };
        let result = worker.finish()?;
        if seqs.is_empty() {
            result.1.discard(&ctx.storage);
        } else {
            let acked: Vec<u64> = seqs.iter().copied().collect();
            // Confirmed by the server right before the commit is recorded: none of these
            // can reach another instance for a whole ack_wait.
            if let Err(e) = reader.progress(true) {
                say!(
                    warn,
                    "{e}; the epoch's messages are left to be redelivered, not committed"
                );
                result.1.discard(&ctx.storage);
                reader.forget(&acked);
            } else {
                last_progress = Instant::now();
                let commit_started = Instant::now();
                let mut listed = unconfirmed.clone();
                listed.extend(acked.iter().copied());
                let position = json!({ "unacked": ranges(&listed) });
                let journal_epoch = journal.state().epoch + 1;
                let committed = commit_results(
                    ctx,
                    job,
                    vec![result],
                    Some(Epoch {
                        journal: &mut journal,
                        epoch: journal_epoch,
                        position,
                    }),
                );
                let committed = match committed {
                    Ok(counts) => {
                        if opts.metrics.is_some() {
                            crate::metrics::record_epoch(
                                &job.name,
                                &counts,
                                commit_started.elapsed(),
                            );
                        }
                        total.merge(&counts);
                        true
                    }
                    Err(e) if is_fenced(&e) => {
                        // The journal was written by another process meanwhile (it completed
                        // this epoch, or removed a journal it took for abandoned), or this
                        // process's own write was retried after a lost answer. Take the
                        // journal as it is now; the messages count as committed only if it
                        // lists them.
                        let (j, _) = open_and_recover(
                            &ctx.storage,
                            &journal_name,
                            &datasets,
                            &run_info(ctx),
                        )?;
                        journal = j;
                        let unacked = journal.state().position.get("unacked").cloned();
                        let listed = unacked
                            .as_ref()
                            .is_some_and(|u| acked.iter().all(|s| in_ranges(u, *s)));
                        if !listed {
                            say!(
                                warn,
                                "source {}: an epoch's commit was refused (its journal changed); its messages are left to be redelivered",
                                job.name
                            );
                            reader.forget(&acked);
                        }
                        listed
                    }
                    Err(e) => return Err(e),
                };
                if committed {
                    unconfirmed.extend(acked.iter().copied());
                    match reader.ack(&acked) {
                        Ok(()) => {
                            for s in &acked {
                                unconfirmed.remove(s);
                            }
                        }
                        Err(e) => say!(warn, "{e}; the messages stay recorded as committed"),
                    }
                }
            }
        }
        if finished {
            // Everything acknowledged: nothing can come back for this instance's journal.
            if unconfirmed.is_empty() && journal.state().pending.is_none() {
                let _ = ctx.storage.delete(&StorePath::from(format!(
                    "{CHECKPOINTS_DIR}/{journal_name}.json"
                )));
            }
            return Ok(total);
        }
    }
}

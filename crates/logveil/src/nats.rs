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
use logveil_sink::journal::{CHECKPOINTS_DIR, Journal};
use logveil_sink::{DatasetSpec, SinkError};
use logveil_source::nats::{NatsOptions, NatsReader};
use logveil_source::{Chunk, append_lines};
use object_store::path::Path as StorePath;
use serde_json::{Value, json};

use crate::ingest::{
    Counts, Epoch, Job, RunContext, Worker, commit_results, note_progress, run_info,
};
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

    /// Reads every other journal again; completes pending epochs; removes journals whose
    /// sequences are all acknowledged (`ack_floor`).
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
            let mut j = Journal::open(self.ctx.storage.clone(), &name)?;
            if j.state().pending.is_some() {
                match j.recover(
                    |d| datasets.iter().find(|s| s.name == d).cloned(),
                    &run_info(self.ctx),
                ) {
                    Ok(r) => {
                        if let Some(e) = r.epoch {
                            say!(
                                info,
                                "source {}: completed epoch {e} of instance {instance}, left pending when it stopped",
                                self.job.name
                            );
                        }
                    }
                    // Its instance is alive and finished it meanwhile: read it again.
                    Err(SinkError::Fenced { .. }) => {
                        j = Journal::open(self.ctx.storage.clone(), &name)?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let unacked = j
                .state()
                .position
                .get("unacked")
                .cloned()
                .unwrap_or(Value::Null);
            if j.state().pending.is_none() && max_in_ranges(&unacked) <= ack_floor {
                // Everything it committed is acknowledged: nothing can come back for it.
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
    loop {
        epoch += 1;
        let now = if ctx.clock_fixed {
            ctx.now_micros
        } else {
            crate::now_micros()
        };
        let mut worker = Worker::new_at(ctx, job, epoch as usize, now);
        let mut seqs: BTreeSet<u64> = BTreeSet::new();
        let mut bytes = 0u64;
        let epoch_started = Instant::now();
        let finished = loop {
            let stop = until.load(Ordering::Acquire) || opts.stop.load(Ordering::Acquire);
            let left = opts.commit_bytes.saturating_sub(bytes).clamp(1, 64 << 20) as usize;
            let msgs = reader
                .fetch(
                    1000,
                    left,
                    opts.poll_interval.min(Duration::from_millis(500)),
                )
                .with_context(|| format!("source {}", job.name))?;
            if msgs.iter().any(|m| m.delivered > 1) {
                let floor = reader.pending()?.ack_floor;
                others.refresh(floor)?;
            }
            let got = !msgs.is_empty();
            let mut chunk: Option<Chunk> = None;
            let mut ack_now = Vec::new();
            for m in msgs {
                let seq = m.stream_sequence;
                if unconfirmed.contains(&seq) || seqs.contains(&seq) {
                    // Ours, committed or in this epoch already.
                    if unconfirmed.contains(&seq) {
                        ack_now.push(seq);
                    }
                    continue;
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
            }
            if last_progress.elapsed() >= spec.ack_wait / 3 {
                reader.progress()?;
                last_progress = Instant::now();
            }
            if stop {
                break true;
            }
            if opts.once && !got {
                if !seqs.is_empty() {
                    break false;
                }
                let p = reader.pending()?;
                if p.undelivered == 0 && p.unacked == 0 {
                    break true;
                }
            }
            if epoch_started.elapsed() >= opts.commit_interval || bytes >= opts.commit_bytes {
                break false;
            }
        };
        let result = worker.finish()?;
        if !seqs.is_empty() {
            let commit_started = Instant::now();
            let mut listed = unconfirmed.clone();
            listed.extend(seqs.iter().copied());
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
            match committed {
                Ok(counts) => {
                    if opts.metrics.is_some() {
                        crate::metrics::record_epoch(&job.name, &counts, commit_started.elapsed());
                    }
                    total.merge(&counts);
                }
                // Another instance took this epoch for abandoned and completed it: the
                // messages are committed all the same.
                Err(e) if is_fenced(&e) => {
                    journal = Journal::open(ctx.storage.clone(), &journal_name)?;
                }
                Err(e) => return Err(e),
            }
            unconfirmed.extend(seqs.iter().copied());
            let acked: Vec<u64> = seqs.iter().copied().collect();
            match reader.ack(&acked) {
                Ok(()) => {
                    for s in &acked {
                        unconfirmed.remove(s);
                    }
                }
                Err(e) => say!(warn, "{e}; the messages stay recorded as committed"),
            }
        } else {
            result.1.discard(&ctx.storage);
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

fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<SinkError>(),
            Some(SinkError::Fenced { .. })
        )
    })
}

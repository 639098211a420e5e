//! NATS JetStream source: a durable pull consumer (`async-nats`) with explicit acks.
//!
//! Messages are fetched in batches and handed to the caller with their stream sequence and
//! delivery count; each is acknowledged only when the caller says so ([`NatsReader::ack`],
//! after the files that hold it are committed), with a confirmed ("double") ack. Until then
//! JetStream redelivers it after `ack_wait` to any member of the consumer, which is how a
//! killed instance's messages reach the others; the caller tells a redelivery of a message it
//! (or another instance) already committed from a new one by the sequences its journals keep.
//! Messages in flight get progress acks so that a slow commit is not mistaken for a dead one.
//!
//! The client is async; the reader owns a small current-thread runtime and blocks on it, so
//! it is called from a plain thread like the other sources. Errors name the source, the
//! stream and the server's words, never a message's content.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::pull::Config as PullConfig;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer};
use async_nats::jetstream::message::Acker;
use bytes::Bytes;
use futures::StreamExt;

/// Errors of the NATS source.
#[derive(Debug, thiserror::Error)]
pub enum NatsSourceError {
    #[error("nats source {source_name}: {what}")]
    Config { source_name: String, what: String },
    #[error("nats source {source_name}: {what}: {message}")]
    Server {
        source_name: String,
        what: &'static str,
        message: String,
    },
}

/// What to consume.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// The source's name (in errors).
    pub source: String,
    /// `nats://host:port` (several separated by commas).
    pub url: String,
    /// The JetStream stream, which must exist.
    pub stream: String,
    /// Durable consumer name: instances with the same name share the messages. Created if
    /// missing (explicit acks, delivering everything the stream holds).
    pub consumer: String,
    /// Subject filter (empty: every subject of the stream).
    pub subject: String,
    /// How long a delivered message may stay unacknowledged before it is redelivered.
    pub ack_wait: Duration,
    /// Name of an environment variable holding a token, if the server wants one.
    pub token: Option<String>,
    /// Create the stream (capturing `subject`, or `<stream>.>`) if it does not exist.
    pub create_stream: bool,
}

/// One delivered message.
#[derive(Debug)]
pub struct Delivered {
    pub stream_sequence: u64,
    /// 1 on first delivery; more when redelivered.
    pub delivered: i64,
    pub payload: Bytes,
}

/// What the consumer reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pending {
    /// Messages not delivered yet.
    pub undelivered: u64,
    /// Delivered and not acknowledged yet.
    pub unacked: u64,
    /// Every sequence up to this one is acknowledged.
    pub ack_floor: u64,
}

/// A member of a durable pull consumer.
pub struct NatsReader {
    rt: tokio::runtime::Runtime,
    consumer: PullConsumer,
    /// The consumer's `ack_wait`, as the server has it.
    ack_wait: Duration,
    source: String,
    stream: String,
    /// Ackers of delivered messages not acknowledged yet, by stream sequence.
    in_flight: BTreeMap<u64, Acker>,
}

impl NatsReader {
    /// Connects, finds the stream and creates (or binds to) the durable consumer.
    pub fn new(opts: &NatsOptions) -> Result<NatsReader, NatsSourceError> {
        let server = |what: &'static str| {
            let source_name = opts.source.clone();
            move |e: &dyn std::fmt::Display| NatsSourceError::Server {
                source_name: source_name.clone(),
                what,
                message: e.to_string(),
            }
        };
        if opts.stream.is_empty() || opts.consumer.is_empty() {
            return Err(NatsSourceError::Config {
                source_name: opts.source.clone(),
                what: "stream and consumer are required".into(),
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| server("cannot start its runtime")(&e))?;
        let consumer = rt.block_on(async {
            let mut connect = async_nats::ConnectOptions::new()
                .name(format!("logveil-{}", opts.source))
                .retry_on_initial_connect();
            if let Some(var) = &opts.token {
                let token = std::env::var(var).map_err(|_| NatsSourceError::Config {
                    source_name: opts.source.clone(),
                    what: format!("token environment variable {var} is not set"),
                })?;
                connect = connect.token(token);
            }
            let client = tokio::time::timeout(Duration::from_secs(30), connect.connect(&opts.url))
                .await
                .map_err(|e| server("cannot connect")(&e))?
                .map_err(|e| server("cannot connect")(&e))?;
            let js = async_nats::jetstream::new(client);
            let stream = match js.get_stream(&opts.stream).await {
                Ok(s) => s,
                Err(_) if opts.create_stream => {
                    let subject = if opts.subject.is_empty() {
                        format!("{}.>", opts.stream)
                    } else {
                        opts.subject.clone()
                    };
                    js.get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: opts.stream.clone(),
                        subjects: vec![subject],
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| server("cannot create the stream")(&e))?
                }
                Err(e) => return Err(server("cannot find the stream")(&e)),
            };
            let config = PullConfig {
                durable_name: Some(opts.consumer.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: opts.ack_wait,
                filter_subject: opts.subject.clone(),
                max_ack_pending: 100_000,
                ..Default::default()
            };
            let mut consumer: PullConsumer = stream
                .get_or_create_consumer::<PullConfig>(&opts.consumer, config)
                .await
                .map_err(|e| server("cannot create or bind the consumer")(&e))?;
            // An existing consumer keeps its own settings: refuse those that would break
            // delivery (acks that cover other instances' messages, or none at all).
            let info = consumer
                .info()
                .await
                .map_err(|e| server("cannot read the consumer")(&e))?;
            if info.config.ack_policy != AckPolicy::Explicit {
                return Err(NatsSourceError::Config {
                    source_name: opts.source.clone(),
                    what: format!(
                        "consumer {} exists with an ack policy other than explicit; delete it (or name another consumer) so that logveil creates one with explicit acks",
                        opts.consumer
                    ),
                });
            }
            if info.config.filter_subject != opts.subject {
                return Err(NatsSourceError::Config {
                    source_name: opts.source.clone(),
                    what: format!(
                        "consumer {} exists with subject filter {:?}, not {:?}; delete it or name another consumer",
                        opts.consumer, info.config.filter_subject, opts.subject
                    ),
                });
            }
            let ack_wait = info.config.ack_wait;
            Ok::<_, NatsSourceError>((consumer, ack_wait))
        })?;
        let (consumer, ack_wait) = consumer;
        Ok(NatsReader {
            rt,
            consumer,
            ack_wait,
            source: opts.source.clone(),
            stream: opts.stream.clone(),
            in_flight: BTreeMap::new(),
        })
    }

    fn err(&self, what: &'static str, e: &dyn std::fmt::Display) -> NatsSourceError {
        NatsSourceError::Server {
            source_name: self.source.clone(),
            what,
            message: format!("stream {}: {e}", self.stream),
        }
    }

    /// The consumer's `ack_wait` (the server's setting, which wins over the configured one
    /// for a consumer that existed).
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// Fetches up to `max_messages`, waiting at most `wait` for the first. (No byte limit:
    /// JetStream ends a pull whose next message would not fit with an error, not a batch.)
    pub fn fetch(
        &mut self,
        max_messages: usize,
        wait: Duration,
    ) -> Result<Vec<Delivered>, NatsSourceError> {
        let consumer = &self.consumer;
        let got: Result<Vec<(Delivered, Acker)>, NatsSourceError> = self.rt.block_on(async {
            let mut batch = consumer
                .fetch()
                .max_messages(max_messages)
                .expires(wait.max(Duration::from_millis(100)))
                .messages()
                .await
                .map_err(|e| self.err("cannot fetch", &e))?;
            let mut out = Vec::new();
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| self.err("cannot fetch", &e))?;
                let (seq, delivered) = {
                    let info = m
                        .info()
                        .map_err(|e| self.err("a message without metadata", &e))?;
                    (info.stream_sequence, info.delivered)
                };
                let (msg, acker) = m.split();
                out.push((
                    Delivered {
                        stream_sequence: seq,
                        delivered,
                        payload: msg.payload,
                    },
                    acker,
                ));
            }
            Ok(out)
        });
        let mut out = Vec::new();
        for (d, acker) in got? {
            self.in_flight.insert(d.stream_sequence, acker);
            out.push(d);
        }
        Ok(out)
    }

    /// Acknowledges messages (confirmed by the server). Sequences not in flight are ignored.
    pub fn ack(&mut self, seqs: &[u64]) -> Result<(), NatsSourceError> {
        let ackers: Vec<Acker> = seqs
            .iter()
            .filter_map(|s| self.in_flight.remove(s))
            .collect();
        let r = send_all(
            &self.rt,
            ackers.iter(),
            |a| async move { a.double_ack().await },
        );
        r.map_err(|e| self.err("cannot acknowledge", &e))
    }

    /// Tells the server the messages in flight are still being worked on (their `ack_wait`
    /// starts again). With `confirmed`, each is confirmed by the server: after success, no
    /// message in flight can be redelivered for a whole `ack_wait`.
    pub fn progress(&mut self, confirmed: bool) -> Result<(), NatsSourceError> {
        let r = send_all(&self.rt, self.in_flight.values(), |a| async move {
            if confirmed {
                a.double_ack_with(AckKind::Progress).await
            } else {
                a.ack_with(AckKind::Progress).await
            }
        });
        r.map_err(|e| self.err("cannot extend the ack deadline", &e))
    }

    /// Forgets messages without acknowledging them (JetStream redelivers them).
    pub fn forget(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.in_flight.remove(s);
        }
    }

    /// What the consumer has left.
    pub fn pending(&mut self) -> Result<Pending, NatsSourceError> {
        let consumer = &mut self.consumer;
        let r = self.rt.block_on(async {
            consumer.info().await.map(|i| Pending {
                undelivered: i.num_pending,
                unacked: i.num_ack_pending as u64,
                ack_floor: i.ack_floor.stream_sequence,
            })
        });
        r.map_err(|e| NatsSourceError::Server {
            source_name: self.source.clone(),
            what: "cannot read the consumer's state",
            message: e.to_string(),
        })
    }
}

/// Sends one acknowledgement per acker, 64 at a time; the first error, if any.
fn send_all<'a, F, Fut, E>(
    rt: &tokio::runtime::Runtime,
    ackers: impl Iterator<Item = &'a Acker>,
    send: F,
) -> Result<(), String>
where
    F: Fn(&'a Acker) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    rt.block_on(async {
        futures::stream::iter(ackers.map(|a| {
            let f = send(a);
            async move { f.await.map_err(|e| e.to_string()) }
        }))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, String>>()
        .map(|_| ())
    })
}

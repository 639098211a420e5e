//! Kafka source: one member of a consumer group (librdkafka, built from the `rdkafka`
//! crate's bundled sources) whose records become numbered lines, grouped by partition.
//!
//! The group's committed offsets are not what makes delivery exactly once: the caller keeps
//! each partition's position beside the files that hold its records (a journal in the output
//! root) and hands it back through [`Resume`] whenever the group assigns the partition, so a
//! rebalance or a crash resumes exactly after the last committed record. Records before that
//! position that arrive anyway are skipped. Offsets are committed to the group only after
//! the caller's commit ([`KafkaReader::commit`]), for lag tools and for partitions the caller
//! has no position for.
//!
//! Rebalancing is eager (the librdkafka default): on a revocation every partition is given
//! up at once and [`KafkaReader::generation`] changes, so the caller drops what it read of
//! partitions it no longer owns (their next owner reads them again from the position).
//! A record's lines are split on `\n`; a line over the maximum length is cut and flagged
//! for the quarantine like any other source's. Errors never contain record content.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::{Chunk, append_lines};

/// Errors of the Kafka source. They name the source and the broker's words, never a record.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("kafka source {source_name}: {what}")]
    Config { source_name: String, what: String },
    #[error("kafka source {source_name}: {source}")]
    Client {
        source_name: String,
        source: KafkaError,
    },
    #[error(
        "kafka source {source_name}: cannot resume partition {topic}/{partition}: {what}; the partition is not read from a wrong position"
    )]
    Resume {
        source_name: String,
        topic: String,
        partition: i32,
        what: String,
    },
}

/// Where to resume a partition: the offset of the next record to read (`Ok(None)`: no
/// position kept; the group's committed offset, or `auto.offset.reset`, decides).
pub type Resume = Arc<dyn Fn(&str, i32) -> Result<Option<i64>, String> + Send + Sync>;

/// How to reach the brokers and what to read.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// The source's name (in errors and line sources).
    pub source: String,
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Consumer group id: instances with the same group share the partitions.
    pub group: String,
    /// Topic names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
    /// librdkafka properties passed through (`security.protocol`, `sasl.*`, `ssl.*`,
    /// `auto.offset.reset`, `session.timeout.ms`…).
    pub options: BTreeMap<String, String>,
    /// Longest line kept whole.
    pub max_line: usize,
}

/// Properties logveil sets itself: a user's value would break exactly-once delivery.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
];

/// Records of one partition read by one poll, in offset order.
#[derive(Debug)]
pub struct Records {
    pub topic: String,
    pub partition: i32,
    /// Offsets of the first and last record.
    pub first: i64,
    pub last: i64,
    /// The assignment generation the records were read under ([`KafkaReader::generation`]):
    /// records of an older generation may be read again by the partition's next owner (or
    /// by this member, from the resume position) and must not be committed.
    pub generation: u64,
    /// Their lines; line numbers are offsets + 1 (for records of one line each).
    pub chunk: Chunk,
}

#[derive(Default)]
struct Assignment {
    /// Assigned partitions and the next offset wanted (`None`: whatever comes first).
    next: HashMap<(String, i32), Option<i64>>,
    generation: u64,
    error: Option<KafkaSourceError>,
}

struct Ctx {
    source: String,
    resume: Resume,
    state: Mutex<Assignment>,
    rebalances: AtomicU64,
}

impl Ctx {
    fn state(&self) -> std::sync::MutexGuard<'_, Assignment> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state();
        st.generation += 1;
        st.next.clear();
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            // Revoked (or a rebalance error): give everything up.
            let _ = consumer.unassign();
            return;
        }
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        for (topic, partition) in parts {
            match (self.resume)(&topic, partition) {
                Ok(Some(next)) => {
                    let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(next));
                    st.next.insert((topic, partition), Some(next));
                }
                Ok(None) => {
                    st.next.insert((topic, partition), None);
                }
                Err(what) => {
                    st.error.get_or_insert(KafkaSourceError::Resume {
                        source_name: self.source.clone(),
                        topic,
                        partition,
                        what,
                    });
                    let _ = consumer.unassign();
                    return;
                }
            }
        }
        if let Err(e) = consumer.assign(tpl) {
            st.error.get_or_insert(KafkaSourceError::Client {
                source_name: self.source.clone(),
                source: e,
            });
        }
    }
}

/// A consumer-group member.
pub struct KafkaReader {
    consumer: BaseConsumer<Ctx>,
    source: String,
    max_line: usize,
}

impl KafkaReader {
    /// Joins the group and subscribes; partitions arrive with the first polls.
    pub fn new(opts: &KafkaOptions, resume: Resume) -> Result<KafkaReader, KafkaSourceError> {
        let config_err = |what: String| KafkaSourceError::Config {
            source_name: opts.source.clone(),
            what,
        };
        if opts.topics.is_empty() {
            return Err(config_err("no topics given".into()));
        }
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &opts.brokers)
            .set("group.id", &opts.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("client.id", format!("logveil-{}", opts.source));
        for (k, v) in &opts.options {
            if RESERVED.contains(&k.as_str()) {
                return Err(config_err(format!(
                    "option {k} is set by logveil (brokers, group and commits are its own settings)"
                )));
            }
            if k == "partition.assignment.strategy" && v.contains("cooperative") {
                return Err(config_err(
                    "cooperative rebalancing is not supported; use range or roundrobin".into(),
                ));
            }
            cfg.set(k, v);
        }
        let ctx = Ctx {
            source: opts.source.clone(),
            resume,
            state: Mutex::new(Assignment::default()),
            rebalances: AtomicU64::new(0),
        };
        let consumer: BaseConsumer<Ctx> =
            cfg.create_with_context(ctx)
                .map_err(|source| KafkaSourceError::Client {
                    source_name: opts.source.clone(),
                    source,
                })?;
        let topics: Vec<&str> = opts.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaSourceError::Client {
                source_name: opts.source.clone(),
                source,
            })?;
        Ok(KafkaReader {
            consumer,
            source: opts.source.clone(),
            max_line: opts.max_line,
        })
    }

    fn client_err(&self, source: KafkaError) -> KafkaSourceError {
        KafkaSourceError::Client {
            source_name: self.source.clone(),
            source,
        }
    }

    /// Reads for up to `timeout`, or until `max_bytes` of lines; records grouped by
    /// partition. Records before a partition's resume position are skipped.
    pub fn poll(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Records>, KafkaSourceError> {
        let deadline = Instant::now() + timeout;
        let mut out: Vec<Records> = Vec::new();
        let mut bytes = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.consumer.poll(left);
            if let Some(e) = self.consumer.context().state().error.take() {
                return Err(e);
            }
            let m = match msg {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) if is_fatal(&e) => return Err(self.client_err(e)),
                // Transient (a broker away, a rebalance in flight): librdkafka retries.
                Some(Err(_)) => continue,
            };
            let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
            let generation = {
                let mut st = self.consumer.context().state();
                let generation = st.generation;
                let Some(next) = st.next.get_mut(&(topic.to_string(), partition)) else {
                    continue; // not (or no longer) ours
                };
                if next.is_some_and(|n| offset < n) {
                    continue; // committed already
                }
                *next = Some(offset + 1);
                generation
            };
            let Some(payload) = m.payload() else {
                continue; // a tombstone: no lines
            };
            let i = match out.iter().position(|r| {
                r.partition == partition && r.topic == topic && r.generation == generation
            }) {
                Some(i) => i,
                None => {
                    out.push(Records {
                        topic: topic.to_string(),
                        partition,
                        first: offset,
                        last: offset,
                        generation,
                        chunk: Chunk::whole_lines(
                            format!("kafka:{topic}/{partition}").into(),
                            offset as u64 + 1,
                            0,
                            Vec::new(),
                            0,
                            Vec::new(),
                        ),
                    });
                    out.len() - 1
                }
            };
            let r = &mut out[i];
            r.last = offset;
            bytes += append_lines(&mut r.chunk, payload, self.max_line);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Changes whenever partitions are assigned or revoked.
    pub fn generation(&self) -> u64 {
        self.consumer.context().state().generation
    }

    /// Whether `topic/partition` is assigned to this member now.
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        self.consumer
            .context()
            .state()
            .next
            .contains_key(&(topic.to_string(), partition))
    }

    /// Assigned partitions.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        let mut v: Vec<_> = self
            .consumer
            .context()
            .state()
            .next
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Rebalances seen (assignments and revocations).
    pub fn rebalances(&self) -> u64 {
        self.consumer.context().rebalances.load(Ordering::Relaxed)
    }

    /// Commits `next` (the offset of the next record to read) to the group, without waiting.
    pub fn commit(&self, topic: &str, partition: i32, next: i64) -> Result<(), KafkaSourceError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(next))
            .map_err(|e| self.client_err(e))?;
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| self.client_err(e))
    }

    /// Reads `topic/partition` again from offset `next` (after a commit this member lost to
    /// another, which moved the partition's position).
    pub fn seek(&self, topic: &str, partition: i32, next: i64) -> Result<(), KafkaSourceError> {
        {
            let mut st = self.consumer.context().state();
            match st.next.get_mut(&(topic.to_string(), partition)) {
                Some(n) => *n = Some(next),
                None => return Ok(()), // no longer ours
            }
        }
        self.consumer
            .seek(
                topic,
                partition,
                Offset::Offset(next),
                Duration::from_secs(10),
            )
            .map_err(|e| self.client_err(e))
    }

    /// Records not read yet on the assigned partitions (high watermark − the consumer's
    /// position), asked of the brokers; `None` if they do not answer within `timeout`.
    /// librdkafka's position moves past transaction markers, so a transactional topic read
    /// to its end has a lag of 0 (`tests/kafka.rs`).
    pub fn lag(&self, timeout: Duration) -> Option<u64> {
        let want: Vec<((String, i32), Option<i64>)> = self
            .consumer
            .context()
            .state()
            .next
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let positions = self.consumer.position().ok()?;
        let mut lag = 0u64;
        for ((topic, partition), next) in want {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&topic, partition, timeout)
                .ok()?;
            let position = positions
                .find_partition(&topic, partition)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            let at = position.or(next).unwrap_or(low).max(low);
            lag += (high - at).max(0) as u64;
        }
        Some(lag)
    }
}

/// Errors after which the member cannot go on.
fn is_fatal(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::Fatal
                | C::Authentication
                | C::SaslAuthenticationFailed
                | C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::InvalidConfig
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::append_lines;

    #[test]
    fn records_become_lines_and_long_ones_are_cut() {
        let mut c = Chunk::whole_lines("kafka:t/0".into(), 11, 0, Vec::new(), 0, Vec::new());
        append_lines(&mut c, b"one\r\n", 8);
        append_lines(&mut c, b"two\nthree\n", 8);
        append_lines(&mut c, b"0123456789", 8);
        let lines: Vec<(u64, Vec<u8>)> = c.lines().map(|l| (l.number, l.bytes.to_vec())).collect();
        assert_eq!(
            lines,
            vec![
                (11, b"one".to_vec()),
                (12, b"two".to_vec()),
                (13, b"three".to_vec()),
                (14, b"01234567".to_vec()),
            ]
        );
        assert!(c.is_overlong(14));
        assert_eq!(c.line_count(), 4);
    }

    #[test]
    fn reserved_options_are_refused() {
        let mut options = BTreeMap::new();
        options.insert("enable.auto.commit".to_string(), "true".to_string());
        let opts = KafkaOptions {
            source: "k".into(),
            brokers: "127.0.0.1:1".into(),
            group: "g".into(),
            topics: vec!["t".into()],
            options,
            max_line: 1024,
        };
        let resume: Resume = Arc::new(|_: &str, _: i32| Ok(None));
        let e = KafkaReader::new(&opts, resume).err().expect("refused");
        assert!(e.to_string().contains("enable.auto.commit"), "{e}");
    }
}

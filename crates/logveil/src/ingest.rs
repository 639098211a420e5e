//! Batch ingestion: reads sources, runs every line through parse → privacy → sink on one or
//! more worker threads, then commits partition manifests and returns the run's counts.
//!
//! Threading: the calling thread reads and decompresses input and cuts it into chunks of whole
//! lines; workers each own a parser, a privacy engine (with its caches) and their own Parquet
//! writers, so they share nothing on the hot path. With one thread, the caller does it all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use logveil_model::HourKey;
use logveil_model::{DatasetKind, DropReason, QuarantineReason, QuarantineRow, Rule, RuleCounts};
use logveil_parse::access::{AccessFormat, parse_access};
use logveil_parse::applog::{AppFormat, AppMapping, AppParser};
use logveil_parse::custom::LogFormat;
use logveil_parse::proxy::{ProxyFormat, parse_proxy};
use logveil_parse::session::parse_session;
use logveil_parse::syslog::{SyslogMode, SyslogOptions, parse_syslog, strip_octet_count};
use logveil_privacy::policy::DatasetPolicy;
use logveil_privacy::{Engine, EngineConfig, KeyRing, Outcome, ProxyAggregator, scrub};
use logveil_sink::journal::Journal;
use logveil_sink::{
    AccessBuilder, AppBuilder, DatasetSpec, KeyValue, PartitionWriter, ProxyUsageBuilder,
    QuarantineBuilder, RowBuilder, RunInfo, SessionBuilder, SinkConfig, Storage, SyslogBuilder,
    Withheld, WrittenFile, commit, discard,
};
use logveil_source::{Chunk, Chunker, Input};

/// Input formats (`--format` and `format =` in pipeline configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// nginx/Apache combined log format → `access`.
    Combined,
    /// Common Log Format (no referrer or user agent) → `access`.
    Common,
    /// JSON session events from the dashboard, extension and apps, one per line → `session`.
    SessionJson,
    /// Syslog, RFC 5424 or RFC 3164 (lenient: each line by its own shape) → `syslog`.
    Syslog,
    /// Strict RFC 5424: an invalid message is quarantined, never half-parsed → `syslog`.
    Rfc5424,
    /// RFC 3164 (BSD syslog) and its common variants → `syslog`.
    Rfc3164,
    /// logfmt (`key=value …`) application logs, mapped by `[sources.mapping]` → `app`.
    Logfmt,
    /// JSON application logs of any shape, mapped by `[sources.mapping]` → `app`.
    Json,
    /// Squid native access log (proxy traffic: aggregated metadata only) → `proxy_usage`.
    Squid,
    /// JSON proxy-gateway log (proxy traffic: aggregated metadata only) → `proxy_usage`.
    ProxyJson,
    /// Sniff the first lines and pick one of the above (refuses to guess when unsure).
    Auto,
}

impl Format {
    /// The CLI / config name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::Common => "common",
            Format::SessionJson => "session-json",
            Format::Syslog => "syslog",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Logfmt => "logfmt",
            Format::Json => "json",
            Format::Squid => "squid",
            Format::ProxyJson => "proxy-json",
            Format::Auto => "auto",
        }
    }
}

/// A resolved parser with its settings: what a worker runs on every line.
#[derive(Clone, Debug)]
pub enum ParserSpec {
    Access(AccessFormat),
    /// A custom nginx `log_format` / Apache `LogFormat`, compiled once.
    Custom(Arc<LogFormat>),
    Session,
    Syslog {
        mode: SyslogMode,
        /// Reference clock for RFC 3164 year inference; `None`: the run's start time.
        reference_micros: Option<i64>,
        local_offset_secs: i32,
    },
    App {
        format: AppFormat,
        mapping: Arc<AppMapping>,
        /// Service name written to the `app` column.
        app: Arc<str>,
    },
    Proxy {
        format: ProxyFormat,
        window_seconds: u32,
    },
}

impl ParserSpec {
    /// The parser for a (resolved, non-`auto`) format with default settings.
    pub fn for_format(format: Format, app: &str) -> Option<ParserSpec> {
        let syslog = |mode| ParserSpec::Syslog {
            mode,
            reference_micros: None,
            local_offset_secs: 0,
        };
        let app_spec = |format| ParserSpec::App {
            format,
            mapping: Arc::new(AppMapping::default()),
            app: app.into(),
        };
        let proxy = |format| ParserSpec::Proxy {
            format,
            window_seconds: logveil_privacy::proxy_usage::DEFAULT_WINDOW_SECONDS,
        };
        Some(match format {
            Format::Combined => ParserSpec::Access(AccessFormat::Combined),
            Format::Common => ParserSpec::Access(AccessFormat::Common),
            Format::SessionJson => ParserSpec::Session,
            Format::Syslog => syslog(SyslogMode::Auto),
            Format::Rfc5424 => syslog(SyslogMode::Rfc5424),
            Format::Rfc3164 => syslog(SyslogMode::Rfc3164),
            Format::Logfmt => app_spec(AppFormat::Logfmt),
            Format::Json => app_spec(AppFormat::Json),
            Format::Squid => proxy(ProxyFormat::Squid),
            Format::ProxyJson => proxy(ProxyFormat::Json),
            Format::Auto => return None,
        })
    }

    pub fn kind(&self) -> DatasetKind {
        match self {
            ParserSpec::Access(_) | ParserSpec::Custom(_) => DatasetKind::Access,
            ParserSpec::Session => DatasetKind::Session,
            ParserSpec::Syslog { .. } => DatasetKind::Syslog,
            ParserSpec::App { .. } => DatasetKind::App,
            ParserSpec::Proxy { .. } => DatasetKind::ProxyUsage,
        }
    }
}

/// One source to ingest into one dataset.
#[derive(Clone, Debug)]
pub struct Job {
    /// Position of the job in its run (makes file names unique even for equal names).
    pub index: usize,
    pub name: String,
    pub parser: ParserSpec,
    pub dataset: DatasetSpec,
    /// The dataset's privacy policy (declared or built-in).
    pub policy: Arc<DatasetPolicy>,
    pub inputs: Vec<Input>,
    /// Follow the inputs (glob patterns) as they grow (`stream.rs`) instead of reading once.
    pub follow: bool,
    /// Followed inputs: lines that identify a file.
    pub fingerprint_lines: usize,
    /// Network sources: what they listen on (they read their spool instead of `inputs`).
    pub listen: Option<crate::listen::Listen>,
    /// Kafka sources: brokers, group and topics.
    pub kafka: Option<crate::kafka::KafkaSpec>,
    /// NATS JetStream sources: server, stream and consumer.
    pub nats: Option<crate::nats::NatsSpec>,
}

/// Settings shared by all jobs of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub threads: usize,
    pub chunk_bytes: usize,
    pub max_line_bytes: usize,
    /// How far after the run's clock an event may be (µs); later ones are quarantined as
    /// `future_timestamp`.
    pub max_future_micros: i64,
    pub sink: SinkConfig,
    pub engine: EngineConfig,
    pub quarantine: DatasetSpec,
    /// Maximum bytes of a scrubbed line kept in quarantine.
    pub quarantine_line_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 1,
            chunk_bytes: 2 << 20,
            max_line_bytes: 64 * 1024,
            max_future_micros: DEFAULT_MAX_FUTURE_MICROS,
            sink: SinkConfig::default(),
            engine: EngineConfig::default(),
            quarantine: DatasetSpec::with_defaults(DatasetKind::Quarantine),
            quarantine_line_bytes: 512,
        }
    }
}

/// Counts of a run; the `--summary-json` object is made from these.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub lines_read: u64,
    pub bytes_read: u64,
    pub records_written: BTreeMap<String, u64>,
    pub dropped: BTreeMap<&'static str, u64>,
    pub quarantined: BTreeMap<&'static str, u64>,
    /// Unknown JSON fields removed from session events, and fields of application logs that
    /// the mapping does not name (the records themselves are kept).
    pub unknown_fields_dropped: u64,
    /// Proxy requests folded into `proxy_usage` aggregates.
    pub aggregated: u64,
    /// Partitions whose manifest was created or extended: (dataset, hours since epoch).
    pub partitions: BTreeSet<(String, i64)>,
    pub files: u64,
    /// Privacy rule applications per dataset.
    pub rules: BTreeMap<String, RuleCounts>,
    /// Partitions the privacy self-check withheld.
    pub withheld: Vec<Withheld>,
}

impl Counts {
    pub fn merge(&mut self, o: &Counts) {
        self.lines_read += o.lines_read;
        self.bytes_read += o.bytes_read;
        for (k, v) in &o.records_written {
            *self.records_written.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.dropped {
            *self.dropped.entry(k).or_default() += v;
        }
        for (k, v) in &o.quarantined {
            *self.quarantined.entry(k).or_default() += v;
        }
        self.unknown_fields_dropped += o.unknown_fields_dropped;
        self.aggregated += o.aggregated;
        self.partitions.extend(o.partitions.iter().cloned());
        self.files += o.files;
        for (k, v) in &o.rules {
            self.rules.entry(k.clone()).or_default().merge(v);
        }
        self.withheld.extend(o.withheld.iter().cloned());
    }

    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }
}

/// Live progress, read by the binary's progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
}

/// What the writers of one worker produced.
#[derive(Default)]
pub(crate) struct Output {
    data: Vec<WrittenFile>,
    quarantine: Vec<WrittenFile>,
    /// Partitions (data or quarantine) the privacy self-check withheld.
    withheld: Vec<Withheld>,
}

impl Output {
    /// Removes the finished files of work that will not be committed (best effort).
    pub(crate) fn discard(&self, storage: &Storage) {
        let _ = discard(storage, &self.data);
        let _ = discard(storage, &self.quarantine);
    }
}

enum DataWriter {
    Access(PartitionWriter<AccessBuilder>),
    Session(PartitionWriter<SessionBuilder>),
    Syslog(PartitionWriter<SyslogBuilder>),
    App(PartitionWriter<AppBuilder>),
    Proxy(PartitionWriter<ProxyUsageBuilder>, ProxyAggregator),
}

/// A worker's own parser state.
enum LineParser {
    Access(AccessFormat),
    Custom(Arc<LogFormat>),
    Session,
    Syslog(SyslogMode, SyslogOptions),
    App {
        parser: Box<AppParser>,
        app: Arc<str>,
        keep: Vec<String>,
    },
    Proxy(ProxyFormat),
}

/// What became of one line.
enum LineOutcome {
    Written,
    /// A proxy record folded into an aggregate.
    Aggregated,
    Dropped(DropReason),
    Quarantined(QuarantineReason, Detail),
}

impl<R> From<Outcome<R>> for LineOutcome {
    fn from(o: Outcome<R>) -> Self {
        match o {
            Outcome::Keep(_) => LineOutcome::Written,
            Outcome::Drop(r) => LineOutcome::Dropped(r),
            Outcome::Quarantine { reason, detail } => {
                LineOutcome::Quarantined(reason, Detail::Rule(detail))
            }
        }
    }
}

fn parse_failed(e: logveil_parse::ParseError) -> LineOutcome {
    LineOutcome::Quarantined(e.reason, Detail::Parse(e))
}

/// Default of `--max-future`: one day, beyond any clock skew or time-zone mistake that still
/// yields a usable time.
pub const DEFAULT_MAX_FUTURE_MICROS: i64 = logveil_model::time::MICROS_PER_DAY;

const FUTURE_DETAIL: &str =
    "event time is later than the clock allows (--max-future); fix the sender's clock";

/// Which event times a run accepts: not in a partition that has already expired (late data
/// is dropped, never resurrecting a swept partition), not too far in the future.
#[derive(Clone, Copy)]
struct TimeWindow {
    now: i64,
    retention_micros: i64,
    max_future_micros: i64,
}

impl TimeWindow {
    /// `None` if `ts` is acceptable, otherwise what becomes of its line.
    #[inline]
    fn check(&self, ts: i64) -> Option<LineOutcome> {
        if ts > self.now.saturating_add(self.max_future_micros) {
            return Some(LineOutcome::Quarantined(
                QuarantineReason::FutureTimestamp,
                Detail::Rule(FUTURE_DETAIL),
            ));
        }
        let end = HourKey::of_micros(ts).end_micros();
        (end.saturating_add(self.retention_micros) <= self.now)
            .then_some(LineOutcome::Dropped(DropReason::Expired))
    }
}

/// Test hook, in debug builds only: with `LOGVEIL_TEST_LEAK=1`, a request for `/__leak__`
/// keeps its raw client address as the path, so that tests can prove the privacy self-check
/// withholds the partition. Release builds have no such path.
#[cfg(debug_assertions)]
fn leak_for_tests<'a>(o: &mut Outcome<logveil_model::AccessRow<'a>>, client: &'a [u8]) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("LOGVEIL_TEST_LEAK").is_some_and(|v| v == "1"))
        && let Outcome::Keep(r) = o
        && r.path == Some("/__leak__")
    {
        r.path = std::str::from_utf8(client).ok();
    }
}

/// Pushes a kept row; other outcomes pass through.
fn write_row<B: RowBuilder>(
    w: &mut PartitionWriter<B>,
    o: Outcome<B::Row<'_>>,
) -> Result<LineOutcome> {
    if let Outcome::Keep(row) = &o {
        w.push(row)?;
    }
    Ok(o.into())
}

/// How much of a bad line the quarantine may keep, by format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuarantineText {
    /// Access logs: mask client, ident and user, then scrub.
    MaskIdentity,
    /// Key/value formats (logfmt, JSON application logs, syslog structured data): mask every
    /// value, keep keys and structure, then scrub.
    MaskValues,
    /// Proxy traffic and custom layouts: keep nothing of the line.
    Withhold,
}

pub(crate) struct Worker<'r> {
    job: &'r Job,
    opts: &'r RunOptions,
    engine: Engine,
    parser: LineParser,
    data: DataWriter,
    quarantine: PartitionWriter<QuarantineBuilder>,
    quarantine_text: QuarantineText,
    counts: Counts,
    rules: RuleCounts,
    written: u64,
    scrub_buf: String,
    detail_buf: String,
    pre_buf: Vec<u8>,
    now_micros: i64,
    window: TimeWindow,
}

impl<'r> Worker<'r> {
    fn new(ctx: &'r RunContext, job: &'r Job, id: usize) -> Worker<'r> {
        Worker::new_at(ctx, job, id, ctx.now_micros)
    }

    /// A worker whose clock (time window, quarantine time, syslog year) is `now`: a
    /// long-running source makes one per commit epoch with the current time.
    pub(crate) fn new_at(ctx: &'r RunContext, job: &'r Job, id: usize, now: i64) -> Worker<'r> {
        // Unique per run, job and worker: no two writers can produce the same file name.
        let prefix = format!("{}-{}-{}-w{id}", ctx.run_id, job.index, sanitize(&job.name));
        let footer = |dataset: &DatasetSpec| {
            vec![
                KeyValue::new(
                    "logveil.version".into(),
                    env!("CARGO_PKG_VERSION").to_string(),
                ),
                KeyValue::new(
                    "logveil.schema_version".into(),
                    logveil_model::SCHEMA_VERSION.to_string(),
                ),
                KeyValue::new("logveil.dataset".into(), dataset.name.clone()),
                KeyValue::new(
                    "logveil.dev_key".into(),
                    ctx.ring.is_development().to_string(),
                ),
                KeyValue::new("logveil.run_id".into(), ctx.run_id.clone()),
            ]
        };
        // Every partition lies in one key epoch: its files name that epoch's key.
        let ring = Arc::new(ctx.ring.clone());
        let key_footer: logveil_sink::PartitionFooter = Arc::new(move |hour: HourKey| {
            vec![KeyValue::new(
                "logveil.key_id".into(),
                ring.key_at(hour.start_micros()).id().to_string(),
            )]
        });
        let opts = &ctx.opts;
        macro_rules! writer {
            () => {
                PartitionWriter::new(
                    ctx.storage.clone(),
                    job.dataset.clone(),
                    opts.sink.clone(),
                    prefix.clone(),
                    footer(&job.dataset),
                )
                .with_partition_footer(key_footer.clone())
                .with_null_columns(job.policy.dropped_columns())
            };
        }
        let (parser, data, quarantine_text) = match &job.parser {
            ParserSpec::Access(f) => (
                LineParser::Access(*f),
                DataWriter::Access(writer!()),
                QuarantineText::MaskIdentity,
            ),
            // A custom layout puts identities anywhere (and may log any header): keep
            // nothing of a bad line; the detail still says where it went wrong.
            ParserSpec::Custom(f) => (
                LineParser::Custom(f.clone()),
                DataWriter::Access(writer!()),
                QuarantineText::Withhold,
            ),
            ParserSpec::Session => (
                LineParser::Session,
                DataWriter::Session(writer!()),
                QuarantineText::MaskValues,
            ),
            ParserSpec::Syslog {
                mode,
                reference_micros,
                local_offset_secs,
            } => (
                LineParser::Syslog(
                    *mode,
                    SyslogOptions {
                        reference_micros: reference_micros.unwrap_or(now),
                        local_offset_secs: *local_offset_secs,
                    },
                ),
                DataWriter::Syslog(writer!()),
                QuarantineText::MaskValues,
            ),
            ParserSpec::App {
                format,
                mapping,
                app,
            } => (
                LineParser::App {
                    parser: Box::new(AppParser::new((**mapping).clone(), *format)),
                    app: app.clone(),
                    keep: mapping.keep.clone(),
                },
                DataWriter::App(writer!()),
                QuarantineText::MaskValues,
            ),
            ParserSpec::Proxy {
                format,
                window_seconds,
            } => (
                LineParser::Proxy(*format),
                DataWriter::Proxy(
                    writer!(),
                    ProxyAggregator::new(
                        *window_seconds,
                        logveil_privacy::proxy_usage::DEFAULT_MAX_GROUPS,
                    ),
                ),
                QuarantineText::Withhold,
            ),
        };
        let qcfg = SinkConfig {
            batch_rows: 4096,
            max_open_partitions: 4,
            ..opts.sink.clone()
        };
        Worker {
            job,
            opts,
            engine: Engine::new(&ctx.ring, opts.engine)
                .with_policy(job.policy.clone())
                .with_suppressor(ctx.suppressor.clone()),
            parser,
            data,
            quarantine: PartitionWriter::new(
                ctx.storage.clone(),
                opts.quarantine.clone(),
                qcfg,
                prefix,
                footer(&opts.quarantine),
            )
            .with_partition_footer(key_footer),
            quarantine_text,
            counts: Counts::default(),
            rules: RuleCounts::default(),
            written: 0,
            scrub_buf: String::new(),
            detail_buf: String::new(),
            pre_buf: Vec::new(),
            now_micros: now,
            window: TimeWindow {
                now,
                retention_micros: logveil_model::time::days_micros(job.dataset.retention_days),
                max_future_micros: opts.max_future_micros,
            },
        }
    }

    fn quarantine(
        &mut self,
        chunk: &Chunk,
        number: u64,
        offset: u64,
        bytes: &[u8],
        reason: QuarantineReason,
    ) -> Result<()> {
        *self.counts.quarantined.entry(reason.as_str()).or_default() += 1;
        let mut bytes = bytes;
        if reason == QuarantineReason::LineTooLong {
            // The line was cut mid-way: its last word may be half of something sensitive
            // that the scrubber would no longer recognise. Drop it.
            let keep = bytes
                .iter()
                .rposition(|b| matches!(b, b' ' | b'\t' | b'"' | b','))
                .unwrap_or(0);
            bytes = &bytes[..keep];
        }
        match self.quarantine_text {
            QuarantineText::MaskIdentity => {
                mask_access_identity(bytes, &mut self.pre_buf);
                scrub::scrub_text(
                    &self.pre_buf,
                    self.opts.quarantine_line_bytes,
                    &mut self.scrub_buf,
                );
            }
            QuarantineText::MaskValues => {
                mask_values(bytes, &mut self.pre_buf);
                scrub::scrub_text(
                    &self.pre_buf,
                    self.opts.quarantine_line_bytes,
                    &mut self.scrub_buf,
                );
            }
            QuarantineText::Withhold => {
                self.scrub_buf.clear();
                self.scrub_buf.push_str(WITHHELD);
            }
        }
        self.quarantine.push(&QuarantineRow {
            ingested_at_micros: self.now_micros,
            dataset: &self.job.dataset.name,
            source: &chunk.source,
            line_number: number,
            byte_offset: offset,
            reason: reason.as_str(),
            detail: &self.detail_buf,
            line: &self.scrub_buf,
        })?;
        Ok(())
    }

    /// Parses one line, runs it through the privacy engine and writes what is kept. An event
    /// whose time the window refuses never reaches the engine (so no rule counts it).
    fn handle(&mut self, line: &[u8]) -> Result<LineOutcome> {
        let engine = &mut self.engine;
        let win = self.window;
        macro_rules! in_window {
            ($ts:expr) => {
                if let Some(out) = win.check($ts) {
                    return Ok(out);
                }
            };
        }
        Ok(match (&mut self.parser, &mut self.data) {
            (LineParser::Access(f), DataWriter::Access(w)) => match parse_access(line, *f) {
                Ok(rec) => {
                    in_window!(rec.ts_micros);
                    #[allow(unused_mut)]
                    let mut out = engine.access(&rec);
                    #[cfg(debug_assertions)]
                    leak_for_tests(&mut out, rec.client);
                    write_row(w, out)?
                }
                Err(e) => parse_failed(e),
            },
            (LineParser::Custom(f), DataWriter::Access(w)) => match f.parse(line) {
                Ok(rec) => {
                    in_window!(rec.ts_micros);
                    write_row(w, engine.access(&rec))?
                }
                Err(e) => parse_failed(e),
            },
            (LineParser::Session, DataWriter::Session(w)) => match parse_session(line) {
                Ok(ev) => {
                    in_window!(ev.ts_micros);
                    self.counts.unknown_fields_dropped += ev.unknown_fields as u64;
                    self.rules.add(Rule::Minimise, ev.unknown_fields as u64);
                    write_row(w, engine.session(&ev))?
                }
                Err(e) => parse_failed(e),
            },
            (LineParser::Syslog(mode, o), DataWriter::Syslog(w)) => {
                let frame = strip_octet_count(line).unwrap_or(line);
                match parse_syslog(frame, *mode, o) {
                    Ok(m) => {
                        in_window!(m.ts_micros.unwrap_or(self.now_micros));
                        write_row(w, engine.syslog(&m, self.now_micros))?
                    }
                    Err(e) => parse_failed(e),
                }
            }
            (LineParser::App { parser, app, keep }, DataWriter::App(w)) => {
                match parser.parse(line) {
                    Ok(rec) => {
                        in_window!(rec.ts_micros);
                        self.counts.unknown_fields_dropped += u64::from(rec.unmapped_fields);
                        self.rules
                            .add(Rule::Minimise, u64::from(rec.unmapped_fields));
                        write_row(w, engine.app(&rec, app, keep))?
                    }
                    Err(e) => parse_failed(e),
                }
            }
            (LineParser::Proxy(f), DataWriter::Proxy(w, agg)) => match parse_proxy(line, *f) {
                Ok(rec) => {
                    in_window!(rec.ts_micros);
                    match engine.proxy(&rec) {
                        Outcome::Keep(facts) => {
                            if agg.is_full() {
                                let written = &mut self.written;
                                agg.drain(engine.key_ids(), |row| {
                                    *written += 1;
                                    w.push(row)
                                })?;
                            }
                            agg.add(&rec, facts);
                            LineOutcome::Aggregated
                        }
                        other => other.into(),
                    }
                }
                Err(e) => parse_failed(e),
            },
            _ => anyhow::bail!("internal error: parser and writer of a worker disagree"),
        })
    }

    pub(crate) fn process(&mut self, chunk: &Chunk) -> Result<()> {
        let mut overlong = chunk.overlong.iter().peekable();
        self.counts.bytes_read += chunk.data.len() as u64;
        for line in chunk.lines() {
            self.counts.lines_read += 1;
            if overlong.peek().is_some_and(|o| o.0 == line.number) {
                overlong.next();
                self.detail_buf.clear();
                let _ = write!(
                    self.detail_buf,
                    "line longer than the maximum of {} bytes (--max-line-bytes); its first bytes are kept",
                    self.opts.max_line_bytes
                );
                self.quarantine(
                    chunk,
                    line.number,
                    line.offset,
                    line.bytes,
                    QuarantineReason::LineTooLong,
                )?;
                continue;
            }
            if line.bytes.iter().all(|b| b.is_ascii_whitespace()) {
                *self.counts.dropped.entry("blank_line").or_default() += 1;
                continue;
            }
            match self.handle(line.bytes)? {
                LineOutcome::Written => self.written += 1,
                LineOutcome::Aggregated => {
                    self.counts.aggregated += 1;
                    self.rules.bump(Rule::ProxyAggregate);
                }
                LineOutcome::Dropped(r) => self.count_drop(r),
                LineOutcome::Quarantined(reason, detail) => {
                    self.detail_buf.clear();
                    let _ = match detail {
                        Detail::Rule(text) => self.detail_buf.write_str(text),
                        Detail::Parse(e) => write!(self.detail_buf, "{e}"),
                    };
                    self.quarantine(chunk, line.number, line.offset, line.bytes, reason)?;
                }
            }
        }
        Ok(())
    }

    fn count_drop(&mut self, r: DropReason) {
        *self.counts.dropped.entry(r.as_str()).or_default() += 1;
        self.rules.bump(r.rule());
    }

    pub(crate) fn finish(mut self) -> Result<(Counts, Output)> {
        let data = match self.data {
            DataWriter::Access(w) => w.finish_checked()?,
            DataWriter::Session(w) => w.finish_checked()?,
            DataWriter::Syslog(w) => w.finish_checked()?,
            DataWriter::App(w) => w.finish_checked()?,
            DataWriter::Proxy(mut w, mut agg) => {
                let written = &mut self.written;
                agg.drain(self.engine.key_ids(), |row| {
                    *written += 1;
                    w.push(row)
                })?;
                w.finish_checked()?
            }
        };
        let quarantine = self.quarantine.finish_checked()?;
        let mut withheld = data.withheld;
        withheld.extend(quarantine.withheld);
        let (data, quarantine) = (data.files, quarantine.files);
        self.counts
            .records_written
            .insert(self.job.dataset.name.clone(), self.written);
        self.rules.merge(&self.engine.take_rule_counts());
        self.counts
            .rules
            .insert(self.job.dataset.name.clone(), self.rules);
        Ok((
            self.counts,
            Output {
                data,
                quarantine,
                withheld,
            },
        ))
    }
}

/// What the quarantine keeps of a bad proxy-log or custom-layout line: nothing.
const WITHHELD: &str = "<withheld: lines of this format are not kept; see detail>";

/// Masks every value of a key/value line, whatever its shape, so that identifiers the
/// scrubber cannot recognise (account ids, device names, MAC addresses, user names) do not
/// survive in quarantine: a quoted string not followed by `:` (i.e. not a JSON key) becomes
/// `"…"`, and a bare token after `=` or `:` becomes `…`. Keys, punctuation and bare words
/// stay, so the line's structure remains visible.
fn mask_values(line: &[u8], out: &mut Vec<u8>) {
    const MASK: &[u8] = "…".as_bytes();
    out.clear();
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        if b == b'"' {
            // Find the closing quote (backslash escapes), or the end of the line.
            let mut j = i + 1;
            while let Some(&c) = line.get(j) {
                match c {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            let end = j.min(line.len());
            let is_key = line
                .get(end + 1..)
                .and_then(|r| r.iter().find(|c| !c.is_ascii_whitespace()))
                == Some(&b':');
            out.push(b'"');
            if is_key {
                out.extend_from_slice(&line[i + 1..end]);
            } else {
                out.extend_from_slice(MASK);
            }
            if end < line.len() {
                out.push(b'"');
            }
            i = end + 1;
        } else if b == b'=' || b == b':' {
            out.push(b);
            i += 1;
            while line.get(i).is_some_and(|c| *c == b' ') {
                out.push(b' ');
                i += 1;
            }
            let start = i;
            while line.get(i).is_some_and(|c| {
                !matches!(c, b' ' | b'\t' | b',' | b'}' | b']' | b'"' | b'[' | b'{')
            }) {
                i += 1;
            }
            if i > start {
                out.extend_from_slice(MASK);
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// In a quarantined access line, the first field is the client address and the next two
/// (before the `[time]`) are ident and user name, whatever shape they have: mask them before
/// scrubbing, so that not even an unusual-looking address or user name survives.
fn mask_access_identity(line: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut f = line.splitn(4, |b| *b == b' ');
    let (client, ident, user, rest) = (f.next(), f.next(), f.next(), f.next());
    match (client, ident, user, rest) {
        (Some(_), Some(_), Some(_), Some(rest)) if rest.starts_with(b"[") => {
            out.extend_from_slice(b"<client> - - ");
            out.extend_from_slice(rest);
        }
        (Some(_), Some(_), ..) => {
            out.extend_from_slice(b"<client>");
            out.extend_from_slice(&line[memchr::memchr(b' ', line).unwrap_or(line.len())..]);
        }
        _ => out.extend_from_slice(line),
    }
}

/// Why a line is quarantined, formatted into the worker's reusable buffer (no allocation per
/// bad line). Neither variant ever holds input bytes.
enum Detail {
    Rule(&'static str),
    Parse(logveil_parse::ParseError),
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if s.is_empty() { "src".into() } else { s }
}

/// Everything a run shares.
pub struct RunContext {
    pub storage: Storage,
    pub ring: KeyRing,
    /// Subjects whose events are dropped (the root's suppression list).
    pub suppressor: Option<Arc<logveil_privacy::suppress::Suppressor>>,
    pub run_id: String,
    pub now_micros: i64,
    /// `now_micros` was set (`--now`, `LOGVEIL_NOW`, `[runtime] now`): commits judge expiry
    /// by it. Otherwise they judge by the clock at commit time, so a long run never commits
    /// into a partition that expired (and may have been swept) while it ran.
    pub clock_fixed: bool,
    pub opts: RunOptions,
    pub progress: Arc<Progress>,
}

/// Runs one job; returns its counts (manifests are committed before returning).
pub fn run_job(ctx: &RunContext, job: &Job) -> Result<Counts> {
    let results = if ctx.opts.threads <= 1 {
        let mut w = Worker::new(ctx, job, 0);
        for input in &job.inputs {
            let mut chunker = open_chunker(ctx, input)?;
            while let Some(chunk) = chunker.next_chunk()? {
                note_progress(ctx, &chunk);
                w.process(&chunk)?;
            }
        }
        vec![w.finish()?]
    } else {
        run_parallel(ctx, job)?
    };
    commit_results(ctx, job, results, None)
}

/// What a commit records about the run: its id, key epochs, development key, and the clock
/// expiry is judged by (the commit's time, unless the run's clock is fixed).
pub(crate) fn run_info(ctx: &RunContext) -> RunInfo {
    RunInfo {
        run_id: ctx.run_id.clone(),
        key_epochs: ctx
            .ring
            .epochs()
            .into_iter()
            .map(|e| (e.from, e.key_id))
            .collect(),
        dev_key: ctx.ring.is_development(),
        now_micros: if ctx.clock_fixed {
            ctx.now_micros
        } else {
            ctx.now_micros.max(crate::now_micros())
        },
    }
}

/// Test hook, in debug builds only: `LOGVEIL_TEST_CRASH_AT=journaled:N` aborts the process
/// right after the Nth epoch was recorded in its journal, before anything is published (a
/// kill -9 mid-commit). Release builds have no such hook.
fn crash_after_journal() {
    if !cfg!(debug_assertions) {
        return;
    }
    static SEEN: AtomicU64 = AtomicU64::new(0);
    if let Some(n) = std::env::var("LOGVEIL_TEST_CRASH_AT")
        .ok()
        .and_then(|s| s.strip_prefix("journaled:")?.parse::<u64>().ok())
        && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == n
    {
        std::process::abort();
    }
}

/// One commit epoch of a resumable source: its journal, the epoch number and the source
/// position after the epoch's lines.
pub(crate) struct Epoch<'j> {
    pub journal: &'j mut Journal,
    pub epoch: u64,
    pub position: serde_json::Value,
}

/// Commits what the workers of a job produced: withholds whole partitions the self-check
/// failed, then commits each dataset's files. With an epoch, the files are recorded in the
/// source's journal first and the position after them last, so that a crash anywhere is
/// completed by the next start, exactly once (the staged files are then never discarded).
pub(crate) fn commit_results(
    ctx: &RunContext,
    job: &Job,
    results: Vec<(Counts, Output)>,
    mut epoch: Option<Epoch<'_>>,
) -> Result<Counts> {
    // Every worker succeeded: publish all files, then record them in the manifests.
    let mut counts = Counts::default();
    let mut data = Vec::new();
    let mut quarantine = Vec::new();
    let mut withheld = Vec::new();
    for (c, o) in results {
        counts.merge(&c);
        data.extend(o.data);
        quarantine.extend(o.quarantine);
        withheld.extend(o.withheld);
    }
    // A partition one worker withheld is withheld whole: other workers' files of it go too.
    let failed: BTreeSet<(String, i64)> = withheld
        .iter()
        .map(|w| (w.dataset.clone(), w.partition.0))
        .collect();
    if !failed.is_empty() {
        for (spec, files) in [
            (&job.dataset, &mut data),
            (&ctx.opts.quarantine, &mut quarantine),
        ] {
            let (gone, keep): (Vec<WrittenFile>, Vec<WrittenFile>) = std::mem::take(files)
                .into_iter()
                .partition(|f| failed.contains(&(spec.name.clone(), f.partition.0)));
            let _ = discard(&ctx.storage, &gone);
            for f in &gone {
                if let Some(w) = withheld
                    .iter_mut()
                    .find(|w| w.dataset == spec.name && w.partition == f.partition)
                {
                    w.rows += f.rows;
                }
            }
            *files = keep;
        }
        for w in &withheld {
            counts
                .rules
                .entry(w.dataset.clone())
                .or_default()
                .add(Rule::SelfCheck, w.rows);
            if let Some(n) = counts.records_written.get_mut(&w.dataset) {
                *n = n.saturating_sub(w.rows);
            }
        }
        counts.withheld.extend(withheld);
    }
    let run = run_info(ctx);
    if let Some(e) = epoch.as_mut() {
        let files: Vec<(&str, &WrittenFile)> = data
            .iter()
            .map(|f| (job.dataset.name.as_str(), f))
            .chain(
                quarantine
                    .iter()
                    .map(|f| (ctx.opts.quarantine.name.as_str(), f)),
            )
            .collect();
        e.journal
            .begin(e.epoch, e.position.clone(), &files, &run)
            .context("recording the commit in the source's journal")?;
        crash_after_journal();
    }
    // Each dataset's files enter their partitions under the dataset's lock; a partition that
    // expired (or is being swept) meanwhile is refused whole and its rows counted as late.
    for (i, (spec, files)) in [(&job.dataset, &data), (&ctx.opts.quarantine, &quarantine)]
        .into_iter()
        .enumerate()
    {
        // On error, commit() has removed the files it did not record; the quarantine's
        // files, not yet committed when the data's commit fails, go too.
        let committed = if epoch.is_some() {
            logveil_sink::manifest::commit_recorded(&ctx.storage, spec, files, &run)
        } else {
            commit(&ctx.storage, spec, files, &run)
        };
        let report = match committed {
            Ok(r) => r,
            Err(e) => {
                // With a journal the staged files stay: the next start completes the commit.
                if i == 0 && epoch.is_none() {
                    let _ = discard(&ctx.storage, &quarantine);
                }
                return Err(e).with_context(|| format!("committing dataset {}", spec.name));
            }
        };
        let refused: BTreeSet<i64> = report.expired.iter().map(|(k, _)| k.0).collect();
        for (_, rows) in &report.expired {
            *counts
                .dropped
                .entry(DropReason::Expired.as_str())
                .or_default() += rows;
            counts
                .rules
                .entry(spec.name.clone())
                .or_default()
                .add(Rule::Expired, *rows);
            if let Some(n) = counts.records_written.get_mut(&spec.name) {
                *n = n.saturating_sub(*rows);
            }
        }
        for f in files.iter().filter(|f| !refused.contains(&f.partition.0)) {
            counts.files += 1;
            counts.partitions.insert((spec.name.clone(), f.partition.0));
        }
    }
    if let Some(e) = epoch {
        e.journal
            .finish(e.epoch, e.position)
            .context("recording the committed position in the source's journal")?;
    }
    Ok(counts)
}

const STOPPED: &str = "stopped:";

/// Runs a job on `ctx.opts.threads` workers. If anything fails, every worker stops and
/// every file of the job is discarded: nothing of a failed job becomes visible.
fn run_parallel(ctx: &RunContext, job: &Job) -> Result<Vec<(Counts, Output)>> {
    let threads = ctx.opts.threads;
    let failed = AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(threads * 2);
    let mut results = Vec::with_capacity(threads);
    let mut first_err = None;
    std::thread::scope(|s| {
        let failed = &failed;
        let handles: Vec<_> = (0..threads)
            .map(|id| {
                let rx = rx.clone();
                s.spawn(move || -> Result<(Counts, Output)> {
                    let mut w = Worker::new(ctx, job, id);
                    for chunk in rx {
                        if failed.load(Ordering::Relaxed) {
                            anyhow::bail!("{STOPPED} another part of this job failed");
                        }
                        if let Err(e) = w.process(&chunk) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    w.finish()
                        .inspect_err(|_| failed.store(true, Ordering::Relaxed))
                })
            })
            .collect();
        drop(rx);
        let read = (|| -> Result<()> {
            for input in &job.inputs {
                let mut chunker = open_chunker(ctx, input)?;
                while let Some(chunk) = chunker.next_chunk()? {
                    note_progress(ctx, &chunk);
                    if failed.load(Ordering::Relaxed) || tx.send(chunk).is_err() {
                        return Ok(()); // a worker failed; its error is reported
                    }
                }
            }
            Ok(())
        })();
        if read.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        drop(tx);
        let mut errors: Vec<anyhow::Error> = read.err().into_iter().collect();
        for h in handles {
            match h.join() {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(anyhow::anyhow!("a worker thread panicked")),
            }
        }
        // Report the root cause, not a worker's "stopped" echo of it.
        let root = errors
            .iter()
            .position(|e| !e.to_string().starts_with(STOPPED));
        first_err = root
            .or((!errors.is_empty()).then_some(0))
            .map(|i| errors.swap_remove(i));
    });
    if let Some(e) = first_err {
        for (_, o) in &results {
            let _ = discard(&ctx.storage, &o.data);
            let _ = discard(&ctx.storage, &o.quarantine);
        }
        return Err(e);
    }
    Ok(results)
}

fn open_chunker(ctx: &RunContext, input: &Input) -> Result<Chunker> {
    let reader = input.open()?;
    Ok(Chunker::new(
        reader,
        input.name().into(),
        ctx.opts.chunk_bytes,
        ctx.opts.max_line_bytes,
    ))
}

pub(crate) fn note_progress(ctx: &RunContext, chunk: &Chunk) {
    ctx.progress
        .bytes
        .fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
    ctx.progress
        .lines
        .fetch_add(chunk.line_count(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::mask_values;

    fn masked(s: &str) -> String {
        let mut out = Vec::new();
        mask_values(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_are_masked_keys_kept() {
        assert_eq!(
            masked(r#"{"account_id":"acc_8677","n": 42,"tags":["dev-1"],"ok":true"#),
            r#"{"account_id":"…","n": …,"tags":["…"],"ok":…"#
        );
        assert_eq!(
            masked(r#"ts=2026 device_id=DEV-42 msg="hi \"there\"" flag"#),
            r#"ts=… device_id=… msg="…" flag"#
        );
        assert_eq!(
            masked(r#"<165>1 x [meta deviceId="DEV-ABC" user="al\"ice"] bad"#),
            r#"<165>1 x [meta deviceId="…" user="…"] bad"#
        );
        assert_eq!(masked(r#"msg="unterminated DEV-1"#), r#"msg="…"#);
    }
}

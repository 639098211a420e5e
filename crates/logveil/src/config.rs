//! Pipeline configuration (`logveil run PIPELINE.toml`): where output goes, which keys to use,
//! dataset retention, privacy settings, and the sources to ingest. Relative paths are resolved
//! against the current directory, as with Vector. Every setting is documented in
//! `docs/CONFIGURATION.md`; unknown keys are errors, so a typo never silently weakens privacy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use std::sync::Arc;

use logveil_model::DatasetKind;
use logveil_privacy::policy::{DatasetPolicy, PolicyInput};
use logveil_privacy::pseudonym::Truncation;
use logveil_sink::DatasetSpec;
use logveil_source::Input;
use serde::Deserialize;

use crate::ingest::{Format, Job};
use crate::listen::{HttpListen, Listen};
use crate::sources::{MappingConf, SourceSettings};
use std::net::SocketAddr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// The file's text, to turn byte spans into line numbers.
    #[serde(skip)]
    pub text: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub output: Output,
    #[serde(default)]
    pub keys: Keys,
    #[serde(default)]
    pub privacy: Privacy,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetConf>,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(rename = "sources")]
    pub sources: Vec<SourceConf>,
    /// `[rollups.NAME]`: k-anonymous aggregates (docs/CONFIGURATION.md, "Rollups").
    #[serde(default)]
    pub rollups: BTreeMap<String, Spanned<RollupConf>>,
}

/// `[rollups.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConf {
    /// The raw dataset aggregated.
    pub dataset: String,
    /// `hour` or `day`.
    pub window: String,
    pub group_by: Vec<String>,
    /// The pseudonym column that identifies a subject.
    pub subject: String,
    #[serde(default)]
    pub distinct: Vec<String>,
    pub quantiles: Option<String>,
    pub k: Option<u32>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Root of the datasets: a directory, or object storage (`s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`).
    pub root: PathBuf,
    /// Object storage options (`object_store` keys: `aws_endpoint`, `aws_region`,
    /// `aws_allow_http`…); credentials come from the environment.
    #[serde(default)]
    pub storage: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Key ring written by `logveil keygen`.
    pub file: Option<PathBuf>,
    /// Use the public development key (demo and tests only).
    #[serde(default)]
    pub dev_key: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            ipv4_prefix: 24,
            ipv6_prefix: 48,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConf {
    pub retention_days: Option<u32>,
    /// The dataset's privacy policy (docs/CONFIGURATION.md, "Privacy policy per dataset").
    pub policy: Option<toml::Spanned<PolicyConf>>,
}

type Spanned<T> = toml::Spanned<T>;

/// `[datasets.NAME.policy]`: what may be narrowed of the built-in policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConf {
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
    pub ipv4_prefix: Option<Spanned<u8>>,
    pub ipv6_prefix: Option<Spanned<u8>>,
    pub path_templates: Option<Spanned<Vec<Spanned<String>>>>,
    pub keep_query_params: Option<Spanned<Vec<Spanned<String>>>>,
    pub proxy_events: Option<Spanned<Vec<Spanned<String>>>>,
    pub consent: Option<Spanned<String>>,
}

fn values(v: &Option<Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    v.as_ref()
        .map(|l| l.get_ref().iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default()
}

impl PolicyConf {
    fn input(&self) -> PolicyInput {
        PolicyInput {
            columns: self.columns.as_ref().map(|_| values(&self.columns)),
            ipv4_prefix: self.ipv4_prefix.as_ref().map(|v| *v.get_ref()),
            ipv6_prefix: self.ipv6_prefix.as_ref().map(|v| *v.get_ref()),
            path_templates: values(&self.path_templates),
            keep_query_params: values(&self.keep_query_params),
            proxy_events: values(&self.proxy_events),
            consent: self.consent.as_ref().map(|c| c.get_ref().clone()),
        }
    }

    /// Where a setting (or one entry of a list) is, as a byte range.
    fn span(&self, field: &str, index: Option<usize>) -> Option<std::ops::Range<usize>> {
        let list = |l: &Option<Spanned<Vec<Spanned<String>>>>| {
            l.as_ref()
                .map(|l| match index.and_then(|i| l.get_ref().get(i)) {
                    Some(e) => e.span(),
                    None => l.span(),
                })
        };
        match field {
            "columns" => list(&self.columns),
            "path_templates" => list(&self.path_templates),
            "keep_query_params" => list(&self.keep_query_params),
            "proxy_events" => list(&self.proxy_events),
            "ipv4_prefix" => self
                .ipv4_prefix
                .as_ref()
                .map(|v| v.span())
                .or_else(|| self.ipv6_prefix.as_ref().map(|v| v.span())),
            "ipv6_prefix" => self.ipv6_prefix.as_ref().map(|v| v.span()),
            "consent" => self.consent.as_ref().map(|v| v.span()),
            _ => None,
        }
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Worker threads; 0 or absent means all cores.
    pub threads: Option<usize>,
    /// The clock of the run (RFC 3339) instead of the system's: for replays and backfills,
    /// and the demo. Decides which partitions count as expired. `--now` overrides it.
    pub now: Option<String>,
    /// Followed sources: milliseconds between commits (default 5000).
    pub commit_interval_ms: Option<u64>,
    /// Followed and network sources: an epoch is also committed once it has read this many
    /// bytes (default 128 MiB), so that a fast source commits often and its spool stays small.
    pub commit_bytes: Option<u64>,
    /// Followed sources: milliseconds between polls of idle files (default 250).
    pub poll_interval_ms: Option<u64>,
    /// Address of the metrics endpoint (`/metrics`, `/health`, `/ready`), e.g.
    /// "127.0.0.1:9598"; none when absent.
    pub metrics_address: Option<String>,
    /// Network sources: directory of their spools (default `<output root>/_spool`).
    pub spool_dir: Option<PathBuf>,
    /// Network sources: bytes a spool may hold that are not committed yet before the source
    /// pushes back (HTTP 503, syslog TCP stops reading, UDP drops). Default 256 MiB.
    pub max_spool_bytes: Option<u64>,
    /// Followed and network sources: seconds between builds of the rollups' closed windows
    /// while the run goes on (default 300; 0: only when the run ends).
    pub rollup_interval_s: Option<u64>,
}

/// `[sources.http]`: accept NDJSON batches over HTTP.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConf {
    /// Address to listen on, e.g. "127.0.0.1:8687".
    pub address: String,
    /// Path batches are posted to (default "/v1/events").
    pub path: Option<String>,
    /// Largest request body, after decompression (default 10 MiB).
    pub max_body_bytes: Option<usize>,
    /// Name of an environment variable holding the bearer token requests must carry.
    pub token_env: Option<String>,
}

/// `[sources.syslog]`: accept syslog messages over the network.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConf {
    /// UDP address to listen on, e.g. "127.0.0.1:5514".
    pub udp: Option<String>,
    /// TCP address to listen on (newline or octet-counted framing).
    pub tcp: Option<String>,
    /// TLS address to listen on (RFC 5425, e.g. "0.0.0.0:6514"); needs `tls_cert` and `tls_key`.
    pub tls: Option<String>,
    /// The server's certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM); keep it readable by logveil only.
    pub tls_key: Option<PathBuf>,
}

/// `[sources.kafka]`: consume topics as a member of a consumer group.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConf {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Consumer group: instances with the same group share the topics' partitions.
    pub group: String,
    /// Topic names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
    /// librdkafka properties passed through (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `ssl.ca.location`, `auto.offset.reset`…).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// `[sources.nats]`: consume a JetStream stream through a durable pull consumer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConf {
    /// Server URL(s), `nats://host:4222` (comma-separated for several).
    pub url: String,
    /// The stream (it must exist).
    pub stream: String,
    /// Durable consumer name (default: the source's name); instances with one name share
    /// the messages.
    pub consumer: Option<String>,
    /// Subject filter, e.g. "events.session" (default: the whole stream).
    pub subject: Option<String>,
    /// Seconds a delivered message may stay unacknowledged before it is redelivered to
    /// another instance (default 60).
    pub ack_wait_s: Option<u64>,
    /// Name of an environment variable holding the server's token.
    pub token_env: Option<String>,
    /// Create the stream (capturing `subject`) if it does not exist (default false).
    #[serde(default)]
    pub create_stream: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConf {
    pub name: String,
    /// Input format; may be omitted when `log_format` is given (a custom access log).
    pub format: Option<Format>,
    /// Dataset name; defaults by format (access, session, syslog, app, proxy_usage).
    pub dataset: Option<String>,
    /// Files to read (absent for network sources).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Accept NDJSON batches over HTTP instead of reading files.
    pub http: Option<HttpConf>,
    /// Accept syslog over UDP/TCP instead of reading files.
    pub syslog: Option<SyslogConf>,
    /// Consume Kafka topics instead of reading files.
    pub kafka: Option<KafkaConf>,
    /// Consume a NATS JetStream stream instead of reading files.
    pub nats: Option<NatsConf>,
    /// Custom access-log layout (nginx `log_format` or Apache `LogFormat`).
    pub log_format: Option<String>,
    /// logfmt/json: service name for the `app` column (default: the source name).
    pub app: Option<String>,
    /// logfmt/json: which field plays which role.
    pub mapping: Option<MappingConf>,
    /// squid/proxy-json: aggregation window (default 3600).
    pub window_seconds: Option<u32>,
    /// syslog/rfc3164: reference clock for year inference (RFC 3339; default: now).
    pub reference_time: Option<String>,
    /// syslog/rfc3164: senders' UTC offset (`+HH:MM`; default `Z`).
    pub utc_offset: Option<String>,
    /// Follow the files as they grow (globs, rotation, checkpoints) instead of reading them
    /// once; `logveil run` then runs until stopped.
    #[serde(default)]
    pub follow: bool,
    /// Followed sources: lines that identify a file (default 1; more when every file begins
    /// with the same header lines).
    pub fingerprint_lines: Option<usize>,
}

impl SourceConf {
    fn settings(&self) -> SourceSettings {
        SourceSettings {
            format: self.format,
            log_format: self.log_format.clone(),
            app: self.app.clone(),
            mapping: self.mapping.clone(),
            window_seconds: self.window_seconds,
            reference_time: self.reference_time.clone(),
            utc_offset: self.utc_offset.clone(),
        }
    }
}

impl Pipeline {
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read pipeline config {}", path.display()))?;
        let mut p: Pipeline = toml::from_str(&text).map_err(|e| {
            // toml's message quotes the offending line of the config, which is ours, not log data.
            anyhow::anyhow!("pipeline config {} is not valid:\n{e}", path.display())
        })?;
        p.text = text;
        p.path = path.to_path_buf();
        if p.privacy.ipv4_prefix > MAX_IPV4_PREFIX || p.privacy.ipv6_prefix > MAX_IPV6_PREFIX {
            bail!(
                "pipeline config {}: privacy.ipv4_prefix must be 0-{MAX_IPV4_PREFIX} and ipv6_prefix 0-{MAX_IPV6_PREFIX} (longer prefixes would store nearly whole addresses)",
                path.display()
            );
        }
        if p.sources.is_empty() {
            bail!(
                "pipeline config {} has no [[sources]]; add at least one",
                path.display()
            );
        }
        for (name, d) in &p.datasets {
            if d.retention_days.is_some_and(|r| r > MAX_RETENTION_DAYS) {
                bail!(
                    "pipeline config {}: datasets.{name}.retention_days must be at most {MAX_RETENTION_DAYS}",
                    path.display()
                );
            }
        }
        for name in p.datasets.keys() {
            if name != "_quarantine" && !valid_dataset_name(name) {
                bail!(
                    "pipeline config {}: dataset name {name:?} must be letters, digits, '_' or '-'",
                    path.display()
                );
            }
        }
        Ok(p)
    }

    /// The rollups, each checked against the schema of the dataset it aggregates (which a
    /// source of this pipeline must write). Errors give the rollup's line.
    pub fn rollup_plans(&self, jobs: &[Job]) -> Result<Vec<logveil_rollup::Plan>> {
        let mut plans = Vec::new();
        for (name, conf) in &self.rollups {
            let line = line_of(&self.text, conf.span().start);
            let at = || {
                format!(
                    "pipeline config {} line {line}: rollups.{name}",
                    self.path.display()
                )
            };
            let c = conf.get_ref();
            if !valid_dataset_name(name) {
                bail!(
                    "{}: the name must be letters, digits, '_' or '-' (it is the rollup's directory)",
                    at()
                );
            }
            if jobs.iter().any(|j| &j.dataset.name == name) || self.datasets.contains_key(name) {
                bail!(
                    "{}: {name:?} is also a raw dataset; give the rollup its own name",
                    at()
                );
            }
            let Some(job) = jobs.iter().find(|j| j.dataset.name == c.dataset) else {
                bail!(
                    "{}: no source writes dataset {:?}; roll up a dataset of this pipeline",
                    at(),
                    c.dataset
                );
            };
            let window = logveil_rollup::Window::parse(&c.window).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: window {:?} must be \"hour\" or \"day\"",
                    at(),
                    c.window
                )
            })?;
            let retention_days = c
                .retention_days
                .unwrap_or(logveil_rollup::spec::DEFAULT_RETENTION_DAYS);
            if retention_days == 0 || retention_days > MAX_RETENTION_DAYS {
                bail!("{}: retention_days must be 1 to {MAX_RETENTION_DAYS}", at());
            }
            let spec = logveil_rollup::RollupSpec {
                name: name.clone(),
                source: c.dataset.clone(),
                window,
                group_by: c.group_by.clone(),
                subject: c.subject.clone(),
                distinct: c.distinct.clone(),
                quantiles: c.quantiles.clone(),
                k: c.k.unwrap_or(logveil_rollup::spec::DEFAULT_K),
                retention_days,
            };
            let plan =
                logveil_rollup::Plan::new(&spec, &job.dataset.kind.schema()).map_err(|e| {
                    anyhow::anyhow!("pipeline config {} line {line}: {e}", self.path.display())
                })?;
            plans.push(plan);
        }
        Ok(plans)
    }

    /// The dataset spec for `name` of `kind`, with configured retention.
    pub fn dataset(&self, name: &str, kind: DatasetKind) -> DatasetSpec {
        let mut spec = DatasetSpec {
            name: name.to_string(),
            ..DatasetSpec::with_defaults(kind)
        };
        if let Some(d) = self.datasets.get(name).and_then(|d| d.retention_days) {
            spec.retention_days = d;
            spec.retention_explicit = true;
        }
        spec
    }

    /// Network prefixes of the `[privacy]` section.
    pub fn truncation(&self) -> Truncation {
        Truncation {
            ipv4_prefix: self.privacy.ipv4_prefix,
            ipv6_prefix: self.privacy.ipv6_prefix,
        }
    }

    /// The validated policy of dataset `name` of `kind`; an invalid setting is reported with
    /// its line.
    pub fn policy(&self, name: &str, kind: DatasetKind) -> Result<Arc<DatasetPolicy>> {
        let conf = self.datasets.get(name).and_then(|d| d.policy.as_ref());
        let input = conf.map(|c| c.get_ref().input()).unwrap_or_default();
        DatasetPolicy::resolve(kind, &input, self.truncation())
            .map(Arc::new)
            .map_err(|e| {
                let line = conf
                    .and_then(|c| c.get_ref().span(e.field, e.index).or(Some(c.span())))
                    .map_or(0, |r| line_of(&self.text, r.start));
                anyhow::anyhow!(
                    "pipeline config {} line {line}: datasets.{name}.policy.{e}",
                    self.path.display()
                )
            })
    }

    /// Datasets with a `policy` table that no source writes (a typo would otherwise leave the
    /// intended dataset on the built-in policy).
    pub fn check_policy_targets(&self, jobs: &[Job]) -> Result<()> {
        for (name, d) in &self.datasets {
            if let Some(p) = &d.policy
                && !jobs.iter().any(|j| &j.dataset.name == name)
            {
                bail!(
                    "pipeline config {} line {}: datasets.{name}.policy: no source writes dataset {name:?}",
                    self.path.display(),
                    line_of(&self.text, p.span().start)
                );
            }
        }
        Ok(())
    }

    /// What a network source listens on, checked; `None` for a file source.
    fn listen(&self, s: &SourceConf) -> Result<Option<Listen>> {
        let addr = |what: &str, a: &str| -> Result<SocketAddr> {
            a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "source {}: {what} {a:?} is not an address; write IP:PORT, e.g. \"127.0.0.1:8687\"",
                    s.name
                )
            })
        };
        let format = s.format;
        match (&s.http, &s.syslog) {
            (Some(_), Some(_)) => bail!(
                "source {}: has both [sources.http] and [sources.syslog]; make them two sources",
                s.name
            ),
            (Some(h), None) => {
                if !matches!(
                    format,
                    Some(Format::SessionJson | Format::Json | Format::ProxyJson)
                ) {
                    bail!(
                        "source {}: an http source takes NDJSON: set format = \"session-json\", \"json\" or \"proxy-json\"",
                        s.name
                    );
                }
                let path = h.path.clone().unwrap_or_else(|| "/v1/events".into());
                if !path.starts_with('/') {
                    bail!("source {}: http.path must start with '/'", s.name);
                }
                let token = match &h.token_env {
                    None => None,
                    Some(var) => match std::env::var(var) {
                        Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                        _ => bail!(
                            "source {}: http.token_env names {var:?}, which is not set (or empty); export the token in it",
                            s.name
                        ),
                    },
                };
                Ok(Some(Listen::Http(HttpListen {
                    address: addr("http.address", &h.address)?,
                    path,
                    max_body: h.max_body_bytes.unwrap_or(10 << 20).clamp(1024, 1 << 30),
                    token,
                })))
            }
            (None, Some(y)) => {
                if !matches!(
                    format,
                    Some(Format::Syslog | Format::Rfc5424 | Format::Rfc3164)
                ) {
                    bail!(
                        "source {}: a syslog source needs format = \"syslog\", \"rfc5424\" or \"rfc3164\"",
                        s.name
                    );
                }
                let udp = y
                    .udp
                    .as_deref()
                    .map(|a| addr("syslog.udp", a))
                    .transpose()?;
                let tcp = y
                    .tcp
                    .as_deref()
                    .map(|a| addr("syslog.tcp", a))
                    .transpose()?;
                let tls = match (&y.tls, &y.tls_cert, &y.tls_key) {
                    (Some(a), Some(c), Some(k)) => Some(crate::listen::TlsListen {
                        address: addr("syslog.tls", a)?,
                        cert: c.clone(),
                        key: k.clone(),
                    }),
                    (None, None, None) => None,
                    (Some(_), _, _) => bail!(
                        "source {}: syslog.tls needs tls_cert and tls_key (PEM files)",
                        s.name
                    ),
                    (None, _, _) => bail!(
                        "source {}: tls_cert and tls_key are for syslog.tls, which is not set",
                        s.name
                    ),
                };
                if udp.is_none() && tcp.is_none() && tls.is_none() {
                    bail!("source {}: [sources.syslog] needs udp, tcp or tls", s.name);
                }
                Ok(Some(Listen::Syslog { udp, tcp, tls }))
            }
            (None, None) => Ok(None),
        }
    }

    /// The jobs of this pipeline, with their parsers resolved (`auto` sources are sniffed
    /// here). Returns notes for the operator (e.g. which format `auto` chose).
    pub fn jobs(&self) -> Result<(Vec<Job>, Vec<String>)> {
        let mut notes = Vec::new();
        // A source's name keys its journal (`_checkpoints/<name>.json`) and its file names.
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if (s.follow
                || s.http.is_some()
                || s.syslog.is_some()
                || s.kafka.is_some()
                || s.nats.is_some())
                && (s.name.is_empty()
                    || s.name.bytes().all(|c| c == b'.')
                    || !s
                        .name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c)))
            {
                bail!(
                    "pipeline config {}: source {:?}: a followed or network source's name names its journal file; use letters, digits, '_', '-' or '.' (not only dots)",
                    self.path.display(),
                    s.name
                );
            }
            if !names.insert(s.name.as_str()) {
                bail!(
                    "pipeline config {}: two sources are named {:?}; give each its own name",
                    self.path.display(),
                    s.name
                );
            }
        }
        // Standard input can be read by one source only.
        let stdin_sources: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| s.paths.iter().any(|p| p.as_os_str() == "-"))
            .map(|s| s.name.as_str())
            .collect();
        if stdin_sources.len() > 1 {
            bail!(
                "pipeline config {}: sources {} all read standard input (\"-\"); only one source can",
                self.path.display(),
                stdin_sources.join(", ")
            );
        }
        let jobs = self
            .sources
            .iter()
            .enumerate()
            .map(|(index, s)| {
                // A followed stdin is read like a network source: through a spool.
                let stdin = s.follow && s.paths.iter().any(|p| p.as_os_str() == "-");
                if stdin && (s.paths.len() > 1 || s.http.is_some() || s.syslog.is_some()) {
                    bail!(
                        "source {}: a followed stdin (\"-\") must be the source's only input; make the others sources of their own",
                        s.name
                    );
                }
                if stdin && (s.format.is_none() || s.format == Some(Format::Auto)) && s.log_format.is_none() {
                    bail!("source {}: a followed stdin needs its format (format = \"combined\", …)", s.name);
                }
                let listen = if stdin { Some(Listen::Stdin) } else { self.listen(s)? };
                let bus = s.kafka.is_some() || s.nats.is_some();
                if s.kafka.is_some() && s.nats.is_some() {
                    bail!("source {}: has both [sources.kafka] and [sources.nats]; make them two sources", s.name);
                }
                if bus && (!s.paths.is_empty() || s.follow || listen.is_some()) {
                    bail!(
                        "source {}: a Kafka or NATS source reads no files and listens on nothing; remove `paths`, `follow`, http and syslog, or make them sources of their own",
                        s.name
                    );
                }
                if bus && ((s.format.is_none() && s.log_format.is_none()) || s.format == Some(Format::Auto)) {
                    bail!("source {}: a Kafka or NATS source needs its format (format = \"combined\", …)", s.name);
                }
                let nats = match &s.nats {
                    None => None,
                    Some(n) => {
                        if n.url.trim().is_empty() || n.stream.trim().is_empty() {
                            bail!("source {}: [sources.nats] needs url and stream", s.name);
                        }
                        let ack_wait = n.ack_wait_s.unwrap_or(60);
                        if !(1..=86_400).contains(&ack_wait) {
                            bail!("source {}: nats.ack_wait_s must be 1-86400", s.name);
                        }
                        Some(crate::nats::NatsSpec {
                            url: n.url.clone(),
                            stream: n.stream.clone(),
                            consumer: n.consumer.clone().unwrap_or_else(|| s.name.clone()),
                            subject: n.subject.clone().unwrap_or_default(),
                            ack_wait: std::time::Duration::from_secs(ack_wait),
                            token_env: n.token_env.clone(),
                            create_stream: n.create_stream,
                        })
                    }
                };
                let kafka = match &s.kafka {
                    None => None,
                    Some(k) => {
                        if !s.paths.is_empty() || s.follow || listen.is_some() {
                            bail!(
                                "source {}: a Kafka source reads no files and listens on nothing; remove `paths`, `follow`, http and syslog, or make them sources of their own",
                                s.name
                            );
                        }
                        if (s.format.is_none() && s.log_format.is_none())
                            || s.format == Some(Format::Auto)
                        {
                            bail!("source {}: a Kafka source needs its format (format = \"combined\", …)", s.name);
                        }
                        if k.topics.is_empty() || k.brokers.trim().is_empty() || k.group.trim().is_empty() {
                            bail!("source {}: [sources.kafka] needs brokers, group and at least one topic", s.name);
                        }
                        Some(crate::kafka::KafkaSpec {
                            brokers: k.brokers.clone(),
                            group: k.group.clone(),
                            topics: k.topics.clone(),
                            options: k.options.clone(),
                        })
                    }
                };
                if bus {
                    // Checked above.
                } else if listen.is_some() && !stdin {
                    if !s.paths.is_empty() || s.follow {
                        bail!(
                            "source {}: a network source (http, syslog) reads no files; remove `paths` and `follow`, or make it two sources",
                            s.name
                        );
                    }
                } else if s.paths.is_empty() {
                    bail!("source {} has no paths (or [sources.http] / [sources.syslog] to listen)", s.name);
                }
                let follow = s.follow || listen.is_some() || bus;
                let inputs: Vec<Input> = s
                    .paths
                    .iter()
                    .map(|p| Input::from_arg(&p.to_string_lossy()))
                    .collect();
                if s.follow && (s.format.is_none() && s.log_format.is_none()
                    || s.format == Some(crate::ingest::Format::Auto))
                {
                    bail!(
                        "source {}: a followed source needs its format (format = \"combined\", …): its files may not exist yet to be sniffed",
                        s.name
                    );
                }
                if s.follow && !stdin {
                    for p in &s.paths {
                        if let Err(e) = glob::Pattern::new(&p.to_string_lossy()) {
                            bail!(
                                "source {}: path {:?} is not a valid glob pattern: {} (at character {})",
                                s.name,
                                p.display().to_string(),
                                e.msg,
                                e.pos
                            );
                        }
                    }
                }
                let (parser, note) = s
                    .settings()
                    .resolve(&s.name, &inputs)
                    .with_context(|| format!("source {}", s.name))?;
                notes.extend(note.map(|n| format!("{}: {n}", s.name)));
                let kind = parser.kind();
                let name = s
                    .dataset
                    .clone()
                    .unwrap_or_else(|| kind.default_name().to_string());
                if !valid_dataset_name(&name) {
                    bail!(
                        "source {}: dataset name {name:?} must be letters, digits, '_' or '-'",
                        s.name
                    );
                }
                Ok(Job {
                    index,
                    name: s.name.clone(),
                    parser,
                    policy: self.policy(&name, kind)?,
                    dataset: self.dataset(&name, kind),
                    inputs: if stdin { Vec::new() } else { inputs },
                    follow,
                    listen,
                    kafka,
                    nats,
                    fingerprint_lines: s.fingerprint_lines.unwrap_or(1).clamp(1, 64),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.check_policy_targets(&jobs)?;
        Ok((jobs, notes))
    }
}

/// Longest retention accepted (100 years): anything longer is a typo.
pub const MAX_RETENTION_DAYS: u32 = logveil_sink::manifest::MAX_RETENTION_DAYS;

/// Longest IP prefixes that may be stored: longer would keep (nearly) whole addresses.
pub const MAX_IPV4_PREFIX: u8 = 24;
pub const MAX_IPV6_PREFIX: u8 = 64;

/// Dataset names become directories: keep them boring.
pub fn valid_dataset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['_', '.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

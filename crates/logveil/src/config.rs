//! Pipeline configuration (`logveil run PIPELINE.toml`): where output goes, which keys to use,
//! dataset retention, privacy settings, and the sources to ingest. Relative paths are resolved
//! against the current directory, as with Vector. Every setting is documented in
//! `docs/CONFIGURATION.md`; unknown keys are errors, so a typo never silently weakens privacy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use logveil_model::DatasetKind;
use logveil_sink::DatasetSpec;
use logveil_source::Input;
use serde::Deserialize;

use crate::ingest::{Format, Job};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Root directory of the datasets.
    pub root: PathBuf,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Worker threads; 0 or absent means all cores.
    pub threads: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConf {
    pub name: String,
    pub format: Format,
    /// Dataset name; defaults to `access` or `session` by format.
    pub dataset: Option<String>,
    pub paths: Vec<PathBuf>,
}

impl Pipeline {
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read pipeline config {}", path.display()))?;
        let p: Pipeline = toml::from_str(&text).map_err(|e| {
            // toml's message quotes the offending line of the config, which is ours, not log data.
            anyhow::anyhow!("pipeline config {} is not valid:\n{e}", path.display())
        })?;
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

    pub fn jobs(&self) -> Result<Vec<Job>> {
        self.sources
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let name = s
                    .dataset
                    .clone()
                    .unwrap_or_else(|| s.format.kind().default_name().to_string());
                if !valid_dataset_name(&name) {
                    bail!(
                        "source {}: dataset name {name:?} must be letters, digits, '_' or '-'",
                        s.name
                    );
                }
                if s.paths.is_empty() {
                    bail!("source {} has no paths", s.name);
                }
                Ok(Job {
                    index,
                    name: s.name.clone(),
                    format: s.format,
                    dataset: self.dataset(&name, s.format.kind()),
                    inputs: s
                        .paths
                        .iter()
                        .map(|p| Input::from_arg(&p.to_string_lossy()))
                        .collect(),
                })
            })
            .collect()
    }
}

/// Longest retention accepted (100 years): anything longer is a typo.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

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

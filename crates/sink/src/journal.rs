//! Exactly-once commits for sources that resume from a position: a small journal per source,
//! `<root>/_checkpoints/<source>.json`, that ties the files of each commit to the source
//! position they reach.
//!
//! A commit of epoch N runs: [`Journal::begin`] records the epoch's complete, staged files and
//! the position after their lines (durably, before anything is visible); [`commit`] publishes
//! them and records them in their manifests ([`commit_recorded`]: nothing is removed on error); [`Journal::finish`] makes the position the
//! committed one. A crash anywhere leaves either no pending epoch (the next run resumes from
//! the committed position: the epoch's lines are read again, its staged files are orphans) or
//! a pending one, which [`Journal::recover`] completes: every staged file is published (or
//! found already published) and recorded, idempotently, and its position becomes the
//! committed one. Either way every line is in the output exactly once.
//!
//! Positions are opaque to the sink (JSON chosen by the source).
//!
//! On object storage, where no lock keeps a second process away, every write of a journal is
//! a conditional put on the version this process last read or wrote: a process that lost the
//! source (a Kafka partition reassigned to another instance) finds its write refused
//! ([`SinkError::Fenced`]) instead of overwriting the new owner's position.

use bytes::Bytes;
use logveil_model::HourKey;
use object_store::UpdateVersion;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{CommitReport, DatasetSpec, RunInfo, commit_recorded};
use crate::storage::{Committed, Storage};
use crate::writer::WrittenFile;
use crate::{Result, SinkError};

/// Where the journals live, relative to the root.
pub const CHECKPOINTS_DIR: &str = "_checkpoints";

/// One file of a pending epoch, as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFile {
    pub dataset: String,
    /// Hours since the epoch (the partition).
    pub partition: i64,
    pub name: String,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub bytes: u64,
    pub blake3: String,
    /// Where the complete file waits (local disk), if anywhere.
    pub staged: Option<String>,
    pub dest: String,
    /// The run that wrote the file and the key of its partition, as its manifest entry must
    /// say even when another run completes the commit.
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub dev_key: bool,
}

impl JournalFile {
    fn of(dataset: &str, f: &WrittenFile, run: &RunInfo) -> JournalFile {
        JournalFile {
            run_id: run.run_id.clone(),
            key_id: run.key_id_at(f.partition.start_micros()),
            dev_key: run.dev_key,
            dataset: dataset.to_string(),
            partition: f.partition.0,
            name: f.name.clone(),
            rows: f.rows,
            min_ts: f.min_ts,
            max_ts: f.max_ts,
            bytes: f.upload.bytes,
            blake3: f.upload.blake3.clone(),
            staged: f.upload.staged.as_ref().map(|p| p.to_string()),
            dest: f.upload.dest.to_string(),
        }
    }

    fn written(&self) -> WrittenFile {
        WrittenFile {
            partition: HourKey(self.partition),
            name: self.name.clone(),
            rows: self.rows,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            upload: Committed {
                bytes: self.bytes,
                blake3: self.blake3.clone(),
                staged: self.staged.as_deref().map(Path::from),
                dest: Path::from(self.dest.as_str()),
            },
        }
    }
}

/// An epoch begun but not known to be committed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingEpoch {
    pub epoch: u64,
    pub position: Value,
    pub files: Vec<JournalFile>,
}

/// What a journal holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalState {
    pub format: String,
    pub version: u32,
    /// Source this journal belongs to.
    pub source: String,
    /// The last committed epoch (0: none yet) and the position after its lines.
    pub epoch: u64,
    pub position: Value,
    pub pending: Option<PendingEpoch>,
}

/// A source's journal.
pub struct Journal {
    storage: Storage,
    path: Path,
    state: JournalState,
    /// The version last read or written (object storage; `None`: it did not exist).
    version: Option<UpdateVersion>,
}

/// What [`Journal::recover`] found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Epoch completed from a pending record (if there was one).
    pub epoch: Option<u64>,
    pub reports: Vec<(String, CommitReport)>,
}

impl Journal {
    /// Opens (or starts) the journal of `source`. A journal that exists but cannot be read
    /// is an error: resuming from a wrong position would lose or repeat lines.
    pub fn open(storage: Storage, source: &str) -> Result<Journal> {
        let path = Path::from(format!("{CHECKPOINTS_DIR}/{source}.json"));
        let read = storage.get_versioned(&path)?;
        let version = read.as_ref().map(|(_, v)| v.clone());
        let state: JournalState = match read.map(|(b, _)| b) {
            Some(b) => serde_json::from_slice(&b).map_err(|e| SinkError::BadJournal {
                path: path.to_string(),
                what: format!(
                    "JSON error at line {}, column {}; the source cannot resume without it: restore it from backup, or delete it to read every input again from the start",
                    e.line(),
                    e.column()
                ),
            })?,
            None => JournalState {
                format: "logveil-journal".into(),
                version: 1,
                source: source.to_string(),
                epoch: 0,
                position: Value::Null,
                pending: None,
            },
        };
        if state.format != "logveil-journal" || state.version != 1 || state.source != source {
            return Err(SinkError::BadJournal {
                path: path.to_string(),
                what: format!(
                    "it is the journal of source {:?} ({} version {}), not of source {source:?} in this format (logveil-journal version 1); move it back where it belongs",
                    state.source, state.format, state.version
                ),
            });
        }
        // The journal identifies files by a hash of their first line (raw input): keep the
        // directory to the user logveil runs as.
        #[cfg(unix)]
        if let Some(root) = storage.local_root() {
            use std::os::unix::fs::PermissionsExt;
            let dir = root.join(CHECKPOINTS_DIR);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(Journal {
            storage,
            path,
            state,
            version,
        })
    }

    pub fn state(&self) -> &JournalState {
        &self.state
    }

    fn save(&mut self) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(&self.state).expect("journal serialises");
        text.push(b'\n');
        match self
            .storage
            .put_versioned(&self.path, Bytes::from(text), self.version.clone())?
        {
            Some(v) => {
                self.version = Some(v);
                Ok(())
            }
            None => Err(SinkError::Fenced {
                path: self.path.to_string(),
            }),
        }
    }

    /// Completes a pending epoch left by a crash: its files are committed (those already
    /// committed are found so, those of partitions refused meanwhile are dropped), and its
    /// position becomes the committed one. `spec` gives each dataset's spec by name.
    pub fn recover(
        &mut self,
        spec: impl Fn(&str) -> Option<DatasetSpec>,
        run: &RunInfo,
    ) -> Result<Recovered> {
        let Some(p) = self.state.pending.clone() else {
            return Ok(Recovered::default());
        };
        // Files are recorded as the run that wrote them would have: its run id, key id and
        // development-key flag (the recovering run may use other keys).
        type Group = (String, String, Option<String>, bool);
        let mut groups: Vec<(Group, Vec<WrittenFile>)> = Vec::new();
        for f in &p.files {
            let g = (
                f.dataset.clone(),
                f.run_id.clone(),
                f.key_id.clone(),
                f.dev_key,
            );
            match groups.iter_mut().find(|(k, _)| *k == g) {
                Some((_, v)) => v.push(f.written()),
                None => groups.push((g, vec![f.written()])),
            }
        }
        let mut reports = Vec::new();
        for ((dataset, run_id, key_id, dev_key), files) in groups {
            let writer = RunInfo {
                run_id: if run_id.is_empty() {
                    run.run_id.clone()
                } else {
                    run_id
                },
                key_epochs: match key_id {
                    Some(k) => vec![(i64::MIN, k)],
                    None => run.key_epochs.clone(),
                },
                dev_key,
                now_micros: run.now_micros,
            };
            let Some(s) = spec(&dataset) else {
                return Err(SinkError::BadJournal {
                    path: self.path.to_string(),
                    what: format!(
                        "its pending epoch names dataset {dataset}, which this pipeline does not write; run the pipeline that wrote it"
                    ),
                });
            };
            reports.push((
                dataset,
                commit_recorded(&self.storage, &s, &files, &writer)?,
            ));
        }
        self.finish(p.epoch, p.position)?;
        Ok(Recovered {
            epoch: Some(p.epoch),
            reports,
        })
    }

    /// Records epoch `epoch` as about to be committed: its files (complete and durable, not
    /// yet visible) and the position after its lines.
    pub fn begin(
        &mut self,
        epoch: u64,
        position: Value,
        files: &[(&str, &WrittenFile)],
        run: &RunInfo,
    ) -> Result<()> {
        self.state.pending = Some(PendingEpoch {
            epoch,
            position,
            files: files
                .iter()
                .map(|(d, f)| JournalFile::of(d, f, run))
                .collect(),
        });
        self.save()
    }

    /// Makes `epoch` and its position the committed ones.
    pub fn finish(&mut self, epoch: u64, position: Value) -> Result<()> {
        self.state.epoch = epoch;
        self.state.position = position;
        self.state.pending = None;
        self.save()
    }
}

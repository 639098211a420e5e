//! Helpers shared by the end-to-end tests: run the binary, walk and decode its output.
#![allow(dead_code)]

pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

/// The day after the fixtures were generated.
pub const FIXTURE_NOW: &str = "2026-11-28T12:00:00Z";

/// The binary, with ingest's clock fixed the day after the fixtures' (`LOGVEIL_NOW`), so that
/// retention decisions do not depend on when the tests run.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_logveil"));
    c.env("LOGVEIL_NOW", FIXTURE_NOW);
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("logveil runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("logveil runs");
    assert!(
        out.status.success(),
        "logveil failed: {:?}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn is_parquet(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "parquet")
}

/// Every value of a Parquet file, as text, plus its footer's key/value metadata.
pub fn parquet_text(p: &Path) -> String {
    let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
    let mut s = String::new();
    if let Some(kv) = r.metadata().file_metadata().key_value_metadata() {
        for e in kv {
            s.push_str(&format!("{}={}\n", e.key, e.value.as_deref().unwrap_or("")));
        }
    }
    s.push_str(r.metadata().file_metadata().created_by().unwrap_or(""));
    s.push('\n');
    for row in r.get_row_iter(None).unwrap() {
        s.push_str(&row.unwrap().to_string());
        s.push('\n');
    }
    s
}

/// Everything logveil wrote under `root`: decoded Parquet values and footers followed by the
/// file's raw bytes (lossy), or the raw bytes of any other file.
pub fn all_output_text(root: &Path) -> Vec<(PathBuf, String)> {
    files_under(root)
        .into_iter()
        .map(|p| {
            let raw = text(&std::fs::read(&p).unwrap());
            let t = if is_parquet(&p) {
                format!("{}\n{raw}", parquet_text(&p))
            } else {
                raw
            };
            (p, t)
        })
        .collect()
}

/// Values of one string column across all Parquet files of a dataset.
pub fn column_values(root: &Path, dataset: &str, column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in files_under(&root.join(dataset))
        .iter()
        .filter(|p| is_parquet(p))
    {
        let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
        for row in r.get_row_iter(None).unwrap() {
            for (name, f) in row.unwrap().get_column_iter() {
                if name == column
                    && let Field::Str(v) = f
                {
                    out.push(v.clone());
                }
            }
        }
    }
    out
}

pub fn parquet_rows(root: &Path, dataset: &str) -> u64 {
    files_under(&root.join(dataset))
        .iter()
        .filter(|p| is_parquet(p))
        .map(|p| {
            SerializedFileReader::new(std::fs::File::open(p).unwrap())
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows() as u64
        })
        .sum()
}

/// Unsigned integer values of one column across a dataset's files (non-null only).
pub fn column_values_u64(root: &Path, dataset: &str, column: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for p in files_under(&root.join(dataset))
        .iter()
        .filter(|p| is_parquet(p))
    {
        let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
        for row in r.get_row_iter(None).unwrap() {
            for (name, f) in row.unwrap().get_column_iter() {
                if name == column {
                    match f {
                        Field::ULong(v) => out.push(*v),
                        Field::UInt(v) => out.push(u64::from(*v)),
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

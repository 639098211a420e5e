//! `logveil subject export`: a data subject's rows from every dataset (privacy policy §7.1
//! access, §7.5 portability), with a cover sheet.
//!
//! The export is a new directory: `cover.json` (machine-readable) and `README.txt` (the
//! same for people) say what categories of data it holds, from which datasets and periods,
//! how long each is kept, what was not searched and why, and which key epochs were
//! shredded (their rows are anonymised: nobody, the subject included, can be linked to them
//! any more); then one file per dataset with rows (`<dataset>.jsonl`, `.csv` or
//! `.parquet`). Rows stream from the query engine to the files. Everything is written into a
//! temporary directory beside `--out`, synced, then renamed to it: a half-written export is
//! never seen under its name, and an existing directory is never overwritten.
//!
//! The identifiers given are not written anywhere: the rows hold the pseudonyms the subject's
//! identifiers were replaced with, the cover sheet says how many identifiers were searched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use logveil_model::HourKey;
use logveil_model::time::format_rfc3339;
use logveil_query::Results;
use logveil_query::arrow::array::RecordBatch;
use logveil_query::subject::{Found, SubjectSearch, category};
use serde_json::{Value, json};

use crate::keys_cmd::second;
use crate::subject_find::{SearchArgs, prepare};
use crate::usage;

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines: one object per row.
    Json,
    /// CSV with a header; maps (app attributes) as JSON text.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl ExportFormat {
    fn ext(self) -> &'static str {
        match self {
            ExportFormat::Json => "jsonl",
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    /// The directory to create with the export (it must not exist).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Format of the row files.
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
}

/// One dataset's file of the export.
struct Exported<'a> {
    found: &'a Found,
    file: String,
    rows: u64,
}

pub fn cmd_export(a: ExportArgs) -> Result<()> {
    if a.out.exists() {
        return Err(usage(format!(
            "--out {}: exists; name a new directory (an export never overwrites one)",
            a.out.display()
        )));
    }
    let p = prepare(&a.search)?;
    let parent = match a.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".logveil-export-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let search = SubjectSearch::open(&p.opts, &p.ring, &p.subject, p.days)?;
    let report = search.find()?;
    let mut exported = Vec::new();
    for f in report.datasets.iter().filter(|f| f.rows() > 0) {
        let Some(rows) = search.rows(&f.dataset)? else {
            continue;
        };
        let file = format!("{}.{}", f.dataset, a.format.ext());
        let n = write_rows(rows, a.format, &tmp.path().join(&file))
            .with_context(|| format!("exporting {}", f.dataset))?;
        exported.push(Exported {
            found: f,
            file,
            rows: n,
        });
    }
    let now = crate::now_micros();
    let cover = cover_sheet(&a, &p, &search, &report, &exported, now);
    let mut text = serde_json::to_vec_pretty(&cover)?;
    text.push(b'\n');
    write_synced(&tmp.path().join("cover.json"), &text)?;
    write_synced(&tmp.path().join("README.txt"), readme(&cover).as_bytes())?;
    File::open(tmp.path())
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", tmp.path().display()))?;
    // On failure the temporary directory (the subject's rows) is removed with `tmp`.
    rename_new(tmp.path(), &a.out)
        .with_context(|| format!("moving the export into {}", a.out.display()))?;
    let _ = tmp.keep();
    if let Ok(d) = File::open(&parent) {
        let _ = d.sync_all();
    }
    let rows: u64 = exported.iter().map(|e| e.rows).sum();
    a.search.request.record(
        &a.search.root,
        "exported",
        json!({"rows": rows, "datasets": exported.len(), "format": a.format.ext()}),
    )?;
    say!(
        info,
        "exported {rows} row(s) from {} dataset(s) into {}",
        exported.len(),
        a.out.display()
    );
    Ok(())
}

/// Renames `from` to `to`, refusing to replace anything at `to` (Linux: `renameat2` with
/// `RENAME_NOREPLACE`, which would otherwise replace an empty directory created meanwhile).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| std::io::Error::other("a path with a NUL byte"))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated paths that live across the call.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        // Filesystems without RENAME_NOREPLACE: the check above, then a plain rename.
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    if to.exists() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// Streams one dataset's rows into `path`; returns how many.
fn write_rows(mut rows: Results, format: ExportFormat, path: &Path) -> Result<u64> {
    use logveil_query::arrow;
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let mut n = 0u64;
    match format {
        ExportFormat::Json => {
            // Every column in every row (nulls written out): one shape per file.
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::LineDelimited>(&mut out);
            for b in &mut rows {
                let b = b?;
                n += b.num_rows() as u64;
                w.write(&b)?;
            }
            w.finish()?;
        }
        ExportFormat::Csv => {
            let schema = crate::query_cmd::maps_as_text_schema(rows.schema());
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            w.write(&RecordBatch::new_empty(schema))?;
            for b in &mut rows {
                let b = crate::query_cmd::maps_as_text(&b?)?;
                n += b.num_rows() as u64;
                w.write(&b)?;
            }
        }
        ExportFormat::Parquet => {
            let schema = rows.schema().clone();
            let mut w =
                logveil_query::parquet::arrow::ArrowWriter::try_new(&mut out, schema, None)?;
            for b in &mut rows {
                let b = b?;
                n += b.num_rows() as u64;
                w.write(&b)?;
            }
            w.close()?;
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(n)
}

fn period(keys: &[(HourKey, u64)]) -> Value {
    match (keys.first(), keys.last()) {
        (Some((a, _)), Some((b, _))) => json!({
            "from": format_rfc3339(a.start_micros()),
            "to": format_rfc3339(b.end_micros()),
        }),
        _ => Value::Null,
    }
}

fn cover_sheet(
    a: &ExportArgs,
    p: &crate::subject_find::Prepared,
    search: &SubjectSearch,
    report: &logveil_query::subject::FindReport,
    exported: &[Exported],
    now: i64,
) -> Value {
    let datasets: Vec<Value> = exported
        .iter()
        .map(|e| {
            let f = e.found;
            json!({
                "dataset": f.dataset,
                "category": category(&f.kind),
                "file": e.file,
                "rows": e.rows,
                "partitions": f.partitions.len(),
                "period": period(&f.partitions),
                "retention_days": search.retention_days(&f.dataset),
                "retention": search.retention_days(&f.dataset).map(|d| format!(
                    "each hour's rows are deleted {d} days after the hour ends"
                )),
                "expired_partitions_not_searched": f.expired_partitions,
            })
        })
        .collect();
    let without_rows: Vec<&str> = report
        .datasets
        .iter()
        .filter(|f| !exported.iter().any(|e| e.found.dataset == f.dataset))
        .map(|f| f.dataset.as_str())
        .collect();
    json!({
        "format": "logveil-subject-export",
        "version": 1,
        "request_id": a.search.request.request_id,
        "generated_at": second(now),
        "expiry_judged_at": second(p.opts.now_micros),
        "period_searched": {
            "from": a.search.from,
            "to": a.search.to,
        },
        "identifiers_searched": {
            "ip": p.subject.ips.len(),
            "device_id": p.subject.device_ids.len(),
            "account_id": p.subject.account_ids.len(),
        },
        "how_to_read": "IP addresses, device ids and account ids are never stored: each is replaced by a keyed pseudonym (ip_pseudonym, device_pseudonym, account_pseudonym; <ip:...> and <id:...> in text), and IP addresses are kept only as their network (ip_network). The rows below are those whose pseudonyms are the ones your identifiers map to. URLs are stored without query strings; proxy traffic (destinations, content) is never stored.",
        "datasets": datasets,
        "datasets_without_your_rows": without_rows,
        "not_searched": report.not_searched.iter().map(|(d, why)| json!({"dataset": d, "why": why})).collect::<Vec<_>>(),
        "key_epochs_searched": report.needles.live_epochs,
        "anonymised": {
            "key_epochs_shredded": report.needles.shredded_epochs,
            "meaning": "the keys of these periods were destroyed: their rows can no longer be linked to anyone, you included, and are not part of this export",
        },
    })
}

/// The cover sheet for people.
fn readme(c: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut t = String::new();
    t.push_str("Your data: export of a data-subject request\n");
    t.push_str("============================================\n\n");
    t.push_str(&format!("Request:    {}\n", s(&c["request_id"])));
    t.push_str(&format!("Generated:  {}\n", s(&c["generated_at"])));
    t.push_str(&format!(
        "Searched:   {} IP address(es), {} device id(s), {} account id(s); period {} to {}\n\n",
        s(&c["identifiers_searched"]["ip"]),
        s(&c["identifiers_searched"]["device_id"]),
        s(&c["identifiers_searched"]["account_id"]),
        s(&c["period_searched"]["from"]),
        s(&c["period_searched"]["to"]),
    ));
    t.push_str(&format!("{}\n\n", s(&c["how_to_read"])));
    t.push_str("What we hold\n------------\n");
    for d in c["datasets"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "* {} ({} rows, file {}): {}\n  period {} to {}; {}\n",
            s(&d["dataset"]),
            s(&d["rows"]),
            s(&d["file"]),
            s(&d["category"]),
            s(&d["period"]["from"]),
            s(&d["period"]["to"]),
            s(&d["retention"]),
        ));
    }
    if c["datasets"].as_array().is_none_or(|a| a.is_empty()) {
        t.push_str("Nothing: no row of any dataset holds your identifiers.\n");
    }
    t.push_str("\nNot searched\n------------\n");
    for d in c["not_searched"].as_array().into_iter().flatten() {
        t.push_str(&format!("* {}: {}\n", s(&d["dataset"]), s(&d["why"])));
    }
    let shredded = c["anonymised"]["key_epochs_shredded"]
        .as_array()
        .map_or(0, |a| a.len());
    t.push_str(&format!(
        "\nAnonymised\n----------\n{} key period(s) shredded: {}\n",
        shredded,
        s(&c["anonymised"]["meaning"])
    ));
    t
}

//! `logveil query --root DIR "SQL"`: SQL over the datasets of an output root (DataFusion,
//! through `logveil-query`), with expired partitions invisible; the result as a table, CSV,
//! JSON lines or Parquet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use logveil_query::arrow::array::{
    Array, ArrayRef, MapArray, RecordBatch, StringArray, StringBuilder,
};
use logveil_query::arrow::compute::cast;
use logveil_query::arrow::datatypes::{DataType, Field, Schema};
use logveil_query::{QueryError, QueryOptions, Results};
use serde_json::Value;

use crate::keys_cmd::{now_or, second};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file (needs --output).
    Parquet,
}

#[derive(Args)]
pub struct QueryArgs {
    /// Output root (a pipeline's `[output] root`, ingest's `--out`).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// One SQL statement. Every dataset is a table of its name (`access`, `session`,
    /// `_quarantine`, rollups…), with `dt` (DATE) and `hour` (INT) partition columns.
    pub sql: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutFormat,
    /// Write the result to FILE (replaced whole once complete) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the plan instead of running the query (partition filters show which
    /// partitions are read).
    #[arg(long)]
    pub explain: bool,
    /// Judge expiry at this time (RFC 3339) instead of the clock: partitions expired by then
    /// are invisible. For tests and audits; an earlier time than the clock shows partitions
    /// that have expired since (until the sweep deletes them), and says so. Only the flag
    /// sets it (not LOGVEIL_NOW, so that a leftover variable changes nothing analysts see).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

pub fn cmd_query(a: QueryArgs) -> Result<()> {
    if a.format == OutFormat::Parquet && a.output.is_none() {
        return Err(crate::usage("--format parquet needs --output FILE"));
    }
    // An object-storage root (s3://…) is checked when it is listed.
    if !logveil_sink::storage::is_remote_location(&a.root.to_string_lossy()) && !a.root.is_dir() {
        return Err(crate::usage(format!(
            "--root {}: not a directory (give an output root: a pipeline's [output] root)",
            a.root.display()
        )));
    }
    let wall = crate::now_micros();
    let now = now_or(&a.now)?;
    if now < wall - 60_000_000 {
        say!(
            warn,
            "judging expiry at {}, before the clock: partitions that have expired since are shown if the sweep has not deleted them yet",
            second(now)
        );
    }
    let opts = QueryOptions {
        root: a.root.clone(),
        now_micros: now,
        threads: a.threads.unwrap_or_else(crate::rollup_cmd::all_cores),
    };
    let results = logveil_query::query(&opts, &a.sql, a.explain).map_err(statement_or_failure)?;
    for t in results.tables() {
        if let Some(e) = &t.error {
            say!(warn, "{}: not a table of this query: {e}", t.name);
        } else if t.hidden > 0 {
            say!(
                info,
                "{}: {} expired partition(s) not shown (not swept yet)",
                t.name,
                t.hidden
            );
        }
    }
    let written = match &a.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(results, a.format, &mut out).and_then(|()| Ok(out.flush()?))
        }
        Some(path) => write_file(results, a.format, path),
    };
    match written {
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Writes the result into a temporary file beside `path`, syncs it and renames it over
/// `path`: a reader never sees half a result, and a failed query leaves the old file.
fn write_file(results: Results, format: OutFormat, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".logveil-query-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp);
    match format {
        OutFormat::Parquet => write_parquet(results, &mut w)?,
        _ => write(results, format, &mut w)?,
    }
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("moving the result into {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<logveil_query::arrow::error::ArrowError>()
                .is_some_and(|a| matches!(a, logveil_query::arrow::error::ArrowError::IoError(_, io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}

/// Mistakes in the statement (syntax, unknown table or column) are usage errors (exit 2).
fn statement_or_failure(e: QueryError) -> anyhow::Error {
    if e.is_statement_error() {
        crate::usage(format!("{e}"))
    } else {
        anyhow::Error::new(e)
    }
}

/// Writes the batches as they come (the table format waits for all of them to align the
/// columns).
fn write(mut results: Results, format: OutFormat, out: &mut dyn Write) -> Result<()> {
    use logveil_query::arrow;
    let schema = results.schema().clone();
    match format {
        OutFormat::Table => {
            let batches = results
                .collect::<Result<Vec<_>, _>>()
                .map_err(statement_or_failure)?;
            let t = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
            writeln!(out, "{t}")?;
        }
        OutFormat::Csv => {
            // CSV has no maps: `app.attributes` is written as a JSON object in text.
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            // The header even when no row comes.
            w.write(&RecordBatch::new_empty(maps_as_text_schema(&schema)))?;
            for b in &mut results {
                w.write(&maps_as_text(&b.map_err(statement_or_failure)?)?)?;
            }
        }
        OutFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in &mut results {
                w.write(&b.map_err(statement_or_failure)?)?;
            }
            w.finish()?;
        }
        OutFormat::Parquet => return Err(crate::usage("--format parquet needs --output FILE")),
    }
    Ok(())
}

fn write_parquet<W: Write + Send>(mut results: Results, out: W) -> Result<()> {
    let schema = results.schema().clone();
    let mut w = logveil_query::parquet::arrow::ArrowWriter::try_new(out, schema, None)?;
    for b in &mut results {
        w.write(&b.map_err(statement_or_failure)?)?;
    }
    w.close()?;
    Ok(())
}

/// The schema with map columns as text (CSV has no maps).
pub(crate) fn maps_as_text_schema(schema: &Arc<Schema>) -> Arc<Schema> {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Map(..) => Arc::new(Field::new(f.name(), DataType::Utf8, true)),
                _ => f.clone(),
            })
            .collect::<Vec<_>>(),
    ))
}

/// Map columns (app attributes) as JSON objects in text.
pub(crate) fn maps_as_text(b: &RecordBatch) -> Result<RecordBatch> {
    if !b
        .schema()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Map(..)))
    {
        return Ok(b.clone());
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
    for c in b.columns() {
        let Some(m) = c.as_any().downcast_ref::<MapArray>() else {
            columns.push(c.clone());
            continue;
        };
        let keys = cast(m.keys(), &DataType::Utf8)?;
        let values = cast(m.values(), &DataType::Utf8)?;
        let (keys, values) = (
            keys.as_any()
                .downcast_ref::<StringArray>()
                .context("map keys as text")?,
            values
                .as_any()
                .downcast_ref::<StringArray>()
                .context("map values as text")?,
        );
        let offsets = m.value_offsets();
        let mut out = StringBuilder::new();
        for i in 0..m.len() {
            if m.is_null(i) {
                out.append_null();
                continue;
            }
            let mut obj = serde_json::Map::new();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                let v = if values.is_null(j) {
                    Value::Null
                } else {
                    Value::from(values.value(j))
                };
                obj.insert(keys.value(j).to_string(), v);
            }
            out.append_value(Value::Object(obj).to_string());
        }
        columns.push(Arc::new(out.finish()));
    }
    Ok(RecordBatch::try_new(
        maps_as_text_schema(&b.schema()),
        columns,
    )?)
}

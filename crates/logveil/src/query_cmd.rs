//! `logveil query --root DIR "SQL"`: SQL over the datasets of an output root (DataFusion,
//! through `logveil-query`), with expired partitions invisible; the result as a table, CSV,
//! JSON lines or Parquet.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use logveil_query::arrow::array::RecordBatch;
use logveil_query::{QueryError, QueryOptions, Results};

use crate::keys_cmd::now_or;

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
    /// are invisible. For tests and audits.
    #[arg(long, value_name = "RFC3339", env = "LOGVEIL_NOW")]
    pub now: Option<String>,
    /// Threads (default: all cores).
    #[arg(long, short = 'j')]
    pub threads: Option<usize>,
}

pub fn cmd_query(a: QueryArgs) -> Result<()> {
    if a.format == OutFormat::Parquet && a.output.is_none() {
        return Err(crate::usage("--format parquet needs --output FILE"));
    }
    if !a.root.is_dir() {
        return Err(crate::usage(format!(
            "--root {}: not a directory (give an output root: a pipeline's [output] root)",
            a.root.display()
        )));
    }
    let opts = QueryOptions {
        root: a.root.clone(),
        now_micros: now_or(&a.now)?,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
    };
    let results = logveil_query::query(&opts, &a.sql, a.explain).map_err(statement_or_failure)?;
    for t in results.tables() {
        if t.hidden > 0 {
            say!(
                info,
                "{}: {} expired partition(s) not shown (not swept yet)",
                t.name,
                t.hidden
            );
        }
    }
    match &a.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(results, a.format, &mut out)?;
            out.flush()?;
        }
        Some(path) => {
            // Written beside the destination, then renamed over it: a reader never sees
            // half a result, and a failed query leaves the old file.
            let tmp = path.with_extension("logveil-tmp");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let written = match a.format {
                OutFormat::Parquet => write_parquet(results, &mut w),
                _ => write(results, a.format, &mut w),
            }
            .and_then(|()| {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                Ok(())
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, path)
                .with_context(|| format!("moving the result into {}", path.display()))?;
        }
    }
    Ok(())
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
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            // The header even when no row comes.
            w.write(&RecordBatch::new_empty(schema))?;
            for b in &mut results {
                w.write(&b.map_err(statement_or_failure)?)?;
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

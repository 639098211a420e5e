//! `logveil generate`: synthetic access logs and session events (see the `logveil-fixtures`
//! crate) for the demo, the tests and the benchmarks.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use logveil_fixtures::{AccessFormat, Config};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Combined,
    Common,
    Session,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Number of lines.
    #[arg(long, default_value_t = 10_000)]
    lines: u64,
    /// Seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Plant canaries (raw identifiers that must never reach any output).
    #[arg(long)]
    canaries: bool,
    /// Hours the timestamps span.
    #[arg(long, default_value_t = 6)]
    span_hours: u32,
    /// Output file (default: stdout).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(a: GenerateArgs) -> Result<()> {
    let cfg = Config {
        seed: a.seed,
        canaries: a.canaries,
        span_hours: a.span_hours.max(1),
        ..Config::default()
    };
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = BufWriter::with_capacity(1 << 20, &mut out);
    let expected = match a.kind {
        Kind::Combined => {
            logveil_fixtures::write_access(&cfg, AccessFormat::Combined, a.lines, &mut w)
        }
        Kind::Common => logveil_fixtures::write_access(&cfg, AccessFormat::Common, a.lines, &mut w),
        Kind::Session => logveil_fixtures::write_sessions(&cfg, a.lines, &mut w),
    }
    .context("writing generated lines")?;
    w.flush().context("writing generated lines")?;
    say!(
        info,
        "generated {} lines: {} valid, {} proxy traffic, {} without consent, {} malformed",
        expected.lines,
        expected.valid,
        expected.proxy,
        expected.no_consent,
        expected.malformed
    );
    Ok(())
}

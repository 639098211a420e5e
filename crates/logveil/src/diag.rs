//! logveil's own messages on stderr (progress, warnings, errors, the summary of a run): plain
//! text lines `logveil: …` by default, or with `--log-json` one JSON object per line
//! (`timestamp`, `level`, `message`, `target`) through `tracing`, for log collectors. The
//! messages are the same either way; none carries a raw identifier (they name sources,
//! datasets, files of the configuration and counts, never input).

use std::sync::OnceLock;

/// How messages are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug)]
pub enum Level {
    Info,
    Warn,
    Error,
    /// An error that is not the run's end (a privacy self-check finding): no `error:` tag in
    /// text, level ERROR in JSON.
    Alert,
}

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Sets up `tracing` (logveil's debug diagnostics, filtered by `--log`) and the format of
/// the messages.
pub fn init(format: LogFormat, filter: &str) {
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            // The messages below are always shown, whatever `--log` says.
            .with_env_filter(
                filter.add_directive("logveil::diag=info".parse().expect("a valid directive")),
            )
            .with_writer(std::io::stderr)
            .init(),
    }
}

/// Writes one message (without the `logveil: ` prefix).
pub fn emit(level: Level, msg: &str) {
    match FORMAT.get().copied().unwrap_or(LogFormat::Text) {
        LogFormat::Text => {
            let tag = match level {
                Level::Info | Level::Alert => "",
                Level::Warn => "warning: ",
                Level::Error => "error: ",
            };
            eprintln!("logveil: {tag}{msg}");
        }
        LogFormat::Json => match level {
            Level::Info => tracing::info!("{msg}"),
            Level::Warn => tracing::warn!("{msg}"),
            Level::Error | Level::Alert => tracing::error!("{msg}"),
        },
    }
}

/// `say!(info|warn|error, "format", args…)`: one message on stderr, text or JSON.
macro_rules! say {
    (info, $($a:tt)+) => { $crate::diag::emit($crate::diag::Level::Info, &format!($($a)+)) };
    (warn, $($a:tt)+) => { $crate::diag::emit($crate::diag::Level::Warn, &format!($($a)+)) };
    (error, $($a:tt)+) => { $crate::diag::emit($crate::diag::Level::Error, &format!($($a)+)) };
    (alert, $($a:tt)+) => { $crate::diag::emit($crate::diag::Level::Alert, &format!($($a)+)) };
}

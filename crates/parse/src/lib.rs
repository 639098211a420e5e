//! Zero-copy parsers for logveil's inputs: nginx/Apache access logs (`combined`, `common` and
//! custom `log_format`s), JSON session events, syslog (RFC 5424/3164), application logs
//! (logfmt/JSON) and proxy logs (Squid, JSON gateway), plus format detection. Parsed values
//! borrow from the input line; errors say why and where a line failed, never what it
//! contained.
//!
//! Library code never prints and never panics on input data: indexing, `unwrap` and friends
//! are denied outside tests.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::print_stdout,
        clippy::print_stderr,
        clippy::dbg_macro
    )
)]

pub mod access;
pub mod applog;
pub mod custom;
pub mod detect;
pub mod error;
pub mod logfmt;
pub mod proxy;
pub mod session;
pub mod syslog;

pub use access::{AccessFormat, AccessLine, Request, parse_access};
pub use custom::{FormatError, LogFormat};
pub use error::ParseError;
pub use proxy::{ProxyFormat, ProxyRecord, parse_proxy};
pub use session::{Consent, SessionEvent, is_destination_key, parse_session};
pub use syslog::{SyslogMessage, SyslogMode, SyslogOptions, SyslogProtocol, parse_syslog};

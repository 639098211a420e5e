//! Zero-copy parsers for logveil's inputs: nginx/Apache access logs (`combined` and `common`)
//! and JSON session events. Parsed values borrow from the input line; errors say why and
//! where a line failed, never what it contained.
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
pub mod error;
pub mod session;

pub use access::{AccessFormat, AccessLine, Request, parse_access};
pub use error::ParseError;
pub use session::{Consent, SessionEvent, is_destination_key, parse_session};

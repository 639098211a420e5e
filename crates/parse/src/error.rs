//! The parse error shared by every parser in this crate: a quarantine reason, the byte offset
//! where parsing went wrong and a fixed description of what was expected there.
//!
//! Privacy rule: a [`ParseError`] never carries any byte of the input line (lines hold IP
//! addresses, e-mail addresses, tokens…). Its fields are an enum, an offset and a `'static`
//! string, so its `Display` output cannot leak input by construction.

use logveil_model::QuarantineReason;

/// Why and where a line could not be parsed. Holds no input bytes (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} at column {column}: expected {expected}", .reason.as_str())]
pub struct ParseError {
    /// The quarantine reason the caller should record.
    pub reason: QuarantineReason,
    /// 0-based byte offset in the line where parsing went wrong.
    pub column: usize,
    /// What the parser expected at `column` (a fixed description, never input data).
    pub expected: &'static str,
}

impl ParseError {
    /// Builds an error; `expected` must be a fixed description, never input data.
    pub const fn new(reason: QuarantineReason, column: usize, expected: &'static str) -> Self {
        ParseError {
            reason,
            column,
            expected,
        }
    }
}

/// JSON lines must be UTF-8 (RFC 8259 §8.1): `bad_json` at the first invalid byte otherwise.
pub(crate) fn require_utf8(line: &[u8]) -> Result<(), ParseError> {
    std::str::from_utf8(line).map(|_| ()).map_err(|e| {
        ParseError::new(
            QuarantineReason::BadJson,
            e.valid_up_to(),
            "UTF-8 text (JSON must be UTF-8)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_reason_column_expected() {
        let e = ParseError::new(QuarantineReason::Malformed, 14, "'['");
        assert_eq!(e.to_string(), "malformed at column 14: expected '['");
    }
}

//! Syslog messages: RFC 5424 (strict) and RFC 3164 (BSD syslog, with its common variants),
//! plus RFC 6587 framing (octet counting and newline). Zero-copy: every field borrows from
//! the input. Year inference for RFC 3164 timestamps uses an explicit reference clock
//! ([`SyslogOptions::reference_micros`]), never the system clock.
//!
//! # RFC 5424 ([`SyslogMode::Rfc5424`])
//!
//! ```text
//! <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
//! ```
//!
//! Applied exactly as the RFC's ABNF says; any deviation is an error, never a half-parsed
//! message:
//!
//! * `PRI` is `0..=191`, one to three digits, no leading zero (only `<0>` starts with `0`).
//! * `VERSION` is `NONZERO-DIGIT 0*2DIGIT` (`1..=999`), as the ABNF allows. Only version 1
//!   exists (IANA registry), but every version is parsed with the version-1 grammar and
//!   reported in [`SyslogMessage::version`] so the caller can decide; go-syslog does the same.
//!   ([`SyslogMode::Auto`] only picks RFC 5424 for version 1, see there.)
//! * `TIMESTAMP` is `-` or `YYYY-MM-DDThh:mm:ss[.1-6 digits](Z|±hh:mm)`: upper-case `T` and
//!   `Z` only, at most six fraction digits, offsets up to `±23:59`, real calendar dates
//!   (leap years included), seconds `00..=59` (RFC 5424 §6.2.3 forbids leap seconds, and
//!   go-syslog rejects `:60` too) and years 1970..=9999 after the offset is applied. Any
//!   problem with it gives [`QuarantineReason::BadTimestamp`].
//! * `HOSTNAME`, `APP-NAME`, `PROCID`, `MSGID`: 1 to 255, 48, 128 and 32 bytes of printable
//!   US-ASCII (`!`..=`~`); `-` gives `None`.
//! * `STRUCTURED-DATA` is `-` or one or more `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]` with no
//!   space between elements. SD-ID and PARAM-NAME: 1 to 32 printable US-ASCII bytes except
//!   `=`, space, `]` and `"`. PARAM-VALUE: UTF-8 in which `"`, `\` and `]` must be escaped
//!   with a backslash; a backslash before any other character is kept literally (RFC 5424
//!   §6.3.3; go-syslog rejects it instead). The same SD-ID may not appear twice (§6.3.2). At
//!   most [`MAX_SD_ELEMENTS`] elements per message (a bound on the duplicate check's work).
//!   The raw bytes are returned; walk them with [`sd_elements`] and decode values with
//!   [`unescape_param`].
//! * `MSG` is optional (absent and empty both give an empty message). If it starts with the
//!   UTF-8 BOM the BOM is removed and the rest must be valid UTF-8; otherwise it may hold
//!   any bytes (newlines included).
//!
//! # RFC 3164 ([`SyslogMode::Rfc3164`])
//!
//! Lenient, for what real senders write:
//!
//! ```text
//! [<PRI>] TIMESTAMP SP [HOSTNAME SP] [TAG[:] SP] MSG
//! ```
//!
//! * `<PRI>` is optional (`0..=191`, leading zeros tolerated); spaces after it are skipped.
//! * `TIMESTAMP` is one of `Mmm dd hh:mm:ss` (day zero-padded, space-padded or a single digit;
//!   month case-insensitive), `Mmm dd yyyy hh:mm:ss` (explicit year, Cisco style), either of
//!   them with a fraction after the seconds (`.123`, kept to microseconds), or an RFC 3339
//!   timestamp (rsyslog's high-precision format, parsed with
//!   [`logveil_model::time::parse_rfc3339`]). Without a year, the year comes from
//!   [`SyslogOptions::reference_micros`]; the zone from
//!   [`SyslogOptions::local_offset_secs`]. A line without any of these (or with an impossible
//!   date) is a [`QuarantineReason::BadTimestamp`] error.
//! * HOSTNAME heuristic: the first word after the timestamp is the TAG, and there is no
//!   HOSTNAME, if it looks like a tag: it ends with `:` (`prog:`, `prog[pid]:`) or is
//!   `prog[pid]`. Otherwise it is the HOSTNAME, and the next word is the TAG if it looks like
//!   one; if it does not, there is no TAG and the message starts there (`host Some message`,
//!   as go-syslog reads it). A tag therefore needs a colon or a `[pid]`: a bare word is never
//!   taken for a program name.
//! * TAG: `app[pid]:`, `app[pid]`, `app:`; the pid is the text in the last `[...]`. Any
//!   non-space bytes are accepted in `app` (`sshd(pam_unix)`, `postfix/smtpd`).
//! * MSG: everything after the single space that follows the TAG (or after the spaces that
//!   follow the HOSTNAME when there is no TAG); any bytes.
//!
//! # Framing
//!
//! [`strip_octet_count`] removes an RFC 6587 octet count from a line; [`FrameDecoder`] splits
//! a byte stream into frames, octet-counted or newline-terminated, with a bounded buffer.
//!
//! Errors are [`QuarantineReason::BadTimestamp`] for timestamps and
//! [`QuarantineReason::Malformed`] otherwise, with the byte offset where the line stopped
//! matching. Errors and `Debug` output never carry input bytes.

use std::borrow::Cow;

use logveil_model::QuarantineReason;
use logveil_model::time::parse_rfc3339;
use logveil_model::time::{
    END_OF_TIME, MICROS_PER_DAY, MICROS_PER_SECOND, MONTH_ABBREVS, civil_from_days, civil_to_micros,
};
use memchr::{memchr, memchr3, memrchr};

use crate::error::ParseError;

/// Which grammar to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogMode {
    /// RFC 5424 only; anything that deviates from the grammar is an error (never half-parsed).
    Rfc5424,
    /// RFC 3164 and its common variants only.
    Rfc3164,
    /// Lenient: RFC 5424 when the line starts with `<PRI>1 `, else RFC 3164.
    Auto,
}

/// Which grammar a message was parsed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogProtocol {
    Rfc5424,
    Rfc3164,
}

impl SyslogProtocol {
    /// Stable name: `rfc5424` or `rfc3164`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogProtocol::Rfc5424 => "rfc5424",
            SyslogProtocol::Rfc3164 => "rfc3164",
        }
    }
}

/// Parser settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogOptions {
    /// Reference clock (µs since the epoch, UTC) for RFC 3164 timestamps, which carry no year:
    /// the year chosen is the one that puts the timestamp closest before the reference, allowing
    /// it to be up to 31 days after it (clock skew, messages around New Year).
    pub reference_micros: i64,
    /// Offset of the senders' local time from UTC in seconds, applied to RFC 3164 timestamps
    /// (which carry no zone). Default 0 (UTC).
    pub local_offset_secs: i32,
}

/// One parsed syslog message. `Debug` shows lengths of the free-text fields only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    pub protocol: SyslogProtocol,
    /// `PRI / 8`; `None` when the message has no PRI (RFC 3164 variant).
    pub facility: Option<u8>,
    /// `PRI % 8`; `None` when the message has no PRI.
    pub severity: Option<u8>,
    /// RFC 5424 VERSION (`1..=999`; only 1 is defined); `None` for RFC 3164.
    pub version: Option<u16>,
    /// Event time, µs since the epoch, UTC; `None` for the RFC 5424 NILVALUE.
    pub ts_micros: Option<i64>,
    /// `None` for NILVALUE or when absent.
    pub hostname: Option<&'a [u8]>,
    /// RFC 5424 APP-NAME, or the program of the RFC 3164 TAG; `None` for NILVALUE or absent.
    pub app_name: Option<&'a [u8]>,
    /// RFC 5424 PROCID, or the `[pid]` of the RFC 3164 TAG; `None` for NILVALUE or absent.
    pub proc_id: Option<&'a [u8]>,
    /// RFC 5424 MSGID; `None` for NILVALUE and always for RFC 3164.
    pub msg_id: Option<&'a [u8]>,
    /// RFC 5424 STRUCTURED-DATA as written (validated, escapes not decoded); `None` for `-`.
    pub structured_data: Option<&'a [u8]>,
    /// MSG with a leading UTF-8 BOM removed; may be empty.
    pub message: &'a [u8],
}

impl<'a> SyslogMessage<'a> {
    /// The PRI value (`facility * 8 + severity`), when the message had one.
    pub fn priority(&self) -> Option<u8> {
        Some(
            self.facility?
                .saturating_mul(8)
                .saturating_add(self.severity?),
        )
    }

    /// The structured-data elements (none for `-` and for RFC 3164).
    pub fn sd_elements(&self) -> SdElements<'a> {
        sd_elements(self.structured_data.unwrap_or_default())
    }
}

/// Length of an optional raw field, for redacted `Debug` output.
fn len_of(f: Option<&[u8]>) -> Option<usize> {
    f.map(<[u8]>::len)
}

impl std::fmt::Debug for SyslogMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogMessage")
            .field("protocol", &self.protocol)
            .field("facility", &self.facility)
            .field("severity", &self.severity)
            .field("version", &self.version)
            .field("ts_micros", &self.ts_micros)
            .field("hostname_len", &len_of(self.hostname))
            .field("app_name_len", &len_of(self.app_name))
            .field("proc_id_len", &len_of(self.proc_id))
            .field("msg_id_len", &len_of(self.msg_id))
            .field("structured_data_len", &len_of(self.structured_data))
            .field("message_len", &self.message.len())
            .finish()
    }
}

/// Maximum length of the RFC 5424 HOSTNAME.
pub const HOSTNAME_MAX: usize = 255;
/// Maximum length of the RFC 5424 APP-NAME.
pub const APP_NAME_MAX: usize = 48;
/// Maximum length of the RFC 5424 PROCID.
pub const PROC_ID_MAX: usize = 128;
/// Maximum length of the RFC 5424 MSGID.
pub const MSG_ID_MAX: usize = 32;
/// Maximum length of an SD-ID or PARAM-NAME.
pub const SD_NAME_MAX: usize = 32;
/// Maximum number of SD-ELEMENTs accepted in one RFC 5424 message.
pub const MAX_SD_ELEMENTS: usize = 64;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fn malformed(column: usize, expected: &'static str) -> ParseError {
    ParseError::new(QuarantineReason::Malformed, column, expected)
}

fn bad_ts(column: usize, expected: &'static str) -> ParseError {
    ParseError::new(QuarantineReason::BadTimestamp, column, expected)
}

/// Parses one syslog message (without its frame: see [`strip_octet_count`]).
///
/// Never panics and never allocates. See the module documentation for the grammars.
pub fn parse_syslog<'a>(
    line: &'a [u8],
    mode: SyslogMode,
    opts: &SyslogOptions,
) -> Result<SyslogMessage<'a>, ParseError> {
    match mode {
        SyslogMode::Rfc5424 => parse_5424(line),
        SyslogMode::Rfc3164 => parse_3164(line, opts),
        SyslogMode::Auto => {
            let is_5424 =
                matches!(pri(line, true), Ok((_, end)) if line.get(end..end + 2) == Some(b"1 "));
            if is_5424 {
                parse_5424(line)
            } else {
                parse_3164(line, opts)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// `<PRI>` at the start of `line`: the value and the offset just after `>`. `strict` rejects
/// leading zeros (RFC 5424).
fn pri(line: &[u8], strict: bool) -> Result<(u8, usize), ParseError> {
    const EXPECTED: &str = "a priority 0..=191 within '<' '>'";
    if line.first() != Some(&b'<') {
        return Err(malformed(0, "'<' opening the priority"));
    }
    let digits = line
        .iter()
        .skip(1)
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err(malformed(1, EXPECTED));
    }
    if digits > 3 {
        return Err(malformed(4, "'>' closing the priority"));
    }
    if strict && digits > 1 && line.get(1) == Some(&b'0') {
        return Err(malformed(1, "a priority without leading zeros"));
    }
    let value = line
        .iter()
        .skip(1)
        .take(digits)
        .fold(0u16, |v, &c| v * 10 + u16::from(c - b'0'));
    if value > 191 {
        return Err(malformed(1, EXPECTED));
    }
    if line.get(1 + digits) != Some(&b'>') {
        return Err(malformed(1 + digits, "'>' closing the priority"));
    }
    Ok((value as u8, 2 + digits))
}

/// The bytes of `line` from `at` on (empty past the end).
fn rest_at(line: &[u8], at: usize) -> &[u8] {
    line.get(at..).unwrap_or_default()
}

/// The run of bytes from `at` up to the next space (or the end).
fn word_at(line: &[u8], at: usize) -> &[u8] {
    let rest = rest_at(line, at);
    let end = memchr(b' ', rest).unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

fn skip_spaces(line: &[u8], mut at: usize) -> usize {
    while line.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// Value of an all-digit slice (callers bound its length so it cannot overflow).
fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

// ---------------------------------------------------------------------------------------------
// RFC 5424
// ---------------------------------------------------------------------------------------------

fn parse_5424(line: &[u8]) -> Result<SyslogMessage<'_>, ParseError> {
    let (pri, mut pos) = pri(line, true)?;

    // VERSION = NONZERO-DIGIT 0*2DIGIT
    let vlen = rest_at(line, pos)
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if vlen == 0 || line.get(pos) == Some(&b'0') {
        return Err(malformed(pos, "a version 1..=999"));
    }
    if vlen > 3 {
        return Err(malformed(pos + 3, "a version 1..=999"));
    }
    let version = num(line.get(pos..pos + vlen).unwrap_or_default()).unwrap_or(0) as u16;
    pos += vlen;
    pos = sp(line, pos, "' ' after the version")?;

    // TIMESTAMP
    let ts_word = word_at(line, pos);
    let ts_micros = if ts_word == b"-" {
        None
    } else {
        Some(rfc5424_timestamp(ts_word).map_err(|off| {
            bad_ts(
                pos + off,
                "an RFC 5424 timestamp (YYYY-MM-DDThh:mm:ss[.ffffff]Z or ±hh:mm) or '-'",
            )
        })?)
    };
    pos += ts_word.len();
    pos = sp(line, pos, "' ' after the timestamp")?;

    let (hostname, p) = header_field(
        line,
        pos,
        HOSTNAME_MAX,
        "a hostname (1 to 255 printable ASCII) or '-'",
    )?;
    let (app_name, p) = header_field(
        line,
        p,
        APP_NAME_MAX,
        "an app-name (1 to 48 printable ASCII) or '-'",
    )?;
    let (proc_id, p) = header_field(
        line,
        p,
        PROC_ID_MAX,
        "a procid (1 to 128 printable ASCII) or '-'",
    )?;
    let (msg_id, p) = header_field(
        line,
        p,
        MSG_ID_MAX,
        "a msgid (1 to 32 printable ASCII) or '-'",
    )?;
    pos = p;

    let (structured_data, p) = structured_data(line, pos)?;
    pos = p;

    let message = match line.get(pos) {
        None => &[][..],
        Some(b' ') => {
            let msg = rest_at(line, pos + 1);
            match msg.strip_prefix(BOM) {
                Some(text) => {
                    if let Err(e) = std::str::from_utf8(text) {
                        return Err(malformed(
                            pos + 1 + BOM.len() + e.valid_up_to(),
                            "valid UTF-8 after the byte order mark",
                        ));
                    }
                    text
                }
                None => msg,
            }
        }
        Some(_) => {
            return Err(malformed(
                pos,
                "' ' or the end of the line after structured data",
            ));
        }
    };

    Ok(SyslogMessage {
        protocol: SyslogProtocol::Rfc5424,
        facility: Some(pri / 8),
        severity: Some(pri % 8),
        version: Some(version),
        ts_micros,
        hostname,
        app_name,
        proc_id,
        msg_id,
        structured_data,
        message,
    })
}

/// Expects a single space at `at`; returns the offset after it.
fn sp(line: &[u8], at: usize, expected: &'static str) -> Result<usize, ParseError> {
    if line.get(at) == Some(&b' ') {
        Ok(at + 1)
    } else {
        Err(malformed(at, expected))
    }
}

/// A header field of 1 to `max` printable US-ASCII bytes followed by a space; `-` is `None`.
fn header_field<'a>(
    line: &'a [u8],
    at: usize,
    max: usize,
    expected: &'static str,
) -> Result<(Option<&'a [u8]>, usize), ParseError> {
    let n = rest_at(line, at)
        .iter()
        .take(max + 1)
        .take_while(|&&c| is_print_ascii(c))
        .count();
    if n == 0 {
        return Err(malformed(at, expected));
    }
    if n > max {
        return Err(malformed(at + max, expected));
    }
    let field = line.get(at..at + n).unwrap_or_default();
    let next = sp(line, at + n, "' ' after a header field")?;
    Ok(((field != b"-").then_some(field), next))
}

fn is_print_ascii(c: u8) -> bool {
    (33..=126).contains(&c)
}

/// The strict RFC 5424 timestamp (not NILVALUE); on error, the offset in `t` where it went
/// wrong.
fn rfc5424_timestamp(t: &[u8]) -> Result<i64, usize> {
    let digit_at = |i: usize| t.get(i).is_some_and(u8::is_ascii_digit);
    let byte_at = |i: usize, c: u8| t.get(i) == Some(&c);
    // YYYY-MM-DDThh:mm:ss
    const SHAPE: &[u8; 19] = b"0000-00-00T00:00:00";
    for (i, &s) in SHAPE.iter().enumerate() {
        let ok = if s == b'0' {
            digit_at(i)
        } else {
            byte_at(i, s)
        };
        if !ok {
            return Err(i);
        }
    }
    let two = |i: usize| num(t.get(i..i + 2).unwrap_or_default()).unwrap_or(99);
    if two(5) == 0 || two(5) > 12 {
        return Err(5);
    }
    if two(8) == 0 || two(8) > 31 {
        return Err(8);
    }
    if two(11) > 23 {
        return Err(11);
    }
    if two(14) > 59 {
        return Err(14);
    }
    // No leap seconds in RFC 5424 (TIME-SECOND is 00-59).
    if two(17) > 59 {
        return Err(17);
    }
    let mut i = 19;
    if byte_at(i, b'.') {
        let n = t
            .iter()
            .skip(i + 1)
            .take(7)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 {
            return Err(i + 1);
        }
        if n > 6 {
            return Err(i + 7);
        }
        i += 1 + n;
    }
    match t.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') => {
            if !(digit_at(i + 1) && digit_at(i + 2)) {
                return Err(i + 1);
            }
            if two(i + 1) > 23 {
                return Err(i + 1);
            }
            if !byte_at(i + 3, b':') {
                return Err(i + 3);
            }
            if !(digit_at(i + 4) && digit_at(i + 5)) || two(i + 4) > 59 {
                return Err(i + 4);
            }
            i += 6;
        }
        _ => return Err(i),
    }
    if i != t.len() {
        return Err(i);
    }
    // Shape and ranges are checked; this rejects impossible days and years out of range.
    parse_rfc3339(t).ok_or(8)
}

/// STRUCTURED-DATA at `at`: `-` (None) or one or more elements; returns the raw elements and
/// the offset after them.
fn structured_data(line: &[u8], at: usize) -> Result<(Option<&[u8]>, usize), ParseError> {
    let rest = rest_at(line, at);
    match rest.first() {
        Some(b'-') => Ok((None, at + 1)),
        Some(b'[') => {
            let mut ids: [&[u8]; MAX_SD_ELEMENTS] = [&[]; MAX_SD_ELEMENTS];
            let mut count = 0;
            let mut off = 0;
            while rest.get(off) == Some(&b'[') {
                let (el, used) = sd_element(rest_at(rest, off))
                    .map_err(|(o, expected)| malformed(at + off + o, expected))?;
                if ids.iter().take(count).any(|id| *id == el.id) {
                    return Err(malformed(
                        at + off + 1,
                        "an SD-ID not used before in the message",
                    ));
                }
                match ids.get_mut(count) {
                    Some(slot) => *slot = el.id,
                    None => return Err(malformed(at + off, "at most 64 structured data elements")),
                }
                count += 1;
                off += used;
            }
            Ok((rest.get(..off), at + off))
        }
        _ => Err(malformed(at, "structured data ('[' or '-')")),
    }
}

const SD_NAME_EXPECTED: &str = "an SD name (1 to 32 printable ASCII except '=', ' ', ']' and '\"')";

/// Length of the SD-NAME at the start of `b` (up to `SD_NAME_MAX + 1`).
fn sd_name_len(b: &[u8]) -> usize {
    b.iter()
        .take(SD_NAME_MAX + 1)
        .take_while(|&&c| is_print_ascii(c) && !matches!(c, b'=' | b']' | b'"'))
        .count()
}

/// One SD-ELEMENT at the start of `b` (which starts with `[`): the element and the bytes used.
/// On error, the offset in `b` and what was expected.
fn sd_element(b: &[u8]) -> Result<(SdElement<'_>, usize), (usize, &'static str)> {
    if b.first() != Some(&b'[') {
        return Err((0, "'['"));
    }
    let n = sd_name_len(rest_at(b, 1));
    if n == 0 {
        return Err((1, SD_NAME_EXPECTED));
    }
    if n > SD_NAME_MAX {
        return Err((1 + SD_NAME_MAX, SD_NAME_EXPECTED));
    }
    let id = b.get(1..1 + n).unwrap_or_default();
    let params_start = 1 + n;
    let mut i = params_start;
    loop {
        match b.get(i) {
            Some(b']') => {
                let params_raw = b.get(params_start..i).unwrap_or_default();
                return Ok((SdElement { id, params_raw }, i + 1));
            }
            Some(b' ') => {
                let (_, used) = sd_param(rest_at(b, i)).map_err(|(o, e)| (i + o, e))?;
                i += used;
            }
            _ => return Err((i, "' ' or ']' in a structured data element")),
        }
    }
}

/// One ` PARAM-NAME="PARAM-VALUE"` at the start of `b` (which starts with a space): the
/// param (raw value) and the bytes used. On error, the offset in `b` and what was expected.
fn sd_param(b: &[u8]) -> Result<(SdParam<'_>, usize), (usize, &'static str)> {
    if b.first() != Some(&b' ') {
        return Err((0, "' '"));
    }
    let n = sd_name_len(rest_at(b, 1));
    if n == 0 {
        return Err((1, SD_NAME_EXPECTED));
    }
    if n > SD_NAME_MAX {
        return Err((1 + SD_NAME_MAX, SD_NAME_EXPECTED));
    }
    let name = b.get(1..1 + n).unwrap_or_default();
    if b.get(1 + n) != Some(&b'=') {
        return Err((1 + n, "'=' after the param name"));
    }
    if b.get(2 + n) != Some(&b'"') {
        return Err((2 + n, "'\"' opening the param value"));
    }
    let start = 3 + n;
    let mut j = start;
    loop {
        let Some(off) = memchr3(b'\\', b'"', b']', rest_at(b, j)) else {
            return Err((b.len(), "'\"' closing the param value"));
        };
        j += off;
        match b.get(j) {
            Some(b'"') => break,
            Some(b'\\') => {
                // `\"`, `\\` and `\]` are escapes; any other backslash is a literal one.
                j += if matches!(b.get(j + 1), Some(b'"' | b'\\' | b']')) {
                    2
                } else {
                    1
                };
            }
            _ => return Err((j, "']' escaped as '\\]' in the param value")),
        }
    }
    let value = b.get(start..j).unwrap_or_default();
    if let Err(e) = std::str::from_utf8(value) {
        return Err((start + e.valid_up_to(), "UTF-8 in the param value"));
    }
    Ok((SdParam { name, value }, j + 1))
}

/// One structured-data element: its SD-ID and its parameters. `Debug` shows lengths only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// The SD-ID (e.g. `exampleSDID@32473`, `origin`).
    pub id: &'a [u8],
    /// The raw ` name="value"…` part, between the SD-ID and the closing `]`.
    params_raw: &'a [u8],
}

impl<'a> SdElement<'a> {
    /// The element's parameters, in order (names may repeat).
    pub fn params(&self) -> SdParams<'a> {
        SdParams {
            rest: self.params_raw,
        }
    }
}

impl std::fmt::Debug for SdElement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdElement")
            .field("id_len", &self.id.len())
            .field("params_len", &self.params_raw.len())
            .finish()
    }
}

/// One structured-data parameter. `Debug` shows lengths only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdParam<'a> {
    /// PARAM-NAME.
    pub name: &'a [u8],
    /// PARAM-VALUE as written, escapes not decoded (see [`SdParam::unescaped_value`]).
    pub value: &'a [u8],
}

impl<'a> SdParam<'a> {
    /// The value with `\"`, `\\` and `\]` decoded (see [`unescape_param`]).
    pub fn unescaped_value(&self) -> Cow<'a, [u8]> {
        unescape_param(self.value)
    }
}

impl std::fmt::Debug for SdParam<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdParam")
            .field("name_len", &self.name.len())
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// Iterator over the elements of a STRUCTURED-DATA field; see [`sd_elements`]. `Debug` shows
/// the remaining length only.
#[derive(Clone)]
pub struct SdElements<'a> {
    rest: &'a [u8],
}

impl std::fmt::Debug for SdElements<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdElements")
            .field("rest_len", &self.rest.len())
            .finish()
    }
}

impl<'a> Iterator for SdElements<'a> {
    type Item = SdElement<'a>;

    fn next(&mut self) -> Option<SdElement<'a>> {
        match sd_element(self.rest) {
            Ok((el, used)) => {
                self.rest = rest_at(self.rest, used);
                Some(el)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Iterator over the parameters of one element; see [`SdElement::params`]. `Debug` shows the
/// remaining length only.
#[derive(Clone)]
pub struct SdParams<'a> {
    rest: &'a [u8],
}

impl std::fmt::Debug for SdParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdParams")
            .field("rest_len", &self.rest.len())
            .finish()
    }
}

impl<'a> Iterator for SdParams<'a> {
    type Item = SdParam<'a>;

    fn next(&mut self) -> Option<SdParam<'a>> {
        match sd_param(self.rest) {
            Ok((p, used)) => {
                self.rest = rest_at(self.rest, used);
                Some(p)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Walks a STRUCTURED-DATA field as returned in [`SyslogMessage::structured_data`] (the
/// `[id name="value"…][…]` bytes). Stops at the first thing that is not a valid element, so on
/// validated input it yields every element and on anything else it never panics.
pub fn sd_elements(sd: &[u8]) -> SdElements<'_> {
    SdElements { rest: sd }
}

/// Decodes a raw PARAM-VALUE: `\"`, `\\` and `\]` become `"`, `\` and `]`; a backslash before
/// anything else is kept as is (RFC 5424 §6.3.3). Borrows when there is nothing to decode.
pub fn unescape_param(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter().copied().peekable();
    while let Some(c) = it.next() {
        if c == b'\\'
            && let Some(&n) = it.peek()
            && matches!(n, b'"' | b'\\' | b']')
        {
            out.push(n);
            it.next();
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------------------------
// RFC 3164
// ---------------------------------------------------------------------------------------------

const TS_3164_EXPECTED: &str = "a timestamp like 'Mmm dd hh:mm:ss' or RFC 3339";

fn parse_3164<'a>(line: &'a [u8], opts: &SyslogOptions) -> Result<SyslogMessage<'a>, ParseError> {
    let (facility, severity, mut pos) = if line.first() == Some(&b'<') {
        let (p, end) = pri(line, false)?;
        (Some(p / 8), Some(p % 8), end)
    } else {
        (None, None, 0)
    };
    pos = skip_spaces(line, pos);

    let (ts, used) =
        timestamp_3164(rest_at(line, pos), opts).ok_or_else(|| bad_ts(pos, TS_3164_EXPECTED))?;
    pos += used;
    match line.get(pos) {
        None | Some(b' ') => pos = skip_spaces(line, pos),
        Some(_) => return Err(bad_ts(pos, "' ' after the timestamp")),
    }

    let first = word_at(line, pos);
    let (hostname, tag) = if first.is_empty() {
        (None, None)
    } else if let Some(tag) = as_tag(first) {
        pos += first.len();
        (None, Some(tag))
    } else {
        pos = skip_spaces(line, pos + first.len());
        let second = word_at(line, pos);
        let tag = as_tag(second);
        if tag.is_some() {
            pos += second.len();
        }
        (Some(first), tag)
    };
    if tag.is_some() && line.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let (app_name, proc_id) = tag.unwrap_or((None, None));

    Ok(SyslogMessage {
        protocol: SyslogProtocol::Rfc3164,
        facility,
        severity,
        version: None,
        ts_micros: Some(ts),
        hostname,
        app_name,
        proc_id,
        msg_id: None,
        structured_data: None,
        message: rest_at(line, pos),
    })
}

type Tag<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// `app[pid]:`, `app[pid]`, `app:` → (app, pid); anything else is not a tag.
fn as_tag(word: &[u8]) -> Option<Tag<'_>> {
    let (body, colon) = match word.strip_suffix(b":") {
        Some(b) => (b, true),
        None => (word, false),
    };
    if let Some(inner) = body.strip_suffix(b"]")
        && let Some(open) = memrchr(b'[', inner)
        && let Some((app, pid)) = inner.split_at_checked(open)
        && !app.is_empty()
    {
        let pid = pid.get(1..).unwrap_or_default();
        return Some((Some(app), (!pid.is_empty()).then_some(pid)));
    }
    (colon && !body.is_empty()).then_some((Some(body), None))
}

/// The RFC 3164 timestamp at the start of `b`: UTC µs and the bytes used.
fn timestamp_3164(b: &[u8], opts: &SyslogOptions) -> Option<(i64, usize)> {
    let digits4 = b.iter().take(4).filter(|c| c.is_ascii_digit()).count() == 4;
    if digits4 && b.get(4) == Some(&b'-') {
        let word = word_at(b, 0);
        return Some((parse_rfc3339(word)?, word.len()));
    }
    let (t, used) = bsd_timestamp(b)?;
    let ts = match t.year {
        Some(y) => local_to_utc(y, &t, opts.local_offset_secs)?,
        None => infer_year(&t, opts)?,
    };
    (0..END_OF_TIME).contains(&ts).then_some((ts, used))
}

/// The fields of a BSD timestamp (`Mmm dd [yyyy] hh:mm:ss[.f]`), not yet validated as a date.
struct BsdTime {
    year: Option<i64>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

fn month_ci(b: &[u8]) -> Option<u32> {
    let pos = MONTH_ABBREVS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(b))?;
    u32::try_from(pos + 1).ok()
}

fn bsd_timestamp(b: &[u8]) -> Option<(BsdTime, usize)> {
    let month = month_ci(b.get(..3)?)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let dlen = b
        .iter()
        .skip(i)
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if !(1..=2).contains(&dlen) {
        return None;
    }
    let day = num(b.get(i..i + dlen)?)?;
    i += dlen;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let year = match (num(b.get(i..i + 4)?), b.get(i + 4)) {
        (Some(y), Some(b' ')) => {
            i += 5;
            Some(i64::from(y))
        }
        _ => None,
    };
    let hms = b.get(i..i + 8)?;
    if hms.get(2) != Some(&b':') || hms.get(5) != Some(&b':') {
        return None;
    }
    let hour = num(hms.get(0..2)?)?;
    let minute = num(hms.get(3..5)?)?;
    let second = num(hms.get(6..8)?)?;
    i += 8;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let n = b
            .iter()
            .skip(i + 1)
            .take(9)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 || b.get(i + 1 + n).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let kept = n.min(6);
        micros = num(b.get(i + 1..i + 1 + kept)?)? * 10u32.pow(6 - kept as u32);
        i += 1 + n;
    }
    if hour > 23 || minute > 59 || second > 60 || day == 0 || day > 31 {
        return None;
    }
    let t = BsdTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    Some((t, i))
}

/// UTC µs of a BSD time in year `y` written in local time `offset_secs` east of UTC; `None`
/// if the date does not exist in that year. A leap second (`:60`) is folded into the last
/// microsecond of its minute, as [`logveil_model::time`] does.
fn local_to_utc(y: i64, t: &BsdTime, offset_secs: i32) -> Option<i64> {
    civil_to_micros(y, t.month, t.day, t.hour, t.minute, t.second, t.micros)?
        .checked_sub(i64::from(offset_secs) * MICROS_PER_SECOND)
}

/// The year that puts `t` closest before the reference, up to 31 days after it.
fn infer_year(t: &BsdTime, opts: &SyslogOptions) -> Option<i64> {
    let limit = opts.reference_micros.saturating_add(31 * MICROS_PER_DAY);
    let (ref_year, _, _) = civil_from_days(opts.reference_micros.div_euclid(MICROS_PER_DAY));
    let ref_year = ref_year.clamp(1960, 10_010);
    // Eight years back always reaches a leap year's 29 February.
    (ref_year - 8..=ref_year + 1)
        .rev()
        .filter_map(|y| local_to_utc(y, t, opts.local_offset_secs))
        .find(|&ts| ts <= limit)
}

// ---------------------------------------------------------------------------------------------
// RFC 6587 framing
// ---------------------------------------------------------------------------------------------

/// Most digits accepted in an octet count (lengths up to 999 999 999).
const MAX_COUNT_DIGITS: usize = 9;

/// `MSG-LEN SP` at the start of `b`, MSG-LEN = NONZERO-DIGIT *DIGIT: the length and the
/// header size. `Err(true)` if `b` could still become a header with more bytes.
fn octet_count_header(b: &[u8]) -> Result<(usize, usize), bool> {
    if !matches!(b.first(), Some(b'1'..=b'9')) {
        return Err(false);
    }
    let n = b
        .iter()
        .take(MAX_COUNT_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n > MAX_COUNT_DIGITS {
        return Err(false);
    }
    match b.get(n) {
        Some(b' ') => {
            let len = num(b.get(..n).unwrap_or_default()).ok_or(false)?;
            Ok((len as usize, n + 1))
        }
        None => Err(true),
        Some(_) => Err(false),
    }
}

/// RFC 6587 octet counting on a line-framed input: if `line` starts with `LEN SP` and exactly
/// LEN bytes follow, returns those bytes; otherwise `None` (the line is newline-framed).
pub fn strip_octet_count(line: &[u8]) -> Option<&[u8]> {
    let (len, header) = octet_count_header(line).ok()?;
    let body = rest_at(line, header);
    (body.len() == len).then_some(body)
}

/// What [`FrameDecoder`] produced. `Debug` shows lengths only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// One message, without its octet count or its line terminator (`\n` or `\r\n`).
    Frame(&'a [u8]),
    /// A frame longer than the decoder's maximum was skipped. `len` is its declared length
    /// (octet counting) or the number of bytes seen when it was given up (newline framing:
    /// the frame is at least that long).
    TooLong { len: usize },
    /// At the end of the input, an octet-counted frame had fewer bytes than announced; `len`
    /// is the number of bytes present.
    Truncated { len: usize },
}

impl std::fmt::Debug for FrameEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameEvent::Frame(b) => f.debug_struct("Frame").field("len", &b.len()).finish(),
            FrameEvent::TooLong { len } => f.debug_struct("TooLong").field("len", len).finish(),
            FrameEvent::Truncated { len } => f.debug_struct("Truncated").field("len", len).finish(),
        }
    }
}

/// What the decoder is throwing away after reporting a frame as too long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    Nothing,
    /// The rest of an over-long newline-framed frame, up to and including the next `\n`.
    ToNewline,
    /// The rest of an over-long octet-counted frame.
    Bytes(usize),
}

/// Streaming RFC 6587 frame splitter with a bounded buffer.
///
/// Feed bytes with [`push`](Self::push) (which takes only what fits: at most the maximum
/// frame length plus a small header allowance is ever buffered) and take frames with
/// [`next_frame`](Self::next_frame) until it returns `None`; then push the rest. At the end of
/// the input call [`finish`](Self::finish) for a last frame without a terminator.
///
/// Framing is detected per frame, as RFC 6587 §3.4 suggests: a frame that starts with a
/// non-zero digit is octet-counted (`LEN SP MSG`); anything else (normally `<`) runs to the
/// next `\n` (a `\r` before it is removed). Empty lines between frames are skipped. A frame
/// longer than the maximum is reported once as [`FrameEvent::TooLong`] and skipped without
/// being buffered.
///
/// `Debug` shows sizes and state, never buffered bytes.
#[derive(Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the bytes not yet consumed.
    pos: usize,
    max_frame_len: usize,
    skip: Skip,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("buffered_len", &self.buffered_len())
            .field("max_frame_len", &self.max_frame_len)
            .field("skip", &self.skip)
            .finish()
    }
}

/// Room for an octet count header and a `\r\n` on top of the maximum frame length.
const FRAME_SLACK: usize = MAX_COUNT_DIGITS + 3;

impl FrameDecoder {
    /// A decoder for frames of at most `max_frame_len` bytes (at least 1).
    pub fn new(max_frame_len: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            pos: 0,
            max_frame_len: max_frame_len.max(1),
            skip: Skip::Nothing,
        }
    }

    /// Most bytes the decoder ever buffers.
    pub fn capacity(&self) -> usize {
        self.max_frame_len.saturating_add(FRAME_SLACK)
    }

    /// Bytes currently buffered (not yet returned as frames).
    pub fn buffered_len(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Appends as much of `data` as fits in the buffer; returns how many bytes were taken.
    /// When it returns less than `data.len()`, take frames with
    /// [`next_frame`](Self::next_frame) until `None`, then push the rest: room is then
    /// guaranteed.
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.pos > 0 {
            self.buf.drain(..self.pos.min(self.buf.len()));
            self.pos = 0;
        }
        let room = self.capacity().saturating_sub(self.buf.len());
        let take = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        take
    }

    /// The next complete frame (or report), or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<FrameEvent<'_>> {
        loop {
            let avail = rest_at(&self.buf, self.pos);
            match self.skip {
                Skip::ToNewline => match memchr(b'\n', avail) {
                    Some(i) => {
                        self.pos += i + 1;
                        self.skip = Skip::Nothing;
                        continue;
                    }
                    None => {
                        self.pos = self.buf.len();
                        return None;
                    }
                },
                Skip::Bytes(n) => {
                    let take = n.min(avail.len());
                    self.pos += take;
                    if take < n {
                        self.skip = Skip::Bytes(n - take);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                    continue;
                }
                Skip::Nothing => {}
            }
            match avail.first() {
                None => return None,
                Some(b'\n' | b'\r') => {
                    self.pos += 1;
                    continue;
                }
                Some(_) => {}
            }
            match octet_count_header(avail) {
                Ok((len, header)) => {
                    if len > self.max_frame_len {
                        self.pos += header;
                        self.skip = Skip::Bytes(len);
                        return Some(FrameEvent::TooLong { len });
                    }
                    if avail.len() < header + len {
                        return None;
                    }
                    let start = self.pos + header;
                    self.pos = start + len;
                    return self.buf.get(start..start + len).map(FrameEvent::Frame);
                }
                Err(true) => return None,
                Err(false) => {}
            }
            return match memchr(b'\n', avail) {
                Some(i) => {
                    let start = self.pos;
                    self.pos += i + 1;
                    let line = self.buf.get(start..start + i).unwrap_or_default();
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.len() > self.max_frame_len {
                        Some(FrameEvent::TooLong { len: line.len() })
                    } else {
                        Some(FrameEvent::Frame(line))
                    }
                }
                None if avail.len() > self.max_frame_len.saturating_add(1) => {
                    let len = avail.len();
                    self.pos = self.buf.len();
                    self.skip = Skip::ToNewline;
                    Some(FrameEvent::TooLong { len })
                }
                None => None,
            };
        }
    }

    /// At the end of the input: the last frame if it had no terminator (or an octet-counted
    /// frame cut short), then `None`. Resets the decoder.
    pub fn finish(&mut self) -> Option<FrameEvent<'_>> {
        let skipping = self.skip != Skip::Nothing;
        self.skip = Skip::Nothing;
        let start = self.pos;
        self.pos = self.buf.len();
        let avail = rest_at(&self.buf, start);
        if skipping {
            return None;
        }
        let avail = avail.strip_suffix(b"\r").unwrap_or(avail);
        if avail.is_empty() {
            return None;
        }
        if let Ok((len, header)) = octet_count_header(avail)
            && avail.len() < header + len
        {
            return Some(FrameEvent::Truncated {
                len: avail.len() - header,
            });
        }
        if avail.len() > self.max_frame_len {
            return Some(FrameEvent::TooLong { len: avail.len() });
        }
        Some(FrameEvent::Frame(avail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logveil_model::time::{format_rfc3339, parse_rfc3339};

    const OPTS: SyslogOptions = SyslogOptions {
        reference_micros: 1_772_323_200_000_000, // 2026-03-01T00:00:00Z
        local_offset_secs: 0,
    };

    fn p5424(line: &[u8]) -> Result<SyslogMessage<'_>, ParseError> {
        parse_syslog(line, SyslogMode::Rfc5424, &OPTS)
    }

    fn p3164(line: &[u8]) -> Result<SyslogMessage<'_>, ParseError> {
        parse_syslog(line, SyslogMode::Rfc3164, &OPTS)
    }

    fn ts(s: &str) -> i64 {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn syslog_rfc5424_full_example() {
        let line = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \xEF\xBB\xBFAn application event";
        let m = p5424(line).unwrap();
        assert_eq!(m.protocol, SyslogProtocol::Rfc5424);
        assert_eq!(
            (m.facility, m.severity, m.priority()),
            (Some(20), Some(5), Some(165))
        );
        assert_eq!(m.version, Some(1));
        assert_eq!(m.ts_micros, Some(ts("2003-10-11T22:14:15.003Z")));
        assert_eq!(m.hostname, Some(&b"mymachine.example.com"[..]));
        assert_eq!(m.app_name, Some(&b"evntslog"[..]));
        assert_eq!(m.proc_id, None);
        assert_eq!(m.msg_id, Some(&b"ID47"[..]));
        assert_eq!(m.message, b"An application event");
        let els: Vec<_> = m.sd_elements().collect();
        assert_eq!(els.len(), 2);
        assert_eq!(els[0].id, b"exampleSDID@32473");
        let params: Vec<_> = els[0].params().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            params,
            vec![
                (&b"iut"[..], &b"3"[..]),
                (b"eventSource", b"Application"),
                (b"eventID", b"1011")
            ]
        );
        assert_eq!(els[1].id, b"examplePriority@32473");
        // Debug never shows input bytes.
        let dbg = format!("{m:?} {:?} {:?}", els[0], els[0].params().next().unwrap());
        assert!(!dbg.contains("mymachine") && !dbg.contains("evntslog") && !dbg.contains("iut"));
        let mut it = m.sd_elements();
        let dbg = format!("{it:?} {:?}", it.next().unwrap().params());
        assert!(
            !dbg.contains("iut") && !dbg.contains("105") && !dbg.contains("117"),
            "{dbg}"
        );
        let mut d = FrameDecoder::new(100);
        d.push(b"secret");
        assert!(!format!("{d:?}").contains("115"), "{d:?}");
    }

    #[test]
    fn syslog_rfc5424_nil_and_minimal() {
        let m = p5424(b"<0>1 - - - - - -").unwrap();
        assert_eq!((m.facility, m.severity), (Some(0), Some(0)));
        assert_eq!(m.ts_micros, None);
        assert_eq!(
            (m.hostname, m.app_name, m.proc_id, m.msg_id),
            (None, None, None, None)
        );
        assert_eq!(m.structured_data, None);
        assert_eq!(m.message, b"");
        let m = p5424(b"<191>999 - - - - - - ").unwrap();
        assert_eq!(
            (m.priority(), m.version, m.message),
            (Some(191), Some(999), &b""[..])
        );
        // Any bytes without a BOM, newlines included.
        assert_eq!(
            p5424(b"<1>1 - - - - - - a\xff\nb").unwrap().message,
            b"a\xff\nb"
        );
        // BOM alone.
        assert_eq!(
            p5424(b"<1>1 - - - - - - \xEF\xBB\xBF").unwrap().message,
            b""
        );
    }

    #[test]
    fn syslog_rfc5424_errors_and_columns() {
        let cases: &[(&[u8], QuarantineReason, usize)] = &[
            (b"", QuarantineReason::Malformed, 0),
            (b"<01>1 - - - - - -", QuarantineReason::Malformed, 1),
            (b"<192>1 - - - - - -", QuarantineReason::Malformed, 1),
            (b"<1000>1 - - - - - -", QuarantineReason::Malformed, 4),
            (b"<1>0 - - - - - -", QuarantineReason::Malformed, 3),
            (b"<1>1000 - - - - - -", QuarantineReason::Malformed, 6),
            (b"<1>1", QuarantineReason::Malformed, 4),
            (b"<1>1 ", QuarantineReason::BadTimestamp, 5),
            (b"<1>1 -- - - - - -", QuarantineReason::BadTimestamp, 5),
            (
                b"<1>1 2003-09-31T22:14:16Z - - - - -",
                QuarantineReason::BadTimestamp,
                13,
            ),
            (
                b"<1>1 2003-09-30T22:14:60Z - - - - -",
                QuarantineReason::BadTimestamp,
                22,
            ),
            (
                b"<1>1 2003-09-30t22:14:16Z - - - - -",
                QuarantineReason::BadTimestamp,
                15,
            ),
            (
                b"<1>1 2003-09-30T22:14:16z - - - - -",
                QuarantineReason::BadTimestamp,
                24,
            ),
            (
                b"<1>1 2003-09-30T22:14:16.1234567Z - - - - -",
                QuarantineReason::BadTimestamp,
                31,
            ),
            (
                b"<1>1 2003-09-30T22:14:16.Z - - - - -",
                QuarantineReason::BadTimestamp,
                25,
            ),
            (
                b"<1>1 2003-09-30T22:14:16+24:00 - - - - -",
                QuarantineReason::BadTimestamp,
                25,
            ),
            (
                b"<1>1 2003-09-30T22:14:16+0200 - - - - -",
                QuarantineReason::BadTimestamp,
                27,
            ),
            (
                b"<1>1 1969-12-31T23:59:59Z - - - - -",
                QuarantineReason::BadTimestamp,
                13,
            ),
            (b"<1>1 -  - - - -", QuarantineReason::Malformed, 7),
            (b"<1>1 - - - - - X", QuarantineReason::Malformed, 15),
            (b"<1>1 - - - - - []", QuarantineReason::Malformed, 16),
            (b"<1>1 - - - - - [a][b][a]", QuarantineReason::Malformed, 22),
            (b"<1>1 - - - - - [a]x", QuarantineReason::Malformed, 18),
            (
                b"<1>1 - - - - - [a x=\"]\"]",
                QuarantineReason::Malformed,
                21,
            ),
            (
                b"<1>1 - - - - - [a x=\"\xff\"]",
                QuarantineReason::Malformed,
                21,
            ),
            (
                b"<1>1 - - - - - [a x=\"a\"",
                QuarantineReason::Malformed,
                23,
            ),
            (
                b"<1>1 - - - - - [a x= \"a\"]",
                QuarantineReason::Malformed,
                20,
            ),
            (b"<1>1 - - - - - -x", QuarantineReason::Malformed, 16),
            (
                b"<1>1 - - - - - - \xEF\xBB\xBFok\xff",
                QuarantineReason::Malformed,
                22,
            ),
        ];
        for (line, reason, col) in cases {
            let e = p5424(line).unwrap_err();
            assert_eq!(
                (e.reason, e.column),
                (*reason, *col),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Field length limits.
        let long = |n: usize| "a".repeat(n);
        for (pos, max) in [(0, 255), (1, 48), (2, 128), (3, 32)] {
            let mut f = vec!["-".to_string(); 4];
            f[pos] = long(max);
            let ok = format!("<1>1 - {} -", f.join(" "));
            assert!(p5424(ok.as_bytes()).is_ok(), "{pos}");
            f[pos] = long(max + 1);
            let bad = format!("<1>1 - {} -", f.join(" "));
            assert!(p5424(bad.as_bytes()).is_err(), "{pos}");
        }
        let id = long(32);
        assert!(p5424(format!("<1>1 - - - - - [{id} {id}=\"\"]").as_bytes()).is_ok());
        assert!(p5424(format!("<1>1 - - - - - [{id}a]").as_bytes()).is_err());
        // Every truncation of a valid message with structured data is an error or a valid
        // message that is a prefix, never a panic.
        let full = b"<165>1 2003-10-11T22:14:15.003Z host app 1 ID [a b=\"c\\\"\"][d] msg";
        for n in 0..full.len() {
            let _ = p5424(&full[..n]);
        }
        // Too many elements.
        let many: String = (0..=MAX_SD_ELEMENTS).map(|i| format!("[e{i}]")).collect();
        assert!(p5424(format!("<1>1 - - - - - {many}").as_bytes()).is_err());
        let ok: String = (0..MAX_SD_ELEMENTS).map(|i| format!("[e{i}]")).collect();
        assert!(p5424(format!("<1>1 - - - - - {ok}").as_bytes()).is_ok());
    }

    #[test]
    fn syslog_rfc5424_timestamps() {
        let t = |s: &str| p5424(format!("<1>1 {s} - - - - -").as_bytes()).map(|m| m.ts_micros);
        assert_eq!(
            t("2024-02-29T00:00:00Z"),
            Ok(Some(ts("2024-02-29T00:00:00Z")))
        );
        assert!(t("2023-02-29T00:00:00Z").is_err());
        assert!(t("2100-02-29T00:00:00Z").is_err());
        assert_eq!(
            t("2000-02-29T23:59:59.5+01:30"),
            Ok(Some(ts("2000-02-29T22:29:59.5Z")))
        );
        assert_eq!(
            t("2003-08-24T05:14:15.000003-07:00"),
            Ok(Some(ts("2003-08-24T12:14:15.000003Z")))
        );
        assert!(t("9999-12-31T23:59:59Z").is_ok());
        assert!(t("9999-12-31T23:59:59-01:00").is_err());
        assert!(t("2003-13-01T00:00:00Z").is_err());
        assert!(t("2003-00-01T00:00:00Z").is_err());
        assert!(t("2003-01-01T00:60:00Z").is_err());
        assert!(t("2003-01-01 00:00:00Z").is_err());
    }

    #[test]
    fn syslog_sd_escapes() {
        let line = br#"<1>1 - - - - - [a x="q\"b\\s\]e\n" y=""][b@1 z="\\"] m"#;
        let m = p5424(line).unwrap();
        let els: Vec<_> = m.sd_elements().collect();
        let ps: Vec<_> = els[0].params().collect();
        assert_eq!(ps[0].value, br#"q\"b\\s\]e\n"#);
        assert_eq!(&*ps[0].unescaped_value(), br#"q"b\s]e\n"#);
        assert_eq!(&*ps[1].unescaped_value(), b"");
        assert!(matches!(unescape_param(b"plain"), Cow::Borrowed(_)));
        assert_eq!(&*unescape_param(b"end\\"), b"end\\");
        assert_eq!(&*els[1].params().next().unwrap().unescaped_value(), b"\\");
        assert_eq!(m.message, b"m");
        // The iterator stops quietly on garbage.
        assert_eq!(sd_elements(b"[a][").count(), 1);
        assert_eq!(sd_elements(b"xyz").count(), 0);
        assert_eq!(sd_elements(b"[a b=\"c").count(), 0);
    }

    #[test]
    fn syslog_rfc3164_variants() {
        let m = p3164(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed").unwrap();
        assert_eq!(m.protocol, SyslogProtocol::Rfc3164);
        assert_eq!(
            (m.facility, m.severity, m.version),
            (Some(4), Some(2), None)
        );
        assert_eq!(m.ts_micros, Some(ts("2025-10-11T22:14:15Z")));
        assert_eq!(m.hostname, Some(&b"mymachine"[..]));
        assert_eq!((m.app_name, m.proc_id), (Some(&b"su"[..]), None));
        assert_eq!(m.message, b"'su root' failed");

        let m = p3164(b"Feb  5 17:32:18 10.0.0.99 Use the BFG!").unwrap();
        assert_eq!((m.facility, m.severity), (None, None));
        assert_eq!(m.ts_micros, Some(ts("2026-02-05T17:32:18Z")));
        assert_eq!((m.hostname, m.app_name), (Some(&b"10.0.0.99"[..]), None));
        assert_eq!(m.message, b"Use the BFG!");

        let m = p3164(b"<133>Jun 3 16:33:35 haproxy[73411]: Proxy started.").unwrap();
        assert_eq!(m.hostname, None);
        assert_eq!(
            (m.app_name, m.proc_id),
            (Some(&b"haproxy"[..]), Some(&b"73411"[..]))
        );
        assert_eq!(m.message, b"Proxy started.");
        assert_eq!(m.ts_micros, Some(ts("2025-06-03T16:33:35Z")));

        let m = p3164(b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: auth failure").unwrap();
        assert_eq!(m.hostname, Some(&b"combo"[..]));
        assert_eq!(
            (m.app_name, m.proc_id),
            (Some(&b"sshd(pam_unix)"[..]), Some(&b"19939"[..]))
        );

        // RFC 3339 timestamp (rsyslog high precision), tag without colon.
        let m = p3164(b"<13>2019-02-13T19:48:34.25+01:00 host prog[7] hello").unwrap();
        assert_eq!(m.ts_micros, Some(ts("2019-02-13T18:48:34.25Z")));
        assert_eq!(
            (m.app_name, m.proc_id),
            (Some(&b"prog"[..]), Some(&b"7"[..]))
        );
        assert_eq!(m.message, b"hello");

        // Explicit year, fraction, lower-case month.
        let m = p3164(b"<13>mar 01 2011 10:00:00.1234567 h a: x").unwrap();
        assert_eq!(m.ts_micros, Some(ts("2011-03-01T10:00:00.123456Z")));

        // Only a timestamp, or a timestamp and a host.
        let m = p3164(b"Jan  1 00:00:00").unwrap();
        assert_eq!((m.hostname, m.message), (None, &b""[..]));
        let m = p3164(b"Jan  1 00:00:00 host").unwrap();
        assert_eq!((m.hostname, m.message), (Some(&b"host"[..]), &b""[..]));
        let m = p3164(b"Jan  1 00:00:00 host app:").unwrap();
        assert_eq!((m.app_name, m.message), (Some(&b"app"[..]), &b""[..]));

        // Errors.
        let e = p3164(b"not much of a syslog message").unwrap_err();
        assert_eq!((e.reason, e.column), (QuarantineReason::BadTimestamp, 0));
        let e = p3164(b"<13>Feb 30 00:00:00 h m").unwrap_err();
        assert_eq!((e.reason, e.column), (QuarantineReason::BadTimestamp, 4));
        assert_eq!(
            p3164(b"<13>Jan 1 24:00:00 h m").unwrap_err().reason,
            QuarantineReason::BadTimestamp
        );
        assert_eq!(
            p3164(b"<13>Jan 1 00:00:00x h m").unwrap_err().reason,
            QuarantineReason::BadTimestamp
        );
        assert_eq!(
            p3164(b"<192>Jan 1 00:00:00 h m").unwrap_err().reason,
            QuarantineReason::Malformed
        );
        assert_eq!(
            p3164(b"<13 Jan 1 00:00:00 h m").unwrap_err().reason,
            QuarantineReason::Malformed
        );
    }

    #[test]
    fn syslog_rfc3164_year_inference_and_offset() {
        // Reference 2026-03-01: up to 31 days ahead is this year, later is last year.
        let y = |line: &[u8], opts: &SyslogOptions| {
            format_rfc3339(
                parse_syslog(line, SyslogMode::Rfc3164, opts)
                    .unwrap()
                    .ts_micros
                    .unwrap(),
            )
        };
        assert_eq!(y(b"Mar 31 00:00:00 h m", &OPTS), "2026-03-31T00:00:00Z");
        assert_eq!(y(b"Apr  2 00:00:00 h m", &OPTS), "2025-04-02T00:00:00Z");
        assert_eq!(y(b"Dec 31 23:59:59 h m", &OPTS), "2025-12-31T23:59:59Z");
        // Around New Year: a reference of 2025-12-31 takes "Jan 1" as the coming one.
        let nye = SyslogOptions {
            reference_micros: ts("2025-12-31T23:00:00Z"),
            local_offset_secs: 0,
        };
        assert_eq!(y(b"Jan  1 00:10:00 h m", &nye), "2026-01-01T00:10:00Z");
        // 29 February: the last leap year before the reference.
        assert_eq!(y(b"Feb 29 12:00:00 h m", &OPTS), "2024-02-29T12:00:00Z");
        // Local offset: 02:00 at UTC+2 is midnight UTC.
        let plus2 = SyslogOptions {
            local_offset_secs: 7200,
            ..OPTS
        };
        assert_eq!(y(b"Feb  1 02:00:00 h m", &plus2), "2026-02-01T00:00:00Z");
        // Leap second folded.
        assert_eq!(
            y(b"Feb  1 02:00:60 h m", &OPTS),
            "2026-02-01T02:00:59.999999Z"
        );
        // Absurd references never panic; out-of-range years are bad timestamps.
        for r in [i64::MIN, -1, 0, i64::MAX] {
            let o = SyslogOptions {
                reference_micros: r,
                local_offset_secs: i32::MAX,
            };
            let _ = parse_syslog(b"Jan  1 00:00:00 h m", SyslogMode::Rfc3164, &o);
            let o = SyslogOptions {
                reference_micros: r,
                local_offset_secs: i32::MIN,
            };
            let _ = parse_syslog(b"Jan  1 00:00:00 h m", SyslogMode::Rfc3164, &o);
        }
        let o = SyslogOptions {
            reference_micros: 0,
            local_offset_secs: 0,
        };
        assert_eq!(
            parse_syslog(b"Mar  1 00:00:00 h m", SyslogMode::Rfc3164, &o)
                .unwrap_err()
                .reason,
            QuarantineReason::BadTimestamp
        );
    }

    #[test]
    fn syslog_auto_mode() {
        let a = |l: &'static [u8]| parse_syslog(l, SyslogMode::Auto, &OPTS);
        assert_eq!(
            a(b"<13>1 - - - - - - x").unwrap().protocol,
            SyslogProtocol::Rfc5424
        );
        assert_eq!(
            a(b"<13>Jan  1 00:00:00 h x").unwrap().protocol,
            SyslogProtocol::Rfc3164
        );
        assert_eq!(
            a(b"Jan  1 00:00:00 h x").unwrap().protocol,
            SyslogProtocol::Rfc3164
        );
        // Looks like 5424, so 5424 rules apply: no fallback to a half-parsed 3164 message.
        assert!(a(b"<13>1 2019-02-13T19:48:34 - - - - -").is_err());
        assert_eq!(
            a(b"garbage").unwrap_err().reason,
            QuarantineReason::BadTimestamp
        );
    }

    #[test]
    fn syslog_strip_octet_count() {
        assert_eq!(strip_octet_count(b"5 hello"), Some(&b"hello"[..]));
        assert_eq!(
            strip_octet_count(b"16 <1>1 - - - - - -"),
            Some(&b"<1>1 - - - - - -"[..])
        );
        assert_eq!(strip_octet_count(b"6 hello"), None);
        assert_eq!(strip_octet_count(b"05 hello"), None);
        assert_eq!(strip_octet_count(b"5hello"), None);
        assert_eq!(strip_octet_count(b"<1>1 - - - - - -"), None);
        assert_eq!(strip_octet_count(b""), None);
        assert_eq!(strip_octet_count(b"99999999999999999999 x"), None);
        assert_eq!(strip_octet_count(b"0 "), None);
    }

    /// Feeds `input` in chunks of `chunk` bytes and collects what the decoder reports.
    fn decode(input: &[u8], chunk: usize, max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut d = FrameDecoder::new(max);
        let mut out = Vec::new();
        let collect = |e: FrameEvent<'_>, out: &mut Vec<_>| {
            out.push(match e {
                FrameEvent::Frame(f) => Ok(f.to_vec()),
                FrameEvent::TooLong { len } => Err(format!("too long {len}")),
                FrameEvent::Truncated { len } => Err(format!("truncated {len}")),
            })
        };
        for piece in input.chunks(chunk.max(1)) {
            let mut piece = piece;
            while !piece.is_empty() {
                let n = d.push(piece);
                assert!(d.buffered_len() <= d.capacity());
                piece = &piece[n..];
                while let Some(e) = d.next_frame() {
                    collect(e, &mut out);
                }
            }
        }
        if let Some(e) = d.finish() {
            collect(e, &mut out);
        }
        out
    }

    #[test]
    fn syslog_frame_decoder() {
        let input = b"<1>a\n5 <1>bc<1>c\r\n\n11 <1>1 - - -x\n<1>last";
        let expected: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"<1>a".to_vec()),
            Ok(b"<1>bc".to_vec()),
            Ok(b"<1>c".to_vec()),
            Ok(b"<1>1 - - -x".to_vec()),
            Ok(b"<1>last".to_vec()),
        ];
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(decode(input, chunk, 64), expected, "chunk {chunk}");
        }
        // Over-long frames of both kinds are reported and skipped, the stream continues.
        let long_line = [b'x'; 40];
        let mut input = Vec::new();
        input.extend_from_slice(&long_line);
        input.extend_from_slice(b"\n30 ");
        input.extend_from_slice(&[b'y'; 30]);
        input.extend_from_slice(b"<1>ok\n");
        for chunk in [1, 5, 1000] {
            let got = decode(&input, chunk, 16);
            assert_eq!(got.len(), 3, "{got:?}");
            assert!(got[0].is_err());
            assert_eq!(got[1], Err("too long 30".to_string()));
            assert_eq!(got[2], Ok(b"<1>ok".to_vec()));
        }
        // Truncated octet-counted frame at the end.
        assert_eq!(
            decode(b"10 <1>abc", 4, 64),
            vec![Err("truncated 6".to_string())]
        );
        // Exactly max long is fine.
        assert_eq!(
            decode(b"0123456789abcdef\n", 3, 16),
            vec![Ok(b"0123456789abcdef".to_vec())]
        );
        // Nothing in, nothing out.
        assert!(decode(b"", 1, 16).is_empty());
        assert!(decode(b"\n\r\n\n", 1, 16).is_empty());
    }
}

//! A zero-copy logfmt (`key=value …`) tokenizer: splits one line into key/value pairs that
//! borrow from it, and decodes quoted values on demand.
//!
//! Grammar (the logfmt of Go's `go-logfmt`/`kr/logfmt` and Heroku, lenient where writers are):
//!
//! * Pairs are separated by runs of ASCII whitespace (space, `\t`, `\n`, `\v`, `\f`, `\r`).
//! * A key is a run of bytes other than whitespace, `=` and `"`. Quoted keys are not logfmt: a
//!   `"` inside a key is [`QuarantineReason::Malformed`].
//! * `key=value`: a bare value is everything up to the next whitespace, `=` and `"` included
//!   (`path=/search?q=a` is common in the wild).
//! * `key="…"`: a quoted value ends at the first unescaped `"`, which must be followed by
//!   whitespace or the end of the line; an unterminated quote or a glued `"a"b` is
//!   `Malformed`, with the offset of the opening quote (resp. of the glued byte).
//! * `key=` and `key=""` are [`LogfmtValue::Empty`]; a bare `key` is [`LogfmtValue::KeyOnly`]
//!   (boolean true, as in logfmt and VRL's `parse_logfmt`).
//! * A token starting with `=` (`=x`) has no key: like VRL, the whole token is read as a
//!   key-only flag rather than failing the line.
//! * Duplicate keys are all yielded, in line order; choosing one is the caller's business.
//!
//! Escapes in quoted values (decoded by [`LogfmtValue::decode`]) are those of JSON, which is
//! what logfmt encoders write: `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` and `\uXXXX` (with
//! surrogate pairs). Decoding is lenient: an unknown escape or a malformed `\u` is kept
//! verbatim (backslash included, like VRL) and a lone surrogate becomes U+FFFD. Invalid UTF-8
//! is replaced by U+FFFD (lossy, as VRL's default): logfmt carries no type information, and
//! one odd byte in a message should not quarantine the whole line.

use std::borrow::Cow;

use logveil_model::QuarantineReason;

use crate::error::ParseError;

/// One logfmt value, borrowed from the line. `Debug` shows the kind and length, never bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LogfmtValue<'a> {
    /// `key=value`: the bytes after `=`, up to the next whitespace.
    Bare(&'a [u8]),
    /// `key="…"`: the bytes between the quotes, escapes not yet decoded. `escaped` is true
    /// when they contain a backslash (decoding may then allocate).
    Quoted { raw: &'a [u8], escaped: bool },
    /// `key=` or `key=""`.
    Empty,
    /// A bare `key` without `=`: a flag, boolean true.
    KeyOnly,
}

impl std::fmt::Debug for LogfmtValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogfmtValue::Bare(raw) => write!(f, "Bare(len {})", raw.len()),
            LogfmtValue::Quoted { raw, escaped } => {
                write!(f, "Quoted(len {}, escaped {escaped})", raw.len())
            }
            LogfmtValue::Empty => f.write_str("Empty"),
            LogfmtValue::KeyOnly => f.write_str("KeyOnly"),
        }
    }
}

impl<'a> LogfmtValue<'a> {
    /// The value as text: borrowed unless escapes or invalid UTF-8 force a copy. `Empty` is
    /// `""` and `KeyOnly` is `"true"`. Never fails (see the module docs for the lenient rules).
    pub fn decode(&self) -> Cow<'a, str> {
        match *self {
            LogfmtValue::Bare(raw)
            | LogfmtValue::Quoted {
                raw,
                escaped: false,
            } => lossy(raw),
            LogfmtValue::Quoted { raw, escaped: true } => Cow::Owned(unescape(raw)),
            LogfmtValue::Empty => Cow::Borrowed(""),
            LogfmtValue::KeyOnly => Cow::Borrowed("true"),
        }
    }

    /// The raw bytes as written (between the quotes for a quoted value; empty for `Empty` and
    /// `KeyOnly`).
    pub fn raw(&self) -> &'a [u8] {
        match *self {
            LogfmtValue::Bare(raw) | LogfmtValue::Quoted { raw, .. } => raw,
            LogfmtValue::Empty | LogfmtValue::KeyOnly => b"",
        }
    }
}

/// Splits a line into its pairs. See the module docs for the grammar.
pub fn pairs(line: &[u8]) -> Pairs<'_> {
    Pairs {
        line,
        pos: 0,
        done: false,
    }
}

/// Iterator over the pairs of one line, from [`pairs`]. After an error it yields nothing more.
#[derive(Clone)]
pub struct Pairs<'a> {
    line: &'a [u8],
    pos: usize,
    done: bool,
}

impl std::fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairs")
            .field("len", &self.line.len())
            .field("pos", &self.pos)
            .field("done", &self.done)
            .finish()
    }
}

/// Byte classes: whitespace (the pair separator), and bytes that end a key.
const WS: u8 = 1;
const KEY_END: u8 = 2;

#[inline]
fn class(b: u8) -> u8 {
    match b {
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => WS | KEY_END,
        b'=' | b'"' => KEY_END,
        _ => 0,
    }
}

/// logfmt whitespace: the pair separator.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    class(b) & WS != 0
}

const EXPECT_KEY: &str = "a key without '\"' (quoted keys are not logfmt)";
const EXPECT_CLOSE: &str = "a closing '\"' for this quoted value";
const EXPECT_SEP: &str = "whitespace or end of line after a quoted value";

impl<'a> Pairs<'a> {
    fn fail(&mut self, column: usize, expected: &'static str) -> ParseError {
        self.done = true;
        ParseError::new(QuarantineReason::Malformed, column, expected)
    }

    /// Bytes from `at` to the next whitespace (or the end).
    fn token(&self, at: usize) -> &'a [u8] {
        let rest = self.line.get(at..).unwrap_or_default();
        let n = rest.iter().position(|&b| is_ws(b)).unwrap_or(rest.len());
        rest.get(..n).unwrap_or_default()
    }

    fn next_pair(&mut self) -> Option<Result<(&'a [u8], LogfmtValue<'a>), ParseError>> {
        let line = self.line;
        let start = self.pos + line.get(self.pos..)?.iter().position(|&b| !is_ws(b))?;
        let rest = line.get(start..)?;
        let key_len = rest
            .iter()
            .position(|&b| class(b) & KEY_END != 0)
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at_checked(key_len)?;
        if key.is_empty() && after.first() == Some(&b'=') {
            // `=x`: no key. The whole token becomes a key-only flag (as VRL does).
            let tok = self.token(start);
            self.pos = start + tok.len();
            return Some(Ok((tok, LogfmtValue::KeyOnly)));
        }
        let at = start + key_len;
        match after.first() {
            Some(b'"') => Some(Err(self.fail(at, EXPECT_KEY))),
            Some(b'=') => {
                let v = at + 1;
                match line.get(v) {
                    None => {
                        self.pos = v;
                        Some(Ok((key, LogfmtValue::Empty)))
                    }
                    Some(&b) if is_ws(b) => {
                        self.pos = v;
                        Some(Ok((key, LogfmtValue::Empty)))
                    }
                    Some(b'"') => Some(self.quoted(key, v)),
                    Some(_) => {
                        let raw = self.token(v);
                        self.pos = v + raw.len();
                        Some(Ok((key, LogfmtValue::Bare(raw))))
                    }
                }
            }
            // Whitespace or end of line: a flag.
            _ => {
                self.pos = at;
                Some(Ok((key, LogfmtValue::KeyOnly)))
            }
        }
    }

    /// A quoted value whose opening quote is at `open`.
    fn quoted(
        &mut self,
        key: &'a [u8],
        open: usize,
    ) -> Result<(&'a [u8], LogfmtValue<'a>), ParseError> {
        let body_start = open + 1;
        let body = self.line.get(body_start..).unwrap_or_default();
        let mut i = 0;
        let mut escaped = false;
        let close = loop {
            let Some(j) = body.get(i..).and_then(|r| memchr::memchr2(b'"', b'\\', r)) else {
                return Err(self.fail(open, EXPECT_CLOSE));
            };
            let k = i + j;
            if body.get(k) == Some(&b'"') {
                break k;
            }
            escaped = true;
            // Skip the backslash and the byte it escapes.
            i = k + 2;
        };
        let after = body_start + close + 1;
        if let Some(&b) = self.line.get(after)
            && !is_ws(b)
        {
            return Err(self.fail(after, EXPECT_SEP));
        }
        self.pos = after;
        let raw = body.get(..close).unwrap_or_default();
        let value = if raw.is_empty() {
            LogfmtValue::Empty
        } else {
            LogfmtValue::Quoted { raw, escaped }
        };
        Ok((key, value))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<(&'a [u8], LogfmtValue<'a>), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_pair();
        if item.is_none() {
            self.done = true;
        }
        item
    }
}

impl std::iter::FusedIterator for Pairs<'_> {}

/// Bytes as text, invalid UTF-8 replaced by U+FFFD.
fn lossy(raw: &[u8]) -> Cow<'_, str> {
    // `from_utf8` first: it is faster than the lossy scan on valid text.
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let h = b.get(..4)?;
    let mut v = 0u32;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Decodes the escapes of a quoted value (lenient, see the module docs), then UTF-8 (lossy).
pub(crate) fn unescape(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        let Some((head, tail)) = rest.split_at_checked(i) else {
            break;
        };
        out.extend_from_slice(head);
        // `tail` starts with the backslash.
        let esc = tail.get(1).copied();
        let simple = match esc {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = tail.get(2..).unwrap_or_default();
            continue;
        }
        if esc == Some(b'u')
            && let Some(hi) = tail.get(2..).and_then(hex4)
        {
            let (c, used) = decode_u(hi, tail.get(6..).unwrap_or_default());
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = tail.get(used..).unwrap_or_default();
            continue;
        }
        // Unknown escape, malformed `\u` or trailing backslash: kept verbatim.
        let keep = if esc.is_some() { 2 } else { 1 };
        out.extend_from_slice(tail.get(..keep).unwrap_or_default());
        rest = tail.get(keep..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// The character of a `\uXXXX` escape with code unit `hi`, and how many bytes of the escape
/// (from its backslash) it used; `next` follows the first escape (a low surrogate may be
/// there). Lone surrogates become U+FFFD.
fn decode_u(hi: u32, next: &[u8]) -> (char, usize) {
    if (0xD800..0xDC00).contains(&hi)
        && next.first() == Some(&b'\\')
        && next.get(1) == Some(&b'u')
        && let Some(lo) = next.get(2..).and_then(hex4)
        && (0xDC00..0xE000).contains(&lo)
    {
        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return (char::from_u32(c).unwrap_or('\u{FFFD}'), 12);
    }
    (char::from_u32(hi).unwrap_or('\u{FFFD}'), 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(line: &str) -> Vec<(String, String)> {
        pairs(line.as_bytes())
            .map(|p| {
                let (k, v) = p.unwrap();
                let v = match v {
                    LogfmtValue::KeyOnly => "<flag>".to_owned(),
                    v => v.decode().into_owned(),
                };
                (String::from_utf8(k.to_vec()).unwrap(), v)
            })
            .collect()
    }

    fn kv(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kinds() {
        assert_eq!(
            all(r#"a=1 b="x y" c= d="" flag  e=/p?q=1&r="s" "#),
            kv(&[
                ("a", "1"),
                ("b", "x y"),
                ("c", ""),
                ("d", ""),
                ("flag", "<flag>"),
                ("e", "/p?q=1&r=\"s\""),
            ])
        );
        let v: Vec<_> = pairs(b"c= d=\"\" f").map(|p| p.unwrap().1).collect();
        assert_eq!(
            v,
            [LogfmtValue::Empty, LogfmtValue::Empty, LogfmtValue::KeyOnly]
        );
        assert!(all("").is_empty());
        assert!(all(" \t ").is_empty());
        assert_eq!(all("\tk=v\r"), kv(&[("k", "v")]));
        assert_eq!(all("=x k=v"), kv(&[("=x", "<flag>"), ("k", "v")]));
        assert_eq!(all("a=1 a=2"), kv(&[("a", "1"), ("a", "2")]));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            all(r#"m="a \"b\" c\\d\n\t\r\/\u00e9\ud83d\ude00 \x \u12 \ud800!""#),
            kv(&[("m", "a \"b\" c\\d\n\t\r/é😀 \\x \\u12 \u{FFFD}!")])
        );
        assert_eq!(all(r#"m="\\""#), kv(&[("m", "\\")]));
        assert_eq!(all(r#"m="x\\" n=1"#), kv(&[("m", "x\\"), ("n", "1")]));
        let (_, v) = pairs(br#"m="plain""#).next().unwrap().unwrap();
        assert!(matches!(v.decode(), Cow::Borrowed("plain")));
        let (_, v) = pairs(b"m=\xff").next().unwrap().unwrap();
        assert_eq!(v.decode(), "\u{FFFD}");
    }

    #[test]
    fn errors_have_offsets() {
        let err = |l: &str| {
            pairs(l.as_bytes())
                .find_map(Result::err)
                .map(|e| (e.reason, e.column))
        };
        assert_eq!(
            err(r#"a=1 b="open"#),
            Some((QuarantineReason::Malformed, 6))
        );
        assert_eq!(err(r#"a=1 b="x\""#), Some((QuarantineReason::Malformed, 6)));
        assert_eq!(err(r#"a="x"y"#), Some((QuarantineReason::Malformed, 5)));
        assert_eq!(err(r#"a="x"""#), Some((QuarantineReason::Malformed, 5)));
        assert_eq!(err(r#""k"=v"#), Some((QuarantineReason::Malformed, 0)));
        assert_eq!(err(r#"k"x=v"#), Some((QuarantineReason::Malformed, 1)));
        assert_eq!(err(r#"a=1 b="x\"#), Some((QuarantineReason::Malformed, 6)));
        // Fused after an error.
        let mut p = pairs(br#"a="x b=1"#);
        assert!(p.next().unwrap().is_err());
        assert!(p.next().is_none());
    }

    #[test]
    fn debug_shows_no_bytes() {
        let secret = b"k=\"alice@example.com\" ip=203.0.113.7";
        let shown = format!(
            "{:?} {:?}",
            pairs(secret),
            pairs(secret).map(|p| p.unwrap().1).collect::<Vec<_>>()
        );
        assert!(
            !shown.contains("alice") && !shown.contains("203"),
            "{shown}"
        );
    }
}

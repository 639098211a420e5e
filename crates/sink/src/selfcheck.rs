//! The privacy self-check: the last line of defence before a partition becomes visible. Every
//! string value of every batch (plain columns and map keys and values) is scanned for a raw IPv4
//! or IPv6 address or an email address; a hit fails the whole partition closed (the writer
//! withholds it, the caller reports it loudly) instead of publishing it.
//!
//! Networks (`203.0.113.0/24`, `2001:db8::/48`), loopback and unspecified addresses, and
//! the scrubber's markers are not hits. The scan runs over each column's contiguous value
//! buffer in one pass; only a candidate is mapped back to its value and checked there.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

/// What the self-check found (never the value itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeakKind {
    Ipv4,
    Ipv6,
    Email,
}

impl LeakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LeakKind::Ipv4 => "ipv4_address",
            LeakKind::Ipv6 => "ipv6_address",
            LeakKind::Email => "email_address",
        }
    }
}

/// A hit: which column and what kind of identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub column: String,
    pub kind: LeakKind,
}

const C_DIGIT: u8 = 1;
const C_HEX: u8 = 2;
const C_DOT: u8 = 4;
const C_COLON: u8 = 8;
const C_AT: u8 = 16;
/// Letters, digits, `_`, `-`: a byte that glues a neighbouring run into a larger word.
const C_WORD: u8 = 32;
const C_EMAIL_LOCAL: u8 = 64;

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_digit() {
            c |= C_DIGIT | C_HEX | C_WORD | C_EMAIL_LOCAL;
        }
        if matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            c |= C_HEX;
        }
        if b.is_ascii_alphabetic() || b == b'_' || b == b'-' {
            c |= C_WORD | C_EMAIL_LOCAL;
        }
        if matches!(b, b'.' | b'%' | b'+') {
            c |= C_EMAIL_LOCAL;
        }
        if b == b'.' {
            c |= C_DOT;
        }
        if b == b':' {
            c |= C_COLON;
        }
        if b == b'@' {
            c |= C_AT;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

#[inline]
fn class(b: u8) -> u8 {
    CLASS[usize::from(b)]
}

/// Whether `s[end..]` starts a prefix length (`/` and a digit): the run is a network.
fn is_network(s: &[u8], end: usize) -> bool {
    s.get(end) == Some(&b'/') && s.get(end + 1).is_some_and(u8::is_ascii_digit)
}

fn ipv4_run(run: &[u8]) -> bool {
    let run = run.strip_suffix(b".").unwrap_or(run);
    let mut parts = 0;
    for p in run.split(|b| *b == b'.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let v: u32 = p.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'));
        if v > 255 {
            return false;
        }
    }
    parts == 4
}

fn ipv6_run(run: &[u8]) -> bool {
    let run = run.strip_suffix(b".").unwrap_or(run);
    let colons = run.iter().filter(|b| **b == b':').count();
    if !(2..=8).contains(&colons) || run.len() > 45 {
        return false;
    }
    match std::str::from_utf8(run)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
    {
        Some(a) => !a.is_unspecified() && !a.is_loopback(),
        None => false,
    }
}

/// Whether `s` (one value) holds a raw address or email; scans it in one pass.
pub fn scan_value(s: &[u8]) -> Option<LeakKind> {
    let mut i = 0;
    while i < s.len() {
        let c = class(s[i]);
        if c & (C_HEX | C_COLON) != 0 {
            // A run of hex digits, dots and colons, not glued to a preceding word.
            let start = i;
            let mut digits_dots = true;
            let mut colon = false;
            while i < s.len() && class(s[i]) & (C_HEX | C_DOT | C_COLON) != 0 {
                let ci = class(s[i]);
                digits_dots &= ci & (C_DIGIT | C_DOT) != 0;
                colon |= ci & C_COLON != 0;
                i += 1;
            }
            let glued_before = start > 0 && class(s[start - 1]) & (C_WORD | C_DOT) != 0;
            let glued_after = i < s.len() && class(s[i]) & C_WORD != 0;
            if glued_before || glued_after || is_network(s, i) {
                // Part of a word, a version like `v1.2.3.4`, or a network: not an address.
                while i < s.len() && class(s[i]) & C_WORD != 0 {
                    i += 1;
                }
                continue;
            }
            let run = &s[start..i];
            if digits_dots && ipv4_run(run) {
                return Some(LeakKind::Ipv4);
            }
            if colon && ipv6_run(run) {
                return Some(LeakKind::Ipv6);
            }
            // An IPv4-mapped or embedded tail (`::ffff:1.2.3.4`) is covered: the run holds
            // the dots too. Nothing else in this run can be an address.
            continue;
        }
        if c & C_AT != 0 && is_email_at(s, i) {
            return Some(LeakKind::Email);
        }
        i += 1;
    }
    None
}

/// Whether the `@` at `at` joins a plausible local part and a domain with a dot and a
/// top-level label of two or more letters.
fn is_email_at(s: &[u8], at: usize) -> bool {
    let mut l = at;
    while l > 0 && class(s[l - 1]) & C_EMAIL_LOCAL != 0 {
        l -= 1;
    }
    if l == at {
        return false;
    }
    let mut r = at + 1;
    while r < s.len() && (class(s[r]) & C_WORD != 0 || s[r] == b'.') {
        r += 1;
    }
    let domain = s[at + 1..r].strip_suffix(b".").unwrap_or(&s[at + 1..r]);
    let Some(dot) = domain.iter().rposition(|b| *b == b'.') else {
        return false;
    };
    let tld = &domain[dot + 1..];
    dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
}

/// Quick filter over a column's whole value buffer: can any value hold a hit at all?
fn may_hold(buf: &[u8]) -> bool {
    memchr::memchr3(b'.', b':', b'@', buf).is_some()
}

fn scan_strings(name: &str, a: &ArrayRef, out: &mut Option<Finding>) {
    let check = |values: &mut dyn Iterator<Item = Option<&[u8]>>, out: &mut Option<Finding>| {
        for v in values.flatten() {
            if let Some(kind) = scan_value(v) {
                *out = Some(Finding {
                    column: name.to_string(),
                    kind,
                });
                return;
            }
        }
    };
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            if may_hold(s.value_data()) {
                check(&mut s.iter().map(|v| v.map(str::as_bytes)), out);
            }
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            if may_hold(s.value_data()) {
                check(&mut s.iter().map(|v| v.map(str::as_bytes)), out);
            }
        }
        DataType::Map(..) => {
            let m = a.as_map();
            scan_strings(name, m.keys(), out);
            if out.is_none() {
                scan_strings(name, m.values(), out);
            }
        }
        DataType::Struct(_) => {
            let st = a.as_struct();
            for (f, c) in st.fields().iter().zip(st.columns()) {
                if out.is_some() {
                    return;
                }
                scan_strings(&format!("{name}.{}", f.name()), c, out);
            }
        }
        _ => {}
    }
}

/// The first finding in a batch, if any.
pub fn scan_batch(batch: &RecordBatch) -> Option<Finding> {
    let mut out = None;
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        scan_strings(f.name(), c, &mut out);
        if out.is_some() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_and_emails() {
        for (v, k) in [
            ("198.51.100.23", LeakKind::Ipv4),
            ("from 10.0.0.1 port 22", LeakKind::Ipv4),
            ("x=192.0.2.1,", LeakKind::Ipv4),
            ("[2001:db8::1]:443", LeakKind::Ipv6),
            ("2001:0db8:0000:0000:0000:ff00:0042:8329", LeakKind::Ipv6),
            ("client ::ffff:198.51.100.7 said", LeakKind::Ipv6),
            ("fe80::1%eth0", LeakKind::Ipv6),
            ("mail ana.b+x@example.org now", LeakKind::Email),
            ("\"user@mail.example.co.uk\"", LeakKind::Email),
            ("end of sentence 203.0.113.9.", LeakKind::Ipv4),
        ] {
            assert_eq!(scan_value(v.as_bytes()), Some(k), "{v}");
        }
    }

    #[test]
    fn leaves_safe_text_alone() {
        for v in [
            "203.0.113.0/24",
            "2001:db8:1::/48",
            "<ip:3f2a9c1e000040008000000000000001>",
            "<ip> <email> <secret>",
            "HTTP/1.1",
            "10:00:00",
            "12:30",
            "aa:bb:cc:dd:ee:ff",
            "Foo::bar::baz",
            "::1",
            "::",
            "v1.2.3.4",
            "chrome 120.0.0",
            "release-1.2.3.4-rc",
            "@mention and user@localhost",
            "k-1f0c2d3e4f5a6b7c",
            "/orders/:id",
            "3.14159",
            "999.1.1.1",
        ] {
            assert_eq!(scan_value(v.as_bytes()), None, "{v}");
        }
    }

    #[test]
    fn scans_batches_including_maps() {
        use arrow_array::builder::{MapBuilder, StringBuilder};
        use std::sync::Arc;
        let plain: ArrayRef = Arc::new(arrow_array::StringArray::from(vec![
            Some("/dashboard"),
            None,
            Some("ok"),
        ]));
        let mut mb = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        mb.keys().append_value("trace");
        mb.values().append_value("abc");
        mb.append(true).unwrap();
        mb.keys().append_value("who");
        mb.values().append_value("bob@example.com");
        mb.append(true).unwrap();
        mb.append(false).unwrap();
        let map: ArrayRef = Arc::new(mb.finish());
        let b = RecordBatch::try_from_iter([("path", plain.clone()), ("attributes", map)]).unwrap();
        assert_eq!(
            scan_batch(&b),
            Some(Finding {
                column: "attributes".into(),
                kind: LeakKind::Email
            })
        );
        let b = RecordBatch::try_from_iter([("path", plain)]).unwrap();
        assert_eq!(scan_batch(&b), None);
    }
}

//! Free-text scrubbing: owns `scrub_text` and `scrub_text_with`, which turn an arbitrary
//! (quarantined) log line, message or unknown text field into bounded, valid UTF-8 that keeps the
//! line's structure and harmless words while replacing personal data and secrets. Path tokens
//! reuse the segment rules of `url::clean_path`; the IP, UUID, token and email detectors live in
//! `url`.
//!
//! What is replaced, and by what (the markers are part of the stored data, see SCHEMA):
//!
//! - IPv4 / IPv6 address, in any textual form (compressed, IPv4-mapped `::ffff:1.2.3.4`, zone
//!   `%eth0`, `:port`, `/prefix`, percent-encoded, glued to other text) → `<ip>`; with a
//!   pseudonymiser, `<ip:P>` where `P` is `Pseudonymiser::ip_pseudonym` of the address (the
//!   value of an `ip_pseudonym` column for the same client). The whole token goes: `1.2.3.4:22`
//!   → `<ip:P>`; brackets are delimiters and stay: `[::1]:22` → `[<ip:P>]:22`. An IPv6 address
//!   glued to letters or digits gets the pseudonym of the first candidate that parses. Text
//!   that looks like an address but names no IPv4 address exactly (`1.2.3.4567`) or none at all
//!   (hex-colon groups such as `2001:db8:2ce:1`, colon-separated MACs) stays `<ip>`.
//! - UUID-like id (8-4-4-4-12 hex) → `<uuid>`; with a pseudonymiser `<id:P>`, `P` being
//!   `pseudonym(IdKind::Device, …)` of the 36 characters exactly as written (no case folding),
//!   which is how the engine pseudonymises a `device_id` field: a device id written in the same
//!   case joins.
//! - URL (`scheme://`, also JSON-escaped or percent-encoded) → `<url>` (with its query string);
//!   email (also `%40`) → `<email>`; host name → `<host>`; long hex runs and letter/digit
//!   tokens → `<token>`; values after secret keys (`password=`, `"token":`, `Bearer`, `Basic`,
//!   also as the last word of a swallowed query string) → `<secret>`; Luhn-valid 13–19 digit runs → `<card>`; dashed MACs → `<mac>`; a query string
//!   → `?<redacted>`; path segments → `clean_path` placeholders (`/users/:id`).
//!
//! One pass: a 256-entry class table splits the line into delimiters and tokens and gathers
//! summary bits per token (colon, `@`, `%`, `?`, dot, digit, slash). Delimiters and tokens that
//! no rule can match (no rule bit but perhaps a trailing `:`, shorter than any id, not a path,
//! not after a secret key) are not copied one by one: they extend a pending run of input that is
//! written with one `push_str` when a replaced token or a control character comes, or at the
//! end. Only tokens whose summary bits can match a rule are looked at again, and only by those
//! rules (the URL rule needs `:` and `/`, the IP rules `:` or `.` and a digit, …); the rules
//! that keep a token leave it in the pending run. No allocation unless the input holds JSON
//! escapes (`\u0040`, `\/`), which are decoded into a copy first.

use std::net::{IpAddr, Ipv4Addr};

use memchr::{memchr, memchr2};

use super::url::{
    C_B64, Sensitive, find_ipv6, has_email_marker, is_uuid, push_clean_path, push_lossy,
    scan_id_runs, truncate_at_char_boundary, with_pct_decoded,
};
use crate::pseudonym::{IdKind, Pseudonymiser};

/// Only this many input bytes are looked at.
const SCAN_LIMIT: usize = 64 * 1024;

/// Appended when the output was truncated.
const ELLIPSIS: char = '…';

/// Splits tokens (copied through to the output).
const D_DELIM: u16 = 1;
/// Ends a query string / URL: a query swallows soft delimiters (`=`, `&`, …) but not these.
const D_HARD: u16 = 2;
/// A control character (< 0x20 except tab, and 0x7f): written as U+FFFD.
const D_CTRL: u16 = 4;
/// `\`: a delimiter unless directly followed by `/` (JSON-escaped slash).
const D_BSL: u16 = 8;
/// Token summary bits, gathered while the token is scanned, that gate the (costlier) rules.
const T_COLON: u16 = 16;
const T_AT: u16 = 32;
const T_PCT: u16 = 64;
const T_QUERY: u16 = 128;
const T_DOT: u16 = 256;
const T_DIGIT: u16 = 512;
const T_SLASH: u16 = 1024;
/// A token with none of these, short and not starting with `/`, matches no rule.
const T_RULES: u16 = T_COLON | T_AT | T_PCT | T_QUERY | T_DOT;

const fn build_classes() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b == b'\t' {
            D_DELIM | D_HARD
        } else if b < 0x20 || b == 0x7f {
            D_DELIM | D_HARD | D_CTRL
        } else {
            match b {
                b' ' | b'"' | b'\'' | b'<' | b'>' => D_DELIM | D_HARD,
                b'\\' => D_DELIM | D_BSL,
                b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' | b'=' | b'|' | b'&' => {
                    D_DELIM
                }
                b':' => T_COLON,
                b'@' => T_AT,
                b'%' => T_PCT,
                b'?' => T_QUERY,
                b'.' => T_DOT,
                b'0'..=b'9' => T_DIGIT,
                b'/' => T_SLASH,
                _ => 0,
            }
        };
        i += 1;
    }
    table
}

static CLASSES: [u16; 256] = build_classes();

#[inline(always)]
fn class(b: u8) -> u16 {
    CLASSES[usize::from(b)]
}

/// Whether the byte of class `c` at `s[i]` splits tokens (see `D_BSL`).
#[inline(always)]
fn splits(c: u16, s: &[u8], i: usize) -> bool {
    c & D_DELIM != 0 && (c & D_BSL == 0 || s.get(i + 1) != Some(&b'/'))
}

/// Whether `s[i]` splits tokens; out of range counts as a delimiter.
#[inline]
fn is_delim_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_none_or(|&b| splits(class(b), s, i))
}

/// Scans the token starting at `start`; returns its end and the OR of its summary bits.
#[inline(always)]
fn scan_token(s: &[u8], start: usize) -> (usize, u16) {
    let mut bits = 0u16;
    let mut j = start;
    loop {
        // Tight loop over a sub-slice (bounds checks hoisted, `bits` kept in a register).
        let rest = s.get(j..).unwrap_or_default();
        let mut k = 0;
        for &b in rest {
            let c = class(b);
            if c & D_DELIM != 0 {
                break;
            }
            bits |= c;
            k += 1;
        }
        j += k;
        // `\/` does not split: go on after it (the `/` is scanned next).
        if s.get(j) == Some(&b'\\') && s.get(j + 1) == Some(&b'/') {
            bits |= D_BSL;
            j += 1;
            continue;
        }
        return (j, bits);
    }
}

/// The part of `input` that is scanned: all of it, or — past `SCAN_LIMIT` — up to and including
/// the last delimiter inside the limit, so that no token is classified from a cut-off prefix.
fn scan_window(input: &[u8]) -> (&[u8], bool) {
    if input.len() <= SCAN_LIMIT {
        return (input, false);
    }
    let mut k = SCAN_LIMIT;
    while k > 0 && !is_delim_at(input, k - 1) {
        k -= 1;
    }
    (&input[..k], true)
}

/// The last token that lies wholly in `s[from..to]`, as a range.
fn last_token(s: &[u8], from: usize, to: usize) -> Option<(usize, usize)> {
    let mut end = to;
    while end > from && is_delim_at(s, end - 1) {
        end -= 1;
    }
    let mut start = end;
    while start > from && !is_delim_at(s, start - 1) {
        start -= 1;
    }
    (start < end).then_some((start, end))
}

/// First hard delimiter at or after `from`.
fn hard_end(s: &[u8], from: usize) -> usize {
    let mut j = from;
    while let Some(&b) = s.get(j) {
        if class(b) & D_HARD != 0 {
            break;
        }
        j += 1;
    }
    j
}

/// Rules that hide the whole token: URL, email, IP (with the address, when it was asked for
/// and the token names one exactly).
#[derive(Clone, Copy)]
enum Whole {
    Url,
    Email,
    Ip(Option<IpAddr>),
}

/// `://` (or its JSON-escaped form `:\/\/`) anywhere.
fn has_scheme_separator(s: &[u8]) -> bool {
    memchr::memchr_iter(b':', s).any(|i| {
        let rest = s.get(i + 1..).unwrap_or_default();
        rest.starts_with(b"//") || rest.starts_with(br"\/\/")
    })
}

/// URL, email and IP rules; `bits` are the token's summary bits (all set = unknown).
fn whole_token_rule(s: &[u8], bits: u16, want_addr: bool) -> Option<Whole> {
    // `://`, or its JSON-escaped form `:\/\/`, has both a colon and a slash.
    if bits & (T_COLON | T_SLASH) == T_COLON | T_SLASH && has_scheme_separator(s) {
        Some(Whole::Url)
    } else if bits & (T_AT | T_PCT) != 0 && has_email_marker(s) {
        Some(Whole::Email)
    } else {
        ip_rule(s, bits, want_addr).map(Whole::Ip)
    }
}

/// Whether `s` holds an IP address (`url::contains_ipv6`, else `url::contains_ipv4`'s rule,
/// gated by the summary bits), and, if `want_addr`, which:
/// the IPv6 address `url::find_ipv6` finds (IPv4-mapped and other IPv4-carrying forms are
/// canonicalised later by `ip_pseudonym`), else the first clean IPv4 address (see `scan_ipv4`).
/// `Some(None)`: an address is there, but not one that can be named exactly.
fn ip_rule(s: &[u8], bits: u16, want_addr: bool) -> Option<Option<IpAddr>> {
    if bits & T_COLON != 0
        && let Some(a) = find_ipv6(s)
    {
        return Some(Some(IpAddr::V6(a)));
    }
    if bits & (T_DOT | T_DIGIT) == T_DOT | T_DIGIT {
        return scan_ipv4(s, want_addr).map(|a| a.map(IpAddr::V4));
    }
    None
}

/// One pass over `s` for IPv4 addresses. `None`: none by `url::contains_ipv4`'s rule (four
/// dot-separated digit groups whose two middle ones are octets; the outer ones may be cut out
/// of longer digit runs). Otherwise, if `want_addr`, the first clean address: four groups of
/// 1–3 digits, each ≤ 255, not glued to further digits (`1.2.3.4:80`, `x-1.2.3.4`, `1.2.3.4` in
/// `1.2.3.4.5`; not `1.2.3.4567`, which gives `Some(None)`).
fn scan_ipv4(s: &[u8], want_addr: bool) -> Option<Option<Ipv4Addr>> {
    // The last four groups of the current dot chain (value, or None if not an octet).
    let mut groups = [None::<u8>; 4];
    let mut chain = 0usize;
    let mut found = false;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if !b.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut value = 0u32;
        while let Some(&d) = s.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            if i - start < 3 {
                value = value * 10 + u32::from(d - b'0');
            }
            i += 1;
        }
        let octet = if i - start <= 3 {
            u8::try_from(value).ok()
        } else {
            None
        };
        groups = [groups[1], groups[2], groups[3], octet];
        chain += 1;
        if chain >= 4 && groups[1].is_some() && groups[2].is_some() {
            if !want_addr {
                return Some(None);
            }
            if let [Some(a), Some(b), Some(c), Some(d)] = groups {
                return Some(Some(Ipv4Addr::new(a, b, c, d)));
            }
            found = true;
        }
        if s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
        } else {
            chain = 0;
        }
    }
    found.then_some(None)
}

/// Host-name-like: ≥ 2 dot-separated labels of `[A-Za-z0-9-]` whose last label is alphabetic
/// with ≥ 2 letters, anywhere in the token (so `host:example.com` and `example.com:443` count).
fn contains_hostname(s: &[u8]) -> bool {
    memchr(b'.', s).is_some()
        && s.split(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
            .any(|run| {
                let mut labels = 0;
                let mut last: &[u8] = &[];
                for label in run.split(|&b| b == b'.').filter(|l| !l.is_empty()) {
                    labels += 1;
                    last = label;
                }
                labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
            })
}

/// Writes the marker of an IP address found in text.
fn push_ip(addr: Option<IpAddr>, ids: Option<&Pseudonymiser>, out: &mut String) {
    match (ids, addr) {
        (Some(p), Some(a)) => {
            out.push_str("<ip:");
            out.push_str(p.ip_pseudonym(a).as_str());
            out.push('>');
        }
        _ => out.push_str("<ip>"),
    }
}

/// Host, UUID and token rules; true if `w` was replaced, false if it is harmless (and was not
/// written).
fn scrub_word(w: &[u8], ids: Option<&Pseudonymiser>, pre: &[u8], out: &mut String) -> bool {
    let marker = if contains_hostname(w) {
        "<host>"
    } else {
        match scan_id_runs(w, C_B64) {
            Some(Sensitive::Uuid) => {
                push_lossy(out, pre);
                // `scan_id_runs` found one, so the search succeeds.
                match (ids, w.windows(36).find(|c| is_uuid(c))) {
                    (Some(p), Some(uuid)) => {
                        out.push_str("<id:");
                        out.push_str(p.pseudonym(IdKind::Device, uuid).as_str());
                        out.push('>');
                    }
                    _ => out.push_str("<uuid>"),
                }
                return true;
            }
            Some(_) => "<token>",
            None => return false,
        }
    };
    push_lossy(out, pre);
    out.push_str(marker);
    true
}

/// What became of a token.
enum Verdict {
    /// Harmless: nothing was written; it stays part of the pending raw run.
    Keep,
    /// Replaced: `pre` and the token's replacement were written. `swallow`: the rest of a query
    /// string / URL that follows the token (up to the next hard delimiter) goes as well.
    Replaced { swallow: bool },
}

/// Applies the rules to one token whose summary bits are `bits`. Before writing anything it
/// writes `pre`, the pending raw run that precedes the token.
fn scrub_token(
    tok: &[u8],
    bits: u16,
    ids: Option<&Pseudonymiser>,
    pre: &[u8],
    out: &mut String,
) -> Verdict {
    let has_query = bits & T_QUERY != 0;
    let want_addr = ids.is_some();
    let whole = if bits & T_PCT != 0 {
        whole_token_rule(tok, bits, want_addr)
            .or_else(|| with_pct_decoded(tok, |d| whole_token_rule(d, !0, want_addr)))
    } else {
        whole_token_rule(tok, bits, want_addr)
    };
    let replaced = |swallow| Verdict::Replaced { swallow };
    if let Some(whole) = whole {
        push_lossy(out, pre);
        return match whole {
            Whole::Url => {
                out.push_str("<url>");
                replaced(true)
            }
            Whole::Email => {
                out.push_str("<email>");
                replaced(has_query)
            }
            Whole::Ip(addr) => {
                push_ip(addr, ids, out);
                replaced(has_query)
            }
        };
    }
    let marker = if bits & T_COLON != 0 && is_hex_colon_groups(tok) {
        // Not a valid IPv6 address, but shaped like one (or a MAC address): fail closed.
        Some("<ip>")
    } else if is_dashed_mac(tok) {
        Some("<mac>")
    } else if bits & T_DIGIT != 0 && is_luhn_number(tok) {
        Some("<card>")
    } else {
        None
    };
    if let Some(m) = marker {
        push_lossy(out, pre);
        out.push_str(m);
        return replaced(false);
    }
    if tok.first() == Some(&b'/') {
        push_lossy(out, pre);
        return match memchr2(b'?', b'#', tok) {
            Some(cut) => {
                push_clean_path(&tok[..cut], usize::MAX, out);
                out.push_str("?<redacted>");
                replaced(true)
            }
            None => {
                push_clean_path(tok, usize::MAX, out);
                replaced(false)
            }
        };
    }
    if has_query {
        let q = memchr(b'?', tok).unwrap_or(tok.len());
        let word = &tok[..q];
        if !scrub_word(word, ids, pre, out) {
            push_lossy(out, pre);
            push_lossy(out, word);
        }
        out.push_str("?<redacted>");
        return replaced(true);
    }
    if bits & T_DOT == 0 && tok.len() < 12 {
        return Verdict::Keep;
    }
    if scrub_word(tok, ids, pre, out) {
        replaced(false)
    } else {
        Verdict::Keep
    }
}

/// A token that no rule can match: none of the rule bits (but a single trailing `:`, as in
/// `sshd[42]:` or `code 11:`, which no rule looks at), not a path, and shorter than any id or
/// token: under 12 bytes, or under 16 without a digit (a random-looking token of 12 or more
/// has digits, and so has a card number).
#[inline(always)]
fn is_plain(tok: &[u8], bits: u16) -> bool {
    let short = match tok {
        [b'/', ..] => false,
        [_, ..] => tok.len() < 12 || (tok.len() < 16 && bits & T_DIGIT == 0),
        [] => true,
    };
    short
        && (bits & T_RULES == 0
            || (bits & T_RULES == T_COLON
                && matches!(tok, [head @ .., b':'] if !head.contains(&b':'))))
}

/// A MAC address written with dashes: six pairs of hex digits (`00-1A-2B-3C-4D-5E`).
fn is_dashed_mac(tok: &[u8]) -> bool {
    tok.len() == 17
        && tok.chunks(3).all(|c| match c {
            [a, b, rest @ ..] => {
                a.is_ascii_hexdigit() && b.is_ascii_hexdigit() && matches!(rest, [] | [b'-'])
            }
            _ => false,
        })
}

/// A card-number-like digit run (policy: payment data never in logs): 13 to 19 digits,
/// optionally grouped with `-`, that pass the Luhn check. IMEIs (15 digits, Luhn) match too.
fn is_luhn_number(tok: &[u8]) -> bool {
    if tok.len() < 13
        || !tok.first().is_some_and(u8::is_ascii_digit)
        || !tok.iter().all(|b| b.is_ascii_digit() || *b == b'-')
    {
        return false;
    }
    let digits = tok.iter().filter(|b| b.is_ascii_digit()).count();
    if !(13..=19).contains(&digits) {
        return false;
    }
    let sum: u32 = tok
        .iter()
        .rev()
        .filter(|b| b.is_ascii_digit())
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Key names whose value is a secret: the next token after `KEY=`, `KEY:`, `"KEY":` is
/// replaced by `<secret>` whatever it looks like.
fn is_secret_key(tok: &[u8]) -> bool {
    const KEYS: [&[u8]; 14] = [
        b"password",
        b"passwd",
        b"pwd",
        b"pass",
        b"secret",
        b"client_secret",
        b"token",
        b"access_token",
        b"refresh_token",
        b"api_key",
        b"apikey",
        b"api-key",
        b"auth",
        b"authorization",
    ];
    let name = tok.strip_suffix(b":").unwrap_or(tok);
    let mut lower = [0u8; 13];
    let Some(l) = lower.get_mut(..name.len()) else {
        return false;
    };
    for (d, s) in l.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    KEYS.contains(&&*l)
}

/// After a secret key: does a `=` or `:` follow (possibly after a closing quote and spaces),
/// or does the key token itself end with `:`?
fn assigns_value(tok: &[u8], rest: &[u8]) -> bool {
    if tok.ends_with(b":") {
        return true;
    }
    rest.iter()
        .find(|b| !matches!(b, b'"' | b'\'' | b' '))
        .is_some_and(|b| matches!(b, b'=' | b':'))
}

/// Whether the token ending at `end` of `s` makes the next token a secret: a secret key that
/// is assigned a value, or `Bearer` followed by a space.
#[inline(always)]
fn starts_secret(tok: &[u8], s: &[u8], end: usize) -> bool {
    // Cheap pre-check on the first two letters of the keys and `bearer` (3–14 bytes).
    let [a, b, ..] = tok else { return false };
    tok.len() >= 3
        && tok.len() <= 14
        && matches!(
            (a | 0x20, b | 0x20),
            (b'p', b'a' | b'w')
                | (b's', b'e')
                | (b'c', b'l')
                | (b't', b'o')
                | (b'a', b'c' | b'p' | b'u')
                | (b'r', b'e')
                | (b'b', b'e')
        )
        && starts_secret_slow(tok, s, end)
}

#[inline(never)]
fn starts_secret_slow(tok: &[u8], s: &[u8], end: usize) -> bool {
    (is_secret_key(tok) && assigns_value(tok, s.get(end..).unwrap_or_default()))
        || (tok.eq_ignore_ascii_case(b"bearer") && s.get(end) == Some(&b' '))
}

/// Three or more ':' between hex digits only (`2001:db8:2ce:1`, `00:1a:2b:3c:4d:5e`), which
/// times like `13:55:36` are not.
fn is_hex_colon_groups(tok: &[u8]) -> bool {
    let colons = tok.iter().filter(|&&b| b == b':').count();
    colons >= 3 && tok.iter().all(|b| b.is_ascii_hexdigit() || *b == b':')
}

/// `\u` or `\/` anywhere (one memchr pass; no searcher is built).
fn has_json_escape(input: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', input).any(|i| matches!(input.get(i + 1), Some(b'u' | b'/')))
}

/// Decodes `\uXXXX` escapes of ASCII characters and `\/`; everything else is kept as is.
fn decode_json_ascii_escapes(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\\' {
            if input.get(i + 1) == Some(&b'/') {
                out.push(b'/');
                i += 2;
                continue;
            }
            if input.get(i + 1) == Some(&b'u')
                && let Some(hex) = input.get(i + 2..i + 6)
                && let Ok(h) = std::str::from_utf8(hex)
                && let Ok(v) = u16::from_str_radix(h, 16)
                && (0x20..0x80).contains(&v)
            {
                out.push(v as u8);
                i += 6;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Scrubs free text with typed markers only (`<ip>`, `<uuid>`, …): `scrub_text_with` without a
/// pseudonymiser.
pub fn scrub_text(input: &[u8], max_len: usize, out: &mut String) {
    scrub_text_with(input, max_len, None, out);
}

/// Scrubs free text (a quarantined log line, a message, an unknown text field; arbitrary bytes,
/// possibly JSON) so that it can be stored without personal data: keeps the line's structure
/// and harmless words, replaces sensitive tokens (see the module documentation for the
/// markers). With `ids`, IP addresses and UUIDs become their pseudonyms under it (`<ip:…>`,
/// `<id:…>`), so the text stays joinable with the pseudonymised columns; without, typed
/// markers (`<ip>`, `<uuid>`).
///
/// Output is valid UTF-8 (lossy), at most `max_len` bytes (truncated at a char boundary, then
/// "…" appended if truncated — the "…" may exceed max_len by its 3 bytes), control characters
/// (< 0x20 except tab, and 0x7f) replaced by U+FFFD. `out` is cleared first.
///
/// Only the first 64 KiB of input are scanned (cut back to a delimiter, which counts as a
/// truncation). Scrubbing happens before truncation, so no sensitive token is ever cut in half
/// and partially kept.
pub fn scrub_text_with(
    input: &[u8],
    max_len: usize,
    ids: Option<&Pseudonymiser>,
    out: &mut String,
) {
    out.clear();
    // JSON may spell ASCII as `\u0040` or `\/`: classify what it means, not how it is written.
    let decoded;
    let input = if has_json_escape(input) {
        decoded = decode_json_ascii_escapes(input);
        &decoded[..]
    } else {
        input
    };
    let (w, mut truncated) = scan_window(input);
    // `w[pending..i]` is raw input (delimiters and harmless tokens) not yet written: it is
    // written as is (lossy UTF-8) in one go when something must be replaced.
    let mut pending = 0;
    let mut i = 0;
    // The next real token is a secret: it follows `password=`, `"token": `, `Bearer `, …
    let mut secret_next = false;
    while let Some(&b) = w.get(i) {
        let c = class(b);
        if splits(c, w, i) {
            if c & D_CTRL != 0 {
                push_lossy(out, &w[pending..i]);
                out.push(char::REPLACEMENT_CHARACTER);
                pending = i + 1;
            }
            i += 1;
            continue;
        }
        let (j, bits) = scan_token(w, i);
        let tok = &w[i..j];
        if !secret_next && is_plain(tok, bits) {
            secret_next = starts_secret(tok, w, j);
            i = j;
        } else {
            let scheme = tok.eq_ignore_ascii_case(b"bearer") || tok.eq_ignore_ascii_case(b"basic");
            if secret_next && !scheme && !tok.iter().all(|&b| b == b':') {
                secret_next = false;
                push_lossy(out, &w[pending..i]);
                out.push_str("<secret>");
                pending = j;
                i = j;
            } else {
                secret_next |= starts_secret(tok, w, j);
                match scrub_token(tok, bits, ids, &w[pending..i], out) {
                    Verdict::Keep => i = j,
                    Verdict::Replaced { swallow: false } => {
                        i = j;
                        pending = j;
                    }
                    Verdict::Replaced { swallow: true } => {
                        i = hard_end(w, j);
                        pending = i;
                        // `?x=1&token= abc`, `url?[Bearer abc`: the swallowed text's last token
                        // still makes the next one a secret.
                        if let Some((a, z)) = last_token(w, j, i) {
                            secret_next |= starts_secret(&w[a..z], w, z);
                        }
                    }
                }
            }
        }
        // Pending bytes never shrink when written: past `max_len`, the rest would be cut.
        if out.len() + (i - pending) > max_len {
            break;
        }
    }
    push_lossy(out, &w[pending..i]);
    if i < w.len() {
        truncated = true;
    }
    if truncate_at_char_boundary(out, max_len) {
        truncated = true;
    }
    if truncated {
        out.push(ELLIPSIS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use proptest::prelude::*;

    fn scrub(input: &[u8]) -> String {
        let mut out = String::from("stale");
        scrub_text(input, 4096, &mut out);
        out
    }

    fn s(input: &str) -> String {
        scrub(input.as_bytes())
    }

    #[test]
    fn secrets_cards_and_macs() {
        assert_eq!(
            s("login password=hunter2 user=bob"),
            "login password=<secret> user=bob"
        );
        assert_eq!(
            s(r#"{"token": "abc", "n": 1}"#),
            r#"{"token": "<secret>", "n": 1}"#
        );
        assert_eq!(s("pwd: hunter2 ok"), "pwd: <secret> ok");
        assert_eq!(
            s("Authorization: Bearer abcdefghijklmnop123"),
            "Authorization: Bearer <secret>"
        );
        assert_eq!(
            s("authorization=Basic dXNlcjpwYXNz"),
            "authorization=Basic <secret>"
        );
        assert_eq!(s("header Bearer abc.def now"), "header Bearer <secret> now");
        assert_eq!(s("password reset requested"), "password reset requested");
        assert_eq!(
            s("card 4111-1111-1111-1111 and imei 490154203237518"),
            "card <card> and imei <card>"
        );
        assert_eq!(
            s("order 1234567890123 shipped"),
            "order 1234567890123 shipped"
        );
        assert_eq!(s("nic 00-1A-2B-3C-4D-5E up"), "nic <mac> up");
        assert_eq!(s("range 10-20-30"), "range 10-20-30");
    }

    #[test]
    fn combined_log_lines() {
        assert_eq!(
            s(
                r#"203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326"#
            ),
            r#"<ip> - frank [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326"#
        );
        assert_eq!(
            s(
                r#"2001:db8::1 - - [10/Oct/2000:13:55:36 +0000] "GET /users/42?x=1 HTTP/2.0" 404 0 "https://ref.example/?q=1" "Mozilla/5.0 (X11; Linux x86_64)""#
            ),
            r#"<ip> - - [10/Oct/2000:13:55:36 +0000] "GET /users/:id?<redacted> HTTP/2.0" 404 0 "<url>" "Mozilla/5.0 (X11; Linux x86_64)""#
        );
        assert_eq!(
            s(
                r#"::ffff:192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET /u/alice%40example.com HTTP/1.1" 200 5"#
            ),
            r#"<ip> - - [01/Jan/2024:00:00:00 +0000] "GET <email> HTTP/1.1" 200 5"#
        );
    }

    #[test]
    fn json_line() {
        assert_eq!(
            s(r#"{"ip":"203.0.113.9","email":"a.b@example.org","page":"/x?token=SECRET"}"#),
            r#"{"ip":"<ip>","email":"<email>","page":"/x?<redacted>"}"#
        );
        assert_eq!(
            s(r#"{"u":"https:\/\/example.com\/a?b=SECRET","n":1}"#),
            r#"{"u":"<url>","n":1}"#
        );
        assert_eq!(
            s(r#"{"level":"error","msg":"connection refused (code=111)"}"#),
            r#"{"level":"error","msg":"connection refused (code=111)"}"#
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            s("fetch https://user:secret@example.com/x?y=1 done"),
            "fetch <url> done"
        );
        assert_eq!(s("see (http://example.com/a,b) ok"), "see (<url> ok");
        assert_eq!(s("next=https%3A%2F%2Fevil.com%2F x"), "next=<url> x");
        assert_eq!(s("ftp://files.example.org"), "<url>");
        assert_eq!(
            s("u=http://x.com/a?b=1&token=SECRET&c=2 end"),
            "u=<url> end"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(
            s("user alice@example.com logged in"),
            "user <email> logged in"
        );
        assert_eq!(s("to=<bob@example.org>"), "to=<<email>>");
        assert_eq!(s("alice%40example.com"), "<email>");
        assert_eq!(s("alice%2540example.com"), "<email>");
        assert_eq!(s("mailto:a@b.co?subject=hi"), "<email>");
    }

    #[test]
    fn ip_addresses() {
        for (input, want) in [
            ("1.2.3.4", "<ip>"),
            ("1.2.3.4:80", "<ip>"),
            ("x-1.2.3.4", "<ip>"),
            (
                "client 203.0.113.9, proxy 10.0.0.1",
                "client <ip>, proxy <ip>",
            ),
            ("2001:db8::1", "<ip>"),
            ("[2001:db8::1]:8080", "[<ip>]:8080"),
            ("::ffff:192.0.2.1", "<ip>"),
            ("fe80::1%eth0", "<ip>"),
            ("::1", "<ip>"),
            ("client=2001:db8::1,", "client=<ip>,"),
            ("addr:2001:db8::1", "<ip>"),
            ("2001:DB8:0:0:8:800:200C:417A", "<ip>"),
            ("2001:db8::/32", "<ip>"),
            ("/1.2.3.4/x", "<ip>"),
            ("1%2E2%2E3%2E4", "<ip>"),
        ] {
            assert_eq!(s(input), want, "{input}");
        }
    }

    #[test]
    fn timestamps_versions_and_code_untouched() {
        for input in [
            "10/Oct/2000:13:55:36",
            "[10/Oct/2000:13:55:36 -0700]",
            "13:55:36",
            "13:55:36.123",
            "2023-10-10T13:55:36.123Z",
            "2023-10-10T13:55:36+02:00",
            "HTTP/1.1",
            "HTTP/2.0",
            "1.5",
            "v1.2.3",
            "10.0.19041.1",
            "std::io::Error",
            "Foo::bar()",
            "Self::default",
            "ERROR [main] worker=3 took 12ms",
            "0123456789abcde",
            "x86_64-linux-gnu",
        ] {
            assert_eq!(s(input), input, "{input}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            s("GET /users/12345/profile?x=1 HTTP/1.1"),
            "GET /users/:id/profile?<redacted> HTTP/1.1"
        );
        assert_eq!(s("/a/b#frag"), "/a/b?<redacted>");
        assert_eq!(s("/x?a=1&b=alice@example.com&c=2 end"), "/x?<redacted> end");
        assert_eq!(s("/d/550e8400-e29b-41d4-a716-446655440000/x"), "/d/:uuid/x");
        assert_eq!(s("/t/0123456789abcdef"), "/t/:token");
        assert_eq!(s("/a;jsessionid=XYZ/b"), "/a;jsessionid=XYZ/b");
        assert_eq!(s("/static/app.min.js"), "/static/app.min.js");
        assert_eq!(s("/"), "/");
        assert_eq!(s("/path/caf\u{e9}"), "/path/caf\u{e9}");
    }

    #[test]
    fn question_marks_elsewhere() {
        assert_eq!(s("page?token=SECRET next"), "page?<redacted> next");
        assert_eq!(s("example.com/x?q=1"), "<host>?<redacted>");
        assert_eq!(s("a ?b=c d"), "a ?<redacted> d");
        assert_eq!(s("deadbeefdeadbeef?x=y"), "<token>?<redacted>");
    }

    #[test]
    fn hosts() {
        assert_eq!(
            s("CONNECT example.com:443 HTTP/1.1"),
            "CONNECT <host> HTTP/1.1"
        );
        assert_eq!(
            s(r#""CONNECT example.com:443 HTTP/1.1" 200"#),
            r#""CONNECT <host> HTTP/1.1" 200"#
        );
        assert_eq!(s("www.example.co.uk:443"), "<host>");
        assert_eq!(s("host:example.com"), "<host>");
        assert_eq!(s("resolving Example.COM."), "resolving <host>");
        assert_eq!(s("index.html"), "<host>");
        assert_eq!(s("e.g. foo"), "e.g. foo");
    }

    #[test]
    fn uuids_and_tokens() {
        assert_eq!(s("550e8400-e29b-41d4-a716-446655440000"), "<uuid>");
        assert_eq!(s("id:550E8400-E29B-41D4-A716-446655440000"), "<uuid>");
        assert_eq!(s("deadbeefdeadbeef"), "<token>");
        assert_eq!(s("Bearer abcDEF123ghiJKL456mno"), "Bearer <secret>");
        assert_eq!(s("sid=dGhpcyBpcyBhIHNlY3JldA=="), "sid=<token>==");
        assert_eq!(s("key=ab+cd/ef12GH34ij56KL78"), "key=<token>");
        assert_eq!(
            s("abcdefghijklmnopqrstuvwxyz"),
            "abcdefghijklmnopqrstuvwxyz"
        );
        assert_eq!(s("abcDEF123_-ghiJKL45"), "abcDEF123_-ghiJKL45");
    }

    #[test]
    fn control_chars_and_non_utf8() {
        assert_eq!(scrub(b"a\nb\x7fc\td\r"), "a\u{FFFD}b\u{FFFD}c\td\u{FFFD}");
        assert_eq!(scrub(b"caf\xe9 ok"), "caf\u{FFFD} ok");
        assert_eq!(scrub(b"\xff\xfe"), "\u{FFFD}\u{FFFD}");
        assert_eq!(scrub(b"\x001.2.3.4\x00"), "\u{FFFD}<ip>\u{FFFD}");
        assert_eq!(scrub(b"caf\xc3\xa9"), "caf\u{e9}");
        assert_eq!(scrub(b""), "");
    }

    #[test]
    fn truncation() {
        let mut out = String::new();
        scrub_text(b"hello world", 5, &mut out);
        assert_eq!(out, "hello\u{2026}");
        scrub_text(b"hello", 5, &mut out);
        assert_eq!(out, "hello");
        scrub_text("h\u{e9}llo".as_bytes(), 2, &mut out);
        assert_eq!(out, "h\u{2026}");
        scrub_text(b"x", 0, &mut out);
        assert_eq!(out, "\u{2026}");
        scrub_text(b"", 0, &mut out);
        assert_eq!(out, "");
        let line =
            b"ab 203.0.113.9 alice@example.com 550e8400-e29b-41d4-a716-446655440000 /x?s=SECRET";
        for max in 0..line.len() + 5 {
            scrub_text(line, max, &mut out);
            assert!(out.len() <= max + 3);
            assert!(!out.contains("203") && !out.contains("alice") && !out.contains("550e"));
            assert!(!out.contains("SECRET") && !out.contains("s="));
        }
    }

    #[test]
    fn scan_limit() {
        let mut out = String::new();
        let mut big = b"word ".repeat(13_107); // 65_535 bytes
        big.extend_from_slice(b"alice.smith@example.com tail");
        scrub_text(&big, usize::MAX, &mut out);
        assert!(out.ends_with('\u{2026}'));
        assert!(!out.contains("alice"));
        assert!(out.len() <= 64 * 1024 + 3);

        let mut giant = vec![b'a'; 70_000];
        giant.extend_from_slice(b"@example.com");
        scrub_text(&giant, usize::MAX, &mut out);
        assert_eq!(out, "\u{2026}");

        let mut esc = b"x ".repeat(32_767);
        esc.extend_from_slice(b"alice\\/bob@example.com");
        scrub_text(&esc, usize::MAX, &mut out);
        assert!(!out.contains("alice"));
    }

    #[test]
    fn json_escapes_and_misc() {
        // JSON escapes are decoded before classification.
        assert_eq!(s(r#"{"p":"\/users\/42"}"#), r#"{"p":"/users/:id"}"#);
        assert_eq!(s(r#"{"e":"alice\/bob@example.com"}"#), r#"{"e":"<email>"}"#);
        assert_eq!(s("issue #123 fixed"), "issue #123 fixed");
        assert_eq!(s("took 12ms; retry=3"), "took 12ms; retry=3");
        assert_eq!(s("//"), "//");
        assert_eq!(s("a :// b"), "a <url> b");
        assert_eq!(s("GET /u/alice%40example.com/x"), "GET <email>");
        assert_eq!(s("ua=\"curl/8.4.0\""), "ua=\"curl/8.4.0\"");
    }

    #[test]
    fn swallowed_secret_keys_still_hide_the_next_token() {
        assert_eq!(s("GET /x?a=1&token= abc"), "GET /x?<redacted> <secret>");
        assert_eq!(
            s("see https://x.example/?q=Bearer abc"),
            "see <url> <secret>"
        );
        assert_eq!(s("u=?[Bearer abcdefgh x"), "u=?<redacted> <secret> x");
        assert_eq!(s("/x?a=1 tail"), "/x?<redacted> tail");
    }

    #[test]
    fn out_is_cleared() {
        let mut out = String::from("previous content");
        scrub_text(b"ok", 100, &mut out);
        assert_eq!(out, "ok");
    }

    const DELIMS_SET: &[u8] = b" \t\"'[](){}<>,;=|\\&";

    /// Canaries that stay detectable even when glued to arbitrary filler (IPv6 needs ≥ 3 groups).
    fn glued_canary() -> impl Strategy<Value = String> {
        prop_oneof![
            ipv4_canary(),
            ipv6_canary().prop_filter("≥ 3 groups", |c| {
                c.split(':').filter(|g| !g.is_empty()).count() >= 3
            }),
            uuid_canary(),
            email_canary()
        ]
    }

    fn delim() -> impl Strategy<Value = char> {
        proptest::sample::select(DELIMS_SET).prop_map(char::from)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn planted_canary_never_survives(
            pre in "[ -~]{0,40}",
            post in "[ -~]{0,40}",
            d1 in delim(),
            d2 in delim(),
            c in canary(),
        ) {
            let line = format!("{pre}{d1}{c}{d2}{post}");
            let out = s(&line);
            prop_assert!(!out.contains(&c), "{:?} -> {:?}", line, out);
        }

        #[test]
        fn glued_canary_never_survives(
            pre in "[ -~]{0,20}",
            post in "[ -~]{0,20}",
            c in glued_canary(),
        ) {
            let line = format!("{pre}{c}{post}");
            let out = s(&line);
            prop_assert!(!out.contains(&c), "{:?} -> {:?}", line, out);
        }

        #[test]
        fn canary_in_json_and_clf(c in canary(), key in "[a-z]{1,8}") {
            let json = format!(r#"{{"{key}":"{c}","n":1}}"#);
            let out = s(&json);
            prop_assert!(!out.contains(&c), "{:?} -> {:?}", json, out);
            let clf = format!(r#"{c} - - [10/Oct/2000:13:55:36 -0700] "GET /p?{key}={c} HTTP/1.1" 200 1"#);
            let out = s(&clf);
            prop_assert!(!out.contains(&c), "{:?} -> {:?}", clf, out);
            prop_assert!(out.contains("10/Oct/2000:13:55:36"));
        }

        #[test]
        fn truncation_is_a_prefix_of_the_scrubbed_line(
            c in canary(),
            pre in "[ -~]{0,20}",
            max in 0usize..80,
        ) {
            let line = format!("{pre} {c} tail");
            let full = s(&line);
            prop_assert!(!full.contains(&c));
            let mut out = String::new();
            scrub_text(line.as_bytes(), max, &mut out);
            prop_assert!(out.len() <= max + 3);
            match out.strip_suffix('\u{2026}') {
                Some(kept) => {
                    prop_assert!(full.len() > max);
                    prop_assert!(full.starts_with(kept), "{:?} vs {:?}", out, full);
                }
                None => prop_assert_eq!(&out, &full),
            }
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            max in 0usize..500,
        ) {
            let mut out = String::new();
            scrub_text(&bytes, max, &mut out);
            prop_assert!(out.len() <= max + 3);
            prop_assert!(!out.chars().any(|ch| (ch < ' ' && ch != '\t') || ch == char::from(0x7f)), "control char in output");
        }

        #[test]
        fn never_panics_on_tricky_text(
            text in "[0-9a-fA-F:./?#%@\\[\\]\\\\=&; \"gxz_+-]{0,300}",
            max in 0usize..400,
        ) {
            let mut out = String::new();
            scrub_text(text.as_bytes(), max, &mut out);
            prop_assert!(out.len() <= max + 3);
        }
    }

    #[test]
    fn hex_groups_and_json_escapes_are_scrubbed() {
        let mut out = String::new();
        scrub_text(
            b"2001:db8:2ce:1 - - [22/Mar/2009:09:30:31 +0100] \"GET / HTTP/1.1\" 200 1",
            512,
            &mut out,
        );
        assert!(!out.contains("2001:db8"), "{out}");
        assert!(out.contains("09:30:31"), "{out}");
        scrub_text(
            br#"{"ip":"198\u002e51\u002e100\u002e7","e":"a\u0040example.org","p":"\/x"}"#,
            512,
            &mut out,
        );
        assert!(
            !out.contains("198") && !out.contains("example.org"),
            "{out}"
        );
        scrub_text(b"mac 00:1a:2b:3c:4d:5e at 13:55:36", 512, &mut out);
        assert!(!out.contains("00:1a") && out.contains("13:55:36"), "{out}");
    }

    // -----------------------------------------------------------------------------------------
    // Pseudonyms in text (`scrub_text_with(.., Some(p), ..)`)
    // -----------------------------------------------------------------------------------------

    use crate::keys::Key;
    use crate::pseudonym::{IdKind, Pseudonymiser};
    use std::net::IpAddr;

    fn dev() -> Pseudonymiser {
        Pseudonymiser::new(&Key::development())
    }

    fn sp(input: &str) -> String {
        let mut out = String::from("stale");
        scrub_text_with(input.as_bytes(), 4096, Some(&dev()), &mut out);
        out
    }

    /// The in-text marker of an address: `<ip:` + its `ip_pseudonym` + `>`.
    fn ip_marker(addr: &str) -> String {
        let a: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
        format!("<ip:{}>", dev().ip_pseudonym(a).as_str())
    }

    fn id_marker(uuid: &str) -> String {
        format!(
            "<id:{}>",
            dev().pseudonym(IdKind::Device, uuid.as_bytes()).as_str()
        )
    }

    #[test]
    fn ipv4_in_text_becomes_its_pseudonym() {
        for (input, addr, want) in [
            ("from 1.2.3.4 port 22", "1.2.3.4", "from {} port 22"),
            ("1.2.3.4:22", "1.2.3.4", "{}"),
            (
                "rhost=218.188.2.4 user=root",
                "218.188.2.4",
                "rhost={} user=root",
            ),
            ("[173.234.31.186] failed", "173.234.31.186", "[{}] failed"),
            (
                "disconnect from 103.99.0.122: 11",
                "103.99.0.122",
                "disconnect from {} 11",
            ),
            ("x-1.2.3.4", "1.2.3.4", "{}"),
            ("1.2.3.4.5", "1.2.3.4", "{}"),
            ("/1.2.3.4/x", "1.2.3.4", "{}"),
            ("1%2E2%2E3%2E4", "1.2.3.4", "{}"),
            (r#"{"ip":"203.0.113.9"}"#, "203.0.113.9", r#"{"ip":"{}"}"#),
            (
                r#"{"ip":"198\u002e51\u002e100\u002e7"}"#,
                "198.51.100.7",
                r#"{"ip":"{}"}"#,
            ),
            ("010.001.002.003", "10.1.2.3", "{}"),
        ] {
            assert_eq!(sp(input), want.replace("{}", &ip_marker(addr)), "{input}");
        }
    }

    #[test]
    fn ipv6_textual_forms_become_their_pseudonym() {
        for (input, addr) in [
            // Full, leading zeros, upper case, compressed in every position.
            (
                "2001:0db8:0000:0000:0000:ff00:0042:8329",
                "2001:db8::ff00:42:8329",
            ),
            ("2001:db8:0:0:0:ff00:42:8329", "2001:db8::ff00:42:8329"),
            ("2001:db8::ff00:42:8329", "2001:db8::ff00:42:8329"),
            ("2001:DB8::FF00:42:8329", "2001:db8::ff00:42:8329"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("::1", "::1"),
            ("::", "::"),
            ("fe80::", "fe80::"),
            ("1::8", "1::8"),
            ("2001:db8::1.", "2001:db8::1"),
            // IPv4-mapped, -compatible, NAT64 and a dotted tail: the IPv4 address's pseudonym.
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("::FFFF:192.0.2.1", "192.0.2.1"),
            ("::ffff:c000:201", "192.0.2.1"),
            ("0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1"),
            ("64:ff9b::192.0.2.1", "192.0.2.1"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            // Zone, prefix, glued prefix text, percent-encoded.
            ("fe80::1%eth0", "fe80::1"),
            ("fe80::1%25eth0", "fe80::1"),
            ("2001:db8::/32", "2001:db8::"),
            ("addr:2001:db8::1", "2001:db8::1"),
            ("%5B2001%3Adb8%3A%3A1%5D%3A443", "2001:db8::1"),
        ] {
            assert_eq!(sp(input), ip_marker(addr), "{input}");
            assert_eq!(s(input), "<ip>", "{input}");
        }
        let m = ip_marker("2001:db8::1");
        assert_eq!(sp("[2001:db8::1]:8080"), format!("[{m}]:8080"));
        assert_eq!(sp("client=2001:db8::1, x"), format!("client={m}, x"));
        assert_eq!(sp("[::1]:22"), format!("[{}]:22", ip_marker("::1")));
        assert_eq!(
            sp("[::ffff:10.0.0.1]:22"),
            format!("[{}]:22", ip_marker("10.0.0.1"))
        );
        assert_eq!(
            sp(r#"2001:db8::1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 0"#),
            format!(r#"{m} - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 0"#)
        );
    }

    #[test]
    fn mapped_and_plain_ipv4_join() {
        assert_eq!(sp("::ffff:203.0.113.9"), sp("203.0.113.9"));
        assert_eq!(
            sp("[::ffff:203.0.113.9]:80"),
            format!("[{}]:80", sp("203.0.113.9"))
        );
        assert_ne!(sp("203.0.113.9"), sp("203.0.113.10"));
    }

    #[test]
    fn address_like_text_without_an_exact_address_stays_typed() {
        for input in [
            "1.2.3.4567",
            "999.1.2.3",
            "2001:db8:2ce:1",
            "00:1a:2b:3c:4d:5e",
        ] {
            assert_eq!(sp(input), "<ip>", "{input}");
        }
        // Not addresses at all: unchanged, as without a pseudonymiser.
        for input in ["13:55:36", "10.0.19041.1", "std::io::Error", "v1.2.3"] {
            assert_eq!(sp(input), input, "{input}");
        }
    }

    #[test]
    fn uuid_in_text_becomes_the_device_pseudonym() {
        let u = "550e8400-e29b-41d4-a716-446655440000";
        assert_eq!(
            sp(&format!("device {u} ok")),
            format!("device {} ok", id_marker(u))
        );
        assert_eq!(
            sp(&format!("device_id={u}")),
            format!("device_id={}", id_marker(u))
        );
        assert_eq!(sp(&format!("id:{u}")), id_marker(u));
        // As written: an upper-case UUID is the pseudonym of the upper-case text (as a
        // `device_id` field written that way would be), not of its lower-case form.
        let upper = u.to_ascii_uppercase();
        assert_eq!(sp(&upper), id_marker(&upper));
        assert_ne!(sp(&upper), sp(u));
        // Inside a path the path placeholder is kept; the typed marker without pseudonymiser.
        assert_eq!(sp(&format!("/d/{u}/x")), "/d/:uuid/x");
        assert_eq!(s(&format!("device {u} ok")), "device <uuid> ok");
    }

    #[test]
    fn other_rules_keep_typed_markers_with_pseudonyms() {
        assert_eq!(
            sp(
                "user alice@example.com from 1.2.3.4 token=abc https://x.example/?q=1 deadbeefdeadbeef 4111-1111-1111-1111 00-1A-2B-3C-4D-5E www.example.com /u/42?x=1"
            ),
            format!(
                "user <email> from {} token=<secret> <url> <token> <card> <mac> <host> /u/:id?<redacted>",
                ip_marker("1.2.3.4")
            )
        );
        assert_eq!(sp("x?ip=1.2.3.4 y"), "x?<redacted> y");
    }

    #[test]
    fn pseudonym_output_is_bounded_and_a_prefix() {
        let line = "from 2001:db8::1 port 22 device 550e8400-e29b-41d4-a716-446655440000 end";
        let full = sp(line);
        let p = dev();
        let mut out = String::new();
        for max in 0..full.len() + 4 {
            scrub_text_with(line.as_bytes(), max, Some(&p), &mut out);
            assert!(out.len() <= max + 3);
            let kept = out.strip_suffix('\u{2026}').unwrap_or(&out);
            assert!(full.starts_with(kept), "{out:?} vs {full:?}");
            assert!(!out.contains("2001:db8") && !out.contains("550e8400"));
        }
    }

    /// A secret-like value and the text that plants it (bare or after a secret key).
    fn token_canary() -> impl Strategy<Value = (String, String)> {
        let value = "[A-Za-z0-9._~+/-]{8,40}";
        prop_oneof![
            "[0-9a-f]{32,40}".prop_map(|v| (v.clone(), v)),
            ("[A-Za-z]{10,20}", "[0-9]{10,12}").prop_map(|(a, d)| {
                let v = format!("{a}{d}");
                (v.clone(), v)
            }),
            value.prop_map(|v| (format!("Bearer {v}"), v)),
            value.prop_map(|v| (format!("password={v}"), v)),
            value.prop_map(|v| (format!(r#""api_key": "{v}""#), v)),
            value.prop_map(|v| (format!("Authorization: Basic {v}"), v)),
        ]
    }

    /// What is planted, and what must not survive of it.
    #[derive(Debug, Clone)]
    enum Planted {
        /// An address: its text must not survive whole.
        Ip(String),
        /// An email, UUID or secret: no 8-byte piece of it may survive.
        Secret(String),
    }

    fn planted() -> impl Strategy<Value = (String, Planted)> {
        prop_oneof![
            ipv4_canary().prop_map(|c| (c.clone(), Planted::Ip(c))),
            ipv6_canary().prop_map(|c| (c.clone(), Planted::Ip(c))),
            ipv4_canary().prop_map(|c| (format!("::ffff:{c}"), Planted::Ip(c))),
            (ipv6_canary(), 1u16..).prop_map(|(c, port)| (format!("[{c}]:{port}"), Planted::Ip(c))),
            (ipv4_canary(), 1u16..).prop_map(|(c, port)| (format!("{c}:{port}"), Planted::Ip(c))),
            ipv6_canary()
                .prop_filter("has ::", |c| c.contains("::"))
                .prop_map(|c| (format!("{c}%eth0"), Planted::Ip(c))),
            email_canary().prop_map(|c| (c.clone(), Planted::Secret(c))),
            uuid_canary().prop_map(|c| (c.clone(), Planted::Secret(c))),
            token_canary().prop_map(|(text, v)| (text, Planted::Secret(v))),
        ]
    }

    fn survives(out: &str, p: &Planted) -> bool {
        match p {
            Planted::Ip(c) => out.contains(c.as_str()),
            Planted::Secret(c) => c
                .as_bytes()
                .windows(8)
                .any(|w| out.as_bytes().windows(8).any(|o| o == w)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn planted_values_never_survive(
            fillers in proptest::collection::vec("[ -~]{0,30}", 4),
            ds in proptest::collection::vec(delim(), 6),
            plants in proptest::collection::vec(planted(), 1..4),
            with_ids in any::<bool>(),
        ) {
            let mut line = fillers[0].clone();
            for (k, (text, _)) in plants.iter().enumerate() {
                line.push(ds[2 * k]);
                line.push_str(text);
                line.push(ds[2 * k + 1]);
                line.push_str(&fillers[k + 1]);
            }
            // The filler is arbitrary text: it may hold a value by chance, which is not a leak.
            for (_, p) in &plants {
                prop_assume!(!fillers.iter().any(|f| survives(f, p)));
            }
            let p = dev();
            let mut out = String::new();
            scrub_text_with(line.as_bytes(), 4096, with_ids.then_some(&p), &mut out);
            for (_, planted) in &plants {
                prop_assert!(!survives(&out, planted), "{:?} -> {:?} ({:?})", line, out, planted);
            }
        }

        #[test]
        fn planted_addresses_become_their_pseudonyms(
            plant in prop_oneof![ipv4_canary(), ipv6_canary()],
            port in 1u16..,
        ) {
            let addr: IpAddr = plant.parse().unwrap();
            let m = format!("<ip:{}>", dev().ip_pseudonym(addr).as_str());
            prop_assert_eq!(sp(&format!("from {plant} port {port}")), format!("from {m} port {port}"));
            let bracketed = if addr.is_ipv6() { format!("[{plant}]") } else { plant.clone() };
            prop_assert_eq!(sp(&format!("to {bracketed}:{port}")), if addr.is_ipv6() {
                format!("to [{m}]:{port}")
            } else {
                format!("to {m}")
            });
        }

        #[test]
        fn uuids_become_their_device_pseudonyms(u in uuid_canary(), key in "[a-z_]{1,10}") {
            prop_assume!(!is_secret_key(key.as_bytes()));
            prop_assert_eq!(sp(&format!("{key}={u} ok")), format!("{key}={} ok", id_marker(&u)));
        }

        #[test]
        fn never_panics_with_pseudonyms(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            max in 0usize..500,
        ) {
            let p = dev();
            let mut out = String::new();
            scrub_text_with(&bytes, max, Some(&p), &mut out);
            prop_assert!(out.len() <= max + 3);
            prop_assert!(!out.chars().any(|ch| (ch < ' ' && ch != '\t') || ch == char::from(0x7f)));
        }

        #[test]
        fn never_panics_on_tricky_text_with_pseudonyms(
            text in "[0-9a-fA-F:./?#%@\\[\\]\\\\=&; \"gxz_+-]{0,300}",
            max in 0usize..400,
        ) {
            let p = dev();
            let mut out = String::new();
            scrub_text_with(text.as_bytes(), max, Some(&p), &mut out);
            prop_assert!(out.len() <= max + 3);
            // The same shape as without pseudonyms: only the markers' insides differ.
            let mut typed = String::new();
            scrub_text(text.as_bytes(), max.max(4096), &mut typed);
            let mut full = String::new();
            scrub_text_with(text.as_bytes(), max.max(4096), Some(&p), &mut full);
            prop_assert_eq!(strip_pseudonyms(&full), typed);
        }
    }

    /// `<ip:…>` → `<ip>`, `<id:…>` → `<uuid>`.
    fn strip_pseudonyms(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(k) = rest.find("<i") {
            out.push_str(&rest[..k]);
            let tail = &rest[k..];
            if let Some(after) = tail
                .strip_prefix("<ip:")
                .filter(|t| t.len() > 32 && t.as_bytes()[32] == b'>')
            {
                out.push_str("<ip>");
                rest = &after[33..];
            } else if let Some(after) = tail
                .strip_prefix("<id:")
                .filter(|t| t.len() > 32 && t.as_bytes()[32] == b'>')
            {
                out.push_str("<uuid>");
                rest = &after[33..];
            } else {
                out.push_str("<i");
                rest = &tail[2..];
            }
        }
        out.push_str(rest);
        out
    }
}

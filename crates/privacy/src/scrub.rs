//! Free-text scrubbing: owns `scrub_text`, which turns an arbitrary (quarantined) log line into
//! bounded, valid UTF-8 that keeps the line's structure and harmless words while replacing URLs,
//! emails, IP addresses, paths' identifiers and query strings, host names, UUIDs and tokens by
//! placeholders. Path tokens reuse the segment rules of `url::clean_path`.

use memchr::{memchr, memchr2};

use super::url::{
    C_B64, Sensitive, contains_ip, has_email_marker, push_clean_path, push_lossy, scan_id_runs,
    truncate_at_char_boundary, with_pct_decoded,
};

/// Only this many input bytes are looked at.
const SCAN_LIMIT: usize = 64 * 1024;

/// Appended when the output was truncated.
const ELLIPSIS: char = '…';

/// Splits tokens (copied through to the output).
const D_DELIM: u8 = 1;
/// Ends a query string / URL: a query swallows soft delimiters (`=`, `&`, …) but not these.
const D_HARD: u8 = 2;
/// Token summary bits, gathered while the token is scanned, that gate the (costlier) rules.
const T_COLON: u8 = 4;
const T_AT: u8 = 8;
const T_PCT: u8 = 16;
const T_QUERY: u8 = 32;
const T_DOT: u8 = 64;
const T_DIGIT: u8 = 128;

const fn build_delims() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b < 0x20 || b == 0x7f || b == b' ' || matches!(b, b'"' | b'\'' | b'<' | b'>')
        {
            D_DELIM | D_HARD
        } else {
            match b {
                b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' | b'=' | b'|' | b'\\'
                | b'&' => D_DELIM,
                b':' => T_COLON,
                b'@' => T_AT,
                b'%' => T_PCT,
                b'?' => T_QUERY,
                b'.' => T_DOT,
                b'0'..=b'9' => T_DIGIT,
                _ => 0,
            }
        };
        i += 1;
    }
    table
}

static DELIMS: [u8; 256] = build_delims();

/// Whether `s[i]` splits tokens. A `\` directly followed by `/` (JSON-escaped slash) does not, so
/// that `https:\/\/host\/x` is seen whole. Out of range counts as a delimiter.
#[inline]
fn is_delim_at(s: &[u8], i: usize) -> bool {
    match s.get(i) {
        Some(&b'\\') => s.get(i + 1) != Some(&b'/'),
        Some(&b) => DELIMS[usize::from(b)] & D_DELIM != 0,
        None => true,
    }
}

/// Scans the token starting at `start`; returns its end and the OR of its summary bits.
#[inline]
fn scan_token(s: &[u8], start: usize) -> (usize, u8) {
    let rest = s.get(start..).unwrap_or_default();
    let mut bits = 0u8;
    for (k, &b) in rest.iter().enumerate() {
        let d = DELIMS[usize::from(b)];
        if d & D_DELIM != 0 && !(b == b'\\' && rest.get(k + 1) == Some(&b'/')) {
            return (start + k, bits);
        }
        bits |= d;
    }
    (s.len(), bits)
}

#[inline]
fn push_delim(b: u8, out: &mut String) {
    if b == b'\t' || (0x20..0x7f).contains(&b) {
        out.push(char::from(b));
    } else {
        out.push(char::REPLACEMENT_CHARACTER);
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

/// First hard delimiter at or after `from`.
fn hard_end(s: &[u8], from: usize) -> usize {
    let mut j = from;
    while let Some(&b) = s.get(j) {
        if DELIMS[usize::from(b)] & D_HARD != 0 {
            break;
        }
        j += 1;
    }
    j
}

/// Rules that hide the whole token: URL, email, IP.
#[derive(Clone, Copy)]
enum Whole {
    Url,
    Email,
    Ip,
}

/// `://` (or its JSON-escaped form `:\/\/`) anywhere.
fn has_scheme_separator(s: &[u8]) -> bool {
    memchr::memchr_iter(b':', s).any(|i| {
        let rest = s.get(i + 1..).unwrap_or_default();
        rest.starts_with(b"//") || rest.starts_with(br"\/\/")
    })
}

/// URL, email and IP rules; `bits` are the token's summary bits (all set = unknown).
fn whole_token_rule(s: &[u8], bits: u8) -> Option<Whole> {
    if bits & T_COLON != 0 && has_scheme_separator(s) {
        Some(Whole::Url)
    } else if bits & (T_AT | T_PCT) != 0 && has_email_marker(s) {
        Some(Whole::Email)
    } else if (bits & T_COLON != 0 || bits & (T_DOT | T_DIGIT) == T_DOT | T_DIGIT) && contains_ip(s)
    {
        Some(Whole::Ip)
    } else {
        None
    }
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

/// Host, UUID and token rules, else the word itself.
fn scrub_word(w: &[u8], out: &mut String) {
    if contains_hostname(w) {
        out.push_str("<host>");
        return;
    }
    match scan_id_runs(w, C_B64) {
        Some(Sensitive::Uuid) => out.push_str("<uuid>"),
        Some(_) => out.push_str("<token>"),
        None => push_lossy(out, w),
    }
}

/// Scrubs one token into `out`. Returns true if the rest of a query string / URL that follows
/// the token (up to the next hard delimiter) must be swallowed as well.
fn scrub_token(tok: &[u8], bits: u8, out: &mut String) -> bool {
    let has_query = bits & T_QUERY != 0;
    let whole = if bits & T_PCT != 0 {
        whole_token_rule(tok, bits).or_else(|| with_pct_decoded(tok, |d| whole_token_rule(d, !0)))
    } else {
        whole_token_rule(tok, bits)
    };
    match whole {
        Some(Whole::Url) => {
            out.push_str("<url>");
            return true;
        }
        Some(Whole::Email) => {
            out.push_str("<email>");
            return has_query;
        }
        Some(Whole::Ip) => {
            out.push_str("<ip>");
            return has_query;
        }
        None => {}
    }
    if is_hex_colon_groups(tok) {
        // Not a valid IPv6 address, but shaped like one (or a MAC address): fail closed.
        out.push_str("<ip>");
        return false;
    }
    if is_dashed_mac(tok) {
        out.push_str("<mac>");
        return false;
    }
    if is_luhn_number(tok) {
        out.push_str("<card>");
        return false;
    }
    if tok.first() == Some(&b'/') {
        return match memchr2(b'?', b'#', tok) {
            Some(cut) => {
                push_clean_path(&tok[..cut], usize::MAX, out);
                out.push_str("?<redacted>");
                true
            }
            None => {
                push_clean_path(tok, usize::MAX, out);
                false
            }
        };
    }
    if has_query {
        let q = memchr(b'?', tok).unwrap_or(tok.len());
        scrub_word(&tok[..q], out);
        out.push_str("?<redacted>");
        return true;
    }
    if bits & T_DOT == 0 && tok.len() < 16 {
        push_lossy(out, tok);
        return false;
    }
    scrub_word(tok, out);
    false
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
    if !tok.first().is_some_and(u8::is_ascii_digit)
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
    // Cheap pre-check: every key is 3–13 bytes and starts with one of these letters.
    let first = name.first().map(u8::to_ascii_lowercase);
    (3..=13).contains(&name.len())
        && matches!(first, Some(b'p' | b's' | b't' | b'a' | b'c' | b'r'))
        && KEYS.iter().any(|k| name.eq_ignore_ascii_case(k))
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

/// Three or more ':' between hex digits only (`2001:db8:2ce:1`, `00:1a:2b:3c:4d:5e`), which
/// times like `13:55:36` are not.
fn is_hex_colon_groups(tok: &[u8]) -> bool {
    let colons = tok.iter().filter(|&&b| b == b':').count();
    colons >= 3 && tok.iter().all(|b| b.is_ascii_hexdigit() || *b == b':')
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

/// Scrubs free text (a quarantined log line, arbitrary bytes, possibly JSON) so that it can be
/// stored for debugging without personal data: keeps the line's structure and harmless words,
/// replaces sensitive tokens. Output is valid UTF-8 (lossy), at most `max_len` bytes (truncated
/// at a char boundary, then "…" appended if truncated — the "…" may exceed max_len by its 3
/// bytes), control characters (< 0x20 except tab, and 0x7f) replaced by U+FFFD.
///
/// Only the first 64 KiB of input are scanned (cut back to a delimiter, which counts as a
/// truncation). Scrubbing happens before truncation, so no sensitive token is ever cut in half
/// and partially kept.
pub fn scrub_text(input: &[u8], max_len: usize, out: &mut String) {
    out.clear();
    // JSON may spell ASCII as `\u0040` or `\/`: classify what it means, not how it is written.
    let decoded;
    let input = if memchr::memmem::find(input, b"\\u").is_some()
        || memchr::memmem::find(input, b"\\/").is_some()
    {
        decoded = decode_json_ascii_escapes(input);
        &decoded[..]
    } else {
        input
    };
    let (window, mut truncated) = scan_window(input);
    let mut i = 0;
    // The next real token is a secret: it follows `password=`, `"token": `, `Bearer `, …
    let mut secret_next = false;
    while i < window.len() && out.len() <= max_len {
        if is_delim_at(window, i) {
            push_delim(window[i], out);
            i += 1;
            continue;
        }
        let (j, bits) = scan_token(window, i);
        let tok = &window[i..j];
        let scheme = tok.eq_ignore_ascii_case(b"bearer") || tok.eq_ignore_ascii_case(b"basic");
        if secret_next && !scheme && !tok.iter().all(|b| matches!(b, b':' | b'=')) {
            secret_next = false;
            out.push_str("<secret>");
            i = j;
            continue;
        }
        if (is_secret_key(tok) && assigns_value(tok, window.get(j..).unwrap_or_default()))
            || (tok.eq_ignore_ascii_case(b"bearer") && window.get(j) == Some(&b' '))
        {
            secret_next = true;
        }
        i = if scrub_token(tok, bits, out) {
            hard_end(window, j)
        } else {
            j
        };
    }
    if i < window.len() {
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
}

//! URL handling for storage: owns `clean_path` (request-target / page path with query and fragment
//! removed and identifier-like segments replaced by placeholders), `referrer_host` (scheme and DNS
//! host of a referrer, never an IP literal) and `is_proxy_target` (absolute-form / authority-form
//! request targets). Also owns the byte-level detectors shared with `scrub` (IPv4/IPv6 addresses,
//! UUIDs, tokens, email markers, percent-decoding, lossy UTF-8 output).

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::{memchr, memchr2, memrchr};

/// Maximum length in bytes of a cleaned path.
const MAX_PATH_LEN: usize = 1024;

/// Longest textual IPv6 candidate handed to the std parser (45 chars is the longest valid form).
const MAX_V6_TEXT: usize = 64;

/// Longest scheme accepted by `referrer_host`.
const MAX_SCHEME_LEN: usize = 32;

/// Longest DNS name accepted by `referrer_host`.
const MAX_HOST_LEN: usize = 253;

/// Kind of personal / identifying data detected in a piece of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sensitive {
    Email,
    Ip,
    Uuid,
    Id,
    Token,
}

impl Sensitive {
    /// Placeholder used inside paths (`/users/:id`).
    pub(crate) fn path_placeholder(self) -> &'static str {
        match self {
            Sensitive::Email => ":email",
            Sensitive::Ip => ":ip",
            Sensitive::Uuid => ":uuid",
            Sensitive::Id => ":id",
            Sensitive::Token => ":token",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Byte classes
// ---------------------------------------------------------------------------------------------

pub(crate) const C_DIGIT: u8 = 1;
pub(crate) const C_ALPHA: u8 = 2;
pub(crate) const C_HEX: u8 = 4;
/// `[A-Za-z0-9_-]` (base64url).
pub(crate) const C_URLSAFE: u8 = 8;
/// `[A-Za-z0-9_+/=-]` (base64 and base64url).
pub(crate) const C_B64: u8 = 16;
/// `[0-9A-Fa-f:.]`: characters of an IPv6 address (with an embedded IPv4 tail).
const C_V6: u8 = 32;

const fn build_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_digit() {
            c |= C_DIGIT | C_HEX | C_URLSAFE | C_B64 | C_V6;
        }
        if b.is_ascii_alphabetic() {
            c |= C_ALPHA | C_URLSAFE | C_B64;
        }
        if matches!(b, b'a'..=b'f' | b'A'..=b'F') {
            c |= C_HEX | C_V6;
        }
        match b {
            b'_' | b'-' => c |= C_URLSAFE | C_B64,
            b'+' | b'/' | b'=' => c |= C_B64,
            b':' | b'.' => c |= C_V6,
            _ => {}
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CLASSES: [u8; 256] = build_classes();

#[inline]
pub(crate) fn class(b: u8) -> u8 {
    CLASSES[usize::from(b)]
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers
// ---------------------------------------------------------------------------------------------

/// Appends `bytes` to `out`, replacing invalid UTF-8 with U+FFFD (like `String::from_utf8_lossy`).
pub(crate) fn push_lossy(out: &mut String, bytes: &[u8]) {
    if let Ok(valid) = std::str::from_utf8(bytes) {
        out.push_str(valid);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Truncates `s` to at most `max` bytes at a char boundary; returns whether anything was cut.
pub(crate) fn truncate_at_char_boundary(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    s.truncate(i);
    true
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Iterator over the percent-decoded bytes of a slice (malformed escapes are kept literally).
struct PctDecoded<'a> {
    rest: &'a [u8],
}

impl Iterator for PctDecoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        match self.rest {
            [b'%', h, l, tail @ ..] => {
                if let (Some(h), Some(l)) = (hex_val(*h), hex_val(*l)) {
                    self.rest = tail;
                    Some(h << 4 | l)
                } else {
                    self.rest = &self.rest[1..];
                    Some(b'%')
                }
            }
            [b, tail @ ..] => {
                self.rest = tail;
                Some(*b)
            }
            [] => None,
        }
    }
}

/// Calls `f` with the percent-decoded form of `src`, without allocating for short inputs.
pub(crate) fn with_pct_decoded<R>(src: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut stack = [0u8; 256];
    if src.len() <= stack.len() {
        let mut n = 0;
        for (slot, b) in stack.iter_mut().zip(PctDecoded { rest: src }) {
            *slot = b;
            n += 1;
        }
        f(&stack[..n])
    } else {
        let heap: Vec<u8> = PctDecoded { rest: src }.collect();
        f(&heap)
    }
}

fn trim_trailing_dots(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'.'] = s {
        s = rest;
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Detectors
// ---------------------------------------------------------------------------------------------

/// `@`, or a percent-encoded one (`%40`), anywhere.
pub(crate) fn has_email_marker(s: &[u8]) -> bool {
    memchr(b'@', s).is_some()
        || memchr::memchr_iter(b'%', s).any(|i| s.get(i + 1..i + 3) == Some(b"40"))
}

/// True if `s` contains an IPv4 address as a substring: four dot-separated digit groups whose two
/// middle groups are 1–3 digits ≤ 255 (the outer groups may be cut out of longer digit runs, so
/// `x-1.2.3.4:80`, `91.2.3.45` and `1.2.3.4.5` all count; `10.0.19041.1` does not).
pub(crate) fn contains_ipv4(s: &[u8]) -> bool {
    scan_ipv4(s, false).is_some()
}

/// One pass over `s` for IPv4 addresses. `None`: none by [`contains_ipv4`]'s rule (four
/// dot-separated digit groups whose two middle ones are octets; the outer ones may be cut out
/// of longer digit runs). Otherwise, if `want_addr`, the first clean address: four groups of
/// 1–3 digits, each ≤ 255, not glued to further digits (`1.2.3.4:80`, `x-1.2.3.4`, `1.2.3.4` in
/// `1.2.3.4.5`; not `1.2.3.4567`, which gives `Some(None)`).
pub(crate) fn scan_ipv4(s: &[u8], want_addr: bool) -> Option<Option<Ipv4Addr>> {
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

fn parse_v6(t: &[u8]) -> Option<Ipv6Addr> {
    if t.len() > MAX_V6_TEXT {
        return None;
    }
    std::str::from_utf8(t).ok()?.parse().ok()
}

/// Parses `head ":" tail` as IPv6 without allocating.
fn parse_v6_joined(head: &[u8], tail: &[u8]) -> Option<Ipv6Addr> {
    let mut buf = [0u8; MAX_V6_TEXT];
    let total = head.len() + 1 + tail.len();
    let dst = buf.get_mut(..total)?;
    let (h, rest) = dst.split_at_mut(head.len());
    h.copy_from_slice(head);
    let (colon, t) = rest.split_first_mut()?;
    *colon = b':';
    t.copy_from_slice(tail);
    parse_v6(dst)
}

/// Cheap necessary condition for `contains_ipv6`: every candidate it parses is a substring of
/// `s`, and textual IPv6 has either a `::` or at least six ':' (eight groups, or six and an
/// IPv4 tail). Rejects times such as `13:55:36` without running the parser.
fn may_contain_ipv6(s: &[u8]) -> bool {
    let mut colons = 0usize;
    let mut prev_colon = false;
    for &b in s {
        let c = b == b':';
        if c && prev_colon {
            return true;
        }
        colons += usize::from(c);
        prev_colon = c;
    }
    colons >= 6
}

/// True if `s` contains an IPv6 address. A maximal run of `[0-9A-Fa-f:.]` counts when, after
/// trimming trailing dots, it parses as IPv6 and is not glued to letters/digits on either side
/// (so `fe80::1%eth0`, `[::1]:80`, `2001:db8::/32` count but `Foo::bar` does not); any
/// sub-sequence of its groups with at least three non-empty groups that parses counts too (so
/// an address glued to other text is still found). Times (`13:55:36`) never parse.
pub(crate) fn contains_ipv6(s: &[u8]) -> bool {
    find_ipv6(s).is_some()
}

/// The address whose text `contains_ipv6` finds first (the whole delimited run when it parses,
/// else the first glued candidate that does).
pub(crate) fn find_ipv6(s: &[u8]) -> Option<Ipv6Addr> {
    if !may_contain_ipv6(s) {
        return None;
    }
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if class(b) & C_V6 == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut colons = 0usize;
        while let Some(&c) = s.get(i) {
            if class(c) & C_V6 == 0 {
                break;
            }
            colons += usize::from(c == b':');
            i += 1;
        }
        if colons >= 2
            && let Some(a) = run_ipv6(s, start, i)
        {
            return Some(a);
        }
    }
    None
}

fn run_ipv6(s: &[u8], start: usize, end: usize) -> Option<Ipv6Addr> {
    let run = s.get(start..end)?;
    let left_free = start == 0 || s.get(start - 1).is_some_and(|b| !b.is_ascii_alphanumeric());
    let right_free = s.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
    if left_free && right_free {
        let t = trim_trailing_dots(run);
        if let Some(a) = parse_v6(t) {
            return Some(a);
        }
        if let Some(t2) = t.strip_suffix(b":")
            && !t2.ends_with(b":")
            && let Some(a) = parse_v6(t2)
        {
            return Some(a);
        }
    }
    let mut piece_start = 0;
    loop {
        let piece_end = memchr(b':', &run[piece_start..]).map_or(run.len(), |p| piece_start + p);
        if let Some(a) = v6_candidates_from(run, piece_start, piece_end) {
            return Some(a);
        }
        if piece_end >= run.len() {
            return None;
        }
        piece_start = piece_end + 1;
    }
}

/// Tries the candidates that start with the (suffix of the) colon-separated piece
/// `run[ps..pe]` and span up to eight further pieces; requires ≥ 3 non-empty groups.
fn v6_candidates_from(run: &[u8], ps: usize, pe: usize) -> Option<Ipv6Addr> {
    let first = &run[ps..pe];
    let first = match memrchr(b'.', first) {
        Some(d) => &first[d + 1..],
        None => first,
    };
    let first = &first[first.len().saturating_sub(4)..];
    let mut head = [0u8; 48];
    let mut head_len = first.len();
    head[..head_len].copy_from_slice(first);
    let mut groups = usize::from(!first.is_empty());
    // A valid address with ≥ 3 groups has at most two empty pieces (from one "::").
    let mut empties = usize::from(first.is_empty());
    let mut pos = pe;
    for _ in 0..8 {
        if pos >= run.len() {
            break;
        }
        let ns = pos + 1;
        let ne = memchr(b':', &run[ns..]).map_or(run.len(), |p| ns + p);
        let piece = &run[ns..ne];
        let dot = memchr(b'.', piece);
        let prefix = match dot {
            Some(d) => &piece[..d],
            None => piece,
        };
        let prefix = &prefix[..prefix.len().min(4)];
        let h = &head[..head_len];
        if groups + usize::from(!prefix.is_empty()) >= 3
            && let Some(a) = parse_v6_joined(h, prefix)
        {
            return Some(a);
        }
        if dot.is_some()
            && groups + 2 >= 3
            && let Some(a) = parse_v6_joined(h, piece)
        {
            return Some(a);
        }
        empties += usize::from(piece.is_empty());
        if piece.len() > 4 || dot.is_some() || empties > 2 {
            break;
        }
        let Some(dst) = head.get_mut(head_len..head_len + 1 + piece.len()) else {
            break;
        };
        if let Some((colon, rest)) = dst.split_first_mut() {
            *colon = b':';
            rest.copy_from_slice(piece);
        }
        head_len += 1 + piece.len();
        groups += usize::from(!piece.is_empty());
        pos = ne;
    }
    None
}

/// 8-4-4-4-12 hex digits, any case.
pub(crate) fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// Looks for id-like runs of bytes of class `mask` (`C_URLSAFE` or `C_B64`): a run containing a
/// UUID gives `Uuid`; a run of ≥ 16 hex digits, of ≥ 20 chars mixing letters and digits, or of
/// ≥ 12 chars with at least 3 letters, 3 digits and 4 letter/digit alternations (random-looking:
/// `k7m2p9q4r8s3`, unlike words such as `x86_64-linux` or `sha256sum`) gives `Token`.
pub(crate) fn scan_id_runs(s: &[u8], mask: u8) -> Option<Sensitive> {
    let mut token = false;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if class(b) & mask == 0 {
            i += 1;
            continue;
        }
        let start = i;
        let mut seen = 0u8;
        let mut all_hex = true;
        let (mut letters, mut digits, mut flips, mut prev) = (0u32, 0u32, 0u32, 0u8);
        while let Some(&c) = s.get(i) {
            let cl = class(c);
            if cl & mask == 0 {
                break;
            }
            seen |= cl;
            all_hex &= cl & C_HEX != 0;
            let kind = cl & (C_DIGIT | C_ALPHA);
            letters += u32::from(kind == C_ALPHA);
            digits += u32::from(kind == C_DIGIT);
            flips += u32::from(kind != 0 && prev != 0 && kind != prev);
            if kind != 0 {
                prev = kind;
            }
            i += 1;
        }
        let len = i - start;
        if len >= 36 && s[start..i].windows(36).any(is_uuid) {
            return Some(Sensitive::Uuid);
        }
        let random_looking = len >= 12 && letters >= 3 && digits >= 3 && flips >= 4;
        if (len >= 16 && all_hex)
            || (len >= 20 && seen & C_DIGIT != 0 && seen & C_ALPHA != 0)
            || random_looking
        {
            token = true;
        }
    }
    token.then_some(Sensitive::Token)
}

/// JWT-like: at least three '.'-separated parts, each ≥ 10 chars of base64url.
fn is_jwt(s: &[u8]) -> bool {
    let mut parts = 0;
    for part in s.split(|&b| b == b'.') {
        if part.len() < 10 || !part.iter().all(|&b| class(b) & C_URLSAFE != 0) {
            return false;
        }
        parts += 1;
    }
    parts >= 3
}

/// Classifies one path segment (matrix parameters already removed). Detection runs on the
/// percent-decoded segment and, if that finds nothing, on the raw bytes.
pub(crate) fn classify_segment(raw: &[u8]) -> Option<Sensitive> {
    if memchr(b'%', raw).is_some() {
        with_pct_decoded(raw, classify_plain_segment).or_else(|| classify_plain_segment(raw))
    } else {
        classify_plain_segment(raw)
    }
}

fn classify_plain_segment(s: &[u8]) -> Option<Sensitive> {
    let mut any = 0u8;
    let mut all = 0xffu8;
    let mut dots = 0usize;
    let mut colons = 0usize;
    for &b in s {
        let c = class(b);
        any |= c;
        all &= c;
        dots += usize::from(b == b'.');
        colons += usize::from(b == b':');
    }
    if has_email_marker(s) {
        return Some(Sensitive::Email);
    }
    if (any & C_DIGIT != 0 && dots >= 3 && contains_ipv4(s)) || (colons >= 2 && contains_ipv6(s)) {
        return Some(Sensitive::Ip);
    }
    if !s.is_empty() && all & C_DIGIT != 0 {
        return Some(Sensitive::Id);
    }
    if s.len() < 12 {
        return None;
    }
    if dots >= 2 && is_jwt(s) {
        return Some(Sensitive::Token);
    }
    scan_id_runs(s, C_URLSAFE)
}

/// Appends the cleaned form of `path` (no query or fragment) to `out`: segments are copied or
/// replaced by placeholders, matrix parameters dropped. Stops early once `out` exceeds `limit`.
///
/// Runs of trivially clean segments are copied in one go, so a clean path is a single pass plus
/// a copy.
pub(crate) fn push_clean_path(path: &[u8], limit: usize, out: &mut String) {
    if all_segments_trivial(path) {
        let end = path.len().min(limit.saturating_add(1));
        push_lossy(out, &path[..end]);
        return;
    }
    // `path[pending..seg_start]` is raw text (clean segments and their slashes) not yet copied.
    let mut pending = 0;
    let mut seg_start = 0;
    loop {
        let (seg_end, trivial) = scan_segment(path, seg_start);
        if !trivial {
            push_lossy(out, &path[pending..seg_start]);
            push_clean_segment(&path[seg_start..seg_end], out);
            pending = seg_end;
        }
        if seg_end >= path.len() || out.len() + (seg_end - pending) > limit {
            push_lossy(out, &path[pending..seg_end]);
            return;
        }
        seg_start = seg_end + 1;
    }
}

// Per-byte flags for the clean-path fast path.
const F_SLASH: u8 = 1;
const F_DOT: u8 = 2;
const F_COLON: u8 = 4;
const F_SPECIAL: u8 = 8;
const F_NONDIGIT: u8 = 16;

const fn build_path_flags() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = match b {
            b'/' => F_SLASH,
            b'.' => F_DOT | F_NONDIGIT,
            b':' => F_COLON | F_NONDIGIT,
            b'@' | b'%' | b';' => F_SPECIAL | F_NONDIGIT,
            b'0'..=b'9' => 0,
            _ => F_NONDIGIT,
        };
        i += 1;
    }
    table
}

static PATH_FLAGS: [u8; 256] = build_path_flags();

/// Whether a segment is trivially clean, from its length and counters: shorter than any token,
/// without '@', '%' or ';', not all digits, and with too few '.' / ':' for an IP address. Such a
/// segment can never be classified as sensitive, so it is copied without classification.
#[inline]
fn trivial_segment(len: usize, dots: usize, colons: usize, special: u8, nondigit: u8) -> bool {
    len < 12 && dots < 3 && colons < 2 && special == 0 && (len == 0 || nondigit != 0)
}

/// One tight pass over a whole path: true if every segment is trivially clean (see
/// `trivial_segment`), so the path can be copied verbatim.
#[inline]
fn all_segments_trivial(path: &[u8]) -> bool {
    let (mut len, mut dots, mut colons, mut special, mut nondigit) =
        (0usize, 0usize, 0usize, 0u8, 0u8);
    for &b in path {
        let f = PATH_FLAGS[usize::from(b)];
        if f & F_SLASH != 0 {
            if !trivial_segment(len, dots, colons, special, nondigit) {
                return false;
            }
            (len, dots, colons, special, nondigit) = (0, 0, 0, 0, 0);
        } else {
            len += 1;
            dots += usize::from((f & F_DOT) >> 1);
            colons += usize::from((f & F_COLON) >> 2);
            special |= f & F_SPECIAL;
            nondigit |= f & F_NONDIGIT;
        }
    }
    trivial_segment(len, dots, colons, special, nondigit)
}

/// Finds the end of the segment starting at `start` and whether it is trivially clean (see
/// `trivial_segment`).
#[inline]
fn scan_segment(path: &[u8], start: usize) -> (usize, bool) {
    let rest = path.get(start..).unwrap_or_default();
    let (mut dots, mut colons, mut special, mut nondigit) = (0usize, 0usize, 0u8, 0u8);
    let mut len = rest.len();
    for (i, &b) in rest.iter().enumerate() {
        let f = PATH_FLAGS[usize::from(b)];
        if f & F_SLASH != 0 {
            len = i;
            break;
        }
        dots += usize::from((f & F_DOT) >> 1);
        colons += usize::from((f & F_COLON) >> 2);
        special |= f & F_SPECIAL;
        nondigit |= f & F_NONDIGIT;
    }
    (
        start + len,
        trivial_segment(len, dots, colons, special, nondigit),
    )
}

fn push_clean_segment(seg: &[u8], out: &mut String) {
    let seg = match memchr(b';', seg) {
        Some(i) => &seg[..i],
        None => seg,
    };
    if seg.is_empty() {
        return;
    }
    match classify_segment(seg) {
        Some(kind) => out.push_str(kind.path_placeholder()),
        None => push_lossy(out, seg),
    }
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Path part of an HTTP request target or page value, for storage: query string and fragment
/// removed, identifier-like segments replaced by placeholders. Input may be non-UTF-8 (lossy:
/// invalid bytes -> U+FFFD). Returns false (and leaves `out` empty) if `target` is not origin-form
/// (does not start with '/'), so the caller can treat it as proxy traffic / garbage.
/// `*` (OPTIONS *) => returns true with out = "*".
pub fn clean_path(target: &[u8], out: &mut String) -> bool {
    out.clear();
    if target == b"*" {
        out.push('*');
        return true;
    }
    if target.first() != Some(&b'/') {
        return false;
    }
    let mut end = memchr2(b'?', b'#', target).unwrap_or(target.len());
    // A URL embedded in the path (`/go/https://host/x`, also percent-encoded) names another
    // site: keep the path up to the segment where it starts, then `:url`.
    let embedded = embedded_url_segment(&target[..end]);
    if let Some(seg) = embedded {
        end = seg;
    }
    push_clean_path(&target[..end], MAX_PATH_LEN, out);
    if embedded.is_some() {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(":url");
    }
    truncate_at_char_boundary(out, MAX_PATH_LEN);
    true
}

/// Start of the path segment in which an embedded URL (`scheme://`, `scheme:/` as some
/// servers collapse it, or `%3A%2F%2F`) begins, if any.
fn embedded_url_segment(path: &[u8]) -> Option<usize> {
    memchr2(b':', b'%', path)?;
    let lower_find = |needle: &[u8]| {
        path.windows(needle.len())
            .position(|w| w.eq_ignore_ascii_case(needle))
    };
    let at = [
        lower_find(b"://"),
        lower_find(b":/"),
        lower_find(b"%3a%2f%2f"),
        lower_find(b"%3a/"),
    ]
    .into_iter()
    .flatten()
    .min()?;
    // Only a scheme-like run (letters, digits, +.-) right before the colon counts.
    let scheme_start = path[..at]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')))
        .map_or(0, |i| i + 1);
    if scheme_start == at || !path[scheme_start].is_ascii_alphabetic() {
        return None;
    }
    Some(path[..at].iter().rposition(|b| *b == b'/').unwrap_or(0))
}

/// Splits `scheme ":" rest` when `scheme` is a valid RFC 3986 scheme.
fn split_scheme(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = memchr(b':', s)?;
    let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
    let (first, tail) = scheme.split_first()?;
    let valid = first.is_ascii_alphabetic()
        && tail
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then_some((scheme, rest))
}

/// WHATWG "ends in a number": a host whose last label is decimal or `0x` hex is parsed as IPv4.
fn ends_in_number(host: &[u8]) -> bool {
    let last = host.rsplit(|&b| b == b'.').next().unwrap_or(host);
    if !last.is_empty() && last.iter().all(u8::is_ascii_digit) {
        return true;
    }
    match last {
        [b'0', b'x' | b'X', hex @ ..] => hex.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

fn is_dns_name(host: &[u8]) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return false;
    }
    host.split(|&b| b == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// Scheme and site of a referrer URL, lower-cased, without userinfo, port, path, query or
/// fragment; for http(s) the host is reduced to its site (see [`site`]):
/// "https://www.google.com/search?q=x" -> "https://google.com". Returns false
/// (out empty) for "-", relative references, garbage, or an IP-literal host (v4, v6 bracketed,
/// also decimal/hex forms like http://3232235777/ or 0x7f.1) — an IP host must never be stored.
/// Host must be a valid DNS name (letters, digits, '-', '.', ≤ 253 bytes; IDN punycode ok).
/// Accepts any RFC 3986 scheme (android-app://com.example.app is fine).
pub fn referrer_host(referrer: &[u8], out: &mut String) -> bool {
    out.clear();
    let r = referrer.trim_ascii();
    let Some((scheme, rest)) = split_scheme(r) else {
        return false;
    };
    if scheme.len() > MAX_SCHEME_LEN {
        return false;
    }
    let Some(after) = rest.strip_prefix(b"//") else {
        return false;
    };
    let auth_end = after
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#' | b'\\'))
        .unwrap_or(after.len());
    let authority = &after[..auth_end];
    let host_port = match memrchr(b'@', authority) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    if host_port.first() == Some(&b'[') {
        return false;
    }
    let (host, port) = match memchr(b':', host_port) {
        Some(c) => (&host_port[..c], &host_port[c + 1..]),
        None => (host_port, &b""[..]),
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let host = host.strip_suffix(b".").unwrap_or(host);
    if !is_dns_name(host) || ends_in_number(host) || contains_ipv4(host) {
        return false;
    }
    for &b in scheme {
        out.push(char::from(b.to_ascii_lowercase()));
    }
    out.push_str("://");
    let web = scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https");
    let host = if web { site(host) } else { host };
    for &b in host {
        out.push(char::from(b.to_ascii_lowercase()));
    }
    true
}

/// The site of a web host: its last two labels, or three when the second-to-last is a short
/// second-level label under a country code (`example.co.uk`, `example.com.au`). Subdomains
/// can name a person or a destination (`alice.github.io`, `dest-1.example.net`); the site
/// is what referrer analytics need. Without the public suffix list this is an approximation
/// that errs towards keeping less.
fn site(host: &[u8]) -> &[u8] {
    let dots: Vec<usize> = host
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'.')
        .map(|(i, _)| i)
        .collect();
    if dots.len() < 2 {
        return host;
    }
    let last = &host[dots[dots.len() - 1] + 1..];
    let second = &host[dots[dots.len() - 2] + 1..dots[dots.len() - 1]];
    let keep = if last.len() == 2 && second.len() <= 3 && dots.len() >= 2 {
        3
    } else {
        2
    };
    if dots.len() < keep {
        return host;
    }
    &host[dots[dots.len() - keep] + 1..]
}

/// True if a request target is absolute-form (`scheme://…`, e.g. `http://example.com/x`) or
/// authority-form (`host:port`, as in CONNECT) — i.e. a forward-proxy request, not an
/// origin-server one.
pub fn is_proxy_target(target: &[u8]) -> bool {
    if target.is_empty() || target.first() == Some(&b'/') || target == b"*" {
        return false;
    }
    if let Some((_, rest)) = split_scheme(target)
        && rest.starts_with(b"//")
    {
        return true;
    }
    // authority-form: host ":" port
    let Some(colon) = memrchr(b':', target) else {
        return false;
    };
    let (host, port) = (&target[..colon], &target[colon + 1..]);
    if port.is_empty() || port.len() > 5 || !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match host {
        [b'[', inner @ .., b']'] => {
            memchr(b':', inner).is_some()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%'))
        }
        _ => {
            !host.is_empty()
                && host.iter().all(|&b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'-' | b'.'
                                | b'_'
                                | b'~'
                                | b'%'
                                | b'!'
                                | b'$'
                                | b'&'
                                | b'\''
                                | b'('
                                | b')'
                                | b'*'
                                | b'+'
                                | b','
                                | b';'
                                | b'='
                        )
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn cp(target: &[u8]) -> Option<String> {
        let mut out = String::from("stale");
        if clean_path(target, &mut out) {
            Some(out)
        } else {
            assert!(out.is_empty(), "out must be empty on false");
            None
        }
    }

    fn cps(target: &str) -> String {
        cp(target.as_bytes()).unwrap_or_else(|| panic!("clean_path rejected {target:?}"))
    }

    fn rh(referrer: &str) -> Option<String> {
        let mut out = String::from("stale");
        if referrer_host(referrer.as_bytes(), &mut out) {
            Some(out)
        } else {
            assert!(out.is_empty(), "out must be empty on false");
            None
        }
    }

    #[test]
    fn clean_path_keeps_plain_paths() {
        for p in [
            "/",
            "/api/v1/users",
            "/index.html",
            "/static/app.min.js",
            "/static/jquery-1.12.4.min.js",
            "/a/b/",
            "//a//b//",
            "/search/caf%C3%A9",
            "/caf\u{e9}/men\u{fc}",
            "/logs/13:55:36",
            "/ns/Foo::bar",
            "/ver/1.2.3",
            "/ver/10.0.19041.1",
            "/t/0123456789abcde",
            "/t/abcdefghijklmnopqrstuvwxyz",
            "/t/abcDEF123_-ghiJKL45",
        ] {
            assert_eq!(cps(p), p, "{p}");
        }
    }

    #[test]
    fn clean_path_drops_query_and_fragment() {
        assert_eq!(cps("/x?token=SECRET"), "/x");
        assert_eq!(cps("/x#frag"), "/x");
        assert_eq!(cps("/x?a=1#b"), "/x");
        assert_eq!(cps("/x#a?b"), "/x");
        assert_eq!(cps("/?q=alice@example.com"), "/");
        assert_eq!(cps("/a/b/?x"), "/a/b/");
    }

    #[test]
    fn clean_path_numeric_ids() {
        assert_eq!(cps("/users/12345/profile"), "/users/:id/profile");
        assert_eq!(cps("/blog/2023/10/hello"), "/blog/:id/:id/hello");
        assert_eq!(cps("/0"), "/:id");
        assert_eq!(cps("/orders/12345678901234567890"), "/orders/:id");
        assert_eq!(cps("/users/123/"), "/users/:id/");
    }

    #[test]
    fn clean_path_emails() {
        assert_eq!(cps("/u/alice@example.com"), "/u/:email");
        assert_eq!(cps("/u/alice%40example.com"), "/u/:email");
        assert_eq!(cps("/u/alice%2540example.com/x"), "/u/:email/x");
        assert_eq!(cps("/u/@handle"), "/u/:email");
    }

    #[test]
    fn clean_path_ips() {
        for seg in [
            "203.0.113.9",
            "203.0.113.9:8080",
            "host-203.0.113.9",
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:8080",
            "::1",
            "::ffff:192.0.2.1",
            "fe80::1%25eth0",
            "fe80::1%eth0",
            "%5B2001%3Adb8%3A%3A1%5D%3A443",
            "1%2E2%2E3%2E4",
            "1:2:3:4:5:6:7:8",
        ] {
            assert_eq!(cps(&format!("/ip/{seg}/x")), "/ip/:ip/x", "{seg}");
        }
    }

    #[test]
    fn clean_path_uuids_and_tokens() {
        assert_eq!(cps("/d/550e8400-e29b-41d4-a716-446655440000"), "/d/:uuid");
        assert_eq!(
            cps("/d/550E8400-E29B-41D4-A716-446655440000/x"),
            "/d/:uuid/x"
        );
        assert_eq!(
            cps("/d/dev-550e8400-e29b-41d4-a716-446655440000.json"),
            "/d/:uuid"
        );
        assert_eq!(cps("/t/0123456789abcdef"), "/t/:token");
        assert_eq!(cps("/t/DEADBEEFDEADBEEF"), "/t/:token");
        assert_eq!(cps("/t/deadbeefcafebabe"), "/t/:token");
        assert_eq!(cps("/t/abcDEF123_-ghiJKL456"), "/t/:token");
        assert_eq!(cps("/avatar/0123456789abcdef0123.png"), "/avatar/:token");
        assert_eq!(
            cps("/t/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4fw"),
            "/t/:token"
        );
        assert_eq!(
            cps("/t/aaaaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc"),
            "/t/:token"
        );
        assert_eq!(
            cps("/t/aaaaaaaaaaaa.bbbbbbbbbbbb"),
            "/t/aaaaaaaaaaaa.bbbbbbbbbbbb"
        );
        // Percent-decoding reveals the token.
        assert_eq!(cps("/t/abc%2Ddef%2D0123456789ABCDEFGH"), "/t/:token");
    }

    #[test]
    fn clean_path_matrix_params() {
        assert_eq!(cps("/a;jsessionid=XYZ/b"), "/a/b");
        assert_eq!(cps("/a/b;v=1"), "/a/b");
        assert_eq!(cps("/;x=1/"), "//");
        assert_eq!(cps("/12;x=abc/"), "/:id/");
    }

    #[test]
    fn clean_path_rejects_non_origin_form() {
        assert_eq!(cp(b"*"), Some("*".to_string()));
        assert_eq!(cp(b""), None);
        assert_eq!(cp(b"-"), None);
        assert_eq!(cp(b"http://example.com/x"), None);
        assert_eq!(cp(b"example.com:443"), None);
        assert_eq!(cp(b"*?x"), None);
        assert_eq!(cp(b" /x"), None);
    }

    #[test]
    fn clean_path_non_utf8_is_lossy() {
        assert_eq!(
            cp(b"/a/\xff\xfe/b").as_deref(),
            Some("/a/\u{FFFD}\u{FFFD}/b")
        );
        assert_eq!(cp(b"/caf\xc3").as_deref(), Some("/caf\u{FFFD}"));
        assert_eq!(cp(b"/x/\xe2\x82\xac").as_deref(), Some("/x/\u{20ac}"));
    }

    #[test]
    fn clean_path_caps_length_at_char_boundary() {
        let long = format!("/{}", "g".repeat(5000));
        assert_eq!(cps(&long).len(), 1024);
        let multi = format!("/{}", "\u{e9}".repeat(3000));
        let out = cps(&multi);
        assert!(out.len() <= 1024 && out.len() >= 1021);
        let many = "/ab".repeat(2000);
        assert!(cps(&many).len() <= 1024);
    }

    #[test]
    fn random_looking_runs_are_tokens() {
        for t in ["k7m2p9q4r8s3", "t9ym4Tr7TN9Pm7", "a1b2c3d4e5f6"] {
            assert_eq!(
                scan_id_runs(t.as_bytes(), C_URLSAFE),
                Some(Sensitive::Token),
                "{t}"
            );
        }
        for w in [
            "x86_64-linux-gnu",
            "sha256sum",
            "ubuntu2204lts",
            "utf8mb4_unicode",
            "ipv6address",
        ] {
            assert_eq!(scan_id_runs(w.as_bytes(), C_URLSAFE), None, "{w}");
        }
    }

    #[test]
    fn referrer_host_examples() {
        let ok = |r: &str, want: &str| assert_eq!(rh(r).as_deref(), Some(want), "{r}");
        ok("https://www.google.com/search?q=x", "https://google.com");
        ok("HTTPS://WWW.Example.COM:443/x", "https://example.com");
        // Subdomains are reduced to the site: they can name a person or a destination.
        ok("https://alice.github.io/", "https://github.io");
        ok("https://dest-7.cdn.example.net/p", "https://example.net");
        ok("https://news.bbc.co.uk/x", "https://bbc.co.uk");
        ok("https://shop.example.com.au/", "https://example.com.au");
        ok("https://example.co.uk/", "https://example.co.uk");
        ok("https://user:pass@example.com/", "https://example.com");
        ok("https://a@b@example.com/x", "https://example.com");
        ok(
            "android-app://com.example.app",
            "android-app://com.example.app",
        );
        ok(
            "android-app://com.example.app/https/x",
            "android-app://com.example.app",
        );
        ok(
            "https://xn--bcher-kva.example/",
            "https://xn--bcher-kva.example",
        );
        ok("https://example.com.", "https://example.com");
        ok("https://example.com?x=1", "https://example.com");
        ok("https://example.com#f", "https://example.com");
        ok("http://localhost:8080/", "http://localhost");
        ok("  https://example.org/  ", "https://example.org");
        ok("git+ssh://git.example.org/x", "git+ssh://git.example.org");
        ok("https://example.com\\@evil.example/", "https://example.com");
        ok(
            "https://example.com:8443@evil.example/",
            "https://evil.example",
        );
    }

    #[test]
    fn referrer_host_rejects() {
        for r in [
            "-",
            "",
            "/relative/path",
            "relative",
            "//example.com/x",
            "example.com",
            "mailto:a@example.com",
            "ht tp://example.com",
            "1http://example.com",
            "https://",
            "https:///x",
            "https://example.com:abc/",
            "https://ex_ample.com/",
            "https://-bad.example/",
            "https://b\u{fc}cher.de/",
            "https://ex%61mple.com/",
            "https://exa..mple.com/",
            "http://192.168.1.1/",
            "http://192.168.1.1:8080/x",
            "http://user@10.0.0.1/",
            "http://[2001:db8::1]/",
            "http://[::1]:80/",
            "http://3232235777/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://1.2.3.4.nip.io/",
            "http://example.0x1f/",
            "http://example.123/",
        ] {
            assert_eq!(rh(r), None, "{r}");
        }
        let long = format!("https://{}.com/", "a.".repeat(130));
        assert_eq!(rh(&long), None);
        let long_label = format!("https://{}.com/", "a".repeat(64));
        assert_eq!(rh(&long_label), None);
        let mut out = String::new();
        assert!(!referrer_host(b"https://ex\xffample.com/", &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn proxy_targets() {
        for t in [
            "http://example.com/x",
            "HTTPS://example.com",
            "http://1.2.3.4/",
            "example.com:443",
            "localhost:8080",
            "1.2.3.4:80",
            "[2001:db8::1]:443",
            "[fe80::1%25eth0]:443",
        ] {
            assert!(is_proxy_target(t.as_bytes()), "{t}");
        }
        for t in [
            "/x",
            "/http://example.com",
            "/x:80",
            "*",
            "",
            "example.com",
            "example.com:",
            "example.com:123456",
            "example.com:https",
            "mailto:x@example.com",
            "[2001:db8::1]",
            "ex/ample.com:80",
            "ex ample.com:80",
        ] {
            assert!(!is_proxy_target(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn detector_edge_cases() {
        assert!(contains_ipv4(b"1.2.3.4"));
        assert!(contains_ipv4(b"x-1.2.3.4:80"));
        assert!(contains_ipv4(b"999.2.3.4"));
        assert!(contains_ipv4(b"1.2.3.4567"));
        assert!(!contains_ipv4(b"1.2.3"));
        assert!(!contains_ipv4(b"1.256.3.4"));
        assert!(!contains_ipv4(b"10.0.19041.1"));
        assert!(!contains_ipv4(b"1..2.3.4"));
        assert!(contains_ipv6(b"2001:db8::1"));
        assert!(contains_ipv6(b"client:2001:db8::1"));
        assert!(contains_ipv6(b"[::1]:80"));
        assert!(contains_ipv6(b"2001:db8::/32"));
        assert!(contains_ipv6(b"2001:db8::1."));
        assert!(contains_ipv6(b"abcde1:2:3:4:5:6:7:8fffff"));
        assert!(!contains_ipv6(b"13:55:36"));
        assert!(!contains_ipv6(b"10/Oct/2000:13:55:36"));
        assert!(!contains_ipv6(b"2023-10-10T13:55:36.123+02:00"));
        assert!(!contains_ipv6(b"Foo::bar"));
        assert!(!contains_ipv6(b"std::io::Error"));
        assert!(!contains_ipv6(b"Self::default"));
        assert!(!contains_ipv6(b"00:1a:2b:3c:4d:5e"));
        assert!(is_uuid(b"550e8400-e29b-41d4-a716-446655440000"));
        assert!(!is_uuid(b"550e8400-e29b-41d4-a716-44665544000g"));
        assert_eq!(with_pct_decoded(b"a%40b%zz%4", |d| d.to_vec()), b"a@b%zz%4");
    }

    proptest! {
        #[test]
        fn clean_path_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut out = String::new();
            let ok = clean_path(&bytes, &mut out);
            prop_assert_eq!(ok, bytes.first() == Some(&b'/') || bytes == b"*");
            prop_assert!(!out.contains('?') && !out.contains('#'));
            prop_assert!(out.len() <= MAX_PATH_LEN);
        }

        #[test]
        fn clean_path_pathish_never_leaks_query(target in "/[a-zA-Z0-9/?#%;@:.\\[\\]_-]{0,120}") {
            let mut out = String::new();
            prop_assert!(clean_path(target.as_bytes(), &mut out));
            prop_assert!(!out.contains('?') && !out.contains('#'));
            prop_assert!(out.len() <= MAX_PATH_LEN);
            prop_assert!(out.starts_with('/'));
        }

        #[test]
        fn clean_path_hides_canary_segments(
            pre in "[a-zA-Z0-9._~-]{0,12}",
            post in "[a-zA-Z0-9._~-]{0,12}",
            c in canary(),
            encode_at in any::<bool>(),
        ) {
            let seg = if encode_at { c.replace('@', "%40") } else { c.clone() };
            let target = format!("/{pre}/{seg}/{post}?q={c}");
            let mut out = String::new();
            prop_assert!(clean_path(target.as_bytes(), &mut out));
            prop_assert!(!out.contains(&c), "{} -> {}", target, out);
            prop_assert!(!out.contains(&seg), "{} -> {}", target, out);
        }

        #[test]
        fn referrer_host_never_stores_ip(ip in ipv4_canary(), v6 in ipv6_canary(), port in 0u16..) {
            let mut out = String::new();
            let n = u32::from(ip.parse::<Ipv4Addr>().unwrap_or(Ipv4Addr::LOCALHOST));
            let refs = [
                format!("http://{ip}:{port}/x"),
                format!("https://[{v6}]/x"),
                format!("http://{n}/"),
                format!("http://0x{n:x}/"),
                format!("http://user@{ip}/"),
            ];
            for r in &refs {
                prop_assert!(!referrer_host(r.as_bytes(), &mut out), "{}", r);
                prop_assert!(out.is_empty());
            }
        }

        #[test]
        fn url_fns_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = String::new();
            if referrer_host(&bytes, &mut out) {
                prop_assert!(out.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(!out.bytes().any(|b| b.is_ascii_uppercase()));
            } else {
                prop_assert!(out.is_empty());
            }
            let _ = is_proxy_target(&bytes);
            let _ = contains_ipv6(&bytes);
        }

        #[test]
        fn detectors_never_panic(s in "[0-9a-fA-F:.%/\\[\\]gxz-]{0,200}") {
            let _ = contains_ipv6(s.as_bytes());
            let _ = contains_ipv4(s.as_bytes());
            let _ = classify_segment(s.as_bytes());
            let mut out = String::new();
            let _ = referrer_host(s.as_bytes(), &mut out);
            let _ = is_proxy_target(s.as_bytes());
        }
    }

    #[test]
    fn embedded_urls_are_cut() {
        let mut out = String::new();
        for (input, want) in [
            (
                &b"/proxy/http://canary-dest-1.example.net/x"[..],
                "/proxy/:url",
            ),
            (b"/go/https:/dest.example/x", "/go/:url"),
            (b"/r/http%3A%2F%2Fdest.example%2Fx", "/r/:url"),
            (b"/dashboard/a:b/c", "/dashboard/a:b/c"),
            (b"/static/app.3f9a1c.js", "/static/app.3f9a1c.js"),
        ] {
            assert!(clean_path(input, &mut out));
            assert_eq!(out, want, "{}", String::from_utf8_lossy(input));
        }
    }
}

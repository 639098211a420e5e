//! End-to-end runs of the `logveil` binary on real-world logs from the shared corpus.
//!
//! The corpus (see `../shared/corpus/README.md`) holds logs nobody on this project wrote, with
//! real client and attacker IP addresses. It is read in place, never copied into the
//! repository: from `$LOGVEIL_CORPUS`, else `<workspace>/../shared/corpus`. When it is not
//! there, each test prints one `skipping: …` line and passes.
//!
//! Every address in an input is found by a hand-written scanner and must not appear in any
//! byte logveil leaves behind: decoded Parquet values and footers, raw Parquet bytes,
//! manifests and any other file, stdout and stderr.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::*;

/// The corpus file `rel`, or `None` (after printing why) when the corpus is not available.
fn corpus_file(rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LOGVEIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/corpus"));
    let file = dir.join(rel);
    if !dir.is_dir() {
        println!("skipping: corpus not found at {}", dir.display());
        return None;
    }
    if !file.is_file() {
        println!("skipping: corpus not found at {}", file.display());
        return None;
    }
    Some(file)
}

/// `logveil ingest --format <format> --dev-key --summary-json --out <out> <input>`.
fn ingest(format: &str, input: &Path, out: &Path) -> (Output, serde_json::Value) {
    let o = ok(bin()
        .args([
            "ingest",
            "--format",
            format,
            "--dev-key",
            "--summary-json",
            "--no-progress",
            // Real logs from years ago: keep them a century so that none counts as expired.
            "--retention-days",
            "36500",
            "--out",
        ])
        .arg(out)
        .arg(input));
    let s = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("summary JSON: {e}: {}", text(&o.stdout)));
    (o, s)
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// lines_read == Σ records_written + Σ dropped + quarantined, and the per-reason quarantine
/// counts add up.
fn assert_every_line_accounted(s: &serde_json::Value) {
    let sum = |k: &str| -> u64 {
        s[k].as_object()
            .unwrap_or_else(|| panic!("{k} is not an object: {s}"))
            .values()
            .map(u)
            .sum()
    };
    assert_eq!(
        u(&s["lines_read"]),
        sum("records_written") + sum("dropped") + u(&s["quarantined"]),
        "{s}"
    );
    assert_eq!(sum("quarantined_by_reason"), u(&s["quarantined"]), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Address scanner (hand-written, no regex)
// ---------------------------------------------------------------------------------------------

/// Every IPv4 address written in dotted-quad form: in each maximal run of digits and dots,
/// every four consecutive dot-separated groups of 1-3 digits with values ≤ 255 (so
/// `10.1.2.3.4` gives `10.1.2.3` and `1.2.3.4`, `1700.1.2.3` gives nothing).
fn ipv4_addresses(s: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < s.len() {
        if !s[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
            i += 1;
        }
        let run = &s[start..i];
        let groups: Vec<&[u8]> = run.split(|&b| b == b'.').collect();
        let octet = |g: &[u8]| {
            !g.is_empty()
                && g.len() <= 3
                && std::str::from_utf8(g)
                    .ok()
                    .and_then(|t| t.parse::<u16>().ok())
                    .is_some_and(|v| v <= 255)
        };
        for w in groups.windows(4) {
            if w.iter().all(|g| octet(g)) {
                let parts: Vec<&str> = w.iter().map(|g| std::str::from_utf8(g).unwrap()).collect();
                out.insert(parts.join("."));
            }
        }
    }
    out
}

/// Every IPv6 address: each maximal run of hex digits, `:` and `.` with at least two colons
/// that parses as IPv6 (after trimming trailing `.` and `:`, as in `from 2001:db8::1:` or a
/// sentence-ending dot), as written and in canonical form.
fn ipv6_addresses(s: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let v6 = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    let mut i = 0;
    while i < s.len() {
        if !v6(s[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && v6(s[i]) {
            i += 1;
        }
        let mut run = &s[start..i];
        if run.iter().filter(|&&b| b == b':').count() < 2 {
            continue;
        }
        loop {
            if let Ok(a) = std::str::from_utf8(run).unwrap().parse::<Ipv6Addr>() {
                out.insert(std::str::from_utf8(run).unwrap().to_string());
                out.insert(a.to_string());
                if let Some(v4) = a.to_ipv4_mapped() {
                    out.insert(v4.to_string());
                }
                break;
            }
            match run {
                [rest @ .., b'.' | b':'] => run = rest,
                _ => break,
            }
        }
    }
    out
}

fn ip_addresses(s: &[u8]) -> BTreeSet<String> {
    let mut all = ipv4_addresses(s);
    all.extend(ipv6_addresses(s));
    all
}

/// Field `n` (0-based) of each space-separated access-log line, when it is not `-`.
fn access_field(input: &[u8], n: usize) -> BTreeSet<String> {
    input
        .split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b' ').nth(n))
        .filter(|f| !f.is_empty() && *f != b"-")
        .map(text)
        .collect()
}

/// True if `needle` occurs in `hay` not glued to further digits (so `1.2.3.4` is not found in
/// `1.2.3.45` and `11.2.3.4`) — for IPv6 needles, not glued to further hex digits or colons.
fn contains_addr(hay: &str, needle: &str) -> bool {
    let h = hay.as_bytes();
    let v6 = needle.contains(':');
    let glue = |b: u8| {
        if v6 {
            b.is_ascii_hexdigit() || b == b':'
        } else {
            b.is_ascii_digit()
        }
    };
    let (hay_cmp, needle_cmp) = if v6 {
        (hay.to_ascii_lowercase(), needle.to_ascii_lowercase())
    } else {
        (hay.to_string(), needle.to_string())
    };
    hay_cmp.match_indices(&needle_cmp).any(|(at, m)| {
        let before = at.checked_sub(1).map(|i| h[i]);
        let after = h.get(at + m.len()).copied();
        !before.is_some_and(glue) && !after.is_some_and(glue)
    })
}

/// Asserts that none of `needles` occurs in any output file, stdout or stderr. Stored networks
/// (`203.0.113.0/24`) are masked first: their address part may coincide with an input address
/// whose host part is zero, which is not a leak.
fn assert_nothing_leaked(
    out_root: &Path,
    runs: &[&Output],
    needles: &BTreeSet<String>,
    networks: &BTreeSet<String>,
) -> Vec<String> {
    let mut leaks = Vec::new();
    let mut check = |what: &str, t: &str| {
        let mut t = t.to_string();
        for n in networks {
            t = t.replace(n.as_str(), "<network>");
        }
        for n in needles {
            if contains_addr(&t, n) {
                leaks.push(format!("{n} in {what}"));
            }
        }
    };
    for (p, t) in all_output_text(out_root) {
        check(&p.display().to_string(), &t);
    }
    for o in runs {
        check("stdout", &text(&o.stdout));
        check("stderr", &text(&o.stderr));
    }
    leaks
}

#[test]
fn scanner_finds_addresses_in_their_usual_places() {
    let line = b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /a HTTP/1.1\" 200 1 \
        \"http://10.0.0.7:8080/x\" \"Mozilla (rv:1.8.1.4) Chrome/32.0.1700.77\" \
        from 2001:db8::1: port 22 rhost=::ffff:192.0.2.9 [fe80::a:b] at 13:55:36.";
    let ips = ip_addresses(line);
    for want in [
        "83.149.9.216",
        "10.0.0.7",
        "1.8.1.4",
        "2001:db8::1",
        "::ffff:192.0.2.9",
        "192.0.2.9",
        "fe80::a:b",
    ] {
        assert!(ips.contains(want), "{want} not in {ips:?}");
    }
    assert!(
        !ips.iter()
            .any(|a| a.contains("1700") || a.contains("13:55"))
    );
    assert!(contains_addr("x 83.149.9.216,", "83.149.9.216"));
    assert!(!contains_addr("83.149.9.2160", "83.149.9.216"));
    assert!(!contains_addr("183.149.9.216", "83.149.9.216"));
    assert!(contains_addr("[2001:DB8::1]", "2001:db8::1"));
    assert!(!contains_addr("2001:db8::10", "2001:db8::1"));
}

// ---------------------------------------------------------------------------------------------
// access/apache_combined_2k.log
// ---------------------------------------------------------------------------------------------

#[test]
fn apache_combined_2k_every_line_accounted_and_no_address_or_user_leaks() {
    let Some(input) = corpus_file("access/apache_combined_2k.log") else {
        return;
    };
    let raw = std::fs::read(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let (o, s) = ingest("combined", &input, &out_root);

    // 2,000 lines, all kept: every request is an origin-form GET (1,993) or HEAD (7) with an
    // HTTP/1.0 or HTTP/1.1 protocol (so nothing is proxy traffic to drop), every client is a
    // plain IPv4 address and every timestamp is valid (so nothing is quarantined).
    assert_eq!(u(&s["lines_read"]), 2000, "{s}");
    assert_every_line_accounted(&s);
    assert_eq!(s["records_written"]["access"], 2000, "{s}");
    assert_eq!(
        s["dropped"]
            .as_object()
            .map(|d| d.values().map(u).sum::<u64>()),
        Some(0),
        "{s}"
    );
    assert_eq!(s["quarantined"], 0, "{s}");
    assert_eq!(parquet_rows(&out_root, "access"), 2000);
    assert_eq!(parquet_rows(&out_root, "_quarantine"), 0);
    assert_eq!(s["key_id"], "dev-insecure");

    // Every address in the input (clients, referrers, paths; dotted quads in user agents'
    // version numbers too, as the raw user agent is never stored), and every ident and user.
    let mut needles = ip_addresses(&raw);
    let clients = access_field(&raw, 0);
    assert_eq!(clients.len(), 409, "distinct clients");
    assert!(
        clients.iter().all(|c| needles.contains(c)),
        "scanner missed a client"
    );
    let users: BTreeSet<String> = access_field(&raw, 1)
        .into_iter()
        .chain(access_field(&raw, 2))
        .collect();
    // This corpus logs no authenticated users (every ident and user is "-"); the check still
    // runs, so a future corpus file with users is covered.
    assert!(users.is_empty(), "{users:?}");
    needles.extend(users);
    assert!(needles.len() >= 409, "{}", needles.len());

    let networks: BTreeSet<String> = column_values(&out_root, "access", "ip_network")
        .into_iter()
        .collect();
    assert!(networks.iter().all(|n| n.ends_with("/24")), "{networks:?}");
    let leaks = assert_nothing_leaked(&out_root, &[&o], &needles, &networks);
    assert!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());

    // Pseudonyms replace the clients one to one.
    let pseudonyms: BTreeSet<String> = column_values(&out_root, "access", "ip_pseudonym")
        .into_iter()
        .collect();
    assert_eq!(pseudonyms.len(), clients.len());

    // Referrers keep scheme and host only: nothing after the host, no query.
    let hosts = column_values(&out_root, "access", "referrer_host");
    assert!(hosts.len() > 100, "only {} referrer hosts", hosts.len());
    for h in &hosts {
        let (scheme, host) = h.split_once("://").unwrap_or_else(|| panic!("{h}"));
        assert!(!scheme.is_empty(), "{h}");
        assert!(
            !host.is_empty() && !host.contains('/') && !host.contains('?'),
            "{h}"
        );
        assert!(
            !host.contains('@') && !host.contains(':') && !host.contains('#'),
            "{h}"
        );
    }
    // Paths carry no query either.
    let paths = column_values(&out_root, "access", "path");
    assert_eq!(paths.len(), 2000);
    assert!(paths.iter().all(|p| p.starts_with('/') && !p.contains('?')));
}

// ---------------------------------------------------------------------------------------------
// netdata/netdata_weblog_common.log
// ---------------------------------------------------------------------------------------------

#[test]
fn netdata_common_log_garbage_quarantined_and_no_client_leaks() {
    let Some(input) = corpus_file("netdata/netdata_weblog_common.log") else {
        return;
    };
    let raw = std::fs::read(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let (o, s) = ingest("common", &input, &out_root);

    // 500 lines (the last has no newline): 183 from 203.0.113.1/.2 are kept; 44 lines of prose
    // ("Unmatched! The rat …") are malformed; 100 lines from `localhost` and 173 from
    // `2001:db8:2ce:1` / `2001:db8:2ce:2` have a client that is not an IP address (the latter
    // have four groups and no `::`, so they are not valid IPv6) and are quarantined as
    // bad_client_address. No request is proxy traffic.
    assert_eq!(u(&s["lines_read"]), 500, "{s}");
    assert_every_line_accounted(&s);
    assert_eq!(s["records_written"]["access"], 183, "{s}");
    assert_eq!(s["quarantined"], 317, "{s}");
    assert_eq!(s["quarantined_by_reason"]["malformed"], 44, "{s}");
    assert_eq!(s["quarantined_by_reason"]["bad_client_address"], 273, "{s}");
    assert_eq!(parquet_rows(&out_root, "access"), 183);
    assert_eq!(parquet_rows(&out_root, "_quarantine"), 317);

    let networks: BTreeSet<String> = column_values(&out_root, "access", "ip_network")
        .into_iter()
        .collect();
    assert_eq!(
        networks,
        BTreeSet::from(["203.0.113.0/24".to_string()]),
        "IPv4 clients keep their /24; no IPv6 client in this file is a valid address"
    );

    // Every address the scanner finds (the two IPv4 clients; the IPv6-looking clients are not
    // addresses, see `netdata_quarantine_line_keeps_no_ipv6_shaped_client`).
    let needles = ip_addresses(&raw);
    assert_eq!(
        needles,
        BTreeSet::from(["203.0.113.1", "203.0.113.2"].map(str::to_string))
    );
    let leaks = assert_nothing_leaked(&out_root, &[&o], &needles, &networks);
    assert!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());

    let lines = column_values(&out_root, "_quarantine", "line");
    assert_eq!(lines.len(), 317);
    for l in &lines {
        assert!(
            ip_addresses(l.as_bytes()).is_empty(),
            "raw IP in quarantine line {l}"
        );
    }
    let reasons: BTreeSet<String> = column_values(&out_root, "_quarantine", "reason")
        .into_iter()
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["bad_client_address".to_string(), "malformed".to_string()])
    );
}

/// The IPv6-looking clients of the same file (`2001:db8:2ce:1`: four groups, no `::`) are not
/// valid addresses, so their lines are quarantined as bad_client_address; the scrubbed `line`
/// must still not carry the client as written.
#[test]
fn netdata_quarantine_line_keeps_no_ipv6_shaped_client() {
    let Some(input) = corpus_file("netdata/netdata_weblog_common.log") else {
        return;
    };
    let raw = std::fs::read(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let (o, _) = ingest("common", &input, &out_root);
    let clients: BTreeSet<String> = access_field(&raw, 0)
        .into_iter()
        .filter(|c| c.contains(':'))
        .collect();
    assert_eq!(
        clients,
        BTreeSet::from(["2001:db8:2ce:1", "2001:db8:2ce:2"].map(str::to_string))
    );
    let leaks = assert_nothing_leaked(&out_root, &[&o], &clients, &BTreeSet::new());
    assert!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());
    for l in column_values(&out_root, "_quarantine", "line") {
        assert!(
            !l.contains("2001:db8"),
            "client kept in quarantine line {l}"
        );
    }
}

/// Same file, with the IPv6-looking clients rewritten as the valid IPv6 addresses they stand
/// for (`2001:db8:2ce:1` → `2001:db8:2ce:1::1`): they are kept with `/48` networks, and no
/// address reaches any output.
#[test]
fn netdata_common_log_with_valid_ipv6_clients_keeps_them_as_48_networks() {
    let Some(input) = corpus_file("netdata/netdata_weblog_common.log") else {
        return;
    };
    let raw = text(&std::fs::read(&input).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("common_v6.log");
    let rewritten: String = raw
        .split_inclusive('\n')
        .map(|l| {
            for g in ["1", "2"] {
                if let Some(rest) = l.strip_prefix(&format!("2001:db8:2ce:{g} ")) {
                    return format!("2001:db8:2ce:{g}::1 {rest}");
                }
            }
            l.to_string()
        })
        .collect();
    std::fs::write(&fixed, &rewritten).unwrap();
    let out_root = dir.path().join("out");
    let (o, s) = ingest("common", &fixed, &out_root);
    assert_every_line_accounted(&s);
    assert_eq!(s["records_written"]["access"], 183 + 173, "{s}");
    assert_eq!(s["quarantined_by_reason"]["bad_client_address"], 100, "{s}");
    assert_eq!(s["quarantined_by_reason"]["malformed"], 44, "{s}");
    let networks: BTreeSet<String> = column_values(&out_root, "access", "ip_network")
        .into_iter()
        .collect();
    assert_eq!(
        networks,
        BTreeSet::from(["2001:db8:2ce::/48", "203.0.113.0/24"].map(str::to_string))
    );
    let needles = ip_addresses(rewritten.as_bytes());
    assert!(needles.contains("2001:db8:2ce:1::1") && needles.contains("2001:db8:2ce:2::1"));
    let leaks = assert_nothing_leaked(&out_root, &[&o], &needles, &networks);
    assert!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());
}

// ---------------------------------------------------------------------------------------------
// syslog/loghub/OpenSSH_2k.log, fed as the wrong format
// ---------------------------------------------------------------------------------------------

#[test]
fn openssh_syslog_as_combined_is_all_quarantined_without_attacker_ips() {
    let Some(input) = corpus_file("syslog/loghub/OpenSSH_2k.log") else {
        return;
    };
    let raw = std::fs::read(&input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_root = dir.path().join("out");
    let (o, s) = ingest("combined", &input, &out_root);

    // 2,000 sshd lines (the last has no newline), none of them an access-log line: all are
    // quarantined as malformed (the first field is "Dec", the second "10", then no '[').
    assert_eq!(u(&s["lines_read"]), 2000, "{s}");
    assert_every_line_accounted(&s);
    assert_eq!(s["records_written"]["access"], 0, "{s}");
    assert_eq!(s["quarantined"], 2000, "{s}");
    assert_eq!(s["quarantined_by_reason"]["malformed"], 2000, "{s}");
    assert_eq!(parquet_rows(&out_root, "access"), 0);
    assert_eq!(parquet_rows(&out_root, "_quarantine"), 2000);

    let needles = ip_addresses(&raw);
    assert!(needles.len() >= 30, "{needles:?}");
    let leaks = assert_nothing_leaked(&out_root, &[&o], &needles, &BTreeSet::new());
    let leaked: BTreeSet<&str> = leaks.iter().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        leaks.is_empty(),
        "{} leaks of {} addresses ({leaked:?}): {leaks:#?}",
        leaks.len(),
        leaked.len()
    );

    // The scrubbed lines still say what they were (structure kept), with placeholders.
    let lines = column_values(&out_root, "_quarantine", "line");
    assert_eq!(lines.len(), 2000);
    assert!(lines.iter().all(|l| l.len() <= 512 + '…'.len_utf8()));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("sshd") && l.contains("<ip>"))
    );
}

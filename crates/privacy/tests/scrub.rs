//! Free-text scrubbing (`logveil_privacy::scrub`) against the rest of the engine and real text:
//!
//! - the pseudonyms written into text (`<ip:…>`, `<id:…>`) equal the `ip_pseudonym` and
//!   `device_pseudonym` columns the engine computes for the same address and device id, so
//!   scrubbed text stays joinable;
//! - on loghub OpenSSH and Linux syslog lines (`$LOGVEIL_CORPUS` or `../shared/corpus`; skipped
//!   with one printed line when absent), no IPv4 address survives, and every address of a line
//!   is replaced by its pseudonym; every user name in OpenSSH's and PAM's positions (`Invalid
//!   user NAME`, `for NAME from`, `for user NAME`, `user=NAME`) becomes `<user>`, and the
//!   phrases around `user` that hold no name stay.

use std::net::IpAddr;
use std::path::PathBuf;

use logveil_parse::session::parse_session;
use logveil_privacy::pseudonym::Pseudonymiser;
use logveil_privacy::scrub::{scrub_text, scrub_text_with};
use logveil_privacy::{Engine, EngineConfig, Key, KeyRing, Outcome};
use serde_json::json;

fn scrub_with(text: &str, p: &Pseudonymiser) -> String {
    let mut out = String::new();
    scrub_text_with(text.as_bytes(), 4096, Some(p), &mut out);
    out
}

/// (`ip_pseudonym`, `device_pseudonym`) of a session event from `ip` on device `device`.
fn session_columns(ip: &str, device: &str) -> (String, String) {
    let ev = json!({
        "ts": "2026-11-28T10:15:30.123Z",
        "event": "page_view",
        "app": "web",
        "device_id": device,
        "ip": ip,
        "page": "/pricing",
        "consent": {"necessary": true, "preferences": true, "statistics": true, "marketing": false}
    })
    .to_string();
    let parsed = parse_session(ev.as_bytes()).expect("test event parses");
    let mut e = Engine::new(&KeyRing::development(), EngineConfig::default());
    match e.session(&parsed) {
        Outcome::Keep(row) => (
            row.ip_pseudonym.expect("ip pseudonym").to_string(),
            row.device_pseudonym.expect("device pseudonym").to_string(),
        ),
        _ => panic!("test event not kept"),
    }
}

#[test]
fn text_pseudonyms_join_the_engine_columns() {
    let p = Pseudonymiser::new(&Key::development());
    for (ip, in_text) in [
        ("203.0.113.9", "from 203.0.113.9 port 22"),
        ("203.0.113.9", "from ::ffff:203.0.113.9 port 22"),
        ("203.0.113.9", "from [::ffff:203.0.113.9]:22 port 22"),
        ("2001:db8::7", "from 2001:0db8:0:0:0:0:0:7 port 22"),
        ("fe80::1", "from fe80::1%eth0 port 22"),
        ("2001:db8::1", "from [2001:db8::1]:22 port 22"),
    ] {
        let device = "3f2a9c1e-1234-4abc-8def-0123456789ab";
        let (ip_col, device_col) = session_columns(ip, device);
        let out = scrub_with(&format!("{in_text} device={device}"), &p);
        assert!(
            out.contains(&format!("device=<id:{device_col}>")),
            "{in_text}: {out}"
        );
        assert!(out.contains(&format!("<ip:{ip_col}>")), "{in_text}: {out}");
    }
    // The device id as written: an upper-case id in the column and in the text join; an
    // upper-case id in the text does not join a lower-case column.
    let upper = "3F2A9C1E-1234-4ABC-8DEF-0123456789AB";
    let (_, upper_col) = session_columns("203.0.113.9", upper);
    let (_, lower_col) = session_columns("203.0.113.9", &upper.to_ascii_lowercase());
    let out = scrub_with(&format!("device {upper}"), &p);
    assert_eq!(out, format!("device <id:{upper_col}>"));
    assert_ne!(upper_col, lower_col);
}

fn corpus() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("LOGVEIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/corpus"))
        .join("syslog/loghub");
    dir.is_dir().then_some(dir)
}

/// Every IPv4-shaped substring of `s` (four dot-separated runs of 1–3 digits), as text.
fn ipv4_shapes(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut found = Vec::new();
    for start in 0..b.len() {
        if !b[start].is_ascii_digit() || (start > 0 && b[start - 1].is_ascii_digit()) {
            continue;
        }
        let mut i = start;
        let mut groups = 0;
        loop {
            let g = i;
            while i < b.len() && b[i].is_ascii_digit() && i - g < 3 {
                i += 1;
            }
            if i == g {
                break;
            }
            groups += 1;
            if groups == 4 || b.get(i) != Some(&b'.') {
                break;
            }
            i += 1;
        }
        if groups == 4 {
            found.push(s[start..i].to_string());
        }
    }
    found
}

#[test]
fn loghub_syslog_keeps_no_ipv4_and_pseudonymises_every_address() {
    let Some(dir) = corpus() else {
        println!("skipped: no loghub corpus (set LOGVEIL_CORPUS)");
        return;
    };
    let p = Pseudonymiser::new(&Key::development());
    let (mut lines, mut addresses) = (0, 0);
    let mut out = String::new();
    for name in ["OpenSSH_2k.log", "Linux_2k.log"] {
        let data = std::fs::read(dir.join(name)).expect("corpus file");
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            let text = String::from_utf8_lossy(line);
            scrub_text(line, 4096, &mut out);
            assert!(ipv4_shapes(&out).is_empty(), "{text} -> {out}");
            scrub_text_with(line, 4096, Some(&p), &mut out);
            assert!(ipv4_shapes(&out).is_empty(), "{text} -> {out}");
            for ip in ipv4_shapes(&text) {
                let Ok(addr) = ip.parse::<IpAddr>() else {
                    continue;
                };
                addresses += 1;
                let m = format!("<ip:{}>", p.ip_pseudonym(addr).as_str());
                assert!(out.contains(&m), "{ip} in {text} -> {out}");
            }
        }
    }
    assert!(
        lines >= 4000 && addresses >= 1000,
        "{lines} lines, {addresses} addresses"
    );
}

/// What follows each `prefix` in `text` (after extra spaces): the word up to the next space,
/// `(` or control character.
fn words_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(k, _)| {
            let rest = text[k + prefix.len()..].trim_start_matches(' ');
            let n = rest
                .find(|c: char| c == ' ' || c == '(' || c.is_control() || c == '\u{FFFD}')
                .unwrap_or(rest.len());
            &rest[..n]
        })
        .collect()
}

#[test]
fn loghub_syslog_keeps_no_user_name() {
    let Some(dir) = corpus() else {
        println!("skipped: no loghub corpus (set LOGVEIL_CORPUS)");
        return;
    };
    let p = Pseudonymiser::new(&Key::development());
    // Where OpenSSH and PAM write a user name (the word after the prefix).
    let prefixes = [
        "Invalid user ",
        "invalid user ",
        "for user ",
        " user=",
        "ruser=",
        "Failed password for ",
        "Accepted password for ",
        "Failed none for ",
        "failures for ",
    ];
    // Phrases with `user` that name nobody.
    let phrases = [
        "No more user authentication methods",
        "Closed due to user request.",
        "check pass; user unknown",
        "logname= uid=0",
    ];
    let (mut names, mut kept) = (0, 0);
    let mut out = String::new();
    for name in ["OpenSSH_2k.log", "Linux_2k.log"] {
        let data = std::fs::read(dir.join(name)).expect("corpus file");
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = String::from_utf8_lossy(line);
            for with_ids in [false, true] {
                scrub_text_with(line, 4096, with_ids.then_some(&p), &mut out);
                for prefix in prefixes {
                    let (raw, scrubbed) = (words_after(&text, prefix), words_after(&out, prefix));
                    assert_eq!(raw.len(), scrubbed.len(), "{prefix:?}: {text} -> {out}");
                    for (r, o) in raw.iter().zip(&scrubbed) {
                        // No name (`ruser= rhost=…`, `for invalid user …`): no marker.
                        if r.is_empty() || r.contains('=') || *r == "invalid" || *r == "from" {
                            assert!(!o.starts_with("<user>"), "{prefix:?}: {text} -> {out}");
                        } else {
                            assert!(o.starts_with("<user>"), "{prefix:?}: {text} -> {out}");
                            names += 1;
                        }
                    }
                }
                for phrase in phrases {
                    if text.contains(phrase) {
                        assert!(out.contains(phrase), "{text} -> {out}");
                        kept += 1;
                    }
                }
            }
        }
    }
    assert!(
        names >= 2000 && kept >= 2000,
        "{names} names, {kept} phrases"
    );
}

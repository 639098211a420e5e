//! The canary suite: for every supported input format, a generated corpus with secrets planted
//! in every field and in odd places (addresses inside messages, emails URL-encoded in queries,
//! ids in paths, proxy destinations in nested JSON, secrets in unknown nested fields, malformed
//! lines full of identifiers). Each corpus runs through the binary; then every output byte
//! (decoded Parquet values, footers, manifests, the quarantine, the audit and suppression files,
//! stdout and stderr including the summary) is searched, and every leak is counted and listed.
//! Controls prove that the legitimate records and words survived.
//!
//! Leak tests: a raw address must not appear as a token; the random core of an id, email,
//! token or destination must not appear as any 8-character window (12 for hex-only values,
//! whose shorter windows could match a pseudonym by chance).
//!
//! Seeds: 11 and 12, or `LOGVEIL_CANARY_SEED=n` to explore another corpus.

use std::collections::HashSet;
use std::path::Path;

mod common;
use common::*;

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// What was planted, by kind.
#[derive(Default)]
struct Planted {
    /// Raw addresses (must not appear as a token).
    ips: Vec<String>,
    /// Random cores of ids, emails, tokens and destinations (no 8-char window may appear).
    cores: Vec<String>,
    /// Hex-only values (device ids, UUIDs): no 12-char window may appear.
    hex: Vec<String>,
}

struct Gen {
    rng: Rng,
    planted: Planted,
}

const CORE_ALPHABET: &[u8] = b"ghjkmnpqrstvwxyzGHJKMNPQRSTVWXYZ";
const DIGITS: &[u8] = b"23456789";

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03)),
            planted: Planted::default(),
        }
    }

    /// A 14-character core of letters that are not hex digits, with digits mixed in: never
    /// a substring of a pseudonym, and shaped like a token.
    fn core(&mut self) -> String {
        let mut s = String::new();
        for i in 0..14 {
            let set = if i % 3 == 1 { DIGITS } else { CORE_ALPHABET };
            s.push(set[self.rng.below(set.len() as u64) as usize] as char);
        }
        self.planted.cores.push(s.clone());
        s
    }

    /// A user name of plain letters (no digits: only its position can give it away).
    fn user(&mut self) -> String {
        let s: String = (0..10)
            .map(|_| b"ghjkmnpqrstvwxyz"[self.rng.below(16) as usize] as char)
            .collect();
        self.planted.cores.push(s.clone());
        s
    }

    fn hex(&mut self, n: usize) -> String {
        let s: String = (0..n)
            .map(|_| b"0123456789abcdef"[self.rng.below(16) as usize] as char)
            .collect();
        s
    }

    fn uuid(&mut self) -> String {
        let u = format!(
            "{}-{}-4{}-8{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(3),
            self.hex(12)
        );
        self.planted.hex.push(u.clone());
        u
    }

    fn device(&mut self) -> String {
        if self.rng.below(2) == 0 {
            self.uuid()
        } else {
            let d = self.hex(16);
            self.planted.hex.push(d.clone());
            d
        }
    }

    fn ipv4(&mut self) -> String {
        let ip = format!(
            "{}.{}.{}.{}",
            [198, 203, 192, 100, 172, 81][self.rng.below(6) as usize],
            self.rng.below(256),
            self.rng.below(256),
            1 + self.rng.below(254)
        );
        self.planted.ips.push(ip.clone());
        ip
    }

    fn ipv6(&mut self) -> String {
        let ip = match self.rng.below(3) {
            0 => format!(
                "2001:db8:{:x}:{:x}::{:x}",
                self.rng.below(65536),
                self.rng.below(65536),
                1 + self.rng.below(65535)
            ),
            1 => format!(
                "2a02:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                self.rng.below(65536),
                1 + self.rng.below(65535)
            ),
            _ => {
                let v4 = self.ipv4();
                format!("::ffff:{v4}")
            }
        };
        self.planted.ips.push(ip.clone());
        ip
    }

    fn ip(&mut self) -> String {
        if self.rng.below(4) == 0 {
            self.ipv6()
        } else {
            self.ipv4()
        }
    }

    fn email(&mut self) -> String {
        format!("canary.{}@example.org", self.core())
    }

    fn email_encoded(&mut self) -> String {
        format!("canary.{}%40example.org", self.core())
    }

    fn dest(&mut self) -> String {
        format!("dest-{}.example.net", self.core())
    }

    fn secret_phrase(&mut self) -> String {
        let c = self.core();
        match self.rng.below(4) {
            0 => format!("Bearer {c}"),
            1 => format!("api_key={c}"),
            2 => format!("password={c}"),
            _ => format!("token: {c}"),
        }
    }
}

const PAGES: [&str; 4] = [
    "/dashboard/usage",
    "/dashboard/proxies",
    "/billing",
    "/settings",
];

fn clf_time(i: usize) -> String {
    format!("15/Nov/2026:10:{:02}:{:02} +0000", (i / 60) % 60, i % 60)
}

fn rfc3339(i: usize) -> String {
    format!("2026-11-15T10:{:02}:{:02}Z", (i / 60) % 60, i % 60)
}

/// A corpus: its text, the CLI arguments that read it, and the legitimate lines it holds.
struct Corpus {
    name: &'static str,
    args: Vec<String>,
    text: String,
    dataset: &'static str,
    /// Rows expected in the dataset (proxy logs: requests aggregated).
    good: u64,
    /// Words that must survive somewhere in the dataset's output.
    controls: Vec<&'static str>,
}

const N: usize = 120;

fn access(g: &mut Gen, common_format: bool) -> Corpus {
    let mut t = String::new();
    let mut good = 0;
    for i in 0..N {
        let ip = g.ip();
        let user = if i % 2 == 0 { g.email() } else { g.core() };
        let ua = format!("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 {}", g.email());
        let kind = i % 6;
        let request = match kind {
            0 => format!("CONNECT {}:443 HTTP/1.1", g.dest()),
            1 => format!("GET http://{}/x?token={} HTTP/1.1", g.dest(), g.core()),
            2 => format!(
                "GET /users/{}/orders/{}?email={}&token={} HTTP/1.1",
                g.uuid(),
                1_000_000 + g.rng.below(9_000_000),
                g.email_encoded(),
                g.core()
            ),
            _ => format!("GET {}?session={} HTTP/1.1", g.rng.pick(&PAGES), g.core()),
        };
        if kind >= 2 {
            good += 1;
        }
        let referrer = format!(
            "https://ref.example.com/p?uid={}&mail={}",
            g.core(),
            g.email_encoded()
        );
        if common_format {
            t.push_str(&format!(
                "{ip} - {user} [{}] \"{request}\" 200 512\n",
                clf_time(i)
            ));
        } else {
            t.push_str(&format!(
                "{ip} - {user} [{}] \"{request}\" 200 512 \"{referrer}\" \"{ua}\"\n",
                clf_time(i)
            ));
        }
        if i % 10 == 9 {
            // Malformed, full of identifiers: quarantined, masked.
            t.push_str(&format!(
                "{} {} broken [{}] {}\n",
                g.ip(),
                g.email(),
                g.core(),
                g.secret_phrase()
            ));
        }
    }
    Corpus {
        name: if common_format { "common" } else { "combined" },
        args: vec![
            "--format".into(),
            (if common_format { "common" } else { "combined" }).into(),
        ],
        text: t,
        dataset: "access",
        good,
        controls: vec!["/dashboard/usage", "/users/:uuid/orders/:id"],
    }
}

fn custom(g: &mut Gen) -> Corpus {
    let layout = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time "$http_x_forwarded_for" "$http_cookie""#;
    let mut t = String::new();
    for i in 0..N {
        t.push_str(&format!(
            "{} - {} [{}] \"GET {}?t={} HTTP/1.1\" 200 10 \"-\" \"curl/8\" 0.012 \"{}, {}\" \"sid={}; email={}\"\n",
            g.ip(),
            g.core(),
            clf_time(i),
            g.rng.pick(&PAGES),
            g.core(),
            g.ip(),
            g.ip(),
            g.core(),
            g.email()
        ));
    }
    Corpus {
        name: "custom-layout",
        args: vec!["--log-format".into(), layout.into()],
        text: t,
        dataset: "access",
        good: N as u64,
        controls: vec!["/billing", "/settings"],
    }
}

fn session(g: &mut Gen) -> Corpus {
    let mut t = String::new();
    let mut good = 0;
    for i in 0..N {
        let consent = if i % 5 == 4 {
            r#"{"necessary":true,"statistics":false}"#.to_string()
        } else {
            r#"{"necessary":true,"preferences":true,"statistics":true,"marketing":true}"#
                .to_string()
        };
        let event = match i % 7 {
            6 => "proxy_request",
            _ => "page_view",
        };
        if i % 5 != 4 && i % 7 != 6 {
            good += 1;
        }
        let line = serde_json::json!({
            "ts": rfc3339(i),
            "event": event,
            "app": "web",
            "session_id": g.uuid(),
            "device_id": g.device(),
            "account_id": g.email(),
            "ip": g.ip(),
            "user_agent": format!("ProxyApp/3.2.1 (Android 14; {})", g.email()),
            "page": format!("{}?email={}&token={}", g.rng.pick(&PAGES), g.email_encoded(), g.core()),
            "referrer": format!("https://{}/?q={}", g.dest(), g.core()),
            "utm_source": g.email(),
            "utm_campaign": format!("spring {}", g.ip()),
            "gclid": g.secret_phrase(),
            "locale": "en-US",
            "consent": serde_json::from_str::<serde_json::Value>(&consent).unwrap(),
            "extra": {"deep": {"password": g.core(), "ip": g.ip(), "note": g.email()}},
            "proxy": {"destination": {"host": g.dest(), "url": format!("https://{}/", g.dest())}},
            "debug_token": g.core(),
        });
        t.push_str(&line.to_string());
        t.push('\n');
        if i % 10 == 9 {
            t.push_str(&format!(
                "{{\"ts\": \"bad\", \"ip\": \"{}\", \"device_id\": \"{}\", \"email\": \"{}\"\n",
                g.ip(),
                g.device(),
                g.email()
            ));
        }
    }
    Corpus {
        name: "session-json",
        args: vec!["--format".into(), "session-json".into()],
        text: t,
        dataset: "session",
        good,
        controls: vec!["page_view", "/dashboard/usage"],
    }
}

fn syslog(g: &mut Gen) -> Corpus {
    let mut t = String::new();
    for i in 0..N {
        let line = match i % 3 {
            0 => format!(
                "<38>1 {} auth-1 sshd 1000 - [origin ip=\"{}\" user=\"{}\"] Accepted publickey for {} from {} port 22 ssh2 {}; Invalid user {} from {} port 4242; session opened for user {} by (uid=0); user={}",
                rfc3339(i),
                g.ip(),
                g.email(),
                g.user(),
                g.ip(),
                g.secret_phrase(),
                g.user(),
                g.ip(),
                g.user(),
                g.user()
            ),
            1 => format!(
                "<86>1 {} {} dashboard - AUDIT - password reset requested by {} for device {} via https://{}/reset?token={}",
                rfc3339(i),
                g.ipv4(),
                g.email(),
                g.device(),
                g.dest(),
                g.core()
            ),
            _ => format!(
                "<30>Nov 15 10:{:02}:{:02} web-1 nginx[2002]: upstream timed out while reading GET /api?email={} client: {}, server: {}",
                (i / 60) % 60,
                i % 60,
                g.email_encoded(),
                g.ipv6(),
                g.ip()
            ),
        };
        t.push_str(&line);
        t.push('\n');
        if i % 10 == 9 {
            t.push_str(&format!(
                "<999>garbage {} {} {}\n",
                g.ip(),
                g.email(),
                g.secret_phrase()
            ));
        }
    }
    Corpus {
        name: "syslog",
        args: [
            "--format",
            "syslog",
            "--reference-time",
            "2026-11-28T12:00:00Z",
        ]
        .map(String::from)
        .to_vec(),
        text: t,
        dataset: "syslog",
        good: N as u64,
        controls: vec![
            "Accepted publickey",
            "password reset requested",
            "upstream timed out",
        ],
    }
}

fn app(g: &mut Gen, json: bool) -> Corpus {
    let mut t = String::new();
    for i in 0..N {
        if json {
            let line = serde_json::json!({
                "time": rfc3339(i),
                "level": "INFO",
                "message": format!("payment accepted for {} from {} ({})", g.email(), g.ip(), g.secret_phrase()),
                "client": {"ip": g.ip(), "device_id": g.device()},
                "http": {"method": "POST", "path": format!("/api/v1/invoices/{}?email={}", 100_000 + g.rng.below(900_000), g.email_encoded()), "status_code": 201},
                "account_id": g.email(),
                "trace_id": format!("trace {}", g.ip()),
                "secrets": {"nested": {"api_key": g.core()}},
                "fingerprint": g.core(),
            });
            t.push_str(&line.to_string());
        } else {
            t.push_str(&format!(
                "ts={} level=info msg=\"payment accepted for {} from {} user={}\" ip={} device_id={} path=\"/login?token={}\" status=200 request_id=\"req {}\" email={} api_key={}",
                rfc3339(i),
                g.email(),
                g.ip(),
                g.user(),
                g.ip(),
                g.device(),
                g.core(),
                g.ip(),
                g.email(),
                g.core()
            ));
        }
        t.push('\n');
        if i % 10 == 9 {
            t.push_str(&format!(
                "ts=never ip={} msg=\"{} {}\"\n",
                g.ip(),
                g.email(),
                g.secret_phrase()
            ));
        }
    }
    let args: Vec<String> = if json {
        [
            "--format",
            "json",
            "--map",
            "ip=client.ip",
            "--map",
            "device_id=client.device_id",
            "--map",
            "keep=trace_id",
        ]
        .map(String::from)
        .to_vec()
    } else {
        ["--format", "logfmt", "--map", "keep=request_id"]
            .map(String::from)
            .to_vec()
    };
    Corpus {
        name: if json { "json" } else { "logfmt" },
        args,
        text: t,
        dataset: "app",
        good: N as u64,
        controls: vec!["payment accepted"],
    }
}

fn proxy(g: &mut Gen, json: bool) -> Corpus {
    let mut t = String::new();
    for i in 0..N {
        if json {
            let line = serde_json::json!({
                "ts": rfc3339(i),
                "account_id": g.core(),
                "client_ip": g.ip(),
                "method": "CONNECT",
                "dest_host": g.dest(),
                "dest_port": 443,
                "url": format!("https://{}/p?token={}", g.dest(), g.core()),
                "peer": g.ip(),
                "status": 200,
                "bytes_in": 100,
                "bytes_out": 1000,
                "duration_ms": 10,
                "nested": {"target": g.dest(), "user": g.email()},
            });
            t.push_str(&line.to_string());
        } else {
            t.push_str(&format!(
                "{}.{:03} 120 {} TCP_TUNNEL/200 1000 CONNECT {}:443 {} HIER_DIRECT/{} -",
                1_794_736_800 + i as u64,
                i % 1000,
                g.ip(),
                g.dest(),
                g.core(),
                g.ip()
            ));
        }
        t.push('\n');
        if i % 10 == 9 {
            t.push_str(&format!("garbage {} {} {}\n", g.ip(), g.dest(), g.email()));
        }
    }
    Corpus {
        name: if json { "proxy-json" } else { "squid" },
        args: vec![
            "--format".into(),
            (if json { "proxy-json" } else { "squid" }).into(),
        ],
        text: t,
        dataset: "proxy_usage",
        good: N as u64,
        controls: vec!["2xx"],
    }
}

/// Every `w`-byte window of `s`.
fn windows(s: &str, w: usize, into: &mut HashSet<Vec<u8>>) {
    for win in s.as_bytes().windows(w) {
        into.insert(win.to_vec());
    }
}

/// Whether `ip` occurs in `hay` as a whole token (not inside a longer number or address).
fn has_ip_token(hay: &str, ip: &str) -> bool {
    let glue = |c: Option<char>| c.is_some_and(|c| c.is_ascii_hexdigit() || c == '.' || c == ':');
    hay.match_indices(ip).any(|(i, _)| {
        !glue(hay[..i].chars().next_back()) && !glue(hay[i + ip.len()..].chars().next())
    })
}

fn run_corpus(seed: u64, make: &dyn Fn(&mut Gen) -> Corpus) -> Vec<String> {
    let mut g = Gen::new(seed);
    let c = make(&mut g);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    ok(bin().args(["keygen", "--out"]).arg(&keys));
    let input = dir.path().join("input.log");
    std::fs::write(&input, &c.text).unwrap();
    let out = dir.path().join("out");
    // Half the runs write their messages as JSON (`--log-json`): those must not leak either.
    let json_logs = seed % 2 == 1;
    let o = run(bin()
        .env("LOGVEIL_LOG_JSON", if json_logs { "true" } else { "false" })
        .args(["ingest", "--summary-json", "--keys"])
        .arg(&keys)
        // The corpora's events are of 15 November 2026.
        .args(["--now", "2026-11-16T00:00:00Z"])
        .arg("--out")
        .arg(&out)
        .args(&c.args)
        .arg(&input));
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{} (seed {seed}): {stderr}",
        c.name
    );
    let s: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    if json_logs {
        for l in stderr.lines() {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
            assert!(v["message"].is_string() && v["level"].is_string(), "{l}");
        }
    }

    // Every byte logveil wrote or printed.
    let mut everything: Vec<(String, String)> = all_output_text(&out)
        .into_iter()
        .map(|(p, t)| (p.display().to_string(), t))
        .collect();
    everything.push(("stdout".into(), stdout));
    everything.push(("stderr".into(), stderr));
    let mut w8 = HashSet::new();
    let mut w12 = HashSet::new();
    for (_, t) in &everything {
        windows(t, 8, &mut w8);
        windows(t, 12, &mut w12);
    }
    let mut leaks = Vec::new();
    for ip in &g.planted.ips {
        for (f, t) in &everything {
            if has_ip_token(t, ip) {
                leaks.push(format!("{}: address {ip} in {f}", c.name));
            }
        }
    }
    // Where a window was found, for the report.
    let locate = |v: &str, w: usize| -> String {
        for win in v.as_bytes().windows(w) {
            let win = std::str::from_utf8(win).unwrap_or_default();
            for (f, t) in &everything {
                if let Some(i) = t.find(win) {
                    let mut from = i.saturating_sub(40);
                    while !t.is_char_boundary(from) {
                        from -= 1;
                    }
                    let mut to = (i + 50).min(t.len());
                    while !t.is_char_boundary(to) {
                        to += 1;
                    }
                    return format!("{f}: …{}…", &t[from..to]);
                }
            }
        }
        String::new()
    };
    for core in &g.planted.cores {
        if core.as_bytes().windows(8).any(|w| w8.contains(w)) {
            leaks.push(format!("{}: part of {core} in {}", c.name, locate(core, 8)));
        }
    }
    for h in &g.planted.hex {
        if h.as_bytes().windows(12).any(|w| w12.contains(w)) {
            leaks.push(format!("{}: part of {h} in {}", c.name, locate(h, 12)));
        }
    }

    // Controls: the legitimate records and words survived.
    if c.dataset == "proxy_usage" {
        assert_eq!(
            s["proxy_requests_aggregated"], c.good,
            "{} (seed {seed}): {s}",
            c.name
        );
    } else {
        assert_eq!(
            s["records_written"][c.dataset], c.good,
            "{} (seed {seed}): {s}",
            c.name
        );
    }
    let data: String = everything
        .iter()
        .filter(|(f, _)| f.contains(&format!("/{}/", c.dataset)))
        .map(|(_, t)| t.as_str())
        .collect();
    for w in &c.controls {
        assert!(
            data.contains(w),
            "{} (seed {seed}): control {w:?} missing",
            c.name
        );
    }
    assert!(
        g.planted.ips.len() + g.planted.cores.len() > N,
        "{}: too few canaries",
        c.name
    );
    leaks
}

fn seeds() -> Vec<u64> {
    match std::env::var("LOGVEIL_CANARY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(s) => vec![s],
        None => vec![11, 12],
    }
}

type Maker = fn(&mut Gen) -> Corpus;

#[test]
fn no_canary_leaks_from_any_format() {
    let makers: [(&str, Maker); 9] = [
        ("combined", |g| access(g, false)),
        ("common", |g| access(g, true)),
        ("custom-layout", custom),
        ("session-json", session),
        ("syslog", syslog),
        ("logfmt", |g| app(g, false)),
        ("json", |g| app(g, true)),
        ("squid", |g| proxy(g, false)),
        ("proxy-json", |g| proxy(g, true)),
    ];
    let mut leaks = Vec::new();
    for seed in seeds() {
        for (_, make) in &makers {
            leaks.extend(run_corpus(seed, make));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn the_leak_detector_finds_planted_values() {
    // The detector itself: a value written verbatim must be found.
    let mut g = Gen::new(1);
    let ip = g.ipv4();
    let core = g.core();
    let hay = format!("x {ip} y abc{core}def");
    assert!(has_ip_token(&hay, &ip));
    assert!(!has_ip_token(&format!("{ip}9"), &ip));
    let mut w = HashSet::new();
    windows(&hay, 8, &mut w);
    assert!(core.as_bytes().windows(8).all(|x| w.contains(x)));
    let _ = Path::new("");
}

//! Unit tests of `logveil_privacy::Engine` through the real parsers: access-log lines and
//! session events are parsed with `logveil_parse` and handed to the engine, and the resulting
//! row, drop or quarantine is checked against the privacy policy (docs/SCHEMA.md): proxy
//! traffic and events without statistics consent are dropped, identifiers become keyed
//! pseudonyms and networks, paths lose queries and identifiers, referrers keep scheme and
//! host only, and nothing outside the allow-list reaches a row.

use logveil_model::{DropReason, QuarantineReason};
use logveil_parse::access::{AccessFormat, Request, parse_access};
use logveil_parse::session::parse_session;
use logveil_privacy::keys::Algorithm;
use logveil_privacy::pseudonym::Truncation;
use logveil_privacy::{Engine, EngineConfig, Key, KeyRing, Outcome};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// What became of a record, with the row copied out of the engine's borrows.
#[derive(Debug, PartialEq)]
enum Got<R> {
    Keep(R),
    Drop(DropReason),
    Quarantine(QuarantineReason),
}

impl<R: std::fmt::Debug> Got<R> {
    #[track_caller]
    fn kept(self) -> R {
        match self {
            Got::Keep(r) => r,
            other => panic!("expected a kept row, got {other:?}"),
        }
    }
}

/// An `access` row, owned.
#[derive(Debug, Clone, PartialEq)]
struct Access {
    /// `format!("{row:?}")` of the engine's row: every field the row carries.
    debug: String,
    ip_pseudonym: String,
    ip_network: String,
    method: Option<String>,
    path: Option<String>,
    protocol: Option<String>,
    status: Option<u16>,
    bytes_sent: Option<u64>,
    referrer_host: Option<String>,
    browser_family: String,
    os_family: String,
    device_class: String,
    key_id: String,
}

/// A `session` row, owned.
#[derive(Debug, Clone, PartialEq)]
struct Session {
    debug: String,
    event: String,
    app: String,
    session_pseudonym: Option<String>,
    device_pseudonym: Option<String>,
    account_pseudonym: Option<String>,
    ip_pseudonym: Option<String>,
    ip_network: Option<String>,
    page: Option<String>,
    referrer_host: Option<String>,
    locale: Option<String>,
    consent: (bool, bool, bool),
    marketing: [Option<String>; 8],
    key_id: String,
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_string)
}

fn dev_engine() -> Engine {
    Engine::new(&KeyRing::development(), EngineConfig::default())
}

fn engine_with(truncation: Truncation) -> Engine {
    Engine::new(
        &KeyRing::development(),
        EngineConfig {
            truncation,
            ..EngineConfig::default()
        },
    )
}

/// Parses `line` (combined or common) and runs it through the engine. Panics if it does not
/// parse: these tests are about the engine.
#[track_caller]
fn access_as(e: &mut Engine, line: &[u8], format: AccessFormat) -> Got<Access> {
    let parsed = parse_access(line, format)
        .unwrap_or_else(|err| panic!("test line does not parse: {err} ({line:?})"));
    match e.access(&parsed) {
        Outcome::Keep(r) => Got::Keep(Access {
            debug: format!("{r:?}"),
            ip_pseudonym: r.ip_pseudonym.to_string(),
            ip_network: r.ip_network.to_string(),
            method: owned(r.method),
            path: owned(r.path),
            protocol: owned(r.protocol),
            status: r.status,
            bytes_sent: r.bytes_sent,
            referrer_host: owned(r.referrer_host),
            browser_family: r.ua.browser_family.to_string(),
            os_family: r.ua.os_family.to_string(),
            device_class: r.ua.device_class.to_string(),
            key_id: r.key_id.to_string(),
        }),
        Outcome::Drop(d) => Got::Drop(d),
        Outcome::Quarantine { reason, detail } => {
            assert!(!detail.is_empty());
            Got::Quarantine(reason)
        }
    }
}

#[track_caller]
fn access(e: &mut Engine, line: &str) -> Got<Access> {
    access_as(e, line.as_bytes(), AccessFormat::Combined)
}

/// A combined line with the given fields (each written between its quotes as given).
fn combined(client: &str, user: &str, request: &str, referrer: &str, ua: &str) -> String {
    format!(
        "{client} - {user} [10/Oct/2026:13:55:36 -0700] \"{request}\" 200 2326 \"{referrer}\" \"{ua}\""
    )
}

/// A valid combined line with the given request field.
fn with_request(request: &str) -> String {
    combined(
        "203.0.113.9",
        "-",
        request,
        "https://www.example.org/",
        CHROME,
    )
}

/// A valid combined line with the given client.
fn with_client(client: &str) -> String {
    combined(client, "-", "GET /index.html HTTP/1.1", "-", CHROME)
}

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// Parses a session event (a JSON value) and runs it through the engine.
#[track_caller]
fn session(e: &mut Engine, ev: &Value) -> Got<Session> {
    let line = ev.to_string();
    session_line(e, &line)
}

#[track_caller]
fn session_line(e: &mut Engine, line: &str) -> Got<Session> {
    let parsed = parse_session(line.as_bytes())
        .unwrap_or_else(|err| panic!("test event does not parse: {err} ({line})"));
    match e.session(&parsed) {
        Outcome::Keep(r) => Got::Keep(Session {
            debug: format!("{r:?}"),
            event: r.event.to_string(),
            app: r.app.to_string(),
            session_pseudonym: owned(r.session_pseudonym),
            device_pseudonym: owned(r.device_pseudonym),
            account_pseudonym: owned(r.account_pseudonym),
            ip_pseudonym: owned(r.ip_pseudonym),
            ip_network: owned(r.ip_network),
            page: owned(r.page),
            referrer_host: owned(r.referrer_host),
            locale: owned(r.locale),
            consent: (
                r.consent_preferences,
                r.consent_statistics,
                r.consent_marketing,
            ),
            marketing: r.marketing.map(owned),
            key_id: r.key_id.to_string(),
        }),
        Outcome::Drop(d) => Got::Drop(d),
        Outcome::Quarantine { reason, detail } => {
            assert!(!detail.is_empty());
            Got::Quarantine(reason)
        }
    }
}

/// A valid session event with the given consent (preferences, statistics, marketing).
fn event(preferences: bool, statistics: bool, marketing: bool) -> Value {
    json!({
        "ts": "2026-11-28T10:15:30.123Z",
        "event": "page_view",
        "app": "web",
        "app_version": "1.2.3",
        "session_id": "s-0001",
        "device_id": "d-0001",
        "account_id": "a-0001",
        "ip": "203.0.113.77",
        "user_agent": CHROME,
        "page": "/pricing",
        "referrer": "https://www.google.com/search?q=logveil",
        "duration_ms": 1234,
        "locale": "de-DE",
        "consent": {
            "necessary": true,
            "preferences": preferences,
            "statistics": statistics,
            "marketing": marketing
        },
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "winter_sale",
        "utm_term": "analytics",
        "utm_content": "banner",
        "gclid": "Cj0KCQiA-token_123",
        "fbclid": "IwAR3xYz-abc_987",
        "msclkid": "5e1f0c9a2b3d4e5f"
    })
}

fn full_consent() -> Value {
    event(true, true, true)
}

fn set(ev: &mut Value, key: &str, v: Value) {
    ev.as_object_mut()
        .expect("object")
        .insert(key.to_string(), v);
}

fn is_pseudonym(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const BROWSER_FAMILIES: &[&str] = &[
    "Chrome",
    "Firefox",
    "Safari",
    "Edge",
    "Opera",
    "Internet Explorer",
    "Vivaldi",
    "Yandex Browser",
    "SamsungBrowser",
    "UC Browser",
    "Facebook",
    "Instagram",
    "Webview",
    "Sleipnir",
    "Google Search App",
    "HTTP Library",
    "Bot",
    "Other",
];

const OS_FAMILIES: &[&str] = &[
    "Windows",
    "Windows Phone",
    "Mac OS X",
    "iOS",
    "iPadOS",
    "Android",
    "Linux",
    "ChromeOS",
    "BSD",
    "BlackBerry",
    "Firefox OS",
    "Other",
];

const DEVICE_CLASSES: &[&str] = &["desktop", "mobile", "tablet", "bot", "other"];

// ---------------------------------------------------------------------------------------------
// access: proxy traffic
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_is_proxy_traffic() {
    let mut e = dev_engine();
    for req in [
        "CONNECT example.com:443 HTTP/1.1",
        "connect example.com:443 HTTP/1.1",
        "CONNECT 198.51.100.7:22 HTTP/1.0",
        "CONNECT [2001:db8::1]:443 HTTP/1.1",
    ] {
        assert_eq!(
            access(&mut e, &with_request(req)),
            Got::Drop(DropReason::ProxyTraffic),
            "{req}"
        );
    }
}

#[test]
fn absolute_form_targets_are_proxy_traffic() {
    let mut e = dev_engine();
    for req in [
        "GET http://x.example/index.html?user=alice HTTP/1.1",
        "GET https://x.example/ HTTP/1.1",
        "POST HTTP://X.EXAMPLE/login HTTP/1.0",
        "HEAD ftp://files.example/pub HTTP/1.1",
        "GET http://198.51.100.7:8080/ HTTP/1.1",
    ] {
        let line = with_request(req);
        let parsed = parse_access(line.as_bytes(), AccessFormat::Combined).unwrap();
        assert!(
            matches!(parsed.request, Request::Parsed { .. }),
            "{req}: {:?}",
            parsed.request
        );
        assert_eq!(
            access(&mut e, &line),
            Got::Drop(DropReason::ProxyTraffic),
            "{req}"
        );
    }
}

#[test]
fn authority_form_targets_are_proxy_traffic() {
    let mut e = dev_engine();
    for req in [
        "GET x.example:443 HTTP/1.1",
        "OPTIONS mail.example.com:25 HTTP/1.1",
        "GET [2001:db8::1]:8443 HTTP/1.1",
        "POST 198.51.100.7:3128 HTTP/1.1",
    ] {
        assert_eq!(
            access(&mut e, &with_request(req)),
            Got::Drop(DropReason::ProxyTraffic),
            "{req}"
        );
    }
}

#[test]
fn raw_request_naming_a_destination_is_proxy_traffic() {
    let mut e = dev_engine();
    for req in [
        // HTTP/0.9 style with an absolute target: not origin-form, so the parser keeps it raw.
        "GET http://x.example/",
        "CONNECT x.example:443",
        "connect x.example:443",
        "CONNECT x.example:443 SOCKS/5",
        "\\x16\\x03\\x01 https://x.example/",
        "junk gopher://x.example",
    ] {
        let line = with_request(req);
        let parsed = parse_access(line.as_bytes(), AccessFormat::Combined).unwrap();
        assert!(
            matches!(parsed.request, Request::Raw(_)),
            "{req}: {:?}",
            parsed.request
        );
        assert_eq!(
            access(&mut e, &line),
            Got::Drop(DropReason::ProxyTraffic),
            "{req}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// access: request field
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_or_garbage_request_is_kept_without_method_path_protocol() {
    let mut e = dev_engine();
    let lines: Vec<Vec<u8>> = vec![
        with_request("-").into_bytes(),
        with_request("").into_bytes(),
        // nginx writes the bytes of a TLS handshake on a plain-HTTP port as \xHH escapes.
        with_request(r"\x16\x03\x01").into_bytes(),
        with_request(r"\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03").into_bytes(),
        // The raw bytes themselves (Apache and others).
        combined("203.0.113.9", "-", "\x16\x03\x01", "-", "-").into_bytes(),
        {
            let mut l = b"203.0.113.9 - - [10/Oct/2026:13:55:36 -0700] \"".to_vec();
            l.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0xff, 0xfe]);
            l.extend_from_slice(b"\" 400 0 \"-\" \"-\"");
            l
        },
        with_request("GET").into_bytes(),
        with_request("HELLO WORLD").into_bytes(),
    ];
    for line in &lines {
        let row = access_as(&mut e, line, AccessFormat::Combined).kept();
        assert_eq!(
            (&row.method, &row.path, &row.protocol),
            (&None, &None, &None),
            "{}",
            String::from_utf8_lossy(line)
        );
        assert!(is_pseudonym(&row.ip_pseudonym));
        assert!(row.status.is_some());
        assert!(!row.debug.contains("x16"), "{}", row.debug);
    }
}

#[test]
fn parsed_request_keeps_method_path_protocol() {
    let mut e = dev_engine();
    let row = access(&mut e, &with_request("GET /index.html HTTP/1.1")).kept();
    assert_eq!(row.method.as_deref(), Some("GET"));
    assert_eq!(row.path.as_deref(), Some("/index.html"));
    assert_eq!(row.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(row.status, Some(200));
    assert_eq!(row.bytes_sent, Some(2326));
    // HTTP/0.9: no protocol.
    let row = access(&mut e, &with_request("GET /old")).kept();
    assert_eq!(
        (row.method.as_deref(), row.path.as_deref(), row.protocol),
        (Some("GET"), Some("/old"), None)
    );
    // OPTIONS *
    let row = access(&mut e, &with_request("OPTIONS * HTTP/1.1")).kept();
    assert_eq!(row.path.as_deref(), Some("*"));
}

#[test]
fn query_string_and_fragment_are_removed_from_the_path() {
    let mut e = dev_engine();
    for (req, path) in [
        (
            "GET /search?q=alice%40example.com&token=s3cr3t HTTP/1.1",
            "/search",
        ),
        ("GET /docs/intro#install HTTP/1.1", "/docs/intro"),
        ("GET /a/b?x=1#frag HTTP/2.0", "/a/b"),
        ("GET /?session=abc HTTP/1.1", "/"),
        ("GET /reset#token=eyJhbGciOi HTTP/1.1", "/reset"),
    ] {
        let row = access(&mut e, &with_request(req)).kept();
        assert_eq!(row.path.as_deref(), Some(path), "{req}");
        for secret in ["alice", "s3cr3t", "token", "session", "frag", "install"] {
            assert!(!row.debug.contains(secret), "{secret} in {}", row.debug);
        }
    }
}

#[test]
fn identifiers_in_paths_are_replaced() {
    let mut e = dev_engine();
    for (req, path) in [
        (
            "GET /devices/3f2a9c1e-1234-4abc-8def-0123456789ab HTTP/1.1",
            "/devices/:uuid",
        ),
        (
            "GET /devices/3F2A9C1E-1234-4ABC-8DEF-0123456789AB/settings HTTP/1.1",
            "/devices/:uuid/settings",
        ),
        ("GET /users/123456/orders HTTP/1.1", "/users/:id/orders"),
        ("GET /u/alice@example.com HTTP/1.1", "/u/:email"),
        ("GET /hosts/192.0.2.44/status HTTP/1.1", "/hosts/:ip/status"),
    ] {
        let row = access(&mut e, &with_request(req)).kept();
        assert_eq!(row.path.as_deref(), Some(path), "{req}");
    }
}

#[test]
fn percent_encoded_email_leaves_no_trace_in_the_path() {
    let mut e = dev_engine();
    for req in [
        "GET /u/alice%40example.com HTTP/1.1",
        "GET /u/alice%40example.com/profile HTTP/1.1",
        "GET /u/ALICE%40EXAMPLE.COM HTTP/1.1",
    ] {
        let row = access(&mut e, &with_request(req)).kept();
        let path = row.path.expect("path");
        assert!(
            !path.contains('@') && !path.contains("%40") && !path.contains("alice"),
            "{req} -> {path}"
        );
        assert!(path.starts_with("/u/"), "{path}");
        assert!(!row.debug.to_lowercase().contains("example.com"));
    }
}

// ---------------------------------------------------------------------------------------------
// access: referrer
// ---------------------------------------------------------------------------------------------

#[test]
fn referrer_is_reduced_to_scheme_and_site() {
    let mut e = dev_engine();
    for (referrer, host) in [
        (
            "https://www.google.com/search?q=alice%40example.com",
            Some("https://google.com"),
        ),
        (
            "http://Blog.Example.ORG/2026/11/post#c3",
            Some("http://example.org"),
        ),
        (
            "https://bob:hunter2@intranet.example.com:8443/x",
            Some("https://example.com"),
        ),
        (
            "android-app://com.example.app",
            Some("android-app://com.example.app"),
        ),
        ("-", None),
        ("", None),
        ("/relative/path", None),
        ("not a url", None),
        ("http://192.0.2.5/admin", None),
        ("https://[2001:db8::1]:8443/x", None),
        ("http://3232235777/", None),
        ("http://0x7f.1/", None),
    ] {
        let row = access(
            &mut e,
            &combined("203.0.113.9", "-", "GET / HTTP/1.1", referrer, CHROME),
        )
        .kept();
        assert_eq!(row.referrer_host.as_deref(), host, "{referrer}");
        for secret in [
            "search",
            "alice",
            "hunter2",
            "bob",
            "admin",
            "192.0.2.5",
            "2001:db8",
        ] {
            assert!(
                !row.debug.contains(secret),
                "{secret} from {referrer}: {}",
                row.debug
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// access: client address
// ---------------------------------------------------------------------------------------------

#[test]
fn ipv4_becomes_pseudonym_and_24_network() {
    let mut e = dev_engine();
    let row = access(&mut e, &with_client("203.0.113.77")).kept();
    assert!(is_pseudonym(&row.ip_pseudonym), "{}", row.ip_pseudonym);
    assert_eq!(row.ip_network, "203.0.113.0/24");
    assert!(!row.debug.contains("203.0.113.77"), "{}", row.debug);
    assert!(!row.debug.contains(".77"), "{}", row.debug);
}

#[test]
fn ipv6_becomes_pseudonym_and_48_network() {
    let mut e = dev_engine();
    for (client, network) in [
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        (
            "2001:DB8:ABCD:0012:0000:0000:0000:0001",
            "2001:db8:abcd::/48",
        ),
        ("2a02:1234:5678:9abc:def0:1:2:3", "2a02:1234:5678::/48"),
        ("::1", "::/48"),
    ] {
        let row = access(&mut e, &with_client(client)).kept();
        assert!(is_pseudonym(&row.ip_pseudonym));
        assert_eq!(row.ip_network, network, "{client}");
        assert!(!row.debug.contains(client), "{}", row.debug);
    }
    // Two spellings of one address are one pseudonym.
    let a = access(&mut e, &with_client("2001:db8:abcd:12::1")).kept();
    let b = access(
        &mut e,
        &with_client("2001:DB8:ABCD:0012:0000:0000:0000:0001"),
    )
    .kept();
    assert_eq!(a.ip_pseudonym, b.ip_pseudonym);
}

#[test]
fn ipv4_mapped_ipv6_is_the_ipv4_address() {
    let mut e = dev_engine();
    let v4 = access(&mut e, &with_client("192.0.2.1")).kept();
    let mapped = access(&mut e, &with_client("::ffff:192.0.2.1")).kept();
    let mapped_hex = access(&mut e, &with_client("::ffff:c000:201")).kept();
    assert_eq!(v4.ip_pseudonym, mapped.ip_pseudonym);
    assert_eq!(v4.ip_pseudonym, mapped_hex.ip_pseudonym);
    assert_eq!(mapped.ip_network, "192.0.2.0/24");
    assert_eq!(mapped_hex.ip_network, "192.0.2.0/24");
    assert!(!mapped.debug.contains("192.0.2.1"), "{}", mapped.debug);
    // Order does not matter for the cache either: a fresh engine sees the mapped form first.
    let mut e2 = dev_engine();
    let first = access(&mut e2, &with_client("::ffff:192.0.2.1")).kept();
    assert_eq!(first.ip_pseudonym, v4.ip_pseudonym);
}

#[test]
fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
    let mut e = dev_engine();
    let a1 = access(&mut e, &with_client("198.51.100.23")).kept();
    let a2 = access(&mut e, &with_client("198.51.100.23")).kept();
    let other = access(&mut e, &with_client("198.51.100.24")).kept();
    assert_eq!(a1.ip_pseudonym, a2.ip_pseudonym);
    assert_ne!(a1.ip_pseudonym, other.ip_pseudonym);
    assert_eq!(a1.ip_network, other.ip_network);
    // A second engine with the same key agrees (no per-engine state in a pseudonym).
    let mut e2 = dev_engine();
    assert_eq!(
        access(&mut e2, &with_client("198.51.100.23"))
            .kept()
            .ip_pseudonym,
        a1.ip_pseudonym
    );
    // A different key gives a different pseudonym (and its own key id), same network.
    let key = Key::generate(Algorithm::Blake3, None, "2026-11-28T00:00:00Z".to_string())
        .expect("randomness");
    let mut g = Engine::new(&KeyRing::new(key.clone()), EngineConfig::default());
    assert!(!g.is_dev_key());
    assert_eq!(g.key_id(), key.id());
    let b = access(&mut g, &with_client("198.51.100.23")).kept();
    assert!(is_pseudonym(&b.ip_pseudonym));
    assert_ne!(b.ip_pseudonym, a1.ip_pseudonym);
    assert_eq!(b.ip_network, a1.ip_network);
    assert_eq!(b.key_id, key.id());
    assert!(b.key_id.starts_with("k-"));
}

#[test]
fn bad_client_address_is_quarantined() {
    let mut e = dev_engine();
    for client in [
        "not-an-ip",
        "fe80::1%eth0",
        "localhost",
        "192.0.2.1:8080",
        "[2001:db8::1]",
        "[2001:db8::1]:443",
        "192.0.2.256",
        "192.0.2",
        "2001:db8:2ce:1",
        "-",
        "unix:",
    ] {
        assert_eq!(
            access(&mut e, &with_client(client)),
            Got::Quarantine(QuarantineReason::BadClientAddress),
            "{client}"
        );
    }
}

#[test]
fn remote_user_and_ident_never_reach_the_row() {
    let mut e = dev_engine();
    for (ident, user) in [
        ("-", "alice"),
        ("-", "alice@example.com"),
        ("identd-bob", "carol.smith"),
        ("-", "u-3f2a9c1e-1234-4abc-8def-0123456789ab"),
    ] {
        let line = format!(
            "203.0.113.9 {ident} {user} [10/Oct/2026:13:55:36 -0700] \"GET /account HTTP/1.1\" 200 10 \"-\" \"{CHROME}\""
        );
        let parsed = parse_access(line.as_bytes(), AccessFormat::Combined).unwrap();
        assert_eq!(parsed.user, Some(user.as_bytes()));
        let row = access(&mut e, &line).kept();
        for needle in [user, ident, "alice", "bob", "carol", "3f2a9c1e"] {
            if needle != "-" {
                assert!(!row.debug.contains(needle), "{needle}: {}", row.debug);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// access: user agent, key id, truncation
// ---------------------------------------------------------------------------------------------

#[test]
fn user_agent_families_come_from_closed_lists() {
    let mut e = dev_engine();
    let row = access(&mut e, &with_client("203.0.113.9")).kept();
    assert_eq!(
        (
            row.browser_family.as_str(),
            row.os_family.as_str(),
            row.device_class.as_str()
        ),
        ("Chrome", "Windows", "desktop")
    );
    for ua in [
        CHROME,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.4.0",
        "MyApp/1.0 (alice@example.com; device 3f2a9c1e-1234-4abc-8def-0123456789ab)",
        "Mozilla/5.0 (Linux; Android 14; alice@example.com) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; 3f2a9c1e-1234-4abc-8def-0123456789ab) Firefox/121.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 token=eyJhbGciOiJIUzI1NiJ9",
        "\u{1F600} totally custom agent 203.0.113.50",
        "-",
        "",
    ] {
        let line = combined("203.0.113.9", "-", "GET / HTTP/1.1", "-", ua);
        let row = access(&mut e, &line).kept();
        assert!(
            BROWSER_FAMILIES.contains(&row.browser_family.as_str()),
            "{ua}: {row:?}"
        );
        assert!(
            OS_FAMILIES.contains(&row.os_family.as_str()),
            "{ua}: {row:?}"
        );
        assert!(
            DEVICE_CLASSES.contains(&row.device_class.as_str()),
            "{ua}: {row:?}"
        );
        for needle in [
            "alice",
            "example.com",
            "3f2a9c1e",
            "eyJhbGci",
            "203.0.113.50",
            "MyApp",
            "custom",
            "Mozilla",
        ] {
            assert!(
                !row.debug.contains(needle),
                "{needle} from {ua}: {}",
                row.debug
            );
        }
    }
}

#[test]
fn key_id_is_the_development_key_id() {
    let mut e = dev_engine();
    assert_eq!(e.key_id(), "dev-insecure");
    assert!(e.is_dev_key());
    let row = access(&mut e, &with_client("203.0.113.9")).kept();
    assert_eq!(row.key_id, "dev-insecure");
    let s = session(&mut e, &full_consent()).kept();
    assert_eq!(s.key_id, "dev-insecure");
}

#[test]
fn custom_truncation_prefixes_are_honoured() {
    let mut e = engine_with(Truncation {
        ipv4_prefix: 16,
        ipv6_prefix: 32,
    });
    let v4 = access(&mut e, &with_client("203.0.113.77")).kept();
    assert_eq!(v4.ip_network, "203.0.0.0/16");
    let v6 = access(&mut e, &with_client("2001:db8:abcd:12::1")).kept();
    assert_eq!(v6.ip_network, "2001:db8::/32");
    let mapped = access(&mut e, &with_client("::ffff:203.0.113.77")).kept();
    assert_eq!(mapped.ip_network, "203.0.0.0/16");
    // The pseudonym does not depend on the truncation.
    let mut d = dev_engine();
    assert_eq!(
        access(&mut d, &with_client("203.0.113.77"))
            .kept()
            .ip_pseudonym,
        v4.ip_pseudonym
    );

    let mut e = engine_with(Truncation {
        ipv4_prefix: 32,
        ipv6_prefix: 64,
    });
    assert_eq!(
        access(&mut e, &with_client("203.0.113.77"))
            .kept()
            .ip_network,
        "203.0.113.77/32"
    );
    assert_eq!(
        access(&mut e, &with_client("2001:db8:abcd:12::1"))
            .kept()
            .ip_network,
        "2001:db8:abcd:12::/64"
    );

    let mut e = engine_with(Truncation {
        ipv4_prefix: 8,
        ipv6_prefix: 0,
    });
    assert_eq!(
        access(&mut e, &with_client("203.0.113.77"))
            .kept()
            .ip_network,
        "203.0.0.0/8"
    );
    assert_eq!(
        access(&mut e, &with_client("2001:db8:abcd:12::1"))
            .kept()
            .ip_network,
        "::/0"
    );
}

#[test]
fn common_format_lines_work_too() {
    let mut e = dev_engine();
    let row = access_as(
        &mut e,
        b"2001:db8::7 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?x=1 HTTP/1.0\" 200 2326",
        AccessFormat::Common,
    )
    .kept();
    assert_eq!(row.ip_network, "2001:db8::/48");
    assert_eq!(row.path.as_deref(), Some("/apache_pb.gif"));
    assert_eq!(row.referrer_host, None);
    assert_eq!(
        (
            row.browser_family.as_str(),
            row.os_family.as_str(),
            row.device_class.as_str()
        ),
        ("Other", "Other", "other")
    );
    assert!(!row.debug.contains("frank"));
}

// ---------------------------------------------------------------------------------------------
// session: consent and proxy rules
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_or_false_statistics_consent_is_dropped() {
    let mut e = dev_engine();
    let mut no_consent = full_consent();
    no_consent.as_object_mut().unwrap().remove("consent");
    let mut null_consent = full_consent();
    set(&mut null_consent, "consent", Value::Null);
    let mut empty_consent = full_consent();
    set(&mut empty_consent, "consent", json!({}));
    let mut null_stats = full_consent();
    set(
        &mut null_stats,
        "consent",
        json!({"statistics": null, "marketing": true, "preferences": true}),
    );
    for ev in [
        no_consent,
        null_consent,
        empty_consent,
        null_stats,
        event(true, false, true),
        event(false, false, false),
    ] {
        assert_eq!(
            session(&mut e, &ev),
            Got::Drop(DropReason::NoStatisticsConsent),
            "{ev}"
        );
    }
    // Statistics consent alone is enough.
    let row = session(&mut e, &event(false, true, false)).kept();
    assert_eq!(row.consent, (false, true, false));
}

#[test]
fn proxy_event_names_are_dropped() {
    let mut e = dev_engine();
    for name in [
        "proxy_request",
        "proxy",
        "Proxy_Response",
        "tunnel_open",
        "TUNNEL",
        "CONNECT_attempt",
        "connect",
        "Connection_lost",
        "browse",
        "BROWSE",
    ] {
        let mut ev = full_consent();
        set(&mut ev, "event", json!(name));
        assert_eq!(
            session(&mut e, &ev),
            Got::Drop(DropReason::ProxyTraffic),
            "{name}"
        );
    }
    // Names that merely contain those words are ordinary events.
    for name in ["page_view", "browser_update", "reconnect", "my_proxy"] {
        let mut ev = full_consent();
        set(&mut ev, "event", json!(name));
        assert_eq!(session(&mut e, &ev).kept().event, name);
    }
}

#[test]
fn destination_fields_drop_the_event_even_with_full_consent() {
    let mut e = dev_engine();
    for key in [
        "dest_host",
        "url",
        "Target",
        "upstream_addr",
        "proxy_x",
        "sni",
        "HOST",
        "domain",
        "dest",
        "server_name",
        "remote_host",
    ] {
        let mut ev = full_consent();
        set(&mut ev, key, json!("secret-destination.example:443"));
        assert_eq!(
            session(&mut e, &ev),
            Got::Drop(DropReason::ProxyTraffic),
            "{key}"
        );
        // Whatever the value's type.
        let mut ev = full_consent();
        set(&mut ev, key, json!({"h": "x", "p": 443}));
        assert_eq!(
            session(&mut e, &ev),
            Got::Drop(DropReason::ProxyTraffic),
            "{key}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// session: marketing, locale, unknown fields
// ---------------------------------------------------------------------------------------------

#[test]
fn marketing_fields_need_marketing_consent() {
    let mut e = dev_engine();
    let without = session(&mut e, &event(true, true, false)).kept();
    assert_eq!(without.marketing, std::array::from_fn(|_| None));
    assert_eq!(without.consent, (true, true, false));
    for v in [
        "newsletter",
        "winter_sale",
        "banner",
        "Cj0KCQiA-token_123",
        "IwAR3xYz-abc_987",
        "5e1f0c9a2b3d4e5f",
    ] {
        assert!(!without.debug.contains(v), "{v}: {}", without.debug);
    }

    let with = session(&mut e, &event(true, true, true)).kept();
    assert_eq!(with.consent, (true, true, true));
    let expected = [
        "newsletter",
        "email",
        "winter_sale",
        "analytics",
        "banner",
        "Cj0KCQiA-token_123",
        "IwAR3xYz-abc_987",
        "5e1f0c9a2b3d4e5f",
    ];
    // The JSON keys are the column names, in the order of `SessionRow::marketing`.
    for (i, key) in logveil_model::schema::MARKETING_FIELDS.iter().enumerate() {
        assert_eq!(with.marketing[i].as_deref(), Some(expected[i]), "{key}");
    }
}

/// Field-level rule counters: each kept event counts once per rule it triggered.
#[test]
fn rule_counters_count_field_level_applications() {
    use logveil_model::Rule;
    let mut e = dev_engine();
    // No marketing and no preferences consent: marketing fields and locale are gated.
    session(&mut e, &event(false, true, false)).kept();
    // Full consent, and a page with a query.
    let mut ev = event(true, true, true);
    set(&mut ev, "page", json!("/pricing?plan=pro"));
    session(&mut e, &ev).kept();
    // No statistics consent: dropped (counted by the caller, not here).
    assert_eq!(
        session(&mut e, &event(true, false, true)),
        Got::Drop(DropReason::NoStatisticsConsent)
    );
    let r = e.take_rule_counts();
    assert_eq!(r.get(Rule::ConsentMarketing), 1);
    assert_eq!(r.get(Rule::ConsentPreferences), 1);
    for rule in [
        Rule::PseudonymiseSession,
        Rule::PseudonymiseDevice,
        Rule::PseudonymiseAccount,
        Rule::PseudonymiseIp,
        Rule::TruncateIp,
        Rule::ReferrerHost,
    ] {
        assert_eq!(r.get(rule), 2, "{rule:?}");
    }
    assert_eq!(r.get(Rule::StripQuery), 1);
    assert_eq!(
        r.get(Rule::ConsentStatistics),
        0,
        "drops are the caller's to count"
    );
    assert_eq!(
        e.take_rule_counts(),
        logveil_model::RuleCounts::default(),
        "taken"
    );
}

#[test]
fn utm_values_are_scrubbed() {
    let mut e = dev_engine();
    let mut ev = full_consent();
    let planted = [
        ("utm_source", "alice@example.com"),
        ("utm_medium", "https://evil.example/path?user=bob"),
        ("utm_campaign", "spring 192.0.2.44 promo"),
        ("utm_term", "u 3f2a9c1e-1234-4abc-8def-0123456789ab"),
        ("utm_content", "ref alice%40example.com x"),
    ];
    for (k, v) in planted {
        set(&mut ev, k, json!(v));
    }
    let row = session(&mut e, &ev).kept();
    for needle in [
        "alice",
        "example.com",
        "evil.example",
        "bob",
        "192.0.2.44",
        "3f2a9c1e",
        "%40",
        "@",
    ] {
        assert!(!row.debug.contains(needle), "{needle}: {}", row.debug);
    }
    for v in row.marketing[..5].iter().flatten() {
        assert!(!v.contains("://") && !v.contains('?'), "{v}");
    }
    // Harmless words survive the scrubbing.
    assert!(
        row.marketing[2]
            .as_deref()
            .is_some_and(|c| c.contains("spring") && c.contains("promo")),
        "{:?}",
        row.marketing[2]
    );
}

#[test]
fn click_ids_are_kept_only_when_token_shaped() {
    let mut e = dev_engine();
    for (v, kept) in [
        ("Cj0KCQiA-token_123", true),
        ("abc", true),
        ("alice@example.com", false),
        ("https://x.example/?gclid=1", false),
        ("has space", false),
        ("192.0.2.1", false),
        ("tok.en", false),
        (&*"a".repeat(257), false),
    ] {
        let mut ev = full_consent();
        for k in ["gclid", "fbclid", "msclkid"] {
            set(&mut ev, k, json!(v));
        }
        let row = session(&mut e, &ev).kept();
        for i in 5..8 {
            assert_eq!(row.marketing[i].as_deref(), kept.then_some(v), "{v}");
        }
        if !kept {
            assert!(!row.debug.contains(v), "{v}: {}", row.debug);
        }
    }
}

#[test]
fn locale_needs_preferences_consent() {
    let mut e = dev_engine();
    let with = session(&mut e, &event(true, true, false)).kept();
    assert_eq!(with.locale.as_deref(), Some("de-DE"));
    let without = session(&mut e, &event(false, true, true)).kept();
    assert_eq!(without.locale, None);
    assert!(!without.debug.contains("de-DE"), "{}", without.debug);
    // A locale that is not a short token is not kept even with consent.
    let mut ev = event(true, true, false);
    set(&mut ev, "locale", json!("de-DE; alice@example.com"));
    let row = session(&mut e, &ev).kept();
    assert_eq!(row.locale, None);
    assert!(!row.debug.contains("alice"));
}

#[test]
fn unknown_fields_appear_nowhere_in_the_row() {
    let mut e = dev_engine();
    let mut ev = full_consent();
    set(&mut ev, "email", json!("unknown-canary-alice@example.com"));
    set(&mut ev, "phone", json!("+49-30-1234-CANARY"));
    set(
        &mut ev,
        "nested_canary_key",
        json!({"deep": ["NESTEDCANARY", 1, true]}),
    );
    set(&mut ev, "Event", json!("SHADOWCANARY"));
    set(&mut ev, "numbers", json!(987654321012_u64));
    let row = session(&mut e, &ev).kept();
    assert_eq!(row.event, "page_view");
    for needle in [
        "canary",
        "CANARY",
        "alice",
        "987654321012",
        "nested",
        "phone",
        "SHADOW",
    ] {
        assert!(!row.debug.contains(needle), "{needle}: {}", row.debug);
    }
}

// ---------------------------------------------------------------------------------------------
// session: identifiers, ip, event names, page
// ---------------------------------------------------------------------------------------------

#[test]
fn id_pseudonyms_do_not_link_across_kinds() {
    let mut e = dev_engine();
    let mut ev = full_consent();
    let same = "3f2a9c1e-1234-4abc-8def-0123456789ab";
    for k in ["session_id", "device_id", "account_id"] {
        set(&mut ev, k, json!(same));
    }
    let row = session(&mut e, &ev).kept();
    let s = row.session_pseudonym.clone().unwrap();
    let d = row.device_pseudonym.clone().unwrap();
    let a = row.account_pseudonym.clone().unwrap();
    for p in [&s, &d, &a] {
        assert!(is_pseudonym(p), "{p}");
    }
    assert!(s != d && d != a && s != a, "{s} {d} {a}");
    assert!(!row.debug.contains(same));
    assert!(!row.debug.contains("3f2a9c1e"));
    // Stable for the same value and kind.
    let again = session(&mut e, &ev).kept();
    assert_eq!(again.device_pseudonym, row.device_pseudonym);
    // Empty ids are absent, not the pseudonym of "".
    let mut ev = full_consent();
    set(&mut ev, "session_id", json!(""));
    set(&mut ev, "device_id", Value::Null);
    ev.as_object_mut().unwrap().remove("account_id");
    let row = session(&mut e, &ev).kept();
    assert_eq!(
        (
            row.session_pseudonym,
            row.device_pseudonym,
            row.account_pseudonym
        ),
        (None, None, None)
    );
}

#[test]
fn session_ip_is_pseudonymised_like_access() {
    let mut e = dev_engine();
    let row = session(&mut e, &full_consent()).kept();
    assert_eq!(row.ip_network.as_deref(), Some("203.0.113.0/24"));
    let a = access(&mut e, &with_client("203.0.113.77")).kept();
    assert_eq!(row.ip_pseudonym.as_deref(), Some(a.ip_pseudonym.as_str()));
    assert!(!row.debug.contains("203.0.113.77"));
    let mut ev = full_consent();
    set(&mut ev, "ip", json!("2001:db8:abcd:12::1"));
    let row = session(&mut e, &ev).kept();
    assert_eq!(row.ip_network.as_deref(), Some("2001:db8:abcd::/48"));
}

#[test]
fn invalid_ip_is_dropped_from_the_row_but_the_event_is_kept() {
    let mut e = dev_engine();
    for ip in [
        json!("not-an-ip"),
        json!("fe80::1%eth0"),
        json!("192.0.2.1:443"),
        json!("[2001:db8::1]"),
        json!(""),
        Value::Null,
    ] {
        let mut ev = full_consent();
        set(&mut ev, "ip", ip.clone());
        let row = session(&mut e, &ev).kept();
        assert_eq!((&row.ip_pseudonym, &row.ip_network), (&None, &None), "{ip}");
        assert!(!row.debug.contains("192.0.2.1"));
        assert!(!row.debug.contains("fe80"));
        assert!(!row.debug.contains("not-an-ip"));
    }
}

#[test]
fn event_or_app_that_is_not_a_token_is_quarantined() {
    let mut e = dev_engine();
    for name in [
        "page view",
        "click\"x",
        "it's",
        "a<b>",
        "x@example.com",
        "/path",
        "",
        &"e".repeat(65),
    ] {
        let mut ev = full_consent();
        set(&mut ev, "event", json!(name));
        assert_eq!(
            session(&mut e, &ev),
            Got::Quarantine(QuarantineReason::Malformed),
            "{name}"
        );
    }
    for app in ["my app", "web\"", "", &"a".repeat(33)] {
        let mut ev = full_consent();
        set(&mut ev, "app", json!(app));
        assert_eq!(
            session(&mut e, &ev),
            Got::Quarantine(QuarantineReason::Malformed),
            "{app}"
        );
    }
    // Tokens with the allowed punctuation are fine.
    let mut ev = full_consent();
    set(&mut ev, "event", json!("checkout.step-2:done+ok"));
    assert_eq!(session(&mut e, &ev).kept().event, "checkout.step-2:done+ok");
}

#[test]
fn page_and_referrer_are_reduced() {
    let mut e = dev_engine();
    let mut ev = full_consent();
    set(
        &mut ev,
        "page",
        json!("/pricing?plan=pro&email=alice@example.com#faq"),
    );
    set(
        &mut ev,
        "referrer",
        json!("https://news.example.com/story/42?utm_source=bob"),
    );
    let row = session(&mut e, &ev).kept();
    assert_eq!(row.page.as_deref(), Some("/pricing"));
    assert_eq!(row.referrer_host.as_deref(), Some("https://example.com"));
    for needle in ["plan=pro", "alice", "faq", "story", "bob"] {
        assert!(!row.debug.contains(needle), "{needle}: {}", row.debug);
    }
    let mut ev = full_consent();
    set(
        &mut ev,
        "page",
        json!("/devices/3f2a9c1e-1234-4abc-8def-0123456789ab"),
    );
    set(&mut ev, "referrer", json!("http://192.0.2.5/"));
    let row = session(&mut e, &ev).kept();
    assert_eq!(row.page.as_deref(), Some("/devices/:uuid"));
    assert_eq!(row.referrer_host, None);
    // A page that is not a path is absent.
    let mut ev = full_consent();
    set(&mut ev, "page", json!("https://x.example/a"));
    assert_eq!(session(&mut e, &ev).kept().page, None);
}

#[test]
fn app_version_is_kept_only_as_a_short_token() {
    let mut e = dev_engine();
    let row = session(&mut e, &full_consent()).kept();
    assert_eq!(row.app.as_str(), "web");
    assert!(row.debug.contains("1.2.3"));
    let mut ev = full_consent();
    set(&mut ev, "app_version", json!("1.2.3 (alice@example.com)"));
    let row = session(&mut e, &ev).kept();
    assert!(!row.debug.contains("alice"), "{}", row.debug);
}

#[test]
fn identifiers_in_token_fields_never_reach_the_row() {
    let mut e = dev_engine();
    for v in [
        "192.0.2.44",
        "2001:db8::44",
        "3f2a9c1e-1234-4abc-8def-0123456789ab",
        "a@b.example",
    ] {
        let mut ev = event(true, true, false);
        set(&mut ev, "app_version", json!(v));
        set(&mut ev, "locale", json!(v));
        let row = session(&mut e, &ev).kept();
        assert!(!row.debug.contains(v), "{v}: {}", row.debug);
        assert_eq!(row.locale, None, "{v}");
        // As the event name, it is not a name: quarantined, never stored as one.
        let mut ev = full_consent();
        set(&mut ev, "event", json!(v));
        assert!(
            matches!(session(&mut e, &ev), Got::Quarantine(_)),
            "{v} accepted as an event name"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Property: planted identifiers never reach a kept row
// ---------------------------------------------------------------------------------------------

/// IPv4 addresses, and IPv6 addresses with runs of zero groups (so `::` compression and
/// IPv4-mapped forms occur).
fn ip_strategy() -> impl Strategy<Value = std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let group = prop_oneof![Just(0u16), Just(1u16), any::<u16>()];
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        proptest::array::uniform8(group).prop_map(|g| IpAddr::V6(Ipv6Addr::from(g))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        any::<u32>().prop_map(|v| IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped())),
    ]
}

/// Emails whose local part and domain use letters g-z only (never hex, so they cannot occur by
/// chance inside a pseudonym) plus digits after the letters.
fn email_strategy() -> impl Strategy<Value = (String, String)> {
    (
        "[g-z]{4,8}[0-9]{2,4}",
        "[g-z]{3,8}",
        prop_oneof![Just("com"), Just("net"), Just("org"), Just("io")],
    )
        .prop_map(|(local, domain, tld)| (format!("{local}@{domain}.{tld}"), local))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn planted_ips_and_emails_never_reach_a_kept_row(
        ip in ip_strategy(),
        (email, local) in email_strategy(),
        variant in 0usize..4,
    ) {
        let ip_text = ip.to_string();
        let pct_email = email.replace('@', "%40");
        let ref_ip_host = match ip {
            std::net::IpAddr::V4(_) => ip_text.clone(),
            std::net::IpAddr::V6(_) => format!("[{ip_text}]"),
        };
        let path = match variant {
            0 => format!("/ip/{ip_text}/u/{email}?ip={ip_text}&e={email}"),
            1 => format!("/u/{pct_email}/x#{email}"),
            2 => format!("/a/{email}/b/{ip_text}"),
            _ => format!("/{ip_text}?{pct_email}"),
        };
        let referrer = match variant {
            0 => format!("https://{ref_ip_host}/x"),
            1 => format!("https://ref.example/{email}?ip={ip_text}"),
            2 => format!("http://{local}:pw@ref.example/{ip_text}"),
            _ => format!("https://ref.example/?u={pct_email}"),
        };
        let ua = format!("Mozilla/5.0 ({ip_text}; {email}) Chrome/120.0.0.0 Safari/537.36");
        let line = combined(&ip_text, &email, &format!("GET {path} HTTP/1.1"), &referrer, &ua);
        let mut e = dev_engine();
        let row = match access(&mut e, &line) {
            Got::Keep(r) => r,
            other => return Err(TestCaseError::fail(format!("{line}: {other:?}"))),
        };
        // The network may legitimately equal the address written with a zero host part
        // (203.0.113.0 → 203.0.113.0/24); look everywhere else.
        let rest = row.debug.replace(&row.ip_network, "<network>");
        let mut needles = vec![ip_text.clone(), email.clone(), pct_email, local.clone()];
        if let std::net::IpAddr::V6(v6) = ip
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            needles.push(v4.to_string());
        }
        for n in &needles {
            prop_assert!(!rest.contains(n.as_str()), "{n:?} leaked from {line}\ninto {rest}");
        }
        prop_assert!(is_pseudonym(&row.ip_pseudonym));
    }
}

/// A device id as apps write it: a UUID, 16 hex digits, or an opaque token.
fn device_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "[0-9a-f]{16}",
        "dev_[g-z][2-9][g-z][2-9][g-z][2-9][g-z][2-9][g-z]{2,8}",
    ]
}

/// A secret token: random-looking letters and digits.
fn token_strategy() -> impl Strategy<Value = String> {
    "[g-zG-Z][2-9][g-zG-Z][2-9][g-zG-Z][2-9][g-zG-Z][2-9][g-zG-Z0-9]{4,20}"
}

/// Every 8-byte window of `needle` (12 for hex-only values, whose shorter windows can occur in
/// a pseudonym by chance) that occurs in `hay`.
fn leaked_window<'a>(hay: &str, needle: &'a str) -> Option<&'a str> {
    let w = if needle.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        12
    } else {
        8
    };
    needle
        .as_bytes()
        .windows(w)
        .map(|x| std::str::from_utf8(x).unwrap())
        .find(|x| hay.contains(x))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For random session events with identifiers, emails and tokens planted in every field
    /// (ids in paths, tokens and URL-encoded emails in queries, identifiers in marketing
    /// values, unknown nested fields), no whole address and no 8-character piece of a device
    /// id, email or token reaches the kept row.
    #[test]
    fn planted_ids_and_tokens_never_reach_a_session_row(
        ip in ip_strategy(),
        (email, _local) in email_strategy(),
        device in device_strategy(),
        session_id in device_strategy(),
        token in token_strategy(),
        variant in 0usize..3,
    ) {
        let ip_text = ip.to_string();
        let pct_email = email.replace('@', "%40");
        let page = match variant {
            0 => format!("/devices/{device}/keys?token={token}&e={pct_email}"),
            1 => format!("/u/{pct_email}/s/{token}"),
            _ => format!("/d/{device}#{email}"),
        };
        let ev = json!({
            "ts": "2026-11-27T10:00:00Z",
            "event": "page_view",
            "app": "web",
            "session_id": session_id,
            "device_id": device,
            "account_id": email,
            "ip": ip_text,
            "page": page,
            "referrer": format!("https://{token}.example.com/p?u={pct_email}&d={device}"),
            "user_agent": format!("ProxyApp/3.2.1 ({device}; {email})"),
            "utm_source": format!("{email} {ip_text}"),
            "utm_campaign": format!("spring Bearer {token}"),
            "utm_content": device.clone(),
            "gclid": token.clone(),
            "locale": "en-US",
            "app_version": token.clone(),
            "consent": {"necessary": true, "preferences": true, "statistics": true, "marketing": true},
            "extra": {"deep": {"password": token.clone(), "ip": ip_text.clone()}},
        });
        let mut e = dev_engine();
        let row = match session(&mut e, &ev) {
            Got::Keep(r) => r,
            other => return Err(TestCaseError::fail(format!("{ev}: {other:?}"))),
        };
        let rest = match &row.ip_network {
            Some(n) => row.debug.replace(n.as_str(), "<network>"),
            None => row.debug.clone(),
        };
        prop_assert!(!rest.contains(&ip_text), "{ip_text} leaked into {rest}");
        // gclid keeps token-shaped click ids by design (marketing consent given): it is the
        // one field where the planted token may appear.
        let rest = rest.replace(&token, "<gclid>");
        for n in [&device, &session_id, &email, &token] {
            prop_assert!(leaked_window(&rest, n).is_none(), "{n:?} leaked into {rest}");
        }
    }
}

/// Each event is pseudonymised with the key of its epoch; after the old epoch's key is shredded
/// its events are dropped (never pseudonymised under another key), and nothing in the ring can
/// recompute the old pseudonyms any more.
#[test]
fn key_epochs_and_shredding() {
    // 2026-11-01T00:00:00Z and 2026-12-01T00:00:00Z.
    const NOV: i64 = 1_793_491_200_000_000;
    const DEC: i64 = NOV + 30 * 86_400_000_000;
    let line = |day: &str| {
        format!(
            r#"198.51.100.23 - - [{day}:10:00:00 +0000] "GET /dashboard HTTP/1.1" 200 5 "-" "curl/8""#
        )
    };
    let (nov, dec) = (line("15/Nov/2026"), line("02/Dec/2026"));
    for algorithm in [Algorithm::Blake3, Algorithm::HmacSha256] {
        let mut ring = KeyRing::new(Key::generate(algorithm, None, String::new()).unwrap());
        ring.rotate(
            Key::generate(algorithm, None, String::new()).unwrap(),
            DEC,
            NOV,
        )
        .unwrap();
        let (k_nov, k_dec) = (
            ring.keys()[0].id().to_string(),
            ring.keys()[1].id().to_string(),
        );
        let mut e = Engine::new(&ring, EngineConfig::default());
        let a = access(&mut e, &nov).kept();
        let b = access(&mut e, &dec).kept();
        // Interleaved again: the per-epoch caches must not mix keys.
        let a2 = access(&mut e, &nov).kept();
        assert_eq!(
            (a.key_id.as_str(), b.key_id.as_str()),
            (k_nov.as_str(), k_dec.as_str())
        );
        assert_ne!(a.ip_pseudonym, b.ip_pseudonym, "{algorithm:?}");
        assert_eq!(a.ip_pseudonym, a2.ip_pseudonym);
        assert_eq!(a.ip_network, b.ip_network);

        ring.shred(DEC, DEC + 3_600_000_000, "2026-12-01T01:00:00Z")
            .unwrap();
        let mut e = Engine::new(&ring, EngineConfig::default());
        assert_eq!(access(&mut e, &nov), Got::Drop(DropReason::KeyShredded));
        assert_eq!(access(&mut e, &dec).kept().ip_pseudonym, b.ip_pseudonym);
        // No key left in the ring reproduces November's pseudonym.
        for k in ring.keys() {
            if let Some(p) = logveil_privacy::pseudonym::Pseudonymiser::try_new(k) {
                let ip = "198.51.100.23".parse().unwrap();
                assert_ne!(p.ip_pseudonym(ip).as_str(), a.ip_pseudonym);
            }
        }
    }
}

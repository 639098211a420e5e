//! Property tests: no input makes either parser panic, and combined lines built from known
//! parts parse back to exactly those parts.

use std::net::{Ipv4Addr, Ipv6Addr};

use logveil_model::time::{MICROS_PER_SECOND, days_from_civil};
use logveil_parse::{AccessFormat, Request, parse_access, parse_session};
use proptest::prelude::*;

const VALID: &[u8] = b"203.0.113.7 - alice [10/Oct/2000:13:55:36 -0700] \"GET /a?b=c HTTP/1.1\" 200 2326 \"http://r.example/\" \"Mozilla/5.0 \\\"x\\\"\" \"198.51.100.1\"";
const VALID_JSON: &[u8] = br#"{"ts":"2026-01-01T00:00:00Z","event":"click","app":"web","ip":"203.0.113.7","consent":{"statistics":true},"x":[1,{"y":null}],"page":"/a\"b"}"#;

/// Bytes that are valid anywhere inside a quoted field once `"` and `\` are escaped Apache-
/// style (`\"`, `\\`); returns the field content as it appears in the line.
fn escape_quoted(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn mutate(base: &[u8], edits: &[(usize, u8, bool)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(at, byte, insert) in edits {
        let at = at % (v.len() + 1);
        if insert || at == v.len() {
            v.insert(at, byte);
        } else {
            v[at] = byte;
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_access(&line, AccessFormat::Combined);
        let _ = parse_access(&line, AccessFormat::Common);
        let _ = parse_session(&line);
    }

    #[test]
    fn mutated_valid_lines_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..6),
        cut in any::<usize>(),
    ) {
        for base in [VALID, VALID_JSON] {
            let line = mutate(base, &edits);
            let line = &line[..cut % (line.len() + 1)];
            for fmt in [AccessFormat::Combined, AccessFormat::Common] {
                if let Err(e) = parse_access(line, fmt) {
                    prop_assert!(e.column <= line.len());
                }
            }
            if let Err(e) = parse_session(line) {
                prop_assert!(e.column <= line.len());
            }
        }
    }

    #[test]
    fn json_shaped_text_never_panics(line in r#"[{}\[\]":,0-9a-z_ .\\\-+eEtrufalsn]{0,120}"#) {
        let _ = parse_session(line.as_bytes());
    }
}

#[derive(Debug, Clone)]
struct Parts {
    client: String,
    ident: Option<String>,
    user: Option<String>,
    time: String,
    ts_micros: i64,
    request: ReqParts,
    status: Option<u16>,
    bytes: Option<u64>,
    referrer: Option<Vec<u8>>,
    user_agent: Option<Vec<u8>>,
    extra: Vec<String>,
    seps: [usize; 9],
}

#[derive(Debug, Clone)]
enum ReqParts {
    Missing(&'static str),
    Parsed {
        method: String,
        target: Vec<u8>,
        protocol: Option<&'static str>,
    },
    Raw(Vec<u8>),
}

fn client() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
        "[a-z][a-z0-9.-]{0,20}",
    ]
}

fn opt_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), "[A-Za-z0-9._@]{1,16}".prop_map(Some)]
}

/// A CLF time and its instant, computed independently of the parser.
fn time() -> impl Strategy<Value = (String, i64)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    (
        1970i64..=2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        any::<bool>(),
        0u32..=14,
        prop::sample::select(vec![0u32, 30, 45]),
    )
        .prop_map(|(y, mo, d, h, mi, s, neg, oh, om)| {
            let text = format!(
                "{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} {}{oh:02}{om:02}",
                MONTHS[mo as usize - 1],
                if neg { '-' } else { '+' }
            );
            let local = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
            let off = i64::from(oh * 3600 + om * 60);
            let utc = if neg { local + off } else { local - off };
            (text, utc * MICROS_PER_SECOND)
        })
        // 1 January 1970 with a positive offset is before the epoch, which the parser refuses
        // (`plausible_time`); that refusal has its own unit test.
        .prop_filter("instants before 1970 are refused", |(_, ts)| *ts >= 0)
}

fn field_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..60)
        .prop_filter("'-' means absent", |v| v.as_slice() != b"-")
}

fn request() -> impl Strategy<Value = ReqParts> {
    let protocol = prop::sample::select(vec![
        "HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/2", "HTTP/3", "HTTP/3.0",
    ]);
    // Targets: any bytes but space, quote and backslash.
    let target_byte = any::<u8>().prop_filter("no separators", |b| !b" \"\\".contains(b));
    prop_oneof![
        prop::sample::select(vec!["-", ""]).prop_map(ReqParts::Missing),
        (
            "[A-Za-z]{1,10}",
            proptest::collection::vec(target_byte.clone(), 1..50),
            proptest::option::of(protocol),
        )
            .prop_map(|(method, mut target, protocol)| {
                if protocol.is_none() {
                    target.insert(0, b'/');
                }
                ReqParts::Parsed {
                    method,
                    target,
                    protocol,
                }
            }),
        // Garbage that starts with a non-letter, as in TLS handshakes on a plain-HTTP port.
        (
            prop::sample::select(vec![b'\\', b'\x16', b']', b'0', b'\x05', b'\xff']),
            proptest::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(first, rest)| {
                let mut raw = vec![first];
                raw.extend(rest);
                ReqParts::Raw(raw)
            }),
    ]
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        (client(), opt_name(), opt_name(), time(), request()),
        (
            proptest::option::of(100u16..=999),
            proptest::option::of(any::<u64>()),
            proptest::option::of(field_bytes()),
            proptest::option::of(field_bytes()),
            proptest::collection::vec("\"[^\"\\\\]{0,10}\"|[a-z0-9.\\[\\]-]{1,8}", 0..3),
            any::<[usize; 9]>(),
        ),
    )
        .prop_map(
            |(
                (client, ident, user, (time, ts_micros), request),
                (status, bytes, referrer, user_agent, extra, seps),
            )| Parts {
                client,
                ident,
                user,
                time,
                ts_micros,
                request,
                status,
                bytes,
                referrer,
                user_agent,
                extra,
                seps: seps.map(|s| 1 + s % 3),
            },
        )
}

fn build(p: &Parts) -> Vec<u8> {
    fn opt(v: &Option<String>) -> &[u8] {
        v.as_deref().map_or(b"-", str::as_bytes)
    }
    fn num<T: ToString>(v: Option<T>) -> Vec<u8> {
        v.map_or_else(|| b"-".to_vec(), |n| n.to_string().into_bytes())
    }
    fn quoted(content: &[u8]) -> Vec<u8> {
        [&b"\""[..], content, b"\""].concat()
    }
    let request = match &p.request {
        ReqParts::Missing(s) => s.as_bytes().to_vec(),
        ReqParts::Parsed {
            method,
            target,
            protocol,
        } => {
            let mut r = [method.as_bytes(), b" ", target].concat();
            if let Some(proto) = protocol {
                r.extend_from_slice(b" ");
                r.extend_from_slice(proto.as_bytes());
            }
            r
        }
        ReqParts::Raw(raw) => escape_quoted(raw),
    };
    let fields: Vec<Vec<u8>> = vec![
        p.client.clone().into_bytes(),
        opt(&p.ident).to_vec(),
        opt(&p.user).to_vec(),
        format!("[{}]", p.time).into_bytes(),
        quoted(&request),
        num(p.status),
        num(p.bytes),
        p.referrer
            .as_deref()
            .map_or(b"\"-\"".to_vec(), |r| quoted(&escape_quoted(r))),
        p.user_agent
            .as_deref()
            .map_or(b"\"-\"".to_vec(), |r| quoted(&escape_quoted(r))),
    ];
    let mut line = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.extend(std::iter::repeat_n(b' ', p.seps[i]));
        }
        line.extend_from_slice(f);
    }
    for e in &p.extra {
        line.push(b' ');
        line.extend_from_slice(e.as_bytes());
    }
    line
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn combined_lines_round_trip(p in parts()) {
        let line = build(&p);
        let l = parse_access(&line, AccessFormat::Combined)
            .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&line))))?;
        prop_assert_eq!(l.client, p.client.as_bytes());
        prop_assert_eq!(l.ident, p.ident.as_deref().map(str::as_bytes));
        prop_assert_eq!(l.user, p.user.as_deref().map(str::as_bytes));
        prop_assert_eq!(l.ts_micros, p.ts_micros);
        match &p.request {
            ReqParts::Missing(_) => prop_assert_eq!(l.request, Request::Missing),
            ReqParts::Parsed { method, target, protocol } => prop_assert_eq!(
                l.request,
                Request::Parsed {
                    method: method.as_bytes(),
                    target,
                    protocol: protocol.map(str::as_bytes),
                }
            ),
            ReqParts::Raw(raw) => prop_assert_eq!(l.request, Request::Raw(&escape_quoted(raw))),
        }
        prop_assert_eq!(l.status, p.status);
        prop_assert_eq!(l.bytes_sent, p.bytes);
        let escaped = |v: &Option<Vec<u8>>| v.as_deref().map(escape_quoted);
        prop_assert_eq!(l.referrer.map(<[u8]>::to_vec), escaped(&p.referrer));
        prop_assert_eq!(l.user_agent.map(<[u8]>::to_vec), escaped(&p.user_agent));

        // The same line without the combined tail is a valid common line.
        if p.extra.is_empty() {
            let tail = line.len() - {
                let r = p.referrer.as_deref().map_or(3, |r| escape_quoted(r).len() + 2);
                let u = p.user_agent.as_deref().map_or(3, |u| escape_quoted(u).len() + 2);
                r + u + p.seps[7] + p.seps[8]
            };
            let c = parse_access(&line[..tail], AccessFormat::Common)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(c.request, l.request);
            prop_assert_eq!((c.referrer, c.user_agent), (None, None));
        }
    }

    /// Strings of any content survive the JSON round trip, borrowed or unescaped.
    #[test]
    fn session_strings_round_trip(ip in any::<String>(), page in any::<String>(), n in any::<u64>()) {
        let line = serde_json::json!({
            "ts": "2026-01-01T00:00:00Z", "event": "page_view", "app": "web",
            "ip": ip, "page": page, "duration_ms": n, "gclid": page,
        })
        .to_string();
        let e = parse_session(line.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(e.ip.as_deref(), Some(ip.as_str()));
        prop_assert_eq!(e.page.as_deref(), Some(page.as_str()));
        prop_assert_eq!(e.marketing[5].as_deref(), Some(page.as_str()));
        prop_assert_eq!(e.duration_ms, Some(n));
    }
}

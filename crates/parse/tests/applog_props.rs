//! Property tests of the application-log parser: logfmt printed from random pairs parses
//! back to the same pairs, no input makes either syntax panic, the JSON reader accepts
//! exactly what serde_json accepts, and JSON objects printed by serde_json map back to their
//! values.

use logveil_model::QuarantineReason;
use logveil_parse::applog::{AppFormat, AppMapping, AppParser};
use logveil_parse::logfmt::{self, LogfmtValue};
use proptest::prelude::*;
use serde_json::{Map, Value};

const VALID_JSON: &[u8] = br#"{"ts":"2026-01-01T00:00:00Z","msg":"a\"b\u00e9","client":{"ip":"203.0.113.7","port":1},"http.method":"GET","x":[1,{"y":null},-2.5e3,true],"status":200}"#;
const VALID_LOGFMT: &[u8] =
    br#"ts=2026-01-01T00:00:00Z level=info msg="a \"b\" c" ip=203.0.113.7 flag status=200 e="#;

fn mapping_with_keep() -> AppMapping {
    AppMapping {
        keep: vec!["x".into(), "client".into(), "a.b.c".into(), "msg".into()],
        ..AppMapping::default()
    }
}

/// Prints a logfmt value: bare when it can be, else quoted with JSON-style escapes.
fn print_value(v: &str, bare_if_possible: bool) -> String {
    let bare_ok = !v.is_empty()
        && !v.starts_with('"')
        && !v.chars().any(|c| c.is_ascii_whitespace() || c == '\u{b}');
    if bare_ok && bare_if_possible {
        return v.to_owned();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(String, Option<String>, bool)>> {
    proptest::collection::btree_map(
        "[a-zA-Z0-9_.@#/:+-]{1,10}",
        (
            proptest::option::weighted(0.9, any::<String>()),
            any::<bool>(),
        ),
        0..12,
    )
    .prop_map(|m| m.into_iter().map(|(k, (v, b))| (k, v, b)).collect())
}

/// Edits to a line: (position, byte, insert-or-replace).
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

/// Bytes that matter to JSON and logfmt syntax, to mutate valid lines with.
fn syntax_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(&b"{}[]\":,\\ =.-+0123456789eEtfnu\t\r\n\x00\x1f\x7f\xff\xc3\xa9"[..]),
        any::<u8>(),
    ]
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, bool)>> {
    proptest::collection::vec((any::<usize>(), syntax_byte(), any::<bool>()), 1..4)
}

fn check_never_panics(line: &[u8]) {
    for format in [AppFormat::Json, AppFormat::Logfmt] {
        for mapping in [AppMapping::default(), mapping_with_keep()] {
            let mut p = AppParser::new(mapping, format);
            if let Err(e) = p.parse(line) {
                assert!(e.column <= line.len(), "{e}");
            }
        }
    }
    for (_, v) in logfmt::pairs(line).flatten() {
        let _ = v.decode();
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[ -~]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Top-level objects: keys without dots (so that a name means one field), not `__ts`.
fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("[^.]{1,8}", arb_json(), 0..8).prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| k != "__ts")
            .collect::<Map<_, _>>()
    })
}

/// Every dotted path to a value inside `v` (objects only), with the value.
fn paths<'v>(prefix: &str, v: &'v Value, out: &mut Vec<(String, &'v Value)>) {
    if let Value::Object(m) = v {
        for (k, x) in m {
            let p = format!("{prefix}.{k}");
            out.push((p.clone(), x));
            paths(&p, x, out);
        }
    }
}

fn kept_equals(got: Option<&str>, want: &Value) -> bool {
    match (got, want) {
        (None, Value::Null) => true,
        (Some(g), Value::String(s)) => g == s,
        // Both through serde_json's parser (its default float parsing is not always
        // correctly rounded, so a printed float may not parse back to itself).
        (Some(g), w) => {
            let w: Value = serde_json::from_str(&w.to_string()).unwrap();
            serde_json::from_str::<Value>(g).is_ok_and(|g| g == w)
        }
        (None, _) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn logfmt_round_trips(pairs in pairs_strategy()) {
        let mut line = String::new();
        for (k, v, bare) in &pairs {
            line.push_str(k);
            if let Some(v) = v {
                line.push('=');
                line.push_str(&print_value(v, *bare));
            }
            line.push(' ');
        }
        let got: Vec<(String, Option<String>)> = logfmt::pairs(line.as_bytes())
            .map(|p| {
                let (k, v) = p.unwrap();
                let v = match v {
                    LogfmtValue::KeyOnly => None,
                    v => Some(v.decode().into_owned()),
                };
                (String::from_utf8(k.to_vec()).unwrap(), v)
            })
            .collect();
        let want: Vec<(String, Option<String>)> =
            pairs.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(&got, &want);

        // Through the mapping: every key kept, with its value.
        let keys: Vec<String> = pairs.iter().map(|(k, _, _)| k.clone()).collect();
        let mut p = AppParser::new(
            AppMapping { timestamp: vec!["__ts".into()], keep: keys, ..AppMapping::default() },
            AppFormat::Logfmt,
        );
        line.push_str("__ts=1700000000");
        let r = p.parse(line.as_bytes()).unwrap();
        prop_assert_eq!(r.ts_micros, 1_700_000_000_000_000);
        prop_assert_eq!(r.unmapped_fields, 0);
        for ((_, v, _), got) in pairs.iter().zip(&r.kept) {
            prop_assert_eq!(got.as_deref(), Some(v.as_deref().unwrap_or("true")));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_never_panics(&line);
    }

    #[test]
    fn syntax_noise_never_panics(line in proptest::collection::vec(syntax_byte(), 0..200)) {
        check_never_panics(&line);
    }

    #[test]
    fn mutated_lines_never_panic(e in edits()) {
        check_never_panics(&mutate(VALID_JSON, &e));
        check_never_panics(&mutate(VALID_LOGFMT, &e));
    }

    /// The JSON reader accepts exactly the objects serde_json accepts.
    #[test]
    fn json_acceptance_matches_serde_json(v in arb_object(), e in edits(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&Value::Object(v)).unwrap()
        } else {
            serde_json::to_string(&Value::Object(v)).unwrap()
        };
        let line = mutate(text.as_bytes(), &e);
        let serde_ok = serde_json::from_slice::<Value>(&line).is_ok_and(|v| v.is_object());
        let mut p = AppParser::new(AppMapping::default(), AppFormat::Json);
        let ours = p.parse(&line);
        let ours_ok = !matches!(&ours, Err(e) if e.reason == QuarantineReason::BadJson);
        prop_assert_eq!(ours_ok, serde_ok, "{:?}", String::from_utf8_lossy(&line));
    }

    /// Objects printed by serde_json map back: kept top-level fields and nested paths give
    /// the values (strings as text, the rest as JSON text), and the other fields are counted.
    #[test]
    fn json_objects_round_trip(
        obj in arb_object(),
        ts in 0u64..4_000_000_000,
        pretty in any::<bool>(),
        pick in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut full = obj.clone();
        full.insert("__ts".into(), Value::from(ts));
        let text = if pretty {
            serde_json::to_string_pretty(&Value::Object(full)).unwrap()
        } else {
            serde_json::to_string(&Value::Object(full)).unwrap()
        };
        // Names: some top-level keys and some nested paths.
        let top: Vec<&String> = obj.keys().collect();
        let mut nested = Vec::new();
        for (k, v) in &obj {
            paths(k, v, &mut nested);
        }
        let mut keep: Vec<(String, &Value)> = Vec::new();
        for (n, i) in pick.iter().enumerate() {
            if n % 2 == 0 && !top.is_empty() {
                let k = top[i.index(top.len())];
                keep.push((k.clone(), &obj[k]));
            } else if !nested.is_empty() {
                let (p, v) = &nested[i.index(nested.len())];
                keep.push((p.clone(), v));
            }
        }
        let names: Vec<String> = keep.iter().map(|(k, _)| k.clone()).collect();
        let mut p = AppParser::new(
            AppMapping { timestamp: vec!["__ts".into()], keep: names.clone(), ..AppMapping::default() },
            AppFormat::Json,
        );
        let r = p.parse(text.as_bytes()).unwrap();
        prop_assert_eq!(r.ts_micros, i64::try_from(ts).unwrap() * 1_000_000);
        for ((name, want), got) in keep.iter().zip(&r.kept) {
            prop_assert!(kept_equals(got.as_deref(), want), "{}: {:?} vs {}", name, got, want);
        }
        let unmapped = obj
            .iter()
            .filter(|(k, v)| {
                let named = names.iter().any(|n| n == *k);
                let prefix = v.is_object()
                    && names.iter().any(|n| n.strip_prefix(k.as_str()).is_some_and(|r| r.starts_with('.')));
                !named && !prefix
            })
            .count();
        prop_assert_eq!(r.unmapped_fields as usize, unmapped);
    }
}

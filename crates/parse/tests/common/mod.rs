//! Helpers shared by the parser crate's corpus tests: where the shared corpora are, and how
//! to split a file into lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use logveil_parse::Request;
use serde_json::Value;

/// The corpus directory (`$LOGVEIL_CORPUS` or `<workspace>/../shared/corpus`), or `None`
/// after printing one line saying the test is skipped.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LOGVEIL_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: corpus not found at {}", dir.display());
        None
    }
}

/// Non-empty lines without their `\n` or `\r\n` terminator.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// What VRL asks for in one test vector.
pub struct Case<'v> {
    pub id: &'v str,
    pub input: &'v str,
    pub format: Option<String>,
    pub timestamp_format: Option<String>,
    pub expected: Option<&'v serde_json::Map<String, Value>>,
}

/// Reads format and timestamp format from `args`, or from the `vrl_source` of an example
/// (`parse_x!(s'<input>', "fmt", "tsfmt")` or `format: "fmt"`).
pub fn case<'v>(function: &str, v: &'v Value) -> Case<'v> {
    let id = v["id"].as_str().unwrap();
    let input = v["input"].as_str().unwrap();
    let expected = v.get("expected").map(|e| e.as_object().unwrap());
    let (mut format, timestamp_format) = if let Some(args) = v.get("args") {
        let arg = |k: &str| args.get(k).map(|f| f.as_str().unwrap().to_owned());
        (arg("format"), arg("timestamp_format"))
    } else {
        let src = v["vrl_source"].as_str().unwrap();
        let after = src.find(input).unwrap() + input.len() + 1;
        let mut strings = src[after..]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned);
        let format = if function == "parse_common_log" {
            None
        } else {
            strings.next()
        };
        (format, strings.next())
    };
    if function == "parse_common_log" {
        format = Some("common".to_owned());
    }
    Case {
        id,
        input,
        format,
        timestamp_format,
        expected,
    }
}

/// VRL's nginx parser keeps `-` and `""` verbatim where its Apache parser omits the field;
/// logveil maps both to `None`.
pub fn norm(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if s.is_empty() || s == "-" => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        other => panic!("unexpected VRL value {other}"),
    }
}

pub fn ours(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

pub fn request_text(r: &Request<'_>) -> Option<String> {
    match *r {
        Request::Missing => None,
        Request::Raw(raw) => ours(Some(raw)),
        Request::Parsed {
            method,
            target,
            protocol,
        } => {
            let mut s = [method, target].join(&b' ');
            if let Some(p) = protocol {
                s.push(b' ');
                s.extend_from_slice(p);
            }
            ours(Some(&s))
        }
    }
}

//! `logfmt::pairs` on the whole input.
//!
//! Properties: never panics; an error is the last item; keys and values borrow from the line
//! in order without overlapping; keys hold no whitespace (nor `=` or `"`, except a `=x`
//! flag token); bare values are non-empty whitespace-free tokens right after `key=`; quoted
//! values sit between `key="` and `"`, with `escaped` exactly when they hold a backslash;
//! only whitespace lies between pairs (and after the last one when there is no error);
//! decoding never panics, borrows unescaped valid UTF-8 and grows at most 3-fold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::logfmt::{LogfmtValue, pairs};
use logveil_parse_fuzz::{assert_sub, check_err};

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn offset(line: &[u8], s: &[u8]) -> usize {
    s.as_ptr() as usize - line.as_ptr() as usize
}

fuzz_target!(|line: &[u8]| {
    let mut it = pairs(line);
    let mut end = 0usize; // end of the previous pair
    let mut failed = false;
    let mut n = 0usize;
    for item in it.by_ref() {
        n += 1;
        assert!(n <= line.len() + 1, "more pairs than bytes");
        assert!(!failed, "an item after an error");
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(e) => {
                check_err(line, &e);
                failed = true;
                continue;
            }
        };
        assert_sub(line, key, "key");
        assert!(!key.is_empty(), "empty key");
        let k = offset(line, key);
        assert!(k >= end, "pairs overlap or go backwards");
        assert!(
            line[end..k].iter().all(|&b| is_ws(b)),
            "non-whitespace skipped between pairs"
        );
        assert!(!key.iter().any(|&b| is_ws(b)), "whitespace in a key");
        if key[0] != b'=' {
            assert!(
                !key.contains(&b'=') && !key.contains(&b'"'),
                "'=' or '\"' in a key"
            );
        }
        let after_key = k + key.len();
        end = match value {
            LogfmtValue::KeyOnly => after_key,
            LogfmtValue::Empty => {
                assert_eq!(line.get(after_key), Some(&b'='), "Empty without '='");
                if line.get(after_key + 1) == Some(&b'"') {
                    assert_eq!(line.get(after_key + 2), Some(&b'"'), "Empty quoted value");
                    after_key + 3
                } else {
                    after_key + 1
                }
            }
            LogfmtValue::Bare(raw) => {
                assert_sub(line, raw, "bare value");
                assert!(!raw.is_empty(), "empty bare value");
                assert_eq!(offset(line, raw), after_key + 1, "bare value not after '='");
                assert_eq!(line[after_key], b'=');
                assert!(!raw.iter().any(|&b| is_ws(b)), "whitespace in a bare value");
                assert_ne!(raw[0], b'"', "bare value starting with a quote");
                after_key + 1 + raw.len()
            }
            LogfmtValue::Quoted { raw, escaped } => {
                assert_sub(line, raw, "quoted value");
                assert!(!raw.is_empty(), "empty quoted value not Empty");
                assert_eq!(
                    offset(line, raw),
                    after_key + 2,
                    "quoted value not after '=\"'"
                );
                assert_eq!(&line[after_key..after_key + 2], b"=\"");
                let close = after_key + 2 + raw.len();
                assert_eq!(line.get(close), Some(&b'"'), "quoted value not closed");
                assert_eq!(escaped, raw.contains(&b'\\'), "escaped flag");
                assert!(
                    line.get(close + 1).is_none_or(|&b| is_ws(b)),
                    "quoted value glued to the next byte"
                );
                close + 1
            }
        };
        assert_eq!(
            value.raw().is_empty(),
            matches!(value, LogfmtValue::Empty | LogfmtValue::KeyOnly)
        );
        let decoded = value.decode();
        assert!(
            decoded.len() <= 3 * value.raw().len().max(2),
            "decoded value grew too much"
        );
        match value {
            LogfmtValue::KeyOnly => assert_eq!(decoded, "true"),
            LogfmtValue::Empty => assert_eq!(decoded, ""),
            LogfmtValue::Bare(raw)
            | LogfmtValue::Quoted {
                raw,
                escaped: false,
            } => {
                if let Ok(s) = std::str::from_utf8(raw) {
                    assert_eq!(decoded, s);
                    assert!(matches!(decoded, std::borrow::Cow::Borrowed(_)));
                }
            }
            LogfmtValue::Quoted { .. } => {}
        }
    }
    assert!(it.next().is_none(), "iterator not fused");
    if !failed {
        assert!(
            line[end..].iter().all(|&b| is_ws(b)),
            "trailing bytes not read"
        );
    }
});

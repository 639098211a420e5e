//! `AppParser` (JSON) on the input after a selector byte (see `app_parser`): never panics;
//! on success the line (less a leading BOM) is a JSON object for `serde_json::Value` too and
//! the record passes `check_app_record`; on failure the column is inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::applog::AppFormat;
use logveil_parse_fuzz::{app_parser, check_app_record, check_err};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, line)) = data.split_first() else {
        return;
    };
    let mut p = app_parser(sel, AppFormat::Json);
    let keep = p.mapping().keep.len();
    match p.parse(line) {
        Ok(r) => {
            check_app_record(line, keep, &r);
            let body = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            let v: serde_json::Value =
                serde_json::from_slice(body).expect("accepted line is not valid JSON");
            assert!(v.is_object(), "accepted line is not a JSON object");
        }
        Err(e) => check_err(line, &e),
    }
});

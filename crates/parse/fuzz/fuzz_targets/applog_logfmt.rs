//! `AppParser` (logfmt) on the input after a selector byte (see `app_parser`): never panics;
//! on success every logfmt pair of the line is valid, the unmapped count is at most the
//! number of pairs and the record passes `check_app_record`; on failure the column is inside
//! the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::applog::AppFormat;
use logveil_parse::logfmt::pairs;
use logveil_parse_fuzz::{app_parser, check_app_record, check_err};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, line)) = data.split_first() else {
        return;
    };
    let mut p = app_parser(sel, AppFormat::Logfmt);
    let keep = p.mapping().keep.len();
    match p.parse(line) {
        Ok(r) => {
            check_app_record(line, keep, &r);
            let mut n = 0u32;
            for pair in pairs(line) {
                assert!(pair.is_ok(), "record from a line with a logfmt error");
                n += 1;
            }
            assert!(r.unmapped_fields <= n, "more unmapped fields than pairs");
        }
        Err(e) => check_err(line, &e),
    }
});

//! `parse_access` in `combined` (first byte even) or `common` (first byte odd) on the rest of
//! the input: never panics; on success every field borrows from the line, values are in
//! range and `Debug` does not echo the line; on failure the column is inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::{AccessFormat, parse_access};
use logveil_parse_fuzz::{check_access, check_err};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, line)) = data.split_first() else {
        return;
    };
    let format = if sel % 2 == 0 {
        AccessFormat::Combined
    } else {
        AccessFormat::Common
    };
    match parse_access(line, format) {
        Ok(a) => {
            check_access(line, &a);
            assert_eq!(a.request_time_us, None, "request time from a fixed format");
            if format == AccessFormat::Common {
                assert!(a.referrer.is_none() && a.user_agent.is_none());
            }
        }
        Err(e) => check_err(line, &e),
    }
});

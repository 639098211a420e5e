//! `parse_proxy` (JSON gateway) on the whole input: never panics; on success the line is a
//! JSON object for `serde_json::Value` too and the record passes `check_proxy` (in
//! particular, `Debug` echoes no run of 8+ input bytes holding `/`, `.` or `@`: destination
//! hosts and URLs never come out); on failure the column is inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::{ProxyFormat, parse_proxy};
use logveil_parse_fuzz::{check_err, check_proxy, json_value};

fuzz_target!(|line: &[u8]| {
    match parse_proxy(line, ProxyFormat::Json) {
        Ok(r) => {
            check_proxy(line, &r);
            // Accepted lines are UTF-8 (tests/fuzz_regressions.rs).
            assert!(std::str::from_utf8(line).is_ok(), "accepted a line that is not UTF-8");
            if let Some(v) = json_value(line) {
                assert!(v.is_object(), "accepted line is not a JSON object");
            }
            let client = &*r.client;
            assert!(client != b"-", "'-' client accepted");
        }
        Err(e) => check_err(line, &e),
    }
});

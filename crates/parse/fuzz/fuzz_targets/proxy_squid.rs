//! `parse_proxy` (Squid native) on the whole input: never panics; on success the record
//! passes `check_proxy`, the client borrows from the line and `bytes_in` is `None`; on
//! failure the column is inside the line.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use logveil_parse::{ProxyFormat, parse_proxy};
use logveil_parse_fuzz::{check_err, check_proxy};

fuzz_target!(|line: &[u8]| {
    match parse_proxy(line, ProxyFormat::Squid) {
        Ok(r) => {
            check_proxy(line, &r);
            assert!(matches!(r.client, Cow::Borrowed(_)), "Squid client copied");
            assert_eq!(r.bytes_in, None, "Squid has no request size");
        }
        Err(e) => check_err(line, &e),
    }
});

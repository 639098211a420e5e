//! `LogFormat::nginx` with realistic and fuzzed format strings; see
//! `logveil_parse_fuzz::custom_target` for the input layout and the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    logveil_parse_fuzz::custom_target(data, true);
});

//! `parse_syslog` in all three modes, `strip_octet_count` and the structured-data walkers.
//!
//! Input: a selector byte, then the line. Selector < 0x80: default options (reference
//! 2026-03-01T00:00Z, UTC senders). Selector >= 0x80: the next 12 bytes give the reference
//! clock (any time from 1970 to 9999) and the senders' UTC offset (within ±14 h).
//!
//! Properties: never panics; on success every field borrows from the line, values are in
//! range, the protocol matches the mode, `Auto` agrees with one of the strict modes, and
//! `Debug` does not echo the line; on failure the column is inside the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logveil_parse::syslog::{
    APP_NAME_MAX, HOSTNAME_MAX, MAX_SD_ELEMENTS, MSG_ID_MAX, PROC_ID_MAX, SD_NAME_MAX,
    strip_octet_count, unescape_param,
};
use logveil_parse::{SyslogMessage, SyslogMode, SyslogOptions, SyslogProtocol, parse_syslog};
use logveil_parse_fuzz::{TS_END, assert_no_leak, assert_sub, check_err, check_ts};

const DEFAULT: SyslogOptions = SyslogOptions {
    reference_micros: 1_772_323_200_000_000, // 2026-03-01T00:00:00Z
    local_offset_secs: 0,
};

fn options(data: &[u8]) -> Option<(SyslogOptions, &[u8])> {
    let (&sel, rest) = data.split_first()?;
    if sel < 0x80 {
        return Some((DEFAULT, rest));
    }
    let (cfg, line) = rest.split_at_checked(12)?;
    let (r, o) = cfg.split_at(8);
    let r = u64::from_le_bytes(r.try_into().ok()?);
    let o = u32::from_le_bytes(o.try_into().ok()?);
    let opts = SyslogOptions {
        reference_micros: (r % TS_END as u64) as i64,
        local_offset_secs: (o % (2 * 50_400 + 1)) as i32 - 50_400,
    };
    Some((opts, line))
}

fn printable(b: &[u8]) -> bool {
    b.iter().all(|c| (b'!'..=b'~').contains(c))
}

fn check_msg(line: &[u8], m: &SyslogMessage<'_>, mode: SyslogMode) {
    let fields = [
        (m.hostname, "hostname"),
        (m.app_name, "app_name"),
        (m.proc_id, "proc_id"),
        (m.msg_id, "msg_id"),
        (m.structured_data, "structured_data"),
    ];
    for (f, what) in fields {
        if let Some(f) = f {
            assert_sub(line, f, what);
        }
    }
    assert_sub(line, m.message, "message");
    if let Some(ts) = m.ts_micros {
        check_ts(ts);
    }
    assert_eq!(m.facility.is_some(), m.severity.is_some());
    if let (Some(f), Some(s)) = (m.facility, m.severity) {
        assert!(f <= 23 && s <= 7, "priority out of range");
    }
    match mode {
        SyslogMode::Rfc5424 => assert_eq!(m.protocol, SyslogProtocol::Rfc5424),
        SyslogMode::Rfc3164 => assert_eq!(m.protocol, SyslogProtocol::Rfc3164),
        SyslogMode::Auto => {}
    }
    match m.protocol {
        SyslogProtocol::Rfc5424 => {
            assert!(m.version.is_some_and(|v| (1..=999).contains(&v)), "version");
            assert!(m.facility.is_some(), "RFC 5424 without PRI");
            for (f, max, what) in [
                (m.hostname, HOSTNAME_MAX, "hostname"),
                (m.app_name, APP_NAME_MAX, "app_name"),
                (m.proc_id, PROC_ID_MAX, "proc_id"),
                (m.msg_id, MSG_ID_MAX, "msg_id"),
            ] {
                if let Some(f) = f {
                    assert!(!f.is_empty() && f.len() <= max, "{what} length");
                    assert!(printable(f), "{what} not printable ASCII");
                    assert_ne!(f, b"-", "{what}: '-' must be None");
                }
            }
            let mut n = 0;
            for el in m.sd_elements() {
                n += 1;
                let sd = m.structured_data.unwrap_or_default();
                assert_sub(sd, el.id, "SD-ID");
                assert!(
                    !el.id.is_empty() && el.id.len() <= SD_NAME_MAX,
                    "SD-ID length"
                );
                for p in el.params() {
                    assert_sub(sd, p.name, "PARAM-NAME");
                    assert_sub(sd, p.value, "PARAM-VALUE");
                    assert!(!p.name.is_empty() && p.name.len() <= SD_NAME_MAX);
                    let u = p.unescaped_value();
                    assert!(u.len() <= p.value.len());
                }
            }
            assert!(n <= MAX_SD_ELEMENTS, "too many SD elements");
            // Validated structured data is walked completely: at least one element.
            assert_eq!(m.structured_data.is_some(), n > 0, "SD walk");
        }
        SyslogProtocol::Rfc3164 => {
            assert_eq!(m.version, None);
            assert_eq!(m.msg_id, None);
            assert_eq!(m.structured_data, None);
            assert!(m.ts_micros.is_some(), "RFC 3164 without a time");
        }
    }
    assert_no_leak(line, &format!("{m:?}"), "SyslogMessage");
}

fuzz_target!(|data: &[u8]| {
    let Some((opts, line)) = options(data) else {
        return;
    };
    let mut results = Vec::with_capacity(3);
    for mode in [SyslogMode::Rfc5424, SyslogMode::Rfc3164, SyslogMode::Auto] {
        let r = parse_syslog(line, mode, &opts);
        match &r {
            Ok(m) => check_msg(line, m, mode),
            Err(e) => check_err(line, e),
        }
        results.push(r);
    }
    assert!(
        results[2] == results[0] || results[2] == results[1],
        "Auto agrees with neither strict mode"
    );
    if let Some(body) = strip_octet_count(line) {
        assert_sub(line, body, "octet-counted body");
        let head = &line[..line.len() - body.len()];
        assert!(
            std::ptr::eq(head.as_ptr_range().end, body.as_ptr()),
            "body is not the suffix"
        );
        let digits = head
            .strip_suffix(b" ")
            .expect("no space after the octet count");
        assert!(
            matches!(digits.first(), Some(b'1'..=b'9')),
            "octet count form"
        );
        let n: usize = std::str::from_utf8(digits).unwrap().parse().unwrap();
        assert_eq!(n, body.len(), "octet count");
    }
    let _ = unescape_param(line);
});

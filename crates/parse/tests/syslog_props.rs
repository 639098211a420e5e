//! Property tests for the syslog parser: random valid RFC 5424 messages (NILVALUEs, fractions,
//! offsets, structured data with escapes, BOM and non-UTF-8 messages) printed and parsed back
//! field by field; arbitrary and mutated bytes never panic in any mode; the frame decoder
//! never panics and never buffers more than its capacity.

use logveil_model::time::{MICROS_PER_SECOND, days_from_civil};
use logveil_parse::syslog::{
    FrameDecoder, FrameEvent, SyslogMode, SyslogOptions, SyslogProtocol, parse_syslog,
    strip_octet_count,
};
use proptest::prelude::*;

const OPTS: SyslogOptions = SyslogOptions {
    reference_micros: 1_772_323_200_000_000, // 2026-03-01T00:00:00Z
    local_offset_secs: 3600,
};

#[derive(Debug, Clone)]
struct Ts {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    /// Fraction digits as written (0 to 6 of them).
    frac: String,
    /// `None` for `Z`, else offset in minutes.
    offset_min: Option<i32>,
}

impl Ts {
    fn print(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.y, self.mo, self.d, self.h, self.mi, self.s
        );
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(&self.frac);
        }
        match self.offset_min {
            None => out.push('Z'),
            Some(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                out.push_str(&format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60));
            }
        }
        out
    }

    fn micros(&self) -> i64 {
        let secs = days_from_civil(self.y, self.mo, self.d) * 86_400
            + i64::from(self.h * 3600 + self.mi * 60 + self.s)
            - i64::from(self.offset_min.unwrap_or(0)) * 60;
        let mut frac = 0i64;
        for (i, c) in self.frac.bytes().enumerate() {
            frac += i64::from(c - b'0') * 10i64.pow(5 - i as u32);
        }
        secs * MICROS_PER_SECOND + frac
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn ts_strategy() -> impl Strategy<Value = Ts> {
    (
        1971i64..=9998,
        1u32..=12,
        1u32..=31,
        0u32..=23,
        0u32..=59,
        0u32..=59,
        "[0-9]{0,6}",
        prop_oneof![
            Just(None),
            (-(23 * 60 + 59)..=(23 * 60 + 59)).prop_map(Some)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, offset_min)| Ts {
            y,
            mo,
            d: d.min(days_in_month(y, mo)),
            h,
            mi,
            s,
            frac,
            offset_min,
        })
}

/// A header field of printable ASCII, or NILVALUE (`None`).
fn header(max: usize) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        proptest::string::string_regex(&format!("[!-~]{{1,{max}}}"))
            .unwrap()
            .prop_filter("'-' is NILVALUE", |s| s != "-")
            .prop_map(Some),
    ]
}

fn sd_name() -> impl Strategy<Value = String> {
    "[!#-<>-\\\\^-~]{1,32}"
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    value: String,
    /// Write backslashes that do not precede `"`, `\` or `]` unescaped (RFC 5424 keeps them).
    lazy_backslashes: bool,
}

impl Param {
    fn print(&self) -> String {
        let mut out = format!("{}=\"", self.name);
        let chars: Vec<char> = self.value.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let lazy_ok = self.lazy_backslashes
                && c == '\\'
                && chars
                    .get(i + 1)
                    .is_some_and(|n| !matches!(n, '"' | '\\' | ']'));
            if matches!(c, '"' | '\\' | ']') && !lazy_ok {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
}

fn param() -> impl Strategy<Value = Param> {
    (sd_name(), "(\\PC|[\"\\\\\\]\\t\\n])*", any::<bool>()).prop_map(
        |(name, value, lazy_backslashes)| Param {
            name,
            value,
            lazy_backslashes,
        },
    )
}

fn sd_strategy() -> impl Strategy<Value = Option<Vec<(String, Vec<Param>)>>> {
    prop_oneof![
        Just(None),
        proptest::collection::btree_map(sd_name(), proptest::collection::vec(param(), 0..4), 1..4)
            .prop_map(|m| Some(m.into_iter().collect())),
    ]
}

#[derive(Debug, Clone)]
enum Msg {
    None,
    Bom(String),
    Bytes(Vec<u8>),
}

fn msg_strategy() -> impl Strategy<Value = Msg> {
    prop_oneof![
        Just(Msg::None),
        "\\PC{0,40}".prop_map(Msg::Bom),
        proptest::collection::vec(any::<u8>(), 0..60)
            .prop_filter("no BOM", |b| !b.starts_with(b"\xEF\xBB\xBF"))
            .prop_map(Msg::Bytes),
    ]
}

#[derive(Debug, Clone)]
struct Rfc5424 {
    pri: u8,
    version: u16,
    ts: Option<Ts>,
    hostname: Option<String>,
    app_name: Option<String>,
    proc_id: Option<String>,
    msg_id: Option<String>,
    sd: Option<Vec<(String, Vec<Param>)>>,
    msg: Msg,
}

impl Rfc5424 {
    fn print(&self) -> Vec<u8> {
        let nil = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
        let sd = match &self.sd {
            None => "-".to_string(),
            Some(els) => els
                .iter()
                .map(|(id, params)| {
                    let ps: String = params.iter().map(|p| format!(" {}", p.print())).collect();
                    format!("[{id}{ps}]")
                })
                .collect(),
        };
        let mut line = format!(
            "<{}>{} {} {} {} {} {} {}",
            self.pri,
            self.version,
            self.ts.as_ref().map_or_else(|| "-".into(), Ts::print),
            nil(&self.hostname),
            nil(&self.app_name),
            nil(&self.proc_id),
            nil(&self.msg_id),
            sd
        )
        .into_bytes();
        match &self.msg {
            Msg::None => {}
            Msg::Bom(s) => {
                line.extend_from_slice(b" \xEF\xBB\xBF");
                line.extend_from_slice(s.as_bytes());
            }
            Msg::Bytes(b) => {
                line.push(b' ');
                line.extend_from_slice(b);
            }
        }
        line
    }
}

fn rfc5424_strategy() -> impl Strategy<Value = Rfc5424> {
    (
        0u8..=191,
        prop_oneof![Just(1u16), 1u16..=999],
        prop_oneof![Just(None), ts_strategy().prop_map(Some)],
        header(255),
        header(48),
        header(128),
        header(32),
        sd_strategy(),
        msg_strategy(),
    )
        .prop_map(
            |(pri, version, ts, hostname, app_name, proc_id, msg_id, sd, msg)| Rfc5424 {
                pri,
                version,
                ts,
                hostname,
                app_name,
                proc_id,
                msg_id,
                sd,
                msg,
            },
        )
}

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

const MODES: [SyslogMode; 3] = [SyslogMode::Rfc5424, SyslogMode::Rfc3164, SyslogMode::Auto];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn syslog_rfc5424_round_trip(m in rfc5424_strategy()) {
        let line = m.print();
        let modes: &[SyslogMode] = if m.version == 1 {
            &[SyslogMode::Rfc5424, SyslogMode::Auto]
        } else {
            &[SyslogMode::Rfc5424]
        };
        for &mode in modes {
            let p = parse_syslog(&line, mode, &OPTS)
                .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&line))))?;
            prop_assert_eq!(p.protocol, SyslogProtocol::Rfc5424);
            prop_assert_eq!(p.priority(), Some(m.pri));
            prop_assert_eq!((p.facility, p.severity), (Some(m.pri / 8), Some(m.pri % 8)));
            prop_assert_eq!(p.version, Some(m.version));
            prop_assert_eq!(p.ts_micros, m.ts.as_ref().map(Ts::micros));
            let b = |f: &Option<String>| f.as_ref().map(|s| s.as_bytes().to_vec());
            prop_assert_eq!(p.hostname.map(<[u8]>::to_vec), b(&m.hostname));
            prop_assert_eq!(p.app_name.map(<[u8]>::to_vec), b(&m.app_name));
            prop_assert_eq!(p.proc_id.map(<[u8]>::to_vec), b(&m.proc_id));
            prop_assert_eq!(p.msg_id.map(<[u8]>::to_vec), b(&m.msg_id));
            match &m.sd {
                None => prop_assert_eq!(p.structured_data, None),
                Some(els) => {
                    let got: Vec<_> = p.sd_elements().collect();
                    prop_assert_eq!(got.len(), els.len());
                    for (g, (id, params)) in got.iter().zip(els) {
                        prop_assert_eq!(g.id, id.as_bytes());
                        let gp: Vec<_> = g.params().collect();
                        prop_assert_eq!(gp.len(), params.len());
                        for (gp, p) in gp.iter().zip(params) {
                            prop_assert_eq!(gp.name, p.name.as_bytes());
                            prop_assert_eq!(&*gp.unescaped_value(), p.value.as_bytes());
                        }
                    }
                }
            }
            let want: &[u8] = match &m.msg {
                Msg::None => b"",
                Msg::Bom(s) => s.as_bytes(),
                Msg::Bytes(b) => b,
            };
            prop_assert_eq!(p.message, want);
        }
        // Octet counting wraps it transparently.
        let mut framed = format!("{} ", line.len()).into_bytes();
        framed.extend_from_slice(&line);
        prop_assert_eq!(strip_octet_count(&framed), Some(&line[..]));
    }

    #[test]
    fn syslog_mutated_rfc5424_never_panics(
        m in rfc5424_strategy(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<bool>()), 1..4),
    ) {
        let line = mutate(&m.print(), &edits);
        for mode in MODES {
            if let Ok(p) = parse_syslog(&line, mode, &OPTS) {
                // Whatever is accepted is internally consistent.
                for el in p.sd_elements() {
                    for param in el.params() {
                        let _ = param.unescaped_value();
                    }
                }
                prop_assert!(p.message.len() <= line.len());
            }
        }
    }

    #[test]
    fn syslog_arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        for mode in MODES {
            let _ = parse_syslog(&line, mode, &OPTS);
        }
        let _ = strip_octet_count(&line);
    }

    #[test]
    fn syslog_rfc3164_shaped_text_never_panics(
        line in "(<[0-9]{1,4}>)?([A-Za-z]{3} [ 0-9]?[0-9] ([0-9]{4} )?[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,9})?|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{0,20})?( [a-z0-9\\[\\]:.-]{0,12}){0,4}",
        reference in any::<i64>(),
        offset in any::<i32>(),
    ) {
        let opts = SyslogOptions { reference_micros: reference, local_offset_secs: offset };
        for mode in MODES {
            let _ = parse_syslog(line.as_bytes(), mode, &opts);
        }
    }

    #[test]
    fn syslog_frame_decoder_never_panics_and_stays_bounded(
        data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), Just(b'<'), b'0'..=b'9', any::<u8>()],
            0..400,
        ),
        chunk in 1usize..50,
        max in 1usize..40,
    ) {
        let mut d = FrameDecoder::new(max);
        let mut frames_bytes = 0usize;
        for piece in data.chunks(chunk) {
            let mut piece = piece;
            let mut stalls = 0;
            while !piece.is_empty() {
                let n = d.push(piece);
                prop_assert!(d.buffered_len() <= d.capacity());
                piece = &piece[n..];
                stalls = if n == 0 { stalls + 1 } else { 0 };
                prop_assert!(stalls < 2, "push made no progress after draining frames");
                while let Some(e) = d.next_frame() {
                    if let FrameEvent::Frame(f) = e {
                        prop_assert!(f.len() <= max);
                        frames_bytes += f.len();
                    }
                }
            }
        }
        if let Some(FrameEvent::Frame(f)) = d.finish() {
            prop_assert!(f.len() <= max);
            frames_bytes += f.len();
        }
        prop_assert!(frames_bytes <= data.len());
    }
}

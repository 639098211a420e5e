//! UTC time without a time-zone database: civil-date arithmetic (proleptic Gregorian), hour
//! partitions, and strict parsers for the two timestamp shapes logveil meets on the hot path
//! (RFC 3339 and the Common Log Format's `10/Oct/2000:13:55:36 -0700`). All times are
//! microseconds since the Unix epoch.

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// `days` in µs, saturating (a retention of any `u32` never overflows).
pub fn days_micros(days: u32) -> i64 {
    i64::from(days).saturating_mul(MICROS_PER_DAY)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1-12) of year `y`; 0 for an invalid month.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Microseconds since the epoch of a validated civil date and time (UTC); `None` for a date
/// or time that does not exist. A leap second (`:60`) is folded into the last microsecond of
/// its minute.
pub fn civil_to_micros(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    frac_micros: u32,
) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    // A leap second (:60) is folded into the last microsecond of its minute.
    let (s, frac) = if s == 60 {
        (59, 999_999)
    } else {
        (s, frac_micros)
    };
    if s > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + (h as i64) * 3_600 + (mi as i64) * 60 + s as i64;
    Some(secs * MICROS_PER_SECOND + frac as i64)
}

/// First instant after the range of valid event times (year 10000): partition names have
/// four-digit years.
pub const END_OF_TIME: i64 = 253_402_300_800 * MICROS_PER_SECOND;

/// Event times before 1970 or from year 10000 on are not plausible log times.
pub fn plausible_time(t: i64) -> Option<i64> {
    (0..END_OF_TIME).contains(&t).then_some(t)
}

#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp (`2026-11-28T10:15:30.123Z`, `…+02:00`; a space instead of
/// `T` and a lower-case `t`/`z` are accepted, as RFC 3339 §5.6 allows). Fractions beyond
/// microseconds are truncated.
pub fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    let y = digits(b, 0, 4)? as i64;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let mo = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let h = digits(b, 11, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 14, 2)?;
    let s = digits(b, 17, 2)?;
    let mut i = 19;
    let mut frac = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 6 {
                frac = frac * 10 + (c - b'0') as u32;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..6 {
            frac *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let v = (oh * 3600 + om * 60) as i64;
            if sign == b'-' { -v } else { v }
        }
        _ => return None,
    };
    plausible_time(civil_to_micros(y, mo, d, h, mi, s, frac)? - offset_secs * MICROS_PER_SECOND)
}

/// English month abbreviations, as CLF, syslog and strftime's `%b` write them.
pub const MONTH_ABBREVS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Month number (1-12) of an abbreviation written exactly as in [`MONTH_ABBREVS`].
fn month_from_abbrev(b: &[u8]) -> Option<u32> {
    let i = MONTH_ABBREVS.iter().position(|m| m[..] == *b)?;
    u32::try_from(i + 1).ok()
}

/// Parses the Common Log Format time, `10/Oct/2000:13:55:36 -0700` (the part between the
/// brackets). An optional fraction after the seconds (`13:55:36.123`) is accepted.
pub fn parse_clf_time(b: &[u8]) -> Option<i64> {
    let d = digits(b, 0, 2)?;
    if b.get(2) != Some(&b'/') || b.get(6) != Some(&b'/') || b.get(11) != Some(&b':') {
        return None;
    }
    let mo = month_from_abbrev(b.get(3..6)?)?;
    let y = digits(b, 7, 4)? as i64;
    let h = digits(b, 12, 2)?;
    if b.get(14) != Some(&b':') || b.get(17) != Some(&b':') {
        return None;
    }
    let mi = digits(b, 15, 2)?;
    let s = digits(b, 18, 2)?;
    let mut i = 20;
    let mut frac = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 6 {
                frac = frac * 10 + (c - b'0') as u32;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            frac *= 10;
        }
    }
    if b.get(i) != Some(&b' ') || b.len() != i + 6 {
        return None;
    }
    let sign = b[i + 1];
    let oh = digits(b, i + 2, 2)?;
    let om = digits(b, i + 4, 2)?;
    if !(sign == b'+' || sign == b'-') || oh > 23 || om > 59 {
        return None;
    }
    let off = (oh * 3600 + om * 60) as i64;
    let off = if sign == b'-' { -off } else { off };
    plausible_time(civil_to_micros(y, mo, d, h, mi, s, frac)? - off * MICROS_PER_SECOND)
}

/// An hour partition: whole hours since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HourKey(pub i64);

impl HourKey {
    pub fn of_micros(ts: i64) -> HourKey {
        HourKey(ts.div_euclid(MICROS_PER_HOUR))
    }

    pub fn start_micros(self) -> i64 {
        self.0 * MICROS_PER_HOUR
    }

    pub fn end_micros(self) -> i64 {
        (self.0 + 1) * MICROS_PER_HOUR
    }

    /// The `dt=` value, `YYYY-MM-DD`.
    pub fn date(self) -> String {
        let (y, m, d) = civil_from_days(self.0.div_euclid(24));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The `hour=` value, 0 to 23.
    pub fn hour(self) -> u32 {
        self.0.rem_euclid(24) as u32
    }

    /// `dt=YYYY-MM-DD` + `hour=HH` → the partition. Only the canonical spelling the sink
    /// writes is accepted (`hour=5` or `dt=+202-…` are not partitions).
    pub fn from_dirs(dt: &str, hour: &str) -> Option<HourKey> {
        let d = dt.strip_prefix("dt=")?;
        let hh = hour.strip_prefix("hour=")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        let b = d.as_bytes();
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !digits(&d[..4])
            || !digits(&d[5..7])
            || !digits(&d[8..])
            || hh.len() != 2
            || !digits(hh)
        {
            return None;
        }
        let h: i64 = hh.parse().ok()?;
        let y: i64 = d[..4].parse().ok()?;
        let m: u32 = d[5..7].parse().ok()?;
        let day: u32 = d[8..].parse().ok()?;
        if h > 23 || !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
            return None;
        }
        Some(HourKey(days_from_civil(y, m, day) * 24 + h))
    }

    /// The partition's directory below the dataset, `dt=YYYY-MM-DD/hour=HH`.
    pub fn dir(self) -> String {
        format!("dt={}/hour={:02}", self.date(), self.hour())
    }
}

/// Formats microseconds since the epoch as RFC 3339 UTC with second precision, or with
/// microseconds when they are not zero.
pub fn format_rfc3339(ts: i64) -> String {
    let secs = ts.div_euclid(MICROS_PER_SECOND);
    let micros = ts.rem_euclid(MICROS_PER_SECOND);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 10_956, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00.5Z"), Some(500_000));
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:00.1234567Z"),
            Some(123_456)
        );
        assert_eq!(
            parse_rfc3339(b"2026-11-28T10:15:30-02:30"),
            Some((days_from_civil(2026, 11, 28) * 86_400 + 12 * 3600 + 45 * 60 + 30) * 1_000_000)
        );
        for bad in [
            &b""[..],
            b"2026-02-30T00:00:00Z",
            b"2026-11-28T24:00:00Z",
            b"2026-11-28T10:15:30",
            b"2026-11-28T10:15:30.Z",
            b"2026-11-28T10:15:30Zjunk",
            b"2026-11-28T10:15:30+0200",
            b"20261128T101530Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn clf() {
        let t = parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(format_rfc3339(t), "2000-10-10T20:55:36Z");
        assert_eq!(parse_clf_time(b"29/Feb/2001:00:00:00 +0000"), None);
        assert_eq!(parse_clf_time(b"10/Foo/2000:13:55:36 -0700"), None);
        assert_eq!(parse_clf_time(b"10/Oct/2000:13:55:36"), None);
        assert!(parse_clf_time(b"10/Oct/2000:13:55:36.250 +0000").is_some());
        // Outside 1970..10000: not a plausible log time.
        assert_eq!(parse_clf_time(b"01/Jan/1970:00:30:00 +0100"), None);
        assert_eq!(parse_rfc3339(b"0000-01-01T00:30:00+01:00"), None);
        assert_eq!(parse_rfc3339(b"9999-12-31T23:59:59-05:00"), None);
        assert!(parse_rfc3339(b"9999-12-31T23:59:59Z").is_some());
    }

    #[test]
    fn hour_key() {
        let t = parse_rfc3339(b"2026-11-28T23:59:59Z").unwrap();
        let h = HourKey::of_micros(t);
        assert_eq!(h.dir(), "dt=2026-11-28/hour=23");
        assert_eq!(HourKey(h.0 + 1).dir(), "dt=2026-11-29/hour=00");
        assert_eq!(HourKey::of_micros(-1).dir(), "dt=1969-12-31/hour=23");
    }
}

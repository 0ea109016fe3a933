//! Wall-clock helpers for the wire format: Unix seconds now, and RFC 3339 formatting/parsing.
//!
//! The contract's timestamps are UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`. Converting between a day count
//! and a civil date uses Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
//! (proleptic Gregorian calendar, eras of 400 years = 146 097 days), which need no tables and
//! no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Formats Unix milliseconds as UTC RFC 3339 with milliseconds: `2025-01-15T14:30:00.000Z`.
pub fn rfc3339_millis(unix_millis: u64) -> String {
    let secs = unix_millis / 1000;
    let millis = unix_millis % 1000;
    // u64::MAX / 86_400 fits an i64 comfortably, so no overflow is possible below.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction) to Unix seconds.
///
/// The fraction is truncated. `None` for malformed input, impossible dates (`2023-02-29`) and
/// instants before 1970. A leap second (`:60`) is accepted and lands on the next second.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    // RFC 3339 §5.6 allows `t` and notes a space is common; accept all three.
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2])?;
            let om = digits(&[*m1, *m2])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + hour * 3600 + min * 60 + sec;
    // `local` is wall time at the given offset; UTC = local - offset.
    u64::try_from(local - offset).ok()
}

/// Parses a run of ASCII digits (at most 4, so no overflow).
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0')),
    )
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Shift the year to start in March so the leap day is the last day of the "year".
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_736_951_400_123),
            "2025-01-15T14:30:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(2_147_483_648_000),
            "2038-01-19T03:14:08.000Z"
        );
        // Leap days.
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        // Far future must not panic.
        let _ = rfc3339_millis(u64::MAX);
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-01-15T14:30:00.123Z"),
            Some(1_736_951_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-15T16:30:00+02:00"),
            Some(1_736_951_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-15T09:00:00.5-05:30"),
            Some(1_736_951_400)
        );
        assert_eq!(parse_rfc3339("2025-01-15t14:30:00z"), Some(1_736_951_400));
        assert_eq!(parse_rfc3339("2025-01-15 14:30:00Z"), Some(1_736_951_400));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Some(1_483_228_800));
    }

    #[test]
    fn rejects_malformed_and_impossible() {
        for bad in [
            "",
            "2025-01-15",
            "2025-01-15T14:30:00",
            "2025-01-15T14:30:00.Z",
            "2025-01-15T14:30:00+0200",
            "2025-01-15T14:30:00+24:00",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T14:60:00Z",
            "2025-01-15T14:30:61Z",
            "1969-12-31T23:59:59Z",
            "2025-01-15T14:30:00Zjunk",
            "+025-01-15T14:30:00Z",
            "2025-01-15T14:30:00.123456789+01:00x",
            "２０２５-01-15T14:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn leap_days_accepted() {
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.999Z"),
            Some(1_709_251_199)
        );
    }

    #[test]
    fn round_trips_every_day_across_leap_years() {
        // Every day from 1970 to 2500 at a time of day that varies, through format and parse.
        let mut day = 0u64;
        while day < 194_000 {
            let ms = day * 86_400_000 + (day * 7_919 % 86_400) * 1000 + day % 1000;
            let s = rfc3339_millis(ms);
            assert_eq!(parse_rfc3339(&s), Some(ms / 1000), "{s}");
            day += 1;
        }
    }

    #[test]
    fn civil_inverse() {
        for z in [-800_000i64, -1, 0, 1, 59, 60, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }
}

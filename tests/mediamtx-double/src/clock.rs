//! Wall-clock times the way MediaMTX prints and parses them.
//!
//! Go marshals a `time.Time` as RFC 3339 with up to nine fractional digits, trailing zeros
//! dropped (`RFC3339Nano`), in the time's own zone: MediaMTX's times are in its local zone, so
//! `started`, `readyTime` and recording `start` carry the machine's offset (`Z` when it is UTC).
//! Recording segment names hold local wall-clock fields, so this module also converts between
//! wall-clock fields and instants with the C library's time-zone rules.

use std::time::{SystemTime, UNIX_EPOCH};

/// A wall-clock time with the UTC offset it was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallTime {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
    /// Nanoseconds, 0–999,999,999.
    pub nanos: u32,
    /// Offset from UTC in seconds (east positive).
    pub offset: i32,
}

impl WallTime {
    /// Now, in the local zone.
    pub fn now() -> WallTime {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        WallTime::from_unix(d.as_secs() as i64, d.subsec_nanos())
    }

    /// Now in the local zone, truncated to microseconds (the precision of a segment name's `%f`).
    pub fn now_micros() -> WallTime {
        let mut t = WallTime::now();
        t.nanos -= t.nanos % 1000;
        t
    }

    /// The local wall-clock time of a Unix instant.
    pub fn from_unix(secs: i64, nanos: u32) -> WallTime {
        let offset = local_offset(secs);
        let (year, month, day, hour, minute, second) = civil(secs + offset as i64);
        WallTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset,
        }
    }

    /// Reads wall-clock fields as local time (the zone rules decide the offset), the way
    /// MediaMTX decodes a segment name with `time.Date(…, time.Local)`.
    pub fn from_local_fields(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> WallTime {
        // SAFETY: mktime only reads and normalises the tm we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_year = (year - 1900) as libc::c_int;
        tm.tm_mon = month as libc::c_int - 1;
        tm.tm_mday = day as libc::c_int;
        tm.tm_hour = hour as libc::c_int;
        tm.tm_min = minute as libc::c_int;
        tm.tm_sec = second as libc::c_int;
        tm.tm_isdst = -1;
        let secs = unsafe { libc::mktime(&mut tm) } as i64;
        WallTime::from_unix(secs, nanos)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400 + (self.hour * 3600 + self.minute * 60 + self.second) as i64
            - self.offset as i64
    }

    /// Go's `RFC3339Nano`: fraction without trailing zeros (none at all when zero), `Z` for UTC.
    pub fn rfc3339_nano(&self) -> String {
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s.push_str(&offset_text(self.offset));
        s
    }

    /// Parses RFC 3339 as Go's `time.Parse(time.RFC3339, …)` does: optional fraction of up to
    /// nine digits, `Z` or `±hh:mm`; the fields are kept as written, with that offset.
    pub fn parse_rfc3339(s: &str) -> Option<WallTime> {
        let b = s.as_bytes();
        let num = |a: usize, z: usize| -> Option<u32> {
            let part = s.get(a..z)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0, 4)? as i64, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start || end - start > 9 {
                return None;
            }
            let digits = s.get(start..end)?;
            nanos = format!("{digits:0<9}").parse().ok()?;
            i = end;
        }
        let offset = match s.get(i..)? {
            "Z" | "z" => 0,
            rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
                if rest.as_bytes()[3] != b':' {
                    return None;
                }
                let h = num(i + 1, i + 3)? as i32;
                let m = num(i + 4, i + 6)? as i32;
                if h > 23 || m > 59 {
                    return None;
                }
                let v = h * 3600 + m * 60;
                if rest.starts_with('-') {
                    -v
                } else {
                    v
                }
            }
            _ => return None,
        };
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(WallTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset,
        })
    }
}

/// `Z`, or `+hh:mm` / `-hh:mm`.
fn offset_text(offset: i32) -> String {
    if offset == 0 {
        return "Z".into();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    format!("{sign}{:02}:{:02}", off / 3600, (off % 3600) / 60)
}

/// The local zone's offset at a Unix instant.
fn local_offset(t: i64) -> i32 {
    // SAFETY: localtime_r only writes into the tm we pass.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let tt = t as libc::time_t;
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff as i32
    } else {
        0
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch → (year, month, day, hour, minute, second), the inverse of the above.
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let sod = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (sod / 3600) as u32,
        ((sod % 3600) / 60) as u32,
        (sod % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rfc3339_nano() {
        let t = WallTime::parse_rfc3339("2026-11-22T12:30:05.123450000+01:00");
        let t = t.expect("parses");
        assert_eq!(t.nanos, 123_450_000);
        assert_eq!(t.rfc3339_nano(), "2026-11-22T12:30:05.12345+01:00");
        let z = WallTime::parse_rfc3339("2026-01-02T03:04:05Z").expect("parses");
        assert_eq!(z.rfc3339_nano(), "2026-01-02T03:04:05Z");
        assert_eq!(z.unix(), 1_767_323_045);
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.1234567890Z",
        ] {
            assert!(WallTime::parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn local_round_trip() {
        let now = WallTime::now_micros();
        let back = WallTime::from_local_fields(
            now.year, now.month, now.day, now.hour, now.minute, now.second, now.nanos,
        );
        assert_eq!(back, now);
        assert_eq!(WallTime::from_unix(now.unix(), now.nanos), now);
    }
}

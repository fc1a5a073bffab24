//! UTC timestamps (FIX `UTCTimestamp`): `YYYYMMDD-HH:MM:SS` with an optional fraction of 3,
//! 6 or 9 digits, to and from nanoseconds since the Unix epoch.
//!
//! Calendar math is Howard Hinnant's `days_from_civil` / `civil_from_days` (proleptic
//! Gregorian, exact for every date a `u64` of nanoseconds reaches: 1970 to 2554). Pure: no
//! clock is read here; the caller passes the time in.
//!
//! Limits: times before 1970 do not parse (a `u64` cannot hold them). A leap second (`:60`)
//! parses as the first second of the next minute, as POSIX time counts it.

const NS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

/// Days since 1970-01-01 of the civil date `y-m-d` (`m` 1..=12, `d` 1..=31).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64; // March = 0
    let doy = (153 * mp + 2) / 5 + d as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of `z` days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn two(v: u64) -> [u8; 2] {
    [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]
}

/// Append `unix_ns` as `YYYYMMDD-HH:MM:SS.sss` (milliseconds, truncated) to `out`.
pub fn format_utc_timestamp(unix_ns: u64, out: &mut Vec<u8>) {
    let secs = unix_ns / NS_PER_SEC;
    let millis = (unix_ns % NS_PER_SEC) / 1_000_000;
    let (y, m, d) = civil_from_days((secs / SECS_PER_DAY) as i64);
    let sod = secs % SECS_PER_DAY;
    let y = y as u64; // 1970..=2554
    let [c0, c1] = two(y / 100);
    let [y0, y1] = two(y % 100);
    let [m0, m1] = two(u64::from(m));
    let [d0, d1] = two(u64::from(d));
    let [h0, h1] = two(sod / 3600);
    let [n0, n1] = two(sod / 60 % 60);
    let [s0, s1] = two(sod % 60);
    let [f0, f1, f2] = [millis / 100, millis / 10 % 10, millis % 10].map(|v| b'0' + v as u8);
    out.extend_from_slice(&[
        c0, c1, y0, y1, m0, m1, d0, d1, b'-', h0, h1, b':', n0, n1, b':', s0, s1, b'.', f0, f1, f2,
    ]);
}

fn digits(v: &[u8]) -> Option<u64> {
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Parse `YYYYMMDD-HH:MM:SS` with an optional `.sss`, `.ssssss` or `.sssssssss` into
/// nanoseconds since the Unix epoch. `None` for any other shape, an impossible date or time
/// (month 13, February 30, hour 24, minute 60), a year before 1970, or one past `u64`.
pub fn parse_utc_timestamp(v: &[u8]) -> Option<u64> {
    if v.len() < 17 || v[8] != b'-' || v[11] != b':' || v[14] != b':' {
        return None;
    }
    let frac_ns = match &v[17..] {
        [] => 0,
        [b'.', f @ ..] if matches!(f.len(), 3 | 6 | 9) => {
            digits(f)? * 10u64.pow(9 - f.len() as u32)
        }
        _ => return None,
    };
    let y = digits(&v[0..4])? as i64;
    let m = digits(&v[4..6])? as u32;
    let d = digits(&v[6..8])? as u32;
    let (hh, mm, ss) = (digits(&v[9..11])?, digits(&v[12..14])?, digits(&v[15..17])?);
    if y < 1970 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d) as u64; // y >= 1970, so days >= 0
    let secs = days * SECS_PER_DAY + hh * 3600 + mm * 60 + ss;
    secs.checked_mul(NS_PER_SEC)?.checked_add(frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn fmt(ns: u64) -> String {
        let mut out = Vec::new();
        format_utc_timestamp(ns, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn known_vectors() {
        assert_eq!(fmt(0), "19700101-00:00:00.000");
        assert_eq!(fmt(1_700_000_000_123_456_789), "20231114-22:13:20.123");
        assert_eq!(fmt(951_782_400 * NS_PER_SEC), "20000229-00:00:00.000"); // leap day of a /400 year
        assert_eq!(fmt(u64::MAX), "25540721-23:34:33.709");
        assert_eq!(parse_utc_timestamp(b"19700101-00:00:00"), Some(0));
        assert_eq!(
            parse_utc_timestamp(b"20231114-22:13:20.123"),
            Some(1_700_000_000_123_000_000)
        );
        assert_eq!(
            parse_utc_timestamp(b"20231114-22:13:20.123456"),
            Some(1_700_000_000_123_456_000)
        );
        assert_eq!(
            parse_utc_timestamp(b"20231114-22:13:20.123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_utc_timestamp(b"20231114-22:13:59"),
            parse_utc_timestamp(b"20231114-22:13:60").map(|t| t - NS_PER_SEC)
        );
    }

    #[test]
    fn rejects_bad_shapes_and_dates() {
        for bad in [
            &b""[..],
            b"2023111422:13:20",
            b"20231114-22:13:2",
            b"20231114-22:13:20.",
            b"20231114-22:13:20.12",
            b"20231114-22:13:20.1234",
            b"20231114-22:13:20.12a",
            b"20231314-22:13:20",
            b"20230229-22:13:20",
            b"20230431-00:00:00",
            b"20231100-00:00:00",
            b"20231114-24:00:00",
            b"20231114-23:60:00",
            b"19691231-23:59:59",
            b"25540721-23:34:34", // past u64
            b"2023111a-00:00:00",
            b"20231114 22:13:20",
        ] {
            assert_eq!(
                parse_utc_timestamp(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_utc_timestamp(b"20240229-00:00:00").is_some());
    }

    #[test]
    fn civil_days_agree_day_by_day() {
        let mut expect = (1970i64, 1u32, 1u32);
        for z in 0..200_000i64 {
            assert_eq!(civil_from_days(z), expect, "day {z}");
            assert_eq!(days_from_civil(expect.0, expect.1, expect.2), z);
            let (y, m, d) = expect;
            expect = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    proptest! {
        #![proptest_config(Config { cases: 2000, rng_seed: RngSeed::Fixed(0x7153), failure_persistence: None, ..Config::default() })]
        #[test]
        fn round_trip_to_the_millisecond(ns in any::<u64>()) {
            let s = fmt(ns);
            prop_assert_eq!(parse_utc_timestamp(s.as_bytes()), Some(ns - ns % 1_000_000));
        }
    }
}

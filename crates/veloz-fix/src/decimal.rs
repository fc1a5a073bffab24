//! Exact decimals: FIX `PRICE`/`QTY`/`AMT` text to and from integer units at a fixed scale
//! (`"101.25"` at scale 2 is 10125). No floating point anywhere.
//!
//! Accepted text: an optional `-`, then digits with an optional `.` and digits (`"1"`,
//! `"1.0"`, `"0.5"`), or a `.` and digits (`".5"`). Rejected as [`DecimalError::Syntax`]: the
//! empty string, `"."`, `"1."` (a point must have digits after it), `"+1"`, spaces, exponents.
//! Digits past the scale must be zeros (`"101.2500"` at scale 2 is fine, `"101.255"` is
//! [`DecimalError::TooManyDecimals`]); a value that does not fit an `i64` at the scale is
//! [`DecimalError::OutOfRange`].
//!
//! Output ([`crate::Writer::decimal`]) is the shortest exact text: trailing fraction zeros and a bare
//! point are trimmed (`12340` at scale 2 is `"123.4"`, `100` at scale 0 is `"100"`).

/// Why text is not a decimal at the asked scale.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a FIX decimal at all.
    #[error("not a decimal number (an optional '-', digits, an optional '.' and digits)")]
    Syntax,
    /// Non-zero digits past the scale.
    #[error("has non-zero digits past {max} decimal places")]
    TooManyDecimals {
        /// The scale asked for.
        max: u8,
    },
    /// The value does not fit a 64-bit integer of units at the scale.
    #[error("is out of range of a 64-bit integer at this scale")]
    OutOfRange,
}

/// Parse FIX decimal text into integer units at `scale` (see the module docs for the
/// accepted text).
pub fn parse_decimal(v: &[u8], scale: u8) -> Result<i64, DecimalError> {
    let (neg, rest) = match v {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, v),
    };
    let (int, frac) = match rest.iter().position(|&b| b == b'.') {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &[][..]),
    };
    let has_point = int.len() < rest.len();
    // No digits after a point ("1.", "."), or no digits at all ("", "-").
    let missing_digits = frac.is_empty() && (has_point || int.is_empty());
    let syntax_ok = !missing_digits && int.iter().chain(frac).all(u8::is_ascii_digit);
    if !syntax_ok {
        return Err(DecimalError::Syntax);
    }
    let scale_len = usize::from(scale);
    if frac.len() > scale_len && frac[scale_len..].iter().any(|&b| b != b'0') {
        return Err(DecimalError::TooManyDecimals { max: scale });
    }
    let frac = &frac[..frac.len().min(scale_len)];
    let push = |acc: u64, d: u8| acc.checked_mul(10)?.checked_add(u64::from(d - b'0'));
    let mut mag = 0u64;
    for &d in int.iter().chain(frac) {
        mag = push(mag, d).ok_or(DecimalError::OutOfRange)?;
    }
    for _ in frac.len()..scale_len {
        mag = mag.checked_mul(10).ok_or(DecimalError::OutOfRange)?;
    }
    if neg {
        0i64.checked_sub_unsigned(mag)
            .ok_or(DecimalError::OutOfRange)
    } else {
        i64::try_from(mag).map_err(|_| DecimalError::OutOfRange)
    }
}

/// `units` at `scale` as FIX writes a decimal (exact, trailing zeros trimmed: 10120 at
/// scale 2 is `101.2`), appended to `out`: what [`crate::Writer::decimal`] writes, for text
/// that is not a field (a reject's Text naming a tick size).
pub fn format_decimal(units: i64, scale: u8, out: &mut Vec<u8>) {
    write_decimal(
        out,
        units < 0,
        u128::from(units.unsigned_abs()),
        u32::from(scale),
    );
}

/// Append `magnitude` (negated when `negative` and non-zero) at `scale` as the shortest
/// exact decimal text.
pub(crate) fn write_decimal(out: &mut Vec<u8>, negative: bool, magnitude: u128, scale: u32) {
    let mut digits = [0u8; 39];
    let mut n = 0;
    let mut wide = magnitude;
    while wide > u128::from(u64::MAX) {
        digits[n] = b'0' + (wide % 10) as u8;
        n += 1;
        wide /= 10;
    }
    let mut m = wide as u64; // 128-bit division is slow: finish in 64 bits
    loop {
        digits[n] = b'0' + (m % 10) as u8;
        n += 1;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    // digits[..n] hold the number least significant first; digit i has weight 10^(i - scale).
    let scale = scale as usize;
    let mut low = 0; // trailing fraction zeros to drop
    while low < scale.min(n) && digits[low] == b'0' {
        low += 1;
    }
    if low == n {
        out.push(b'0');
        return;
    }
    if negative {
        out.push(b'-');
    }
    if n > scale {
        out.extend(digits[scale..n].iter().rev());
    } else {
        out.push(b'0');
    }
    if low < scale {
        out.push(b'.');
        out.extend((n..scale).map(|_| b'0'));
        out.extend(digits[low..scale.min(n)].iter().rev());
    }
}

/// `num / den` rounded half to even to an integer, as (negative, magnitude); `None` when
/// `den` is zero.
pub(crate) fn div_half_even(num: u128, den: u128) -> Option<u128> {
    if den == 0 {
        return None;
    }
    let (q, r) = match (u64::try_from(num), u64::try_from(den)) {
        (Ok(n), Ok(d)) => (u128::from(n / d), u128::from(n % d)), // the common case, faster
        _ => (num / den, num % den),
    };
    // r < den <= u128::MAX, so compare r with den - r instead of doubling r.
    let up = r > den - r || (r == den - r && q % 2 == 1);
    Some(q + u128::from(up))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn fmt(units: i64, scale: u32) -> String {
        let mut out = Vec::new();
        write_decimal(&mut out, units < 0, u128::from(units.unsigned_abs()), scale);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_the_documented_cases() {
        assert_eq!(parse_decimal(b"101.25", 2), Ok(10125));
        assert_eq!(parse_decimal(b"101.2", 2), Ok(10120));
        assert_eq!(parse_decimal(b"101.2500", 2), Ok(10125));
        assert_eq!(parse_decimal(b"-1.5", 2), Ok(-150));
        assert_eq!(parse_decimal(b"1.0", 0), Ok(1));
        assert_eq!(parse_decimal(b"0.5", 1), Ok(5));
        assert_eq!(parse_decimal(b".5", 1), Ok(5));
        assert_eq!(parse_decimal(b"-.5", 1), Ok(-5));
        assert_eq!(parse_decimal(b"007", 0), Ok(7));
        assert_eq!(parse_decimal(b"-9223372036854775808", 0), Ok(i64::MIN));
        assert_eq!(parse_decimal(b"9223372036854775807", 0), Ok(i64::MAX));
        assert_eq!(parse_decimal(b"0", 40), Ok(0));
        assert_eq!(
            parse_decimal(b"101.255", 2),
            Err(DecimalError::TooManyDecimals { max: 2 })
        );
        assert_eq!(
            parse_decimal(b"1.5", 0),
            Err(DecimalError::TooManyDecimals { max: 0 })
        );
        for bad in [
            &b"1e5"[..],
            b"",
            b".",
            b"1.",
            b"+1",
            b" 1",
            b"1 ",
            b"-",
            b"-.",
            b"1.2.3",
            b"1,5",
            b"--1",
        ] {
            assert_eq!(
                parse_decimal(bad, 2),
                Err(DecimalError::Syntax),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_decimal(b"9223372036854775808", 0),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            parse_decimal(b"-9223372036854775809", 0),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            parse_decimal(b"92233720368547758.08", 3),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(parse_decimal(b"1", 19), Err(DecimalError::OutOfRange));
        assert_eq!(
            parse_decimal(b"99999999999999999999999", 0),
            Err(DecimalError::OutOfRange)
        );
    }

    #[test]
    fn errors_read_as_words() {
        assert_eq!(
            DecimalError::TooManyDecimals { max: 2 }.to_string(),
            "has non-zero digits past 2 decimal places"
        );
    }

    #[test]
    fn formats_the_documented_cases() {
        assert_eq!(fmt(12345, 2), "123.45");
        assert_eq!(fmt(12340, 2), "123.4");
        assert_eq!(fmt(100, 0), "100");
        assert_eq!(fmt(100, 2), "1");
        assert_eq!(fmt(-5, 3), "-0.005");
        assert_eq!(fmt(0, 3), "0");
        assert_eq!(fmt(5, 0), "5");
        assert_eq!(fmt(i64::MIN, 0), "-9223372036854775808");
        assert_eq!(fmt(i64::MIN, 19), "-0.9223372036854775808");
        assert_eq!(fmt(1, 21), "0.000000000000000000001");
    }

    #[test]
    fn rounds_half_to_even() {
        assert_eq!(div_half_even(5, 2), Some(2));
        assert_eq!(div_half_even(7, 2), Some(4));
        assert_eq!(div_half_even(7, 3), Some(2));
        assert_eq!(div_half_even(8, 3), Some(3));
        assert_eq!(div_half_even(u128::MAX, u128::MAX), Some(1));
        assert_eq!(div_half_even(u128::MAX, 2), Some(u128::MAX / 2 + 1)); // q odd, exact half: up
        assert_eq!(div_half_even(1, 0), None);
    }

    proptest! {
        #![proptest_config(Config { cases: 4000, rng_seed: RngSeed::Fixed(0xdec1), failure_persistence: None, ..Config::default() })]
        #[test]
        fn format_then_parse_round_trips(units in any::<i64>(), scale in 0u8..=9) {
            let text = fmt(units, u32::from(scale));
            prop_assert_eq!(parse_decimal(text.as_bytes(), scale), Ok(units), "{}", text);
            prop_assert!(!text.contains('.') || !text.ends_with('0'), "not trimmed: {}", text);
        }
    }
}

//! Writing messages: a [`Writer`] builds a body in a reusable scratch vector, then
//! [`Writer::finish`] appends `8=FIX.4.4<SOH>9=N<SOH>` + body + `10=ddd<SOH>` to the caller's
//! buffer, BodyLength and CheckSum computed.
//!
//! Invariants of what it writes, so that [`crate::frame()`] and [`crate::Parser`] accept it:
//! - MsgType (35) is the first body field ([`Writer::begin`]); the caller writes the rest of
//!   the header (49, 56, 34, 52) next, in that order by convention;
//! - a value is never empty: a field with an empty value is left out (FIX has no empty
//!   values);
//! - a value never contains SOH: one in [`Writer::str`] or [`Writer::bytes`] is written as a
//!   space, so no text can forge a field;
//! - numbers are exact decimal text ([`Writer::decimal`]: no floating point).
//!
//! The writer does not check that a tag is written once, or at all: the engine's message
//! builders own that (a test parses what they write). No allocation once the scratch and the
//! output buffer have grown.

use crate::decimal::{div_half_even, format_decimal, write_decimal};
use crate::frame::{checksum, BEGIN, SOH};
use crate::tags::MSG_TYPE;
use crate::time::format_utc_timestamp;
use std::ops::Range;

/// Builds outbound messages; reuse one for every message.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    /// The body of the message being built, from `35=`.
    body: Vec<u8>,
}

impl Writer {
    /// A writer with room for a typical message.
    pub fn new() -> Writer {
        Writer {
            body: Vec::with_capacity(512),
        }
    }

    /// Start a message of type `msg_type` (writes `35=msg_type`), discarding any unfinished
    /// one.
    pub fn begin(&mut self, msg_type: &[u8]) {
        self.body.clear();
        self.bytes(MSG_TYPE, msg_type);
    }

    fn tag(&mut self, tag: u32) {
        debug_assert!(tag != 0, "tag 0 is not a tag");
        push_u64(&mut self.body, u64::from(tag));
        self.body.push(b'=');
    }

    /// A text field.
    pub fn str(&mut self, tag: u32, v: &str) {
        self.bytes(tag, v.as_bytes());
    }

    /// A field of raw bytes (left out when empty; SOH written as a space).
    pub fn bytes(&mut self, tag: u32, v: &[u8]) {
        if v.is_empty() {
            return;
        }
        self.tag(tag);
        let start = self.body.len();
        self.body.extend_from_slice(v);
        if v.contains(&SOH) {
            self.body[start..]
                .iter_mut()
                .filter(|b| **b == SOH)
                .for_each(|b| *b = b' ');
        }
        self.body.push(SOH);
    }

    /// An unsigned integer field.
    pub fn uint(&mut self, tag: u32, v: u64) {
        self.tag(tag);
        push_u64(&mut self.body, v);
        self.body.push(SOH);
    }

    /// A signed integer field.
    pub fn int(&mut self, tag: u32, v: i64) {
        self.tag(tag);
        if v < 0 {
            self.body.push(b'-');
        }
        push_u64(&mut self.body, v.unsigned_abs());
        self.body.push(SOH);
    }

    /// A one-byte field (a FIX `CHAR`; an SOH is written as a space).
    pub fn char(&mut self, tag: u32, v: u8) {
        self.bytes(tag, &[v]);
    }

    /// A FIX `BOOLEAN`: `Y` or `N`.
    pub fn bool(&mut self, tag: u32, v: bool) {
        self.bytes(tag, if v { b"Y" } else { b"N" });
    }

    /// `units` at `scale` as exact decimal text, trailing zeros trimmed: 12345 at scale 2 is
    /// `123.45`, 12340 is `123.4`, 100 at scale 0 is `100`, -5 at scale 3 is `-0.005`.
    pub fn decimal(&mut self, tag: u32, units: i64, scale: u8) {
        self.tag(tag);
        format_decimal(units, scale, &mut self.body);
        self.body.push(SOH);
    }

    /// `num / den` units at `scale` (an average price: notional / quantity), written with
    /// `scale + extra_digits` decimals, rounded half to even, trailing zeros trimmed.
    /// `den == 0` writes `0`. If `num * 10^extra_digits` would overflow, fewer extra digits
    /// are used (never fewer than none).
    pub fn decimal_ratio(&mut self, tag: u32, num: i128, den: i128, scale: u8, extra_digits: u8) {
        self.tag(tag);
        let negative = (num < 0) != (den < 0);
        let (n, d) = (num.unsigned_abs(), den.unsigned_abs());
        let mut extra = u32::from(extra_digits);
        let scaled = loop {
            match 10u128.checked_pow(extra).and_then(|p| n.checked_mul(p)) {
                Some(v) => break v,
                None => extra -= 1, // extra = 0 always succeeds
            }
        };
        let q = div_half_even(scaled, d).unwrap_or(0);
        write_decimal(&mut self.body, negative, q, u32::from(scale) + extra);
        self.body.push(SOH);
    }

    /// A UTCTimestamp, `YYYYMMDD-HH:MM:SS.sss`.
    pub fn timestamp(&mut self, tag: u32, unix_ns: u64) {
        self.tag(tag);
        format_utc_timestamp(unix_ns, &mut self.body);
        self.body.push(SOH);
    }

    /// Append the whole message (`8=FIX.4.4`, BodyLength, the body, CheckSum) to `out` and
    /// return where it lies in `out`. The body stays until the next [`Writer::begin`].
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Range<usize> {
        let start = out.len();
        out.extend_from_slice(BEGIN);
        out.extend_from_slice(b"9=");
        push_u64(out, self.body.len() as u64);
        out.push(SOH);
        out.extend_from_slice(&self.body);
        let ck = checksum(&out[start..]);
        out.extend_from_slice(&[
            b'1',
            b'0',
            b'=',
            b'0' + ck / 100,
            b'0' + ck / 10 % 10,
            b'0' + ck % 10,
            SOH,
        ]);
        start..out.len()
    }
}

/// Append `v` in decimal.
fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{frame, FrameStatus};
    use crate::parse::Parser;
    use crate::tags::*;

    fn one(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        w.begin(b"8");
        f(&mut w);
        let mut out = b"prefix".to_vec();
        let range = w.finish(&mut out);
        assert_eq!(range, 6..out.len());
        out.split_off(6)
    }

    fn value(msg: &[u8], tag: u32) -> String {
        let mut p = Parser::new();
        let m = p.parse(msg).unwrap();
        String::from_utf8(m.get(tag).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn finish_frames_and_checksums() {
        let m = one(|w| w.str(SYMBOL, "BTC-USD"));
        let head = b"8=FIX.4.4\x019=16\x0135=8\x0155=BTC-USD\x01";
        let mut want = head.to_vec();
        want.extend_from_slice(
            format!(
                "10={:03}\x01",
                head.iter().map(|&b| u32::from(b)).sum::<u32>() % 256
            )
            .as_bytes(),
        );
        assert_eq!(String::from_utf8_lossy(&m), String::from_utf8_lossy(&want));
        assert_eq!(frame(&m, 1024), FrameStatus::Complete(m.len()));
    }

    #[test]
    fn typed_fields_write_their_text() {
        let m = one(|w| {
            w.uint(MSG_SEQ_NUM, 18_446_744_073_709_551_615);
            w.int(REF_TAG_ID, -42);
            w.int(HEART_BT_INT, i64::MIN);
            w.char(SIDE, b'2');
            w.bool(POSS_DUP_FLAG, true);
            w.bool(GAP_FILL_FLAG, false);
            w.decimal(PRICE, 12345, 2);
            w.decimal(ORDER_QTY, -5, 3);
            w.timestamp(SENDING_TIME, 1_700_000_000_123_456_789);
            w.str(TEXT, "a\x01b");
            w.str(ACCOUNT, "");
        });
        assert_eq!(value(&m, MSG_SEQ_NUM), "18446744073709551615");
        assert_eq!(value(&m, REF_TAG_ID), "-42");
        assert_eq!(value(&m, HEART_BT_INT), "-9223372036854775808");
        assert_eq!(value(&m, SIDE), "2");
        assert_eq!(value(&m, POSS_DUP_FLAG), "Y");
        assert_eq!(value(&m, GAP_FILL_FLAG), "N");
        assert_eq!(value(&m, PRICE), "123.45");
        assert_eq!(value(&m, ORDER_QTY), "-0.005");
        assert_eq!(value(&m, SENDING_TIME), "20231114-22:13:20.123");
        assert_eq!(value(&m, TEXT), "a b");
        assert!(Parser::new().parse(&m).unwrap().get(ACCOUNT).is_none());
    }

    #[test]
    fn decimal_ratio_rounds_half_even() {
        let avg = |num: i128, den: i128, scale: u8, extra: u8| {
            let m = one(|w| w.decimal_ratio(AVG_PX, num, den, scale, extra));
            value(&m, AVG_PX)
        };
        // 3 fills: 100.00 x 1, 100.01 x 2 -> notional 30002 (scale 2) over 3.
        assert_eq!(avg(30_002, 3, 2, 2), "100.0067");
        assert_eq!(avg(30_002, 3, 2, 0), "100.01");
        assert_eq!(avg(25, 10, 0, 0), "2"); // 2.5 -> 2
        assert_eq!(avg(35, 10, 0, 0), "4"); // 3.5 -> 4
        assert_eq!(avg(-35, 10, 0, 0), "-4");
        assert_eq!(avg(35, -10, 1, 0), "-0.4");
        assert_eq!(avg(1, 0, 2, 2), "0");
        assert_eq!(avg(i128::MAX, 1, 0, 10), i128::MAX.to_string()); // no room for extra digits
        assert_eq!(avg(10_000, 100, 2, 4), "1");
    }

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    proptest! {
        #![proptest_config(Config { cases: 3000, rng_seed: RngSeed::Fixed(0xa7e5), failure_persistence: None, ..Config::default() })]
        /// Against the definition: the written q (at scale + extra) is within half a unit of
        /// num * 10^extra / den, and even on an exact tie.
        #[test]
        fn decimal_ratio_is_the_nearest_even(num in -1_000_000_000_000_000i64..1_000_000_000_000_000, den in prop_oneof![-1_000_000i64..0, 1i64..1_000_000], scale in 0u8..6, extra in 0u8..4) {
            let mut w = Writer::new();
            w.begin(b"8");
            w.decimal_ratio(AVG_PX, i128::from(num), i128::from(den), scale, extra);
            let mut out = Vec::new();
            w.finish(&mut out);
            let mut p = Parser::new();
            let m = p.parse(&out).unwrap();
            let q = i128::from(m.require_decimal(AVG_PX, scale + extra).unwrap());
            let target = i128::from(num) * 10i128.pow(u32::from(extra)); // q ~ target / den
            let err2 = 2 * (q * i128::from(den) - target).abs(); // 2 |q - target/den| * |den|
            let den = i128::from(den).abs();
            prop_assert!(err2 <= den, "q {} too far from {}/{}", q, target, den);
            if err2 == den {
                prop_assert_eq!(q % 2, 0, "a tie must round to even");
            }
        }
    }
}

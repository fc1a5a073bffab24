//! Framing: where one FIX 4.4 message ends in a byte stream, its BodyLength and CheckSum
//! verified, before any field is parsed.
//!
//! A message is `8=FIX.4.4<SOH>9=N<SOH>` + body + `10=ddd<SOH>`. It ends at the *first*
//! `<SOH>10=ddd<SOH>` after the BeginString field (exactly tag 10: `<SOH>110=` is tag 110),
//! whatever BodyLength says, so a wrong BodyLength costs one message and never swallows the
//! next. BodyLength N counts the bytes after `9=N<SOH>` up to and including the SOH before
//! `10=`; the CheckSum is the sum of every byte before `10=`, modulo 256, as three digits.
//!
//! Checks, in order, each giving [`FrameStatus::Garbled`] with the bytes to skip:
//! 1. the buffer starts with `8=FIX.4.4<SOH>`, else [`FrameError::BadBeginString`]: skip to the
//!    next `8=FIX.4.4<SOH>`, or to the tail that could still begin one (at least one byte);
//! 2. an end lies within `max_len` bytes, else (once `max_len` bytes are there)
//!    [`FrameError::TooLarge`]: skip `max_len` bytes;
//! 3. no `<SOH>8=FIX.4.4<SOH>` comes before the end, else [`FrameError::Truncated`]: skip to
//!    the new message;
//! 4. `10=` is followed by three digits and SOH, else [`FrameError::BadCheckSum`]: skip
//!    through `10=`;
//! 5. BodyLength is the second field and digits ([`FrameError::BadBodyLength`]) and equals the
//!    actual length ([`FrameError::BodyLengthMismatch`]);
//! 6. the CheckSum is at most 255 ([`FrameError::BadCheckSum`]) and matches
//!    ([`FrameError::CheckSumMismatch`]).
//!
//! For 5 and 6 the whole message, trailer included, is skipped. Invariants: `Garbled.len` is
//! at least 1 and at most `buf.len()`; `Complete(n)` has `n <= buf.len()` and `n <= max_len`;
//! [`FrameStatus::Incomplete`] only while more bytes could complete a message within
//! `max_len` (every proper prefix of a valid message is `Incomplete`). Work is one pass over
//! at most `max_len` bytes; nothing is allocated.
//!
//! Limit: a DATA field (RawData 96, Signature 89) whose value contains `<SOH>10=ddd<SOH>`
//! ends the message early; Veloz's counterparties send printable tokens there.

use crate::tags::{Named, BODY_LENGTH, CHECK_SUM};

/// The field separator.
pub const SOH: u8 = 0x01;
/// The only BeginString Veloz speaks, with its separator: every message starts with it.
pub const BEGIN: &[u8] = b"8=FIX.4.4\x01";
const TRAILER_TAG: &[u8] = b"\x0110=";
/// `<SOH>10=ddd<SOH>`: the trailer after the body's last SOH.
const TRAILER_LEN: usize = 8;

/// What [`frame`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameStatus {
    /// More bytes are needed (and could still complete a message within `max_len`).
    Incomplete,
    /// A well-formed message of this many bytes (BodyLength and CheckSum verified).
    Complete(usize),
    /// The first `len` bytes are a bad message or garbage: skip them; `error` says why.
    Garbled {
        /// Bytes to skip, at least 1.
        len: usize,
        /// What was wrong.
        error: FrameError,
    },
}

/// Why bytes were skipped. Messages name the tag and the values involved.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes do not start with `8=FIX.4.4<SOH>`.
    #[error("the bytes do not start a FIX 4.4 message (BeginString (8) must be \"FIX.4.4\" and the first field)")]
    BadBeginString,
    /// BodyLength is missing, not the second field, or not digits.
    #[error(
        "{} is missing, not the second field, or not digits",
        Named(BODY_LENGTH)
    )]
    BadBodyLength,
    /// BodyLength differs from the actual body.
    #[error("{} is {declared}, the body is {actual} bytes", Named(BODY_LENGTH))]
    BodyLengthMismatch {
        /// What the message said.
        declared: usize,
        /// What it had.
        actual: usize,
    },
    /// `10=` is not followed by three digits (000 to 255) and SOH.
    #[error("{} is not three digits from 000 to 255", Named(CHECK_SUM))]
    BadCheckSum,
    /// The CheckSum differs from the bytes' sum.
    #[error(
        "{} is {declared:03}, the message sums to {computed:03}",
        Named(CHECK_SUM)
    )]
    CheckSumMismatch {
        /// What the message said.
        declared: u8,
        /// The sum of its bytes before `10=`, modulo 256.
        computed: u8,
    },
    /// A new message starts before this one's CheckSum.
    #[error(
        "the message has no {}: a new message (8=FIX.4.4) starts at byte {next}",
        Named(CHECK_SUM)
    )]
    Truncated {
        /// Where the new message starts (the bytes skipped).
        next: usize,
    },
    /// No message end within `max` bytes.
    #[error("no message end ({}) within {max} bytes", Named(CHECK_SUM))]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// Find where the message at the start of `buf` (which should begin with `8=FIX.4.4<SOH>`)
/// ends; see the module docs for the rules and the order of the checks.
pub fn frame(buf: &[u8], max_len: usize) -> FrameStatus {
    let garbled = |len: usize, error| FrameStatus::Garbled { len, error };
    if !buf.starts_with(BEGIN) {
        if buf.is_empty() || (BEGIN.starts_with(buf) && buf.len() < max_len) {
            return FrameStatus::Incomplete; // the start of a BeginString (or nothing yet)
        }
        if BEGIN.starts_with(buf) {
            // Only when max_len is shorter than a BeginString.
            return garbled(max_len.max(1), FrameError::TooLarge { max: max_len });
        }
        return garbled(resync_point(buf), FrameError::BadBeginString);
    }
    let window = &buf[..buf.len().min(max_len)];
    let Some(soh) = find_end(window) else {
        return if buf.len() >= max_len {
            garbled(max_len.max(1), FrameError::TooLarge { max: max_len })
        } else {
            FrameStatus::Incomplete
        };
    };
    // `soh` is the SOH before `10=` or before a new `8=FIX.4.4<SOH>`.
    if window[soh + 1..].starts_with(BEGIN) {
        return garbled(soh + 1, FrameError::Truncated { next: soh + 1 });
    }
    let ck_at = soh + TRAILER_TAG.len();
    let ck = &window[ck_at..window.len().min(ck_at + 4)];
    let digits = ck.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    if ck.len() < 4 {
        if digits == ck.len() {
            return if buf.len() >= max_len {
                garbled(max_len.max(1), FrameError::TooLarge { max: max_len })
            } else {
                FrameStatus::Incomplete
            };
        }
        return garbled(ck_at, FrameError::BadCheckSum);
    }
    if digits != 3 || ck[3] != SOH {
        return garbled(ck_at, FrameError::BadCheckSum);
    }
    let end = soh + TRAILER_LEN;
    let Some((declared, body_start)) = body_length(&window[BEGIN.len()..=soh]) else {
        return garbled(end, FrameError::BadBodyLength);
    };
    let actual = soh + 1 - (BEGIN.len() + body_start);
    if declared != actual {
        return garbled(end, FrameError::BodyLengthMismatch { declared, actual });
    }
    let declared = ck
        .iter()
        .take(3)
        .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    let Ok(declared) = u8::try_from(declared) else {
        return garbled(end, FrameError::BadCheckSum); // 256..=999 is no CheckSum
    };
    let computed = checksum(&window[..=soh]);
    if declared != computed {
        return garbled(end, FrameError::CheckSumMismatch { declared, computed });
    }
    FrameStatus::Complete(end)
}

/// The sum of `bytes` modulo 256: the FIX CheckSum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

/// The index of the first SOH (at or after the BeginString's SOH) followed by `10=` or by a
/// whole `8=FIX.4.4<SOH>`.
fn find_end(window: &[u8]) -> Option<usize> {
    let mut at = BEGIN.len() - 1; // the BeginString's SOH, when the window reaches it
    while at < window.len() {
        let rest = &window[at + 1..];
        if rest.starts_with(&TRAILER_TAG[1..]) || rest.starts_with(BEGIN) {
            return Some(at);
        }
        at += 1 + rest.iter().position(|&b| b == SOH)?;
    }
    None
}

/// In `fields` (`9=N<SOH>...<SOH>`, the bytes after the BeginString up to the SOH before
/// `10=`): N and where the body starts, or `None` if the field is not there or not digits.
fn body_length(fields: &[u8]) -> Option<(usize, usize)> {
    let rest = fields.strip_prefix(b"9=")?;
    let n = rest.iter().position(|&b| b == SOH)?;
    if n == 0 || n > 9 || !rest[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = rest[..n]
        .iter()
        .fold(0usize, |a, &b| a * 10 + usize::from(b - b'0'));
    Some((v, 2 + n + 1))
}

/// Where garbage at the start of `buf` ends: the next `8=FIX.4.4<SOH>`, else the start of
/// the longest tail that could still begin one; always at least 1.
fn resync_point(buf: &[u8]) -> usize {
    (1..buf.len())
        .find(|&i| {
            let tail = &buf[i..];
            tail.starts_with(BEGIN) || (tail.len() < BEGIN.len() && BEGIN.starts_with(tail))
        })
        .unwrap_or(buf.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with a correct BodyLength and CheckSum around `body` (fields, each ending in
    /// `|`, which becomes SOH).
    pub(crate) fn msg(body: &str) -> Vec<u8> {
        let body = body.replace('|', "\x01");
        let mut m = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
        let ck = checksum(&m);
        m.extend_from_slice(format!("10={ck:03}\x01").as_bytes());
        m
    }

    const MAX: usize = 4096;

    #[test]
    fn a_message_frames_whole() {
        let m = msg("35=0|49=A|56=B|34=1|52=20231114-22:13:20.123|");
        assert_eq!(frame(&m, MAX), FrameStatus::Complete(m.len()));
        let mut two = m.clone();
        two.extend_from_slice(&m);
        assert_eq!(frame(&two, MAX), FrameStatus::Complete(m.len()));
    }

    #[test]
    fn tag_110_is_not_the_trailer() {
        let m = msg("35=0|110=123|49=A|");
        assert_eq!(frame(&m, MAX), FrameStatus::Complete(m.len()));
    }

    #[test]
    fn garbage_skips_to_the_next_begin_string() {
        let m = msg("35=0|");
        let mut buf = b"xx8=FIX.4.2\x01junk".to_vec();
        buf.extend_from_slice(&m);
        assert_eq!(
            frame(&buf, MAX),
            FrameStatus::Garbled {
                len: 16,
                error: FrameError::BadBeginString
            }
        );
        assert_eq!(frame(&buf[16..], MAX), FrameStatus::Complete(m.len()));
        // No BeginString at all: keep the tail that could start one.
        assert_eq!(
            frame(b"abc8=FI", MAX),
            FrameStatus::Garbled {
                len: 3,
                error: FrameError::BadBeginString
            }
        );
        assert_eq!(
            frame(b"abcdef", MAX),
            FrameStatus::Garbled {
                len: 6,
                error: FrameError::BadBeginString
            }
        );
        assert_eq!(frame(b"8=FI", MAX), FrameStatus::Incomplete);
        assert_eq!(frame(b"", MAX), FrameStatus::Incomplete);
    }

    #[test]
    fn checksum_mismatch_names_both_values() {
        let mut m = msg("35=0|");
        let n = m.len();
        let good = m[n - 4..n - 1].to_vec();
        m[n - 4..n - 1].copy_from_slice(b"123");
        let computed: u8 = std::str::from_utf8(&good).unwrap().parse().unwrap();
        let status = frame(&m, MAX);
        assert_eq!(
            status,
            FrameStatus::Garbled {
                len: n,
                error: FrameError::CheckSumMismatch {
                    declared: 123,
                    computed
                }
            }
        );
        let FrameStatus::Garbled { error, .. } = status else {
            unreachable!()
        };
        assert_eq!(
            error.to_string(),
            format!("CheckSum (10) is 123, the message sums to {computed:03}")
        );
    }

    #[test]
    fn bad_checksum_and_body_length_fields() {
        let m = msg("35=0|");
        let n = m.len();
        let mut bad = m.clone();
        bad[n - 2] = b'x';
        assert_eq!(
            frame(&bad, MAX),
            FrameStatus::Garbled {
                len: n - 4,
                error: FrameError::BadCheckSum
            }
        );
        let mut bad = m.clone();
        bad[12] = b'a'; // "9=a"
        assert_eq!(
            frame(&bad, MAX),
            FrameStatus::Garbled {
                len: n,
                error: FrameError::BadBodyLength
            }
        );
        let no_nine = b"8=FIX.4.4\x0135=0\x0110=000\x01";
        assert!(matches!(
            frame(no_nine, MAX),
            FrameStatus::Garbled {
                len: 22,
                error: FrameError::BadBodyLength
            }
        ));
        let mut big = m.clone();
        big[n - 4..n - 1].copy_from_slice(b"256");
        assert_eq!(
            frame(&big, MAX),
            FrameStatus::Garbled {
                len: n,
                error: FrameError::BadCheckSum
            }
        );
    }

    #[test]
    fn a_wrong_body_length_resyncs_to_the_next_message() {
        let good = msg("35=0|49=A|");
        for declared in [1usize, 5, 9, 11, 40, 500] {
            let text = String::from_utf8(good.clone()).unwrap().replacen(
                "9=10\x01",
                &format!("9={declared}\x01"),
                1,
            );
            let mut bad = text.into_bytes();
            let n = bad.len() - 7;
            let ck = checksum(&bad[..n]);
            bad.truncate(n);
            bad.extend_from_slice(format!("10={ck:03}\x01").as_bytes());
            let first = bad.len();
            bad.extend_from_slice(&good);
            assert_eq!(
                frame(&bad, MAX),
                FrameStatus::Garbled {
                    len: first,
                    error: FrameError::BodyLengthMismatch {
                        declared,
                        actual: 10
                    }
                },
                "declared {declared}"
            );
            assert_eq!(frame(&bad[first..], MAX), FrameStatus::Complete(good.len()));
        }
    }

    #[test]
    fn a_truncated_message_gives_way_to_the_next() {
        let good = msg("35=0|");
        let mut buf = b"8=FIX.4.4\x019=20\x0135=D\x0149=A".to_vec();
        buf.push(SOH);
        let next = buf.len();
        buf.extend_from_slice(&good);
        assert_eq!(
            frame(&buf, MAX),
            FrameStatus::Garbled {
                len: next,
                error: FrameError::Truncated { next }
            }
        );
    }

    #[test]
    fn too_large_skips_max_len() {
        let m = msg("35=0|58=a long text to pass the limit|");
        assert_eq!(frame(&m, m.len()), FrameStatus::Complete(m.len()));
        assert_eq!(frame(&m[..20], 30), FrameStatus::Incomplete);
        assert_eq!(
            frame(&m, 30),
            FrameStatus::Garbled {
                len: 30,
                error: FrameError::TooLarge { max: 30 }
            }
        );
        assert_eq!(
            frame(&m[..30], 30),
            FrameStatus::Garbled {
                len: 30,
                error: FrameError::TooLarge { max: 30 }
            }
        );
        // The trailer straddles the limit.
        assert_eq!(
            frame(&m, m.len() - 1),
            FrameStatus::Garbled {
                len: m.len() - 1,
                error: FrameError::TooLarge { max: m.len() - 1 }
            }
        );
    }
}

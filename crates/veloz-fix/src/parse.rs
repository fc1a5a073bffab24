//! Parsing a framed message into its fields, without allocating: a [`Parser`] keeps one
//! vector of `(tag, start, end)` offsets and reuses it for every message.
//!
//! Invariants of a [`Message`] (checked by [`Parser::parse`], each breach a [`ParseError`]):
//! - every field is `tag=value<SOH>`, the tag decimal digits without a leading zero, not 0,
//!   below 10^9; the value non-empty; the last field ends in SOH;
//! - BeginString (8), BodyLength (9), MsgType (35) are the first three fields, CheckSum (10),
//!   when present, the last;
//! - no tag appears twice (Veloz's subset of FIX 4.4 has no repeating groups).
//!
//! The parser does not verify BodyLength or CheckSum: [`crate::frame()`] did. Lookups
//! ([`Message::get`]) scan the fields (a message has a few dozen); typed getters check the
//! value's format and say which tag was wrong in a [`FieldError`].

use crate::decimal::{parse_decimal, DecimalError};
use crate::frame::SOH;
use crate::tags::{Named, BEGIN_STRING, BODY_LENGTH, CHECK_SUM, MSG_SEQ_NUM, MSG_TYPE};
use crate::time::parse_utc_timestamp;

/// Why bytes are not a well-formed message. Each names the tag (and SessionRejectReason).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A field does not start with a tag number (digits, no leading zero, below 10^9).
    #[error("the field at byte {offset} does not start with a tag number")]
    TagNotNumeric {
        /// Where the field starts.
        offset: usize,
    },
    /// A tag is not followed by `=`.
    #[error("{} at byte {offset} has no '='", Named(*tag))]
    NoEquals {
        /// The tag.
        tag: u32,
        /// Where the field starts.
        offset: usize,
    },
    /// Tag 0.
    #[error("tag 0 at byte {offset} is not a tag")]
    TagZero {
        /// Where the field starts.
        offset: usize,
    },
    /// `tag=<SOH>`.
    #[error("{} has no value", Named(*tag))]
    EmptyValue {
        /// The tag.
        tag: u32,
    },
    /// The last field does not end in SOH.
    #[error("{} does not end in SOH", Named(*tag))]
    Unterminated {
        /// The tag.
        tag: u32,
    },
    /// A tag appears twice.
    #[error("{} appears more than once", Named(*tag))]
    RepeatedTag {
        /// The tag.
        tag: u32,
    },
    /// A field where the order forbids it: BeginString (8), BodyLength (9), MsgType (35) must
    /// be the first three fields and CheckSum (10) the last.
    #[error("{} is field {position}, out of the required order (BeginString (8), BodyLength (9), MsgType (35) first, CheckSum (10) last)", Named(*tag))]
    OutOfOrder {
        /// The tag found there.
        tag: u32,
        /// Its 1-based position.
        position: usize,
    },
    /// Fewer than three fields: this header tag is missing.
    #[error("{} is missing", Named(*tag))]
    MissingHeader {
        /// The tag.
        tag: u32,
    },
    /// Longer than offsets of 32 bits reach.
    #[error("the message is {len} bytes, over 4 GiB")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

impl ParseError {
    /// The tag at fault, when known (RefTagID (371) of a Reject).
    pub fn tag(&self) -> Option<u32> {
        match *self {
            Self::NoEquals { tag, .. }
            | Self::EmptyValue { tag }
            | Self::Unterminated { tag }
            | Self::RepeatedTag { tag }
            | Self::OutOfOrder { tag, .. }
            | Self::MissingHeader { tag } => Some(tag),
            Self::TagNotNumeric { .. } | Self::TagZero { .. } | Self::TooLong { .. } => None,
        }
    }

    /// The FIX 4.4 SessionRejectReason (373) for a Reject of this message.
    pub fn session_reject_reason(&self) -> u32 {
        match self {
            Self::TagNotNumeric { .. } | Self::TagZero { .. } | Self::NoEquals { .. } => 0,
            Self::MissingHeader { .. } => 1,
            Self::EmptyValue { .. } => 4,
            Self::RepeatedTag { .. } => 13,
            Self::OutOfOrder { .. } => 14,
            Self::Unterminated { .. } | Self::TooLong { .. } => 99,
        }
    }
}

/// Why a field's value is absent or unusable. Messages name the tag: "Price (44) is missing".
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// A required field is absent.
    #[error("{} is missing", Named(*tag))]
    Missing {
        /// The tag.
        tag: u32,
    },
    /// The value has the wrong format.
    #[error("{} is not {why}", Named(*tag))]
    Format {
        /// The tag.
        tag: u32,
        /// What it should be ("digits", "Y or N", ...).
        why: &'static str,
    },
    /// The value is well-formed but out of range.
    #[error("{} is out of range: {why}", Named(*tag))]
    OutOfRange {
        /// The tag.
        tag: u32,
        /// The range.
        why: &'static str,
    },
    /// A decimal that did not parse at the asked scale.
    #[error("{} {error}", Named(*tag))]
    Decimal {
        /// The tag.
        tag: u32,
        /// Why.
        error: DecimalError,
    },
    /// The MsgType is not one Veloz speaks ([`crate::dictionary::validate`]).
    #[error("{} {msg_type:?} is not a message type Veloz accepts", Named(MSG_TYPE))]
    UnknownMsgType {
        /// The MsgType, lossily as text.
        msg_type: String,
    },
    /// The tag is not in Veloz's dictionary at all.
    #[error("{} is not a tag Veloz knows", Named(*tag))]
    UnknownTag {
        /// The tag.
        tag: u32,
    },
    /// The tag is known but not part of this message type.
    #[error("{} is not a field of {message}", Named(*tag))]
    NotInMessage {
        /// The tag.
        tag: u32,
        /// The message's name ("NewOrderSingle").
        message: &'static str,
    },
}

impl FieldError {
    /// The tag at fault (RefTagID (371) of a Reject).
    pub fn tag(&self) -> Option<u32> {
        match *self {
            Self::Missing { tag }
            | Self::Format { tag, .. }
            | Self::OutOfRange { tag, .. }
            | Self::Decimal { tag, .. }
            | Self::UnknownTag { tag }
            | Self::NotInMessage { tag, .. } => Some(tag),
            Self::UnknownMsgType { .. } => Some(MSG_TYPE),
        }
    }

    /// The FIX 4.4 SessionRejectReason (373) for a Reject of this message.
    pub fn session_reject_reason(&self) -> u32 {
        match self {
            Self::Missing { .. } => 1,
            Self::Format { .. }
            | Self::Decimal {
                error: DecimalError::Syntax,
                ..
            } => 6,
            Self::OutOfRange { .. } | Self::Decimal { .. } => 5,
            Self::UnknownMsgType { .. } => 11,
            Self::UnknownTag { .. } => 0,
            Self::NotInMessage { .. } => 2,
        }
    }
}

/// Parses framed messages, reusing one vector of field offsets (no allocation once it has
/// grown to the longest message seen).
#[derive(Debug, Default, Clone)]
pub struct Parser {
    /// (tag, value start, value end) of each field of the last message.
    fields: Vec<(u32, u32, u32)>,
}

/// Tags below this are checked for repeats with a bitset; above, by a scan.
const BITSET_TAGS: u32 = 1024;

impl Parser {
    /// A parser with room for a typical message.
    pub fn new() -> Parser {
        Parser {
            fields: Vec::with_capacity(32),
        }
    }

    /// Split `msg` (one framed message) into fields and check the invariants in the module
    /// docs. The result borrows the parser until it is dropped.
    pub fn parse<'a>(&'a mut self, msg: &'a [u8]) -> Result<Message<'a>, ParseError> {
        if u32::try_from(msg.len()).is_err() {
            return Err(ParseError::TooLong { len: msg.len() });
        }
        self.fields.clear();
        let mut seen = [0u64; (BITSET_TAGS / 64) as usize];
        let mut pos = 0;
        while pos < msg.len() {
            let (tag, start) = parse_tag(msg, pos)?;
            let Some(len) = msg[start..].iter().position(|&b| b == SOH) else {
                return Err(ParseError::Unterminated { tag });
            };
            if len == 0 {
                return Err(ParseError::EmptyValue { tag });
            }
            let end = start + len;
            let position = self.fields.len() + 1;
            let repeated = if tag < BITSET_TAGS {
                let (word, bit) = ((tag / 64) as usize, 1u64 << (tag % 64));
                let was = seen[word] & bit != 0;
                seen[word] |= bit;
                was
            } else {
                self.fields.iter().any(|f| f.0 == tag)
            };
            if repeated {
                return Err(ParseError::RepeatedTag { tag });
            }
            let expected = [BEGIN_STRING, BODY_LENGTH, MSG_TYPE]
                .get(position - 1)
                .copied();
            match expected {
                Some(want) if want != tag => return Err(ParseError::OutOfOrder { tag, position }),
                None if tag == BEGIN_STRING || tag == BODY_LENGTH || tag == MSG_TYPE => {
                    return Err(ParseError::OutOfOrder { tag, position })
                }
                _ => {}
            }
            if tag == CHECK_SUM && end + 1 != msg.len() {
                return Err(ParseError::OutOfOrder { tag, position });
            }
            // msg.len() fits u32 (checked above), so the offsets do.
            self.fields.push((tag, start as u32, end as u32));
            pos = end + 1;
        }
        if let Some(&tag) = [BEGIN_STRING, BODY_LENGTH, MSG_TYPE].get(self.fields.len()) {
            return Err(ParseError::MissingHeader { tag });
        }
        Ok(Message {
            bytes: msg,
            fields: &self.fields,
        })
    }
}

/// The tag of the field at `pos` and where its value starts.
fn parse_tag(msg: &[u8], pos: usize) -> Result<(u32, usize), ParseError> {
    let digits = msg[pos..]
        .iter()
        .take(10)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 9 || (digits > 1 && msg[pos] == b'0') {
        return Err(ParseError::TagNotNumeric { offset: pos });
    }
    let tag = msg[pos..pos + digits]
        .iter()
        .fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    if tag == 0 {
        return Err(ParseError::TagZero { offset: pos });
    }
    match msg.get(pos + digits) {
        Some(b'=') => Ok((tag, pos + digits + 1)),
        Some(&b) if b != SOH => Err(ParseError::TagNotNumeric { offset: pos }),
        _ => Err(ParseError::NoEquals { tag, offset: pos }),
    }
}

/// A parsed message: the bytes and the offsets of its fields (invariants in the module
/// docs). Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    fields: &'a [(u32, u32, u32)],
}

impl<'a> Message<'a> {
    fn value(&self, f: &(u32, u32, u32)) -> &'a [u8] {
        &self.bytes[f.1 as usize..f.2 as usize]
    }

    /// MsgType (35), the third field.
    pub fn msg_type(&self) -> &'a [u8] {
        self.value(&self.fields[2])
    }

    /// The value of `tag`, if present.
    pub fn get(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.0 == tag)
            .map(|f| self.value(f))
    }

    /// The value of `tag` as UTF-8 text.
    pub fn get_str(&self, tag: u32) -> Result<Option<&'a str>, FieldError> {
        self.get(tag)
            .map(|v| {
                std::str::from_utf8(v).map_err(|_| FieldError::Format {
                    tag,
                    why: "UTF-8 text",
                })
            })
            .transpose()
    }

    /// The value of `tag` as an unsigned integer (decimal digits only, no sign).
    pub fn get_u64(&self, tag: u32) -> Result<Option<u64>, FieldError> {
        self.get(tag).map(|v| to_u64(tag, v)).transpose()
    }

    /// The value of `tag` as one byte (a FIX `CHAR`).
    pub fn get_char(&self, tag: u32) -> Result<Option<u8>, FieldError> {
        self.get(tag)
            .map(|v| match v {
                [c] => Ok(*c),
                _ => Err(FieldError::Format {
                    tag,
                    why: "a single character",
                }),
            })
            .transpose()
    }

    /// The value of `tag` as a FIX `BOOLEAN`: `Y` or `N`.
    pub fn get_bool(&self, tag: u32) -> Result<Option<bool>, FieldError> {
        self.get(tag)
            .map(|v| match v {
                b"Y" => Ok(true),
                b"N" => Ok(false),
                _ => Err(FieldError::OutOfRange {
                    tag,
                    why: "a boolean is Y or N",
                }),
            })
            .transpose()
    }

    /// The value of `tag` as a decimal in integer units at `scale` ([`crate::parse_decimal`]).
    pub fn get_decimal(&self, tag: u32, scale: u8) -> Result<Option<i64>, FieldError> {
        self.get(tag)
            .map(|v| parse_decimal(v, scale).map_err(|error| FieldError::Decimal { tag, error }))
            .transpose()
    }

    /// The value of `tag` as a UTCTimestamp, in nanoseconds since the Unix epoch.
    pub fn get_timestamp(&self, tag: u32) -> Result<Option<u64>, FieldError> {
        self.get(tag)
            .map(|v| {
                parse_utc_timestamp(v).ok_or(FieldError::Format {
                    tag,
                    why: "a UTC timestamp (YYYYMMDD-HH:MM:SS[.sss])",
                })
            })
            .transpose()
    }

    /// [`Message::get`], with [`FieldError::Missing`] when absent.
    pub fn require(&self, tag: u32) -> Result<&'a [u8], FieldError> {
        self.get(tag).ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_str`], with [`FieldError::Missing`] when absent.
    pub fn require_str(&self, tag: u32) -> Result<&'a str, FieldError> {
        self.get_str(tag)?.ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_u64`], with [`FieldError::Missing`] when absent.
    pub fn require_u64(&self, tag: u32) -> Result<u64, FieldError> {
        self.get_u64(tag)?.ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_char`], with [`FieldError::Missing`] when absent.
    pub fn require_char(&self, tag: u32) -> Result<u8, FieldError> {
        self.get_char(tag)?.ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_bool`], with [`FieldError::Missing`] when absent.
    pub fn require_bool(&self, tag: u32) -> Result<bool, FieldError> {
        self.get_bool(tag)?.ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_decimal`], with [`FieldError::Missing`] when absent.
    pub fn require_decimal(&self, tag: u32, scale: u8) -> Result<i64, FieldError> {
        self.get_decimal(tag, scale)?
            .ok_or(FieldError::Missing { tag })
    }

    /// [`Message::get_timestamp`], with [`FieldError::Missing`] when absent.
    pub fn require_timestamp(&self, tag: u32) -> Result<u64, FieldError> {
        self.get_timestamp(tag)?.ok_or(FieldError::Missing { tag })
    }

    /// Every field in order, header and trailer included.
    pub fn fields(&self) -> impl Iterator<Item = (u32, &'a [u8])> {
        let m = *self;
        self.fields.iter().map(move |f| (f.0, m.value(f)))
    }

    /// MsgSeqNum (34), when present and digits.
    pub fn seq_num(&self) -> Option<u64> {
        self.get_u64(MSG_SEQ_NUM).ok().flatten()
    }

    /// The whole message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn to_u64(tag: u32, v: &[u8]) -> Result<u64, FieldError> {
    if !v.iter().all(u8::is_ascii_digit) {
        return Err(FieldError::Format { tag, why: "digits" });
    }
    v.iter()
        .try_fold(0u64, |a, &b| {
            a.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        })
        .ok_or(FieldError::OutOfRange {
            tag,
            why: "at most 18446744073709551615",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{PRICE, SIDE, SYMBOL, TEXT};

    fn parse(text: &str) -> Result<Vec<(u32, String)>, ParseError> {
        let bytes = text.replace('|', "\x01").into_bytes();
        let mut p = Parser::new();
        let m = p.parse(&bytes)?;
        Ok(m.fields()
            .map(|(t, v)| (t, String::from_utf8(v.to_vec()).unwrap()))
            .collect())
    }

    fn err(text: &str) -> ParseError {
        parse(text).unwrap_err()
    }

    const HEAD: &str = "8=FIX.4.4|9=5|35=D|";

    #[test]
    fn splits_fields_in_order() {
        let f = parse(&format!("{HEAD}55=BTC-USD|44=101.25|10=000|")).unwrap();
        let tags: Vec<u32> = f.iter().map(|x| x.0).collect();
        assert_eq!(tags, [8, 9, 35, 55, 44, 10]);
        assert_eq!(f[3].1, "BTC-USD");
    }

    #[test]
    fn each_breach_is_named_with_its_reject_reason() {
        let cases: [(String, ParseError, Option<u32>, u32); 12] = [
            (
                format!("{HEAD}5a=1|"),
                ParseError::TagNotNumeric { offset: 19 },
                None,
                0,
            ),
            (
                format!("{HEAD}=1|"),
                ParseError::TagNotNumeric { offset: 19 },
                None,
                0,
            ),
            (
                format!("{HEAD}055=1|"),
                ParseError::TagNotNumeric { offset: 19 },
                None,
                0,
            ),
            (
                format!("{HEAD}1234567890=1|"),
                ParseError::TagNotNumeric { offset: 19 },
                None,
                0,
            ),
            (
                format!("{HEAD}55|"),
                ParseError::NoEquals {
                    tag: 55,
                    offset: 19,
                },
                Some(55),
                0,
            ),
            (
                format!("{HEAD}0=1|"),
                ParseError::TagZero { offset: 19 },
                None,
                0,
            ),
            (
                format!("{HEAD}55=|"),
                ParseError::EmptyValue { tag: 55 },
                Some(55),
                4,
            ),
            (
                format!("{HEAD}55=X"),
                ParseError::Unterminated { tag: 55 },
                Some(55),
                99,
            ),
            (
                format!("{HEAD}55=X|55=Y|"),
                ParseError::RepeatedTag { tag: 55 },
                Some(55),
                13,
            ),
            (
                format!("{HEAD}7928=1|7928=2|"),
                ParseError::RepeatedTag { tag: 7928 },
                Some(7928),
                13,
            ),
            (
                "8=FIX.4.4|35=D|9=5|".to_string(),
                ParseError::OutOfOrder {
                    tag: 35,
                    position: 2,
                },
                Some(35),
                14,
            ),
            (
                "8=FIX.4.4|9=5|".to_string(),
                ParseError::MissingHeader { tag: 35 },
                Some(35),
                1,
            ),
        ];
        for (text, want, tag, reason) in cases {
            let e = err(&text);
            assert_eq!(e, want, "{text}");
            assert_eq!(
                (e.tag(), e.session_reject_reason()),
                (tag, reason),
                "{text}"
            );
        }
        assert_eq!(
            err(&format!("{HEAD}10=000|55=X|")),
            ParseError::OutOfOrder {
                tag: 10,
                position: 4
            }
        );
        assert_eq!(
            err(&format!("{HEAD}35=D|")),
            ParseError::RepeatedTag { tag: 35 }
        );
        assert_eq!(
            err(&format!("{HEAD}55=X|8=FIX.4.4|")),
            ParseError::RepeatedTag { tag: 8 }
        );
        assert_eq!(err(""), ParseError::MissingHeader { tag: 8 });
        assert_eq!(
            ParseError::EmptyValue { tag: PRICE }.to_string(),
            "Price (44) has no value"
        );
        assert_eq!(
            ParseError::OutOfOrder {
                tag: 55,
                position: 2
            }
            .to_string(),
            "Symbol (55) is field 2, out of the required order (BeginString (8), BodyLength (9), MsgType (35) first, CheckSum (10) last)"
        );
    }

    #[test]
    fn typed_getters_check_formats() {
        let bytes = format!("{HEAD}34=17|54=1|43=Y|97=N|44=101.25|38=1e3|58=caf\u{e9}|52=20231114-22:13:20.123|11=1x|37=99999999999999999999|141=y|55=AB|")
            .replace('|', "\x01")
            .into_bytes();
        let mut p = Parser::new();
        let m = p.parse(&bytes).unwrap();
        assert_eq!(m.msg_type(), b"D");
        assert_eq!(m.seq_num(), Some(17));
        assert_eq!(m.get_u64(34), Ok(Some(17)));
        assert_eq!(m.get_u64(999), Ok(None));
        assert_eq!(
            m.get_u64(11),
            Err(FieldError::Format {
                tag: 11,
                why: "digits"
            })
        );
        assert_eq!(m.get_u64(37).unwrap_err().session_reject_reason(), 5);
        assert_eq!(m.get_char(SIDE), Ok(Some(b'1')));
        assert_eq!(
            m.get_char(SYMBOL),
            Err(FieldError::Format {
                tag: SYMBOL,
                why: "a single character"
            })
        );
        assert_eq!(m.get_bool(43), Ok(Some(true)));
        assert_eq!(m.get_bool(97), Ok(Some(false)));
        assert!(m.get_bool(141).is_err());
        assert_eq!(m.get_decimal(PRICE, 4), Ok(Some(1_012_500)));
        assert_eq!(
            m.require_decimal(PRICE, 1),
            Err(FieldError::Decimal {
                tag: PRICE,
                error: DecimalError::TooManyDecimals { max: 1 }
            })
        );
        let e = m.require_decimal(38, 0).unwrap_err();
        assert_eq!((e.tag(), e.session_reject_reason()), (Some(38), 6));
        assert_eq!(e.to_string(), "OrderQty (38) not a decimal number (an optional '-', digits, an optional '.' and digits)");
        assert_eq!(m.get_str(TEXT), Ok(Some("caf\u{e9}")));
        assert_eq!(m.require_timestamp(52), Ok(1_700_000_000_123_000_000));
        assert_eq!(
            m.require_str(TEXT + 1000),
            Err(FieldError::Missing { tag: 1058 })
        );
        let missing = m.require_u64(PRICE + 100).unwrap_err();
        assert_eq!(missing.to_string(), "Tag (144) is missing");
        assert_eq!(
            FieldError::Missing { tag: PRICE }.to_string(),
            "Price (44) is missing"
        );
        assert_eq!(m.require_char(SIDE), Ok(b'1'));
        assert_eq!(m.require_bool(43), Ok(true));
        assert_eq!(m.require(SYMBOL), Ok(&b"AB"[..]));
        assert_eq!(m.bytes(), &bytes[..]);
    }

    #[test]
    fn invalid_utf8_is_a_format_error() {
        let mut bytes = format!("{HEAD}58=ab|").replace('|', "\x01").into_bytes();
        let at = bytes.len() - 2;
        bytes[at] = 0xff;
        let mut p = Parser::new();
        let m = p.parse(&bytes).unwrap();
        assert_eq!(
            m.get_str(TEXT),
            Err(FieldError::Format {
                tag: TEXT,
                why: "UTF-8 text"
            })
        );
    }

    #[test]
    fn the_parser_reuses_its_vector() {
        let mut p = Parser::new();
        let a = format!("{HEAD}55=A|").replace('|', "\x01").into_bytes();
        let b = format!("{HEAD}54=1|").replace('|', "\x01").into_bytes();
        assert!(p.parse(&a).unwrap().get(55).is_some());
        let cap = p.fields.capacity();
        let m = p.parse(&b).unwrap();
        assert_eq!((m.get(55), m.get(54)), (None, Some(&b"1"[..])));
        assert_eq!(p.fields.capacity(), cap);
    }
}

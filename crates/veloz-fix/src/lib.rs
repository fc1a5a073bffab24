//! Veloz FIX 4.4: a tag=value codec for the engine's FIX gateway.
//!
//! - [`frame()`]: where a message ends in a byte stream, BodyLength and CheckSum verified, with
//!   resynchronisation after garbage or a bad message ([`FrameStatus`], [`FrameError`]);
//! - [`Parser`]: a framed message into fields, without allocating ([`Message`], typed getters,
//!   errors that name the tag and carry their SessionRejectReason);
//! - [`Writer`]: outbound messages, BodyLength and CheckSum computed;
//! - [`parse_decimal`] and [`Writer::decimal`]: exact decimals as integer units at a scale;
//! - [`format_utc_timestamp`] and [`parse_utc_timestamp`]: UTCTimestamp to and from Unix ns;
//! - [`tags`]: tag numbers and names; [`dictionary`]: the messages Veloz speaks, the same as
//!   `schemas/fix44-veloz.xml`.
//!
//! Invariants: everything here is pure (no clock, no I/O); nothing on the frame or parse path
//! allocates once a [`Parser`] has grown; a [`Message`] only ever holds fields that passed
//! the checks in [`mod@parse`]'s docs. No unsafe code.
#![forbid(unsafe_code)]

pub mod decimal;
pub mod dictionary;
pub mod frame;
pub mod parse;
pub mod tags;
pub mod time;
pub mod write;

pub use decimal::{format_decimal, parse_decimal, DecimalError};
pub use frame::{checksum, frame, FrameError, FrameStatus};
pub use parse::{FieldError, Message, ParseError, Parser};
pub use time::{format_utc_timestamp, parse_utc_timestamp};
pub use write::Writer;

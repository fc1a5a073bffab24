//! [`WireError`]: everything that can be wrong with bytes from the network.
//!
//! Every variant names the message, field and value at fault, and maps to the
//! [`RejectReason`] the gateway answers with ([`WireError::reject_reason`]): the frame size
//! limit gives `FrameTooLarge`, a message type that is unknown or not accepted in that
//! direction gives `UnknownMessage`, anything else `MalformedMessage`. When the bad field is
//! in an order request whose `client_order_id` could be read, the error carries it, so the
//! reject can name the request.

use std::fmt;

use veloz_core::{ClientOrderId, RejectReason};

/// Which way a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a client to the engine: Logon, NewOrder, Cancel, Replace, MassCancel, Heartbeat,
    /// Logout.
    ClientToEngine,
    /// From the engine to a client: LogonAck, ExecutionReport, Trade, Heartbeat, Logout.
    EngineToClient,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToEngine => "client-to-engine",
            Direction::EngineToClient => "engine-to-client",
        })
    }
}

/// A frame or message that cannot be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix is above the configured limit. Raised before any of the body is
    /// read; the stream cannot be resynchronised, so the session must end.
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u32, max: u32 },
    /// Fewer than 4 bytes: not even a length prefix.
    #[error("frame is {len} bytes, shorter than its 4-byte length prefix")]
    FrameTooShort { len: usize },
    /// The length prefix does not match the bytes handed to the decoder.
    #[error("frame length prefix says {declared} bytes but {actual} bytes follow it")]
    LengthMismatch { declared: u32, actual: usize },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame: {buffered} bytes of an incomplete frame are buffered")]
    TruncatedStream { buffered: usize },
    /// The FlatBuffers verifier refused the body (out-of-bounds offsets, bad UTF-8,
    /// misalignment, too deep or too many tables, ...).
    #[error("frame body is not a valid veloz.wire.Message: {0}")]
    Verify(Box<flatbuffers::InvalidFlatbuffer>),
    /// `Message.payload_type` is NONE (0).
    #[error("Message.payload is missing (payload_type = 0, NONE)")]
    MissingPayload,
    /// `Message.payload_type` is not a message type this build knows.
    #[error("Message.payload_type = {value} is not a known message type")]
    UnknownMessageType { value: u8 },
    /// A known message that does not travel in this direction (e.g. an ExecutionReport sent
    /// by a client).
    #[error("{message} cannot be sent {direction}")]
    WrongDirection {
        message: &'static str,
        direction: Direction,
    },
    /// An enum field holds a value the schema does not define.
    #[error("{message}.{field} = {value} is not a valid {ty}{}", coid_suffix(*.client_order_id))]
    InvalidEnum {
        message: &'static str,
        field: &'static str,
        ty: &'static str,
        value: u64,
        client_order_id: Option<ClientOrderId>,
    },
    /// A field that must be present is absent.
    #[error("{message}.{field} is missing{}", coid_suffix(*.client_order_id))]
    MissingField {
        message: &'static str,
        field: &'static str,
        client_order_id: Option<ClientOrderId>,
    },
    /// A field whose value breaks a rule of the protocol.
    #[error("{message}.{field} = {value} is invalid: {why}{}", coid_suffix(*.client_order_id))]
    InvalidValue {
        message: &'static str,
        field: &'static str,
        value: i128,
        why: &'static str,
        client_order_id: Option<ClientOrderId>,
    },
}

fn coid_suffix(client_order_id: Option<ClientOrderId>) -> String {
    match client_order_id {
        Some(id) => format!(" (client_order_id {id})"),
        None => String::new(),
    }
}

impl From<flatbuffers::InvalidFlatbuffer> for WireError {
    fn from(e: flatbuffers::InvalidFlatbuffer) -> Self {
        WireError::Verify(Box::new(e))
    }
}

impl WireError {
    /// The reason code the gateway rejects the frame with.
    pub fn reject_reason(&self) -> RejectReason {
        match self {
            WireError::FrameTooLarge { .. } => RejectReason::FrameTooLarge,
            WireError::UnknownMessageType { .. } | WireError::WrongDirection { .. } => {
                RejectReason::UnknownMessage
            }
            WireError::FrameTooShort { .. }
            | WireError::LengthMismatch { .. }
            | WireError::TruncatedStream { .. }
            | WireError::Verify(_)
            | WireError::MissingPayload
            | WireError::InvalidEnum { .. }
            | WireError::MissingField { .. }
            | WireError::InvalidValue { .. } => RejectReason::MalformedMessage,
        }
    }

    /// The `client_order_id` of the request the error is about, when it could be read.
    pub fn client_order_id(&self) -> Option<ClientOrderId> {
        match self {
            WireError::InvalidEnum {
                client_order_id, ..
            }
            | WireError::MissingField {
                client_order_id, ..
            }
            | WireError::InvalidValue {
                client_order_id, ..
            } => *client_order_id,
            _ => None,
        }
    }

    /// True when the byte stream cannot continue after this error (the session must be
    /// closed): the frame boundaries are lost.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WireError::FrameTooLarge { .. } | WireError::TruncatedStream { .. }
        )
    }
}

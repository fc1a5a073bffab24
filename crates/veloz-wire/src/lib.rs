//! The wire protocol: FlatBuffers messages over TCP, framed by a `u32` little-endian length.
//!
//! `docs/protocol.md` is the reference (framing, session flow, every message, field, unit and
//! code); `schemas/veloz.fbs` is the schema.
//!
//! Layout:
//! - [`generated`]: what `flatc` 25.12.19 writes (`make schema`); never edited by hand, the
//!   only place in the module with `unsafe` (inside the generated accessors);
//! - [`frame`]: cutting a byte stream into frames, with the size limit checked before a body
//!   is read;
//! - [`decode`]: verifier, then validation and conversion to typed messages and core
//!   [`Command`](veloz_core::Command)s; `fields` (private): the order requests read straight
//!   from the frame with the verifier's checks made inline (the hot path);
//! - [`encode`]: typed messages and core [`Event`](veloz_core::Event)s to frames through one
//!   reusable builder; `template` (private): execution reports by patching a prepared frame
//!   of fixed layout (the hot path);
//! - [`convert`]: the code tables shared by both (core enums <-> schema enums) and the
//!   event -> execution report mapping;
//! - [`message`]: the typed messages; [`error`]: [`WireError`].
//!
//! Invariants: every hand-written module here forbids `unsafe`; every byte from the network
//! passes the FlatBuffers verifier, or for the order requests the same checks made inline,
//! before a field is read; a bad frame yields a
//! [`WireError`] naming the field and value and mapping to a
//! [`RejectReason`](veloz_core::RejectReason), never a panic; the account of an order comes
//! from the session, never from the wire.
#![deny(unsafe_code)]

pub mod convert;
pub mod decode;
pub mod encode;
pub mod error;
mod fields;
pub mod frame;
// Generated FlatBuffers code uses `unsafe` inside its accessors; hand-written modules may not.
#[allow(unsafe_code, missing_debug_implementations)]
pub mod generated;
pub mod message;
pub mod skim;
mod template;

#[cfg(test)]
mod codec_tests;

pub use convert::{cancel_reason_from_code, execution_reports, trade_print, ExecutionReports};
pub use decode::{decode_client, decode_engine, verify_frame, VerifyLimits};
pub use encode::FrameEncoder;
pub use error::{Direction, WireError};
pub use frame::{declared_len, FrameDecoder, DEFAULT_MAX_FRAME_LEN, LENGTH_PREFIX_LEN};
pub use message::{
    AssetBalance, BalanceReport, ClientMessage, EngineMessage, ExecType, ExecutionReport,
    Heartbeat, InstrumentInfo, Liquidity, Logon, LogonAck, Logout, LogoutReason, OpenOrdersEnd,
    OrderStatus, Query, ShardBalance, StreamResumed, TradePrint,
};

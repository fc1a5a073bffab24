//! The binary feed's bytes (`schemas/md.fbs`, docs/market-data.md): the one hand-written
//! module that builds frames with the generated code ([`crate::generated`]) and converts what
//! it reads into this crate's types.
//!
//! | module | what |
//! |---|---|
//! | [`encode`] | [`MdEncoder`]: each message kind into one reusable builder, a whole frame out |
//! | [`decode`] | [`decode_server`], [`decode_client`]: a verified frame into [`ServerMsg`] / [`ClientMsg`] |
//! | [`frame`] | [`FrameReader`]: a byte stream cut into frames, with a length limit |
//!
//! A frame is a FlatBuffers size-prefixed buffer: a `u32` little-endian body length, then
//! the body, whose root is `veloz.md.Message`, exactly as the order-entry protocol frames.
//!
//! Invariants: every byte from the network is verified before it is read, and every
//! value is checked on the way in (an unknown side or channel, a missing field, a
//! message sent the wrong way is a [`DecodeError`] naming the message and the value); a
//! decoded update is an [`MdMessage`], a decoded snapshot an [`L3Snapshot`] /
//! [`L2Snapshot`], so a subscriber applies them with [`crate::Subscriber`] as they are.

pub mod decode;
pub mod encode;
pub mod frame;

pub use decode::{decode_client, decode_server};
pub use encode::MdEncoder;
pub use frame::FrameReader;

use veloz_core::{Seq, SymbolId};

use crate::book::{L2Snapshot, L3Snapshot};
use crate::message::{Channel, MdMessage, Quote};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// The largest frame a client accepts by default (an L3 snapshot of a deep book is large).
pub const DEFAULT_MAX_SERVER_FRAME: u32 = 64 << 20;
/// The largest request a server accepts: requests are small (a subscription lists names).
pub const DEFAULT_MAX_CLIENT_FRAME: u32 = 64 << 10;

/// An instrument as the feed names it (in [`Hello`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolDef {
    pub id: SymbolId,
    pub name: String,
    /// Prices are integer counts of `10^-price_scale` quote units.
    pub price_scale: u8,
}

/// The first message of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The feed session (the engine run); a new one restarts every sequence at 1.
    pub session: u64,
    /// A heartbeat comes after this long without any other message.
    pub heartbeat_ms: u64,
    /// Every instrument, ascending id.
    pub symbols: Vec<SymbolDef>,
}

impl Hello {
    /// The instrument with id `id`.
    pub fn symbol(&self, id: SymbolId) -> Option<&SymbolDef> {
        self.symbols.iter().find(|s| s.id == id)
    }

    /// The instrument named `name`.
    pub fn by_name(&self, name: &str) -> Option<&SymbolDef> {
        self.symbols.iter().find(|s| s.name == name)
    }
}

/// An instrument's best bid and ask as of top message `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopSnapshot {
    pub symbol: SymbolId,
    pub seq: u64,
    pub bid: Option<Quote>,
    pub ask: Option<Quote>,
}

/// An instrument's latest public trades (oldest first, each an [`crate::MdBody::Trade`]
/// message); `seq` is the last trades message of the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TradesSnapshot {
    pub symbol: SymbolId,
    pub seq: u64,
    pub trades: Vec<MdMessage>,
}

/// A snapshot of one (symbol, channel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Snapshot {
    L3(L3Snapshot),
    L2(L2Snapshot),
    Top(TopSnapshot),
    Trades(TradesSnapshot),
}

impl Snapshot {
    pub fn symbol(&self) -> SymbolId {
        match self {
            Snapshot::L3(s) => s.symbol,
            Snapshot::L2(s) => s.symbol,
            Snapshot::Top(s) => s.symbol,
            Snapshot::Trades(s) => s.symbol,
        }
    }

    /// The last message of its channel it includes.
    pub fn seq(&self) -> u64 {
        match self {
            Snapshot::L3(s) => s.seq,
            Snapshot::L2(s) => s.seq,
            Snapshot::Top(s) => s.seq,
            Snapshot::Trades(s) => s.seq,
        }
    }

    pub fn channel(&self) -> Channel {
        match self {
            Snapshot::L3(_) => Channel::L3,
            Snapshot::L2(_) => Channel::L2,
            Snapshot::Top(_) => Channel::Top,
            Snapshot::Trades(_) => Channel::Trades,
        }
    }
}

/// A snapshot as sent: the session it belongs to and the engine command it includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMsg {
    pub session: u64,
    /// The last engine command of the instrument's shard included (when the server says).
    pub cmd_seq: Option<Seq>,
    pub snapshot: Snapshot,
}

/// Where the feed has come: per shard, the last engine command published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watermarks {
    pub session: u64,
    pub watermarks: Vec<Seq>,
}

/// What a server sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMsg {
    Hello(Hello),
    Snapshot(SnapshotMsg),
    Update(MdMessage),
    Heartbeat(Watermarks),
    Pong {
        id: u64,
        marks: Watermarks,
    },
    /// A request was not carried out; the connection stays.
    Refused(String),
    /// The server closes the connection after this.
    Goodbye(String),
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// Empty `symbols`: every instrument; empty `channels`: every channel.
    Subscribe {
        symbols: Vec<String>,
        channels: Vec<Channel>,
    },
    /// Empty lists: all.
    Unsubscribe {
        symbols: Vec<String>,
        channels: Vec<Channel>,
    },
    SnapshotRequest {
        symbol: String,
        channel: Channel,
    },
    Ping {
        id: u64,
    },
}

/// A frame that cannot be accepted; each names the message, field and value at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u32, max: u32 },
    #[error("frame body is not a valid veloz.md.Message: {0}")]
    Verify(String),
    #[error("Message.payload is missing (payload_type = 0, NONE)")]
    MissingPayload,
    #[error("Message.payload_type = {0} is not a known message type")]
    UnknownMessageType(u8),
    #[error("{message} is a {direction} message, not accepted here")]
    WrongDirection {
        message: &'static str,
        direction: &'static str,
    },
    #[error("{message}.{field} is missing")]
    MissingField {
        message: &'static str,
        field: &'static str,
    },
    #[error("{message}.{field} = {value} is not a known side")]
    BadSide {
        message: &'static str,
        field: &'static str,
        value: u8,
    },
    #[error("{message}.{field} = {value} is not a known channel")]
    BadChannel {
        message: &'static str,
        field: &'static str,
        value: u8,
    },
    #[error("Update.body_type = {0} is not a known update (NONE or newer than this build)")]
    UnknownBody(u8),
    #[error("{message}.{field} = {value}: {why}")]
    BadValue {
        message: &'static str,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
}

#[cfg(test)]
mod tests;

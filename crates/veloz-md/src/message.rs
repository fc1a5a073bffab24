//! Market-data messages.
//!
//! Four channels per instrument, each with its own gap-free sequence:
//! - [`Channel::Trades`]: public trades ([`MdBody::Trade`]);
//! - [`Channel::L3`]: order by order ([`MdBody::Add`], [`MdBody::Modify`],
//!   [`MdBody::Delete`], [`MdBody::Execute`]); applying them in order to an [`L3Book`]
//!   reproduces the engine's book, queue order included;
//! - [`Channel::L2`]: a price level's new total ([`MdBody::Level`], quantity 0 = the level
//!   is gone), one per level a command changed;
//! - [`Channel::Top`]: best bid and ask ([`MdBody::Top`]) whenever either changes.
//!
//! Within one command the messages come in the order of the core's events: a trade, then
//! the maker's execution; an incoming order that rests is added after its executions; the
//! L2 levels and the top of book follow the command's L3 messages.
//!
//! [`L3Book`]: crate::L3Book

use veloz_core::{OrderId, Price, Qty, Seq, Side, SymbolId, Timestamp, TradeId};

/// A channel of an instrument's feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Trades = 0,
    L2 = 1,
    L3 = 2,
    Top = 3,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Trades, Channel::L2, Channel::L3, Channel::Top];

    /// The channel's name in configuration, JSON and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Trades => "trades",
            Channel::L2 => "l2",
            Channel::L3 => "l3",
            Channel::Top => "top",
        }
    }
}

/// A price and the total open quantity there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub price: Price,
    pub qty: Qty,
}

/// One market-data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdMessage {
    pub symbol: SymbolId,
    /// The message's number in its `(symbol, channel)` sequence, from 1.
    pub seq: u64,
    /// The engine sequence number of the command that caused it (ties the feed to the
    /// journal: a snapshot taken after command `cmd_seq` includes it).
    pub cmd_seq: Seq,
    /// The command's timestamp (nanoseconds since the epoch), as journaled.
    pub ts: Timestamp,
    pub body: MdBody,
}

impl MdMessage {
    pub fn channel(&self) -> Channel {
        self.body.channel()
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdBody {
    /// A public trade at the maker's price; `aggressor` is the incoming order's side.
    Trade {
        trade_id: TradeId,
        price: Price,
        qty: Qty,
        aggressor: Side,
    },
    /// An order now rests at the back of its level.
    Add {
        order_id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
    },
    /// A resting order's open quantity went down in place (a replace that kept priority).
    Modify {
        order_id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
    },
    /// A resting order left the book without trading (cancelled, or replaced with a loss
    /// of priority: an [`MdBody::Add`] at its new place follows if it rests again).
    Delete {
        order_id: OrderId,
        side: Side,
        price: Price,
    },
    /// A resting order traded `qty`; `leaves` is what stays open (0: it left the book).
    Execute {
        order_id: OrderId,
        side: Side,
        price: Price,
        qty: Qty,
        leaves: Qty,
        trade_id: TradeId,
    },
    /// A level's new total (`qty` 0 and `orders` 0: the level is gone).
    Level {
        side: Side,
        price: Price,
        qty: Qty,
        orders: u32,
    },
    /// The best bid and ask after a command that changed either.
    Top {
        bid: Option<Quote>,
        ask: Option<Quote>,
    },
}

impl MdBody {
    pub fn channel(&self) -> Channel {
        match self {
            MdBody::Trade { .. } => Channel::Trades,
            MdBody::Add { .. }
            | MdBody::Modify { .. }
            | MdBody::Delete { .. }
            | MdBody::Execute { .. } => Channel::L3,
            MdBody::Level { .. } => Channel::L2,
            MdBody::Top { .. } => Channel::Top,
        }
    }
}

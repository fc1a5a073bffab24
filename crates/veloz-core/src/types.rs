//! Internal command and event types of the matching core.
//!
//! These are the fixed-size values that flow between the gateway, the rings, the journal and
//! the books. They carry no pointers or heap data, so a command can be copied into a ring slot
//! or a journal record as it is.
//!
//! Units (see `docs/protocol.md`):
//! - a [`Price`] is an integer count of the instrument's price unit (`10^-price_scale` of the
//!   quote currency); it must be a multiple of the instrument's `tick_size`;
//! - a [`Qty`] is an integer count of the instrument's quantity unit; it must be a multiple of
//!   the instrument's `lot_size`.
//!
//! No floating point appears anywhere in the book.
//!
//! Operator commands ([`AdminCommand`]) and their types live in `types/admin.rs`; reject and
//! cancel reasons ([`RejectReason`], [`CancelReason`]) in `types/reasons.rs`.

mod admin;
mod reasons;
pub use admin::{AdminAction, AdminCommand, AdminOutcome};
pub use reasons::{CancelReason, RejectReason};

/// Price in the instrument's price unit (multiple of its tick size).
pub type Price = i64;
/// Quantity in the instrument's quantity unit (multiple of its lot size).
pub type Qty = u64;
/// Order id assigned by the engine; unique within the engine (the shard id is in the top bits).
pub type OrderId = u64;
/// Trade id assigned by the engine; unique within the engine (the shard id is in the top bits).
pub type TradeId = u64;
/// Account id, bound to the session at logon.
pub type AccountId = u32;
/// Instrument id from the configuration.
pub type SymbolId = u32;
/// Client order id chosen by the client; echoed in every report about the request.
pub type ClientOrderId = u64;
/// Shard sequence number assigned when the command is sequenced.
pub type Seq = u64;
/// Nanoseconds since the Unix epoch, assigned when the command is sequenced.
pub type Timestamp = u64;

/// Side of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    Buy = 0,
    Sell = 1,
}

impl Side {
    /// The one spelling of the side in JSON, CSV, logs and the docs: `buy`, `sell`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    pub fn from_u8(v: u8) -> Option<Side> {
        match v {
            0 => Some(Side::Buy),
            1 => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Limit or market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderKind {
    /// Trades at its price or better; the rest follows the time in force.
    Limit = 0,
    /// Trades against the opposite side up to the instrument's market protection band
    /// (measured from the best opposite price at arrival); it never rests.
    Market = 1,
}

impl OrderKind {
    /// The one spelling of the order type in JSON, CSV, logs and the docs: `limit`, `market`.
    pub fn name(self) -> &'static str {
        match self {
            OrderKind::Limit => "limit",
            OrderKind::Market => "market",
        }
    }

    pub fn from_u8(v: u8) -> Option<OrderKind> {
        match v {
            0 => Some(OrderKind::Limit),
            1 => Some(OrderKind::Market),
            _ => None,
        }
    }
}

/// What happens to the part of an order that does not trade at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till cancelled: the rest rests in the book.
    Gtc = 0,
    /// Immediate or cancel: the rest is cancelled.
    Ioc = 1,
    /// Fill or kill: trades only if the whole quantity can trade at once, else nothing trades.
    Fok = 2,
}

impl TimeInForce {
    /// The one spelling of the time in force in JSON, CSV, logs and the docs: `gtc`, `ioc`,
    /// `fok`.
    pub fn name(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "gtc",
            TimeInForce::Ioc => "ioc",
            TimeInForce::Fok => "fok",
        }
    }

    pub fn from_u8(v: u8) -> Option<TimeInForce> {
        match v {
            0 => Some(TimeInForce::Gtc),
            1 => Some(TimeInForce::Ioc),
            2 => Some(TimeInForce::Fok),
            _ => None,
        }
    }
}

/// Self-trade prevention: what happens when an incoming order would trade with a resting
/// order of the same account. The incoming order's mode decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SelfTradePrevention {
    /// The two orders trade with each other.
    Allow = 0,
    /// The resting order is cancelled and matching continues.
    CancelResting = 1,
    /// The rest of the incoming order is cancelled.
    CancelIncoming = 2,
    /// Both the resting order and the rest of the incoming order are cancelled.
    CancelBoth = 3,
}

impl SelfTradePrevention {
    /// The one spelling of the mode in JSON, CSV, logs and the docs, the one the
    /// configuration takes (`stp = "cancel_resting"`): `allow`, `cancel_resting`,
    /// `cancel_incoming`, `cancel_both`.
    pub fn name(self) -> &'static str {
        match self {
            SelfTradePrevention::Allow => "allow",
            SelfTradePrevention::CancelResting => "cancel_resting",
            SelfTradePrevention::CancelIncoming => "cancel_incoming",
            SelfTradePrevention::CancelBoth => "cancel_both",
        }
    }

    pub fn from_u8(v: u8) -> Option<SelfTradePrevention> {
        match v {
            0 => Some(SelfTradePrevention::Allow),
            1 => Some(SelfTradePrevention::CancelResting),
            2 => Some(SelfTradePrevention::CancelIncoming),
            3 => Some(SelfTradePrevention::CancelBoth),
            _ => None,
        }
    }
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub account: AccountId,
    pub symbol: SymbolId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    /// Rejected with [`RejectReason::PostOnlyWouldCross`] if it would trade on arrival.
    pub post_only: bool,
    pub stp: SelfTradePrevention,
    /// Limit price. For a market order: 0, or, for a market fill-or-kill order, a positive
    /// **budget** for the whole quantity (exchange-core's FOK_BUDGET): the sum of
    /// `price * qty` over its fills must be at most this for a buy and at least this for a
    /// sell, or it is cancelled with [`CancelReason::FillOrKill`] and nothing trades. Other
    /// market orders ignore it.
    pub price: Price,
    pub qty: Qty,
}

impl NewOrder {
    /// A plain good-till-cancel limit order: not post-only, self-trade prevention `Allow`
    /// (the common case of tests, benches and generators; set the fields for the others).
    pub fn limit(
        account: AccountId,
        symbol: SymbolId,
        client_order_id: ClientOrderId,
        side: Side,
        price: Price,
        qty: Qty,
    ) -> NewOrder {
        NewOrder {
            account,
            symbol,
            client_order_id,
            side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: SelfTradePrevention::Allow,
            price,
            qty,
        }
    }
}

/// Bit 63 of a cancel's or replace's `order_id`: the other bits are the client order id the
/// order was entered with, not an engine order id. Engine order ids never have it (their
/// top 16 bits are the shard, below 2^15); a client order id used this way must be below
/// 2^63. Kept in the one field so that a [`Command`] stays 48 bytes.
pub const BY_CLIENT_ID: OrderId = 1 << 63;

/// How a request names an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRef {
    /// The engine's order id.
    Id(OrderId),
    /// The client order id the order was entered with (below 2^63).
    ClientId(ClientOrderId),
}

impl OrderRef {
    /// As a cancel's or replace's `order_id`.
    #[inline]
    pub fn raw(self) -> OrderId {
        match self {
            OrderRef::Id(id) => id,
            OrderRef::ClientId(c) => BY_CLIENT_ID | c,
        }
    }

    /// What a cancel's or replace's `order_id` names.
    #[inline]
    pub fn from_raw(raw: OrderId) -> OrderRef {
        if raw & BY_CLIENT_ID != 0 {
            OrderRef::ClientId(raw & !BY_CLIENT_ID)
        } else {
            OrderRef::Id(raw)
        }
    }
}

/// Cancel the rest of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelOrder {
    pub account: AccountId,
    pub symbol: SymbolId,
    /// The id of this request, echoed in the report.
    pub client_order_id: ClientOrderId,
    /// The order to cancel, as [`OrderRef::raw`]: its engine id, or [`BY_CLIENT_ID`] with
    /// the client order id it was entered with (so a client can cancel before it has seen
    /// the Accepted).
    pub order_id: OrderId,
}

/// Change the price and/or open quantity of a resting order.
///
/// `qty` is the new open (leaves) quantity. Same price with a lower quantity keeps time
/// priority; a price change or a higher quantity moves the order to the back of its (new)
/// level, and a new price that crosses trades at once like an incoming order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplaceOrder {
    pub account: AccountId,
    pub symbol: SymbolId,
    /// The id of this request, echoed in the report.
    pub client_order_id: ClientOrderId,
    /// The order to change, as [`OrderRef::raw`] (see [`CancelOrder::order_id`]).
    pub order_id: OrderId,
    pub price: Price,
    pub qty: Qty,
}

/// Cancel every resting order of an account, in one symbol or in all of the engine's symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancel {
    pub account: AccountId,
    /// The id of this request, echoed in the report.
    pub client_order_id: ClientOrderId,
    pub symbol: Option<SymbolId>,
    /// The reason each cancelled order is reported with: [`CancelReason::MassCancel`] when
    /// the account asked, [`CancelReason::CancelOnDisconnect`] when the engine cancels for
    /// the account's last session going away. Any other reason is refused
    /// ([`RejectReason::InvalidOrderType`]).
    pub reason: CancelReason,
}

impl MassCancel {
    /// The account's own mass cancel (what a client sends).
    pub fn requested(
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: Option<SymbolId>,
    ) -> MassCancel {
        MassCancel {
            account,
            client_order_id,
            symbol,
            reason: CancelReason::MassCancel,
        }
    }
}

/// A command as the matching core applies it. Sequence number and timestamp are passed
/// beside it (see [`crate::Engine::apply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    New(NewOrder),
    Cancel(CancelOrder),
    Replace(ReplaceOrder),
    MassCancel(MassCancel),
    /// An operator's command (halt, resume, kill switch); sent by no member account.
    Admin(AdminCommand),
}

impl Command {
    /// The account that sent the command (0 for an operator's [`Command::Admin`], which no
    /// member sends, even when it names an account).
    pub fn account(&self) -> AccountId {
        match self {
            Command::New(c) => c.account,
            Command::Cancel(c) => c.account,
            Command::Replace(c) => c.account,
            Command::MassCancel(c) => c.account,
            Command::Admin(_) => 0,
        }
    }

    /// The symbol the command is about (`None` for a mass cancel over all symbols, and for
    /// an admin command about an account).
    pub fn symbol(&self) -> Option<SymbolId> {
        match self {
            Command::New(c) => Some(c.symbol),
            Command::Cancel(c) => Some(c.symbol),
            Command::Replace(c) => Some(c.symbol),
            Command::MassCancel(c) => c.symbol,
            Command::Admin(a) => a.action.symbol(),
        }
    }

    /// The client's id for this request (0 for an admin command: its id is its
    /// `request_id`).
    pub fn client_order_id(&self) -> ClientOrderId {
        match self {
            Command::New(c) => c.client_order_id,
            Command::Cancel(c) => c.client_order_id,
            Command::Replace(c) => c.client_order_id,
            Command::MassCancel(c) => c.client_order_id,
            Command::Admin(_) => 0,
        }
    }
}

/// One side of a trade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    /// Open quantity of this order after the trade (0 = filled).
    pub leaves_qty: Qty,
}

/// What the matching core reports. Every request produces at least one event; a trade
/// carries both sides (maker and taker), and the gateway turns it into one execution report
/// for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new order passed validation and was given an id. Followed by trades and/or a
    /// cancel of its rest, as its type says; a GTC order that is not filled rests.
    Accepted {
        order_id: OrderId,
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
    },
    Trade {
        trade_id: TradeId,
        symbol: SymbolId,
        price: Price,
        qty: Qty,
        /// The taker's side.
        aggressor: Side,
        maker: Fill,
        taker: Fill,
    },
    /// An order (or its rest) left the book. `client_order_id` is the cancel request's id
    /// when the owner asked, else the order's own.
    Cancelled {
        order_id: OrderId,
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: SymbolId,
        side: Side,
        /// Quantity that was open and is now cancelled.
        qty: Qty,
        reason: CancelReason,
    },
    /// A replace took effect. Trades may follow if the new price crosses.
    Replaced {
        order_id: OrderId,
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        qty: Qty,
        kept_priority: bool,
    },
    /// A mass cancel finished; `count` orders were cancelled (each reported before this).
    MassCancelled {
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: Option<SymbolId>,
        count: u32,
    },
    /// A request was refused; nothing changed.
    Rejected {
        account: AccountId,
        client_order_id: ClientOrderId,
        symbol: SymbolId,
        /// The order the request named, or 0 for a new order.
        order_id: OrderId,
        reason: RejectReason,
    },
    /// An operator's [`Command::Admin`] was applied, or changed nothing (`outcome` says
    /// why). For a [`AdminAction::DisableAccount`] the `Cancelled` events of the account's
    /// orders come before it. It belongs to the operator, not to a member: it goes to no
    /// account's report stream.
    Admin {
        request_id: u64,
        action: AdminAction,
        /// `outcome == AdminOutcome::Applied`: the state changed.
        applied: bool,
        outcome: AdminOutcome,
    },
}

/// Which execution report(s) of an [`Event`] a delivery carries (see
/// `crate::engine::streams`: every report has its place in its account's stream).
///
/// A trade gives two reports, the maker's first and then the taker's (the order of
/// `veloz_wire::execution_reports`); [`Event::Admin`] gives none (it is the operator's);
/// every other event gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The one report of a non-trade event (`Accepted`, `Cancelled`, `Replaced`,
    /// `MassCancelled`, `Rejected`), to the event's `account`.
    All,
    /// The maker's report of a [`Event::Trade`], to `maker.account`.
    Maker,
    /// The taker's report of a [`Event::Trade`], to `taker.account`.
    Taker,
}

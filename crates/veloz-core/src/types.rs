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
    /// Limit price; ignored (and should be 0) for market orders.
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

/// Cancel the rest of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelOrder {
    pub account: AccountId,
    pub symbol: SymbolId,
    /// The id of this request, echoed in the report.
    pub client_order_id: ClientOrderId,
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
}

/// A command as the matching core applies it. Sequence number and timestamp are passed
/// beside it (see [`crate::Engine::apply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    New(NewOrder),
    Cancel(CancelOrder),
    Replace(ReplaceOrder),
    MassCancel(MassCancel),
}

impl Command {
    /// The account that sent the command.
    pub fn account(&self) -> AccountId {
        match self {
            Command::New(c) => c.account,
            Command::Cancel(c) => c.account,
            Command::Replace(c) => c.account,
            Command::MassCancel(c) => c.account,
        }
    }

    /// The symbol the command is about (`None` for a mass cancel over all symbols).
    pub fn symbol(&self) -> Option<SymbolId> {
        match self {
            Command::New(c) => Some(c.symbol),
            Command::Cancel(c) => Some(c.symbol),
            Command::Replace(c) => Some(c.symbol),
            Command::MassCancel(c) => c.symbol,
        }
    }

    /// The client's id for this request.
    pub fn client_order_id(&self) -> ClientOrderId {
        match self {
            Command::New(c) => c.client_order_id,
            Command::Cancel(c) => c.client_order_id,
            Command::Replace(c) => c.client_order_id,
            Command::MassCancel(c) => c.client_order_id,
        }
    }
}

/// Why a request was rejected. The numeric codes are part of the wire protocol and of the
/// journal format: never renumber, only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum RejectReason {
    UnknownSymbol = 1,
    PriceOffTick = 2,
    QtyOffLot = 3,
    QtyBelowMin = 4,
    QtyAboveMax = 5,
    PriceOutsideBand = 6,
    UnknownOrder = 7,
    NotOrderOwner = 8,
    DuplicateClientOrderId = 9,
    PostOnlyWouldCross = 10,
    InvalidPrice = 11,
    /// A market order that is also post-only, or carries GTC: it can never rest.
    InvalidOrderType = 12,
    /// A replace that changes nothing.
    NoChange = 13,
    // Codes from 100 up are given by the gateway or the sequencer, before a command reaches
    // the core.
    MalformedMessage = 100,
    NotLoggedOn = 101,
    UnknownMessage = 102,
    FrameTooLarge = 103,
    Throttled = 104,
    EngineShuttingDown = 105,
    /// The shard's journal cannot take the command now (disk full, a write or sync error):
    /// nothing changed; retry later (docs/operations.md, "Journal unavailable").
    JournalUnavailable = 106,
}

impl RejectReason {
    pub const ALL: [RejectReason; 20] = [
        RejectReason::UnknownSymbol,
        RejectReason::PriceOffTick,
        RejectReason::QtyOffLot,
        RejectReason::QtyBelowMin,
        RejectReason::QtyAboveMax,
        RejectReason::PriceOutsideBand,
        RejectReason::UnknownOrder,
        RejectReason::NotOrderOwner,
        RejectReason::DuplicateClientOrderId,
        RejectReason::PostOnlyWouldCross,
        RejectReason::InvalidPrice,
        RejectReason::InvalidOrderType,
        RejectReason::NoChange,
        RejectReason::MalformedMessage,
        RejectReason::NotLoggedOn,
        RejectReason::UnknownMessage,
        RejectReason::FrameTooLarge,
        RejectReason::Throttled,
        RejectReason::EngineShuttingDown,
        RejectReason::JournalUnavailable,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<RejectReason> {
        RejectReason::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// A short stable name, used in metrics labels and reports.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::UnknownSymbol => "unknown_symbol",
            RejectReason::PriceOffTick => "price_off_tick",
            RejectReason::QtyOffLot => "qty_off_lot",
            RejectReason::QtyBelowMin => "qty_below_min",
            RejectReason::QtyAboveMax => "qty_above_max",
            RejectReason::PriceOutsideBand => "price_outside_band",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::NotOrderOwner => "not_order_owner",
            RejectReason::DuplicateClientOrderId => "duplicate_client_order_id",
            RejectReason::PostOnlyWouldCross => "post_only_would_cross",
            RejectReason::InvalidPrice => "invalid_price",
            RejectReason::InvalidOrderType => "invalid_order_type",
            RejectReason::NoChange => "no_change",
            RejectReason::MalformedMessage => "malformed_message",
            RejectReason::NotLoggedOn => "not_logged_on",
            RejectReason::UnknownMessage => "unknown_message",
            RejectReason::FrameTooLarge => "frame_too_large",
            RejectReason::Throttled => "throttled",
            RejectReason::EngineShuttingDown => "engine_shutting_down",
            RejectReason::JournalUnavailable => "journal_unavailable",
        }
    }
}

/// Why (part of) an order left the book without trading. Codes are part of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CancelReason {
    /// The owner asked for it.
    Requested = 1,
    /// The rest of an IOC or market order that could not trade at once.
    ImmediateOrCancel = 2,
    /// A fill-or-kill order that could not trade in full.
    FillOrKill = 3,
    /// Self-trade prevention.
    SelfTrade = 4,
    /// A mass cancel.
    MassCancel = 5,
    /// The rest of a market order beyond its protection band.
    ProtectionBand = 6,
    /// A market order that found no opposite side.
    NoLiquidity = 7,
}

impl CancelReason {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn name(self) -> &'static str {
        match self {
            CancelReason::Requested => "requested",
            CancelReason::ImmediateOrCancel => "immediate_or_cancel",
            CancelReason::FillOrKill => "fill_or_kill",
            CancelReason::SelfTrade => "self_trade",
            CancelReason::MassCancel => "mass_cancel",
            CancelReason::ProtectionBand => "protection_band",
            CancelReason::NoLiquidity => "no_liquidity",
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
}

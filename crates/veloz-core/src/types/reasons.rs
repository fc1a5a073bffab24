//! Why a request was refused ([`RejectReason`]) and why an order left the book without
//! trading ([`CancelReason`]). Both codes are part of the wire protocol and of the journal
//! format: never renumber, only append.

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
    /// A new order or replace in a halted instrument (`AdminAction::HaltInstrument`).
    InstrumentHalted = 14,
    /// A new order or replace of a disabled account (`AdminAction::DisableAccount`).
    AccountDisabled = 15,
    /// The account's available balance of the asset the order must hold is short
    /// (exchange-core's `RISK_NSF`; docs/protocol.md, "Balances and risk").
    InsufficientFunds = 16,
    /// Above the account's `max_order_qty`.
    OrderQtyLimit = 17,
    /// Above the account's `max_order_notional`.
    OrderNotionalLimit = 18,
    /// The account already has `max_open_orders` open orders.
    OpenOrdersLimit = 19,
    /// The account's new orders within this second would pass `max_notional_per_sec`.
    NotionalRateLimit = 20,
    /// The order's hold or notional does not fit a 64-bit amount.
    AmountTooLarge = 21,
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
    pub const ALL: [RejectReason; 28] = [
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
        RejectReason::InstrumentHalted,
        RejectReason::AccountDisabled,
        RejectReason::InsufficientFunds,
        RejectReason::OrderQtyLimit,
        RejectReason::OrderNotionalLimit,
        RejectReason::OpenOrdersLimit,
        RejectReason::NotionalRateLimit,
        RejectReason::AmountTooLarge,
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
            RejectReason::InstrumentHalted => "instrument_halted",
            RejectReason::AccountDisabled => "account_disabled",
            RejectReason::InsufficientFunds => "insufficient_funds",
            RejectReason::OrderQtyLimit => "order_qty_limit",
            RejectReason::OrderNotionalLimit => "order_notional_limit",
            RejectReason::OpenOrdersLimit => "open_orders_limit",
            RejectReason::NotionalRateLimit => "notional_rate_limit",
            RejectReason::AmountTooLarge => "amount_too_large",
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
    /// The account's last session with cancel-on-disconnect on went away.
    CancelOnDisconnect = 8,
    /// The operator disabled the account (`AdminAction::DisableAccount`, the kill switch).
    AccountDisabled = 9,
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
            CancelReason::CancelOnDisconnect => "cancel_on_disconnect",
            CancelReason::AccountDisabled => "account_disabled",
        }
    }
}

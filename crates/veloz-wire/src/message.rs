//! Typed forms of the wire messages: what [`super::decode_client`] and
//! [`super::decode_engine`] return and what [`super::FrameEncoder`] writes.
//!
//! Strings borrow from the frame they were decoded from (no copy); the encoder takes them
//! borrowed too. Order requests have no type of their own here: they decode straight to
//! [`veloz_core::Command`], with the account of the session. Codes that only the protocol
//! has (exec type, liquidity, logout reason) are defined here with the schema's numbers; a
//! test pins them against the generated code.

use veloz_core::{
    AccountId, AssetId, CancelReason, ClientOrderId, Command, Instrument, OrderId, OrderRef,
    OrderView, Price, Qty, RejectReason, Seq, Side, SymbolId, Timestamp, TradeId,
};

/// What a client sends, decoded and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    Logon(Logon<'a>),
    Logout(Logout<'a>),
    Heartbeat(Heartbeat),
    /// NewOrder, Cancel, Replace or MassCancel, with the session's account filled in.
    Order(Command),
    /// OrderStatusRequest, OpenOrdersRequest or BalanceRequest (never journaled).
    Query(Query),
}

/// A read-only request about the account's orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// One order, by engine id or by the client order id it was entered with.
    Status {
        request_id: ClientOrderId,
        symbol: SymbolId,
        by: OrderRef,
    },
    /// One page of open orders with ids above `after`, in `symbol` or everywhere.
    OpenOrders {
        request_id: ClientOrderId,
        symbol: Option<SymbolId>,
        after: OrderId,
        /// 1..=[`Query::MAX_PAGE`].
        max: u32,
    },
    /// The account's balances on every shard, answered as one [`BalanceReport`] summed over
    /// them (with each shard's slice when `by_shard`).
    Balances { request_id: u64, by_shard: bool },
}

impl Query {
    /// Largest page of open orders.
    pub const MAX_PAGE: u32 = 1_000;
    /// Page size when the request says 0.
    pub const DEFAULT_PAGE: u32 = 100;

    /// The request's own id.
    pub fn request_id(&self) -> ClientOrderId {
        match *self {
            Query::Status { request_id, .. }
            | Query::OpenOrders { request_id, .. }
            | Query::Balances { request_id, .. } => request_id,
        }
    }
}

/// What the engine sends, decoded and validated (the client side of the protocol).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineMessage<'a> {
    LogonAck(LogonAck<'a>),
    Logout(Logout<'a>),
    Heartbeat(Heartbeat),
    ExecutionReport(ExecutionReport<'a>),
    Trade(TradePrint),
    StreamResumed(StreamResumed),
    OrderStatus(OrderStatus),
    OpenOrdersEnd(OpenOrdersEnd),
    BalanceReport(BalanceReport<'a>),
}

/// First frame of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logon<'a> {
    pub account: AccountId,
    /// Credential checked by the gateway; empty when absent.
    pub token: &'a str,
    /// Resend request: per report stream (index = stream), the last `stream_seq` the
    /// client has seen; streams past the end count as 0. `None`: no resend.
    pub resume_after: Option<Vec<u64>>,
    /// Cancel-on-disconnect for this session: `None` = the account's configured default.
    pub cancel_on_disconnect: Option<bool>,
}

impl<'a> Logon<'a> {
    /// A plain logon: no resend, the account's cancel-on-disconnect default.
    pub fn new(account: AccountId, token: &'a str) -> Logon<'a> {
        Logon {
            account,
            token,
            resume_after: None,
            cancel_on_disconnect: None,
        }
    }
}

/// The logon succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogonAck<'a> {
    pub session_id: u64,
    /// Send something at least this often; 3 silent intervals end the session.
    pub heartbeat_interval_ms: u32,
    pub instruments: Vec<InstrumentInfo<'a>>,
    /// How many report streams the account has (one per shard).
    pub streams: u16,
}

/// One instrument as announced in a [`LogonAck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstrumentInfo<'a> {
    pub id: SymbolId,
    pub symbol: &'a str,
    /// Prices are integer counts of `10^-price_scale` quote units.
    pub price_scale: u8,
    pub tick_size: Price,
    pub lot_size: Qty,
    pub min_qty: Qty,
    pub max_qty: Qty,
}

impl<'a> From<&'a Instrument> for InstrumentInfo<'a> {
    fn from(i: &'a Instrument) -> Self {
        InstrumentInfo {
            id: i.id,
            symbol: &i.symbol,
            price_scale: i.price_scale,
            tick_size: i.tick_size,
            lot_size: i.lot_size,
            min_qty: i.min_qty,
            max_qty: i.max_qty,
        }
    }
}

/// The session ends; the sender closes the connection after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logout<'a> {
    pub reason: LogoutReason,
    /// Free text for people; empty when absent.
    pub text: &'a str,
}

/// Keeps the session alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// Sender's clock (ns since the Unix epoch), informational; may be 0.
    pub timestamp_ns: Timestamp,
}

/// Why a session ends. Codes are part of the protocol: never renumber, only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum LogoutReason {
    /// The sender asked to end the session (the default: a plain client Logout).
    Requested = 0,
    /// No frame arrived for three heartbeat intervals.
    HeartbeatTimeout = 1,
    /// Logon refused: unknown account or bad token.
    AuthenticationFailed = 2,
    /// Too much malformed or out-of-order input, or a frame above the size limit.
    ProtocolViolation = 3,
    /// The client did not read its reports fast enough.
    SlowConsumer = 4,
    /// The engine is shutting down.
    EngineShutdown = 5,
    /// A second Logon on a session already logged on.
    AlreadyLoggedOn = 6,
    /// The venue's operator ended the session.
    OperatorDisconnect = 7,
}

impl LogoutReason {
    pub const ALL: [LogoutReason; 8] = [
        LogoutReason::Requested,
        LogoutReason::HeartbeatTimeout,
        LogoutReason::AuthenticationFailed,
        LogoutReason::ProtocolViolation,
        LogoutReason::SlowConsumer,
        LogoutReason::EngineShutdown,
        LogoutReason::AlreadyLoggedOn,
        LogoutReason::OperatorDisconnect,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<LogoutReason> {
        LogoutReason::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            LogoutReason::Requested => "requested",
            LogoutReason::HeartbeatTimeout => "heartbeat_timeout",
            LogoutReason::AuthenticationFailed => "authentication_failed",
            LogoutReason::ProtocolViolation => "protocol_violation",
            LogoutReason::SlowConsumer => "slow_consumer",
            LogoutReason::EngineShutdown => "engine_shutdown",
            LogoutReason::AlreadyLoggedOn => "already_logged_on",
            LogoutReason::OperatorDisconnect => "operator_disconnect",
        }
    }
}

/// What an [`ExecutionReport`] says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExecType {
    Accepted = 0,
    PartiallyFilled = 1,
    Filled = 2,
    Cancelled = 3,
    Replaced = 4,
    Rejected = 5,
    MassCancelled = 6,
}

impl ExecType {
    pub const ALL: [ExecType; 7] = [
        ExecType::Accepted,
        ExecType::PartiallyFilled,
        ExecType::Filled,
        ExecType::Cancelled,
        ExecType::Replaced,
        ExecType::Rejected,
        ExecType::MassCancelled,
    ];

    pub fn from_u8(v: u8) -> Option<ExecType> {
        ExecType::ALL.get(usize::from(v)).copied()
    }
}

/// Which side of a trade a report is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Liquidity {
    /// Not a trade report.
    NotApplicable = 0,
    /// The resting order.
    Maker = 1,
    /// The incoming order.
    Taker = 2,
}

impl Liquidity {
    pub fn from_u8(v: u8) -> Option<Liquidity> {
        match v {
            0 => Some(Liquidity::NotApplicable),
            1 => Some(Liquidity::Maker),
            2 => Some(Liquidity::Taker),
            _ => None,
        }
    }
}

/// One execution report, addressed to the account named beside it
/// ([`super::execution_reports`]). Fields that do not apply to `exec_type` are 0 / `None`
/// / empty; `docs/protocol.md` has the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionReport<'a> {
    pub exec_type: ExecType,
    /// 0 in a reject of a new order and in MassCancelled.
    pub order_id: OrderId,
    /// The request's id (a cancel's or replace's own), else the order's.
    pub client_order_id: ClientOrderId,
    /// `None` only in a MassCancelled report over all symbols.
    pub symbol: Option<SymbolId>,
    /// `None` in Rejected and MassCancelled reports.
    pub side: Option<Side>,
    /// Accepted/Replaced: the order's limit price.
    pub price: Price,
    /// Accepted: order quantity; Replaced: new open quantity; Cancelled: quantity cancelled.
    pub qty: Qty,
    /// Fills: quantity of this trade.
    pub last_qty: Qty,
    /// Fills: price of this trade.
    pub last_price: Price,
    /// Open quantity after this event.
    pub leaves_qty: Qty,
    /// Fills: the trade id (the same in the maker's and the taker's report).
    pub trade_id: TradeId,
    pub liquidity: Liquidity,
    /// Rejected only.
    pub reject_reason: Option<RejectReason>,
    /// Cancelled only.
    pub cancel_reason: Option<CancelReason>,
    /// The reason's stable name (e.g. `price_off_tick`); empty when there is no reason.
    pub reason_text: &'a str,
    /// Shard sequence number of the command that caused the report.
    pub seq: Seq,
    /// Engine time of that command (ns since the Unix epoch).
    pub timestamp_ns: Timestamp,
    /// Replaced only: the order kept its time priority.
    pub kept_priority: bool,
    /// MassCancelled only: how many orders were cancelled.
    pub mass_cancel_count: u32,
    /// The account's report stream this report belongs to.
    pub stream: u16,
    /// Gap-free position in that stream from 1; 0 for a gateway reject (in no stream).
    pub stream_seq: u64,
}

impl ExecutionReport<'_> {
    /// A report of `exec_type` with every other field empty.
    pub fn empty(exec_type: ExecType) -> ExecutionReport<'static> {
        ExecutionReport {
            exec_type,
            order_id: 0,
            client_order_id: 0,
            symbol: None,
            side: None,
            price: 0,
            qty: 0,
            last_qty: 0,
            last_price: 0,
            leaves_qty: 0,
            trade_id: 0,
            liquidity: Liquidity::NotApplicable,
            reject_reason: None,
            cancel_reason: None,
            reason_text: "",
            seq: 0,
            timestamp_ns: 0,
            kept_priority: false,
            mass_cancel_count: 0,
            stream: 0,
            stream_seq: 0,
        }
    }
}

/// A public trade print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradePrint {
    pub symbol: SymbolId,
    pub trade_id: TradeId,
    pub price: Price,
    pub qty: Qty,
    /// The taker's side.
    pub aggressor: Side,
    pub timestamp_ns: Timestamp,
}

/// The resend a Logon asked for is complete on one stream: every report after `after` up
/// to `last` was sent before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamResumed {
    pub stream: u16,
    /// The Logon's `resume_after` for this stream.
    pub after: u64,
    /// The stream's last report so far (0: none yet).
    pub last: u64,
    /// How many reports were resent.
    pub resent: u64,
    /// The oldest report still held for resend (0: none); above `after + 1`, the reports
    /// in between are no longer held and were not resent.
    pub first_retained: u64,
}

impl StreamResumed {
    /// Reports after `after` the engine no longer holds (not resent): `(from, to)`
    /// inclusive, or `None` when the resend was complete.
    pub fn missing(&self) -> Option<(u64, u64)> {
        if self.last <= self.after {
            return None;
        }
        let to = match self.first_retained {
            0 => self.last,
            first => first - 1,
        };
        (to > self.after).then_some((self.after + 1, to))
    }
}

/// An answer to an OrderStatusRequest, or one order of an open-orders page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderStatus {
    /// The request's id.
    pub client_order_id: ClientOrderId,
    /// Why the order cannot be shown (`UnknownOrder`, `NotOrderOwner`, `UnknownSymbol`);
    /// the order fields are then 0 / `None`.
    pub reject_reason: Option<RejectReason>,
    pub order_id: OrderId,
    /// The client order id the order was entered with.
    pub orig_client_order_id: ClientOrderId,
    pub symbol: SymbolId,
    pub side: Option<Side>,
    pub price: Price,
    pub leaves_qty: Qty,
    /// Engine time the order was entered (ns since the Unix epoch).
    pub entered_ns: Timestamp,
}

impl OrderStatus {
    /// The answer describing `order` to request `request_id`.
    pub fn of(request_id: ClientOrderId, order: &OrderView) -> OrderStatus {
        OrderStatus {
            client_order_id: request_id,
            reject_reason: None,
            order_id: order.order_id,
            orig_client_order_id: order.client_order_id,
            symbol: order.symbol,
            side: Some(order.side),
            price: order.price,
            leaves_qty: order.leaves_qty,
            entered_ns: order.entered_ns,
        }
    }

    /// The answer refusing request `request_id` about `order_id` in `symbol`.
    pub fn refused(
        request_id: ClientOrderId,
        symbol: SymbolId,
        order_id: OrderId,
        reason: RejectReason,
    ) -> OrderStatus {
        OrderStatus {
            client_order_id: request_id,
            reject_reason: Some(reason),
            order_id,
            orig_client_order_id: 0,
            symbol,
            side: None,
            price: 0,
            leaves_qty: 0,
            entered_ns: 0,
        }
    }
}

/// The end of one page of open orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrdersEnd {
    /// The request's id.
    pub client_order_id: ClientOrderId,
    /// OrderStatus answers in the page.
    pub count: u32,
    /// The next page's `after_order_id`; 0: no more.
    pub next_after_order_id: OrderId,
    /// Set when the request was refused (nothing listed).
    pub reject_reason: Option<RejectReason>,
}

/// One asset's balance of an account, summed over the shards (amounts in the asset's
/// smallest unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssetBalance<'a> {
    pub asset: AssetId,
    /// The configured name (e.g. `USD`).
    pub name: &'a str,
    /// Decimal places of the smallest unit.
    pub scale: u8,
    /// What the account may use.
    pub available: u64,
    /// What its open orders hold.
    pub held: u64,
}

/// One shard's slice of one asset's balance of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardBalance {
    pub shard: u16,
    pub asset: AssetId,
    pub available: u64,
    pub held: u64,
}

/// The answer to a balance request ([`Query::Balances`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceReport<'a> {
    /// The request's id.
    pub request_id: u64,
    /// The session's account.
    pub account: AccountId,
    /// Set when the request was refused (nothing listed then).
    pub reject_reason: Option<RejectReason>,
    /// Every configured asset, ascending by id; empty when the engine has no money rules.
    pub balances: Vec<AssetBalance<'a>>,
    /// When asked for: the non-zero slices, by shard then asset.
    pub slices: Vec<ShardBalance>,
}

impl BalanceReport<'_> {
    /// The balance of asset `name`, if listed.
    pub fn asset(&self, name: &str) -> Option<&AssetBalance<'_>> {
        self.balances.iter().find(|b| b.name == name)
    }
}

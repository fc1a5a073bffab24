//! Decoding: verify a frame with the FlatBuffers verifier, then convert it to a typed
//! message, refusing anything the protocol does not define.
//!
//! Order of checks, each failing with a [`WireError`] that names what is wrong:
//! 1. the frame is at least its 4-byte prefix, and the prefix equals the bytes after it;
//! 2. the verifier accepts the body as a `Message` within [`VerifyLimits`] (bounds, UTF-8,
//!    alignment relative to the frame start, depth, table count, apparent size);
//! 3. the union holds a message (not NONE), of a type this build knows, that travels in the
//!    decoder's direction;
//! 4. every enum field holds a value the schema defines; required optional scalars (the
//!    side of an order) are present; field combinations are consistent (MassCancel's
//!    `has_symbol`, an ExecutionReport's reason for its exec type).
//!
//! The four flat order requests (NewOrder, Cancel, Replace, MassCancel), the hot path, skip
//! step 2's verifier run: the crate's `fields` module makes the verifier's checks for exactly
//! those shapes while reading the fields from the frame, and accepts only frames the verifier
//! accepts; anything it does not accept (malformed, or another message) goes through the
//! verifier, so a bad frame gets the same [`WireError`] as before. Steps 3 and 4 are shared:
//! both paths hand the same plain field values to the same conversion.
//!
//! Prices and quantities are not checked here against instruments: that is the matching
//! core's job, and it answers with its own reject reasons. Nothing here allocates except the
//! instrument list of a LogonAck and the boxed verifier error.

use flatbuffers::VerifierOptions;

use veloz_core::{
    AccountId, CancelOrder, Command, MassCancel, NewOrder, OrderRef, ReplaceOrder, BY_CLIENT_ID,
};

use super::convert::{self, At};
use super::error::{Direction, WireError};
use super::fields::{
    self, CancelFields, MassCancelFields, NewOrderFields, OrderFields, ReplaceFields,
};
use super::frame::{declared_len, LENGTH_PREFIX_LEN};
use super::generated as fb;
use super::message::{
    AssetBalance, BalanceReport, ClientMessage, EngineMessage, ExecType, ExecutionReport,
    Heartbeat, InstrumentInfo, Logon, LogonAck, Logout, OpenOrdersEnd, OrderStatus, Query,
    ShardBalance, StreamResumed, TradePrint,
};

/// Bounds the verifier enforces on one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Deepest nesting of tables and vectors.
    pub max_depth: usize,
    /// Most tables visited.
    pub max_tables: usize,
    /// Largest size of the message expanded as a tree (defeats shared-offset blow-ups).
    pub max_apparent_size: usize,
}

impl VerifyLimits {
    /// Frames from clients: Message -> one flat payload table. Anything deeper or wider is
    /// not a client message.
    pub const CLIENT: VerifyLimits = VerifyLimits {
        max_depth: 8,
        max_tables: 8,
        max_apparent_size: 1 << 20,
    };
    /// Frames from the engine: a LogonAck carries one table per instrument.
    pub const ENGINE: VerifyLimits = VerifyLimits {
        max_depth: 8,
        max_tables: 1 << 16,
        max_apparent_size: 1 << 24,
    };

    fn options(self) -> VerifierOptions {
        VerifierOptions {
            max_depth: self.max_depth,
            max_tables: self.max_tables,
            max_apparent_size: self.max_apparent_size,
            ignore_missing_null_terminator: false,
        }
    }
}

/// Check the prefix and run the verifier; the frame includes its 4-byte prefix.
pub fn verify_frame(frame: &[u8], limits: VerifyLimits) -> Result<fb::Message<'_>, WireError> {
    let declared = declared_len(frame).ok_or(WireError::FrameTooShort { len: frame.len() })?;
    let actual = frame.len() - LENGTH_PREFIX_LEN;
    if declared as usize != actual {
        return Err(WireError::LengthMismatch { declared, actual });
    }
    Ok(fb::size_prefixed_root_as_message_with_opts(
        &limits.options(),
        frame,
    )?)
}

fn payload<T>(value: Option<T>) -> Result<T, WireError> {
    // The verifier refuses a union type without a value, so this is belt and braces.
    value.ok_or(WireError::MissingPayload)
}

fn wrong_direction(message: &'static str, direction: Direction) -> WireError {
    WireError::WrongDirection { message, direction }
}

/// Decode a frame a client sent. Orders become [`Command`]s for `account`, the account the
/// session logged on with (the wire never carries the account of an order; before logon
/// pass any value: the gateway rejects orders with `NotLoggedOn` then anyway).
///
/// Order requests (NewOrder, Cancel, Replace, MassCancel) that pass the checks of the
/// crate's `fields` module are read straight from the frame without running the verifier;
/// every other frame, malformed ones included, takes the verifier path
/// ([`decode_client_verified`]), and both give the same result (module docs).
pub fn decode_client(frame: &[u8], account: AccountId) -> Result<ClientMessage<'_>, WireError> {
    match fields::read_order(frame) {
        Some(OrderFields::New(f)) => new_order(f, account),
        Some(OrderFields::Cancel(f)) => cancel(f, account),
        Some(OrderFields::Replace(f)) => replace(f, account),
        Some(OrderFields::MassCancel(f)) => mass_cancel(f, account),
        None => decode_client_verified(frame, account),
    }
}

/// [`decode_client`] through the FlatBuffers verifier and the generated readers, for every
/// message (the reference the order fast path is tested against).
pub fn decode_client_verified(
    frame: &[u8],
    account: AccountId,
) -> Result<ClientMessage<'_>, WireError> {
    let msg = verify_frame(frame, VerifyLimits::CLIENT)?;
    let dir = Direction::ClientToEngine;
    match msg.payload_type() {
        fb::Payload::NONE => Err(WireError::MissingPayload),
        fb::Payload::Logon => {
            let m = payload(msg.payload_as_logon())?;
            let cancel_on_disconnect = match m.cancel_on_disconnect() {
                fb::CancelOnDisconnect::AccountDefault => None,
                fb::CancelOnDisconnect::On => Some(true),
                fb::CancelOnDisconnect::Off => Some(false),
                other => {
                    return Err(At::new("Logon", "cancel_on_disconnect")
                        .invalid_enum("CancelOnDisconnect", other.0.into()))
                }
            };
            Ok(ClientMessage::Logon(Logon {
                account: m.account_id(),
                token: m.token().unwrap_or(""),
                resume_after: m.resume_after().map(|v| v.iter().collect()),
                cancel_on_disconnect,
            }))
        }
        fb::Payload::Logout => Ok(ClientMessage::Logout(logout(payload(
            msg.payload_as_logout(),
        )?)?)),
        fb::Payload::Heartbeat => Ok(ClientMessage::Heartbeat(heartbeat(payload(
            msg.payload_as_heartbeat(),
        )?))),
        fb::Payload::NewOrder => new_order(payload(msg.payload_as_new_order())?.into(), account),
        fb::Payload::Cancel => cancel(payload(msg.payload_as_cancel())?.into(), account),
        fb::Payload::Replace => replace(payload(msg.payload_as_replace())?.into(), account),
        fb::Payload::OrderStatusRequest => {
            let m = payload(msg.payload_as_order_status_request())?;
            let coid = m.client_order_id();
            let raw = named_order(
                "OrderStatusRequest",
                coid,
                m.order_id(),
                m.orig_client_order_id(),
            )?;
            Ok(ClientMessage::Query(Query::Status {
                request_id: coid,
                symbol: m.symbol_id(),
                by: OrderRef::from_raw(raw),
            }))
        }
        fb::Payload::OpenOrdersRequest => {
            let m = payload(msg.payload_as_open_orders_request())?;
            let coid = m.client_order_id();
            let at = |field| At::new("OpenOrdersRequest", field).coid(coid);
            let symbol = match (m.has_symbol(), m.symbol_id()) {
                (true, s) => Some(s),
                (false, 0) => None,
                (false, s) => {
                    return Err(at("symbol_id")
                        .invalid(s.into(), "must be 0 when has_symbol is false (all symbols)"))
                }
            };
            let max = match m.max_orders() {
                0 => Query::DEFAULT_PAGE,
                n if n <= Query::MAX_PAGE => n,
                n => return Err(at("max_orders").invalid(n.into(), "must be at most 1000")),
            };
            Ok(ClientMessage::Query(Query::OpenOrders {
                request_id: coid,
                symbol,
                after: m.after_order_id(),
                max,
            }))
        }
        fb::Payload::BalanceRequest => {
            let m = payload(msg.payload_as_balance_request())?;
            Ok(ClientMessage::Query(Query::Balances {
                request_id: m.request_id(),
                by_shard: m.by_shard(),
            }))
        }
        fb::Payload::MassCancel => {
            mass_cancel(payload(msg.payload_as_mass_cancel())?.into(), account)
        }
        fb::Payload::LogonAck => Err(wrong_direction("LogonAck", dir)),
        fb::Payload::BalanceReport => Err(wrong_direction("BalanceReport", dir)),
        fb::Payload::ExecutionReport => Err(wrong_direction("ExecutionReport", dir)),
        fb::Payload::Trade => Err(wrong_direction("Trade", dir)),
        fb::Payload::StreamResumed => Err(wrong_direction("StreamResumed", dir)),
        fb::Payload::OrderStatus => Err(wrong_direction("OrderStatus", dir)),
        fb::Payload::OpenOrdersEnd => Err(wrong_direction("OpenOrdersEnd", dir)),
        other => Err(WireError::UnknownMessageType { value: other.0 }),
    }
}

fn new_order(m: NewOrderFields, account: AccountId) -> Result<ClientMessage<'static>, WireError> {
    let coid = m.client_order_id;
    let at = |field| At::new("NewOrder", field).coid(coid);
    let side = m.side.ok_or_else(|| at("side").missing())?;
    Ok(ClientMessage::Order(Command::New(NewOrder {
        account,
        symbol: m.symbol_id,
        client_order_id: coid,
        side: convert::side(fb::Side(side), at("side"))?,
        kind: convert::kind(fb::OrderKind(m.kind), at("kind"))?,
        tif: convert::tif(fb::TimeInForce(m.tif), at("tif"))?,
        post_only: m.post_only,
        stp: convert::stp(fb::SelfTradePrevention(m.stp), at("stp"))?,
        price: m.price,
        qty: m.qty,
    })))
}

fn cancel(m: CancelFields, account: AccountId) -> Result<ClientMessage<'static>, WireError> {
    let coid = m.client_order_id;
    let order_id = named_order("Cancel", coid, m.order_id, m.orig_client_order_id)?;
    Ok(ClientMessage::Order(Command::Cancel(CancelOrder {
        account,
        symbol: m.symbol_id,
        client_order_id: coid,
        order_id,
    })))
}

fn replace(m: ReplaceFields, account: AccountId) -> Result<ClientMessage<'static>, WireError> {
    let c = m.cancel;
    let order_id = named_order(
        "Replace",
        c.client_order_id,
        c.order_id,
        c.orig_client_order_id,
    )?;
    Ok(ClientMessage::Order(Command::Replace(ReplaceOrder {
        account,
        symbol: c.symbol_id,
        client_order_id: c.client_order_id,
        order_id,
        price: m.price,
        qty: m.qty,
    })))
}

fn mass_cancel(
    m: MassCancelFields,
    account: AccountId,
) -> Result<ClientMessage<'static>, WireError> {
    let coid = m.client_order_id;
    let symbol = if m.has_symbol {
        Some(m.symbol_id)
    } else if m.symbol_id == 0 {
        None
    } else {
        return Err(At::new("MassCancel", "symbol_id").coid(coid).invalid(
            m.symbol_id.into(),
            "must be 0 when has_symbol is false (a mass cancel over all symbols)",
        ));
    };
    Ok(ClientMessage::Order(Command::MassCancel(MassCancel {
        account,
        client_order_id: coid,
        symbol,
        reason: veloz_core::CancelReason::MassCancel,
    })))
}

/// The order a cancel, replace or status request names, as the core's
/// [`OrderRef::raw`]: its engine id (`order_id`, which wins when both are set), or the
/// client order id it was entered with (`orig_client_order_id`, below 2^63).
fn named_order(
    message: &'static str,
    coid: u64,
    order_id: u64,
    orig_client_order_id: u64,
) -> Result<u64, WireError> {
    let at = |field| At::new(message, field).coid(coid);
    if order_id != 0 {
        if order_id & BY_CLIENT_ID != 0 {
            return Err(at("order_id").invalid(
                order_id.into(),
                "is no engine order id (those are below 2^63)",
            ));
        }
        return Ok(order_id);
    }
    match orig_client_order_id {
        0 => Err(at("order_id").invalid(0, "names no order: set order_id or orig_client_order_id")),
        c if c & BY_CLIENT_ID != 0 => {
            Err(at("orig_client_order_id").invalid(c.into(), "must be below 2^63 to name an order"))
        }
        c => Ok(OrderRef::ClientId(c).raw()),
    }
}

/// Decode a frame the engine sent (the client side of the protocol; tests and tools).
pub fn decode_engine(frame: &[u8]) -> Result<EngineMessage<'_>, WireError> {
    let msg = verify_frame(frame, VerifyLimits::ENGINE)?;
    let dir = Direction::EngineToClient;
    match msg.payload_type() {
        fb::Payload::NONE => Err(WireError::MissingPayload),
        fb::Payload::LogonAck => {
            let m = payload(msg.payload_as_logon_ack())?;
            let instruments = m
                .instruments()
                .map(|v| {
                    v.iter()
                        .map(|i| InstrumentInfo {
                            id: i.id(),
                            symbol: i.symbol().unwrap_or(""),
                            price_scale: i.price_scale(),
                            tick_size: i.tick_size(),
                            lot_size: i.lot_size(),
                            min_qty: i.min_qty(),
                            max_qty: i.max_qty(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(EngineMessage::LogonAck(LogonAck {
                session_id: m.session_id(),
                heartbeat_interval_ms: m.heartbeat_interval_ms(),
                instruments,
                streams: m.streams(),
            }))
        }
        fb::Payload::Logout => Ok(EngineMessage::Logout(logout(payload(
            msg.payload_as_logout(),
        )?)?)),
        fb::Payload::Heartbeat => Ok(EngineMessage::Heartbeat(heartbeat(payload(
            msg.payload_as_heartbeat(),
        )?))),
        fb::Payload::ExecutionReport => Ok(EngineMessage::ExecutionReport(execution_report(
            payload(msg.payload_as_execution_report())?,
        )?)),
        fb::Payload::Trade => {
            let m = payload(msg.payload_as_trade())?;
            let at = At::new("Trade", "aggressor_side");
            let side = m.aggressor_side().ok_or_else(|| at.missing())?;
            Ok(EngineMessage::Trade(TradePrint {
                symbol: m.symbol_id(),
                trade_id: m.trade_id(),
                price: m.price(),
                qty: m.qty(),
                aggressor: convert::side(side, at)?,
                timestamp_ns: m.timestamp_ns(),
            }))
        }
        fb::Payload::StreamResumed => {
            let m = payload(msg.payload_as_stream_resumed())?;
            Ok(EngineMessage::StreamResumed(StreamResumed {
                stream: m.stream(),
                after: m.after(),
                last: m.last(),
                resent: m.resent(),
                first_retained: m.first_retained(),
            }))
        }
        fb::Payload::OrderStatus => {
            let m = payload(msg.payload_as_order_status())?;
            let coid = m.client_order_id();
            let at = |field| At::new("OrderStatus", field).coid(coid);
            Ok(EngineMessage::OrderStatus(OrderStatus {
                client_order_id: coid,
                reject_reason: m
                    .reject_reason()
                    .map(|r| convert::reject(r, at("reject_reason")))
                    .transpose()?,
                order_id: m.order_id(),
                orig_client_order_id: m.orig_client_order_id(),
                symbol: m.symbol_id(),
                side: m.side().map(|s| convert::side(s, at("side"))).transpose()?,
                price: m.price(),
                leaves_qty: m.leaves_qty(),
                entered_ns: m.entered_ns(),
            }))
        }
        fb::Payload::OpenOrdersEnd => {
            let m = payload(msg.payload_as_open_orders_end())?;
            let coid = m.client_order_id();
            Ok(EngineMessage::OpenOrdersEnd(OpenOrdersEnd {
                client_order_id: coid,
                count: m.count(),
                next_after_order_id: m.next_after_order_id(),
                reject_reason: m
                    .reject_reason()
                    .map(|r| {
                        convert::reject(r, At::new("OpenOrdersEnd", "reject_reason").coid(coid))
                    })
                    .transpose()?,
            }))
        }
        fb::Payload::BalanceReport => Ok(EngineMessage::BalanceReport(balance_report(payload(
            msg.payload_as_balance_report(),
        )?)?)),
        fb::Payload::BalanceRequest => Err(wrong_direction("BalanceRequest", dir)),
        fb::Payload::OrderStatusRequest => Err(wrong_direction("OrderStatusRequest", dir)),
        fb::Payload::OpenOrdersRequest => Err(wrong_direction("OpenOrdersRequest", dir)),
        fb::Payload::Logon => Err(wrong_direction("Logon", dir)),
        fb::Payload::NewOrder => Err(wrong_direction("NewOrder", dir)),
        fb::Payload::Cancel => Err(wrong_direction("Cancel", dir)),
        fb::Payload::Replace => Err(wrong_direction("Replace", dir)),
        fb::Payload::MassCancel => Err(wrong_direction("MassCancel", dir)),
        other => Err(WireError::UnknownMessageType { value: other.0 }),
    }
}

fn logout<'a>(m: fb::Logout<'a>) -> Result<Logout<'a>, WireError> {
    Ok(Logout {
        reason: convert::logout(m.reason(), At::new("Logout", "reason"))?,
        text: m.text().unwrap_or(""),
    })
}

fn heartbeat(m: fb::Heartbeat<'_>) -> Heartbeat {
    Heartbeat {
        timestamp_ns: m.timestamp_ns(),
    }
}

fn execution_report<'a>(m: fb::ExecutionReport<'a>) -> Result<ExecutionReport<'a>, WireError> {
    let coid = m.client_order_id();
    let at = |field| At::new("ExecutionReport", field).coid(coid);
    let exec_type = convert::exec_type(m.exec_type(), at("exec_type"))?;
    let symbol = if m.has_symbol() {
        Some(m.symbol_id())
    } else if exec_type != ExecType::MassCancelled {
        return Err(
            at("has_symbol").invalid(0, "only a MassCancelled report can be for all symbols")
        );
    } else if m.symbol_id() != 0 {
        return Err(at("symbol_id").invalid(
            m.symbol_id().into(),
            "must be 0 when has_symbol is false (all symbols)",
        ));
    } else {
        None
    };
    let side = m.side().map(|s| convert::side(s, at("side"))).transpose()?;
    let reject_reason = m
        .reject_reason()
        .map(|r| convert::reject(r, at("reject_reason")))
        .transpose()?;
    let cancel_reason = m
        .cancel_reason()
        .map(|c| convert::cancel(c, at("cancel_reason")))
        .transpose()?;
    if exec_type == ExecType::Rejected && reject_reason.is_none() {
        return Err(at("reject_reason").missing());
    }
    if exec_type == ExecType::Cancelled && cancel_reason.is_none() {
        return Err(at("cancel_reason").missing());
    }
    Ok(ExecutionReport {
        exec_type,
        order_id: m.order_id(),
        client_order_id: coid,
        symbol,
        side,
        price: m.price(),
        qty: m.qty(),
        last_qty: m.last_qty(),
        last_price: m.last_price(),
        leaves_qty: m.leaves_qty(),
        trade_id: m.trade_id(),
        liquidity: convert::liquidity(m.liquidity(), at("liquidity"))?,
        reject_reason,
        cancel_reason,
        reason_text: m.reason_text().unwrap_or(""),
        seq: m.seq(),
        timestamp_ns: m.timestamp_ns(),
        kept_priority: m.kept_priority(),
        mass_cancel_count: m.mass_cancel_count(),
        stream: m.stream(),
        stream_seq: m.stream_seq(),
    })
}

fn balance_report<'a>(m: fb::BalanceReport<'a>) -> Result<BalanceReport<'a>, WireError> {
    let id = m.request_id();
    let reject_reason = m
        .reject_reason()
        .map(|r| convert::reject(r, At::new("BalanceReport", "reject_reason").coid(id)))
        .transpose()?;
    let balances = m
        .balances()
        .map(|v| {
            v.iter()
                .map(|b| AssetBalance {
                    asset: b.asset_id(),
                    name: b.name().unwrap_or(""),
                    scale: b.scale(),
                    available: b.available(),
                    held: b.held(),
                })
                .collect()
        })
        .unwrap_or_default();
    let slices = m
        .slices()
        .map(|v| {
            v.iter()
                .map(|b| ShardBalance {
                    shard: b.shard(),
                    asset: b.asset_id(),
                    available: b.available(),
                    held: b.held(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(BalanceReport {
        request_id: id,
        account: m.account_id(),
        reject_reason,
        balances,
        slices,
    })
}

//! The engine's reports as FIX messages: ExecutionReport (8), OrderCancelReject (9) and
//! OrderMassCancelReport (r).
//!
//! An event names one change; an ExecutionReport states the order: OrderQty, CumQty,
//! AvgPx, OrdStatus, and on a cancel or replace the OrigClOrdID. `Orders` (module
//! `orders`) keeps that per
//! open order of the session's account, from the reports the session was sent; at logon it
//! is rebuilt from the messages in the session's store, so it survives reconnects and
//! restarts. An order the session never heard of (entered before this CompID's first
//! logon and outside the resend window) is reported with what the event says: its CumQty
//! counts the fills this session saw.
//!
//! Invariants: ExecIDs are unique per account: `S-N` is the report at position N of report
//! stream (shard) S; `R<MsgSeqNum>` a refusal that reached no stream, `Q<MsgSeqNum>` the
//! answer to an OrderStatusRequest. AvgPx is exact to
//! four digits beyond the instrument's price scale (notional kept in 128-bit integers).

use std::fmt::Write as _;
use std::sync::Arc;

use veloz_core::{Event, OrderId, OrderRef, Part, Price, RejectReason, Side, SymbolId};
use veloz_fix::{tags, Writer};
use veloz_wire::OrderStatus;

use super::orders::{Mass, Order, PendingKind};
use super::{FixSession, FixShared};
use crate::mesh::Delivery;

/// What one ExecutionReport says beyond the order's state.
struct Exec<'a> {
    /// The report's place in its stream (stored with the message).
    pos: Option<(u16, u64)>,
    exec_id: &'a str,
    /// TransactTime (60): the engine's time of the event (Unix ns).
    transact: u64,
    order_id: OrderId,
    /// ExecType (150) and OrdStatus (39).
    exec: u8,
    status: u8,
    leaves: u64,
    /// OrigClOrdID (41).
    orig: Option<u64>,
    /// A fill: price, quantity, trade id, whether this side was the taker.
    trade: Option<(Price, u64, u64, bool)>,
    text: Option<&'a str>,
}

impl<'a> Exec<'a> {
    fn new(
        pos: Option<(u16, u64)>,
        exec_id: &'a str,
        transact: u64,
        order_id: OrderId,
        exec: u8,
        status: u8,
    ) -> Exec<'a> {
        Exec {
            pos,
            exec_id,
            transact,
            order_id,
            exec,
            status,
            leaves: 0,
            orig: None,
            trade: None,
            text: None,
        }
    }
}

/// FIX OrdRejReason (103) for an engine reject reason. FIX 4.4 has no code for short
/// funds: 99 (other), with `insufficient_funds (16)` in Text (58), as for every reason.
pub(super) fn ord_rej_reason(r: RejectReason) -> u64 {
    match r {
        RejectReason::UnknownSymbol => 1,
        RejectReason::InstrumentHalted => 2,
        // 3: order exceeds limit (an instrument's or the account's pre-trade limits).
        RejectReason::QtyAboveMax
        | RejectReason::OrderQtyLimit
        | RejectReason::OrderNotionalLimit
        | RejectReason::OpenOrdersLimit
        | RejectReason::NotionalRateLimit
        | RejectReason::AmountTooLarge => 3,
        RejectReason::UnknownOrder => 5,
        RejectReason::DuplicateClientOrderId => 6,
        RejectReason::AccountDisabled => 4,
        _ => 99,
    }
}

/// The Text (58) of a reject: the engine's reason name and code.
fn reason_text(r: RejectReason) -> String {
    format!("{} ({})", r.name(), r.code())
}

fn side_char(s: Side) -> u8 {
    match s {
        Side::Buy => b'1',
        Side::Sell => b'2',
    }
}

/// Instrument `id`'s symbol and price scale ("NONE" for an id FIX does not know).
fn symbol_of(shared: &FixShared, id: SymbolId) -> (&str, u8) {
    match shared.by_id(id) {
        Some(i) => (i.symbol.as_str(), i.price_scale),
        None => ("NONE", 0),
    }
}

impl FixSession {
    fn symbol_of(&self, id: SymbolId) -> (&str, u8) {
        symbol_of(&self.shared, id)
    }

    pub(super) fn next_out(&self) -> u64 {
        self.store.as_ref().map_or(1, |s| s.next_out)
    }

    /// Write the FIX message(s) of one report; `now` is the shard clock.
    pub fn report(&mut self, d: &Delivery, now: u64, wall: u64, out: &mut Vec<u8>) {
        self.now = now;
        let pos = (d.stream_seq != 0).then_some((d.stream, d.stream_seq));
        // The ExecID in a buffer the session keeps (no allocation per report).
        let mut exec_id = std::mem::take(&mut self.exec_id);
        exec_id.clear();
        let _ = match pos {
            Some((s, n)) => write!(exec_id, "{s}-{n}"),
            None => write!(exec_id, "R{}", self.next_out()),
        };
        self.report_with(d, pos, &exec_id, wall, out);
        self.exec_id = exec_id;
    }

    fn report_with(
        &mut self,
        d: &Delivery,
        pos: Option<(u16, u64)>,
        exec_id: &str,
        wall: u64,
        out: &mut Vec<u8>,
    ) {
        let transact = if d.ts != 0 { d.ts } else { wall };
        match d.event {
            Event::Accepted {
                order_id,
                client_order_id,
                symbol,
                side,
                price,
                qty,
                ..
            } => {
                self.orders.pending.remove(&client_order_id);
                let o = Order::new(client_order_id, symbol, side, qty, price);
                self.orders.insert(order_id, o);
                let e = Exec {
                    leaves: qty,
                    ..Exec::new(pos, exec_id, transact, order_id, b'0', b'0')
                };
                self.execution(out, wall, &o, e);
            }
            Event::Trade {
                trade_id,
                price,
                qty,
                aggressor,
                maker,
                taker,
                symbol,
            } => {
                let (fill, side) = match d.part {
                    Part::Maker => (maker, aggressor.opposite()),
                    _ => (taker, aggressor),
                };
                let mut o = self
                    .orders
                    .open
                    .get(&fill.order_id)
                    .copied()
                    .unwrap_or(Order::new(fill.client_order_id, symbol, side, 0, price));
                o.cum += qty;
                o.notional += price as i128 * qty as i128;
                o.qty = o.qty.max(o.cum + fill.leaves_qty);
                let status = if fill.leaves_qty == 0 { b'2' } else { b'1' };
                if fill.leaves_qty == 0 {
                    self.orders.remove(fill.order_id);
                    self.orders.close(fill.order_id, o, b'2', None);
                } else {
                    self.orders.insert(fill.order_id, o);
                }
                let taker = d.part != Part::Maker;
                let trade = Some((price, qty, trade_id, taker));
                let e = Exec {
                    leaves: fill.leaves_qty,
                    trade,
                    ..Exec::new(pos, exec_id, transact, fill.order_id, b'F', status)
                };
                self.execution(out, wall, &o, e);
            }
            Event::Cancelled {
                order_id,
                client_order_id,
                symbol,
                side,
                qty,
                reason,
                ..
            } => {
                self.orders.pending.remove(&client_order_id);
                let mut o = self.orders.remove(order_id).unwrap_or(Order::new(
                    client_order_id,
                    symbol,
                    side,
                    qty,
                    0,
                ));
                // Asked for: ClOrdID is the cancel request's, OrigClOrdID the order's. Not
                // asked for (IOC rest, mass cancel, self-trade prevention...): the order's
                // own ClOrdID (as the session knows it, after replaces) and the reason.
                let requested = reason == veloz_core::CancelReason::Requested;
                let orig = o.client_order_id;
                if requested {
                    o.client_order_id = client_order_id;
                }
                let text = (!requested).then(|| reason.name());
                let orig = (requested && orig != client_order_id).then_some(orig);
                self.orders.close(order_id, o, b'4', orig);
                let e = Exec {
                    orig,
                    text,
                    ..Exec::new(pos, exec_id, transact, order_id, b'4', b'4')
                };
                self.execution(out, wall, &o, e);
            }
            Event::Replaced {
                order_id,
                client_order_id,
                symbol,
                side,
                price,
                qty,
                ..
            } => {
                self.orders.pending.remove(&client_order_id);
                self.orders.aliases.remove(&client_order_id);
                let mut o = self.orders.remove(order_id).unwrap_or(Order::new(
                    client_order_id,
                    symbol,
                    side,
                    qty,
                    price,
                ));
                let orig = o.client_order_id;
                o.client_order_id = client_order_id;
                o.price = price;
                o.qty = o.cum + qty;
                self.orders.insert(order_id, o);
                let e = Exec {
                    leaves: qty,
                    orig: Some(orig),
                    ..Exec::new(pos, exec_id, transact, order_id, b'5', o.status())
                };
                self.execution(out, wall, &o, e);
            }
            Event::MassCancelled {
                client_order_id,
                symbol,
                count,
                ..
            } => {
                let mut m = self.orders.mass.remove(&client_order_id).unwrap_or(Mass {
                    symbol,
                    remaining: 1,
                    count: 0,
                });
                m.count += count;
                m.remaining = m.remaining.saturating_sub(1);
                if m.remaining > 0 {
                    self.orders.mass.insert(client_order_id, m);
                    self.passed(pos);
                    return;
                }
                self.mass_report(out, wall, pos, client_order_id, &m, Ok(m.count));
            }
            Event::Rejected {
                client_order_id,
                symbol,
                order_id,
                reason,
                ..
            } => {
                self.rejected(
                    out,
                    wall,
                    pos,
                    exec_id,
                    client_order_id,
                    symbol,
                    order_id,
                    reason,
                );
            }
            Event::Admin { .. } => self.passed(pos),
        }
    }

    /// A resend (or its absence) was served on `stream` up to `last`: the next logon
    /// resumes after it (a report after `last` moves it on when it is sent).
    pub fn stream_resumed(&mut self, stream: u16, last: u64) {
        if last != 0 {
            self.passed(Some((stream, last)));
        }
    }

    /// A report that gave no message still moves the stream's resume point.
    fn passed(&mut self, pos: Option<(u16, u64)>) {
        if let (Some((stream, seq)), Some(store)) = (pos, self.store.as_mut()) {
            store.passed(stream, seq);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rejected(
        &mut self,
        out: &mut Vec<u8>,
        wall: u64,
        pos: Option<(u16, u64)>,
        exec_id: &str,
        client_order_id: u64,
        symbol: SymbolId,
        order_id: OrderId,
        reason: RejectReason,
    ) {
        let text = reason_text(reason);
        if order_id == 0 {
            if let Some(m) = self.orders.mass.remove(&client_order_id) {
                self.mass_report(out, wall, pos, client_order_id, &m, Err(&text));
                return;
            }
        }
        let pending = self.orders.pending.remove(&client_order_id);
        self.orders.aliases.remove(&client_order_id);
        let kind = match pending {
            Some(p) => p.kind,
            None if order_id != 0 => PendingKind::Cancel,
            None => PendingKind::New,
        };
        let (sym, _) =
            self.symbol_of(pending.map_or(symbol, |p| if symbol == 0 { p.symbol } else { symbol }));
        let sym = sym.to_string();
        if kind == PendingKind::New {
            let side = side_char(pending.map_or(Side::Buy, |p| p.side));
            self.send_app(out, wall, b"8", pos, |w, cl| {
                w.str(tags::ORDER_ID, "NONE");
                cl.write(w, tags::CL_ORD_ID, client_order_id);
                w.str(tags::EXEC_ID, exec_id);
                w.char(tags::EXEC_TYPE, b'8');
                w.char(tags::ORD_STATUS, b'8');
                w.uint(tags::ORD_REJ_REASON, ord_rej_reason(reason));
                w.str(tags::SYMBOL, &sym);
                w.char(tags::SIDE, side);
                w.uint(tags::LEAVES_QTY, 0);
                w.uint(tags::CUM_QTY, 0);
                w.uint(tags::AVG_PX, 0);
                w.str(tags::TEXT, &text);
            });
            return;
        }
        let order = self.orders.find(order_id).copied();
        let orig = match (OrderRef::from_raw(order_id), order) {
            (OrderRef::ClientId(c), _) => Some(c),
            (_, Some(o)) => Some(o.client_order_id),
            _ => pending.map(|p| p.orig).filter(|&o| o != 0),
        };
        let id = match OrderRef::from_raw(order_id) {
            OrderRef::Id(id) if id != 0 => Some(id),
            _ => self.orders.by_client.get(&orig.unwrap_or(0)).copied(),
        };
        let status = order.map_or(b'8', |o| o.status());
        let to = if kind == PendingKind::Replace { 2 } else { 1 };
        let why = if reason == RejectReason::UnknownOrder {
            1
        } else {
            99
        };
        self.send_app(out, wall, b"9", pos, |w, cl| {
            match id {
                Some(id) => w.uint(tags::ORDER_ID, id),
                None => w.str(tags::ORDER_ID, "NONE"),
            }
            cl.write(w, tags::CL_ORD_ID, client_order_id);
            match orig {
                Some(o) => cl.write(w, tags::ORIG_CL_ORD_ID, o),
                None => w.str(tags::ORIG_CL_ORD_ID, "NONE"),
            }
            w.char(tags::ORD_STATUS, status);
            w.uint(tags::CXL_REJ_RESPONSE_TO, to);
            w.uint(tags::CXL_REJ_REASON, why);
            w.str(tags::TEXT, &text);
        });
    }

    /// The OrderMassCancelReport (r) of mass cancel `client_order_id`: the orders it
    /// cancelled over its shards, or why it was refused.
    fn mass_report(
        &mut self,
        out: &mut Vec<u8>,
        wall: u64,
        pos: Option<(u16, u64)>,
        client_order_id: u64,
        m: &Mass,
        answer: Result<u32, &str>,
    ) {
        let shared = Arc::clone(&self.shared);
        let sym = m.symbol.map(|s| symbol_of(&shared, s).0);
        let kind = if m.symbol.is_some() { b'1' } else { b'7' };
        self.send_app(out, wall, b"r", pos, |w, cl| {
            cl.write(w, tags::CL_ORD_ID, client_order_id);
            w.str(tags::ORDER_ID, "NONE");
            w.char(tags::MASS_CANCEL_REQUEST_TYPE, kind);
            match answer {
                Ok(count) => {
                    w.char(tags::MASS_CANCEL_RESPONSE, kind);
                    w.uint(tags::TOTAL_AFFECTED_ORDERS, u64::from(count));
                    if let Some(sym) = sym {
                        w.str(tags::SYMBOL, sym);
                    }
                }
                Err(text) => {
                    w.char(tags::MASS_CANCEL_RESPONSE, b'0');
                    w.uint(tags::MASS_CANCEL_REJECT_REASON, 99);
                    w.str(tags::TEXT, text);
                }
            }
        });
    }

    /// An ExecutionReport stating order `o` after an event.
    fn execution(&mut self, out: &mut Vec<u8>, wall: u64, o: &Order, e: Exec<'_>) {
        let Exec {
            pos,
            transact,
            exec_id,
            order_id,
            exec,
            status,
            leaves,
            orig,
            trade,
            text,
        } = e;
        let shared = Arc::clone(&self.shared);
        let (sym, scale) = symbol_of(&shared, o.symbol);
        let o = *o;
        self.send_app(out, wall, b"8", pos, |w, cl| {
            w.uint(tags::ORDER_ID, order_id);
            cl.write(w, tags::CL_ORD_ID, o.client_order_id);
            if let Some(orig) = orig {
                cl.write(w, tags::ORIG_CL_ORD_ID, orig);
            }
            w.str(tags::EXEC_ID, exec_id);
            w.char(tags::EXEC_TYPE, exec);
            w.char(tags::ORD_STATUS, status);
            w.str(tags::SYMBOL, sym);
            w.char(tags::SIDE, side_char(o.side));
            w.uint(tags::ORDER_QTY, o.qty);
            if o.price > 0 {
                w.decimal(tags::PRICE, o.price, scale);
            }
            if let Some((px, qty, trade_id, taker)) = trade {
                w.uint(tags::LAST_QTY, qty);
                w.decimal(tags::LAST_PX, px, scale);
                w.uint(tags::TRD_MATCH_ID, trade_id);
                w.bool(tags::AGGRESSOR_INDICATOR, taker);
            }
            w.uint(tags::LEAVES_QTY, leaves);
            w.uint(tags::CUM_QTY, o.cum);
            avg_px(w, &o, scale);
            w.timestamp(tags::TRANSACT_TIME, transact);
            if let Some(text) = text {
                w.str(tags::TEXT, text);
            }
        });
    }

    /// An OrderStatusRequest's answer: ExecutionReport with ExecType I.
    pub fn status_answer(&mut self, s: &OrderStatus, now: u64, wall: u64, out: &mut Vec<u8>) {
        self.now = now;
        let (request, asked) = self
            .orders
            .status
            .remove(&s.client_order_id)
            .unwrap_or((None, 0));
        let exec_id = format!("Q{}", self.next_out());
        let closed = match s.reject_reason {
            // Gone from the book: filled or cancelled, as this session was told.
            Some(RejectReason::UnknownOrder) => self.orders.closed.get(&asked).copied(),
            _ => None,
        };
        let (order_id, o, status, leaves, text) = match closed {
            Some((id, o, status)) => (id, o, status, 0, None),
            None => {
                let known = self.orders.open.get(&s.order_id).copied();
                let cum = known.map_or(0, |o| o.cum);
                let side = s.side.or(known.map(|o| o.side)).unwrap_or(Side::Buy);
                // The ClOrdID the order has now (after replaces), as this session knows
                // it; else the one it was asked by, else the one the engine knows it by.
                let client_order_id = match (known, asked, s.orig_client_order_id) {
                    (Some(o), _, _) => o.client_order_id,
                    (None, a, _) if a != 0 => a,
                    (None, _, engine) => engine,
                };
                let o = Order {
                    client_order_id,
                    symbol: s.symbol,
                    side,
                    qty: cum + s.leaves_qty,
                    price: s.price,
                    cum,
                    notional: known.map_or(0, |o| o.notional),
                };
                let status = if s.reject_reason.is_some() {
                    b'8'
                } else {
                    o.status()
                };
                let text = s.reject_reason.map(reason_text);
                (s.order_id, o, status, s.leaves_qty, text)
            }
        };
        let (sym, scale) = self.symbol_of(o.symbol);
        let sym = sym.to_string();
        let (side, cum) = (o.side, o.cum);
        self.send_app(out, wall, b"8", None, |w, cl| {
            match order_id {
                0 => w.str(tags::ORDER_ID, "NONE"),
                id => w.uint(tags::ORDER_ID, id),
            }
            cl.write(w, tags::CL_ORD_ID, o.client_order_id);
            w.str(tags::EXEC_ID, &exec_id);
            w.char(tags::EXEC_TYPE, b'I');
            w.char(tags::ORD_STATUS, status);
            w.str(tags::SYMBOL, &sym);
            w.char(tags::SIDE, side_char(side));
            w.uint(tags::ORDER_QTY, o.qty);
            if o.price > 0 {
                w.decimal(tags::PRICE, o.price, scale);
            }
            w.uint(tags::LEAVES_QTY, leaves);
            w.uint(tags::CUM_QTY, cum);
            avg_px(w, &o, scale);
            if let Some(r) = &request {
                w.str(tags::ORD_STATUS_REQ_ID, r);
            }
            if let Some(t) = &text {
                w.str(tags::TEXT, t);
            }
        });
    }
}

/// AvgPx (6): the fills' notional over CumQty, four digits beyond the price scale.
fn avg_px(w: &mut Writer, o: &Order, scale: u8) {
    if o.cum == 0 {
        w.uint(tags::AVG_PX, 0);
    } else {
        w.decimal_ratio(tags::AVG_PX, o.notional, o.cum as i128, scale, 4);
    }
}

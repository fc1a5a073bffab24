//! The order state FIX needs that the engine's events do not carry (module `reports` writes
//! it into ExecutionReports): per open order of the session's account its ClOrdID,
//! OrderQty, CumQty and notional; the requests in flight (to answer a reject with the right
//! message); mass cancels waiting for their shards; the last finished orders (for status
//! requests). Rebuilt at logon from the ExecutionReports in the CompID's store.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use veloz_core::{OrderId, OrderRef, Price, Side, SymbolId};
use veloz_fix::{tags, Parser};

use super::clordid::ClOrdIds;
use super::store::Store;
use super::FixShared;

/// What a request waiting for its answer was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PendingKind {
    New,
    Cancel,
    Replace,
}

/// A request sent on and not answered yet, by its ClOrdID.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    pub kind: PendingKind,
    pub symbol: SymbolId,
    pub side: Side,
    /// The OrigClOrdID a cancel or replace named (0: by OrderID).
    pub orig: u64,
}

/// An open order as FIX states it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Order {
    pub(super) client_order_id: u64,
    pub(super) symbol: SymbolId,
    pub(super) side: Side,
    /// OrderQty: filled plus open.
    pub(super) qty: u64,
    pub(super) price: Price,
    pub(super) cum: u64,
    /// Sum of fill price x quantity, in price units.
    pub(super) notional: i128,
}

impl Order {
    /// An order with nothing filled yet.
    pub(super) fn new(
        client_order_id: u64,
        symbol: SymbolId,
        side: Side,
        qty: u64,
        price: Price,
    ) -> Order {
        Order {
            client_order_id,
            symbol,
            side,
            qty,
            price,
            cum: 0,
            notional: 0,
        }
    }

    pub(super) fn status(&self) -> u8 {
        if self.cum > 0 {
            b'1'
        } else {
            b'0'
        }
    }
}

/// A mass cancel waiting for the answers of its shards.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mass {
    pub(super) symbol: Option<SymbolId>,
    pub(super) remaining: u32,
    pub(super) count: u32,
}

/// The session's view of its account's orders and of its requests in flight.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    pub(super) open: FxHashMap<OrderId, Order>,
    pub(super) by_client: FxHashMap<u64, OrderId>,
    /// A replace's new ClOrdID -> the order it names (raw: an id, or by the ClOrdID the
    /// engine knows), until the replace is answered: a cancel may name it before then.
    pub(super) aliases: FxHashMap<u64, u64>,
    pub(super) pending: FxHashMap<u64, Pending>,
    /// OrderStatusRequests: request id -> (OrdStatusReqID, the ClOrdID asked about).
    pub(super) status: FxHashMap<u64, (Option<String>, u64)>,
    pub(super) next_status: u64,
    pub(super) mass: FxHashMap<u64, Mass>,
    /// The last [`CLOSED_KEPT`] orders that were filled or cancelled, by ClOrdID (the
    /// order's last, and the one before a cancel), for OrderStatusRequests: (order id,
    /// its final state, OrdStatus).
    pub(super) closed: FxHashMap<u64, (OrderId, Order, u8)>,
    pub(super) closed_fifo: VecDeque<u64>,
}

/// Finished orders a session can still ask the status of.
const CLOSED_KEPT: usize = 10_000;

impl Orders {
    pub(super) fn pending(&mut self, client_order_id: u64, p: Pending) {
        self.pending.insert(client_order_id, p);
    }

    /// The engine id of the open order this session knows as `client_order_id`.
    /// Raw (see [`OrderRef::raw`]), also for a replace still in flight.
    pub(super) fn order_of(&self, client_order_id: u64) -> Option<u64> {
        let known = self.by_client.get(&client_order_id);
        known
            .or_else(|| self.aliases.get(&client_order_id))
            .copied()
    }

    /// Whether an order was entered under `client_order_id` and is open, or ended lately.
    pub(super) fn seen(&self, client_order_id: u64) -> bool {
        self.by_client.contains_key(&client_order_id)
            || self.closed.contains_key(&client_order_id)
            || self.pending.contains_key(&client_order_id)
    }

    /// How many open orders the session knows.
    #[cfg(test)]
    pub(super) fn open_count(&self) -> usize {
        self.open.len()
    }

    pub(super) fn alias(&mut self, client_order_id: u64, order: u64) {
        self.aliases.insert(client_order_id, order);
    }

    /// The quantity filled of the order a request names (raw: by id, or by ClOrdID).
    pub(super) fn filled(&self, order_id: u64) -> u64 {
        self.find(order_id).map_or(0, |o| o.cum)
    }

    pub(super) fn find(&self, order_id: u64) -> Option<&Order> {
        let id = match OrderRef::from_raw(order_id) {
            OrderRef::Id(id) => id,
            OrderRef::ClientId(c) => *self.by_client.get(&c)?,
        };
        self.open.get(&id)
    }

    pub(super) fn status_request(&mut self, request: Option<String>, client_order_id: u64) -> u64 {
        self.next_status += 1;
        self.status
            .insert(self.next_status, (request, client_order_id));
        self.next_status
    }

    pub(super) fn mass(&mut self, client_order_id: u64, symbol: Option<SymbolId>, shards: u32) {
        let m = Mass {
            symbol,
            remaining: shards,
            count: 0,
        };
        self.mass.insert(client_order_id, m);
    }

    pub(super) fn insert(&mut self, id: OrderId, o: Order) {
        self.by_client.insert(o.client_order_id, id);
        self.open.insert(id, o);
    }

    /// Order `id` is done (filled or cancelled) with OrdStatus `status`; `also` is the
    /// ClOrdID it had before a cancel request's.
    pub(super) fn close(&mut self, id: OrderId, o: Order, status: u8, also: Option<u64>) {
        for c in std::iter::once(o.client_order_id).chain(also) {
            if self.closed.insert(c, (id, o, status)).is_none() {
                self.closed_fifo.push_back(c);
            }
        }
        while self.closed_fifo.len() > CLOSED_KEPT {
            if let Some(old) = self.closed_fifo.pop_front() {
                self.closed.remove(&old);
            }
        }
    }

    pub(super) fn remove(&mut self, id: OrderId) -> Option<Order> {
        let o = self.open.remove(&id)?;
        if self.by_client.get(&o.client_order_id) == Some(&id) {
            self.by_client.remove(&o.client_order_id);
        }
        Some(o)
    }

    /// The open orders the store's ExecutionReports describe.
    pub(super) fn rebuild(store: &Store, shared: &FixShared, cl: &ClOrdIds) -> Orders {
        let mut orders = Orders::default();
        let mut parser = Parser::new();
        for bytes in store.opened_messages() {
            let Ok(m) = parser.parse(bytes) else { continue };
            if m.msg_type() != b"8" {
                continue;
            }
            let num = |tag| m.get_u64(tag).ok().flatten().unwrap_or(0);
            let client = || {
                m.get(tags::CL_ORD_ID)
                    .and_then(|v| cl.lookup(v))
                    .unwrap_or(0)
            };
            let id = num(tags::ORDER_ID);
            let Some(inst) = m
                .get_str(tags::SYMBOL)
                .ok()
                .flatten()
                .and_then(|s| shared.by_symbol(s))
            else {
                continue;
            };
            let px = |tag| {
                m.get(tag)
                    .and_then(|v| veloz_fix::parse_decimal(v, inst.price_scale).ok())
                    .unwrap_or(0)
            };
            let side = if m.get(tags::SIDE) == Some(b"2") {
                Side::Sell
            } else {
                Side::Buy
            };
            let exec = m.get(tags::EXEC_TYPE).unwrap_or_default();
            match exec {
                b"0" | b"5" => {
                    let notional = orders.open.get(&id).map_or(0, |o| o.notional);
                    orders.remove(id);
                    let o = Order {
                        client_order_id: client(),
                        symbol: inst.id,
                        side,
                        qty: num(tags::ORDER_QTY),
                        price: px(tags::PRICE),
                        cum: num(tags::CUM_QTY),
                        notional,
                    };
                    orders.insert(id, o);
                }
                b"F" => {
                    if let Some(o) = orders.open.get_mut(&id) {
                        o.cum = num(tags::CUM_QTY);
                        o.notional += px(tags::LAST_PX) as i128 * num(tags::LAST_QTY) as i128;
                    }
                }
                _ => {}
            }
            let status = m.get(tags::ORD_STATUS).unwrap_or_default();
            if matches!(status, b"2" | b"4" | b"8") && exec != b"I" {
                if let Some(mut o) = orders.remove(id) {
                    let before = o.client_order_id;
                    o.client_order_id = client();
                    let also = (before != o.client_order_id).then_some(before);
                    orders.close(id, o, status[0], also);
                }
            }
        }
        orders
    }
}

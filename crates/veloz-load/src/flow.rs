//! The online order flow of one connection: exchange-core's mix and price model (the pieces
//! of [`veloz_core::workload`]), driven by what the engine answers.
//!
//! Unlike the offline generator, this one cannot run the commands through a local engine:
//! order ids are assigned by the engine, so the flow learns its resting orders from the
//! Accepted reports and forgets them on Filled / Cancelled. Cancels and moves name orders
//! from that set, and the connection's view of each book's last trade price comes from its
//! own fills (the engine sends no public prints yet).
//!
//! Invariants:
//! - every price is on the instrument's tick and inside the narrowed band around the
//!   connection's view of the reference price ([`veloz_core::workload::PriceModel::price`]); every
//!   quantity is a multiple of the lot within `min_qty..=max_qty`;
//! - an order is never named by two cancels: a cancel takes it out of the set when it is
//!   sent (optimistically); a move updates its tracked price when it is sent, so a second move
//!   in flight starts from the first one's price, and the Replaced report of the first does
//!   not put the price back while the second is in flight (no `NoChange` from the flow's own
//!   pipeline);
//! - models and symbol weights come from one PCG64 stream seeded with the run's seed, so
//!   every connection (and the echo baseline) sees the same books; each connection draws its
//!   commands from its own stream (seed and connection index).
//!
//! What can still be rejected, rarely: a cancel or move of an order that another session's
//! order filled while the request was in flight (`UnknownOrder`), a price outside the band
//! when the last trade moved further than the margin since this connection last saw one.

use rand::SeedableRng;
use rand_pcg::Pcg64;
use rustc_hash::FxHashMap;

use veloz_core::workload::{draw_lots, symbol_weights, Kind, Mix, PriceModel, SymbolPicker};
use veloz_core::{
    CancelOrder, Command, Instrument, NewOrder, OrderId, OrderKind, Price, Qty, ReplaceOrder,
    SelfTradePrevention, Side, SymbolId, TimeInForce,
};

/// How the flow is shaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    pub seed: u64,
    pub mix: Mix,
    /// Target resting orders over all connections and books; `None`: 1,000 per instrument
    /// (exchange-core's). Each connection holds its share, split by symbol weight, at least
    /// 2 per book.
    pub resting_total: Option<usize>,
    /// Connections sharing `resting_total`.
    pub connections: usize,
    /// Spread of GTC placements in ticks; `None`: exchange-core's `min(5 % of mid, 10_000)`.
    pub deviation_ticks: Option<i64>,
}

/// An order this connection believes is resting.
#[derive(Clone, Copy, Debug)]
struct Live {
    book: u32,
    /// Index in its book's `ids`.
    pos: u32,
    side: Side,
    /// In ticks.
    price: i64,
    leaves: Qty,
    /// Moves sent and not answered yet: while any is in flight, a Replaced report (of an
    /// earlier move) does not overwrite the price the latest move set.
    moves_in_flight: u16,
}

/// One book as this connection sees it.
#[derive(Debug)]
struct Book {
    model: PriceModel,
    /// exchange-core's `lastTradePrice`, in ticks, inside `[model.min, model.max]`.
    last: i64,
    /// Last trade price seen, in price units (0: none yet, the band uses the configured
    /// reference).
    last_trade: Price,
    target: usize,
    /// Resting orders, for uniform picks (swap-remove keeps it dense).
    ids: Vec<OrderId>,
    per_side: [usize; 2],
    /// GTC orders sent during the prefill (a guard against a book that never fills up).
    prefill_sent: usize,
}

/// The order flow of one connection; see the module docs.
#[derive(Debug)]
pub struct OrderFlow {
    rng: Pcg64,
    mix: Mix,
    books: Vec<Book>,
    book_of: FxHashMap<SymbolId, u32>,
    picker: SymbolPicker,
    live: FxHashMap<OrderId, Live>,
}

impl OrderFlow {
    /// The flow of connection `connection` over `instruments` (at least one, ids distinct).
    pub fn new(instruments: &[Instrument], config: &FlowConfig, connection: usize) -> OrderFlow {
        assert!(!instruments.is_empty(), "an order flow needs an instrument");
        let mut sorted = instruments.to_vec();
        sorted.sort_by_key(|i| i.id);
        // One shared stream for what every connection must agree on.
        let mut shared = Pcg64::seed_from_u64(config.seed);
        let weights = symbol_weights(sorted.len(), &mut shared);
        let total = config.resting_total.unwrap_or(1_000 * sorted.len());
        let per_connection = total / config.connections.max(1);
        let books = sorted
            .iter()
            .zip(&weights)
            .map(|(inst, w)| {
                let mut model = PriceModel::new(inst, None, &mut shared);
                if let Some(d) = config.deviation_ticks {
                    model.set_deviation(d);
                }
                let target = ((per_connection as f64 * w).round() as usize).max(2);
                Book {
                    last: model.center,
                    last_trade: 0,
                    target,
                    ids: Vec::with_capacity(target * 2),
                    per_side: [0, 0],
                    prefill_sent: 0,
                    model,
                }
            })
            .collect();
        let book_of = sorted
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.id, i as u32))
            .collect();
        OrderFlow {
            rng: Pcg64::seed_from_u64(connection_seed(config.seed, connection)),
            mix: config.mix,
            books,
            book_of,
            picker: SymbolPicker::new(&weights),
            live: FxHashMap::default(),
        }
    }

    /// Orders this connection believes are resting.
    pub fn resting(&self) -> usize {
        self.live.len()
    }

    /// The next command of the prefill (GTC orders until every book holds half its target
    /// on each side), or `None` when the books are full.
    pub fn prefill_next(&mut self, client_order_id: u64) -> Option<Command> {
        let b = self.books.iter().position(|book| {
            let half = book.target / 2;
            (book.per_side[0] < half || book.per_side[1] < half)
                && book.prefill_sent < 100 * book.target
        })?;
        self.books[b].prefill_sent += 1;
        Some(self.gtc(b, client_order_id))
    }

    /// The next command of the mix. A cancel or move drawn for a book with nothing to act on
    /// is drawn again (a GTC after a few tries).
    pub fn next(&mut self, client_order_id: u64) -> (Kind, Command) {
        let mut b = 0;
        for _ in 0..8 {
            b = self.picker.pick(&mut self.rng);
            let book = &self.books[b];
            let kind = self
                .mix
                .draw(&mut self.rng)
                .held_at(book.ids.len(), book.target);
            let cmd = match kind {
                Kind::Gtc => Some(self.gtc(b, client_order_id)),
                Kind::Ioc => Some(self.ioc(b, client_order_id)),
                Kind::Cancel => self.cancel(b, client_order_id),
                Kind::Move => self.moved(b, client_order_id),
            };
            if let Some(cmd) = cmd {
                return (kind, cmd);
            }
        }
        (Kind::Gtc, self.gtc(b, client_order_id))
    }

    fn gtc(&mut self, b: usize, client_order_id: u64) -> Command {
        let book = &self.books[b];
        let side = match book.per_side[0].cmp(&book.per_side[1]) {
            std::cmp::Ordering::Less => Side::Buy,
            std::cmp::Ordering::Greater => Side::Sell,
            std::cmp::Ordering::Equal => random_side(&mut self.rng),
        };
        let ticks = book.model.passive_ticks(side, book.last, &mut self.rng);
        let lots = draw_lots(&mut self.rng);
        new_order(book, client_order_id, side, TimeInForce::Gtc, ticks, lots)
    }

    fn ioc(&mut self, b: usize, client_order_id: u64) -> Command {
        let side = random_side(&mut self.rng);
        let lots = draw_lots(&mut self.rng);
        let book = &self.books[b];
        let ticks = book.model.aggressive_ticks(side);
        new_order(book, client_order_id, side, TimeInForce::Ioc, ticks, lots)
    }

    /// A uniformly chosen resting order of book `b`.
    fn pick(&mut self, b: usize) -> Option<OrderId> {
        let ids = &self.books[b].ids;
        if ids.is_empty() {
            return None;
        }
        Some(ids[rand::Rng::random_range(&mut self.rng, 0..ids.len())])
    }

    fn cancel(&mut self, b: usize, client_order_id: u64) -> Option<Command> {
        let order_id = self.pick(b)?;
        // Optimistic: nothing else may name it once the cancel is on its way.
        self.remove(order_id);
        Some(Command::Cancel(CancelOrder {
            account: 0,
            symbol: self.books[b].model.symbol,
            client_order_id,
            order_id,
        }))
    }

    fn moved(&mut self, b: usize, client_order_id: u64) -> Option<Command> {
        let order_id = self.pick(b)?;
        let o = self.live[&order_id];
        let book = &self.books[b];
        let step = PriceModel::move_step(o.price, book.last, &mut self.rng);
        let model = &book.model;
        let old = o.price * model.tick;
        let mut price = model.price(o.price + step, book.last_trade);
        if price == old {
            price = model.price(o.price - step, book.last_trade);
            if price == old {
                return None;
            }
        }
        let (symbol, qty, tick) = (model.symbol, o.leaves.max(model.min_qty()), model.tick);
        // Optimistic: a second move in flight starts from this price.
        if let Some(l) = self.live.get_mut(&order_id) {
            l.price = price / tick;
            l.moves_in_flight = l.moves_in_flight.saturating_add(1);
        }
        Some(Command::Replace(ReplaceOrder {
            account: 0,
            symbol,
            client_order_id,
            order_id,
            price,
            qty,
        }))
    }

    /// The engine accepted an order (it rests until a fill or cancel report says otherwise).
    pub fn on_accepted(
        &mut self,
        order_id: OrderId,
        symbol: SymbolId,
        side: Side,
        price: Price,
        leaves: Qty,
    ) {
        let Some(&b) = self.book_of.get(&symbol) else {
            return;
        };
        if leaves == 0 || self.live.contains_key(&order_id) {
            return;
        }
        let book = &mut self.books[b as usize];
        let live = Live {
            book: b,
            pos: book.ids.len() as u32,
            side,
            price: price / book.model.tick,
            leaves,
            moves_in_flight: 0,
        };
        book.ids.push(order_id);
        book.per_side[side as usize] += 1;
        self.live.insert(order_id, live);
    }

    /// A fill of one of this connection's orders (maker or taker).
    pub fn on_fill(&mut self, order_id: OrderId, symbol: SymbolId, last_price: Price, leaves: Qty) {
        if let Some(&b) = self.book_of.get(&symbol) {
            let book = &mut self.books[b as usize];
            if last_price > 0 {
                book.last_trade = last_price;
                book.last = (last_price / book.model.tick).clamp(book.model.min, book.model.max);
            }
        }
        if leaves == 0 {
            self.remove(order_id);
        } else if let Some(o) = self.live.get_mut(&order_id) {
            o.leaves = leaves;
        }
    }

    /// An order was replaced (one of this connection's moves): new price and open quantity.
    /// The price is taken only when no later move is in flight: that one set it already.
    pub fn on_replaced(&mut self, order_id: OrderId, price: Price, leaves: Qty) {
        let Some(o) = self.live.get_mut(&order_id) else {
            return;
        };
        o.moves_in_flight = o.moves_in_flight.saturating_sub(1);
        if o.moves_in_flight == 0 {
            o.price = price / self.books[o.book as usize].model.tick;
        }
        o.leaves = leaves;
    }

    /// An order is gone (cancelled for any reason).
    pub fn on_gone(&mut self, order_id: OrderId) {
        self.remove(order_id);
    }

    fn remove(&mut self, id: OrderId) {
        let Some(o) = self.live.remove(&id) else {
            return;
        };
        let book = &mut self.books[o.book as usize];
        book.per_side[o.side as usize] -= 1;
        book.ids.swap_remove(o.pos as usize);
        if let Some(&moved) = book.ids.get(o.pos as usize) {
            self.live.get_mut(&moved).expect("tracked ids are live").pos = o.pos;
        }
    }
}

fn random_side(rng: &mut Pcg64) -> Side {
    if rand::Rng::random::<bool>(rng) {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn new_order(
    book: &Book,
    client_order_id: u64,
    side: Side,
    tif: TimeInForce,
    ticks: i64,
    lots: u64,
) -> Command {
    Command::New(NewOrder {
        account: 0,
        symbol: book.model.symbol,
        client_order_id,
        side,
        kind: OrderKind::Limit,
        tif,
        post_only: false,
        stp: SelfTradePrevention::Allow,
        price: book.model.price(ticks, book.last_trade),
        qty: book.model.qty(lots),
    })
}

/// The command stream seed of one connection: SplitMix64 of the run seed and the index, so
/// neighbouring connections get unrelated streams.
fn connection_seed(seed: u64, connection: usize) -> u64 {
    let mut z = seed ^ (connection as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veloz_core::{Engine, Event};

    fn band_instruments() -> Vec<Instrument> {
        [(1, 1_900_000), (2, 4_200_000)]
            .into_iter()
            .map(|(id, reference)| {
                let mut i = Instrument::simple(id, &format!("S{id}"));
                i.tick_size = 100;
                i.max_qty = 1_000_000;
                i.price_band_bps = 800;
                i.reference_price = reference;
                i
            })
            .collect()
    }

    /// Drive the flow against an in-process engine, feeding its events back as the reports
    /// the connection would get.
    #[test]
    fn online_flow_against_an_engine_is_clean_and_trades() {
        let instruments = band_instruments();
        let mut engine = Engine::new(0, &instruments);
        let config = FlowConfig {
            seed: 9,
            mix: Mix::EXCHANGE_CORE,
            resting_total: Some(1_000),
            connections: 1,
            deviation_ticks: Some(super::super::DEFAULT_DEVIATION_TICKS),
        };
        let mut flow = OrderFlow::new(&instruments, &config, 0);
        let (mut seq, mut rejects, mut trading, mut commands) = (0u64, 0u64, 0u64, 0u64);
        let mut events = Vec::new();
        let mut coid = 0;
        let mut step = |flow: &mut OrderFlow, cmd: Command, seq: &mut u64| {
            *seq += 1;
            events.clear();
            engine.apply(*seq, *seq, &cmd, &mut events);
            let mut traded = false;
            let mut rejected = false;
            for e in &events {
                match *e {
                    Event::Accepted {
                        order_id,
                        symbol,
                        side,
                        price,
                        qty,
                        ..
                    } => flow.on_accepted(order_id, symbol, side, price, qty),
                    Event::Trade {
                        symbol,
                        price,
                        maker,
                        taker,
                        ..
                    } => {
                        traded = true;
                        flow.on_fill(maker.order_id, symbol, price, maker.leaves_qty);
                        flow.on_fill(taker.order_id, symbol, price, taker.leaves_qty);
                    }
                    Event::Cancelled { order_id, .. } => flow.on_gone(order_id),
                    Event::Replaced {
                        order_id,
                        price,
                        qty,
                        ..
                    } => flow.on_replaced(order_id, price, qty),
                    Event::Rejected { .. } => rejected = true,
                    Event::MassCancelled { .. } | Event::Admin { .. } => {}
                }
            }
            (traded, rejected)
        };
        while let Some(cmd) = {
            coid += 1;
            flow.prefill_next(coid)
        } {
            step(&mut flow, cmd, &mut seq);
        }
        assert!(flow.resting() >= 900, "prefill left {}", flow.resting());
        for _ in 0..50_000 {
            coid += 1;
            let (_, cmd) = flow.next(coid);
            let (traded, rejected) = step(&mut flow, cmd, &mut seq);
            commands += 1;
            trading += u64::from(traded);
            rejects += u64::from(rejected);
        }
        let ratio = trading as f64 / commands as f64;
        assert_eq!(rejects, 0, "the flow's view equals the engine's here");
        // exchange-core's benchmark: about 6 % of commands trade.
        assert!((0.04..0.08).contains(&ratio), "trading ratio {ratio}");
        assert_eq!(flow.resting(), engine.resting_orders());
    }

    #[test]
    fn connections_share_books_but_not_streams() {
        let instruments = band_instruments();
        let config = FlowConfig {
            seed: 3,
            mix: Mix::EXCHANGE_CORE,
            resting_total: None,
            connections: 4,
            deviation_ticks: None,
        };
        let a = OrderFlow::new(&instruments, &config, 0);
        let b = OrderFlow::new(&instruments, &config, 1);
        let centers = |f: &OrderFlow| f.books.iter().map(|b| b.model.center).collect::<Vec<_>>();
        assert_eq!(centers(&a), centers(&b));
        assert_eq!(a.picker, b.picker);
        assert_ne!(connection_seed(3, 0), connection_seed(3, 1));
    }
}

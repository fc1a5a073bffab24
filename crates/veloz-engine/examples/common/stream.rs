//! The restart workload (docs/BENCHMARKS.md, "Restart time"), shared by the examples that
//! write it to a journal (`restart_data`) and apply it in memory (`restart_core`): resting
//! limit orders, then a new resting order and the cancel of the oldest one in turn, so the
//! books stay at the same size and every cancel hits the oldest, coldest order. A fixed
//! arithmetic stream: the same calls give the same commands.

use std::collections::VecDeque;

use veloz_core::{
    AccountId, CancelOrder, Command, Instrument, NewOrder, OrderId, OrderKind, SelfTradePrevention,
    Side, SymbolId, TimeInForce,
};

/// The stream's state: orders made so far and the resting ones, oldest first.
pub struct RestartStream {
    instruments: Vec<Instrument>,
    /// Orders made so far (the next one is the k-th).
    k: u64,
    /// Commands after the prefill so far.
    tail: u64,
    /// Resting orders, oldest first: (order id, account, instrument). Every new order rests,
    /// so order ids are the shard's order counter: (shard 0 << 48) | n.
    live: VecDeque<(OrderId, AccountId, SymbolId)>,
}

impl RestartStream {
    /// A stream over `instruments` (one shard's, shard 0), from its first order.
    pub fn new(instruments: Vec<Instrument>) -> RestartStream {
        RestartStream {
            instruments,
            k: 0,
            tail: 0,
            live: VecDeque::new(),
        }
    }

    /// The next resting order of the prefill.
    pub fn resting(&mut self) -> Command {
        let o = self.new_order();
        Command::New(o)
    }

    /// The next command after the prefill: a new resting order, then the cancel of the
    /// oldest resting one, in turn.
    pub fn tail(&mut self) -> Command {
        let done = self.tail;
        self.tail += 1;
        if done.is_multiple_of(2) {
            return Command::New(self.new_order());
        }
        let (order_id, account, symbol) = self.live.pop_front().expect("a resting order");
        Command::Cancel(CancelOrder {
            account,
            symbol,
            client_order_id: self.k + done,
            order_id,
        })
    }

    /// The k-th order: instrument k % n, bids and asks alternately, on 400 levels each side
    /// away from the reference (inside every band), never crossing.
    fn new_order(&mut self) -> NewOrder {
        let k = self.k;
        self.k += 1;
        let inst = &self.instruments[(k % self.instruments.len() as u64) as usize];
        let side = if (k / 4).is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        };
        let ticks = 1 + (k / 8) % 400;
        let off = inst.tick_size * ticks as i64;
        let o = NewOrder {
            account: 1 + (k % 2) as u32,
            symbol: inst.id,
            client_order_id: k + 1,
            side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: SelfTradePrevention::Allow,
            price: match side {
                Side::Buy => inst.reference_price - off,
                Side::Sell => inst.reference_price + off,
            },
            qty: inst.lot_size * (1 + k % 5),
        };
        self.live.push_back((k + 1, o.account, o.symbol));
        o
    }
}

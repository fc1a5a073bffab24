//! The replay: one engine driven by the message file, checked against the orderbook file
//! after every message.
//!
//! Contract: [`Replay::run`] applies the messages in order (see the crate docs for how each
//! type maps to commands), compares and re-syncs after each, validates the engine every
//! [`VALIDATE_EVERY`] messages and at the end, and returns the counts, the final state hash
//! and the first [`FAILURES_KEPT`] failures. Per order it keeps the metadata that decides
//! whether the order is certain, stale or synthetic.

mod messages;
mod resync;

use std::collections::{HashMap, HashSet};

use veloz_core::{
    AccountId, CancelOrder, Command, Engine, Event, Instrument, NewOrder, OrderId, OrderKind,
    Price, Qty, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};

use crate::feed::FeedCheck;
use crate::files::{Msg, Row};
use crate::{Counts, FAILURES_KEPT, STREET, SYMBOL, SYNTHETIC_ACCOUNTS, TICK, VALIDATE_EVERY};

#[derive(Clone, Copy, Debug)]
struct Meta {
    /// LOBSTER order id; `None` for a synthetic order.
    lobster: Option<u64>,
    account: AccountId,
    /// Index of the message that placed it.
    placed: usize,
    side: Side,
    price: Price,
}

/// `a` is a better price than `b` on `side`.
fn better(side: Side, a: Price, b: Price) -> bool {
    match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}

pub(crate) struct Replay<'a> {
    name: &'a str,
    levels: usize,
    msgs: &'a [Msg],
    rows: &'a [Row],
    engine: Engine,
    seq: u64,
    ts: u64,
    out: Vec<Event>,
    /// The market-data feed built from the same events, and its subscribers.
    pub(crate) feed: FeedCheck,
    meta: HashMap<OrderId, Meta>,
    by_lobster: HashMap<u64, OrderId>,
    /// LOBSTER ids whose engine order a re-sync took quantity from.
    resynced_away: HashSet<u64>,
    /// Per side (`Side as usize`): the prices visible in the previous row, each with the
    /// index of the first row of its current unbroken visibility (0 for the seed).
    visible: [HashMap<Price, usize>; 2],
    /// Sweep ledger: quantity the engine executed per order minus what the file executed,
    /// within the current sweep (must be empty at the end of every sweep).
    credit: HashMap<OrderId, i64>,
    next_synthetic: AccountId,
    next_client_id: u64,
    counts: Counts,
    failures: Vec<String>,
    /// Every command applied, in order (the real engine's test sends them again).
    commands: Vec<Command>,
}

impl<'a> Replay<'a> {
    pub(crate) fn new(
        name: &'a str,
        levels: usize,
        msgs: &'a [Msg],
        rows: &'a [Row],
    ) -> Replay<'a> {
        assert_eq!(
            msgs.len(),
            rows.len(),
            "{name}: the message and orderbook files must have one row per message"
        );
        assert!(!msgs.is_empty(), "{name}: no messages");
        let instrument = Instrument {
            id: SYMBOL,
            symbol: name.to_string(),
            price_scale: 4,
            tick_size: TICK,
            lot_size: 1,
            min_qty: 1,
            max_qty: 1_000_000_000,
            price_band_bps: 0,
            reference_price: 0,
            market_protection_ticks: 1_000_000,
        };
        Replay {
            name,
            levels,
            msgs,
            rows,
            engine: Engine::new(0, &[instrument]),
            seq: 0,
            ts: 0,
            out: Vec::with_capacity(16),
            feed: FeedCheck::new(SYMBOL),
            meta: HashMap::new(),
            by_lobster: HashMap::new(),
            resynced_away: HashSet::new(),
            visible: [HashMap::new(), HashMap::new()],
            credit: HashMap::new(),
            next_synthetic: SYNTHETIC_ACCOUNTS,
            next_client_id: 1,
            counts: Counts::default(),
            failures: Vec::new(),
            commands: Vec::new(),
        }
    }

    fn fail(&mut self, what: String) {
        self.counts.unexplained += 1;
        if self.failures.len() < FAILURES_KEPT {
            self.failures.push(format!("{}: {what}", self.name));
        }
    }

    fn apply(&mut self, cmd: Command) {
        self.commands.push(cmd);
        self.seq += 1;
        self.out.clear();
        self.engine.apply(self.seq, self.ts, &cmd, &mut self.out);
        self.feed
            .on_command(self.name, self.seq, self.ts, &self.out);
    }

    fn client_id(&mut self) -> u64 {
        self.next_client_id += 1;
        self.next_client_id
    }

    fn leaves(&self, id: OrderId) -> Qty {
        self.engine.order_leaves(id).unwrap_or(0)
    }

    /// Synthetic, or placed by the file and its level left the view since.
    fn uncertain(&self, id: OrderId) -> bool {
        let m = &self.meta[&id];
        match m.lobster {
            None => true,
            Some(_) => self.visible[m.side as usize]
                .get(&m.price)
                .is_none_or(|&since| since > m.placed),
        }
    }

    fn describe(&self, id: OrderId) -> String {
        let m = &self.meta[&id];
        let who = match m.lobster {
            Some(l) => format!(
                "LOBSTER order {l} (placed at line {})",
                self.msgs[m.placed].line
            ),
            None => "a synthetic order".to_string(),
        };
        format!(
            "engine order {id} = {who}, {} left @ {}{}",
            self.leaves(id),
            m.price,
            if self.uncertain(id) {
                ", uncertain"
            } else {
                ""
            }
        )
    }

    /// A GTC order that must rest without trading; returns its engine id.
    fn rest(&mut self, ctx: &str, meta: Meta, client_order_id: u64, qty: Qty) -> OrderId {
        self.apply(Command::New(NewOrder {
            account: meta.account,
            symbol: SYMBOL,
            client_order_id,
            side: meta.side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: SelfTradePrevention::CancelIncoming,
            price: meta.price,
            qty,
        }));
        let id = match self.out.first() {
            Some(&Event::Accepted { order_id, .. }) => order_id,
            other => panic!(
                "{}: {ctx}: new {:?} {qty} @ {} was not accepted: {other:?}",
                self.name, meta.side, meta.price
            ),
        };
        if self.out.len() != 1 || self.leaves(id) != qty {
            let events = format!("{:?}", &self.out[1..]);
            self.fail(format!(
                "{ctx}: new {:?} {qty} @ {} should rest untouched, but: {events}",
                meta.side, meta.price
            ));
        }
        self.meta.insert(id, meta);
        id
    }

    fn add_synthetic(
        &mut self,
        ctx: &str,
        side: Side,
        price: Price,
        qty: Qty,
        placed: usize,
    ) -> OrderId {
        let account = self.next_synthetic;
        self.next_synthetic += 1;
        let meta = Meta {
            lobster: None,
            account,
            placed,
            side,
            price,
        };
        let coid = self.client_id();
        self.rest(ctx, meta, coid, qty)
    }

    /// Take `qty` off a resting order: a replace down (keeps priority) or a cancel.
    fn reduce(&mut self, ctx: &str, id: OrderId, qty: Qty) {
        let leaves = self.leaves(id);
        assert!(
            qty > 0 && qty <= leaves,
            "{}: {ctx}: cannot take {qty} off {}",
            self.name,
            self.describe(id)
        );
        let m = self.meta[&id];
        let client_order_id = self.client_id();
        if qty == leaves {
            self.apply(Command::Cancel(CancelOrder {
                account: m.account,
                symbol: SYMBOL,
                client_order_id,
                order_id: id,
            }));
            assert!(
                matches!(self.out[..], [Event::Cancelled { qty: q, .. }] if q == leaves),
                "{}: {ctx}: cancel of engine order {id}: {:?}",
                self.name,
                self.out
            );
        } else {
            self.apply(Command::Replace(ReplaceOrder {
                account: m.account,
                symbol: SYMBOL,
                client_order_id,
                order_id: id,
                price: m.price,
                qty: leaves - qty,
            }));
            assert!(
                matches!(
                    self.out[..],
                    [Event::Replaced {
                        kept_priority: true,
                        ..
                    }]
                ),
                "{}: {ctx}: replace of engine order {id} down to {}: {:?}",
                self.name,
                leaves - qty,
                self.out
            );
        }
    }

    /// An IOC from the street account against `side` at `price`; returns the fills
    /// (maker, quantity).
    fn execute(&mut self, ctx: &str, side: Side, price: Price, qty: Qty) -> Vec<(OrderId, Qty)> {
        let client_order_id = self.client_id();
        self.apply(Command::New(NewOrder {
            account: STREET,
            symbol: SYMBOL,
            client_order_id,
            side: side.opposite(),
            kind: OrderKind::Limit,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: SelfTradePrevention::CancelIncoming,
            price,
            qty,
        }));
        let mut fills = Vec::new();
        let mut bad = Vec::new();
        for e in &self.out {
            match *e {
                Event::Accepted { .. } => {}
                Event::Trade {
                    price: p,
                    qty: q,
                    maker,
                    ..
                } => {
                    if p != price {
                        bad.push(format!(
                            "traded {q} @ {p} with engine order {}",
                            maker.order_id
                        ));
                    }
                    fills.push((maker.order_id, q));
                }
                ref other => bad.push(format!("{other:?}")),
            }
        }
        let filled: Qty = fills.iter().map(|f| f.1).sum();
        if filled != qty || !bad.is_empty() {
            self.fail(format!(
                "{ctx}: IOC {:?} {qty} @ {price} filled {filled}; {}",
                side.opposite(),
                bad.join("; ")
            ));
        }
        fills
    }

    fn seed(&mut self) {
        let m0 = &self.msgs[0];
        let row0 = &self.rows[0];
        for side in [Side::Sell, Side::Buy] {
            let mut levels: Vec<(Price, Qty)> = row0.side(side).to_vec();
            if m0.side == side && (1..=4).contains(&m0.kind) {
                let at = levels.iter().position(|l| l.0 == m0.price);
                match (m0.kind, at) {
                    (1, Some(i)) => {
                        assert!(levels[i].1 >= m0.size, "{}: cannot undo {m0}", self.name);
                        levels[i].1 -= m0.size;
                    }
                    (1, None) => panic!("{}: cannot undo {m0}: no such level", self.name),
                    (_, Some(i)) => levels[i].1 += m0.size,
                    (_, None) => levels.push((m0.price, m0.size)),
                }
            }
            levels.retain(|l| l.1 > 0);
            // Best first.
            levels.sort_by_key(|l| if side == Side::Buy { -l.0 } else { l.0 });
            for &(price, qty) in &levels {
                self.add_synthetic("seed", side, price, qty, 0);
                self.counts.seed_orders += 1;
            }
            self.visible[side as usize] =
                levels.iter().take(self.levels).map(|l| (l.0, 0)).collect();
        }
    }

    /// Replay the file; returns the counts, the engine's final state hash, the failures and
    /// every command the engine took.
    pub(crate) fn run(mut self) -> (Counts, u64, Vec<String>, Vec<Command>) {
        self.seed();
        let msgs = self.msgs;
        for (i, m) in msgs.iter().enumerate() {
            self.ts = m.ts;
            self.counts.messages += 1;
            self.counts.by_type[m.kind as usize] += 1;
            assert!(
                !(1..=4).contains(&m.kind) || m.price % TICK == 0,
                "{}: {m}: a visible order's price is off the one-cent tick",
                self.name
            );
            let focus = match m.kind {
                1 => {
                    self.on_new(i, m);
                    None
                }
                2 | 3 => self.on_cancel(m),
                4 => self.on_execution(i, m),
                5 | 6 => {
                    if m.price % TICK != 0 {
                        self.counts.off_tick_skipped += 1;
                    }
                    None
                }
                _ => None,
            };
            if m.kind == 4 && !self.same_sweep(m, msgs.get(i + 1)) && !self.credit.is_empty() {
                let mut ledger: Vec<String> = self
                    .credit
                    .iter()
                    .map(|(&id, &c)| format!("{} executed {c:+} vs the file", self.describe(id)))
                    .collect();
                ledger.sort();
                self.credit.clear();
                self.fail(format!(
                    "{m}: at the end of this sweep the engine's fills differ from the file's: {}",
                    ledger.join("; ")
                ));
            }
            self.compare_and_resync(i, m, focus);
            if (i + 1) % VALIDATE_EVERY == 0 {
                self.validate(m);
                self.feed.check(self.name, &self.engine, i, msgs.len());
            }
        }
        let last = &msgs[msgs.len() - 1];
        self.validate(last);
        self.feed
            .check(self.name, &self.engine, msgs.len(), msgs.len());
        assert!(
            self.feed.reconnected && self.feed.published > 0,
            "{}: the feed published {} messages and was checked {} times",
            self.name,
            self.feed.published,
            self.feed.checks
        );
        let hash = self.engine.state_hash();
        self.counts.engine_commands = self.seq;
        self.counts.resting_at_end = self.engine.resting_orders();
        (self.counts, hash, self.failures, self.commands)
    }

    fn validate(&mut self, m: &Msg) {
        if let Err(e) = self.engine.validate() {
            panic!("{}: after {m}: engine invariant broken: {e}", self.name);
        }
        self.counts.validations += 1;
    }
}

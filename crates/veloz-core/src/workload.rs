//! Seeded command streams: exchange-core's order-book workload, on one symbol or many.
//!
//! Used by `benches/matching.rs` and `veloz workload` / `veloz demo`; the online load
//! generator (the `veloz-load` crate) draws from the same pieces ([`PriceModel`], [`Mix::draw`],
//! [`Kind::held_at`], [`SymbolPicker`], [`draw_lots`]). The generator follows exchange-core's
//! `TestOrdersGenerator`:
//!
//! - each symbol has a central price (the instrument's configured reference price, else
//!   [`WorkloadConfig::center_ticks`], else drawn as exchange-core does,
//!   `10^(3.3 + 1.5u + 1.5u)` ticks), a deviation `min(5 %, 10_000 ticks)` and a range of
//!   five deviations either side;
//! - GTC orders are placed around the last trade price on their passive side, at a distance
//!   that is the mean of four uniform draws over a deviation that is itself skewed towards
//!   zero, so the book is dense near the touch and thin far from it; they go to the side
//!   with fewer resting orders;
//! - IOC orders carry the limit at the edge of the range, so they take what is there;
//! - a move (a [`ReplaceOrder`](crate::ReplaceOrder) with the order's open quantity) shifts a
//!   resting order 1 % of its distance towards the last trade price (at least one tick), or
//!   one tick either way when it is at that price, so orders near the touch cross now and
//!   then and trade;
//! - sizes are `1 + a*b*c` lots, `a`, `b`, `c` uniform in `0..6`.
//!
//! The mix is drawn per command with fixed weights (default 9 % GTC, 3 % IOC, 6 % cancel,
//! 82 % move), with one feedback rule that holds each book at its target size: while a book
//! holds fewer resting orders than its target, a cancel draw becomes a GTC; while it holds
//! more, a GTC draw becomes a cancel. About 6 % of commands trade (checked by a test).
//!
//! A stream starts with a prefill (GTC orders only, until every book holds its target on both
//! sides), then the measured commands. Order ids are assigned by the engine, so the generator
//! runs every command through a [`crate::Engine`] as it goes and tracks the resting
//! orders from its events.
//!
//! Invariants:
//! - the same [`WorkloadConfig`] and instruments give the same commands, bit for bit (one
//!   PCG64 stream seeded from the config; no clock; hash maps only for point lookups, never
//!   iterated);
//! - replaying `prefill` then `commands` in order into a fresh engine (`seq` = position + 1,
//!   see [`Workload::seq_of`]) gives the events the generator saw and the state hash in
//!   [`WorkloadStats::state_hash`];
//! - every cancel and move names an order resting at that point of the stream and is sent by
//!   its owner, and every price and quantity passes the instrument's checks, so nothing is
//!   rejected ([`WorkloadStats::rejects`] is 0 for the built-in workloads).
//!
//! Instruments: [`synthetic_instruments`] gives `n` permissive ones (tick 1, lot 1, no band,
//! ids `1..=n`); instruments from the configuration work too (prices are generated in ticks
//! and kept inside the price band around the engine's reference price).
//!
//! Parts (one file each, in `workload/`): this file holds what a workload is (its config,
//! the generated stream, its stats and timestamps); `model` the pieces the online load
//! generator shares ([`PriceModel`], [`Mix`], [`Kind`], [`symbol_weights`], [`SymbolPicker`],
//! [`draw_lots`]); `generator` the offline generator ([`generate`]).

use crate::{Command, Engine, Instrument, Seq, Timestamp};

mod generator;
mod model;

pub use generator::generate;
pub use model::{draw_lots, symbol_weights, Kind, Mix, PriceModel, SymbolPicker};

/// Seed used when none is given.
pub const DEFAULT_SEED: u64 = 1;

/// Central price of the single-symbol workload, in ticks (see
/// [`WorkloadConfig::single_symbol`]).
pub const SINGLE_SYMBOL_CENTER_TICKS: i64 = 4_000;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    pub seed: u64,
    /// Measured commands (after the prefill).
    pub commands: usize,
    /// Target number of resting orders over all books (split by symbol weight, at least 2
    /// per book).
    pub resting_orders: usize,
    /// Accounts `1..=accounts`, drawn uniformly per new order.
    pub accounts: u32,
    pub mix: Mix,
    /// Central price in ticks of every book whose instrument has no configured reference
    /// price; `None` draws one per book as exchange-core does (`10^(3.3 + 1.5u + 1.5u)`).
    pub center_ticks: Option<i64>,
}

impl WorkloadConfig {
    /// exchange-core's single-symbol benchmark: 1,000 resting orders, 2,000 accounts.
    ///
    /// The central price is fixed at [`SINGLE_SYMBOL_CENTER_TICKS`] (deviation 200 ticks), so
    /// every seed sees a book of the same shape: about 150 price levels, about 5 % of
    /// commands trading. (exchange-core draws the central price; a sparse book of a high
    /// draw trades only through its IOC orders, a dense one of a low draw trades more.)
    pub fn single_symbol(seed: u64, commands: usize) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            commands,
            resting_orders: 1_000,
            accounts: 2_000,
            mix: Mix::EXCHANGE_CORE,
            center_ticks: Some(SINGLE_SYMBOL_CENTER_TICKS),
        }
    }

    /// The many-symbol variant: 1,000 resting orders and 2,000 accounts per symbol on
    /// average, symbols chosen with Pareto weights (see [`symbol_weights`]).
    pub fn many_symbols(seed: u64, commands: usize, symbols: usize) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            commands,
            resting_orders: 1_000 * symbols.max(1),
            accounts: 2_000 * symbols.max(1) as u32,
            mix: Mix::EXCHANGE_CORE,
            center_ticks: None,
        }
    }
}

/// `n` permissive instruments (tick 1, lot 1, no band), ids `1..=n`, symbols `SYM1...`.
pub fn synthetic_instruments(n: usize) -> Vec<Instrument> {
    (1..=n as u32)
        .map(|id| Instrument::simple(id, &format!("SYM{id}")))
        .collect()
}

/// What the generator saw; the `commands` part excludes the prefill.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    pub gtc: u64,
    pub ioc: u64,
    pub cancels: u64,
    pub moves: u64,
    /// Measured commands that produced at least one trade.
    pub trading_commands: u64,
    /// Trades in the measured commands.
    pub trades: u64,
    /// Rejected commands, prefill included (0 for the built-in workloads).
    pub rejects: u64,
    pub resting_after_prefill: usize,
    pub resting_at_end: usize,
    /// Price levels over all books and sides at the end.
    pub levels_at_end: usize,
    /// [`Engine::state_hash`] after prefill and commands.
    pub state_hash: u64,
}

impl WorkloadStats {
    /// Share of measured commands that traded.
    pub fn trade_ratio(&self) -> f64 {
        let n = self.gtc + self.ioc + self.cancels + self.moves;
        if n == 0 {
            0.0
        } else {
            self.trading_commands as f64 / n as f64
        }
    }
}

/// A generated stream and the instruments it runs on.
#[derive(Clone, Debug)]
pub struct Workload {
    pub config: WorkloadConfig,
    pub instruments: Vec<Instrument>,
    /// GTC orders that build the books up to their target size (not measured).
    pub prefill: Vec<Command>,
    /// The measured commands; they follow `prefill`.
    pub commands: Vec<Command>,
    pub stats: WorkloadStats,
}

impl Workload {
    /// A fresh engine (shard 0) with the workload's instruments.
    pub fn engine(&self) -> Engine {
        Engine::new(0, &self.instruments)
    }

    /// Sequence number of the command at `position` in prefill-then-commands order; its
    /// timestamp is [`timestamp_of`] that.
    pub fn seq_of(position: usize) -> Seq {
        position as Seq + 1
    }

    /// Sequence number of `commands[0]`.
    pub fn first_command_seq(&self) -> Seq {
        Workload::seq_of(self.prefill.len())
    }

    /// A fresh engine with the prefill applied: ready for `commands`.
    pub fn prefilled_engine(&self) -> Engine {
        let mut engine = self.engine();
        let mut out = Vec::with_capacity(64);
        for (i, cmd) in self.prefill.iter().enumerate() {
            let seq = Workload::seq_of(i);
            out.clear();
            engine.apply(seq, timestamp_of(seq), cmd, &mut out);
        }
        engine
    }
}

/// The timestamp a workload gives the command with sequence number `seq`: nanoseconds since
/// the epoch, one microsecond apart from 2026-01-01.
pub fn timestamp_of(seq: Seq) -> Timestamp {
    const START: Timestamp = 1_767_225_600_000_000_000;
    START + seq * 1_000
}

//! The matching engine of one shard: the books of its instruments, price-time priority.
//!
//! [`Engine::apply`] takes one [`Command`] with the sequence number and timestamp the shard
//! gave it, validates it, matches it and appends the resulting [`Event`]s to a caller-owned
//! vector (cleared by the caller; reusing it keeps the path allocation-free). It then assigns
//! each execution report of those events its number in its account's stream (`streams`;
//! [`Engine::stream_assigned`]), a pure function of the commands applied.
//!
//! Semantics (the naive twin in [`crate::reference`] implements the same, and property
//! tests compare both event by event):
//! - Validation order for a new order: instrument known; instrument not halted
//!   (`InstrumentHalted`); account not disabled (`AccountDisabled`); order type consistent (market
//!   orders must be IOC or FOK and not post-only; post-only must be GTC); quantity (min, max,
//!   lot); limit price (positive, tick, band around the reference price = last trade price,
//!   or the configured reference before the first trade); duplicate client order id among
//!   the account's resting orders in that instrument; post-only crossing.
//! - A new order is `Accepted` (and gets an order id), then trades against the opposite side
//!   in price-time priority at the resting orders' prices; the rest rests (GTC), or is
//!   cancelled (IOC, market: `ImmediateOrCancel`, `ProtectionBand` or `NoLiquidity`). A FOK
//!   order trades only if its whole quantity can trade at once, else it is cancelled with
//!   `FillOrKill` and nothing trades. A market FOK order with a positive price is a budget
//!   order (exchange-core's FOK_BUDGET): its fills' `price * qty`, summed, must also be at
//!   most the price for a buy (at least it for a sell), else `FillOrKill`.
//! - Self-trade prevention follows the incoming order's mode; resting orders cancelled by it
//!   are reported with `SelfTrade`.
//! - Validation order for a replace: instrument known; not halted; account not disabled;
//!   the order rests in that instrument (`UnknownOrder`) and is the account's
//!   (`NotOrderOwner`); quantity; price (if changed); `NoChange`; post-only crossing. Cancels
//!   and mass cancels are never refused for a halt or a disabled account (a disabled account
//!   can only reduce).
//! - Replace: same price and lower quantity keeps priority; otherwise the order moves to the
//!   back of its new level, and if the new price crosses it trades first as an incoming
//!   order. A post-only order whose new price would cross is rejected, unchanged.
//! - Operator commands (`admin`, [`Command::Admin`]): halt/resume an instrument, disable
//!   (cancelling every resting order of the account, `AccountDisabled`, in mass-cancel
//!   order) and enable an account; each ends with one [`Event::Admin`], in no account's
//!   stream.
//! - Money (`risk`, only for an engine built [`Engine::with_risk`]): after the checks above,
//!   a new order meets its account's limits and funds, holds what it may cost, and every
//!   fill, cancel and replace settles or moves the hold (see `engine/risk.rs` and
//!   [`crate::risk`]); deposits and withdrawals are admin commands.
//! - Order ids and trade ids are `(shard << 48) | n` with `n` counting from 1 per shard.
//!
//! Complexity: instrument lookup indexes a table (ids below 2^16; a hash probe above); order
//! lookup is a probe of [`OrderIndex`] (point lookup only; never iterated); level lookup is
//! one index into the ladder's price window (a binary search for levels far from the touch);
//! matching is O(levels + orders touched). Mass cancel walks the account's instrument books
//! in deterministic order.
//!
//! Hot path (measured with callgrind, `benches/matching.rs`): a replace that does not cross
//! skips the matching loop; instruments with tick 1 and no band, or lot 1, skip the modulo
//! checks (same answers as [`Instrument::check_price`] / [`Instrument::check_qty`]).
//!
//! Parts (one file each, in `engine/`): this file holds the engine's state ([`Engine`],
//! its books) and the dispatch of [`Engine::apply`]; `matching` the new-order path (validation,
//! matching, resting and unlinking orders); `amend` cancel, replace and mass cancel;
//! `inspect` the read-only views (depth, queues, [`Engine::state_hash`]); `validate` the
//! invariant check ([`Engine::validate`], [`InvariantError`]); `snapshot` the engine's whole
//! state to bytes and back ([`Engine::write_snapshot`], [`Engine::read_snapshot`]);
//! `streams` the per-account execution-report streams ([`Engine::stream_last`],
//! [`Engine::stream_retained_after`]); `admin` the operator's halts and kill switch
//! ([`Engine::is_halted`], [`Engine::is_disabled`]); `risk` balances, holds, settlement and
//! limits ([`Engine::with_risk`], [`Engine::balances`]); `warm` reading ahead what a batch
//! of commands will touch ([`Engine::warm`], for recovery).

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use super::book::{ClientIds, Ladder, LevelPool, OrderIndex, OrderPool, NIL};
use super::instrument::Instrument;
use super::types::*;

mod admin;
mod amend;
mod inspect;
mod matching;
mod query;
mod risk;
mod snapshot;
mod streams;
mod validate;
mod warm;

pub use inspect::LevelView;
pub use query::{OpenOrdersPage, OrderView};
pub use snapshot::{
    SnapshotError, SNAPSHOT_ADMIN_ENTRY_LEN, SNAPSHOT_ADMIN_HEADER_LEN, SNAPSHOT_BODY_HEADER_LEN,
    SNAPSHOT_FLAG_ADMIN, SNAPSHOT_FLAG_MONEY, SNAPSHOT_FLAG_STREAMS, SNAPSHOT_INSTRUMENT_LEN,
    SNAPSHOT_ORDER_LEN, SNAPSHOT_STREAMS_HEADER_LEN, SNAPSHOT_STREAM_LEN,
};
pub use streams::{Assigned, StreamReport};
pub use validate::InvariantError;

struct Book {
    instrument: Instrument,
    bids: Ladder,
    asks: Ladder,
    last_trade_price: Price,
    /// Tick 1 and no band: a price is valid iff positive.
    plain_price: bool,
    /// Lot 1: a quantity is valid iff inside `[min_qty, max_qty]` (and not 0).
    plain_qty: bool,
    /// Halted by the operator (`admin`): new orders and replaces are refused.
    halted: bool,
}

impl Book {
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// [`Instrument::check_price`] against the current reference, without its divisions
    /// when the instrument is plain.
    #[inline]
    fn check_price(&self, price: Price) -> Result<(), RejectReason> {
        if self.plain_price {
            if price <= 0 {
                return Err(RejectReason::InvalidPrice);
            }
            return Ok(());
        }
        self.instrument.check_price(price, self.reference())
    }

    /// [`Instrument::check_qty`], without its division when the lot is 1.
    #[inline]
    fn check_qty(&self, qty: Qty) -> Result<(), RejectReason> {
        if self.plain_qty {
            if qty < self.instrument.min_qty || qty == 0 {
                return Err(RejectReason::QtyBelowMin);
            }
            if qty > self.instrument.max_qty {
                return Err(RejectReason::QtyAboveMax);
            }
            return Ok(());
        }
        self.instrument.check_qty(qty)
    }

    /// Reference price for the band: last trade, else the configured one (0 = none).
    fn reference(&self) -> Price {
        if self.last_trade_price > 0 {
            self.last_trade_price
        } else {
            self.instrument.reference_price
        }
    }
}

/// `true` if a `side` order at `limit` may trade with a resting order at `price`.
#[inline]
fn crosses(side: Side, limit: Price, price: Price) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// The taker during matching.
struct Taker {
    order_id: OrderId,
    account: AccountId,
    client_order_id: ClientOrderId,
    side: Side,
    limit: Price,
    remaining: Qty,
    stp: SelfTradePrevention,
}

/// How matching stopped.
#[derive(PartialEq, Eq)]
enum Stop {
    /// Filled, or nothing more within the limit.
    Done,
    /// Self-trade prevention cancelled the rest of the taker.
    SelfTrade,
}

/// Instrument ids below this are found by indexing a table, larger ones by a hash lookup.
const DIRECT_SYMBOLS: SymbolId = 1 << 16;

/// The matching engine of one shard.
pub struct Engine {
    shard: u16,
    books: Vec<Book>,
    /// Instrument id -> index in `books` (point lookup), for ids from [`DIRECT_SYMBOLS`] up.
    book_index: FxHashMap<SymbolId, u32>,
    /// Instrument id -> index in `books` ([`NIL`] = none), for ids below [`DIRECT_SYMBOLS`].
    book_direct: Vec<u32>,
    orders: OrderPool,
    levels: LevelPool,
    /// Order id -> slot (point lookup).
    order_index: OrderIndex,
    /// (book, account, client order id) of resting orders -> slot (point lookup).
    client_ids: ClientIds,
    order_seq: u64,
    trade_seq: u64,
    /// Per-account execution-report streams (`streams`): counters, last apply's reports,
    /// retained windows.
    streams: streams::ReportStreams,
    /// Accounts switched off by the operator (`admin`): probed on new orders and replaces
    /// (only when not empty), iterated (ascending) only by the hash and the snapshot.
    disabled: BTreeSet<AccountId>,
    /// Balances, holds and limits (`risk`), when built [`Engine::with_risk`].
    ledger: Option<Box<risk::Ledger>>,
}

/// A summary: the books and order slabs are too large to print whole.
impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shard", &self.shard)
            .field("instruments", &self.books.len())
            .field("resting_client_ids", &self.client_ids.len())
            .field("order_seq", &self.order_seq)
            .field("trade_seq", &self.trade_seq)
            .field("stream_accounts", &self.streams.counters.len())
            .field("disabled_accounts", &self.disabled.len())
            .field("funded", &self.ledger.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty engine for `instruments` (their ids must be distinct).
    pub fn new(shard: u16, instruments: &[Instrument]) -> Engine {
        // Order ids carry the shard in bits 48..63; bit 63 marks a client order id in a
        // cancel or replace (`BY_CLIENT_ID`), so no engine order id may have it.
        assert!(
            shard < 1 << 15,
            "shard {shard}: at most 32768 shards (order ids keep bit 63 clear)"
        );
        let mut sorted = instruments.to_vec();
        sorted.sort_by_key(|i| i.id);
        let mut book_index = FxHashMap::default();
        let books: Vec<Book> = sorted
            .into_iter()
            .enumerate()
            .map(|(i, instrument)| {
                book_index.insert(instrument.id, i as u32);
                Book {
                    bids: Ladder::new(Side::Buy, instrument.tick_size),
                    asks: Ladder::new(Side::Sell, instrument.tick_size),
                    plain_price: instrument.tick_size == 1 && instrument.price_band_bps == 0,
                    plain_qty: instrument.lot_size == 1,
                    instrument,
                    last_trade_price: 0,
                    halted: false,
                }
            })
            .collect();
        let mut book_direct = Vec::new();
        for (b, book) in books.iter().enumerate() {
            let (id, b) = (book.instrument.id, b as u32);
            if id < DIRECT_SYMBOLS {
                if book_direct.len() <= id as usize {
                    book_direct.resize(id as usize + 1, NIL);
                }
                book_direct[id as usize] = b;
            }
        }
        Engine {
            shard,
            books,
            book_index,
            book_direct,
            orders: OrderPool::with_capacity(1 << 16),
            levels: LevelPool::default(),
            order_index: OrderIndex::with_capacity(1 << 10),
            client_ids: ClientIds::with_capacity(1 << 16),
            order_seq: 0,
            trade_seq: 0,
            streams: streams::ReportStreams::default(),
            disabled: BTreeSet::new(),
            ledger: None,
        }
    }

    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The instruments of this engine, ascending by id.
    pub fn instruments(&self) -> impl Iterator<Item = &Instrument> {
        self.books.iter().map(|b| &b.instrument)
    }

    pub fn has_symbol(&self, symbol: SymbolId) -> bool {
        self.book_of(symbol).is_some()
    }

    /// Number of resting orders over all books.
    pub fn resting_orders(&self) -> usize {
        self.order_index.len()
    }

    /// Apply one command; append its events to `out` (after what it already holds), then
    /// assign their execution reports to the accounts' streams: [`Engine::stream_assigned`]
    /// lists them, with event indexes counted from the first event this call appended.
    pub fn apply(&mut self, seq: Seq, ts: Timestamp, cmd: &Command, out: &mut Vec<Event>) {
        let start = out.len();
        match cmd {
            Command::New(o) => self.new_order(seq, ts, o, out),
            Command::Cancel(c) => self.cancel(c, out),
            Command::Replace(r) => self.replace(seq, r, out),
            Command::MassCancel(m) => self.mass_cancel(m, out),
            Command::Admin(a) => self.admin(a, out),
        }
        self.streams.record(seq, ts, &out[start..]);
    }

    /// Index in `books` of instrument `symbol`.
    #[inline]
    fn book_of(&self, symbol: SymbolId) -> Option<u32> {
        if symbol < DIRECT_SYMBOLS {
            match self.book_direct.get(symbol as usize) {
                Some(&b) if b != NIL => Some(b),
                _ => None,
            }
        } else {
            self.book_index.get(&symbol).copied()
        }
    }

    fn next_order_id(&mut self) -> OrderId {
        self.order_seq += 1;
        ((self.shard as u64) << 48) | self.order_seq
    }

    fn next_trade_id(&mut self) -> TradeId {
        self.trade_seq += 1;
        ((self.shard as u64) << 48) | self.trade_seq
    }
}

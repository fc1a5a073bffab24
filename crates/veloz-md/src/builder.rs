//! [`FeedBuilder`]: one shard's events, command by command, into market-data messages.
//!
//! How each core event shows (see [`crate::message`] for the channels):
//! - `Accepted`: nothing yet. The incoming order trades first; if it still has quantity open
//!   at the end of the command and was not cancelled (IOC, FOK, market remainder,
//!   self-trade prevention), it is added then, at the back of its level.
//! - `Trade`: a public trade, and an `Execute` of the maker (the taker never rests while it
//!   trades, so only the maker is in the book).
//! - `Cancelled` of a resting order: `Delete`. Of the incoming order of the same command:
//!   nothing (it never rested).
//! - `Replaced` that kept priority: `Modify` (the quantity went down in place). One that
//!   lost it: `Delete` at the old place, then it is an incoming order like a new one.
//! - `MassCancelled`, `Rejected`, `Admin`: nothing (their cancels come as `Cancelled`).
//!
//! After the command's L3 messages: one `Level` per level the command touched, in the order
//! they were first touched, and a `Top` per instrument whose best bid or ask changed.
//!
//! The builder's mirror of each book is an [`L3Book`]; a mismatch between the events and
//! the mirror (a maker the mirror does not hold, more executed than open) is a
//! [`FeedError`] naming the command, the order and the values: the feed must then be
//! rebuilt, the engine is not affected.

use rustc_hash::FxHashSet;
use veloz_core::{Engine, Event, OrderId, Price, Qty, Seq, Side, SymbolId, Timestamp};

use crate::book::{BookError, L2Snapshot, L3Book, L3Snapshot};
use crate::message::{Channel, MdBody, MdMessage, Quote};

/// The events of command `cmd_seq` do not fit the feed's books.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("command {cmd_seq}: {source}")]
    Book {
        cmd_seq: Seq,
        #[source]
        source: BookError,
    },
    #[error("command {cmd_seq}: order {order_id} traded in symbol {symbol}, which this feed does not carry")]
    UnknownSymbol {
        cmd_seq: Seq,
        symbol: SymbolId,
        order_id: OrderId,
    },
    #[error(
        "command {cmd_seq}: maker {order_id} has {mirror} open in the feed's book after trade {trade_id}, the engine says {engine}"
    )]
    Leaves {
        cmd_seq: Seq,
        order_id: OrderId,
        trade_id: u64,
        mirror: Qty,
        engine: Qty,
    },
}

/// An instrument's feed state.
#[derive(Clone, Debug)]
struct Instrument {
    book: L3Book,
    /// Last sequence number per channel (`Channel as usize`).
    seq: [u64; 4],
    top: (Option<Quote>, Option<Quote>),
}

/// An order that entered the book's matching in this command (new, or replaced with a loss
/// of priority): it rests at the end unless cancelled or filled.
#[derive(Clone, Copy, Debug)]
struct Incoming {
    order_id: OrderId,
    symbol: SymbolId,
    side: Side,
    price: Price,
    leaves: Qty,
    cancelled: bool,
}

/// One shard's market data, built from its events.
#[derive(Clone, Debug)]
pub struct FeedBuilder {
    /// Instruments in ascending symbol id (binary search; iteration is deterministic).
    instruments: Vec<(SymbolId, Instrument)>,
    incoming: Vec<Incoming>,
    /// Levels changed by the command, in first-touch order, and the same as a set (point
    /// lookups only: a mass cancel touches many).
    touched: Vec<(SymbolId, Side, Price)>,
    touched_set: FxHashSet<(SymbolId, Side, Price)>,
    touched_symbols: Vec<SymbolId>,
}

impl FeedBuilder {
    /// A feed for `symbols` (the instruments of one shard), every book empty.
    pub fn new(symbols: impl IntoIterator<Item = SymbolId>) -> FeedBuilder {
        let mut instruments: Vec<_> = symbols
            .into_iter()
            .map(|s| {
                (
                    s,
                    Instrument {
                        book: L3Book::new(s),
                        seq: [0; 4],
                        top: (None, None),
                    },
                )
            })
            .collect();
        instruments.sort_unstable_by_key(|(s, _)| *s);
        instruments.dedup_by_key(|(s, _)| *s);
        FeedBuilder {
            instruments,
            incoming: Vec::new(),
            touched: Vec::new(),
            touched_set: FxHashSet::default(),
            touched_symbols: Vec::new(),
        }
    }

    /// A feed for `symbols` whose books are `engine`'s books now (each order at its place
    /// in its queue), every channel's sequence at 0: the start of a feed session after
    /// recovery. `engine` must carry every symbol.
    pub fn from_engine(
        engine: &Engine,
        symbols: impl IntoIterator<Item = SymbolId>,
    ) -> Result<FeedBuilder, BookError> {
        let mut feed = FeedBuilder::new(symbols);
        for (symbol, inst) in &mut feed.instruments {
            for side in [Side::Buy, Side::Sell] {
                for level in engine.depth(*symbol, side, usize::MAX) {
                    for id in engine.queue(*symbol, side, level.price) {
                        let leaves = engine.order_leaves(id).unwrap_or(0);
                        inst.book.add(id, side, level.price, leaves)?;
                    }
                }
            }
            inst.top = (inst.book.best(Side::Buy), inst.book.best(Side::Sell));
        }
        Ok(feed)
    }

    /// The instruments this feed carries, ascending.
    pub fn symbols(&self) -> impl Iterator<Item = SymbolId> + '_ {
        self.instruments.iter().map(|(s, _)| *s)
    }

    fn get(&self, symbol: SymbolId) -> Option<&Instrument> {
        self.instruments
            .binary_search_by_key(&symbol, |(s, _)| *s)
            .ok()
            .map(|i| &self.instruments[i].1)
    }

    fn get_mut(&mut self, symbol: SymbolId) -> Option<&mut Instrument> {
        self.instruments
            .binary_search_by_key(&symbol, |(s, _)| *s)
            .ok()
            .map(|i| &mut self.instruments[i].1)
    }

    /// The feed's book of `symbol`.
    pub fn book(&self, symbol: SymbolId) -> Option<&L3Book> {
        self.get(symbol).map(|i| &i.book)
    }

    /// The last sequence number of `symbol`'s `channel` (0: nothing sent yet).
    pub fn last_seq(&self, symbol: SymbolId, channel: Channel) -> Option<u64> {
        self.get(symbol).map(|i| i.seq[channel as usize])
    }

    /// `symbol`'s whole L3 book, as of its last L3 message.
    pub fn l3_snapshot(&self, symbol: SymbolId) -> Option<L3Snapshot> {
        self.get(symbol)
            .map(|i| i.book.snapshot(i.seq[Channel::L3 as usize]))
    }

    /// `symbol`'s whole L2 book, as of its last L2 message.
    pub fn l2_snapshot(&self, symbol: SymbolId) -> Option<L2Snapshot> {
        self.get(symbol)
            .map(|i| i.book.l2_snapshot(i.seq[Channel::L2 as usize]))
    }

    /// `symbol`'s best bid and ask, as of its last top-of-book message.
    pub fn top(&self, symbol: SymbolId) -> Option<(Option<Quote>, Option<Quote>)> {
        self.get(symbol).map(|i| i.top)
    }

    /// The feed state of `symbol`, which order `order_id` of command `cmd_seq` names.
    fn carried(
        &mut self,
        cmd_seq: Seq,
        symbol: SymbolId,
        order_id: OrderId,
    ) -> Result<&mut Instrument, FeedError> {
        self.get_mut(symbol).ok_or(FeedError::UnknownSymbol {
            cmd_seq,
            symbol,
            order_id,
        })
    }

    /// The messages of command `cmd_seq` (time `ts`) whose core events are `events`,
    /// appended to `out`. On an error, `out` holds the messages up to the mismatch and the
    /// feed's books are no longer trustworthy: rebuild the feed.
    pub fn on_command(
        &mut self,
        cmd_seq: Seq,
        ts: Timestamp,
        events: &[Event],
        out: &mut Vec<MdMessage>,
    ) -> Result<(), FeedError> {
        self.incoming.clear();
        self.touched.clear();
        self.touched_set.clear();
        self.touched_symbols.clear();
        let book_err = |source| FeedError::Book { cmd_seq, source };
        for event in events {
            match *event {
                Event::Accepted {
                    order_id,
                    symbol,
                    side,
                    price,
                    qty,
                    ..
                } => self.incoming.push(Incoming {
                    order_id,
                    symbol,
                    side,
                    price,
                    leaves: qty,
                    cancelled: false,
                }),
                Event::Trade {
                    trade_id,
                    symbol,
                    price,
                    qty,
                    aggressor,
                    maker,
                    taker,
                } => {
                    let inst = self.carried(cmd_seq, symbol, maker.order_id)?;
                    emit(
                        inst,
                        symbol,
                        cmd_seq,
                        ts,
                        out,
                        MdBody::Trade {
                            trade_id,
                            price,
                            qty,
                            aggressor,
                        },
                    );
                    let (side, at, leaves) =
                        inst.book.execute(maker.order_id, qty).map_err(book_err)?;
                    if leaves != maker.leaves_qty {
                        return Err(FeedError::Leaves {
                            cmd_seq,
                            order_id: maker.order_id,
                            trade_id,
                            mirror: leaves,
                            engine: maker.leaves_qty,
                        });
                    }
                    emit(
                        inst,
                        symbol,
                        cmd_seq,
                        ts,
                        out,
                        MdBody::Execute {
                            order_id: maker.order_id,
                            side,
                            price: at,
                            qty,
                            leaves,
                            trade_id,
                        },
                    );
                    self.touch(symbol, side, at);
                    if let Some(i) = self
                        .incoming
                        .iter_mut()
                        .rev()
                        .find(|i| i.order_id == taker.order_id)
                    {
                        i.leaves = taker.leaves_qty;
                    }
                }
                Event::Cancelled {
                    order_id, symbol, ..
                } => {
                    if let Some(i) = self
                        .incoming
                        .iter_mut()
                        .rev()
                        .find(|i| i.order_id == order_id)
                    {
                        i.cancelled = true;
                        continue;
                    }
                    self.delete(cmd_seq, ts, symbol, order_id, out)?;
                }
                Event::Replaced {
                    order_id,
                    symbol,
                    side,
                    price,
                    qty,
                    kept_priority,
                    ..
                } => {
                    if kept_priority {
                        let inst = self.carried(cmd_seq, symbol, order_id)?;
                        let (side, price) = inst.book.reduce(order_id, qty).map_err(book_err)?;
                        emit(
                            inst,
                            symbol,
                            cmd_seq,
                            ts,
                            out,
                            MdBody::Modify {
                                order_id,
                                side,
                                price,
                                qty,
                            },
                        );
                        self.touch(symbol, side, price);
                    } else {
                        self.delete(cmd_seq, ts, symbol, order_id, out)?;
                        self.incoming.push(Incoming {
                            order_id,
                            symbol,
                            side,
                            price,
                            leaves: qty,
                            cancelled: false,
                        });
                    }
                }
                Event::MassCancelled { .. } | Event::Rejected { .. } | Event::Admin { .. } => {}
            }
        }
        for n in 0..self.incoming.len() {
            let i = self.incoming[n];
            if i.cancelled || i.leaves == 0 {
                continue;
            }
            let inst = self.carried(cmd_seq, i.symbol, i.order_id)?;
            inst.book
                .add(i.order_id, i.side, i.price, i.leaves)
                .map_err(book_err)?;
            emit(
                inst,
                i.symbol,
                cmd_seq,
                ts,
                out,
                MdBody::Add {
                    order_id: i.order_id,
                    side: i.side,
                    price: i.price,
                    qty: i.leaves,
                },
            );
            self.touch(i.symbol, i.side, i.price);
        }
        for n in 0..self.touched.len() {
            let (symbol, side, price) = self.touched[n];
            let inst = self.get_mut(symbol).expect("touched symbols are carried");
            let (qty, orders) = inst.book.level(side, price);
            emit(
                inst,
                symbol,
                cmd_seq,
                ts,
                out,
                MdBody::Level {
                    side,
                    price,
                    qty,
                    orders,
                },
            );
        }
        for n in 0..self.touched_symbols.len() {
            let symbol = self.touched_symbols[n];
            let inst = self.get_mut(symbol).expect("touched symbols are carried");
            let top = (inst.book.best(Side::Buy), inst.book.best(Side::Sell));
            if top != inst.top {
                inst.top = top;
                emit(
                    inst,
                    symbol,
                    cmd_seq,
                    ts,
                    out,
                    MdBody::Top {
                        bid: top.0,
                        ask: top.1,
                    },
                );
            }
        }
        Ok(())
    }

    /// Take resting `order_id` out of `symbol`'s book and publish its `Delete`.
    fn delete(
        &mut self,
        cmd_seq: Seq,
        ts: Timestamp,
        symbol: SymbolId,
        order_id: OrderId,
        out: &mut Vec<MdMessage>,
    ) -> Result<(), FeedError> {
        let inst = self.carried(cmd_seq, symbol, order_id)?;
        let (side, price, _) = inst
            .book
            .remove(order_id)
            .map_err(|source| FeedError::Book { cmd_seq, source })?;
        emit(
            inst,
            symbol,
            cmd_seq,
            ts,
            out,
            MdBody::Delete {
                order_id,
                side,
                price,
            },
        );
        self.touch(symbol, side, price);
        Ok(())
    }

    /// Remember a changed level (once per command, in first-touch order).
    fn touch(&mut self, symbol: SymbolId, side: Side, price: Price) {
        if self.touched_set.insert((symbol, side, price)) {
            self.touched.push((symbol, side, price));
        }
        if !self.touched_symbols.contains(&symbol) {
            self.touched_symbols.push(symbol);
        }
    }
}

fn emit(
    inst: &mut Instrument,
    symbol: SymbolId,
    cmd_seq: Seq,
    ts: Timestamp,
    out: &mut Vec<MdMessage>,
    body: MdBody,
) {
    let seq = &mut inst.seq[body.channel() as usize];
    *seq += 1;
    out.push(MdMessage {
        symbol,
        seq: *seq,
        cmd_seq,
        ts,
        body,
    });
}

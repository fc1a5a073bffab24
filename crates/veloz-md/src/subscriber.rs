//! [`Subscriber`]: a consumer's side of one instrument's L2 or L3 channel: a snapshot at
//! sequence `S`, then the messages after `S`, in order, with gaps detected.
//!
//! The rules a feed client follows (docs/market-data.md states them for the wire):
//! - messages numbered at or below the book's sequence are already in it: skipped
//!   ([`Applied::Stale`]), so a client may subscribe first and take the snapshot second;
//! - the next number applies;
//! - any other number is a gap ([`Applied::Gap`]): the book is no longer the engine's, and
//!   the client asks for a new snapshot (and discards the book until it comes).

use veloz_core::SymbolId;

use crate::book::{BookError, L2Book, L2Snapshot, L3Book, L3Snapshot};
use crate::message::{Channel, MdBody, MdMessage};

/// What applying a message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the book is at this sequence number now.
    Applied(u64),
    /// Already in the book (its number is at or below the book's): nothing done.
    Stale,
    /// Not for this subscriber (another instrument or channel): nothing done.
    Ignored,
    /// Messages are missing: `expected` was next, `got` came. The book is stale until a
    /// new snapshot.
    Gap { expected: u64, got: u64 },
}

#[derive(Clone, Debug)]
enum Book {
    L2(L2Book),
    L3(L3Book),
}

/// One instrument's L2 or L3 book kept by a consumer.
#[derive(Clone, Debug)]
pub struct Subscriber {
    symbol: SymbolId,
    book: Book,
    /// The last message in the book.
    seq: u64,
    /// A gap was seen and no snapshot has come since.
    broken: bool,
}

impl Subscriber {
    /// Start from an L3 snapshot.
    pub fn l3(snapshot: &L3Snapshot) -> Result<Subscriber, BookError> {
        Ok(Subscriber {
            symbol: snapshot.symbol,
            book: Book::L3(L3Book::from_snapshot(snapshot)?),
            seq: snapshot.seq,
            broken: false,
        })
    }

    /// Start from an L2 snapshot.
    pub fn l2(snapshot: &L2Snapshot) -> Subscriber {
        Subscriber {
            symbol: snapshot.symbol,
            book: Book::L2(L2Book::from_snapshot(snapshot)),
            seq: snapshot.seq,
            broken: false,
        }
    }

    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    pub fn channel(&self) -> Channel {
        match self.book {
            Book::L2(_) => Channel::L2,
            Book::L3(_) => Channel::L3,
        }
    }

    /// The last message applied (or the snapshot's).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a gap was seen since the last snapshot.
    pub fn needs_snapshot(&self) -> bool {
        self.broken
    }

    pub fn l3_book(&self) -> Option<&L3Book> {
        match &self.book {
            Book::L3(b) => Some(b),
            Book::L2(_) => None,
        }
    }

    pub fn l2_book(&self) -> Option<&L2Book> {
        match &self.book {
            Book::L2(b) => Some(b),
            Book::L3(_) => None,
        }
    }

    /// The canonical hash of the book (L2 or L3, as subscribed).
    pub fn hash(&self) -> u64 {
        match &self.book {
            Book::L2(b) => b.hash(),
            Book::L3(b) => b.hash(),
        }
    }

    /// Apply one message of the feed (any instrument, any channel: others are ignored).
    /// An error means the message does not fit the book although its number did: the feed
    /// and this book disagree (take a new snapshot).
    pub fn apply(&mut self, msg: &MdMessage) -> Result<Applied, BookError> {
        if msg.symbol != self.symbol || msg.channel() != self.channel() {
            return Ok(Applied::Ignored);
        }
        if msg.seq <= self.seq {
            return Ok(Applied::Stale);
        }
        if self.broken || msg.seq != self.seq + 1 {
            self.broken = true;
            return Ok(Applied::Gap {
                expected: self.seq + 1,
                got: msg.seq,
            });
        }
        match (&mut self.book, msg.body) {
            (
                Book::L3(b),
                MdBody::Add {
                    order_id,
                    side,
                    price,
                    qty,
                },
            ) => b.add(order_id, side, price, qty)?,
            (Book::L3(b), MdBody::Modify { order_id, qty, .. }) => {
                b.reduce(order_id, qty)?;
            }
            (Book::L3(b), MdBody::Delete { order_id, .. }) => {
                b.remove(order_id)?;
            }
            (Book::L3(b), MdBody::Execute { order_id, qty, .. }) => {
                b.execute(order_id, qty)?;
            }
            (
                Book::L2(b),
                MdBody::Level {
                    side,
                    price,
                    qty,
                    orders,
                },
            ) => b.set(side, price, qty, orders),
            _ => unreachable!("the channel check admits only this book's messages"),
        }
        self.seq = msg.seq;
        Ok(Applied::Applied(msg.seq))
    }
}

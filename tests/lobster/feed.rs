//! The market-data feed over the same real flow: a [`FeedBuilder`] takes every command's
//! events as the engine produced them, and subscribers rebuild the book from snapshots and
//! messages. At every validation point the feed's L3 book, and each connected subscriber's
//! L3 or L2 book, must hash like the engine's book.
//!
//! Subscribers: one L3 and one L2 from the start to the end; one L3 that disconnects a
//! third of the way through (stops reading) and reconnects two thirds of the way through
//! with a fresh snapshot, as a client that lost its connection does.

use veloz_core::{Engine, Event, Seq, SymbolId, Timestamp};
use veloz_md::{
    engine_l2_hash, engine_l3_hash, Applied, Channel, FeedBuilder, MdMessage, Subscriber,
};

pub(crate) struct FeedCheck {
    symbol: SymbolId,
    feed: FeedBuilder,
    msgs: Vec<MdMessage>,
    /// Connected subscribers: steady L3, steady L2, and the reconnecting L3 (`None` while
    /// it is away).
    subs: [Option<Subscriber>; 3],
    /// Messages published, and checks passed.
    pub(crate) published: u64,
    pub(crate) checks: u64,
    pub(crate) reconnected: bool,
}

impl FeedCheck {
    pub(crate) fn new(symbol: SymbolId) -> FeedCheck {
        let feed = FeedBuilder::new([symbol]);
        let l3 = || Some(Subscriber::l3(&feed.l3_snapshot(symbol).unwrap()).unwrap());
        let subs = [
            l3(),
            Some(Subscriber::l2(&feed.l2_snapshot(symbol).unwrap())),
            l3(),
        ];
        FeedCheck {
            symbol,
            feed,
            msgs: Vec::new(),
            subs,
            published: 0,
            checks: 0,
            reconnected: false,
        }
    }

    /// Command `seq` produced `events`: publish its messages to the connected subscribers.
    pub(crate) fn on_command(&mut self, name: &str, seq: Seq, ts: Timestamp, events: &[Event]) {
        self.msgs.clear();
        if let Err(e) = self.feed.on_command(seq, ts, events, &mut self.msgs) {
            panic!("{name}: the feed does not follow the engine: {e}\nevents {events:?}");
        }
        self.published += self.msgs.len() as u64;
        for sub in self.subs.iter_mut().flatten() {
            for m in &self.msgs {
                match sub.apply(m) {
                    Ok(Applied::Applied(_) | Applied::Ignored) => {}
                    other => panic!("{name}: command {seq}: {m:?} gives {other:?}"),
                }
            }
        }
    }

    /// Message `i` of `total` is done: disconnect or reconnect the third subscriber when its
    /// time comes, then compare every book with the engine's.
    pub(crate) fn check(&mut self, name: &str, engine: &Engine, i: usize, total: usize) {
        if i >= total / 3 && i < 2 * total / 3 {
            self.subs[2] = None;
        } else if i >= 2 * total / 3 && self.subs[2].is_none() {
            let snap = self.feed.l3_snapshot(self.symbol).unwrap();
            self.subs[2] = Some(Subscriber::l3(&snap).unwrap());
            self.reconnected = true;
        }
        let (l3, l2) = (
            engine_l3_hash(engine, self.symbol),
            engine_l2_hash(engine, self.symbol),
        );
        let book = self.feed.book(self.symbol).unwrap();
        assert_eq!(
            book.hash(),
            l3,
            "{name}: after message {i}: the feed's L3 book"
        );
        for sub in self.subs.iter().flatten() {
            let want = if sub.channel() == Channel::L3 { l3 } else { l2 };
            assert_eq!(
                sub.hash(),
                want,
                "{name}: after message {i}: {:?} subscriber at seq {}",
                sub.channel(),
                sub.seq()
            );
        }
        self.checks += 1;
    }
}

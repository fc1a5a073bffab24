//! The shard's end of the market-data hand-over: [`FeedTap`] takes the public events of each
//! sequenced command, holds them until the journal has made the command durable, and hands
//! them to the feed thread over the shard's ring.
//!
//! Invariants:
//! - **Only what is durable is public.** A command's items reach the ring only once the
//!   durable watermark covers its sequence number (at once with `durability = "none"`), so
//!   no subscriber ever sees a trade that a crash could take back.
//! - **In order, whole.** Items leave in sequence order, each command's events followed by
//!   its [`FeedItem::End`]; what does not fit the ring waits in the backlog, in order.
//! - **Matching never waits.** The tap never blocks: a full ring leaves items in the
//!   backlog. Should the backlog pass `max_backlog_items` (the feed thread is gone or
//!   starved), the tap stops for good and says why in one [`FeedItem::Down`]: the feed of
//!   this shard's instruments is cut, the shard goes on.
//! - Only the events the feed uses travel: `Accepted`, `Trade`, `Cancelled`, `Replaced`.
//!   Every command sends its `End`, even one with none of them (a reject): the feed's
//!   watermark is then exactly the engine's sequence number, and heartbeats tell a
//!   subscriber how far the feed has come.

use std::collections::VecDeque;

use rtrb::Producer;
use veloz_core::{Engine, Event, Seq, Timestamp};
use veloz_md::FeedBuilder;

use super::FeedItem;
use crate::shared::Shared;

/// A shard's hand-over of market-data events to the feed thread.
#[derive(Debug)]
pub struct FeedTap {
    shard: usize,
    ring: Producer<FeedItem>,
    /// Items not yet in the ring: waiting for durability or for room, in order.
    backlog: VecDeque<FeedItem>,
    max_backlog: usize,
    /// The durable watermark as last seen by [`FeedTap::release`].
    durable: Seq,
    /// Why the tap stopped (it then sends nothing more).
    down: Option<String>,
}

/// Whether the feed uses `event`.
#[inline]
fn public(event: &Event) -> bool {
    matches!(
        event,
        Event::Accepted { .. }
            | Event::Trade { .. }
            | Event::Cancelled { .. }
            | Event::Replaced { .. }
    )
}

impl FeedTap {
    /// The tap of `shard` over `ring`; the feed's books start as `seed` (built from the
    /// engine recovered up to sequence `seq`), which is the first thing the feed thread
    /// receives.
    pub fn new(
        shard: usize,
        ring: Producer<FeedItem>,
        max_backlog: usize,
        seed: FeedBuilder,
        seq: Seq,
    ) -> FeedTap {
        let mut tap = FeedTap {
            shard,
            ring,
            backlog: VecDeque::new(),
            max_backlog,
            durable: 0,
            down: None,
        };
        tap.enqueue(FeedItem::Seed {
            feed: Box::new(seed),
            seq,
        });
        tap
    }

    /// The tap of shard `index` of `shared`'s engine, its feed seeded with the books of
    /// the recovered `engine` (recovered up to sequence `seq`).
    pub fn for_shard(
        index: usize,
        ring: Producer<FeedItem>,
        shared: &Shared,
        engine: &Engine,
        seq: Seq,
    ) -> FeedTap {
        let symbols: Vec<_> = shared
            .config
            .instruments
            .iter()
            .map(|i| i.id)
            .filter(|&id| shared.routing.shard_of(id) == Some(index))
            .collect();
        match FeedBuilder::from_engine(engine, symbols) {
            Ok(seed) => FeedTap::new(index, ring, shared.config.feed.max_backlog_items, seed, seq),
            Err(e) => {
                // The engine's own books cannot disagree with themselves: this would be a
                // bug in the walk over them. The shard goes on without market data.
                let mut tap = FeedTap::new(index, ring, 0, FeedBuilder::new([]), seq);
                tap.stop(format!("shard {index}: market data could not start: {e}"));
                tap
            }
        }
    }

    /// The public events of command `seq` (time `ts`), in order.
    #[inline]
    pub fn hold(&mut self, seq: Seq, ts: Timestamp, events: &[Event]) {
        if self.down.is_some() {
            return;
        }
        for event in events.iter().filter(|e| public(e)) {
            self.enqueue(FeedItem::Event(*event));
        }
        self.enqueue(FeedItem::End { seq, ts });
    }

    #[inline]
    fn enqueue(&mut self, item: FeedItem) {
        let seq = match item {
            FeedItem::End { seq, .. } => seq,
            _ => 0,
        };
        // Straight to the ring when nothing waits and the command is durable already (a
        // command's events go with its End: both are covered once the End is).
        if self.backlog.is_empty() && (seq <= self.durable || !matches!(item, FeedItem::End { .. }))
        {
            match self.ring.push(item) {
                Ok(()) => return,
                Err(rtrb::PushError::Full(item)) => return self.queue(item),
            }
        }
        self.queue(item)
    }

    fn queue(&mut self, item: FeedItem) {
        if self.backlog.len() >= self.max_backlog {
            self.stop(format!(
                "shard {}: {} market-data items waiting for the feed thread (feed.max_backlog_items); the feed of this shard's instruments stops until restart",
                self.shard,
                self.backlog.len()
            ));
            return;
        }
        self.backlog.push_back(item);
    }

    /// Stop feeding for good: drop what waits, tell the feed thread why (as soon as the
    /// ring has room).
    fn stop(&mut self, why: String) {
        tracing::error!(target: "veloz::feed", shard = self.shard, "{why}");
        self.backlog.clear();
        self.backlog.push_back(FeedItem::Down(why.clone()));
        self.down = Some(why);
    }

    /// Hand over what `durable` covers, as far as the ring has room. Returns the items sent.
    #[inline]
    pub fn release(&mut self, durable: Seq) -> usize {
        self.durable = durable;
        let mut sent = 0;
        // Events wait with their command's End: send up to and including the last End
        // covered by `durable`.
        while let Some(front) = self.backlog.front() {
            if let FeedItem::End { seq, .. } = front {
                if *seq > durable {
                    break;
                }
            } else if !self.end_covered(durable) {
                break;
            }
            if self.ring.is_full() {
                break;
            }
            let item = self.backlog.pop_front().expect("front exists");
            let _ = self.ring.push(item);
            sent += 1;
        }
        sent
    }

    /// Whether the first End in the backlog is covered by `durable` (the events before it
    /// belong to that command).
    fn end_covered(&self, durable: Seq) -> bool {
        for item in &self.backlog {
            match item {
                FeedItem::End { seq, .. } => return *seq <= durable,
                FeedItem::Seed { .. } | FeedItem::Down(_) => return true,
                FeedItem::Event(_) => {}
            }
        }
        false
    }

    /// Items waiting in the shard (not yet in the ring).
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }
}

#[cfg(test)]
mod tests {
    use rtrb::{Consumer, RingBuffer};
    use veloz_core::{Event, RejectReason, Side};

    use super::*;

    fn accepted(order_id: u64) -> Event {
        Event::Accepted {
            order_id,
            account: 1,
            client_order_id: order_id,
            symbol: 1,
            side: Side::Buy,
            price: 100,
            qty: 5,
        }
    }

    fn rejected() -> Event {
        Event::Rejected {
            account: 1,
            client_order_id: 9,
            symbol: 1,
            order_id: 0,
            reason: RejectReason::UnknownOrder,
        }
    }

    /// What the ring holds now: `S` seed, `E{order}` event, `|{seq}` end, `D` down.
    fn drain(c: &mut Consumer<FeedItem>) -> String {
        let mut out = String::new();
        while let Ok(item) = c.pop() {
            out.push_str(&match item {
                FeedItem::Seed { .. } => "S ".to_string(),
                FeedItem::Event(Event::Accepted { order_id, .. }) => format!("E{order_id} "),
                FeedItem::Event(e) => format!("?{e:?} "),
                FeedItem::End { seq, .. } => format!("|{seq} "),
                FeedItem::Down(_) => "D ".to_string(),
            });
        }
        out
    }

    fn tap(slots: usize, max_backlog: usize) -> (FeedTap, Consumer<FeedItem>) {
        let (p, c) = RingBuffer::new(slots);
        (FeedTap::new(0, p, max_backlog, FeedBuilder::new([1]), 0), c)
    }

    #[test]
    fn commands_go_out_whole_in_order_once_durable_and_only_public_events() {
        let (mut tap, mut ring) = tap(64, 1_000);
        assert_eq!(drain(&mut ring), "S ", "the seed goes first, at once");
        tap.hold(1, 10, &[accepted(1)]);
        tap.hold(2, 20, &[rejected()]);
        tap.hold(3, 30, &[accepted(3), rejected()]);
        // Events may wait in the ring (inert without their End); no End before durable.
        let before = drain(&mut ring);
        assert!(
            !before.contains('|'),
            "nothing complete before durable: {before}"
        );
        assert_eq!(tap.release(0), 0);
        let n = tap.release(1);
        let mut seen = before + &drain(&mut ring);
        assert!(n > 0);
        assert_eq!(seen, "E1 |1 ", "command 1 whole; 3 not yet durable");
        tap.release(3);
        seen = drain(&mut ring);
        assert_eq!(
            seen, "|2 E3 |3 ",
            "a rejected-only command sends its End alone"
        );
        // Durable at once (durability = "none"): straight through.
        tap.release(Seq::MAX);
        tap.hold(4, 40, &[accepted(4)]);
        assert_eq!(drain(&mut ring), "E4 |4 ");
        assert_eq!(tap.backlog(), 0);
    }

    #[test]
    fn a_full_ring_leaves_items_in_order_in_the_backlog() {
        let (mut tap, mut ring) = tap(4, 1_000);
        tap.release(Seq::MAX);
        for seq in 1..=5 {
            tap.hold(seq, seq, &[accepted(seq)]);
        }
        assert!(tap.backlog() > 0);
        let mut seen = String::new();
        while tap.backlog() > 0 || !ring.is_empty() {
            seen += &drain(&mut ring);
            tap.release(Seq::MAX);
        }
        assert_eq!(seen, "S E1 |1 E2 |2 E3 |3 E4 |4 E5 |5 ");
    }

    #[test]
    fn a_backlog_past_its_limit_stops_the_tap_with_one_down() {
        let (mut tap, mut ring) = tap(2, 6);
        tap.release(Seq::MAX);
        for seq in 1..=20 {
            tap.hold(seq, seq, &[accepted(seq)]);
        }
        assert!(tap.down.is_some(), "the shard went on, the tap stopped");
        let mut seen = String::new();
        for _ in 0..10 {
            seen += &drain(&mut ring);
            tap.release(Seq::MAX);
        }
        assert!(
            seen.ends_with("D "),
            "the feed thread learns why last: {seen}"
        );
        tap.hold(21, 21, &[accepted(21)]);
        tap.release(Seq::MAX);
        assert_eq!(drain(&mut ring), "", "nothing after Down");
    }
}

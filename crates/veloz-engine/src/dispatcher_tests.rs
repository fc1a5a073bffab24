use rtrb::Consumer;
use veloz_core::{Command, Engine, Side};

use super::*;
use crate::mesh;
use crate::testkit::{self, limit};

/// A session on shard 0 (local) and one on shard 1 (remote).
const LOCAL: SessionRef = SessionRef {
    shard: 0,
    slot: 3,
    generation: 1,
};
const REMOTE: SessionRef = SessionRef {
    shard: 1,
    slot: 5,
    generation: 2,
};

/// Shard 0's dispatcher and the consumer of its ring to shard 1.
fn dispatcher(slots: usize) -> (Dispatcher, Consumer<ShardMsg>) {
    let (mut links, _control) = mesh::build(2, slots);
    let to_1 = links[1].from[0].take().expect("ring 0 -> 1");
    let links0 = links.swap_remove(0);
    (Dispatcher::new(0, links0.to), to_1)
}

/// Apply `cmd` to `engine` and hold its events as sequence `seq`.
fn apply(
    d: &mut Dispatcher,
    engine: &mut Engine,
    m: &mut ShardMetrics,
    origin: SessionRef,
    seq: Seq,
    cmd: Command,
) {
    let mut events = Vec::new();
    engine.apply(seq, 1_000 + seq, &cmd, &mut events);
    d.hold(
        &Sequenced {
            origin,
            ingress: 500 + seq,
            seq,
            ts: 1_000 + seq,
            appended_ns: 10,
            events: &events,
        },
        m,
    );
}

/// Release up to `durable`: (entries released, local deliveries).
fn release(d: &mut Dispatcher, durable: Seq, m: &mut ShardMetrics) -> (usize, Vec<Delivery>) {
    let mut count = 0;
    let mut local = Vec::new();
    while let Some(released) = d.release(durable, 20, m) {
        count += 1;
        if let Released::Local(delivery) = released {
            local.push(delivery);
        }
    }
    (count, local)
}

fn drain(ring: &mut Consumer<ShardMsg>) -> Vec<ShardMsg> {
    std::iter::from_fn(|| ring.pop().ok()).collect()
}

fn engine() -> Engine {
    testkit::engine(&testkit::shared(1, testkit::config()), 0)
}

#[test]
fn holds_deliveries_until_durable_then_releases_them_in_order() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine();
    let mut m = ShardMetrics::new(0, 0);
    apply(
        &mut d,
        &mut engine,
        &mut m,
        LOCAL,
        1,
        limit(1, 1, 10, Side::Sell, 1_900_000, 5),
    );
    apply(
        &mut d,
        &mut engine,
        &mut m,
        LOCAL,
        2,
        limit(1, 1, 11, Side::Sell, 1_900_100, 5),
    );
    assert_eq!(d.held(), 2);

    let (count, local) = release(&mut d, 0, &mut m);
    assert_eq!((count, local.len()), (0, 0));

    let (count, local) = release(&mut d, 1, &mut m);
    assert_eq!(count, 1);
    assert_eq!(local.len(), 1);
    assert_eq!(
        (local[0].to, local[0].seq, local[0].ingress),
        (LOCAL, 1, 501)
    );

    let (_, local) = release(&mut d, 5, &mut m);
    assert_eq!(local.iter().map(|d| d.seq).collect::<Vec<_>>(), [2]);
    assert!(d.is_idle());
    assert!(drain(&mut ring).is_empty());
    assert_eq!(m.counters.journal_syncs, 0, "the sequencer counts syncs");
}

#[test]
fn both_sides_of_a_trade_go_to_their_owners() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine();
    let mut m = ShardMetrics::new(0, 0);
    // The local session rests 5; the remote one takes 3 of them.
    apply(
        &mut d,
        &mut engine,
        &mut m,
        LOCAL,
        1,
        limit(1, 1, 10, Side::Sell, 1_900_000, 5),
    );
    apply(
        &mut d,
        &mut engine,
        &mut m,
        REMOTE,
        2,
        limit(2, 1, 20, Side::Buy, 1_900_000, 3),
    );
    let (_, local) = release(&mut d, 2, &mut m);
    assert_eq!(m.counters.trades, 1);

    // Local: the maker's accept, then the maker's side of the trade (no ingress on it).
    assert_eq!(local.len(), 2);
    assert!(matches!(
        local[0].event,
        Event::Accepted { order_id: 1, .. }
    ));
    assert!(matches!(local[1].event, Event::Trade { .. }));
    assert_eq!((local[1].part, local[1].ingress), (Part::Maker, 0));

    // Remote: the taker's accept (carrying the ingress), the taker's side, then Done.
    let sent = drain(&mut ring);
    assert_eq!(sent.len(), 3, "{sent:?}");
    let ShardMsg::Deliver(accept) = sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        (accept.to, accept.ingress, accept.part),
        (REMOTE, 502, Part::All)
    );
    let ShardMsg::Deliver(trade) = sent[1] else {
        panic!("{sent:?}")
    };
    assert!(matches!(trade.event, Event::Trade { .. }));
    assert_eq!(
        (trade.to, trade.part, trade.ingress),
        (REMOTE, Part::Taker, 0)
    );
    assert!(matches!(sent[2], ShardMsg::Done));
}

#[test]
fn the_owner_map_forgets_filled_and_cancelled_orders() {
    let (mut d, _ring) = dispatcher(64);
    let mut engine = engine();
    let mut m = ShardMetrics::new(0, 0);
    apply(
        &mut d,
        &mut engine,
        &mut m,
        LOCAL,
        1,
        limit(1, 1, 10, Side::Sell, 1_900_000, 5),
    );
    apply(
        &mut d,
        &mut engine,
        &mut m,
        LOCAL,
        2,
        limit(1, 1, 11, Side::Sell, 1_900_100, 5),
    );
    assert_eq!((d.owner(1), d.owner(2)), (Some(LOCAL), Some(LOCAL)));
    assert_eq!(d.open_orders(), 2);

    // The remote session fills order 1 exactly: both orders of the trade are gone.
    apply(
        &mut d,
        &mut engine,
        &mut m,
        REMOTE,
        3,
        limit(2, 1, 20, Side::Buy, 1_900_000, 5),
    );
    assert_eq!(d.owner(1), None);
    assert_eq!(d.open_orders(), 1);

    // The remote session cancels the local session's order 2... of another account: the
    // engine rejects it and the owner stays. The owner cancelling it removes it.
    let cancel = |account, client_order_id| {
        Command::Cancel(veloz_core::CancelOrder {
            account,
            symbol: 1,
            client_order_id,
            order_id: 2,
        })
    };
    apply(&mut d, &mut engine, &mut m, REMOTE, 4, cancel(2, 21));
    assert_eq!(d.owner(2), Some(LOCAL));
    apply(&mut d, &mut engine, &mut m, LOCAL, 5, cancel(1, 12));
    assert_eq!(d.owner(2), None);
    assert_eq!(d.open_orders(), 0);
}

#[test]
fn a_full_ring_overflows_in_order() {
    let (mut d, mut ring) = dispatcher(2);
    let mut engine = engine();
    let mut m = ShardMetrics::new(0, 0);
    for seq in 1..=6 {
        let cmd = limit(2, 1, seq, Side::Buy, 1_890_000, 1);
        apply(&mut d, &mut engine, &mut m, REMOTE, seq, cmd);
    }
    let (count, _) = release(&mut d, 6, &mut m);
    assert_eq!(count, 12, "an accept and a Done per command");
    assert_eq!(
        m.counters.ring_full, 1,
        "counted once, when the ring first refused"
    );
    assert_eq!(d.overflowing(1), 10);
    // Later sends queue behind the overflow even when the ring has room.
    let mut got = drain(&mut ring);
    d.send(1, ShardMsg::Done, &mut m);
    assert_eq!(d.overflowing(1), 11);
    while !d.is_idle() {
        assert!(d.flush_overflow() > 0);
        got.extend(drain(&mut ring));
    }
    let order: Vec<u64> = got
        .iter()
        .map(|msg| match msg {
            ShardMsg::Deliver(d) => d.seq,
            ShardMsg::Done => 0,
            ShardMsg::Command(_) => panic!("no commands here"),
        })
        .collect();
    assert_eq!(order, [1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 0]);
}

#[test]
fn a_delivery_without_a_session_is_counted_not_sent() {
    let (mut d, mut ring) = dispatcher(8);
    let mut engine = engine();
    let mut m = ShardMetrics::new(0, 0);
    apply(
        &mut d,
        &mut engine,
        &mut m,
        SessionRef::NONE,
        1,
        limit(1, 1, 1, Side::Buy, 1_890_000, 1),
    );
    assert_eq!(m.counters.undeliverable_reports, 1);
    assert_eq!(release(&mut d, 1, &mut m).0, 0);
    assert!(drain(&mut ring).is_empty());
}

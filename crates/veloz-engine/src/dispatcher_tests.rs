use rtrb::Consumer;
use veloz_core::{Command, Event, Part, Side};

use super::*;
use crate::mesh;
use crate::testkit::{self, limit};

/// Sessions on shard 0 (local) and one on shard 1 (remote).
const LOCAL: SessionRef = SessionRef {
    shard: 0,
    slot: 3,
    generation: 1,
};
const LOCAL_2: SessionRef = SessionRef {
    shard: 0,
    slot: 4,
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

/// Shard 0's engine of a one-shard layout, keeping the last `retain` reports per account.
fn engine(retain: usize) -> Engine {
    let mut e = testkit::engine(&testkit::shared(1, testkit::config()), 0);
    e.set_report_retention(retain);
    e
}

/// Apply `cmd` to `engine` and hold its reports as sequence `seq` (ingress 500 + seq).
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
            assigned: engine.stream_assigned(),
        },
        m,
    );
}

/// A resting sell of `account` on AAPL.
fn sell(account: AccountId, cid: u64, qty: u64) -> Command {
    limit(account, 1, cid, Side::Sell, 1_900_000, qty)
}

/// A buy of `account` on AAPL at the sells' price.
fn buy(account: AccountId, cid: u64, qty: u64) -> Command {
    limit(account, 1, cid, Side::Buy, 1_900_000, qty)
}

/// Release up to `durable`: (entries released, local deliveries).
fn release(d: &mut Dispatcher, durable: Seq, m: &mut ShardMetrics) -> (usize, Vec<Delivery>) {
    let mut local = Vec::new();
    let count = d.release(durable, 20, m, |delivery, _| local.push(*delivery));
    (count, local)
}

/// Subscribe: (the Resumed returned, the reports resent locally).
fn subscribe(
    d: &mut Dispatcher,
    engine: &Engine,
    m: &mut ShardMetrics,
    session: SessionRef,
    account: AccountId,
    resume_after: Option<u64>,
) -> (Option<Resumed>, Vec<Delivery>) {
    let mut local = Vec::new();
    let sub = Subscription {
        session,
        account,
        resume_after,
    };
    let resumed = d.subscribe(sub, engine, m, |delivery, _| local.push(*delivery));
    (resumed, local)
}

fn drain(ring: &mut Consumer<ShardMsg>) -> Vec<ShardMsg> {
    std::iter::from_fn(|| ring.pop().ok()).collect()
}

/// (to, stream_seq, part, ingress) of each delivery.
fn summary(ds: &[Delivery]) -> Vec<(SessionRef, u64, Part, u64)> {
    ds.iter()
        .map(|d| (d.to, d.stream_seq, d.part, d.ingress))
        .collect()
}

/// The deliveries among ring messages; panics on anything but `Deliver` and `Done`
/// (`Done` shows as `None`).
fn delivered(msgs: &[ShardMsg]) -> Vec<Option<Delivery>> {
    msgs.iter()
        .map(|msg| match msg {
            ShardMsg::Deliver(d) => Some(*d),
            ShardMsg::Done => None,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn holds_reports_until_durable_then_releases_them_in_order() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, LOCAL, 1, None);
    apply(&mut d, &mut engine, &mut m, LOCAL, 1, sell(1, 10, 5));
    apply(&mut d, &mut engine, &mut m, LOCAL, 2, sell(1, 11, 5));
    assert_eq!(d.held(), 2);

    let (count, local) = release(&mut d, 0, &mut m);
    assert_eq!((count, local.len()), (0, 0));
    let (count, local) = release(&mut d, 1, &mut m);
    assert_eq!(count, 1);
    assert_eq!(
        (local[0].to, local[0].seq, local[0].ts, local[0].ingress),
        (LOCAL, 1, 1_001, 501)
    );
    assert_eq!((local[0].stream, local[0].stream_seq), (0, 1));
    assert!(matches!(
        local[0].event,
        Event::Accepted {
            client_order_id: 10,
            ..
        }
    ));

    let (count, local) = release(&mut d, 5, &mut m);
    assert_eq!(count, 1);
    assert_eq!(summary(&local), [(LOCAL, 2, Part::All, 502)]);
    assert!(d.is_idle());
    assert!(drain(&mut ring).is_empty());
    assert_eq!(m.counters.journal_syncs, 0, "the sequencer counts syncs");
}

#[test]
fn both_sides_of_a_trade_reach_each_accounts_subscribers_in_stream_order() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, LOCAL, 1, None);
    subscribe(&mut d, &engine, &mut m, LOCAL_2, 2, None);
    // Account 1 rests 5; account 2 takes 3 of them.
    apply(&mut d, &mut engine, &mut m, LOCAL, 1, sell(1, 10, 5));
    apply(&mut d, &mut engine, &mut m, LOCAL_2, 2, buy(2, 20, 3));
    let (count, local) = release(&mut d, 2, &mut m);
    assert_eq!(count, 4, "one entry per report");
    assert_eq!(m.counters.trades, 1);
    // Each account's stream is gap-free from 1; the trade gives the maker's report, then
    // the taker's; the ingress rides only on each command's first report to its origin.
    assert_eq!(
        summary(&local),
        [
            (LOCAL, 1, Part::All, 501),
            (LOCAL_2, 1, Part::All, 502),
            (LOCAL, 2, Part::Maker, 0),
            (LOCAL_2, 2, Part::Taker, 0),
        ]
    );
    assert!(matches!(local[2].event, Event::Trade { qty: 3, .. }));
    assert_eq!(local[2].seq, 2);

    // A trade within one account advances its stream by two, maker first.
    apply(&mut d, &mut engine, &mut m, LOCAL, 3, buy(1, 12, 2));
    let (_, local) = release(&mut d, 3, &mut m);
    assert_eq!(
        summary(&local),
        [
            (LOCAL, 3, Part::All, 503),
            (LOCAL, 4, Part::Maker, 0),
            (LOCAL, 5, Part::Taker, 0),
        ]
    );
    assert_eq!((engine.stream_last(1), engine.stream_last(2)), (5, 2));
    assert!(drain(&mut ring).is_empty(), "nobody on shard 1");
}

#[test]
fn a_subscriber_on_another_shard_gets_its_reports_on_the_ring_then_done() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, LOCAL, 1, None);
    let (resumed, _) = subscribe(&mut d, &engine, &mut m, REMOTE, 2, None);
    assert!(resumed.is_none());
    assert!(drain(&mut ring).is_empty(), "no resend asked: nothing sent");
    apply(&mut d, &mut engine, &mut m, LOCAL, 1, sell(1, 10, 5));
    apply(&mut d, &mut engine, &mut m, REMOTE, 2, buy(2, 20, 3));
    let (count, local) = release(&mut d, 2, &mut m);
    assert_eq!(count, 5, "four reports and the remote command's Done");
    assert_eq!(
        summary(&local),
        [(LOCAL, 1, Part::All, 501), (LOCAL, 2, Part::Maker, 0)]
    );
    let sent = delivered(&drain(&mut ring));
    assert_eq!(sent.len(), 3, "{sent:?}");
    let reports: Vec<Delivery> = sent[..2].iter().map(|d| d.expect("a report")).collect();
    assert_eq!(
        summary(&reports),
        [(REMOTE, 1, Part::All, 502), (REMOTE, 2, Part::Taker, 0)]
    );
    assert!(reports.iter().all(|d| d.stream == 0 && d.seq == 2));
    assert!(sent[2].is_none(), "Done after the command's reports");

    // A remote command whose account nobody follows is still answered with its Done.
    apply(&mut d, &mut engine, &mut m, REMOTE, 3, sell(3, 30, 1));
    assert_eq!(release(&mut d, 3, &mut m).0, 2);
    assert!(matches!(drain(&mut ring)[..], [ShardMsg::Done]));
    assert!(d.is_idle());
}

#[test]
fn every_session_of_an_account_gets_every_report_until_it_unsubscribes() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, LOCAL, 1, None);
    subscribe(&mut d, &engine, &mut m, REMOTE, 1, None);
    assert_eq!(d.subscribers(1), 2);

    apply(&mut d, &mut engine, &mut m, LOCAL, 1, sell(1, 10, 1));
    let (_, local) = release(&mut d, 1, &mut m);
    assert_eq!(summary(&local), [(LOCAL, 1, Part::All, 501)]);
    let sent = delivered(&drain(&mut ring));
    assert_eq!(sent.len(), 1, "no Done for a local command: {sent:?}");
    assert_eq!(
        summary(&[sent[0].unwrap()]),
        [(REMOTE, 1, Part::All, 0)],
        "the ingress only on the origin's copy"
    );

    apply(&mut d, &mut engine, &mut m, REMOTE, 2, sell(1, 11, 1));
    let (_, local) = release(&mut d, 2, &mut m);
    assert_eq!(summary(&local), [(LOCAL, 2, Part::All, 0)]);
    let sent = delivered(&drain(&mut ring));
    assert_eq!(summary(&[sent[0].unwrap()]), [(REMOTE, 2, Part::All, 502)]);
    assert!(sent[1].is_none());

    // One session ends: the other still gets everything.
    assert!(d.unsubscribe(LOCAL, 1), "it was subscribed");
    assert!(!d.unsubscribe(LOCAL_2, 1), "never subscribed to account 1");
    assert_eq!(d.subscribers(1), 1);
    apply(&mut d, &mut engine, &mut m, LOCAL, 3, sell(1, 12, 1));
    let (count, local) = release(&mut d, 3, &mut m);
    assert_eq!((count, local.len()), (1, 0));
    let sent = delivered(&drain(&mut ring));
    assert_eq!(summary(&[sent[0].unwrap()]), [(REMOTE, 3, Part::All, 0)]);

    // The last one ends: the reports go nowhere (they stay in the stream).
    assert!(d.unsubscribe(REMOTE, 1));
    assert!(!d.unsubscribe(REMOTE, 1), "already gone");
    assert_eq!(d.subscribers(1), 0);
    apply(&mut d, &mut engine, &mut m, LOCAL, 4, sell(1, 13, 1));
    let (count, local) = release(&mut d, 4, &mut m);
    assert_eq!((count, local.len()), (1, 0));
    assert!(drain(&mut ring).is_empty());
    assert_eq!(engine.stream_last(1), 4);
}

#[test]
fn a_report_nobody_follows_is_resent_at_subscribe_and_held_ones_come_at_release() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    for seq in 1..=3 {
        apply(&mut d, &mut engine, &mut m, LOCAL, seq, sell(1, seq, 1));
    }
    let (count, local) = release(&mut d, 3, &mut m);
    assert_eq!((count, local.len()), (3, 0), "nobody subscribed: nowhere");
    assert!(drain(&mut ring).is_empty());
    // Stream position 4 is not durable yet.
    apply(&mut d, &mut engine, &mut m, LOCAL, 4, sell(1, 4, 1));

    // The session saw 1: it gets 2 and 3 (released), then its Resumed; not 4 (held).
    let (resumed, resent) = subscribe(&mut d, &engine, &mut m, LOCAL, 1, Some(1));
    assert_eq!(
        summary(&resent),
        [(LOCAL, 2, Part::All, 0), (LOCAL, 3, Part::All, 0)]
    );
    assert_eq!(
        resent.iter().map(|d| (d.seq, d.ts)).collect::<Vec<_>>(),
        [(2, 1_002), (3, 1_003)],
        "as produced"
    );
    assert_eq!(
        resumed,
        Some(Resumed {
            to: LOCAL,
            info: StreamResumed {
                stream: 0,
                after: 1,
                last: 3,
                resent: 2,
                first_retained: 1,
            },
        })
    );
    assert_eq!(m.counters.reports_resent, 2);
    assert!(
        drain(&mut ring).is_empty(),
        "a local session's resend is local"
    );

    // 4 arrives by release, once; later reports follow.
    let (_, local) = release(&mut d, 4, &mut m);
    assert_eq!(summary(&local), [(LOCAL, 4, Part::All, 504)]);
    apply(&mut d, &mut engine, &mut m, LOCAL, 5, sell(1, 5, 1));
    let (_, local) = release(&mut d, 5, &mut m);
    assert_eq!(summary(&local), [(LOCAL, 5, Part::All, 505)]);
    assert!(release(&mut d, 9, &mut m).1.is_empty());

    // A second session that saw everything released gets no resend, only its Resumed.
    let (resumed, resent) = subscribe(&mut d, &engine, &mut m, LOCAL_2, 1, Some(5));
    assert!(resent.is_empty());
    let info = resumed.expect("asked for a resend").info;
    assert_eq!((info.after, info.last, info.resent), (5, 5, 0));
    assert_eq!(info.missing(), None);
    assert_eq!(m.counters.reports_resent, 2);
}

#[test]
fn a_resend_to_another_shard_goes_on_the_ring_and_tells_what_is_no_longer_kept() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(3);
    let mut m = ShardMetrics::new(0, 0);
    for seq in 1..=5 {
        apply(
            &mut d,
            &mut engine,
            &mut m,
            SessionRef::NONE,
            seq,
            sell(2, seq, 1),
        );
    }
    assert_eq!(release(&mut d, 5, &mut m).0, 5);
    assert!(drain(&mut ring).is_empty(), "replayed: no origin, no Done");

    let (resumed, local) = subscribe(&mut d, &engine, &mut m, REMOTE, 2, Some(0));
    assert!(resumed.is_none() && local.is_empty(), "sent on the ring");
    let sent = drain(&mut ring);
    assert_eq!(sent.len(), 4, "{sent:?}");
    let reports = delivered(&sent[..3]);
    assert_eq!(
        summary(&reports.iter().map(|d| d.unwrap()).collect::<Vec<_>>()),
        [
            (REMOTE, 3, Part::All, 0),
            (REMOTE, 4, Part::All, 0),
            (REMOTE, 5, Part::All, 0)
        ],
        "only the last 3 are kept"
    );
    let ShardMsg::Resumed(r) = sent[3] else {
        panic!("{sent:?}")
    };
    assert_eq!(r.to, REMOTE);
    assert_eq!(
        r.info,
        StreamResumed {
            stream: 0,
            after: 0,
            last: 5,
            resent: 3,
            first_retained: 3,
        }
    );
    assert_eq!(r.info.missing(), Some((1, 2)));
}

#[test]
fn subscribing_without_a_resend_request_resends_nothing() {
    let (mut d, mut ring) = dispatcher(64);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    apply(&mut d, &mut engine, &mut m, LOCAL, 1, sell(1, 1, 1));
    apply(&mut d, &mut engine, &mut m, LOCAL, 2, sell(1, 2, 1));
    release(&mut d, 2, &mut m);
    apply(&mut d, &mut engine, &mut m, LOCAL, 3, sell(1, 3, 1));

    let (resumed, resent) = subscribe(&mut d, &engine, &mut m, LOCAL, 1, None);
    assert!(resumed.is_none() && resent.is_empty());
    assert_eq!(m.counters.reports_resent, 0);
    // u64::MAX: nothing resent either, but the Resumed names the end of what was released.
    let (resumed, resent) = subscribe(&mut d, &engine, &mut m, LOCAL_2, 1, Some(u64::MAX));
    assert!(resent.is_empty());
    let info = resumed.expect("a Resumed").info;
    assert_eq!((info.after, info.last, info.resent), (2, 2, 0), "{info:?}");
    // What is still held is new to both: it arrives at release (the ingress time rides on
    // the sender's copy only).
    let (_, local) = release(&mut d, 3, &mut m);
    assert_eq!(
        summary(&local),
        [(LOCAL, 3, Part::All, 503), (LOCAL_2, 3, Part::All, 0)]
    );
    assert!(drain(&mut ring).is_empty());
}

#[test]
fn a_full_ring_overflows_in_order_and_try_send_queues_behind_it() {
    let (mut d, mut ring) = dispatcher(2);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, REMOTE, 2, None);
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
    let mut got = drain(&mut ring);
    // The ring has room now, but later messages queue behind the overflow.
    let refused = d.try_send(1, ShardMsg::Done);
    assert!(matches!(refused, Err(ShardMsg::Done)), "given back");
    assert_eq!(d.overflowing(1), 10);
    d.send(1, ShardMsg::Done, &mut m);
    assert_eq!(d.overflowing(1), 11);
    while !d.is_idle() {
        assert!(d.flush_overflow() > 0);
        got.extend(drain(&mut ring));
    }
    assert!(d.try_send(1, ShardMsg::Done).is_ok(), "nothing waits now");
    got.extend(drain(&mut ring));
    let order: Vec<u64> = delivered(&got)
        .iter()
        .map(|d| d.map_or(0, |d| d.stream_seq))
        .collect();
    assert_eq!(order, [1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 0, 0]);
}

#[test]
fn abandoning_what_is_held_sends_the_dones_and_no_report() {
    let (mut d, mut ring) = dispatcher(8);
    let mut engine = engine(16);
    let mut m = ShardMetrics::new(0, 0);
    subscribe(&mut d, &engine, &mut m, REMOTE, 2, None);
    apply(&mut d, &mut engine, &mut m, REMOTE, 1, sell(2, 1, 1));
    apply(&mut d, &mut engine, &mut m, REMOTE, 2, sell(2, 2, 1));
    assert_eq!(d.abandon_held(&mut m), 2);
    assert!(matches!(
        drain(&mut ring)[..],
        [ShardMsg::Done, ShardMsg::Done]
    ));
    assert!(d.is_idle());
    assert_eq!(release(&mut d, 9, &mut m).0, 0);
}

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use super::*;
use crate::instrument::Instrument;

fn engine() -> Engine {
    Engine::new(0, &[Instrument::simple(1, "A"), Instrument::simple(2, "B")])
}

fn limit(account: AccountId, coid: u64, side: Side, price: Price, qty: Qty) -> Command {
    Command::New(NewOrder::limit(account, 1, coid, side, price, qty))
}

/// Apply `cmd` with a fresh event vector; returns its events.
fn step(e: &mut Engine, seq: Seq, cmd: &Command) -> Vec<Event> {
    let mut out = Vec::new();
    e.apply(seq, seq * 10, cmd, &mut out);
    out
}

fn a(account: AccountId, part: Part, event_index: u32, stream_seq: u64) -> Assigned {
    Assigned {
        account,
        part,
        event_index,
        stream_seq,
    }
}

fn accepted_id(events: &[Event]) -> OrderId {
    match events[0] {
        Event::Accepted { order_id, .. } => order_id,
        other => panic!("not accepted: {other:?}"),
    }
}

#[test]
fn trade_between_two_accounts_numbers_each_stream() {
    let mut e = engine();
    step(&mut e, 1, &limit(1, 11, Side::Sell, 100, 10));
    assert_eq!(e.stream_assigned(), &[a(1, Part::All, 0, 1)]);
    let ev = step(&mut e, 2, &limit(2, 21, Side::Buy, 100, 4));
    assert!(matches!(ev[1], Event::Trade { .. }));
    // Accepted (taker), then the trade: maker's report first, then the taker's.
    assert_eq!(
        e.stream_assigned(),
        &[
            a(2, Part::All, 0, 1),
            a(1, Part::Maker, 1, 2),
            a(2, Part::Taker, 1, 2)
        ]
    );
    step(&mut e, 3, &limit(2, 22, Side::Buy, 100, 6));
    assert_eq!(
        e.stream_assigned(),
        &[
            a(2, Part::All, 0, 3),
            a(1, Part::Maker, 1, 3),
            a(2, Part::Taker, 1, 4)
        ]
    );
    assert_eq!((e.stream_last(1), e.stream_last(2)), (3, 4));
    assert_eq!(e.stream_last(3), 0);
    assert_eq!(e.stream_accounts(), 2);
}

#[test]
fn self_trade_advances_by_two_maker_first() {
    let mut e = engine();
    step(&mut e, 1, &limit(5, 1, Side::Sell, 100, 10));
    let ev = step(&mut e, 2, &limit(5, 2, Side::Buy, 100, 10));
    assert_eq!(ev.len(), 2);
    assert_eq!(
        e.stream_assigned(),
        &[
            a(5, Part::All, 0, 2),
            a(5, Part::Maker, 1, 3),
            a(5, Part::Taker, 1, 4)
        ]
    );
    assert_eq!(e.stream_last(5), 4);
    assert_eq!(e.stream_accounts(), 1);
}

#[test]
fn every_other_event_gives_one_report() {
    let mut e = engine();
    // Rejected: unknown symbol.
    let bad = NewOrder::limit(7, 99, 1, Side::Buy, 100, 1);
    let ev = step(&mut e, 1, &Command::New(bad));
    assert!(matches!(ev[..], [Event::Rejected { .. }]));
    assert_eq!(e.stream_assigned(), &[a(7, Part::All, 0, 1)]);
    // Cancelled.
    let id = accepted_id(&step(&mut e, 2, &limit(7, 2, Side::Buy, 90, 5)));
    let cancel = Command::Cancel(CancelOrder {
        account: 7,
        symbol: 1,
        client_order_id: 3,
        order_id: id,
    });
    let ev = step(&mut e, 3, &cancel);
    assert!(matches!(ev[..], [Event::Cancelled { .. }]));
    assert_eq!(e.stream_assigned(), &[a(7, Part::All, 0, 3)]);
    // Rejected on behalf of another account (not the owner): goes to the requester.
    let id = accepted_id(&step(&mut e, 4, &limit(7, 4, Side::Buy, 90, 5)));
    let ev = step(
        &mut e,
        5,
        &Command::Cancel(CancelOrder {
            account: 8,
            symbol: 1,
            client_order_id: 1,
            order_id: id,
        }),
    );
    assert!(matches!(ev[..], [Event::Rejected { account: 8, .. }]));
    assert_eq!(e.stream_assigned(), &[a(8, Part::All, 0, 1)]);
    // Replaced (no cross).
    let ev = step(
        &mut e,
        6,
        &Command::Replace(ReplaceOrder {
            account: 7,
            symbol: 1,
            client_order_id: 6,
            order_id: id,
            price: 91,
            qty: 5,
        }),
    );
    assert!(matches!(ev[..], [Event::Replaced { .. }]));
    assert_eq!(e.stream_assigned(), &[a(7, Part::All, 0, 5)]);
    // MassCancelled after two Cancelled: three reports, one per event.
    step(&mut e, 7, &limit(7, 7, Side::Sell, 200, 1));
    let ev = step(
        &mut e,
        8,
        &Command::MassCancel(MassCancel {
            account: 7,
            client_order_id: 8,
            symbol: None,
            reason: crate::CancelReason::MassCancel,
        }),
    );
    assert_eq!(ev.len(), 3);
    assert!(matches!(ev[2], Event::MassCancelled { count: 2, .. }));
    assert_eq!(
        e.stream_assigned(),
        &[
            a(7, Part::All, 0, 7),
            a(7, Part::All, 1, 8),
            a(7, Part::All, 2, 9)
        ]
    );
    assert_eq!((e.stream_last(7), e.stream_last(8)), (9, 1));
}

#[test]
fn event_index_counts_from_this_apply_calls_first_event() {
    let mut e = engine();
    let mut out = vec![];
    e.apply(1, 1, &limit(1, 1, Side::Sell, 100, 1), &mut out);
    e.apply(2, 2, &limit(2, 1, Side::Buy, 100, 1), &mut out); // out not cleared
    assert_eq!(out.len(), 3);
    assert_eq!(
        e.stream_assigned(),
        &[
            a(2, Part::All, 0, 1),
            a(1, Part::Maker, 1, 2),
            a(2, Part::Taker, 1, 1 + 1)
        ]
    );
}

#[test]
fn retention_window_drops_the_oldest_and_indexes_directly() {
    let mut e = engine();
    assert_eq!(e.report_retention(), 0);
    step(&mut e, 1, &limit(1, 100, Side::Buy, 50, 1));
    assert_eq!(e.stream_first_retained(1), None); // retention 0: counted only
    assert_eq!(e.stream_retained_after(1, 0).count(), 0);
    e.set_report_retention(3);
    for k in 2..=6u64 {
        step(&mut e, k, &limit(1, k, Side::Buy, 50, 1));
    }
    // Reports 2..=6 of account 1 were retained; the window keeps 4, 5, 6.
    assert_eq!(e.stream_last(1), 6);
    assert_eq!(e.stream_first_retained(1), Some(4));
    let nums = |e: &Engine, after| {
        e.stream_retained_after(1, after)
            .map(|r| r.stream_seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(nums(&e, 0), [4, 5, 6]);
    assert_eq!(nums(&e, 3), [4, 5, 6]);
    assert_eq!(nums(&e, 4), [5, 6]);
    assert_eq!(nums(&e, 5), [6]);
    assert!(nums(&e, 6).is_empty());
    assert!(nums(&e, 7).is_empty());
    assert!(nums(&e, u64::MAX).is_empty());
    let r = e.stream_retained_after(1, 5).next().unwrap();
    assert_eq!((r.seq, r.ts, r.part), (6, 60, Part::All));
    assert!(matches!(
        r.event,
        Event::Accepted {
            client_order_id: 6,
            ..
        }
    ));
    // Unknown account: nothing.
    assert_eq!(e.stream_first_retained(9), None);
    assert_eq!(e.stream_retained_after(9, 0).count(), 0);
    // A trade's two reports land in their own windows.
    step(&mut e, 7, &limit(2, 1, Side::Sell, 50, 1));
    assert_eq!(nums(&e, 0), [5, 6, 7]);
    let last = e.stream_retained_after(1, 6).next().unwrap();
    assert_eq!((last.part, last.seq), (Part::Maker, 7));
    let taker: Vec<_> = e.stream_retained_after(2, 0).map(|r| r.part).collect();
    assert_eq!(taker, [Part::All, Part::Taker]);
    // Shrinking drops the oldest; 0 frees every window but keeps counting.
    e.validate().unwrap();
    e.set_report_retention(2);
    assert_eq!(nums(&e, 0), [6, 7]);
    e.validate().unwrap();
    // A damaged window is an invariant violation.
    let mut broken = e.streams.windows.get(&1).cloned().unwrap();
    broken[0].stream_seq = 1;
    e.streams.windows.insert(1, broken);
    let err = e.validate().unwrap_err().to_string();
    assert!(err.contains("account 1"), "{err}");
    e.streams.windows.get_mut(&1).unwrap()[0].stream_seq = 6;
    e.validate().unwrap();
    e.set_report_retention(0);
    assert_eq!(e.stream_first_retained(1), None);
    step(&mut e, 8, &limit(1, 8, Side::Buy, 40, 1));
    assert_eq!(e.stream_last(1), 8);
    assert_eq!(e.stream_retained_after(1, 0).count(), 0);
}

/// A seeded mix over 4 accounts and 2 symbols: new limit/IOC orders (some crossing, some
/// self-trading, some invalid), cancels and replaces of known orders by random accounts,
/// mass cancels.
fn random_commands(seed: u64, n: usize) -> Vec<Command> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut cmds = Vec::with_capacity(n);
    // Order ids are (shard 0) 1, 2, ... in acceptance order; guess among those issued so far.
    for k in 0..n as u64 {
        let account = rng.random_range(1..=4u32);
        let symbol = rng.random_range(1..=2u32);
        let max_id = (k + 1).max(1);
        let cmd = match rng.random_range(0..10u32) {
            0..=5 => {
                let side = if rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let mut o = NewOrder::limit(
                    account,
                    symbol,
                    k,
                    side,
                    rng.random_range(95..=105),
                    rng.random_range(0..=5),
                );
                if rng.random_bool(0.2) {
                    o.tif = TimeInForce::Ioc;
                }
                o.stp = SelfTradePrevention::from_u8(rng.random_range(0..4)).unwrap();
                Command::New(o)
            }
            6 | 7 => Command::Cancel(CancelOrder {
                account,
                symbol,
                client_order_id: k,
                order_id: rng.random_range(1..=max_id),
            }),
            8 => Command::Replace(ReplaceOrder {
                account,
                symbol,
                client_order_id: k,
                order_id: rng.random_range(1..=max_id),
                price: rng.random_range(95..=105),
                qty: rng.random_range(1..=5),
            }),
            _ => Command::MassCancel(MassCancel {
                account,
                client_order_id: k,
                symbol: rng.random_bool(0.5).then_some(symbol),
                reason: crate::CancelReason::MassCancel,
            }),
        };
        cmds.push(cmd);
    }
    cmds
}

#[test]
fn same_commands_give_the_same_streams_and_match_a_naive_count() {
    for seed in [1u64, 7, 42] {
        let cmds = random_commands(seed, 3_000);
        let (mut x, mut y) = (engine(), engine());
        y.set_report_retention(4); // retention never changes the numbering
        let mut naive: BTreeMap<AccountId, u64> = BTreeMap::new();
        let (mut out, mut trades) = (Vec::new(), 0u64);
        for (i, cmd) in cmds.iter().enumerate() {
            let seq = i as u64 + 1;
            out.clear();
            x.apply(seq, seq, cmd, &mut out);
            y.apply(seq, seq, cmd, &mut Vec::new());
            assert_eq!(
                x.stream_assigned(),
                y.stream_assigned(),
                "seed {seed} seq {seq}"
            );
            // The naive rule: one report per event, two (maker, taker) per trade.
            let mut expected = Vec::new();
            for (k, ev) in out.iter().enumerate() {
                let mut give = |account, part| {
                    let n = naive.entry(account).or_insert(0);
                    *n += 1;
                    expected.push(a(account, part, k as u32, *n));
                };
                match ev {
                    Event::Trade { maker, taker, .. } => {
                        trades += 1;
                        give(maker.account, Part::Maker);
                        give(taker.account, Part::Taker);
                    }
                    Event::Accepted { account, .. }
                    | Event::Cancelled { account, .. }
                    | Event::Replaced { account, .. }
                    | Event::MassCancelled { account, .. }
                    | Event::Rejected { account, .. } => give(*account, Part::All),
                    Event::Admin { .. } => {}
                }
            }
            assert_eq!(x.stream_assigned(), &expected[..], "seed {seed} seq {seq}");
            if seq.is_multiple_of(500) {
                x.validate().unwrap();
                y.validate().unwrap();
            }
            for (&account, &last) in &naive {
                let retained: Vec<u64> = y
                    .stream_retained_after(account, 0)
                    .map(|r| r.stream_seq)
                    .collect();
                let want: Vec<u64> = (last.saturating_sub(3).max(1)..=last).collect();
                assert_eq!(retained, want, "seed {seed} account {account}");
            }
        }
        assert!(trades > 100, "seed {seed}: the mix should trade ({trades})");
        assert_eq!(x.stream_accounts(), naive.len());
        for (&account, &last) in &naive {
            assert_eq!(x.stream_last(account), last);
            assert_eq!(y.stream_last(account), last);
        }
        assert_eq!(x.state_hash(), y.state_hash());
    }
}

#[test]
fn small_and_large_account_ids_count_alike_and_list_in_order() {
    let mut c = Counters::default();
    for (account, times) in [(70_000, 2), (3, 1), (DIRECT_ACCOUNTS - 1, 3), (0, 1)] {
        for n in 1..=times {
            assert_eq!(c.bump(account), n, "account {account}");
        }
    }
    assert_eq!(
        (c.get(70_000), c.get(3), c.get(4), c.get(1 << 20)),
        (2, 1, 0, 0)
    );
    assert_eq!(c.len(), 4);
    assert_eq!(
        c.sorted(),
        vec![(0, 1), (3, 1), (DIRECT_ACCOUNTS - 1, 3), (70_000, 2)]
    );
    let mut loaded = Counters::default();
    for (account, last) in c.sorted() {
        loaded.set(account, last);
    }
    assert_eq!((loaded.sorted(), loaded.len()), (c.sorted(), 4));
    assert_eq!(loaded.bump(3), 2, "a loaded counter continues");
}

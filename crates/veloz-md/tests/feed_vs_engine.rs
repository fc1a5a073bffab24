//! The feed against the engine over seeded random command streams of every type (limit and
//! market, GTC/IOC/FOK, post-only, each self-trade prevention mode, cancels and replaces of
//! live, dead and foreign orders, mass cancels, halts and kill switches), dense on purpose:
//! few accounts, a narrow price range, so orders cross, sweep levels and self-trade.
//!
//! After every command:
//! - the feed's L3 book of each instrument hashes like the engine's book (queue order and
//!   open quantities included), and its L2 view like the engine's depth;
//! - subscribers that joined from a snapshot at a random point and applied every message
//!   since hold the same books (L3 and L2);
//! - every channel's numbers are consecutive;
//! - the top of book is the engine's best bid and ask.
//!
//! Seeds are fixed: a failure names its seed and command, and reproduces.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use veloz_core::*;
use veloz_md::{
    engine_l2_hash, engine_l3_hash, Applied, Channel, FeedBuilder, MdMessage, Quote, Subscriber,
};

const SYMBOLS: [SymbolId; 2] = [3, 9];

fn instruments() -> Vec<Instrument> {
    SYMBOLS
        .iter()
        .map(|&id| Instrument {
            id,
            symbol: format!("S{id}"),
            price_scale: 2,
            tick_size: 5,
            lot_size: 10,
            min_qty: 10,
            max_qty: 500,
            price_band_bps: 500,
            reference_price: 1_000,
            market_protection_ticks: 3,
        })
        .collect()
}

/// A random command; `live` holds the ids and prices of orders accepted so far (some dead
/// by now).
fn command(rng: &mut Pcg64, live: &[(OrderId, Price)], n: u64) -> Command {
    let account = rng.random_range(1..=3);
    let symbol = SYMBOLS[rng.random_range(0..SYMBOLS.len())];
    let price = 1_000 + 5 * rng.random_range(-6..=6);
    let qty = 10 * rng.random_range(1..=8);
    let pick = |rng: &mut Pcg64| {
        if live.is_empty() || rng.random_bool(0.05) {
            (rng.random_range(1..1_000), price)
        } else {
            live[live.len() - 1 - rng.random_range(0..live.len().min(40))]
        }
    };
    match rng.random_range(0..100) {
        0..=54 => {
            let mut o = NewOrder::limit(
                account,
                symbol,
                n,
                Side::from_u8(rng.random_range(0..2)).unwrap(),
                price,
                qty,
            );
            if rng.random_bool(0.1) {
                o.kind = OrderKind::Market;
                o.price = 0;
                o.tif = TimeInForce::Ioc;
            } else {
                o.tif = TimeInForce::from_u8(rng.random_range(0..3).min(rng.random_range(0..3)))
                    .unwrap();
            }
            o.post_only =
                o.kind == OrderKind::Limit && o.tif == TimeInForce::Gtc && rng.random_bool(0.1);
            o.stp = SelfTradePrevention::from_u8(rng.random_range(0..4)).unwrap();
            Command::New(o)
        }
        55..=74 => Command::Cancel(CancelOrder {
            account,
            symbol,
            client_order_id: n,
            order_id: pick(rng).0,
        }),
        75..=94 => {
            let (order_id, at) = pick(rng);
            // Often the same price and a small quantity: a replace that keeps priority.
            let same = rng.random_bool(0.4);
            Command::Replace(ReplaceOrder {
                account,
                symbol,
                client_order_id: n,
                order_id,
                price: if same { at } else { price },
                qty: if same { 10 } else { qty },
            })
        }
        95..=98 => Command::MassCancel(MassCancel::requested(
            account,
            n,
            rng.random_bool(0.5).then_some(symbol),
        )),
        _ => Command::Admin(AdminCommand {
            request_id: n,
            // Halts and kill switches are mostly undone soon.
            action: match rng.random_range(0..6) {
                0 => AdminAction::HaltInstrument(symbol),
                1 => AdminAction::DisableAccount(account),
                2 | 3 => AdminAction::ResumeInstrument(symbol),
                _ => AdminAction::EnableAccount(account),
            },
        }),
    }
}

/// Check everything the module doc promises after command `seq` of `seed`.
fn check(seed: u64, seq: Seq, engine: &Engine, feed: &FeedBuilder, subs: &[Subscriber]) {
    for s in SYMBOLS {
        let book = feed.book(s).unwrap();
        assert_eq!(
            book.hash(),
            engine_l3_hash(engine, s),
            "seed {seed} command {seq}: L3 of {s}"
        );
        assert_eq!(
            book.l2_hash(),
            engine_l2_hash(engine, s),
            "seed {seed} command {seq}: L2 of {s}"
        );
        let quote = |side| {
            engine.best(s, side).map(|l| Quote {
                price: l.price,
                qty: l.qty,
            })
        };
        assert_eq!(
            feed.top(s).unwrap(),
            (quote(Side::Buy), quote(Side::Sell)),
            "seed {seed} command {seq}: top of {s}"
        );
    }
    for sub in subs {
        let want = match sub.channel() {
            Channel::L3 => engine_l3_hash(engine, sub.symbol()),
            _ => engine_l2_hash(engine, sub.symbol()),
        };
        assert_eq!(
            sub.hash(),
            want,
            "seed {seed} command {seq}: {:?} subscriber of {} since seq {}",
            sub.channel(),
            sub.symbol(),
            sub.seq()
        );
    }
}

fn run(seed: u64, commands: u64, restart_at: Option<Seq>, tally: &mut [u64; 8]) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut engine = Engine::new(0, &instruments());
    let mut feed = FeedBuilder::new(SYMBOLS);
    let mut live = Vec::new();
    let mut events = Vec::new();
    let mut msgs: Vec<MdMessage> = Vec::new();
    let mut last = std::collections::BTreeMap::new();
    let mut subs: Vec<Subscriber> = Vec::new();
    for seq in 1..=commands {
        if restart_at == Some(seq) {
            // An engine restart: a new feed session seeded from the recovered books, every
            // channel numbered from 1 again, subscribers start over from snapshots.
            feed = FeedBuilder::from_engine(&engine, SYMBOLS).unwrap();
            last.clear();
            subs.clear();
            check(seed, seq - 1, &engine, &feed, &subs);
        }
        let cmd = command(&mut rng, &live, seq);
        events.clear();
        msgs.clear();
        engine.apply(seq, seq * 1_000, &cmd, &mut events);
        feed.on_command(seq, seq * 1_000, &events, &mut msgs)
            .unwrap_or_else(|e| {
                panic!("seed {seed} command {seq} {cmd:?}: {e}\nevents {events:?}")
            });
        for e in &events {
            if let Event::Accepted {
                order_id, price, ..
            } = e
            {
                live.push((*order_id, *price));
            }
        }
        for m in &msgs {
            assert_eq!((m.cmd_seq, m.ts), (seq, seq * 1_000));
            let prev = last.insert((m.symbol, m.channel()), m.seq).unwrap_or(0);
            assert_eq!(
                m.seq,
                prev + 1,
                "seed {seed} command {seq}: {m:?} after {prev}"
            );
            tally[match m.body {
                veloz_md::MdBody::Trade { .. } => 0,
                veloz_md::MdBody::Add { .. } => 1,
                veloz_md::MdBody::Modify { .. } => 2,
                veloz_md::MdBody::Delete { .. } => 3,
                veloz_md::MdBody::Execute { .. } => 4,
                veloz_md::MdBody::Level { .. } => 5,
                veloz_md::MdBody::Top { .. } => 6,
            }] += 1;
            for sub in &mut subs {
                match sub.apply(m).unwrap() {
                    Applied::Applied(_) | Applied::Ignored => {}
                    other => panic!("seed {seed} command {seq}: {other:?} for {m:?}"),
                }
            }
        }
        // Now and then someone joins from a snapshot.
        if rng.random_bool(0.01) {
            let s = SYMBOLS[rng.random_range(0..SYMBOLS.len())];
            subs.push(Subscriber::l3(&feed.l3_snapshot(s).unwrap()).unwrap());
            subs.push(Subscriber::l2(&feed.l2_snapshot(s).unwrap()));
            tally[7] += 1;
        }
        check(seed, seq, &engine, &feed, &subs);
    }
}

#[test]
fn the_feed_and_its_subscribers_hold_the_engines_books_after_every_command() {
    let mut tally = [0u64; 8];
    for seed in 0..40 {
        run(0xFEED_0000 + seed, 2_000, None, &mut tally);
    }
    // Every kind of message and some subscribers were exercised.
    assert!(
        tally.iter().all(|&n| n >= 20),
        "coverage [trade, add, modify, delete, execute, level, top, joins]: {tally:?}"
    );
}

#[test]
fn a_feed_seeded_from_the_engine_mid_stream_holds_its_books_from_then_on() {
    let mut tally = [0u64; 8];
    for seed in 0..10 {
        run(0x5EED_0000 + seed, 2_000, Some(700 + seed * 50), &mut tally);
    }
    assert!(tally.iter().all(|&n| n >= 5), "coverage: {tally:?}");
}

#[test]
fn a_missed_message_is_a_gap_until_a_new_snapshot() {
    let mut rng = Pcg64::seed_from_u64(7);
    let mut engine = Engine::new(0, &instruments());
    let mut feed = FeedBuilder::new(SYMBOLS);
    let mut sub = Subscriber::l3(&feed.l3_snapshot(3).unwrap()).unwrap();
    let (mut events, mut msgs) = (Vec::new(), Vec::new());
    let mut live = Vec::new();
    let mut dropped = None;
    let mut gaps = 0;
    for seq in 1..=500 {
        let cmd = command(&mut rng, &live, seq);
        events.clear();
        msgs.clear();
        engine.apply(seq, seq, &cmd, &mut events);
        feed.on_command(seq, seq, &events, &mut msgs).unwrap();
        live.extend(events.iter().filter_map(|e| match e {
            Event::Accepted {
                order_id, price, ..
            } => Some((*order_id, *price)),
            _ => None,
        }));
        for m in &msgs {
            if m.symbol == 3 && m.channel() == Channel::L3 && dropped.is_none() && seq > 100 {
                dropped = Some(m.seq);
                continue;
            }
            match sub.apply(m).unwrap() {
                Applied::Gap { expected, got } => {
                    assert_eq!(expected, dropped.unwrap());
                    assert!(got > expected);
                    gaps += 1;
                }
                Applied::Applied(_) | Applied::Ignored => {}
                Applied::Stale => panic!("no duplicates were sent"),
            }
        }
        if sub.needs_snapshot() && seq == 300 {
            // Healing: a fresh snapshot, and messages it already holds are stale.
            let snap = feed.l3_snapshot(3).unwrap();
            sub = Subscriber::l3(&snap).unwrap();
            assert_eq!(sub.hash(), engine_l3_hash(&engine, 3));
            if let Some(m) = msgs
                .iter()
                .rev()
                .find(|m| m.symbol == 3 && m.channel() == Channel::L3)
            {
                assert_eq!(sub.apply(m).unwrap(), Applied::Stale);
            }
        }
    }
    assert!(gaps > 0, "the dropped message was noticed");
    assert!(!sub.needs_snapshot(), "healed by the snapshot");
    assert_eq!(sub.hash(), engine_l3_hash(&engine, 3));
}

#[test]
fn the_same_events_give_the_same_messages() {
    let run_once = || {
        let mut rng = Pcg64::seed_from_u64(99);
        let mut engine = Engine::new(0, &instruments());
        let mut feed = FeedBuilder::new(SYMBOLS);
        let (mut events, mut msgs) = (Vec::new(), Vec::new());
        let mut live = Vec::new();
        for seq in 1..=1_000 {
            let cmd = command(&mut rng, &live, seq);
            events.clear();
            engine.apply(seq, seq, &cmd, &mut events);
            feed.on_command(seq, seq, &events, &mut msgs).unwrap();
            live.extend(events.iter().filter_map(|e| match e {
                Event::Accepted {
                    order_id, price, ..
                } => Some((*order_id, *price)),
                _ => None,
            }));
        }
        msgs
    };
    let (a, b) = (run_once(), run_once());
    assert!(a.len() > 1_000, "{} messages", a.len());
    assert_eq!(a, b);
}

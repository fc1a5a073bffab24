//! The binary market-data feed end to end: `veloz serve` as a real process, orders over the
//! order-entry protocol, the feed read with `veloz_md`'s `FeedBooks` and with `veloz feed`.
//!
//! Holds `common::serial()` so busy-polling engines never run side by side.

mod common;

use std::time::{Duration, Instant};

use common::*;
use veloz_config::routing::Routing;
use veloz_core::*;
use veloz_load::client::Client;
use veloz_md::client::{FeedBooks, FeedClient};
use veloz_md::MdBody;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(10);

/// `price` in quote units, as `veloz feed` prints it.
fn units(price: Price, scale: u8) -> String {
    let p = 10i64.pow(u32::from(scale));
    format!("{}.{:0w$}", price / p, price % p, w = usize::from(scale))
}

#[test]
fn orders_show_in_the_snapshot_and_updates_and_in_veloz_feed() {
    let _serial = serial();
    let dir = TempDir::new("feed-binary");
    let engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    assert!(
        !engine.feed.is_empty(),
        "the engine printed no feed address"
    );
    let config = veloz_config::Config::default();
    let shards = veloz_config::preflight::online_cores().unwrap().len();
    let routing = Routing::from_config(&config, shards).unwrap();
    let inst = config.instruments()[0].clone();
    let shard = routing.shard_of(inst.id).unwrap();

    let mut books = FeedBooks::new(FeedClient::connect(&engine.feed, WAIT).unwrap());
    assert!(books.hello().by_name(&inst.symbol).is_some());
    books.subscribe(&[inst.symbol.as_str()], &[]).unwrap();
    books.sync(WAIT).unwrap();
    let seen_before = books.kept().count();
    assert_eq!(seen_before, 4, "one snapshot per channel");

    // Alice rests a sell and a buy; Bob takes part of the sell.
    let (tick, lot, px) = (
        inst.tick_size,
        inst.lot_size.max(inst.min_qty),
        inst.reference_price,
    );
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    let mut last_seq = 0;
    alice
        .send(&limit(inst.id, 1, Side::Sell, px, 5 * lot))
        .unwrap();
    let sell = alice.next_report(WAIT).unwrap();
    assert_eq!(sell.exec_type, ExecType::Accepted, "{sell:?}");
    alice
        .send(&limit(inst.id, 2, Side::Buy, px - tick, 3 * lot))
        .unwrap();
    let buy = alice.next_report(WAIT).unwrap();
    assert_eq!(buy.exec_type, ExecType::Accepted, "{buy:?}");
    bob.send(&limit(inst.id, 3, Side::Buy, px, 2 * lot))
        .unwrap();
    for _ in 0..2 {
        let r = bob.next_report(WAIT).unwrap();
        last_seq = last_seq.max(r.seq);
    }
    assert!(last_seq > 0);
    let fill = alice.next_report(WAIT).unwrap();
    assert_eq!(fill.exec_type, ExecType::PartiallyFilled, "{fill:?}");

    // Wait until the feed has published Bob's command.
    let began = Instant::now();
    loop {
        let marks = books.sync(WAIT).unwrap();
        if marks.watermarks.get(shard).is_some_and(|&w| w >= last_seq) {
            break;
        }
        assert!(
            began.elapsed() < WAIT,
            "the feed did not reach command {last_seq}: {marks:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(books.gaps(), 0);
    let l3 = books.l3(inst.id).unwrap().l3_book().unwrap();
    assert_eq!(l3.len(), 2, "the rest of the sell and the buy");
    assert_eq!(l3.order(sell.order_id), Some((Side::Sell, px, 3 * lot)));
    assert_eq!(
        l3.order(buy.order_id),
        Some((Side::Buy, px - tick, 3 * lot))
    );
    let (_, bid, ask) = books.top(inst.id).unwrap();
    assert_eq!((bid.unwrap().price, ask.unwrap().price), (px - tick, px));
    let trades = books.trades(inst.id);
    let MdBody::Trade {
        price,
        qty,
        aggressor,
        ..
    } = trades.last().expect("the trade").body
    else {
        panic!("not a trade")
    };
    assert_eq!((price, qty, aggressor), (px, 2 * lot, Side::Buy));
    let l2 = books.l2(inst.id).unwrap();
    assert_eq!(
        l2.hash(),
        l3.l2_hash(),
        "the L2 book agrees with the L3 book"
    );

    // `veloz feed` prints the snapshots, in quote units.
    let (code, out, err) = veloz(&[
        "feed",
        "--connect",
        &engine.feed,
        "--symbols",
        &inst.symbol,
        "--channels",
        "trades,l3,top",
        "--count",
        "3",
        "--books",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let p = units(px, inst.price_scale);
    assert!(out.starts_with("hello session "), "{out}");
    assert!(
        out.contains(&format!("{} trades snapshot", inst.symbol))
            && out.contains(&format!("@ {p} (aggressor buy)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} l3 snapshot", inst.symbol)),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} @ {p}", 3 * lot))
            && out.contains(&format!("book {}:", inst.symbol)),
        "{out}"
    );
    assert!(
        out.contains(&format!("l3_hash {:016x}", l3.hash())),
        "{out}"
    );

    // Record, then print the recording: the same lines.
    let rec = dir.path().join("feed.rec");
    let rec = rec.to_str().unwrap();
    let (code, _, err) = veloz(&[
        "feed",
        "--connect",
        &engine.feed,
        "--channels",
        "l2",
        "--count",
        "2",
        "--record",
        rec,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("recorded "), "{err}");
    let (code, out, err) = veloz(&["feed", "--read", rec]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("l2 snapshot")).count(),
        2,
        "{out}"
    );

    // An update while `veloz feed` follows: printed with its sequence number.
    let follower = std::process::Command::new(veloz_bin())
        .args([
            "feed",
            "--connect",
            &engine.feed,
            "--symbols",
            &inst.symbol,
            "--channels",
            "l3",
            "--count",
            "2",
            "--duration",
            "10",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to subscribe (a late subscription would see the order in its snapshot
    // instead, and stop at --duration without the update).
    std::thread::sleep(Duration::from_millis(500));
    alice
        .send(&limit(inst.id, 4, Side::Buy, px - 2 * tick, lot))
        .unwrap();
    let added = alice.next_report(WAIT).unwrap();
    assert_eq!(added.exec_type, ExecType::Accepted, "{added:?}");
    let out = follower.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "l3 #4 cmd {} add order {}",
            added.seq, added.order_id
        )),
        "{text}"
    );

    // A connection that fails: non-zero, with the address.
    let (code, _, err) = veloz(&["feed", "--connect", "127.0.0.1:1", "--connect-timeout", "1"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("127.0.0.1:1"), "{err}");
    engine.stop();
}

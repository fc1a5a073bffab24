//! [`BinaryServer`] over real loopback sockets with `veloz_md`'s [`FeedClient`]: a driver
//! thread owns the [`FeedState`] (fed by a core `Engine`) and the server, and polls it; the
//! test thread sends it orders and talks to it as subscribers do.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use veloz_config::FeedConfig;
use veloz_core::Side;
use veloz_md::client::{ClientError, FeedBooks, FeedClient};
use veloz_md::wire::{decode_server, FrameReader, ServerMsg, Snapshot};
use veloz_md::{engine_l2_hash, engine_l3_hash, Channel, MdBody};

use super::*;
use crate::feed::test_driver::{Driver, AAPL, MSFT};
use crate::feed::unix_now_ns;

const T: Duration = Duration::from_secs(10);

/// The driver of a [`BinaryServer`] and the server's address.
struct Harness {
    driver: Driver<BinaryServer>,
    addr: String,
}

impl Harness {
    fn start(config: FeedConfig) -> Harness {
        let server = BinaryServer::bind("127.0.0.1:0", &config).unwrap();
        let addr = server.local_addr().to_string();
        Harness {
            driver: Driver::start(server, Duration::from_micros(100)),
            addr,
        }
    }

    fn connect(&self) -> FeedClient {
        FeedClient::connect(&self.addr, T).unwrap()
    }
}

impl std::ops::Deref for Harness {
    type Target = Driver<BinaryServer>;
    fn deref(&self) -> &Driver<BinaryServer> {
        &self.driver
    }
}

/// The next message other than a heartbeat.
fn next(c: &mut FeedClient) -> ServerMsg {
    loop {
        match c.next(T).unwrap() {
            Some(ServerMsg::Heartbeat(_)) => {}
            Some(m) => return m,
            None => panic!("nothing within {T:?}"),
        }
    }
}

fn config() -> FeedConfig {
    FeedConfig {
        heartbeat_ms: 60_000,
        ..FeedConfig::default()
    }
}

#[test]
fn subscribe_gives_snapshots_then_gap_free_updates_and_books_equal_the_engines() {
    let h = Harness::start(config());
    // Resting orders before the subscription: in the snapshots.
    h.order(Side::Buy, AAPL, 10_000, 5);
    h.order(Side::Sell, AAPL, 10_100, 7);
    let mut c = h.connect();
    assert_eq!(c.hello().session, 42);
    assert_eq!(c.hello().symbols.len(), 2);
    assert_eq!(c.hello().by_name("AAPL").unwrap().price_scale, 2);
    c.subscribe(&["AAPL"], &[]).unwrap();
    let mut last = [0u64; 4];
    for want in Channel::ALL {
        let ServerMsg::Snapshot(s) = next(&mut c) else {
            panic!("expected a snapshot")
        };
        assert_eq!(s.session, 42);
        assert_eq!(s.cmd_seq, Some(2));
        assert_eq!(s.snapshot.channel(), want);
        assert_eq!(s.snapshot.symbol(), AAPL);
        last[want as usize] = s.snapshot.seq();
        if let Snapshot::L3(b) = &s.snapshot {
            assert_eq!(b.bids[0].orders, vec![(1, 5)]);
            assert_eq!(b.asks[0].price, 10_100);
        }
    }
    // A trade, a new resting order, and one on another instrument (not subscribed).
    h.order(Side::Buy, AAPL, 10_100, 3);
    h.order(Side::Buy, MSFT, 500, 1);
    h.order(Side::Sell, AAPL, 10_200, 1);
    c.ping(9).unwrap();
    let mut trades = 0;
    loop {
        match next(&mut c) {
            ServerMsg::Update(m) => {
                assert_eq!(m.symbol, AAPL);
                let ch = m.channel() as usize;
                assert_eq!(m.seq, last[ch] + 1, "{m:?}");
                last[ch] = m.seq;
                if let MdBody::Trade { price, qty, .. } = m.body {
                    assert_eq!((price, qty), (10_100, 3));
                    trades += 1;
                }
            }
            ServerMsg::Pong { id, marks } => {
                assert_eq!(id, 9);
                assert_eq!(marks.watermarks, vec![5]);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(trades, 1);

    // FeedBooks on a second connection: its books are the engine's.
    let mut books = FeedBooks::new(h.connect());
    books.subscribe::<&str>(&[], &[]).unwrap();
    h.order(Side::Sell, MSFT, 500, 1);
    h.order(Side::Buy, AAPL, 10_050, 2);
    books.sync(T).unwrap();
    let (l3, l2) = h.with(|w| {
        (
            [
                engine_l3_hash(&w.engine, AAPL),
                engine_l3_hash(&w.engine, MSFT),
            ],
            [
                engine_l2_hash(&w.engine, AAPL),
                engine_l2_hash(&w.engine, MSFT),
            ],
        )
    });
    for (i, sym) in [AAPL, MSFT].into_iter().enumerate() {
        assert_eq!(books.l3(sym).unwrap().hash(), l3[i]);
        assert_eq!(books.l2(sym).unwrap().hash(), l2[i]);
    }
    let (_, bid, ask) = books.top(AAPL).unwrap();
    assert_eq!(bid.unwrap().price, 10_050);
    assert_eq!(ask.unwrap().price, 10_100);
    assert_eq!(books.trades(MSFT).len(), 1);
    assert_eq!(books.gaps(), 0);
    let s = h.stats();
    assert_eq!(
        (s.accepted, s.connections, s.cut_off, s.refused),
        (2, 2, 0, 0)
    );
}

#[test]
fn snapshot_request_ping_refusals_and_unsubscribe() {
    let h = Harness::start(config());
    let mut c = h.connect();
    c.subscribe(&["AAPL"], &[Channel::L2]).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Snapshot(_)));
    h.order(Side::Buy, AAPL, 10_000, 5);
    h.order(Side::Buy, AAPL, 10_000, 5);
    c.request_snapshot("AAPL", Channel::L2).unwrap();
    let mut seqs = Vec::new();
    let snap = loop {
        match next(&mut c) {
            ServerMsg::Update(m) => seqs.push(m.seq),
            ServerMsg::Snapshot(s) => break s,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(
        snap.snapshot.seq(),
        2,
        "the snapshot includes every update before it"
    );
    let Snapshot::L2(b) = snap.snapshot else {
        panic!("an L2 snapshot")
    };
    assert_eq!((b.bids[0].qty, b.bids[0].orders), (10, 2));

    // Unknown names are refused; the connection stays.
    c.subscribe(&["NOPE"], &[]).unwrap();
    match next(&mut c) {
        ServerMsg::Refused(why) => assert!(why.contains("\"NOPE\""), "{why}"),
        other => panic!("unexpected {other:?}"),
    }
    c.request_snapshot("ZZZ", Channel::L3).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Refused(_)));

    // Unsubscribed: no more updates; the pong comes straight after.
    c.unsubscribe(&["AAPL"], &[]).unwrap();
    c.ping(0).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Pong { id: 0, .. }));
    h.order(Side::Buy, AAPL, 10_000, 5);
    c.ping(1).unwrap();
    match next(&mut c) {
        ServerMsg::Pong { id, marks } => {
            assert_eq!(id, 1);
            assert_eq!(marks.watermarks, vec![3]);
            assert_eq!(marks.session, 42);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_slow_consumer_is_cut_off_while_another_subscriber_gets_everything() {
    let h = Harness::start(FeedConfig {
        outbound_limit_bytes: 64 << 10,
        ..config()
    });
    let mut books = FeedBooks::new(h.connect());
    books.subscribe(&["AAPL"], &[]).unwrap();
    books.sync(T).unwrap();
    // The slow one subscribes and never reads.
    let mut slow = TcpStream::connect(&h.addr).unwrap();
    let mut enc = veloz_md::wire::MdEncoder::new();
    slow.write_all(enc.subscribe(&["AAPL"], &[])).unwrap();
    let began = Instant::now();
    let mut n = 0u64;
    while h.stats().cut_off == 0 {
        assert!(began.elapsed() < Duration::from_secs(60), "never cut off");
        h.with(move |w| {
            for i in 0..200 {
                w.order(Side::Buy, AAPL, 1_000 + ((n + i) % 100) as i64, 1);
            }
        });
        n += 200;
        books.sync(T).unwrap();
    }
    let s = h.stats();
    assert_eq!((s.cut_off, s.connections), (1, 2));
    // The good subscriber has it all, without a gap.
    h.order(Side::Sell, AAPL, 1_000, 3);
    books.sync(T).unwrap();
    let (l3, l2) = h.with(|w| {
        (
            engine_l3_hash(&w.engine, AAPL),
            engine_l2_hash(&w.engine, AAPL),
        )
    });
    assert_eq!(books.l3(AAPL).unwrap().hash(), l3);
    assert_eq!(books.l2(AAPL).unwrap().hash(), l2);
    assert_eq!(books.gaps(), 0);
    // The slow one reads whole frames, then the Goodbye, then the end.
    slow.set_read_timeout(Some(T)).unwrap();
    let mut reader = FrameReader::new(64 << 20);
    let mut last = None;
    'read: loop {
        match reader.read_from(&mut slow) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        while let Some(f) = reader.next_frame().unwrap() {
            let m = decode_server(f).unwrap();
            let bye = matches!(m, ServerMsg::Goodbye(_));
            last = Some(m);
            if bye {
                break 'read;
            }
        }
    }
    match last {
        Some(ServerMsg::Goodbye(why)) => assert!(why.starts_with("slow consumer: "), "{why}"),
        other => panic!("expected the goodbye last, got {other:?}"),
    }
    // It is gone; the good one stays.
    let began = Instant::now();
    while h.stats().connections != 1 {
        assert!(began.elapsed() < T, "the slow connection was not closed");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn shard_down_says_goodbye_and_later_subscriptions_are_refused() {
    let h = Harness::start(config());
    let mut c = h.connect();
    let mut idle = h.connect();
    c.subscribe(&["MSFT"], &[Channel::Top]).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Snapshot(_)));
    c.ping(1).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Pong { .. }));
    h.with(|w| {
        w.state
            .set_down(0, "shard 0: market data stopped: test".into());
        w.server.shard_down(&w.state, 0);
    });
    match next(&mut c) {
        ServerMsg::Goodbye(why) => assert_eq!(why, "shard 0: market data stopped: test"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(c.next(T), Err(ClientError::Closed { .. })));
    // The connection without subscriptions stays, and is refused what is down.
    idle.subscribe(&["AAPL"], &[Channel::L3]).unwrap();
    match next(&mut idle) {
        ServerMsg::Refused(why) => assert!(why.contains("market data stopped"), "{why}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Read `raw` until a Goodbye or the end; every message but Hello and heartbeats.
fn read_all(raw: &mut TcpStream) -> Vec<ServerMsg> {
    raw.set_read_timeout(Some(T)).unwrap();
    let mut reader = FrameReader::new(64 << 20);
    let mut got = Vec::new();
    loop {
        match reader.read_from(raw) {
            Ok(0) | Err(_) => return got,
            Ok(_) => {}
        }
        while let Some(f) = reader.next_frame().unwrap() {
            match decode_server(f).unwrap() {
                ServerMsg::Hello(_) | ServerMsg::Heartbeat(_) => {}
                m => {
                    let bye = matches!(m, ServerMsg::Goodbye(_));
                    got.push(m);
                    if bye {
                        return got;
                    }
                }
            }
        }
    }
}

#[test]
fn bad_input_is_refused_then_closed() {
    let h = Harness::start(config());
    // Garbage frames: refused, three in a row close the connection.
    let mut raw = TcpStream::connect(&h.addr).unwrap();
    for _ in 0..3 {
        raw.write_all(&[4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef])
            .unwrap();
    }
    let got = read_all(&mut raw);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[0], ServerMsg::Refused(r) if r.starts_with("malformed request")));
    assert!(matches!(&got[1], ServerMsg::Refused(_)));
    assert!(
        matches!(&got[2], ServerMsg::Goodbye(r) if r.contains("malformed requests in a row")),
        "{got:?}"
    );
    // A frame over the request limit ends the connection at once.
    let mut big = TcpStream::connect(&h.addr).unwrap();
    big.write_all(&u32::MAX.to_le_bytes()).unwrap();
    let got = read_all(&mut big);
    assert!(
        matches!(got.as_slice(), [ServerMsg::Goodbye(r)] if r.contains("exceeds the limit")),
        "{got:?}"
    );
    assert_eq!(h.stats().refused, 2);
    // A client message a server never sends (a Pong) is refused too, and the stream goes on.
    let mut c = h.connect();
    let mut enc = veloz_md::wire::MdEncoder::new();
    let frame = enc.goodbye("bye").to_vec();
    let mut raw = TcpStream::connect(&h.addr).unwrap();
    raw.write_all(&frame).unwrap();
    raw.write_all(enc.ping(5)).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let got = read_all(&mut raw);
    assert!(
        matches!(&got[0], ServerMsg::Refused(r) if r.contains("Goodbye")),
        "{got:?}"
    );
    assert!(matches!(&got[1], ServerMsg::Pong { id: 5, .. }), "{got:?}");
    c.ping(2).unwrap();
    assert!(matches!(next(&mut c), ServerMsg::Pong { id: 2, .. }));
}

#[test]
fn heartbeats_limits_and_shutdown() {
    let h = Harness::start(FeedConfig {
        max_subscribers: 1,
        heartbeat_ms: 20,
        ..FeedConfig::default()
    });
    let mut c = h.connect();
    // Idle: heartbeats with the watermarks.
    match c.next(T).unwrap() {
        Some(ServerMsg::Heartbeat(w)) => assert_eq!((w.session, w.watermarks), (42, vec![0])),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    // A second connection is one too many.
    match FeedClient::connect(&h.addr, T) {
        Err(ClientError::Goodbye { reason, .. }) => {
            assert!(reason.contains("too many subscribers"), "{reason}")
        }
        other => panic!("expected a goodbye, got {other:?}"),
    }
    assert_eq!(h.stats().refused, 1);
    // Shutdown: everyone hears why.
    h.with(|w| w.server.close(unix_now_ns()));
    loop {
        match c.next(T) {
            Ok(Some(ServerMsg::Goodbye(why))) => {
                assert_eq!(why, "engine shutting down");
                break;
            }
            Ok(Some(_)) => {}
            other => panic!("expected the goodbye, got {other:?}"),
        }
    }
    assert!(matches!(c.next(T), Err(ClientError::Closed { .. })));
    assert!(h.with(|w| w.server.is_flushed()));
}

//! [`WsServer`] over real loopback sockets with a tungstenite client: a driver thread owns
//! the [`FeedState`] (fed by a core `Engine`) and the server, and polls it; the test thread
//! sends it orders and talks to it as clients do.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use veloz_config::FeedConfig;
use veloz_core::Side;
use veloz_md::{FeedBuilder, MdBody, MdMessage};

use super::*;
use crate::feed::test_driver::{Driver, AAPL, MSFT};
use crate::feed::unix_now_ns;

/// The driver of a [`WsServer`] and the server's address.
struct Harness {
    driver: Driver<WsServer>,
    addr: std::net::SocketAddr,
}

impl Harness {
    fn start(config: FeedConfig) -> Harness {
        let server = WsServer::bind("127.0.0.1:0", &config).unwrap();
        let addr = server.local_addr();
        Harness {
            driver: Driver::start(server, Duration::from_micros(200)),
            addr,
        }
    }
}

impl std::ops::Deref for Harness {
    type Target = Driver<WsServer>;
    fn deref(&self) -> &Driver<WsServer> {
        &self.driver
    }
}

/// A test client: the socket and the messages of frames read but not yet looked at.
struct Client {
    ws: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    queue: std::collections::VecDeque<Value>,
}

impl std::ops::Deref for Client {
    type Target = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;
    fn deref(&self) -> &Self::Target {
        &self.ws
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ws
    }
}

fn connect(h: &Harness) -> Client {
    let (mut ws, _) = tungstenite::connect(format!("ws://{}/ws", h.addr)).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_mut() {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    Client {
        ws,
        queue: Default::default(),
    }
}

fn send(ws: &mut Client, v: Value) {
    ws.send(tungstenite::Message::text(v.to_string())).unwrap();
}

/// The next frame's messages (each frame is a JSON array), or `None` within `wait`.
fn frame(ws: &mut Client, wait: Duration) -> Option<Vec<Value>> {
    if !ws.queue.is_empty() {
        return Some(ws.queue.drain(..).collect());
    }
    let end = Instant::now() + wait;
    while Instant::now() < end {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                return Some(v.as_array().expect("every frame is an array").clone());
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    None
}

/// Messages until (and with) the first for which `stop` holds; panics after 5 s.
fn until(ws: &mut Client, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Some(msgs) = frame(ws, Duration::from_millis(200)) {
            let mut msgs = msgs.into_iter();
            while let Some(m) = msgs.next() {
                let done = stop(&m);
                got.push(m);
                if done {
                    ws.queue.extend(msgs);
                    return got;
                }
            }
        }
    }
    panic!("not seen within 5 s; got {got:?}");
}

fn is(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == kind
}

fn hello(ws: &mut Client) -> Value {
    let got = until(ws, is("hello"));
    assert_eq!(got.len(), 1, "hello comes first: {got:?}");
    got[0].clone()
}

#[test]
fn hello_then_subscribe_gives_a_snapshot_then_every_update_in_sequence() {
    let h = Harness::start(FeedConfig::default());
    h.order(Side::Buy, AAPL, 10025, 300);
    let mut ws = connect(&h);
    let hi = hello(&mut ws);
    assert_eq!(hi["session"], "42");
    assert_eq!(
        hi["symbols"],
        json!([{"symbol":"AAPL","id":1,"price_scale":2},{"symbol":"MSFT","id":2,"price_scale":2}])
    );
    for ch in ["l2", "l3", "trades", "ticker"] {
        send(
            &mut ws,
            json!({"op":"subscribe","channel":ch,"symbols":["AAPL"]}),
        );
    }
    let snaps: Vec<Value> = (0..4)
        .map(|_| until(&mut ws, is("snapshot")).pop().unwrap())
        .collect();
    let l2 = snaps.iter().find(|s| s["channel"] == "l2").unwrap();
    assert_eq!(l2["symbol"], "AAPL");
    assert_eq!(l2["session"], "42");
    assert_eq!(l2["seq"], 1);
    assert_eq!(l2["bids"], json!([["100.25", 300, 1]]));
    assert_eq!(l2["asks"], json!([]));
    let l3 = snaps.iter().find(|s| s["channel"] == "l3").unwrap();
    assert_eq!(l3["seq"], 1);
    assert_eq!(l3["bids"][0][0], "100.25");
    assert_eq!(l3["bids"][0][1][0][1], 300);
    let ticker = snaps.iter().find(|s| s["channel"] == "ticker").unwrap();
    assert_eq!(ticker["bid"], json!({"price":"100.25","qty":300}));
    assert_eq!(ticker["ask"], Value::Null);
    let trades = snaps.iter().find(|s| s["channel"] == "trades").unwrap();
    assert_eq!(trades["seq"], 0);
    assert_eq!(trades["trades"], json!([]));

    // An ask, a crossing buy (a trade), an order in another instrument (not subscribed).
    h.order(Side::Sell, AAPL, 10100, 100);
    h.order(Side::Buy, MSFT, 5000, 10);
    h.order(Side::Buy, AAPL, 10100, 40);
    let got = until(&mut ws, |m| m["type"] == "trade");
    let got: Vec<Value> = got
        .into_iter()
        .chain(until(&mut ws, |m| {
            m["type"] == "ticker" && m["ask"]["qty"] == 60
        }))
        .collect();
    assert!(got.iter().all(|m| m["symbol"] == "AAPL"), "{got:?}");
    let trade = got.iter().find(|m| m["type"] == "trade").unwrap();
    assert_eq!(trade["channel"], "trades");
    assert_eq!(trade["seq"], 1);
    assert_eq!(trade["price"], "101.00");
    assert_eq!(trade["qty"], 40);
    assert_eq!(trade["aggressor"], "buy");
    assert_eq!(trade["cmd_seq"], 4);
    assert_eq!(trade["ts"], "1700000000000000004");
    let exec = got.iter().find(|m| m["type"] == "execute").unwrap();
    assert_eq!(exec["leaves"], 60);
    assert_eq!(exec["side"], "sell");
    // Per channel, the numbers follow the snapshots' with no gap.
    for (ch, first) in [("l2", 2), ("l3", 2), ("ticker", 2)] {
        let seqs: Vec<u64> = got
            .iter()
            .filter(|m| m["channel"] == ch)
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert!(!seqs.is_empty(), "{ch}: {got:?}");
        let want: Vec<u64> = (first..first + seqs.len() as u64).collect();
        assert_eq!(seqs, want, "{ch}");
    }
    let level = got.iter().rfind(|m| m["type"] == "level").unwrap();
    assert_eq!(
        (
            &level["side"],
            &level["price"],
            &level["qty"],
            &level["orders"]
        ),
        (&json!("sell"), &json!("101.00"), &json!(60), &json!(1))
    );

    // A snapshot on request: the book now, at the last number sent.
    send(
        &mut ws,
        json!({"op":"snapshot","channel":"l2","symbol":"AAPL"}),
    );
    let snap = until(&mut ws, is("snapshot")).pop().unwrap();
    let last_l2 = got
        .iter()
        .filter(|m| m["channel"] == "l2")
        .map(|m| m["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(snap["seq"], last_l2);
    assert_eq!(snap["bids"], json!([["100.25", 300, 1]]));
    assert_eq!(snap["asks"], json!([["101.00", 60, 1]]));
    // The trades snapshot carries the recent trades.
    send(
        &mut ws,
        json!({"op":"snapshot","channel":"trades","symbol":"AAPL"}),
    );
    let snap = until(&mut ws, is("snapshot")).pop().unwrap();
    assert_eq!(snap["seq"], 1);
    assert_eq!(snap["trades"][0]["price"], "101.00");
    assert_eq!(snap["trades"][0]["seq"], 1);

    // Unsubscribe: acknowledged, then nothing more of that channel.
    send(
        &mut ws,
        json!({"op":"unsubscribe","channel":"l3","symbols":["AAPL"]}),
    );
    let ack = until(&mut ws, is("unsubscribed")).pop().unwrap();
    assert_eq!(
        (&ack["channel"], &ack["symbol"]),
        (&json!("l3"), &json!("AAPL"))
    );
    h.order(Side::Buy, AAPL, 10000, 5);
    let got = until(&mut ws, is("level"));
    assert!(got.iter().all(|m| m["channel"] != "l3"), "{got:?}");
}

#[test]
fn updates_of_one_command_arrive_in_one_frame() {
    let h = Harness::start(FeedConfig::default());
    let mut ws = connect(&h);
    hello(&mut ws);
    send(&mut ws, json!({"op":"subscribe","channel":"l3"}));
    send(&mut ws, json!({"op":"subscribe","channel":"l2"}));
    until(&mut ws, |m| m["channel"] == "l2" && m["symbol"] == "MSFT");
    h.order(Side::Buy, MSFT, 5000, 10);
    let f = frame(&mut ws, Duration::from_secs(5)).unwrap();
    let kinds: Vec<&str> = f.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["add", "level"]);
    assert_eq!(f[0]["order_id"], "1");
    assert_eq!(f[0]["price"], "50.00");
}

#[test]
fn bad_requests_get_an_error_and_the_connection_stays() {
    let h = Harness::start(FeedConfig::default());
    let mut ws = connect(&h);
    hello(&mut ws);
    for bad in [
        "not json".to_string(),
        json!({"op":"fly"}).to_string(),
        json!({"op":"subscribe","channel":"l9"}).to_string(),
        json!({"op":"subscribe","channel":"l2","symbols":["NOPE"]}).to_string(),
        json!({"op":"snapshot","channel":"l2","symbol":"NOPE"}).to_string(),
        "[1,2,3]".to_string(),
        "\u{0}\u{1}".to_string(),
    ] {
        ws.send(tungstenite::Message::text(bad.clone())).unwrap();
        let err = until(&mut ws, is("error")).pop().unwrap();
        assert!(err["reason"].as_str().unwrap().len() > 5, "{bad}: {err}");
    }
    ws.send(tungstenite::Message::binary(vec![1u8, 2, 3]))
        .unwrap();
    until(&mut ws, is("error"));
    send(&mut ws, json!({"op":"ping","id":7}));
    let pong = until(&mut ws, is("pong")).pop().unwrap();
    assert_eq!(pong["id"], 7);
    assert_eq!(pong["watermarks"], json!([0]));
    assert_eq!(h.stats().refused, 0);
}

#[test]
fn the_page_is_served_and_other_paths_are_not() {
    let h = Harness::start(FeedConfig::default());
    let get = |path: &str| {
        let mut s = TcpStream::connect(h.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    for path in ["/", "/index.html", "/?x=1"] {
        let page = get(path);
        assert!(
            page.starts_with("HTTP/1.1 200 OK\r\n"),
            "{path}: {page:.200}"
        );
        assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
        let body = &page[page.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(body, PAGE);
    }
    assert!(get("/nope").starts_with("HTTP/1.1 404 Not Found\r\n"));
    assert!(get("/ws").starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    // A client that sends half a head and goes away costs nothing.
    let mut s = TcpStream::connect(h.addr).unwrap();
    s.write_all(b"GET / HT").unwrap();
    drop(s);
    assert!(get("/").starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn heartbeats_after_silence() {
    let h = Harness::start(FeedConfig {
        heartbeat_ms: 50,
        ..FeedConfig::default()
    });
    let mut ws = connect(&h);
    hello(&mut ws);
    let t = Instant::now();
    let hb = until(&mut ws, is("heartbeat")).pop().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(hb["session"], "42");
    assert_eq!(hb["watermarks"], json!([0]));
}

#[test]
fn over_max_subscribers_is_closed_with_1013() {
    let h = Harness::start(FeedConfig {
        max_subscribers: 1,
        ..FeedConfig::default()
    });
    let mut first = connect(&h);
    hello(&mut first);
    let mut second = connect(&h);
    let end = Instant::now() + Duration::from_secs(5);
    let code = loop {
        assert!(Instant::now() < end, "no close frame");
        match second.read() {
            Ok(tungstenite::Message::Close(Some(f))) => break u16::from(f.code),
            Ok(m) => panic!("the second subscriber got {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, 1013);
    assert_eq!(h.stats().refused, 1);
    send(&mut first, json!({"op":"ping","id":"still here"}));
    until(&mut first, is("pong"));
}

#[test]
fn a_subscriber_that_never_reads_is_cut_off_and_another_gets_everything() {
    let limit = 64 << 10;
    let h = Harness::start(FeedConfig {
        outbound_limit_bytes: limit,
        ..FeedConfig::default()
    });
    // The sleeper: small socket buffers, subscribed, never reads again.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&h.addr.into()).unwrap();
    let (mut sleeper, _) =
        tungstenite::client(format!("ws://{}/ws", h.addr), TcpStream::from(sock)).unwrap();
    sleeper
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    sleeper
        .send(tungstenite::Message::text(
            json!({"op":"subscribe","channel":"l2"}).to_string(),
        ))
        .unwrap();
    // The reader: takes everything on its own thread.
    let mut reader = connect(&h);
    hello(&mut reader);
    send(
        &mut reader,
        json!({"op":"subscribe","channel":"l2","symbols":["AAPL"]}),
    );
    let snap = until(&mut reader, |m| m["type"] == "snapshot")
        .pop()
        .unwrap();
    assert_eq!(snap["seq"], 0);
    const N: u64 = 60_000;
    let got = std::thread::spawn(move || {
        let mut next = 1;
        let end = Instant::now() + Duration::from_secs(60);
        while next <= N && Instant::now() < end {
            if let Some(msgs) = frame(&mut reader, Duration::from_millis(200)) {
                for m in msgs {
                    assert_eq!(m["seq"], next, "the reader's numbers have no gap");
                    next += 1;
                }
            }
        }
        next - 1
    });
    // Synthetic level updates of AAPL (the server only forwards them), in batches.
    // 200 messages (about 20 KB) at a time: well inside the limit for a reader.
    for chunk in 0..N / 200 {
        h.with(move |w| {
            let msgs: Vec<MdMessage> = (1..=200)
                .map(|i| MdMessage {
                    symbol: AAPL,
                    seq: chunk * 200 + i,
                    cmd_seq: chunk * 200 + i,
                    ts: 1,
                    body: MdBody::Level {
                        side: Side::Buy,
                        price: 10_000 + i as i64,
                        qty: 100,
                        orders: 1,
                    },
                })
                .collect();
            w.server.publish(&w.state, &msgs);
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got.join().unwrap(), N, "the reader got every update");
    let stats = h.stats();
    assert_eq!(stats.cut_off, 1, "{stats:?}");
    // The sleeper's connection ends: what it can still read finishes with a close (1008)
    // or a reset, never more updates than fit before the cut.
    sleeper
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "the sleeper's connection did not end");
        match sleeper.read() {
            Ok(tungstenite::Message::Close(f)) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

#[test]
fn a_subscription_before_the_feed_starts_gets_its_snapshot_when_it_does() {
    let h = Harness::start(FeedConfig::default());
    h.with(|w| {
        let fresh = FeedState::new(42, w.state.symbols().to_vec(), 1, 5);
        w.state = fresh;
    });
    let mut ws = connect(&h);
    hello(&mut ws);
    send(
        &mut ws,
        json!({"op":"subscribe","channel":"l2","symbols":["AAPL"]}),
    );
    let err = until(&mut ws, is("error")).pop().unwrap();
    assert!(
        err["reason"].as_str().unwrap().contains("not started"),
        "{err}"
    );
    h.with(|w| w.state.seed(0, FeedBuilder::new([AAPL, MSFT])));
    let snap = until(&mut ws, is("snapshot")).pop().unwrap();
    assert_eq!(snap["seq"], 0);
    h.order(Side::Sell, AAPL, 10100, 100);
    let lvl = until(&mut ws, is("level")).pop().unwrap();
    assert_eq!(lvl["seq"], 1);
}

#[test]
fn shutdown_says_goodbye_with_1001() {
    let h = Harness::start(FeedConfig::default());
    let mut ws = connect(&h);
    hello(&mut ws);
    h.with(|w| w.server.close(unix_now_ns()));
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < end, "no close frame");
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1001);
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(h.with(|w| {
        let end = Instant::now() + Duration::from_secs(2);
        while !w.server.is_flushed() && Instant::now() < end {
            w.server.poll(&w.state, unix_now_ns());
        }
        w.server.is_flushed()
    }));
}

#[test]
fn a_client_that_vanishes_is_forgotten_without_counting_it_refused() {
    let h = Harness::start(FeedConfig::default());
    let mut ws = connect(&h);
    hello(&mut ws);
    send(&mut ws, json!({"op":"subscribe","channel":"l2"}));
    until(&mut ws, is("snapshot"));
    drop(ws);
    let end = Instant::now() + Duration::from_secs(5);
    while h.stats().connections > 0 {
        assert!(Instant::now() < end, "{:?}", h.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    h.order(Side::Buy, AAPL, 10000, 1);
    let stats = h.stats();
    assert_eq!((stats.refused, stats.cut_off, stats.accepted), (0, 0, 1));
}

#[test]
fn an_address_in_use_is_an_addr_in_use_error_naming_it() {
    let first = WsServer::bind("127.0.0.1:0", &FeedConfig::default()).unwrap();
    let addr = first.local_addr().to_string();
    let e = WsServer::bind(&addr, &FeedConfig::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert!(e.to_string().contains(&addr), "{e}");
    let e = WsServer::bind("nonsense", &FeedConfig::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

//! The client against a hand-driven server on a local TcpListener.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use veloz_core::Side;

use super::*;
use crate::book::{L2Level, L2Snapshot};
use crate::wire::{decode_client, ClientMsg, FrameReader, SnapshotMsg, SymbolDef};

const T: Duration = Duration::from_secs(5);

/// The server's side of one connection.
struct Peer {
    stream: TcpStream,
    reader: FrameReader,
    enc: MdEncoder,
}

impl Peer {
    fn send(&mut self, msg: &ServerMsg) {
        self.stream.write_all(self.enc.server(msg)).unwrap();
    }

    fn recv(&mut self) -> ClientMsg {
        loop {
            if let Some(f) = self.reader.next_frame().unwrap() {
                return decode_client(f).unwrap();
            }
            let n = self.reader.read_from(&mut self.stream).unwrap();
            assert!(n > 0, "client closed");
        }
    }
}

fn hello() -> Hello {
    Hello {
        session: 77,
        heartbeat_ms: 1000,
        symbols: vec![SymbolDef {
            id: 1,
            name: "AAPL".into(),
            price_scale: 2,
        }],
    }
}

fn l2(seq: u64, bid_qty: u64) -> ServerMsg {
    ServerMsg::Snapshot(SnapshotMsg {
        session: 77,
        cmd_seq: Some(seq),
        snapshot: Snapshot::L2(L2Snapshot {
            symbol: 1,
            seq,
            bids: vec![L2Level {
                price: 100,
                qty: bid_qty,
                orders: 1,
            }],
            asks: vec![],
        }),
    })
}

fn level(seq: u64, price: i64, qty: u64) -> ServerMsg {
    ServerMsg::Update(MdMessage {
        symbol: 1,
        seq,
        cmd_seq: seq,
        ts: 0,
        body: MdBody::Level {
            side: Side::Buy,
            price,
            qty,
            orders: u32::from(qty > 0),
        },
    })
}

fn serve(f: impl FnOnce(&mut Peer) + Send + 'static) -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (stream, _) = l.accept().unwrap();
        let mut p = Peer {
            stream,
            reader: FrameReader::new(1 << 16),
            enc: MdEncoder::new(),
        };
        p.send(&ServerMsg::Hello(hello()));
        f(&mut p);
    });
    (addr, h)
}

#[test]
fn books_follow_snapshot_and_updates_and_heal_a_gap() {
    let (addr, server) = serve(|p| {
        assert_eq!(
            p.recv(),
            ClientMsg::Subscribe {
                symbols: vec!["AAPL".into()],
                channels: vec![Channel::L2]
            }
        );
        p.send(&l2(3, 10));
        p.send(&level(3, 100, 99)); // stale: in the snapshot already
        p.send(&level(4, 101, 5));
        p.send(&level(6, 102, 5)); // gap: 5 is missing
        assert_eq!(
            p.recv(),
            ClientMsg::SnapshotRequest {
                symbol: "AAPL".into(),
                channel: Channel::L2
            }
        );
        p.send(&level(7, 103, 5)); // still broken: ignored until the snapshot
        p.send(&l2(7, 20));
        p.send(&level(8, 100, 0));
        let ClientMsg::Ping { id } = p.recv() else {
            panic!("expected a ping")
        };
        p.send(&ServerMsg::Pong {
            id,
            marks: Watermarks {
                session: 77,
                watermarks: vec![8],
            },
        });
        p.send(&ServerMsg::Goodbye("engine shutting down".into()));
    });
    let client = FeedClient::connect(&addr, T).unwrap();
    assert_eq!(client.hello(), &hello());
    let mut books = FeedBooks::new(client);
    books.subscribe(&["AAPL"], &[Channel::L2]).unwrap();
    // Up to the gap: the book has 100 x 10 and 101 x 5.
    for _ in 0..3 {
        books.next(T).unwrap().unwrap();
    }
    let b = books.l2(1).unwrap().l2_book().unwrap();
    assert_eq!(b.depth(Side::Buy, 9).len(), 2);
    books.next(T).unwrap().unwrap(); // the gap
    assert_eq!(books.gaps(), 1);
    assert!(books.l2(1).is_none(), "a broken book is not shown");
    let marks = books.sync(T).unwrap();
    assert_eq!(marks.watermarks, vec![8]);
    let b = books.l2(1).unwrap();
    assert_eq!(b.seq(), 8);
    assert!(b.l2_book().unwrap().best(Side::Buy).is_none());
    match books.next(T) {
        Err(ClientError::Goodbye { reason, .. }) => assert_eq!(reason, "engine shutting down"),
        other => panic!("expected the goodbye, got {other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn connect_fails_clearly() {
    // Nobody listens: a clear connect error naming the address.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let e = FeedClient::connect(&addr, T).unwrap_err();
    assert!(e.to_string().contains(&addr), "{e}");
    // A server that says nothing: a timeout naming the Hello.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let e = FeedClient::connect(&addr, Duration::from_millis(200)).unwrap_err();
    assert!(e.to_string().contains("Hello"), "{e}");
    // A server that sends garbage: a decode error.
    let (addr, server) = serve(|p| {
        p.stream.write_all(&[3, 0, 0, 0, 1, 2, 3]).unwrap();
        let _ = p.stream.read(&mut [0; 16]);
    });
    let mut c = FeedClient::connect(&addr, T).unwrap();
    let e = c.next(T).unwrap_err();
    assert!(matches!(e, ClientError::Decode { .. }), "{e}");
    drop(c);
    server.join().unwrap();
}

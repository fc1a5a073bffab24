//! Every message kind through the encoder and back (seeded proptest), and bad frames named.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use veloz_core::Side;

use super::*;
use crate::book::{L2Level, L3Level};
use crate::message::MdBody;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn channel() -> impl Strategy<Value = Channel> + Clone {
    prop::sample::select(Channel::ALL.to_vec())
}

fn quote() -> impl Strategy<Value = Option<Quote>> {
    prop::option::of((any::<i64>(), any::<u64>()).prop_map(|(price, qty)| Quote { price, qty }))
}

fn body() -> impl Strategy<Value = MdBody> {
    prop_oneof![
        (any::<u64>(), any::<i64>(), any::<u64>(), side()).prop_map(|(t, p, q, a)| {
            MdBody::Trade {
                trade_id: t,
                price: p,
                qty: q,
                aggressor: a,
            }
        }),
        (any::<u64>(), side(), any::<i64>(), any::<u64>()).prop_map(|(o, s, p, q)| MdBody::Add {
            order_id: o,
            side: s,
            price: p,
            qty: q
        }),
        (any::<u64>(), side(), any::<i64>(), any::<u64>()).prop_map(|(o, s, p, q)| {
            MdBody::Modify {
                order_id: o,
                side: s,
                price: p,
                qty: q,
            }
        }),
        (any::<u64>(), side(), any::<i64>()).prop_map(|(o, s, p)| MdBody::Delete {
            order_id: o,
            side: s,
            price: p
        }),
        (
            any::<u64>(),
            side(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(o, s, p, q, l, t)| MdBody::Execute {
                order_id: o,
                side: s,
                price: p,
                qty: q,
                leaves: l,
                trade_id: t,
            }),
        (side(), any::<i64>(), any::<u64>(), any::<u32>()).prop_map(|(s, p, q, n)| {
            MdBody::Level {
                side: s,
                price: p,
                qty: q,
                orders: n,
            }
        }),
        (quote(), quote()).prop_map(|(bid, ask)| MdBody::Top { bid, ask }),
    ]
}

fn message() -> impl Strategy<Value = MdMessage> {
    (
        any::<u32>(),
        1..u64::MAX,
        any::<u64>(),
        any::<u64>(),
        body(),
    )
        .prop_map(|(symbol, seq, cmd_seq, ts, body)| MdMessage {
            symbol,
            seq,
            cmd_seq,
            ts,
            body,
        })
}

fn l3_levels() -> impl Strategy<Value = Vec<L3Level>> {
    prop::collection::vec(
        (
            any::<i64>(),
            prop::collection::vec((any::<u64>(), any::<u64>()), 0..4),
        )
            .prop_map(|(price, orders)| L3Level { price, orders }),
        0..4,
    )
}

fn l2_levels() -> impl Strategy<Value = Vec<L2Level>> {
    prop::collection::vec(
        (any::<i64>(), any::<u64>(), any::<u32>()).prop_map(|(price, qty, orders)| L2Level {
            price,
            qty,
            orders,
        }),
        0..5,
    )
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), l3_levels(), l3_levels()).prop_map(|(symbol, seq, b, a)| {
            Snapshot::L3(L3Snapshot {
                symbol,
                seq,
                bids: b,
                asks: a,
            })
        }),
        (any::<u32>(), any::<u64>(), l2_levels(), l2_levels()).prop_map(|(symbol, seq, b, a)| {
            Snapshot::L2(L2Snapshot {
                symbol,
                seq,
                bids: b,
                asks: a,
            })
        }),
        (any::<u32>(), any::<u64>(), quote(), quote()).prop_map(|(symbol, seq, bid, ask)| {
            Snapshot::Top(TopSnapshot {
                symbol,
                seq,
                bid,
                ask,
            })
        }),
        (
            any::<u32>(),
            any::<u64>(),
            prop::collection::vec(
                (
                    1..u64::MAX,
                    any::<u64>(),
                    any::<u64>(),
                    any::<u64>(),
                    any::<i64>(),
                    any::<u64>(),
                    side()
                ),
                0..4
            )
        )
            .prop_map(|(symbol, seq, t)| Snapshot::Trades(TradesSnapshot {
                symbol,
                seq,
                trades: t
                    .into_iter()
                    .map(|(s, c, ts, id, p, q, a)| MdMessage {
                        symbol,
                        seq: s,
                        cmd_seq: c,
                        ts,
                        body: MdBody::Trade {
                            trade_id: id,
                            price: p,
                            qty: q,
                            aggressor: a,
                        },
                    })
                    .collect(),
            })),
    ]
}

fn names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Za-z0-9.é]{0,8}", 0..4)
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    let marks = (any::<u64>(), prop::collection::vec(any::<u64>(), 0..4)).prop_map(
        |(session, watermarks)| Watermarks {
            session,
            watermarks,
        },
    );
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec((any::<u32>(), "[A-Z]{1,6}", any::<u8>()), 0..4)
        )
            .prop_map(|(session, heartbeat_ms, s)| ServerMsg::Hello(Hello {
                session,
                heartbeat_ms,
                symbols: s
                    .into_iter()
                    .map(|(id, name, price_scale)| SymbolDef {
                        id,
                        name,
                        price_scale
                    })
                    .collect(),
            })),
        (any::<u64>(), any::<Option<u64>>(), snapshot()).prop_map(
            |(session, cmd_seq, snapshot)| {
                ServerMsg::Snapshot(SnapshotMsg {
                    session,
                    cmd_seq,
                    snapshot,
                })
            }
        ),
        message().prop_map(ServerMsg::Update),
        marks.clone().prop_map(ServerMsg::Heartbeat),
        (any::<u64>(), marks).prop_map(|(id, marks)| ServerMsg::Pong { id, marks }),
        ".{0,20}".prop_map(ServerMsg::Refused),
        ".{0,20}".prop_map(ServerMsg::Goodbye),
    ]
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    let channels = prop::collection::vec(channel(), 0..5);
    prop_oneof![
        (names(), channels.clone())
            .prop_map(|(symbols, channels)| ClientMsg::Subscribe { symbols, channels }),
        (names(), channels)
            .prop_map(|(symbols, channels)| ClientMsg::Unsubscribe { symbols, channels }),
        ("[A-Z]{0,6}", channel())
            .prop_map(|(symbol, channel)| ClientMsg::SnapshotRequest { symbol, channel }),
        any::<u64>().prop_map(|id| ClientMsg::Ping { id }),
    ]
}

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: 2000,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[13; 32]),
    )
}

#[test]
fn every_server_message_round_trips() {
    let enc = std::cell::RefCell::new(MdEncoder::new());
    runner()
        .run(&server_msg(), |msg| {
            let frame = enc.borrow_mut().server(&msg).to_vec();
            let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            prop_assert_eq!(len + 4, frame.len());
            prop_assert_eq!(decode_server(&frame), Ok(msg));
            prop_assert!(decode_client(&frame).is_err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_client_message_round_trips() {
    let enc = std::cell::RefCell::new(MdEncoder::new());
    runner()
        .run(&client_msg(), |msg| {
            let frame = enc.borrow_mut().client(&msg).to_vec();
            prop_assert_eq!(decode_client(&frame), Ok(msg));
            prop_assert!(decode_server(&frame).is_err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn bad_frames_are_named_never_a_panic() {
    let mut enc = MdEncoder::new();
    assert!(matches!(
        decode_client(&[4, 0, 0, 0, 1, 2, 3, 4]),
        Err(DecodeError::Verify(_))
    ));
    assert!(decode_client(&[]).is_err());
    let ping = enc.ping(7).to_vec();
    assert_eq!(
        decode_server(&ping),
        Err(DecodeError::WrongDirection {
            message: "Ping",
            direction: "client-to-server"
        })
    );
    // An unknown channel code.
    let mut frame = enc.snapshot_request("AAPL", Channel::Top).to_vec();
    let at = frame.iter().rposition(|&b| b == 3).unwrap();
    frame[at] = 9;
    let e = decode_client(&frame).unwrap_err();
    assert!(e.to_string().contains("9"), "{e}");
    // Every truncation and every single-byte corruption of a snapshot: an error or a value,
    // never a panic.
    let snap = SnapshotMsg {
        session: 1,
        cmd_seq: Some(9),
        snapshot: Snapshot::L3(L3Snapshot {
            symbol: 1,
            seq: 4,
            bids: vec![L3Level {
                price: 100,
                orders: vec![(1, 5), (2, 6)],
            }],
            asks: vec![],
        }),
    };
    let frame = enc.snapshot(&snap).to_vec();
    for n in 0..frame.len() {
        let _ = decode_server(&frame[..n]);
        for b in [0u8, 0xff, 0x7f] {
            let mut f = frame.clone();
            f[n] = b;
            let _ = decode_server(&f);
            let _ = decode_client(&f);
        }
    }
}

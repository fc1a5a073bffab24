//! Framing and hostile input: the frame decoder over partial reads and batched frames, the
//! size limit enforced before a body is read, and garbage, truncated and mutated frames
//! refused with a WireError, never a panic.
//!
//! The property tests run with fixed seeds (their own `TestRng`, not the environment), so a
//! failure reproduces on every machine.

use std::cell::Cell;

use flatbuffers::FlatBufferBuilder;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use veloz_core::{
    CancelOrder, CancelReason, Command, Event, Fill, MassCancel, NewOrder, OrderKind, RejectReason,
    ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};
use veloz_wire::generated as fb;
use veloz_wire::{
    decode_client, decode_engine, ClientMessage, EngineMessage, FrameDecoder, FrameEncoder,
    InstrumentInfo, LogonAck, Logout, LogoutReason, TradePrint, WireError, DEFAULT_MAX_FRAME_LEN,
};

const ACCOUNT: u32 = 17;

fn new_order(coid: u64) -> Command {
    Command::New(NewOrder {
        account: ACCOUNT,
        symbol: 1,
        client_order_id: coid,
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: SelfTradePrevention::CancelResting,
        price: 1_900_000,
        qty: 100,
    })
}

/// One valid frame of every message type, both directions.
fn corpus() -> Vec<Vec<u8>> {
    let mut enc = FrameEncoder::new();
    let mut out = vec![
        enc.logon(3, "token-123").to_vec(),
        enc.logout(&Logout {
            reason: LogoutReason::SlowConsumer,
            text: "bye",
        })
        .to_vec(),
        enc.heartbeat(12_345).to_vec(),
        enc.command(&new_order(1)).to_vec(),
        enc.command(&Command::Cancel(CancelOrder {
            account: ACCOUNT,
            symbol: 2,
            client_order_id: 2,
            order_id: 99,
        }))
        .to_vec(),
        enc.command(&Command::Replace(ReplaceOrder {
            account: ACCOUNT,
            symbol: 2,
            client_order_id: 3,
            order_id: 99,
            price: 1_900_100,
            qty: 50,
        }))
        .to_vec(),
        enc.command(&Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 4,
            symbol: Some(2),
            reason: veloz_core::CancelReason::MassCancel,
        }))
        .to_vec(),
        enc.logon_ack(&LogonAck {
            session_id: 5,
            heartbeat_interval_ms: 1_000,
            streams: 2,
            instruments: vec![
                InstrumentInfo {
                    id: 1,
                    symbol: "AAPL",
                    price_scale: 4,
                    tick_size: 100,
                    lot_size: 1,
                    min_qty: 1,
                    max_qty: 1_000_000,
                },
                InstrumentInfo {
                    id: 2,
                    symbol: "MSFT",
                    price_scale: 2,
                    tick_size: 1,
                    lot_size: 10,
                    min_qty: 10,
                    max_qty: 5_000,
                },
            ],
        })
        .to_vec(),
        enc.trade(&TradePrint {
            symbol: 1,
            trade_id: 7,
            price: 1_900_000,
            qty: 10,
            aggressor: Side::Sell,
            timestamp_ns: 8,
        })
        .to_vec(),
    ];
    let events = [
        Event::Trade {
            trade_id: 7,
            symbol: 1,
            price: 1_900_000,
            qty: 10,
            aggressor: Side::Sell,
            maker: Fill {
                order_id: 1,
                account: 1,
                client_order_id: 11,
                leaves_qty: 0,
            },
            taker: Fill {
                order_id: 2,
                account: 2,
                client_order_id: 22,
                leaves_qty: 5,
            },
        },
        Event::Cancelled {
            order_id: 2,
            account: 2,
            client_order_id: 22,
            symbol: 1,
            side: Side::Sell,
            qty: 5,
            reason: CancelReason::ImmediateOrCancel,
        },
        Event::Rejected {
            account: 2,
            client_order_id: 23,
            symbol: 1,
            order_id: 0,
            reason: RejectReason::PriceOffTick,
        },
        Event::MassCancelled {
            account: 2,
            client_order_id: 24,
            symbol: None,
            count: 3,
        },
    ];
    for e in &events {
        enc.event(e, 9, 10, |_, f| out.push(f.to_vec()));
    }
    out
}

fn with_prefix(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn several_frames_in_one_read_come_out_in_order() {
    let frames = corpus();
    let stream: Vec<u8> = frames.concat();
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    d.extend_from_slice(&stream);
    for want in &frames {
        assert_eq!(d.next_frame().unwrap(), Some(&want[..]));
    }
    assert_eq!(d.next_frame().unwrap(), None);
    assert_eq!(d.buffered(), 0);
    d.finish().unwrap();
}

#[test]
fn byte_by_byte_reads_complete_each_frame_on_its_last_byte() {
    let frames = corpus();
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    for want in &frames {
        for (i, b) in want.iter().enumerate() {
            let buf = d.read_buf();
            buf[0] = *b;
            d.commit(1);
            let got = d.next_frame().unwrap().map(<[u8]>::to_vec);
            if i + 1 < want.len() {
                assert_eq!(
                    got,
                    None,
                    "frame complete after {} of {} bytes",
                    i + 1,
                    want.len()
                );
            } else {
                assert_eq!(got.as_deref(), Some(&want[..]));
            }
        }
    }
    d.finish().unwrap();
}

#[test]
fn an_oversized_length_is_refused_before_its_body() {
    let good = corpus().remove(3);
    for len in [257u32, 1 << 20, u32::MAX] {
        let mut d = FrameDecoder::new(256);
        // A good frame first, then only the 4 prefix bytes of an oversized one.
        d.extend_from_slice(&good);
        d.extend_from_slice(&len.to_le_bytes());
        assert_eq!(d.next_frame().unwrap(), Some(&good[..]));
        let e = d.next_frame().unwrap_err();
        assert_eq!(e, WireError::FrameTooLarge { len, max: 256 });
        assert_eq!(
            e.to_string(),
            format!("frame length {len} exceeds the limit of 256 bytes")
        );
        assert_eq!(e.reject_reason(), RejectReason::FrameTooLarge);
        assert!(e.is_fatal());
        // More bytes change nothing: the stream is refused for good.
        d.extend_from_slice(&good);
        assert_eq!(d.next_frame().unwrap_err(), e);
    }
    // Exactly at the limit is fine.
    let mut d = FrameDecoder::new(good.len() as u32 - 4);
    d.extend_from_slice(&good);
    assert_eq!(d.next_frame().unwrap(), Some(&good[..]));
}

#[test]
fn prefix_problems_are_named() {
    assert_eq!(
        decode_client(&[1, 0], ACCOUNT).unwrap_err(),
        WireError::FrameTooShort { len: 2 }
    );
    let mut f = corpus().remove(3);
    f.push(0);
    let e = decode_client(&f, ACCOUNT).unwrap_err();
    assert_eq!(
        e,
        WireError::LengthMismatch {
            declared: f.len() as u32 - 5,
            actual: f.len() - 4
        }
    );
    assert_eq!(e.reject_reason(), RejectReason::MalformedMessage);
    // An empty body is a frame, but not a message.
    let e = decode_client(&[0, 0, 0, 0], ACCOUNT).unwrap_err();
    assert!(matches!(e, WireError::Verify(_)), "{e}");
}

#[test]
fn garbage_bodies_are_rejected_by_the_verifier() {
    let cases: [&[u8]; 5] = [
        &[0xFF; 16],
        &[0; 3],
        // Root offset past the end.
        &[0x40, 0, 0, 0, 0, 0, 0, 0],
        // Root offset in bounds, vtable offset far away.
        &[4, 0, 0, 0, 0x00, 0x00, 0x00, 0x80],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for body in cases {
        let frame = with_prefix(body);
        for e in [
            decode_client(&frame, ACCOUNT).unwrap_err(),
            decode_engine(&frame).unwrap_err(),
        ] {
            assert!(matches!(e, WireError::Verify(_)), "{body:?}: {e}");
            assert_eq!(e.reject_reason(), RejectReason::MalformedMessage);
            assert!(e
                .to_string()
                .starts_with("frame body is not a valid veloz.wire.Message"));
        }
    }
}

#[test]
fn bad_utf8_in_a_string_is_refused() {
    let mut enc = FrameEncoder::new();
    let mut frame = enc.logon(1, "abcd").to_vec();
    let at = frame.windows(4).position(|w| w == b"abcd").unwrap();
    frame[at] = 0xFF;
    let e = decode_client(&frame, ACCOUNT).unwrap_err();
    assert!(e.to_string().contains("Utf8"), "{e}");
}

#[test]
fn client_frames_with_too_many_tables_are_refused_by_the_verifier() {
    let mut enc = FrameEncoder::new();
    let ack = LogonAck {
        session_id: 1,
        heartbeat_interval_ms: 1,
        streams: 1,
        instruments: (0..50)
            .map(|id| InstrumentInfo {
                id,
                symbol: "X",
                price_scale: 0,
                tick_size: 1,
                lot_size: 1,
                min_qty: 1,
                max_qty: 1,
            })
            .collect(),
    };
    let frame = enc.logon_ack(&ack).to_vec();
    // The engine side refuses it in the verifier, before looking at the message type.
    let e = decode_client(&frame, ACCOUNT).unwrap_err();
    assert!(e.to_string().contains("Too many tables"), "{e}");
    // The client side (its own, larger limits) reads it.
    assert!(matches!(
        decode_engine(&frame),
        Ok(EngineMessage::LogonAck(_))
    ));
}

#[test]
fn a_length_prepended_to_a_plain_buffer_is_misaligned_and_refused() {
    // docs/protocol.md: frames must be built with FinishSizePrefixed; a plain Finish plus a
    // hand-written prefix moves every 8-byte field off its alignment.
    let mut fbb = FlatBufferBuilder::new();
    let order = fb::NewOrder::create(
        &mut fbb,
        &fb::NewOrderArgs {
            client_order_id: 1,
            side: Some(fb::Side::Buy),
            price: 100,
            qty: 1,
            ..Default::default()
        },
    );
    let msg = fb::Message::create(
        &mut fbb,
        &fb::MessageArgs {
            payload_type: fb::Payload::NewOrder,
            payload: Some(order.as_union_value()),
        },
    );
    fbb.finish(msg, None);
    let frame = with_prefix(fbb.finished_data());
    let e = decode_client(&frame, ACCOUNT).unwrap_err();
    assert!(e.to_string().contains("unaligned"), "{e}");
}

/// Decode a frame both ways; whatever is accepted must survive a re-encode unchanged and
/// carry the session's account; whatever is refused must map to a gateway reject reason.
fn check_any_frame(frame: &[u8], accepted: &Cell<u32>) -> Result<(), TestCaseError> {
    let mut enc = FrameEncoder::new();
    match decode_client(frame, ACCOUNT) {
        Ok(msg) => {
            accepted.set(accepted.get() + 1);
            let again = match &msg {
                ClientMessage::Logon(l) => enc.logon_with(l),
                ClientMessage::Logout(l) => enc.logout(l),
                ClientMessage::Heartbeat(h) => enc.heartbeat(h.timestamp_ns),
                ClientMessage::Order(c) => {
                    prop_assert_eq!(c.account(), ACCOUNT);
                    enc.command(c)
                }
                ClientMessage::Query(q) => enc.query(q),
            };
            prop_assert_eq!(decode_client(again, ACCOUNT), Ok(msg));
        }
        Err(e) => {
            prop_assert!(matches!(
                e.reject_reason(),
                RejectReason::MalformedMessage | RejectReason::UnknownMessage
            ));
            prop_assert!(!e.to_string().is_empty());
        }
    }
    match decode_engine(frame) {
        Ok(msg) => {
            accepted.set(accepted.get() + 1);
            let again = match &msg {
                EngineMessage::LogonAck(a) => enc.logon_ack(a),
                EngineMessage::Logout(l) => enc.logout(l),
                EngineMessage::Heartbeat(h) => enc.heartbeat(h.timestamp_ns),
                EngineMessage::ExecutionReport(r) => enc.execution_report(r),
                EngineMessage::Trade(t) => enc.trade(t),
                EngineMessage::StreamResumed(r) => enc.stream_resumed(r),
                EngineMessage::OrderStatus(o) => enc.order_status(o),
                EngineMessage::OpenOrdersEnd(e) => enc.open_orders_end(e),
                EngineMessage::BalanceReport(b) => enc.balance_report(b),
            };
            prop_assert_eq!(decode_engine(again), Ok(msg));
        }
        Err(e) => prop_assert!(matches!(
            e.reject_reason(),
            RejectReason::MalformedMessage | RejectReason::UnknownMessage
        )),
    }
    Ok(())
}

#[test]
fn truncated_bodies_are_refused_or_lost_only_padding() {
    for frame in corpus() {
        let body = &frame[4..];
        let whole_client = decode_client(&frame, ACCOUNT).ok();
        let whole_engine = decode_engine(&frame).ok();
        let mut refused = 0;
        for cut in 0..body.len() {
            let short = with_prefix(&body[..cut]);
            let c = decode_client(&short, ACCOUNT);
            let e = decode_engine(&short);
            // Only trailing alignment padding may go without the verifier noticing, and then
            // the message is exactly the same.
            match (&c, &e) {
                (Err(_), Err(_)) => refused += 1,
                _ => {
                    assert_eq!(c.ok(), whole_client, "cut at {cut}");
                    assert_eq!(e.ok(), whole_engine, "cut at {cut}");
                }
            }
        }
        assert!(
            refused >= body.len() - 7,
            "{refused} of {} cuts refused",
            body.len()
        );
    }
}

fn runner(cases: u32, seed: u8) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

#[test]
fn random_bytes_never_panic_and_are_refused() {
    let strategy = (vec(any::<u8>(), 0..600), vec(1usize..64, 1..20));
    runner(4_000, 1)
        .run(&strategy, |(bytes, chunks)| {
            // As a body behind a correct prefix: the verifier refuses it.
            let frame = with_prefix(&bytes);
            prop_assert!(decode_client(&frame, ACCOUNT).is_err());
            prop_assert!(decode_engine(&frame).is_err());
            // As a raw stream in random pieces: frames or a size refusal, never a panic.
            let mut d = FrameDecoder::new(256);
            let mut rest = &bytes[..];
            for n in chunks.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at((*n).min(rest.len()));
                d.extend_from_slice(now);
                rest = later;
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => {
                            prop_assert!(f.len() <= 260);
                            prop_assert!(decode_client(f, ACCOUNT).is_err());
                        }
                        Ok(None) => break,
                        Err(e) => {
                            prop_assert_eq!(e.reject_reason(), RejectReason::FrameTooLarge);
                            break;
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

#[test]
fn mutated_valid_frames_never_panic() {
    let corpus = corpus();
    let strategy = (
        0..corpus.len(),
        vec(mutation(), 1..6),
        any::<bool>(), // fix the prefix up after mutating the body
    );
    // Decodes that succeed (a mutated price is still a price): the property must not be
    // vacuous either way.
    let accepted = Cell::new(0);
    let cases = 20_000;
    runner(cases, 2)
        .run(&strategy, |(which, mutations, fix_prefix)| {
            let mut body = corpus[which][4..].to_vec();
            for m in &mutations {
                let n = body.len().max(1);
                match *m {
                    Mutation::Set(i, b) if !body.is_empty() => body[i % n] = b,
                    Mutation::Flip(i, bit) if !body.is_empty() => body[i % n] ^= 1 << bit,
                    Mutation::Insert(i, b) => body.insert(i % (body.len() + 1), b),
                    Mutation::Remove(i) if !body.is_empty() => {
                        body.remove(i % n);
                    }
                    Mutation::Truncate(i) => body.truncate(i % n),
                    _ => {}
                }
            }
            let mut frame = with_prefix(&body);
            if !fix_prefix {
                frame[..4].copy_from_slice(&corpus[which][..4]);
            }
            check_any_frame(&frame, &accepted)
        })
        .unwrap();
    let accepted = accepted.get();
    assert!(
        accepted > cases / 20 && accepted < cases,
        "{accepted} of {cases} mutated frames decoded"
    );
}

#[test]
fn valid_frames_split_anywhere_come_out_whole() {
    let corpus = corpus();
    let strategy = (vec(0..corpus.len(), 1..30), vec(1usize..200, 1..30));
    runner(2_000, 3)
        .run(&strategy, |(picks, chunks)| {
            let frames: Vec<&Vec<u8>> = picks.iter().map(|&i| &corpus[i]).collect();
            let stream: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut fed = 0;
            for n in chunks.iter().cycle() {
                if fed == stream.len() {
                    break;
                }
                let buf = d.read_buf();
                prop_assert!(!buf.is_empty());
                let k = (*n).min(buf.len()).min(stream.len() - fed);
                buf[..k].copy_from_slice(&stream[fed..fed + k]);
                d.commit(k);
                fed += k;
                while let Some(f) = d.next_frame().unwrap() {
                    prop_assert!(decode_client(f, ACCOUNT).is_ok() || decode_engine(f).is_ok());
                    got.push(f.to_vec());
                }
            }
            prop_assert!(d.finish().is_ok());
            prop_assert_eq!(got.len(), frames.len());
            for (g, f) in got.iter().zip(&frames) {
                prop_assert_eq!(g, *f);
            }
            Ok(())
        })
        .unwrap();
}

//! The two fast paths against their reference twins, over seeded random inputs:
//! - execution reports: the template ([`FrameEncoder::execution_report`]) against the
//!   builder ([`FrameEncoder::execution_report_with_builder`]), compared through the
//!   generated readers (every accessor, presence included) and through [`decode_engine`];
//! - order requests: the inline-checked reader (`fields::read_order`) against the verifier,
//!   over valid frames and byte-level mutations of them: the fast path accepts only frames
//!   the verifier accepts, and [`decode_client`] equals [`decode_client_verified`] on every
//!   frame, errors included;
//! - stream reports: one report built alone (`execution_report_at`, what
//!   [`FrameEncoder::stream_report`] uses) against the event iterator;
//! - balance requests and reports: encoded and decoded back unchanged; the funds and limit
//!   reject reasons travel with their codes and names.

use flatbuffers::FlatBufferBuilder;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use veloz_core::{
    CancelOrder, CancelReason, Command, MassCancel, NewOrder, OrderKind, RejectReason,
    ReplaceOrder, SelfTradePrevention, Side, TimeInForce, BY_CLIENT_ID,
};

use crate::convert::cancel_reason_from_code;
use crate::decode::{decode_client, decode_client_verified, decode_engine, verify_frame};
use crate::fields::read_order;
use crate::generated as fb;
use crate::template::text_capacity;
use crate::{ExecType, ExecutionReport, FrameEncoder, Liquidity, VerifyLimits};

const SEED: u64 = 12;

/// A value that is often 0 or small, sometimes anything.
fn num(rng: &mut Pcg64Mcg) -> u64 {
    match rng.random_range(0..4) {
        0 => 0,
        1 => rng.random_range(1..1_000),
        2 => u64::MAX - rng.random_range(0..3),
        _ => rng.random(),
    }
}

fn text(rng: &mut Pcg64Mcg) -> String {
    match rng.random_range(0..6) {
        0 | 1 => String::new(),
        2 => RejectReason::ALL[rng.random_range(0..RejectReason::ALL.len())]
            .name()
            .to_string(),
        3 => cancel_reason_from_code(rng.random_range(1..=9))
            .map_or("", CancelReason::name)
            .to_string(),
        4 => "é✓".repeat(rng.random_range(0..12)),
        _ => {
            let n = rng.random_range(0..=text_capacity() + 8);
            (0..n)
                .map(|_| rng.random_range(b' '..=b'~') as char)
                .collect()
        }
    }
}

fn report<'a>(rng: &mut Pcg64Mcg, reason_text: &'a str) -> ExecutionReport<'a> {
    let side = [None, Some(Side::Buy), Some(Side::Sell)][rng.random_range(0..3)];
    ExecutionReport {
        exec_type: ExecType::ALL[rng.random_range(0..ExecType::ALL.len())],
        order_id: num(rng),
        client_order_id: num(rng),
        symbol: rng.random_bool(0.8).then(|| num(rng) as u32),
        side,
        price: num(rng) as i64,
        qty: num(rng),
        last_qty: num(rng),
        last_price: num(rng) as i64,
        leaves_qty: num(rng),
        trade_id: num(rng),
        liquidity: [Liquidity::NotApplicable, Liquidity::Maker, Liquidity::Taker]
            [rng.random_range(0..3)],
        reject_reason: rng
            .random_bool(0.3)
            .then(|| RejectReason::ALL[rng.random_range(0..RejectReason::ALL.len())]),
        cancel_reason: rng
            .random_bool(0.3)
            .then(|| cancel_reason_from_code(rng.random_range(1..=9)))
            .flatten(),
        reason_text,
        seq: num(rng),
        timestamp_ns: num(rng),
        kept_priority: rng.random(),
        mass_cancel_count: num(rng) as u32,
        stream: num(rng) as u16,
        stream_seq: num(rng),
    }
}

/// Every accessor of the generated reader, presence of optional fields included.
fn generated_view(frame: &[u8]) -> String {
    let msg = fb::size_prefixed_root_as_message(frame).expect("frame passes the verifier");
    format!("{:?}", msg.payload_as_execution_report())
}

#[test]
fn template_reports_decode_like_builder_reports() {
    let mut rng = Pcg64Mcg::seed_from_u64(SEED);
    let mut template = FrameEncoder::new();
    let mut builder = FrameEncoder::new();
    let (mut fallbacks, mut valid) = (0, 0);
    for i in 0..20_000 {
        let t = text(&mut rng);
        let r = report(&mut rng, &t);
        let a = template.execution_report(&r).to_vec();
        let b = builder.execution_report_with_builder(&r);
        fallbacks += usize::from(a == b);
        assert_eq!(generated_view(&a), generated_view(b), "report {i}: {r:?}");
        let (da, db) = (decode_engine(&a), decode_engine(b));
        assert_eq!(da, db, "report {i}: {r:?}");
        if let Ok(m) = da {
            valid += 1;
            assert_eq!(m, crate::EngineMessage::ExecutionReport(r), "report {i}");
        }
    }
    // Texts past the slot go through the builder (and then the bytes are the builder's).
    assert!(fallbacks > 100, "only {fallbacks} fallbacks");
    assert!(valid > 1_000, "only {valid} reports pass decode_engine");
}

#[test]
fn template_output_depends_on_the_report_alone() {
    let mut enc = FrameEncoder::new();
    let mut r = ExecutionReport::empty(ExecType::Rejected);
    r.reason_text = "duplicate_client_order_id";
    r.side = Some(Side::Sell);
    r.reject_reason = Some(RejectReason::DuplicateClientOrderId);
    let _ = enc.execution_report(&r).to_vec();
    let quiet = ExecutionReport {
        reason_text: "x",
        ..ExecutionReport::empty(ExecType::Rejected)
    };
    let after = enc.execution_report(&quiet).to_vec();
    let fresh = FrameEncoder::new().execution_report(&quiet).to_vec();
    assert_eq!(after, fresh);
    assert!(!after.windows(9).any(|w| w == b"duplicate"));
}

#[test]
fn every_engine_reason_text_fits_the_template() {
    let mut enc = FrameEncoder::new();
    for r in RejectReason::ALL {
        let report = ExecutionReport {
            reject_reason: Some(r),
            reason_text: r.name(),
            ..ExecutionReport::empty(ExecType::Rejected)
        };
        let a = enc.execution_report(&report).to_vec();
        let b = enc.execution_report_with_builder(&report).to_vec();
        assert!(a.len() > b.len(), "{r:?} went through the builder");
    }
}

/// Order frames: the encoder's, and hand-built ones with absent or out-of-range fields.
fn order_frame(rng: &mut Pcg64Mcg, enc: &mut FrameEncoder) -> Vec<u8> {
    let coid = num(rng);
    let symbol = num(rng) as u32;
    let id = if rng.random() {
        num(rng)
    } else {
        num(rng) | BY_CLIENT_ID
    };
    match rng.random_range(0..5) {
        0 => enc
            .command(&Command::New(NewOrder {
                account: 1,
                symbol,
                client_order_id: coid,
                side: if rng.random() { Side::Buy } else { Side::Sell },
                kind: OrderKind::from_u8(rng.random_range(0..2)).expect("kind"),
                tif: TimeInForce::from_u8(rng.random_range(0..3)).expect("tif"),
                post_only: rng.random(),
                stp: SelfTradePrevention::from_u8(rng.random_range(0..4)).expect("stp"),
                price: num(rng) as i64,
                qty: num(rng),
            }))
            .to_vec(),
        1 => enc
            .command(&Command::Cancel(CancelOrder {
                account: 1,
                symbol,
                client_order_id: coid,
                order_id: id,
            }))
            .to_vec(),
        2 => enc
            .command(&Command::Replace(ReplaceOrder {
                account: 1,
                symbol,
                client_order_id: coid,
                order_id: id,
                price: num(rng) as i64,
                qty: num(rng),
            }))
            .to_vec(),
        3 => enc
            .command(&Command::MassCancel(MassCancel {
                account: 1,
                client_order_id: coid,
                symbol: rng.random_bool(0.5).then_some(symbol),
                reason: CancelReason::MassCancel,
            }))
            .to_vec(),
        _ => {
            // Raw codes the core does not define, a missing side, defaults forced or not.
            let mut fbb = FlatBufferBuilder::new();
            fbb.force_defaults(rng.random());
            let m = fb::NewOrder::create(
                &mut fbb,
                &fb::NewOrderArgs {
                    client_order_id: coid,
                    symbol_id: symbol,
                    side: rng
                        .random_bool(0.7)
                        .then(|| fb::Side(rng.random_range(0..3))),
                    kind: fb::OrderKind(rng.random_range(0..3)),
                    tif: fb::TimeInForce(rng.random_range(0..4)),
                    post_only: rng.random(),
                    stp: fb::SelfTradePrevention(rng.random_range(0..5)),
                    price: num(rng) as i64,
                    qty: num(rng),
                },
            );
            let msg = fb::Message::create(
                &mut fbb,
                &fb::MessageArgs {
                    payload_type: fb::Payload::NewOrder,
                    payload: Some(m.as_union_value()),
                },
            );
            fbb.finish_size_prefixed(msg, None);
            fbb.finished_data().to_vec()
        }
    }
}

fn mutate(rng: &mut Pcg64Mcg, f: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..6) {
            0 | 1 => {
                let i = rng.random_range(0..f.len());
                f[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..f.len());
                f[i] ^= 1 << rng.random_range(0..8);
            }
            3 => f.truncate(rng.random_range(0..f.len())),
            4 => f.extend((0..rng.random_range(1..16)).map(|_| rng.random::<u8>())),
            _ => {}
        }
        if f.is_empty() {
            return;
        }
    }
    if f.len() >= 4 && rng.random_bool(0.7) {
        // Mostly keep the prefix consistent, so the mutation reaches the tables.
        let len = (f.len() - 4) as u32;
        f[..4].copy_from_slice(&len.to_le_bytes());
    }
}

#[test]
fn order_fast_path_agrees_with_the_verifier() {
    let mut rng = Pcg64Mcg::seed_from_u64(SEED);
    let mut enc = FrameEncoder::new();
    let (mut fast, mut mutated_fast) = (0, 0);
    for i in 0..50_000 {
        let mut f = order_frame(&mut rng, &mut enc);
        let pristine = i % 4 == 0;
        if pristine {
            assert!(read_order(&f).is_some(), "frame {i} missed the fast path");
        } else {
            mutate(&mut rng, &mut f);
        }
        if read_order(&f).is_some() {
            fast += 1;
            mutated_fast += usize::from(!pristine);
            assert!(
                verify_frame(&f, VerifyLimits::CLIENT).is_ok(),
                "frame {i} passed the fast path but not the verifier: {f:?}"
            );
        }
        assert_eq!(
            decode_client(&f, 9),
            decode_client_verified(&f, 9),
            "frame {i}: {f:?}"
        );
    }
    assert!(
        fast > 12_500 && mutated_fast > 1_000,
        "{fast} {mutated_fast}"
    );
}

#[test]
fn stream_report_builds_the_same_report_as_the_event_iterator() {
    use crate::convert::{execution_report_at, execution_reports};
    use veloz_core::{Event, Fill, Part};
    let mut rng = Pcg64Mcg::seed_from_u64(SEED);
    let mut enc = FrameEncoder::new();
    let mut reference = FrameEncoder::new();
    for _ in 0..2_000 {
        let side = if rng.random() { Side::Buy } else { Side::Sell };
        let fill = |rng: &mut Pcg64Mcg| Fill {
            order_id: num(rng),
            account: num(rng) as u32,
            client_order_id: num(rng),
            leaves_qty: if rng.random() { 0 } else { num(rng) },
        };
        let event = match rng.random_range(0..6) {
            0 => Event::Accepted {
                order_id: num(&mut rng),
                account: num(&mut rng) as u32,
                client_order_id: num(&mut rng),
                symbol: num(&mut rng) as u32,
                side,
                price: num(&mut rng) as i64,
                qty: num(&mut rng),
            },
            1 => Event::Cancelled {
                order_id: num(&mut rng),
                account: num(&mut rng) as u32,
                client_order_id: num(&mut rng),
                symbol: num(&mut rng) as u32,
                side,
                qty: num(&mut rng),
                reason: cancel_reason_from_code(rng.random_range(1..=9)).expect("code"),
            },
            2 => Event::Replaced {
                order_id: num(&mut rng),
                account: num(&mut rng) as u32,
                client_order_id: num(&mut rng),
                symbol: num(&mut rng) as u32,
                side,
                price: num(&mut rng) as i64,
                qty: num(&mut rng),
                kept_priority: rng.random(),
            },
            3 => Event::MassCancelled {
                account: num(&mut rng) as u32,
                client_order_id: num(&mut rng),
                symbol: rng.random_bool(0.5).then(|| num(&mut rng) as u32),
                count: num(&mut rng) as u32,
            },
            4 => Event::Rejected {
                account: num(&mut rng) as u32,
                client_order_id: num(&mut rng),
                symbol: num(&mut rng) as u32,
                order_id: num(&mut rng),
                reason: RejectReason::ALL[rng.random_range(0..RejectReason::ALL.len())],
            },
            _ => Event::Trade {
                trade_id: num(&mut rng),
                symbol: num(&mut rng) as u32,
                price: num(&mut rng) as i64,
                qty: num(&mut rng),
                aggressor: side,
                maker: fill(&mut rng),
                taker: fill(&mut rng),
            },
        };
        let (seq, ts) = (num(&mut rng), num(&mut rng));
        for index in 0..3 {
            let alone = execution_report_at(&event, index, seq, ts);
            assert_eq!(
                alone,
                execution_reports(&event, seq, ts).nth(index),
                "{event:?}"
            );
            if let Some((_, mut r)) = alone {
                r.stream = 3;
                r.stream_seq = 44;
                let part = [Part::Maker, Part::Taker][index.min(1)];
                let part = if matches!(event, Event::Trade { .. }) {
                    part
                } else {
                    Part::All
                };
                let got = enc
                    .stream_report(&event, part, seq, ts, 3, 44)
                    .map(decode_engine);
                let want = decode_engine(reference.execution_report_with_builder(&r));
                assert_eq!(got, Some(want), "{event:?}");
            }
        }
    }
}

#[test]
fn balance_request_and_report_round_trip() {
    use crate::{AssetBalance, BalanceReport, ClientMessage, EngineMessage, Query, ShardBalance};
    let mut enc = FrameEncoder::new();
    for by_shard in [false, true] {
        let q = Query::Balances {
            request_id: 77,
            by_shard,
        };
        let frame = enc.query(&q).to_vec();
        assert_eq!(decode_client(&frame, 5), Ok(ClientMessage::Query(q)));
    }
    let report = BalanceReport {
        request_id: 77,
        account: 5,
        reject_reason: None,
        balances: vec![
            AssetBalance {
                asset: 1,
                name: "USD",
                scale: 2,
                available: 99_000,
                held: 1_002,
            },
            AssetBalance {
                asset: 2,
                name: "BTC",
                scale: 8,
                available: u64::MAX,
                held: 0,
            },
        ],
        slices: vec![
            ShardBalance {
                shard: 0,
                asset: 1,
                available: 90_000,
                held: 1_002,
            },
            ShardBalance {
                shard: 1,
                asset: 1,
                available: 9_000,
                held: 0,
            },
        ],
    };
    let frame = enc.balance_report(&report).to_vec();
    assert_eq!(
        decode_engine(&frame),
        Ok(EngineMessage::BalanceReport(report.clone()))
    );
    let refused = BalanceReport {
        reject_reason: Some(RejectReason::NotLoggedOn),
        balances: vec![],
        slices: vec![],
        ..report
    };
    let frame = enc.balance_report(&refused).to_vec();
    assert_eq!(
        decode_engine(&frame),
        Ok(EngineMessage::BalanceReport(refused))
    );
    // A client never sends a report, nor the engine a request.
    assert!(decode_client(&frame, 5).is_err());
    let frame = enc
        .query(&Query::Balances {
            request_id: 1,
            by_shard: false,
        })
        .to_vec();
    assert!(decode_engine(&frame).is_err());
}

#[test]
fn funds_and_limit_rejects_travel_with_their_codes() {
    let mut enc = FrameEncoder::new();
    for (r, code, name) in [
        (RejectReason::InsufficientFunds, 16, "insufficient_funds"),
        (RejectReason::OrderQtyLimit, 17, "order_qty_limit"),
        (RejectReason::OrderNotionalLimit, 18, "order_notional_limit"),
        (RejectReason::OpenOrdersLimit, 19, "open_orders_limit"),
        (RejectReason::NotionalRateLimit, 20, "notional_rate_limit"),
        (RejectReason::AmountTooLarge, 21, "amount_too_large"),
    ] {
        assert_eq!((r.code(), r.name()), (code, name));
        assert_eq!(
            fb::RejectReason(code).variant_name(),
            Some(format!("{r:?}").as_str())
        );
        let report = ExecutionReport {
            client_order_id: 9,
            symbol: Some(1),
            reject_reason: Some(r),
            reason_text: r.name(),
            ..ExecutionReport::empty(ExecType::Rejected)
        };
        let frame = enc.execution_report(&report).to_vec();
        match decode_engine(&frame) {
            Ok(crate::EngineMessage::ExecutionReport(got)) => assert_eq!(got, report),
            other => panic!("{r:?}: {other:?}"),
        }
    }
}

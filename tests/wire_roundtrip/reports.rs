//! Core events become the right execution reports: one to the maker and one to the taker
//! per trade, one per other event, and a trade print only for trades.

use veloz_core::Fill;
use veloz_wire::{execution_reports, trade_print};

use super::*;

#[test]
fn a_trade_gives_one_report_to_the_maker_and_one_to_the_taker() {
    let mut enc = FrameEncoder::new();
    let trade = |maker_leaves, taker_leaves| Event::Trade {
        trade_id: 900,
        symbol: 2,
        price: 1_000_100,
        qty: 30,
        aggressor: Side::Buy,
        maker: Fill {
            order_id: 11,
            account: 100,
            client_order_id: 1_100,
            leaves_qty: maker_leaves,
        },
        taker: Fill {
            order_id: 12,
            account: 200,
            client_order_id: 1_200,
            leaves_qty: taker_leaves,
        },
    };
    for (maker_leaves, taker_leaves) in [(0, 0), (5, 0), (0, 7), (5, 7)] {
        let event = trade(maker_leaves, taker_leaves);
        let mut frames = Vec::new();
        enc.event(&event, 77, 88, |account, f| {
            frames.push((account, f.to_vec()))
        });
        assert_eq!(frames.len(), 2);
        let decoded: Vec<(u32, ExecutionReport)> = frames
            .iter()
            .map(|(a, f)| match engine(f) {
                EngineMessage::ExecutionReport(r) => (*a, r),
                other => panic!("not a report: {other:?}"),
            })
            .collect();
        let (maker_account, maker) = decoded[0];
        let (taker_account, taker) = decoded[1];
        assert_eq!((maker_account, taker_account), (100, 200));
        let by_leaves = |l| {
            if l == 0 {
                ExecType::Filled
            } else {
                ExecType::PartiallyFilled
            }
        };
        assert_eq!(maker.exec_type, by_leaves(maker_leaves));
        assert_eq!(taker.exec_type, by_leaves(taker_leaves));
        assert_eq!(
            (maker.order_id, maker.client_order_id, maker.leaves_qty),
            (11, 1_100, maker_leaves)
        );
        assert_eq!(
            (taker.order_id, taker.client_order_id, taker.leaves_qty),
            (12, 1_200, taker_leaves)
        );
        assert_eq!(
            (maker.side, taker.side),
            (Some(Side::Sell), Some(Side::Buy))
        );
        assert_eq!(
            (maker.liquidity, taker.liquidity),
            (Liquidity::Maker, Liquidity::Taker)
        );
        for r in [maker, taker] {
            assert_eq!((r.trade_id, r.last_qty, r.last_price), (900, 30, 1_000_100));
            assert_eq!((r.symbol, r.seq, r.timestamp_ns), (Some(2), 77, 88));
            assert_eq!((r.reject_reason, r.cancel_reason), (None, None));
        }
        // The pure mapping says the same, without frames.
        let pure: Vec<_> = execution_reports(&event, 77, 88).collect();
        assert_eq!(pure, decoded);
        let print = trade_print(&event, 88).unwrap();
        assert_eq!(
            engine(enc.trade(&print)),
            EngineMessage::Trade(TradePrint {
                symbol: 2,
                trade_id: 900,
                price: 1_000_100,
                qty: 30,
                aggressor: Side::Buy,
                timestamp_ns: 88,
            })
        );
    }
}

#[test]
fn other_events_give_one_report_each() {
    let mut enc = FrameEncoder::new();
    let cases = [
        (
            Event::Accepted {
                order_id: 1,
                account: 9,
                client_order_id: 2,
                symbol: 3,
                side: Side::Sell,
                price: 400,
                qty: 50,
            },
            ExecutionReport {
                order_id: 1,
                client_order_id: 2,
                symbol: Some(3),
                side: Some(Side::Sell),
                price: 400,
                qty: 50,
                leaves_qty: 50,
                ..ExecutionReport::empty(ExecType::Accepted)
            },
        ),
        (
            Event::Cancelled {
                order_id: 1,
                account: 9,
                client_order_id: 6,
                symbol: 3,
                side: Side::Buy,
                qty: 20,
                reason: CancelReason::ImmediateOrCancel,
            },
            ExecutionReport {
                order_id: 1,
                client_order_id: 6,
                symbol: Some(3),
                side: Some(Side::Buy),
                qty: 20,
                cancel_reason: Some(CancelReason::ImmediateOrCancel),
                reason_text: "immediate_or_cancel",
                ..ExecutionReport::empty(ExecType::Cancelled)
            },
        ),
        (
            Event::Replaced {
                order_id: 1,
                account: 9,
                client_order_id: 7,
                symbol: 3,
                side: Side::Buy,
                price: 500,
                qty: 10,
                kept_priority: true,
            },
            ExecutionReport {
                order_id: 1,
                client_order_id: 7,
                symbol: Some(3),
                side: Some(Side::Buy),
                price: 500,
                qty: 10,
                leaves_qty: 10,
                kept_priority: true,
                ..ExecutionReport::empty(ExecType::Replaced)
            },
        ),
        (
            Event::MassCancelled {
                account: 9,
                client_order_id: 8,
                symbol: None,
                count: 4,
            },
            ExecutionReport {
                client_order_id: 8,
                mass_cancel_count: 4,
                ..ExecutionReport::empty(ExecType::MassCancelled)
            },
        ),
        (
            Event::MassCancelled {
                account: 9,
                client_order_id: 8,
                symbol: Some(0),
                count: 0,
            },
            ExecutionReport {
                client_order_id: 8,
                symbol: Some(0),
                ..ExecutionReport::empty(ExecType::MassCancelled)
            },
        ),
    ];
    for (event, want) in cases {
        let want = ExecutionReport {
            seq: 31,
            timestamp_ns: 32,
            ..want
        };
        let mut seen = 0;
        enc.event(&event, 31, 32, |account, f| {
            let EngineMessage::ExecutionReport(r) = decode_engine(f).unwrap() else {
                panic!("not a report");
            };
            assert_eq!((account, r), (9, want), "{event:?}");
            seen += 1;
        });
        assert_eq!(seen, 1, "{event:?}");
        assert_eq!(trade_print(&event, 0), None);
    }
}

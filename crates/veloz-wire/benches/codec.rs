//! Wire codec benchmark: the order path's share of the shard's time per order.
//!
//! - `decode/new_order`: [`decode_client`] of a NewOrder frame (the inline-checked fast
//!   path); `decode/new_order_verified`: the same through the FlatBuffers verifier and the
//!   generated readers ([`decode_client_verified`]); `decode/verify_only`: [`verify_frame`]
//!   alone, the verifier's share;
//! - `encode/*`: one execution report frame, by the prepared template
//!   ([`FrameEncoder::execution_report`]) and by the FlatBuffers builder
//!   ([`FrameEncoder::execution_report_with_builder`], the reference the template is
//!   tested against), for an Accepted report, a fill and a cancel (with reason text);
//! - `encode/stream_report_fill`: what the gateway calls per delivered report
//!   ([`FrameEncoder::stream_report`]: event -> report -> frame).
//!
//! Run: `cargo bench -p veloz-wire --bench codec`. Inputs are fixed; nothing is random.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use veloz_core::{
    CancelReason, Command, Event, Fill, NewOrder, OrderKind, Part, SelfTradePrevention, Side,
    TimeInForce,
};
use veloz_wire::decode::decode_client_verified;
use veloz_wire::{decode_client, execution_reports, verify_frame, FrameEncoder, VerifyLimits};

fn new_order_frame() -> Vec<u8> {
    let mut enc = FrameEncoder::new();
    enc.command(&Command::New(NewOrder {
        account: 7,
        symbol: 3,
        client_order_id: 123_456_789,
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: SelfTradePrevention::Allow,
        price: 1_000_250,
        qty: 17,
    }))
    .to_vec()
}

fn events() -> [(&'static str, Event); 3] {
    [
        (
            "accepted",
            Event::Accepted {
                order_id: 42,
                account: 7,
                client_order_id: 123_456_789,
                symbol: 3,
                side: Side::Buy,
                price: 1_000_250,
                qty: 17,
            },
        ),
        (
            "fill",
            Event::Trade {
                trade_id: 99,
                symbol: 3,
                price: 1_000_250,
                qty: 5,
                aggressor: Side::Sell,
                maker: Fill {
                    order_id: 42,
                    account: 7,
                    client_order_id: 123_456_789,
                    leaves_qty: 12,
                },
                taker: Fill {
                    order_id: 43,
                    account: 8,
                    client_order_id: 55,
                    leaves_qty: 0,
                },
            },
        ),
        (
            "cancel",
            Event::Cancelled {
                order_id: 42,
                account: 7,
                client_order_id: 123_456_790,
                symbol: 3,
                side: Side::Buy,
                qty: 12,
                reason: CancelReason::Requested,
            },
        ),
    ]
}

fn decode(c: &mut Criterion) {
    let frame = new_order_frame();
    let mut g = c.benchmark_group("decode");
    g.bench_function("new_order", |b| {
        b.iter(|| black_box(decode_client(black_box(&frame), black_box(7))).is_ok())
    });
    g.bench_function("new_order_verified", |b| {
        b.iter(|| black_box(decode_client_verified(black_box(&frame), black_box(7))).is_ok())
    });
    g.bench_function("verify_only", |b| {
        b.iter(|| verify_frame(black_box(&frame), VerifyLimits::CLIENT).is_ok())
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut enc = FrameEncoder::new();
    let mut g = c.benchmark_group("encode");
    for (name, event) in events() {
        let (_, report) = execution_reports(&event, 1_000, 1_700_000_000_000_000_000)
            .next()
            .expect("every event here has a report");
        g.bench_function(format!("template_{name}"), |b| {
            b.iter(|| enc.execution_report(black_box(&report)).len())
        });
        g.bench_function(format!("builder_{name}"), |b| {
            b.iter(|| enc.execution_report_with_builder(black_box(&report)).len())
        });
    }
    let (_, fill) = events()[1];
    g.bench_function("stream_report_fill", |b| {
        b.iter(|| {
            enc.stream_report(black_box(&fill), Part::Maker, 1_000, 17, 0, 5)
                .map(<[u8]>::len)
        })
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);

//! veloz-fix throughput: frame + parse of a typical NewOrderSingle, and writing an
//! ExecutionReport. Fixed inputs, one message per iteration (Throughput::Elements(1)).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use veloz_fix::tags::*;
use veloz_fix::{frame, FrameStatus, Parser, Writer};

const TS: u64 = 1_700_000_000_123_456_789;

fn new_order_single() -> Vec<u8> {
    let mut w = Writer::new();
    w.begin(b"D");
    w.str(SENDER_COMP_ID, "C01");
    w.str(TARGET_COMP_ID, "VELOZ");
    w.uint(MSG_SEQ_NUM, 12_345);
    w.timestamp(SENDING_TIME, TS);
    w.str(CL_ORD_ID, "o12345");
    w.str(SYMBOL, "BTC-USD");
    w.char(SIDE, b'1');
    w.timestamp(TRANSACT_TIME, TS);
    w.decimal(ORDER_QTY, 15, 1);
    w.char(ORD_TYPE, b'2');
    w.decimal(PRICE, 3_712_325, 2);
    let mut out = Vec::new();
    w.finish(&mut out);
    out
}

fn bench(c: &mut Criterion) {
    let nos = new_order_single();
    let mut g = c.benchmark_group("fix");
    g.throughput(Throughput::Elements(1));

    let mut parser = Parser::new();
    g.bench_function(
        format!("frame_parse_new_order_single_{}B", nos.len()),
        |b| {
            b.iter(|| {
                let buf = black_box(&nos[..]);
                let FrameStatus::Complete(n) = frame(buf, 4096) else {
                    panic!("not a message")
                };
                let m = parser.parse(&buf[..n]).expect("parses");
                let px = m.require_decimal(PRICE, 2).expect("price");
                let qty = m.require_decimal(ORDER_QTY, 4).expect("qty");
                let side = m.require_char(SIDE).expect("side");
                let id = m.require(CL_ORD_ID).expect("id");
                let sym = m.require(SYMBOL).expect("symbol");
                black_box((px, qty, side, id.len(), sym.len(), m.seq_num()))
            })
        },
    );

    let mut w = Writer::new();
    let mut out = Vec::with_capacity(4096);
    g.bench_function("write_execution_report", |b| {
        b.iter(|| {
            out.clear();
            w.begin(b"8");
            w.str(SENDER_COMP_ID, "VELOZ");
            w.str(TARGET_COMP_ID, "CLIENT01");
            w.uint(MSG_SEQ_NUM, black_box(67_890));
            w.timestamp(SENDING_TIME, black_box(TS));
            w.str(ORDER_ID, "184467440");
            w.str(CL_ORD_ID, "ord-000012345");
            w.str(EXEC_ID, "9001");
            w.char(EXEC_TYPE, b'F');
            w.char(ORD_STATUS, b'1');
            w.str(SYMBOL, "BTC-USD");
            w.char(SIDE, b'1');
            w.decimal(LAST_QTY, black_box(5), 1);
            w.decimal(LAST_PX, black_box(3_712_325), 2);
            w.decimal(LEAVES_QTY, black_box(10), 1);
            w.decimal(CUM_QTY, black_box(5), 1);
            w.decimal_ratio(AVG_PX, black_box(18_561_625), black_box(5), 2, 2);
            w.timestamp(TRANSACT_TIME, black_box(TS));
            w.str(TRD_MATCH_ID, "77");
            w.bool(AGGRESSOR_INDICATOR, true);
            black_box(w.finish(&mut out))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The committed Python code (clients/python/src/veloz_client/generated) speaks the same
//! protocol as the Rust side: a frame built in Python with `FinishSizePrefixed` decodes in
//! Rust, and a report encoded in Rust reads back in Python field for field.
//!
//! Python: `$VELOZ_PYTHON`, else `.tools/venv/bin/python` under the crate root (`make tools`
//! creates it, with the `flatbuffers` package at the pinned version); without either the
//! test fails and says so.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::python;

use veloz_core::{
    Command as CoreCommand, NewOrder, OrderKind, RejectReason, SelfTradePrevention, Side,
    TimeInForce,
};
use veloz_wire::{decode_client, ClientMessage, ExecType, ExecutionReport, FrameEncoder};

const SCRIPT: &str = r#"
import sys
import flatbuffers
sys.path.insert(0, sys.argv[1])
from veloz_client import generated as w

b = flatbuffers.Builder(128)
w.NewOrderStart(b)
w.NewOrderAddClientOrderId(b, 2**64 - 1)
w.NewOrderAddSymbolId(b, 3)
w.NewOrderAddSide(b, w.Side.Sell)
w.NewOrderAddKind(b, w.OrderKind.Limit)
w.NewOrderAddTif(b, w.TimeInForce.Ioc)
w.NewOrderAddPostOnly(b, True)
w.NewOrderAddStp(b, w.SelfTradePrevention.CancelIncoming)
w.NewOrderAddPrice(b, 1900100)
w.NewOrderAddQty(b, 25)
order = w.NewOrderEnd(b)
w.MessageStart(b)
w.MessageAddPayloadType(b, w.Payload.NewOrder)
w.MessageAddPayload(b, order)
b.FinishSizePrefixed(w.MessageEnd(b))
print(bytes(b.Output()).hex())

frame = bytes.fromhex(sys.argv[2])
assert int.from_bytes(frame[:4], "little") == len(frame) - 4
msg = w.Message.GetRootAs(frame, 4)
assert msg.PayloadType() == w.Payload.ExecutionReport, msg.PayloadType()
t = msg.Payload()
r = w.ExecutionReport()
r.Init(t.Bytes, t.Pos)
print(r.ExecType(), r.OrderId(), r.ClientOrderId(), r.SymbolId(), r.HasSymbol(), r.Side(),
      r.RejectReason(), r.CancelReason(), r.ReasonText().decode(), r.Seq(), r.TimestampNs())
"#;

#[test]
fn python_and_rust_read_each_others_frames() {
    let report = ExecutionReport {
        order_id: 1 << 62,
        client_order_id: 9,
        symbol: Some(4),
        reject_reason: Some(RejectReason::QtyOffLot),
        reason_text: RejectReason::QtyOffLot.name(),
        seq: 77,
        timestamp_ns: 1_700_000_000_123_456_789,
        ..ExecutionReport::empty(ExecType::Rejected)
    };
    let mut enc = FrameEncoder::new();
    let hex: String = enc
        .execution_report(&report)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let client_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/python/src");
    let out = Command::new(python("flatbuffers"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&client_dir)
        .arg(&hex)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();

    // Python -> Rust.
    let frame_hex = lines.next().expect("python printed the frame");
    let frame: Vec<u8> = (0..frame_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&frame_hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(
        decode_client(&frame, 5).unwrap(),
        ClientMessage::Order(CoreCommand::New(NewOrder {
            account: 5,
            symbol: 3,
            client_order_id: u64::MAX,
            side: Side::Sell,
            kind: OrderKind::Limit,
            tif: TimeInForce::Ioc,
            post_only: true,
            stp: SelfTradePrevention::CancelIncoming,
            price: 1_900_100,
            qty: 25,
        }))
    );

    // Rust -> Python: exec type 5 (Rejected), no side (None), reject code 3, no cancel code.
    assert_eq!(
        lines.next().expect("python printed the report"),
        format!(
            "5 {} 9 4 True None 3 None qty_off_lot 77 1700000000123456789",
            1u64 << 62
        )
    );
}

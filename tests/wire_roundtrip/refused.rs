//! Well-formed FlatBuffers that are still wrong: each gives a `WireError` that names the
//! field and value (and the request) and maps to the right reject reason; nothing is
//! defaulted.

use flatbuffers::FlatBufferBuilder;
use veloz_wire::{Direction, WireError};

use super::*;

/// A frame with `payload_type` and a payload table built by `build`.
fn raw_frame(
    payload_type: fb::Payload,
    build: impl FnOnce(
        &mut FlatBufferBuilder<'static>,
    ) -> Option<flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>>,
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let payload = build(&mut fbb);
    let msg = fb::Message::create(
        &mut fbb,
        &fb::MessageArgs {
            payload_type,
            payload,
        },
    );
    fbb.finish_size_prefixed(msg, None);
    fbb.finished_data().to_vec()
}

fn raw_new_order(args: fb::NewOrderArgs) -> Vec<u8> {
    raw_frame(fb::Payload::NewOrder, |fbb| {
        Some(fb::NewOrder::create(fbb, &args).as_union_value())
    })
}

fn good_order_args() -> fb::NewOrderArgs {
    fb::NewOrderArgs {
        client_order_id: 55,
        symbol_id: 1,
        side: Some(fb::Side::Buy),
        kind: fb::OrderKind::Limit,
        tif: fb::TimeInForce::Gtc,
        post_only: false,
        stp: fb::SelfTradePrevention::Allow,
        price: 100,
        qty: 1,
    }
}

fn client_err(frame: &[u8]) -> WireError {
    match decode_client(frame, ACCOUNT) {
        Ok(m) => panic!("decoded {m:?}, expected an error"),
        Err(e) => e,
    }
}

#[test]
fn unknown_enum_values_name_field_value_and_request() {
    assert!(matches!(
        decode_client(&raw_new_order(good_order_args()), ACCOUNT),
        Ok(ClientMessage::Order(Command::New(_)))
    ));
    let cases: [(fb::NewOrderArgs, &str); 4] = [
        (
            fb::NewOrderArgs {
                side: Some(fb::Side(2)),
                ..good_order_args()
            },
            "NewOrder.side = 2 is not a valid Side (client_order_id 55)",
        ),
        (
            fb::NewOrderArgs {
                kind: fb::OrderKind(9),
                ..good_order_args()
            },
            "NewOrder.kind = 9 is not a valid OrderKind (client_order_id 55)",
        ),
        (
            fb::NewOrderArgs {
                tif: fb::TimeInForce(3),
                ..good_order_args()
            },
            "NewOrder.tif = 3 is not a valid TimeInForce (client_order_id 55)",
        ),
        (
            fb::NewOrderArgs {
                stp: fb::SelfTradePrevention(255),
                ..good_order_args()
            },
            "NewOrder.stp = 255 is not a valid SelfTradePrevention (client_order_id 55)",
        ),
    ];
    for (args, want) in cases {
        let e = client_err(&raw_new_order(args));
        assert_eq!(e.to_string(), want);
        assert_eq!(e.reject_reason(), RejectReason::MalformedMessage);
        assert_eq!(e.client_order_id(), Some(55));
        assert!(!e.is_fatal());
    }
}

#[test]
fn a_new_order_without_side_is_refused_not_defaulted() {
    let e = client_err(&raw_new_order(fb::NewOrderArgs {
        side: None,
        ..good_order_args()
    }));
    assert_eq!(
        e,
        WireError::MissingField {
            message: "NewOrder",
            field: "side",
            client_order_id: Some(55)
        }
    );
    assert_eq!(
        e.to_string(),
        "NewOrder.side is missing (client_order_id 55)"
    );
    assert_eq!(e.reject_reason(), RejectReason::MalformedMessage);
}

#[test]
fn mass_cancel_symbol_sentinel_must_be_consistent() {
    let frame = |has_symbol, symbol_id| {
        raw_frame(fb::Payload::MassCancel, |fbb| {
            Some(
                fb::MassCancel::create(
                    fbb,
                    &fb::MassCancelArgs {
                        client_order_id: 3,
                        has_symbol,
                        symbol_id,
                    },
                )
                .as_union_value(),
            )
        })
    };
    let symbol_of = |f: &[u8]| match decode_client(f, ACCOUNT).unwrap() {
        ClientMessage::Order(Command::MassCancel(m)) => m.symbol,
        other => panic!("{other:?}"),
    };
    assert_eq!(symbol_of(&frame(false, 0)), None);
    assert_eq!(symbol_of(&frame(true, 0)), Some(0));
    assert_eq!(symbol_of(&frame(true, 8)), Some(8));
    let e = client_err(&frame(false, 8));
    assert_eq!(
        e.to_string(),
        "MassCancel.symbol_id = 8 is invalid: must be 0 when has_symbol is false \
         (a mass cancel over all symbols) (client_order_id 3)"
    );
    assert_eq!(e.reject_reason(), RejectReason::MalformedMessage);
}

#[test]
fn missing_union_and_unknown_message_types_are_refused() {
    let none = raw_frame(fb::Payload::NONE, |_| None);
    assert_eq!(client_err(&none), WireError::MissingPayload);
    assert_eq!(decode_engine(&none).unwrap_err(), WireError::MissingPayload);
    assert_eq!(
        client_err(&none).reject_reason(),
        RejectReason::MalformedMessage
    );
    // A type code from the future, carrying some table: verifiable, but unknown here.
    let future = raw_frame(fb::Payload(200), |fbb| {
        Some(fb::Heartbeat::create(fbb, &fb::HeartbeatArgs { timestamp_ns: 1 }).as_union_value())
    });
    let e = client_err(&future);
    assert_eq!(e, WireError::UnknownMessageType { value: 200 });
    assert_eq!(
        e.to_string(),
        "Message.payload_type = 200 is not a known message type"
    );
    assert_eq!(e.reject_reason(), RejectReason::UnknownMessage);
    assert_eq!(decode_engine(&future).unwrap_err(), e);
}

#[test]
fn messages_in_the_wrong_direction_are_unknown_messages() {
    let mut enc = FrameEncoder::new();
    let engine_only = [
        enc.execution_report(&sample_report()).to_vec(),
        enc.trade(&TradePrint {
            symbol: 1,
            trade_id: 1,
            price: 1,
            qty: 1,
            aggressor: Side::Buy,
            timestamp_ns: 1,
        })
        .to_vec(),
        enc.logon_ack(&LogonAck {
            session_id: 1,
            heartbeat_interval_ms: 1,
            streams: 1,
            instruments: vec![],
        })
        .to_vec(),
    ];
    for (frame, name) in engine_only
        .iter()
        .zip(["ExecutionReport", "Trade", "LogonAck"])
    {
        let e = client_err(frame);
        assert_eq!(
            e,
            WireError::WrongDirection {
                message: name,
                direction: Direction::ClientToEngine
            }
        );
        assert_eq!(
            e.to_string(),
            format!("{name} cannot be sent client-to-engine")
        );
        assert_eq!(e.reject_reason(), RejectReason::UnknownMessage);
    }
    let client_only = [
        enc.logon(1, "t").to_vec(),
        enc.command(&Command::New(new_order())).to_vec(),
        enc.command(&Command::Cancel(CancelOrder {
            account: 1,
            symbol: 1,
            client_order_id: 1,
            order_id: 1,
        }))
        .to_vec(),
    ];
    for frame in &client_only {
        let e = decode_engine(frame).unwrap_err();
        assert!(
            matches!(
                e,
                WireError::WrongDirection {
                    direction: Direction::EngineToClient,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.reject_reason(), RejectReason::UnknownMessage);
    }
}

#[test]
fn inconsistent_execution_reports_are_refused_by_the_client_decoder() {
    let mut enc = FrameEncoder::new();
    let cases = [
        (
            ExecutionReport {
                exec_type: ExecType::Rejected,
                ..sample_report()
            },
            "ExecutionReport.reject_reason is missing (client_order_id 77)",
        ),
        (
            ExecutionReport {
                exec_type: ExecType::Cancelled,
                ..sample_report()
            },
            "ExecutionReport.cancel_reason is missing (client_order_id 77)",
        ),
        (
            ExecutionReport {
                symbol: None,
                ..sample_report()
            },
            "ExecutionReport.has_symbol = 0 is invalid: only a MassCancelled report can be for \
             all symbols (client_order_id 77)",
        ),
    ];
    for (r, want) in cases {
        assert_eq!(
            decode_engine(enc.execution_report(&r))
                .unwrap_err()
                .to_string(),
            want
        );
    }
    // Unknown codes in engine frames name the field too.
    let frame = raw_frame(fb::Payload::ExecutionReport, |fbb| {
        Some(
            fb::ExecutionReport::create(
                fbb,
                &fb::ExecutionReportArgs {
                    exec_type: fb::ExecType::Rejected,
                    client_order_id: 4,
                    reject_reason: Some(fb::RejectReason(99)),
                    has_symbol: true,
                    ..Default::default()
                },
            )
            .as_union_value(),
        )
    });
    assert_eq!(
        decode_engine(&frame).unwrap_err().to_string(),
        "ExecutionReport.reject_reason = 99 is not a valid RejectReason (client_order_id 4)"
    );
    let frame = raw_frame(fb::Payload::Logout, |fbb| {
        Some(
            fb::Logout::create(
                fbb,
                &fb::LogoutArgs {
                    reason: fb::LogoutReason(99),
                    text: None,
                },
            )
            .as_union_value(),
        )
    });
    assert_eq!(
        client_err(&frame).to_string(),
        "Logout.reason = 99 is not a valid LogoutReason"
    );
}

#[test]
fn a_cancel_names_an_engine_order_id_or_a_client_order_id_below_two_to_the_63() {
    let cancel = |order_id: u64, orig_client_order_id: u64| {
        raw_frame(fb::Payload::Cancel, |fbb| {
            Some(
                fb::Cancel::create(
                    fbb,
                    &fb::CancelArgs {
                        client_order_id: 9,
                        symbol_id: 1,
                        order_id,
                        orig_client_order_id,
                    },
                )
                .as_union_value(),
            )
        })
    };
    assert_eq!(
        client_err(&cancel(1 << 63, 0)).to_string(),
        format!(
            "Cancel.order_id = {} is invalid: is no engine order id (those are below 2^63) (client_order_id 9)",
            1u64 << 63
        )
    );
    assert_eq!(
        client_err(&cancel(0, u64::MAX)).to_string(),
        format!(
            "Cancel.orig_client_order_id = {} is invalid: must be below 2^63 to name an order (client_order_id 9)",
            u64::MAX
        )
    );
    // Both set: the engine id wins; by client id: the core's reference.
    let ClientMessage::Order(Command::Cancel(c)) = decode_client(&cancel(5, 7), ACCOUNT).unwrap()
    else {
        panic!("not a cancel");
    };
    assert_eq!(c.order_id, 5);
    let ClientMessage::Order(Command::Cancel(c)) = decode_client(&cancel(0, 7), ACCOUNT).unwrap()
    else {
        panic!("not a cancel");
    };
    assert_eq!(
        veloz_core::OrderRef::from_raw(c.order_id),
        veloz_core::OrderRef::ClientId(7)
    );
}

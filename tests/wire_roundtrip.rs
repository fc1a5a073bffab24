//! Every wire message survives encode -> frame -> verify -> decode unchanged, every code
//! the core defines travels through the schema's enums, core events become the right
//! execution reports, and every way a well-formed FlatBuffer can still be wrong gives a
//! WireError that names the field and value and maps to the right reject reason.

use flatbuffers::FlatBufferBuilder;
use veloz_core::{
    CancelOrder, CancelReason, Command, Event, Fill, Instrument, MassCancel, NewOrder, OrderKind,
    RejectReason, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};
use veloz_wire::generated as fb;
use veloz_wire::{
    decode_client, decode_engine, execution_reports, trade_print, ClientMessage, Direction,
    EngineMessage, ExecType, ExecutionReport, FrameEncoder, Heartbeat, InstrumentInfo, Liquidity,
    Logon, LogonAck, Logout, LogoutReason, TradePrint, WireError,
};

const ACCOUNT: u32 = 42;

fn client(frame: &[u8]) -> ClientMessage<'_> {
    decode_client(frame, ACCOUNT).unwrap_or_else(|e| panic!("decode_client: {e}"))
}

fn engine(frame: &[u8]) -> EngineMessage<'_> {
    decode_engine(frame).unwrap_or_else(|e| panic!("decode_engine: {e}"))
}

fn new_order() -> NewOrder {
    NewOrder {
        account: ACCOUNT,
        symbol: 3,
        client_order_id: u64::MAX,
        side: Side::Sell,
        kind: OrderKind::Limit,
        tif: TimeInForce::Fok,
        post_only: true,
        stp: SelfTradePrevention::CancelBoth,
        price: i64::MAX - 7,
        qty: u64::MAX,
    }
}

#[test]
fn frames_are_size_prefixed_flatbuffers() {
    let mut enc = FrameEncoder::new();
    let frame = enc.heartbeat(1).to_vec();
    let declared = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(declared, frame.len() - 4);
    // The standard size-prefixed reader agrees.
    let msg = fb::size_prefixed_root_as_message(&frame).unwrap();
    assert_eq!(msg.payload_type(), fb::Payload::Heartbeat);
}

#[test]
fn session_messages_round_trip() {
    let mut enc = FrameEncoder::new();
    assert_eq!(
        client(enc.logon(7, "s3cret")),
        ClientMessage::Logon(Logon {
            account: 7,
            token: "s3cret"
        })
    );
    assert_eq!(
        client(enc.logon(0, "")),
        ClientMessage::Logon(Logon {
            account: 0,
            token: ""
        })
    );
    for reason in LogoutReason::ALL {
        let logout = Logout {
            reason,
            text: reason.name(),
        };
        assert_eq!(client(enc.logout(&logout)), ClientMessage::Logout(logout));
        assert_eq!(engine(enc.logout(&logout)), EngineMessage::Logout(logout));
    }
    let bare = Logout {
        reason: LogoutReason::Requested,
        text: "",
    };
    assert_eq!(client(enc.logout(&bare)), ClientMessage::Logout(bare));
    for ts in [0, 1, u64::MAX] {
        let hb = Heartbeat { timestamp_ns: ts };
        assert_eq!(client(enc.heartbeat(ts)), ClientMessage::Heartbeat(hb));
        assert_eq!(engine(enc.heartbeat(ts)), EngineMessage::Heartbeat(hb));
    }
}

#[test]
fn logon_ack_round_trips_with_configured_instruments() {
    let config = veloz_config::Config::default();
    let instruments: Vec<Instrument> = config.instruments();
    let ack = LogonAck {
        session_id: 0xDEAD_BEEF_0000_0001,
        heartbeat_interval_ms: 1_000,
        instruments: instruments.iter().map(InstrumentInfo::from).collect(),
    };
    let mut enc = FrameEncoder::new();
    let frame = enc.logon_ack(&ack).to_vec();
    let EngineMessage::LogonAck(got) = engine(&frame) else {
        panic!("not a LogonAck");
    };
    assert_eq!(got, ack);
    assert_eq!(got.instruments[0].symbol, "AAPL");
    assert_eq!(got.instruments[0].tick_size, 100);
    // Empty list too.
    let empty = LogonAck {
        session_id: 1,
        heartbeat_interval_ms: 0,
        instruments: vec![],
    };
    assert_eq!(
        engine(enc.logon_ack(&empty)),
        EngineMessage::LogonAck(empty)
    );
}

#[test]
fn order_requests_round_trip_with_the_session_account() {
    let mut enc = FrameEncoder::new();
    let mut commands = vec![
        Command::New(new_order()),
        Command::New(NewOrder {
            side: Side::Buy,
            kind: OrderKind::Market,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: SelfTradePrevention::Allow,
            price: 0,
            qty: 1,
            ..new_order()
        }),
        Command::Cancel(CancelOrder {
            account: ACCOUNT,
            symbol: 0,
            client_order_id: 9,
            order_id: u64::MAX,
        }),
        Command::Replace(ReplaceOrder {
            account: ACCOUNT,
            symbol: u32::MAX,
            client_order_id: 10,
            order_id: 11,
            price: -5,
            qty: 12,
        }),
        Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 13,
            symbol: None,
        }),
        Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 14,
            symbol: Some(0),
        }),
        Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 15,
            symbol: Some(4),
        }),
    ];
    for tif in [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok] {
        for stp in [
            SelfTradePrevention::Allow,
            SelfTradePrevention::CancelResting,
            SelfTradePrevention::CancelIncoming,
            SelfTradePrevention::CancelBoth,
        ] {
            commands.push(Command::New(NewOrder {
                tif,
                stp,
                ..new_order()
            }));
        }
    }
    for cmd in &commands {
        assert_eq!(
            client(enc.command(cmd)),
            ClientMessage::Order(*cmd),
            "{cmd:?}"
        );
    }
    // The account on the wire is the session's, whatever the encoder was given.
    let other = Command::New(NewOrder {
        account: 999,
        ..new_order()
    });
    let ClientMessage::Order(got) = decode_client(enc.command(&other), 5).unwrap() else {
        panic!("not an order");
    };
    assert_eq!(got.account(), 5);
}

fn sample_report() -> ExecutionReport<'static> {
    ExecutionReport {
        exec_type: ExecType::Accepted,
        order_id: 1 << 60,
        client_order_id: 77,
        symbol: Some(2),
        side: Some(Side::Buy),
        price: 1_900_000,
        qty: 10,
        last_qty: 0,
        last_price: 0,
        leaves_qty: 10,
        trade_id: 0,
        liquidity: Liquidity::NotApplicable,
        reject_reason: None,
        cancel_reason: None,
        reason_text: "",
        seq: 123,
        timestamp_ns: 1_700_000_000_000_000_000,
        kept_priority: false,
        mass_cancel_count: 0,
    }
}

#[test]
fn execution_reports_and_trades_round_trip() {
    let mut enc = FrameEncoder::new();
    let mut reports = vec![sample_report()];
    for exec_type in ExecType::ALL {
        reports.push(ExecutionReport {
            exec_type,
            reject_reason: (exec_type == ExecType::Rejected).then_some(RejectReason::NoChange),
            cancel_reason: (exec_type == ExecType::Cancelled).then_some(CancelReason::SelfTrade),
            symbol: (exec_type != ExecType::MassCancelled).then_some(0),
            ..sample_report()
        });
    }
    reports.push(ExecutionReport {
        exec_type: ExecType::PartiallyFilled,
        last_qty: u64::MAX,
        last_price: i64::MIN,
        trade_id: u64::MAX,
        liquidity: Liquidity::Taker,
        side: None,
        kept_priority: true,
        mass_cancel_count: u32::MAX,
        reason_text: "free text ✓",
        ..sample_report()
    });
    for r in &reports {
        assert_eq!(
            engine(enc.execution_report(r)),
            EngineMessage::ExecutionReport(*r),
            "{r:?}"
        );
    }
    for aggressor in [Side::Buy, Side::Sell] {
        let t = TradePrint {
            symbol: 1,
            trade_id: 2,
            price: 3,
            qty: 4,
            aggressor,
            timestamp_ns: 5,
        };
        assert_eq!(engine(enc.trade(&t)), EngineMessage::Trade(t));
    }
}

#[test]
fn every_reject_reason_code_round_trips_through_the_schema_enum() {
    let mut enc = FrameEncoder::new();
    assert_eq!(fb::RejectReason::ENUM_VALUES.len(), RejectReason::ALL.len());
    for reason in RejectReason::ALL {
        let schema = fb::RejectReason(reason.code());
        assert_eq!(
            schema.variant_name().map(str::to_owned),
            Some(format!("{reason:?}")),
            "schema name of code {}",
            reason.code()
        );
        let event = Event::Rejected {
            account: 1,
            client_order_id: 2,
            symbol: 3,
            order_id: 4,
            reason,
        };
        let mut frames = Vec::new();
        enc.event(&event, 5, 6, |account, f| {
            frames.push((account, f.to_vec()))
        });
        assert_eq!(frames.len(), 1);
        let raw = fb::size_prefixed_root_as_message(&frames[0].1).unwrap();
        let raw = raw.payload_as_execution_report().unwrap();
        assert_eq!(raw.reject_reason(), Some(schema));
        let EngineMessage::ExecutionReport(r) = engine(&frames[0].1) else {
            panic!("not a report");
        };
        assert_eq!(r.exec_type, ExecType::Rejected);
        assert_eq!(r.reject_reason, Some(reason));
        assert_eq!(r.reason_text, reason.name());
        assert_eq!((r.order_id, r.client_order_id, r.symbol), (4, 2, Some(3)));
        assert_eq!(r.side, None);
        // And the gateway's view of the same code.
        assert_eq!(
            RejectReason::from_code(raw.reject_reason().unwrap().0),
            Some(reason)
        );
    }
}

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

// ----- well-formed FlatBuffers that are still wrong ---------------------------------------

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
                    reject_reason: Some(fb::RejectReason(14)),
                    has_symbol: true,
                    ..Default::default()
                },
            )
            .as_union_value(),
        )
    });
    assert_eq!(
        decode_engine(&frame).unwrap_err().to_string(),
        "ExecutionReport.reject_reason = 14 is not a valid RejectReason (client_order_id 4)"
    );
    let frame = raw_frame(fb::Payload::Logout, |fbb| {
        Some(
            fb::Logout::create(
                fbb,
                &fb::LogoutArgs {
                    reason: fb::LogoutReason(7),
                    text: None,
                },
            )
            .as_union_value(),
        )
    });
    assert_eq!(
        client_err(&frame).to_string(),
        "Logout.reason = 7 is not a valid LogoutReason"
    );
}

#[test]
fn the_encoder_reuses_its_buffer() {
    let mut enc = FrameEncoder::new();
    let order = Command::New(new_order());
    let first = enc.command(&order).to_vec();
    for _ in 0..1_000 {
        let report = sample_report();
        let _ = enc.execution_report(&report);
        assert_eq!(enc.command(&order), &first[..]);
    }
}

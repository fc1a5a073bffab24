//! Every wire message survives encode -> frame -> verify -> decode unchanged, every code
//! the core defines travels through the schema's enums, core events become the right
//! execution reports, and every way a well-formed FlatBuffer can still be wrong gives a
//! WireError that names the field and value and maps to the right reject reason.
//!
//! Parts: this file holds the round trips and the codes; `reports` the execution reports
//! that core events become; `refused` the well-formed FlatBuffers that are still wrong.

mod refused;
mod reports;

use veloz_core::{
    CancelOrder, CancelReason, Command, Event, Instrument, MassCancel, NewOrder, OrderKind,
    RejectReason, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};
use veloz_wire::generated as fb;
use veloz_wire::{
    decode_client, decode_engine, ClientMessage, EngineMessage, ExecType, ExecutionReport,
    FrameEncoder, Heartbeat, InstrumentInfo, Liquidity, Logon, LogonAck, Logout, LogoutReason,
    StreamResumed, TradePrint,
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
            token: "s3cret",
            resume_after: None,
            cancel_on_disconnect: None,
        })
    );
    assert_eq!(
        client(enc.logon_resuming(7, "s3cret", Some(&[0, 41, u64::MAX]))),
        ClientMessage::Logon(Logon {
            account: 7,
            token: "s3cret",
            resume_after: Some(vec![0, 41, u64::MAX]),
            cancel_on_disconnect: None,
        })
    );
    for cod in [Some(true), Some(false)] {
        let logon = Logon {
            cancel_on_disconnect: cod,
            ..Logon::new(7, "s3cret")
        };
        assert_eq!(
            client(enc.logon_with(&logon)),
            ClientMessage::Logon(logon.clone())
        );
    }
    let resumed = StreamResumed {
        stream: 3,
        after: 41,
        last: 90,
        resent: 40,
        first_retained: 51,
    };
    assert_eq!(
        engine(enc.stream_resumed(&resumed)),
        EngineMessage::StreamResumed(resumed)
    );
    // Reports 42..=50 were no longer held.
    assert_eq!(resumed.missing(), Some((42, 50)));
    let complete = StreamResumed {
        first_retained: 42,
        ..resumed
    };
    assert_eq!(complete.missing(), None);
    assert_eq!(
        client(enc.logon(0, "")),
        ClientMessage::Logon(Logon {
            account: 0,
            token: "",
            resume_after: None,
            cancel_on_disconnect: None,
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
        streams: 2,
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
        streams: 0,
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
            reason: veloz_core::CancelReason::MassCancel,
        }),
        Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 14,
            symbol: Some(0),
            reason: veloz_core::CancelReason::MassCancel,
        }),
        Command::MassCancel(MassCancel {
            account: ACCOUNT,
            client_order_id: 15,
            symbol: Some(4),
            reason: veloz_core::CancelReason::MassCancel,
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
        stream: 1,
        stream_seq: 1 << 40,
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

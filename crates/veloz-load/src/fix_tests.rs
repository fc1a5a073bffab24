//! Tests of the load's FIX codec: commands through the encoder and the veloz-fix parser,
//! captured engine messages into the reports the connection logic reads.

use super::*;
use veloz_core::{CancelOrder, MassCancel, NewOrder, ReplaceOrder};

const BASE: u64 = 5 << ID_BITS;

fn session() -> FixSession {
    let mut aapl = Instrument::simple(1, "AAPL");
    aapl.price_scale = 4;
    let msft = Instrument::simple(2, "MSFT");
    FixSession::new(&FixParams {
        addr: "127.0.0.1:1".parse().unwrap(),
        target_comp_id: "VELOZ",
        account: 7,
        token: "t",
        index: 3,
        heartbeat_s: 5,
        base: BASE,
        slots: 16,
        instruments: &[aapl, msft],
    })
}

/// Encode `cmd`, frame and parse it back: (tag, value) pairs.
fn round_trip(s: &mut FixSession, cmd: &Command) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    s.command(cmd, &mut out);
    assert_eq!(frame(&out, MAX_MESSAGE), FrameStatus::Complete(out.len()));
    let mut p = Parser::new();
    let m = p.parse(&out).unwrap();
    veloz_fix::dictionary::validate(&m).unwrap();
    m.fields()
        .map(|(t, v)| (t, String::from_utf8(v.to_vec()).unwrap()))
        .collect()
}

fn get(fields: &[(u32, String)], tag: u32) -> &str {
    fields
        .iter()
        .find(|f| f.0 == tag)
        .map_or("", |f| f.1.as_str())
}

/// Feed `msg` (a whole message built with `w`) to the session.
fn feed(s: &mut FixSession, msg_type: &[u8], f: impl FnOnce(&mut Writer)) -> Inbound {
    let mut w = Writer::new();
    w.begin(msg_type);
    w.str(tags::SENDER_COMP_ID, "VELOZ");
    w.str(tags::TARGET_COMP_ID, "LOAD-7-3");
    w.uint(tags::MSG_SEQ_NUM, 2);
    w.timestamp(tags::SENDING_TIME, 1_700_000_000_000_000_000);
    f(&mut w);
    let mut bytes = Vec::new();
    w.finish(&mut bytes);
    let buf = s.read_buf();
    buf[..bytes.len()].copy_from_slice(&bytes);
    s.commit(bytes.len());
    let mut out = Vec::new();
    let got = s.next(&mut out).unwrap().unwrap();
    assert_eq!(s.next(&mut out).unwrap(), None);
    got
}

#[test]
fn commands_encode_as_fix_and_parse_back() {
    let mut s = session();
    let new = NewOrder {
        tif: TimeInForce::Ioc,
        ..NewOrder::limit(7, 1, BASE | 1, Side::Sell, 1_901_200, 30)
    };
    let f = round_trip(&mut s, &Command::New(new));
    assert_eq!(get(&f, tags::MSG_TYPE), "D");
    assert_eq!(get(&f, tags::SENDER_COMP_ID), "LOAD-7-3");
    assert_eq!(get(&f, tags::TARGET_COMP_ID), "VELOZ");
    assert_eq!(get(&f, tags::MSG_SEQ_NUM), "1");
    assert_eq!(get(&f, tags::CL_ORD_ID), (BASE | 1).to_string());
    assert_eq!(get(&f, tags::SYMBOL), "AAPL");
    assert_eq!(get(&f, tags::SIDE), "2");
    assert_eq!(get(&f, tags::ORDER_QTY), "30");
    assert_eq!(get(&f, tags::ORD_TYPE), "2");
    assert_eq!(get(&f, tags::PRICE), "190.12");
    assert_eq!(get(&f, tags::TIME_IN_FORCE), "3");

    // The order is known (side, CumQty 10) once a report said so.
    let filled = feed(&mut s, b"8", |w| {
        exec_fields(w, BASE | 1, 99, b'F', b'1');
        w.uint(tags::LEAVES_QTY, 20);
        w.uint(tags::CUM_QTY, 10);
    });
    assert!(matches!(filled, Inbound::Report(r) if r.exec_type == ExecType::PartiallyFilled));
    let cancel = CancelOrder {
        account: 0,
        symbol: 1,
        client_order_id: BASE | 2,
        order_id: 99,
    };
    let f = round_trip(&mut s, &Command::Cancel(cancel));
    assert_eq!(get(&f, tags::MSG_TYPE), "F");
    assert_eq!(get(&f, tags::MSG_SEQ_NUM), "2");
    assert_eq!(get(&f, tags::ORDER_ID), "99");
    assert_eq!(get(&f, tags::SIDE), "2");
    let replace = ReplaceOrder {
        account: 0,
        symbol: 1,
        client_order_id: BASE | 3,
        order_id: 99,
        price: 1_900_000,
        qty: 25,
    };
    let f = round_trip(&mut s, &Command::Replace(replace));
    assert_eq!(get(&f, tags::MSG_TYPE), "G");
    assert_eq!(get(&f, tags::PRICE), "190");
    assert_eq!(get(&f, tags::ORDER_QTY), "35", "CumQty 10 + 25 open");
    assert_eq!(get(&f, tags::ORD_TYPE), "2");
    let f = round_trip(
        &mut s,
        &Command::MassCancel(MassCancel::requested(0, BASE, None)),
    );
    assert_eq!(get(&f, tags::MSG_TYPE), "q");
    assert_eq!(get(&f, tags::MASS_CANCEL_REQUEST_TYPE), "7");
    assert_eq!(get(&f, tags::MSG_SEQ_NUM), "4");
}

fn exec_fields(w: &mut Writer, coid: u64, order_id: u64, exec: u8, status: u8) {
    w.uint(tags::ORDER_ID, order_id);
    w.uint(tags::CL_ORD_ID, coid);
    w.str(tags::EXEC_ID, "0-1");
    w.char(tags::EXEC_TYPE, exec);
    w.char(tags::ORD_STATUS, status);
    w.str(tags::SYMBOL, "AAPL");
    w.char(tags::SIDE, b'2');
    w.uint(tags::ORDER_QTY, 30);
    w.decimal(tags::PRICE, 1_901_200, 4);
}

#[test]
fn execution_reports_become_skim_reports() {
    let mut s = session();
    // Captured from the engine: a taker fill of a sell of 30 AAPL at 190.12.
    let fill = feed(&mut s, b"8", |w| {
        exec_fields(w, BASE | 1, 42, b'F', b'2');
        w.uint(tags::LAST_QTY, 30);
        w.decimal(tags::LAST_PX, 1_901_300, 4);
        w.uint(tags::TRD_MATCH_ID, 5);
        w.bool(tags::AGGRESSOR_INDICATOR, true);
        w.uint(tags::LEAVES_QTY, 0);
        w.uint(tags::CUM_QTY, 30);
    });
    assert_eq!(
        fill,
        Inbound::Report(skim::Report {
            exec_type: ExecType::Filled,
            order_id: 42,
            client_order_id: BASE | 1,
            symbol: Some(1),
            side: Some(Side::Sell),
            price: 1_901_200,
            last_price: 1_901_300,
            leaves_qty: 0,
            liquidity: Liquidity::Taker,
            reject_reason: None,
        })
    );
    let rejected = feed(&mut s, b"8", |w| {
        exec_fields(w, BASE | 2, 0, b'8', b'8');
        w.str(tags::TEXT, "price_off_tick (2)");
    });
    assert!(matches!(rejected, Inbound::Report(r)
        if r.exec_type == ExecType::Rejected && r.reject_reason == Some(RejectReason::PriceOffTick)));
    let refused = feed(&mut s, b"9", |w| {
        w.uint(tags::ORDER_ID, 42);
        w.uint(tags::CL_ORD_ID, BASE | 3);
        w.str(
            tags::TEXT,
            "OrderQty (38) 5 must be above the quantity already filled (30)",
        );
    });
    assert!(matches!(refused, Inbound::Report(r)
        if r.exec_type == ExecType::Rejected && r.order_id == 42 && r.reject_reason.is_none()));
    assert_eq!(
        s.reject_text(),
        "OrderQty (38) N must be above the quantity already filled (N)"
    );
    let mass = feed(&mut s, b"r", |w| w.uint(tags::CL_ORD_ID, BASE));
    assert!(matches!(mass, Inbound::Report(r) if r.exec_type == ExecType::MassCancelled));
    let logout = feed(&mut s, b"5", |w| w.str(tags::TEXT, "bye"));
    assert_eq!((logout, s.reject_text()), (Inbound::Logout, "bye"));
}

#[test]
fn session_rejects_answer_their_request_and_test_requests_are_answered() {
    let mut s = session();
    let new = NewOrder::limit(7, 2, BASE | 9, Side::Buy, 100, 1);
    round_trip(&mut s, &Command::New(new));
    let r = feed(&mut s, b"3", |w| {
        w.uint(tags::REF_SEQ_NUM, 1);
        w.uint(tags::SESSION_REJECT_REASON, 5);
    });
    assert!(matches!(r, Inbound::Report(r)
        if r.exec_type == ExecType::Rejected && r.client_order_id == BASE | 9));
    assert_eq!(s.reject_text(), "session reject 5");
    let stray = feed(&mut s, b"j", |w| w.uint(tags::REF_SEQ_NUM, 77));
    assert_eq!(stray, Inbound::Stray);

    let mut w = Writer::new();
    w.begin(b"1");
    w.str(tags::TEST_REQ_ID, "ping-1");
    let mut bytes = Vec::new();
    w.finish(&mut bytes);
    s.read_buf()[..bytes.len()].copy_from_slice(&bytes);
    s.commit(bytes.len());
    let mut out = Vec::new();
    assert_eq!(s.next(&mut out).unwrap(), Some(Inbound::Session));
    let mut p = Parser::new();
    let m = p.parse(&out).unwrap();
    assert_eq!(m.msg_type(), b"0");
    assert_eq!(m.get(tags::TEST_REQ_ID), Some(&b"ping-1"[..]));
    assert_eq!(m.get(tags::MSG_SEQ_NUM), Some(&b"2"[..]));
}

//! The FIX 4.4 acceptor against a real FIX engine: QuickFIX C++ (its Python binding,
//! `make tools` installs it into `.tools/venv`) as the initiator, run by
//! `tests/fix/initiator.py`, which validates everything the engine sends against the subset
//! dictionary `schemas/fix44-veloz.xml`. A binary-protocol session of another account trades
//! against the FIX orders, so the FIX client gets fills, live and while logged out.
//!
//! Run it as `flock /tmp/veloz-e2e.lock cargo test --test fix_quickfix`.

mod common;
#[path = "fix/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use harness::*;
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

#[test]
fn quickfix_initiator_trades_resends_and_survives_a_restart() {
    let _serial = serial();
    let dir = TempDir::new("fix-quickfix");
    let config = test_config(dir.path(), "group", "");
    let mut engine = EngineProcess::start(&config);
    let fix = engine.fix_addr();
    let work = dir.path().join("initiator");
    std::fs::create_dir_all(&work).unwrap();
    let mut ini = Initiator::start(work);

    let aapl = instrument("AAPL");
    let msft = instrument("MSFT");
    let (p, tick) = (aapl.reference_price, aapl.tick_size);
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).expect("bob logs on");
    let mut bob_coid = 1000;
    let mut bob_buys = |bob: &mut Client, price: i64, qty: u64| {
        bob_coid += 1;
        bob.send(&limit(aapl.id, bob_coid, Side::Buy, price, qty))
            .unwrap();
        let acc = bob_report(bob);
        assert_eq!(acc.exec_type, ExecType::Accepted, "{acc:?}");
        let fill = bob_report(bob);
        assert_eq!(
            (fill.exec_type, fill.last_qty, fill.last_price),
            (ExecType::Filled, qty, price),
            "{fill:?}"
        );
    };

    // Logon: the engine answers with its own Logon, HeartBtInt echoed.
    ini.connect(&fix, None);
    let logon = ini.wait("the engine's Logon", |e| e.is("admin_in", "A"));
    expect_fields(
        &mut ini,
        &logon,
        &[(49, ENGINE_COMP_ID), (56, SENDER), (98, "0"), (108, "2")],
    );
    // ExecIDs of everything received as new (not PossDup) messages.
    let mut exec_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut note = |ini: &Initiator, e: &Event| {
        if e.msg_type() == "8" && !e.poss_dup() {
            let id = e.f(17).to_string();
            assert!(!id.is_empty(), "no ExecID (17) in {}", e.0);
            if let Some(first) = exec_ids.insert(id.clone(), e.0.to_string()) {
                panic!("ExecID {id} twice:\n{first}\n{}\n{}", e.0, ini.context());
            }
        }
    };

    // A limit order rests: 150=0.
    let (p0, p1) = (px(&aapl, p), px(&aapl, p + tick));
    ini.send(
        "D",
        &[
            (11, "1"),
            (55, "AAPL"),
            (54, "2"),
            (40, "2"),
            (44, &p0),
            (38, "10"),
            (59, "1"),
            (60, "$now"),
        ],
    );
    let new = ini.app("8", "150=0 for ClOrdID 1", |e| e.f(11) == "1");
    note(&ini, &new);
    expect_fields(
        &mut ini,
        &new,
        &[
            (150, "0"),
            (39, "0"),
            (55, "AAPL"),
            (54, "2"),
            (38, "10"),
            (44, &p0),
            (151, "10"),
            (14, "0"),
        ],
    );
    let order_id = new.f(37).to_string();
    assert!(!order_id.is_empty(), "no OrderID (37) in {}", new.0);

    // Bob buys 4 of them over the binary protocol: a partial fill, 150=F.
    bob_buys(&mut bob, p, 4);
    let fill = ini.app("8", "150=F for ClOrdID 1", |e| e.f(150) == "F");
    note(&ini, &fill);
    expect_fields(
        &mut ini,
        &fill,
        &[
            (11, "1"),
            (37, &order_id),
            (39, "1"),
            (31, &p0),
            (32, "4"),
            (14, "4"),
            (151, "6"),
            (6, &p0),
            (38, "10"),
        ],
    );

    // Replace: one tick higher, OrderQty 8 (the total, 4 of it filled): 150=5.
    ini.send(
        "G",
        &[
            (11, "2"),
            (41, "1"),
            (37, &order_id),
            (55, "AAPL"),
            (54, "2"),
            (40, "2"),
            (44, &p1),
            (38, "8"),
            (60, "$now"),
        ],
    );
    let replaced = ini.app("8", "150=5 for ClOrdID 2", |e| e.f(11) == "2");
    note(&ini, &replaced);
    expect_fields(
        &mut ini,
        &replaced,
        &[
            (150, "5"),
            (39, "1"),
            (41, "1"),
            (37, &order_id),
            (44, &p1),
            (38, "8"),
            (14, "4"),
            (151, "4"),
        ],
    );

    // Status: 150=I, the request id echoed.
    ini.send(
        "H",
        &[
            (11, "2"),
            (37, &order_id),
            (55, "AAPL"),
            (54, "2"),
            (790, "st-1"),
        ],
    );
    let status = ini.app("8", "150=I for ClOrdID 2", |e| e.f(150) == "I");
    expect_fields(
        &mut ini,
        &status,
        &[
            (11, "2"),
            (37, &order_id),
            (790, "st-1"),
            (39, "1"),
            (14, "4"),
            (151, "4"),
            (44, &p1),
        ],
    );

    // Cancel: 150=4.
    ini.send(
        "F",
        &[
            (11, "3"),
            (41, "2"),
            (37, &order_id),
            (55, "AAPL"),
            (54, "2"),
            (38, "8"),
            (60, "$now"),
        ],
    );
    let cancelled = ini.app("8", "150=4 for ClOrdID 3", |e| e.f(11) == "3");
    note(&ini, &cancelled);
    expect_fields(
        &mut ini,
        &cancelled,
        &[
            (150, "4"),
            (39, "4"),
            (41, "2"),
            (37, &order_id),
            (14, "4"),
            (151, "0"),
        ],
    );

    // Cancel and replace of an unknown order: OrderCancelReject (9), 434 = 1 / 2.
    ini.send(
        "F",
        &[
            (11, "4"),
            (41, "999999"),
            (55, "AAPL"),
            (54, "2"),
            (60, "$now"),
        ],
    );
    let refused = ini.app("9", "OrderCancelReject for ClOrdID 4", |_| true);
    expect_fields(&mut ini, &refused, &[(11, "4"), (41, "999999"), (434, "1")]);
    assert!(refused.has(102) && refused.has(58), "{}", refused.0);
    ini.send(
        "G",
        &[
            (11, "5"),
            (41, "999998"),
            (55, "AAPL"),
            (54, "2"),
            (40, "2"),
            (44, &p1),
            (38, "3"),
            (60, "$now"),
        ],
    );
    let refused = ini.app("9", "OrderCancelReject for ClOrdID 5", |_| true);
    expect_fields(&mut ini, &refused, &[(11, "5"), (41, "999998"), (434, "2")]);

    // Mass cancel: by symbol (530=1), then all (530=7); 533 counts the orders. These orders
    // carry ClOrdIDs that are not numbers (an OMS's usual), one with leading zeros: every
    // report names them exactly as sent.
    let m = px(&msft, msft.reference_price - 10 * msft.tick_size);
    let (b1, b2) = (px(&aapl, p - 10 * tick), px(&aapl, p - 11 * tick));
    let mut resting = BTreeMap::new();
    for (coid, sym, price) in [
        ("ORD-6", "AAPL", &b1),
        ("ord/7", "AAPL", &b2),
        ("0008", "MSFT", &m),
    ] {
        ini.send(
            "D",
            &[
                (11, coid),
                (55, sym),
                (54, "1"),
                (40, "2"),
                (44, price),
                (38, "3"),
                (60, "$now"),
            ],
        );
        let e = ini.app("8", "150=0 of a resting buy", |e| e.f(11) == coid);
        note(&ini, &e);
        expect_fields(&mut ini, &e, &[(150, "0"), (55, sym)]);
        resting.insert(coid, e.f(37).to_string());
    }
    // A status request names an order by its text ClOrdID.
    ini.send(
        "H",
        &[(11, "ORD-6"), (55, "AAPL"), (54, "1"), (790, "st-text")],
    );
    let status = ini.app("8", "150=I for ClOrdID ORD-6", |e| e.f(150) == "I");
    let id = resting["ORD-6"].clone();
    expect_fields(
        &mut ini,
        &status,
        &[(11, "ORD-6"), (37, &id), (39, "0"), (790, "st-text")],
    );
    ini.send("q", &[(11, "9"), (530, "1"), (55, "AAPL"), (60, "$now")]);
    let report = ini.app("r", "OrderMassCancelReport for 530=1", |_| true);
    expect_fields(
        &mut ini,
        &report,
        &[(11, "9"), (530, "1"), (531, "1"), (533, "2")],
    );
    for coid in ["ORD-6", "ord/7"] {
        let id = resting[coid].clone();
        let e = ini.app("8", "150=4 by the mass cancel", |e| {
            e.f(150) == "4" && e.f(37) == id
        });
        note(&ini, &e);
        expect_fields(&mut ini, &e, &[(39, "4"), (151, "0"), (11, coid)]);
    }
    ini.send("q", &[(11, "10"), (530, "7"), (60, "$now")]);
    let report = ini.app("r", "OrderMassCancelReport for 530=7", |_| true);
    expect_fields(
        &mut ini,
        &report,
        &[(11, "10"), (530, "7"), (531, "7"), (533, "1")],
    );
    let id = resting["0008"].clone();
    let e = ini.app("8", "150=4 of the MSFT order", |e| {
        e.f(150) == "4" && e.f(37) == id
    });
    note(&ini, &e);
    expect_fields(&mut ini, &e, &[(11, "0008")]);

    // Prices off tick, or with more decimals than the instrument has: 150=8 naming 44.
    let off_tick = px(&aapl, p + tick / 2);
    let too_fine = format!("{p0}1");
    for (coid, price) in [("11", off_tick.as_str()), ("12", too_fine.as_str())] {
        ini.send(
            "D",
            &[
                (11, coid),
                (55, "AAPL"),
                (54, "2"),
                (40, "2"),
                (44, price),
                (38, "1"),
                (60, "$now"),
            ],
        );
        let e = ini.app("8", "150=8 for a bad price", |e| e.f(11) == coid);
        note(&ini, &e);
        expect_fields(&mut ini, &e, &[(150, "8"), (39, "8")]);
        assert!(
            e.f(58).contains("Price (44)") && e.has(103),
            "the reject of price {price} must name Price (44) in 58 and carry 103: {}",
            e.0
        );
    }
    ini.settle(Duration::from_millis(300));
    assert!(
        ini.untaken_app().is_empty(),
        "unexpected application messages: {:?}\n{}",
        ini.untaken_app(),
        ini.context()
    );

    // An order rests, the client logs out, bob fills it: the fill comes at the next logon.
    let p2 = px(&aapl, p + 2 * tick);
    ini.send(
        "D",
        &[
            (11, "13"),
            (55, "AAPL"),
            (54, "2"),
            (40, "2"),
            (44, &p2),
            (38, "5"),
            (60, "$now"),
        ],
    );
    let rests = ini.app("8", "150=0 for ClOrdID 13", |e| e.f(11) == "13");
    note(&ini, &rests);
    let gap_from = rests.seq();
    ini.disconnect();
    bob_buys(&mut bob, p + 2 * tick, 5);
    // Log on again expecting the engine's MsgSeqNum `gap_from`: QuickFIX asks for a resend
    // of everything from there; the engine resends its reports (PossDupFlag=Y, same
    // ExecIDs) and gap-fills its admin messages.
    let logout_seq = ini
        .all
        .iter()
        .rev()
        .find(|e| e.is("admin_in", "5"))
        .map_or(0, Event::seq);
    let before = ini.all.len();
    ini.connect(&fix, Some(gap_from));
    let logon = ini.wait("the engine's Logon", |e| e.is("admin_in", "A"));
    if logon.seq() <= logout_seq {
        ini.mismatches.push(format!(
            "the engine's Logon on reconnecting has MsgSeqNum {}, not above its Logout {logout_seq} \
             of the previous connection (a number sent twice)",
            logon.seq()
        ));
    }
    let resend = ini.wait("QuickFIX's ResendRequest", |e| e.is("admin_out", "2"));
    expect_fields(&mut ini, &resend, &[(7, &gap_from.to_string()), (16, "0")]);
    let again = ini.app("8", "the resent 150=0 of ClOrdID 13", |e| {
        e.f(11) == "13" && e.f(150) == "0"
    });
    assert!(
        again.poss_dup() && again.has(122) && again.seq() == gap_from,
        "the resent report must carry 43=Y, 122 and MsgSeqNum {gap_from}: {}",
        again.0
    );
    assert_eq!(again.f(17), rests.f(17), "resent with another ExecID");
    let late = ini.app("8", "the fill of ClOrdID 13 made while logged out", |e| {
        e.f(11) == "13" && e.f(150) == "F"
    });
    expect_fields(
        &mut ini,
        &late,
        &[(39, "2"), (31, &p2), (32, "5"), (14, "5"), (151, "0")],
    );
    // The engine's Logout and Logon lie in the range: gap-filled.
    let gap_fill = |e: &Event| e.is("admin_in", "4") && e.f(123) == "Y";
    if ini.try_wait(gap_fill, Duration::from_secs(3)).is_none() {
        ini.mismatches.push(format!(
            "no SequenceReset-GapFill (4, 123=Y) answering the ResendRequest 7={gap_from} 16=0 \
             within 3 s: the engine's Logout and Logon are in that range (QuickFIX drops, \
             unlogged, a GapFill numbered at or below what it processed: see its messages log)"
        ));
    }
    ini.settle(Duration::from_millis(500));
    let after: Vec<&Event> = ini.all[before..].iter().collect();
    for e in after
        .iter()
        .filter(|e| e.name() == "app_in" && e.poss_dup())
    {
        let late_fill = e.f(11) == "13" && e.f(150) == "F";
        assert!(
            late_fill || exec_ids.contains_key(e.f(17)),
            "resent report with an ExecID never sent before: {}\n{}",
            e.0,
            ini.context()
        );
    }
    let fills = after
        .iter()
        .filter(|e| e.app_in("8") && e.f(11) == "13" && e.f(150) == "F")
        .count();
    assert_eq!(
        fills,
        1,
        "the late fill must arrive once\n{}",
        ini.context()
    );

    // Restart the engine on the same data dir: both sides' numbers continue, no reset.
    ini.disconnect();
    let last = |ini: &Initiator, event: &str| {
        ini.all
            .iter()
            .rev()
            .find(|e| e.is(event, "5"))
            .map_or(0, Event::seq)
    };
    let (next_out, next_in) = (last(&ini, "admin_out") + 1, last(&ini, "admin_in") + 1);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let mut engine = EngineProcess::start(&config);
    let fix = engine.fix_addr();
    let before = ini.all.len();
    ini.connect(&fix, None);
    let sent = ini.wait("our Logon", |e| e.is("admin_out", "A"));
    let got = ini.wait("the engine's Logon", |e| e.is("admin_in", "A"));
    // Both continue after the Logout exchange.
    assert_eq!(
        (sent.seq(), got.seq(), sent.f(141), got.f(141)),
        (next_out, next_in, "", ""),
        "sequence numbers after the restart\n{}",
        ini.context()
    );
    ini.send("H", &[(11, "13"), (55, "AAPL"), (54, "2"), (790, "st-2")]);
    let status = ini.app("8", "150=I for ClOrdID 13 after the restart", |e| {
        e.f(150) == "I"
    });
    expect_fields(
        &mut ini,
        &status,
        &[(11, "13"), (790, "st-2"), (39, "2"), (14, "5"), (151, "0")],
    );
    ini.settle(Duration::from_millis(300));
    let trouble: Vec<&Event> = ini.all[before..]
        .iter()
        .filter(|e| e.is("admin_out", "2") || e.is("admin_out", "5") || e.name() == "logout")
        .collect();
    assert!(
        trouble.is_empty(),
        "resend or logout after the restart: {trouble:?}\n{}",
        ini.context()
    );
    ini.disconnect();

    // QuickFIX found nothing to reject in what the engine sent, and the engine nothing in
    // what QuickFIX sent.
    let rejects: Vec<&Event> = ini
        .all
        .iter()
        .filter(|e| e.is("admin_out", "3") || e.is("admin_in", "3") || e.app_in("j"))
        .collect();
    assert!(
        rejects.is_empty(),
        "session or business rejects: {rejects:?}\n{}",
        ini.context()
    );
    assert!(
        ini.mismatches.is_empty(),
        "wrong fields:\n{}\n{}",
        ini.mismatches.join("\n"),
        ini.context()
    );
    drop(ini);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

//! Report streams over real loopback TCP against a real `veloz serve`: a member never loses
//! a report. A fill that happens while its owner is away waits in the account's stream and
//! is resent, first and in order, at the next logon that asks for it; across a SIGKILL and
//! restart too (the stream is rebuilt from the journal); every session of the account gets
//! the whole stream; a resend beyond the retained window says exactly what it could not
//! resend.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use veloz_core::Side;
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport, StreamResumed};

const T: Duration = Duration::from_secs(10);
/// AAPL: reference 190.00, tick 0.01.
const AAPL: u32 = 1;
const PX: i64 = 1_900_000;

/// What a resuming logon received up to the last StreamResumed: the resent reports per
/// stream, in arrival order, and the StreamResumed per stream.
struct Resend {
    reports: BTreeMap<u16, Vec<ExecutionReport<'static>>>,
    resumed: BTreeMap<u16, StreamResumed>,
}

/// Log on as `who` asking for everything after `after` (per stream), and read until every
/// stream has said StreamResumed. A report of a stream after its StreamResumed fails the
/// test (the resend must come first).
fn resume(addr: &str, who: (u32, &str), after: &[u64]) -> (Client, Resend) {
    let (mut c, _) = Client::logon_resuming(addr, who.0, who.1, Some(after)).unwrap();
    let streams = c.streams();
    assert!(streams >= 1, "LogonAck announces no report stream");
    let mut got = Resend {
        reports: BTreeMap::new(),
        resumed: BTreeMap::new(),
    };
    while got.resumed.len() < streams as usize {
        match c
            .recv_within(T, "resent reports and StreamResumed")
            .unwrap()
        {
            Received::Report(r) => {
                assert!(
                    !got.resumed.contains_key(&r.stream),
                    "report {r:?} arrived after its stream's StreamResumed"
                );
                got.reports.entry(r.stream).or_default().push(r);
            }
            Received::StreamResumed(s) => {
                assert!(
                    got.resumed.insert(s.stream, s).is_none(),
                    "two StreamResumed for stream {}",
                    s.stream
                );
            }
            other => panic!("unexpected during a resend: {other:?}"),
        }
    }
    (c, got)
}

/// The next report that is not a heartbeat or a trade print.
fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

/// Alice rests a sell of 10 and logs out; Bob buys 4 then 6 against it while she is away.
/// Returns alice's Accepted.
fn fill_while_away(addr: &str) -> ExecutionReport<'static> {
    let (mut alice, _) = Client::logon(addr, ALICE.0, ALICE.1).unwrap();
    alice.send(&limit(AAPL, 1, Side::Sell, PX, 10)).unwrap();
    let accepted = report(&mut alice);
    assert_eq!(accepted.exec_type, ExecType::Accepted, "{accepted:?}");
    assert!(accepted.stream_seq >= 1, "Accepted outside any stream");
    alice.logout().unwrap();
    drop(alice);

    let (mut bob, _) = Client::logon(addr, BOB.0, BOB.1).unwrap();
    for (coid, qty) in [(11, 4), (12, 6)] {
        bob.send(&limit(AAPL, coid, Side::Buy, PX, qty)).unwrap();
        let a = report(&mut bob);
        assert_eq!(a.exec_type, ExecType::Accepted, "{a:?}");
        let f = report(&mut bob);
        assert_eq!(f.exec_type, ExecType::Filled, "bob's taker fill: {f:?}");
        assert_eq!(f.stream_seq, a.stream_seq + 1, "bob's stream has a gap");
    }
    bob.logout().unwrap();
    accepted
}

/// Alice's resent fills after her Accepted: PartiallyFilled 4 then Filled 6, numbered
/// right after it, and the StreamResumed of that stream says so.
fn assert_fills_resent(accepted: &ExecutionReport<'_>, got: &Resend, streams: u16) {
    let stream = accepted.stream;
    let fills = got.reports.get(&stream).cloned().unwrap_or_default();
    let summary: Vec<_> = fills
        .iter()
        .map(|r| {
            (
                r.exec_type,
                r.order_id,
                r.last_qty,
                r.leaves_qty,
                r.stream_seq,
            )
        })
        .collect();
    let s = accepted.stream_seq;
    let id = accepted.order_id;
    assert_eq!(
        summary,
        vec![
            (ExecType::PartiallyFilled, id, 4, 6, s + 1),
            (ExecType::Filled, id, 6, 0, s + 2),
        ],
        "resent reports of stream {stream}"
    );
    let r = got.resumed[&stream];
    assert_eq!((r.after, r.last, r.resent), (s, s + 2, 2), "{r:?}");
    assert_eq!(r.missing(), None, "{r:?}");
    for other in (0..streams).filter(|&o| o != stream) {
        assert!(
            got.reports.get(&other).is_none_or(Vec::is_empty),
            "alice has no reports on stream {other}: {:?}",
            got.reports.get(&other)
        );
        assert_eq!(got.resumed[&other].resent, 0);
    }
}

fn resume_point(accepted: &ExecutionReport<'_>, streams: u16) -> Vec<u64> {
    let mut after = vec![0; streams as usize];
    after[accepted.stream as usize] = accepted.stream_seq;
    after
}

#[test]
fn a_fill_while_the_owner_is_away_is_resent_first_at_the_next_logon() {
    let _serial = serial();
    let dir = TempDir::new("streams-away");
    let config = test_config(dir.path(), "group", "");
    let engine = EngineProcess::start(&config);
    let addr = engine.addr.clone();

    let accepted = fill_while_away(&addr);
    // Without a resend request nothing old comes: the next report is a new one.
    let (mut plain, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
    let streams = plain.streams();
    plain.send(&limit(AAPL, 2, Side::Buy, PX - 500, 1)).unwrap();
    let next = report(&mut plain);
    assert_eq!(
        (next.exec_type, next.client_order_id, next.stream_seq),
        (ExecType::Accepted, 2, accepted.stream_seq + 3),
        "a plain logon gets new reports only, numbered after the fills it missed"
    );
    plain.logout().unwrap();
    drop(plain);

    let (mut alice, got) = resume(&addr, ALICE, &resume_point(&accepted, streams));
    let stream = accepted.stream;
    let fills: Vec<_> = got.reports[&stream].iter().take(2).cloned().collect();
    assert_fills_resent(
        &accepted,
        &Resend {
            reports: BTreeMap::from([(stream, fills)]),
            resumed: got
                .resumed
                .iter()
                .map(|(&k, &v)| {
                    // The buy at PX - 0.05 (seq + 3) is resent after the fills.
                    let v = if k == stream {
                        StreamResumed {
                            last: v.last - 1,
                            resent: v.resent - 1,
                            ..v
                        }
                    } else {
                        v
                    };
                    (k, v)
                })
                .collect(),
        },
        streams,
    );
    assert_eq!(got.reports[&stream][2].stream_seq, accepted.stream_seq + 3);
    // New reports continue the stream, live.
    alice.send(&limit(AAPL, 3, Side::Buy, PX - 600, 1)).unwrap();
    let live = report(&mut alice);
    assert_eq!(live.stream_seq, accepted.stream_seq + 4, "{live:?}");
    alice.logout().unwrap();

    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn the_stream_survives_sigkill_and_restart() {
    let _serial = serial();
    let dir = TempDir::new("streams-kill");
    let config = test_config(dir.path(), "group", "");
    let engine = EngineProcess::start(&config);
    let accepted = fill_while_away(&engine.addr);
    // Every fill was acknowledged to Bob, so it is durable: SIGKILL loses none of it.
    engine.kill9();

    let engine = EngineProcess::start(&config);
    let (probe, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let streams = probe.streams();
    drop(probe);
    let (mut alice, got) = resume(&engine.addr, ALICE, &resume_point(&accepted, streams));
    assert_fills_resent(&accepted, &got, streams);
    // Resuming from 0 gives the whole stream again, Accepted first, the same numbers.
    alice.logout().unwrap();
    let (mut again, all) = resume(&engine.addr, ALICE, &vec![0; streams as usize]);
    let seqs: Vec<_> = all.reports[&accepted.stream]
        .iter()
        .map(|r| (r.exec_type, r.stream_seq))
        .collect();
    let s = accepted.stream_seq;
    assert_eq!(
        seqs[seqs.len() - 3..],
        [
            (ExecType::Accepted, s),
            (ExecType::PartiallyFilled, s + 1),
            (ExecType::Filled, s + 2),
        ]
    );
    assert_eq!(seqs[0].1, 1, "the stream starts at 1");
    again.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn every_session_of_an_account_gets_its_whole_stream() {
    let _serial = serial();
    let dir = TempDir::new("streams-mirror");
    let config = test_config(dir.path(), "none", "");
    let engine = EngineProcess::start(&config);
    let (mut one, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut two, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    one.send(&limit(AAPL, 21, Side::Buy, PX - 100, 5)).unwrap();
    let a1 = report(&mut one);
    let a2 = report(&mut two);
    assert_eq!(a1, a2, "both sessions see the same report");
    assert_eq!((a1.exec_type, a1.client_order_id), (ExecType::Accepted, 21));
    // The second session cancels the first one's order: both hear of it.
    two.send(&cancel(AAPL, 22, a1.order_id)).unwrap();
    let c2 = report(&mut two);
    let c1 = report(&mut one);
    assert_eq!(c1, c2);
    assert_eq!(
        (c1.exec_type, c1.stream_seq),
        (ExecType::Cancelled, a1.stream_seq + 1)
    );
    one.logout().unwrap();
    two.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn a_resend_beyond_the_retained_window_names_what_is_missing() {
    let _serial = serial();
    let dir = TempDir::new("streams-window");
    let config = test_config(dir.path(), "none", "resend_window = 2");
    let engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let mut last = None;
    for coid in 31..36 {
        alice
            .send(&limit(AAPL, coid, Side::Buy, PX - 1000, 1))
            .unwrap();
        last = Some(report(&mut alice));
    }
    let last = last.unwrap();
    let streams = alice.streams();
    alice.logout().unwrap();
    drop(alice);

    let (mut again, got) = resume(&engine.addr, ALICE, &vec![0; streams as usize]);
    let s = last.stream_seq;
    let resent: Vec<_> = got.reports[&last.stream]
        .iter()
        .map(|r| (r.client_order_id, r.stream_seq))
        .collect();
    assert_eq!(
        resent,
        vec![(34, s - 1), (35, s)],
        "only the window is resent"
    );
    let r = got.resumed[&last.stream];
    assert_eq!((r.first_retained, r.last, r.resent), (s - 1, s, 2), "{r:?}");
    assert_eq!(r.missing(), Some((1, s - 2)), "the gap is named: {r:?}");
    again.logout().unwrap();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

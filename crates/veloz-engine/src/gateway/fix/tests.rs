//! The FIX session layer alone (no engine, no sockets): a logon, then seeded streams of
//! valid, garbled and random bytes. Whatever comes in, nothing panics, every byte written
//! back is a well-formed FIX message, sequence numbers go up by one, and the session keeps
//! answering.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use veloz_core::SelfTradePrevention;
use veloz_fix::{tags, FrameStatus, Parser, Writer};

use super::{FixInbound, FixSession, FixShared};
use crate::auth::LogonResult;

const NOW: u64 = 1_000_000_000;
/// 2026-12-01T00:00:00Z: SendingTimes are checked against it.
const WALL: u64 = 1_796_083_200_000_000_000;

fn shared(tag: &str) -> (Arc<FixShared>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("veloz-fix-session-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = veloz_config::Config::default();
    (Arc::new(FixShared::new(&config, &dir, 2)), dir)
}

fn message(msg_type: &[u8], seq: u64, fields: &[(u32, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin(msg_type);
    w.str(tags::SENDER_COMP_ID, "CLIENT");
    w.str(tags::TARGET_COMP_ID, "VELOZ");
    w.uint(tags::MSG_SEQ_NUM, seq);
    w.timestamp(tags::SENDING_TIME, WALL);
    for (tag, v) in fields {
        w.bytes(*tag, v);
    }
    let mut out = Vec::new();
    w.finish(&mut out);
    out
}

/// Feed `bytes` and run the session until it has nothing more to say.
fn feed(s: &mut FixSession, bytes: &[u8], out: &mut Vec<u8>) -> Vec<FixInbound> {
    let mut got = Vec::new();
    let mut at = 0;
    let mut check = |account, _: &[u8]| LogonResult::Ok {
        account,
        stp: SelfTradePrevention::Allow,
        cancel_on_disconnect: false,
    };
    while at < bytes.len() {
        let buf = s.read_buf();
        let n = buf.len().min(bytes.len() - at);
        buf[..n].copy_from_slice(&bytes[at..at + n]);
        s.commit(n);
        at += n;
        while let Some(x) = s.next(NOW, WALL, out, &mut check) {
            got.push(x);
        }
    }
    got
}

/// Every message in `out`, checked well-formed: (MsgType, MsgSeqNum).
fn sent(out: &[u8]) -> Vec<(Vec<u8>, u64)> {
    let mut parser = Parser::new();
    let mut msgs = Vec::new();
    let mut at = 0;
    while at < out.len() {
        match veloz_fix::frame(&out[at..], 1 << 16) {
            FrameStatus::Complete(len) => {
                let m = parser
                    .parse(&out[at..at + len])
                    .expect("the session writes valid FIX");
                msgs.push((m.msg_type().to_vec(), m.seq_num().expect("MsgSeqNum")));
                at += len;
            }
            other => panic!("the session wrote a bad message at byte {at}: {other:?}"),
        }
    }
    msgs
}

/// The BeginSeqNo of a ResendRequest among the messages in `out`.
fn resend_asked(out: &[u8]) -> Option<u64> {
    let mut parser = Parser::new();
    let mut at = 0;
    let mut from = None;
    while let FrameStatus::Complete(len) = veloz_fix::frame(&out[at..], 1 << 16) {
        let m = parser.parse(&out[at..at + len]).expect("valid FIX");
        if m.msg_type() == b"2" {
            from = from.or(m.get_u64(tags::BEGIN_SEQ_NO).ok().flatten());
        }
        at += len;
    }
    from
}

#[test]
fn garbage_and_garbled_messages_never_break_a_session() {
    let (shared, dir) = shared("garbage");
    let mut rng = Pcg64Mcg::seed_from_u64(0x5eed_f1c5);
    let mut s = FixSession::new(shared, NOW);
    let mut out = Vec::new();
    let logon = message(
        b"A",
        1,
        &[(98, b"0"), (108, b"30"), (553, b"1"), (554, b"t")],
    );
    let got = feed(&mut s, &logon, &mut out);
    assert!(
        matches!(got.as_slice(), [FixInbound::Logon { account: 1, .. }]),
        "{got:?}"
    );
    s.logon_response(&mut out, WALL);
    let mut seq = 2;
    for round in 0..400 {
        let mut bytes = Vec::new();
        match rng.random_range(0..5) {
            // Random bytes, sometimes with pieces of FIX in them.
            0 => {
                let n = rng.random_range(1..300);
                bytes.extend((0..n).map(|_| rng.random::<u8>()));
                if rng.random_bool(0.5) {
                    bytes.extend_from_slice(b"8=FIX.4.4\x019=5\x0135=0\x01");
                }
            }
            // A message with one byte flipped.
            1 => {
                let mut m = message(b"1", seq, &[(112, b"x")]);
                let i = rng.random_range(0..m.len());
                m[i] ^= 1 << rng.random_range(0..8);
                bytes.extend_from_slice(&m);
            }
            // An order with random field values.
            2 => {
                let price: Vec<u8> = (0..rng.random_range(0..8))
                    .map(|_| b"0123456789.-x"[rng.random_range(0..13)])
                    .collect();
                let m = message(
                    b"D",
                    seq,
                    &[
                        (11, b"7"),
                        (55, b"AAPL"),
                        (54, b"1"),
                        (60, b"20261201-00:00:00"),
                        (38, b"5"),
                        (40, b"2"),
                        (44, &price),
                    ],
                );
                seq += 1;
                bytes.extend_from_slice(&m);
            }
            // A valid TestRequest: must be answered.
            _ => {
                let id = format!("t{round}");
                bytes.extend_from_slice(&message(b"1", seq, &[(112, id.as_bytes())]));
                seq += 1;
            }
        }
        let mark = out.len();
        let got = feed(&mut s, &bytes, &mut out);
        // Garbage can swallow the message after it (tag=value has no framing beyond the
        // trailer): the session asks for a resend of the gap, and a client fills it.
        if let Some(from) = resend_asked(&out[mark..]) {
            let fill = message(
                b"4",
                from,
                &[(43, b"Y"), (123, b"Y"), (36, seq.to_string().as_bytes())],
            );
            feed(&mut s, &fill, &mut out);
        }
        for x in got {
            if let FixInbound::Logout = x {
                // Garbage may end the session (a message too long, too many malformed
                // ones): log on again, and fill the gap the new session asks about.
                s = FixSession::new(Arc::clone(&s.shared), NOW);
                let logon = message(
                    b"A",
                    seq,
                    &[(98, b"0"), (108, b"30"), (553, b"1"), (554, b"t")],
                );
                let mark = out.len();
                feed(&mut s, &logon, &mut out);
                s.logon_response(&mut out, WALL);
                seq += 1;
                if let Some(from) = resend_asked(&out[mark..]) {
                    let new = seq.to_string();
                    let fill =
                        message(b"4", from, &[(43, b"Y"), (123, b"Y"), (36, new.as_bytes())]);
                    feed(&mut s, &fill, &mut out);
                }
            }
        }
    }
    // The session still answers, and everything it wrote is valid FIX with its numbers in
    // order (a fresh session after a Logout continues from its store).
    let mark = out.len();
    feed(&mut s, &message(b"1", seq, &[(112, b"last")]), &mut out);
    let tail = sent(&out[mark..]);
    assert!(
        tail.iter().any(|(t, _)| t == b"0"),
        "no Heartbeat for the last TestRequest {seq} (expected {})",
        s.next_in()
    );
    let all = sent(&out);
    for pair in all.windows(2) {
        assert!(
            pair[1].1 == pair[0].1 + 1 || pair[1].0 == b"A",
            "numbers out of order: {pair:?}"
        );
    }
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

/// Not a check but a measurement (docs/BENCHMARKS.md, "A logon's store read"): how long a
/// Logon takes for a CompID whose store holds 1,000,000 ExecutionReports (half of them
/// orders still open), in a release build:
/// `cargo test --release -p veloz-engine --lib -- --ignored logon_store_read --nocapture`.
#[test]
#[ignore = "a measurement: run it in a release build"]
fn logon_store_read_of_a_million_messages() {
    let (shared, dir) = shared("measure");
    let mut store = super::store::Store::open(&shared.store_dir, "BIG", 2).unwrap();
    store.bind(1);
    let mut w = Writer::new();
    let mut report = Vec::new();
    for i in 0..1_000_000u64 {
        report.clear();
        let (exec, status) = if i % 2 == 0 {
            (b'0', b'0')
        } else {
            (b'4', b'4')
        };
        w.begin(b"8");
        w.str(tags::SENDER_COMP_ID, "VELOZ");
        w.str(tags::TARGET_COMP_ID, "BIG");
        w.uint(tags::MSG_SEQ_NUM, i + 1);
        w.timestamp(tags::SENDING_TIME, WALL);
        // Orders 1, 3, 5, ... are opened; reports of 2, 4, 6, ... cancel orders never
        // opened: half a million open orders to rebuild.
        w.uint(tags::ORDER_ID, i + 1);
        w.uint(tags::CL_ORD_ID, i + 1);
        w.str(tags::EXEC_ID, "0-1");
        w.char(tags::EXEC_TYPE, exec);
        w.char(tags::ORD_STATUS, status);
        w.str(tags::SYMBOL, "AAPL");
        w.char(tags::SIDE, b'1');
        w.uint(tags::ORDER_QTY, 10);
        w.decimal(tags::PRICE, 1_900_000, 4);
        w.uint(tags::LEAVES_QTY, 10);
        w.uint(tags::CUM_QTY, 0);
        w.uint(tags::AVG_PX, 0);
        w.timestamp(tags::TRANSACT_TIME, WALL);
        let r = w.finish(&mut report);
        let seq = store.take_out();
        store.record(seq, Some((0, i + 1)), &report[r]);
        if i % 10_000 == 0 {
            store.flush().unwrap();
        }
    }
    store.flush().unwrap();
    drop(store);
    let size = std::fs::metadata(shared.store_dir.join("BIG.log"))
        .unwrap()
        .len();
    let started = std::time::Instant::now();
    let mut s = FixSession::new(Arc::clone(&shared), NOW);
    let mut out = Vec::new();
    let mut w = Writer::new();
    // The client here is "BIG", not the default "CLIENT".
    w.begin(b"A");
    w.str(tags::SENDER_COMP_ID, "BIG");
    w.str(tags::TARGET_COMP_ID, "VELOZ");
    w.uint(tags::MSG_SEQ_NUM, 1);
    w.timestamp(tags::SENDING_TIME, WALL);
    for (tag, v) in [(98u32, &b"0"[..]), (108, b"30"), (553, b"1"), (554, b"t")] {
        w.bytes(tag, v);
    }
    let mut big = Vec::new();
    w.finish(&mut big);
    let got = feed(&mut s, &big, &mut out);
    let took = started.elapsed();
    assert!(
        matches!(got.as_slice(), [FixInbound::Logon { account: 1, .. }]),
        "{got:?}"
    );
    assert_eq!(s.orders.open_count(), 500_000);
    println!("logon of a CompID with 1,000,000 stored messages ({size} bytes): {took:?}");
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

/// OrdRejReason (103) of the funds and limit rejects: 3 (order exceeds limit) for the
/// limits, 99 (other) for short funds; Text (58) names the reason either way.
#[test]
fn funds_and_limit_rejects_map_to_ord_rej_reason() {
    use veloz_core::RejectReason as R;
    let got: Vec<(u16, u64)> = [
        R::InsufficientFunds,
        R::OrderQtyLimit,
        R::OrderNotionalLimit,
        R::OpenOrdersLimit,
        R::NotionalRateLimit,
        R::AmountTooLarge,
        R::QtyAboveMax,
        R::UnknownSymbol,
    ]
    .into_iter()
    .map(|r| (r.code(), super::reports::ord_rej_reason(r)))
    .collect();
    assert_eq!(
        got,
        [
            (16, 99),
            (17, 3),
            (18, 3),
            (19, 3),
            (20, 3),
            (21, 3),
            (5, 3),
            (1, 1)
        ]
    );
}

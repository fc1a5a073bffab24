//! The FIX 4.4 acceptor's session layer against hand-built bytes over a plain TcpStream:
//! garbled messages (CheckSum, BodyLength), a missing required tag, unsupported message
//! types, refused logons, sequence numbers too high and too low, TestRequest.
//!
//! Each test starts its own engine and holds `common::serial()`. Run the file as
//! `flock /tmp/veloz-e2e.lock cargo test --test fix_session`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const WAIT: Duration = Duration::from_secs(5);
const ENGINE: &str = "VELOZ";
/// Long enough that no heartbeat or TestRequest of the engine comes during a test.
const HEART_BT_INT: &str = "30";

/// A received message: its fields in order.
#[derive(Debug)]
struct Msg(Vec<(u32, String)>);

impl Msg {
    fn get(&self, tag: u32) -> Option<&str> {
        self.0
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_str())
    }

    /// Tag `tag`'s value, "" when absent.
    fn f(&self, tag: u32) -> &str {
        self.get(tag).unwrap_or("")
    }

    fn msg_type(&self) -> &str {
        self.f(35)
    }

    fn show(&self) -> String {
        self.0
            .iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// The current UTC time as a FIX UTCTimestamp (YYYYMMDD-HH:MM:SS.sss).
fn utc_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis()
    )
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// A complete message with a correct BodyLength and CheckSum: the standard header
/// (35, 49, 56, 34, 52), then `fields` in order.
fn message(msg_type: &str, sender: &str, seq: u64, fields: &[(u32, &str)]) -> Vec<u8> {
    let mut body = format!(
        "35={msg_type}\x0149={sender}\x0156={ENGINE}\x0134={seq}\x0152={}\x01",
        utc_now()
    );
    for (tag, value) in fields {
        body.push_str(&format!("{tag}={value}\x01"));
    }
    frame(&body, body.len() as i64, None)
}

/// `8=FIX.4.4|9=body_length|body|10=...|`: the CheckSum computed unless given.
fn frame(body: &str, body_length: i64, checksum_value: Option<u8>) -> Vec<u8> {
    let mut out = format!("8=FIX.4.4\x019={body_length}\x01{body}").into_bytes();
    let sum = checksum_value.unwrap_or_else(|| checksum(&out));
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

/// (body, its length, the correct CheckSum) of a well-formed message made by [`message`].
fn parts(msg: &[u8]) -> (String, usize, u8) {
    let text = std::str::from_utf8(msg).unwrap();
    let start = text.find("\x0135=").unwrap() + 1;
    let end = text.rfind("10=").unwrap();
    let body = &text[start..end];
    (body.to_string(), body.len(), checksum(&msg[..end]))
}

/// A raw FIX connection.
struct Fix {
    stream: TcpStream,
    buf: Vec<u8>,
    sender: String,
    /// The next MsgSeqNum this side sends.
    seq: u64,
    closed: bool,
}

impl Fix {
    fn connect(addr: &str, sender: &str) -> Fix {
        let stream = TcpStream::connect(addr).expect("connect to the FIX acceptor");
        stream.set_nodelay(true).unwrap();
        Fix {
            stream,
            buf: Vec::new(),
            sender: sender.to_string(),
            seq: 1,
            closed: false,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the acceptor");
    }

    /// Send a well-formed message with the next MsgSeqNum; returns that number.
    fn send(&mut self, msg_type: &str, fields: &[(u32, &str)]) -> u64 {
        let seq = self.seq;
        let bytes = message(msg_type, &self.sender, seq, fields);
        self.write(&bytes);
        self.seq += 1;
        seq
    }

    /// Logon as `account` with `password`; the engine's answer.
    fn logon(&mut self, account: &str, password: &str) -> Msg {
        self.send(
            "A",
            &[
                (98, "0"),
                (108, HEART_BT_INT),
                (553, account),
                (554, password),
            ],
        );
        self.recv(WAIT)
            .unwrap_or_else(|| panic!("no answer to {}'s Logon", self.sender))
    }

    /// Log on as alice and check the engine's Logon.
    fn logon_alice(&mut self) {
        let got = self.logon(&ALICE.0.to_string(), ALICE.1);
        assert_eq!(
            (
                got.msg_type(),
                got.f(49),
                got.f(56),
                got.f(34),
                got.f(98),
                got.f(108)
            ),
            ("A", ENGINE, self.sender.as_str(), "1", "0", HEART_BT_INT),
            "the engine's Logon: {}",
            got.show()
        );
    }

    /// The next message, or `None` after `limit` or at EOF (then `self.closed`).
    fn recv(&mut self, limit: Duration) -> Option<Msg> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.take() {
                return Some(m);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => panic!("read from the acceptor: {e}"),
            }
        }
    }

    /// One whole message off the front of the buffer, checking its framing.
    fn take(&mut self) -> Option<Msg> {
        let text = std::str::from_utf8(&self.buf).expect("the engine sends ASCII");
        let head = text.find("\x019=")? + 3;
        let len_end = head + text[head..].find('\x01')?;
        let body_length: usize = text[head..len_end].parse().expect("BodyLength");
        let trailer = len_end + 1 + body_length;
        let end = trailer + 7;
        if self.buf.len() < end {
            return None;
        }
        assert!(
            text.starts_with("8=FIX.4.4\x01") && &text[trailer..trailer + 3] == "10=",
            "the engine sent a badly framed message: {text:?}"
        );
        let sum = checksum(&self.buf[..trailer]);
        assert_eq!(
            text[trailer + 3..end - 1].parse::<u8>().ok(),
            Some(sum),
            "the engine's CheckSum is wrong in {text:?}"
        );
        let fields = text[..end - 1]
            .split('\x01')
            .map(|f| {
                let (t, v) = f.split_once('=').expect("tag=value");
                (t.parse().expect("numeric tag"), v.to_string())
            })
            .collect();
        self.buf.drain(..end);
        Some(Msg(fields))
    }

    /// The next message, which must be of type `msg_type`.
    #[track_caller]
    fn expect(&mut self, msg_type: &str, what: &str) -> Msg {
        match self.recv(WAIT) {
            Some(m) if m.msg_type() == msg_type => m,
            Some(m) => panic!(
                "{}: wanted {what} (35={msg_type}), got {}",
                self.sender,
                m.show()
            ),
            None if self.closed => panic!(
                "{}: wanted {what} (35={msg_type}), the engine closed the connection",
                self.sender
            ),
            None => panic!("{}: no {what} (35={msg_type}) within {WAIT:?}", self.sender),
        }
    }

    /// TestRequest with `id` at the next MsgSeqNum, answered by a Heartbeat with 112 = `id`.
    #[track_caller]
    fn ping(&mut self, id: &str) {
        self.send("1", &[(112, id)]);
        let hb = self.expect("0", &format!("the Heartbeat answering TestRequest {id}"));
        assert_eq!(hb.f(112), id, "{}", hb.show());
    }

    /// Nothing more comes and the engine closes the connection within `WAIT`.
    #[track_caller]
    fn expect_eof(&mut self) {
        if let Some(m) = self.recv(WAIT) {
            panic!(
                "{}: wanted the connection closed, got {}",
                self.sender,
                m.show()
            );
        }
        assert!(
            self.closed,
            "{}: the engine did not close the connection within {WAIT:?}",
            self.sender
        );
    }
}

fn start_engine(tag: &str) -> (TempDir, EngineProcess, String) {
    let dir = TempDir::new(tag);
    let mut engine = EngineProcess::start(&test_config(dir.path(), "none", ""));
    let addr = engine.fix_addr();
    (dir, engine, addr)
}

fn stop(engine: EngineProcess) {
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

#[test]
fn garbled_and_unsupported_messages_are_rejected_and_the_session_stays_up() {
    let _serial = serial();
    let (_dir, engine, addr) = start_engine("fix-garbled");
    let mut c = Fix::connect(&addr, "RAWGARBLE");
    c.logon_alice();
    c.ping("tr-1");

    // A wrong CheckSum: Reject 371=10 naming both values; the number is not used up.
    let seq = c.seq;
    let good = message("1", &c.sender, seq, &[(112, "cs")]);
    let (body, len, sum) = parts(&good);
    let wrong = sum.wrapping_add(1);
    c.write(&frame(&body, len as i64, Some(wrong)));
    let rej = c.expect("3", "a Reject of the wrong CheckSum");
    assert_eq!((rej.f(371), rej.f(373)), ("10", "99"), "{}", rej.show());
    let text = rej.f(58);
    assert!(
        text.contains(&wrong.to_string()) && text.contains(&sum.to_string()),
        "58 must name the CheckSum sent ({wrong:03}) and the right one ({sum:03}): {}",
        rej.show()
    );
    c.ping("after-checksum"); // the same MsgSeqNum, now well formed

    // BodyLength 5 too short and 5 too long: Reject 371=9 naming the values.
    for (what, delta) in [("short", -5i64), ("long", 5)] {
        let seq = c.seq;
        let good = message("1", &c.sender, seq, &[(112, "bl")]);
        let (body, len, _) = parts(&good);
        let declared = len as i64 + delta;
        let mut bytes = format!("8=FIX.4.4\x019={declared}\x01{body}").into_bytes();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
        c.write(&bytes);
        let rej = c.recv(WAIT).unwrap_or_else(|| {
            panic!(
                "no Reject within {WAIT:?} of a message whose BodyLength ({declared}) is 5 too \
                 {what} (its body has {len} bytes){}",
                if c.closed {
                    "; the engine closed the connection"
                } else {
                    ""
                }
            )
        });
        assert_eq!(
            (rej.msg_type(), rej.f(371), rej.f(373)),
            ("3", "9", "99"),
            "BodyLength 5 too {what}: {}",
            rej.show()
        );
        let text = rej.f(58);
        assert!(
            text.contains(&declared.to_string()) && text.contains(&len.to_string()),
            "58 must name the BodyLength sent ({declared}) and the body's length ({len}): {}",
            rej.show()
        );
        c.ping(&format!("after-body-length-{what}"));
    }

    // A NewOrderSingle without Side (54): Reject 373=1 371=54 45=its number.
    let seq = c.send(
        "D",
        &[
            (11, "1"),
            (55, "AAPL"),
            (40, "2"),
            (44, "190.00"),
            (38, "1"),
            (60, &utc_now()),
        ],
    );
    let rej = c.expect("3", "a Reject of the order without Side (54)");
    assert_eq!(
        (rej.f(373), rej.f(371), rej.f(45)),
        ("1", "54", seq.to_string().as_str()),
        "{}",
        rej.show()
    );
    c.ping("after-missing-tag"); // that number was used up

    // Message types outside the subset: BusinessMessageReject 380=3, 372 = the type.
    for msg_type in ["R", "ZZ"] {
        let seq = c.send(msg_type, &[(131, "q-1")]);
        let rej = c.expect("j", &format!("a BusinessMessageReject of 35={msg_type}"));
        assert_eq!(
            (rej.f(380), rej.f(372), rej.f(45)),
            ("3", msg_type, seq.to_string().as_str()),
            "{}",
            rej.show()
        );
    }
    c.ping("after-unsupported");

    // A NewOrderSingle sent again with PossResend=Y is not entered twice.
    let order = [
        (11, "RESENT-1"),
        (55, "AAPL"),
        (54, "1"),
        (60, "20261201-00:00:00"),
        (38, "1"),
        (40, "2"),
        (44, "180.00"),
    ];
    c.send("D", &order);
    let new = c.expect("8", "the order's ExecutionReport");
    assert_eq!((new.f(150), new.f(11)), ("0", "RESENT-1"), "{}", new.show());
    let mut again = order.to_vec();
    again.push((97, "Y"));
    c.send("D", &again);
    let dup = c.expect("8", "the resent order's ExecutionReport");
    assert!(
        dup.f(150) == "8" && dup.f(58).contains("PossResend"),
        "a resent order must be refused, not entered twice: {}",
        dup.show()
    );

    // The metrics count the session and its Rejects (3 garbled, 1 missing tag).
    let text = scrape(&engine.metrics);
    let value = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    assert_eq!(value("veloz_fix_sessions"), 1.0, "{text}");
    assert_eq!(value("veloz_fix_logons_total"), 1.0, "{text}");
    assert_eq!(value("veloz_fix_session_rejects_total"), 4.0, "{text}");

    c.send("5", &[]);
    c.expect("5", "the Logout answering ours");
    stop(engine);
}

#[test]
fn refused_logons_get_a_logout_and_the_connection_closed() {
    let _serial = serial();
    let (_dir, engine, addr) = start_engine("fix-refused");
    let alice = ALICE.0.to_string();
    let bob = BOB.0.to_string();
    // A wrong password, an unknown account, and a SenderCompID bound to another account.
    let mut bound = Fix::connect(&addr, "RAWBOUND");
    bound.logon_alice();
    bound.send("5", &[]);
    bound.expect("5", "the Logout answering ours");
    let next = bound.seq;
    drop(bound);
    for (sender, account, password, seq) in [
        ("RAWBADPW", alice.as_str(), "not-the-token", 1),
        ("RAWNOACCT", "99", "demo-alice", 1),
        ("RAWBOUND", bob.as_str(), BOB.1, next),
    ] {
        let mut c = Fix::connect(&addr, sender);
        c.seq = seq;
        let got = c.logon(account, password);
        assert!(
            got.msg_type() == "5" && got.f(58).starts_with("logon refused"),
            "{sender} (account {account}): wanted Logout with 58 \"logon refused...\", got {}",
            got.show()
        );
        c.expect_eof();
    }
    // A CompID logged on already (on any shard) is refused a second session; the first
    // goes on.
    let mut first = Fix::connect(&addr, "RAWTWICE");
    first.logon_alice();
    let mut second = Fix::connect(&addr, "RAWTWICE");
    second.seq = first.seq;
    let got = second.logon(&alice, ALICE.1);
    assert!(
        got.msg_type() == "5" && got.f(58).contains("logged on already"),
        "a second session of one CompID: {}",
        got.show()
    );
    second.expect_eof();
    first.ping("still-up");
    stop(engine);
}

#[test]
fn sequence_numbers_too_high_ask_for_a_resend_and_too_low_log_out() {
    let _serial = serial();
    let (_dir, engine, addr) = start_engine("fix-seq");

    // Too high: ResendRequest 7=expected 16=0; the message is ignored until the gap is
    // filled.
    let mut c = Fix::connect(&addr, "RAWSEQHI");
    c.logon_alice();
    c.seq = 5;
    c.send("1", &[(112, "too-high")]);
    let rr = c.expect("2", "a ResendRequest");
    assert_eq!((rr.f(7), rr.f(16)), ("2", "0"), "{}", rr.show());
    if let Some(m) = c.recv(Duration::from_millis(500)) {
        panic!(
            "a message after the ResendRequest, before the gap is filled: {}",
            m.show()
        );
    }
    // Fill 2..=5 (5 was ignored): the next is 6.
    let now = utc_now();
    c.write(&message(
        "4",
        "RAWSEQHI",
        2,
        &[(43, "Y"), (122, &now), (123, "Y"), (36, "6")],
    ));
    c.seq = 6;
    c.ping("after-gap-fill");
    c.send("5", &[]);
    c.expect("5", "the Logout answering ours");

    // Too low (without PossDupFlag): Logout naming the expected and the received number.
    let mut c = Fix::connect(&addr, "RAWSEQLO");
    c.logon_alice();
    for i in 0..10 {
        c.ping(&format!("n{i}"));
    }
    let expected = c.seq; // 12
                          // Too low with PossDupFlag=Y: a duplicate of something already processed, ignored
                          // (not answered); the session goes on.
    c.seq = 4;
    let sent = utc_now();
    c.send("1", &[(43, "Y"), (122, &sent), (112, "dup")]);
    if let Some(m) = c.recv(Duration::from_millis(300)) {
        panic!(
            "a possible duplicate below the expected number was answered: {}",
            m.show()
        );
    }
    c.seq = expected;
    c.ping("after-dup");
    let expected = c.seq; // 13
    c.seq = 7;
    c.send("1", &[(112, "too-low")]);
    let out = c.expect("5", "a Logout for a MsgSeqNum too low");
    let text = out.f(58);
    assert!(
        text.contains(&expected.to_string()) && text.contains('7'),
        "58 must name the expected MsgSeqNum {expected} and the received 7: {}",
        out.show()
    );
    c.expect_eof();
    stop(engine);
}

#[test]
fn a_compids_first_logon_starts_at_the_ends_of_its_accounts_streams() {
    let _serial = serial();
    let (_dir, engine, addr) = start_engine("fix-fresh");
    // Alice trades over the binary protocol first, on every instrument (so on every shard):
    // her report streams hold those reports before her FIX CompID exists.
    let (mut bin, _) = veloz_load::client::Client::logon(&engine.addr, ALICE.0, ALICE.1)
        .expect("alice logs on over the binary protocol");
    let instruments = veloz_config::Config::default().instruments();
    let mut coid = 500;
    let mut place = |bin: &mut veloz_load::client::Client| {
        for i in &instruments {
            coid += 1;
            let price = i.reference_price - 20 * i.tick_size;
            bin.send(&limit(i.id, coid, veloz_core::Side::Buy, price, 1))
                .unwrap();
            bin.next_report(WAIT).expect("the binary order's report");
        }
    };
    place(&mut bin);

    // Its first logon, then a second: neither brings reports from before the CompID.
    for round in ["first", "second"] {
        let mut c = Fix::connect(&addr, "RAWFRESH");
        c.seq = if round == "first" { 1 } else { 3 };
        let got = c.logon(&ALICE.0.to_string(), ALICE.1);
        assert_eq!(got.msg_type(), "A", "{round} logon: {}", got.show());
        if let Some(m) = c.recv(Duration::from_millis(500)) {
            panic!(
                "{round} logon of a new CompID got a report from before it existed: {}",
                m.show()
            );
        }
        c.send("5", &[]);
        c.expect("5", "the Logout answering ours");
    }
    // What the account does while the CompID is logged off reaches it at its next logon.
    place(&mut bin);
    let mut c = Fix::connect(&addr, "RAWFRESH");
    c.seq = 5;
    let got = c.logon(&ALICE.0.to_string(), ALICE.1);
    assert_eq!(got.msg_type(), "A", "third logon: {}", got.show());
    for _ in &instruments {
        let m = c.expect("8", "a report of an order entered while logged off");
        assert_eq!(m.f(150), "0", "{}", m.show());
    }
    stop(engine);
}

#[test]
fn more_malformed_messages_than_the_gateway_allows_end_the_session() {
    let _serial = serial();
    let (_dir, engine, addr) = start_engine("fix-bad");
    let max = veloz_config::Config::default().gateway.max_bad_messages;
    let mut c = Fix::connect(&addr, "RAWBAD");
    c.logon_alice();
    // Each garbled copy is answered with a Reject (its number not consumed) until one more
    // than `max_bad_messages`: then a Logout saying why, and the connection closes.
    let good = message("1", "RAWBAD", c.seq, &[(112, "x")]);
    let (body, len, sum) = parts(&good);
    let garbled = frame(&body, len as i64, Some(sum.wrapping_add(1)));
    for n in 1..=max + 1 {
        c.write(&garbled);
        let m = c.expect("3", &format!("the Reject of garbled message {n}"));
        assert_eq!(m.f(371), "10", "{}", m.show());
    }
    let out = c.expect("5", "a Logout after too many malformed messages");
    assert!(
        out.f(58).contains("malformed"),
        "the Logout must say why: {}",
        out.show()
    );
    c.expect_eof();
    stop(engine);
}

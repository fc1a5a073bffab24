//! Tests of the client's address lists (`parse_addrs`, `Client::connect_any`,
//! `Client::logon_any`) against loopback listeners: a refused port (bound, then dropped), a
//! listener that accepts and closes at once (an engine still starting), and a fake engine
//! that reads the Logon and answers it with a given frame. The real engine is
//! tests/client_failover.rs.

use super::*;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use veloz_wire::{decode_client, ClientMessage, LogonAck, Logout};

/// An address nothing listens on: a port bound, then released.
fn refused() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// Per connection a fake accepted: the Logon's resume_after (None: closed at once).
type Seen = Vec<Option<Option<Vec<u64>>>>;

/// A loopback listener run by a thread: with `answer` None it closes every connection at
/// once; else it reads one Logon per connection and writes `answer`.
struct Fake {
    addr: String,
    stop: Arc<AtomicBool>,
    /// Joined by `finish`.
    thread: Option<JoinHandle<Seen>>,
}

impl Fake {
    fn start(answer: Option<Vec<u8>>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let mut s = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(e) => panic!("accept: {e}"),
                };
                let Some(answer) = &answer else {
                    seen.push(None);
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut decoder = FrameDecoder::new(1 << 16);
                let resume = loop {
                    if let Some(frame) = decoder.next_frame().unwrap() {
                        match decode_client(frame, 0).unwrap() {
                            ClientMessage::Logon(l) => break l.resume_after,
                            other => panic!("expected a Logon, got {other:?}"),
                        }
                    }
                    let n = s.read(decoder.read_buf()).unwrap();
                    assert!(n > 0, "the client closed before its Logon");
                    decoder.commit(n);
                };
                seen.push(Some(resume));
                s.write_all(answer).unwrap();
            }
            seen
        });
        Fake {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stop; per connection accepted, the Logon's resume_after (None: closed at once).
    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn logon_ack(session_id: u64) -> Vec<u8> {
    FrameEncoder::new()
        .logon_ack(&LogonAck {
            session_id,
            heartbeat_interval_ms: 1000,
            instruments: Vec::new(),
            streams: 2,
        })
        .to_vec()
}

fn logout(reason: LogoutReason) -> Vec<u8> {
    FrameEncoder::new()
        .logout(&Logout { reason, text: "" })
        .to_vec()
}

const TOKEN: &str = "demo-alice";

#[test]
fn parse_addrs_splits_trims_and_skips_empties() {
    assert_eq!(
        parse_addrs(" 10.0.0.1:7700 ,,10.0.0.2:7700, "),
        vec!["10.0.0.1:7700".to_string(), "10.0.0.2:7700".to_string()]
    );
    assert_eq!(parse_addrs("h:1"), vec!["h:1".to_string()]);
    assert!(parse_addrs("").is_empty());
    assert!(parse_addrs(" , ").is_empty());
}

#[test]
fn connect_any_takes_the_second_address_when_the_first_refuses() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = vec![refused(), listener.local_addr().unwrap().to_string()];
    let (_c, index) = Client::connect_any(&addrs, Duration::from_secs(2)).unwrap();
    assert_eq!(index, 1);
    // The first round tries every address, also with no time at all.
    let (_c, index) = Client::connect_any(&addrs, Duration::ZERO).unwrap();
    assert_eq!(index, 1);
    // The first address wins when it answers.
    let (_c, index) = Client::connect_any(&addrs[1..], Duration::ZERO).unwrap();
    assert_eq!(index, 0);
}

#[test]
fn connect_any_after_the_deadline_names_every_address_and_its_error() {
    let addrs = vec![refused(), refused()];
    let start = Instant::now();
    let err = Client::connect_any(&addrs, Duration::from_millis(300)).unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let text = err.to_string();
    for a in &addrs {
        assert!(text.contains(&format!("{a}: ")), "{a} missing from: {text}");
    }
    assert!(text.contains("refused"), "{text}");
    match err {
        ClientError::NoEngine { rounds, tried, .. } => {
            // 50 + 100 + 200 ms of pauses fit in 300 ms: more than one round.
            assert!(rounds >= 2, "{rounds} rounds");
            assert_eq!(tried.len(), 2);
            assert!(
                tried.iter().all(|(_, e)| e.contains("refused")),
                "{tried:?}"
            );
        }
        other => panic!("expected NoEngine, got {other}"),
    }
}

#[test]
fn connect_any_of_no_address_or_a_bad_one_says_so() {
    let err = Client::connect_any(&[], Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("no engine address given"), "{err}");
    let addrs = vec!["no-port-here".to_string()];
    let err = Client::connect_any(&addrs, Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("no-port-here: "), "{err}");
}

#[test]
fn logon_any_moves_on_from_an_engine_that_accepts_and_closes() {
    let closing = Fake::start(None);
    let engine = Fake::start(Some(logon_ack(77)));
    let addrs = vec![refused(), closing.addr.clone(), engine.addr.clone()];
    let (c, session, index) =
        Client::logon_any(&addrs, 1, TOKEN, Some(&[4, 9]), Duration::from_secs(5)).unwrap();
    assert_eq!((session, index, c.streams()), (77, 2, 2));
    drop(c);
    assert_eq!(
        closing.finish(),
        vec![None],
        "the closing listener was tried once"
    );
    assert_eq!(
        engine.finish(),
        vec![Some(Some(vec![4, 9]))],
        "resume_after sent"
    );
}

#[test]
fn logon_any_keeps_trying_until_the_deadline_and_names_each_last_error() {
    let a = Fake::start(None);
    let b = Fake::start(None);
    let addrs = vec![a.addr.clone(), b.addr.clone()];
    let err = Client::logon_any(&addrs, 1, TOKEN, None, Duration::from_millis(400)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("{}: accepted, then closed", a.addr))
            && text.contains(&format!("{}: accepted, then closed", b.addr)),
        "{text}"
    );
    assert!(
        matches!(err, ClientError::NoEngine { rounds, .. } if rounds >= 2),
        "{text}"
    );
    assert!(a.finish().len() >= 2, "a tried again");
    assert!(b.finish().len() >= 2, "b tried again");
}

#[test]
fn logon_any_skips_a_stopping_engine_and_stops_at_a_refused_token() {
    let stopping = Fake::start(Some(logout(LogoutReason::EngineShutdown)));
    let engine = Fake::start(Some(logon_ack(5)));
    let addrs = vec![stopping.addr.clone(), engine.addr.clone()];
    let (_c, session, index) =
        Client::logon_any(&addrs, 1, TOKEN, None, Duration::from_secs(5)).unwrap();
    assert_eq!((session, index), (5, 1));
    assert_eq!(stopping.finish(), vec![Some(None)], "no resume_after sent");
    engine.finish();

    // A bad token is the answer: retrying, here or at the standby, would not change it.
    let refusing = Fake::start(Some(logout(LogoutReason::AuthenticationFailed)));
    let other = Fake::start(Some(logon_ack(6)));
    let addrs = vec![refusing.addr.clone(), other.addr.clone()];
    let err = Client::logon_any(&addrs, 1, TOKEN, None, Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::LogonRefused {
                reason: LogoutReason::AuthenticationFailed,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(refusing.finish().len(), 1);
    assert!(
        other.finish().is_empty(),
        "the second address was not tried"
    );
}

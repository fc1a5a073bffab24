//! A client with a list of engine addresses over real loopback TCP against real
//! `veloz serve` processes: `Client::logon_any` skips an address nothing listens on and logs
//! on at the engine that answers; after that engine stops and a second one starts on the
//! same data directory at a new address (a standby taking over), `logon_any` with
//! `resume_after` skips the dead address and a listener that accepts and closes at once (a
//! standby still starting), logs on at the new engine, gets the report it missed resent in
//! order, and an order sent after it is acknowledged, numbered right after.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use veloz_core::Side;
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport};

const T: Duration = Duration::from_secs(10);
/// How long a logon_any may look for an engine.
const DEADLINE: Duration = Duration::from_secs(5);
/// AAPL: reference 190.00, tick 0.01.
const AAPL: u32 = 1;
const PX: i64 = 1_900_000;

/// An address nothing listens on: a port bound, then released.
fn refused() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A listener that accepts every connection and closes it at once, until dropped.
struct Closer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Closer {
    fn start() -> Closer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Closer { addr, stop }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn report(c: &mut Client) -> ExecutionReport<'static> {
    c.next_report(T).unwrap()
}

#[test]
fn a_client_with_an_address_list_fails_over_and_resumes() {
    let _serial = serial();
    let start = Instant::now();
    let dir = TempDir::new("client-failover");
    let config = test_config(dir.path(), "none", "");
    let primary = EngineProcess::start(&config);
    let primary_addr = primary.addr.clone();

    // The first address refuses: the second one answers.
    let addrs = vec![refused(), primary_addr.clone()];
    let (mut alice, _, index) =
        Client::logon_any(&addrs, ALICE.0, ALICE.1, None, DEADLINE).unwrap();
    assert_eq!(index, 1, "{addrs:?}");
    let streams = alice.streams();
    assert!(streams >= 1, "LogonAck announces no report stream");
    alice.send(&limit(AAPL, 1, Side::Sell, PX, 10)).unwrap();
    let accepted = report(&mut alice);
    assert_eq!(accepted.exec_type, ExecType::Accepted, "{accepted:?}");
    assert!(accepted.stream_seq >= 1, "Accepted outside any stream");

    // Bob fills 4 of it; alice's session never processes that report (it is lost with the
    // primary, as far as she knows).
    let (mut bob, _) = Client::logon(&primary_addr, BOB.0, BOB.1).unwrap();
    bob.send(&limit(AAPL, 11, Side::Buy, PX, 4)).unwrap();
    assert_eq!(report(&mut bob).exec_type, ExecType::Accepted);
    assert_eq!(report(&mut bob).exec_type, ExecType::Filled);
    drop(bob);

    // The primary goes; the standby comes up on the same data, at another address.
    let (code, _, stderr) = primary.stop();
    assert_eq!(code, 0, "primary exit; stderr:\n{}", stderr.join("\n"));
    drop(alice);
    let starting = Closer::start();
    let standby = EngineProcess::start(&config);
    let mut after = vec![0; streams as usize];
    after[accepted.stream as usize] = accepted.stream_seq;
    let addrs = vec![
        primary_addr.clone(),
        starting.addr.clone(),
        standby.addr.clone(),
    ];
    let (mut alice, _, index) =
        Client::logon_any(&addrs, ALICE.0, ALICE.1, Some(&after), DEADLINE).unwrap();
    assert_eq!(addrs[index], standby.addr, "{addrs:?}: answered {index}");
    assert_eq!(alice.streams(), streams);

    // The missed partial fill comes first, then one StreamResumed per stream.
    let mut resent = Vec::new();
    let mut resumed = Vec::new();
    while resumed.len() < streams as usize {
        match alice
            .recv_within(T, "resent reports and StreamResumed")
            .unwrap()
        {
            Received::Report(r) => resent.push(r),
            Received::StreamResumed(s) => resumed.push(s),
            Received::Trade(_) => {}
            other => panic!("unexpected during the resend: {other:?}"),
        }
    }
    let summary: Vec<_> = resent
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
    let (id, s) = (accepted.order_id, accepted.stream_seq);
    assert_eq!(
        summary,
        vec![(ExecType::PartiallyFilled, id, 4, 6, s + 1)],
        "the report missed at the failover, resent"
    );
    let r = resumed
        .iter()
        .find(|r| r.stream == accepted.stream)
        .unwrap();
    assert_eq!((r.after, r.last, r.resent), (s, s + 1, 1), "{r:?}");
    assert_eq!(r.missing(), None, "{r:?}");

    // The session works: an order is acknowledged, numbered after the resent report.
    alice.send(&limit(AAPL, 2, Side::Buy, PX - 500, 1)).unwrap();
    let next = report(&mut alice);
    assert_eq!(
        (next.exec_type, next.client_order_id, next.stream_seq),
        (ExecType::Accepted, 2, s + 2),
        "{next:?}"
    );
    alice.logout().unwrap();
    drop(alice);
    let (code, _, stderr) = standby.stop();
    assert_eq!(code, 0, "standby exit; stderr:\n{}", stderr.join("\n"));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
}

//! Several shards in one test process: real components, rings and in-memory journals,
//! sessions over Unix stream pairs, the shard loop's passes run by hand.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use veloz_core::{CancelReason, Command, MassCancel, Side};
use veloz_journal::{Durability, MemStorage};
use veloz_wire::ExecType;

use super::*;
use crate::mesh;
use crate::testkit::{self, limit, positions, reports, Client, Got};

type TestShard = Shard<MemStorage, UnixStream>;

struct Cluster {
    shards: Vec<TestShard>,
    shared: Arc<Shared>,
    _control: mesh::ControlLinks,
}

fn cluster(n: usize, config: veloz_config::Config) -> Cluster {
    let shared = testkit::shared(n, config);
    let (links, control) = mesh::build(n, shared.config.engine.ring_slots);
    let shards = links
        .into_iter()
        .map(|links| {
            let i = links.shard;
            let mut engine = testkit::engine(&shared, i);
            // As `recover` does: the window kept for resend.
            engine.set_report_retention(shared.config.gateway.resend_window);
            let (journal, last_seq) = testkit::journal(&shared, i, MemStorage::new(), &mut engine);
            Shard::new(Arc::clone(&shared), links, engine, journal, last_seq)
        })
        .collect();
    Cluster {
        shards,
        shared,
        _control: control,
    }
}

impl Cluster {
    /// A client connected to shard `shard`, not logged on yet.
    fn connect(&mut self, shard: usize) -> Client {
        let (client, server) = Client::pair();
        let s = &mut self.shards[shard];
        s.gateway
            .open(server, testkit::peer(), &mut s.metrics)
            .expect("slot");
        client
    }

    /// A client logged on to shard `shard` as `account` (and subscribed everywhere).
    fn client(&mut self, shard: usize, account: u32, token: &str) -> Client {
        let mut client = self.connect(shard);
        client.logon(account, token);
        let mut got = Vec::new();
        self.run_until(|| {
            got.extend(client.received());
            !got.is_empty()
        });
        let n = self.shards.len() as u16;
        assert!(
            matches!(got[..], [Got::LogonAck { streams, .. }] if streams == n),
            "{got:?}"
        );
        client
    }

    /// Run every shard's pass until `done`.
    fn run_until(&mut self, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            for s in &mut self.shards {
                s.pass();
            }
            assert!(Instant::now() < deadline, "timed out");
        }
    }
}

/// Collect what `client` gets until `n` execution reports arrived.
fn until_reports(client: &mut Client, got: &mut Vec<Got>, n: usize) -> bool {
    got.extend(client.received());
    reports(got).len() >= n
}

#[test]
fn a_trade_between_two_shards_sessions_on_a_third_reaches_both_sides() {
    let mut config = testkit::config();
    config.journal.durability = Durability::Group;
    config.journal.group_max_wait_us = 100;
    // Instruments by id over 3 shards: AAPL 0, AMZN 1, MSFT 2, NVDA 0.
    let mut e = cluster(3, config);
    assert_eq!(e.shared.routing.shard_of(2), Some(1));
    let mut alice = e.client(0, 1, "demo-alice");
    let mut bob = e.client(2, 2, "demo-bob");

    bob.order(&limit(2, 2, 20, Side::Sell, 2_200_000, 5));
    let mut bob_got = Vec::new();
    e.run_until(|| until_reports(&mut bob, &mut bob_got, 1));
    assert_eq!(reports(&bob_got), [(ExecType::Accepted, 20)]);

    alice.order(&limit(1, 2, 10, Side::Buy, 2_200_000, 3));
    let mut alice_got = Vec::new();
    e.run_until(|| {
        until_reports(&mut alice, &mut alice_got, 2) & until_reports(&mut bob, &mut bob_got, 2)
    });
    assert_eq!(
        reports(&alice_got),
        [(ExecType::Accepted, 10), (ExecType::Filled, 10)]
    );
    assert_eq!(
        reports(&bob_got),
        [(ExecType::Accepted, 20), (ExecType::PartiallyFilled, 20)]
    );
    // Both accounts' streams on the owning shard, gap-free from 1.
    assert_eq!(positions(&alice_got), [(1, 1), (1, 2)]);
    assert_eq!(positions(&bob_got), [(1, 1), (1, 2)]);
    let owner = &e.shards[1];
    assert_eq!(
        owner.sequencer.last_seq(),
        2,
        "both commands on the owning shard"
    );
    assert_eq!(owner.metrics.counters.trades, 1);
    assert_eq!(e.shards[0].metrics.counters.trades, 0);

    // Every remote command was answered: nothing is in flight, and the engine can stop.
    let shared = Arc::clone(&e.shared);
    e.run_until(|| e_idle(&shared));
    for s in &mut e.shards {
        s.begin_stop();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !e.shards.iter_mut().all(|s| s.quiescent()) {
        for s in &mut e.shards {
            s.pass();
        }
        assert!(Instant::now() < deadline, "never quiescent");
    }
    let reports: Vec<ShardOutcome> = e.shards.drain(..).map(|s| s.finish().unwrap()).collect();
    assert_eq!(
        reports.iter().map(|r| r.last_seq).collect::<Vec<_>>(),
        [1, 3, 1],
        "each journal ends with its checkpoint"
    );
    let alice_end = alice.received();
    assert!(
        matches!(alice_end.last(), Some(Got::Logout { .. })),
        "{alice_end:?}"
    );
}

fn e_idle(shared: &Shared) -> bool {
    shared
        .in_flight
        .iter()
        .all(|c| c.load(Ordering::SeqCst) == 0)
}

#[test]
fn a_mass_cancel_over_all_symbols_is_answered_by_every_shard() {
    let mut e = cluster(2, testkit::config());
    let mut alice = e.client(0, 1, "demo-alice");
    alice.order(&limit(1, 1, 1, Side::Buy, 1_890_000, 1)); // AAPL: shard 0
    alice.order(&limit(1, 2, 2, Side::Buy, 2_190_000, 1)); // AMZN: shard 1
    let mut got = Vec::new();
    e.run_until(|| until_reports(&mut alice, &mut got, 2));
    alice.order(&Command::MassCancel(MassCancel {
        account: 1,
        client_order_id: 3,
        symbol: None,
        reason: CancelReason::MassCancel,
    }));
    e.run_until(|| until_reports(&mut alice, &mut got, 6));
    for s in &mut e.shards {
        s.pass();
    }
    got.extend(alice.received());
    assert_eq!(reports(&got).len(), 6, "{got:?}");
    // Per stream: the accept, the cancel, then that shard's MassCancelled with its count.
    for stream in 0..2u16 {
        let mine: Vec<&Got> = got
            .iter()
            .filter(|g| matches!(g, Got::Report { stream: s, .. } if *s == stream))
            .collect();
        let kinds: Vec<_> = mine
            .iter()
            .map(|g| match g {
                Got::Report {
                    exec,
                    stream_seq,
                    mass_cancel_count,
                    ..
                } => (*exec, *stream_seq, *mass_cancel_count),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (ExecType::Accepted, 1, 0),
                (ExecType::Cancelled, 2, 0),
                (ExecType::MassCancelled, 3, 1)
            ],
            "stream {stream}: {got:?}"
        );
    }
}

/// The reports of the sessions' own account, as (kind, client order id, stream, position).
fn stream_reports(got: &[Got]) -> Vec<(ExecType, u64, u16, u64)> {
    reports(got)
        .into_iter()
        .zip(positions(got))
        .map(|((t, cid), (s, n))| (t, cid, s, n))
        .collect()
}

#[test]
fn every_session_of_an_account_gets_its_reports_and_a_new_one_resumes_its_stream() {
    let mut e = cluster(2, testkit::config());
    let mut alice = e.client(0, 1, "demo-alice");
    let mut alice_b = e.client(1, 1, "demo-alice");
    alice.order(&limit(1, 2, 1, Side::Sell, 2_200_000, 5)); // AMZN: shard 1
    alice.order(&limit(1, 1, 2, Side::Buy, 1_890_000, 1)); // AAPL: shard 0
    let (mut got, mut got_b) = (Vec::new(), Vec::new());
    e.run_until(|| {
        until_reports(&mut alice, &mut got, 2) & until_reports(&mut alice_b, &mut got_b, 2)
    });
    for g in [&got, &got_b] {
        let mut r = stream_reports(g);
        r.sort_by_key(|&(_, _, s, n)| (s, n));
        assert_eq!(
            r,
            [(ExecType::Accepted, 2, 0, 1), (ExecType::Accepted, 1, 1, 1)],
            "both sessions get both reports"
        );
    }

    // Alice's first session goes; every shard forgets it.
    drop(alice);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !e.shards.iter().all(|s| s.dispatcher.subscribers(1) == 1) {
        for s in &mut e.shards {
            s.pass();
        }
        assert!(Instant::now() < deadline, "never unsubscribed");
    }

    // Bob takes 3 of her 5: the other session hears of it at once.
    let mut bob = e.client(1, 2, "demo-bob");
    bob.order(&limit(2, 2, 9, Side::Buy, 2_200_000, 3));
    let mut bob_got = Vec::new();
    e.run_until(|| {
        until_reports(&mut bob, &mut bob_got, 2) & until_reports(&mut alice_b, &mut got_b, 3)
    });
    assert_eq!(
        stream_reports(&got_b)[2..],
        [(ExecType::PartiallyFilled, 1, 1, 2)]
    );

    // She logs on again having seen position 1 of both streams: stream 1 resends 2.
    let mut again = e.connect(0);
    again.logon_resuming(1, "demo-alice", &[1, 1]);
    let mut got = Vec::new();
    e.run_until(|| {
        got.extend(again.received());
        got.iter().filter(|g| matches!(g, Got::Resumed(_))).count() == 2
    });
    assert!(
        matches!(got[0], Got::LogonAck { streams: 2, .. }),
        "{got:?}"
    );
    assert_eq!(stream_reports(&got), [(ExecType::PartiallyFilled, 1, 1, 2)]);
    let resumed = |stream: u16| {
        got.iter()
            .position(|g| matches!(g, Got::Resumed(r) if r.stream == stream))
            .expect("resumed")
    };
    let report_at = got
        .iter()
        .position(|g| matches!(g, Got::Report { .. }))
        .expect("the resent report");
    assert!(report_at < resumed(1), "resent before its stream's Resumed");
    let Got::Resumed(r0) = got[resumed(0)] else {
        unreachable!()
    };
    let Got::Resumed(r1) = got[resumed(1)] else {
        unreachable!()
    };
    assert_eq!(
        (r0.after, r0.last, r0.resent, r0.first_retained),
        (1, 1, 0, 1)
    );
    assert_eq!(
        (r1.after, r1.last, r1.resent, r1.first_retained),
        (1, 2, 1, 1)
    );
    assert_eq!(e.shards[1].metrics.counters.reports_resent, 1);

    // From now on both sessions get each new report once.
    bob.order(&limit(2, 2, 10, Side::Buy, 2_200_000, 1));
    e.run_until(|| {
        until_reports(&mut again, &mut got, 2) & until_reports(&mut alice_b, &mut got_b, 4)
    });
    for _ in 0..10 {
        for s in &mut e.shards {
            s.pass();
        }
    }
    got.extend(again.received());
    got_b.extend(alice_b.received());
    let last = (ExecType::PartiallyFilled, 1, 1, 3);
    assert_eq!(stream_reports(&got)[1..], [last]);
    assert_eq!(stream_reports(&got_b)[3..], [last]);
}

#[test]
fn a_full_ring_stalls_the_session_and_its_orders_keep_their_order() {
    let mut config = testkit::config();
    config.engine.ring_slots = 2;
    let mut e = cluster(2, config);
    let mut alice = e.client(0, 1, "demo-alice");
    for cid in 1..=20 {
        alice.order(&limit(1, 2, cid, Side::Buy, 2_190_000, 1)); // AMZN: shard 1
    }
    // Only shard 0 runs: its ring to shard 1 fills and the session stalls.
    for _ in 0..10 {
        e.shards[0].pass();
    }
    assert!(e.shards[0].metrics.counters.ring_full >= 1);
    assert!(
        !e.shards[0].gateway.is_idle(),
        "the session holds a command"
    );
    assert_eq!(e.shared.in_flight[0].load(Ordering::SeqCst), 3);

    let mut got = Vec::new();
    e.run_until(|| until_reports(&mut alice, &mut got, 20));
    let accepted: Vec<u64> = reports(&got)
        .iter()
        .map(|&(t, cid)| {
            assert_eq!(t, ExecType::Accepted);
            cid
        })
        .collect();
    assert_eq!(accepted, (1..=20).collect::<Vec<_>>());
    let shared = Arc::clone(&e.shared);
    e.run_until(|| e_idle(&shared));
    assert!(e.shards[0].gateway.is_idle());
}

#[test]
fn cancel_on_disconnect_cancels_on_every_shard_and_the_reports_wait_in_the_streams() {
    let mut e = cluster(2, testkit::config());
    let mut alice = e.connect(0);
    alice.logon_cancelling(1, "demo-alice", Some(true));
    alice.order(&limit(1, 1, 1, Side::Buy, 1_890_000, 1)); // AAPL: shard 0
    alice.order(&limit(1, 2, 2, Side::Buy, 2_190_000, 1)); // AMZN: shard 1
    let mut got = Vec::new();
    e.run_until(|| until_reports(&mut alice, &mut got, 2));

    // Her only session goes: each shard cancels her resting order, with nobody to tell.
    drop(alice);
    let deadline = Instant::now() + Duration::from_secs(10);
    while e
        .shards
        .iter()
        .any(|s| s.sequencer.engine().stream_last(1) < 3)
    {
        for s in &mut e.shards {
            s.pass();
        }
        assert!(Instant::now() < deadline, "never cancelled");
    }
    let shared = Arc::clone(&e.shared);
    e.run_until(|| e_idle(&shared));

    // Logging on again after position 1 of each stream, she gets what happened.
    let mut again = e.connect(1);
    again.logon_resuming(1, "demo-alice", &[1, 1]);
    let mut got = Vec::new();
    e.run_until(|| {
        got.extend(again.received());
        got.iter().filter(|g| matches!(g, Got::Resumed(_))).count() == 2
    });
    for stream in 0..2u16 {
        let mine: Vec<_> = stream_reports(&got)
            .into_iter()
            .filter(|r| r.2 == stream)
            .map(|(t, _, _, n)| (t, n))
            .collect();
        assert_eq!(
            mine,
            [(ExecType::Cancelled, 2), (ExecType::MassCancelled, 3)],
            "stream {stream}: {got:?}"
        );
    }
    assert!(got
        .iter()
        .any(|g| matches!(g, Got::Resumed(r) if r.stream == 1 && r.resent == 2)));
}

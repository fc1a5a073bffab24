//! Several shards in one test process: real components, rings and in-memory journals,
//! sessions over Unix stream pairs, the shard loop's passes run by hand.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use veloz_core::{Command, MassCancel, Side};
use veloz_journal::{Durability, MemStorage};
use veloz_wire::ExecType;

use super::*;
use crate::mesh;
use crate::testkit::{self, limit, reports, Client, Got};

type TestShard = Shard<MemStorage, UnixStream>;

struct Cluster {
    shards: Vec<TestShard>,
    shared: Arc<Shared>,
    _control: Vec<Consumer<ControlMsg>>,
}

fn cluster(n: usize, config: veloz_config::Config) -> Cluster {
    let shared = testkit::shared(n, config);
    let (links, control) = mesh::build(n, shared.config.engine.ring_slots);
    let shards = links
        .into_iter()
        .map(|links| {
            let i = links.shard;
            let mut engine = testkit::engine(&shared, i);
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
    /// A client logged on to shard `shard` as `account`.
    fn client(&mut self, shard: usize, account: u32, token: &str) -> Client {
        let (mut client, server) = Client::pair();
        let s = &mut self.shards[shard];
        s.gateway
            .open(server, testkit::peer(), &mut s.metrics)
            .expect("slot");
        client.logon(account, token);
        let mut got = Vec::new();
        self.run_until(|| {
            got.extend(client.received());
            !got.is_empty()
        });
        assert!(matches!(got[..], [Got::LogonAck { .. }]), "{got:?}");
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
fn a_mass_cancel_over_all_symbols_fans_out_and_is_answered_once() {
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
    }));
    e.run_until(|| until_reports(&mut alice, &mut got, 5));
    for s in &mut e.shards {
        s.pass();
    }
    got.extend(alice.received());
    let r = reports(&got);
    assert_eq!(r.len(), 5, "{got:?}");
    assert_eq!(r[4], (ExecType::MassCancelled, 3));
    assert!(matches!(
        got.last(),
        Some(Got::Report {
            mass_cancel_count: 2,
            ..
        })
    ));
    let cancelled = r.iter().filter(|(t, _)| *t == ExecType::Cancelled).count();
    assert_eq!(cancelled, 2);
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

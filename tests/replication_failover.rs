//! A primary/standby pair on a real 3-node NATS JetStream cluster (loopback), under load
//! with `durability = "replicated"`:
//! 1. SIGKILL the primary: the standby takes over within two lease intervals, clients
//!    reconnect to it and resume, and every report any client received (before and after)
//!    is reproduced by replaying the new primary's journal; the old primary, restarted as
//!    a standby, catches up to the same state, and takes over at once when the new primary
//!    stops cleanly (the lease is released).
//! 2. SIGSTOP the primary past its lease, SIGCONT it: it is fenced and exits (status 3)
//!    without acknowledging anything more; the streams hold one history (no fork) and every
//!    report clients received is in it.
//! 3. SIGKILL a NATS node during load: acknowledgements stop at most while a stream leader
//!    is elected, then go on; nothing is lost.
//!
//! Skipped, saying why, only when nats-server is not installed (`make tools` installs it).

mod common;
mod replication;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use replication::cluster::NatsCluster;
use replication::pair::{free_port, gaps, node_config, trade, Node, Traded};
use veloz_core::*;

const LEASE_MS: u64 = 1_500;
const START: Duration = Duration::from_secs(30);

fn cluster(dir: &Path) -> Option<NatsCluster> {
    match NatsCluster::start(&dir.join("nats"), 3) {
        Ok(c) => Some(c),
        Err(e) if e.contains("make tools") => {
            eprintln!("skipped: {e}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// Replay `data`'s journals offline: every report per account, and each shard's hash.
fn replay(data: &Path, config: &Path) -> (HashMap<AccountId, HashSet<ReportKey>>, Vec<u64>) {
    let mut hashes = Vec::new();
    let reports = replay_reports(data, config, report_key, |_, e| hashes.push(e.state_hash()));
    (reports, hashes)
}

/// Every report each client received is reproduced by the replay, and no client has a gap
/// in any stream (resend filled what a disconnect missed).
fn assert_all_known(
    traded: &[(AccountId, Traded)],
    replayed: &HashMap<AccountId, HashSet<ReportKey>>,
) {
    for (who, t) in traded {
        let known = replayed.get(who).cloned().unwrap_or_default();
        for r in t.seen.values() {
            assert!(
                known.contains(&report_key(r)),
                "account {who} was told {r:?}, which the surviving journal does not hold"
            );
        }
        assert_eq!(
            gaps(&t.seen),
            vec![],
            "account {who} missed reports (logons {:?})",
            t.logons
        );
    }
}

fn start_traders(addrs: &[String], stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Traded>> {
    [ALICE, BOB]
        .into_iter()
        .map(|acc| {
            let (addrs, stop) = (addrs.to_vec(), Arc::clone(stop));
            std::thread::spawn(move || trade(addrs, acc, stop))
        })
        .collect()
}

fn join(traders: Vec<std::thread::JoinHandle<Traded>>) -> Vec<(AccountId, Traded)> {
    traders
        .into_iter()
        .zip([ALICE.0, BOB.0])
        .map(|(t, who)| (who, t.join().unwrap()))
        .collect()
}

/// The metrics address a standby of `engine` printed when it started following.
fn standby_metrics(node: &mut Node, engine: &str) -> String {
    let line = node.expect_line(&format!("veloz: standby of engine {engine} "), START);
    line.rsplit("metrics on ").next().unwrap().to_string()
}

/// Both nodes' configs and gateway addresses.
fn pair(
    dir: &Path,
    urls: &str,
    engine: &str,
    edits: &[(&str, &str)],
) -> ([std::path::PathBuf; 2], Vec<String>) {
    let (pa, pb) = (free_port(), free_port());
    let a = node_config(dir, "a", urls, engine, pa, LEASE_MS, edits);
    let b = node_config(dir, "b", urls, engine, pb, LEASE_MS, edits);
    (
        [a, b],
        vec![format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}")],
    )
}

#[test]
fn sigkill_of_the_primary_fails_over_and_loses_nothing_acknowledged() {
    let _serial = serial();
    let dir = TempDir::new("repl-kill");
    let Some(nats) = cluster(dir.path()) else {
        return;
    };
    let ([ca, cb], addrs) = pair(
        dir.path(),
        &nats.url_list(),
        "kill",
        &[
            ("every_records = 0", "every_records = 500"),
            (
                "durability = \"replicated\"",
                "durability = \"replicated\"\ncheckpoint_every_records = 1000",
            ),
        ],
    );
    let mut a = Node::start("a", &ca, false);
    a.expect_line("veloz: listening on ", START);
    let mut b = Node::start("b", &cb, true);
    let b_metrics = standby_metrics(&mut b, "kill");

    let stop = Arc::new(AtomicBool::new(false));
    let traders = start_traders(&addrs, &stop);
    std::thread::sleep(Duration::from_millis(2_000));
    // The standby follows while the primary trades.
    let applied = Node::metric(&b_metrics, "veloz_standby_applied_seq{shard=\"0\"}").unwrap_or(0.0)
        + Node::metric(&b_metrics, "veloz_standby_applied_seq{shard=\"1\"}").unwrap_or(0.0);
    assert!(applied > 0.0, "the standby applied nothing:\n{}", b.lines());

    let killed = Instant::now();
    a.kill9();
    b.expect_line("veloz: listening on ", Duration::from_millis(4 * LEASE_MS));
    let took_over = killed.elapsed();
    assert!(
        took_over <= Duration::from_millis(2 * LEASE_MS),
        "the standby took {took_over:?} to take over (lease {LEASE_MS} ms)\n{}",
        b.lines()
    );
    eprintln!("failover: SIGKILL to the standby listening: {took_over:?}");
    // The standby took snapshots while following: the takeover replayed only what followed.
    assert!(b.lines().contains("loaded snapshot "), "{}", b.lines());
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::SeqCst);
    let traded = join(traders);
    for (who, t) in &traded {
        assert!(
            t.seen.len() > 200,
            "account {who}: only {} reports",
            t.seen.len()
        );
        assert!(
            t.logons.contains(&1),
            "account {who} never logged on to the new primary: {:?}",
            t.logons
        );
    }
    let (replayed, hashes) = replay(&b.data, &cb);
    assert_all_known(&traded, &replayed);
    // The primary wrote a periodic checkpoint every 1000 records; the standby checked its
    // state against each as it applied them (a mismatch stops it).
    let data = b.data.to_str().unwrap().to_string();
    let (_, dump, _) = veloz(&["journal", "dump", "--data", &data]);
    let periodic = dump.lines().filter(|l| l.contains("\"periodic\"")).count();
    assert!(periodic >= 2, "{periodic} periodic checkpoints");

    // The old primary comes back as the standby and catches up with the new primary.
    let mut a2 = Node::start("a2", &ca, true);
    let a_metrics = standby_metrics(&mut a2, "kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    let caught_up = |shard: usize| {
        Node::metric(
            &a_metrics,
            &format!("veloz_standby_state_hash{{shard=\"{shard}\"}}"),
        ) == Some(hashes[shard] as f64)
    };
    while !(0..hashes.len()).all(caught_up) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        (0..hashes.len()).all(caught_up),
        "the restarted standby did not reach the new primary's state {hashes:x?}\n{}",
        a2.lines()
    );

    // A clean stop of the new primary releases the lease: the standby takes over at once,
    // with the state the new primary stopped with.
    let stopped = Instant::now();
    assert_eq!(b.stop(Duration::from_secs(30)), Some(0), "{}", b.lines());
    a2.expect_line("veloz: listening on ", Duration::from_secs(10));
    assert!(
        stopped.elapsed() < Duration::from_millis(LEASE_MS),
        "{:?}",
        stopped.elapsed()
    );
    let last: Vec<String> = (0..hashes.len())
        .map(|s| b.expect_line(&format!("veloz: shard {s} clean shutdown"), START))
        .collect();
    for (s, line) in last.iter().enumerate() {
        let hash = line.rsplit(' ').next().unwrap();
        let rec = a2.expect_line(&format!("veloz: shard {s}: recovered "), START);
        assert!(
            rec.ends_with(hash),
            "shard {s}: stopped with {hash}, taken over with {rec}"
        );
    }
    assert_eq!(a2.stop(Duration::from_secs(30)), Some(0), "{}", a2.lines());
}

#[test]
fn a_paused_primary_is_fenced_when_it_wakes() {
    let _serial = serial();
    let dir = TempDir::new("repl-stop");
    let Some(nats) = cluster(dir.path()) else {
        return;
    };
    let ([ca, cb], addrs) = pair(dir.path(), &nats.url_list(), "pause", &[]);
    let mut a = Node::start("a", &ca, false);
    a.expect_line("veloz: listening on ", START);
    let mut b = Node::start("b", &cb, true);
    b.expect_line("veloz: standby of engine pause", START);

    let stop = Arc::new(AtomicBool::new(false));
    let traders = start_traders(&addrs, &stop);
    std::thread::sleep(Duration::from_millis(1_500));
    a.sigstop();
    b.expect_line("veloz: listening on ", Duration::from_millis(4 * LEASE_MS));
    std::thread::sleep(Duration::from_millis(1_000));
    // The old primary wakes with orders in its sockets and batches in flight: it must not
    // acknowledge any of them.
    a.sigcont();
    let code = a.wait_exit(Duration::from_secs(10));
    assert_eq!(
        code,
        Some(3),
        "the woken primary was not fenced\n{}",
        a.lines()
    );
    assert!(a.lines().contains("fenced: "), "{}", a.lines());
    std::thread::sleep(Duration::from_millis(1_000));
    stop.store(true, Ordering::SeqCst);
    let traded = join(traders);
    // One history: what every client was told is in the new primary's journal (the stream's
    // copy), with no gap in any stream.
    let (replayed, _) = replay(&b.data, &cb);
    assert_all_known(&traded, &replayed);
    assert_eq!(b.stop(Duration::from_secs(30)), Some(0), "{}", b.lines());
    let (code, out, err) = replay_verify(&b.data, &cb);
    assert_eq!(code, Some(0), "{out}\n{err}");
    // The streams hold exactly the new primary's journal: one history, each record once
    // (the dump checks that record numbers run on across messages).
    let data = b.data.to_str().unwrap().to_string();
    let (code, local, err) = veloz(&["journal", "dump", "--data", &data]);
    assert_eq!(code, Some(0), "{err}");
    let config = cb.to_str().unwrap().to_string();
    let (code, streams, err) = veloz(&["journal", "dump", "--nats", "--config", &config]);
    assert_eq!(code, Some(0), "{err}");
    assert!(local.lines().count() > 1_000, "{}", local.lines().count());
    assert!(
        local == streams,
        "the streams differ from the new primary's journal"
    );
    // The fenced node's journal may hold records nobody was told of; restarted as the
    // standby it sets them aside and follows the one history.
    let mut a2 = Node::start("a2", &ca, true);
    a2.expect_line("veloz: listening on ", START);
    assert_eq!(a2.stop(Duration::from_secs(30)), Some(0), "{}", a2.lines());
}

#[test]
fn a_nats_node_killed_during_load_loses_nothing() {
    let _serial = serial();
    let dir = TempDir::new("repl-nats");
    let Some(mut nats) = cluster(dir.path()) else {
        return;
    };
    let ([ca, _], addrs) = pair(dir.path(), &nats.url_list(), "nodekill", &[]);
    let mut a = Node::start("a", &ca, false);
    a.expect_line("veloz: listening on ", START);
    let metrics = a.printed("veloz: metrics on ", START);

    let stop = Arc::new(AtomicBool::new(false));
    let traders = start_traders(&addrs[..1], &stop);
    std::thread::sleep(Duration::from_millis(1_500));
    let before: f64 = (0..2)
        .filter_map(|s| {
            Node::metric(
                &metrics,
                &format!("veloz_replica_records_total{{shard=\"{s}\"}}"),
            )
        })
        .sum();
    nats.kill_node(0);
    // Replication goes on once the streams that lost their leader elect another.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = before;
    while after <= before + 100.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = (0..2)
            .filter_map(|s| {
                Node::metric(
                    &metrics,
                    &format!("veloz_replica_records_total{{shard=\"{s}\"}}"),
                )
            })
            .sum();
    }
    assert!(
        after > before + 100.0,
        "acknowledgements stopped: {before} then {after}\n{}",
        a.lines()
    );
    stop.store(true, Ordering::SeqCst);
    let traded = join(traders);
    assert!(a.exited().is_none(), "the primary died\n{}", a.lines());
    // Everything journaled gets acknowledged.
    let deadline = Instant::now() + Duration::from_secs(20);
    let unacked = || -> f64 {
        (0..2)
            .filter_map(|s| {
                Node::metric(
                    &metrics,
                    &format!("veloz_replica_unacked_records{{shard=\"{s}\"}}"),
                )
            })
            .sum()
    };
    while unacked() > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(unacked(), 0.0);
    assert_eq!(a.stop(Duration::from_secs(30)), Some(0), "{}", a.lines());
    let (replayed, _) = replay(&a.data, &ca);
    assert_all_known(&traded, &replayed);
}

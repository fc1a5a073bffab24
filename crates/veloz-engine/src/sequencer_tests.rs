use std::sync::Arc;
use std::time::{Duration, Instant};

use veloz_core::{Event, Part, Side};
use veloz_journal::{Durability, FaultMode, FaultPlan, FaultStorage, MemStorage};

use super::*;
use crate::testkit::{self, inbound, limit};

const ALICE: SessionRef = SessionRef {
    shard: 0,
    slot: 0,
    generation: 1,
};

fn metrics() -> ShardMetrics {
    ShardMetrics::new(0, 0)
}

#[test]
fn returns_the_sequence_number_and_the_events_of_each_command() {
    let shared = testkit::shared(1, testkit::config());
    let mut seq = testkit::mem_sequencer(&shared);
    let mut m = metrics();
    seq.push(inbound(
        ALICE,
        11,
        limit(1, 1, 100, Side::Sell, 1_900_000, 5),
    ));
    seq.push(inbound(
        ALICE,
        12,
        limit(2, 1, 200, Side::Buy, 1_900_000, 3),
    ));
    assert_eq!(seq.pending(), 2);

    let first = seq.next(&mut m).expect("queued").expect("appended");
    assert_eq!((first.seq, first.origin, first.ingress), (1, ALICE, 11));
    assert!(matches!(
        first.events,
        [Event::Accepted {
            client_order_id: 100,
            ..
        }]
    ));
    assert!(first.ts > 0 && first.appended_ns > 0);
    assert_eq!(
        first.assigned,
        [Assigned {
            account: 1,
            part: Part::All,
            event_index: 0,
            stream_seq: 1
        }]
    );

    let second = seq.next(&mut m).expect("queued").expect("appended");
    assert_eq!(second.seq, 2);
    assert!(matches!(
        second.events,
        [Event::Accepted { .. }, Event::Trade { qty: 3, .. }]
    ));
    // Account 2's accept, then the trade's maker (account 1) and taker (account 2) reports,
    // each numbered in its account's stream.
    let assigned: Vec<_> = second
        .assigned
        .iter()
        .map(|a| (a.account, a.part, a.event_index, a.stream_seq))
        .collect();
    assert_eq!(
        assigned,
        [
            (2, Part::All, 0, 1),
            (1, Part::Maker, 1, 2),
            (2, Part::Taker, 1, 2)
        ]
    );
    assert!(seq.next(&mut m).is_none());
    assert_eq!(seq.last_seq(), 2);
    assert_eq!(m.counters.commands, [2, 0, 0, 0, 0]);
    assert_eq!(seq.journal_stats().records, 2);
    // Page-cache durability: written is durable.
    assert_eq!(seq.durable_seq(&mut m), 2);
}

#[test]
fn sequence_numbers_continue_after_recovery_from_the_same_storage() {
    let shared = testkit::shared(1, testkit::config());
    let storage = MemStorage::new();
    let hash = {
        let mut seq = testkit::sequencer(&shared, 0, storage.clone());
        let mut m = metrics();
        for cid in 1..=3 {
            let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
            seq.sequence(inbound(ALICE, 0, cmd), &mut m)
                .expect("append");
        }
        seq.state_hash()
    };
    let mut seq = testkit::sequencer(&shared, 0, storage);
    assert_eq!(seq.last_seq(), 3);
    assert_eq!(seq.state_hash(), hash, "replay rebuilds the same book");
    let cmd = limit(1, 1, 4, Side::Buy, 1_890_000, 1);
    let next = seq
        .sequence(inbound(ALICE, 0, cmd), &mut metrics())
        .unwrap();
    assert_eq!(next.seq, 4);
    assert_eq!(
        next.assigned
            .iter()
            .map(|a| a.stream_seq)
            .collect::<Vec<_>>(),
        [4],
        "replay rebuilds the account's stream too"
    );
}

#[test]
fn group_durability_moves_the_durable_watermark() {
    let mut config = testkit::config();
    config.journal.durability = Durability::Group;
    config.journal.group_max_wait_us = 100;
    let shared = testkit::shared(1, config);
    let storage = MemStorage::new();
    let mut seq = testkit::sequencer(&shared, 0, storage.clone());
    let mut m = metrics();
    for cid in 1..=5 {
        let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
        seq.sequence(inbound(ALICE, 0, cmd), &mut m)
            .expect("append");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let durable = seq.durable_seq(&mut m);
        if seen.last() != Some(&durable) {
            seen.push(durable);
        }
        if durable >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "durable watermark stuck at {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "only forward: {seen:?}"
    );
    assert!(m.counters.journal_syncs >= 1);
    assert!(storage.sync_count() >= 1, "the sync thread synced");
}

#[test]
fn a_failed_append_is_an_error_naming_the_request_and_leaves_the_book_alone() {
    let shared = testkit::shared(1, testkit::config());
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
    let mut seq = testkit::sequencer(&shared, 0, storage);
    let mut m = metrics();
    let cmd = limit(1, 1, 1, Side::Buy, 1_890_000, 1);
    seq.sequence(inbound(ALICE, 0, cmd), &mut m)
        .expect("append");
    let before = seq.state_hash();

    plan.fault_after(0, FaultMode::Fail);
    let cmd = limit(1, 1, 77, Side::Buy, 1_890_000, 1);
    let err = seq
        .sequence(inbound(ALICE, 0, cmd), &mut m)
        .expect_err("the write fails");
    // A failed write makes the journal unavailable: the command comes back, unsequenced.
    let SequencerError::Unavailable {
        shard,
        inbound: back,
        ..
    } = &err
    else {
        panic!("not unavailable: {err}");
    };
    let (account, cid) = (back.cmd.account(), back.cmd.client_order_id());
    assert_eq!((*shard, account, cid), (0, 1, 77));
    let text = err.to_string();
    assert!(
        text.contains("request 77 not sequenced") && text.contains("journal write failed"),
        "{text}"
    );
    assert_eq!(seq.state_hash(), before, "the book did not move");
    assert_eq!(seq.last_seq(), 1);
    assert_eq!(
        m.counters.commands,
        [1, 0, 0, 0, 0],
        "the failed command is not counted"
    );

    // Once writes succeed the journal goes on at the next sequence: none skipped.
    plan.heal();
    let cmd = limit(1, 1, 78, Side::Buy, 1_890_000, 1);
    let s = seq
        .sequence(inbound(ALICE, 0, cmd), &mut m)
        .expect("healed");
    assert_eq!(s.seq, 2);
}

#[test]
fn a_torn_append_is_cut_at_recovery() {
    let shared = testkit::shared(1, testkit::config());
    let plan = FaultPlan::new();
    let mem = MemStorage::new();
    let storage = FaultStorage::new(mem.clone(), Arc::clone(&plan));
    let mut seq = testkit::sequencer(&shared, 0, storage);
    let mut m = metrics();
    for cid in 1..=2 {
        let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
        seq.sequence(inbound(ALICE, 0, cmd), &mut m)
            .expect("append");
    }
    let hash = seq.state_hash();
    plan.fault_after(10, FaultMode::Tear);
    let cmd = limit(1, 1, 3, Side::Buy, 1_890_000, 1);
    assert!(seq.sequence(inbound(ALICE, 0, cmd), &mut m).is_err());
    assert!(plan.tripped());
    drop(seq);

    let mut engine = testkit::engine(&shared, 0);
    let (_journal, recovered) =
        ShardJournal::recover(mem, &shared.config.journal, 0, false, &mut engine)
            .expect("a torn tail is not corruption");
    assert_eq!(recovered.last_seq, 2);
    assert_eq!(engine.state_hash(), hash);
}

/// Sequence `cmd`s until one is refused as unavailable (within 10 s); returns the refused
/// command's client order id and the last sequence number journaled.
fn until_refused<S: Storage>(seq: &mut Sequencer<S>, m: &mut ShardMetrics, cid: &mut u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cmd = limit(1, 1, *cid, Side::Buy, 1_890_000, 1);
        match seq.sequence(inbound(ALICE, 0, cmd), m) {
            Ok(_) => *cid += 1,
            Err(SequencerError::Unavailable { inbound, why, .. }) => {
                assert_eq!(
                    inbound.cmd.client_order_id(),
                    *cid,
                    "the command comes back"
                );
                assert!(!why.is_empty());
                return *cid;
            }
            Err(e) => panic!("not an unavailable journal: {e}"),
        }
        assert!(Instant::now() < deadline, "appends were never refused");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait (10 s at most) until the journal takes appends again.
fn until_available<S: Storage>(seq: &mut Sequencer<S>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(why) = seq.journal_unavailable() {
        assert!(Instant::now() < deadline, "never recovered: {why}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// After recovery the next command gets the next sequence number, and a restart rebuilds
/// the live state.
fn resumes_and_recovers(
    seq: &mut Sequencer<FaultStorage<MemStorage>>,
    storage: FaultStorage<MemStorage>,
    shared: &crate::shared::Shared,
    m: &mut ShardMetrics,
    cid: u64,
) {
    let before = seq.last_seq();
    let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
    let s = seq
        .sequence(inbound(ALICE, 0, cmd), m)
        .expect("appends again");
    assert_eq!(s.seq, before + 1, "no sequence number skipped or reused");
    let hash = seq.state_hash();
    let last = seq.checkpoint_and_close(1).expect("checkpoint");
    let again = testkit::sequencer(shared, 0, storage);
    assert_eq!(again.last_seq(), last);
    assert_eq!(again.state_hash(), hash, "recovery gives the live state");
}

#[test]
fn a_failed_reservation_makes_the_journal_unavailable_until_space_returns() {
    let mut config = testkit::config();
    config.journal.segment_size = 4096;
    let shared = testkit::shared(1, config);
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
    let mut seq = testkit::sequencer(&shared, 0, storage.clone());
    let mut m = metrics();
    // The first spare exists; the next one cannot be reserved (a full disk).
    plan.fail_creates(true);
    let mut cid = 1;
    until_refused(&mut seq, &mut m, &mut cid);
    // 50 command records fill a 4096-byte segment; the 51st needs the next one.
    assert_eq!(seq.last_seq(), 50);
    let why = seq.journal_unavailable().expect("unavailable");
    assert!(why.contains("No space left on device"), "{why}");
    // Refused again, still nothing journaled.
    until_refused(&mut seq, &mut m, &mut cid);
    assert_eq!(seq.last_seq(), 50);
    plan.heal();
    until_available(&mut seq);
    resumes_and_recovers(&mut seq, storage, &shared, &mut m, cid);
}

#[test]
fn a_failed_write_makes_the_journal_unavailable_until_writes_succeed() {
    for mode in [FaultMode::Fail, FaultMode::Tear] {
        let shared = testkit::shared(1, testkit::config());
        let plan = FaultPlan::new();
        let storage = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
        let mut seq = testkit::sequencer(&shared, 0, storage.clone());
        let mut m = metrics();
        let mut cid = 1;
        for _ in 0..3 {
            let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
            seq.sequence(inbound(ALICE, 0, cmd), &mut m)
                .expect("append");
            cid += 1;
        }
        plan.fault_after(40, mode);
        until_refused(&mut seq, &mut m, &mut cid);
        assert_eq!(seq.last_seq(), 3);
        let why = seq.journal_unavailable().expect("unavailable");
        assert!(why.contains("journal write failed"), "{why}");
        plan.heal();
        until_available(&mut seq);
        resumes_and_recovers(&mut seq, storage, &shared, &mut m, cid);
    }
}

#[test]
fn a_failed_sync_holds_the_watermark_and_the_journal_recovers_when_syncs_succeed() {
    let mut config = testkit::config();
    config.journal.durability = Durability::Group;
    config.journal.group_max_wait_us = 100;
    let shared = testkit::shared(1, config);
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
    let mut seq = testkit::sequencer(&shared, 0, storage.clone());
    let mut m = metrics();
    plan.fail_syncs(true);
    let cmd = limit(1, 1, 1, Side::Buy, 1_890_000, 1);
    let first = seq
        .sequence(inbound(ALICE, 0, cmd), &mut m)
        .expect("append");
    assert_eq!(first.seq, 1);
    let mut cid = 2;
    until_refused(&mut seq, &mut m, &mut cid);
    assert_eq!(
        seq.durable_seq(&mut m),
        0,
        "nothing durable after a failed sync"
    );
    let written = seq.last_seq();
    let why = seq.journal_unavailable().expect("unavailable");
    assert!(why.contains("journal sync failed"), "{why}");
    assert_eq!(m.counters.journal_syncs, 0);
    plan.heal();
    until_available(&mut seq);
    // Journaled but not durable: neither lost nor skipped; durable after the retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seq.durable_seq(&mut m) < written {
        assert!(
            Instant::now() < deadline,
            "the retried sync never covered {written}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    resumes_and_recovers(&mut seq, storage, &shared, &mut m, cid);
}

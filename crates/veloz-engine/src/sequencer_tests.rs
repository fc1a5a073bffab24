use std::sync::Arc;
use std::time::{Duration, Instant};

use veloz_core::{Event, Side};
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

    let second = seq.next(&mut m).expect("queued").expect("appended");
    assert_eq!(second.seq, 2);
    assert!(matches!(
        second.events,
        [Event::Accepted { .. }, Event::Trade { qty: 3, .. }]
    ));
    assert!(seq.next(&mut m).is_none());
    assert_eq!(seq.last_seq(), 2);
    assert_eq!(m.counters.commands, [2, 0, 0, 0]);
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
    let SequencerError::Append {
        shard,
        account,
        client_order_id,
        after,
        ..
    } = &err;
    assert_eq!((*shard, *account, *client_order_id, *after), (0, 1, 77, 1));
    let text = err.to_string();
    assert!(
        text.contains("request 77") && text.contains("after sequence 1"),
        "{text}"
    );
    assert_eq!(seq.state_hash(), before, "the book did not move");
    assert_eq!(seq.last_seq(), 1);
    assert_eq!(
        m.counters.commands,
        [1, 0, 0, 0],
        "the failed command is not counted"
    );

    // The journal stays failed: no record is ever skipped.
    plan.heal();
    let cmd = limit(1, 1, 78, Side::Buy, 1_890_000, 1);
    assert!(seq.sequence(inbound(ALICE, 0, cmd), &mut m).is_err());
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

#[test]
fn a_failed_sync_holds_the_watermark_and_stops_later_appends() {
    let mut config = testkit::config();
    config.journal.durability = Durability::Group;
    config.journal.group_max_wait_us = 100;
    let shared = testkit::shared(1, config);
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
    let mut seq = testkit::sequencer(&shared, 0, storage);
    let mut m = metrics();
    plan.fail_syncs(true);
    let cmd = limit(1, 1, 1, Side::Buy, 1_890_000, 1);
    let first = seq
        .sequence(inbound(ALICE, 0, cmd), &mut m)
        .expect("append");
    assert_eq!(first.seq, 1);

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut cid = 2;
    let err = loop {
        assert!(
            seq.durable_seq(&mut m) < 1,
            "nothing becomes durable after a failed sync"
        );
        let cmd = limit(1, 1, cid, Side::Buy, 1_890_000, 1);
        match seq.sequence(inbound(ALICE, 0, cmd), &mut m) {
            Ok(_) => cid += 1,
            Err(e) => break e,
        }
        assert!(Instant::now() < deadline, "appends never failed");
        std::thread::sleep(Duration::from_millis(1));
    };
    let SequencerError::Append {
        client_order_id, ..
    } = err;
    assert_eq!(client_order_id, cid);
    assert_eq!(m.counters.journal_syncs, 0);
}

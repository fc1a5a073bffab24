//! Tests of the writer's group commit run by the sync thread, and of stepped helpers.

use super::*;
use crate::backend::MemStorage;
use crate::layout::segment_name;
use crate::recovery::{open, OpenOptions};

fn mass_cancel() -> Command {
    Command::MassCancel(veloz_core::MassCancel {
        account: 1,
        client_order_id: 2,
        symbol: None,
        reason: veloz_core::CancelReason::MassCancel,
    })
}

fn wait_until(w: &Writer<MemStorage>, seq: Seq, limit: Duration) {
    let t = Instant::now();
    while w.durable_seq() < seq && t.elapsed() < limit {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn group_writer_syncs_whole_pages_when_a_batch_is_full() {
    let mem = MemStorage::new();
    let config = JournalConfig {
        segment_size: 1 << 20,
        durability: Durability::Group,
        group_max_batch: 64,
        // A long idle period: only the batch wake-up makes progress quickly.
        group_max_wait_us: 1_000_000,
        ..JournalConfig::default()
    };
    let (mut w, _) = open(mem.clone(), 1, &config, OpenOptions::default()).unwrap();
    for _ in 0..64 {
        w.append_command(5, &mass_cancel()).unwrap();
    }
    // Records 1..=50 end by offset 64 + 50 * 80 = 4064, inside the first page; record 51
    // crosses into the second, which the writer is still filling.
    wait_until(&w, 50, Duration::from_millis(900));
    assert_eq!(
        w.durable_seq(),
        50,
        "whole pages are synced at the batch wake-up"
    );
    assert!(mem.sync_count() >= 1);
    assert_eq!(w.stats().records, 64);
    assert_eq!(w.stats().bytes, 64 * 80);
    assert_eq!(
        w.close().unwrap(),
        64,
        "the last sync covers the partial page"
    );
}

#[test]
fn group_writer_syncs_a_trickle_after_the_max_wait() {
    let mem = MemStorage::new();
    let config = JournalConfig {
        segment_size: 1 << 20,
        durability: Durability::Group,
        group_max_batch: 4096,
        group_max_wait_us: 1_000,
        ..JournalConfig::default()
    };
    let (mut w, _) = open(mem, 1, &config, OpenOptions::default()).unwrap();
    let seq = w.append_command(5, &mass_cancel()).unwrap();
    wait_until(&w, seq, Duration::from_secs(5));
    assert_eq!(
        w.durable_seq(),
        seq,
        "a lone record in a partial page becomes durable"
    );
    w.close().unwrap();
}

/// Stepped helpers: nothing moves but the caller's steps, by the caller's clock. Group commit
/// on the helper syncs whole pages at a step, the partial page once the clock says records
/// waited a period; a rollover activates the spare, which keeps its spare name until a step
/// runs the preparer (seal, rename, chain head, next spare).
#[test]
fn stepped_helpers_move_only_when_the_caller_steps_them() {
    let mem = MemStorage::new();
    let t0 = Instant::now();
    let wait = Duration::from_micros(500);
    let config = JournalConfig {
        segment_size: 8192,
        durability: Durability::Group,
        group_max_batch: 1,
        group_max_wait_us: wait.as_micros() as u64,
        helpers: HelperDriver::Stepped { clock: t0 },
        ..JournalConfig::default()
    };
    let (mut w, _) = open(mem.clone(), 1, &config, OpenOptions::default()).unwrap();
    // 60 records of 80 bytes after the 64-byte header: the first page is full at record 50.
    for _ in 0..60 {
        w.append_command(5, &mass_cancel()).unwrap();
    }
    thread::sleep(Duration::from_millis(5));
    assert_eq!(
        w.durable_seq(),
        0,
        "no thread syncs behind the caller's back"
    );
    w.step_helpers(t0, 8);
    assert_eq!(w.durable_seq(), 50, "a step syncs the whole pages");
    w.step_helpers(t0 + wait / 2, 8);
    assert_eq!(
        w.durable_seq(),
        50,
        "the partial page has not waited a period"
    );
    w.step_helpers(t0 + wait, 8);
    assert_eq!(w.durable_seq(), 60, "by the caller's clock it has");

    // Fill the first segment (101 records fit in 8192 bytes), then roll over.
    for _ in 60..102 {
        w.append_command(5, &mass_cancel()).unwrap();
    }
    let names = |m: &MemStorage| m.list().unwrap();
    let second = segment_name(102);
    assert!(names(&mem).contains(&SPARE_NAME.to_string()));
    assert!(
        !names(&mem).contains(&second),
        "renamed only by the preparer"
    );
    w.step_helpers(t0 + wait, 8);
    assert!(names(&mem).contains(&second), "{:?}", names(&mem));
    assert!(
        names(&mem).contains(&SPARE_NAME.to_string()),
        "and the next spare reserved"
    );
    assert_eq!(w.close().unwrap(), 102, "close makes the rest durable");
    assert!(!names(&mem).contains(&SPARE_NAME.to_string()));
}

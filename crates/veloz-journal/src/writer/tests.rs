//! Tests of the writer's group commit run by the sync thread.

use super::*;
use crate::backend::MemStorage;
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

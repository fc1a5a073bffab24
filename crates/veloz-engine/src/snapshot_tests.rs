//! Periodic snapshots over the in-memory journal: taken every N records, pruned to `keep`,
//! and recovery loads the newest valid one and replays only the tail; a damaged one is
//! skipped with a warning naming it.

use std::time::{Duration, Instant};

use veloz_config::SnapshotConfig;
use veloz_core::Side;
use veloz_journal::{snapshot, MemStorage, Storage};

use crate::io::Clock;
use crate::journal::ShardJournal;
use crate::mesh::SessionRef;
use crate::metrics::ShardMetrics;
use crate::sequencer::Sequencer;
use crate::testkit::{self, inbound, limit};

const ALICE: SessionRef = SessionRef {
    shard: 0,
    slot: 0,
    generation: 1,
};

fn wait_for(storage: &MemStorage, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !storage
        .list()
        .unwrap()
        .contains(&snapshot::snapshot_name(seq))
    {
        assert!(Instant::now() < deadline, "no snapshot at sequence {seq}");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The helper hands the buffer back right after writing (and pruning).
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn recovery_loads_the_newest_snapshot_and_replays_the_tail() {
    let shared = testkit::shared(1, testkit::config());
    let mem = MemStorage::new();
    let mut engine = testkit::engine(&shared, 0);
    let (mut journal, recovered) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover");
    assert!(recovered.snapshot.is_none());
    journal.enable_snapshots(&SnapshotConfig {
        every_records: 10,
        every_ms: 0,
        keep: 2,
    });
    let mut seq = Sequencer::new(0, engine, journal, 0, Clock::new(shared.epoch));
    let mut m = ShardMetrics::new(0, 0);
    for k in 1..=35u64 {
        let (side, price) = if k % 3 == 0 {
            (Side::Sell, 1_900_000 + 100 * (k % 4) as i64)
        } else {
            (Side::Buy, 1_899_000 + 100 * (k % 5) as i64)
        };
        seq.sequence(
            inbound(ALICE, 0, limit(1 + k as u32 % 2, 1, k, side, price, 3)),
            &mut m,
        )
        .expect("append");
        if k % 10 == 0 {
            wait_for(&mem, k);
        }
    }
    let hash = seq.state_hash();
    // Kept: the two newest.
    assert_eq!(snapshot::list_snapshots(&mem).unwrap(), vec![30, 20]);
    drop(seq); // a crash: no checkpoint

    let mut engine = testkit::engine(&shared, 0);
    let (_j, recovered) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover");
    let (file, at) = recovered.snapshot.clone().expect("a snapshot was loaded");
    assert_eq!(at, 30);
    assert!(file.ends_with(&snapshot::snapshot_name(30)), "{file}");
    assert_eq!((recovered.replayed, recovered.last_seq), (5, 35));
    assert_eq!(engine.state_hash(), hash);
    drop(_j);

    // Damage the newest snapshot: recovery falls back to the older one, saying which it skipped.
    let mut bytes = mem.open_view(&snapshot::snapshot_name(30)).unwrap().0;
    let n = bytes.len();
    bytes[n - 10] ^= 0x40;
    mem.replace(&snapshot::snapshot_name(30), &bytes).unwrap();
    let mut engine = testkit::engine(&shared, 0);
    let (_j, recovered) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover");
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.1), Some(20));
    assert_eq!(recovered.replayed, 15);
    assert_eq!(engine.state_hash(), hash);
    let w = recovered.warnings.join("\n");
    assert!(
        w.contains("skipped snapshot") && w.contains(&snapshot::snapshot_name(30)),
        "{w}"
    );
}

#[test]
fn a_snapshot_beyond_the_journal_is_refused_by_name() {
    let shared = testkit::shared(1, testkit::config());
    let mem = MemStorage::new();
    let mut engine = testkit::engine(&shared, 0);
    let mut buf = Vec::new();
    snapshot::encode(&engine, 7, &mut buf);
    snapshot::write(&mem, 7, &buf).unwrap();
    let err = ShardJournal::recover(mem, &shared.config.journal, 0, false, &mut engine)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&snapshot::snapshot_name(7)) && err.contains("journal ends at sequence 0"),
        "{err}"
    );
}

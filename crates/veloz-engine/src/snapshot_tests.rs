//! Periodic snapshots over the in-memory journal: the helper's shadow follows the journal,
//! snapshots land every N records with the state hash a replay to their sequence gives (also
//! while orders stream in and segments roll over), are pruned to `keep`, and recovery loads
//! the newest valid one and replays only the tail; a damaged one is skipped with a warning
//! naming it. The shard's path has no snapshot work in it (checked on the source).

use std::time::{Duration, Instant};

use veloz_config::SnapshotConfig;
use veloz_core::{Engine, Side};
use veloz_journal::archive::ARCHIVE_EXT;
use veloz_journal::replay::apply_record;
use veloz_journal::{snapshot, JournalReader, MemStorage, RetentionMode, Storage};

use crate::io::Clock;
use crate::journal::ShardJournal;
use crate::mesh::SessionRef;
use crate::metrics::ShardMetrics;
use crate::sequencer::Sequencer;
use crate::shared::Shared;
use crate::testkit::{self, inbound, limit};

const ALICE: SessionRef = SessionRef {
    shard: 0,
    slot: 0,
    generation: 1,
};

/// Wait until the newest snapshot is at `seq` and at most `keep` are left (pruned).
fn wait_for(storage: &MemStorage, seq: u64, keep: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seqs = snapshot::list_snapshots(storage).unwrap();
        if seqs.first() == Some(&seq) && seqs.len() <= keep {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot at sequence {seq}: {seqs:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A sequencer over `mem` with snapshots as `config` says (segments kept).
fn sequencer(shared: &Shared, mem: &MemStorage, config: &SnapshotConfig) -> Sequencer<MemStorage> {
    sequencer_with(shared, mem, config, RetentionMode::Off)
}

/// [`sequencer`], with `retention` applied by the snapshot helper.
fn sequencer_with(
    shared: &Shared,
    mem: &MemStorage,
    config: &SnapshotConfig,
    retention: RetentionMode,
) -> Sequencer<MemStorage> {
    let mut engine = testkit::engine(shared, 0);
    let (mut journal, _) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover");
    journal.enable_snapshots(config, retention, &engine);
    Sequencer::new(0, engine, journal, 0, Clock::new(shared.epoch))
}

/// The `k`th order of a seeded stream of bids and asks around one price (some trade).
fn order(k: u64) -> crate::mesh::Inbound {
    let (side, price) = if k.is_multiple_of(3) {
        (Side::Sell, 1_900_000 + 100 * (k % 4) as i64)
    } else {
        (Side::Buy, 1_899_000 + 100 * (k % 5) as i64)
    };
    inbound(ALICE, 0, limit(1 + k as u32 % 2, 1, k, side, price, 3))
}

/// After each snapshot the helper archives the segments wholly before the oldest kept one;
/// recovery then starts from the newest snapshot, and a reader from sequence 1 still reads
/// every record, through the archive.
#[test]
fn the_helper_archives_segments_before_the_oldest_kept_snapshot() {
    let mut config = testkit::config();
    config.journal.segment_size = 4096;
    let shared = testkit::shared(1, config);
    let mem = MemStorage::new();
    let config = SnapshotConfig {
        every_records: 100,
        every_ms: 0,
        keep: 2,
    };
    let mut seq = sequencer_with(&shared, &mem, &config, RetentionMode::Archive);
    let mut m = ShardMetrics::new(0, 0);
    for k in 1..=400u64 {
        seq.sequence(order(k), &mut m).expect("append");
        if k % 100 == 0 {
            wait_for(&mem, k, 2);
        }
    }
    let archived = |mem: &MemStorage| {
        let mut names: Vec<String> = mem.list().unwrap();
        names.retain(|n| n.ends_with(ARCHIVE_EXT));
        names.len()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while archived(&mem) == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing archived: {:?}",
            mem.list()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let hash = seq.state_hash();
    drop(seq);

    let mut engine = testkit::engine(&shared, 0);
    let (_j, recovered) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover with old segments archived");
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.1), Some(400));
    assert_eq!(engine.state_hash(), hash);
    drop(_j);
    let mut reader = JournalReader::open(mem.clone(), 0).unwrap();
    let mut n = 0;
    while let Some(r) = reader.next_record().unwrap() {
        n += 1;
        assert_eq!(r.seq, n, "in order from sequence 1, through the archive");
    }
    assert!(n >= 400, "{n} records");
}

#[test]
fn recovery_loads_the_newest_snapshot_and_replays_the_tail() {
    let shared = testkit::shared(1, testkit::config());
    let mem = MemStorage::new();
    let config = SnapshotConfig {
        every_records: 10,
        every_ms: 0,
        keep: 2,
    };
    let mut seq = sequencer(&shared, &mem, &config);
    let mut m = ShardMetrics::new(0, 0);
    for k in 1..=35u64 {
        seq.sequence(order(k), &mut m).expect("append");
        if k % 10 == 0 {
            wait_for(&mem, k, 2);
        }
    }
    let hash = seq.state_hash();
    // The accounts' report streams (not in the hash) must come back too.
    let streams = |e: &Engine| [1, 2].map(|account| e.stream_last(account));
    let live_streams = streams(seq.engine());
    assert!(live_streams.iter().all(|&n| n >= 17), "{live_streams:?}");
    // Kept: the two newest.
    assert_eq!(snapshot::list_snapshots(&mem).unwrap(), vec![30, 20]);
    assert_eq!(seq.snapshot_counts(), (3, 0));
    drop(seq); // a crash: no checkpoint

    let mut engine = testkit::engine(&shared, 0);
    engine.set_report_retention(100);
    let (_j, recovered) =
        ShardJournal::recover(mem.clone(), &shared.config.journal, 0, false, &mut engine)
            .expect("recover");
    let (file, at) = recovered.snapshot.clone().expect("a snapshot was loaded");
    assert_eq!(at, 30);
    // The loaded engine keeps the resend window, filled by the tail after the snapshot.
    assert_eq!(engine.report_retention(), 100);
    let tail: Vec<u64> = [1, 2]
        .iter()
        .flat_map(|&a| engine.stream_retained_after(a, 0).map(|r| r.seq))
        .collect();
    assert!(!tail.is_empty() && tail.iter().all(|&s| s > 30), "{tail:?}");
    assert!(file.ends_with(&snapshot::snapshot_name(30)), "{file}");
    assert_eq!((recovered.replayed, recovered.last_seq), (5, 35));
    assert_eq!(engine.state_hash(), hash);
    assert_eq!(streams(&engine), live_streams, "snapshot plus tail");
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
    assert_eq!(streams(&engine), live_streams, "older snapshot plus tail");
    let w = recovered.warnings.join("\n");
    assert!(
        w.contains("skipped snapshot") && w.contains(&snapshot::snapshot_name(30)),
        "{w}"
    );
}

#[test]
fn snapshots_taken_while_orders_stream_match_a_replay_to_their_sequence() {
    let mut config = testkit::config();
    // 4 KiB segments: a rollover every ~47 records, many while the helper follows.
    config.journal.segment_size = 4096;
    let shared = testkit::shared(1, config);
    let mem = MemStorage::new();
    // A journal that does not start empty: the shadow starts from the recovered engine.
    let mut seq = sequencer(&shared, &mem, &SnapshotConfig::default());
    let mut m = ShardMetrics::new(0, 0);
    for k in 1..=25u64 {
        seq.sequence(order(k), &mut m).expect("append");
    }
    drop(seq);
    let every = SnapshotConfig {
        every_records: 40,
        every_ms: 0,
        keep: 100,
    };
    let mut seq = sequencer(&shared, &mem, &every);
    // Streamed without waiting: the helper follows behind the shard.
    for k in 26..=425u64 {
        seq.sequence(order(k), &mut m).expect("append");
    }
    wait_for(&mem, 425, 100);
    let taken = snapshot::list_snapshots(&mem).unwrap();
    assert_eq!(
        taken,
        (1..=10).rev().map(|i| 25 + 40 * i).collect::<Vec<_>>()
    );
    let segments = mem
        .list()
        .unwrap()
        .iter()
        .filter(|n| veloz_journal::layout::parse_segment_name(n).is_some())
        .count();
    assert!(
        segments >= 9,
        "{segments} segments: too few rollovers to follow"
    );

    // Replay the journal from the start; at each snapshot's sequence the hash must agree.
    let mut replayed = testkit::engine(&shared, 0);
    let mut scratch = Vec::new();
    let mut want: Vec<u64> = taken.clone();
    want.sort_unstable();
    let mut checked = 0;
    for rec in JournalReader::open(mem.clone(), 0).unwrap() {
        let rec = rec.unwrap();
        apply_record(&mut replayed, &rec, &mut scratch).unwrap();
        if want.first() == Some(&rec.seq) {
            let bytes = mem.open_view(&snapshot::snapshot_name(rec.seq)).unwrap();
            let (header, engine): (_, Engine) = snapshot::decode(&bytes, 0).unwrap();
            assert_eq!(header.seq, rec.seq);
            assert_eq!(header.state_hash, replayed.state_hash(), "at {}", rec.seq);
            assert_eq!(engine.resting_orders(), replayed.resting_orders());
            want.remove(0);
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
    assert_eq!(seq.snapshot_counts(), (10, 0));
}

/// A snapshot that covers more than the journal holds is refused, naming its sequence (the
/// wording is recovery's: `veloz_journal::open_after_snapshot`).
#[test]
fn a_snapshot_beyond_the_journal_is_refused() {
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
        err.contains("snapshot") && err.contains("sequence 7") && err.contains("refusing"),
        "{err}"
    );
}

/// The order path (gateway, sequencer, dispatcher, the shard loop) never serializes or hashes
/// the engine for a snapshot: the only call that does on the shard's thread is
/// `enable_snapshots`, once, in recovery before the shard serves.
#[test]
fn the_shard_path_has_no_snapshot_work() {
    let path = [
        ("sequencer.rs", include_str!("sequencer.rs")),
        ("dispatcher.rs", include_str!("dispatcher.rs")),
        ("shard.rs", include_str!("shard.rs")),
        ("journal_state.rs", include_str!("journal_state.rs")),
        ("gateway/mod.rs", include_str!("gateway/mod.rs")),
        ("gateway/session.rs", include_str!("gateway/session.rs")),
    ];
    for (file, text) in path {
        for needle in [
            "snapshot::encode",
            "encode_body",
            "write_snapshot",
            "Snapshotter",
            "after_apply",
        ] {
            assert!(!text.contains(needle), "{file} mentions {needle}");
        }
    }
    let shard = include_str!("shard.rs");
    assert_eq!(shard.matches("enable_snapshots").count(), 1);
    let recover = &shard[shard.find("fn recover(").unwrap()..];
    let recover = &recover[..recover.find("\n}\n").unwrap()];
    assert!(recover.contains("enable_snapshots"), "only in recovery");
    // The shard's handle: start (once), the helper's counters, stop. Nothing per record.
    let api: Vec<&str> = include_str!("snapshotter.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub fn "))
        .map(|l| l.split(['(', '<']).next().unwrap())
        .collect();
    assert_eq!(api, ["start", "stats", "finish"]);
}

/// A checkpoint the shadow disagrees with stops the helper: logged, counted, no snapshot
/// after it; the journal (the shard) goes on appending.
#[test]
fn a_disagreeing_checkpoint_stops_the_helper_not_the_journal() {
    use std::sync::atomic::Ordering;
    use veloz_journal::{Checkpoint, CheckpointReason, OpenOptions};

    use crate::snapshotter::Snapshotter;

    let shared = testkit::shared(1, testkit::config());
    let mem = MemStorage::new();
    let (mut writer, _) = veloz_journal::open(
        mem.clone(),
        0,
        &shared.config.journal,
        OpenOptions::default(),
    )
    .unwrap();
    let engine = testkit::engine(&shared, 0);
    let config = SnapshotConfig {
        every_records: 10,
        every_ms: 0,
        keep: 10,
    };
    let mut helper = Snapshotter::start(
        &config,
        RetentionMode::Off,
        mem.clone(),
        writer.watermark(),
        &engine,
        0,
    )
    .unwrap();
    for k in 1..=15u64 {
        let cmd = limit(1, 1, k, Side::Buy, 1_899_000 + 100 * (k % 5) as i64, 3);
        writer.append_command(k, &cmd).unwrap();
    }
    let bad = Checkpoint {
        state_hash: 42,
        reason: CheckpointReason::CleanShutdown,
    };
    assert_eq!(writer.append_checkpoint(16, &bad).unwrap(), 16);
    let deadline = Instant::now() + Duration::from_secs(20);
    while helper.stats().failures.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "the helper did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
    for k in 17..=40u64 {
        let cmd = limit(1, 1, k, Side::Buy, 1_899_000, 3);
        writer.append_command(k, &cmd).unwrap();
    }
    helper.finish();
    let stats = helper.stats();
    assert_eq!(stats.written.load(Ordering::Relaxed), 1);
    assert_eq!(stats.failures.load(Ordering::Relaxed), 1);
    assert_eq!(stats.shadow_seq.load(Ordering::Relaxed), 15);
    assert_eq!(snapshot::list_snapshots(&mem).unwrap(), vec![10]);
    assert_eq!(writer.close().unwrap(), 40);
}

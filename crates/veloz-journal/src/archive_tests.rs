//! Retention and recovery from a snapshot's segment, on the in-memory and fault-injecting
//! backends: a journal of 260 commands in 4096-byte segments (50 records each: segments 1, 51,
//! 101, 151, 201, 251), a snapshot at sequence 180 (in segment 151), the segments before it
//! archived or deleted. Every journal and engine state here is a fixed function of the
//! command generator, so the hashes compared are exact.

use veloz_core::{Command, Engine, Instrument, NewOrder, Side};

use super::*;
use crate::layout::segment_name;
use crate::replay::apply_record;
use crate::{
    snapshot, Durability, FaultPlan, FaultStorage, JournalConfig, JournalReader, MemStorage,
    OpenOptions,
};

const SHARD: u16 = 1;
const SNAP: Seq = 180;
const RECORDS: Seq = 260;

fn config() -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

fn instruments() -> Vec<Instrument> {
    vec![Instrument::simple(1, "A"), Instrument::simple(2, "B")]
}

/// Command `seq`: limit orders on two books around 100, crossing often (trades, resting
/// orders and fills all occur).
fn cmd(seq: Seq) -> Command {
    let x = seq.wrapping_mul(2_654_435_761) % 1_000;
    let side = if x.is_multiple_of(3) {
        Side::Sell
    } else {
        Side::Buy
    };
    Command::New(NewOrder::limit(
        (x % 4) as u32 + 1,
        (x % 2) as u32 + 1,
        seq,
        side,
        95 + (x % 11) as i64,
        1 + x % 7,
    ))
}

/// Write the journal and the snapshot at [`SNAP`]; returns the state hash after every record.
fn build<S: Storage>(storage: &S) -> u64 {
    let (mut w, _) = crate::open(storage.clone(), SHARD, &config(), OpenOptions::default())
        .expect("open a new journal");
    let mut engine = Engine::new(SHARD, &instruments());
    let mut out = Vec::new();
    for seq in 1..=RECORDS {
        assert_eq!(w.append_command(seq, &cmd(seq)).unwrap(), seq);
        engine.apply(seq, seq, &cmd(seq), &mut out);
        if seq == SNAP {
            let mut file = Vec::new();
            snapshot::encode(&engine, SNAP, &mut file);
            snapshot::write(storage, SNAP, &file).unwrap();
        }
    }
    w.close().unwrap();
    engine.state_hash()
}

/// Replay every record from sequence 1 with a read-only reader (archive, then live).
fn replay_all<S: Storage>(storage: &S) -> Result<(Seq, u64), String> {
    let mut engine = Engine::new(SHARD, &instruments());
    let mut scratch = Vec::new();
    let mut last = 0;
    let reader = JournalReader::open(storage.clone(), SHARD).map_err(|e| e.to_string())?;
    for rec in reader {
        let rec = rec.map_err(|e| e.to_string())?;
        assert_eq!(rec.seq, last + 1);
        last = rec.seq;
        apply_record(&mut engine, &rec, &mut scratch).unwrap();
    }
    Ok((last, engine.state_hash()))
}

/// Recover as the engine does: load the snapshot, open after it, apply the rest. Returns the
/// last sequence, the state hash, the records visited and the segments read.
fn recover<S: Storage>(storage: &S, repair: bool) -> Result<(Seq, u64, u64, usize), String> {
    let like = Engine::new(SHARD, &instruments());
    let (loaded, skipped) = snapshot::load_newest(storage, SHARD, &like, None);
    assert!(skipped.is_empty(), "{skipped:?}");
    let loaded = loaded.expect("the snapshot loads");
    let mut engine = loaded.engine;
    let mut scratch = Vec::new();
    let mut first_visited = None;
    let (w, report) = crate::open_after_snapshot(
        storage.clone(),
        SHARD,
        &config(),
        OpenOptions { repair },
        loaded.header.seq,
        |rec| {
            first_visited.get_or_insert(rec.seq);
            apply_record(&mut engine, rec, &mut scratch).unwrap();
        },
    )
    .map_err(|e| e.to_string())?;
    drop(w);
    if report.records > 0 {
        assert_eq!(first_visited, Some(SNAP + 1));
    }
    let last = report.last_seq.unwrap_or(0);
    Ok((last, engine.state_hash(), report.records, report.segments))
}

fn names(storage: &MemStorage, ext: &str) -> Vec<String> {
    let mut n: Vec<String> = storage
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(ext))
        .collect();
    n.sort();
    n
}

#[test]
fn archive_round_trip_is_byte_identical_and_replay_from_one_gives_the_same_hash() {
    let mem = MemStorage::new();
    let hash = build(&mem);
    assert_eq!(replay_all(&mem).unwrap(), (RECORDS, hash));
    let originals: Vec<Vec<u8>> = [1, 51, 101]
        .iter()
        .map(|&s| mem.read(&segment_name(s)).unwrap())
        .collect();

    let out = apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap();
    // 151 holds 181, so it and every later segment stay live.
    assert_eq!(out.archived.len(), 3, "{out:?}");
    assert_eq!(out.retired(), 3);
    assert_eq!(
        names(&mem, ".vlj"),
        vec![segment_name(151), segment_name(201), segment_name(251)]
    );
    assert_eq!(
        names(&mem, ARCHIVE_EXT),
        vec![archive_name(1), archive_name(51), archive_name(101)]
    );
    for (&s, original) in [1, 51, 101].iter().zip(&originals) {
        let mut back = Vec::new();
        read_archived_into(&mem, &archive_name(s), &mut back).unwrap();
        assert_eq!(&back, original, "segment {s}");
        assert!(mem.read(&archive_name(s)).unwrap().len() < original.len() / 2);
    }
    // A second run has nothing to do.
    assert_eq!(
        apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap(),
        RetentionOutcome::default()
    );
    // From sequence 1 across archive and live: the same records and state.
    assert_eq!(replay_all(&mem).unwrap(), (RECORDS, hash));
    // Recovery reads the three live segments only and ends in the same state.
    assert_eq!(
        recover(&mem, false).unwrap(),
        (RECORDS, hash, RECORDS - SNAP, 3)
    );
    // And the journal appends on: the next record is 261.
    let (mut w, _) = crate::open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    assert_eq!(
        w.append_command(RECORDS + 1, &cmd(RECORDS + 1)).unwrap(),
        RECORDS + 1
    );
    w.close().unwrap();
    assert_eq!(replay_all(&mem).unwrap().0, RECORDS + 1);
}

#[test]
fn recovery_from_the_snapshot_reads_no_older_segment() {
    let mem = MemStorage::new();
    let hash = build(&mem);
    // Damage a record in segment 51 (seq 60): the whole journal is refused from sequence 1...
    mem.patch(&segment_name(51), 64 + 9 * 80 + 30, &[0xff]);
    let e = replay_all(&mem).unwrap_err();
    assert!(
        e.contains("00000000000000000051.vlj at offset 784 after seq 59"),
        "{e}"
    );
    // ...but recovery from the snapshot never opens it.
    assert_eq!(
        recover(&mem, false).unwrap(),
        (RECORDS, hash, RECORDS - SNAP, 3)
    );
}

#[test]
fn deleted_segments_recover_from_the_snapshot_and_replay_from_one_is_refused() {
    let mem = MemStorage::new();
    let hash = build(&mem);
    let out = apply_retention(&mem, SNAP, RetentionMode::Delete).unwrap();
    assert_eq!(out.deleted.len(), 3, "{out:?}");
    assert!(names(&mem, ARCHIVE_EXT).is_empty());
    assert_eq!(
        recover(&mem, false).unwrap(),
        (RECORDS, hash, RECORDS - SNAP, 3)
    );
    let e = replay_all(&mem).unwrap_err();
    assert!(
        e.contains("00000000000000000151.vlj")
            && e.contains("the segments before seq 151 are missing"),
        "{e}"
    );
}

#[test]
fn a_missing_segment_after_the_snapshot_is_refused_by_name() {
    // The segment after the one holding 181.
    let mem = MemStorage::new();
    build(&mem);
    apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap();
    mem.remove(&segment_name(201)).unwrap();
    let e = recover(&mem, false).unwrap_err();
    assert!(
        e.contains("00000000000000000251.vlj at offset 0 after seq 200")
            && e.contains("segment starts at seq 251, expected seq 201"),
        "{e}"
    );
    // With repair: cut there (after the snapshot), the journal ends at 200.
    let (last, _, _, _) = recover(&mem, true).unwrap();
    assert_eq!(last, 200);

    // The segment holding 181, with the ones before it archived: the archive of 101 ends at
    // 150 and the next live segment starts at 201.
    let mem = MemStorage::new();
    build(&mem);
    apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap();
    mem.remove(&segment_name(151)).unwrap();
    let e = recover(&mem, false).unwrap_err();
    assert!(
        e.contains("00000000000000000201.vlj at offset 0 after seq 150")
            && e.contains("expected seq 151"),
        "{e}"
    );
    // ...and repair refuses to cut before the snapshot.
    let e = recover(&mem, true).unwrap_err();
    assert!(
        e.contains("repair would cut the journal after sequence 150")
            && e.contains("before the snapshot at sequence 180"),
        "{e}"
    );

    // The segment holding 181 with the older ones deleted: nothing holds it.
    let mem = MemStorage::new();
    build(&mem);
    apply_retention(&mem, SNAP, RetentionMode::Delete).unwrap();
    mem.remove(&segment_name(151)).unwrap();
    let e = recover(&mem, true).unwrap_err();
    assert!(
        e.contains("shard 1: no segment holds sequence 181, the first after the snapshot at sequence 180: the oldest segment, mem:00000000000000000201.vlj, starts at sequence 201 (sequences 181..=200 are missing)"),
        "{e}"
    );

    // The newest segment: the chain head names it.
    let mem = MemStorage::new();
    build(&mem);
    apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap();
    mem.remove(&segment_name(251)).unwrap();
    let e = recover(&mem, false).unwrap_err();
    assert!(
        e.contains("segment 00000000000000000251.vlj (first sequence 251) named by the chain head is missing"),
        "{e}"
    );
}

#[test]
fn a_crash_mid_archive_recovers_and_the_next_retention_finishes() {
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MemStorage::new(), plan);
    let mem = storage.inner().clone();
    let hash = build(&storage);
    // A crash while writing the first archive: its temp file is left, half written.
    let whole = compress(&mem.read(&segment_name(1)).unwrap()).unwrap();
    let tmp = format!("{}.tmp", archive_name(1));
    mem.save(&tmp, &whole[..whole.len() / 2]).unwrap();
    // A crash after the second archive was renamed, before its segment was removed.
    let second = compress(&mem.read(&segment_name(51)).unwrap()).unwrap();
    mem.replace(&archive_name(51), &second).unwrap();
    // Both ignored by readers: the live segments are the authority.
    assert_eq!(replay_all(&storage).unwrap(), (RECORDS, hash));
    assert_eq!(
        recover(&storage, false).unwrap(),
        (RECORDS, hash, RECORDS - SNAP, 3)
    );
    let out = retain(&storage, SHARD, RetentionMode::Archive).unwrap();
    let (point, out) = out.expect("a valid snapshot");
    assert_eq!(point, SNAP);
    assert_eq!(out.temps_removed.len(), 1, "{out:?}");
    assert_eq!(out.finished.len(), 1, "{out:?}");
    assert_eq!(out.archived.len(), 2, "{out:?}");
    assert!(!mem.list().unwrap().contains(&tmp));
    assert_eq!(replay_all(&storage).unwrap(), (RECORDS, hash));
}

#[test]
fn an_archive_that_differs_from_its_segment_keeps_the_segment() {
    let mem = MemStorage::new();
    build(&mem);
    let mut other = mem.read(&segment_name(1)).unwrap();
    other[64 + 40] ^= 1;
    mem.replace(&archive_name(1), &compress(&other).unwrap())
        .unwrap();
    let e = apply_retention(&mem, SNAP, RetentionMode::Archive)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "archived segment mem:00000000000000000001.vlj.zst: it differs from the live segment mem:00000000000000000001.vlj at offset 104 (4096 bytes archived, 4096 live): the segment was kept"
    );
    assert!(mem.read(&segment_name(1)).is_some());
}

#[test]
fn a_damaged_archive_is_refused_by_name_on_replay_and_not_read_by_recovery() {
    let mem = MemStorage::new();
    let hash = build(&mem);
    apply_retention(&mem, SNAP, RetentionMode::Archive).unwrap();
    let name = archive_name(51);
    let len = mem.read(&name).unwrap().len();
    mem.patch(&name, len / 2, &[0x5a, 0xa5, 0x5a, 0xa5]);
    let e = replay_all(&mem).unwrap_err();
    assert!(
        e.starts_with("archived segment mem:00000000000000000051.vlj.zst: cannot decompress"),
        "{e}"
    );
    assert_eq!(
        recover(&mem, false).unwrap(),
        (RECORDS, hash, RECORDS - SNAP, 3)
    );
    // Recovery without a snapshot reads the archive too, and refuses it even with repair.
    mem.remove(&snapshot::snapshot_name(SNAP)).unwrap();
    let e = crate::open(mem.clone(), SHARD, &config(), OpenOptions { repair: true })
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("archived segment mem:00000000000000000051.vlj.zst"),
        "{e}"
    );
}

#[test]
fn retention_keeps_what_the_oldest_valid_snapshot_needs() {
    let mem = MemStorage::new();
    build(&mem);
    // No retention point: nothing happens.
    let none = MemStorage::new();
    assert_eq!(retain(&none, SHARD, RetentionMode::Archive).unwrap(), None);
    // An older snapshot at 60 (in segment 51): only segment 1 goes.
    let mut engine = Engine::new(SHARD, &instruments());
    let mut out = Vec::new();
    for seq in 1..=60 {
        engine.apply(seq, seq, &cmd(seq), &mut out);
    }
    let mut file = Vec::new();
    snapshot::encode(&engine, 60, &mut file);
    snapshot::write(&mem, 60, &file).unwrap();
    assert_eq!(snapshot::oldest_valid(&mem, SHARD).unwrap(), Some(60));
    assert_eq!(retain(&mem, SHARD, RetentionMode::Off).unwrap(), None);
    let (point, out) = retain(&mem, SHARD, RetentionMode::Archive)
        .unwrap()
        .unwrap();
    assert_eq!((point, out.archived.len()), (60, 1));
    // A damaged snapshot is not a retention point.
    mem.patch(&snapshot::snapshot_name(60), 70, &[0xee]);
    assert_eq!(snapshot::oldest_valid(&mem, SHARD).unwrap(), Some(SNAP));
    // The newest segment is never retired, even past the journal's end.
    let out = apply_retention(&mem, 10_000, RetentionMode::Archive).unwrap();
    assert_eq!(out.archived.len(), 4);
    assert_eq!(names(&mem, ".vlj"), vec![segment_name(251)]);
    assert_eq!(parse_archive_name(&archive_name(251)), Some(251));
    assert_eq!(parse_archive_name("00000000000000000251.vlj"), None);
}

#[test]
fn a_snapshot_of_an_empty_journal_recovers_from_the_start() {
    let mem = MemStorage::new();
    let mut file = Vec::new();
    snapshot::encode(&Engine::new(SHARD, &instruments()), 0, &mut file);
    snapshot::write(&mem, 0, &file).unwrap();
    let (w, report) = crate::open_after_snapshot(
        mem.clone(),
        SHARD,
        &config(),
        OpenOptions::default(),
        0,
        |_| {},
    )
    .unwrap();
    assert_eq!((report.next_seq, report.records), (1, 0));
    w.close().unwrap();
    // With records and no snapshot file needed: all of them are visited.
    build(&mem);
    let mut seen = 0;
    let (w, _) = crate::open_after_snapshot(
        mem.clone(),
        SHARD,
        &config(),
        OpenOptions::default(),
        0,
        |_| seen += 1,
    )
    .unwrap();
    drop(w);
    assert_eq!(seen, RECORDS);
}

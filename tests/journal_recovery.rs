//! Journal recovery through the in-memory and fault-injecting backends: round trips, torn
//! writes at every byte of a record, mid-journal corruption (refused, then repaired), sync
//! failures, and the crash windows of segment rollover. Messages are asserted exactly.

use std::sync::Arc;
use std::time::Duration;

use veloz_core::{
    CancelOrder, Command, MassCancel, NewOrder, OrderKind, ReplaceOrder, SelfTradePrevention, Side,
    TimeInForce,
};
use veloz_journal::chain::HEAD_NAME;
use veloz_journal::format::{
    encode_record, last_nonzero_end, RecordType, SegmentHeader, SEGMENT_HEADER_LEN,
};
use veloz_journal::layout::{segment_name, SPARE_NAME};
use veloz_journal::payload::encode_command;
use veloz_journal::{
    Checkpoint, CheckpointReason, Durability, FaultMode, FaultPlan, FaultStorage, JournalConfig,
    JournalReader, JournalWarning, MemStorage, OpenOptions, Record, RecordBody, Storage,
};

const SHARD: u16 = 3;
/// 80-byte command records; a 4096-byte segment holds 50 of them after its 64-byte header.
const REC: usize = 80;
const PER_SEGMENT: u64 = 50;

fn cmd_for(seq: u64) -> Command {
    let account = (seq % 7) as u32 + 1;
    let symbol = (seq % 3) as u32 + 1;
    match seq % 4 {
        0 => Command::New(NewOrder {
            account,
            symbol,
            client_order_id: seq,
            side: if seq.is_multiple_of(8) {
                Side::Buy
            } else {
                Side::Sell
            },
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            post_only: seq.is_multiple_of(3),
            stp: SelfTradePrevention::CancelResting,
            price: 10_000 + (seq % 50) as i64,
            qty: 1 + seq % 10,
        }),
        1 => Command::Cancel(CancelOrder {
            account,
            symbol,
            client_order_id: seq,
            order_id: seq / 2,
        }),
        2 => Command::Replace(ReplaceOrder {
            account,
            symbol,
            client_order_id: seq,
            order_id: seq / 3,
            price: 9_990 + (seq % 20) as i64,
            qty: 5,
        }),
        _ => Command::MassCancel(MassCancel {
            account,
            client_order_id: seq,
            symbol: (seq % 8 != 3).then_some(symbol),
            reason: veloz_core::CancelReason::MassCancel,
        }),
    }
}

fn ts_for(seq: u64) -> u64 {
    1_700_000_000_000_000_000 + seq * 1_000
}

fn small() -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

fn open<S: Storage>(
    s: &S,
    config: &JournalConfig,
) -> (veloz_journal::Writer<S>, veloz_journal::RecoveryOutcome) {
    veloz_journal::open(s.clone(), SHARD, config, OpenOptions::default()).expect("open")
}

fn append_n<S: Storage>(w: &mut veloz_journal::Writer<S>, n: u64) {
    for _ in 0..n {
        let seq = w.next_seq();
        assert_eq!(w.append_command(ts_for(seq), &cmd_for(seq)).unwrap(), seq);
    }
}

/// Every record, checked against `cmd_for`/`ts_for`; returns the last sequence number.
fn check_all<S: Storage>(s: &S) -> u64 {
    let mut last = 0;
    for rec in JournalReader::open(s.clone(), SHARD).unwrap() {
        let rec = rec.unwrap();
        assert_eq!(rec.seq, last + 1);
        assert_eq!(rec.ts, ts_for(rec.seq));
        assert_eq!(rec.body, RecordBody::Command(cmd_for(rec.seq)));
        last = rec.seq;
    }
    last
}

fn seg(n: u64) -> String {
    segment_name(n)
}

#[test]
fn round_trip_of_every_record_type_across_segments() {
    let mem = MemStorage::new();
    let (mut w, report) = open(&mem, &small());
    assert_eq!(report.next_seq, 1);
    assert!(report.warnings.is_empty());
    append_n(&mut w, 120);
    let cp = Checkpoint {
        state_hash: 0x1234_5678_9ABC_DEF0,
        reason: CheckpointReason::CleanShutdown,
    };
    assert_eq!(w.append_checkpoint(ts_for(121), &cp).unwrap(), 121);
    assert_eq!(w.stats().segments_activated, 3);
    assert_eq!(w.close().unwrap(), 121);
    // Segments named by first sequence; no spare left behind.
    assert_eq!(
        mem.list().unwrap(),
        vec![seg(1), seg(51), seg(101), HEAD_NAME.to_string()],
        "files after a clean close"
    );

    let mut seen: Vec<Record> = Vec::new();
    let (w, report) =
        veloz_journal::open_with(mem.clone(), SHARD, &small(), OpenOptions::default(), |r| {
            seen.push(*r)
        })
        .unwrap();
    assert_eq!(report.records, 121);
    assert_eq!(report.segments, 3);
    assert_eq!(report.first_seq, Some(1));
    assert_eq!(report.last_seq, Some(121));
    assert_eq!(report.next_seq, 122);
    assert_eq!(report.last_checkpoint, Some((121, cp)));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    for (i, r) in seen.iter().enumerate().take(120) {
        let seq = i as u64 + 1;
        assert_eq!(
            *r,
            Record {
                seq,
                ts: ts_for(seq),
                body: RecordBody::Command(cmd_for(seq))
            }
        );
    }
    assert_eq!(seen[120].body, RecordBody::Checkpoint(cp));
    drop(w);

    // Segment headers carry shard, first seq and the first record's timestamp.
    let h = SegmentHeader::decode(&mem.read(&seg(51)).unwrap()).unwrap();
    assert_eq!(
        (h.shard, h.first_seq, h.created_ns),
        (SHARD, 51, ts_for(51))
    );

    // Reading from any sequence number.
    for from in [0, 1, 49, 50, 51, 52, 100, 101, 121, 122, 500] {
        let r = JournalReader::open_from(mem.clone(), SHARD, from).unwrap();
        let seqs: Vec<u64> = r.map(|x| x.unwrap().seq).collect();
        let expect: Vec<u64> = (from.max(1)..=121).collect();
        assert_eq!(seqs, expect, "from {from}");
    }
}

#[test]
fn reopen_continues_in_the_same_segment() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 7);
    drop(w);
    let (mut w, report) = open(&mem, &small());
    assert_eq!(report.next_seq, 8);
    assert_eq!(
        w.position(),
        Some((
            "mem:00000000000000000001.vlj".to_string(),
            SEGMENT_HEADER_LEN + 7 * REC
        ))
    );
    append_n(&mut w, 100);
    w.close().unwrap();
    assert_eq!(check_all(&mem), 107);
}

/// Tear (or fail) the 11th record's write after every possible number of bytes.
#[test]
fn torn_write_at_every_byte_is_truncated_with_a_warning() {
    for mode in [FaultMode::Tear, FaultMode::Fail] {
        for n in 0..REC as u64 {
            let mem = MemStorage::new();
            let plan = FaultPlan::new();
            let fs = FaultStorage::new(mem.clone(), Arc::clone(&plan));
            let (mut w, _) = open(&fs, &small());
            append_n(&mut w, 10);
            plan.fault_after(n, mode);
            let e = w.append_command(ts_for(11), &cmd_for(11)).unwrap_err();
            let offset = SEGMENT_HEADER_LEN + 10 * REC;
            let cause = match mode {
                FaultMode::Tear => {
                    format!("write of 80 bytes at offset {offset} torn after {n} bytes")
                }
                FaultMode::Fail => format!("write of 80 bytes at offset {offset} failed"),
            };
            assert_eq!(
                e.to_string(),
                format!(
                    "journal of shard 3 unavailable (next seq 11): journal write failed in mem:00000000000000000001.vlj at offset {offset} (seq 11): injected fault: {cause}"
                )
            );
            // The journal stays unavailable while writes fail: no record is skipped.
            let e = w.append_command(ts_for(11), &cmd_for(11)).unwrap_err();
            assert!(e.is_unavailable(), "{e}");
            drop(w);
            plan.heal();

            let (mut w, report) = open(&fs, &small());
            let rec = encode_record(
                11,
                ts_for(11),
                RecordType::Command.code(),
                &encode_command(&cmd_for(11)),
            );
            // A command record is written in one piece: torn after n bytes, or not at all.
            let written = match mode {
                FaultMode::Tear => n as usize,
                FaultMode::Fail => 0,
            };
            // If the bytes that did not arrive are zeros anyway, the record is complete.
            let complete = rec[written..].iter().all(|&b| b == 0);
            let torn = last_nonzero_end(&rec[..written], 0).unwrap_or(0);
            if complete || torn == 0 {
                assert!(report.warnings.is_empty(), "n={n}: {:?}", report.warnings);
            } else {
                assert_eq!(report.warnings.len(), 1, "n={n}");
                assert_eq!(
                    report.warnings[0].to_string(),
                    format!("torn tail in mem:00000000000000000001.vlj at offset {offset}: {torn} bytes after last good seq 10 truncated")
                );
            }
            let last = if complete { 11 } else { 10 };
            assert_eq!(report.next_seq, last + 1, "n={n}");
            append_n(&mut w, 5);
            w.close().unwrap();
            assert_eq!(check_all(&mem), last + 5);
            // The tail is clean now.
            let (_, report) = open(&fs, &small());
            assert!(report.warnings.is_empty());
        }
    }
}

/// Tear the segment header written at rollover, and the first record after it.
#[test]
fn torn_rollover_is_recovered() {
    for n in 0..(SEGMENT_HEADER_LEN + REC) as u64 {
        let mem = MemStorage::new();
        let plan = FaultPlan::new();
        let fs = FaultStorage::new(mem.clone(), Arc::clone(&plan));
        let (mut w, _) = open(&fs, &small());
        append_n(&mut w, PER_SEGMENT);
        plan.fault_after(n, FaultMode::Tear);
        assert!(w.append_command(ts_for(51), &cmd_for(51)).is_err());
        drop(w);
        plan.heal();
        let (mut w, report) = open(&fs, &small());
        let warnings: Vec<String> = report.warnings.iter().map(|w| w.to_string()).collect();
        let rec = encode_record(
            51,
            ts_for(51),
            RecordType::Command.code(),
            &encode_command(&cmd_for(51)),
        );
        let rec_written = (n as usize).saturating_sub(SEGMENT_HEADER_LEN);
        let complete = rec[rec_written..].iter().all(|&b| b == 0);
        if n == 0 {
            assert!(warnings.is_empty(), "{warnings:?}");
        } else if (n as usize) < SEGMENT_HEADER_LEN {
            assert_eq!(
                warnings,
                vec!["spare segment mem:next.spare has a partly written header and holds nothing: removed"]
            );
        } else if n as usize == SEGMENT_HEADER_LEN || complete {
            assert!(warnings.is_empty(), "{warnings:?}");
        } else {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with("torn tail in mem:00000000000000000051.vlj at offset 64: "),
                "{warnings:?}"
            );
            assert!(warnings[0].ends_with("bytes after last good seq 50 truncated"));
        }
        let last = if complete { 51 } else { 50 };
        assert_eq!(report.next_seq, last + 1, "n={n}");
        append_n(&mut w, 60);
        w.close().unwrap();
        assert_eq!(check_all(&mem), last + 60);
    }
}

fn corrupt_middle(mem: &MemStorage, seq: u64, byte: usize) -> usize {
    // Records 1..=50 are in the first segment.
    let off = SEGMENT_HEADER_LEN + (seq as usize - 1) * REC;
    let mut b = mem.read(&seg(1)).unwrap()[off + byte];
    b ^= 0x10;
    mem.patch(&seg(1), off + byte, &[b]);
    off
}

#[test]
fn mid_journal_corruption_refuses_then_repairs() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 120);
    w.close().unwrap();
    let off = corrupt_middle(&mem, 30, 40);
    // What repair must cut: the rest of segment 1 and all of segments 51 and 101.
    let seg1 = mem.read(&seg(1)).unwrap();
    let cut_end = last_nonzero_end(&seg1, off).unwrap();
    let later: usize = [seg(51), seg(101)]
        .iter()
        .map(|n| last_nonzero_end(&mem.read(n).unwrap(), 0).unwrap())
        .sum();

    let e = veloz_journal::open(mem.clone(), SHARD, &small(), OpenOptions::default())
        .expect_err("a corrupt journal must not open");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "corrupt journal mem:00000000000000000001.vlj at offset {off} after seq 29: record CRC mismatch (stored "
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            "; valid records follow (90 records, first seq 31 in mem:00000000000000000001.vlj at offset {}): refusing to open without repair",
            off + REC
        )),
        "{msg}"
    );
    // A read-only reader gives the same error after the good records.
    let mut r = JournalReader::open(mem.clone(), SHARD).unwrap();
    for seq in 1..=29 {
        assert_eq!(r.next_record().unwrap().unwrap().seq, seq);
    }
    assert_eq!(r.next_record().unwrap_err().to_string(), msg);
    drop(r);

    let repair = OpenOptions { repair: true };
    let (mut w, report) = veloz_journal::open(mem.clone(), SHARD, &small(), repair).unwrap();
    assert_eq!(
        report.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        vec![format!(
            "repaired mem:00000000000000000001.vlj: truncated at offset {off} after seq 29, dropped 90 records ({} bytes), cut bytes saved to mem:00000000000000000001.vlj.at-{off:020}.dropped, set aside 2 later segment file(s)",
            cut_end - off + later,
        )]
    );
    assert_eq!(report.next_seq, 30);
    append_n(&mut w, 10);
    w.close().unwrap();
    assert_eq!(check_all(&mem), 39);
    assert_eq!(
        mem.list().unwrap(),
        vec![
            seg(1),
            format!("{}.at-{off:020}.dropped", seg(1)),
            format!("{}.dropped", seg(51)),
            format!("{}.dropped", seg(101)),
            HEAD_NAME.to_string(),
        ]
    );
    // The cut bytes were saved as they were.
    let saved = mem
        .read(&format!("{}.at-{off:020}.dropped", seg(1)))
        .unwrap();
    assert_eq!(saved, seg1[off..cut_end].to_vec());
    let (_, report) = open(&mem, &small());
    assert!(report.warnings.is_empty());
}

/// Every single-bit flip of a record in the middle of a journal is refused.
#[test]
fn every_bit_flip_of_a_middle_record_is_refused() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 20);
    w.close().unwrap();
    let pristine = mem.read(&seg(1)).unwrap();
    let off = SEGMENT_HEADER_LEN + 9 * REC; // seq 10
    for bit in 0..REC * 8 {
        let mut b = pristine[off + bit / 8];
        b ^= 1 << (bit % 8);
        mem.patch(&seg(1), off + bit / 8, &[b]);
        let err = JournalReader::open(mem.clone(), SHARD)
            .unwrap()
            .find_map(|r| r.err())
            .unwrap_or_else(|| panic!("flip of bit {bit} went unnoticed"));
        let c = err.corruption().expect("a corruption");
        assert_eq!(c.offset as usize, off, "bit {bit}");
        assert_eq!(c.last_good_seq, Some(9));
        assert_eq!(
            c.following.as_ref().map(|f| f.first_seq),
            Some(11),
            "bit {bit}"
        );
        mem.patch(&seg(1), off + bit / 8, &[pristine[off + bit / 8]]);
    }
    // The last record, flipped, is indistinguishable from a torn write: truncated, named.
    let last = SEGMENT_HEADER_LEN + 19 * REC;
    mem.patch(&seg(1), last + 20, &[pristine[last + 20] ^ 1]);
    let bytes = last_nonzero_end(&pristine, last).unwrap() - last;
    let (_, report) = open(&mem, &small());
    assert_eq!(
        report.warnings[0].to_string(),
        format!("torn tail in mem:00000000000000000001.vlj at offset {last}: {bytes} bytes after last good seq 19 truncated")
    );
    assert_eq!(report.next_seq, 20);
}

#[test]
fn missing_segment_is_a_sequence_gap() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 160);
    w.close().unwrap();
    mem.remove(&seg(51)).unwrap();
    let later: usize = [seg(101), seg(151)]
        .iter()
        .map(|n| last_nonzero_end(&mem.read(n).unwrap(), 0).unwrap())
        .sum();
    let e = veloz_journal::open(mem.clone(), SHARD, &small(), OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "corrupt journal mem:00000000000000000101.vlj at offset 0 after seq 50: segment starts at seq 101, expected seq 51 (a sequence gap: seqs 51..=100 are missing); valid records follow (60 records, first seq 101 in mem:00000000000000000101.vlj at offset 64): refusing to open without repair"
    );
    let (mut w, report) =
        veloz_journal::open(mem.clone(), SHARD, &small(), OpenOptions { repair: true }).unwrap();
    assert_eq!(
        report.warnings[0].to_string(),
        format!(
            "repaired mem:00000000000000000101.vlj: truncated at offset 0 after seq 50, dropped 60 records ({later} bytes), set aside 2 later segment file(s)"
        )
    );
    assert_eq!(report.next_seq, 51);
    append_n(&mut w, 3);
    w.close().unwrap();
    assert_eq!(check_all(&mem), 53);
}

#[test]
fn header_problems_are_named() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 3);
    w.close().unwrap();
    let e = veloz_journal::open(mem.clone(), SHARD + 1, &small(), OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "mem:00000000000000000001.vlj: segment belongs to shard 3, this is the journal of shard 4"
    );
    mem.rename(&seg(1), &seg(2)).unwrap();
    let e = veloz_journal::open(mem.clone(), SHARD, &small(), OpenOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "mem:00000000000000000002.vlj: the file name says first seq 2 but the header says 1"
    );
    mem.rename(&seg(2), &seg(1)).unwrap();
    // A newer format version (valid CRC) is refused, not repaired.
    let mut h = mem.read(&seg(1)).unwrap()[..64].to_vec();
    h[8] = 9;
    let crc = crc32c::crc32c(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    mem.patch(&seg(1), 0, &h);
    let e = veloz_journal::open(mem.clone(), SHARD, &small(), OpenOptions { repair: true })
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "bad segment header in mem:00000000000000000001.vlj at offset 0: format version 9 is not supported (this build reads 1..=3)"
    );
}

#[test]
fn crash_between_activation_and_rename() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 70);
    w.close().unwrap();
    // As if the preparer had not renamed the activated spare yet.
    mem.rename(&seg(51), SPARE_NAME).unwrap();
    assert_eq!(check_all(&mem), 70, "readers see the activated spare");
    let (mut w, report) = open(&mem, &small());
    assert_eq!(
        report
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>(),
        vec!["activated segment mem:next.spare renamed to mem:00000000000000000051.vlj"]
    );
    assert_eq!(report.next_seq, 71);
    append_n(&mut w, 40);
    w.close().unwrap();
    assert_eq!(check_all(&mem), 110);
    assert_eq!(
        mem.list().unwrap(),
        vec![seg(1), seg(51), seg(101), HEAD_NAME.to_string()]
    );
}

#[test]
fn blank_segment_and_blank_spare_are_removed() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 10);
    w.close().unwrap();
    mem.create(SPARE_NAME, 4096).unwrap();
    mem.create(&seg(11), 4096).unwrap();
    let (mut w, report) = open(&mem, &small());
    assert_eq!(
        report
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>(),
        vec!["segment mem:00000000000000000011.vlj has no header and holds nothing: removed"]
    );
    append_n(&mut w, 1);
    w.close().unwrap();
    assert_eq!(mem.list().unwrap(), vec![seg(1), HEAD_NAME.to_string()]);
    assert_eq!(check_all(&mem), 11);
}

#[test]
fn group_commit_advances_the_watermark_and_stops_on_sync_failure() {
    let mem = MemStorage::new();
    let plan = FaultPlan::new();
    let fs = FaultStorage::new(mem.clone(), Arc::clone(&plan));
    let config = JournalConfig {
        group_max_batch: 16,
        group_max_wait_us: 100,
        ..small().with_durability(Durability::Group)
    };
    let (mut w, _) = open(&fs, &config);
    let mark = w.watermark();
    append_n(&mut w, 120);
    assert!(w.wait_durable(120, Duration::from_secs(10)).unwrap());
    assert_eq!(mark.durable_seq(), 120);
    assert!(mem.sync_count() > 0);

    plan.fail_syncs(true);
    append_n(&mut w, 1);
    let e = w.wait_durable(121, Duration::from_secs(10)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "journal of shard 3 unavailable (next seq 122): journal sync failed for mem:00000000000000000101.vlj (nothing after seq 120 is durable): injected fault: sync of 80 bytes at offset 1664 failed"
    );
    assert!(mark.failed());
    assert_eq!(mark.durable_seq(), 120);
    let e = w.append_command(ts_for(122), &cmd_for(122)).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    // The helper retries (writing the range again first); once syncs succeed the record
    // written before becomes durable and appends go on at the next sequence.
    plan.heal();
    let t = std::time::Instant::now();
    while mark.failed() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the retry never succeeded"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(w.wait_durable(121, Duration::from_secs(10)).unwrap());
    assert_eq!(w.unavailable(), None);
    assert_eq!(w.append_command(ts_for(122), &cmd_for(122)).unwrap(), 122);
    drop(w);
    // Written records are still in the file (a process crash keeps them).
    assert_eq!(check_all(&mem), 122);
}

#[test]
fn group_commit_close_makes_everything_durable() {
    let mem = MemStorage::new();
    let config = small().with_durability(Durability::Group);
    let (mut w, _) = open(&mem, &config);
    append_n(&mut w, 75);
    assert_eq!(w.close().unwrap(), 75);
    let (w, report) = open(&mem, &config);
    assert_eq!(w.durable_seq(), 75);
    assert_eq!(report.next_seq, 76);
}

#[test]
fn payload_too_large_and_bad_config() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    let e = w
        .append_record(RecordType::Command, 1, &[0u8; 1000])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "record payload of 1000 bytes exceeds the maximum of 992"
    );
    // Not poisoned by a refused payload.
    append_n(&mut w, 1);
    drop(w);
    let e = veloz_journal::open(
        mem,
        SHARD,
        &small().with_segment_size(100),
        OpenOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "journal.segment_size = 100 is invalid: must be at least 4096 bytes"
    );
}

#[test]
fn unknown_payload_is_named_with_file_offset_and_seq() {
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 2);
    let mut p = encode_command(&cmd_for(3));
    p[1] = 7; // side 7 under a valid CRC: a bug, not a torn write
    p[0] = 1;
    w.append_record(RecordType::Command, ts_for(3), &p).unwrap();
    w.close().unwrap();
    let e = veloz_journal::open(mem, SHARD, &small(), OpenOptions { repair: true })
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "bad payload in mem:00000000000000000001.vlj at offset 224 (seq 3): unknown value 7 for command field side"
    );
}

#[test]
fn warnings_are_values() {
    // A read-only reader reports a torn tail without touching it.
    let mem = MemStorage::new();
    let (mut w, _) = open(&mem, &small());
    append_n(&mut w, 4);
    w.close().unwrap();
    let off = SEGMENT_HEADER_LEN + 4 * REC;
    mem.patch(&seg(1), off, &[80, 0, 0, 0, 1, 2]);
    let mut r = JournalReader::open(mem.clone(), SHARD).unwrap();
    assert_eq!(r.by_ref().count(), 4);
    assert_eq!(
        r.warnings(),
        &[JournalWarning::TornTail {
            file: "mem:00000000000000000001.vlj".to_string(),
            offset: off as u64,
            last_good_seq: Some(4),
            bytes: 6,
            truncated: false,
        }]
    );
    assert_eq!(
        r.warnings()[0].to_string(),
        format!("torn tail in mem:00000000000000000001.vlj at offset {off}: 6 bytes after last good seq 4 ignored (recovery will truncate them)")
    );
    assert_eq!(mem.read(&seg(1)).unwrap()[off + 5], 2);
}

#[test]
fn a_full_disk_stops_the_journal_ahead_of_the_writer() {
    for durability in [Durability::None, Durability::Group] {
        let mem = MemStorage::new();
        let plan = FaultPlan::new();
        let fs = FaultStorage::new(mem.clone(), Arc::clone(&plan));
        let (mut w, _) = open(&fs, &small().with_durability(durability));
        append_n(&mut w, 10);
        // The helper re-arms the pages ahead of the writer at least every 100 ms; arming now
        // fails as it does when the filesystem has no room left for them.
        plan.fail_prefaults(true);
        let t = std::time::Instant::now();
        let e = loop {
            match w.append_command(ts_for(w.next_seq()), &cmd_for(w.next_seq())) {
                Ok(_) if t.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(_) => panic!("{durability:?}: arming failures went unnoticed"),
                Err(e) => break e,
            }
        };
        assert!(e.is_unavailable(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("journal cannot prepare mem:00000000000000000001.vlj at offset ")
                && msg.ends_with(
                    " ahead of the writer (is the disk full?): Bad address (os error 14)"
                ),
            "{msg}"
        );
        // Later appends keep failing while arming fails; then the helper's retry succeeds and
        // appends go on at the next sequence. What was written is intact.
        assert!(w.append_command(1, &cmd_for(1)).is_err());
        let next = w.next_seq();
        plan.heal();
        let t = std::time::Instant::now();
        while w.unavailable().is_some() {
            assert!(t.elapsed() < Duration::from_secs(10), "never recovered");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            w.append_command(ts_for(next), &cmd_for(next)).unwrap(),
            next
        );
        drop(w);
        let last = check_all(&mem);
        assert!(last >= 10, "{last}");
    }
}

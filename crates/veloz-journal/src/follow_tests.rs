//! The follower against live writers on the in-memory and fault-injecting backends: across
//! rollovers it hands out exactly what a reader of the finished journal reads, it never looks
//! past the watermark (a torn or half-written record there is not an error), and a bad
//! durable record or a disagreeing checkpoint stops it with the record named.

use veloz_core::{Command, Engine, Instrument, MassCancel, NewOrder, Side};

use super::*;
use crate::backend::{FaultMode, FaultPlan, FaultStorage, MemStorage};
use crate::config::{Durability, JournalConfig};
use crate::payload::{Checkpoint, CheckpointReason, RecordBody};
use crate::reader::JournalReader;
use crate::recovery::{open, OpenOptions};
use crate::replay::apply_record;

const SHARD: u16 = 2;
/// First record offset; command records of a mass cancel are 80 bytes.
const FIRST: usize = crate::format::SEGMENT_HEADER_LEN;
const REC: usize = 80;

/// 4096-byte segments: 50 records each.
fn config() -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

fn cmd(k: u64) -> Command {
    Command::MassCancel(MassCancel {
        account: (k % 5) as u32 + 1,
        client_order_id: k,
        symbol: Some((k % 3) as u32 + 1),
        reason: veloz_core::CancelReason::MassCancel,
    })
}

/// Collects what the follower hands out.
fn collect(into: &mut Vec<Record>) -> impl FnMut(&Record) -> Result<(), RecoverError> + '_ {
    move |r| {
        into.push(*r);
        Ok(())
    }
}

#[test]
fn follows_a_live_journal_across_rollovers_as_a_reader_reads_it() {
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    let mut f = JournalFollower::new(mem.clone(), SHARD, 0);
    let mut got = Vec::new();
    let mut k = 0u64;
    // Seeded batch sizes (1..=23 records), following after each: 420 records, 9 segments.
    for batch in 0..40u64 {
        for _ in 0..(batch * 7 + 3) % 23 + 1 {
            k += 1;
            w.append_command(k, &cmd(k)).unwrap();
        }
        let before = f.last_seq();
        let n = f.advance(w.durable_seq(), collect(&mut got)).unwrap();
        assert_eq!(n, w.durable_seq() - before);
        assert_eq!(f.last_seq(), w.durable_seq());
    }
    assert_eq!(f.advance(w.durable_seq(), collect(&mut got)).unwrap(), 0);
    let last = w.close().unwrap();
    let read: Vec<Record> = JournalReader::open(mem, SHARD)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(read.len() as u64, last);
    assert_eq!(got, read);
    assert_eq!(f.segments_entered(), last.div_ceil(50));
}

#[test]
fn resumes_where_it_stopped_from_the_middle_of_a_segment() {
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    for k in 1..=120 {
        w.append_command(k, &cmd(k)).unwrap();
    }
    let mut f = JournalFollower::new(mem.clone(), SHARD, 37);
    let mut got = Vec::new();
    assert_eq!(f.advance(45, collect(&mut got)).unwrap(), 8);
    assert_eq!(f.advance(45, collect(&mut got)).unwrap(), 0);
    assert_eq!(f.advance(101, collect(&mut got)).unwrap(), 56);
    let seqs: Vec<Seq> = got.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (38..=101).collect::<Vec<_>>());
    assert_eq!(got[0].body, RecordBody::Command(cmd(38)));
    // Segments 1, 51 and 101.
    assert_eq!(f.segments_entered(), 3);
    w.close().unwrap();
}

#[test]
fn finds_the_activated_spare_before_it_is_renamed() {
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    for k in 1..=120 {
        w.append_command(k, &cmd(k)).unwrap();
    }
    w.close().unwrap();
    // As between the writer activating the spare and the preparer renaming it.
    mem.rename(&segment_name(101), SPARE_NAME).unwrap();
    let mut got = Vec::new();
    let mut f = JournalFollower::new(mem.clone(), SHARD, 0);
    assert_eq!(f.advance(120, collect(&mut got)).unwrap(), 120);
    // Positioned inside it from the start (the listing names it as the last segment).
    let mut f = JournalFollower::new(mem.clone(), SHARD, 110);
    assert_eq!(f.advance(115, collect(&mut got)).unwrap(), 5);
    // Renamed while the follower holds its (copied) view: found under its name.
    mem.rename(SPARE_NAME, &segment_name(101)).unwrap();
    assert_eq!(f.advance(120, collect(&mut got)).unwrap(), 5);
    assert_eq!(got.last().map(|r| r.seq), Some(120));
}

#[test]
fn never_reads_past_the_watermark() {
    let plan = FaultPlan::new();
    let fs = FaultStorage::new(MemStorage::new(), plan.clone());
    let (mut w, _) = open(fs.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    for k in 1..=30 {
        w.append_command(k, &cmd(k)).unwrap();
    }
    // The preparer renamed the activated spare before it prepared the next one.
    w.wait_spare_ready().unwrap();
    // Record 31 is torn after 40 of its 80 bytes: beyond the watermark, so not an error.
    plan.fault_after(40, FaultMode::Tear);
    assert!(w.append_command(31, &cmd(31)).is_err());
    assert_eq!(w.durable_seq(), 30);
    let torn = fs.inner().read(&segment_name(1)).unwrap();
    assert!(torn[FIRST + 30 * REC..FIRST + 30 * REC + 40]
        .iter()
        .any(|&b| b != 0));
    let mut got = Vec::new();
    let mut f = JournalFollower::new(fs.clone(), SHARD, 0);
    assert_eq!(f.advance(w.durable_seq(), collect(&mut got)).unwrap(), 30);
    // Claiming the torn record durable is what makes it an error, naming it.
    let err = f.advance(31, collect(&mut got)).unwrap_err().to_string();
    assert!(
        err.contains(&format!("mem:{}", segment_name(1)))
            && err.contains(&format!("offset {}", FIRST + 30 * REC))
            && err.contains("expected durable record 31"),
        "{err}"
    );
    assert_eq!(f.last_seq(), 30);
}

#[test]
fn a_damaged_durable_record_stops_it_at_the_last_good_one() {
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    for k in 1..=60 {
        w.append_command(k, &cmd(k)).unwrap();
    }
    w.close().unwrap();
    let at = FIRST + 9 * REC;
    mem.patch(&segment_name(1), at + 40, &[0xff]);
    let mut got = Vec::new();
    let mut f = JournalFollower::new(mem.clone(), SHARD, 0);
    let err = f.advance(60, collect(&mut got)).unwrap_err();
    assert!(matches!(err, FollowError::Record { seq: 10, .. }), "{err}");
    let err = err.to_string();
    assert!(
        err.contains(&format!("offset {at}")) && err.contains("CRC"),
        "{err}"
    );
    assert_eq!((f.last_seq(), got.len()), (9, 9));
    // A journal that ends before the watermark claims: the missing record is named.
    let mut f = JournalFollower::new(mem, SHARD, 55);
    let err = f.advance(61, collect(&mut got)).unwrap_err().to_string();
    assert!(
        err.contains("record 61 is durable but no segment holds it")
            && err.contains(&segment_name(51)),
        "{err}"
    );
    assert_eq!(f.last_seq(), 60);
}

#[test]
fn a_checkpoint_that_disagrees_with_the_shadow_stops_it() {
    let inst = [Instrument::simple(1, "A")];
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), SHARD, &config(), OpenOptions::default()).unwrap();
    let mut twin = Engine::new(SHARD, &inst);
    let mut events = Vec::new();
    for k in 1..=5u64 {
        let c = Command::New(NewOrder::limit(1, 1, k, Side::Buy, 100 + k as i64, 1));
        let seq = w.append_command(k, &c).unwrap();
        twin.apply(seq, k, &c, &mut events);
    }
    let good = Checkpoint {
        state_hash: twin.state_hash(),
        reason: CheckpointReason::CleanShutdown,
    };
    let bad = Checkpoint {
        state_hash: good.state_hash ^ 1,
        ..good
    };
    w.append_checkpoint(6, &good).unwrap();
    w.append_checkpoint(7, &bad).unwrap();
    let mut shadow = Engine::new(SHARD, &inst);
    let mut scratch = Vec::new();
    let mut f = JournalFollower::new(mem, SHARD, 0);
    let err = f
        .advance(w.durable_seq(), |r| {
            apply_record(&mut shadow, r, &mut scratch)
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            FollowError::Replay(RecoverError::CheckpointMismatch { seq: 7, .. })
        ),
        "{err}"
    );
    assert_eq!(f.last_seq(), 6);
    assert_eq!(shadow.state_hash(), twin.state_hash());
    w.close().unwrap();
}

//! The chain of segments and the chain head (`docs/journal-format.md`, "The chain of segments",
//! "Chain head"): no piece of a journal can go missing unnoticed. The last segment deleted after
//! a crash, a segment activated from an announced spare and then lost, a middle segment
//! deleted, a sequence gap, a segment of another journal spliced in, the first segment or the
//! chain head deleted: each is refused by recovery and by a read-only reader, naming the file,
//! and `repair` says what it accepts or cuts. In memory and on real files. Messages are
//! asserted exactly.

use std::fs;
use std::path::PathBuf;

use veloz_core::{Command, MassCancel};
use veloz_journal::chain::{read_head, HEAD_NAME};
use veloz_journal::format::SEGMENT_HEADER_LEN;
use veloz_journal::layout::{segment_name, SPARE_NAME};
use veloz_journal::{
    Durability, JournalConfig, JournalReader, MemStorage, MmapStorage, OpenOptions, Storage, Writer,
};

const SHARD: u16 = 3;
/// 80-byte command records: a 4096-byte segment holds 50 after its header.
const REC: usize = 80;

fn cmd_for(seq: u64) -> Command {
    Command::MassCancel(MassCancel {
        account: (seq % 5) as u32 + 1,
        client_order_id: seq,
        symbol: Some((seq % 3) as u32 + 1),
        reason: veloz_core::CancelReason::MassCancel,
    })
}

fn config() -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

fn open<S: Storage>(s: &S, repair: bool) -> Result<(Writer<S>, Vec<String>), String> {
    veloz_journal::open(s.clone(), SHARD, &config(), OpenOptions { repair })
        .map(|(w, r)| (w, r.warnings.iter().map(|w| w.to_string()).collect()))
        .map_err(|e| e.to_string())
}

/// A journal of `n` records whose timestamps are `ts_base + seq`.
fn write<S: Storage>(s: &S, n: u64, ts_base: u64) -> Writer<S> {
    let (mut w, _) = open(s, false).unwrap();
    for _ in 0..n {
        let seq = w.next_seq();
        w.append_command(ts_base + seq, &cmd_for(seq)).unwrap();
    }
    w
}

/// A crash: the writer's threads never run its shutdown (nothing withdrawn, nothing removed).
/// The preparer has handed out the next spare, so the head announces it.
fn crash<S: Storage>(mut w: Writer<S>) {
    w.wait_spare_ready().unwrap();
    std::mem::forget(w);
}

/// What a read-only reader says: the last sequence read and its error, if any.
fn read<S: Storage>(s: &S) -> (u64, Option<String>) {
    let mut last = 0;
    for r in JournalReader::open(s.clone(), SHARD).unwrap() {
        match r {
            Ok(r) => {
                assert_eq!(r.seq, last + 1);
                last = r.seq;
            }
            Err(e) => return (last, Some(e.to_string())),
        }
    }
    (last, None)
}

#[test]
fn last_segment_deleted_after_a_crash_is_refused_and_repair_accepts_the_shorter_chain() {
    let mem = MemStorage::new();
    crash(write(&mem, 160, 0)); // segments 1, 51, 101, 151
    mem.remove(&segment_name(151)).unwrap();
    let refusal = "shard 3: segment 00000000000000000151.vlj (first sequence 151) named by the chain head is missing: the journal ends at sequence 150; refusing to open without repair";
    assert_eq!(open(&mem, false).unwrap_err(), refusal);
    assert_eq!(read(&mem), (150, Some(refusal.to_string())), "replay");

    let (mut w, warnings) = open(&mem, true).unwrap();
    assert_eq!(
        warnings,
        vec!["repaired the chain of shard 3: segment 00000000000000000151.vlj (first sequence 151) named by the chain head is missing; accepted the journal ending at sequence 150 and rewrote the chain head"]
    );
    assert_eq!(w.next_seq(), 151);
    w.append_command(7, &cmd_for(151)).unwrap();
    w.close().unwrap();
    assert_eq!(open(&mem, false).unwrap().1, Vec::<String>::new());
    assert_eq!(read(&mem), (151, None));
}

#[test]
fn segment_activated_from_the_announced_spare_and_lost_is_refused() {
    let mem = MemStorage::new();
    crash(write(&mem, 150, 0)); // segments 1, 51, 101 (full); a spare announced
    let head = read_head(&mem).unwrap().unwrap();
    assert!(head.spare);
    assert_eq!(head.newest.map(|n| n.first_seq), Some(101));
    // The spare became segment 151, which was then lost.
    mem.remove(SPARE_NAME).unwrap();
    let refusal = "shard 3: segment 00000000000000000151.vlj (first sequence 151), activated from the spare the chain head announces, is missing: the journal ends at sequence 150; refusing to open without repair";
    assert_eq!(open(&mem, false).unwrap_err(), refusal);
    assert_eq!(read(&mem), (150, Some(refusal.to_string())));
    let (w, warnings) = open(&mem, true).unwrap();
    assert_eq!(
        warnings,
        vec!["repaired the chain of shard 3: segment 00000000000000000151.vlj (first sequence 151), activated from the spare the chain head announces, is missing; accepted the journal ending at sequence 150 and rewrote the chain head"]
    );
    w.close().unwrap();
    assert_eq!(read(&mem), (150, None));
}

#[test]
fn a_crash_with_an_unused_spare_and_a_clean_close_open_without_warnings() {
    let mem = MemStorage::new();
    crash(write(&mem, 120, 0));
    assert!(mem.list().unwrap().contains(&SPARE_NAME.to_string()));
    let (w, warnings) = open(&mem, false).unwrap();
    assert_eq!(warnings, Vec::<String>::new());
    w.close().unwrap();
    assert!(
        !read_head(&mem).unwrap().unwrap().spare,
        "close withdraws the spare"
    );
    assert_eq!(open(&mem, false).unwrap().1, Vec::<String>::new());
}

#[test]
fn sequence_gap_between_segments_is_refused_and_repair_cuts_there() {
    let mem = MemStorage::new();
    write(&mem, 120, 0).close().unwrap();
    // Seq 50, the last record of segment 1, gone: the segment ends cleanly at 49.
    let off = SEGMENT_HEADER_LEN + 49 * REC;
    mem.patch(&segment_name(1), off, &[0; REC]);
    let refusal = "corrupt journal mem:00000000000000000051.vlj at offset 0 after seq 49: segment starts at seq 51, expected seq 50 (a sequence gap: seqs 50..=50 are missing); valid records follow (70 records, first seq 51 in mem:00000000000000000051.vlj at offset 64): refusing to open without repair";
    assert_eq!(open(&mem, false).unwrap_err(), refusal);
    assert_eq!(read(&mem), (49, Some(refusal.to_string())));
    let (w, warnings) = open(&mem, true).unwrap();
    assert_eq!(
        warnings,
        vec!["repaired mem:00000000000000000051.vlj: truncated at offset 0 after seq 49, dropped 70 records (5666 bytes), set aside 2 later segment file(s)"]
    );
    assert_eq!(w.next_seq(), 50);
    w.close().unwrap();
}

#[test]
fn segment_of_another_journal_spliced_in_is_refused_by_its_link() {
    let a = MemStorage::new();
    let b = MemStorage::new();
    write(&a, 120, 0).close().unwrap();
    write(&b, 120, 1_000_000).close().unwrap(); // same sequence numbers, other records
    a.remove(&segment_name(51)).unwrap();
    a.save(&segment_name(51), &b.read(&segment_name(51)).unwrap())
        .unwrap();
    let e = open(&a, false).unwrap_err();
    assert!(
        e.starts_with("corrupt journal mem:00000000000000000051.vlj at offset 0 after seq 50: segment does not continue the previous one: its previous-segment link is 0x")
            && e.contains(", the link of mem:00000000000000000001.vlj is 0x")
            && e.ends_with("; valid records follow (70 records, first seq 51 in mem:00000000000000000051.vlj at offset 64): refusing to open without repair"),
        "{e}"
    );
    assert_eq!(read(&a), (50, Some(e)));
    let (w, warnings) = open(&a, true).unwrap();
    assert_eq!(
        warnings,
        vec!["repaired mem:00000000000000000051.vlj: truncated at offset 0 after seq 50, dropped 70 records (5666 bytes), set aside 2 later segment file(s)"]
    );
    w.close().unwrap();
    assert_eq!(read(&a), (50, None));
}

#[test]
fn missing_first_segment_and_missing_chain_head_are_refused() {
    let mem = MemStorage::new();
    write(&mem, 120, 0).close().unwrap();
    mem.remove(HEAD_NAME).unwrap();
    let refusal = "shard 3: the chain head mem:chain-head is missing, but mem:00000000000000000001.vlj is of format version 2 or later: the journal ends at sequence 120; refusing to open without repair";
    assert_eq!(open(&mem, false).unwrap_err(), refusal);
    let (w, warnings) = open(&mem, true).unwrap();
    assert_eq!(
        warnings,
        vec!["repaired the chain of shard 3: the chain head mem:chain-head is missing, but mem:00000000000000000001.vlj is of format version 2 or later; accepted the journal ending at sequence 120 and rewrote the chain head"]
    );
    w.close().unwrap();
    assert_eq!(read(&mem), (120, None));

    mem.remove(&segment_name(1)).unwrap();
    assert_eq!(
        open(&mem, false).unwrap_err(),
        "corrupt journal mem:00000000000000000051.vlj at offset 0 after seq none: segment continues a previous segment but is the first of the journal: the segments before seq 51 are missing; valid records follow (70 records, first seq 51 in mem:00000000000000000051.vlj at offset 64): refusing to open without repair"
    );
}

#[test]
fn a_stale_chain_head_is_a_warning_and_is_rewritten() {
    let mem = MemStorage::new();
    write(&mem, 60, 0).close().unwrap();
    let old_head = mem.read(HEAD_NAME).unwrap();
    let (mut w, _) = open(&mem, false).unwrap();
    for seq in 61..=120 {
        w.append_command(seq, &cmd_for(seq)).unwrap();
    }
    w.close().unwrap();
    mem.replace(HEAD_NAME, &old_head).unwrap();
    let (w, warnings) = open(&mem, false).unwrap();
    assert_eq!(
        warnings,
        vec!["chain head mem:chain-head names the segment of first sequence 51 as the newest, but the journal goes on to mem:00000000000000000101.vlj: chain head rewritten"]
    );
    w.close().unwrap();
    assert_eq!(open(&mem, false).unwrap().1, Vec::<String>::new());
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("veloz-journal-chain-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn on_disk_a_deleted_last_or_middle_segment_is_refused_naming_the_file() {
    let dir = TempDir::new("delete");
    let disk = MmapStorage::new(&dir.0).unwrap();
    crash(write(&disk, 160, 0));
    assert_eq!(fs::read(dir.0.join(HEAD_NAME)).unwrap().len(), 32);
    assert!(!dir.0.join(format!("{HEAD_NAME}.tmp")).exists());
    fs::remove_file(dir.0.join(segment_name(151))).unwrap();
    assert_eq!(
        open(&disk, false).unwrap_err(),
        "shard 3: segment 00000000000000000151.vlj (first sequence 151) named by the chain head is missing: the journal ends at sequence 150; refusing to open without repair"
    );
    let (w, warnings) = open(&disk, true).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("repaired the chain of shard 3: segment 00000000000000000151.vlj (first sequence 151) named by the chain head is missing"));
    w.close().unwrap();

    fs::remove_file(dir.0.join(segment_name(51))).unwrap();
    let seg101 = dir.0.join(segment_name(101));
    assert_eq!(
        open(&disk, false).unwrap_err(),
        format!(
            "corrupt journal {} at offset 0 after seq 50: segment starts at seq 101, expected seq 51 (a sequence gap: seqs 51..=100 are missing); valid records follow (50 records, first seq 101 in {} at offset 64): refusing to open without repair",
            seg101.display(),
            seg101.display()
        )
    );
    let (w, warnings) = open(&disk, true).unwrap();
    assert_eq!(
        warnings,
        vec![format!(
            "repaired {}: truncated at offset 0 after seq 50, dropped 50 records (4033 bytes), set aside 1 later segment file(s)",
            seg101.display()
        )]
    );
    w.close().unwrap();
    assert_eq!(read(&disk), (50, None));
}

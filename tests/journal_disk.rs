//! Journal recovery on real files: bytes of segment files are edited on disk between runs
//! (a torn tail, a corrupt record in the middle, an activated spare) and the messages, which
//! name the real paths, are asserted exactly.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use veloz_core::{
    CancelOrder, Command, NewOrder, OrderKind, SelfTradePrevention, Side, TimeInForce,
};
use veloz_journal::format::{last_nonzero_end, SEGMENT_HEADER_LEN};
use veloz_journal::layout::{segment_name, SPARE_NAME};
use veloz_journal::{
    Durability, JournalConfig, JournalReader, MmapStorage, OpenOptions, RecordBody,
};

const SHARD: u16 = 0;
const REC: usize = 80;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("veloz-journal-disk-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn cmd_for(seq: u64) -> Command {
    if seq.is_multiple_of(3) {
        Command::Cancel(CancelOrder {
            account: 7,
            symbol: 1,
            client_order_id: seq,
            order_id: seq - 1,
        })
    } else {
        Command::New(NewOrder {
            account: 7,
            symbol: 1 + (seq % 2) as u32,
            client_order_id: seq,
            side: if seq.is_multiple_of(2) {
                Side::Buy
            } else {
                Side::Sell
            },
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: SelfTradePrevention::Allow,
            price: 5_000 + seq as i64,
            qty: 0x0101_0101_0101_0101, // no zero bytes at the end of the payload
        })
    }
}

fn config() -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None)
}

fn storage(dir: &TempDir) -> MmapStorage {
    MmapStorage::new(&dir.0).unwrap()
}

fn write_journal(dir: &TempDir, n: u64) {
    let (mut w, _) =
        veloz_journal::open(storage(dir), SHARD, &config(), OpenOptions::default()).unwrap();
    for _ in 0..n {
        let seq = w.next_seq();
        w.append_command(seq * 10, &cmd_for(seq)).unwrap();
    }
    w.close().unwrap();
}

fn check_all(dir: &TempDir) -> u64 {
    let mut last = 0;
    for r in JournalReader::open(storage(dir), SHARD).unwrap() {
        let r = r.unwrap();
        assert_eq!(r.seq, last + 1);
        assert_eq!(r.ts, r.seq * 10);
        assert_eq!(r.body, RecordBody::Command(cmd_for(r.seq)));
        last = r.seq;
    }
    last
}

fn edit(path: &Path, offset: usize, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset as u64)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn read_at(path: &Path, offset: usize, len: usize) -> Vec<u8> {
    let mut f = fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset as u64)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap();
    b
}

#[test]
fn torn_tail_on_disk_is_truncated_with_a_warning() {
    let dir = TempDir::new("torn");
    write_journal(&dir, 60); // segment 1: 1..=50, segment 51: 51..=60
    let path = dir.file(&segment_name(51));
    let off = SEGMENT_HEADER_LEN + 10 * REC;
    // Half a record header after the last record: what a crash during a copy leaves.
    edit(
        &path,
        off,
        &[80, 0, 0, 0, 0xAA, 0xBB, 0xCC, 0xDD, 61, 0, 0, 0, 0, 0, 0],
    );
    let (mut w, report) =
        veloz_journal::open(storage(&dir), SHARD, &config(), OpenOptions::default()).unwrap();
    assert_eq!(
        report
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>(),
        vec![format!(
            "torn tail in {} at offset {off}: 9 bytes after last good seq 60 truncated",
            path.display()
        )]
    );
    assert_eq!(report.next_seq, 61);
    // The bytes are gone from the file itself.
    assert_eq!(read_at(&path, off, 16), vec![0; 16]);
    w.append_command(610, &cmd_for(61)).unwrap();
    w.close().unwrap();
    assert_eq!(check_all(&dir), 61);
}

#[test]
fn corruption_on_disk_is_refused_then_repaired() {
    let dir = TempDir::new("corrupt");
    write_journal(&dir, 120);
    let path = dir.file(&segment_name(1));
    let off = SEGMENT_HEADER_LEN + 9 * REC; // seq 10
    let b = read_at(&path, off + 50, 1)[0];
    edit(&path, off + 50, &[b ^ 0x04]);

    let e = veloz_journal::open(storage(&dir), SHARD, &config(), OpenOptions::default())
        .expect_err("must refuse");
    let msg = e.to_string();
    let prefix = format!(
        "corrupt journal {} at offset {off} after seq 9: record CRC mismatch (stored ",
        path.display()
    );
    let suffix = format!(
        "; valid records follow (110 records, first seq 11 in {} at offset {}): refusing to open without repair",
        path.display(),
        off + REC
    );
    assert!(msg.starts_with(&prefix), "{msg}");
    assert!(msg.ends_with(&suffix), "{msg}");
    // Refusing changed nothing.
    assert_eq!(read_at(&path, off + 50, 1)[0], b ^ 0x04);

    let seg1 = fs::read(&path).unwrap();
    let cut_end = last_nonzero_end(&seg1, off).unwrap();
    let later: usize = [segment_name(51), segment_name(101)]
        .iter()
        .map(|n| last_nonzero_end(&fs::read(dir.file(n)).unwrap(), 0).unwrap())
        .sum();
    let (mut w, report) = veloz_journal::open(
        storage(&dir),
        SHARD,
        &config(),
        OpenOptions { repair: true },
    )
    .unwrap();
    let saved = dir.file(&format!("{}.at-{off:020}.dropped", segment_name(1)));
    assert_eq!(
        report.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        vec![format!(
            "repaired {}: truncated at offset {off} after seq 9, dropped 110 records ({} bytes), cut bytes saved to {}, set aside 2 later segment file(s)",
            path.display(),
            cut_end - off + later,
            saved.display()
        )]
    );
    assert_eq!(fs::read(&saved).unwrap(), seg1[off..cut_end].to_vec());
    assert!(dir.file(&format!("{}.dropped", segment_name(51))).exists());
    assert!(dir.file(&format!("{}.dropped", segment_name(101))).exists());
    assert!(!dir.file(&segment_name(51)).exists());
    assert_eq!(report.next_seq, 10);
    for seq in 10..=70 {
        assert_eq!(w.append_command(seq * 10, &cmd_for(seq)).unwrap(), seq);
    }
    w.close().unwrap();
    assert_eq!(check_all(&dir), 70);
    let (_, report) =
        veloz_journal::open(storage(&dir), SHARD, &config(), OpenOptions::default()).unwrap();
    assert!(report.warnings.is_empty());
}

#[test]
fn activated_spare_on_disk_is_renamed() {
    let dir = TempDir::new("spare");
    write_journal(&dir, 55);
    fs::rename(dir.file(&segment_name(51)), dir.file(SPARE_NAME)).unwrap();
    let (w, report) =
        veloz_journal::open(storage(&dir), SHARD, &config(), OpenOptions::default()).unwrap();
    assert_eq!(
        report
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>(),
        vec![format!(
            "activated segment {} renamed to {}",
            dir.file(SPARE_NAME).display(),
            dir.file(&segment_name(51)).display()
        )]
    );
    assert_eq!(report.next_seq, 56);
    w.close().unwrap();
    assert_eq!(check_all(&dir), 55);
    assert!(
        !dir.file(SPARE_NAME).exists(),
        "close removes the unused spare"
    );
}

#[test]
fn group_commit_on_disk() {
    let dir = TempDir::new("group");
    let config = JournalConfig {
        group_max_batch: 64,
        group_max_wait_us: 200,
        ..config().with_durability(Durability::Group)
    };
    let (mut w, _) =
        veloz_journal::open(storage(&dir), SHARD, &config, OpenOptions::default()).unwrap();
    let mark = w.watermark();
    for seq in 1..=500u64 {
        w.append_command(seq * 10, &cmd_for(seq)).unwrap();
        assert!(mark.durable_seq() <= seq);
    }
    assert!(w.wait_durable(500, Duration::from_secs(20)).unwrap());
    assert_eq!(mark.durable_seq(), 500);
    assert_eq!(w.close().unwrap(), 500);
    assert_eq!(check_all(&dir), 500);
    // Segments are preallocated at full size.
    assert_eq!(
        fs::metadata(dir.file(&segment_name(51))).unwrap().len(),
        4096
    );
}

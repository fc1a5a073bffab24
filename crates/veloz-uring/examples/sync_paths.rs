//! A data sync of a journal-like mapped file through the ring (`IORING_OP_FSYNC` with
//! datasync over the range) against `msync` of the same range (what the journal's sync thread
//! does): 2,000 rounds of 40 records of 100 bytes written into the mapping, then one sync of
//! the pages they touched (docs/BENCHMARKS.md, "Journal sync on the ring").
//!
//! ```sh
//! cargo run --release -p veloz-uring --example sync_paths -- [DIR]
//! ```

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const ROUNDS: usize = 2_000;
const RECORDS: usize = 40;
const RECORD: usize = 100;
const PAGE: usize = 4096;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    if let Err(why) = veloz_uring::probe() {
        eprintln!("io_uring unavailable here: {why}");
        std::process::exit(1);
    }
    println!(
        "{ROUNDS} syncs of the pages {RECORDS} records of {RECORD} bytes touched, file in {}",
        dir.display()
    );
    for mode in ["ring", "msync"] {
        let path = dir.join(format!("veloz-sync-paths-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create the file");
        file.set_len((ROUNDS * RECORDS * RECORD + PAGE) as u64)
            .expect("size the file");
        // SAFETY: the file was created by this process a moment ago and nothing else
        // truncates or writes it while it is mapped.
        let mut map = unsafe { memmap2::MmapOptions::new().map_mut(&file) }.expect("map the file");
        let ring = veloz_uring::Ring::new(veloz_uring::RingConfig::default()).expect("ring");
        let mut took = Vec::with_capacity(ROUNDS);
        let mut at = 0;
        for _ in 0..ROUNDS {
            let start = at & !(PAGE - 1);
            for _ in 0..RECORDS {
                map[at..at + RECORD].fill(7);
                at += RECORD;
            }
            let len = (at - start).next_multiple_of(PAGE);
            let t = Instant::now();
            if mode == "ring" {
                ring.fsync(file.as_raw_fd(), start as u64, len as u32)
                    .expect("submit");
                loop {
                    ring.wait(Duration::from_millis(100)).expect("wait");
                    if let Some((_, r)) = ring.take_synced() {
                        r.expect("sync");
                        break;
                    }
                }
            } else {
                map.flush_range(start, len).expect("msync");
            }
            took.push(t.elapsed().as_micros() as u64);
        }
        took.sort_unstable();
        let q = |f: f64| took[((took.len() - 1) as f64 * f) as usize];
        println!(
            "{mode:<6} p50 {} us  p90 {} us  p99 {} us  max {} us",
            q(0.5),
            q(0.9),
            q(0.99),
            took[took.len() - 1]
        );
        drop(map);
        let _ = std::fs::remove_file(&path);
    }
}

//! Tests of group commit run by the caller: the rules on their own (a logging sync handle),
//! then whole writers driven by an in-test loop (`sync_due_at` with an injected clock,
//! `run_blocking`, `sync_completed`), on the memory, fault and mmap backends. Seeds are fixed
//! and no assertion depends on how fast anything runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Mutex;

use veloz_core::Command;

use super::*;
use crate::backend::{FaultPlan, FaultStorage, MemStorage, MmapStorage};
use crate::config::{Durability, JournalConfig, SyncDriver};
use crate::layout::segment_name;
use crate::recovery::{open, OpenOptions};
use crate::writer::shared::NO_REARM;
use crate::writer::SyncScheduling;

const MAX_WAIT: Duration = Duration::from_micros(1_000);
/// Bytes of one test record (a mass cancel).
const REC: usize = 80;

fn config(segment_size: u64) -> JournalConfig {
    JournalConfig {
        segment_size,
        durability: Durability::Group,
        group_max_wait_us: MAX_WAIT.as_micros() as u64,
        sync_driver: SyncDriver::Caller,
        ..JournalConfig::default()
    }
}

fn cmd(n: u64) -> Command {
    Command::MassCancel(veloz_core::MassCancel {
        account: 1,
        client_order_id: n,
        symbol: None,
        reason: veloz_core::CancelReason::MassCancel,
    })
}

/// xorshift64*: a fixed stream per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What the test saw written and synced.
#[derive(Default)]
struct Ledger {
    /// Record `seq` (index `seq - 1`): its file and where its bytes end.
    records: Vec<(String, usize)>,
    /// Per file, the ranges successful jobs synced.
    synced: BTreeMap<String, Vec<(usize, usize)>>,
    /// Files in the order their first job ran.
    order: Vec<String>,
    /// The watermark checked so far.
    checked: Seq,
}

impl Ledger {
    fn append<S: Storage>(&mut self, w: &mut Writer<S>, n: u64) -> Result<Seq, JournalError> {
        let seq = w.append_command(n, &cmd(n))?;
        assert_eq!(seq as usize, self.records.len() + 1);
        self.records.push(w.position().unwrap());
        Ok(seq)
    }

    /// Whether synced ranges of `file` cover `0..end`.
    fn covered(&self, file: &str, end: usize) -> bool {
        let mut ranges = self.synced.get(file).cloned().unwrap_or_default();
        ranges.sort_unstable();
        let mut upto = 0;
        for (from, to) in ranges {
            if from > upto {
                break;
            }
            upto = upto.max(to);
        }
        upto >= end
    }

    /// Where the records of `file` end.
    fn end_of(&self, file: &str) -> usize {
        let ends = self.records.iter().filter(|(f, _)| f == file);
        ends.map(|&(_, e)| e).max().unwrap_or(0)
    }

    /// `job` succeeded: its range is synced. Segments are synced in order, each older one to
    /// its end before the next one's first job.
    fn ran(&mut self, job: &SyncJob) {
        let (off, len) = job.range();
        assert!(len > 0, "{job:?}");
        let file = job.file().to_string();
        if self.order.last() != Some(&file) {
            assert!(
                !self.order.contains(&file),
                "{file} synced again after a newer one"
            );
            if let Some(prev) = self.order.last() {
                assert!(
                    self.covered(prev, self.end_of(prev)),
                    "{file} synced before {prev} was synced to its end"
                );
            }
            self.order.push(file.clone());
        }
        let to = (off + len) as usize;
        self.synced
            .entry(file)
            .or_default()
            .push((off as usize, to));
    }

    /// Every record up to the watermark `durable` lies in synced bytes (from its file's start,
    /// header included).
    fn check(&mut self, durable: Seq) {
        assert!(durable as usize <= self.records.len());
        for seq in self.checked + 1..=durable {
            let (file, end) = &self.records[seq as usize - 1];
            assert!(
                self.covered(file, *end),
                "seq {seq} is durable, but {file} is not synced up to {end}: {:?}",
                self.synced.get(file)
            );
        }
        self.checked = self.checked.max(durable);
    }
}

/// Run `job` blocking and hand its outcome back; record it when it succeeded.
fn finish<S: Storage>(w: &mut Writer<S>, l: &mut Ledger, job: SyncJob) -> io::Result<()> {
    let r = job.run_blocking();
    if r.is_ok() {
        l.ran(&job);
    }
    let out = r
        .as_ref()
        .map(|_| ())
        .map_err(|e| io::Error::new(e.kind(), e.to_string()));
    w.sync_completed(job, r);
    l.check(w.durable_seq());
    out
}

/// Drive syncs until everything written is durable, the clock moving a period per pass.
fn drain<S: Storage>(w: &mut Writer<S>, l: &mut Ledger, now: &mut Instant) {
    for _ in 0..10_000 {
        if w.durable_seq() == w.written_seq() {
            return;
        }
        *now += MAX_WAIT;
        if let Some(job) = w.sync_due_at(*now) {
            finish(w, l, job).unwrap();
        }
    }
    panic!("never durable: {w:?}");
}

#[test]
fn watermark_follows_caller_syncs_over_rollovers() {
    for seed in [1u64, 7, 42, 1234] {
        let mem = MemStorage::new();
        let (mut w, _) = open(mem.clone(), 3, &config(8192), OpenOptions::default()).unwrap();
        let mut rng = Rng(seed);
        let mut l = Ledger::default();
        let mut now = Instant::now();
        let mut held: Option<SyncJob> = None;
        let mut n = 0;
        for _ in 0..3_000 {
            match rng.below(5) {
                0 | 1 => {
                    for _ in 0..rng.below(6) {
                        n += 1;
                        l.append(&mut w, n).unwrap();
                    }
                }
                2 => now += Duration::from_micros(rng.below(700)),
                // A job run later, as a ring completes it: the writer goes on meanwhile.
                _ => match held.take() {
                    Some(job) => finish(&mut w, &mut l, job).unwrap(),
                    None => {
                        if let Some(job) = w.sync_due_at(now) {
                            assert!(w.sync_due_at(now).is_none(), "one job at a time");
                            if rng.below(2) == 0 {
                                held = Some(job);
                            } else {
                                finish(&mut w, &mut l, job).unwrap();
                            }
                        }
                    }
                },
            }
            assert!(w.durable_seq() <= w.written_seq());
            l.check(w.durable_seq());
        }
        if let Some(job) = held.take() {
            finish(&mut w, &mut l, job).unwrap();
        }
        drain(&mut w, &mut l, &mut now);
        assert_eq!(w.durable_seq(), n, "seed {seed}");
        assert!(
            l.order.len() >= 20,
            "seed {seed}: {} segments",
            l.order.len()
        );
        for file in &l.order {
            assert!(l.covered(file, l.end_of(file)), "{file} synced to its end");
        }
        assert_eq!(w.close().unwrap(), n);
    }
}

#[test]
fn whole_pages_at_once_the_partial_page_after_the_max_wait() {
    let (mut w, _) = open(
        MemStorage::new(),
        3,
        &config(1 << 20),
        OpenOptions::default(),
    )
    .unwrap();
    let mut l = Ledger::default();
    let t0 = Instant::now();
    assert!(w.sync_due_at(t0).is_none(), "nothing written");
    for n in 1..=60 {
        l.append(&mut w, n).unwrap();
    }
    // Records 1..=50 end by 64 + 50 * 80 = 4064, inside the first page; 51 crosses it.
    let job = w.sync_due_at(t0).expect("a whole page waits");
    assert_eq!((job.range(), job.durable_after()), ((0, 4096), Some(50)));
    finish(&mut w, &mut l, job).unwrap();
    assert_eq!(w.durable_seq(), 50);
    // The partial page waits `group_max_wait_us` from the first call that sees it.
    assert!(w.sync_due_at(t0).is_none());
    assert!(w.sync_due_at(t0 + MAX_WAIT / 2).is_none());
    let job = w
        .sync_due_at(t0 + MAX_WAIT)
        .expect("the partial page is due");
    let end = (64 + 60 * REC) as u64;
    assert_eq!(
        (job.range(), job.durable_after()),
        ((4096, end - 4096), Some(60))
    );
    finish(&mut w, &mut l, job).unwrap();
    assert_eq!(w.durable_seq(), 60);
    assert!(w.sync_due_at(t0 + MAX_WAIT * 10).is_none(), "all durable");
    assert_eq!(w.close().unwrap(), 60);
}

#[test]
fn helper_only_arms_and_close_syncs_what_is_left() {
    let mem = MemStorage::new();
    let (mut w, _) = open(mem.clone(), 3, &config(1 << 20), OpenOptions::default()).unwrap();
    assert_eq!(w.sync_scheduling(), &SyncScheduling::Normal { why: None });
    let mut l = Ledger::default();
    l.append(&mut w, 1).unwrap();
    // The preparer's syncs of the first activation are over once the next spare is ready.
    w.wait_spare_ready().unwrap();
    let syncs = mem.sync_count();
    for n in 2..=200 {
        l.append(&mut w, n).unwrap();
    }
    std::thread::sleep(MAX_WAIT * 20);
    assert_eq!(mem.sync_count(), syncs, "nobody but the caller syncs");
    assert_eq!(w.durable_seq(), 0);
    // A job left in flight is not waited for: close syncs from where the segment is synced.
    let held = w.sync_due_at(Instant::now()).unwrap();
    assert_eq!(w.close().unwrap(), 200);
    assert!(mem.sync_count() > syncs);
    held.run_blocking().unwrap();
    let (w, report) = open(mem, 3, &config(1 << 20), OpenOptions::default()).unwrap();
    assert_eq!((w.durable_seq(), report.next_seq), (200, 201));
}

#[test]
fn wait_durable_runs_due_syncs_itself() {
    let (mut w, _) = open(MemStorage::new(), 3, &config(8192), OpenOptions::default()).unwrap();
    for n in 1..=300 {
        w.append_command(n, &cmd(n)).unwrap();
    }
    assert!(w.wait_durable(300, Duration::from_secs(30)).unwrap());
    assert_eq!(w.durable_seq(), 300);
}

#[test]
fn other_modes_offer_no_jobs() {
    for (durability, driver) in [
        (Durability::Group, SyncDriver::Thread),
        (Durability::None, SyncDriver::Caller),
    ] {
        let c = JournalConfig {
            durability,
            sync_driver: driver,
            ..config(8192)
        };
        let (mut w, _) = open(MemStorage::new(), 3, &c, OpenOptions::default()).unwrap();
        w.append_command(1, &cmd(1)).unwrap();
        assert!(w.sync_due_at(Instant::now() + MAX_WAIT * 100).is_none());
        assert_eq!(w.close().unwrap(), 1);
    }
}

#[test]
fn a_failed_sync_makes_the_journal_unavailable_until_a_retry_succeeds() {
    let mem = MemStorage::new();
    let plan = FaultPlan::new();
    let fs = FaultStorage::new(mem.clone(), Arc::clone(&plan));
    let (mut w, _) = open(fs, 3, &config(1 << 20), OpenOptions::default()).unwrap();
    let mark = w.watermark();
    let mut l = Ledger::default();
    let mut now = Instant::now();
    for n in 1..=120 {
        l.append(&mut w, n).unwrap();
    }
    drain(&mut w, &mut l, &mut now);
    assert_eq!(mark.durable_seq(), 120);
    w.wait_spare_ready().unwrap();

    plan.fail_syncs(true);
    l.append(&mut w, 121).unwrap();
    now += MAX_WAIT;
    assert!(
        w.sync_due_at(now).is_none(),
        "the wait starts at the first call"
    );
    now += MAX_WAIT;
    let job = w.sync_due_at(now).unwrap();
    let (off, len) = job.range();
    assert_eq!((off, len), (64 + 120 * REC as u64, REC as u64));
    let file = job.file().to_string();
    assert!(finish(&mut w, &mut l, job).is_err());
    let why = format!(
        "journal sync failed for {file} (nothing after seq 120 is durable): injected fault: \
         sync of {len} bytes at offset {off} failed"
    );
    assert_eq!(w.unavailable(), Some(why.clone()));
    assert!(mark.failed());
    assert_eq!(mark.durable_seq(), 120);
    let e = w.append_command(122, &cmd(122)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("journal of shard 3 unavailable (next seq 122): {why}")
    );
    assert_eq!(
        w.wait_durable(121, Duration::ZERO).unwrap_err().to_string(),
        e.to_string()
    );
    // The retry comes RETRY_EVERY after the first call that saw the failure; failing again,
    // the journal stays unavailable; once syncs succeed it heals and goes on at the next seq.
    assert!(w.sync_due_at(now).is_none());
    assert!(w.sync_due_at(now + RETRY_EVERY / 2).is_none());
    now += RETRY_EVERY;
    let job = w.sync_due_at(now).expect("a retry");
    assert_eq!(job.range(), (off, len));
    assert!(finish(&mut w, &mut l, job).is_err());
    assert!(mark.failed() && w.unavailable().is_some());
    plan.heal();
    assert!(w.sync_due_at(now).is_none());
    now += RETRY_EVERY;
    let job = w.sync_due_at(now).expect("a retry");
    finish(&mut w, &mut l, job).unwrap();
    assert!(!mark.failed());
    assert_eq!((w.durable_seq(), w.unavailable()), (121, None));
    assert_eq!(l.append(&mut w, 122).unwrap(), 122);
    assert_eq!(w.close().unwrap(), 122);
}

#[test]
fn close_while_failing_reports_the_failure() {
    let plan = FaultPlan::new();
    let fs = FaultStorage::new(MemStorage::new(), Arc::clone(&plan));
    let (mut w, _) = open(fs, 3, &config(1 << 20), OpenOptions::default()).unwrap();
    w.append_command(1, &cmd(1)).unwrap();
    // The preparer's syncs of the first activation are over once the next spare is ready.
    w.wait_spare_ready().unwrap();
    plan.fail_syncs(true);
    let now = Instant::now();
    assert!(w.sync_due_at(now).is_none());
    let job = w.sync_due_at(now + MAX_WAIT).unwrap();
    let r = job.run_blocking();
    w.sync_completed(job, r);
    plan.heal();
    let e = w.close().unwrap_err();
    assert!(e.is_unavailable(), "{e}");
}

/// A job keeps its segment's file open and named across rollovers (the preparer renames and
/// unmaps retired segments) and past the writer's close; its descriptor is the one to sync.
#[test]
fn a_job_in_flight_keeps_its_descriptor_across_rollovers() {
    let dir = std::env::temp_dir().join(format!("veloz-caller-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let storage = MmapStorage::new(&dir).unwrap();
    let (mut w, _) = open(storage.clone(), 3, &config(8192), OpenOptions::default()).unwrap();
    let mut l = Ledger::default();
    for n in 1..=60 {
        l.append(&mut w, n).unwrap();
    }
    let job = w.sync_due_at(Instant::now()).unwrap();
    let (fd, off, len) = job.target().expect("an mmap segment has a descriptor");
    assert_eq!((off, len, job.durable_after()), (0, 4096, Some(50)));
    for n in 61..=400 {
        l.append(&mut w, n).unwrap();
    }
    // The preparer has handled every activation (renamed, unmapped the retired segments).
    w.wait_spare_ready().unwrap();
    assert!(w.position().unwrap().0.ends_with(&segment_name(304)));
    assert!(w.sync_due_at(Instant::now()).is_none(), "one job at a time");
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert_eq!(link, dir.join(segment_name(1)));
    assert_eq!(job.target().unwrap().0, fd);
    // What a ring's IORING_OP_FSYNC (datasync) runs on the descriptor.
    nix::unistd::fdatasync(fd).unwrap();
    l.ran(&job);
    w.sync_completed(job, Ok(()));
    l.check(w.durable_seq());
    assert_eq!(w.durable_seq(), 50);
    // The rest of segment 1 first (to its end, record 101), then the newer ones.
    let job = w.sync_due_at(Instant::now()).unwrap();
    assert_eq!(
        (job.range(), job.durable_after()),
        ((4096, 64 + 101 * REC as u64 - 4096), Some(101))
    );
    finish(&mut w, &mut l, job).unwrap();
    let held = w.sync_due_at(Instant::now()).unwrap();
    assert!(held.file().ends_with(&segment_name(102)), "{held:?}");
    assert_eq!(w.close().unwrap(), 400);
    let (fd, off, len) = held.target().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap(),
        dir.join(segment_name(102))
    );
    held.run_blocking().unwrap();
    assert!(off + len as u64 <= 8192);
    drop(held);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sync handle that logs what is done to it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Op>>>);

/// (what, segment, offset, len)
type Op = (&'static str, u64, usize, usize);

struct Rec {
    id: u64,
    log: Log,
}

impl RangeSync for Rec {
    fn sync_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.log
            .0
            .lock()
            .unwrap()
            .push(("sync", self.id, offset, len));
        Ok(())
    }

    fn rewrite_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.log
            .0
            .lock()
            .unwrap()
            .push(("rewrite", self.id, offset, len));
        Ok(())
    }
}

fn shared() -> Shared {
    Shared {
        written: AtomicU64::new(0),
        durable: AtomicU64::new(0),
        pos: AtomicU64::new(0),
        mark_pos: AtomicU64::new(0),
        mark_seq: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failed: AtomicU8::new(0),
        failure: Mutex::new(None),
        reserve_failed: AtomicBool::new(false),
        reserve_failure: Mutex::new(None),
        rearm: AtomicU64::new(NO_REARM),
        replicated: AtomicU64::new(0),
    }
}

/// Older segments to their end first, in jobs of at most MAX_JOB_LEN bytes (only the last
/// moves the watermark); a failed range is written again before it is synced; a partial
/// page's sync asks for its page to be armed again.
#[test]
fn jobs_cover_older_segments_in_bounded_pieces_and_rewrite_after_a_failure() {
    let log = Log::default();
    let sh = shared();
    let mut c = CallerSync::new(0, MAX_WAIT);
    let rec = |id| Rec {
        id,
        log: log.clone(),
    };
    c.add_segment(1, rec(1), "s1".into(), 0, None);
    let big = MAX_JOB_LEN + 8192;
    c.add_segment(2, rec(2), "s2".into(), 0, Some((big, 100)));
    let t0 = Instant::now();
    // The writer: 110 records written, ending at (2, 700); its mark at the start of segment 2.
    let progress = ((110, pack(2, 700)), (100, pack(2, 0)));
    let next = |c: &mut CallerSync, now| c.next_job(now, progress.0, progress.1, &sh);
    let job = next(&mut c, t0).unwrap();
    assert_eq!(
        (job.gen, job.range(), job.covers),
        (1, (0, MAX_JOB_LEN as u64), None)
    );
    assert!(c.completed(&job, Ok(()), &sh).is_none());
    assert_eq!(c.durable, 0, "a leading piece moves nothing");
    let job = next(&mut c, t0).unwrap();
    assert_eq!(
        (job.gen, job.range(), job.covers),
        (1, (MAX_JOB_LEN as u64, 8192), Some(100))
    );
    // It fails: the journal is unavailable, and the range is suspect.
    let e = io::Error::other("EIO");
    assert!(c.completed(&job, Err(e), &sh).is_none());
    assert_eq!(sh.failed.load(Ordering::Relaxed), CALLER_SYNC_FAILING);
    assert!(c
        .failure()
        .unwrap()
        .starts_with("journal sync failed for s1 (nothing after seq 0"));
    let job = next(&mut c, t0).unwrap();
    assert_eq!(job.range(), (MAX_JOB_LEN as u64, 8192));
    assert!(c.completed(&job, Ok(()), &sh).is_none());
    assert_eq!((c.durable, sh.failed.load(Ordering::Relaxed)), (100, 0));
    assert_eq!(sh.durable.load(Ordering::Relaxed), 100);
    assert!(c.failure().is_none() && c.suspect.is_none());
    // Segment 2: no whole page (the mark is at its start), so its partial page waits.
    c.pending_since = Some(t0);
    assert!(next(&mut c, t0 + MAX_WAIT / 2).is_none());
    let job = next(&mut c, t0 + MAX_WAIT).unwrap();
    assert_eq!((job.gen, job.range(), job.covers), (2, (0, 700), Some(110)));
    assert_eq!(c.completed(&job, Ok(()), &sh), Some(pack(2, 700)));
    assert_eq!(c.durable, 110);
    let mut ops = log.0.lock().unwrap().clone();
    ops.retain(|&(op, ..)| op == "rewrite");
    assert_eq!(ops, vec![("rewrite", 1, MAX_JOB_LEN, 8192)]);
}

/// A job may travel to another thread (a ring's completion handler, a worker).
#[test]
fn jobs_are_send_and_sync() {
    fn travels<T: Send + Sync + 'static>() {}
    travels::<SyncJob>();
}

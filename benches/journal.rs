//! Journal benchmarks: append rate, replay rate, group-commit throughput and ack latency.
//!
//! - **append**: [`Writer::append_record`] of 64- and 128-byte records (32-byte header + 32 or
//!   96 bytes of seeded random payload) and [`Writer::append_command`] of real commands (80
//!   bytes), `durability = "none"`, into segments that were created and prefaulted before the
//!   timed loop (a fresh journal is opened, untimed, whenever the current segment could not
//!   hold another batch, and the preparer is let finish the next spare first: on this 2-vCPU
//!   host, touching a fresh 256 MiB spare beside the timed loop takes the other core and
//!   halves the figure). Compare with PLATFORM.md: 65M / 50M records/s for 64 / 128-byte
//!   records with header + CRC into an already-mapped file. The appending thread's page
//!   faults and context switches are printed with each figure (0 faults = prefaulting works).
//! - **replay**: [`JournalReader`] over a journal of 80-byte command records in the page cache:
//!   `raw` verifies length, CRC and sequence of every record; `decoded` also decodes each
//!   command. Compare with PLATFORM.md: 75-93M records/s from page cache.
//! - **group commit** (a measurement loop of its own, printed after criterion's output):
//!   throughput = records appended as fast as possible until all are durable, over the time
//!   that took; ack latency = for records offered at 1M/s, the time from the append to the
//!   moment the appending thread sees the durable watermark cover it (what a shard releasing
//!   acks sees). Targets (issue 3): >= 2M durable records/s, ack p50 <= 1 ms, p99 <= 20 ms.
//!   Default group settings (batch 4096, max wait 200 us), 256 MiB segments.
//! - **group commit, caller-driven** (`sync_driver = "caller"`, the same two measurements): the
//!   appending thread runs group commit itself, as a shard loop with an io_uring will: each
//!   pass it hands a due [`SyncJob`] to a worker thread that stands in for the ring (it runs
//!   the job's sync, blocking, as io_uring's worker runs `IORING_OP_FSYNC`) and takes the
//!   completion back; the helper thread only arms pages.
//!
//! A positional argument selects sections as well as criterion benches:
//! `cargo bench --bench journal -- journal_group_commit`.
//!
//! The figures tables print medians of [`REPEATS`] runs. Fixed seed [`SEED`]. Under
//! `cargo test --all-targets` (no `--bench` argument) everything runs once on small sizes.
//! Data lives under the system temp dir and is removed afterwards.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use veloz_core::{Command, NewOrder, OrderKind, SelfTradePrevention, Seq, Side, TimeInForce};
use veloz_journal::format::{RecordType, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use veloz_journal::{
    Durability, JournalConfig, JournalReader, MmapStorage, OpenOptions, SyncDriver, SyncJob, Writer,
};

const SEED: u64 = 0x4A4E_4C42;
const SHARD: u16 = 0;
const REPEATS: usize = 5;

struct Sizes {
    /// Segment size for the append and replay benches.
    segment: u64,
    /// Records per timed append batch.
    batch: usize,
    /// Records in the replay journal.
    replay: u64,
    /// Records for the group-commit throughput run.
    group_records: u64,
    /// Length of the 1M records/s offered-load run.
    offered: Duration,
}

const BENCH: Sizes = Sizes {
    segment: 256 << 20,
    batch: 200_000,
    replay: 4_000_000,
    group_records: 2_000_000,
    offered: Duration::from_secs(3),
};

const TEST: Sizes = Sizes {
    segment: 4 << 20,
    batch: 10_000,
    replay: 20_000,
    group_records: 20_000,
    offered: Duration::from_millis(20),
};

fn bench_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("veloz-bench-journal-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(segment: u64, durability: Durability) -> JournalConfig {
    JournalConfig::default()
        .with_segment_size(segment)
        .with_durability(durability)
}

fn command(rng: &mut Pcg64, seq: u64) -> Command {
    Command::New(NewOrder {
        account: rng.random_range(1..1000),
        symbol: rng.random_range(1..10),
        client_order_id: seq,
        side: if rng.random_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        },
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: SelfTradePrevention::Allow,
        price: rng.random_range(9_000..11_000),
        qty: rng.random_range(1..100),
    })
}

/// A fresh journal in `dir` (old files removed) whose first segment is mapped and prefaulted.
fn fresh_writer(dir: &Path, segment: u64) -> Writer<MmapStorage> {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let storage = MmapStorage::new(dir).unwrap();
    let (mut w, _) = veloz_journal::open(
        storage,
        SHARD,
        &config(segment, Durability::None),
        OpenOptions::default(),
    )
    .unwrap();
    // Activate the first (prefaulted) segment outside the timed loops, and let the preparer
    // finish the next one, so that it does not compete with the timed appends.
    w.append_record(RecordType::Command, 0, &[0u8; 32]).unwrap();
    w.wait_spare_ready().unwrap();
    w
}

/// (minor page faults, voluntary, involuntary context switches) of this thread. Voluntary
/// switches are waits (a fault or a call that blocked); involuntary ones are preemptions.
fn thread_counters() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): state is field 3, minflt 10.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let minflt = rest
        .split_whitespace()
        .nth(7)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let switches = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (
        minflt,
        switches("voluntary_ctxt_switches"),
        switches("nonvoluntary_ctxt_switches"),
    )
}

/// The append workloads: (name, record length, payload source).
enum Kind {
    Raw(usize),
    Command,
}

struct Appender {
    dir: PathBuf,
    segment: u64,
    writer: Option<Writer<MmapStorage>>,
    left: usize,
    per_segment: usize,
    payloads: Vec<Vec<u8>>,
    commands: Vec<Command>,
    kind: Kind,
    i: usize,
    /// Page faults and context switches of the appending thread during timed appends.
    counters: (u64, u64, u64),
    appended: u64,
}

impl Appender {
    fn new(tag: &str, segment: u64, kind: Kind) -> Appender {
        let dir = bench_dir(tag);
        let mut rng = Pcg64::seed_from_u64(SEED);
        let rec_len = match kind {
            Kind::Raw(n) => n,
            Kind::Command => 80,
        };
        let payloads = (0..1024)
            .map(|_| {
                (0..rec_len - RECORD_HEADER_LEN)
                    .map(|_| rng.random())
                    .collect()
            })
            .collect();
        let commands = (0..1024).map(|i| command(&mut rng, i)).collect();
        let per_segment = (segment as usize - SEGMENT_HEADER_LEN) / rec_len - 1;
        let writer = Some(fresh_writer(&dir, segment));
        Appender {
            dir,
            segment,
            writer,
            left: per_segment,
            per_segment,
            payloads,
            commands,
            kind,
            i: 0,
            counters: (0, 0, 0),
            appended: 0,
        }
    }

    /// Append `n` records; the time of the appends only.
    fn run(&mut self, n: usize) -> Duration {
        if self.left < n {
            // Stop the old journal's helper threads before its directory is reused.
            self.writer = None;
            self.writer = Some(fresh_writer(&self.dir, self.segment));
            self.left = self.per_segment;
        }
        self.left -= n;
        let Some(writer) = self.writer.as_mut() else {
            unreachable!("a writer was just opened")
        };
        let before = thread_counters();
        let t = Instant::now();
        match self.kind {
            Kind::Raw(_) => {
                for _ in 0..n {
                    let p = &self.payloads[self.i & 1023];
                    self.i += 1;
                    black_box(writer.append_record(RecordType::Command, self.i as u64, p)).unwrap();
                }
            }
            Kind::Command => {
                for _ in 0..n {
                    let c = &self.commands[self.i & 1023];
                    self.i += 1;
                    black_box(writer.append_command(self.i as u64, c)).unwrap();
                }
            }
        }
        let took = t.elapsed();
        let after = thread_counters();
        self.counters.0 += after.0 - before.0;
        self.counters.1 += after.1 - before.1;
        self.counters.2 += after.2 - before.2;
        self.appended += n as u64;
        took
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn append_benches(c: &mut Criterion, s: &Sizes, table: &mut Vec<String>) {
    let mut g = c.benchmark_group("journal_append");
    g.throughput(Throughput::Elements(s.batch as u64));
    for (name, kind, ceiling) in [
        ("record_64B", Kind::Raw(64), Some(65e6)),
        ("record_128B", Kind::Raw(128), Some(50e6)),
        ("command_80B", Kind::Command, None),
    ] {
        let mut a = Appender::new(name, s.segment, kind);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| a.run(s.batch)).sum())
        });
        a.counters = (0, 0, 0);
        a.appended = 0;
        let rates: Vec<f64> = (0..REPEATS)
            .map(|_| s.batch as f64 / a.run(s.batch).as_secs_f64())
            .collect();
        let waits = a.writer.as_ref().map_or(0, |w| w.stats().spare_waits);
        let per_m = |x: u64| x as f64 * 1e6 / a.appended as f64;
        let rate = median(rates);
        table.push(format!(
            "append {name:<12} {:>7.1}M records/s{}{}  (per 1M records: {:.0} page faults, {:.0} blocking waits, {:.0} preemptions)",
            rate / 1e6,
            ceiling.map_or(String::new(), |c| format!(
                "  ({:.0}% of the {:.0}M ceiling)",
                100.0 * rate / c,
                c / 1e6
            )),
            if waits > 0 {
                format!("  [{waits} spare waits]")
            } else {
                String::new()
            },
            per_m(a.counters.0),
            per_m(a.counters.1),
            per_m(a.counters.2),
        ));
    }
    g.finish();
}

fn replay_benches(c: &mut Criterion, s: &Sizes, table: &mut Vec<String>) {
    let dir = bench_dir("replay");
    let storage = MmapStorage::new(&dir).unwrap();
    {
        let (mut w, _) = veloz_journal::open(
            storage.clone(),
            SHARD,
            &config(s.segment, Durability::None),
            OpenOptions::default(),
        )
        .unwrap();
        let mut rng = Pcg64::seed_from_u64(SEED);
        let commands: Vec<Command> = (0..1024).map(|i| command(&mut rng, i)).collect();
        for i in 0..s.replay {
            w.append_command(i, &commands[i as usize & 1023]).unwrap();
        }
        w.close().unwrap();
    }
    let raw = |storage: &MmapStorage| {
        let mut r = JournalReader::open(storage.clone(), SHARD).unwrap();
        let mut n = 0u64;
        while let Some(rec) = r.next_raw().unwrap() {
            black_box(rec.payload);
            n += 1;
        }
        assert_eq!(n, s.replay);
    };
    let decoded = |storage: &MmapStorage| {
        let mut n = 0u64;
        for rec in JournalReader::open(storage.clone(), SHARD).unwrap() {
            black_box(rec.unwrap());
            n += 1;
        }
        assert_eq!(n, s.replay);
    };
    let mut g = c.benchmark_group("journal_replay");
    g.throughput(Throughput::Elements(s.replay));
    g.bench_function("raw_crc", |b| b.iter(|| raw(&storage)));
    g.bench_function("decoded", |b| b.iter(|| decoded(&storage)));
    g.finish();
    for (name, f) in [
        ("raw_crc", &raw as &dyn Fn(&MmapStorage)),
        ("decoded", &decoded),
    ] {
        let rates: Vec<f64> = (0..REPEATS)
            .map(|_| {
                let t = Instant::now();
                f(&storage);
                s.replay as f64 / t.elapsed().as_secs_f64()
            })
            .collect();
        let rate = median(rates);
        table.push(format!(
            "replay {name:<12} {:>7.1}M records/s  ({:.0}-{:.0}% of the 75-93M page-cache ceiling)",
            rate / 1e6,
            100.0 * rate / 93e6,
            100.0 * rate / 75e6
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// A stand-in for a shard's io_uring in caller-driven group commit: a worker thread runs each
/// submitted job's sync (blocking, as io_uring's worker runs `IORING_OP_FSYNC`) and sends the
/// completion back. One job in flight, as the writer hands them out.
struct FakeRing {
    submit: Option<Sender<SyncJob>>,
    done: Receiver<(SyncJob, std::io::Result<()>)>,
    in_flight: bool,
    worker: Option<JoinHandle<()>>,
}

impl FakeRing {
    fn new() -> FakeRing {
        let (submit, jobs) = mpsc::channel::<SyncJob>();
        let (tx, done) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            for job in jobs {
                let r = job.run_blocking();
                if tx.send((job, r)).is_err() {
                    return;
                }
            }
        });
        FakeRing {
            submit: Some(submit),
            done,
            in_flight: false,
            worker: Some(worker),
        }
    }

    /// One pass of the shard loop's journal duty: take a completion, submit a due job.
    fn pass(&mut self, w: &mut Writer<MmapStorage>) {
        if let Ok((job, r)) = self.done.try_recv() {
            w.sync_completed(job, r);
            self.in_flight = false;
        }
        if !self.in_flight {
            if let Some(job) = w.sync_due() {
                self.submit.as_ref().unwrap().send(job).unwrap();
                self.in_flight = true;
            }
        }
    }

    /// Drive syncs until `seq` is durable.
    fn wait_durable(&mut self, w: &mut Writer<MmapStorage>, seq: Seq, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while w.durable_seq() < seq {
            if Instant::now() >= deadline {
                return false;
            }
            self.pass(w);
            std::hint::spin_loop();
        }
        true
    }
}

impl Drop for FakeRing {
    fn drop(&mut self) {
        self.submit = None;
        if let Some(t) = self.worker.take() {
            let _ = t.join();
        }
    }
}

/// Group commit: durable throughput, then ack latency at 1M records/s offered; syncs run by
/// the helper thread (`SyncDriver::Thread`) or by the appending thread through a stand-in
/// ring (`SyncDriver::Caller`).
fn group_commit(s: &Sizes, table: &mut Vec<String>, driver: SyncDriver) {
    let mut rng = Pcg64::seed_from_u64(SEED);
    let commands: Vec<Command> = (0..1024).map(|i| command(&mut rng, i)).collect();
    let cfg = JournalConfig {
        sync_driver: driver,
        ..config(s.segment, Durability::Group)
    };
    let caller = driver == SyncDriver::Caller;
    let label = if caller { " (caller-driven)" } else { "" };
    let ring = |caller: bool| caller.then(FakeRing::new);
    let pass = |ring: &mut Option<FakeRing>, w: &mut Writer<MmapStorage>| {
        if let Some(r) = ring {
            r.pass(w);
        }
    };
    let wait = |ring: &mut Option<FakeRing>, w: &mut Writer<MmapStorage>, seq, limit| match ring {
        Some(r) => r.wait_durable(w, seq, limit),
        None => w.wait_durable(seq, limit).unwrap(),
    };

    // Throughput: append as fast as possible, until everything is durable.
    let mut rates = Vec::new();
    for _ in 0..3 {
        let dir = bench_dir("group-tput");
        let (mut w, _) = veloz_journal::open(
            MmapStorage::new(&dir).unwrap(),
            SHARD,
            &cfg,
            OpenOptions::default(),
        )
        .unwrap();
        let mut ring = ring(caller);
        // Activate the first segment and let the next one be prepared, untimed.
        w.append_command(0, &commands[0]).unwrap();
        w.wait_spare_ready().unwrap();
        let t = Instant::now();
        for i in 0..s.group_records {
            w.append_command(i, &commands[i as usize & 1023]).unwrap();
            pass(&mut ring, &mut w);
        }
        assert!(wait(
            &mut ring,
            &mut w,
            s.group_records + 1,
            Duration::from_secs(120)
        ));
        rates.push(s.group_records as f64 / t.elapsed().as_secs_f64());
        drop(ring);
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }
    table.push(format!(
        "group commit throughput{label}  {:>6.2}M durable records/s (median of 3; target >= 2M; disk ceiling ~23M)",
        median(rates) / 1e6
    ));

    // Ack latency at 1M records/s offered.
    let dir = bench_dir("group-lat");
    let (mut w, _) = veloz_journal::open(
        MmapStorage::new(&dir).unwrap(),
        SHARD,
        &cfg,
        OpenOptions::default(),
    )
    .unwrap();
    let mut ring = ring(caller);
    w.append_command(0, &commands[0]).unwrap();
    w.wait_spare_ready().unwrap();
    assert!(wait(&mut ring, &mut w, 1, Duration::from_secs(10)));
    let mark = w.watermark();
    let first = w.next_seq();
    let n = (s.offered.as_secs_f64() * 1e6) as usize;
    // Touch the measurement buffers now: their page faults are not the journal's.
    let mut appended_at: Vec<Instant> = vec![Instant::now(); n];
    appended_at.clear();
    let mut latencies_ns: Vec<u64> = vec![1; n]; // not 0: a zeroed allocation is not touched
    latencies_ns.clear();
    let mut acked = first - 1;
    let start = Instant::now();
    // What a shard does to release acks: read the watermark, ack everything up to it.
    let ack = |acked: &mut Seq, now: Instant, appended_at: &[Instant], latencies: &mut Vec<u64>| {
        let d = mark.durable_seq();
        while *acked < d {
            *acked += 1;
            let i = (*acked - first) as usize;
            latencies.push(now.duration_since(appended_at[i]).as_nanos() as u64);
        }
    };
    let mut behind = 0u64;
    let before = thread_counters();
    for i in 0..n {
        let due = start + Duration::from_micros(i as u64);
        loop {
            let now = Instant::now();
            pass(&mut ring, &mut w);
            ack(&mut acked, now, &appended_at, &mut latencies_ns);
            if now >= due {
                if now > due + Duration::from_millis(1) {
                    behind += 1;
                }
                break;
            }
            std::hint::spin_loop();
        }
        w.append_command(i as u64, &commands[i & 1023]).unwrap();
        appended_at.push(Instant::now());
    }
    let offered_for = start.elapsed();
    let after = thread_counters();
    let last = first + n as u64 - 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked < last && Instant::now() < deadline {
        pass(&mut ring, &mut w);
        ack(&mut acked, Instant::now(), &appended_at, &mut latencies_ns);
        std::hint::spin_loop();
    }
    drop(ring);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
    latencies_ns.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    table.push(format!(
        "group commit ack latency{label} at {:.2}M records/s offered ({n} records, {:.1?}): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms (targets p50 <= 1 ms, p99 <= 20 ms){}",
        n as f64 / offered_for.as_secs_f64() / 1e6,
        offered_for,
        ms(percentile(&latencies_ns, 0.50)),
        ms(percentile(&latencies_ns, 0.99)),
        ms(percentile(&latencies_ns, 0.999)),
        ms(*latencies_ns.last().unwrap_or(&0)),
        if behind > 0 { format!(" [{behind} appends started > 1 ms late]") } else { String::new() }
    ));
    table.push(format!(
        "  (the appending thread during that run: {} page faults, {} blocking waits, {} preemptions)",
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2
    ));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench_mode = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let sizes = if bench_mode { &BENCH } else { &TEST };
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    // A positional argument (criterion's filter) also selects which sections run.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let want = |section: &str| {
        filter
            .as_deref()
            .is_none_or(|f| section.contains(f) || f.contains(section))
    };
    let mut table = Vec::new();
    if want("journal_append") {
        append_benches(&mut c, sizes, &mut table);
    }
    if want("journal_replay") {
        replay_benches(&mut c, sizes, &mut table);
    }
    if want("journal_group_commit") {
        group_commit(sizes, &mut table, SyncDriver::Thread);
    }
    if want("journal_group_commit_caller") {
        group_commit(sizes, &mut table, SyncDriver::Caller);
    }
    c.final_summary();
    println!("\njournal figures (medians; fixed seed {SEED:#x}):");
    for line in table {
        println!("  {line}");
    }
}

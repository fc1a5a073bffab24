//! Crash test with real processes: this test re-executes its own binary as a child that
//! appends to a journal on disk as fast as it can and prints every sequence number it has
//! fully written; the parent kills it with SIGKILL at seeded random moments, then reopens the
//! journal and checks that every record the child reported is there and intact, that the tail
//! is clean after recovery, and that the next append continues the sequence.
//!
//! Kills land anywhere: during recovery at the child's start, in the middle of an append,
//! during segment rollover (segments are small, so rollovers are frequent), during a sync.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use veloz_core::{
    Command, NewOrder, OrderKind, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};
use veloz_journal::{
    Durability, FaultMode, FaultPlan, FaultStorage, JournalConfig, JournalWarning, MmapStorage,
    OpenOptions, RecordBody,
};

const CHILD_ENV: &str = "VELOZ_JOURNAL_CRASH_CHILD";
const SEED: u64 = 0x5EED_CAFE;
const ITERATIONS: usize = 80;
const SHARD: u16 = 2;

fn cmd_for(seq: u64) -> Command {
    if seq.is_multiple_of(5) {
        Command::Replace(ReplaceOrder {
            account: 3,
            symbol: 9,
            client_order_id: seq,
            order_id: seq / 2,
            price: 7_000 + (seq % 13) as i64,
            qty: seq,
        })
    } else {
        Command::New(NewOrder {
            account: (seq % 11) as u32,
            symbol: 9,
            client_order_id: seq ^ 0xABCD,
            side: if seq.is_multiple_of(2) {
                Side::Buy
            } else {
                Side::Sell
            },
            kind: OrderKind::Limit,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: SelfTradePrevention::CancelBoth,
            price: 7_000 + (seq % 17) as i64,
            qty: seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        })
    }
}

fn ts_for(seq: u64) -> u64 {
    seq.wrapping_mul(1_000_003)
}

/// Small segments (many rollovers) for children that report every record, larger ones for
/// those that report in bursts (so that most of their time is spent appending).
fn config(durability: Durability, burst: u64) -> JournalConfig {
    JournalConfig {
        segment_size: if burst == 1 { 64 << 10 } else { 4 << 20 },
        durability,
        group_max_batch: 256,
        group_max_wait_us: 100,
        ..JournalConfig::default()
    }
}

/// The child: open (recovering), then append forever, reporting written sequence numbers:
/// each one (`burst` = 1), or the last of every `burst` appends (so that most of its time is
/// spent appending and kills land inside appends and rollovers, not in `write(2)`).
///
/// With `tear_after`, the real files are written through the fault backend, which tears the
/// write that crosses that many bytes: the child then reports `TORN seq` and waits for its
/// SIGKILL, leaving a genuinely torn record on disk.
fn child(dir: PathBuf, durability: Durability, burst: u64, tear_after: Option<u64>) -> ! {
    let plan = FaultPlan::new();
    let storage = FaultStorage::new(MmapStorage::new(dir).expect("child: storage"), plan.clone());
    let (mut w, _) = veloz_journal::open(
        storage,
        SHARD,
        &config(durability, burst),
        OpenOptions::default(),
    )
    .expect("child: open");
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "OPEN {}", w.next_seq()).unwrap();
    out.flush().unwrap();
    if let Some(n) = tear_after {
        plan.fault_after(n, FaultMode::Tear);
    }
    loop {
        let seq = w.next_seq();
        if w.append_command(ts_for(seq), &cmd_for(seq)).is_err() {
            writeln!(out, "TORN {seq}").unwrap();
            out.flush().unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if seq % burst == 0 {
            writeln!(out, "SEQ {seq}").unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_written() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let durability = match std::env::var("VELOZ_JOURNAL_CRASH_DURABILITY").as_deref() {
            Ok("group") => Durability::Group,
            _ => Durability::None,
        };
        let burst = std::env::var("VELOZ_JOURNAL_CRASH_BURST")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(1);
        let tear_after = std::env::var("VELOZ_JOURNAL_CRASH_TEAR_AFTER")
            .ok()
            .and_then(|b| b.parse().ok());
        child(PathBuf::from(dir), durability, burst, tear_after);
    }

    let base = std::env::temp_dir().join(format!("veloz-journal-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let exe = std::env::current_exe().unwrap();
    let mut rng = Pcg64::seed_from_u64(SEED);
    let started = Instant::now();
    let (mut total, mut torn_tails, mut during_recovery, mut torn_writes) = (0u64, 0, 0, 0);
    let mut reported_max = 0u64;
    let mut dir = base.clone();
    for iteration in 0..ITERATIONS {
        // A fresh journal every few iterations keeps each child's recovery short.
        if iteration % 5 == 0 {
            dir = base.join(format!("run-{iteration}"));
            std::fs::create_dir_all(&dir).unwrap();
            reported_max = 0;
        }
        let durability = if iteration % 2 == 0 {
            Durability::None
        } else {
            Durability::Group
        };
        let burst: u64 = if iteration % 4 < 2 { 1 } else { 512 };
        let journal_end = reported_max;
        // Some children tear a write on the real file at a seeded byte, then wait to be killed.
        let tear_after = (iteration % 8 >= 6).then(|| rng.random_range(0..100_000u64));
        let mut child = Process::new(&exe)
            .args([
                "sigkill_at_random_points_loses_nothing_written",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env("VELOZ_JOURNAL_CRASH_BURST", burst.to_string())
            .env(
                "VELOZ_JOURNAL_CRASH_TEAR_AFTER",
                tear_after.map_or(String::new(), |n| n.to_string()),
            )
            .env(
                "VELOZ_JOURNAL_CRASH_DURABILITY",
                if durability == Durability::Group {
                    "group"
                } else {
                    "none"
                },
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Drain the child's output as it comes, so it never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (opened_tx, opened_rx) = mpsc::channel();
        let drain = std::thread::spawn(move || {
            let (mut opened, mut max, mut torn) = (None, 0u64, None);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(s) = line.strip_prefix("TORN ") {
                    torn = s.parse::<u64>().ok();
                } else if let Some(s) = line.strip_prefix("SEQ ") {
                    // A line cut by the kill may still parse: that record was written.
                    if let Ok(seq) = s.parse::<u64>() {
                        max = max.max(seq);
                    }
                } else if let Some(at) = line.find("OPEN ") {
                    // libtest's "test NAME ... " precedes it on the same line.
                    opened = line[at + 5..].trim().parse::<u64>().ok();
                    let _ = opened_tx.send(());
                }
            }
            (opened, max, torn)
        });
        if rng.random_range(0..4) == 0 {
            // During start-up: recovery itself must be safe to kill.
            std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        } else {
            if opened_rx.recv_timeout(Duration::from_secs(10)).is_err() {
                let _ = child.kill();
                panic!("iteration {iteration}: the child did not open the journal within 10 s");
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(100..5_000)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (opened, child_max, torn_at) = drain.join().unwrap();
        match opened {
            Some(next) => assert!(
                next <= reported_max + 1,
                "iteration {iteration}: child started at {next} after {reported_max}"
            ),
            None => during_recovery += 1,
        }
        reported_max = reported_max.max(child_max);

        // Reopen: everything reported is there and intact.
        let storage = MmapStorage::new(&dir).unwrap();
        let mut expected = 1u64;
        let (mut w, report) = veloz_journal::open_with(
            storage.clone(),
            SHARD,
            &config(durability, burst),
            OpenOptions::default(),
            |rec| {
                assert_eq!(rec.seq, expected, "iteration {iteration}");
                assert_eq!(rec.ts, ts_for(rec.seq));
                assert_eq!(
                    rec.body,
                    RecordBody::Command(cmd_for(rec.seq)),
                    "seq {}",
                    rec.seq
                );
                expected += 1;
            },
        )
        .unwrap_or_else(|e| panic!("iteration {iteration} (seed {SEED:#x}): {e}"));
        let last = expected - 1;
        assert!(
            last >= reported_max,
            "iteration {iteration} (seed {SEED:#x}): child reported seq {reported_max} written, journal ends at {last}"
        );
        for warning in &report.warnings {
            match warning {
                JournalWarning::TornTail { last_good_seq, .. } => {
                    assert_eq!(*last_good_seq, Some(last).filter(|&l| l > 0));
                    torn_tails += 1;
                }
                JournalWarning::TornSpareHeader { .. } | JournalWarning::SpareActivated { .. } => {}
                other => panic!("iteration {iteration}: unexpected warning {other}"),
            }
        }
        if let Some(t) = torn_at {
            // The torn record is gone (or complete, if its missing bytes were zeros anyway).
            assert!(
                last == t - 1 || last == t,
                "iteration {iteration}: torn at {t}, journal ends at {last}"
            );
            torn_writes += 1;
        }
        // The next append continues the sequence.
        assert_eq!(report.next_seq, last + 1);
        let seq = w
            .append_command(ts_for(last + 1), &cmd_for(last + 1))
            .unwrap();
        assert_eq!(seq, last + 1);
        total += seq - journal_end;
        reported_max = seq;
        w.close().unwrap();

        // And the tail is clean: a second open finds nothing to fix.
        let (w, report) = veloz_journal::open(
            storage.clone(),
            SHARD,
            &config(durability, burst),
            OpenOptions::default(),
        )
        .unwrap();
        assert!(
            report.warnings.is_empty(),
            "iteration {iteration}: {:?}",
            report.warnings
        );
        assert_eq!(report.last_seq, Some(seq));
        assert_eq!(report.records, seq);
        drop(w);
    }
    assert!(total > 10_000, "the children wrote only {total} records");
    assert!(
        torn_writes > 0 && torn_tails > 0,
        "{torn_writes} torn writes, {torn_tails} torn tails"
    );
    eprintln!(
        "crash test: {ITERATIONS} kills ({during_recovery} before the child finished recovery, {torn_writes} after a torn write), {total} records, {torn_tails} torn tails truncated, {:.1?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(&base).unwrap();
}

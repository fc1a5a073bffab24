//! A full disk under a real `veloz serve`: a small tmpfs and a small ext4 loop device as the
//! data directory (docs/operations.md, "Journal unavailable"; docs/journal-format.md,
//! "Reservation"). The engine must reject new commands with `JournalUnavailable` (never
//! SIGBUS, never lose an acknowledged order), keep serving logons and heartbeats, report
//! `veloz_journal_available 0`, leave the state by itself once space returns, and stop
//! cleanly on SIGTERM, also while unavailable.
//!
//! These tests mount filesystems, so they need root; otherwise they say `skipped: ...` and
//! pass.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use common::*;
use veloz_core::{OrderId, RejectReason, Side};
use veloz_load::client::{Client, Received};
use veloz_wire::ExecType;

/// Small segments so that the disk fills after a few hundred orders.
const SEGMENT_SIZE: u64 = 64 << 10;
/// Orders sent before their answers are read while the reserved segments fill up.
const FILL_BATCH: u64 = 64;
/// The instrument every order goes to (symbol 3, reference price 4_200_000), so one shard's
/// journal takes them all.
const SYMBOL: u32 = 3;
const PRICE: i64 = 4_200_000;
/// Bounds on what the engine must do.
const REJECT_WITHIN: Duration = Duration::from_secs(20);
const RECOVER_WITHIN: Duration = Duration::from_secs(20);
const STOP_WITHIN: Duration = Duration::from_secs(15);
const REPORT_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Filesystems

enum Fs {
    Tmpfs { mib: u64 },
    Ext4Loop { mib: u64 },
}

/// A mounted filesystem, unmounted (and its loop file removed) on drop, also on panic.
struct Mount {
    dir: PathBuf,
    loop_file: Option<PathBuf>,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = run_quiet("umount", &[self.dir.as_os_str()]);
        if !ok {
            let _ = run_quiet("umount", &["-l".as_ref(), self.dir.as_os_str()]);
        }
        if let Some(f) = &self.loop_file {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn run_quiet(cmd: &str, args: &[&std::ffi::OsStr]) -> bool {
    Process::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_output(cmd: &str, args: &[&str]) -> Result<String, String> {
    match Process::new(cmd).args(args).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "`{cmd} {}` failed ({}): {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `{cmd}`: {e}")),
    }
}

fn is_root() -> bool {
    run_output("id", &["-u"]).is_ok_and(|o| o.trim() == "0")
}

/// Mount `fs` on `dir` (created); `Err` says why it cannot be done here (the test skips).
fn mount(fs: &Fs, dir: &Path) -> Result<Mount, String> {
    if !is_root() {
        return Err("not root (mounting a filesystem needs it)".into());
    }
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.to_str().unwrap();
    match fs {
        Fs::Tmpfs { mib } => {
            run_output(
                "mount",
                &["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", d],
            )?;
            Ok(Mount {
                dir: dir.to_path_buf(),
                loop_file: None,
            })
        }
        Fs::Ext4Loop { mib } => {
            let file = dir.with_extension("ext4.img");
            let f = file.to_str().unwrap();
            let cleanup = |e: String| {
                let _ = std::fs::remove_file(&file);
                e
            };
            run_output("truncate", &["-s", &format!("{mib}M"), f]).map_err(cleanup)?;
            // -m 0: no blocks reserved for root (the engine runs as root here).
            run_output("mkfs.ext4", &["-q", "-F", "-m", "0", f]).map_err(cleanup)?;
            run_output("mount", &["-o", "loop", f, d]).map_err(cleanup)?;
            Ok(Mount {
                dir: dir.to_path_buf(),
                loop_file: Some(file),
            })
        }
    }
}

/// Write a filler file in `dir` until the filesystem says ENOSPC; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let buf = vec![0x5a_u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    let _ = f.sync_all();
    path
}

// ---------------------------------------------------------------------------------------
// The engine

fn config(dir: &Path) -> PathBuf {
    let path = test_config(dir, "group", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let from = format!("segment_size = {}", 4 << 20);
    assert!(text.contains(&from), "test_config changed: {text}");
    std::fs::write(
        &path,
        text.replacen(&from, &format!("segment_size = {SEGMENT_SIZE}"), 1),
    )
    .unwrap();
    path
}

/// Every series of `name` (any labels): its value.
fn values(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect()
}

/// Wait until the lowest `veloz_journal_available` series is `want`; returns the wait.
fn await_available(engine: &EngineProcess, want: f64) -> Duration {
    let start = Instant::now();
    loop {
        let text = scrape(&engine.metrics);
        let v = values(&text, "veloz_journal_available");
        assert!(!v.is_empty(), "no veloz_journal_available in:\n{text}");
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        if min == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "veloz_journal_available stays {v:?}, want a shard at {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

enum Outcome {
    Accepted(OrderId),
    Unavailable,
}

/// A resting buy; its answer must be Accepted or a `JournalUnavailable` reject.
fn order(engine: &mut EngineProcess, c: &mut Client, coid: u64) -> Outcome {
    c.send(&limit(SYMBOL, coid, Side::Buy, PRICE, 1)).unwrap();
    let (answered, outcome) = answer(engine, c, coid);
    assert_eq!(answered, coid);
    outcome
}

/// The next answer to a resting buy sent already (`coid`: the one awaited, for the panic
/// message): its client order id, and Accepted or a `JournalUnavailable` reject. Answers to
/// pipelined orders need not come in order: a reject is sent at once, an acknowledgement once
/// the journal is durable up to the order.
fn answer(engine: &mut EngineProcess, c: &mut Client, coid: u64) -> (u64, Outcome) {
    let r = c.next_report(REPORT_WAIT).unwrap_or_else(|e| {
        std::thread::sleep(Duration::from_millis(300));
        engine.collect();
        let exited = engine.child.try_wait();
        panic!(
            "order {coid}: no answer within {REPORT_WAIT:?}: {e}; engine exit: {exited:?}; stderr:\n{}",
            engine.stderr_lines.join("\n")
        )
    });
    let outcome = match (r.exec_type, r.reject_reason) {
        (ExecType::Accepted, _) => Outcome::Accepted(r.order_id),
        (ExecType::Rejected, Some(RejectReason::JournalUnavailable)) => {
            assert_eq!(r.reason_text, "journal_unavailable", "{r:?}");
            Outcome::Unavailable
        }
        _ => panic!("neither accepted nor journal_unavailable: {r:?}"),
    };
    (r.client_order_id, outcome)
}

/// A new session logs on, and a heartbeat comes back to it.
fn logon_and_heartbeat(engine: &EngineProcess) {
    let (mut c, _) = Client::logon(&engine.addr, BOB.0, BOB.1)
        .unwrap_or_else(|e| panic!("a logon while the journal is unavailable: {e}"));
    c.heartbeat().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no heartbeat within 5 s");
        if let Some(Received::Heartbeat) = c.recv(left).unwrap() {
            break;
        }
    }
    c.logout().unwrap();
}

/// SIGTERM; the exit code and how long it took (bounded by STOP_WITHIN).
fn stop(engine: EngineProcess) -> (i32, Duration, Vec<String>) {
    let start = Instant::now();
    let (code, _, stderr) = engine.stop();
    let took = start.elapsed();
    assert!(
        took < STOP_WITHIN,
        "SIGTERM took {took:?} (bound {STOP_WITHIN:?}); stderr:\n{}",
        stderr.join("\n")
    );
    (code, took, stderr)
}

/// Restart on the same data and cancel every acknowledged order: each is Cancelled.
fn restart_and_cancel_all(config: &Path, acked: &[(u64, OrderId)]) {
    let engine = EngineProcess::start(config);
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for &(coid, order_id) in acked {
        c.send(&cancel(SYMBOL, coid + 1_000_000, order_id)).unwrap();
        let r = c.next_report(REPORT_WAIT).unwrap();
        assert_eq!(
            (r.exec_type, r.order_id, r.reject_reason),
            (ExecType::Cancelled, order_id, None),
            "acknowledged order {coid} (id {order_id}) after the restart: {r:?}"
        );
    }
    let (code, _, stderr) = stop(engine);
    assert_eq!(code, 0, "{}", stderr.join("\n"));
}

fn replay_verify(config: &Path, data: &Path) {
    let out = Process::new(veloz_bin())
        .args(["replay", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .arg("--verify")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("verified against the clean shutdown"),
        "{stderr}"
    );
}

fn has_line(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

// ---------------------------------------------------------------------------------------
// The scenario

/// Fill the data directory's filesystem under a running engine. With `stop_while_full` the
/// engine gets SIGTERM while unavailable and restarts after space returns; otherwise space
/// returns under the running engine, which must recover by itself first.
fn full_disk(tag: &str, fs: Fs, stop_while_full: bool) {
    let _serial = serial();
    let dir = TempDir::new(tag);
    let data = dir.path().join("data");
    // Declared after `dir`: unmounted before the directory is removed.
    let _mount = match mount(&fs, &data) {
        Ok(m) => m,
        Err(why) => {
            eprintln!("skipped: {tag}: {why}");
            return;
        }
    };
    let config = config(dir.path());
    let mut engine = EngineProcess::start(&config);
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let mut acked: Vec<(u64, OrderId)> = Vec::new();
    let mut coid = 0;
    for _ in 0..20 {
        coid += 1;
        match order(&mut engine, &mut c, coid) {
            Outcome::Accepted(id) => acked.push((coid, id)),
            Outcome::Unavailable => panic!("order {coid} rejected before the disk is full"),
        }
    }

    // Fill the disk; orders go on being accepted into the reserved segments, then rejected.
    // Orders go in batches (each answered before the next batch), so that filling the
    // reserved segments does not take one round trip per order on a loaded host; once one
    // order is rejected no later one may be accepted (the disk stays full).
    let filler = fill(&data);
    let filled = Instant::now();
    let before = acked.len();
    'filling: loop {
        let first = coid + 1;
        coid += FILL_BATCH;
        for n in first..=coid {
            c.send(&limit(SYMBOL, n, Side::Buy, PRICE, 1)).unwrap();
        }
        let mut answers = std::collections::BTreeMap::new();
        while answers.len() < FILL_BATCH as usize {
            let (n, outcome) = answer(&mut engine, &mut c, first + answers.len() as u64);
            assert!((first..=coid).contains(&n), "an answer to order {n}");
            assert!(
                answers.insert(n, outcome).is_none(),
                "two answers to order {n}"
            );
        }
        let mut rejected = false;
        for (n, outcome) in answers {
            match outcome {
                Outcome::Accepted(id) => {
                    assert!(
                        !rejected,
                        "order {n} accepted after a journal_unavailable reject"
                    );
                    acked.push((n, id));
                }
                Outcome::Unavailable => rejected = true,
            }
        }
        if rejected {
            break 'filling;
        }
        assert!(
            filled.elapsed() < REJECT_WITHIN,
            "no journal_unavailable within {REJECT_WITHIN:?} of a full disk ({} orders accepted)",
            acked.len() - before
        );
    }
    let to_reject = filled.elapsed();
    eprintln!(
        "{tag}: first journal_unavailable {to_reject:?} after the disk filled, {} orders accepted meanwhile",
        acked.len() - before
    );
    // It stays unavailable, while the disk stays full.
    for _ in 0..3 {
        coid += 1;
        assert!(matches!(
            order(&mut engine, &mut c, coid),
            Outcome::Unavailable
        ));
    }
    await_available(&engine, 0.0);
    let text = scrape(&engine.metrics);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("veloz_rejects_total{")
                && l.contains("reason=\"journal_unavailable\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            >= 4.0,
        "{text}"
    );
    logon_and_heartbeat(&engine);
    engine.collect();
    assert!(
        has_line(&engine.stderr_lines, "journal unavailable"),
        "no 'journal unavailable' log line:\n{}",
        engine.stderr_lines.join("\n")
    );

    if stop_while_full {
        let (code, took, stderr) = stop(engine);
        eprintln!("{tag}: SIGTERM while unavailable: exit {code} after {took:?}");
        assert!(
            !has_line(&stderr, "SIGBUS") && !has_line(&stderr, "panicked"),
            "{}",
            stderr.join("\n")
        );
        // Recovery first (it does not depend on the exit code), then the exit code.
        std::fs::remove_file(&filler).unwrap();
        restart_and_cancel_all(&config, &acked);
        // It stops promptly, but says the stop was not clean (no checkpoint, no marker).
        assert_eq!(
            code,
            1,
            "SIGTERM while unavailable must stop and say it was not clean:\n{}",
            stderr.join("\n")
        );
        assert!(
            has_line(&stderr, "stopped, but not cleanly: shard(s) [0]"),
            "{}",
            stderr.join("\n")
        );
        assert!(
            has_line(&stderr, "stopped without the clean-shutdown checkpoint"),
            "{}",
            stderr.join("\n")
        );
        return;
    }

    // Space returns: the engine leaves the state by itself.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let mut rejected_after_free = 0;
    loop {
        coid += 1;
        match order(&mut engine, &mut c, coid) {
            Outcome::Accepted(id) => {
                acked.push((coid, id));
                break;
            }
            Outcome::Unavailable => rejected_after_free += 1,
        }
        assert!(
            freed.elapsed() < RECOVER_WITHIN,
            "still journal_unavailable {RECOVER_WITHIN:?} after space returned"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let to_recover = freed.elapsed();
    let gauge = await_available(&engine, 1.0);
    eprintln!(
        "{tag}: accepting again {to_recover:?} after space returned ({rejected_after_free} rejects meanwhile), gauge at 1 within a further {gauge:?}"
    );
    for _ in 0..20 {
        coid += 1;
        match order(&mut engine, &mut c, coid) {
            Outcome::Accepted(id) => acked.push((coid, id)),
            Outcome::Unavailable => panic!("order {coid} rejected after recovery"),
        }
    }
    engine.collect();
    assert!(
        has_line(&engine.stderr_lines, "journal available again"),
        "{}",
        engine.stderr_lines.join("\n")
    );
    let (code, took, stderr) = stop(engine);
    eprintln!("{tag}: SIGTERM after recovery: exit {code} after {took:?}");
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    replay_verify(&config, &data);
    restart_and_cancel_all(&config, &acked);
    eprintln!(
        "{tag}: {} acknowledged orders recovered and cancelled",
        acked.len()
    );
}

#[test]
fn tmpfs_full_rejects_then_recovers_by_itself() {
    full_disk("fulldisk-tmpfs", Fs::Tmpfs { mib: 4 }, false);
}

#[test]
fn ext4_loop_full_rejects_then_recovers_by_itself() {
    full_disk("fulldisk-ext4", Fs::Ext4Loop { mib: 16 }, false);
}

#[test]
fn sigterm_while_unavailable_stops_cleanly_and_restart_recovers() {
    full_disk("fulldisk-stop", Fs::Tmpfs { mib: 4 }, true);
}

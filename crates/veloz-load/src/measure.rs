//! One measurement against one peer (the engine, or the echo baseline): the load threads,
//! the common start once every thread is logged on and prefilled, the merge of the threads'
//! one-second interval histograms into the interval log as each interval completes, and the
//! merge of their results.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use veloz_core::workload::Mix;
use veloz_core::Instrument;

use super::conn::{self, Counters, Peer};
use super::cpu::{self, CpuSample};
use super::driver::{self, ConnSpec, Ctx, Interval, ThreadOutcome};
use super::fix::Protocol;
use super::flow::FlowConfig;
use super::hlog::HlogWriter;
use super::{
    Clock, LoadConfig, LoadError, Percentiles, RunResult, Selection, DEFAULT_DEVIATION_TICKS,
};

/// HeartBtInt (108) of the FIX sessions, seconds (inside the engine's default 1..=300).
const FIX_HEARTBEAT_S: u64 = 10;

/// One measurement against one peer.
pub(crate) struct Measured {
    pub result: RunResult,
    pub instruments: Vec<Instrument>,
    pub hlog_intervals: Option<usize>,
    /// `--engine-pid`, against the engine: (pid, sample at the window's start, at its end,
    /// seconds between them).
    pub engine_cpu: Option<(u32, CpuSample, CpuSample, f64)>,
}

/// Merges the threads' interval histograms by interval; an interval is complete when every
/// thread that will send it has.
struct IntervalMerger {
    /// Per thread: the index of its last interval, once sent.
    last_of: Vec<Option<u64>>,
    /// index -> (merged, threads in it, latest end seen)
    pending: BTreeMap<u64, (Histogram<u64>, usize, u64)>,
    next: u64,
}

impl IntervalMerger {
    fn new(threads: usize) -> IntervalMerger {
        IntervalMerger {
            last_of: vec![None; threads],
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    fn push(&mut self, iv: Interval) {
        if iv.last {
            self.last_of[iv.thread] = Some(iv.index);
        }
        let entry = self
            .pending
            .entry(iv.index)
            .or_insert_with(|| (conn::new_histogram(), 0, 0));
        entry.0.add(&iv.hist).expect("same bounds");
        entry.1 += 1;
        entry.2 = entry.2.max(iv.end);
    }

    /// Complete intervals in order: (index, histogram, end).
    fn complete(&mut self, all: bool) -> Vec<(u64, Histogram<u64>, u64)> {
        let mut out = Vec::new();
        while let Some(&(_, count, _)) = self.pending.get(&self.next) {
            let expected = self
                .last_of
                .iter()
                .filter(|l| l.is_none_or(|l| l >= self.next))
                .count();
            if count < expected && !all {
                break;
            }
            let (h, _, end) = self.pending.remove(&self.next).expect("present");
            out.push((self.next, h, end));
            self.next += 1;
        }
        if all {
            out.extend(
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .map(|(k, (h, _, end))| (k, h, end)),
            );
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn measure(
    config: &LoadConfig,
    peer: Peer,
    addr: SocketAddr,
    cores: &[usize],
    instruments: Vec<Instrument>,
    hlog: Option<&Path>,
    nonce: u64,
    engine_pid: Option<u32>,
    protocol: &Protocol,
) -> Result<Measured, LoadError> {
    let clock = Clock::new();
    let threads = cores.len();
    let ctx = Arc::new(Ctx {
        clock,
        peer,
        addr,
        mode: config.mode,
        connections: config.connections,
        warmup_ns: config.warmup.as_nanos() as u64,
        duration_ns: config.duration.as_nanos() as u64,
        flow: FlowConfig {
            seed: config.seed,
            mix: Mix::EXCHANGE_CORE,
            resting_total: config.resting,
            connections: config.connections,
            deviation_ticks: Some(config.deviation_ticks.unwrap_or(DEFAULT_DEVIATION_TICKS)),
        },
        selection: Selection::new(&config.symbols, &config.config),
        instruments,
        fix_target_comp_id: match protocol {
            Protocol::Fix(t) => t.target_comp_id.clone(),
            Protocol::Binary => String::new(),
        },
        fix_heartbeat_s: FIX_HEARTBEAT_S,
        threads,
        start: AtomicU64::new(0),
        ready: AtomicUsize::new(0),
        drained: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
    });
    let mut specs: Vec<Vec<ConnSpec>> = (0..threads).map(|_| Vec::new()).collect();
    let mut accounts_seen = BTreeSet::new();
    for i in 0..config.connections {
        let cred = &config.accounts[i % config.accounts.len()];
        specs[i % threads].push(ConnSpec {
            index: i,
            account: cred.account,
            token: (peer != Peer::Echo).then(|| cred.token().to_string()),
            first_of_account: accounts_seen.insert(cred.account),
            base: (nonce << (conn::ID_BITS + 12)) | ((i as u64) << conn::ID_BITS),
        });
    }
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::with_capacity(threads);
    for (t, (specs, &core)) in specs.into_iter().zip(cores).enumerate() {
        let (thread_ctx, thread_tx) = (Arc::clone(&ctx), tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("veloz-load-{t}"))
            .spawn(move || driver::run_thread(t, core, specs, thread_ctx, thread_tx));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                ctx.abort.store(true, Ordering::SeqCst);
                for h in handles {
                    let _ = h.join();
                }
                return Err(LoadError::Spawn {
                    thread: t,
                    detail: e.to_string(),
                });
            }
        }
    }
    drop(tx);

    let join_all = |handles: Vec<std::thread::JoinHandle<Result<ThreadOutcome, LoadError>>>| {
        let mut outcomes = Vec::new();
        let mut error: Option<LoadError> = None;
        for (t, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => {
                    // The first real cause beats the others' "aborted".
                    if error.is_none() || matches!(error, Some(LoadError::Aborted)) {
                        error = Some(e);
                    }
                }
                Err(_) => {
                    ctx.abort.store(true, Ordering::SeqCst);
                    error.get_or_insert(LoadError::Panicked { thread: t });
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    };

    // Release the threads together once every one is logged on and prefilled.
    while ctx.ready.load(Ordering::Acquire) < threads {
        if ctx.abort.load(Ordering::SeqCst) || handles.iter().any(|h| h.is_finished()) {
            ctx.abort.store(true, Ordering::SeqCst);
            join_all(handles)?;
            return Err(LoadError::Aborted);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let lead = Duration::from_millis(20);
    let start = clock.now() + lead.as_nanos() as u64;
    let window_wall = SystemTime::now() + lead + config.warmup;
    let mut writer = match hlog {
        Some(path) => Some(HlogWriter::create(
            path,
            &[
                format!(
                    "veloz load against {addr} ({}): round trip from intended send time to first answer, nanoseconds",
                    match peer {
                        Peer::Engine => "veloz",
                        Peer::Fix => "veloz, FIX 4.4",
                        Peer::Echo => "echo baseline",
                    }
                ),
                format!(
                    "{:?}, {} connection(s), load cores {cores:?}, seed {}",
                    config.mode, config.connections, config.seed
                ),
            ],
            window_wall,
        )?),
        None => None,
    };
    ctx.start.store(start, Ordering::Release);

    let window_start = start + ctx.warmup_ns;
    let window_end = window_start + ctx.duration_ns;
    // The engine's CPU is sampled by this thread at the window's start and end.
    let cpu_pid = engine_pid.filter(|_| peer != Peer::Echo);
    let mut cpu_start: Option<(CpuSample, u64)> = None;
    let mut cpu_end: Option<(CpuSample, u64)> = None;
    let mut sample_cpu = |now: u64| -> Result<(), LoadError> {
        let Some(pid) = cpu_pid else {
            return Ok(());
        };
        if cpu_start.is_none() && now >= window_start {
            cpu_start = Some((cpu::sample(pid)?, clock.now()));
        } else if cpu_start.is_some() && cpu_end.is_none() && now >= window_end {
            cpu_end = Some((cpu::sample(pid)?, clock.now()));
        }
        Ok(())
    };
    let mut merger = IntervalMerger::new(threads);
    let mut write_error = None;
    let mut write = |batch: Vec<(u64, Histogram<u64>, u64)>, writer: &mut Option<HlogWriter>| {
        let Some(w) = writer.as_mut() else {
            return;
        };
        for (k, h, end) in batch {
            let from = window_start + k * 1_000_000_000;
            // At least 1 ms (the log's resolution); the last interval includes the drain.
            let length = end.saturating_sub(from).max(1_000_000);
            if let Err(e) = w.write(Duration::from_secs(k), Duration::from_nanos(length), &h) {
                write_error.get_or_insert(e);
            }
        }
    };
    let mut cpu_error = None;
    loop {
        let now = clock.now();
        if let Err(e) = sample_cpu(now) {
            cpu_error.get_or_insert(e);
        }
        // Wake for the next sample point, at most 50 ms later.
        let next_sample = [window_start, window_end]
            .into_iter()
            .find(|&t| t > now)
            .map_or(50_000_000, |t| t - now);
        let wait = Duration::from_nanos(next_sample.clamp(100_000, 50_000_000));
        match rx.recv_timeout(wait) {
            Ok(iv) => {
                merger.push(iv);
                write(merger.complete(false), &mut writer);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let outcomes = join_all(handles)?;
    if let Some(e) = cpu_error {
        return Err(e);
    }
    let engine_cpu = match (cpu_pid, cpu_start, cpu_end) {
        (Some(pid), Some((a, at)), Some((b, bt))) => {
            Some((pid, a, b, bt.saturating_sub(at) as f64 / 1e9))
        }
        _ => None,
    };
    write(merger.complete(true), &mut writer);
    if let Some(e) = write_error {
        return Err(e);
    }
    let hlog_intervals = writer.map(HlogWriter::finish);

    let mut counters = Counters::default();
    let mut total = conn::new_histogram();
    let mut lag = conn::new_histogram();
    let mut chosen = Vec::new();
    for o in &outcomes {
        counters.merge(&o.counters);
        total.add(&o.total).expect("same bounds");
        lag.add(&o.lag).expect("same bounds");
        if chosen.is_empty() {
            chosen = o.instruments.clone();
        }
    }
    let duration_s = config.duration.as_secs_f64();
    Ok(Measured {
        result: RunResult {
            send_lag_us: Percentiles::of(&lag),
            ..RunResult::new(addr.to_string(), &counters, &total, duration_s)
        },
        instruments: chosen,
        hlog_intervals,
        engine_cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_complete_when_every_thread_sent_them() {
        let iv = |thread, index, last| Interval {
            thread,
            index,
            last,
            end: index * 1_000_000_000 + 1,
            hist: conn::new_histogram(),
        };
        let mut m = IntervalMerger::new(2);
        m.push(iv(0, 0, false));
        assert!(m.complete(false).is_empty());
        m.push(iv(1, 0, false));
        assert_eq!(m.complete(false).len(), 1);
        m.push(iv(0, 1, true));
        m.push(iv(1, 1, false));
        m.push(iv(1, 2, true));
        let done: Vec<u64> = m.complete(false).into_iter().map(|x| x.0).collect();
        assert_eq!(done, [1, 2]);
    }
}

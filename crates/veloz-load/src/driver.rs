//! One load thread: pinned to its core, it owns some of the run's connections and
//! busy-polls them (never blocks, never parks) through the phases of a run:
//!
//! 1. connect and log on (blocking, before the run), then the prefill: GTC orders,
//!    pipelined, until each connection's books hold their target (not measured);
//! 2. report ready and wait for the main thread's start time (every thread starts together);
//! 3. warm-up then the measured window: read the connections that have data (arrival time
//!    taken once per read), queue the commands that are due, one write per connection that
//!    queued any, and [`SWEEP_PER_PASS`] connections in turn for heartbeats
//!    ([`super::agenda`] says which connections a pass visits);
//! 4. drain: stop sending at the end of the window and wait (at most [`DRAIN_LIMIT_NS`]) for
//!    the answers still due;
//! 5. when every thread has drained: mass cancel (first connection of each account), Logout,
//!    read until the engine closes.
//!
//! Open loop: the `i`-th command of the run (over all connections, connection `c` taking
//! `i = c, c + N, c + 2N, ...`) is intended for `start + i / rate`; it is sent as soon as the
//! loop sees it is due and the connection has fewer than `window` requests in flight, and its
//! latency is counted from that intended time (a wait for the window counts). Closed loop: a
//! connection refills its pipeline to `K` requests whenever answers arrive; the intended time
//! is when the loop queued it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use hdrhistogram::Histogram;

use veloz_core::{AccountId, Instrument};

use super::agenda::{Backlog, Due, Readiness};
use super::conn::{self, Conn, ConnParts, Counters, Peer, Recorder};
use super::fix::{self, FixParams};
use super::flow::FlowConfig;
use super::{Clock, LoadError, Mode, Selection};

/// After the window, answers are awaited this long at most.
pub(crate) const DRAIN_LIMIT_NS: u64 = 5_000_000_000;
/// Prefill requests in flight per connection.
const PREFILL_PIPELINE: usize = 64;
/// The prefill of one thread must be done within this.
const PREFILL_LIMIT_NS: u64 = 30_000_000_000;
/// Waiting for the other threads (ready, drained) ends in an error after this.
const BARRIER_LIMIT_NS: u64 = 60_000_000_000;
/// Closing: how long to wait for the engine to close after our Logout.
const CLOSE_LIMIT_NS: u64 = 2_000_000_000;
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// During the run, connections visited per pass for heartbeats, in turn (a pass takes
/// microseconds: a thousand connections are all visited within a millisecond or so, far
/// inside the shortest heartbeat half-interval of 5 ms).
const SWEEP_PER_PASS: usize = 8;

/// What every thread of one measurement shares.
pub(crate) struct Ctx {
    pub clock: Clock,
    pub peer: Peer,
    pub addr: SocketAddr,
    pub mode: Mode,
    /// Connections over all threads.
    pub connections: usize,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub flow: FlowConfig,
    pub selection: Selection,
    /// Echo and FIX runs: the instruments the engine announced (FIX: on its binary port).
    pub instruments: Vec<Instrument>,
    /// FIX runs: TargetCompID (56) and HeartBtInt (108, seconds).
    pub fix_target_comp_id: String,
    pub fix_heartbeat_s: u64,
    pub threads: usize,
    /// Run clock time of the start (0 until the main thread releases the threads).
    pub start: AtomicU64,
    pub ready: AtomicUsize,
    pub drained: AtomicUsize,
    /// A thread failed: the others stop.
    pub abort: AtomicBool,
}

/// One connection a thread is to open.
pub(crate) struct ConnSpec {
    pub index: usize,
    pub account: AccountId,
    /// `None` against the echo server.
    pub token: Option<String>,
    pub first_of_account: bool,
    pub base: u64,
}

/// One interval of the interval log from one thread.
pub(crate) struct Interval {
    pub thread: usize,
    /// Seconds since the start of the measured window.
    pub index: u64,
    /// The thread's last interval: it sends no more.
    pub last: bool,
    /// Run clock time the thread closed it.
    pub end: u64,
    pub hist: Histogram<u64>,
}

/// What a thread measured.
pub(crate) struct ThreadOutcome {
    pub counters: Counters,
    pub total: Histogram<u64>,
    /// Send lag of the measured requests ([`Recorder::lag`]).
    pub lag: Histogram<u64>,
    pub instruments: Vec<Instrument>,
}

/// Run one thread; on error the others are told to stop.
pub(crate) fn run_thread(
    thread: usize,
    core: usize,
    specs: Vec<ConnSpec>,
    ctx: Arc<Ctx>,
    tx: Sender<Interval>,
) -> Result<ThreadOutcome, LoadError> {
    let result = drive(thread, core, specs, &ctx, &tx);
    if result.is_err() {
        ctx.abort.store(true, Ordering::SeqCst);
    }
    result
}

fn aborted(ctx: &Ctx) -> Result<(), LoadError> {
    if ctx.abort.load(Ordering::Relaxed) {
        Err(LoadError::Aborted)
    } else {
        Ok(())
    }
}

/// Poll every connection once (answers, heartbeats, pending writes).
fn poll_all(conns: &mut [Conn], ctx: &Ctx, rec: &mut Recorder) -> Result<(), LoadError> {
    let now = ctx.clock.now();
    for c in conns.iter_mut() {
        c.poll(&ctx.clock, rec)?;
        c.heartbeat_if_idle(now);
        c.flush()?;
    }
    Ok(())
}

/// Slots of requests in flight per connection: what the mode and the prefill keep in flight.
fn slots(mode: Mode) -> usize {
    let most = match mode {
        Mode::Open { window, .. } => window,
        Mode::Closed { pipeline } => pipeline,
    };
    most.max(PREFILL_PIPELINE).next_power_of_two()
}

fn open(ctx: &Ctx, specs: Vec<ConnSpec>) -> Result<(Vec<Conn>, Vec<Instrument>), LoadError> {
    let mut conns = Vec::with_capacity(specs.len());
    let mut first: Option<Vec<Instrument>> = None;
    for spec in specs {
        let decoder = || veloz_wire::FrameDecoder::new(veloz_wire::DEFAULT_MAX_FRAME_LEN);
        let (stream, decoder, instruments, heartbeat_ms, fix) = match ctx.peer {
            Peer::Engine => {
                let token = spec.token.as_deref().unwrap_or("");
                let l = conn::logon(ctx.addr, spec.account, token, CONNECT_TIMEOUT)?;
                let instruments = ctx.selection.select(&l.instruments, ctx.addr)?;
                (l.stream, l.decoder, instruments, l.heartbeat_ms, None)
            }
            Peer::Fix => {
                let instruments = ctx.selection.select(&ctx.instruments, ctx.addr)?;
                let params = FixParams {
                    addr: ctx.addr,
                    target_comp_id: &ctx.fix_target_comp_id,
                    account: spec.account,
                    token: spec.token.as_deref().unwrap_or(""),
                    index: spec.index,
                    heartbeat_s: ctx.fix_heartbeat_s,
                    base: spec.base,
                    slots: slots(ctx.mode),
                    instruments: &instruments,
                };
                let (stream, session) = fix::logon(&params, CONNECT_TIMEOUT)?;
                let heartbeat_ms = (ctx.fix_heartbeat_s * 1_000) as u32;
                (stream, decoder(), instruments, heartbeat_ms, Some(session))
            }
            Peer::Echo => (
                conn::connect_echo(ctx.addr, CONNECT_TIMEOUT)?,
                decoder(),
                ctx.instruments.clone(),
                1_000,
                None,
            ),
        };
        let parts = ConnParts {
            index: spec.index,
            account: spec.account,
            first_of_account: spec.first_of_account,
            peer: ctx.peer,
            addr: ctx.addr,
            stream,
            decoder,
            fix,
            heartbeat_ms,
            base: spec.base,
            slots: slots(ctx.mode),
        };
        conns.push(Conn::new(parts, &instruments, &ctx.flow));
        first.get_or_insert(instruments);
    }
    Ok((conns, first.unwrap_or_default()))
}

fn prefill(conns: &mut [Conn], ctx: &Ctx, rec: &mut Recorder) -> Result<(), LoadError> {
    set_phase(conns, "the prefill");
    let deadline = ctx.clock.now() + PREFILL_LIMIT_NS;
    loop {
        aborted(ctx)?;
        let now = ctx.clock.now();
        let mut done = true;
        for c in conns.iter_mut() {
            c.poll(&ctx.clock, rec)?;
            let mut more = true;
            while c.in_flight < PREFILL_PIPELINE && c.window_open() {
                if !c.send_prefill(now) {
                    more = false;
                    break;
                }
            }
            done &= !more && c.in_flight == 0;
            c.flush()?;
        }
        if done {
            return Ok(());
        }
        if now > deadline {
            let c = conns.iter().find(|c| c.in_flight > 0).unwrap_or(&conns[0]);
            return Err(LoadError::PrefillTimeout {
                addr: c.addr().to_string(),
                account: c.account,
                resting: c.resting(),
                in_flight: c.in_flight,
            });
        }
    }
}

/// Wait (polling the sockets) until `counter` reaches the thread count.
fn barrier(
    counter: &AtomicUsize,
    what: &'static str,
    conns: &mut [Conn],
    ctx: &Ctx,
    rec: &mut Recorder,
) -> Result<(), LoadError> {
    let deadline = ctx.clock.now() + BARRIER_LIMIT_NS;
    while counter.load(Ordering::Acquire) < ctx.threads {
        aborted(ctx)?;
        poll_all(conns, ctx, rec)?;
        if ctx.clock.now() > deadline {
            return Err(LoadError::Barrier { what });
        }
    }
    Ok(())
}

fn set_phase(conns: &mut [Conn], phase: &'static str) {
    for c in conns.iter_mut() {
        c.phase = phase;
    }
}

/// Open loop: the intended time of connection `c`'s next request.
fn due_of(c: &Conn, start: u64, rate: u64) -> u64 {
    start + (c.schedule_pos as u128 * 1_000_000_000 / rate as u128) as u64
}

/// Closed loop: fill `c`'s pipeline.
fn refill(c: &mut Conn, pipeline: usize, now: u64, window_start: u64, rec: &mut Recorder) {
    while c.in_flight < pipeline && c.window_open() {
        c.send_next(now, now >= window_start, now, rec);
    }
}

/// Warm-up, measured window and drain of one thread's connections (phase 3 and 4 of the
/// module docs). Returns when it drained and the index of its last interval.
fn run_window(
    thread: usize,
    conns: &mut [Conn],
    ctx: &Ctx,
    tx: &Sender<Interval>,
    rec: &mut Recorder,
    start: u64,
) -> Result<(u64, u64), LoadError> {
    let window_start = start + ctx.warmup_ns;
    let window_end = window_start + ctx.duration_ns;
    let n = ctx.connections as u64;
    let mut due = Due::new(conns.len());
    for (i, c) in conns.iter_mut().enumerate() {
        c.schedule_pos = c.index as u64;
        if let Mode::Open { rate, .. } = ctx.mode {
            let d = due_of(c, start, rate);
            if d < window_end {
                due.push(d, i);
            }
        }
    }
    let mut readiness = Readiness::new(conns)?;
    let mut ready = Vec::with_capacity(conns.len());
    let mut backlog = Backlog::new(conns.len());
    let mut sweep = 0usize;
    let mut interval = 0u64;
    let mut boundary = window_start + 1_000_000_000;
    let mut check = 0u32;
    // Closed loop: every pipeline is filled once, then refilled as answers arrive.
    let mut fill_all = matches!(ctx.mode, Mode::Closed { .. });
    loop {
        let now = ctx.clock.now();
        // The last interval runs on to the end of the drain: no interval of the answers'
        // tail alone.
        while now >= boundary && boundary < window_end {
            let hist = std::mem::replace(&mut rec.interval, conn::new_histogram());
            let _ = tx.send(Interval {
                thread,
                index: interval,
                last: false,
                end: now,
                hist,
            });
            interval += 1;
            boundary += 1_000_000_000;
        }
        let sending = now < window_end;
        readiness.collect(conns.len(), &mut ready)?;
        for &i in &ready {
            let c = &mut conns[i];
            c.poll(&ctx.clock, rec)?;
            if !sending {
                continue;
            }
            match ctx.mode {
                // An answer may have opened a blocked connection's window: its overdue
                // request goes back on the schedule, under its own intended time.
                Mode::Open { rate, window } => {
                    if due.is_blocked(i) && c.in_flight < window && c.window_open() {
                        due.push(due_of(c, start, rate), i);
                    }
                }
                Mode::Closed { pipeline } => {
                    refill(c, pipeline, now, window_start, rec);
                    backlog.flush(conns, i)?;
                }
            }
        }
        match ctx.mode {
            Mode::Open { rate, window } if sending => {
                while let Some((_, i)) = due.pop_due(now) {
                    let c = &mut conns[i];
                    let mut next = due_of(c, start, rate);
                    while c.in_flight < window && c.window_open() && next <= now {
                        c.send_next(next, next >= window_start, now, rec);
                        c.schedule_pos += n;
                        next = due_of(c, start, rate);
                        if next >= window_end {
                            break;
                        }
                    }
                    if next > now && next < window_end {
                        due.push(next, i);
                    } else if next <= now {
                        // Due, but its window is full: back when an answer opens it.
                        due.block(i);
                    }
                    backlog.flush(conns, i)?;
                }
            }
            Mode::Closed { pipeline } if fill_all && sending => {
                fill_all = false;
                for i in 0..conns.len() {
                    refill(&mut conns[i], pipeline, now, window_start, rec);
                    backlog.flush(conns, i)?;
                }
            }
            _ => {}
        }
        backlog.retry(conns)?;
        // A few connections per pass: heartbeats of the idle ones.
        for _ in 0..SWEEP_PER_PASS.min(conns.len()) {
            sweep = (sweep + 1) % conns.len();
            conns[sweep].heartbeat_if_idle(now);
            backlog.flush(conns, sweep)?;
        }
        if !sending {
            let in_flight: usize = conns.iter().map(|c| c.in_flight).sum();
            if in_flight == 0 || now >= window_end + DRAIN_LIMIT_NS {
                return Ok((now, interval));
            }
        }
        check = check.wrapping_add(1);
        if check.is_multiple_of(1024) {
            aborted(ctx)?;
        }
    }
}

fn drive(
    thread: usize,
    core: usize,
    specs: Vec<ConnSpec>,
    ctx: &Ctx,
    tx: &Sender<Interval>,
) -> Result<ThreadOutcome, LoadError> {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        return Err(LoadError::Pin { core });
    }
    let (mut conns, instruments) = open(ctx, specs)?;
    let mut rec = Recorder::new();
    prefill(&mut conns, ctx, &mut rec)?;
    ctx.ready.fetch_add(1, Ordering::AcqRel);
    set_phase(&mut conns, "the wait for the other load threads");
    let start = loop {
        aborted(ctx)?;
        let start = ctx.start.load(Ordering::Acquire);
        if start != 0 {
            break start;
        }
        poll_all(&mut conns, ctx, &mut rec)?;
    };
    set_phase(&mut conns, "the run (warm-up, window, drain)");
    let (drained_at, interval) = run_window(thread, &mut conns, ctx, tx, &mut rec, start)?;
    rec.counters.unanswered = conns.iter().map(Conn::unanswered_measured).sum();
    // The result is what was answered by now; a late answer after this changes nothing.
    let (counters, total, lag) = (rec.counters.clone(), rec.total.clone(), rec.lag.clone());
    let hist = std::mem::replace(&mut rec.interval, conn::new_histogram());
    let _ = tx.send(Interval {
        thread,
        index: interval,
        last: true,
        end: drained_at,
        hist,
    });
    ctx.drained.fetch_add(1, Ordering::AcqRel);
    set_phase(&mut conns, "the wait for the other load threads");
    barrier(
        &ctx.drained,
        "the end of the run",
        &mut conns,
        ctx,
        &mut rec,
    )?;
    for c in conns.iter_mut() {
        c.begin_close();
        c.flush()?;
    }
    let deadline = ctx.clock.now() + CLOSE_LIMIT_NS;
    while conns.iter().any(|c| !c.eof) && ctx.clock.now() < deadline {
        for c in conns.iter_mut() {
            // Anything after our Logout is only drained; errors no longer matter.
            if c.poll(&ctx.clock, &mut rec).is_err() || c.flush().is_err() {
                c.eof = true;
            }
        }
    }
    Ok(ThreadOutcome {
        counters,
        total,
        lag,
        instruments,
    })
}

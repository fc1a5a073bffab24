//! One load thread: pinned to its core, it owns some of the run's connections and
//! busy-polls them (never blocks, never parks) through the phases of a run:
//!
//! 1. connect and log on (blocking, before the run), then the prefill: GTC orders,
//!    pipelined, until each connection's books hold their target (not measured);
//! 2. report ready and wait for the main thread's start time (every thread starts together);
//! 3. warm-up then the measured window: per connection, read what arrived (arrival time taken
//!    once per read), queue the commands that are due, write them in one call;
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

use super::conn::{self, Conn, ConnParts, Counters, Peer, Recorder};
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
    /// Echo runs: the instruments the engine announced.
    pub instruments: Vec<Instrument>,
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

fn open(ctx: &Ctx, specs: Vec<ConnSpec>) -> Result<(Vec<Conn>, Vec<Instrument>), LoadError> {
    let mut conns = Vec::with_capacity(specs.len());
    let mut first: Option<Vec<Instrument>> = None;
    for spec in specs {
        let (stream, decoder, instruments, heartbeat_ms) = match ctx.peer {
            Peer::Engine => {
                let token = spec.token.as_deref().unwrap_or("");
                let l = conn::logon(ctx.addr, spec.account, token, CONNECT_TIMEOUT)?;
                let instruments = ctx.selection.select(&l.instruments, ctx.addr)?;
                (l.stream, l.decoder, instruments, l.heartbeat_ms)
            }
            Peer::Echo => (
                conn::connect_echo(ctx.addr, CONNECT_TIMEOUT)?,
                veloz_wire::FrameDecoder::new(veloz_wire::DEFAULT_MAX_FRAME_LEN),
                ctx.instruments.clone(),
                1_000,
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
            heartbeat_ms,
            base: spec.base,
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
    let window_start = start + ctx.warmup_ns;
    let window_end = window_start + ctx.duration_ns;
    let n = ctx.connections as u128;
    for c in conns.iter_mut() {
        c.schedule_pos = c.index as u64;
    }
    set_phase(&mut conns, "the run (warm-up, window, drain)");
    let mut interval = 0u64;
    let mut boundary = window_start + 1_000_000_000;
    let mut check = 0u32;
    let drained_at = loop {
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
        let mut in_flight = 0;
        for c in conns.iter_mut() {
            c.poll(&ctx.clock, &mut rec)?;
            if sending {
                match ctx.mode {
                    Mode::Open { rate, window } => {
                        while c.in_flight < window && c.window_open() {
                            let due = start
                                + (c.schedule_pos as u128 * 1_000_000_000 / rate as u128) as u64;
                            if due > now || due >= window_end {
                                break;
                            }
                            c.send_next(due, due >= window_start, now, &mut rec);
                            c.schedule_pos += n as u64;
                        }
                    }
                    Mode::Closed { pipeline } => {
                        while c.in_flight < pipeline && c.window_open() {
                            c.send_next(now, now >= window_start, now, &mut rec);
                        }
                    }
                }
            }
            c.heartbeat_if_idle(now);
            c.flush()?;
            in_flight += c.in_flight;
        }
        if !sending && (in_flight == 0 || now >= window_end + DRAIN_LIMIT_NS) {
            break now;
        }
        check = check.wrapping_add(1);
        if check.is_multiple_of(1024) {
            aborted(ctx)?;
        }
    };
    rec.counters.unanswered = conns.iter().map(Conn::unanswered_measured).sum();
    // The result is what was answered by now; a late answer after this changes nothing.
    let (counters, total) = (rec.counters.clone(), rec.total.clone());
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
        instruments,
    })
}

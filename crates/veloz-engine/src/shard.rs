//! The shard loop: one pinned glommio executor running one busy-polling task that owns
//! everything of its shard: listener, sessions, engine, journal, ring ends.
//!
//! One iteration:
//! 1. accept new connections (non-blocking listener, SO_REUSEPORT: the kernel spreads
//!    connections over the shards);
//! 2. read sessions: decode frames, log on, turn orders into commands for the owning shard
//!    (a local queue, or that shard's ring);
//! 3. drain the inbound rings in batches: commands for this shard's instruments, and
//!    deliveries for this shard's sessions;
//! 4. run the engine over the queued commands: sequence, timestamp, journal append, apply,
//!    route each event to the sessions concerned (both sides of a trade);
//! 5. release deliveries whose journal range is durable (`group` durability holds them);
//! 6. flush sessions' outbound buffers; check timers (logon, heartbeat, idle).
//!
//! A shard never waits on another shard: a full ring pauses the session that fed it
//! (backpressure), and deliveries to a full ring wait in an in-order overflow queue for
//! that destination. When nothing happened for `spin_us` the task parks with a growing
//! sleep (10 us up to `park_max_us`) so that idle shards give their core back.
//!
//! Shutdown (stop flag set by the control side on SIGINT/SIGTERM): stop accepting and
//! reading; keep working until every shard has stopped reading, no command anywhere is
//! unanswered (`in_flight`, one counter per shard, counts remote commands until their
//! `Done` comes back), and this shard's rings and queues are empty; then checkpoint and
//! sync the journal, flush and log out the sessions, and report the final sequence and
//! state hash.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use socket2::{Domain, Protocol, Socket, Type};

use super::journal::ShardJournal;
use veloz_config::Config;
use veloz_core::{Command, Engine, Event, OrderId, RejectReason, Seq, SymbolId, Timestamp};
use veloz_wire::{decode_client, ClientMessage, FrameEncoder, LogonAck, LogoutReason};

use super::auth::{Authenticator, LogonResult};
use super::mesh::{ControlMsg, Delivery, Part, SessionRef, ShardLinks, ShardMsg};
use super::metrics::{Latency, ShardMetrics};
use super::session::{ReadOutcome, Session, State};
use veloz_config::routing::Routing;

/// The listener is polled every this many loop passes.
const ACCEPT_EVERY: u64 = 64;
/// Bytes a session may read per loop iteration (fairness).
const READ_BUDGET: usize = 64 * 1024;
/// Most ring messages drained from one ring per iteration.
const RING_BATCH: usize = 256;
/// How long a closing session may take to accept its last frames before it is dropped.
const CLOSE_GRACE_NS: u64 = 1_000_000_000;
/// Shutdown: how long sessions get to take their last reports.
const FINAL_FLUSH: Duration = Duration::from_millis(500);

/// What every shard shares with the others and the control thread (all read-mostly).
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub routing: Routing,
    pub auth: Authenticator,
    /// Process-wide time base for ingress stamps (TSC, comparable across cores).
    pub epoch: minstant::Instant,
    /// Set on SIGINT/SIGTERM (by signal-hook), or by a shard that failed.
    pub stop: Arc<AtomicBool>,
    /// Shards that have stopped reading their sockets.
    pub stopped_reading: AtomicUsize,
    /// Per shard: remote commands sent and not yet answered with `Done`.
    pub in_flight: Vec<AtomicU64>,
    /// Shards done with recovery (successfully or not): the port opens when all are.
    pub recovered: Mutex<usize>,
    pub recovered_cv: std::sync::Condvar,
    /// The port shard 0 bound (others bind the same one), or why it could not.
    pub port: Mutex<Option<Result<u16, String>>>,
    pub port_ready: std::sync::Condvar,
    /// Journals live in `data_dir/shard-N/`.
    pub data_dir: std::path::PathBuf,
    /// The operator asked to cut mid-journal corruption instead of refusing to start.
    pub repair: bool,
    /// Core of each shard, by shard index.
    pub cores: Vec<usize>,
    /// Where journal helper threads (segment preparer, group-commit sync) may run: the
    /// online cores no shard spins on, or every online core on hosts that have none.
    pub helper_cores: Vec<usize>,
}

impl Shared {
    /// Count this shard as recovered and wait for the others (or for a stop: a shard that
    /// could not even be started never arrives).
    pub fn arrive_and_wait(&self) {
        let n = self.in_flight.len();
        let mut count = self.recovered.lock().expect("recovered lock");
        *count += 1;
        self.recovered_cv.notify_all();
        while *count < n && !self.stop.load(Ordering::SeqCst) {
            count = self
                .recovered_cv
                .wait_timeout(count, Duration::from_millis(10))
                .expect("recovered lock")
                .0;
        }
    }

    fn publish_port(&self, port: Result<u16, String>) {
        *self.port.lock().expect("port lock") = Some(port);
        self.port_ready.notify_all();
    }

    fn wait_port(&self) -> Result<u16, String> {
        let mut port = self.port.lock().expect("port lock");
        while port.is_none() {
            port = self.port_ready.wait(port).expect("port lock");
        }
        port.clone().expect("set")
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// Why a shard could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {shard}: journal: {detail}")]
    Journal { shard: usize, detail: String },
    #[error("shard {shard}: cannot listen on {addr}: {detail}")]
    Listen {
        shard: usize,
        addr: String,
        detail: String,
    },
}

/// How a shard ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardReport {
    pub shard: usize,
    pub last_seq: Seq,
    pub state_hash: u64,
}

/// Something the engine produced for a session, possibly held for durability.
#[derive(Clone, Copy, Debug)]
enum Outbound {
    Deliver(Delivery),
    /// The command from a session on `shard` is fully answered.
    Done {
        shard: u16,
    },
}

struct Shard {
    index: usize,
    shared: Arc<Shared>,
    links: ShardLinks,
    engine: Engine,
    journal: ShardJournal,
    listener: Option<TcpListener>,
    /// Session slab: slot -> (generation, session).
    sessions: Vec<(u32, Option<Session>)>,
    free_slots: Vec<u16>,
    encoder: FrameEncoder,
    /// Commands for this shard's instruments: (origin session, ingress ns, command).
    queue: VecDeque<(SessionRef, u64, Command)>,
    /// Which session placed each open order (for routing its reports).
    owners: FxHashMap<OrderId, SessionRef>,
    /// Engine output not yet released: waits for journal durability (`group`).
    /// (sequence, ns when it was appended, output).
    held: VecDeque<(Seq, u64, Outbound)>,
    /// Ingress time of the command being applied, until its first report takes it.
    pending_ingress: u64,
    /// When the command being applied was journaled (ns since start).
    appended_at: u64,
    /// Per destination shard: messages waiting for room in its ring, in order.
    overflow: Vec<VecDeque<ShardMsg>>,
    events: Vec<Event>,
    seq: Seq,
    in_flight: u64,
    anchor: minstant::Anchor,
    stopping: bool,
    metrics: ShardMetrics,
    /// Latest durable sequence seen (to count durable-watermark advances).
    durable_seen: Seq,
    /// Sessions holding a command that waits for ring room.
    stalled_sessions: usize,
    /// When the stop began (for the shutdown log).
    stop_began: Option<minstant::Instant>,
}

/// Restrict the calling thread to `cores` (best effort: a failure leaves the mask as it was
/// and is reported, it does not stop the shard).
fn set_affinity(cores: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    for &c in cores {
        if set.set(c).is_err() {
            eprintln!("veloz: warning: core {c} is beyond the CPU set size");
        }
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("veloz: warning: cannot set the CPU affinity to {cores:?}: {e}");
    }
}

/// Bind `addr` with SO_REUSEPORT and SO_REUSEADDR, non-blocking.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Run shard `links.shard` until shutdown. Called on the shard's pinned executor.
///
/// A shard that fails to recover still meets the others at the recovery barrier (and
/// counts as stopped), so one bad journal stops the whole engine cleanly instead of
/// leaving the other shards waiting.
pub async fn run(shared: Arc<Shared>, links: ShardLinks) -> Result<ShardReport, ShardError> {
    let index = links.shard;
    let prepared = recover(&shared, index);
    if prepared.is_err() {
        shared.stop.store(true, Ordering::SeqCst);
    }
    shared.arrive_and_wait();
    let (engine, journal, last_seq) = match prepared {
        Ok(p) => p,
        Err(e) => {
            shared.stopped_reading.fetch_add(1, Ordering::SeqCst);
            if index == 0 {
                shared.publish_port(Err(format!("shard 0 failed: {e}")));
            }
            return Err(e);
        }
    };
    let n = shared.in_flight.len();
    let mut shard = Shard {
        index,
        links,
        engine,
        journal,
        listener: None,
        sessions: Vec::new(),
        free_slots: Vec::new(),
        encoder: FrameEncoder::new(),
        queue: VecDeque::with_capacity(4096),
        owners: FxHashMap::default(),
        held: VecDeque::with_capacity(4096),
        pending_ingress: 0,
        appended_at: 0,
        overflow: (0..n).map(|_| VecDeque::new()).collect(),
        events: Vec::with_capacity(64),
        seq: last_seq,
        in_flight: 0,
        anchor: minstant::Anchor::new(),
        stopping: false,
        metrics: ShardMetrics::new(index as u16, shared.now_ns()),
        durable_seen: last_seq,
        stalled_sessions: 0,
        stop_began: None,
        shared,
    };
    let mut listen_error = None;
    if shard.shared.stop.load(Ordering::SeqCst) {
        if index == 0 {
            shard
                .shared
                .publish_port(Err("engine stopping before start".into()));
        }
        shard.begin_stop();
    } else {
        match shard.open_listener() {
            Ok(port) => {
                let _ = shard.links.control.push(ControlMsg::Ready {
                    shard: index as u16,
                    port,
                    last_seq: shard.seq,
                    state_hash: shard.engine.state_hash(),
                });
            }
            Err(e) => {
                shard.shared.stop.store(true, Ordering::SeqCst);
                shard.begin_stop();
                listen_error = Some(e);
            }
        }
    }
    shard.serve().await;
    let report = shard.finish()?;
    match listen_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Build the shard's engine and recover it from its journal (the replay path itself).
fn recover(shared: &Shared, index: usize) -> Result<(Engine, ShardJournal, Seq), ShardError> {
    let instruments: Vec<_> = shared
        .config
        .instruments()
        .into_iter()
        .filter(|i| shared.routing.shard_of(i.id) == Some(index))
        .collect();
    let mut engine = Engine::new(index as u16, &instruments);
    // The journal starts its helper threads here; they inherit this thread's CPU mask. A
    // sync or prefault thread pinned beside a spinning shard crawls (PLATFORM.md pitfall 4),
    // so widen the mask to the helper cores while they start, then pin back.
    set_affinity(&shared.helper_cores);
    let recovered = ShardJournal::recover(
        &shared.data_dir,
        &shared.config.journal,
        index as u16,
        shared.repair,
        &mut engine,
    );
    set_affinity(&shared.cores[index..=index]);
    let (journal, recovered) = recovered.map_err(|e| ShardError::Journal {
        shard: index,
        detail: e.to_string(),
    })?;
    for warning in &recovered.warnings {
        eprintln!("veloz: shard {index}: warning: {warning}");
    }
    eprintln!(
        "veloz: shard {index}: recovered {} commands, last sequence {}, state hash {:016x}",
        recovered.commands,
        recovered.last_seq,
        engine.state_hash()
    );
    Ok((engine, journal, recovered.last_seq))
}

impl Shard {
    fn open_listener(&mut self) -> Result<u16, ShardError> {
        let configured = self.shared.config.gateway.listen.clone();
        let listen_err = |detail: String| ShardError::Listen {
            shard: self.index,
            addr: configured.clone(),
            detail,
        };
        let mut addr: SocketAddr = match configured.parse() {
            Ok(a) => a,
            Err(e) => {
                let e: std::net::AddrParseError = e;
                if self.index == 0 {
                    self.shared.publish_port(Err(e.to_string()));
                }
                return Err(listen_err(e.to_string()));
            }
        };
        if self.index != 0 {
            // Shard 0 binds first (the configured port may be 0: take the one it got).
            let port = self.shared.wait_port().map_err(listen_err)?;
            addr.set_port(port);
        }
        let bound = listen(addr).and_then(|l| Ok((l.local_addr()?.port(), l)));
        match bound {
            Ok((port, listener)) => {
                if self.index == 0 {
                    self.shared.publish_port(Ok(port));
                }
                self.listener = Some(listener);
                Ok(port)
            }
            Err(e) => {
                if self.index == 0 {
                    self.shared.publish_port(Err(e.to_string()));
                }
                Err(listen_err(e.to_string()))
            }
        }
    }

    /// The busy-poll loop, until shutdown is complete.
    async fn serve(&mut self) {
        let spin = Duration::from_micros(self.shared.config.engine.spin_us);
        let park_max = Duration::from_micros(self.shared.config.engine.park_max_us.max(10));
        let mut last_work = minstant::Instant::now();
        let mut park = Duration::from_micros(10);
        let mut iterations: u64 = 0;
        let mut idle = true;
        loop {
            let mut work = 0usize;
            if !self.stopping && self.shared.stop.load(Ordering::Relaxed) {
                self.begin_stop();
            }
            if !self.stopping {
                // accept4 costs a syscall even when nobody connects (see docs/BENCHMARKS.md,
                // end to end): a busy shard polls the listener every
                // 64 passes (still every few microseconds), an idle one every pass.
                if idle || iterations % ACCEPT_EVERY == 0 {
                    work += self.accept();
                }
                work += self.read_sessions();
            }
            work += self.retry_stalled();
            work += self.drain_rings();
            work += self.run_engine();
            work += self.release();
            work += self.flush_overflow();
            work += self.flush_sessions();
            iterations += 1;
            if iterations % 1024 == 0 || work == 0 {
                self.check_timers();
            }
            if self.stopping && self.quiescent() {
                return;
            }
            idle = work == 0;
            if work > 0 {
                last_work = minstant::Instant::now();
                park = Duration::from_micros(10);
                if iterations % 64 == 0 {
                    glommio::yield_if_needed().await;
                }
            } else if last_work.elapsed() <= spin {
                // Idle but still spinning: let any other runnable thread on this core (a
                // load generator, the control thread, journal helpers on a small host) go
                // first; when nothing else is runnable it returns at once.
                std::thread::yield_now();
            } else {
                // Park with a plain sleep, not glommio's timer: this task is the executor's
                // only one and uses no glommio IO, and a spinning task waiting on glommio's
                // timer wake-up hung executors here (PLATFORM.md pitfall 3; seen again in the
                // demo under load: a shard never woke and SIGTERM could not stop it).
                std::thread::sleep(park);
                park = (park * 2).min(park_max);
            }
        }
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        self.stop_began = Some(minstant::Instant::now());
        self.listener = None;
        // Commands read but stalled on a full ring still count: they will be sent.
        self.shared.stopped_reading.fetch_add(1, Ordering::SeqCst);
    }

    /// Nothing left to do anywhere that could concern this shard.
    fn quiescent(&mut self) -> bool {
        let n = self.shared.in_flight.len();
        if self.shared.stopped_reading.load(Ordering::SeqCst) < n {
            return false;
        }
        let local_idle = self.queue.is_empty()
            && self.held.is_empty()
            && self.overflow.iter().all(|q| q.is_empty())
            && self.stalled_sessions == 0
            && self.links.from.iter().flatten().all(|c| c.is_empty());
        local_idle
            && self
                .shared
                .in_flight
                .iter()
                .all(|c| c.load(Ordering::SeqCst) == 0)
    }

    fn set_in_flight(&mut self, delta: i64) {
        self.in_flight = (self.in_flight as i64 + delta) as u64;
        self.shared.in_flight[self.index].store(self.in_flight, Ordering::SeqCst);
    }

    fn accept(&mut self) -> usize {
        let Some(listener) = &self.listener else {
            return 0;
        };
        let mut accepted = 0;
        while let Ok((stream, peer)) = listener.accept() {
            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                continue;
            }
            let slot = match self.free_slots.pop() {
                Some(s) => s,
                None if self.sessions.len() < u16::MAX as usize => {
                    self.sessions.push((0, None));
                    (self.sessions.len() - 1) as u16
                }
                None => continue, // 65k sessions on one shard: refuse by dropping
            };
            let entry = &mut self.sessions[slot as usize];
            entry.0 = entry.0.wrapping_add(1);
            let me = SessionRef {
                shard: self.index as u16,
                slot,
                generation: entry.0,
            };
            let now = self.shared.now_ns();
            entry.1 = Some(Session::new(
                me,
                stream,
                peer,
                self.shared.config.gateway.max_frame_bytes,
                now,
            ));
            self.metrics.counters.sessions_accepted += 1;
            self.metrics.counters.sessions_open += 1;
            accepted += 1;
        }
        accepted
    }

    fn session(&mut self, to: SessionRef) -> Option<&mut Session> {
        match self.sessions.get_mut(to.slot as usize) {
            Some((generation, Some(s))) if *generation == to.generation => Some(s),
            _ => None,
        }
    }

    /// Send commands that waited for ring room. Runs every iteration, also while stopping:
    /// shutdown waits for every command read to be answered.
    fn retry_stalled(&mut self) -> usize {
        if self.stalled_sessions == 0 {
            return 0;
        }
        let mut work = 0;
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            let Some((dest, msg)) = session.stalled else {
                continue;
            };
            if self.links.to[dest]
                .as_mut()
                .expect("remote")
                .push(msg)
                .is_ok()
            {
                session.stalled = None;
                self.stalled_sessions -= 1;
                work += 1;
            }
        }
        work
    }

    fn drop_session(&mut self, slot: usize) {
        if let Some(mut s) = self.sessions[slot].1.take() {
            // A command read before the disconnect is still executed (and counted in
            // flight): it moves to the ordered overflow of its target.
            if let Some((dest, msg)) = s.stalled.take() {
                self.stalled_sessions -= 1;
                self.overflow[dest].push_back(msg);
            }
            s.close();
            self.free_slots.push(slot as u16);
            self.metrics.counters.sessions_open -= 1;
        }
    }

    fn read_sessions(&mut self) -> usize {
        let mut work = 0;
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            // Backpressure: a session whose command waits for ring room is not read.
            if session.state == State::Closing || session.stalled.is_some() {
                continue;
            }
            // Frames left over when a stall interrupted the last pass come first.
            work += self.handle_frames(slot);
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            if session.state == State::Closing || session.stalled.is_some() {
                continue;
            }
            match session.read(READ_BUDGET) {
                ReadOutcome::Closed => {
                    self.drop_session(slot);
                    work += 1;
                    continue;
                }
                ReadOutcome::Data(0) => {}
                ReadOutcome::Data(n) => {
                    self.metrics.counters.bytes_in += n as u64;
                    work += 1
                }
            }
            work += self.handle_frames(slot);
        }
        work
    }

    /// Decode and act on every complete frame of session `slot`.
    fn handle_frames(&mut self, slot: usize) -> usize {
        let mut handled = 0;
        let limit = self.shared.config.gateway.outbound_limit_bytes;
        let max_bad = self.shared.config.gateway.max_bad_messages;
        loop {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                return handled;
            };
            if session.stalled.is_some() || session.state == State::Closing {
                return handled;
            }
            let account = session.account().unwrap_or(0);
            let now = self.shared.now_ns();
            // Decode into owned values so the frame's borrow ends here.
            let decoded = match session.decoder.next_frame() {
                Ok(None) => return handled,
                Ok(Some(frame)) => match decode_client(frame, account) {
                    Ok(ClientMessage::Logon(l)) => Ok(Inbound::Logon(
                        l.account,
                        self.shared.auth.logon(l.account, l.token.as_bytes()),
                    )),
                    Ok(ClientMessage::Logout(_)) => Ok(Inbound::Logout),
                    Ok(ClientMessage::Heartbeat(_)) => Ok(Inbound::Heartbeat),
                    Ok(ClientMessage::Order(cmd)) => Ok(Inbound::Order(cmd)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            handled += 1;
            session.last_in = now;
            match decoded {
                Err(e) => {
                    session.bad_messages += 1;
                    let fatal = e.is_fatal() || session.bad_messages > max_bad;
                    if fatal {
                        let text = format!("{e}");
                        session.logout(&mut self.encoder, LogoutReason::ProtocolViolation, &text);
                        return handled;
                    }
                    let reject = Event::Rejected {
                        account,
                        client_order_id: e.client_order_id().unwrap_or(0),
                        symbol: 0,
                        order_id: 0,
                        reason: e.reject_reason(),
                    };
                    let me = session.me;
                    self.metrics.counters.reject(e.reject_reason());
                    self.deliver_local(me, 0, 0, Part::All, 0, &reject);
                }
                Ok(Inbound::Logon(claimed, result)) => match (session.state, result) {
                    (State::AwaitingLogon, LogonResult::Ok { account, stp }) => {
                        session.state = State::Active { account, stp };
                        let instruments = self.shared.config.instruments();
                        let ack = LogonAck {
                            session_id: session.me.id(),
                            heartbeat_interval_ms: self.shared.config.gateway.heartbeat_ms as u32,
                            instruments: instruments.iter().map(Into::into).collect(),
                        };
                        let frame = self.encoder.logon_ack(&ack);
                        session.queue(frame, limit);
                        session.last_out = now;
                    }
                    (State::AwaitingLogon, LogonResult::Denied) => {
                        self.metrics.counters.logons_refused += 1;
                        eprintln!(
                            "veloz: shard {}: logon refused for account {claimed} from {}",
                            self.index, session.peer
                        );
                        session.logout(
                            &mut self.encoder,
                            LogoutReason::AuthenticationFailed,
                            "unknown account or wrong token",
                        );
                        return handled;
                    }
                    _ => {
                        session.logout(
                            &mut self.encoder,
                            LogoutReason::AlreadyLoggedOn,
                            "second logon",
                        );
                        return handled;
                    }
                },
                Ok(Inbound::Logout) => {
                    session.logout(&mut self.encoder, LogoutReason::Requested, "");
                    return handled;
                }
                Ok(Inbound::Heartbeat) => {}
                Ok(Inbound::Order(cmd)) => {
                    let State::Active { stp, .. } = session.state else {
                        // Rejected with a reason; repeated, it ends the session like garbage.
                        session.bad_messages += 1;
                        if session.bad_messages > max_bad {
                            session.logout(
                                &mut self.encoder,
                                LogoutReason::ProtocolViolation,
                                "orders before logon",
                            );
                            return handled;
                        }
                        let me = session.me;
                        self.reject_locally(
                            me,
                            &cmd,
                            cmd.symbol().unwrap_or(0),
                            RejectReason::NotLoggedOn,
                        );
                        continue;
                    };
                    let cmd = match cmd {
                        Command::New(mut o) if o.stp == veloz_core::SelfTradePrevention::Allow => {
                            o.stp = stp;
                            Command::New(o)
                        }
                        other => other,
                    };
                    let me = session.me;
                    self.route_command(me, now, cmd);
                }
            }
        }
    }

    /// Send a command from a local session to its owning shard(s).
    fn route_command(&mut self, from: SessionRef, ingress: u64, cmd: Command) {
        let n = self.shared.in_flight.len();
        // The owning shard, or every shard: a range, so routing allocates nothing.
        let targets = match cmd.symbol() {
            Some(symbol) => match self.shared.routing.shard_of(symbol) {
                Some(s) => s..s + 1,
                None => {
                    self.reject_locally(from, &cmd, symbol, RejectReason::UnknownSymbol);
                    return;
                }
            },
            // A mass cancel over all symbols goes to every shard; the session adds up the
            // answers into one report.
            None => {
                if let Some(s) = self.session(from) {
                    s.pending_mass.push((cmd.client_order_id(), n, 0));
                }
                0..n
            }
        };
        for target in targets {
            if target == self.index {
                self.queue.push_back((from, ingress, cmd));
                continue;
            }
            self.set_in_flight(1);
            let msg = ShardMsg::Command { from, ingress, cmd };
            if let Err(rtrb::PushError::Full(msg)) =
                self.links.to[target].as_mut().expect("remote").push(msg)
            {
                self.metrics.counters.ring_full += 1;
                match self.session(from) {
                    // The session holds the command and is not read until it is sent.
                    Some(s) if s.stalled.is_none() => {
                        s.stalled = Some((target, msg));
                        self.stalled_sessions += 1;
                    }
                    // Already holding one (another target of a fan-out): keep this one in
                    // the ordered overflow for its target instead.
                    _ => self.overflow[target].push_back(msg),
                }
            }
        }
    }

    fn reject_locally(
        &mut self,
        from: SessionRef,
        cmd: &Command,
        symbol: SymbolId,
        reason: RejectReason,
    ) {
        let order_id = match cmd {
            Command::Cancel(c) => c.order_id,
            Command::Replace(r) => r.order_id,
            _ => 0,
        };
        let event = Event::Rejected {
            account: cmd.account(),
            client_order_id: cmd.client_order_id(),
            symbol,
            order_id,
            reason,
        };
        self.metrics.counters.reject(reason);
        self.deliver_local(from, 0, 0, Part::All, 0, &event);
    }

    fn drain_rings(&mut self) -> usize {
        let mut work = 0;
        for j in 0..self.links.from.len() {
            for _ in 0..RING_BATCH {
                let Some(consumer) = self.links.from[j].as_mut() else {
                    break;
                };
                let Ok(msg) = consumer.pop() else {
                    break;
                };
                work += 1;
                match msg {
                    ShardMsg::Command { from, ingress, cmd } => {
                        let hop = self.shared.now_ns().saturating_sub(ingress);
                        self.metrics.record(Latency::RingHop, hop);
                        self.queue.push_back((from, ingress, cmd))
                    }
                    ShardMsg::Deliver(d) => {
                        self.deliver_local(d.to, d.seq, d.ts, d.part, d.ingress, &d.event)
                    }
                    ShardMsg::Done => self.set_in_flight(-1),
                }
            }
        }
        work
    }

    /// Sequence, journal and apply the queued commands (at most `batch_max`).
    fn run_engine(&mut self) -> usize {
        let max = self.shared.config.engine.batch_max;
        let mut done = 0;
        while done < max {
            let Some((from, ingress, cmd)) = self.queue.pop_front() else {
                break;
            };
            let t0 = minstant::Instant::now();
            let ts = t0.as_unix_nanos(&self.anchor);
            // Write-ahead: the journal assigns the sequence number before the book moves.
            let seq = match self.journal.append(ts, &cmd) {
                Ok(seq) => seq,
                Err(e) => {
                    // A journal that cannot take a record must not let the book move: the
                    // command is not applied and the process stops; recovery restores what
                    // was journaled.
                    eprintln!(
                        "veloz: shard {}: FATAL: journal append after sequence {} failed: {e}; stopping",
                        self.index, self.seq
                    );
                    std::process::exit(70);
                }
            };
            self.seq = seq;
            let t1 = minstant::Instant::now();
            self.events.clear();
            self.engine.apply(seq, ts, &cmd, &mut self.events);
            let t2 = minstant::Instant::now();
            self.metrics
                .record(Latency::JournalAppend, (t1 - t0).as_nanos() as u64);
            self.metrics
                .record(Latency::Matching, (t2 - t1).as_nanos() as u64);
            self.metrics.counters.commands[match cmd {
                Command::New(_) => 0,
                Command::Cancel(_) => 1,
                Command::Replace(_) => 2,
                Command::MassCancel(_) => 3,
            }] += 1;
            self.appended_at = self.shared.now_ns();
            self.pending_ingress = ingress;
            for i in 0..self.events.len() {
                let event = self.events[i];
                self.route_event(from, seq, ts, &event);
            }
            if from.shard as usize != self.index && from != SessionRef::NONE {
                self.hold(seq, Outbound::Done { shard: from.shard });
            }
            done += 1;
        }
        done
    }

    fn hold(&mut self, seq: Seq, out: Outbound) {
        self.held.push_back((seq, self.appended_at, out));
    }

    fn deliver(&mut self, to: SessionRef, seq: Seq, ts: Timestamp, part: Part, event: Event) {
        if to == SessionRef::NONE {
            self.metrics.counters.undeliverable_reports += 1;
            return;
        }
        self.hold(
            seq,
            Outbound::Deliver(Delivery {
                to,
                seq,
                ts,
                part,
                ingress: 0,
                event,
            }),
        );
    }

    /// Deliver to the command's own session; its first report carries the ingress time so
    /// the session's shard can record ingress-to-ack.
    fn deliver_origin(
        &mut self,
        origin: SessionRef,
        seq: Seq,
        ts: Timestamp,
        part: Part,
        event: Event,
    ) {
        if origin == SessionRef::NONE {
            self.metrics.counters.undeliverable_reports += 1;
            return;
        }
        let ingress = std::mem::take(&mut self.pending_ingress);
        self.hold(
            seq,
            Outbound::Deliver(Delivery {
                to: origin,
                seq,
                ts,
                part,
                ingress,
                event,
            }),
        );
    }

    /// Decide who hears about `event` and keep the order-owner map current.
    fn route_event(&mut self, origin: SessionRef, seq: Seq, ts: Timestamp, event: &Event) {
        match *event {
            Event::Accepted { order_id, .. } => {
                self.owners.insert(order_id, origin);
                self.deliver_origin(origin, seq, ts, Part::All, *event);
            }
            Event::Trade { maker, taker, .. } => {
                self.metrics.counters.trades += 1;
                let maker_session = self
                    .owners
                    .get(&maker.order_id)
                    .copied()
                    .unwrap_or(SessionRef::NONE);
                if maker.leaves_qty == 0 {
                    self.owners.remove(&maker.order_id);
                }
                if taker.leaves_qty == 0 {
                    self.owners.remove(&taker.order_id);
                }
                self.deliver(maker_session, seq, ts, Part::Maker, *event);
                self.deliver_origin(origin, seq, ts, Part::Taker, *event);
            }
            Event::Cancelled { order_id, .. } => {
                let owner = self.owners.remove(&order_id).unwrap_or(SessionRef::NONE);
                if owner != origin && owner != SessionRef::NONE {
                    self.deliver(owner, seq, ts, Part::All, *event);
                }
                self.deliver_origin(origin, seq, ts, Part::All, *event);
            }
            Event::Replaced { order_id, .. } => {
                let owner = self
                    .owners
                    .get(&order_id)
                    .copied()
                    .unwrap_or(SessionRef::NONE);
                if owner != origin && owner != SessionRef::NONE {
                    self.deliver(owner, seq, ts, Part::All, *event);
                }
                self.deliver_origin(origin, seq, ts, Part::All, *event);
            }
            Event::Rejected { reason, .. } => {
                self.metrics.counters.reject(reason);
                self.deliver_origin(origin, seq, ts, Part::All, *event);
            }
            Event::MassCancelled { .. } => {
                self.deliver_origin(origin, seq, ts, Part::All, *event);
            }
        }
    }

    /// Release held output whose journal range is durable.
    fn release(&mut self) -> usize {
        let durable = self.journal.durable_seq();
        if durable > self.durable_seen && durable != Seq::MAX {
            self.durable_seen = durable;
            self.metrics.counters.journal_syncs += 1;
        }
        let mut work = 0;
        let mut last_seq = 0;
        while let Some(&(seq, appended_at, out)) = self.held.front() {
            if seq > durable {
                break;
            }
            self.held.pop_front();
            work += 1;
            if seq != last_seq {
                last_seq = seq;
                let waited = self.shared.now_ns().saturating_sub(appended_at);
                self.metrics.record(Latency::CommitWait, waited);
            }
            match out {
                Outbound::Deliver(d) if d.to.shard as usize == self.index => {
                    self.deliver_local(d.to, d.seq, d.ts, d.part, d.ingress, &d.event)
                }
                Outbound::Deliver(d) => self.send(d.to.shard as usize, ShardMsg::Deliver(d)),
                Outbound::Done { shard } => self.send(shard as usize, ShardMsg::Done),
            }
        }
        work
    }

    /// Push to another shard's ring, in order behind anything already waiting.
    fn send(&mut self, dest: usize, msg: ShardMsg) {
        if !self.overflow[dest].is_empty() {
            self.overflow[dest].push_back(msg);
        } else if let Err(rtrb::PushError::Full(msg)) =
            self.links.to[dest].as_mut().expect("remote").push(msg)
        {
            self.metrics.counters.ring_full += 1;
            self.overflow[dest].push_back(msg);
        }
    }

    fn flush_overflow(&mut self) -> usize {
        let mut work = 0;
        for dest in 0..self.overflow.len() {
            while let Some(&msg) = self.overflow[dest].front() {
                if self.links.to[dest]
                    .as_mut()
                    .expect("remote")
                    .push(msg)
                    .is_err()
                {
                    break;
                }
                self.overflow[dest].pop_front();
                work += 1;
            }
        }
        work
    }

    /// Encode `event`'s report(s) for session `to` on this shard and queue them.
    fn deliver_local(
        &mut self,
        to: SessionRef,
        seq: Seq,
        ts: Timestamp,
        part: Part,
        ingress: u64,
        event: &Event,
    ) {
        let limit = self.shared.config.gateway.outbound_limit_bytes;
        let now = self.shared.now_ns();
        if ingress != 0 {
            self.metrics
                .record(Latency::IngressToAck, now.saturating_sub(ingress));
        }
        let Some((generation, Some(session))) = self.sessions.get_mut(to.slot as usize) else {
            self.metrics.counters.undeliverable_reports += 1;
            return;
        };
        if *generation != to.generation || session.state == State::Closing {
            self.metrics.counters.undeliverable_reports += 1;
            return;
        }
        let mut event = *event;
        // Mass cancel over all symbols: one report when every shard has answered.
        if let Event::MassCancelled {
            client_order_id,
            symbol: None,
            count,
            ..
        } = &mut event
        {
            if let Some(i) = session
                .pending_mass
                .iter()
                .position(|p| p.0 == *client_order_id)
            {
                let entry = &mut session.pending_mass[i];
                entry.1 -= 1;
                entry.2 += *count;
                if entry.1 > 0 {
                    return;
                }
                *count = entry.2;
                session.pending_mass.swap_remove(i);
            }
        }
        let mut ok = true;
        let mut index = 0;
        self.encoder.event(&event, seq, ts, |_account, frame| {
            let wanted = match part {
                Part::All => true,
                Part::Maker => index == 0,
                Part::Taker => index == 1,
            };
            index += 1;
            if wanted {
                ok &= session.queue(frame, limit);
            }
        });
        session.last_out = now;
        if !ok {
            self.metrics.counters.slow_consumers += 1;
            eprintln!(
                "veloz: shard {}: session {} ({}) disconnected: slow consumer, {} bytes unread",
                self.index,
                session.me.id(),
                session.peer,
                session.pending_out()
            );
            session.abort(
                &mut self.encoder,
                LogoutReason::SlowConsumer,
                "outbound buffer limit reached",
            );
        }
    }

    fn flush_sessions(&mut self) -> usize {
        let mut work = 0;
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            if session.pending_out() == 0 {
                if session.state == State::Closing {
                    self.drop_session(slot);
                }
                continue;
            }
            match session.flush() {
                Ok(0) => {}
                Ok(n) => {
                    self.metrics.counters.bytes_out += n as u64;
                    work += 1
                }
                Err(_) => {
                    self.drop_session(slot);
                    work += 1;
                    continue;
                }
            }
            let session = self.sessions[slot].1.as_ref().expect("present");
            if session.state == State::Closing && session.pending_out() == 0 {
                self.drop_session(slot);
            }
        }
        work
    }

    fn check_timers(&mut self) {
        let g = &self.shared.config.gateway;
        let ms = 1_000_000;
        let (logon_ns, hb_ns, idle_ns) = (
            g.logon_timeout_ms * ms,
            g.heartbeat_ms * ms,
            g.idle_timeout_ms * ms,
        );
        let limit = g.outbound_limit_bytes;
        let now = self.shared.now_ns();
        let wall = minstant::Instant::now().as_unix_nanos(&self.anchor);
        let mut expired = Vec::new();
        for (slot, (_, entry)) in self.sessions.iter_mut().enumerate() {
            let Some(session) = entry.as_mut() else {
                continue;
            };
            match session.state {
                State::AwaitingLogon if now.saturating_sub(session.connected_at) > logon_ns => {
                    session.logout(
                        &mut self.encoder,
                        LogoutReason::ProtocolViolation,
                        "no logon in time",
                    );
                }
                State::Active { .. } if now.saturating_sub(session.last_in) > idle_ns => {
                    session.logout(
                        &mut self.encoder,
                        LogoutReason::HeartbeatTimeout,
                        "no message in time",
                    );
                }
                State::Active { .. } if now.saturating_sub(session.last_out) > hb_ns => {
                    let frame = self.encoder.heartbeat(wall);
                    session.queue(frame, limit);
                    session.last_out = now;
                }
                // A closing session whose peer does not take its last frames goes anyway.
                State::Closing if session.closing_since == 0 => session.closing_since = now,
                State::Closing if now - session.closing_since > CLOSE_GRACE_NS => {
                    expired.push(slot)
                }
                _ => {}
            }
        }
        for slot in expired {
            self.drop_session(slot);
        }
        let interval_ns = self.shared.config.metrics.interval_ms * 1_000_000;
        if now.saturating_sub(self.metrics.interval_start_ns()) >= interval_ns {
            self.send_snapshot(now);
        }
    }

    /// Send the interval's metrics to the control thread (dropped, and counted, if its ring
    /// is full: the control thread is behind, the shard never waits for it).
    fn send_snapshot(&mut self, now: u64) {
        self.metrics.counters.journal_records = self.journal.stats().records;
        self.metrics.counters.journal_bytes = self.journal.stats().bytes;
        let snapshot = self.metrics.snapshot(now);
        let _ = self.links.control.push(ControlMsg::Snapshot(snapshot));
    }

    /// After quiescence: checkpoint and sync the journal, say goodbye to the sessions.
    fn finish(mut self) -> Result<ShardReport, ShardError> {
        let state_hash = self.engine.state_hash();
        let drained = minstant::Instant::now();
        let ts = drained.as_unix_nanos(&self.anchor);
        self.seq = self
            .journal
            .checkpoint_and_close(ts, state_hash)
            .map_err(|e| ShardError::Journal {
                shard: self.index,
                detail: e.to_string(),
            })?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "veloz: shard {}: stop: drained in {:.1} ms, journal checkpointed and closed in {:.1} ms",
            self.index,
            self.stop_began.map_or(0.0, |t| ms(drained - t)),
            ms(drained.elapsed())
        );
        for (_, entry) in self.sessions.iter_mut() {
            if let Some(s) = entry.as_mut() {
                s.logout(
                    &mut self.encoder,
                    LogoutReason::EngineShutdown,
                    "engine shutting down",
                );
            }
        }
        let deadline = minstant::Instant::now() + FINAL_FLUSH;
        while self.sessions.iter().any(|(_, s)| s.is_some()) && minstant::Instant::now() < deadline
        {
            self.flush_sessions();
            std::thread::sleep(Duration::from_micros(200));
        }
        for slot in 0..self.sessions.len() {
            self.drop_session(slot);
        }
        let now = self.shared.now_ns();
        self.send_snapshot(now);
        let _ = self.links.control.push(ControlMsg::Stopped {
            shard: self.index as u16,
            last_seq: self.seq,
            state_hash,
        });
        eprintln!(
            "veloz: shard {}: stopped at sequence {}, state hash {state_hash:016x} (ring-full events {}, slow consumers {}, undeliverable reports {})",
            self.index,
            self.seq,
            self.metrics.counters.ring_full,
            self.metrics.counters.slow_consumers,
            self.metrics.counters.undeliverable_reports
        );
        Ok(ShardReport {
            shard: self.index,
            last_seq: self.seq,
            state_hash,
        })
    }
}

/// A decoded client frame, owned (the token is already checked and gone).
enum Inbound {
    Logon(veloz_core::AccountId, LogonResult),
    Logout,
    Heartbeat,
    Order(Command),
}

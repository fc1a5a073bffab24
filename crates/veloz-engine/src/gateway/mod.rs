//! The gateway: the client sessions of one shard, their framing, logon, heartbeats and
//! timers, and their outbound buffers.
//!
//! The shard loop calls it and it hands results back by value:
//! - [`Gateway::read`] reads the sessions and returns, one at a time, each order a session
//!   sent ([`Routed`]: the command with its session and ingress time, and the shards that
//!   own it), answering everything else itself (logon, heartbeats, bad frames, unknown
//!   symbols);
//! - [`Gateway::deliver`] writes one [`Delivery`] (execution reports) to its session's
//!   outbound buffer, [`Gateway::flush`] writes the buffers to the streams;
//! - [`Gateway::stall`] parks a command its ring had no room for on its session, which is
//!   not read again until [`Gateway::resend_stalled`] got the command out (backpressure:
//!   nothing is dropped). A stalled command of a session that goes away is handed back by
//!   [`Gateway::take_orphans`] (it is still executed).
//!
//! Invariants:
//! - a session is read only while it is not closing and holds no stalled command; frames
//!   are handled in the order they arrived, so a session's commands leave in order;
//! - per session, reports are buffered in the order they are delivered, and the buffer
//!   never holds more than `outbound_limit_bytes`: a session that lets more pile up is
//!   disconnected as a slow consumer, the shard never waits for it;
//! - a [`SessionRef`] names a slot and its generation: a delivery for a session that has
//!   gone (or whose slot was reused) is dropped (the report stays in its account's stream);
//! - a session that logs on is subscribed to its account's stream on every shard, and
//!   unsubscribed when it is dropped ([`Gateway::take_changes`]);
//! - nothing allocates per message: buffers are reused, routing is a range of shards.
//!
//! Logging (target `veloz::gateway`): a refused logon, a bad frame or a slow consumer is
//! logged in full when it opens a burst of its kind; the rest of the burst is summarised
//! per source address once per `log.summary_interval_ms` (module `repeats`), and logged one
//! by one only at `debug`. Tokens are checked and dropped in the session; none is logged.
//!
//! Generic over the [`Stream`] the sessions run on (TCP in production; tests use Unix
//! stream pairs), with static dispatch.

pub(crate) mod balances;
pub(crate) mod fix;
mod repeats;
mod requests;
mod session;
pub mod throttle;

use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Arc;

use veloz_core::{Command, Event, RejectReason, SelfTradePrevention, SymbolId};
use veloz_wire::{FrameEncoder, LogonAck, LogoutReason};

use crate::auth::LogonResult;
use crate::io::{Clock, Stream};
use crate::mesh::{Delivery, Inbound, QueryMsg, SessionRef, ShardMsg};
use crate::metrics::{Latency, ShardMetrics};
use crate::shared::Shared;

use repeats::{Repeat, Repeats};
pub use requests::StreamChange;
use session::{ClientFrame, ReadOutcome, Timers};
pub use session::{Session, State};
use throttle::Admission;
use veloz_report::grouped;

/// Bytes a session may read per pass (fairness).
const READ_BUDGET: usize = 64 * 1024;

/// A command a session sent, with the shards that own it.
#[derive(Debug)]
pub struct Routed {
    pub inbound: Inbound,
    /// The owning shard, or every shard (a mass cancel over all symbols).
    pub targets: Range<usize>,
}

/// One step of a read pass.
#[derive(Debug)]
pub enum ReadStep {
    /// A session sent this command; call [`Gateway::read`] again for the next.
    Command(Routed),
    /// Every session was read; `work` counts reads, frames and closes.
    End { work: usize },
}

/// Where a read pass is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Frames left over from the last pass (a stall interrupted it).
    Leftover,
    /// Read the stream.
    Read,
    /// Frames just read.
    Fresh,
}

/// The gateway's settings, from `[gateway]`.
#[derive(Clone, Copy, Debug)]
struct Settings {
    outbound_limit: usize,
    max_bad: u32,
    max_frame: u32,
    heartbeat_ms: u32,
    timers: Timers,
}

/// The sessions of one shard.
#[derive(Debug)]
pub struct Gateway<T: Stream = TcpStream> {
    shard: usize,
    shared: Arc<Shared>,
    clock: Clock,
    settings: Settings,
    /// Session slab: slot -> (generation, session).
    sessions: Vec<(u32, Option<Session<T>>)>,
    free_slots: Vec<u16>,
    encoder: FrameEncoder,
    /// The read pass: slot, phase, work so far.
    cursor: (usize, Phase, usize),
    /// Sessions holding a stalled command.
    stalled: usize,
    /// Stalled commands of sessions that went away: (destination shard, message).
    orphans: Vec<(usize, ShardMsg)>,
    /// Bursts of repeated events, summarised in the log.
    repeats: Repeats,
    /// Logons and ends of logged-on sessions not yet told to the dispatchers.
    changes: Vec<StreamChange>,
    /// Queries read and not yet taken by the shard, with their target shard.
    queries: Vec<(QueryMsg, usize)>,
    /// The engine is stopping: sessions are still read, but orders and queries are
    /// rejected `EngineShuttingDown` and logons refused.
    stopping: bool,
    /// The configured assets, ascending by id, as balance reports name them.
    assets: Vec<veloz_core::Asset>,
}

impl<T: Stream> Gateway<T> {
    /// The gateway of `shard`, with the settings of `shared.config.gateway`.
    pub fn new(shard: usize, shared: Arc<Shared>, clock: Clock) -> Gateway<T> {
        let g = &shared.config.gateway;
        let ms = 1_000_000;
        let settings = Settings {
            outbound_limit: g.outbound_limit_bytes,
            max_bad: g.max_bad_messages,
            max_frame: g.max_frame_bytes,
            heartbeat_ms: g.heartbeat_ms as u32,
            timers: Timers {
                logon_ns: g.logon_timeout_ms * ms,
                heartbeat_ns: g.heartbeat_ms * ms,
                idle_ns: g.idle_timeout_ms * ms,
            },
        };
        let repeats = Repeats::new(shared.config.log.summary_interval_ms * ms);
        Gateway {
            shard,
            clock,
            settings,
            sessions: Vec::new(),
            free_slots: Vec::new(),
            encoder: FrameEncoder::new(),
            cursor: (0, Phase::Leftover, 0),
            stalled: 0,
            orphans: Vec::new(),
            repeats,
            changes: Vec::new(),
            queries: Vec::new(),
            stopping: false,
            assets: balances::assets(&shared.config),
            shared,
        }
    }

    /// The engine is stopping: from now on orders and queries are answered
    /// `EngineShuttingDown` at once (nothing new reaches a shard) and logons are refused.
    pub fn refuse_new_work(&mut self) {
        self.stopping = true;
    }

    /// Take a new connection. Returns its reference, or `None` when the shard has no free
    /// slot (65k sessions) or the logon limiter refuses the address (backed off after
    /// failed logons, or too many of its connections not logged on yet): the stream is
    /// dropped unread.
    pub fn open(
        &mut self,
        stream: T,
        peer: SocketAddr,
        metrics: &mut ShardMetrics,
    ) -> Option<SessionRef> {
        self.open_with(stream, peer, None, metrics)
    }

    /// Take a new FIX 4.4 connection (see [`Gateway::open`]); `None` also when FIX is off.
    pub fn open_fix(
        &mut self,
        stream: T,
        peer: SocketAddr,
        metrics: &mut ShardMetrics,
    ) -> Option<SessionRef> {
        let shared = self.shared.fix.clone()?;
        let fix = Box::new(fix::FixSession::new(shared, self.clock.now_ns()));
        self.open_with(stream, peer, Some(fix), metrics)
    }

    fn open_with(
        &mut self,
        stream: T,
        peer: SocketAddr,
        fix: Option<Box<fix::FixSession>>,
        metrics: &mut ShardMetrics,
    ) -> Option<SessionRef> {
        let now = self.clock.now_ns();
        let throttles = &self.shared.throttles;
        let why = match throttles.admit(peer.ip(), now) {
            Admission::Open => None,
            Admission::BackedOff => {
                metrics.counters.connections_backed_off += 1;
                Some("its address is in logon back-off")
            }
            Admission::TooManyPending => {
                metrics.counters.connections_over_pending_limit += 1;
                Some("too many connections from its address not logged on")
            }
        };
        if let Some(why) = why {
            drop(stream);
            if self.repeats.note(Repeat::RefusedLogon, peer.ip(), now) {
                tracing::warn!(target: "veloz::gateway", shard = self.shard, %peer, "connection from {peer} closed at accept: {why}");
            } else {
                tracing::debug!(target: "veloz::gateway", shard = self.shard, %peer, "connection from {peer} closed at accept: {why}");
            }
            return None;
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None if self.sessions.len() < u16::MAX as usize => {
                self.sessions.push((0, None));
                (self.sessions.len() - 1) as u16
            }
            None => {
                throttles.closed_before_logon(peer.ip());
                return None;
            }
        };
        let entry = &mut self.sessions[slot as usize];
        entry.0 = entry.0.wrapping_add(1);
        let me = SessionRef {
            shard: self.shard as u16,
            slot,
            generation: entry.0,
        };
        let throttles = Arc::clone(&self.shared.throttles);
        entry.1 = Some(Session::new(
            me,
            stream,
            peer,
            self.settings.max_frame,
            now,
            throttles,
            fix,
        ));
        metrics.counters.sessions_accepted += 1;
        metrics.counters.sessions_open += 1;
        Some(me)
    }

    /// The session `to` refers to, while it is there.
    pub fn session(&self, to: SessionRef) -> Option<&Session<T>> {
        match self.sessions.get(to.slot as usize) {
            Some((generation, Some(s))) if *generation == to.generation => Some(s),
            _ => None,
        }
    }

    fn session_mut(&mut self, to: SessionRef) -> Option<&mut Session<T>> {
        match self.sessions.get_mut(to.slot as usize) {
            Some((generation, Some(s))) if *generation == to.generation => Some(s),
            _ => None,
        }
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions.iter().filter(|(_, s)| s.is_some()).count()
    }

    /// Whether session `slot` may be read now.
    fn readable(&self, slot: usize) -> bool {
        matches!(&self.sessions[slot].1, Some(s) if !s.is_closing() && !s.is_stalled())
    }

    /// The next step of the read pass: the next command a session sent, or the end of the
    /// pass. Each session's leftover frames are handled first, then its stream is read (up
    /// to a budget) and the new frames handled.
    pub fn read(&mut self, metrics: &mut ShardMetrics) -> ReadStep {
        while self.cursor.0 < self.sessions.len() {
            let slot = self.cursor.0;
            match self.cursor.1 {
                Phase::Leftover | Phase::Read if !self.readable(slot) => {
                    self.cursor.0 += 1;
                    self.cursor.1 = Phase::Leftover;
                }
                Phase::Leftover => {
                    if let Some(routed) = self.frames(slot, metrics) {
                        return ReadStep::Command(routed);
                    }
                    self.cursor.1 = Phase::Read;
                }
                Phase::Read => {
                    let session = self.sessions[slot].1.as_mut().expect("readable");
                    match session.read(READ_BUDGET) {
                        ReadOutcome::Closed => {
                            self.drop_session(slot, metrics);
                            self.cursor.2 += 1;
                            self.cursor.0 += 1;
                            self.cursor.1 = Phase::Leftover;
                            continue;
                        }
                        ReadOutcome::Data(0) => {}
                        ReadOutcome::Data(n) => {
                            metrics.counters.bytes_in += n as u64;
                            self.cursor.2 += 1;
                        }
                    }
                    self.cursor.1 = Phase::Fresh;
                }
                Phase::Fresh => {
                    if let Some(routed) = self.frames(slot, metrics) {
                        return ReadStep::Command(routed);
                    }
                    self.cursor.0 += 1;
                    self.cursor.1 = Phase::Leftover;
                }
            }
        }
        let work = self.cursor.2;
        self.cursor = (0, Phase::Leftover, 0);
        ReadStep::End { work }
    }

    /// Decode and act on the complete frames of session `slot` until one is an order for
    /// a shard (returned) or none is left.
    fn frames(&mut self, slot: usize, metrics: &mut ShardMetrics) -> Option<Routed> {
        let Settings {
            outbound_limit,
            max_bad,
            heartbeat_ms,
            ..
        } = self.settings;
        loop {
            let session = self.sessions[slot].1.as_mut()?;
            if session.is_stalled() || session.is_closing() {
                return None;
            }
            let account = session.account().unwrap_or(0);
            let now = self.clock.now_ns();
            let frame = session.next_frame(now, &self.shared.auth)?;
            self.cursor.2 += 1;
            let me = session.me();
            match frame {
                Err(e) => {
                    let fatal = e.is_fatal() || session.bad_message() > max_bad;
                    let peer = session.peer();
                    let id = me.id();
                    let closing = if fatal { "; session logged out" } else { "" };
                    if self.repeats.note(Repeat::BadFrame, peer.ip(), now) {
                        tracing::warn!(target: "veloz::gateway", shard = self.shard, session = id, %peer, account, error = %e, "bad frame from session {id} ({peer}): {e}{closing}");
                    } else {
                        tracing::debug!(target: "veloz::gateway", shard = self.shard, session = id, %peer, account, error = %e, "bad frame from session {id} ({peer}): {e}{closing}");
                    }
                    // Every bad frame is answered with its reject (and counted), also the
                    // one that ends the session: the client learns what it was
                    // (`FrameTooLarge`, the last `MalformedMessage` allowed) before the
                    // Logout.
                    let reject = Event::Rejected {
                        account,
                        client_order_id: e.client_order_id().unwrap_or(0),
                        symbol: 0,
                        order_id: 0,
                        reason: e.reject_reason(),
                    };
                    metrics.counters.reject(e.reject_reason());
                    self.deliver(&Delivery::immediate(me, reject), metrics);
                    if fatal {
                        let text = format!("{e}");
                        if let Some(session) = self.sessions[slot].1.as_mut() {
                            session.logout(
                                &mut self.encoder,
                                LogoutReason::ProtocolViolation,
                                &text,
                            );
                        }
                        return None;
                    }
                }
                Ok(ClientFrame::Logon(claimed, result, resume_after, cod)) => {
                    match (session.state(), result) {
                        (
                            State::AwaitingLogon,
                            LogonResult::Ok {
                                account,
                                stp,
                                cancel_on_disconnect,
                            },
                        ) => {
                            if self.stopping {
                                session.logout(
                                    &mut self.encoder,
                                    LogoutReason::EngineShutdown,
                                    "engine shutting down",
                                );
                                return None;
                            }
                            let cancel_on_disconnect = cod.unwrap_or(cancel_on_disconnect);
                            session.log_on(account, stp, cancel_on_disconnect);
                            self.shared.session_started(account, cancel_on_disconnect);
                            let instruments = self.shared.config.instruments();
                            let ack = LogonAck {
                                session_id: me.id(),
                                heartbeat_interval_ms: heartbeat_ms,
                                instruments: instruments.iter().map(Into::into).collect(),
                                streams: self.shared.shards() as u16,
                            };
                            session.logon_ack(&mut self.encoder, &ack, outbound_limit, now);
                            // Subscribed on every shard before any of its commands leaves.
                            self.changes.push(StreamChange::Subscribe {
                                session: me,
                                account,
                                resume_after,
                            });
                        }
                        (State::AwaitingLogon, LogonResult::Denied) => {
                            metrics.counters.logons_refused += 1;
                            let peer = session.peer();
                            // Refused by a back-off, the token not checked: the client is told
                            // the same (it learns nothing about the token).
                            let backed_off = session.logon_backed_off();
                            metrics.counters.logons_backed_off += backed_off as u64;
                            let how = if backed_off { " (back-off)" } else { "" };
                            if self.repeats.note(Repeat::RefusedLogon, peer.ip(), now) {
                                tracing::warn!(target: "veloz::gateway", shard = self.shard, account = claimed, %peer, backed_off, "logon refused for account {claimed} from {peer}{how}");
                            } else {
                                tracing::debug!(target: "veloz::gateway", shard = self.shard, account = claimed, %peer, backed_off, "logon refused for account {claimed} from {peer}{how}");
                            }
                            session.logout(
                                &mut self.encoder,
                                LogoutReason::AuthenticationFailed,
                                "unknown account or wrong token",
                            );
                            return None;
                        }
                        _ => {
                            session.logout(
                                &mut self.encoder,
                                LogoutReason::AlreadyLoggedOn,
                                "second logon",
                            );
                            return None;
                        }
                    }
                }
                Ok(ClientFrame::Logout) => {
                    session.logout(&mut self.encoder, LogoutReason::Requested, "");
                    return None;
                }
                Ok(ClientFrame::Heartbeat) => {}
                Ok(ClientFrame::Query(query)) => self.route_query(slot, me, query, metrics),
                Ok(ClientFrame::Order(cmd)) => {
                    let State::Active { stp, .. } = session.state() else {
                        // Rejected with a reason; repeated, it ends the session like garbage.
                        if session.bad_message() > max_bad {
                            session.logout(
                                &mut self.encoder,
                                LogoutReason::ProtocolViolation,
                                "orders before logon",
                            );
                            return None;
                        }
                        let symbol = cmd.symbol().unwrap_or(0);
                        self.reject(me, &cmd, symbol, RejectReason::NotLoggedOn, metrics);
                        continue;
                    };
                    // The engine is stopping: nothing new reaches a shard.
                    if self.stopping {
                        let symbol = cmd.symbol().unwrap_or(0);
                        let reason = RejectReason::EngineShuttingDown;
                        self.reject(me, &cmd, symbol, reason, metrics);
                        continue;
                    }
                    // Over the session's rate: answered at once, never reaches a shard.
                    if !session.take_order(now) {
                        let symbol = cmd.symbol().unwrap_or(0);
                        self.reject(me, &cmd, symbol, RejectReason::Throttled, metrics);
                        continue;
                    }
                    let cmd = match cmd {
                        Command::New(mut o) if o.stp == SelfTradePrevention::Allow => {
                            o.stp = stp;
                            Command::New(o)
                        }
                        other => other,
                    };
                    if let Some(routed) = self.route(me, now, cmd, metrics) {
                        return Some(routed);
                    }
                }
            }
        }
    }

    /// The shards that own `cmd`: its instrument's, or every shard for a mass cancel over
    /// all symbols (each shard answers with its own MassCancelled, in its stream). A range, so routing
    /// allocates nothing. An unknown symbol is rejected here.
    fn route(
        &mut self,
        from: SessionRef,
        ingress: u64,
        cmd: Command,
        metrics: &mut ShardMetrics,
    ) -> Option<Routed> {
        let n = self.shared.shards();
        let targets = match cmd.symbol() {
            Some(symbol) => match self.shared.routing.shard_of(symbol) {
                Some(s) => s..s + 1,
                None => {
                    self.reject(from, &cmd, symbol, RejectReason::UnknownSymbol, metrics);
                    return None;
                }
            },
            None => 0..n,
        };
        Some(Routed {
            inbound: Inbound { from, ingress, cmd },
            targets,
        })
    }

    /// Answer `cmd` of session `from` with a reject that reaches neither journal nor book.
    fn reject(
        &mut self,
        from: SessionRef,
        cmd: &Command,
        symbol: SymbolId,
        reason: RejectReason,
        metrics: &mut ShardMetrics,
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
        metrics.counters.reject(reason);
        self.deliver(&Delivery::immediate(from, event), metrics);
    }

    /// Park `msg` for ring `dest` on session `from`, which is not read until it is sent.
    /// Gives it back when the session is gone or already holds one (another target of a
    /// fan-out): the caller queues it in order for its destination.
    // The message is handed back by value: boxing it would allocate on the order path.
    #[allow(clippy::result_large_err)]
    pub fn stall(
        &mut self,
        from: SessionRef,
        dest: usize,
        msg: ShardMsg,
    ) -> Result<(), (usize, ShardMsg)> {
        let Some(session) = self.session_mut(from) else {
            return Err((dest, msg));
        };
        session.stall(dest, msg)?;
        self.stalled += 1;
        Ok(())
    }

    /// Offer every stalled command to `send` (which returns whether its ring took it); a
    /// session whose command went out is read again. Returns how many went out.
    pub fn resend_stalled(&mut self, mut send: impl FnMut(usize, ShardMsg) -> bool) -> usize {
        if self.stalled == 0 {
            return 0;
        }
        let mut work = 0;
        for (_, entry) in self.sessions.iter_mut() {
            let Some(session) = entry.as_mut() else {
                continue;
            };
            let Some((dest, msg)) = session.stalled() else {
                continue;
            };
            if send(dest, msg) {
                session.take_stalled();
                self.stalled -= 1;
                work += 1;
            }
        }
        work
    }

    /// Stalled commands of sessions that went away, to be sent in order for their
    /// destination (they are still executed).
    pub fn take_orphans(&mut self) -> std::vec::Drain<'_, (usize, ShardMsg)> {
        self.orphans.drain(..)
    }

    /// No session holds a stalled command and no orphan waits.
    pub fn is_idle(&self) -> bool {
        self.stalled == 0 && self.orphans.is_empty()
    }

    /// Encode `d`'s report for its session and buffer it; a session over its outbound
    /// limit is disconnected as a slow consumer. A report for a session that has gone is
    /// dropped: it stays in its account's stream for the next logon's resend.
    pub fn deliver(&mut self, d: &Delivery, metrics: &mut ShardMetrics) {
        let limit = self.settings.outbound_limit;
        let now = self.clock.now_ns();
        if d.ingress != 0 {
            metrics.record(Latency::IngressToAck, now.saturating_sub(d.ingress));
        }
        let Some((generation, Some(session))) = self.sessions.get_mut(d.to.slot as usize) else {
            return;
        };
        if *generation != d.to.generation || session.is_closing() {
            return;
        }
        let ok = session.report(&mut self.encoder, d, limit, now);
        if !ok {
            metrics.counters.slow_consumers += 1;
            let (id, peer, unread) = (session.me().id(), session.peer(), session.pending_out());
            if self.repeats.note(Repeat::SlowConsumer, peer.ip(), now) {
                tracing::warn!(target: "veloz::gateway", shard = self.shard, session = id, %peer, unread, "session {id} ({peer}) disconnected: slow consumer, {unread} bytes unread");
            } else {
                tracing::debug!(target: "veloz::gateway", shard = self.shard, session = id, %peer, unread, "session {id} ({peer}) disconnected: slow consumer, {unread} bytes unread");
            }
            session.abort(
                &mut self.encoder,
                LogoutReason::SlowConsumer,
                "outbound buffer limit reached",
            );
        }
    }

    /// Write the outbound buffers; drop closing sessions whose last frame is out and
    /// sessions whose stream broke. Returns how many sessions moved.
    pub fn flush(&mut self, metrics: &mut ShardMetrics) -> usize {
        let mut work = 0;
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            if session.pending_out() == 0 {
                session.flush_store();
                if session.is_closing() {
                    self.drop_session(slot, metrics);
                }
                continue;
            }
            match session.flush() {
                Ok(0) => {}
                Ok(n) => {
                    metrics.counters.bytes_out += n as u64;
                    work += 1
                }
                Err(_) => {
                    self.drop_session(slot, metrics);
                    work += 1;
                    continue;
                }
            }
            if session.is_closing() && session.pending_out() == 0 {
                self.drop_session(slot, metrics);
            }
        }
        work
    }

    /// Apply the sessions' timers at `now` (ns since the epoch): logon and idle timeouts,
    /// heartbeats, the grace of closing sessions.
    pub fn check_timers(&mut self, now: u64, metrics: &mut ShardMetrics) {
        let Settings {
            outbound_limit,
            timers,
            ..
        } = self.settings;
        let wall = self.clock.wall_ns();
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].1.as_mut() else {
                continue;
            };
            if session.tick(now, timers, &mut self.encoder, wall, outbound_limit) {
                self.drop_session(slot, metrics);
            }
        }
        self.log_repeats(now, false);
    }

    /// Log the summaries of repeated events that are due (all of them when `force`).
    fn log_repeats(&mut self, now: u64, force: bool) {
        let shard = self.shard;
        self.repeats.due(now, force, |s| {
            let count = grouped(s.count);
            let words = s.kind.words(s.count);
            let secs = s.elapsed_ns as f64 / 1e9;
            let kind = s.kind.name();
            match s.source {
                Some(source) => tracing::warn!(target: "veloz::gateway", shard, kind, count = s.count, %source, interval_s = secs, "{count} more {words} from {source} in the last {secs:.1} s"),
                None => tracing::warn!(target: "veloz::gateway", shard, kind, count = s.count, interval_s = secs, "{count} more {words} from other addresses in the last {secs:.1} s"),
            }
        });
    }

    /// Log every session out with `reason` (shutdown).
    pub fn logout_all(&mut self, reason: LogoutReason, text: &str) {
        for (_, entry) in self.sessions.iter_mut() {
            if let Some(s) = entry.as_mut() {
                s.logout(&mut self.encoder, reason, text);
            }
        }
    }

    /// Close and drop every session.
    pub fn close_all(&mut self, metrics: &mut ShardMetrics) {
        for slot in 0..self.sessions.len() {
            self.drop_session(slot, metrics);
        }
        let now = self.clock.now_ns();
        self.log_repeats(now, true);
    }

    fn drop_session(&mut self, slot: usize, metrics: &mut ShardMetrics) {
        if let Some(mut s) = self.sessions[slot].1.take() {
            if let Some((account, cancel_on_disconnect)) = s.logged_on() {
                let cancel = self.shared.session_ended(account, cancel_on_disconnect);
                self.changes.push(StreamChange::Unsubscribe {
                    session: s.me(),
                    account,
                    cancel,
                });
            }
            // A command read before the disconnect is still executed (and counted in
            // flight): it goes to the ordered overflow of its target.
            if let Some(orphan) = s.take_stalled() {
                self.stalled -= 1;
                self.orphans.push(orphan);
            }
            s.close();
            self.free_slots.push(slot as u16);
            metrics.counters.sessions_open -= 1;
        }
    }
}

#[cfg(test)]
mod tests;

//! The shard loop: one pinned glommio executor running one busy-polling task. The loop owns
//! the shard's components and only orchestrates them; each owns its state and hands its
//! results on by value:
//!
//! ```text
//!  io::Listener ─► Gateway ──Routed──► (this shard) Sequencer ──Sequenced──► Dispatcher
//!                    ▲          └────► ring to the owning shard        hold ─┤ release
//!                    └──── Delivery ◄── local ◄──────────────────────────────┘   └─► rings
//! ```
//!
//! One pass:
//! 1. accept new connections from the gateway socket every shard shares (every pass while
//!    idle, every `ACCEPT_EVERY` passes while busy, since accepting costs a system call even
//!    when nobody connects), while no other shard has fewer sessions open
//!    ([`Shared::may_accept`](crate::shared::Shared::may_accept));
//! 2. [`Gateway::read`]: each command a session sent goes to this shard's sequencer or to
//!    the owning shard's ring; a full ring stalls the session (backpressure);
//! 3. resend stalled commands; drain the inbound rings in batches: commands for this
//!    shard's instruments, deliveries for its sessions, `Done`s;
//! 4. [`Sequencer::next`] up to `batch_max` commands, each handed to [`Dispatcher::hold`]
//!    (an operator command's answer to `admin_replies`);
//! 5. [`Dispatcher::release`] against the durable watermark: local deliveries go to
//!    [`Gateway::deliver`], the others to their rings (in order, through overflow queues);
//!    operator answers go to the control thread;
//! 6. flush the sessions' outbound buffers; check timers (logon, heartbeat, idle) and send
//!    metrics snapshots.
//!
//! Logons and session ends (report-stream subscriptions on every shard, cancel-on-disconnect),
//! members' queries and the operator's requests are handed on by `requests` (the
//! `shard/requests.rs` half of this module): in order with the session's commands, never
//! waiting.
//!
//! A shard never waits on another shard. When a pass did work the task yields to the
//! executor every 64 busy passes; when nothing happened it spins for `spin_us`, then parks
//! ([`io::Idle`]).
//!
//! Shutdown (stop flag set by the control side on SIGINT/SIGTERM): stop accepting and
//! taking new work (sessions are still read: their orders and queries are answered
//! `EngineShuttingDown` at once, logons refused); keep working until every shard has
//! stopped taking work (`stopped_reading`), no command anywhere is
//! unanswered (`in_flight`, one counter per shard, counts remote commands until their
//! `Done` comes back), and this shard's components and rings are empty; then checkpoint and
//! sync the journal, flush and log out the sessions, and report the final sequence and
//! state hash.
//!
//! While the journal is unavailable (a segment cannot be reserved, a write or sync failed;
//! it retries by itself) the shard keeps serving: commands are rejected with
//! `JournalUnavailable` and never reach the book ([`JournalState`]), deliveries of commands
//! journaled but not yet durable stay held until a sync succeeds, heartbeats and stops work
//! as usual (a stop in this state drops the held deliveries unsent and skips the
//! clean-shutdown checkpoint). Any other failed append stops the process (exit code 70,
//! after a FATAL line): the book must not move past what the journal holds.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rtrb::{Consumer, Producer};

use veloz_core::{Command, Engine, Seq};
use veloz_journal::{MmapStorage, Storage};
use veloz_wire::LogoutReason;

use super::admin::ShardReply;
use super::dispatcher::Dispatcher;
use super::feed::FeedTap;
use super::gateway::{Gateway, ReadStep, Routed};
use super::io::{self, Clock, Idle, Net, NetStream, Stream};
use super::journal::ShardJournal;
use super::journal_state::JournalState;
use super::mesh::{AdminMsg, ControlMsg, Delivery, SessionRef, ShardLinks, ShardMsg};
use super::metrics::{Latency, ShardMetrics};
use super::sequencer::{Sequencer, SequencerError};
use super::shared::Shared;

/// The listener is polled every this many loop passes while the shard is busy.
const ACCEPT_EVERY: u64 = 64;
/// Timers are checked every this many passes, and on every idle pass.
const TIMERS_EVERY: u64 = 1024;
/// Most ring messages drained from one ring per pass.
const RING_BATCH: usize = 256;
/// Shutdown: how long sessions get to take their last reports.
const FINAL_FLUSH: Duration = Duration::from_millis(500);
/// Shutdown: pause between final flushes.
const FINAL_FLUSH_PAUSE: Duration = Duration::from_micros(200);
/// Exit code of a journal append failure.
const EXIT_JOURNAL: i32 = 70;

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
pub struct ShardOutcome {
    pub shard: usize,
    pub last_seq: Seq,
    pub state_hash: u64,
    /// The journal took the clean-shutdown checkpoint (false: it was unavailable).
    pub checkpointed: bool,
}

/// One shard's components and ring ends.
#[derive(Debug)]
pub(crate) struct Shard<S: Storage = MmapStorage, T: Stream = NetStream> {
    index: usize,
    shared: Arc<Shared>,
    clock: Clock,
    /// The shard's sockets: its own io_uring, or std sockets (`gateway.network`).
    net: Net,
    gateway: Gateway<T>,
    sequencer: Sequencer<S>,
    dispatcher: Dispatcher,
    /// `inbox[j]`: consumer of the ring from shard `j` (`None` for this shard itself).
    inbox: Vec<Option<Consumer<ShardMsg>>>,
    control: Producer<ControlMsg>,
    /// Operator requests from the control thread.
    admin: Consumer<AdminMsg>,
    metrics: ShardMetrics,
    /// Remote commands this shard sent and has not had answered.
    in_flight: u64,
    stopping: bool,
    /// When the stop began (for the shutdown log).
    stop_began: Option<minstant::Instant>,
    /// Whether the journal takes appends, and the transitions' log lines.
    journal_state: JournalState,
    /// Market data to the feed thread (`None`: off).
    feed: Option<FeedTap>,
    /// The journal sync submitted on the ring and not yet completed: its token and job
    /// (which keeps the segment file open until then).
    sync_in_flight: Option<(u32, veloz_journal::SyncJob)>,
    /// This shard's handle on the FIX acceptor's socket and when to look at it next (clock
    /// ns; `shard/ring.rs`).
    fix_listener: Option<(crate::io::Listener, u64)>,
    /// Answers to operator commands, held until durable (`shard/admin_replies.rs`).
    admin_replies: admin_replies::AdminReplies,
}

/// Run shard `links.shard` until shutdown. Called on the shard's pinned executor.
///
/// A shard that fails to recover still meets the others at the recovery barrier (and
/// counts as stopped), so one bad journal stops the whole engine cleanly instead of
/// leaving the other shards waiting.
pub async fn run(shared: Arc<Shared>, links: ShardLinks) -> Result<ShardOutcome, ShardError> {
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
                shared.fail_gateway(format!("shard 0 failed: {e}"));
            }
            return Err(e);
        }
    };
    let mut shard: Shard = Shard::new(shared, links, engine, journal, last_seq);
    let mut listen_error = None;
    if shard.shared.stop.load(Ordering::SeqCst) {
        if index == 0 {
            shard
                .shared
                .fail_gateway("engine stopping before start".into());
        }
        shard.begin_stop();
    } else {
        match shard.open_listener() {
            Ok(port) => {
                let _ = shard.control.push(ControlMsg::Ready {
                    shard: index as u16,
                    port,
                    last_seq: shard.sequencer.last_seq(),
                    state_hash: shard.sequencer.state_hash(),
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
    // With money on, the engine keeps this shard's slice of the balances.
    let mut engine = shared.config.shard_engine(&shared.routing, index);
    // Recovery rebuilds the accounts' report streams and the window kept for resend.
    engine.set_report_retention(shared.config.gateway.resend_window);
    // The journal starts its helper threads here; they inherit this thread's CPU mask. A
    // sync or prefault thread pinned beside a spinning shard crawls, so widen the mask to
    // the helper cores while they start, then pin back.
    io::set_affinity(&shared.helper_cores);
    let began = minstant::Instant::now();
    let recovered = ShardJournal::recover_dir(
        &shared.data_dir,
        &ring::journal_config(shared),
        index as u16,
        shared.repair,
        &mut engine,
    )
    .map(|(mut journal, recovered)| {
        journal.enable_snapshots(
            &shared.config.snapshot,
            shared.config.retention.mode,
            &engine,
        );
        (journal, recovered)
    });
    io::set_affinity(&shared.cores[index..=index]);
    let (journal, recovered) = recovered.map_err(|e| ShardError::Journal {
        shard: index,
        detail: e.to_string(),
    })?;
    if let (Some(replica), Some(progress)) = (&shared.replica, journal.replica_progress()) {
        replica.attach(progress);
    }
    let ms = began.elapsed().as_secs_f64() * 1e3;
    for warning in &recovered.warnings {
        tracing::warn!(target: "veloz::journal", shard = index, "{warning}");
    }
    let (commands, last_seq, hash) = (recovered.commands, recovered.last_seq, engine.state_hash());
    if let Some((file, seq)) = &recovered.snapshot {
        let replayed = recovered.replayed;
        tracing::info!(
            target: "veloz::journal",
            shard = index,
            snapshot = %file,
            snapshot_seq = seq,
            replayed,
            "loaded snapshot {file} (sequence {seq}) and replayed {replayed} records after it"
        );
    }
    tracing::info!(
        target: "veloz::journal",
        shard = index,
        commands,
        sequence = last_seq,
        state_hash = %format_args!("{hash:016x}"),
        recovery_ms = ms,
        "recovered {commands} commands in {ms:.1} ms, last sequence {last_seq}, state hash {hash:016x}"
    );
    Ok((engine, journal, recovered.last_seq))
}

impl<S: Storage> Shard<S, NetStream> {
    /// The busy-poll loop, until shutdown is complete.
    async fn serve(&mut self) {
        let engine = &self.shared.config.engine;
        let mut idle = Idle::new(
            Duration::from_micros(engine.spin_us),
            Duration::from_micros(engine.park_max_us),
        );
        let mut iterations: u64 = 0;
        let mut was_idle = true;
        loop {
            let mut work = 0usize;
            if !self.stopping && self.shared.stop.load(Ordering::Relaxed) {
                self.begin_stop();
            }
            if !self.stopping && (was_idle || iterations.is_multiple_of(ACCEPT_EVERY)) {
                work += self.accept();
            }
            work += self.pass();
            iterations += 1;
            if iterations.is_multiple_of(TIMERS_EVERY) || work == 0 {
                self.check_timers();
            }
            if self.stopping && self.quiescent() {
                return;
            }
            was_idle = work == 0;
            // The loop never yields to its executor: the shard task is the executor's only
            // task and uses none of its IO or timers, and a task that yields when the
            // preemption timer fires can leave the executor asleep in io_uring with the task
            // never resumed (seen here: a shard stuck there for minutes under a busy host,
            // orders unanswered, SIGTERM unheeded; PLATFORM.md, pitfall 3).
            if work > 0 {
                idle.worked();
            } else {
                let net = &mut self.net;
                idle.wait(|d| net.park(d));
            }
        }
    }

    fn accept(&mut self) -> usize {
        let mut accepted = 0;
        // One connection at a time, each only while no shard has fewer sessions.
        loop {
            let may = self
                .shared
                .may_accept(self.index, self.metrics.counters.sessions_open);
            let Some((stream, peer)) = self.net.accept(may) else {
                break;
            };
            if self.gateway.open(stream, peer, &mut self.metrics).is_some() {
                accepted += 1;
            }
        }
        accepted + self.accept_fix()
    }
}

impl<S: Storage, T: Stream> Shard<S, T> {
    /// Assemble shard `links.shard` around its recovered engine and journal.
    pub(crate) fn new(
        shared: Arc<Shared>,
        links: ShardLinks,
        engine: Engine,
        journal: ShardJournal<S>,
        last_seq: Seq,
    ) -> Shard<S, T> {
        let ShardLinks {
            shard: index,
            to,
            from,
            control,
            admin,
            feed,
        } = links;
        let clock = Clock::new(shared.epoch);
        // The feed session starts from the recovered books.
        let feed = feed.map(|ring| FeedTap::for_shard(index, ring, &shared, &engine, last_seq));
        Shard {
            index,
            clock,
            net: Net::Std(None),
            fix_listener: None,
            gateway: Gateway::new(index, Arc::clone(&shared), clock),
            sequencer: Sequencer::new(index, engine, journal, last_seq, clock),
            dispatcher: Dispatcher::new(index, to),
            inbox: from,
            control,
            admin,
            metrics: ShardMetrics::new(index as u16, clock.now_ns()),
            in_flight: 0,
            stopping: false,
            stop_began: None,
            journal_state: JournalState::new(
                index,
                veloz_journal::shard_dir(&shared.data_dir, index as u16),
            ),
            feed,
            sync_in_flight: None,
            admin_replies: Default::default(),
            shared,
        }
    }

    /// One pass over every component but the listener. Returns how much work it found.
    pub(crate) fn pass(&mut self) -> usize {
        // Also while stopping: what sessions send then is answered `EngineShuttingDown`.
        let mut work = self.read_sessions();
        work += self.resend_stalled();
        work += self.drain_rings();
        work += self.run_sequencer();
        work += self.drive_syncs();
        work += self.release();
        self.adopt_orphans();
        work += self.dispatcher.flush_overflow();
        work += self.gateway.flush(&mut self.metrics);
        self.adopt_orphans();
        self.tell_stream_changes();
        // Last: one submission carries every session's sends, and what arrived meanwhile
        // is reaped for the next pass's reads.
        work += self.net.poll();
        work
    }

    fn begin_stop(&mut self) {
        self.stopping = true;
        self.gateway.refuse_new_work();
        self.stop_began = Some(self.clock.instant());
        self.net.close_listener();
        self.fix_listener = None;
        // Commands read but stalled on a full ring still count: they will be sent.
        self.shared.stopped_reading.fetch_add(1, Ordering::SeqCst);
    }

    /// Nothing left to do anywhere that could concern this shard.
    fn quiescent(&mut self) -> bool {
        if self.shared.stopped_reading.load(Ordering::SeqCst) < self.shared.shards() {
            return false;
        }
        if self.journal_state.is_down() && self.sequencer.journal_unavailable().is_some() {
            // What is held may never become durable: stop without it (never acknowledged).
            let dropped = self.dispatcher.abandon_held(&mut self.metrics);
            let why = self.sequencer.journal_unavailable().unwrap_or_default();
            (self.admin_replies).abandon(&why, self.index as u16, &mut self.control);
            if dropped > 0 {
                tracing::warn!(
                    target: "veloz::journal",
                    shard = self.index,
                    dropped,
                    "stopping while the journal is unavailable: {dropped} reports of commands not yet durable dropped unsent"
                );
            }
        }
        // Market data of what was journaled goes out too (unless the journal is down: then
        // what waits may never become durable, nor public).
        let feed_idle = self
            .feed
            .as_ref()
            .is_none_or(|f| f.backlog() == 0 || self.journal_state.is_down());
        let local_idle = self.sequencer.pending() == 0
            && feed_idle
            && self.dispatcher.is_idle()
            && self.gateway.is_idle()
            && self.inbox.iter().flatten().all(|c| c.is_empty());
        local_idle
            && self
                .shared
                .in_flight
                .iter()
                .all(|c| c.load(Ordering::SeqCst) == 0)
    }

    fn add_in_flight(&mut self, delta: i64) {
        self.in_flight = (self.in_flight as i64 + delta) as u64;
        self.shared.in_flight[self.index].store(self.in_flight, Ordering::SeqCst);
    }

    /// Read the sessions; hand each command to this shard's sequencer or to its owning
    /// shard's ring.
    fn read_sessions(&mut self) -> usize {
        loop {
            let step = self.gateway.read(&mut self.metrics);
            // A logon read in this step subscribes before its session's first command; a
            // query read before the step's command goes before it.
            self.tell_stream_changes();
            self.route_queries();
            match step {
                ReadStep::Command(routed) => self.route(routed),
                ReadStep::End { work } => return work,
            }
        }
    }

    fn route(&mut self, routed: Routed) {
        let Routed { inbound, targets } = routed;
        for target in targets {
            if target == self.index {
                self.sequencer.push(inbound);
                continue;
            }
            self.add_in_flight(1);
            if let Err(msg) = self.dispatcher.try_send(target, ShardMsg::Command(inbound)) {
                self.metrics.counters.ring_full += 1;
                // The session holds the command and is not read until it is sent; if it
                // already holds one (another target of a fan-out), this one waits in the
                // ordered overflow for its target instead.
                if let Err((dest, msg)) = self.gateway.stall(inbound.from, target, msg) {
                    self.dispatcher.send(dest, msg, &mut self.metrics);
                }
            }
        }
    }

    /// Send commands that waited for ring room. Runs every pass, also while stopping:
    /// shutdown waits for every command read to be answered.
    fn resend_stalled(&mut self) -> usize {
        let dispatcher = &mut self.dispatcher;
        self.gateway
            .resend_stalled(|dest, msg| dispatcher.try_send(dest, msg).is_ok())
    }

    /// Stalled commands of sessions that went away are still sent, in order.
    fn adopt_orphans(&mut self) {
        for (dest, msg) in self.gateway.take_orphans() {
            self.dispatcher.send(dest, msg, &mut self.metrics);
        }
    }

    fn drain_rings(&mut self) -> usize {
        let mut work = 0;
        for consumer in self.inbox.iter_mut().flatten() {
            for _ in 0..RING_BATCH {
                let Ok(msg) = consumer.pop() else {
                    break;
                };
                work += 1;
                match msg {
                    ShardMsg::Command(inbound) => {
                        // The engine's own commands (cancel-on-disconnect) have no ingress.
                        if inbound.ingress != 0 {
                            let hop = self.clock.now_ns().saturating_sub(inbound.ingress);
                            self.metrics.record(Latency::RingHop, hop);
                        }
                        self.sequencer.push(inbound);
                    }
                    ShardMsg::Deliver(d) => self.gateway.deliver(&d, &mut self.metrics),
                    ShardMsg::Resumed(r) => self.gateway.resumed(&r),
                    ShardMsg::Query(q) => self.sequencer.push_query(q),
                    ShardMsg::Answer(a) => self.gateway.answer(&a),
                    ShardMsg::Subscribe(sub) => {
                        // From another shard: its session is never on this one.
                        let gateway = &mut self.gateway;
                        self.dispatcher.subscribe(
                            sub,
                            self.sequencer.engine(),
                            &mut self.metrics,
                            |d, m| gateway.deliver(d, m),
                        );
                    }
                    ShardMsg::Unsubscribe { session, account } => {
                        self.dispatcher.unsubscribe(session, account);
                    }
                    ShardMsg::Done => {
                        // Inline (not `add_in_flight`): the ring consumer is borrowed.
                        self.in_flight -= 1;
                        self.shared.in_flight[self.index].store(self.in_flight, Ordering::SeqCst);
                    }
                }
            }
        }
        work
    }

    /// Sequence, journal and apply the queued commands (at most `batch_max`), holding their
    /// deliveries.
    fn run_sequencer(&mut self) -> usize {
        let max = self.shared.config.engine.batch_max;
        let mut done = 0;
        while done < max {
            if let Some(query) = self.sequencer.take_query() {
                self.answer_query(query);
                done += 1;
                continue;
            }
            match self.sequencer.next(&mut self.metrics) {
                None => break,
                Some(Ok(sequenced)) => {
                    self.dispatcher.hold(&sequenced, &mut self.metrics);
                    if let Some(feed) = self.feed.as_mut() {
                        feed.hold(sequenced.seq, sequenced.ts, sequenced.events);
                    }
                    // An operator command's answer waits until it is durable.
                    self.admin_replies.hold(&sequenced, self.index as u16);
                }
                Some(Err(SequencerError::Unavailable { inbound, why, .. })) => {
                    if let Command::Admin(a) = inbound.cmd {
                        let reply = ShardReply::Refused {
                            shard: self.index as u16,
                            why: why.clone(),
                        };
                        let _ = self.control.push(ControlMsg::Admin {
                            request_id: a.request_id,
                            shard: self.index as u16,
                            reply,
                        });
                    }
                    let now = self.clock.now_ns();
                    let reject = self
                        .journal_state
                        .refused(&inbound, &why, now, &mut self.metrics);
                    self.answer_refused(reject);
                }
                Some(Err(e)) => journal_failed(e),
            }
            done += 1;
        }
        done
    }

    /// Release the deliveries the journal has made durable.
    fn release(&mut self) -> usize {
        let durable = self.sequencer.durable_seq(&mut self.metrics);
        let now = self.clock.now_ns();
        let mut work = 0;
        if let Some(feed) = self.feed.as_mut() {
            work += feed.release(durable);
        }
        work += (self.admin_replies).release(durable, self.index as u16, &mut self.control);
        loop {
            let gateway = &mut self.gateway;
            work += self
                .dispatcher
                .release(durable, now, &mut self.metrics, |d, m| {
                    gateway.deliver(d, m)
                });
            // The release stopped after an answer for a session here: write it before what
            // comes after it.
            let mut answered = false;
            for a in self.dispatcher.take_local_answers() {
                self.gateway.answer(&a);
                answered = true;
            }
            if !answered {
                return work;
            }
        }
    }

    /// Deliver the reject of a command the journal refused, now (it waits for no
    /// durability); a command from another shard is also answered with its `Done`.
    fn answer_refused(&mut self, reject: Delivery) {
        let to = reject.to;
        if to == SessionRef::NONE {
            // Nobody sent it (cannot happen for a refused command today): nobody to tell.
        } else if to.shard as usize == self.index {
            self.gateway.deliver(&reject, &mut self.metrics);
        } else {
            let dest = to.shard as usize;
            self.dispatcher
                .send(dest, ShardMsg::Deliver(reject), &mut self.metrics);
            self.dispatcher
                .send(dest, ShardMsg::Done, &mut self.metrics);
        }
    }

    fn check_timers(&mut self) {
        self.serve_admin();
        let now = self.clock.now_ns();
        let why = self.sequencer.journal_unavailable();
        let next = self.sequencer.last_seq() + 1;
        self.journal_state
            .observe(why, now, next, &mut self.metrics);
        self.gateway.check_timers(now, &mut self.metrics);
        self.tell_stream_changes();
        let interval_ns = self.shared.config.metrics.interval_ms * 1_000_000;
        if now.saturating_sub(self.metrics.interval_start_ns()) >= interval_ns {
            self.send_snapshot(now);
        }
    }

    /// Send the interval's metrics to the control thread (dropped, and counted, if its ring
    /// is full: the control thread is behind, the shard never waits for it).
    fn send_snapshot(&mut self, now: u64) {
        let stats = self.sequencer.journal_stats();
        self.metrics.counters.journal_records = stats.records;
        self.metrics.counters.journal_bytes = stats.bytes;
        (
            self.metrics.counters.snapshots_written,
            self.metrics.counters.snapshot_failures,
        ) = self.sequencer.snapshot_counts();
        if let Some(ring) = self.net.ring() {
            let r = ring.stats();
            let c = &mut self.metrics.counters;
            (c.uring_enters, c.uring_completions, c.uring_no_buffers) =
                (r.enters, r.completions, r.recv_no_buffers);
        }
        let snapshot = self.metrics.snapshot(now);
        let _ = self.control.push(ControlMsg::Snapshot(snapshot));
    }

    /// After quiescence: checkpoint and sync the journal, say goodbye to the sessions.
    fn finish(mut self) -> Result<ShardOutcome, ShardError> {
        let state_hash = self.sequencer.state_hash();
        let drained = self.clock.instant();
        let ts = self.clock.unix_ns(drained);
        let mut checkpointed = true;
        let last_seq = match self.sequencer.checkpoint_and_close(ts) {
            Ok(seq) => seq,
            Err(e) if e.is_unavailable() => {
                checkpointed = false;
                let last = self.sequencer.last_seq();
                tracing::warn!(
                    target: "veloz::journal",
                    shard = self.index,
                    sequence = last,
                    "stopped without the clean-shutdown checkpoint: {e}; the journal ends at sequence {last}"
                );
                last
            }
            Err(e) => {
                return Err(ShardError::Journal {
                    shard: self.index,
                    detail: e.to_string(),
                })
            }
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (drain_ms, close_ms) = (
            self.stop_began.map_or(0.0, |t| ms(drained - t)),
            ms(drained.elapsed()),
        );
        tracing::info!(
            target: "veloz::sequencer",
            shard = self.index,
            drain_ms,
            close_ms,
            "stop: drained in {drain_ms:.1} ms, journal checkpointed and closed in {close_ms:.1} ms"
        );
        self.gateway
            .logout_all(LogoutReason::EngineShutdown, "engine shutting down");
        let deadline = self.clock.instant() + FINAL_FLUSH;
        while self.gateway.open_sessions() > 0 && self.clock.instant() < deadline {
            self.gateway.flush(&mut self.metrics);
            self.net.poll();
            io::sleep(FINAL_FLUSH_PAUSE);
        }
        self.gateway.close_all(&mut self.metrics);
        // On the ring, closed sessions' last bytes (their logouts) are sent before their
        // sockets are shut.
        while self.net.ring().is_some_and(|r| r.connections() > 0)
            && self.clock.instant() < deadline
        {
            self.net.poll();
            io::sleep(FINAL_FLUSH_PAUSE);
        }
        let now = self.clock.now_ns();
        self.send_snapshot(now);
        let _ = self.control.push(ControlMsg::Stopped {
            shard: self.index as u16,
            last_seq,
            state_hash,
        });
        let c = &self.metrics.counters;
        let (ring_full, slow_consumers, resent) = (c.ring_full, c.slow_consumers, c.reports_resent);
        tracing::info!(
            target: "veloz::sequencer",
            shard = self.index,
            sequence = last_seq,
            state_hash = %format_args!("{state_hash:016x}"),
            ring_full,
            slow_consumers,
            resent,
            "stopped at sequence {last_seq}, state hash {state_hash:016x} (ring-full events {ring_full}, slow consumers {slow_consumers}, reports resent {resent})"
        );
        Ok(ShardOutcome {
            shard: self.index,
            last_seq,
            state_hash,
            checkpointed,
        })
    }
}

/// A journal that cannot take a record must not let the book move: the command is not
/// applied and the process stops; recovery restores what was journaled.
fn journal_failed(e: SequencerError) -> ! {
    let (shard, after) = match &e {
        SequencerError::Append { shard, after, .. } => (*shard, *after),
        SequencerError::Unavailable { shard, .. } => (*shard, 0),
    };
    let why = match e {
        SequencerError::Append { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    tracing::error!(
        target: "veloz::sequencer",
        shard,
        sequence = after,
        fatal = true,
        "journal append after sequence {after} failed: {why}; stopping"
    );
    // The log writer is asynchronous: give the FATAL line its chance to reach stderr.
    crate::logging::flush(Duration::from_secs(2));
    std::process::exit(EXIT_JOURNAL);
}

#[path = "shard/admin_replies.rs"]
mod admin_replies;
#[path = "shard/requests.rs"]
mod requests;
#[path = "shard/ring.rs"]
mod ring;

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;

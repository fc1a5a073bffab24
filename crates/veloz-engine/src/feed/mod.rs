//! Market data out of the engine (docs/market-data.md): the shards hand their public events
//! over rings ([`tap`]), one feed thread builds the messages ([`veloz_md::FeedBuilder`]) and
//! serves them to subscribers: the binary FlatBuffers feed ([`binary`]) and the WebSocket
//! JSON feed with the live book page ([`ws`]).
//!
//! ```text
//!  shard i: Sequencer ─events─► FeedTap (held until durable) ─ring─┐
//!                                                                   ▼
//!  feed thread (control core):  FeedState (one FeedBuilder per shard) ─► BinaryServer
//!                                                                      └► WsServer (+ page)
//! ```
//!
//! Invariants:
//! - **The shard never waits for market data.** Its tap queues, the feed thread drains;
//!   a subscriber that falls more than `feed.outbound_limit_bytes` behind is cut off, never
//!   the feed thread nor the shard.
//! - **Only durable commands are public** (the tap releases at the durable watermark).
//! - **Snapshot, then every update, on one thread.** The feed thread applies a command's
//!   messages to its books and hands them to every server before it reads the next, so a
//!   snapshot taken between two commands and the updates after it join without a gap or
//!   a repeat.
//! - **A feed session per engine run.** At start each shard seeds its feed from its
//!   recovered books (rebuilt from the journal), and every channel is numbered from 1
//!   again: subscribers learn the session id ([`FeedState::session`]) in every snapshot and
//!   heartbeat, and a new id means "take a fresh snapshot".
//! - Nothing public names an account or a client order id.

pub mod binary;
pub mod json;
pub mod tap;
#[cfg(test)]
mod test_driver;
pub mod ws;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rtrb::{Consumer, Producer, RingBuffer};
use veloz_config::Config;
use veloz_core::{Event, Seq, SymbolId, Timestamp};
use veloz_md::{Channel, FeedBuilder, L2Snapshot, L3Snapshot, MdBody, MdMessage, Quote};

pub use binary::BinaryServer;
pub use tap::FeedTap;
pub use ws::WsServer;

/// Shutdown: how long subscribers get to take the last messages.
const FINAL_FLUSH: Duration = Duration::from_millis(300);
/// Most ring items drained from one shard per pass.
const RING_BATCH: usize = 4096;

/// What a shard hands the feed thread.
#[derive(Debug)]
pub enum FeedItem {
    /// The shard's books after recovery (which ended at engine sequence `seq`): the start
    /// of this run's feed session.
    Seed { feed: Box<FeedBuilder>, seq: Seq },
    /// A public event of the command the next [`FeedItem::End`] closes.
    Event(Event),
    /// Command `seq` (time `ts`) is complete and durable: publish it.
    End { seq: Seq, ts: Timestamp },
    /// The shard stopped feeding (why); nothing follows.
    Down(String),
}

/// The rings of `n` shards to the feed thread.
pub fn rings(n: usize, slots: usize) -> (Vec<Producer<FeedItem>>, Vec<Consumer<FeedItem>>) {
    (0..n).map(|_| RingBuffer::new(slots)).unzip()
}

/// An instrument as the feeds name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolInfo {
    pub id: SymbolId,
    pub name: String,
    /// Prices are integer counts of `10^-price_scale` quote units.
    pub price_scale: u8,
    pub shard: usize,
}

/// The top of book of an instrument with the number of its last `top` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopView {
    pub seq: u64,
    pub bid: Option<Quote>,
    pub ask: Option<Quote>,
}

/// One shard's part of the feed.
#[derive(Debug)]
struct ShardFeed {
    builder: Option<FeedBuilder>,
    /// Events of the command being received.
    events: Vec<Event>,
    /// The last command published.
    watermark: Seq,
    down: Option<String>,
}

/// Every instrument's market data as of the last command published: what servers answer
/// subscriptions and snapshot requests from.
#[derive(Debug)]
pub struct FeedState {
    session: u64,
    /// Ascending id.
    symbols: Vec<SymbolInfo>,
    shards: Vec<ShardFeed>,
    /// Per symbol (index in `symbols`): the latest public trades, oldest first.
    recent: Vec<VecDeque<MdMessage>>,
    recent_max: usize,
    out: Vec<MdMessage>,
}

impl FeedState {
    /// The feed of `symbols` served by `shards` shards, session `session`, nothing seeded.
    pub fn new(
        session: u64,
        mut symbols: Vec<SymbolInfo>,
        shards: usize,
        recent_max: usize,
    ) -> FeedState {
        symbols.sort_by_key(|s| s.id);
        FeedState {
            session,
            recent: symbols.iter().map(|_| VecDeque::new()).collect(),
            symbols,
            shards: (0..shards)
                .map(|_| ShardFeed {
                    builder: None,
                    events: Vec::new(),
                    watermark: 0,
                    down: None,
                })
                .collect(),
            recent_max,
            out: Vec::new(),
        }
    }

    /// The instruments of `config`, each on the shard routing gives it.
    pub fn symbols_of(config: &Config, shard_of: impl Fn(SymbolId) -> usize) -> Vec<SymbolInfo> {
        config
            .instruments
            .iter()
            .map(|i| SymbolInfo {
                id: i.id,
                name: i.symbol.clone(),
                price_scale: i.price_scale,
                shard: shard_of(i.id),
            })
            .collect()
    }

    /// Every shard has seeded its feed (or stopped feeding).
    pub fn ready(&self) -> bool {
        self.shards
            .iter()
            .all(|s| s.builder.is_some() || s.down.is_some())
    }

    /// This run's feed session: the engine's start time (ns since the Unix epoch).
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Every instrument, ascending id.
    pub fn symbols(&self) -> &[SymbolInfo] {
        &self.symbols
    }

    fn index(&self, id: SymbolId) -> Option<usize> {
        self.symbols.binary_search_by_key(&id, |s| s.id).ok()
    }

    /// The instrument with id `id`.
    pub fn info(&self, id: SymbolId) -> Option<&SymbolInfo> {
        self.index(id).map(|i| &self.symbols[i])
    }

    /// The instrument named `name`.
    pub fn by_name(&self, name: &str) -> Option<&SymbolInfo> {
        self.symbols.iter().find(|s| s.name == name)
    }

    fn builder(&self, id: SymbolId) -> Option<&FeedBuilder> {
        let info = self.info(id)?;
        self.shards.get(info.shard)?.builder.as_ref()
    }

    /// Why `id`'s feed is not served (not seeded yet, or its shard stopped feeding), or
    /// `None` when it is.
    pub fn unavailable(&self, id: SymbolId) -> Option<String> {
        let Some(info) = self.info(id) else {
            return Some(format!("no instrument with id {id}"));
        };
        let shard = &self.shards[info.shard];
        if let Some(why) = &shard.down {
            return Some(why.clone());
        }
        if shard.builder.is_none() {
            return Some(format!(
                "{}: shard {} has not started its feed yet",
                info.name, info.shard
            ));
        }
        None
    }

    /// `id`'s whole book order by order, as of its last `l3` message.
    pub fn l3_snapshot(&self, id: SymbolId) -> Option<L3Snapshot> {
        self.builder(id)?.l3_snapshot(id)
    }

    /// `id`'s book by price level, as of its last `l2` message.
    pub fn l2_snapshot(&self, id: SymbolId) -> Option<L2Snapshot> {
        self.builder(id)?.l2_snapshot(id)
    }

    /// `id`'s best bid and ask, as of its last `top` message.
    pub fn top(&self, id: SymbolId) -> Option<TopView> {
        let b = self.builder(id)?;
        let (bid, ask) = b.top(id)?;
        Some(TopView {
            seq: b.last_seq(id, Channel::Top)?,
            bid,
            ask,
        })
    }

    /// The number of `id`'s last message on `channel` (0: none this session).
    pub fn last_seq(&self, id: SymbolId, channel: Channel) -> Option<u64> {
        self.builder(id)?.last_seq(id, channel)
    }

    /// `id`'s latest public trades (oldest first; at most `feed.recent_trades`).
    pub fn recent_trades(&self, id: SymbolId) -> impl Iterator<Item = &MdMessage> {
        self.index(id)
            .into_iter()
            .flat_map(move |i| self.recent[i].iter())
    }

    /// The last command of `shard` published (its engine sequence number).
    pub fn watermark(&self, shard: usize) -> Seq {
        self.shards.get(shard).map_or(0, |s| s.watermark)
    }

    /// Every shard's [`FeedState::watermark`], by shard.
    pub fn watermarks(&self) -> Vec<Seq> {
        self.shards.iter().map(|s| s.watermark).collect()
    }

    /// Start `shard`'s feed from `builder` (its books, empty, at engine sequence 0).
    pub fn seed(&mut self, shard: usize, builder: FeedBuilder) {
        self.seed_at(shard, builder, 0);
    }

    /// Start `shard`'s feed from `builder`: its books after recovery, which ended at engine
    /// sequence `seq` (the watermark until the next command).
    pub fn seed_at(&mut self, shard: usize, builder: FeedBuilder, seq: Seq) {
        let s = &mut self.shards[shard];
        s.builder = Some(builder);
        s.events.clear();
        s.watermark = seq;
    }

    /// `shard` stopped feeding.
    pub fn set_down(&mut self, shard: usize, why: String) {
        let s = &mut self.shards[shard];
        s.down = Some(why);
        s.builder = None;
        s.events.clear();
    }

    /// An event of `shard`'s command in progress.
    pub fn push_event(&mut self, shard: usize, event: Event) {
        self.shards[shard].events.push(event);
    }

    /// `shard`'s command `seq` is complete: its messages, in order (empty when its shard is
    /// down). A mismatch between the events and the feed's books takes the shard's feed
    /// down (logged with the command, the order and the values).
    pub fn end_command(&mut self, shard: usize, seq: Seq, ts: Timestamp) -> &[MdMessage] {
        self.out.clear();
        let s = &mut self.shards[shard];
        s.watermark = seq;
        if let Some(builder) = s.builder.as_mut() {
            if let Err(e) = builder.on_command(seq, ts, &s.events, &mut self.out) {
                let why = format!("shard {shard}: market data stopped: {e}");
                tracing::error!(target: "veloz::feed", shard, "{why}");
                self.out.clear();
                s.events.clear();
                self.set_down(shard, why);
                return &self.out;
            }
        }
        s.events.clear();
        for m in &self.out {
            if let MdBody::Trade { .. } = m.body {
                if let Ok(i) = self.symbols.binary_search_by_key(&m.symbol, |s| s.id) {
                    let recent = &mut self.recent[i];
                    if recent.len() == self.recent_max {
                        recent.pop_front();
                    }
                    if self.recent_max > 0 {
                        recent.push_back(*m);
                    }
                }
            }
        }
        &self.out
    }
}

/// Counters a server keeps, read by the feed thread for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections open now.
    pub connections: u64,
    /// Connections ever accepted.
    pub accepted: u64,
    /// Connections cut off as slow consumers.
    pub cut_off: u64,
    /// Connections refused (over `feed.max_subscribers`) or closed for a protocol error.
    pub refused: u64,
    /// Market-data messages written to subscribers (one per subscriber that got it).
    pub messages: u64,
    /// Bytes written to sockets.
    pub bytes: u64,
}

/// A market-data server driven by the feed thread: it owns its listening socket and its
/// connections, never blocks, and cuts off a subscriber rather than wait for it.
pub trait FeedServer: std::fmt::Debug + Send {
    /// `binary` or `websocket` (logs and metrics labels).
    fn kind(&self) -> &'static str;
    /// Accept, read requests (subscriptions and snapshot requests, answered from `state`),
    /// send heartbeats, write what is buffered. `now_ns`: wall clock, ns since the Unix
    /// epoch. Returns how much work it found (0: idle).
    fn poll(&mut self, state: &FeedState, now_ns: u64) -> usize;
    /// The messages of one command (all of one shard, in order), after `state` applied
    /// them: queue them for every connection subscribed to them.
    fn publish(&mut self, state: &FeedState, msgs: &[MdMessage]);
    /// `shard` stopped feeding (`state.unavailable` says why): end the subscriptions to
    /// its instruments with that reason.
    fn shard_down(&mut self, state: &FeedState, shard: usize);
    /// Shutdown: say goodbye (the feed ends), flush what can be flushed, close.
    fn close(&mut self, now_ns: u64);
    /// Whether anything is still waiting to be written.
    fn is_flushed(&self) -> bool;
    fn stats(&self) -> ServerStats;
}

/// The feed thread's figures, for the metrics endpoint (written by the feed thread only).
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Per server kind (0 binary, 1 WebSocket): [`ServerStats`] fields.
    pub connections: [AtomicU64; 2],
    pub accepted: [AtomicU64; 2],
    pub cut_off: [AtomicU64; 2],
    pub refused: [AtomicU64; 2],
    pub messages: [AtomicU64; 2],
    pub bytes: [AtomicU64; 2],
    /// Commands published, all shards.
    pub commands: AtomicU64,
    /// Market-data messages built, all shards.
    pub built: AtomicU64,
    /// Shards whose feed is down.
    pub shards_down: AtomicU64,
}

impl FeedStats {
    /// The feed's metrics in the Prometheus text format, appended to `out`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let kinds = ["binary", "websocket"];
        let per_kind: [(&str, &str, &str, &[AtomicU64; 2]); 6] = [
            (
                "veloz_feed_subscribers",
                "Market-data connections open",
                "gauge",
                &self.connections,
            ),
            (
                "veloz_feed_connections_total",
                "Market-data connections accepted",
                "counter",
                &self.accepted,
            ),
            (
                "veloz_feed_cut_off_total",
                "Market-data subscribers cut off as slow consumers",
                "counter",
                &self.cut_off,
            ),
            (
                "veloz_feed_refused_total",
                "Market-data connections refused (too many) or closed for protocol errors",
                "counter",
                &self.refused,
            ),
            (
                "veloz_feed_messages_sent_total",
                "Market-data messages written to subscribers (one per subscriber)",
                "counter",
                &self.messages,
            ),
            (
                "veloz_feed_bytes_sent_total",
                "Bytes written to market-data subscribers",
                "counter",
                &self.bytes,
            ),
        ];
        for (name, help, kind, values) in per_kind {
            super::exposition::header(out, name, help, kind);
            for (feed, v) in kinds.iter().zip(values) {
                let _ = writeln!(
                    out,
                    "{name}{{feed=\"{feed}\"}} {}",
                    v.load(Ordering::Relaxed)
                );
            }
        }
        let single: [(&str, &str, &str, &AtomicU64); 3] = [
            (
                "veloz_feed_commands_total",
                "Commands whose market data was published",
                "counter",
                &self.commands,
            ),
            (
                "veloz_feed_messages_built_total",
                "Market-data messages built (before fan-out)",
                "counter",
                &self.built,
            ),
            (
                "veloz_feed_shards_down",
                "Shards whose market data stopped (see the log for why)",
                "gauge",
                &self.shards_down,
            ),
        ];
        for (name, help, kind, v) in single {
            super::exposition::header(out, name, help, kind);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }

    fn store(&self, i: usize, s: ServerStats) {
        self.connections[i].store(s.connections, Ordering::Relaxed);
        self.accepted[i].store(s.accepted, Ordering::Relaxed);
        self.cut_off[i].store(s.cut_off, Ordering::Relaxed);
        self.refused[i].store(s.refused, Ordering::Relaxed);
        self.messages[i].store(s.messages, Ordering::Relaxed);
        self.bytes[i].store(s.bytes, Ordering::Relaxed);
    }
}

/// The feed thread's inputs.
#[derive(Debug)]
pub struct FeedThread {
    pub state: FeedState,
    pub rings: Vec<Consumer<FeedItem>>,
    pub servers: Vec<Box<dyn FeedServer>>,
    pub stats: Arc<FeedStats>,
    /// Set once every shard has finished: drain the rings, flush, close.
    pub done: Arc<AtomicBool>,
    /// Idle policy: spin this long after work, then park up to `park_max`.
    pub spin: Duration,
    pub park_max: Duration,
    /// After a pass that found work (and left none behind in the rings), sleep this long:
    /// one wake-up per batch, not per command (`[feed] batch_us`).
    pub batch: Duration,
}

/// Wall clock, ns since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl FeedThread {
    /// Run on a thread named `veloz-feed` pinned to `core` until [`FeedThread::done`].
    pub fn spawn(self, core: usize) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("veloz-feed".into())
            .spawn(move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    tracing::warn!(target: "veloz::feed", core, "could not pin the feed thread to core {core}");
                }
                self.run();
            })
            .expect("spawn feed thread")
    }

    /// Drain the rings into the servers, poll the servers, until done.
    pub fn run(mut self) {
        let mut idle = super::io::Idle::new(self.spin, self.park_max);
        loop {
            // Read `done` before draining: once set, the shards have pushed their last.
            let done = self.done.load(Ordering::SeqCst);
            let (mut work, more) = self.drain();
            let drained = work;
            // Subscribers are served once every shard has handed over its books (queued
            // connections wait in the listen backlog until then).
            if self.state.ready() {
                let now = unix_now_ns();
                for server in &mut self.servers {
                    work += server.poll(&self.state, now);
                }
            }
            self.publish_stats();
            if done && work == 0 {
                break;
            }
            if work > 0 {
                idle.worked();
                if drained > 0 && !more && !done && !self.batch.is_zero() {
                    std::thread::sleep(self.batch);
                }
            } else {
                idle.wait(std::thread::sleep);
            }
        }
        let began = minstant::Instant::now();
        for server in &mut self.servers {
            server.close(unix_now_ns());
        }
        while began.elapsed() < FINAL_FLUSH && !self.servers.iter().all(|s| s.is_flushed()) {
            for server in &mut self.servers {
                server.poll(&self.state, unix_now_ns());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.publish_stats();
    }

    /// Take what the shards handed over (up to [`RING_BATCH`] items per shard); publish each
    /// complete command. Returns the items taken and whether a ring may hold more.
    fn drain(&mut self) -> (usize, bool) {
        let mut work = 0;
        let mut more = false;
        for shard in 0..self.rings.len() {
            for i in 0..RING_BATCH {
                let Ok(item) = self.rings[shard].pop() else {
                    break;
                };
                more |= i + 1 == RING_BATCH;
                work += 1;
                match item {
                    FeedItem::Seed { feed, seq } => self.state.seed_at(shard, *feed, seq),
                    FeedItem::Event(e) => self.state.push_event(shard, e),
                    FeedItem::End { seq, ts } => {
                        self.stats.commands.fetch_add(1, Ordering::Relaxed);
                        let was_down = self.state.shards[shard].down.is_some();
                        let built = self.state.end_command(shard, seq, ts).len();
                        self.stats.built.fetch_add(built as u64, Ordering::Relaxed);
                        self.publish_last(shard, was_down);
                    }
                    FeedItem::Down(why) => {
                        tracing::error!(target: "veloz::feed", shard, "{why}");
                        self.state.set_down(shard, why);
                        self.shard_down(shard);
                    }
                }
            }
        }
        (work, more)
    }

    fn publish_last(&mut self, shard: usize, was_down: bool) {
        let FeedThread { state, servers, .. } = self;
        if state.out.is_empty() {
            if !was_down && state.shards[shard].down.is_some() {
                self.shard_down(shard);
            }
            return;
        }
        for server in servers.iter_mut() {
            server.publish(state, &state.out);
        }
    }

    fn shard_down(&mut self, shard: usize) {
        self.stats.shards_down.store(
            self.state
                .shards
                .iter()
                .filter(|s| s.down.is_some())
                .count() as u64,
            Ordering::Relaxed,
        );
        for server in &mut self.servers {
            server.shard_down(&self.state, shard);
        }
    }

    fn publish_stats(&self) {
        for server in &self.servers {
            let i = usize::from(server.kind() != "binary");
            self.stats.store(i, server.stats());
        }
    }
}

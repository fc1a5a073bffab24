//! [`BinaryServer`]: the binary market-data feed (`schemas/md.fbs`, docs/market-data.md,
//! "Binary feed"): size-prefixed FlatBuffers frames over TCP, served by the feed thread.
//!
//! - **Never blocks.** The listener and every connection are non-blocking std sockets
//!   polled by the feed thread; a write takes what the socket takes now.
//! - **Encode once.** [`FeedServer::publish`] encodes each message once (only when some
//!   connection wants it) and appends the frame's bytes to the out buffer of every
//!   connection subscribed to its (instrument, channel); [`FeedServer::poll`] writes.
//! - **A slow subscriber is cut off, nobody waits.** A connection whose unsent bytes pass
//!   `feed.outbound_limit_bytes` is cut off: what it was sent stays whole (the frame being
//!   written is finished, the rest dropped), a `Goodbye` ("slow consumer: N bytes unsent")
//!   follows, and the connection is closed after [`CLOSE_GRACE_NS`] at most
//!   ([`ServerStats::cut_off`]).
//! - **Client input never panics the server.** Every frame is verified and decoded by
//!   `veloz_md::wire`; a bad one is answered with `Refused` and, [`MAX_BAD_FRAMES`] in a
//!   row, a `Goodbye` and a close; a length above [`veloz_md::wire::DEFAULT_MAX_CLIENT_FRAME`]
//!   closes at once (the frame boundaries are lost). Both count in [`ServerStats::refused`],
//!   as do connections over `feed.max_subscribers` (a `Goodbye`, then closed).
//! - Accepting, reading requests and heartbeats happen on a housekeeping tick
//!   ([`HOUSEKEEPING_NS`]); writes on every poll that has bytes to write.
//! - The out buffer always starts inside or at the start of a frame whose end is known
//!   (`Conn::cut`), so a cut-off can end the stream on a frame boundary.

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use veloz_md::wire::{
    decode_client, ClientMsg, DecodeError, FrameReader, Hello, MdEncoder, SymbolDef, TopSnapshot,
    DEFAULT_MAX_CLIENT_FRAME, LENGTH_PREFIX_LEN,
};
use veloz_md::{Channel, MdMessage};

use super::{FeedServer, FeedState, ServerStats};
use crate::io::{read_some, write_some, Listener, Transfer};

/// How often connections are accepted, requests read and heartbeats checked (ns).
pub const HOUSEKEEPING_NS: u64 = 1_000_000;
/// After a Goodbye, how long the connection gets to take it before it is closed (ns).
pub const CLOSE_GRACE_NS: u64 = 1_000_000_000;
/// Malformed requests in a row after which a connection is closed.
pub const MAX_BAD_FRAMES: u32 = 3;
/// Socket reads per connection per housekeeping tick.
const READS_PER_TICK: usize = 16;
/// Unsent bytes already written past which the out buffer is compacted.
const COMPACT_AT: usize = 1 << 20;
/// Connections accepted per housekeeping tick.
const ACCEPTS_PER_TICK: usize = 64;

/// The bit of `channel` in a connection's per-instrument mask.
fn bit(channel: Channel) -> u8 {
    1 << channel as u8
}

/// The first frame boundary at or after `at` in `out`, walking from the boundary `from`.
fn boundary(out: &[u8], from: usize, at: usize) -> usize {
    let mut pos = from;
    while pos < at {
        let Some(p) = out.get(pos..pos + LENGTH_PREFIX_LEN) else {
            return out.len();
        };
        pos += LENGTH_PREFIX_LEN + u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
    }
    pos.min(out.len())
}

/// One subscriber.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    reader: FrameReader,
    /// Frames to write; `out[sent..]` is not written yet.
    out: Vec<u8>,
    sent: usize,
    /// `out[..cut]` is the tail of a frame whose start was already written and dropped;
    /// frames start at `cut`.
    cut: usize,
    /// Per instrument (its index in [`FeedState::symbols`]): the channels subscribed, one
    /// bit per [`Channel`].
    subs: Vec<u8>,
    /// When the last frame was queued (ns, wall clock).
    last_out_ns: u64,
    /// Malformed requests in a row.
    bad: u32,
    /// Closing: the Goodbye is queued; closed when flushed or at this time.
    closing: Option<u64>,
    /// The peer closed its side: nothing more to read; what is queued still goes out.
    eof: bool,
}

impl Conn {
    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    fn wants(&self, idx: usize, b: u8) -> bool {
        self.closing.is_none() && self.subs.get(idx).is_some_and(|m| m & b != 0)
    }

    fn push(&mut self, frame: &[u8], now_ns: u64) {
        self.out.extend_from_slice(frame);
        self.last_out_ns = now_ns;
    }

    /// Queue a Goodbye after what is queued (`drop_unsent`: after the frame being written
    /// only, the rest dropped), end the subscriptions, close soon.
    fn goodbye(&mut self, enc: &mut MdEncoder, reason: &str, drop_unsent: bool, now_ns: u64) {
        if self.closing.is_some() {
            return;
        }
        if drop_unsent {
            // Keep what was written and the rest of the frame being written: the stream
            // stays whole frames.
            let end = if self.sent <= self.cut {
                self.cut.min(self.out.len())
            } else {
                boundary(&self.out, self.cut, self.sent)
            };
            self.out.truncate(end);
        }
        self.push(enc.goodbye(reason), now_ns);
        self.subs.iter_mut().for_each(|m| *m = 0);
        self.closing = Some(now_ns + CLOSE_GRACE_NS);
        tracing::info!(target: "veloz::feed", peer = %self.peer, "binary feed: goodbye to {}: {reason}", self.peer);
    }

    /// Write what the socket takes now. `false`: the connection is gone.
    fn write(&mut self, stats: &mut ServerStats) -> bool {
        while self.sent < self.out.len() {
            match write_some(&mut self.stream, &self.out[self.sent..]) {
                Transfer::Done(n) => {
                    self.sent += n;
                    stats.bytes += n as u64;
                }
                Transfer::WouldBlock => break,
                Transfer::Closed(_) => return false,
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            self.cut = 0;
        } else if self.sent >= COMPACT_AT {
            let b = boundary(&self.out, self.cut, self.sent).max(self.cut);
            self.out.drain(..self.sent);
            self.cut = b.saturating_sub(self.sent);
            self.sent = 0;
        }
        true
    }
}

/// The binary feed's server; see the module docs.
#[derive(Debug)]
pub struct BinaryServer {
    listener: TcpListener,
    addr: SocketAddr,
    conns: Vec<Conn>,
    enc: MdEncoder,
    limit: usize,
    heartbeat_ms: u64,
    max_subscribers: usize,
    next_tick_ns: u64,
    /// The wall clock of the last poll (publish has none of its own).
    now_ns: u64,
    /// Shut down: no more accepts, every connection saying goodbye.
    closed: bool,
    stats: ServerStats,
}

impl BinaryServer {
    /// Bind and listen on `addr` (SO_REUSEADDR, no SO_REUSEPORT: the address is this
    /// process's alone), with the limits of `config`.
    pub fn bind(addr: &str, config: &veloz_config::FeedConfig) -> std::io::Result<BinaryServer> {
        let listener = Listener::bind("binary feed", addr)
            .map_err(|e| {
                let kind = match &e {
                    crate::io::BindError::InUse { .. } => ErrorKind::AddrInUse,
                    crate::io::BindError::BadAddress { .. } => ErrorKind::InvalidInput,
                    crate::io::BindError::Io { source, .. } => source.kind(),
                };
                std::io::Error::new(kind, e.to_string())
            })?
            .into_std();
        let addr = listener.local_addr()?;
        Ok(BinaryServer {
            listener,
            addr,
            conns: Vec::new(),
            enc: MdEncoder::new(),
            limit: config.outbound_limit_bytes,
            heartbeat_ms: config.heartbeat_ms,
            max_subscribers: config.max_subscribers,
            next_tick_ns: 0,
            now_ns: 0,
            closed: false,
            stats: ServerStats::default(),
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn accept(&mut self, state: &FeedState, now_ns: u64) -> usize {
        let mut n = 0;
        while n < ACCEPTS_PER_TICK {
            let (stream, peer) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(target: "veloz::feed", "binary feed: accept failed: {e}");
                    break;
                }
            };
            n += 1;
            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                continue;
            }
            let open = self.conns.iter().filter(|c| c.closing.is_none()).count();
            if open >= self.max_subscribers {
                let why = format!(
                    "too many subscribers: this feed serves {} at once (feed.max_subscribers)",
                    self.max_subscribers
                );
                let mut s = stream;
                let _ = s.write(self.enc.goodbye(&why));
                let _ = s.shutdown(Shutdown::Both);
                self.stats.refused += 1;
                tracing::warn!(target: "veloz::feed", %peer, "binary feed: refused {peer}: {why}");
                continue;
            }
            self.stats.accepted += 1;
            let mut conn = Conn {
                stream,
                peer,
                reader: FrameReader::new(DEFAULT_MAX_CLIENT_FRAME),
                out: Vec::new(),
                sent: 0,
                cut: 0,
                subs: vec![0; state.symbols().len()],
                last_out_ns: now_ns,
                bad: 0,
                closing: None,
                eof: false,
            };
            let hello = Hello {
                session: state.session(),
                heartbeat_ms: self.heartbeat_ms,
                symbols: state
                    .symbols()
                    .iter()
                    .map(|s| SymbolDef {
                        id: s.id,
                        name: s.name.clone(),
                        price_scale: s.price_scale,
                    })
                    .collect(),
            };
            conn.push(self.enc.hello(&hello), now_ns);
            self.conns.push(conn);
        }
        n
    }
}

/// Read `conn`'s requests and answer them. `false`: the connection is gone.
fn read_requests(
    conn: &mut Conn,
    enc: &mut MdEncoder,
    state: &FeedState,
    stats: &mut ServerStats,
    now_ns: u64,
) -> (bool, usize) {
    let mut work = 0;
    for _ in 0..READS_PER_TICK {
        if conn.eof {
            break;
        }
        match conn.reader.read_from(&mut conn.stream) {
            Ok(0) if conn.unsent() == 0 => return (false, work),
            Ok(0) => {
                // Half closed: answer what was read, then close.
                conn.eof = true;
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return (false, work),
        }
        work += 1;
        loop {
            if conn.closing.is_some() {
                // Nothing more is answered; what comes is read and dropped.
                while let Ok(Some(_)) = conn.reader.next_frame() {}
                break;
            }
            let msg = match conn.reader.next_frame() {
                Ok(None) => break,
                Ok(Some(frame)) => decode_client(frame),
                Err(e) => {
                    // The frame boundaries are lost: nothing more can be read.
                    stats.refused += 1;
                    conn.goodbye(enc, &format!("protocol error: {e}"), false, now_ns);
                    break;
                }
            };
            match msg {
                Ok(msg) => {
                    conn.bad = 0;
                    answer(conn, enc, state, msg, now_ns);
                }
                Err(e) => bad_request(conn, enc, stats, &e, now_ns),
            }
        }
    }
    (true, work)
}

fn bad_request(
    conn: &mut Conn,
    enc: &mut MdEncoder,
    stats: &mut ServerStats,
    e: &DecodeError,
    now_ns: u64,
) {
    conn.bad += 1;
    if conn.bad >= MAX_BAD_FRAMES {
        stats.refused += 1;
        conn.goodbye(
            enc,
            &format!("{MAX_BAD_FRAMES} malformed requests in a row; the last: {e}"),
            false,
            now_ns,
        );
    } else {
        conn.push(enc.refused(&format!("malformed request: {e}")), now_ns);
    }
}

/// The indices (in `state.symbols()`) of `names` (empty: all), or the Refused reason.
fn resolve(state: &FeedState, names: &[String]) -> Result<Vec<usize>, String> {
    let symbols = state.symbols();
    if names.is_empty() {
        return Ok((0..symbols.len()).collect());
    }
    let mut out = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for n in names {
        match symbols.iter().position(|s| &s.name == n) {
            Some(i) => out.push(i),
            None => unknown.push(format!("{n:?}")),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        let known: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        Err(format!(
            "unknown symbol {} (this feed carries {})",
            unknown.join(", "),
            known.join(", ")
        ))
    }
}

/// Queue a snapshot of `idx`'s `channel` (or a Refused saying why there is none).
fn snapshot(
    conn: &mut Conn,
    enc: &mut MdEncoder,
    state: &FeedState,
    idx: usize,
    channel: Channel,
    now_ns: u64,
) -> bool {
    let Some(info) = state.symbols().get(idx) else {
        return false;
    };
    let id = info.id;
    if let Some(why) = state.unavailable(id) {
        conn.push(enc.refused(&why), now_ns);
        return false;
    }
    let session = state.session();
    let cmd_seq = Some(state.watermark(info.shard));
    let frame = match channel {
        Channel::L3 => state
            .l3_snapshot(id)
            .map(|s| enc.l3_snapshot(session, cmd_seq, &s)),
        Channel::L2 => state
            .l2_snapshot(id)
            .map(|s| enc.l2_snapshot(session, cmd_seq, &s)),
        Channel::Top => state.top(id).map(|t| {
            enc.top_snapshot(
                session,
                cmd_seq,
                &TopSnapshot {
                    symbol: id,
                    seq: t.seq,
                    bid: t.bid,
                    ask: t.ask,
                },
            )
        }),
        Channel::Trades => state
            .last_seq(id, Channel::Trades)
            .map(|seq| enc.trades_snapshot(session, cmd_seq, id, seq, state.recent_trades(id))),
    };
    match frame {
        Some(f) => {
            conn.push(f, now_ns);
            true
        }
        None => {
            let why = format!("{}: no {} snapshot now", info.name, channel.as_str());
            conn.push(enc.refused(&why), now_ns);
            false
        }
    }
}

fn answer(conn: &mut Conn, enc: &mut MdEncoder, state: &FeedState, msg: ClientMsg, now_ns: u64) {
    let all = |c: Vec<Channel>| {
        if c.is_empty() {
            Channel::ALL.to_vec()
        } else {
            c
        }
    };
    match msg {
        ClientMsg::Subscribe { symbols, channels } => match resolve(state, &symbols) {
            Err(why) => conn.push(enc.refused(&why), now_ns),
            Ok(idxs) => {
                let channels = all(channels);
                if conn.subs.len() < state.symbols().len() {
                    conn.subs.resize(state.symbols().len(), 0);
                }
                for idx in idxs {
                    for &c in &channels {
                        if snapshot(conn, enc, state, idx, c, now_ns) {
                            conn.subs[idx] |= bit(c);
                        }
                    }
                }
            }
        },
        ClientMsg::Unsubscribe { symbols, channels } => match resolve(state, &symbols) {
            Err(why) => conn.push(enc.refused(&why), now_ns),
            Ok(idxs) => {
                let mask = all(channels).into_iter().fold(0, |m, c| m | bit(c));
                for idx in idxs {
                    if let Some(m) = conn.subs.get_mut(idx) {
                        *m &= !mask;
                    }
                }
            }
        },
        ClientMsg::SnapshotRequest { symbol, channel } => {
            match resolve(state, std::slice::from_ref(&symbol)) {
                Err(why) => conn.push(enc.refused(&why), now_ns),
                Ok(idxs) => {
                    for idx in idxs {
                        snapshot(conn, enc, state, idx, channel, now_ns);
                    }
                }
            }
        }
        ClientMsg::Ping { id } => {
            conn.push(enc.pong(id, state.session(), &state.watermarks()), now_ns);
        }
    }
}

impl FeedServer for BinaryServer {
    fn kind(&self) -> &'static str {
        "binary"
    }

    fn poll(&mut self, state: &FeedState, now_ns: u64) -> usize {
        self.now_ns = now_ns;
        let tick = now_ns >= self.next_tick_ns;
        let mut work = 0;
        if tick {
            self.next_tick_ns = now_ns + HOUSEKEEPING_NS;
            if !self.closed {
                work += self.accept(state, now_ns);
            }
        }
        let heartbeat_ns = self.heartbeat_ms.saturating_mul(1_000_000);
        let limit = self.limit;
        let BinaryServer {
            conns, enc, stats, ..
        } = self;
        let mut i = 0;
        while i < conns.len() {
            let c = &mut conns[i];
            let mut alive = true;
            if tick {
                let (ok, w) = read_requests(c, enc, state, stats, now_ns);
                alive = ok;
                work += w;
                // Requests whose answers are not read (snapshots asked for again and
                // again) count against the same limit as updates.
                if c.closing.is_none() && c.unsent() > limit {
                    let why = format!("slow consumer: {} bytes unsent", c.unsent());
                    c.goodbye(enc, &why, true, now_ns);
                    stats.cut_off += 1;
                }
                if alive
                    && c.closing.is_none()
                    && c.unsent() == 0
                    && now_ns.saturating_sub(c.last_out_ns) >= heartbeat_ns
                {
                    c.push(enc.heartbeat(state.session(), &state.watermarks()), now_ns);
                }
            }
            if alive && c.unsent() > 0 {
                let before = stats.bytes;
                alive = c.write(stats);
                work += usize::from(stats.bytes != before);
            }
            if c.eof && c.unsent() == 0 {
                alive = false;
            }
            if let Some(deadline) = c.closing {
                if c.unsent() == 0 || now_ns >= deadline {
                    let _ = c.stream.shutdown(Shutdown::Write);
                    // Take what the peer still sent, so the close is a FIN and not a reset
                    // that could destroy the Goodbye in flight.
                    let mut sink = [0u8; 4096];
                    for _ in 0..READS_PER_TICK {
                        if !matches!(read_some(&mut c.stream, &mut sink), Transfer::Done(_)) {
                            break;
                        }
                    }
                    alive = false;
                }
            }
            if alive {
                i += 1;
            } else {
                conns.swap_remove(i);
                work += 1;
            }
        }
        self.stats.connections = self.conns.len() as u64;
        work
    }

    fn publish(&mut self, state: &FeedState, msgs: &[MdMessage]) {
        let symbols = state.symbols();
        let now = self.now_ns;
        for m in msgs {
            let Ok(idx) = symbols.binary_search_by_key(&m.symbol, |s| s.id) else {
                continue;
            };
            let b = bit(m.channel());
            let mut frame: Option<&[u8]> = None;
            for c in &mut self.conns {
                if !c.wants(idx, b) {
                    continue;
                }
                let bytes = match frame {
                    Some(f) => f,
                    None => {
                        let f = self.enc.update(m);
                        frame = Some(f);
                        f
                    }
                };
                c.push(bytes, now);
                self.stats.messages += 1;
            }
        }
        for c in &mut self.conns {
            if c.closing.is_none() && c.unsent() > self.limit {
                let why = format!("slow consumer: {} bytes unsent", c.unsent());
                c.goodbye(&mut self.enc, &why, true, now);
                self.stats.cut_off += 1;
            }
        }
    }

    fn shard_down(&mut self, state: &FeedState, shard: usize) {
        let symbols = state.symbols();
        let why = symbols
            .iter()
            .find(|s| s.shard == shard)
            .and_then(|s| state.unavailable(s.id))
            .unwrap_or_else(|| format!("shard {shard} stopped feeding market data"));
        let now = self.now_ns;
        for c in &mut self.conns {
            let hit = c
                .subs
                .iter()
                .enumerate()
                .any(|(i, m)| *m != 0 && symbols.get(i).is_some_and(|s| s.shard == shard));
            if hit {
                c.goodbye(&mut self.enc, &why, true, now);
            }
        }
    }

    fn close(&mut self, now_ns: u64) {
        self.closed = true;
        self.now_ns = now_ns;
        for c in &mut self.conns {
            c.goodbye(&mut self.enc, "engine shutting down", false, now_ns);
        }
    }

    fn is_flushed(&self) -> bool {
        self.conns.iter().all(|c| c.unsent() == 0)
    }

    fn stats(&self) -> ServerStats {
        self.stats
    }
}

#[cfg(test)]
#[path = "binary_tests.rs"]
mod tests;

//! [`WsServer`]: the WebSocket JSON feed and the live book page, on one port
//! (docs/market-data.md, "WebSocket feed").
//!
//! - `GET /` (or `/index.html`) answers the page (`page.html`, compiled in); `GET /ws` with
//!   an upgrade is the feed; any other path is a 404. The server reads the request head
//!   itself to choose, then hands the stream to `tungstenite` (handshake and frames), with
//!   the head's bytes replayed to it: nothing of the WebSocket protocol is hand-written.
//! - Every connection is a non-blocking `TcpStream` polled by the feed thread; nothing here
//!   waits on a socket.
//! - **Encode once, send as one frame.** [`FeedServer::publish`] encodes each message to
//!   JSON once and appends the text to the pending batch of every connection subscribed to
//!   its (instrument, channel); [`FeedServer::poll`] sends each connection's batch as one
//!   text frame (a JSON array) and flushes. A frame is handed to the socket only when the
//!   previous one has been written, so a slow reader's batch grows, and past
//!   `feed.outbound_limit_bytes` (batch plus the frame still being written) the connection
//!   is closed with code 1008: it reconnects and takes fresh snapshots. Nobody else waits.
//! - Client requests are read, heartbeats sent and connections accepted on a housekeeping
//!   tick ([`HOUSEKEEPING_NS`]), not on every pass, so a busy feed thread spends its
//!   system calls on writes.
//! - Subscribing to an instrument whose shard has not seeded its feed yet is kept: its
//!   snapshot is sent (and its updates follow) once the feed is there.
//! - Limits: `feed.max_subscribers` open WebSocket sessions (one more is closed with code
//!   1013), [`SETUP_MAX`] connections still in their HTTP request or handshake (more are
//!   dropped), [`SETUP_TIMEOUT_NS`] for a request head and handshake, [`REQUEST_MAX`] bytes
//!   per client message (more: closed with code 1009).

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use tungstenite::handshake::server::{NoCallback, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};
use veloz_md::{Channel, MdMessage};

use super::json;
use super::{FeedServer, FeedState, ServerStats};
use session::{cut, request, send, send_awaited, Session};

#[path = "ws_session.rs"]
mod session;

/// The live book page.
const PAGE: &str = include_str!("page.html");
/// Longest HTTP request head read (bytes); a longer one gets a 431.
const HEAD_MAX: usize = 8 << 10;
/// A connection must finish its request head and handshake within this (ns).
pub const SETUP_TIMEOUT_NS: u64 = 5_000_000_000;
/// After a close frame (or an HTTP answer), how long the peer gets to close its side (ns).
const CLOSE_GRACE_NS: u64 = 1_000_000_000;
/// How often client requests are read, heartbeats checked and connections accepted (ns).
pub const HOUSEKEEPING_NS: u64 = 2_000_000;
/// Largest client message (bytes).
pub const REQUEST_MAX: usize = 64 << 10;
/// Connections in their HTTP request or WebSocket handshake at once.
pub const SETUP_MAX: usize = 256;
/// Client messages read from one connection per housekeeping tick.
const READS_PER_TICK: usize = 64;

/// A connection's byte stream: the request head already read is replayed first (to
/// tungstenite's handshake), and written bytes are counted.
#[derive(Debug)]
struct Sock {
    tcp: TcpStream,
    replay: Vec<u8>,
    pos: usize,
    written: u64,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.replay.len() {
            let n = buf.len().min(self.replay.len() - self.pos);
            buf[..n].copy_from_slice(&self.replay[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.replay.len() {
                self.replay = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        self.tcp.read(buf)
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

/// A connection's phase.
enum Phase {
    /// Reading the HTTP request head.
    Head {
        tcp: TcpStream,
        buf: Vec<u8>,
        since: u64,
    },
    /// tungstenite's handshake, waiting for the socket.
    Handshake {
        mid: Box<MidHandshake<ServerHandshake<Sock, NoCallback>>>,
        since: u64,
    },
    /// Writing an HTTP answer (the page, a 404), then closing.
    Http {
        tcp: TcpStream,
        out: Vec<u8>,
        pos: usize,
        since: u64,
    },
    /// An HTTP answer is written and our side shut: wait for the peer's end.
    Linger {
        tcp: TcpStream,
        until: u64,
    },
    Open(Box<Session>),
    /// A close frame is queued: flush it and wait for the peer's close.
    Closing {
        ws: Box<WebSocket<Sock>>,
        until: u64,
        flushed: bool,
    },
    Gone,
}

/// What the server's limits are and what it counts, passed to each connection's step.
struct Ctx<'a> {
    state: &'a FeedState,
    now: u64,
    tick: bool,
    limit: usize,
    heartbeat_ns: u64,
    heartbeat_ms: u64,
    max_subscribers: usize,
    open: usize,
    scratch: &'a mut Vec<u8>,
    stats: &'a mut ServerStats,
}

/// The WebSocket JSON feed and the book page (module docs).
pub struct WsServer {
    listener: TcpListener,
    addr: SocketAddr,
    limit: usize,
    heartbeat_ms: u64,
    max_subscribers: usize,
    conns: Vec<Phase>,
    scratch: Vec<u8>,
    stats: ServerStats,
    next_tick_ns: u64,
    closed: bool,
}

impl fmt::Debug for WsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsServer")
            .field("addr", &self.addr)
            .field("connections", &self.conns.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .write_buffer_size(0)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(REQUEST_MAX))
        .max_frame_size(Some(REQUEST_MAX))
}

fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    // A close frame's reason must fit in 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: reason[..end].to_string().into(),
    }
}

/// The HTTP answer to a request head, or `None` for a WebSocket upgrade of `/ws`.
fn route(head: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or("");
    let mut parts = request.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let upgrade = lines.any(|l| {
        let (name, value) = l.split_once(':').unwrap_or((l, ""));
        name.trim().eq_ignore_ascii_case("upgrade")
            && value.to_ascii_lowercase().contains("websocket")
    });
    let head_only = method == "HEAD";
    match path {
        "/ws" if upgrade && method == "GET" => None,
        "/ws" => Some(http(
            "426 Upgrade Required",
            "text/plain; charset=utf-8",
            b"This is the Veloz WebSocket market-data feed: connect with a WebSocket client.\n",
            head_only,
        )),
        "/" | "/index.html" if method == "GET" || head_only => Some(http(
            "200 OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
            head_only,
        )),
        "/" | "/index.html" => Some(http(
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"only GET and HEAD\n",
            head_only,
        )),
        _ => Some(http(
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found: the book page is at /, the WebSocket feed at /ws\n",
            head_only,
        )),
    }
}

fn http(status: &str, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

impl WsServer {
    /// Listen on `addr` (SO_REUSEADDR, no SO_REUSEPORT: [`crate::io::Listener`]) with the
    /// limits of `config`.
    pub fn bind(addr: &str, config: &veloz_config::FeedConfig) -> std::io::Result<WsServer> {
        let listener = crate::io::Listener::bind("WebSocket feed", addr)
            .map_err(|e| {
                // Keep the kind (an address in use stays `AddrInUse`), the message names it.
                let kind = match &e {
                    crate::io::BindError::InUse { .. } => ErrorKind::AddrInUse,
                    crate::io::BindError::BadAddress { .. } => ErrorKind::InvalidInput,
                    crate::io::BindError::Io { source, .. } => source.kind(),
                };
                io::Error::new(kind, e.to_string())
            })?
            .into_std();
        let addr = listener.local_addr()?;
        Ok(WsServer {
            listener,
            addr,
            limit: config.outbound_limit_bytes,
            heartbeat_ms: config.heartbeat_ms,
            max_subscribers: config.max_subscribers,
            conns: Vec::new(),
            scratch: Vec::with_capacity(4096),
            stats: ServerStats::default(),
            next_tick_ns: 0,
            closed: false,
        })
    }

    /// The address listened on (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn accept(&mut self, now: u64) -> usize {
        let mut n = 0;
        while n < 64 {
            let Ok((tcp, _)) = self.listener.accept() else {
                break;
            };
            n += 1;
            self.stats.accepted += 1;
            let setting_up = self
                .conns
                .iter()
                .filter(|c| matches!(c, Phase::Head { .. } | Phase::Handshake { .. }))
                .count();
            if self.closed
                || setting_up >= SETUP_MAX
                || tcp.set_nonblocking(true).is_err()
                || tcp.set_nodelay(true).is_err()
            {
                self.stats.refused += 1;
                continue;
            }
            self.conns.push(Phase::Head {
                tcp,
                buf: Vec::new(),
                since: now,
            });
        }
        n
    }
}

/// Take the phase out of `slot` (leaving `Gone`).
fn take(slot: &mut Phase) -> Phase {
    std::mem::replace(slot, Phase::Gone)
}

/// One connection's work for this pass: the phase it is in next, and the work done.
fn step(phase: Phase, ctx: &mut Ctx<'_>) -> (Phase, usize) {
    match phase {
        Phase::Head {
            mut tcp,
            mut buf,
            since,
        } => {
            let mut chunk = [0u8; 2048];
            let mut work = 0;
            loop {
                match tcp.read(&mut chunk) {
                    Ok(0) => return (Phase::Gone, 1),
                    Ok(n) => {
                        work += 1;
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > HEAD_MAX {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return (Phase::Gone, 1),
                }
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                if buf.len() > HEAD_MAX {
                    let out = http(
                        "431 Request Header Fields Too Large",
                        "text/plain",
                        b"",
                        false,
                    );
                    return (
                        Phase::Http {
                            tcp,
                            out,
                            pos: 0,
                            since: ctx.now,
                        },
                        1,
                    );
                }
                if ctx.now.saturating_sub(since) > SETUP_TIMEOUT_NS {
                    ctx.stats.refused += 1;
                    return (Phase::Gone, 1);
                }
                return (Phase::Head { tcp, buf, since }, work);
            };
            match route(&buf[..end + 4]) {
                Some(out) => (
                    Phase::Http {
                        tcp,
                        out,
                        pos: 0,
                        since: ctx.now,
                    },
                    1,
                ),
                None => {
                    let sock = Sock {
                        tcp,
                        replay: buf,
                        pos: 0,
                        written: 0,
                    };
                    handshake(
                        tungstenite::accept_with_config(sock, Some(ws_config())),
                        since,
                        ctx,
                    )
                }
            }
        }
        Phase::Handshake { mid, since } => {
            if ctx.now.saturating_sub(since) > SETUP_TIMEOUT_NS {
                ctx.stats.refused += 1;
                return (Phase::Gone, 1);
            }
            handshake(mid.handshake(), since, ctx)
        }
        Phase::Http {
            mut tcp,
            out,
            mut pos,
            since,
        } => {
            while pos < out.len() {
                match tcp.write(&out[pos..]) {
                    Ok(0) => return (Phase::Gone, 1),
                    Ok(n) => {
                        pos += n;
                        ctx.stats.bytes += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        if ctx.now.saturating_sub(since) > SETUP_TIMEOUT_NS {
                            return (Phase::Gone, 1);
                        }
                        return (
                            Phase::Http {
                                tcp,
                                out,
                                pos,
                                since,
                            },
                            0,
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return (Phase::Gone, 1),
                }
            }
            let _ = tcp.shutdown(Shutdown::Write);
            (
                Phase::Linger {
                    tcp,
                    until: ctx.now + CLOSE_GRACE_NS,
                },
                1,
            )
        }
        Phase::Linger { mut tcp, until } => {
            let mut chunk = [0u8; 1024];
            loop {
                match tcp.read(&mut chunk) {
                    Ok(0) => return (Phase::Gone, 1),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return (Phase::Gone, 1),
                }
            }
            if ctx.now > until {
                return (Phase::Gone, 1);
            }
            (Phase::Linger { tcp, until }, 0)
        }
        Phase::Open(session) => open_step(session, ctx),
        Phase::Closing {
            mut ws,
            until,
            mut flushed,
        } => {
            let before = ws.get_ref().written;
            let mut gone = false;
            if !flushed {
                match ws.flush() {
                    Ok(()) => flushed = true,
                    Err(e) if would_block(&e) => {}
                    Err(_) => gone = true,
                }
            }
            while !gone {
                match ws.read() {
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(_) => gone = true,
                }
            }
            ctx.stats.bytes += ws.get_ref().written - before;
            if gone || ctx.now > until {
                return (Phase::Gone, 1);
            }
            (Phase::Closing { ws, until, flushed }, 0)
        }
        Phase::Gone => (Phase::Gone, 0),
    }
}

/// Where a handshake (started or resumed) leaves the connection.
fn handshake(
    result: Result<WebSocket<Sock>, HandshakeError<ServerHandshake<Sock, NoCallback>>>,
    since: u64,
    ctx: &mut Ctx<'_>,
) -> (Phase, usize) {
    match result {
        Ok(ws) => (open(ws, ctx), 1),
        Err(HandshakeError::Interrupted(mid)) => (
            Phase::Handshake {
                mid: Box::new(mid),
                since,
            },
            0,
        ),
        Err(HandshakeError::Failure(e)) => {
            tracing::debug!(target: "veloz::feed", "WebSocket handshake failed: {e}");
            ctx.stats.refused += 1;
            (Phase::Gone, 1)
        }
    }
}

/// A WebSocket session has been established: greet it, or refuse it when full.
fn open(ws: WebSocket<Sock>, ctx: &mut Ctx<'_>) -> Phase {
    if ctx.open >= ctx.max_subscribers {
        ctx.stats.refused += 1;
        let why = format!(
            "too many subscribers (feed.max_subscribers = {}): try again later",
            ctx.max_subscribers
        );
        return closing(Box::new(ws), CloseCode::Again, &why, ctx);
    }
    ctx.open += 1;
    let n = ctx.state.symbols().len();
    let mut s = Session {
        ws,
        subs: vec![0; n],
        awaiting: vec![0; n],
        awaiting_any: false,
        batch: String::new(),
        in_flight: 0,
        last_sent_ns: ctx.now,
        cut: None,
    };
    ctx.scratch.clear();
    json::hello(ctx.scratch, ctx.state, ctx.heartbeat_ms);
    s.push(ctx.scratch);
    Phase::Open(Box::new(s))
}

/// Queue a close frame with `code` and `reason`; the connection lingers until the peer
/// answers or [`CLOSE_GRACE_NS`].
fn closing(
    mut ws: Box<WebSocket<Sock>>,
    code: CloseCode,
    reason: &str,
    ctx: &mut Ctx<'_>,
) -> Phase {
    let before = ws.get_ref().written;
    let flushed = match ws.close(Some(close_frame(code, reason))) {
        Ok(()) => true,
        Err(e) if would_block(&e) => false,
        Err(_) => return Phase::Gone,
    };
    ctx.stats.bytes += ws.get_ref().written - before;
    Phase::Closing {
        ws,
        until: ctx.now + CLOSE_GRACE_NS,
        flushed,
    }
}

/// An open session's pass: close it if it was cut off; on a housekeeping tick read its
/// requests, send snapshots that were waiting for the feed, and a heartbeat after
/// silence; then send its batch.
fn open_step(mut s: Box<Session>, ctx: &mut Ctx<'_>) -> (Phase, usize) {
    if let Some((code, why)) = s.cut.take() {
        return (closing(Box::new(s.ws), code, &why, ctx), 1);
    }
    let mut work = 0;
    if ctx.tick {
        for _ in 0..READS_PER_TICK {
            let before = s.ws.get_ref().written;
            let read = s.ws.read();
            ctx.stats.bytes += s.ws.get_ref().written - before;
            match read {
                Ok(Message::Text(text)) => {
                    work += 1;
                    request(&mut s, text.as_str(), ctx);
                }
                Ok(Message::Binary(_)) => {
                    work += 1;
                    ctx.scratch.clear();
                    json::error(
                        ctx.scratch,
                        "requests are JSON text frames, not binary frames",
                    );
                    s.push(ctx.scratch);
                }
                Ok(_) => work += 1,
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::Capacity(e)) => {
                    ctx.stats.refused += 1;
                    let why = format!("request too large ({e}); at most {REQUEST_MAX} bytes");
                    return (closing(Box::new(s.ws), CloseCode::Size, &why, ctx), 1);
                }
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => return (Phase::Gone, 1),
                Err(tungstenite::Error::Protocol(e)) => {
                    ctx.stats.refused += 1;
                    let why = format!("protocol error: {e}");
                    return (closing(Box::new(s.ws), CloseCode::Protocol, &why, ctx), 1);
                }
                Err(_) => return (Phase::Gone, 1),
            }
        }
        if s.awaiting_any {
            send_awaited(&mut s, ctx);
        }
        if s.batch.is_empty()
            && s.in_flight == 0
            && ctx.now.saturating_sub(s.last_sent_ns) >= ctx.heartbeat_ns
        {
            ctx.scratch.clear();
            json::heartbeat(ctx.scratch, ctx.state);
            s.push(ctx.scratch);
        }
        if s.unsent() > ctx.limit {
            cut(&mut s, ctx.limit, ctx.stats);
            return (Phase::Open(s), 1);
        }
    }
    match send(&mut s, ctx) {
        Ok(w) => (Phase::Open(s), work + w),
        Err(()) => (Phase::Gone, 1),
    }
}

impl FeedServer for WsServer {
    fn kind(&self) -> &'static str {
        "websocket"
    }

    fn poll(&mut self, state: &FeedState, now_ns: u64) -> usize {
        let tick = now_ns >= self.next_tick_ns;
        let mut work = 0;
        if tick {
            self.next_tick_ns = now_ns + HOUSEKEEPING_NS;
            if !self.closed {
                work += self.accept(now_ns);
            }
        }
        let open = self
            .conns
            .iter()
            .filter(|c| matches!(c, Phase::Open(_)))
            .count();
        let WsServer {
            conns,
            scratch,
            stats,
            ..
        } = self;
        let mut ctx = Ctx {
            state,
            now: now_ns,
            tick,
            limit: self.limit,
            heartbeat_ns: self.heartbeat_ms * 1_000_000,
            heartbeat_ms: self.heartbeat_ms,
            max_subscribers: self.max_subscribers,
            open,
            scratch,
            stats,
        };
        for slot in conns.iter_mut() {
            let (next, w) = step(take(slot), &mut ctx);
            *slot = next;
            work += w;
        }
        conns.retain(|c| !matches!(c, Phase::Gone));
        self.stats.connections = self.conns.len() as u64;
        work
    }

    fn publish(&mut self, state: &FeedState, msgs: &[MdMessage]) {
        let symbols = state.symbols();
        for m in msgs {
            let Ok(idx) = symbols.binary_search_by_key(&m.symbol, |s| s.id) else {
                continue;
            };
            let bit = 1u8 << m.channel() as u8;
            let wanted = |c: &Phase| matches!(c, Phase::Open(s) if s.wants(idx, bit));
            if !self.conns.iter().any(wanted) {
                continue;
            }
            // Encoded (and checked as UTF-8) once, copied to each subscriber's batch.
            self.scratch.clear();
            json::update(&mut self.scratch, m, &symbols[idx]);
            let Ok(text) = std::str::from_utf8(&self.scratch) else {
                continue;
            };
            for c in &mut self.conns {
                let Phase::Open(s) = c else { continue };
                if !s.wants(idx, bit) {
                    continue;
                }
                s.push_str(text);
                self.stats.messages += 1;
                if s.unsent() > self.limit {
                    cut(s, self.limit, &mut self.stats);
                }
            }
        }
    }

    fn shard_down(&mut self, state: &FeedState, shard: usize) {
        for c in &mut self.conns {
            let Phase::Open(s) = c else { continue };
            for (idx, info) in state.symbols().iter().enumerate() {
                if info.shard != shard || s.subs[idx] == 0 {
                    continue;
                }
                let why = state
                    .unavailable(info.id)
                    .unwrap_or_else(|| format!("shard {shard} stopped feeding"));
                for ch in Channel::ALL {
                    if s.subs[idx] & (1u8 << ch as u8) != 0 {
                        self.scratch.clear();
                        json::unsubscribed(&mut self.scratch, info, ch, Some(&why));
                        s.push(&self.scratch);
                    }
                }
                s.subs[idx] = 0;
                s.awaiting[idx] = 0;
            }
        }
    }

    fn close(&mut self, now_ns: u64) {
        self.closed = true;
        for slot in &mut self.conns {
            if !matches!(slot, Phase::Open(_)) {
                continue;
            }
            if let Phase::Open(mut s) = take(slot) {
                let before = s.ws.get_ref().written;
                if !s.batch.is_empty() {
                    s.batch.push(']');
                    // The next batch starts with this one's capacity: no regrowth (and no fresh pages)
                    // on every pass.
                    let capacity = s.batch.capacity();
                    let text = std::mem::replace(&mut s.batch, String::with_capacity(capacity));
                    let _ = s.ws.write(Message::text(text));
                }
                let frame = close_frame(CloseCode::Away, "the feed ends: the engine is stopping");
                let flushed = match s.ws.close(Some(frame)) {
                    Ok(()) => true,
                    Err(e) if would_block(&e) => false,
                    Err(_) => continue,
                };
                self.stats.bytes += s.ws.get_ref().written - before;
                *slot = Phase::Closing {
                    ws: Box::new(s.ws),
                    until: now_ns + CLOSE_GRACE_NS,
                    flushed,
                };
            }
        }
    }

    fn is_flushed(&self) -> bool {
        self.conns.iter().all(|c| match c {
            Phase::Open(s) => s.batch.is_empty() && s.in_flight == 0,
            Phase::Http { .. } => false,
            Phase::Closing { flushed, .. } => *flushed,
            _ => true,
        })
    }

    fn stats(&self) -> ServerStats {
        self.stats
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;

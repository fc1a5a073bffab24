//! The binary feed's Rust subscriber (docs/market-data.md, "The Rust client").
//!
//! - [`FeedClient`]: one blocking TCP connection: connect (the server's [`Hello`] is read
//!   before `connect` returns), send requests, read [`ServerMsg`]s with a timeout.
//! - [`FeedBooks`]: a [`FeedClient`] that keeps what it is subscribed to: an L3 or L2
//!   book per instrument ([`Subscriber`]), the top of book, the latest trades; a gap (or an
//!   update that does not fit the book) asks the server for a fresh snapshot of that one
//!   (symbol, channel) and the book is rebuilt from it. [`FeedBooks::sync`] waits until the
//!   feed has caught up (a ping and its pong).
//!
//! Blocking and single-threaded: the caller's thread reads when it calls `next`; a caller
//! that does not read falls behind and the server cuts it off (a `Goodbye`, then the end
//! of the stream).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use veloz_core::SymbolId;

use crate::book::BookError;
use crate::message::{Channel, MdBody, MdMessage, Quote};
use crate::subscriber::{Applied, Subscriber};
use crate::wire::{
    decode_server, DecodeError, FrameReader, Hello, MdEncoder, ServerMsg, Snapshot, Watermarks,
    DEFAULT_MAX_SERVER_FRAME,
};

/// Why the feed client stopped; each names the address and what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("feed address {addr:?} does not resolve: {detail}")]
    Resolve { addr: String, detail: String },
    #[error("cannot connect to the feed at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("feed {addr}: cannot {op}: {source}")]
    Io {
        addr: SocketAddr,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("feed {addr}: the server closed the connection")]
    Closed { addr: SocketAddr },
    #[error("feed {addr}: bad frame from the server: {source}")]
    Decode {
        addr: SocketAddr,
        #[source]
        source: DecodeError,
    },
    #[error("feed {addr}: expected Hello first, got {got}")]
    NoHello { addr: SocketAddr, got: String },
    #[error("feed {addr}: nothing within {ms} ms while waiting for {what}")]
    Timeout {
        addr: SocketAddr,
        what: &'static str,
        ms: u128,
    },
    #[error("feed {addr}: the server said goodbye: {reason}")]
    Goodbye { addr: SocketAddr, reason: String },
}

/// One connection to the binary feed.
#[derive(Debug)]
pub struct FeedClient {
    stream: TcpStream,
    addr: SocketAddr,
    reader: FrameReader,
    enc: MdEncoder,
    hello: Hello,
}

impl FeedClient {
    /// Connect to `addr` (a `host:port`), within `timeout`, and read the server's Hello.
    pub fn connect(addr: &str, timeout: Duration) -> Result<FeedClient, ClientError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| ClientError::Resolve {
                addr: addr.to_string(),
                detail: e.to_string(),
            })?
            .collect();
        let mut last = None;
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, timeout) {
                Ok(s) => {
                    stream = Some((s, *a));
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some((stream, peer)) = stream else {
            return Err(match last {
                Some(source) => ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                },
                None => ClientError::Resolve {
                    addr: addr.to_string(),
                    detail: "it resolves to no address".into(),
                },
            });
        };
        let io = |op| {
            move |source| ClientError::Io {
                addr: peer,
                op,
                source,
            }
        };
        stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(io("set a write timeout"))?;
        let mut client = FeedClient {
            stream,
            addr: peer,
            reader: FrameReader::new(DEFAULT_MAX_SERVER_FRAME),
            enc: MdEncoder::new(),
            hello: Hello {
                session: 0,
                heartbeat_ms: 0,
                symbols: Vec::new(),
            },
        };
        match client.next(timeout)? {
            Some(ServerMsg::Hello(h)) => client.hello = h,
            Some(ServerMsg::Goodbye(reason)) => {
                return Err(ClientError::Goodbye { addr: peer, reason })
            }
            Some(other) => {
                return Err(ClientError::NoHello {
                    addr: peer,
                    got: format!("{other:?}"),
                })
            }
            None => {
                return Err(ClientError::Timeout {
                    addr: peer,
                    what: "the server's Hello",
                    ms: timeout.as_millis(),
                })
            }
        }
        Ok(client)
    }

    /// What the server said at connect: the session and every instrument.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    /// Send the frame the encoder built last.
    fn send_built(&mut self) -> Result<(), ClientError> {
        self.stream
            .write_all(self.enc.finished())
            .map_err(|source| ClientError::Io {
                addr: self.addr,
                op: "send a request",
                source,
            })
    }

    /// Subscribe to `channels` (empty: all) of `symbols` (names; empty: all): a snapshot of
    /// each follows, then their updates.
    pub fn subscribe<S: AsRef<str>>(
        &mut self,
        symbols: &[S],
        channels: &[Channel],
    ) -> Result<(), ClientError> {
        self.enc.subscribe(symbols, channels);
        self.send_built()
    }

    /// Stop the updates of `channels` of `symbols` (empty lists: all).
    pub fn unsubscribe<S: AsRef<str>>(
        &mut self,
        symbols: &[S],
        channels: &[Channel],
    ) -> Result<(), ClientError> {
        self.enc.unsubscribe(symbols, channels);
        self.send_built()
    }

    /// Ask for a fresh snapshot of `symbol`'s `channel` (to heal a gap).
    pub fn request_snapshot(&mut self, symbol: &str, channel: Channel) -> Result<(), ClientError> {
        self.enc.snapshot_request(symbol, channel);
        self.send_built()
    }

    /// Ask for a Pong with `id`; it comes after everything published before.
    pub fn ping(&mut self, id: u64) -> Result<(), ClientError> {
        self.enc.ping(id);
        self.send_built()
    }

    /// The next frame as received (prefix included), `None` when none came within
    /// `timeout`. The end of the stream is [`ClientError::Closed`].
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Option<&[u8]>, ClientError> {
        let deadline = Instant::now() + timeout;
        while !self.reader.ready() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let io = |op| {
                let addr = self.addr;
                move |source| ClientError::Io { addr, op, source }
            };
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(io("set a read timeout"))?;
            match self.reader.read_from(&mut self.stream) {
                Ok(0) => return Err(ClientError::Closed { addr: self.addr }),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io("read")(e)),
            }
        }
        let addr = self.addr;
        self.reader
            .next_frame()
            .map_err(|source| ClientError::Decode { addr, source })
    }

    /// The next message, `None` when none came within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError> {
        let addr = self.addr;
        match self.next_frame(timeout)? {
            None => Ok(None),
            Some(frame) => decode_server(frame)
                .map(Some)
                .map_err(|source| ClientError::Decode { addr, source }),
        }
    }
}

/// What [`FeedBooks`] keeps of one (symbol, channel).
#[derive(Clone, Debug)]
enum Kept {
    Book(Subscriber),
    Top {
        seq: u64,
        bid: Option<Quote>,
        ask: Option<Quote>,
    },
    Trades {
        seq: u64,
        /// Every trade seen since the snapshot (the snapshot's first), oldest first.
        trades: Vec<MdMessage>,
    },
    /// A gap was seen: waiting for the snapshot asked for.
    Broken,
}

/// A [`FeedClient`] that keeps the books of its subscriptions; see the module docs.
#[derive(Debug)]
pub struct FeedBooks {
    client: FeedClient,
    kept: BTreeMap<(SymbolId, Channel), Kept>,
    session: u64,
    next_ping: u64,
    gaps: u64,
}

impl FeedBooks {
    pub fn new(client: FeedClient) -> FeedBooks {
        FeedBooks {
            session: client.hello().session,
            client,
            kept: BTreeMap::new(),
            next_ping: 1 << 32,
            gaps: 0,
        }
    }

    pub fn client(&mut self) -> &mut FeedClient {
        &mut self.client
    }

    pub fn hello(&self) -> &Hello {
        self.client.hello()
    }

    /// Gaps seen (each healed by a snapshot request).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// The feed session of the last snapshot or heartbeat.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// See [`FeedClient::subscribe`].
    pub fn subscribe<S: AsRef<str>>(
        &mut self,
        symbols: &[S],
        channels: &[Channel],
    ) -> Result<(), ClientError> {
        self.client.subscribe(symbols, channels)
    }

    /// `symbol`'s L3 book, when subscribed and whole.
    pub fn l3(&self, symbol: SymbolId) -> Option<&Subscriber> {
        match self.kept.get(&(symbol, Channel::L3)) {
            Some(Kept::Book(s)) => Some(s),
            _ => None,
        }
    }

    /// `symbol`'s L2 book, when subscribed and whole.
    pub fn l2(&self, symbol: SymbolId) -> Option<&Subscriber> {
        match self.kept.get(&(symbol, Channel::L2)) {
            Some(Kept::Book(s)) => Some(s),
            _ => None,
        }
    }

    /// `symbol`'s best bid and ask (from the top channel) with its sequence number.
    pub fn top(&self, symbol: SymbolId) -> Option<(u64, Option<Quote>, Option<Quote>)> {
        match self.kept.get(&(symbol, Channel::Top)) {
            Some(Kept::Top { seq, bid, ask }) => Some((*seq, *bid, *ask)),
            _ => None,
        }
    }

    /// `symbol`'s trades: the snapshot's, then every one since, oldest first.
    pub fn trades(&self, symbol: SymbolId) -> &[MdMessage] {
        match self.kept.get(&(symbol, Channel::Trades)) {
            Some(Kept::Trades { trades, .. }) => trades,
            _ => &[],
        }
    }

    /// The (symbol, channel) pairs kept, with their last sequence number (`None`: waiting
    /// for a snapshot after a gap).
    pub fn kept(&self) -> impl Iterator<Item = (SymbolId, Channel, Option<u64>)> + '_ {
        self.kept.iter().map(|(&(s, c), k)| {
            let seq = match k {
                Kept::Book(b) => Some(b.seq()),
                Kept::Top { seq, .. } | Kept::Trades { seq, .. } => Some(*seq),
                Kept::Broken => None,
            };
            (s, c, seq)
        })
    }

    fn heal(&mut self, symbol: SymbolId, channel: Channel) -> Result<(), ClientError> {
        self.gaps += 1;
        self.kept.insert((symbol, channel), Kept::Broken);
        let Some(name) = self.client.hello().symbol(symbol).map(|s| s.name.clone()) else {
            return Ok(());
        };
        self.client.request_snapshot(&name, channel)
    }

    fn on_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ClientError> {
        let key = (snapshot.symbol(), snapshot.channel());
        let kept = match snapshot {
            Snapshot::L3(s) => match Subscriber::l3(s) {
                Ok(b) => Kept::Book(b),
                // A snapshot that is not a book (an order twice): ask again.
                Err(_) => return self.heal(key.0, key.1),
            },
            Snapshot::L2(s) => Kept::Book(Subscriber::l2(s)),
            Snapshot::Top(t) => Kept::Top {
                seq: t.seq,
                bid: t.bid,
                ask: t.ask,
            },
            Snapshot::Trades(t) => Kept::Trades {
                seq: t.seq,
                trades: t.trades.clone(),
            },
        };
        self.kept.insert(key, kept);
        Ok(())
    }

    fn on_update(&mut self, m: &MdMessage) -> Result<(), ClientError> {
        let key = (m.symbol, m.channel());
        let Some(kept) = self.kept.get_mut(&key) else {
            return Ok(());
        };
        let fits = match kept {
            Kept::Broken => return Ok(()),
            Kept::Book(b) => match b.apply(m) {
                Ok(Applied::Gap { .. }) | Err(BookError::Unknown { .. }) => false,
                Err(_) => false,
                Ok(_) => true,
            },
            Kept::Top { seq, bid, ask } => {
                if m.seq <= *seq {
                    true
                } else if m.seq != *seq + 1 {
                    false
                } else {
                    if let MdBody::Top { bid: b, ask: a } = m.body {
                        (*bid, *ask) = (b, a);
                    }
                    *seq = m.seq;
                    true
                }
            }
            Kept::Trades { seq, trades } => {
                if m.seq <= *seq {
                    true
                } else if m.seq != *seq + 1 {
                    false
                } else {
                    trades.push(*m);
                    *seq = m.seq;
                    true
                }
            }
        };
        if fits {
            Ok(())
        } else {
            self.heal(key.0, key.1)
        }
    }

    /// The next message (after applying it), `None` when none came within `timeout`.
    /// A Goodbye is returned as [`ClientError::Goodbye`].
    pub fn next(&mut self, timeout: Duration) -> Result<Option<ServerMsg>, ClientError> {
        self.next_with_frame(timeout, |_| {})
    }

    /// [`FeedBooks::next`], handing `on_frame` the frame as received first (to record it).
    pub fn next_with_frame(
        &mut self,
        timeout: Duration,
        on_frame: impl FnOnce(&[u8]),
    ) -> Result<Option<ServerMsg>, ClientError> {
        let addr = self.client.peer();
        let Some(frame) = self.client.next_frame(timeout)? else {
            return Ok(None);
        };
        on_frame(frame);
        let msg = decode_server(frame).map_err(|source| ClientError::Decode { addr, source })?;
        match &msg {
            ServerMsg::Snapshot(s) => {
                self.session = s.session;
                self.on_snapshot(&s.snapshot)?;
            }
            ServerMsg::Update(m) => self.on_update(m)?,
            ServerMsg::Goodbye(reason) => {
                return Err(ClientError::Goodbye {
                    addr: self.client.peer(),
                    reason: reason.clone(),
                })
            }
            _ => {}
        }
        Ok(Some(msg))
    }

    /// Ping and read (applying everything) until the pong: the feed's watermarks then.
    pub fn sync(&mut self, timeout: Duration) -> Result<Watermarks, ClientError> {
        let id = self.next_ping;
        self.next_ping += 1;
        self.client.ping(id)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    addr: self.client.peer(),
                    what: "a pong",
                    ms: timeout.as_millis(),
                });
            }
            if let Some(ServerMsg::Pong { id: got, marks }) = self.next(left)? {
                if got == id {
                    return Ok(marks);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

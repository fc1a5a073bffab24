//! A blocking order-entry client over the wire protocol: what the integration tests, the
//! load generator and operators' tools use to talk to `veloz serve`.
//!
//! It owns nothing clever: a `TcpStream` with a read timeout, a [`FrameDecoder`] and a
//! [`FrameEncoder`]. Everything it receives comes back as an owned [`Received`], so a caller
//! can keep reports after the next read.
//!
//! Failover: [`Client::connect_any`] and [`Client::logon_any`] take a list of engine
//! addresses (a primary and its standby, [`parse_addrs`] reads "host:port,host:port") and
//! try them in order, round after round with a short growing pause between rounds, until
//! one answers or the deadline passes. The first round always tries every address, however
//! short the deadline. After a failover, a logon with `resume_after` (docs/protocol.md,
//! section 5a) fetches the reports the client missed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use veloz_core::{AccountId, AssetId, Command, RejectReason, SymbolId};
use veloz_wire::{
    decode_engine, EngineMessage, ExecutionReport, FrameDecoder, FrameEncoder, LogoutReason,
    OpenOrdersEnd, OrderStatus, Query, ShardBalance, StreamResumed, TradePrint, WireError,
};

/// Client-side failures, naming the peer and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{peer}: {source}")]
    Io {
        peer: String,
        source: std::io::Error,
    },
    #[error("{peer}: undecodable frame from the engine: {source}")]
    Wire { peer: String, source: WireError },
    #[error("{peer}: the engine closed the connection")]
    Closed { peer: String },
    #[error("{peer}: logon refused: {reason:?} {text}")]
    LogonRefused {
        peer: String,
        reason: LogoutReason,
        text: String,
    },
    #[error("{peer}: no answer within {waited:?} while waiting for {what}")]
    Timeout {
        peer: String,
        waited: Duration,
        what: &'static str,
    },
    /// No address of a list answered before the deadline ([`Client::connect_any`],
    /// [`Client::logon_any`]): every address with the last error it gave.
    #[error(
        "no engine answered within {waited:?} ({rounds} rounds over {} addresses): {}",
        tried.len(),
        tried_list(tried)
    )]
    NoEngine {
        waited: Duration,
        /// How many rounds over the list were begun.
        rounds: u32,
        /// (address as given, its last error), in the list's order.
        tried: Vec<(String, String)>,
    },
}

/// "a: error; b: error".
fn tried_list(tried: &[(String, String)]) -> String {
    let parts: Vec<String> = tried.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    parts.join("; ")
}

/// Why one try of an address failed, without the peer (the list names it).
fn cause(e: &ClientError) -> String {
    match e {
        ClientError::Io { source, .. } => source.to_string(),
        ClientError::Wire { source, .. } => format!("undecodable frame: {source}"),
        ClientError::Closed { .. } => {
            "accepted, then closed the connection before the logon answer".to_string()
        }
        ClientError::LogonRefused { reason, text, .. } => {
            format!("logon refused: {reason:?} {text}")
        }
        ClientError::Timeout { waited, what, .. } => {
            format!("no answer within {waited:?} while waiting for {what}")
        }
        ClientError::NoEngine { .. } => e.to_string(),
    }
}

/// How long one connection try may take at most when a list has several addresses: a dead
/// host that drops SYNs must not hold up its standby for the whole deadline.
const TRY_CONNECT: Duration = Duration::from_secs(1);
/// The least time one try after the first round gets when the deadline is (nearly) spent.
const TRY_MIN: Duration = Duration::from_millis(100);
/// The pause after the first round in which no address answered; it doubles each round up
/// to [`PAUSE_MAX`].
const PAUSE_FIRST: Duration = Duration::from_millis(50);
const PAUSE_MAX: Duration = Duration::from_millis(500);
/// How long [`Client::connect`] waits for the TCP connection.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long a logon waits for its answer.
const LOGON_WAIT: Duration = Duration::from_secs(5);

/// How long one connection try of `addrs` may wait: [`TRY_CONNECT`] when there is a
/// standby to go on to, else as long as [`Client::connect`].
fn connect_cap(addrs: &[String]) -> Duration {
    if addrs.len() > 1 {
        TRY_CONNECT
    } else {
        CONNECT_WAIT
    }
}

/// Split "host:port,host:port" into addresses (each trimmed, empty ones skipped).
pub fn parse_addrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// Try `attempt` on each address in order, round after round (pausing [`PAUSE_FIRST`],
/// doubling to [`PAUSE_MAX`], between rounds) until one succeeds or `deadline` (from now)
/// has passed. `attempt` gets the address and the time it may take: in the first round at
/// least [`LOGON_WAIT`] (every address gets a full try, whatever the deadline), later the
/// time left (at least [`TRY_MIN`]). An error for which `retry` is false ends the loop at
/// once.
fn first_answer<T>(
    addrs: &[String],
    deadline: Duration,
    mut attempt: impl FnMut(&str, Duration) -> Result<T, ClientError>,
    retry: impl Fn(&ClientError) -> bool,
) -> Result<(T, usize), ClientError> {
    if addrs.is_empty() {
        return Err(ClientError::Io {
            peer: "(none)".into(),
            source: std::io::Error::new(ErrorKind::InvalidInput, "no engine address given"),
        });
    }
    let start = Instant::now();
    let mut last: Vec<Option<String>> = vec![None; addrs.len()];
    let mut pause = PAUSE_FIRST;
    let mut rounds = 0u32;
    'rounds: loop {
        rounds += 1;
        for (i, addr) in addrs.iter().enumerate() {
            let left = deadline.saturating_sub(start.elapsed());
            if rounds > 1 && left.is_zero() {
                break 'rounds;
            }
            let budget = left.max(if rounds == 1 { LOGON_WAIT } else { TRY_MIN });
            match attempt(addr, budget) {
                Ok(v) => return Ok((v, i)),
                Err(e) if retry(&e) => last[i] = Some(cause(&e)),
                Err(e) => return Err(e),
            }
        }
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(PAUSE_MAX);
        if deadline <= start.elapsed() {
            break;
        }
    }
    Err(ClientError::NoEngine {
        waited: start.elapsed(),
        rounds,
        tried: addrs
            .iter()
            .zip(last)
            .map(|(a, e)| (a.clone(), e.unwrap_or_else(|| "not tried".into())))
            .collect(),
    })
}

/// Something the engine sent, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    LogonAck {
        session_id: u64,
        heartbeat_interval_ms: u32,
        /// (id, symbol)
        instruments: Vec<(SymbolId, String)>,
        /// The account's report streams (one per shard).
        streams: u16,
    },
    Logout {
        reason: LogoutReason,
        text: String,
    },
    Heartbeat,
    Report(ExecutionReport<'static>),
    Trade(TradePrint),
    StreamResumed(StreamResumed),
    OrderStatus(OrderStatus),
    OpenOrdersEnd(OpenOrdersEnd),
    Balances(Balances),
}

/// The account's balances, summed over the engine's shards (a `BalanceReport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Balances {
    pub request_id: u64,
    pub account: AccountId,
    /// Set when the request was refused (nothing listed then).
    pub reject_reason: Option<RejectReason>,
    /// Every configured asset, ascending by id; empty when the engine runs without money.
    pub assets: Vec<AssetBalance>,
    /// Each shard's non-zero slices, when asked for (`by_shard`).
    pub slices: Vec<ShardBalance>,
}

/// One asset's balance, in the asset's smallest units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetBalance {
    pub asset: AssetId,
    pub name: String,
    /// Decimal places of the smallest unit.
    pub scale: u8,
    pub available: u64,
    pub held: u64,
}

impl Balances {
    /// The balance of the asset named `name` (e.g. "USD"), if the engine has it.
    pub fn of(&self, name: &str) -> Option<&AssetBalance> {
        self.assets.iter().find(|a| a.name == name)
    }
}

/// A blocking client session.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    closed: bool,
    /// The account's report streams, from the LogonAck (0 before logon).
    streams: u16,
}

impl Client {
    /// Connect to `addr` (no logon yet).
    pub fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        let addr = addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ClientError::Io {
                peer: "?".into(),
                source: std::io::Error::new(ErrorKind::InvalidInput, "bad address"),
            })?;
        Client::open(addr, CONNECT_WAIT)
    }

    /// Connect to the first address of `addrs` that accepts a TCP connection, trying them
    /// in order, round after round (pausing 50 ms, growing to 500 ms, between rounds),
    /// until `deadline` (from now) has passed. Returns the client and the index of the
    /// address that answered; after the deadline, [`ClientError::NoEngine`] names every
    /// address and its last error. The first round tries every address, also with a zero
    /// deadline; a try waits at most 1 s for the connection when there are several
    /// addresses (5 s, as [`Client::connect`], for one).
    pub fn connect_any(
        addrs: &[String],
        deadline: Duration,
    ) -> Result<(Client, usize), ClientError> {
        let cap = connect_cap(addrs);
        first_answer(
            addrs,
            deadline,
            |addr, budget| Client::connect_str(addr, budget.min(cap)),
            |_| true,
        )
    }

    /// [`Client::connect_any`] and a logon ([`Client::logon_resuming`]) on the address that
    /// answered; returns the client, the session id and the index of the address. A try
    /// fails, and the loop goes on to the next address until the deadline, also when the
    /// engine accepts the connection but closes it (an engine still starting), does not
    /// answer the logon in time (5 s in the first round, then the time left), answers with
    /// something undecodable or refuses the logon because it is shutting down
    /// (`EngineShutdown`). Any other refusal (a bad token) is returned at once as
    /// [`ClientError::LogonRefused`]: another try would get the same answer.
    pub fn logon_any(
        addrs: &[String],
        account: AccountId,
        token: &str,
        resume_after: Option<&[u64]>,
        deadline: Duration,
    ) -> Result<(Client, u64, usize), ClientError> {
        let cap = connect_cap(addrs);
        let ((client, session), index) = first_answer(
            addrs,
            deadline,
            |addr, budget| {
                let c = Client::connect_str(addr, budget.min(cap))?;
                c.logon_on(account, token, resume_after, budget.min(LOGON_WAIT))
            },
            |e| match e {
                ClientError::LogonRefused { reason, .. } => *reason == LogoutReason::EngineShutdown,
                _ => true,
            },
        )?;
        Ok((client, session, index))
    }

    /// Resolve "host:port" (errors name it) and connect within `timeout`.
    fn connect_str(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        let io = |source| ClientError::Io {
            peer: addr.to_string(),
            source,
        };
        let resolved = addr.to_socket_addrs().map_err(io)?.next().ok_or_else(|| {
            io(std::io::Error::new(
                ErrorKind::InvalidInput,
                "the name resolves to no address",
            ))
        })?;
        Client::open(resolved, timeout)
    }

    /// Open the TCP connection to `addr`, waiting at most `timeout`.
    fn open(addr: SocketAddr, timeout: Duration) -> Result<Client, ClientError> {
        let io = |source| ClientError::Io {
            peer: addr.to_string(),
            source,
        };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        Ok(Client {
            stream,
            peer: addr,
            decoder: FrameDecoder::new(1 << 20),
            encoder: FrameEncoder::new(),
            closed: false,
            streams: 0,
        })
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            peer: self.peer.to_string(),
            source,
        }
    }

    /// Connect and log on; returns the client and the session id.
    pub fn logon(
        addr: impl ToSocketAddrs,
        account: AccountId,
        token: &str,
    ) -> Result<(Client, u64), ClientError> {
        Client::logon_resuming(addr, account, token, None)
    }

    /// Connect and log on asking for the reports after `resume_after[stream]` on each
    /// stream (`None`: no resend); returns the client and the session id. The resent
    /// reports and one `StreamResumed` per stream follow the LogonAck.
    pub fn logon_resuming(
        addr: impl ToSocketAddrs,
        account: AccountId,
        token: &str,
        resume_after: Option<&[u64]>,
    ) -> Result<(Client, u64), ClientError> {
        Client::connect(addr)?.logon_on(account, token, resume_after, LOGON_WAIT)
    }

    /// Send the Logon on this connection and wait at most `wait` for its answer.
    fn logon_on(
        self,
        account: AccountId,
        token: &str,
        resume_after: Option<&[u64]>,
        wait: Duration,
    ) -> Result<(Client, u64), ClientError> {
        let mut c = self;
        let frame = c
            .encoder
            .logon_resuming(account, token, resume_after)
            .to_vec();
        c.send_raw(&frame)?;
        match c.recv_within(wait, "LogonAck")? {
            Received::LogonAck {
                session_id,
                streams,
                ..
            } => {
                c.streams = streams;
                Ok((c, session_id))
            }
            Received::Logout { reason, text } => Err(ClientError::LogonRefused {
                peer: c.peer.to_string(),
                reason,
                text,
            }),
            _ => Err(ClientError::Timeout {
                peer: c.peer.to_string(),
                waited: wait,
                what: "LogonAck",
            }),
        }
    }

    /// Send an order-status or open-orders request.
    pub fn query(&mut self, q: &Query) -> Result<(), ClientError> {
        let frame = self.encoder.query(q).to_vec();
        self.send_raw(&frame)
    }

    /// Ask for the account's balances (answered by one [`Received::Balances`]); `by_shard`
    /// also lists each shard's slice.
    pub fn request_balances(&mut self, request_id: u64, by_shard: bool) -> Result<(), ClientError> {
        self.query(&Query::Balances {
            request_id,
            by_shard,
        })
    }

    /// Ask for the account's balances and wait at most `timeout` for the answer. Messages
    /// that arrive before it (reports, answers to other requests) are read and dropped: call
    /// it when nothing else is expected, or use [`Client::request_balances`] and
    /// [`Client::recv`].
    pub fn balances(
        &mut self,
        request_id: u64,
        by_shard: bool,
        timeout: Duration,
    ) -> Result<Balances, ClientError> {
        self.request_balances(request_id, by_shard)?;
        self.wait_for(timeout, "a BalanceReport", |m| match m {
            Received::Balances(b) if b.request_id == request_id => Some(b),
            _ => None,
        })
    }

    /// The first message within `timeout` that `pick` takes, skipping the others; a Logout
    /// on the way is the error it names.
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &'static str,
        mut pick: impl FnMut(Received) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left, what)? {
                Received::Logout { reason, text } => {
                    return Err(ClientError::LogonRefused {
                        peer: self.peer.to_string(),
                        reason,
                        text,
                    })
                }
                other => {
                    if let Some(t) = pick(other) {
                        return Ok(t);
                    }
                }
            }
        }
    }

    /// Send one order-entry command (its account field is ignored by the engine).
    pub fn send(&mut self, cmd: &Command) -> Result<(), ClientError> {
        let frame = self.encoder.command(cmd).to_vec();
        self.send_raw(&frame)
    }

    /// Send a heartbeat.
    pub fn heartbeat(&mut self) -> Result<(), ClientError> {
        let frame = self.encoder.heartbeat(0).to_vec();
        self.send_raw(&frame)
    }

    /// Send a Logout.
    pub fn logout(&mut self) -> Result<(), ClientError> {
        let frame = self
            .encoder
            .logout(&veloz_wire::Logout {
                reason: LogoutReason::Requested,
                text: "",
            })
            .to_vec();
        self.send_raw(&frame)
    }

    /// Write bytes as they are (tests send malformed frames with this).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes).map_err(|e| self.io(e))
    }

    /// The next message, waiting at most `timeout`; `Ok(None)` when nothing came.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    let msg = decode_engine(frame).map_err(|source| ClientError::Wire {
                        peer: self.peer.to_string(),
                        source,
                    })?;
                    return Ok(Some(own(msg)));
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ClientError::Wire {
                        peer: self.peer.to_string(),
                        source,
                    })
                }
            }
            if self.closed {
                return Err(ClientError::Closed {
                    peer: self.peer.to_string(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| self.io(e))?;
            match self.stream.read(self.decoder.read_buf()) {
                Ok(0) => self.closed = true,
                Ok(n) => self.decoder.commit(n),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => self.closed = true,
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    /// The next message other than a heartbeat, or a timeout error naming `what`.
    pub fn recv_within(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Received, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left)? {
                Some(Received::Heartbeat) => continue,
                Some(m) => return Ok(m),
                None => {
                    return Err(ClientError::Timeout {
                        peer: self.peer.to_string(),
                        waited: timeout,
                        what,
                    })
                }
            }
        }
    }

    /// The next execution report (skipping heartbeats and trade prints).
    pub fn next_report(
        &mut self,
        timeout: Duration,
    ) -> Result<ExecutionReport<'static>, ClientError> {
        self.wait_for(timeout, "an execution report", |m| match m {
            Received::Report(r) => Some(r),
            _ => None,
        })
    }

    /// How many report streams the account has (from the LogonAck).
    pub fn streams(&self) -> u16 {
        self.streams
    }

    /// Stop the socket from being read by us (tests of slow consumers).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Copy a decoded engine message into owned values (reason texts are the static names).
fn own(msg: EngineMessage<'_>) -> Received {
    match msg {
        EngineMessage::LogonAck(a) => Received::LogonAck {
            session_id: a.session_id,
            heartbeat_interval_ms: a.heartbeat_interval_ms,
            instruments: a
                .instruments
                .iter()
                .map(|i| (i.id, i.symbol.to_string()))
                .collect(),
            streams: a.streams,
        },
        EngineMessage::Logout(l) => Received::Logout {
            reason: l.reason,
            text: l.text.to_string(),
        },
        EngineMessage::Heartbeat(_) => Received::Heartbeat,
        EngineMessage::ExecutionReport(r) => {
            let reason_text: &'static str = match (r.reject_reason, r.cancel_reason) {
                (Some(reason), _) => reason.name(),
                (None, Some(reason)) => reason.name(),
                _ => "",
            };
            Received::Report(ExecutionReport { reason_text, ..r })
        }
        EngineMessage::Trade(t) => Received::Trade(t),
        EngineMessage::StreamResumed(r) => Received::StreamResumed(r),
        EngineMessage::OrderStatus(o) => Received::OrderStatus(o),
        EngineMessage::OpenOrdersEnd(e) => Received::OpenOrdersEnd(e),
        EngineMessage::BalanceReport(b) => Received::Balances(Balances {
            request_id: b.request_id,
            account: b.account,
            reject_reason: b.reject_reason,
            assets: b
                .balances
                .iter()
                .map(|a| AssetBalance {
                    asset: a.asset,
                    name: a.name.to_string(),
                    scale: a.scale,
                    available: a.available,
                    held: a.held,
                })
                .collect(),
            slices: b.slices,
        }),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

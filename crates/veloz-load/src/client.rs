//! A blocking order-entry client over the wire protocol: what the integration tests, the
//! load generator and operators' tools use to talk to `veloz serve`.
//!
//! It owns nothing clever: a `TcpStream` with a read timeout, a [`FrameDecoder`] and a
//! [`FrameEncoder`]. Everything it receives comes back as an owned [`Received`], so a caller
//! can keep reports after the next read.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use veloz_core::{AccountId, Command, SymbolId};
use veloz_wire::{
    decode_engine, EngineMessage, ExecutionReport, FrameDecoder, FrameEncoder, LogoutReason,
    OpenOrdersEnd, OrderStatus, Query, StreamResumed, TradePrint, WireError,
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
        let io = |source| ClientError::Io {
            peer: addr.to_string(),
            source,
        };
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
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
        let mut c = Client::connect(addr)?;
        let frame = c
            .encoder
            .logon_resuming(account, token, resume_after)
            .to_vec();
        c.send_raw(&frame)?;
        match c.recv_within(Duration::from_secs(5), "LogonAck")? {
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
                waited: Duration::from_secs(5),
                what: "LogonAck",
            }),
        }
    }

    /// Send an order-status or open-orders request.
    pub fn query(&mut self, q: &Query) -> Result<(), ClientError> {
        let frame = self.encoder.query(q).to_vec();
        self.send_raw(&frame)
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
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left, "an execution report")? {
                Received::Report(r) => return Ok(r),
                Received::Logout { reason, text } => {
                    return Err(ClientError::LogonRefused {
                        peer: self.peer.to_string(),
                        reason,
                        text,
                    })
                }
                _ => continue,
            }
        }
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
    }
}

//! One client connection on the shard that accepted it.
//!
//! The socket is non-blocking and busy-polled by the shard loop (glommio's io_uring wait
//! parks ~83 us per round trip here; polling the socket reaches the ~9 us floor:
//! PLATFORM.md). A session never blocks its shard:
//! - reading stops while a command it produced waits for room in a full ring
//!   (backpressure; nothing is dropped);
//! - reports go into a bounded outbound buffer; a client that lets more than
//!   `outbound_limit_bytes` pile up is disconnected as a slow consumer.
//!
//! Secrets: the logon token is hashed by [`super::auth`] while the frame is being decoded
//! and exists nowhere else; [`Session`]'s Debug output names the peer and account only.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use veloz_core::{AccountId, ClientOrderId, SelfTradePrevention};
use veloz_wire::{FrameDecoder, FrameEncoder, Logout, LogoutReason};

use super::mesh::{SessionRef, ShardMsg};

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected; only a Logon is accepted.
    AwaitingLogon,
    /// Logged on as `account`.
    Active {
        account: AccountId,
        stp: SelfTradePrevention,
    },
    /// A Logout was queued: flush what is buffered, then close.
    Closing,
}

/// What a poll of the socket found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// `n` bytes were read (0 = nothing waiting).
    Data(usize),
    /// The peer closed the connection (or it failed).
    Closed,
}

/// One client connection.
pub struct Session {
    pub me: SessionRef,
    pub peer: SocketAddr,
    stream: TcpStream,
    pub decoder: FrameDecoder,
    out: Vec<u8>,
    /// First byte of `out` not yet written to the socket.
    out_pos: usize,
    pub state: State,
    /// minstant ticks of the last frame received / sent.
    pub last_in: u64,
    pub last_out: u64,
    pub connected_at: u64,
    /// When the session entered [`State::Closing`] (0 = not closing).
    pub closing_since: u64,
    pub bad_messages: u32,
    /// A command that did not fit into a full ring: reading is paused until it is sent.
    pub stalled: Option<(usize, ShardMsg)>,
    /// Mass cancels over all symbols waiting for every shard's answer:
    /// (client order id, shards still to answer, orders cancelled so far).
    pub pending_mass: Vec<(ClientOrderId, usize, u32)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.me.id())
            .field("peer", &self.peer)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(
        me: SessionRef,
        stream: TcpStream,
        peer: SocketAddr,
        max_frame: u32,
        now: u64,
    ) -> Session {
        Session {
            me,
            peer,
            stream,
            decoder: FrameDecoder::new(max_frame),
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            state: State::AwaitingLogon,
            last_in: now,
            last_out: now,
            connected_at: now,
            closing_since: 0,
            bad_messages: 0,
            stalled: None,
            pending_mass: Vec::new(),
        }
    }

    pub fn account(&self) -> Option<AccountId> {
        match self.state {
            State::Active { account, .. } => Some(account),
            _ => None,
        }
    }

    /// Read what the socket has, up to `budget` bytes (fairness between sessions).
    pub fn read(&mut self, budget: usize) -> ReadOutcome {
        let mut total = 0;
        while total < budget {
            let buf = self.decoder.read_buf();
            // Unhandled frames fill the buffer (a stalled session): read nothing now. A read
            // into an empty buffer returns 0, which must not be taken for end of stream.
            if buf.is_empty() {
                break;
            }
            match self.stream.read(buf) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    self.decoder.commit(n);
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Closed,
            }
        }
        ReadOutcome::Data(total)
    }

    /// Queue a frame. Returns `false` when the outbound buffer is over `limit`: the client
    /// is not reading (a slow consumer).
    pub fn queue(&mut self, frame: &[u8], limit: usize) -> bool {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(frame);
        self.pending_out() <= limit
    }

    /// Queue a Logout and move to [`State::Closing`].
    pub fn logout(&mut self, enc: &mut FrameEncoder, reason: LogoutReason, text: &str) {
        if self.state == State::Closing {
            return;
        }
        let frame = enc.logout(&Logout { reason, text });
        // The Logout is queued whatever the buffer holds: it is the last frame.
        self.out.extend_from_slice(frame);
        self.state = State::Closing;
    }

    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Write what is queued, as far as the socket takes it. Returns bytes written, or the
    /// error that broke the connection.
    pub fn flush(&mut self) -> std::io::Result<usize> {
        let mut written = 0;
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    written += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > 1 << 20 {
            // Keep the buffer from creeping: move the unsent tail to the front.
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(written)
    }

    /// Disconnect at once (slow consumer): drop the unsent backlog, try once to send the
    /// Logout, and close. The peer may not see the Logout: it is not reading, and closing a
    /// socket with unread input resets it.
    pub fn abort(&mut self, enc: &mut FrameEncoder, reason: LogoutReason, text: &str) {
        self.out.clear();
        self.out_pos = 0;
        self.out
            .extend_from_slice(enc.logout(&Logout { reason, text }));
        let _ = self.flush();
        self.state = State::Closing;
        self.close();
    }

    /// Shut the socket down both ways (the peer sees EOF after what was flushed).
    pub fn close(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

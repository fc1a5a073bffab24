//! One client connection and its state machine.
//!
//! ```text
//!  AwaitingLogon ──logon ok──► Active ──logout / timeout / bad input──► Closing ──► dropped
//!        └──────── denied, timeout, bad input ─────────────────────────────┘
//! ```
//!
//! Invariants:
//! - only [`State::Active`] sessions have an account; only they send orders on;
//! - a session in [`State::Closing`] reads nothing more and buffers nothing but its last
//!   Logout; it is dropped once that is written, or after a grace period;
//! - while it holds a command that waits for ring room (`stalled`), nothing more is
//!   decoded from it (backpressure: nothing is dropped);
//! - the outbound buffer holds at most `outbound_limit_bytes` of reports; past that the
//!   session is a slow consumer and is aborted (the gateway decides).
//!
//! Secrets: the logon token is hashed by [`Authenticator`] while the frame is being decoded
//! and exists nowhere else; [`Session`]'s Debug output names the peer and account only.

use std::net::SocketAddr;

use veloz_core::{AccountId, ClientOrderId, Command, Event, SelfTradePrevention};
use veloz_wire::{
    decode_client, ClientMessage, FrameDecoder, FrameEncoder, Logout, LogoutReason, WireError,
};

use crate::auth::{Authenticator, LogonResult};
use crate::io::{self, Stream, Transfer};
use crate::mesh::{SessionRef, ShardMsg};

/// How long a closing session may take to accept its last frames before it is dropped.
const CLOSE_GRACE_NS: u64 = 1_000_000_000;
/// The outbound buffer is compacted when this many sent bytes sit in front of unsent ones.
const COMPACT_AFTER: usize = 1 << 20;
/// Capacity the outbound buffer starts with.
const OUT_CAPACITY: usize = 64 * 1024;

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

/// What a read of the stream found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// `n` bytes were read (0 = nothing waiting).
    Data(usize),
    /// The peer closed the connection (or it failed).
    Closed,
}

/// A decoded client frame, owned (the token is already checked and gone).
#[derive(Debug)]
pub(crate) enum ClientFrame {
    Logon(AccountId, LogonResult),
    Logout,
    Heartbeat,
    Order(Command),
}

/// The timers of [`Session::tick`], in ns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timers {
    pub logon_ns: u64,
    pub heartbeat_ns: u64,
    pub idle_ns: u64,
}

/// One client connection.
pub struct Session<T: Stream> {
    me: SessionRef,
    peer: SocketAddr,
    stream: T,
    decoder: FrameDecoder,
    out: Vec<u8>,
    /// First byte of `out` not yet written to the stream.
    out_pos: usize,
    state: State,
    /// Clock readings (ns) of the last frame received / sent.
    last_in: u64,
    last_out: u64,
    connected_at: u64,
    /// When the session entered [`State::Closing`] (0 = not closing).
    closing_since: u64,
    bad_messages: u32,
    /// A command that did not fit into a full ring: reading is paused until it is sent.
    stalled: Option<(usize, ShardMsg)>,
    /// Mass cancels over all symbols waiting for every shard's answer:
    /// (client order id, shards still to answer, orders cancelled so far).
    pending_mass: Vec<(ClientOrderId, usize, u32)>,
}

impl<T: Stream> std::fmt::Debug for Session<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.me.id())
            .field("peer", &self.peer)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T: Stream> Session<T> {
    pub(crate) fn new(
        me: SessionRef,
        stream: T,
        peer: SocketAddr,
        max_frame: u32,
        now: u64,
    ) -> Session<T> {
        Session {
            me,
            peer,
            stream,
            decoder: FrameDecoder::new(max_frame),
            out: Vec::with_capacity(OUT_CAPACITY),
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

    pub fn me(&self) -> SessionRef {
        self.me
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn account(&self) -> Option<AccountId> {
        match self.state {
            State::Active { account, .. } => Some(account),
            _ => None,
        }
    }

    pub fn is_closing(&self) -> bool {
        self.state == State::Closing
    }

    /// Whether the session holds a command waiting for ring room.
    pub fn is_stalled(&self) -> bool {
        self.stalled.is_some()
    }

    /// Read what the stream has, up to `budget` bytes (fairness between sessions).
    pub(crate) fn read(&mut self, budget: usize) -> ReadOutcome {
        let mut total = 0;
        while total < budget {
            let buf = self.decoder.read_buf();
            // Unhandled frames fill the buffer (a stalled session): read nothing now. A read
            // into an empty buffer returns 0, which must not be taken for end of stream.
            if buf.is_empty() {
                break;
            }
            match io::read_some(&mut self.stream, buf) {
                Transfer::Done(n) => {
                    self.decoder.commit(n);
                    total += n;
                }
                Transfer::WouldBlock => break,
                Transfer::Closed(_) => return ReadOutcome::Closed,
            }
        }
        ReadOutcome::Data(total)
    }

    /// Decode the next complete frame received at `now`; `None` when none is complete.
    /// A Logon's token is checked here and dropped.
    pub(crate) fn next_frame(
        &mut self,
        now: u64,
        auth: &Authenticator,
    ) -> Option<Result<ClientFrame, WireError>> {
        let account = self.account().unwrap_or(0);
        let decoded = match self.decoder.next_frame() {
            Ok(None) => return None,
            Ok(Some(frame)) => match decode_client(frame, account) {
                Ok(ClientMessage::Logon(l)) => Ok(ClientFrame::Logon(
                    l.account,
                    auth.logon(l.account, l.token.as_bytes()),
                )),
                Ok(ClientMessage::Logout(_)) => Ok(ClientFrame::Logout),
                Ok(ClientMessage::Heartbeat(_)) => Ok(ClientFrame::Heartbeat),
                Ok(ClientMessage::Order(cmd)) => Ok(ClientFrame::Order(cmd)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.last_in = now;
        Some(decoded)
    }

    /// Count a malformed or misplaced message; returns how many there were.
    pub(crate) fn bad_message(&mut self) -> u32 {
        self.bad_messages += 1;
        self.bad_messages
    }

    /// AwaitingLogon -> Active. Returns `false` (and changes nothing) in any other state.
    pub(crate) fn log_on(&mut self, account: AccountId, stp: SelfTradePrevention) -> bool {
        if self.state != State::AwaitingLogon {
            return false;
        }
        self.state = State::Active { account, stp };
        true
    }

    /// Buffer a frame sent at `now`. Returns `false` when the outbound buffer is over
    /// `limit`: the client is not reading (a slow consumer).
    pub(crate) fn buffer(&mut self, frame: &[u8], limit: usize, now: u64) -> bool {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(frame);
        self.last_out = now;
        self.pending_out() <= limit
    }

    /// Buffer a Logout and move to [`State::Closing`].
    pub(crate) fn logout(&mut self, enc: &mut FrameEncoder, reason: LogoutReason, text: &str) {
        if self.state == State::Closing {
            return;
        }
        let frame = enc.logout(&Logout { reason, text });
        // The Logout is buffered whatever the buffer holds: it is the last frame.
        self.out.extend_from_slice(frame);
        self.state = State::Closing;
    }

    /// Bytes buffered and not yet written.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Write what is buffered, as far as the stream takes it. Returns bytes written, or the
    /// error that broke the connection.
    pub(crate) fn flush(&mut self) -> std::io::Result<usize> {
        let mut written = 0;
        while self.out_pos < self.out.len() {
            match io::write_some(&mut self.stream, &self.out[self.out_pos..]) {
                Transfer::Done(n) => {
                    self.out_pos += n;
                    written += n;
                }
                Transfer::WouldBlock => break,
                Transfer::Closed(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > COMPACT_AFTER {
            // Keep the buffer from creeping: move the unsent tail to the front.
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(written)
    }

    /// Disconnect at once (slow consumer): drop the unsent backlog, try once to send the
    /// Logout, and close. The peer may not see the Logout: it is not reading, and closing a
    /// socket with unread input resets it.
    pub(crate) fn abort(&mut self, enc: &mut FrameEncoder, reason: LogoutReason, text: &str) {
        self.out.clear();
        self.out_pos = 0;
        self.out
            .extend_from_slice(enc.logout(&Logout { reason, text }));
        let _ = self.flush();
        self.state = State::Closing;
        self.close();
    }

    /// Shut the stream down both ways (the peer sees EOF after what was flushed).
    pub(crate) fn close(&mut self) {
        self.stream.shutdown_both();
    }

    /// Hold `msg` for ring `dest` and stop reading until it is sent. Gives it back when
    /// the session already holds one.
    // The message is handed back by value: boxing it would allocate on the order path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn stall(&mut self, dest: usize, msg: ShardMsg) -> Result<(), (usize, ShardMsg)> {
        if self.stalled.is_some() {
            return Err((dest, msg));
        }
        self.stalled = Some((dest, msg));
        Ok(())
    }

    /// The held command, if any.
    pub(crate) fn stalled(&self) -> Option<(usize, ShardMsg)> {
        self.stalled
    }

    /// Give up the held command (it was sent, or the session is going).
    pub(crate) fn take_stalled(&mut self) -> Option<(usize, ShardMsg)> {
        self.stalled.take()
    }

    /// A mass cancel over all symbols went to `shards` shards: its answers are added up.
    pub(crate) fn expect_mass(&mut self, client_order_id: ClientOrderId, shards: usize) {
        self.pending_mass.push((client_order_id, shards, 0));
    }

    /// Fold one shard's answer to a mass cancel over all symbols into the total. Returns
    /// `false` while other shards' answers are still to come (nothing is reported yet);
    /// with the last one, `event` carries the total count.
    pub(crate) fn fold_mass(&mut self, event: &mut Event) -> bool {
        let Event::MassCancelled {
            client_order_id,
            symbol: None,
            count,
            ..
        } = event
        else {
            return true;
        };
        let Some(i) = self
            .pending_mass
            .iter()
            .position(|p| p.0 == *client_order_id)
        else {
            return true;
        };
        let entry = &mut self.pending_mass[i];
        entry.1 -= 1;
        entry.2 += *count;
        if entry.1 > 0 {
            return false;
        }
        *count = entry.2;
        self.pending_mass.swap_remove(i);
        true
    }

    /// Apply the timers at `now`: logon timeout, idle timeout, heartbeat when silent, and
    /// the grace of a closing session. Returns `true` when the session should be dropped.
    pub(crate) fn tick(
        &mut self,
        now: u64,
        timers: Timers,
        enc: &mut FrameEncoder,
        wall_ns: u64,
        limit: usize,
    ) -> bool {
        match self.state {
            State::AwaitingLogon if now.saturating_sub(self.connected_at) > timers.logon_ns => {
                self.logout(enc, LogoutReason::ProtocolViolation, "no logon in time");
            }
            State::Active { .. } if now.saturating_sub(self.last_in) > timers.idle_ns => {
                self.logout(enc, LogoutReason::HeartbeatTimeout, "no message in time");
            }
            State::Active { .. } if now.saturating_sub(self.last_out) > timers.heartbeat_ns => {
                let frame = enc.heartbeat(wall_ns);
                self.buffer(frame, limit, now);
            }
            // A closing session whose peer does not take its last frames goes anyway.
            State::Closing if self.closing_since == 0 => self.closing_since = now,
            State::Closing if now - self.closing_since > CLOSE_GRACE_NS => return true,
            _ => {}
        }
        false
    }
}

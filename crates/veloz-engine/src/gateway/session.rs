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
//! Throttles (module `throttle`): a session counts as pending for its address until it logs
//! on or is dropped (`Drop` releases it); its Logon is checked only when neither its address
//! nor the claimed account is backed off, and the outcome is told to the limiter here; once
//! logged on, every order takes a token from the session's [`OrderBucket`].
//!
//! Secrets: the logon token is hashed by [`Authenticator`] while the frame is being decoded
//! and exists nowhere else; [`Session`]'s Debug output names the peer and account only.

use std::net::SocketAddr;
use std::sync::Arc;

use veloz_core::{AccountId, Command, SelfTradePrevention};
use veloz_wire::{
    decode_client, ClientMessage, FrameDecoder, FrameEncoder, Logout, LogoutReason, WireError,
};

use crate::auth::{Authenticator, LogonResult};
use crate::io::{self, Stream, Transfer};
use crate::mesh::{Delivery, SessionRef, ShardMsg};

use super::balances::Gathers;
use super::fix::{FixInbound, FixSession};

use super::throttle::{OrderBucket, Throttles};

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
    /// The claimed account, the check's result, the resend request and the session's
    /// cancel-on-disconnect choice (`None`: the account's default).
    Logon(AccountId, LogonResult, Option<Vec<u64>>, Option<bool>),
    Logout,
    Heartbeat,
    Order(Command),
    /// A read-only request about the account's orders.
    Query(veloz_wire::Query),
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
    /// Set at logon, kept while closing: (account, cancel-on-disconnect).
    logged_on: Option<(AccountId, bool)>,
    throttles: Arc<Throttles>,
    /// Counted as pending (not logged on) for its address in `throttles`.
    pending: bool,
    /// The last Logon was refused by a back-off, its token not checked.
    logon_backed_off: bool,
    /// The order rate limit, set at logon.
    bucket: OrderBucket,
    /// A FIX 4.4 connection: its session layer (`None`: the binary protocol).
    fix: Option<Box<FixSession>>,
    /// Balance requests waiting for their shards' answers.
    balances: Gathers,
}

impl<T: Stream> Drop for Session<T> {
    fn drop(&mut self) {
        if self.pending {
            self.throttles.closed_before_logon(self.peer.ip());
        }
    }
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
        throttles: Arc<Throttles>,
        fix: Option<Box<FixSession>>,
    ) -> Session<T> {
        Session {
            me,
            peer,
            stream,
            decoder: FrameDecoder::new(max_frame),
            out: Vec::with_capacity(OUT_CAPACITY),
            out_pos: 0,
            logged_on: None,
            state: State::AwaitingLogon,
            last_in: now,
            last_out: now,
            connected_at: now,
            closing_since: 0,
            bad_messages: 0,
            stalled: None,
            throttles,
            pending: true,
            logon_backed_off: false,
            bucket: OrderBucket::default(),
            fix,
            balances: Gathers::default(),
        }
    }

    /// Whether this is a FIX connection.
    pub fn is_fix(&self) -> bool {
        self.fix.is_some()
    }

    /// A FIX session's SenderCompID, once its Logon named it.
    pub fn fix_comp_id(&self) -> Option<&str> {
        self.fix.as_ref()?.comp_id()
    }

    pub fn me(&self) -> SessionRef {
        self.me
    }

    /// When it connected (ns since the epoch).
    pub fn connected_at(&self) -> u64 {
        self.connected_at
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
            let buf = match self.fix.as_mut() {
                Some(fix) => fix.read_buf(),
                None => self.decoder.read_buf(),
            };
            // Unhandled frames fill the buffer (a stalled session): read nothing now. A read
            // into an empty buffer returns 0, which must not be taken for end of stream.
            if buf.is_empty() {
                break;
            }
            match io::read_some(&mut self.stream, buf) {
                Transfer::Done(n) => {
                    match self.fix.as_mut() {
                        Some(fix) => fix.commit(n),
                        None => self.decoder.commit(n),
                    }
                    total += n;
                }
                Transfer::WouldBlock => break,
                Transfer::Closed(_) => return ReadOutcome::Closed,
            }
        }
        ReadOutcome::Data(total)
    }

    /// Decode the next complete frame received at `now`; `None` when none is complete.
    /// A Logon's token is checked here and dropped (not even hashed while the address or
    /// the account is backed off; [`Session::logon_backed_off`] says so).
    pub(crate) fn next_frame(
        &mut self,
        now: u64,
        auth: &Authenticator,
    ) -> Option<Result<ClientFrame, WireError>> {
        if let Some(mut fix) = self.fix.take() {
            let frame = self.next_fix(&mut fix, now, auth);
            self.fix = Some(fix);
            return frame.map(Ok);
        }
        let account = self.account().unwrap_or(0);
        let decoded = match self.decoder.next_frame() {
            Ok(None) => return None,
            Ok(Some(frame)) => match decode_client(frame, account) {
                Ok(ClientMessage::Logon(l)) => {
                    // The token leaves the frame's buffer only for this check (a logon
                    // is rare): the copy is wiped right after.
                    let mut token = l.token.as_bytes().to_vec();
                    let (claimed, resume, cod) =
                        (l.account, l.resume_after, l.cancel_on_disconnect);
                    let result = self.check_logon(claimed, &token, now, auth);
                    token.fill(0);
                    Ok(ClientFrame::Logon(claimed, result, resume, cod))
                }
                Ok(ClientMessage::Logout(_)) => Ok(ClientFrame::Logout),
                Ok(ClientMessage::Heartbeat(_)) => Ok(ClientFrame::Heartbeat),
                Ok(ClientMessage::Order(cmd)) => Ok(ClientFrame::Order(cmd)),
                Ok(ClientMessage::Query(q)) => Ok(ClientFrame::Query(q)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.last_in = now;
        Some(decoded)
    }

    /// The next FIX message that means something to the gateway (the FIX session layer
    /// answered the rest itself).
    fn next_fix(
        &mut self,
        fix: &mut FixSession,
        now: u64,
        auth: &Authenticator,
    ) -> Option<ClientFrame> {
        self.prepare_out();
        let mut out = std::mem::take(&mut self.out);
        let mut check = |account, token: &[u8]| self.check_logon(account, token, now, auth);
        let inbound = fix.next(now, crate::feed::unix_now_ns(), &mut out, &mut check);
        self.out = out;
        self.last_in = now;
        Some(match inbound? {
            FixInbound::Logon {
                account,
                result,
                resume_after,
            } => ClientFrame::Logon(account, result, resume_after, None),
            FixInbound::Order(cmd) => ClientFrame::Order(cmd),
            FixInbound::Query(q) => ClientFrame::Query(q),
            FixInbound::Logout => ClientFrame::Logout,
        })
    }

    /// Check a Logon's token for `account` (not even hashed while the address or the
    /// account is backed off; [`Session::logon_backed_off`] says so) and tell the limiter.
    fn check_logon(
        &mut self,
        account: AccountId,
        token: &[u8],
        now: u64,
        auth: &Authenticator,
    ) -> LogonResult {
        self.logon_backed_off = false;
        let ip = self.peer.ip();
        if self.state != State::AwaitingLogon {
            // Answered AlreadyLoggedOn whatever the token.
            return LogonResult::Denied;
        }
        if !self.throttles.logon_allowed(ip, account, now) {
            self.logon_backed_off = true;
            return LogonResult::Denied;
        }
        let result = auth.logon(account, token);
        if let LogonResult::Ok { account, .. } = result {
            self.throttles.succeeded(ip, account);
            self.pending = false;
            self.bucket = self.throttles.order_bucket(account);
        } else {
            self.throttles.failed(ip, account, now);
        }
        result
    }

    /// Reuse the outbound buffer when all of it was written.
    fn prepare_out(&mut self) {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Answer an accepted Logon: LogonAck (binary) or Logon (FIX).
    pub(crate) fn logon_ack(
        &mut self,
        enc: &mut FrameEncoder,
        ack: &veloz_wire::LogonAck,
        limit: usize,
        now: u64,
    ) {
        self.prepare_out();
        match self.fix.as_mut() {
            Some(fix) => {
                fix.at(now)
                    .logon_response(&mut self.out, crate::feed::unix_now_ns());
                self.last_out = now;
            }
            None => {
                let frame = enc.logon_ack(ack);
                self.buffer(frame, limit, now);
            }
        }
    }

    /// Write one report. Returns `false` when the outbound buffer is over `limit`.
    pub(crate) fn report(
        &mut self,
        enc: &mut FrameEncoder,
        d: &Delivery,
        limit: usize,
        now: u64,
    ) -> bool {
        self.prepare_out();
        match self.fix.as_mut() {
            Some(fix) => {
                fix.report(d, now, crate::feed::unix_now_ns(), &mut self.out);
                self.last_out = now;
                self.pending_out() <= limit
            }
            None => {
                let Some(frame) =
                    enc.stream_report(&d.event, d.part, d.seq, d.ts, d.stream, d.stream_seq)
                else {
                    return true;
                };
                self.buffer(frame, limit, now)
            }
        }
    }

    /// The FIX session layer, for the answers only FIX sessions get.
    pub(crate) fn fix_mut(&mut self) -> Option<(&mut FixSession, &mut Vec<u8>)> {
        self.prepare_out();
        let fix = self.fix.as_deref_mut()?;
        Some((fix, &mut self.out))
    }

    /// The session's balance requests in flight.
    pub(crate) fn balances_mut(&mut self) -> &mut Gathers {
        &mut self.balances
    }

    /// Whether the last Logon was refused by a back-off (its token not checked).
    pub(crate) fn logon_backed_off(&self) -> bool {
        self.logon_backed_off
    }

    /// Take one order's token from the session's bucket at `now`: false when the order is
    /// over the session's rate (reject it `Throttled`).
    #[inline]
    pub(crate) fn take_order(&mut self, now: u64) -> bool {
        self.bucket.take(now)
    }

    /// Count a malformed or misplaced message; returns how many there were.
    pub(crate) fn bad_message(&mut self) -> u32 {
        self.bad_messages += 1;
        self.bad_messages
    }

    /// AwaitingLogon -> Active. Returns `false` (and changes nothing) in any other state.
    /// `cancel_on_disconnect`: this session's end, as its account's last, cancels the
    /// account's resting orders.
    pub(crate) fn log_on(
        &mut self,
        account: AccountId,
        stp: SelfTradePrevention,
        cancel_on_disconnect: bool,
    ) -> bool {
        if self.state != State::AwaitingLogon {
            return false;
        }
        self.state = State::Active { account, stp };
        self.logged_on = Some((account, cancel_on_disconnect));
        true
    }

    /// The account this session logged on as and its cancel-on-disconnect choice, also
    /// after it started closing; `None` when it never logged on.
    pub(crate) fn logged_on(&self) -> Option<(AccountId, bool)> {
        self.logged_on
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
        self.prepare_out();
        if let Some(fix) = self.fix.as_mut() {
            let text = match reason {
                LogoutReason::AuthenticationFailed => format!("logon refused: {text}"),
                _ => text.to_string(),
            };
            fix.logout(&mut self.out, crate::feed::unix_now_ns(), &text);
            self.state = State::Closing;
            return;
        }
        let frame = enc.logout(&Logout { reason, text });
        // The Logout is buffered whatever the buffer holds: it is the last frame.
        self.out.extend_from_slice(frame);
        self.state = State::Closing;
    }

    /// A FIX session writes what the pass recorded (sequence numbers, messages sent) to its
    /// store, before any of those messages is written to the socket: a restart never
    /// reuses a number the client has seen.
    pub(crate) fn flush_store(&mut self) {
        if let Some(fix) = self.fix.as_mut() {
            fix.flush_store();
        }
    }

    /// Bytes buffered and not yet written.
    pub fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Write what is buffered, as far as the stream takes it. Returns bytes written, or the
    /// error that broke the connection.
    pub(crate) fn flush(&mut self) -> std::io::Result<usize> {
        self.flush_store();
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
        match self.fix.as_mut() {
            Some(fix) => {
                fix.logout(&mut self.out, crate::feed::unix_now_ns(), text);
            }
            None => self
                .out
                .extend_from_slice(enc.logout(&Logout { reason, text })),
        }
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
        if self.fix.is_some() && matches!(self.state, State::Active { .. }) {
            self.prepare_out();
            let fix = self.fix.as_mut().expect("fix");
            if let Some(why) = fix.tick(now, wall_ns, &mut self.out) {
                self.logout(enc, LogoutReason::HeartbeatTimeout, why);
            }
            return false;
        }
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

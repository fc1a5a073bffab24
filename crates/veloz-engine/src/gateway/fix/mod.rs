//! FIX 4.4 order entry: the session layer of one FIX connection (docs/fix.md).
//!
//! A FIX connection is a gateway [`Session`](super::Session) like a binary one: it lives
//! on the shard that accepted it, its orders route to their instrument's shard, its reports
//! come from its account's report streams. What differs is on the wire, and this module is
//! all of it: framing and parsing (crate `veloz_fix`), Logon / Heartbeat / TestRequest /
//! ResendRequest / SequenceReset / Reject / Logout, sequence numbers kept per client CompID
//! across reconnects and restarts ([`store`], [`sequence`]), application messages into
//! commands and queries ([`app`]), and reports into ExecutionReports, OrderCancelRejects and
//! OrderMassCancelReports ([`reports`]), balances into CollateralReports ([`collateral`]);
//! what all sessions share is in [`shared`].
//!
//! ```text
//!  connected ──Logon ok──► logged on ──Logout / timeout / fatal error──► closing
//!      └──── anything else, refused logon ──────────────────────────────────┘
//! ```
//!
//! Invariants:
//! - the first message must be a Logon; its password is checked by the gateway's
//!   authenticator (through the `check` closure) and dropped: it is never stored or logged;
//! - a client CompID is logged on at most once engine-wide (`Shared::fix_comp_ids`) and is
//!   bound to the account it first logged on as;
//! - inbound MsgSeqNum: the expected one is processed; a higher one asks for a resend of
//!   the gap (once) and is not processed (the resend brings it again); a lower one without
//!   PossDupFlag ends the session; a garbled message (CheckSum, BodyLength) is answered
//!   with a Reject and does not consume a number;
//! - outbound: every message takes the next number; application messages are stored before
//!   the pass ends, so a ResendRequest is answered with the same messages (PossDupFlag=Y,
//!   OrigSendingTime) and everything else in its range is gap-filled;
//! - after this side sent a Logout nothing more is read or sent.

mod app;
mod clordid;
mod collateral;
mod orders;
mod reports;
mod sequence;
mod shared;
mod store;

use std::sync::Arc;

use veloz_core::{AccountId, Command};
use veloz_fix::{tags, FrameError, FrameStatus, Message, Parser, Writer};
use veloz_wire::Query;

use crate::auth::LogonResult;

use clordid::ClOrdIds;
pub(crate) use orders::Orders;
pub(crate) use shared::{FixShared, FixStats, Instrument};
use store::Store;

/// Nanoseconds per second.
const NS: u64 = 1_000_000_000;

/// What a FIX message means to the gateway.
#[derive(Debug)]
pub(crate) enum FixInbound {
    /// A Logon: its account and the check's outcome, and the report streams' resume points.
    Logon {
        account: AccountId,
        result: LogonResult,
        resume_after: Option<Vec<u64>>,
    },
    Order(Command),
    Query(Query),
    /// The session ends; its Logout is written.
    Logout,
}

/// One FIX connection's session layer. Its Debug output names the CompIDs and the
/// account only: the input buffer may still hold a Logon's password.
pub(crate) struct FixSession {
    shared: Arc<FixShared>,
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    parser: Parser,
    writer: Writer,
    /// The client's CompID, from its Logon.
    peer: Option<String>,
    /// Holds `peer` in `FixShared::logged_on`.
    registered: bool,
    store: Option<Store>,
    account: AccountId,
    heartbeat_ns: u64,
    logged_on: bool,
    /// The Logon asked for a sequence reset (the response says so too).
    reset_requested: bool,
    /// A ResendRequest for a gap is out; cleared when the expected number arrives anew.
    resend_pending: bool,
    /// The Logon's MsgSeqNum was above the expected one: ask for the gap after the response.
    logon_gap: bool,
    /// A TestRequest went out at this time (ns) and its Heartbeat has not come.
    test_request_at: Option<u64>,
    /// Messages answered with a session Reject (garbled or malformed) so far.
    bad: u32,
    test_requests: u64,
    logout_sent: bool,
    last_in: u64,
    last_out: u64,
    /// The shard clock at the call being served (ns).
    now: u64,
    /// The ExecID being written (kept: no allocation per report).
    exec_id: String,
    /// This CompID's ClOrdIDs that are not numbers (rebuilt from its store at logon).
    pub(crate) cl: ClOrdIds,
    /// Orders of the account this session knows, for CumQty / AvgPx / OrigClOrdID.
    pub(crate) orders: Orders,
    /// CollateralInquiries (BB) waiting for their balances.
    inquiries: collateral::Inquiries,
}

impl std::fmt::Debug for FixSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixSession")
            .field("peer", &self.peer)
            .field("account", &self.account)
            .field("logged_on", &self.logged_on)
            .finish_non_exhaustive()
    }
}

impl Drop for FixSession {
    fn drop(&mut self) {
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.flush() {
                tracing::error!(target: "veloz::fix", path = %store.path().display(), "FIX store {}: cannot write: {e}", store.path().display());
            }
        }
        if self.registered {
            if let Some(peer) = &self.peer {
                self.shared.logged_on.lock().expect("fix lock").remove(peer);
            }
        }
    }
}

/// A MsgSeqNum read from a message that could not be parsed (best effort; 0 when none).
fn seq_of_garbled(bytes: &[u8]) -> u64 {
    let Some(at) = bytes.windows(4).position(|w| w == b"\x0134=") else {
        return 0;
    };
    let digits = bytes[at + 4..].iter().take_while(|b| b.is_ascii_digit());
    digits.fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add((d - b'0') as u64)
    })
}

impl FixSession {
    pub fn new(shared: Arc<FixShared>, now: u64) -> FixSession {
        let cap = shared.max_message * 2;
        FixSession {
            shared,
            inbuf: vec![0; cap],
            in_start: 0,
            in_end: 0,
            parser: Parser::new(),
            writer: Writer::new(),
            peer: None,
            registered: false,
            store: None,
            account: 0,
            heartbeat_ns: 30 * NS,
            logged_on: false,
            reset_requested: false,
            resend_pending: false,
            logon_gap: false,
            test_request_at: None,
            bad: 0,
            test_requests: 0,
            logout_sent: false,
            last_in: now,
            last_out: now,
            now,
            exec_id: String::with_capacity(32),
            cl: ClOrdIds::default(),
            orders: Orders::default(),
            inquiries: collateral::Inquiries::default(),
        }
    }

    /// Where the next read goes (empty when a whole buffer of unhandled bytes waits).
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.in_start > 0 && self.in_end == self.inbuf.len() {
            self.inbuf.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        &mut self.inbuf[self.in_end..]
    }

    /// The client's CompID, once its Logon named it.
    pub fn comp_id(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    pub fn commit(&mut self, n: usize) {
        self.in_end += n;
    }

    /// Handle the complete messages read so far until one means something to the gateway
    /// (returned), or none is left. Session-level answers are written to `out`.
    pub fn next(
        &mut self,
        now: u64,
        wall: u64,
        out: &mut Vec<u8>,
        check: &mut dyn FnMut(AccountId, &[u8]) -> LogonResult,
    ) -> Option<FixInbound> {
        self.now = now;
        while !self.logout_sent {
            if self.bad > self.shared.max_bad {
                let text = format!("{} malformed or garbled messages", self.bad);
                return Some(self.logout(out, wall, &text));
            }
            let avail = &self.inbuf[self.in_start..self.in_end];
            match veloz_fix::frame(avail, self.shared.max_message) {
                FrameStatus::Incomplete => {
                    if self.in_start == self.in_end {
                        (self.in_start, self.in_end) = (0, 0);
                    }
                    return None;
                }
                FrameStatus::Garbled { len, error } => {
                    let seq = seq_of_garbled(&avail[..len]);
                    self.in_start += len;
                    self.last_in = now;
                    if let Some(end) = self.garbled(&error, seq, wall, out) {
                        return Some(end);
                    }
                }
                FrameStatus::Complete(len) => {
                    let range = self.in_start..self.in_start + len;
                    self.in_start += len;
                    self.last_in = now;
                    let inbuf = std::mem::take(&mut self.inbuf);
                    let mut parser = std::mem::replace(&mut self.parser, Parser::new());
                    let result = match parser.parse(&inbuf[range.clone()]) {
                        Ok(msg) => self.message(&msg, wall, out, check),
                        Err(e) => {
                            let seq = seq_of_garbled(&inbuf[range]);
                            let text = e.to_string();
                            self.consume(seq);
                            self.reject(
                                out,
                                wall,
                                seq,
                                e.tag(),
                                e.session_reject_reason(),
                                &text,
                                None,
                            );
                            None
                        }
                    };
                    self.parser = parser;
                    self.inbuf = inbuf;
                    if result.is_some() {
                        return result;
                    }
                }
            }
        }
        None
    }

    /// A message that failed framing: garbage is skipped, a bad CheckSum or BodyLength is
    /// answered with a Reject (its number is not consumed), a message too long ends it.
    fn garbled(
        &mut self,
        error: &FrameError,
        seq: u64,
        wall: u64,
        out: &mut Vec<u8>,
    ) -> Option<FixInbound> {
        let text = error.to_string();
        match error {
            FrameError::BadBeginString => {
                tracing::debug!(target: "veloz::fix", "skipped bytes that start no FIX 4.4 message: {text}");
                None
            }
            FrameError::TooLarge { .. } => Some(self.logout(out, wall, &text)),
            _ => {
                let tag = match error {
                    FrameError::BadBodyLength | FrameError::BodyLengthMismatch { .. } => {
                        tags::BODY_LENGTH
                    }
                    _ => tags::CHECK_SUM,
                };
                tracing::warn!(target: "veloz::fix", peer = self.peer.as_deref().unwrap_or("?"), seq, "garbled FIX message (MsgSeqNum {seq}) rejected: {text}");
                if self.logged_on {
                    self.reject(out, wall, seq, Some(tag), 99, &text, None);
                }
                None
            }
        }
    }

    /// The client's `seq` was the expected one: it is consumed.
    fn consume(&mut self, seq: u64) {
        if let Some(store) = self.store.as_mut() {
            if seq == store.next_in {
                store.next_in += 1;
            }
        }
    }

    pub(super) fn next_in(&self) -> u64 {
        self.store.as_ref().map_or(1, |s| s.next_in)
    }

    /// One parsed message.
    fn message(
        &mut self,
        msg: &Message<'_>,
        wall: u64,
        out: &mut Vec<u8>,
        check: &mut dyn FnMut(AccountId, &[u8]) -> LogonResult,
    ) -> Option<FixInbound> {
        let kind = msg.msg_type();
        if !self.logged_on {
            if kind != b"A" {
                return Some(self.logout(out, wall, "the first message must be a Logon (A)"));
            }
            return self.logon(msg, wall, out, check);
        }
        // The header: the CompIDs of this session, a MsgSeqNum.
        let sender = msg.get(tags::SENDER_COMP_ID).unwrap_or_default();
        let target = msg.get(tags::TARGET_COMP_ID).unwrap_or_default();
        let seq = msg.seq_num().unwrap_or(0);
        if sender != self.peer.as_deref().unwrap_or("").as_bytes()
            || target != self.shared.comp_id.as_bytes()
        {
            let text = format!(
                "CompID problem: SenderCompID (49) {:?} / TargetCompID (56) {:?}, this session is {:?} -> {:?}",
                String::from_utf8_lossy(sender),
                String::from_utf8_lossy(target),
                self.peer.as_deref().unwrap_or(""),
                self.shared.comp_id
            );
            self.reject(
                out,
                wall,
                seq,
                Some(tags::SENDER_COMP_ID),
                9,
                &text,
                Some(kind),
            );
            return Some(self.logout(out, wall, &text));
        }
        if seq == 0 {
            return Some(self.logout(out, wall, "MsgSeqNum (34) is missing"));
        }
        let poss_dup = msg.get(tags::POSS_DUP_FLAG) == Some(b"Y");
        let expected = self.next_in();
        if kind == b"4" {
            return self.sequence_reset(msg, seq, expected, wall, out);
        }
        if seq < expected {
            if poss_dup {
                return None;
            }
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            return Some(self.logout(out, wall, &text));
        }
        if seq > expected {
            match kind {
                b"2" => self.resend(msg, wall, out),
                b"5" => return Some(self.logout(out, wall, "")),
                _ => {}
            }
            if !self.resend_pending {
                self.resend_pending = true;
                self.resend_request(out, wall, expected);
            }
            return None;
        }
        self.consume(seq);
        if !poss_dup {
            self.resend_pending = false;
            if let Some(why) = self.skewed(msg, wall) {
                self.reject(
                    out,
                    wall,
                    seq,
                    Some(tags::SENDING_TIME),
                    10,
                    &why,
                    Some(kind),
                );
                return Some(self.logout(out, wall, &why));
            }
        }
        match kind {
            b"0" => {
                if msg.get(tags::TEST_REQ_ID).is_some() {
                    self.test_request_at = None;
                }
                None
            }
            b"1" => {
                let id = msg.get(tags::TEST_REQ_ID).unwrap_or_default();
                self.send_admin(out, wall, b"0", |w| w.bytes(tags::TEST_REQ_ID, id));
                None
            }
            b"2" => {
                self.resend(msg, wall, out);
                None
            }
            b"3" => {
                let text =
                    String::from_utf8_lossy(msg.get(tags::TEXT).unwrap_or_default()).into_owned();
                let r = msg.get_u64(tags::REF_SEQ_NUM).ok().flatten().unwrap_or(0);
                tracing::warn!(target: "veloz::fix", peer = self.peer.as_deref().unwrap_or("?"), ref_seq = r, "FIX session {} rejected our message {r}: {text}", self.peer.as_deref().unwrap_or("?"));
                None
            }
            b"5" => Some(self.logout(out, wall, "")),
            b"A" => Some(self.logout(out, wall, "a second Logon (A) on a logged-on session")),
            b"D" | b"F" | b"G" | b"H" | b"q" | b"BB" => self.application(msg, seq, wall, out),
            other => {
                let text = format!(
                    "MsgType (35) {} is not supported",
                    String::from_utf8_lossy(other)
                );
                self.send_app(out, wall, b"j", None, |w, _| {
                    w.uint(tags::REF_SEQ_NUM, seq);
                    w.bytes(tags::REF_MSG_TYPE, other);
                    w.uint(tags::BUSINESS_REJECT_REASON, 3);
                    w.str(tags::TEXT, &text);
                });
                None
            }
        }
    }

    /// SendingTime (52) too far from the engine's clock: why.
    fn skewed(&self, msg: &Message<'_>, wall: u64) -> Option<String> {
        let max = self.shared.max_skew_ns;
        if max == 0 {
            return None;
        }
        let Some(sent) = msg.get(tags::SENDING_TIME) else {
            return Some("SendingTime (52) is missing".to_string());
        };
        match veloz_fix::parse_utc_timestamp(sent) {
            Some(t) if t.abs_diff(wall) <= max => None,
            Some(_) => Some(format!(
                "SendingTime (52) {} is more than {} s from the engine's clock",
                String::from_utf8_lossy(sent),
                max / NS
            )),
            None => Some(format!(
                "SendingTime (52) {:?} is not a UTCTimestamp",
                String::from_utf8_lossy(sent)
            )),
        }
    }

    /// A Logon on a connection not logged on yet.
    fn logon(
        &mut self,
        msg: &Message<'_>,
        wall: u64,
        out: &mut Vec<u8>,
        check: &mut dyn FnMut(AccountId, &[u8]) -> LogonResult,
    ) -> Option<FixInbound> {
        let sender = msg.get(tags::SENDER_COMP_ID).unwrap_or_default();
        match std::str::from_utf8(sender) {
            Ok(s) if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic()) => {
                self.peer = Some(s.to_string());
            }
            _ => {
                return Some(self.logout(
                    out,
                    wall,
                    "logon refused: SenderCompID (49) must be 1 to 64 printable characters",
                ))
            }
        }
        let target = msg.get(tags::TARGET_COMP_ID).unwrap_or_default();
        if target != self.shared.comp_id.as_bytes() {
            let text = format!(
                "logon refused: TargetCompID (56) must be {}",
                self.shared.comp_id
            );
            return Some(self.logout(out, wall, &text));
        }
        let (lo, hi) = self.shared.heartbeat_s;
        match msg.get_u64(tags::HEART_BT_INT) {
            Ok(Some(s)) if (lo..=hi).contains(&s) => self.heartbeat_ns = s * NS,
            _ => {
                let text = format!("logon refused: HeartBtInt (108) must be {lo}..={hi} seconds");
                return Some(self.logout(out, wall, &text));
            }
        }
        if msg.get(tags::ENCRYPT_METHOD) != Some(b"0") {
            return Some(self.logout(out, wall, "logon refused: EncryptMethod (98) must be 0"));
        }
        let account = match msg.get_u64(tags::USERNAME) {
            Ok(Some(a)) if a <= AccountId::MAX as u64 => a as AccountId,
            _ => {
                return Some(self.logout(
                    out,
                    wall,
                    "logon refused: Username (553) must be the account id",
                ))
            }
        };
        let Some(token) = msg.get(tags::PASSWORD).or_else(|| msg.get(tags::RAW_DATA)) else {
            return Some(self.logout(
                out,
                wall,
                "logon refused: Password (554) or RawData (96) must hold the account's token",
            ));
        };
        let result = check(account, token);
        if result == LogonResult::Denied {
            return Some(FixInbound::Logon {
                account,
                result,
                resume_after: None,
            });
        }
        let peer = self.peer.clone().unwrap_or_default();
        if !self
            .shared
            .logged_on
            .lock()
            .expect("fix lock")
            .insert(peer.clone())
        {
            let text = format!("logon refused: SenderCompID {peer} is logged on already");
            return Some(self.logout(out, wall, &text));
        }
        self.registered = true;
        let mut store = match Store::open(&self.shared.store_dir, &peer, self.shared.streams) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target: "veloz::fix", comp_id = %peer, dir = %self.shared.store_dir.display(), "FIX session {peer}: cannot open its store in {}: {e}", self.shared.store_dir.display());
                return Some(self.logout(
                    out,
                    wall,
                    "logon refused: the session store cannot be opened",
                ));
            }
        };
        let fresh = store.account.is_none() && store.last_stored().is_none();
        match store.account {
            Some(bound) if bound != account => {
                let text =
                    format!("logon refused: SenderCompID {peer} is bound to account {bound}");
                return Some(self.logout(out, wall, &text));
            }
            Some(_) => {}
            None => store.bind(account),
        }
        let seq = msg.seq_num().unwrap_or(0);
        if msg.get(tags::RESET_SEQ_NUM_FLAG) == Some(b"Y") {
            store.reset();
            self.reset_requested = true;
        }
        if seq < store.next_in {
            let text = format!(
                "MsgSeqNum too low, expecting {} but received {seq}",
                store.next_in
            );
            self.store = Some(store);
            return Some(self.logout(out, wall, &text));
        }
        if seq == store.next_in {
            store.next_in += 1;
        } else {
            self.logon_gap = true;
        }
        self.cl = ClOrdIds::default();
        for (id, text) in std::mem::take(&mut store.clordids) {
            self.cl.insert(id, &text);
        }
        self.orders = Orders::rebuild(&store, &self.shared, &self.cl);
        store.drop_opened();
        // A CompID's first logon starts at the streams' ends (the Resumed of each says
        // where, and is recorded); later ones resume after what it was sent.
        let resume_after = match fresh {
            true => vec![u64::MAX; self.shared.streams],
            false => store.watermarks().to_vec(),
        };
        self.store = Some(store);
        self.account = account;
        self.logged_on = true;
        Some(FixInbound::Logon {
            account,
            result,
            resume_after: Some(resume_after),
        })
    }

    /// The gateway took the Logon: answer it (and ask for the gap it showed).
    pub fn logon_response(&mut self, out: &mut Vec<u8>, wall: u64) {
        FixStats::bump(&self.shared.stats.logons, 1);
        let (hb, reset) = (self.heartbeat_ns / NS, self.reset_requested);
        self.send_admin(out, wall, b"A", |w| {
            w.uint(tags::ENCRYPT_METHOD, 0);
            w.uint(tags::HEART_BT_INT, hb);
            if reset {
                w.bool(tags::RESET_SEQ_NUM_FLAG, true);
            }
        });
        if std::mem::take(&mut self.logon_gap) {
            self.resend_pending = true;
            let from = self.next_in();
            self.resend_request(out, wall, from);
        }
        let peer = self.peer.as_deref().unwrap_or("?");
        tracing::info!(target: "veloz::fix", comp_id = peer, account = self.account, next_in = self.next_in(), "FIX session {peer} logged on as account {}", self.account);
    }

    pub(super) fn last_out_now(&mut self) {
        self.last_out = self.now;
    }

    /// A session-level Reject of the client's message `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &mut self,
        out: &mut Vec<u8>,
        wall: u64,
        seq: u64,
        tag: Option<u32>,
        reason: u32,
        text: &str,
        kind: Option<&[u8]>,
    ) {
        self.bad += 1;
        FixStats::bump(&self.shared.stats.session_rejects, 1);
        self.send_admin(out, wall, b"3", |w| {
            w.uint(tags::REF_SEQ_NUM, seq);
            if let Some(tag) = tag {
                w.uint(tags::REF_TAG_ID, tag as u64);
            }
            if let Some(kind) = kind {
                w.bytes(tags::REF_MSG_TYPE, kind);
            }
            w.uint(tags::SESSION_REJECT_REASON, reason as u64);
            w.str(tags::TEXT, text);
        });
    }

    /// Write a Logout with `text` (once) and end the session.
    pub fn logout(&mut self, out: &mut Vec<u8>, wall: u64, text: &str) -> FixInbound {
        if !self.logout_sent {
            if !text.is_empty() {
                let peer = self.peer.as_deref().unwrap_or("?");
                tracing::warn!(target: "veloz::fix", comp_id = peer, "FIX session {peer} logged out: {text}");
            }
            self.send_admin(out, wall, b"5", |w| {
                if !text.is_empty() {
                    w.str(tags::TEXT, text);
                }
            });
            self.logout_sent = true;
        }
        FixInbound::Logout
    }

    /// Heartbeats and TestRequests at `now`; `Some(text)` when the client has been silent
    /// too long (the caller logs it out with that text).
    pub fn tick(&mut self, now: u64, wall: u64, out: &mut Vec<u8>) -> Option<&'static str> {
        self.now = now;
        if !self.logged_on || self.logout_sent {
            return None;
        }
        let hb = self.heartbeat_ns;
        let silent = now.saturating_sub(self.last_in);
        if silent > hb * 2 + hb / 2 {
            return Some("no message in time (heartbeat timeout)");
        }
        if silent > hb + hb / 5 && self.test_request_at.is_none() {
            self.test_requests += 1;
            let id = format!("TEST{}", self.test_requests);
            self.test_request_at = Some(now);
            self.send_admin(out, wall, b"1", |w| w.str(tags::TEST_REQ_ID, &id));
        } else if now.saturating_sub(self.last_out) >= hb {
            self.send_admin(out, wall, b"0", |_| {});
        }
        None
    }

    /// Write what this pass recorded to the store.
    pub fn flush_store(&mut self) {
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.flush() {
                tracing::error!(target: "veloz::fix", path = %store.path().display(), "FIX store {}: cannot write: {e}; resends of this pass's messages will be gap-filled", store.path().display());
            }
        }
    }

    /// Start a message of `kind` with the header; returns its MsgSeqNum.
    fn header(&mut self, kind: &[u8], wall: u64) -> u64 {
        let seq = match self.store.as_mut() {
            Some(s) => s.take_out(),
            None => 1,
        };
        let w = &mut self.writer;
        w.begin(kind);
        w.str(tags::SENDER_COMP_ID, &self.shared.comp_id);
        w.str(tags::TARGET_COMP_ID, self.peer.as_deref().unwrap_or(""));
        w.uint(tags::MSG_SEQ_NUM, seq);
        w.timestamp(tags::SENDING_TIME, wall);
        seq
    }

    /// An admin message: not stored (a resend gap-fills it).
    pub(super) fn send_admin(
        &mut self,
        out: &mut Vec<u8>,
        wall: u64,
        kind: &[u8],
        body: impl FnOnce(&mut Writer),
    ) {
        self.header(kind, wall);
        body(&mut self.writer);
        self.writer.finish(out);
        self.last_out_now();
    }

    /// An application message: stored for resends, with its report-stream position. The
    /// body writes ClOrdIDs through the session's [`ClOrdIds`].
    pub(super) fn send_app(
        &mut self,
        out: &mut Vec<u8>,
        wall: u64,
        kind: &[u8],
        stream_pos: Option<(u16, u64)>,
        body: impl FnOnce(&mut Writer, &ClOrdIds),
    ) {
        let seq = self.header(kind, wall);
        body(&mut self.writer, &self.cl);
        let range = self.writer.finish(out);
        if let Some(store) = self.store.as_mut() {
            store.record(seq, stream_pos, &out[range]);
        }
        self.last_out_now();
    }

    /// Set the clock for a call from the gateway that writes (logon response, logout).
    pub fn at(&mut self, now: u64) -> &mut FixSession {
        self.now = now;
        self
    }
}

#[cfg(test)]
mod tests;

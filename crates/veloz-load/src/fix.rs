//! FIX 4.4 order entry for the load generator (`--protocol fix`): the same flows as the binary
//! path, over FIX sessions to the engine's acceptor (docs/fix.md).
//!
//! A [`FixSession`] is the FIX half of one load connection: its read buffer, the framer and
//! the reusable [`Parser`] inbound, the reusable [`Writer`] outbound, and what FIX needs that
//! the binary protocol carries itself:
//! - the instruments by symbol (FIX names an instrument by its symbol and writes prices as
//!   decimals at its `price_scale`); FIX's Logon announces none, so they come from a short
//!   binary logon of the same account first ([`instruments`]);
//! - per order of this connection: its side and CumQty (14), because a cancel or replace
//!   repeats Side (54) and a replace's OrderQty (38) is the new *total* quantity, CumQty plus
//!   the open quantity the flow asks for;
//! - a ring of (MsgSeqNum, ClOrdID) of the requests sent, so that a session Reject (3) or
//!   BusinessMessageReject (j), which name a MsgSeqNum, answer their request.
//!
//! Mapping (inbound, into the [`skim::Report`] the connection logic reads): ExecutionReport
//! (8) by ExecType (150): 0 Accepted, F Filled (OrdStatus 2) or PartiallyFilled, 4
//! Cancelled, 5 Replaced, 8 Rejected (I, status, is skipped); OrderCancelReject (9) a
//! Rejected report of its ClOrdID; OrderMassCancelReport (r) MassCancelled. A reject's Text
//! `name (code)` gives the engine's [`RejectReason`]; any other Text names the reject as is.
//! Session messages: a TestRequest (1) is answered with a Heartbeat echoing TestReqID (112);
//! a ResendRequest (2) with a SequenceReset-GapFill (the load keeps no messages to resend);
//! a Logout (5) ends the session. Inbound sequence numbers are not checked (the load trusts
//! the engine on loopback).
//!
//! Session identity: SenderCompID `LOAD-<account>-<connection index>`, stable per
//! connection, logged on with ResetSeqNumFlag (141) Y so that every run starts at 1 and the
//! engine's per-CompID store does not grow a file per run. Two runs against one engine at
//! the same time would collide (a CompID is logged on once engine-wide).
//!
//! Nothing on the per-message path allocates once the buffers and the order table have
//! grown, except the Text of a reject that is not an engine reason.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use rustc_hash::FxHashMap;
use veloz_core::{AccountId, Command, Instrument, OrderId, OrderKind, Qty, RejectReason, Side};
use veloz_core::{SymbolId, TimeInForce};
use veloz_fix::{frame, tags, FrameStatus, Message, Parser, Writer};
use veloz_wire::{skim, ExecType, Liquidity};

use super::conn::{read_logon_answer, ID_BITS};
use super::LoadError;

/// The engine's TargetCompID unless `--fix-target-comp-id` says otherwise.
pub const DEFAULT_TARGET_COMP_ID: &str = "VELOZ";
/// Longest message read (the engine's `max_message_bytes` defaults to 8192).
const MAX_MESSAGE: usize = 64 * 1024;
/// Read buffer: a read is offered at least [`MIN_READ`] bytes (the buffer is compacted
/// first).
const READ_CAPACITY: usize = 256 * 1024;
const MIN_READ: usize = 16 * 1024;

/// Which protocol `veloz load` speaks to the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// The binary protocol on `--connect` (docs/protocol.md).
    #[default]
    Binary,
    /// FIX 4.4 (docs/fix.md); `--connect` still serves the instruments' logon.
    Fix(FixTarget),
}

/// Where the FIX sessions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixTarget {
    /// The acceptor's `HOST:PORT` (what `veloz serve` prints after "FIX 4.4 order entry on").
    pub connect: String,
    /// TargetCompID (56): the engine's `fix.comp_id`.
    pub target_comp_id: String,
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The instruments and heartbeat interval (ms) of the engine at `addr`, from a binary
/// logon of `account` that is logged out at once (FIX's Logon announces no instruments).
pub(crate) fn instruments(
    addr: SocketAddr,
    account: AccountId,
    token: &str,
    timeout: Duration,
) -> Result<(Vec<Instrument>, u32), LoadError> {
    let mut l = super::conn::logon(addr, account, token, timeout)?;
    let mut encoder = veloz_wire::FrameEncoder::new();
    let bye = veloz_wire::Logout {
        reason: veloz_wire::LogoutReason::Requested,
        text: "veloz load: instruments read",
    };
    let _ = l.stream.set_nonblocking(false);
    let _ = l.stream.write_all(encoder.logout(&bye));
    let _ = l.stream.shutdown(std::net::Shutdown::Write);
    Ok((l.instruments, l.heartbeat_ms))
}

/// An instrument as FIX names it.
#[derive(Debug)]
struct Sym {
    id: SymbolId,
    symbol: String,
    scale: u8,
}

/// An order of this connection, as far as FIX needs it.
#[derive(Clone, Copy, Debug)]
struct Order {
    side: Side,
    cum: Qty,
}

/// What a message meant to the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// An execution report (or a reject of a request); a Rejected one without a reason
    /// is named by [`FixSession::reject_text`].
    Report(skim::Report),
    /// The engine's Logon answer.
    Logon,
    /// The engine logged the session out; its Text is [`FixSession::reject_text`].
    Logout,
    /// A session reject naming no request in flight, named by [`FixSession::reject_text`].
    Stray,
    /// Anything else (heartbeats, answered test requests...).
    Session,
}

/// The FIX half of one load connection; see the module docs.
#[derive(Debug)]
pub(crate) struct FixSession {
    enc: Encoder,
    state: State,
    parser: Parser,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct Encoder {
    writer: Writer,
    sender: String,
    target: String,
    next_seq: u64,
}

#[derive(Debug)]
struct State {
    instruments: Vec<Sym>,
    orders: FxHashMap<OrderId, Order>,
    /// `(MsgSeqNum, ClOrdID)` of the requests sent, at `seq & (len - 1)`.
    sent: Vec<(u64, u64)>,
    /// `base >> ID_BITS` of this connection's request ids.
    mine: u64,
    text: String,
}

/// What a session is opened with.
pub(crate) struct FixParams<'a> {
    pub addr: SocketAddr,
    pub target_comp_id: &'a str,
    pub account: AccountId,
    pub token: &'a str,
    pub index: usize,
    pub heartbeat_s: u64,
    /// The connection's request id base.
    pub base: u64,
    /// Requests in flight at most (sizes the MsgSeqNum ring).
    pub slots: usize,
    pub instruments: &'a [Instrument],
}

impl FixSession {
    pub(crate) fn new(p: &FixParams<'_>) -> FixSession {
        FixSession {
            enc: Encoder {
                writer: Writer::new(),
                sender: format!("LOAD-{}-{}", p.account, p.index),
                target: p.target_comp_id.to_string(),
                next_seq: 1,
            },
            state: State {
                instruments: p
                    .instruments
                    .iter()
                    .map(|i| Sym {
                        id: i.id,
                        symbol: i.symbol.clone(),
                        scale: i.price_scale,
                    })
                    .collect(),
                orders: FxHashMap::default(),
                sent: vec![(0, 0); (p.slots * 4).next_power_of_two().max(64)],
                mine: p.base >> ID_BITS,
                text: String::new(),
            },
            parser: Parser::new(),
            buf: vec![0; READ_CAPACITY],
            start: 0,
            end: 0,
        }
    }

    /// SenderCompID (49).
    pub(crate) fn comp_id(&self) -> &str {
        &self.enc.sender
    }

    /// The Text of the last reject without an engine reason, or of the last Logout.
    pub(crate) fn reject_text(&self) -> &str {
        &self.state.text
    }

    /// Where the next read goes (at least [`MIN_READ`] bytes).
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.buf.len() - self.end < MIN_READ {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        &mut self.buf[self.end..]
    }

    pub(crate) fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// The next complete message, acted on (session answers go to `out`); `Ok(None)` when
    /// more bytes are needed. An error names what is wrong with the bytes.
    pub(crate) fn next(&mut self, out: &mut Vec<u8>) -> Result<Option<Inbound>, String> {
        let n = match frame(&self.buf[self.start..self.end], MAX_MESSAGE) {
            FrameStatus::Incomplete => return Ok(None),
            FrameStatus::Garbled { error, .. } => return Err(error.to_string()),
            FrameStatus::Complete(n) => n,
        };
        let at = self.start;
        self.start += n;
        let FixSession {
            enc,
            state,
            parser,
            buf,
            ..
        } = self;
        let msg = parser.parse(&buf[at..at + n]).map_err(|e| e.to_string())?;
        Ok(Some(state.on_message(&msg, enc, out)))
    }

    /// The Logon (A): HeartBtInt, the account and token, ResetSeqNumFlag Y.
    pub(crate) fn logon(&mut self, out: &mut Vec<u8>, account: AccountId, token: &str, hb: u64) {
        let w = self.enc.header(b"A", wall_ns());
        w.uint(tags::ENCRYPT_METHOD, 0);
        w.uint(tags::HEART_BT_INT, hb);
        w.bool(tags::RESET_SEQ_NUM_FLAG, true);
        w.uint(tags::USERNAME, u64::from(account));
        w.str(tags::PASSWORD, token);
        w.finish(out);
    }

    pub(crate) fn heartbeat(&mut self, out: &mut Vec<u8>) {
        self.enc.header(b"0", wall_ns()).finish(out);
    }

    pub(crate) fn logout(&mut self, out: &mut Vec<u8>, text: &str) {
        let w = self.enc.header(b"5", wall_ns());
        w.str(tags::TEXT, text);
        w.finish(out);
    }

    /// Append `cmd` as D, F, G or q (an admin command is not sent).
    pub(crate) fn command(&mut self, cmd: &Command, out: &mut Vec<u8>) {
        let now = wall_ns();
        let st = &self.state;
        let sym = |id: SymbolId| {
            st.instruments
                .iter()
                .find(|s| s.id == id)
                .map_or(("?", 0), |s| (s.symbol.as_str(), s.scale))
        };
        let order = |id: OrderId| {
            st.orders.get(&id).copied().unwrap_or(Order {
                side: Side::Buy,
                cum: 0,
            })
        };
        let (kind, coid): (&[u8], u64) = match cmd {
            Command::New(o) => (b"D", o.client_order_id),
            Command::Cancel(c) => (b"F", c.client_order_id),
            Command::Replace(r) => (b"G", r.client_order_id),
            Command::MassCancel(m) => (b"q", m.client_order_id),
            Command::Admin(_) => return,
        };
        let seq = self.enc.next_seq;
        let w = self.enc.header(kind, now);
        w.uint(tags::CL_ORD_ID, coid);
        match cmd {
            Command::New(o) => {
                let (symbol, scale) = sym(o.symbol);
                w.str(tags::SYMBOL, symbol);
                w.char(tags::SIDE, side_char(o.side));
                w.timestamp(tags::TRANSACT_TIME, now);
                w.uint(tags::ORDER_QTY, o.qty);
                match o.kind {
                    OrderKind::Limit => {
                        w.char(tags::ORD_TYPE, b'2');
                        w.decimal(tags::PRICE, o.price, scale);
                    }
                    OrderKind::Market => w.char(tags::ORD_TYPE, b'1'),
                }
                let tif = match o.tif {
                    TimeInForce::Gtc => b'1',
                    TimeInForce::Ioc => b'3',
                    TimeInForce::Fok => b'4',
                };
                w.char(tags::TIME_IN_FORCE, tif);
                if o.post_only {
                    w.char(tags::EXEC_INST, b'6');
                }
                if o.stp != veloz_core::SelfTradePrevention::Allow {
                    w.uint(tags::SELF_TRADE_PREVENTION_INSTRUCTION, o.stp as u64);
                }
            }
            Command::Cancel(c) => {
                // OrigClOrdID is required by FIX but the acceptor goes by OrderID.
                w.uint(tags::ORDER_ID, c.order_id);
                w.uint(tags::ORIG_CL_ORD_ID, c.order_id);
                w.str(tags::SYMBOL, sym(c.symbol).0);
                w.char(tags::SIDE, side_char(order(c.order_id).side));
                w.timestamp(tags::TRANSACT_TIME, now);
            }
            Command::Replace(r) => {
                let (symbol, scale) = sym(r.symbol);
                let o = order(r.order_id);
                w.uint(tags::ORDER_ID, r.order_id);
                w.uint(tags::ORIG_CL_ORD_ID, r.order_id);
                w.str(tags::SYMBOL, symbol);
                w.char(tags::SIDE, side_char(o.side));
                w.timestamp(tags::TRANSACT_TIME, now);
                w.char(tags::ORD_TYPE, b'2');
                w.decimal(tags::PRICE, r.price, scale);
                w.uint(tags::ORDER_QTY, o.cum + r.qty);
            }
            Command::MassCancel(m) => {
                match m.symbol {
                    Some(s) => {
                        w.char(tags::MASS_CANCEL_REQUEST_TYPE, b'1');
                        w.str(tags::SYMBOL, sym(s).0);
                    }
                    None => w.char(tags::MASS_CANCEL_REQUEST_TYPE, b'7'),
                }
                w.timestamp(tags::TRANSACT_TIME, now);
            }
            Command::Admin(_) => {}
        }
        w.finish(out);
        let mask = self.state.sent.len() as u64 - 1;
        self.state.sent[(seq & mask) as usize] = (seq, coid);
    }
}

fn side_char(s: Side) -> u8 {
    match s {
        Side::Buy => b'1',
        Side::Sell => b'2',
    }
}

/// A decimal integer field (0 when absent or not a number, e.g. OrderID `NONE`).
fn num(m: &Message<'_>, tag: u32) -> u64 {
    m.get_u64(tag).ok().flatten().unwrap_or(0)
}

impl Encoder {
    /// Start a message: MsgType, then 49, 56, 34 (the next number), 52.
    fn header(&mut self, msg_type: &[u8], now: u64) -> &mut Writer {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.header_at(msg_type, seq, now)
    }

    fn header_at(&mut self, msg_type: &[u8], seq: u64, now: u64) -> &mut Writer {
        let w = &mut self.writer;
        w.begin(msg_type);
        w.str(tags::SENDER_COMP_ID, &self.sender);
        w.str(tags::TARGET_COMP_ID, &self.target);
        w.uint(tags::MSG_SEQ_NUM, seq);
        w.timestamp(tags::SENDING_TIME, now);
        w
    }
}

impl State {
    fn on_message(&mut self, m: &Message<'_>, enc: &mut Encoder, out: &mut Vec<u8>) -> Inbound {
        match m.msg_type() {
            b"8" => self.execution(m).map_or(Inbound::Session, Inbound::Report),
            b"9" => {
                let client_order_id = num(m, tags::CL_ORD_ID);
                Inbound::Report(self.rejected(client_order_id, num(m, tags::ORDER_ID), m))
            }
            b"r" => Inbound::Report(skim::Report {
                exec_type: ExecType::MassCancelled,
                ..report(num(m, tags::CL_ORD_ID))
            }),
            b"3" | b"j" => {
                let seq = num(m, tags::REF_SEQ_NUM);
                let slot = self.sent[(seq & (self.sent.len() as u64 - 1)) as usize];
                let coid = if slot.0 == seq && seq != 0 { slot.1 } else { 0 };
                self.text.clear();
                match m.get_str(tags::TEXT).ok().flatten() {
                    Some(t) => self.text.push_str(t),
                    None if m.msg_type() == b"3" => {
                        self.text.push_str("session reject ");
                        self.text
                            .push_str(m.get_str(373).ok().flatten().unwrap_or("?"));
                    }
                    None => {
                        self.text.push_str("business reject ");
                        self.text
                            .push_str(m.get_str(380).ok().flatten().unwrap_or("?"));
                    }
                }
                if coid == 0 {
                    return Inbound::Stray;
                }
                Inbound::Report(skim::Report {
                    exec_type: ExecType::Rejected,
                    ..report(coid)
                })
            }
            b"5" => {
                self.text.clear();
                self.text
                    .push_str(m.get_str(tags::TEXT).ok().flatten().unwrap_or(""));
                Inbound::Logout
            }
            b"1" => {
                let w = enc.header(b"0", wall_ns());
                w.bytes(tags::TEST_REQ_ID, m.get(tags::TEST_REQ_ID).unwrap_or(b"?"));
                w.finish(out);
                Inbound::Session
            }
            b"2" => {
                // Nothing is kept to resend: gap-fill the range up to the next number.
                let (from, to) = (num(m, tags::BEGIN_SEQ_NO).max(1), enc.next_seq);
                let w = enc.header_at(b"4", from, wall_ns());
                w.bool(tags::POSS_DUP_FLAG, true);
                w.bool(tags::GAP_FILL_FLAG, true);
                w.uint(tags::NEW_SEQ_NO, to);
                w.finish(out);
                Inbound::Session
            }
            b"A" => Inbound::Logon,
            _ => Inbound::Session,
        }
    }

    fn symbol(&self, m: &Message<'_>) -> Option<&Sym> {
        let s = m.get(tags::SYMBOL)?;
        self.instruments.iter().find(|i| i.symbol.as_bytes() == s)
    }

    /// A Rejected report; the reason from Text `name (code)`, else the Text is kept.
    fn rejected(&mut self, client_order_id: u64, order_id: u64, m: &Message<'_>) -> skim::Report {
        let text = m.get_str(tags::TEXT).ok().flatten().unwrap_or("rejected");
        let reason = text
            .strip_suffix(')')
            .and_then(|t| t.rsplit_once(" ("))
            .and_then(|(name, code)| {
                let r = RejectReason::from_code(code.parse().ok()?)?;
                (r.name() == name).then_some(r)
            });
        if reason.is_none() {
            reject_name(text, &mut self.text);
        }
        skim::Report {
            exec_type: ExecType::Rejected,
            order_id,
            reject_reason: reason,
            ..report(client_order_id)
        }
    }

    fn execution(&mut self, m: &Message<'_>) -> Option<skim::Report> {
        let client_order_id = num(m, tags::CL_ORD_ID);
        let order_id = num(m, tags::ORDER_ID);
        let exec_type = match m.get(tags::EXEC_TYPE)? {
            b"0" => ExecType::Accepted,
            b"F" if m.get(tags::ORD_STATUS) == Some(b"2") => ExecType::Filled,
            b"F" => ExecType::PartiallyFilled,
            b"4" => ExecType::Cancelled,
            b"5" => ExecType::Replaced,
            b"8" => return Some(self.rejected(client_order_id, order_id, m)),
            _ => return None,
        };
        let (symbol, scale) = self.symbol(m).map_or((None, 0), |s| (Some(s.id), s.scale));
        let side = match m.get(tags::SIDE)? {
            b"1" => Side::Buy,
            b"2" => Side::Sell,
            _ => return None,
        };
        let decimal = |tag| m.get_decimal(tag, scale).ok().flatten().unwrap_or(0);
        let fill = matches!(exec_type, ExecType::Filled | ExecType::PartiallyFilled);
        let liquidity = match (fill, m.get(tags::AGGRESSOR_INDICATOR)) {
            (false, _) => Liquidity::NotApplicable,
            (true, Some(b"Y")) => Liquidity::Taker,
            (true, _) => Liquidity::Maker,
        };
        let (leaves_qty, cum) = (num(m, tags::LEAVES_QTY), num(m, tags::CUM_QTY));
        if client_order_id >> ID_BITS == self.mine && order_id != 0 {
            match exec_type {
                ExecType::Accepted | ExecType::Replaced | ExecType::PartiallyFilled
                    if leaves_qty > 0 =>
                {
                    self.orders.insert(order_id, Order { side, cum });
                }
                _ => {
                    self.orders.remove(&order_id);
                }
            }
        }
        Some(skim::Report {
            exec_type,
            order_id,
            symbol,
            side: Some(side),
            price: decimal(tags::PRICE),
            last_price: decimal(tags::LAST_PX),
            leaves_qty,
            liquidity,
            ..report(client_order_id)
        })
    }
}

/// A reject's Text as a count's name: every number but a tag's (`OrderQty (38)`) becomes
/// `N`, so that one kind of refusal is one name, whatever the values it quotes.
fn reject_name(text: &str, out: &mut String) {
    out.clear();
    let b = text.as_bytes();
    let (mut from, mut i, mut tag_kept) = (0, 0, false);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        out.push_str(&text[from..i]);
        if !tag_kept && i > 0 && b[i - 1] == b'(' && b.get(end) == Some(&b')') {
            out.push_str(&text[i..end]);
            tag_kept = true;
        } else {
            out.push('N');
        }
        (from, i) = (end, end);
    }
    out.push_str(&text[from..]);
}

/// An empty report of `client_order_id` (Accepted until set).
fn report(client_order_id: u64) -> skim::Report {
    skim::Report {
        exec_type: ExecType::Accepted,
        order_id: 0,
        client_order_id,
        symbol: None,
        side: None,
        price: 0,
        last_price: 0,
        leaves_qty: 0,
        liquidity: Liquidity::NotApplicable,
        reject_reason: None,
    }
}

/// Connect to the FIX acceptor and log on (blocking, at most `timeout`); the socket is
/// non-blocking afterwards, the session ready for orders.
pub(crate) fn logon(
    p: &FixParams<'_>,
    timeout: Duration,
) -> Result<(TcpStream, FixSession), LoadError> {
    let (addr, account) = (p.addr, p.account);
    let io = |what: &'static str| {
        move |source| LoadError::Io {
            addr: addr.to_string(),
            account,
            what,
            source,
        }
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect (FIX)"))?;
    stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
    let mut session = FixSession::new(p);
    let mut out = Vec::with_capacity(512);
    session.logon(&mut out, account, p.token, p.heartbeat_s);
    (&stream)
        .write_all(&out)
        .map_err(io("send the FIX logon"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(io("set a read timeout"))?;
    let deadline = Instant::now() + timeout;
    let fix_error = |detail: String| LoadError::Fix {
        addr: addr.to_string(),
        account,
        detail,
    };
    loop {
        out.clear();
        while let Some(m) = session.next(&mut out).map_err(fix_error)? {
            match m {
                Inbound::Logon => {
                    (&stream).write_all(&out).map_err(io("send"))?;
                    stream
                        .set_nonblocking(true)
                        .map_err(io("set non-blocking"))?;
                    return Ok((stream, session));
                }
                Inbound::Logout => {
                    return Err(LoadError::LogonRefused {
                        addr: addr.to_string(),
                        account,
                        reason: "FIX Logout",
                        text: format!("{} as {}", session.reject_text(), session.comp_id()),
                    })
                }
                _ => {}
            }
        }
        (&stream).write_all(&out).map_err(io("send"))?;
        let buf = session.read_buf();
        let n = read_logon_answer(
            &stream,
            buf,
            addr,
            account,
            deadline,
            timeout,
            "the FIX logon",
        )?;
        session.commit(n);
    }
}

#[cfg(test)]
#[path = "fix_tests.rs"]
mod tests;

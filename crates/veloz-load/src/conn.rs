//! One load connection: a non-blocking socket, its frame decoder and encoder (against the FIX
//! acceptor, its [`FixSession`] instead), the window of requests in flight, and the
//! connection's [`OrderFlow`].
//!
//! Requests are numbered by their `client_order_id`: `base | n` with `n` counting from 1, so
//! ids never repeat within a run, across the connections of one account, or (through the
//! run nonce in `base`) across runs against the same engine. The request of number `n` lives
//! in slot `n % slots` until it is answered, `slots` being the run's window (or pipeline)
//! rounded up to a power of two, at most [`WINDOW`]: a connection never has more requests in
//! flight than that; when the slot it would use next still waits for its answer, it stops
//! sending (the open-loop schedule keeps running, so that wait is counted). Slots are sized
//! to the window, not to [`WINDOW`], so that a thousand connections cost kilobytes each.
//!
//! The answer to a request is the first report carrying its `client_order_id`: Accepted or
//! Rejected for a new order, Cancelled or Rejected for a cancel, Replaced or Rejected for a
//! replace. Later reports with the same id (fills, the cancel of an IOC's rest) only update
//! the order flow and the trade count. Against the echo baseline the answer is the request's
//! own frame coming back.
//!
//! The engine sends every report of an account to each session of that account: a
//! connection sharing its account with others reads their reports too, and skips them (the
//! connection index in the request id tells them apart), so that its order flow only ever
//! holds its own orders.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hdrhistogram::Histogram;

use veloz_core::workload::Kind;
use veloz_core::{AccountId, Command, Instrument, MassCancel, TimeInForce};
use veloz_wire::{
    decode_client, decode_engine, ClientMessage, EngineMessage, ExecType, FrameDecoder,
    FrameEncoder, Liquidity, Logout, LogoutReason, DEFAULT_MAX_FRAME_LEN,
};

use super::fix::{FixSession, Inbound};
use super::flow::{FlowConfig, OrderFlow};
use super::{Clock, LoadError};
use veloz_wire::skim;

/// Bits of the request number in a request id; above them, the connection index (12 bits)
/// and the run nonce (12 bits).
pub(crate) const ID_BITS: u32 = 40;
/// Requests in flight per connection, at most (a power of two).
pub(crate) const WINDOW: usize = 1 << 14;
/// Bytes reserved for a connection's outgoing frames (the buffer grows when a burst needs
/// more): a request is under 100 bytes.
const OUT_CAPACITY: usize = 4 * 1024;
/// Bytes read from one socket per poll before the next connection gets its turn.
const READ_BUDGET: usize = 256 * 1024;
/// Largest latency a histogram holds (larger values are clamped to it): 100 s.
pub(crate) const MAX_LATENCY_NS: u64 = 100_000_000_000;

/// What answers on the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `veloz serve`: logon, execution reports.
    Engine,
    /// The baseline echo server: every frame comes back as it was sent.
    Echo,
    /// `veloz serve`'s FIX 4.4 acceptor ([`super::fix`]).
    Fix,
}

/// A request in flight (or answered, until its slot is reused).
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    client_order_id: u64,
    /// Nanoseconds on the run's [`Clock`].
    intended: u64,
    /// Sent for the measured window (latency recorded, counted).
    measured: bool,
    answered: bool,
    traded: bool,
}

/// Counts of the measured window (requests whose intended send time lies in it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub sent: u64,
    pub answered: u64,
    /// Measured requests still unanswered when the drain gave up.
    pub unanswered: u64,
    pub gtc: u64,
    pub ioc: u64,
    pub cancels: u64,
    pub moves: u64,
    /// Requests that traded (at least one fill as the taker).
    pub trading: u64,
    /// Rejected requests by reason name.
    pub rejects: BTreeMap<String, u64>,
}

impl Counters {
    pub fn merge(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.unanswered += o.unanswered;
        self.gtc += o.gtc;
        self.ioc += o.ioc;
        self.cancels += o.cancels;
        self.moves += o.moves;
        self.trading += o.trading;
        for (k, v) in &o.rejects {
            self.reject(k, *v);
        }
    }

    /// Count `n` rejects named `name` (allocates the first time a name is seen).
    pub fn reject(&mut self, name: &str, n: u64) {
        match self.rejects.get_mut(name) {
            Some(c) => *c += n,
            None => {
                self.rejects.insert(name.to_string(), n);
            }
        }
    }
}

/// Where one thread's connections record: the measured window, its histograms, counters.
pub(crate) struct Recorder {
    /// Whole measured window, ns.
    pub total: Histogram<u64>,
    /// The current one-second interval of the interval log, ns.
    pub interval: Histogram<u64>,
    /// How late the load queued each measured request after its intended send time, ns: the
    /// load's own share of the latency (open loop; 0 in closed loop).
    pub lag: Histogram<u64>,
    pub counters: Counters,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            total: new_histogram(),
            interval: new_histogram(),
            lag: new_histogram(),
            counters: Counters::default(),
        }
    }

    fn record(&mut self, ns: u64) {
        self.total.saturating_record(ns.max(1));
        self.interval.saturating_record(ns.max(1));
    }
}

/// A latency histogram: 1 ns to [`MAX_LATENCY_NS`], 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// One connection; see the module docs.
pub(crate) struct Conn {
    /// Index over all connections of the run.
    pub index: usize,
    pub account: AccountId,
    /// The first connection of its account: it mass-cancels the account's orders at the end.
    pub first_of_account: bool,
    peer: Peer,
    addr: SocketAddr,
    stream: TcpStream,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    /// [`Peer::Fix`]: the FIX session (codec, read buffer, order table).
    fix: Option<Box<FixSession>>,
    out: Vec<u8>,
    out_pos: usize,
    flow: OrderFlow,
    slots: Vec<Slot>,
    /// `slots.len() - 1`: the slot of request `n` is `n & mask`.
    mask: u64,
    base: u64,
    next: u64,
    pub in_flight: usize,
    /// Open loop: this connection's next position in the run's schedule.
    pub schedule_pos: u64,
    heartbeat_ns: u64,
    last_send: u64,
    /// Logout sent: an end of stream is expected now.
    closing: bool,
    pub eof: bool,
    /// What the connection is doing, for errors (`the prefill`, `the measured run`, ...).
    pub phase: &'static str,
}

/// An engine connection right after its logon.
pub(crate) struct LoggedOn {
    pub stream: TcpStream,
    pub decoder: FrameDecoder,
    pub instruments: Vec<Instrument>,
    pub heartbeat_ms: u32,
}

/// Connect to the engine and log on (blocking, at most `timeout`); the socket is
/// non-blocking afterwards.
pub(crate) fn logon(
    addr: SocketAddr,
    account: AccountId,
    token: &str,
    timeout: Duration,
) -> Result<LoggedOn, LoadError> {
    let io = |what: &'static str| {
        move |source| LoadError::Io {
            addr: addr.to_string(),
            account,
            what,
            source,
        }
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect"))?;
    stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
    let mut encoder = FrameEncoder::new();
    (&stream)
        .write_all(encoder.logon(account, token))
        .map_err(io("send the logon"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(io("set a read timeout"))?;
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_LEN);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match decoder.next_frame() {
            Ok(Some(frame)) => match decode_engine(frame) {
                Ok(EngineMessage::LogonAck(ack)) => {
                    let instruments = ack
                        .instruments
                        .iter()
                        .map(|i| Instrument {
                            id: i.id,
                            symbol: i.symbol.to_string(),
                            price_scale: i.price_scale,
                            tick_size: i.tick_size.max(1),
                            lot_size: i.lot_size.max(1),
                            min_qty: i.min_qty,
                            max_qty: i.max_qty,
                            ..Instrument::simple(i.id, i.symbol)
                        })
                        .collect();
                    let heartbeat_ms = ack.heartbeat_interval_ms;
                    stream
                        .set_nonblocking(true)
                        .map_err(io("set non-blocking"))?;
                    return Ok(LoggedOn {
                        stream,
                        decoder,
                        instruments,
                        heartbeat_ms,
                    });
                }
                Ok(EngineMessage::Logout(l)) => {
                    return Err(LoadError::LogonRefused {
                        addr: addr.to_string(),
                        account,
                        reason: l.reason.name(),
                        text: l.text.to_string(),
                    })
                }
                Ok(_) => continue,
                Err(source) => {
                    return Err(LoadError::Wire {
                        addr: addr.to_string(),
                        account,
                        source,
                    })
                }
            },
            Ok(None) => {}
            Err(source) => {
                return Err(LoadError::Wire {
                    addr: addr.to_string(),
                    account,
                    source,
                })
            }
        }
        let n = read_logon_answer(
            &stream,
            decoder.read_buf(),
            addr,
            account,
            deadline,
            timeout,
            "logon",
        )?;
        decoder.commit(n);
    }
}

/// One read of a logon's answer into `buf` (the socket has a short read timeout): the bytes
/// read, 0 when nothing came yet; an error once `deadline` has passed (waited `timeout`), at
/// the end of the stream (`during` names what was going on) or on a read error.
pub(crate) fn read_logon_answer(
    stream: &TcpStream,
    buf: &mut [u8],
    addr: SocketAddr,
    account: AccountId,
    deadline: std::time::Instant,
    timeout: Duration,
    during: &'static str,
) -> Result<usize, LoadError> {
    if std::time::Instant::now() > deadline {
        return Err(LoadError::LogonTimeout {
            addr: addr.to_string(),
            account,
            waited: timeout,
        });
    }
    let mut reader = stream;
    match reader.read(buf) {
        Ok(0) => Err(LoadError::Closed {
            addr: addr.to_string(),
            account,
            during,
        }),
        Ok(n) => Ok(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(0),
        Err(e) if e.kind() == ErrorKind::Interrupted => Ok(0),
        Err(source) => Err(LoadError::Io {
            addr: addr.to_string(),
            account,
            what: "read the logon answer",
            source,
        }),
    }
}

/// Connect to the echo server (no logon); the socket is non-blocking.
pub(crate) fn connect_echo(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, LoadError> {
    let io = |what: &'static str| {
        move |source| LoadError::Io {
            addr: addr.to_string(),
            account: 0,
            what,
            source,
        }
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("connect"))?;
    stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
    stream
        .set_nonblocking(true)
        .map_err(io("set non-blocking"))?;
    Ok(stream)
}

/// Everything a [`Conn`] is built from.
pub(crate) struct ConnParts {
    pub index: usize,
    pub account: AccountId,
    pub first_of_account: bool,
    pub peer: Peer,
    pub addr: SocketAddr,
    pub stream: TcpStream,
    pub decoder: FrameDecoder,
    /// [`Peer::Fix`]: the logged-on session.
    pub fix: Option<FixSession>,
    pub heartbeat_ms: u32,
    /// Request ids are `base | n`; `base` holds the run nonce and the connection index.
    pub base: u64,
    /// Slots of requests in flight: a power of two, at most [`WINDOW`].
    pub slots: usize,
}

impl Conn {
    pub fn new(parts: ConnParts, instruments: &[Instrument], flow: &FlowConfig) -> Conn {
        let slots = parts.slots.clamp(1, WINDOW).next_power_of_two();
        Conn {
            index: parts.index,
            account: parts.account,
            first_of_account: parts.first_of_account,
            peer: parts.peer,
            addr: parts.addr,
            stream: parts.stream,
            decoder: parts.decoder,
            encoder: FrameEncoder::new(),
            fix: parts.fix.map(Box::new),
            out: Vec::with_capacity(OUT_CAPACITY),
            out_pos: 0,
            flow: OrderFlow::new(instruments, flow, parts.index),
            slots: vec![Slot::default(); slots],
            mask: slots as u64 - 1,
            base: parts.base,
            next: 1,
            in_flight: 0,
            schedule_pos: 0,
            heartbeat_ns: u64::from(parts.heartbeat_ms.max(10)) * 1_000_000 / 2,
            last_send: 0,
            closing: false,
            eof: false,
            phase: "the start",
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, for a readiness set.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Queued bytes the socket did not take yet.
    pub fn wants_write(&self) -> bool {
        self.out_pos < self.out.len()
    }

    pub fn resting(&self) -> usize {
        self.flow.resting()
    }

    /// The slot the next request would use is free.
    pub fn window_open(&self) -> bool {
        let s = &self.slots[(self.next & self.mask) as usize];
        s.client_order_id == 0 || s.answered
    }

    fn slot_of(&mut self, client_order_id: u64) -> Option<&mut Slot> {
        let s = &mut self.slots[(client_order_id & self.mask) as usize];
        (s.client_order_id == client_order_id).then_some(s)
    }

    fn push(&mut self, cmd: &Command, intended: u64, measured: bool, now: u64) {
        let client_order_id = cmd.client_order_id();
        match self.fix.as_mut() {
            Some(fix) => fix.command(cmd, &mut self.out),
            None => self.out.extend_from_slice(self.encoder.command(cmd)),
        }
        self.slots[(self.next & self.mask) as usize] = Slot {
            client_order_id,
            intended,
            measured,
            answered: false,
            traded: false,
        };
        self.next += 1;
        self.in_flight += 1;
        self.last_send = now;
    }

    /// Queue the next command of the mix, intended for `intended` (ns on the run clock).
    pub fn send_next(&mut self, intended: u64, measured: bool, now: u64, rec: &mut Recorder) {
        let (kind, cmd) = self.flow.next(self.base | self.next);
        self.push(&cmd, intended, measured, now);
        if measured {
            rec.lag
                .saturating_record(now.saturating_sub(intended).max(1));
            let c = &mut rec.counters;
            c.sent += 1;
            match kind {
                Kind::Gtc => c.gtc += 1,
                Kind::Ioc => c.ioc += 1,
                Kind::Cancel => c.cancels += 1,
                Kind::Move => c.moves += 1,
            }
        }
    }

    /// Queue the next prefill order; `false` when the books are full.
    pub fn send_prefill(&mut self, now: u64) -> bool {
        match self.flow.prefill_next(self.base | self.next) {
            Some(cmd) => {
                self.push(&cmd, now, false, now);
                true
            }
            None => false,
        }
    }

    /// Queue a heartbeat when nothing was sent for half the heartbeat interval.
    pub fn heartbeat_if_idle(&mut self, now: u64) {
        if self.peer != Peer::Echo && now.saturating_sub(self.last_send) > self.heartbeat_ns {
            match self.fix.as_mut() {
                Some(fix) => fix.heartbeat(&mut self.out),
                None => self.out.extend_from_slice(self.encoder.heartbeat(0)),
            }
            self.last_send = now;
        }
    }

    /// The end: a mass cancel of the account's orders (first connection of an account
    /// only), then a Logout. Against the echo server the socket is just shut down.
    pub fn begin_close(&mut self) {
        if self.peer == Peer::Echo {
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
            self.closing = true;
            return;
        }
        if self.first_of_account {
            let cmd = Command::MassCancel(MassCancel {
                account: 0,
                client_order_id: self.base,
                symbol: None,
                reason: veloz_core::CancelReason::MassCancel,
            });
            match self.fix.as_mut() {
                Some(fix) => fix.command(&cmd, &mut self.out),
                None => self.out.extend_from_slice(self.encoder.command(&cmd)),
            }
        }
        match self.fix.as_mut() {
            Some(fix) => fix.logout(&mut self.out, "veloz load done"),
            None => self.out.extend_from_slice(self.encoder.logout(&Logout {
                reason: LogoutReason::Requested,
                text: "veloz load done",
            })),
        }
        self.closing = true;
    }

    /// Measured requests still waiting for their answer.
    pub fn unanswered_measured(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.client_order_id != 0 && s.measured && !s.answered)
            .count() as u64
    }

    fn io_error(&self, what: &'static str, source: std::io::Error) -> LoadError {
        LoadError::Io {
            addr: self.addr.to_string(),
            account: self.account,
            what,
            source,
        }
    }

    /// Write what is queued, as far as the socket takes it.
    pub fn flush(&mut self) -> Result<(), LoadError> {
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    return Err(LoadError::Closed {
                        addr: self.addr.to_string(),
                        account: self.account,
                        during: self.phase,
                    })
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if self.closing => {
                    // The peer may close first at the end; nothing left matters then.
                    let _ = e;
                    self.eof = true;
                    self.out.clear();
                    self.out_pos = 0;
                    return Ok(());
                }
                Err(e) => return Err(self.io_error("write", e)),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > 1 << 20 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Read what the socket has and act on every complete frame; arrival times are taken
    /// once per read. A read that leaves room in the buffer took all there was: no second
    /// read to hear `WouldBlock` (the next pass, or the next readiness event, comes back).
    /// Returns the bytes read.
    pub fn poll(&mut self, clock: &Clock, rec: &mut Recorder) -> Result<usize, LoadError> {
        let mut total = 0;
        while total < READ_BUDGET && !self.eof {
            let buf = match self.fix.as_mut() {
                Some(fix) => fix.read_buf(),
                None => self.decoder.read_buf(),
            };
            let offered = buf.len();
            match self.stream.read(buf) {
                Ok(0) => {
                    self.eof = true;
                    if !self.closing {
                        return Err(LoadError::Closed {
                            addr: self.addr.to_string(),
                            account: self.account,
                            during: self.phase,
                        });
                    }
                }
                Ok(n) => {
                    total += n;
                    let arrival = clock.now();
                    match self.fix.as_mut() {
                        Some(fix) => {
                            fix.commit(n);
                            self.handle_fix(arrival, rec)?;
                        }
                        None => {
                            self.decoder.commit(n);
                            self.handle_frames(arrival, rec)?;
                        }
                    }
                    if n < offered {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) if self.closing => self.eof = true,
                Err(e) => return Err(self.io_error("read", e)),
            }
        }
        Ok(total)
    }

    fn wire_error(&self, source: veloz_wire::WireError) -> LoadError {
        LoadError::Wire {
            addr: self.addr.to_string(),
            account: self.account,
            source,
        }
    }

    /// [`Peer::Fix`]: act on every complete FIX message.
    fn handle_fix(&mut self, arrival: u64, rec: &mut Recorder) -> Result<(), LoadError> {
        loop {
            let Some(fix) = self.fix.as_mut() else {
                return Ok(());
            };
            let inbound = match fix.next(&mut self.out) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(detail) => {
                    return Err(LoadError::Fix {
                        addr: self.addr.to_string(),
                        account: self.account,
                        detail,
                    })
                }
            };
            match inbound {
                Inbound::Report(r) => self.on_report(&r, arrival, rec),
                Inbound::Stray => {
                    let name = self.fix.as_ref().map_or("", |f| f.reject_text());
                    tracing::warn!(target: "veloz::load", "FIX reject of no request in flight: {name}");
                    rec.counters.reject(name, 1);
                }
                Inbound::Logout if !self.closing => {
                    return Err(LoadError::EngineLogout {
                        addr: self.addr.to_string(),
                        account: self.account,
                        reason: "FIX Logout",
                        text: self
                            .fix
                            .as_ref()
                            .map_or(String::new(), |f| f.reject_text().to_string()),
                    })
                }
                Inbound::Logout | Inbound::Logon | Inbound::Session => {}
            }
        }
    }

    fn handle_frames(&mut self, arrival: u64, rec: &mut Recorder) -> Result<(), LoadError> {
        loop {
            let frame = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.wire_error(e)),
            };
            match self.peer {
                Peer::Engine | Peer::Fix => {
                    if let Some(report) = skim::report(frame) {
                        self.on_report(&report, arrival, rec);
                        continue;
                    }
                    // Not an execution report (or unreadable): the full decoder handles it
                    // or names what is wrong.
                    let report = match decode_engine(frame) {
                        Ok(EngineMessage::ExecutionReport(r)) => skim::Report::from(&r),
                        Ok(EngineMessage::Logout(_)) if self.closing => continue,
                        Ok(EngineMessage::Logout(l)) => {
                            return Err(LoadError::EngineLogout {
                                addr: self.addr.to_string(),
                                account: self.account,
                                reason: l.reason.name(),
                                text: l.text.to_string(),
                            })
                        }
                        Ok(_) => continue,
                        Err(e) => return Err(self.wire_error(e)),
                    };
                    self.on_report(&report, arrival, rec);
                }
                Peer::Echo => {
                    let echoed = match skim::echoed(frame) {
                        Some(e) => e,
                        None => match decode_client(frame, 0) {
                            Ok(ClientMessage::Order(cmd)) => skim::Echoed::from(&cmd),
                            Ok(_) => continue,
                            Err(e) => return Err(self.wire_error(e)),
                        },
                    };
                    self.on_echo(&echoed, arrival, rec);
                }
            }
        }
    }

    /// Mark `client_order_id` answered (first report only); records its latency when it was
    /// measured. Returns whether this was the answer of a measured request.
    fn answer(&mut self, client_order_id: u64, arrival: u64, rec: &mut Recorder) -> bool {
        let Some(slot) = self.slot_of(client_order_id) else {
            return false;
        };
        if slot.answered {
            return false;
        }
        slot.answered = true;
        let (measured, intended) = (slot.measured, slot.intended);
        self.in_flight -= 1;
        if measured {
            rec.counters.answered += 1;
            rec.record(arrival.saturating_sub(intended));
        }
        measured
    }

    fn on_report(&mut self, r: &skim::Report, arrival: u64, rec: &mut Recorder) {
        let coid = r.client_order_id;
        if coid >> ID_BITS != self.base >> ID_BITS {
            // Another session's report of the same account.
            return;
        }
        match r.exec_type {
            ExecType::Accepted => {
                if let (Some(symbol), Some(side)) = (r.symbol, r.side) {
                    self.flow
                        .on_accepted(r.order_id, symbol, side, r.price, r.leaves_qty);
                }
                self.answer(coid, arrival, rec);
            }
            ExecType::PartiallyFilled | ExecType::Filled => {
                self.flow.on_fill(
                    r.order_id,
                    r.symbol.unwrap_or(0),
                    r.last_price,
                    r.leaves_qty,
                );
                if r.liquidity == Liquidity::Taker {
                    if let Some(slot) = self.slot_of(coid) {
                        if !slot.traded {
                            slot.traded = true;
                            if slot.measured {
                                rec.counters.trading += 1;
                            }
                        }
                    }
                }
            }
            ExecType::Cancelled => {
                self.flow.on_gone(r.order_id);
                self.answer(coid, arrival, rec);
            }
            ExecType::Replaced => {
                self.flow.on_replaced(r.order_id, r.price, r.leaves_qty);
                self.answer(coid, arrival, rec);
            }
            ExecType::Rejected => {
                // The order a rejected cancel or replace named is gone or not what this
                // connection thinks: stop naming it.
                self.flow.on_gone(r.order_id);
                if self.answer(coid, arrival, rec) {
                    let name = match (r.reject_reason, self.fix.as_ref()) {
                        (Some(x), _) => x.name(),
                        (None, Some(fix)) => fix.reject_text(),
                        (None, None) => "unknown",
                    };
                    rec.counters.reject(name, 1);
                }
            }
            ExecType::MassCancelled => {}
        }
    }

    fn on_echo(&mut self, e: &skim::Echoed, arrival: u64, rec: &mut Recorder) {
        // The echo world: a GTC rests under its own client order id, nothing trades.
        if let Some((symbol, side, TimeInForce::Gtc, price, qty)) = e.new_order {
            self.flow
                .on_accepted(e.client_order_id, symbol, side, price, qty);
        }
        self.answer(e.client_order_id, arrival, rec);
    }
}

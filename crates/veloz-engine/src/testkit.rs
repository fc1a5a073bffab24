//! Test support shared by the unit tests of the runtime components: configuration, shared
//! state, journals in memory, orders, and a client over a Unix stream pair that speaks the
//! wire protocol through `veloz_wire`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::{
    AccountId, ClientOrderId, Command, Engine, Event, Fill, NewOrder, Price, Qty, Side, SymbolId,
};
use veloz_journal::{Durability, MemStorage, Storage};
use veloz_wire::{
    decode_engine, EngineMessage, ExecType, FrameDecoder, FrameEncoder, LogoutReason,
    OpenOrdersEnd, OrderStatus, StreamResumed,
};

use crate::io::Clock;
use crate::journal::ShardJournal;
use crate::mesh::{Delivery, Inbound, Part, SessionRef};
use crate::sequencer::Sequencer;
use crate::shared::Shared;

/// The default configuration with small journal segments and page-cache durability.
pub fn config() -> Config {
    let mut c = Config::default();
    c.journal.segment_size = 1 << 20;
    c.journal.durability = Durability::None;
    c
}

/// Shared state for `n` shards over `config`.
pub fn shared(n: usize, config: Config) -> Arc<Shared> {
    let routing = Routing::from_config(&config, n).expect("routing");
    Arc::new(Shared::new(
        config,
        routing,
        PathBuf::from("unused-in-tests"),
        (0..n).collect(),
        Vec::new(),
        Arc::new(AtomicBool::new(false)),
    ))
}

/// Shard `index`'s engine, empty, as the shard builds it ([`veloz_config::Config::shard_engine`]).
pub fn engine(shared: &Shared, index: usize) -> Engine {
    shared.config.shard_engine(&shared.routing, index)
}

/// Shard `index`'s journal over `storage`, recovered into `engine`; returns the last seq.
pub fn journal<S: Storage>(
    shared: &Shared,
    index: usize,
    storage: S,
    engine: &mut Engine,
) -> (ShardJournal<S>, u64) {
    let (journal, recovered) =
        ShardJournal::recover(storage, &shared.config.journal, index as u16, false, engine)
            .expect("recover");
    (journal, recovered.last_seq)
}

/// Shard `index`'s sequencer over `storage`.
pub fn sequencer<S: Storage>(shared: &Shared, index: usize, storage: S) -> Sequencer<S> {
    let mut engine = engine(shared, index);
    let (journal, last_seq) = journal(shared, index, storage, &mut engine);
    Sequencer::new(index, engine, journal, last_seq, Clock::new(shared.epoch))
}

/// A sequencer of a one-shard engine over a fresh [`MemStorage`].
pub fn mem_sequencer(shared: &Shared) -> Sequencer<MemStorage> {
    sequencer(shared, 0, MemStorage::new())
}

/// A GTC limit order.
pub fn limit(
    account: AccountId,
    symbol: SymbolId,
    client_order_id: ClientOrderId,
    side: Side,
    price: Price,
    qty: Qty,
) -> Command {
    Command::New(NewOrder::limit(
        account,
        symbol,
        client_order_id,
        side,
        price,
        qty,
    ))
}

/// A trade of `qty` on symbol 1 at 1_900_000, the taker buying; `maker` and `taker` are
/// (order id, account, client order id, leaves qty).
pub fn trade(
    qty: Qty,
    maker: (u64, AccountId, ClientOrderId, Qty),
    taker: (u64, AccountId, ClientOrderId, Qty),
) -> Event {
    let fill = |(order_id, account, client_order_id, leaves_qty)| Fill {
        order_id,
        account,
        client_order_id,
        leaves_qty,
    };
    Event::Trade {
        trade_id: 1,
        symbol: 1,
        price: 1_900_000,
        qty,
        aggressor: Side::Buy,
        maker: fill(maker),
        taker: fill(taker),
    }
}

/// The `part` of `event` for session `to`, at `stream_seq` of stream `stream` (sequence 1).
pub fn delivery(
    to: SessionRef,
    event: Event,
    part: Part,
    stream: u16,
    stream_seq: u64,
) -> Delivery {
    Delivery {
        to,
        seq: 1,
        ts: 1,
        part,
        ingress: 0,
        stream,
        stream_seq,
        event,
    }
}

/// `cmd` as sent by `from` at `ingress`.
pub fn inbound(from: SessionRef, ingress: u64, cmd: Command) -> Inbound {
    Inbound { from, ingress, cmd }
}

/// A peer address for sessions over Unix streams.
pub fn peer() -> SocketAddr {
    "127.0.0.1:1".parse().expect("address")
}

/// What a client received, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    LogonAck {
        session_id: u64,
        /// Report streams of the account (one per shard).
        streams: u16,
    },
    Logout {
        reason: LogoutReason,
        text: String,
    },
    Heartbeat,
    Report {
        exec: ExecType,
        client_order_id: ClientOrderId,
        order_id: u64,
        symbol: Option<SymbolId>,
        leaves_qty: Qty,
        reject: Option<veloz_core::RejectReason>,
        mass_cancel_count: u32,
        /// The report's stream (shard) and position in it (0 for a gateway reject).
        stream: u16,
        stream_seq: u64,
    },
    Trade,
    /// A resend is complete on one stream.
    Resumed(StreamResumed),
    /// An answer to an order status or open-orders request.
    OrderStatus(OrderStatus),
    OpenOrdersEnd(OpenOrdersEnd),
    /// A balance report: request id, account, reject reason, (asset, name, available,
    /// held) per asset, and the slices.
    Balance {
        request_id: u64,
        account: u32,
        reject: Option<veloz_core::RejectReason>,
        balances: Vec<(u32, String, u64, u64)>,
        slices: Vec<veloz_wire::ShardBalance>,
    },
}

/// The client end of a session: frames out through [`FrameEncoder`], frames in through
/// [`FrameDecoder`] and [`decode_engine`].
#[derive(Debug)]
pub struct Client {
    pub stream: UnixStream,
    pub enc: FrameEncoder,
    dec: FrameDecoder,
    pub eof: bool,
}

impl Client {
    /// A connected pair: the client, and the server end (non-blocking) for the gateway.
    pub fn pair() -> (Client, UnixStream) {
        let (client, server) = UnixStream::pair().expect("socketpair");
        server.set_nonblocking(true).expect("non-blocking");
        client.set_nonblocking(true).expect("non-blocking");
        (
            Client {
                stream: client,
                enc: FrameEncoder::new(),
                dec: FrameDecoder::new(1 << 20),
                eof: false,
            },
            server,
        )
    }

    /// Write all of `bytes` (the server end is drained by the test between writes).
    pub fn send(&mut self, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            match self.stream.write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_micros(50))
                }
                Err(e) => panic!("client write: {e}"),
            }
        }
    }

    pub fn logon(&mut self, account: AccountId, token: &str) {
        let frame = self.enc.logon(account, token).to_vec();
        self.send(&frame);
    }

    /// Log on asking for the reports after `resume_after[stream]` on each stream.
    pub fn logon_resuming(&mut self, account: AccountId, token: &str, resume_after: &[u64]) {
        let frame = self
            .enc
            .logon_resuming(account, token, Some(resume_after))
            .to_vec();
        self.send(&frame);
    }

    /// Log on choosing cancel-on-disconnect (`None`: the account's default).
    pub fn logon_cancelling(&mut self, account: AccountId, token: &str, cancel: Option<bool>) {
        let logon = veloz_wire::Logon {
            cancel_on_disconnect: cancel,
            ..veloz_wire::Logon::new(account, token)
        };
        let frame = self.enc.logon_with(&logon).to_vec();
        self.send(&frame);
    }

    pub fn logout(&mut self) {
        let logout = veloz_wire::Logout {
            reason: LogoutReason::Requested,
            text: "",
        };
        let frame = self.enc.logout(&logout).to_vec();
        self.send(&frame);
    }

    pub fn order(&mut self, cmd: &Command) {
        let frame = self.enc.command(cmd).to_vec();
        self.send(&frame);
    }

    /// Read raw bytes until the end of the stream; returns how many there were.
    pub fn read_to_end(&mut self) -> usize {
        let mut buf = [0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_micros(100))
                }
                Err(_) => break,
            }
        }
        self.eof = true;
        total
    }

    /// Everything received so far, decoded.
    pub fn received(&mut self) -> Vec<Got> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.dec.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.eof = true;
                    break;
                }
            }
        }
        let mut got = Vec::new();
        while let Some(frame) = self
            .dec
            .next_frame()
            .expect("engine frames are well formed")
        {
            got.push(match decode_engine(frame).expect("engine frame decodes") {
                EngineMessage::LogonAck(a) => Got::LogonAck {
                    session_id: a.session_id,
                    streams: a.streams,
                },
                EngineMessage::Logout(l) => Got::Logout {
                    reason: l.reason,
                    text: l.text.to_string(),
                },
                EngineMessage::Heartbeat(_) => Got::Heartbeat,
                EngineMessage::ExecutionReport(r) => Got::Report {
                    exec: r.exec_type,
                    client_order_id: r.client_order_id,
                    order_id: r.order_id,
                    symbol: r.symbol,
                    leaves_qty: r.leaves_qty,
                    reject: r.reject_reason,
                    mass_cancel_count: r.mass_cancel_count,
                    stream: r.stream,
                    stream_seq: r.stream_seq,
                },
                EngineMessage::Trade(_) => Got::Trade,
                EngineMessage::StreamResumed(r) => Got::Resumed(r),
                EngineMessage::OrderStatus(o) => Got::OrderStatus(o),
                EngineMessage::OpenOrdersEnd(e) => Got::OpenOrdersEnd(e),
                EngineMessage::BalanceReport(b) => Got::Balance {
                    request_id: b.request_id,
                    account: b.account,
                    reject: b.reject_reason,
                    balances: b
                        .balances
                        .iter()
                        .map(|a| (a.asset, a.name.to_string(), a.available, a.held))
                        .collect(),
                    slices: b.slices,
                },
            });
        }
        got
    }
}

/// The execution types and client order ids of the reports in `got`.
pub fn reports(got: &[Got]) -> Vec<(ExecType, ClientOrderId)> {
    got.iter()
        .filter_map(|g| match g {
            Got::Report {
                exec,
                client_order_id,
                ..
            } => Some((*exec, *client_order_id)),
            _ => None,
        })
        .collect()
}

/// The (stream, stream position) of the execution reports in `got`.
pub fn positions(got: &[Got]) -> Vec<(u16, u64)> {
    got.iter()
        .filter_map(|g| match g {
            Got::Report {
                stream, stream_seq, ..
            } => Some((*stream, *stream_seq)),
            _ => None,
        })
        .collect()
}

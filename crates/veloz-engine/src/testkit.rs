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
use veloz_core::{AccountId, ClientOrderId, Command, Engine, NewOrder, Price, Qty, Side, SymbolId};
use veloz_journal::{Durability, MemStorage, Storage};
use veloz_wire::{
    decode_engine, EngineMessage, ExecType, FrameDecoder, FrameEncoder, LogoutReason,
};

use crate::io::Clock;
use crate::journal::ShardJournal;
use crate::mesh::{Inbound, SessionRef};
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

/// Shard `index`'s engine, empty.
pub fn engine(shared: &Shared, index: usize) -> Engine {
    let instruments: Vec<_> = shared
        .config
        .instruments()
        .into_iter()
        .filter(|i| shared.routing.shard_of(i.id) == Some(index))
        .collect();
    Engine::new(index as u16, &instruments)
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
    },
    Trade,
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
                },
                EngineMessage::Trade(_) => Got::Trade,
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

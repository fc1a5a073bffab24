//! Market-data subscribers beside the order load (`veloz load --ws-subscribers N
//! --feed-subscribers M`): the fan-out benchmark of docs/market-data.md.
//!
//! Each kind runs on one thread that busy-reads its non-blocking connections: WebSocket
//! subscribers (tungstenite, the same client library a browser-less consumer would use)
//! each watch one instrument, dealt round-robin, on the channels asked for (by default
//! `l2`, `trades` and `ticker`: what the book page shows); binary subscribers
//! (frames decoded by `veloz_md::wire`) to every channel. For every update received the
//! **feed latency** is recorded: the receive time minus the update's `ts` (the engine's
//! timestamp of the command, taken when it was sequenced, just before matching), both from
//! the host's wall clock, so it covers matching, the journal's durability wait, the
//! hand-over to the feed thread, encoding, the fan-out and the socket.
//!
//! A subscriber the feed cuts off (slow consumer) is counted and not replaced: the report
//! says how many were lost.

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use tungstenite::{Message, WebSocket};
use veloz_md::wire::{decode_server, FrameReader, MdEncoder, ServerMsg};
use veloz_md::Channel;

/// How the subscribers connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// The WebSocket feed's `HOST:PORT` and how many subscribers to open there.
    pub ws: Option<(String, usize)>,
    /// The binary feed's `HOST:PORT` and how many subscribers to open there.
    pub binary: Option<(String, usize)>,
    /// Pin the subscriber threads here (`None`: not pinned).
    pub core: Option<usize>,
    /// WebSocket subscriber `i` watches instrument `ws_symbols[i % len]` (empty: every
    /// instrument), on the channels `ws_channels` (`l2`, `l3`, `trades`, `ticker`).
    pub ws_symbols: Vec<String>,
    pub ws_channels: Vec<String>,
    /// The binary subscribers' channels, of every instrument (empty: every channel).
    pub binary_channels: Vec<Channel>,
}

/// What one kind of subscriber saw.
#[derive(Clone, Debug)]
pub struct SubscriberReport {
    /// `websocket` or `binary`.
    pub kind: &'static str,
    pub connections: usize,
    /// Connections the feed closed before the end (cut off as slow consumers).
    pub lost: usize,
    /// Updates received over all connections.
    pub updates: u64,
    /// Frames (WebSocket messages or binary frames) and bytes received.
    pub frames: u64,
    pub bytes: u64,
    /// Feed latency (ns), one value per update received.
    pub latency: Histogram<u64>,
}

impl SubscriberReport {
    fn new(kind: &'static str, connections: usize) -> SubscriberReport {
        SubscriberReport {
            kind,
            connections,
            lost: 0,
            updates: 0,
            frames: 0,
            bytes: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
        }
    }

    fn record(&mut self, now_ns: u64, ts: u64) {
        self.updates += 1;
        let _ = self.latency.record(now_ns.saturating_sub(ts).max(1));
    }

    /// One line: connections, updates, feed latency p50/p99/p99.9/max in microseconds.
    pub fn line(&self) -> String {
        let us = |q: f64| self.latency.value_at_quantile(q) as f64 / 1e3;
        format!(
            "{} subscribers: {} connected, {} cut off; {} updates in {} frames ({:.1} MB); feed latency p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
            self.kind,
            self.connections,
            self.lost,
            self.updates,
            self.frames,
            self.bytes as f64 / 1e6,
            us(0.5),
            us(0.99),
            us(0.999),
            self.latency.max() as f64 / 1e3
        )
    }
}

/// Running subscribers; [`Subscribers::stop`] ends them and returns what they saw.
#[derive(Debug)]
pub struct Subscribers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<SubscriberReport, String>>>,
}

/// Wall clock, ns since the Unix epoch (the clock of the updates' `ts`).
fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Subscribers {
    /// Connect every subscriber (errors name the address), then read on their threads.
    pub fn start(config: &SubscriberConfig) -> Result<Subscribers, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if let Some((addr, n)) = &config.ws {
            let conns = (0..*n)
                .map(|i| {
                    let symbol = (!config.ws_symbols.is_empty())
                        .then(|| config.ws_symbols[i % config.ws_symbols.len()].as_str());
                    ws_connect(addr, symbol, &config.ws_channels)
                        .map_err(|e| format!("websocket subscriber {i}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let stop = Arc::clone(&stop);
            let core = config.core;
            threads.push(
                std::thread::Builder::new()
                    .name("veloz-load-ws".into())
                    .spawn(move || {
                        pin(core);
                        Ok(ws_read(conns, &stop))
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        if let Some((addr, n)) = &config.binary {
            let conns = (0..*n)
                .map(|i| {
                    binary_connect(addr, &config.binary_channels)
                        .map_err(|e| format!("binary subscriber {i}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let stop = Arc::clone(&stop);
            let core = config.core;
            threads.push(
                std::thread::Builder::new()
                    .name("veloz-load-md".into())
                    .spawn(move || {
                        pin(core);
                        binary_read(conns, &stop)
                    })
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(Subscribers { stop, threads })
    }

    /// Stop reading; one report per kind started.
    pub fn stop(self) -> Result<Vec<SubscriberReport>, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| "a subscriber thread panicked".to_string())?
            })
            .collect()
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            tracing::warn!(target: "veloz::load", core = id, "could not pin the subscriber thread to core {id}");
        }
    }
}

fn ws_connect(
    addr: &str,
    symbol: Option<&str>,
    channels: &[String],
) -> Result<WebSocket<TcpStream>, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) = tungstenite::client(url.as_str(), stream)
        .map_err(|e| format!("WebSocket handshake with {url}: {e}"))?;
    let symbols = symbol.map_or(String::new(), |s| format!(r#","symbols":["{s}"]"#));
    for channel in channels {
        ws.send(Message::text(format!(
            r#"{{"op":"subscribe","channel":"{channel}"{symbols}}}"#
        )))
        .map_err(|e| format!("subscribe {channel} on {url}: {e}"))?;
    }
    ws.get_mut()
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Every `"ts":"N"` of a batch of JSON messages (updates carry one, a decimal string
/// since JavaScript numbers cannot hold it; snapshots and heartbeats do not).
fn json_timestamps(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.match_indices("\"ts\":").filter_map(move |(i, m)| {
        let rest = &text[i + m.len()..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().ok()
    })
}

fn ws_read(mut conns: Vec<WebSocket<TcpStream>>, stop: &AtomicBool) -> SubscriberReport {
    let mut report = SubscriberReport::new("websocket", conns.len());
    let mut open = vec![true; conns.len()];
    while !stop.load(Ordering::Relaxed) {
        let mut work = false;
        for (ws, open) in conns.iter_mut().zip(open.iter_mut()) {
            while *open {
                match ws.read() {
                    Ok(Message::Text(text)) => {
                        work = true;
                        let now = unix_now_ns();
                        report.frames += 1;
                        report.bytes += text.len() as u64;
                        for ts in json_timestamps(&text) {
                            report.record(now, ts);
                        }
                    }
                    Ok(Message::Close(_)) => {
                        *open = false;
                        report.lost += 1;
                    }
                    Ok(_) => work = true,
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        *open = false;
                        report.lost += 1;
                    }
                }
            }
        }
        if !work {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    for ws in &mut conns {
        let _ = ws.close(None);
        let _ = ws.flush();
    }
    report
}

/// A binary subscriber: its socket and its frame reader.
#[derive(Debug)]
struct BinaryConn {
    stream: TcpStream,
    reader: FrameReader,
    open: bool,
}

/// Largest binary frame accepted (a snapshot of a deep book is large).
const MAX_BINARY_FRAME: u32 = 64 << 20;

fn binary_connect(addr: &str, channels: &[Channel]) -> Result<BinaryConn, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut enc = MdEncoder::new();
    // Every instrument.
    stream
        .write_all(enc.subscribe::<&str>(&[], channels))
        .map_err(|e| format!("subscribe on {addr}: {e}"))?;
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(BinaryConn {
        stream,
        reader: FrameReader::new(MAX_BINARY_FRAME),
        open: true,
    })
}

fn binary_read(mut conns: Vec<BinaryConn>, stop: &AtomicBool) -> Result<SubscriberReport, String> {
    let mut report = SubscriberReport::new("binary", conns.len());
    while !stop.load(Ordering::Relaxed) {
        let mut work = false;
        for c in conns.iter_mut().filter(|c| c.open) {
            loop {
                match c.reader.read_from(&mut c.stream) {
                    Ok(0) => {
                        c.open = false;
                        report.lost += 1;
                        break;
                    }
                    Ok(n) => {
                        work = true;
                        report.bytes += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.open = false;
                        report.lost += 1;
                        break;
                    }
                }
            }
            let now = unix_now_ns();
            loop {
                match c.reader.next_frame() {
                    Ok(Some(frame)) => {
                        report.frames += 1;
                        match decode_server(frame) {
                            Ok(ServerMsg::Update(m)) => report.record(now, m.ts),
                            Ok(ServerMsg::Goodbye(_)) => {
                                c.open = false;
                                report.lost += 1;
                                break;
                            }
                            Ok(_) => {}
                            Err(e) => return Err(format!("binary feed frame: {e}")),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("binary feed stream: {e}")),
                }
            }
        }
        if !work {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_read_from_a_batch_quoted_or_not() {
        let batch = r#"[{"type":"level","ts":"1733000000123456789","seq":3},{"type":"heartbeat"},{"ts":42}]"#;
        assert_eq!(
            json_timestamps(batch).collect::<Vec<_>>(),
            vec![1_733_000_000_123_456_789, 42]
        );
    }
}

//! `veloz feed`: subscribe to a running engine's binary market-data feed and print it, one
//! readable line per message (prices in quote units, from the instruments' `price_scale`
//! in the server's Hello), or record the raw frames (`--record`) and print a recording
//! later (`--read`). `--books` keeps the books (gaps healed by snapshot requests) and
//! prints each instrument's top of book and book hashes at the end.
//!
//! Ends after `--count` market-data messages (snapshots and updates) or `--duration`
//! seconds; fails, with the reason, when the connection fails, the server says Goodbye or
//! closes, or a frame cannot be read.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use veloz_md::client::{ClientError, FeedBooks, FeedClient};
use veloz_md::wire::{
    decode_server, FrameReader, Hello, MdEncoder, ServerMsg, Snapshot, DEFAULT_MAX_SERVER_FRAME,
};
use veloz_md::{Channel, MdBody, MdMessage, Quote};

#[derive(Debug, Args)]
pub struct FeedArgs {
    /// The binary feed's address, as the engine prints it at start ("market data on ADDR
    /// (binary)"; `[feed] listen`).
    #[arg(long, required_unless_present = "read", conflicts_with = "read")]
    pub connect: Option<String>,
    /// Instruments to subscribe to, by name (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Channels: trades, l2, l3, top (comma-separated); all when absent.
    #[arg(long, value_delimiter = ',', value_parser = parse_channel)]
    pub channels: Vec<Channel>,
    /// Stop after this many market-data messages (snapshots and updates).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write the raw frames (Hello first) to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print a recording made with --record.
    #[arg(long, value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Keep the books and print each instrument's top of book and book hashes at the end.
    #[arg(long, conflicts_with = "read")]
    pub books: bool,
    /// Seconds to wait for the connection and the server's Hello.
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout: f64,
}

fn parse_channel(s: &str) -> Result<Channel, String> {
    Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| format!("unknown channel {s:?}: use trades, l2, l3 or top"))
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("--{what} {s}: not a number of seconds"))
}

pub fn run_feed(args: &FeedArgs) -> anyhow::Result<ExitCode> {
    match (&args.read, &args.connect) {
        (Some(path), _) => read(args, path),
        (None, Some(addr)) => follow(args, addr),
        (None, None) => anyhow::bail!("give --connect ADDR (or --read FILE)"),
    }
}

/// Print a recording.
fn read(args: &FeedArgs, path: &PathBuf) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the recording {}", path.display()))?;
    let mut reader = FrameReader::new(DEFAULT_MAX_SERVER_FRAME);
    reader.extend_from_slice(&bytes);
    let mut out = super::stdout();
    let mut hello = None;
    let mut n = 0u64;
    let mut frames = 0u64;
    while let Some(frame) = reader
        .next_frame()
        .with_context(|| format!("{}: frame {}", path.display(), frames + 1))?
    {
        frames += 1;
        let msg = decode_server(frame)
            .with_context(|| format!("{}: frame {frames} cannot be read", path.display()))?;
        if let ServerMsg::Hello(h) = &msg {
            hello = Some(h.clone());
        }
        writeln!(out, "{}", describe(&msg, hello.as_ref()))?;
        if matches!(msg, ServerMsg::Snapshot(_) | ServerMsg::Update(_)) {
            n += 1;
            if args.count.is_some_and(|c| n >= c) {
                break;
            }
        }
    }
    anyhow::ensure!(
        reader.buffered() == 0 || args.count.is_some_and(|c| n >= c),
        "{}: ends inside a frame ({} bytes of an incomplete frame)",
        path.display(),
        reader.buffered()
    );
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Connect, subscribe, print or record until done.
fn follow(args: &FeedArgs, addr: &str) -> anyhow::Result<ExitCode> {
    let client = FeedClient::connect(addr, seconds("connect-timeout", args.connect_timeout)?)?;
    let hello = client.hello().clone();
    let mut books = FeedBooks::new(client);
    let mut record = match &args.record {
        Some(path) => {
            let f = std::fs::File::create(path)
                .with_context(|| format!("cannot create the recording {}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            w.write_all(MdEncoder::new().hello(&hello))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(w)
        }
        None => None,
    };
    let mut out = super::stdout();
    if record.is_none() {
        writeln!(
            out,
            "{}",
            describe(&ServerMsg::Hello(hello.clone()), Some(&hello))
        )?;
    }
    books.subscribe(&args.symbols, &args.channels)?;
    let began = Instant::now();
    let deadline = match args.duration {
        Some(s) => Some(began + seconds("duration", s)?),
        None => None,
    };
    let mut n = 0u64;
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut write_err = None;
    let result = loop {
        if args.count.is_some_and(|c| n >= c) {
            break Ok(());
        }
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Ok(());
                }
                left.min(Duration::from_millis(200))
            }
            None => Duration::from_millis(200),
        };
        let got = books.next_with_frame(wait, |frame| {
            frames += 1;
            bytes += frame.len() as u64;
            if let Some(w) = record.as_mut() {
                if let Err(e) = w.write_all(frame) {
                    write_err.get_or_insert(e);
                }
            }
        });
        if let Some(e) = write_err.take() {
            break Err(anyhow::Error::new(e).context("cannot write the recording"));
        }
        match got {
            Ok(None) => {}
            Ok(Some(msg)) => {
                if matches!(msg, ServerMsg::Snapshot(_) | ServerMsg::Update(_)) {
                    n += 1;
                }
                if record.is_none() {
                    writeln!(out, "{}", describe(&msg, Some(&hello)))?;
                }
            }
            Err(ClientError::Goodbye { reason, .. }) => {
                if record.is_none() {
                    writeln!(out, "goodbye: {reason}")?;
                }
                break Err(anyhow::anyhow!("the feed at {addr} said goodbye: {reason}"));
            }
            Err(e) => break Err(e.into()),
        }
    };
    if let (Some(w), Some(path)) = (record.as_mut(), &args.record) {
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "veloz: recorded {frames} frames ({bytes} bytes, {n} market-data messages) to {}",
            path.display()
        );
    }
    if args.books {
        print_books(&mut out, &books, &hello)?;
    }
    out.flush()?;
    result?;
    Ok(ExitCode::SUCCESS)
}

fn print_books(out: &mut impl Write, books: &FeedBooks, hello: &Hello) -> anyhow::Result<()> {
    let mut symbols: Vec<_> = books.kept().map(|(s, _, _)| s).collect();
    symbols.dedup();
    for id in symbols {
        let scale = hello.symbol(id).map_or(0, |s| s.price_scale);
        let name = name(Some(hello), id);
        let (l2, l3) = (books.l2(id), books.l3(id));
        let top = match (books.top(id), l2, l3) {
            (Some((_, bid, ask)), _, _) => Some((bid, ask)),
            (None, Some(b), _) => b.l2_book().map(|b| {
                (
                    b.best(veloz_core::Side::Buy),
                    b.best(veloz_core::Side::Sell),
                )
            }),
            (None, None, Some(b)) => b.l3_book().map(|b| {
                (
                    b.best(veloz_core::Side::Buy),
                    b.best(veloz_core::Side::Sell),
                )
            }),
            _ => None,
        };
        let mut line = format!("book {name}:");
        if let Some((bid, ask)) = top {
            let _ = write!(line, " bid {} ask {}", quote(bid, scale), quote(ask, scale));
        }
        let l2_hash = l2
            .map(|b| b.hash())
            .or_else(|| l3.and_then(|b| b.l3_book()).map(|b| b.l2_hash()));
        if let Some(h) = l2_hash {
            let _ = write!(line, " l2_hash {h:016x}");
        }
        if let Some(b) = l3 {
            let _ = write!(line, " l3_hash {:016x} l3_seq {}", b.hash(), b.seq());
        }
        if let Some(b) = l2 {
            let _ = write!(line, " l2_seq {}", b.seq());
        }
        let trades = books.trades(id).len();
        if trades > 0 {
            let _ = write!(line, " trades {trades}");
        }
        writeln!(out, "{line}")?;
    }
    if books.gaps() > 0 {
        writeln!(out, "gaps healed: {}", books.gaps())?;
    }
    Ok(())
}

/// `price` in quote units: `price / 10^scale`, exact.
fn price(price: i64, scale: u8) -> String {
    if scale == 0 || scale > 18 {
        return price.to_string();
    }
    let p = 10u64.pow(u32::from(scale));
    let abs = price.unsigned_abs();
    let sign = if price < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        abs / p,
        abs % p,
        width = usize::from(scale)
    )
}

fn quote(q: Option<Quote>, scale: u8) -> String {
    match q {
        Some(q) => format!("{} @ {}", q.qty, price(q.price, scale)),
        None => "-".to_string(),
    }
}

fn name(hello: Option<&Hello>, id: u32) -> String {
    hello
        .and_then(|h| h.symbol(id))
        .map_or_else(|| format!("#{id}"), |s| s.name.clone())
}

fn scale(hello: Option<&Hello>, id: u32) -> u8 {
    hello
        .and_then(|h| h.symbol(id))
        .map_or(0, |s| s.price_scale)
}

fn side(bid: bool) -> &'static str {
    if bid {
        "bid"
    } else {
        "ask"
    }
}

/// One readable line for `msg`.
fn describe(msg: &ServerMsg, hello: Option<&Hello>) -> String {
    match msg {
        ServerMsg::Hello(h) => {
            let symbols: Vec<String> = h
                .symbols
                .iter()
                .map(|s| format!("{} (id {}, scale {})", s.name, s.id, s.price_scale))
                .collect();
            format!(
                "hello session {} heartbeat {} ms, {} instruments: {}",
                h.session,
                h.heartbeat_ms,
                h.symbols.len(),
                symbols.join(", ")
            )
        }
        ServerMsg::Snapshot(s) => {
            let id = s.snapshot.symbol();
            let (n, sc) = (name(hello, id), scale(hello, id));
            let cmd = s.cmd_seq.map_or(String::new(), |c| format!(" cmd {c}"));
            let head = format!(
                "{n} {} snapshot seq {}{cmd}",
                s.snapshot.channel().as_str(),
                s.snapshot.seq()
            );
            match &s.snapshot {
                Snapshot::L3(b) => {
                    let orders = |l: &[veloz_md::book::L3Level]| -> usize {
                        l.iter().map(|l| l.orders.len()).sum()
                    };
                    let best = |l: &[veloz_md::book::L3Level]| {
                        l.first().map(|l| Quote {
                            price: l.price,
                            qty: l.orders.iter().map(|o| o.1).sum(),
                        })
                    };
                    format!(
                        "{head}: bids {} levels {} orders, asks {} levels {} orders; best bid {} ask {}",
                        b.bids.len(),
                        orders(&b.bids),
                        b.asks.len(),
                        orders(&b.asks),
                        quote(best(&b.bids), sc),
                        quote(best(&b.asks), sc)
                    )
                }
                Snapshot::L2(b) => {
                    let best = |l: &[veloz_md::book::L2Level]| {
                        l.first().map(|l| Quote {
                            price: l.price,
                            qty: l.qty,
                        })
                    };
                    format!(
                        "{head}: bids {} levels, asks {} levels; best bid {} ask {}",
                        b.bids.len(),
                        b.asks.len(),
                        quote(best(&b.bids), sc),
                        quote(best(&b.asks), sc)
                    )
                }
                Snapshot::Top(t) => {
                    format!("{head}: bid {} ask {}", quote(t.bid, sc), quote(t.ask, sc))
                }
                Snapshot::Trades(t) => {
                    let last = t
                        .trades
                        .last()
                        .map_or(String::new(), |m| format!("; last: {}", body(m, sc)));
                    format!("{head}: {} recent trades{last}", t.trades.len())
                }
            }
        }
        ServerMsg::Update(m) => {
            let (n, sc) = (name(hello, m.symbol), scale(hello, m.symbol));
            format!(
                "{n} {} #{} cmd {} {}",
                m.channel().as_str(),
                m.seq,
                m.cmd_seq,
                body(m, sc)
            )
        }
        ServerMsg::Heartbeat(w) => format!("heartbeat watermarks {:?}", w.watermarks),
        ServerMsg::Pong { id, marks } => format!("pong {id} watermarks {:?}", marks.watermarks),
        ServerMsg::Refused(why) => format!("refused: {why}"),
        ServerMsg::Goodbye(why) => format!("goodbye: {why}"),
    }
}

fn body(m: &MdMessage, sc: u8) -> String {
    use veloz_core::Side;
    let s = |side: Side| side.name();
    match m.body {
        MdBody::Trade {
            trade_id,
            price: p,
            qty,
            aggressor,
        } => format!(
            "trade {trade_id}: {qty} @ {} (aggressor {})",
            price(p, sc),
            s(aggressor)
        ),
        MdBody::Add {
            order_id,
            side: d,
            price: p,
            qty,
        } => format!("add order {order_id} {} {qty} @ {}", s(d), price(p, sc)),
        MdBody::Modify {
            order_id,
            side: d,
            price: p,
            qty,
        } => format!(
            "modify order {order_id} {} @ {}: {qty} open",
            s(d),
            price(p, sc)
        ),
        MdBody::Delete {
            order_id,
            side: d,
            price: p,
        } => format!("delete order {order_id} {} @ {}", s(d), price(p, sc)),
        MdBody::Execute {
            order_id,
            side: d,
            price: p,
            qty,
            leaves,
            trade_id,
        } => format!(
            "execute order {order_id} {} {qty} @ {} leaves {leaves} (trade {trade_id})",
            s(d),
            price(p, sc)
        ),
        MdBody::Level {
            side: d,
            price: p,
            qty,
            orders,
        } => format!(
            "{} {}: {qty} in {orders} orders",
            side(d == Side::Buy),
            price(p, sc)
        ),
        MdBody::Top { bid, ask } => format!("bid {} ask {}", quote(bid, sc), quote(ask, sc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_printed_in_quote_units() {
        assert_eq!(price(10_125, 2), "101.25");
        assert_eq!(price(-5, 2), "-0.05");
        assert_eq!(price(7, 0), "7");
        assert_eq!(price(1, 3), "0.001");
        assert_eq!(parse_channel("l3"), Ok(Channel::L3));
        assert!(parse_channel("l4").unwrap_err().contains("l4"));
    }
}

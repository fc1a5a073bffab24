//! The WebSocket feed's JSON (docs/market-data.md, "WebSocket feed"): every server message
//! and the parsing of client requests.
//!
//! Encoding rules, the same in every message:
//! - prices are exact decimal strings in the instrument's `price_scale` (scale 2: 10025 is
//!   `"100.25"`; never a float);
//! - quantities, order counts and sequence numbers are JSON integers;
//! - 64-bit identifiers and times (`order_id`, `trade_id`, `ts`, `session`) are decimal
//!   strings: they exceed 2^53, past which JavaScript numbers are not exact;
//! - instruments by name (`"symbol":"AAPL"`), sides `"buy"` / `"sell"`, channels `trades`,
//!   `l2`, `l3`, `ticker` (the core's top-of-book channel).
//!
//! Each function appends one JSON object to `out`; the server joins a connection's
//! objects into one array per frame. Writing to a `Vec` cannot fail, so nothing here
//! returns an error.

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize};
use veloz_core::{Price, Side};
use veloz_md::{Channel, L2Snapshot, L3Snapshot, MdBody, MdMessage, Quote};

use super::{FeedState, SymbolInfo, TopView};

/// A channel's name on the WebSocket feed (`ticker` is [`Channel::Top`]).
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Top => "ticker",
        c => c.as_str(),
    }
}

/// The channel a client names, or why the name is wrong.
pub fn parse_channel(name: &str) -> Result<Channel, String> {
    match name {
        "trades" => Ok(Channel::Trades),
        "l2" => Ok(Channel::L2),
        "l3" => Ok(Channel::L3),
        "ticker" => Ok(Channel::Top),
        other => Err(format!(
            "unknown channel {other:?}: one of \"trades\", \"l2\", \"l3\", \"ticker\""
        )),
    }
}

/// A price as the exact decimal of `price * 10^-scale` (`Display`; no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Px {
    pub price: Price,
    pub scale: u8,
}

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.price < 0 {
            f.write_str("-")?;
        }
        let mut digits = [0u8; 20];
        let mut n = 0;
        let mut v = self.price.unsigned_abs();
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        digits[..n].reverse();
        let text = std::str::from_utf8(&digits[..n]).map_err(|_| fmt::Error)?;
        let scale = usize::from(self.scale);
        if scale == 0 {
            return f.write_str(text);
        }
        if n > scale {
            f.write_str(&text[..n - scale])?;
            f.write_str(".")?;
            f.write_str(&text[n - scale..])
        } else {
            f.write_str("0.")?;
            for _ in n..scale {
                f.write_str("0")?;
            }
            f.write_str(text)
        }
    }
}

impl Serialize for Px {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A 64-bit value as a decimal string.
#[derive(Clone, Copy, Debug)]
struct Big(u64);

impl Serialize for Big {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `{"price":"100.25","qty":300}` or `null`.
struct QuoteJson(Option<Quote>, u8);

impl Serialize for QuoteJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(q) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry(
                    "price",
                    &Px {
                        price: q.price,
                        scale: self.1,
                    },
                )?;
                m.serialize_entry("qty", &q.qty)?;
                m.end()
            }
        }
    }
}

fn side(s: Side) -> &'static str {
    s.name()
}

/// One update, with the fields of its kind (docs/market-data.md lists them).
struct Update<'a> {
    msg: &'a MdMessage,
    info: &'a SymbolInfo,
    /// Inside a trades snapshot: no `type`/`channel`/`symbol` (the snapshot says them).
    bare: bool,
}

impl Serialize for Update<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.msg;
        let scale = self.info.price_scale;
        let px = |price| Px { price, scale };
        let mut map = s.serialize_map(None)?;
        if !self.bare {
            let kind = match m.body {
                MdBody::Trade { .. } => "trade",
                MdBody::Add { .. } => "add",
                MdBody::Modify { .. } => "modify",
                MdBody::Delete { .. } => "delete",
                MdBody::Execute { .. } => "execute",
                MdBody::Level { .. } => "level",
                MdBody::Top { .. } => "ticker",
            };
            map.serialize_entry("type", kind)?;
            map.serialize_entry("channel", channel_name(m.channel()))?;
            map.serialize_entry("symbol", &self.info.name)?;
        }
        map.serialize_entry("seq", &m.seq)?;
        map.serialize_entry("cmd_seq", &m.cmd_seq)?;
        map.serialize_entry("ts", &Big(m.ts))?;
        match m.body {
            MdBody::Trade {
                trade_id,
                price,
                qty,
                aggressor,
            } => {
                map.serialize_entry("trade_id", &Big(trade_id))?;
                map.serialize_entry("price", &px(price))?;
                map.serialize_entry("qty", &qty)?;
                map.serialize_entry("aggressor", side(aggressor))?;
            }
            MdBody::Add {
                order_id,
                side: sd,
                price,
                qty,
            }
            | MdBody::Modify {
                order_id,
                side: sd,
                price,
                qty,
            } => {
                map.serialize_entry("order_id", &Big(order_id))?;
                map.serialize_entry("side", side(sd))?;
                map.serialize_entry("price", &px(price))?;
                map.serialize_entry("qty", &qty)?;
            }
            MdBody::Delete {
                order_id,
                side: sd,
                price,
            } => {
                map.serialize_entry("order_id", &Big(order_id))?;
                map.serialize_entry("side", side(sd))?;
                map.serialize_entry("price", &px(price))?;
            }
            MdBody::Execute {
                order_id,
                side: sd,
                price,
                qty,
                leaves,
                trade_id,
            } => {
                map.serialize_entry("order_id", &Big(order_id))?;
                map.serialize_entry("side", side(sd))?;
                map.serialize_entry("price", &px(price))?;
                map.serialize_entry("qty", &qty)?;
                map.serialize_entry("leaves", &leaves)?;
                map.serialize_entry("trade_id", &Big(trade_id))?;
            }
            MdBody::Level {
                side: sd,
                price,
                qty,
                orders,
            } => {
                map.serialize_entry("side", side(sd))?;
                map.serialize_entry("price", &px(price))?;
                map.serialize_entry("qty", &qty)?;
                map.serialize_entry("orders", &orders)?;
            }
            MdBody::Top { bid, ask } => {
                map.serialize_entry("bid", &QuoteJson(bid, scale))?;
                map.serialize_entry("ask", &QuoteJson(ask, scale))?;
            }
        }
        map.end()
    }
}

fn write<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    // A Vec writer cannot fail, and every value here serializes.
    let _ = serde_json::to_writer(out, value);
}

/// An update (`trade`, `add`, `modify`, `delete`, `execute`, `level`, `ticker`).
pub fn update(out: &mut Vec<u8>, msg: &MdMessage, info: &SymbolInfo) {
    write(
        out,
        &Update {
            msg,
            info,
            bare: false,
        },
    );
}

/// Levels of an L2 snapshot: `[["100.25",300,2],...]` (price, quantity, orders).
struct L2Levels<'a>(&'a [veloz_md::book::L2Level], u8);

impl Serialize for L2Levels<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in self.0 {
            seq.serialize_element(&(
                Px {
                    price: l.price,
                    scale: self.1,
                },
                l.qty,
                l.orders,
            ))?;
        }
        seq.end()
    }
}

/// Levels of an L3 snapshot: `[["100.25",[["42",100],...]],...]` (price, orders head first
/// as order id and open quantity).
struct L3Levels<'a>(&'a [veloz_md::book::L3Level], u8);

impl Serialize for L3Levels<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Orders<'b>(&'b [(u64, u64)]);
        impl Serialize for Orders<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|&(id, qty)| (Big(id), qty)))
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in self.0 {
            seq.serialize_element(&(
                Px {
                    price: l.price,
                    scale: self.1,
                },
                Orders(&l.orders),
            ))?;
        }
        seq.end()
    }
}

/// The head every snapshot starts with.
#[derive(Serialize)]
struct SnapshotHead<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'static str,
    symbol: &'a str,
    session: Big,
    seq: u64,
}

fn snapshot_head<'a>(
    info: &'a SymbolInfo,
    channel: Channel,
    session: u64,
    seq: u64,
) -> SnapshotHead<'a> {
    SnapshotHead {
        kind: "snapshot",
        channel: channel_name(channel),
        symbol: &info.name,
        session: Big(session),
        seq,
    }
}

/// A snapshot of both sides of a book: its head, then `bids` and `asks`.
#[derive(Serialize)]
struct Sides<'a, T> {
    #[serde(flatten)]
    head: SnapshotHead<'a>,
    bids: T,
    asks: T,
}

/// An `l2` snapshot: `bids` best (highest) first, `asks` best (lowest) first.
pub fn l2_snapshot(out: &mut Vec<u8>, snap: &L2Snapshot, info: &SymbolInfo, session: u64) {
    write(
        out,
        &Sides {
            head: snapshot_head(info, Channel::L2, session, snap.seq),
            bids: L2Levels(&snap.bids, info.price_scale),
            asks: L2Levels(&snap.asks, info.price_scale),
        },
    );
}

/// An `l3` snapshot: levels best first, each with its orders head first.
pub fn l3_snapshot(out: &mut Vec<u8>, snap: &L3Snapshot, info: &SymbolInfo, session: u64) {
    write(
        out,
        &Sides {
            head: snapshot_head(info, Channel::L3, session, snap.seq),
            bids: L3Levels(&snap.bids, info.price_scale),
            asks: L3Levels(&snap.asks, info.price_scale),
        },
    );
}

/// A `ticker` snapshot: the best bid and ask (`null` when that side is empty).
pub fn ticker_snapshot(out: &mut Vec<u8>, top: &TopView, info: &SymbolInfo, session: u64) {
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(flatten)]
        head: SnapshotHead<'a>,
        bid: QuoteJson,
        ask: QuoteJson,
    }
    write(
        out,
        &S {
            head: snapshot_head(info, Channel::Top, session, top.seq),
            bid: QuoteJson(top.bid, info.price_scale),
            ask: QuoteJson(top.ask, info.price_scale),
        },
    );
}

/// A `trades` snapshot: the channel's last number and the latest trades, oldest first
/// (each as a `trade` update without `type`, `channel` and `symbol`).
pub fn trades_snapshot<'a>(
    out: &mut Vec<u8>,
    seq: u64,
    trades: impl Iterator<Item = &'a MdMessage>,
    info: &SymbolInfo,
    session: u64,
) {
    struct Trades<'b>(Vec<&'b MdMessage>, &'b SymbolInfo);
    impl Serialize for Trades<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|msg| Update {
                msg,
                info: self.1,
                bare: true,
            }))
        }
    }
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(flatten)]
        head: SnapshotHead<'a>,
        trades: Trades<'a>,
    }
    write(
        out,
        &S {
            head: snapshot_head(info, Channel::Trades, session, seq),
            trades: Trades(trades.collect(), info),
        },
    );
}

/// The snapshot of `channel` of `info` from `state`; `false` (nothing written) when the
/// feed has none (see [`FeedState::unavailable`]).
pub fn snapshot(out: &mut Vec<u8>, state: &FeedState, info: &SymbolInfo, channel: Channel) -> bool {
    let session = state.session();
    match channel {
        Channel::L2 => match state.l2_snapshot(info.id) {
            Some(s) => l2_snapshot(out, &s, info, session),
            None => return false,
        },
        Channel::L3 => match state.l3_snapshot(info.id) {
            Some(s) => l3_snapshot(out, &s, info, session),
            None => return false,
        },
        Channel::Top => match state.top(info.id) {
            Some(t) => ticker_snapshot(out, &t, info, session),
            None => return false,
        },
        Channel::Trades => match state.last_seq(info.id, Channel::Trades) {
            Some(seq) => trades_snapshot(out, seq, state.recent_trades(info.id), info, session),
            None => return false,
        },
    }
    true
}

/// The first message on a connection: the session, the heartbeat interval and every
/// instrument with its id and price scale.
pub fn hello(out: &mut Vec<u8>, state: &FeedState, heartbeat_ms: u64) {
    #[derive(Serialize)]
    struct Sym<'a> {
        symbol: &'a str,
        id: u32,
        price_scale: u8,
    }
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        session: Big,
        heartbeat_ms: u64,
        watermarks: Vec<u64>,
        symbols: Vec<Sym<'a>>,
    }
    write(
        out,
        &S {
            kind: "hello",
            session: Big(state.session()),
            heartbeat_ms,
            watermarks: state.watermarks(),
            symbols: state
                .symbols()
                .iter()
                .map(|s| Sym {
                    symbol: &s.name,
                    id: s.id,
                    price_scale: s.price_scale,
                })
                .collect(),
        },
    );
}

/// Sent after `heartbeat_ms` of silence: the session and each shard's last published
/// command.
pub fn heartbeat(out: &mut Vec<u8>, state: &FeedState) {
    #[derive(Serialize)]
    struct S {
        #[serde(rename = "type")]
        kind: &'static str,
        session: Big,
        watermarks: Vec<u64>,
    }
    write(
        out,
        &S {
            kind: "heartbeat",
            session: Big(state.session()),
            watermarks: state.watermarks(),
        },
    );
}

/// The answer to a `ping`: its `id` echoed, and the watermarks.
pub fn pong(out: &mut Vec<u8>, state: &FeedState, id: &serde_json::Value) {
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a serde_json::Value,
        session: Big,
        watermarks: Vec<u64>,
    }
    write(
        out,
        &S {
            kind: "pong",
            id,
            session: Big(state.session()),
            watermarks: state.watermarks(),
        },
    );
}

/// A request was refused (the connection stays): why.
pub fn error(out: &mut Vec<u8>, reason: &str) {
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        reason: &'a str,
    }
    write(
        out,
        &S {
            kind: "error",
            reason,
        },
    );
}

/// A subscription ended: at the client's request (`reason` `None`), or because the
/// instrument's feed stopped (`reason` says why; subscribe again later).
pub fn unsubscribed(out: &mut Vec<u8>, info: &SymbolInfo, channel: Channel, reason: Option<&str>) {
    #[derive(Serialize)]
    struct S<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        channel: &'static str,
        symbol: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    }
    write(
        out,
        &S {
            kind: "unsubscribed",
            channel: channel_name(channel),
            symbol: &info.name,
            reason,
        },
    );
}

/// A client's request (one JSON object per text frame).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Start `channel` of `symbols` (absent or empty: every instrument): a snapshot of
    /// each, then its updates.
    Subscribe {
        channel: String,
        #[serde(default)]
        symbols: Vec<String>,
    },
    /// Stop `channel` of `symbols` (absent or empty: every instrument).
    Unsubscribe {
        channel: String,
        #[serde(default)]
        symbols: Vec<String>,
    },
    /// A fresh snapshot of `channel` of `symbol` (to heal a gap); subscriptions unchanged.
    Snapshot { channel: String, symbol: String },
    /// Answered with a `pong` echoing `id`.
    Ping {
        #[serde(default)]
        id: serde_json::Value,
    },
}

/// Parse a client's text frame, or say what is wrong with it.
pub fn parse_request(text: &str) -> Result<Request, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "bad request ({e}): expected an object such as {{\"op\":\"subscribe\",\"channel\":\"l2\",\"symbols\":[\"AAPL\"]}}; ops: subscribe, unsubscribe, snapshot, ping"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use veloz_core::Side;

    fn px(price: Price, scale: u8) -> String {
        Px { price, scale }.to_string()
    }

    #[test]
    fn prices_are_exact_decimals_in_the_instrument_scale() {
        assert_eq!(px(10025, 2), "100.25");
        assert_eq!(px(10000, 2), "100.00");
        assert_eq!(px(5, 2), "0.05");
        assert_eq!(px(0, 2), "0.00");
        assert_eq!(px(-105, 2), "-1.05");
        assert_eq!(px(-5, 3), "-0.005");
        assert_eq!(px(10025, 0), "10025");
        assert_eq!(px(i64::MAX, 4), "922337203685477.5807");
        assert_eq!(px(i64::MIN, 2), "-92233720368547758.08");
        assert_eq!(px(7, 25), "0.0000000000000000000000007");
    }

    fn info() -> SymbolInfo {
        SymbolInfo {
            id: 7,
            name: "AAPL".into(),
            price_scale: 2,
            shard: 0,
        }
    }

    fn enc(body: MdBody) -> String {
        let mut out = Vec::new();
        let msg = MdMessage {
            symbol: 7,
            seq: 3,
            cmd_seq: 11,
            ts: 1_733_000_000_123_456_789,
            body,
        };
        update(&mut out, &msg, &info());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_update_kind_encodes_as_documented() {
        let head = r#""symbol":"AAPL","seq":3,"cmd_seq":11,"ts":"1733000000123456789""#;
        assert_eq!(
            enc(MdBody::Trade {
                trade_id: 1 << 48 | 5,
                price: 10025,
                qty: 300,
                aggressor: Side::Buy
            }),
            format!(
                r#"{{"type":"trade","channel":"trades",{head},"trade_id":"281474976710661","price":"100.25","qty":300,"aggressor":"buy"}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Add {
                order_id: 42,
                side: Side::Sell,
                price: 10100,
                qty: 5
            }),
            format!(
                r#"{{"type":"add","channel":"l3",{head},"order_id":"42","side":"sell","price":"101.00","qty":5}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Modify {
                order_id: 42,
                side: Side::Sell,
                price: 10100,
                qty: 3
            }),
            format!(
                r#"{{"type":"modify","channel":"l3",{head},"order_id":"42","side":"sell","price":"101.00","qty":3}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Delete {
                order_id: 42,
                side: Side::Sell,
                price: 10100
            }),
            format!(
                r#"{{"type":"delete","channel":"l3",{head},"order_id":"42","side":"sell","price":"101.00"}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Execute {
                order_id: 42,
                side: Side::Sell,
                price: 10100,
                qty: 2,
                leaves: 1,
                trade_id: 9
            }),
            format!(
                r#"{{"type":"execute","channel":"l3",{head},"order_id":"42","side":"sell","price":"101.00","qty":2,"leaves":1,"trade_id":"9"}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Level {
                side: Side::Buy,
                price: 9999,
                qty: 0,
                orders: 0
            }),
            format!(
                r#"{{"type":"level","channel":"l2",{head},"side":"buy","price":"99.99","qty":0,"orders":0}}"#
            )
        );
        assert_eq!(
            enc(MdBody::Top {
                bid: Some(Quote {
                    price: 9999,
                    qty: 10
                }),
                ask: None
            }),
            format!(
                r#"{{"type":"ticker","channel":"ticker",{head},"bid":{{"price":"99.99","qty":10}},"ask":null}}"#
            )
        );
    }

    #[test]
    fn snapshots_and_control_messages() {
        let mut out = Vec::new();
        let snap = L2Snapshot {
            symbol: 7,
            seq: 9,
            bids: vec![veloz_md::book::L2Level {
                price: 10025,
                qty: 300,
                orders: 2,
            }],
            asks: vec![],
        };
        l2_snapshot(&mut out, &snap, &info(), 5);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"snapshot","channel":"l2","symbol":"AAPL","session":"5","seq":9,"bids":[["100.25",300,2]],"asks":[]}"#
        );
        let mut out = Vec::new();
        let snap = L3Snapshot {
            symbol: 7,
            seq: 4,
            bids: vec![],
            asks: vec![veloz_md::book::L3Level {
                price: 10100,
                orders: vec![(42, 5), (43, 1)],
            }],
        };
        l3_snapshot(&mut out, &snap, &info(), 5);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"snapshot","channel":"l3","symbol":"AAPL","session":"5","seq":4,"bids":[],"asks":[["101.00",[["42",5],["43",1]]]]}"#
        );
        let mut out = Vec::new();
        error(&mut out, "bad \"x\"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"error","reason":"bad \"x\""}"#
        );
    }

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_request(r#"{"op":"subscribe","channel":"l2","symbols":["AAPL"]}"#),
            Ok(Request::Subscribe {
                channel: "l2".into(),
                symbols: vec!["AAPL".into()]
            })
        );
        assert_eq!(
            parse_request(r#"{"op":"unsubscribe","channel":"trades"}"#),
            Ok(Request::Unsubscribe {
                channel: "trades".into(),
                symbols: vec![]
            })
        );
        assert_eq!(
            parse_request(r#"{"op":"ping"}"#),
            Ok(Request::Ping {
                id: serde_json::Value::Null
            })
        );
        for bad in ["", "{", "[]", r#"{"op":"snapshot","channel":"l2"}"#, "null"] {
            assert!(parse_request(bad).unwrap_err().contains("ops: subscribe"));
        }
        assert_eq!(parse_channel("ticker"), Ok(Channel::Top));
        assert!(parse_channel("top").unwrap_err().contains("ticker"));
    }
}

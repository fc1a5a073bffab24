//! Verified frames into [`ServerMsg`] (a client reads) and [`ClientMsg`] (a server reads).
//!
//! Every frame is run through the FlatBuffers verifier first (whole frame, prefix
//! included); then each value is checked: an unknown side or channel, a missing string, a
//! message that travels the other way is a [`DecodeError`] that names it. Nothing here
//! panics on any input.

use flatbuffers::VerifierOptions;
use veloz_core::Side;

use super::{
    ClientMsg, DecodeError, Hello, ServerMsg, Snapshot, SnapshotMsg, SymbolDef, TopSnapshot,
    TradesSnapshot, Watermarks,
};
use crate::book::{L2Level, L2Snapshot, L3Level, L3Snapshot};
use crate::generated as fb;
use crate::message::{Channel, MdBody, MdMessage, Quote};

/// Verifier limits: a deep L3 snapshot has one table per level.
fn options() -> VerifierOptions {
    VerifierOptions {
        max_depth: 16,
        max_tables: 10_000_000,
        max_apparent_size: 1 << 31,
        ..VerifierOptions::default()
    }
}

fn verify(frame: &[u8]) -> Result<fb::Message<'_>, DecodeError> {
    fb::size_prefixed_root_as_message_with_opts(&options(), frame)
        .map_err(|e| DecodeError::Verify(e.to_string()))
}

fn side(message: &'static str, field: &'static str, s: fb::Side) -> Result<Side, DecodeError> {
    match s {
        fb::Side::Buy => Ok(Side::Buy),
        fb::Side::Sell => Ok(Side::Sell),
        other => Err(DecodeError::BadSide {
            message,
            field,
            value: other.0,
        }),
    }
}

fn channel(message: &'static str, c: fb::Channel) -> Result<Channel, DecodeError> {
    match c {
        fb::Channel::Trades => Ok(Channel::Trades),
        fb::Channel::L2 => Ok(Channel::L2),
        fb::Channel::L3 => Ok(Channel::L3),
        fb::Channel::Top => Ok(Channel::Top),
        other => Err(DecodeError::BadChannel {
            message,
            field: "channels",
            value: other.0,
        }),
    }
}

fn quote(q: Option<&fb::Quote>) -> Option<Quote> {
    q.map(|q| Quote {
        price: q.price(),
        qty: q.qty(),
    })
}

fn text(
    message: &'static str,
    field: &'static str,
    s: Option<&str>,
) -> Result<String, DecodeError> {
    s.map(str::to_string)
        .ok_or(DecodeError::MissingField { message, field })
}

fn wrong_way(message: &'static str, direction: &'static str) -> DecodeError {
    DecodeError::WrongDirection { message, direction }
}

fn payload<T>(value: Option<T>) -> Result<T, DecodeError> {
    // The verifier checked that the union value matches its type; a missing one is absent.
    value.ok_or(DecodeError::MissingPayload)
}

/// A frame from a server (prefix included).
pub fn decode_server(frame: &[u8]) -> Result<ServerMsg, DecodeError> {
    let m = verify(frame)?;
    Ok(match m.payload_type() {
        fb::Payload::NONE => return Err(DecodeError::MissingPayload),
        fb::Payload::Hello => {
            let h = payload(m.payload_as_hello())?;
            let mut symbols = Vec::new();
            for s in h.symbols().iter().flatten() {
                symbols.push(SymbolDef {
                    id: s.id(),
                    name: text("SymbolDef", "name", s.name())?,
                    price_scale: s.price_scale(),
                });
            }
            ServerMsg::Hello(Hello {
                session: h.session(),
                heartbeat_ms: h.heartbeat_ms(),
                symbols,
            })
        }
        fb::Payload::L3Snapshot => {
            let s = payload(m.payload_as_l3_snapshot())?;
            let levels = |v: Option<
                flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<fb::L3Level<'_>>>,
            >| {
                v.iter()
                    .flatten()
                    .map(|l| L3Level {
                        price: l.price(),
                        orders: l
                            .orders()
                            .iter()
                            .flatten()
                            .map(|o| (o.id(), o.qty()))
                            .collect(),
                    })
                    .collect()
            };
            ServerMsg::Snapshot(SnapshotMsg {
                session: s.session(),
                cmd_seq: s.cmd_seq(),
                snapshot: Snapshot::L3(L3Snapshot {
                    symbol: s.symbol(),
                    seq: s.seq(),
                    bids: levels(s.bids()),
                    asks: levels(s.asks()),
                }),
            })
        }
        fb::Payload::L2Snapshot => {
            let s = payload(m.payload_as_l2_snapshot())?;
            let levels = |v: Option<flatbuffers::Vector<'_, fb::Level>>| {
                v.iter()
                    .flatten()
                    .map(|l| L2Level {
                        price: l.price(),
                        qty: l.qty(),
                        orders: l.orders(),
                    })
                    .collect()
            };
            ServerMsg::Snapshot(SnapshotMsg {
                session: s.session(),
                cmd_seq: s.cmd_seq(),
                snapshot: Snapshot::L2(L2Snapshot {
                    symbol: s.symbol(),
                    seq: s.seq(),
                    bids: levels(s.bids()),
                    asks: levels(s.asks()),
                }),
            })
        }
        fb::Payload::TopSnapshot => {
            let s = payload(m.payload_as_top_snapshot())?;
            ServerMsg::Snapshot(SnapshotMsg {
                session: s.session(),
                cmd_seq: s.cmd_seq(),
                snapshot: Snapshot::Top(TopSnapshot {
                    symbol: s.symbol(),
                    seq: s.seq(),
                    bid: quote(s.bid()),
                    ask: quote(s.ask()),
                }),
            })
        }
        fb::Payload::TradesSnapshot => {
            let s = payload(m.payload_as_trades_snapshot())?;
            let mut trades = Vec::new();
            for t in s.trades().iter().flatten() {
                trades.push(MdMessage {
                    symbol: s.symbol(),
                    seq: t.seq(),
                    cmd_seq: t.cmd_seq(),
                    ts: t.ts(),
                    body: MdBody::Trade {
                        trade_id: t.trade_id(),
                        price: t.price(),
                        qty: t.qty(),
                        aggressor: side("TradePrint", "aggressor", t.aggressor())?,
                    },
                });
            }
            ServerMsg::Snapshot(SnapshotMsg {
                session: s.session(),
                cmd_seq: s.cmd_seq(),
                snapshot: Snapshot::Trades(TradesSnapshot {
                    symbol: s.symbol(),
                    seq: s.seq(),
                    trades,
                }),
            })
        }
        fb::Payload::Update => ServerMsg::Update(update(payload(m.payload_as_update())?)?),
        fb::Payload::Heartbeat => {
            let h = payload(m.payload_as_heartbeat())?;
            ServerMsg::Heartbeat(Watermarks {
                session: h.session(),
                watermarks: h.watermarks().iter().flatten().collect(),
            })
        }
        fb::Payload::Pong => {
            let p = payload(m.payload_as_pong())?;
            ServerMsg::Pong {
                id: p.id(),
                marks: Watermarks {
                    session: p.session(),
                    watermarks: p.watermarks().iter().flatten().collect(),
                },
            }
        }
        fb::Payload::Refused => {
            let r = payload(m.payload_as_refused())?;
            ServerMsg::Refused(text("Refused", "reason", r.reason())?)
        }
        fb::Payload::Goodbye => {
            let g = payload(m.payload_as_goodbye())?;
            ServerMsg::Goodbye(text("Goodbye", "reason", g.reason())?)
        }
        fb::Payload::Subscribe => return Err(wrong_way("Subscribe", "client-to-server")),
        fb::Payload::Unsubscribe => return Err(wrong_way("Unsubscribe", "client-to-server")),
        fb::Payload::SnapshotRequest => {
            return Err(wrong_way("SnapshotRequest", "client-to-server"))
        }
        fb::Payload::Ping => return Err(wrong_way("Ping", "client-to-server")),
        other => return Err(DecodeError::UnknownMessageType(other.0)),
    })
}

fn update(u: fb::Update<'_>) -> Result<MdMessage, DecodeError> {
    let body = match u.body_type() {
        fb::Body::Trade => {
            let t = payload(u.body_as_trade())?;
            MdBody::Trade {
                trade_id: t.trade_id(),
                price: t.price(),
                qty: t.qty(),
                aggressor: side("Trade", "aggressor", t.aggressor())?,
            }
        }
        fb::Body::Add => {
            let a = payload(u.body_as_add())?;
            MdBody::Add {
                order_id: a.order_id(),
                side: side("Add", "side", a.side())?,
                price: a.price(),
                qty: a.qty(),
            }
        }
        fb::Body::Modify => {
            let a = payload(u.body_as_modify())?;
            MdBody::Modify {
                order_id: a.order_id(),
                side: side("Modify", "side", a.side())?,
                price: a.price(),
                qty: a.qty(),
            }
        }
        fb::Body::Delete => {
            let d = payload(u.body_as_delete())?;
            MdBody::Delete {
                order_id: d.order_id(),
                side: side("Delete", "side", d.side())?,
                price: d.price(),
            }
        }
        fb::Body::Execute => {
            let e = payload(u.body_as_execute())?;
            MdBody::Execute {
                order_id: e.order_id(),
                side: side("Execute", "side", e.side())?,
                price: e.price(),
                qty: e.qty(),
                leaves: e.leaves(),
                trade_id: e.trade_id(),
            }
        }
        fb::Body::LevelUpdate => {
            let l = payload(u.body_as_level_update())?;
            MdBody::Level {
                side: side("LevelUpdate", "side", l.side())?,
                price: l.price(),
                qty: l.qty(),
                orders: l.orders(),
            }
        }
        fb::Body::Top => {
            let t = payload(u.body_as_top())?;
            MdBody::Top {
                bid: quote(t.bid()),
                ask: quote(t.ask()),
            }
        }
        other => return Err(DecodeError::UnknownBody(other.0)),
    };
    if u.seq() == 0 {
        return Err(DecodeError::BadValue {
            message: "Update",
            field: "seq",
            value: 0,
            why: "sequence numbers start at 1",
        });
    }
    Ok(MdMessage {
        symbol: u.symbol(),
        seq: u.seq(),
        cmd_seq: u.cmd_seq(),
        ts: u.ts(),
        body,
    })
}

fn names(v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<&str>>>) -> Vec<String> {
    v.iter().flatten().map(str::to_string).collect()
}

fn channels(
    message: &'static str,
    v: Option<flatbuffers::Vector<'_, fb::Channel>>,
) -> Result<Vec<Channel>, DecodeError> {
    v.iter().flatten().map(|c| channel(message, c)).collect()
}

/// A frame from a client (prefix included).
pub fn decode_client(frame: &[u8]) -> Result<ClientMsg, DecodeError> {
    let m = verify(frame)?;
    Ok(match m.payload_type() {
        fb::Payload::NONE => return Err(DecodeError::MissingPayload),
        fb::Payload::Subscribe => {
            let s = payload(m.payload_as_subscribe())?;
            ClientMsg::Subscribe {
                symbols: names(s.symbols()),
                channels: channels("Subscribe", s.channels())?,
            }
        }
        fb::Payload::Unsubscribe => {
            let s = payload(m.payload_as_unsubscribe())?;
            ClientMsg::Unsubscribe {
                symbols: names(s.symbols()),
                channels: channels("Unsubscribe", s.channels())?,
            }
        }
        fb::Payload::SnapshotRequest => {
            let r = payload(m.payload_as_snapshot_request())?;
            let channel = match channel("SnapshotRequest", r.channel()) {
                Ok(c) => c,
                Err(_) => {
                    return Err(DecodeError::BadChannel {
                        message: "SnapshotRequest",
                        field: "channel",
                        value: r.channel().0,
                    })
                }
            };
            ClientMsg::SnapshotRequest {
                symbol: text("SnapshotRequest", "symbol", r.symbol())?,
                channel,
            }
        }
        fb::Payload::Ping => ClientMsg::Ping {
            id: payload(m.payload_as_ping())?.id(),
        },
        fb::Payload::Hello => return Err(wrong_way("Hello", "server-to-client")),
        fb::Payload::L3Snapshot => return Err(wrong_way("L3Snapshot", "server-to-client")),
        fb::Payload::L2Snapshot => return Err(wrong_way("L2Snapshot", "server-to-client")),
        fb::Payload::TopSnapshot => return Err(wrong_way("TopSnapshot", "server-to-client")),
        fb::Payload::TradesSnapshot => return Err(wrong_way("TradesSnapshot", "server-to-client")),
        fb::Payload::Update => return Err(wrong_way("Update", "server-to-client")),
        fb::Payload::Heartbeat => return Err(wrong_way("Heartbeat", "server-to-client")),
        fb::Payload::Pong => return Err(wrong_way("Pong", "server-to-client")),
        fb::Payload::Refused => return Err(wrong_way("Refused", "server-to-client")),
        fb::Payload::Goodbye => return Err(wrong_way("Goodbye", "server-to-client")),
        other => return Err(DecodeError::UnknownMessageType(other.0)),
    })
}

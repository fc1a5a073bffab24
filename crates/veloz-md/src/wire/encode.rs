//! [`MdEncoder`]: every message of the binary feed into one reusable FlatBuffers builder.
//!
//! Each method resets the builder, builds one message and returns the whole frame (length
//! prefix included), borrowed until the next call: the server encodes an update once and
//! copies these bytes to every subscriber. In steady state nothing is allocated (the
//! builder and the scratch vectors keep their capacity).

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use veloz_core::{Seq, Side, SymbolId};

use super::{ClientMsg, Hello, ServerMsg, Snapshot, SnapshotMsg, TopSnapshot};
use crate::book::{L2Snapshot, L3Snapshot};
use crate::generated as fb;
use crate::message::{Channel, MdBody, MdMessage, Quote};

/// Builds frames of the binary feed; see the module docs.
pub struct MdEncoder {
    fbb: FlatBufferBuilder<'static>,
    orders: Vec<fb::Order>,
    levels: Vec<fb::Level>,
    prints: Vec<fb::TradePrint>,
}

impl std::fmt::Debug for MdEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdEncoder").finish_non_exhaustive()
    }
}

impl Default for MdEncoder {
    fn default() -> Self {
        MdEncoder::new()
    }
}

pub(crate) fn side_code(side: Side) -> fb::Side {
    match side {
        Side::Buy => fb::Side::Buy,
        Side::Sell => fb::Side::Sell,
    }
}

pub(crate) fn channel_code(channel: Channel) -> fb::Channel {
    match channel {
        Channel::Trades => fb::Channel::Trades,
        Channel::L2 => fb::Channel::L2,
        Channel::L3 => fb::Channel::L3,
        Channel::Top => fb::Channel::Top,
    }
}

fn quote(q: Option<Quote>) -> Option<fb::Quote> {
    q.map(|q| fb::Quote::new(q.price, q.qty))
}

impl MdEncoder {
    pub fn new() -> MdEncoder {
        MdEncoder {
            fbb: FlatBufferBuilder::with_capacity(1024),
            orders: Vec::new(),
            levels: Vec::new(),
            prints: Vec::new(),
        }
    }

    fn finish(
        &mut self,
        kind: fb::Payload,
        payload: WIPOffset<flatbuffers::UnionWIPOffset>,
    ) -> &[u8] {
        let root = fb::Message::create(
            &mut self.fbb,
            &fb::MessageArgs {
                payload_type: kind,
                payload: Some(payload),
            },
        );
        self.fbb.finish_size_prefixed(root, None);
        self.fbb.finished_data()
    }

    /// The frame built last.
    ///
    /// # Panics
    /// Before the first message is built (a caller bug).
    pub fn finished(&self) -> &[u8] {
        self.fbb.finished_data()
    }

    /// Any server message (tests, recordings).
    pub fn server(&mut self, msg: &ServerMsg) -> &[u8] {
        match msg {
            ServerMsg::Hello(h) => self.hello(h),
            ServerMsg::Snapshot(s) => self.snapshot(s),
            ServerMsg::Update(m) => self.update(m),
            ServerMsg::Heartbeat(w) => self.heartbeat(w.session, &w.watermarks),
            ServerMsg::Pong { id, marks } => self.pong(*id, marks.session, &marks.watermarks),
            ServerMsg::Refused(why) => self.refused(why),
            ServerMsg::Goodbye(why) => self.goodbye(why),
        }
    }

    /// Any client message.
    pub fn client(&mut self, msg: &ClientMsg) -> &[u8] {
        match msg {
            ClientMsg::Subscribe { symbols, channels } => self.subscribe(symbols, channels),
            ClientMsg::Unsubscribe { symbols, channels } => self.unsubscribe(symbols, channels),
            ClientMsg::SnapshotRequest { symbol, channel } => {
                self.snapshot_request(symbol, *channel)
            }
            ClientMsg::Ping { id } => self.ping(*id),
        }
    }

    pub fn hello(&mut self, hello: &Hello) -> &[u8] {
        self.fbb.reset();
        let defs: Vec<_> = hello
            .symbols
            .iter()
            .map(|s| {
                let name = self.fbb.create_string(&s.name);
                fb::SymbolDef::create(
                    &mut self.fbb,
                    &fb::SymbolDefArgs {
                        id: s.id,
                        name: Some(name),
                        price_scale: s.price_scale,
                    },
                )
            })
            .collect();
        let symbols = self.fbb.create_vector(&defs);
        let m = fb::Hello::create(
            &mut self.fbb,
            &fb::HelloArgs {
                session: hello.session,
                heartbeat_ms: hello.heartbeat_ms,
                symbols: Some(symbols),
            },
        );
        self.finish(fb::Payload::Hello, m.as_union_value())
    }

    /// A snapshot of any channel.
    pub fn snapshot(&mut self, s: &SnapshotMsg) -> &[u8] {
        match &s.snapshot {
            Snapshot::L3(b) => self.l3_snapshot(s.session, s.cmd_seq, b),
            Snapshot::L2(b) => self.l2_snapshot(s.session, s.cmd_seq, b),
            Snapshot::Top(t) => self.top_snapshot(s.session, s.cmd_seq, t),
            Snapshot::Trades(t) => {
                self.trades_snapshot(s.session, s.cmd_seq, t.symbol, t.seq, &t.trades)
            }
        }
    }

    pub fn l3_snapshot(&mut self, session: u64, cmd_seq: Option<Seq>, s: &L3Snapshot) -> &[u8] {
        self.fbb.reset();
        let mut sides = [None, None];
        for (i, levels) in [&s.bids, &s.asks].into_iter().enumerate() {
            let mut offsets = Vec::with_capacity(levels.len());
            for l in levels {
                self.orders.clear();
                self.orders
                    .extend(l.orders.iter().map(|&(id, qty)| fb::Order::new(id, qty)));
                let orders = self.fbb.create_vector(&self.orders);
                offsets.push(fb::L3Level::create(
                    &mut self.fbb,
                    &fb::L3LevelArgs {
                        price: l.price,
                        orders: Some(orders),
                    },
                ));
            }
            sides[i] = Some(self.fbb.create_vector(&offsets));
        }
        let m = fb::L3Snapshot::create(
            &mut self.fbb,
            &fb::L3SnapshotArgs {
                session,
                symbol: s.symbol,
                seq: s.seq,
                cmd_seq,
                bids: sides[0],
                asks: sides[1],
            },
        );
        self.finish(fb::Payload::L3Snapshot, m.as_union_value())
    }

    pub fn l2_snapshot(&mut self, session: u64, cmd_seq: Option<Seq>, s: &L2Snapshot) -> &[u8] {
        self.fbb.reset();
        let mut sides = [None, None];
        for (i, levels) in [&s.bids, &s.asks].into_iter().enumerate() {
            self.levels.clear();
            self.levels.extend(
                levels
                    .iter()
                    .map(|l| fb::Level::new(l.price, l.qty, l.orders)),
            );
            sides[i] = Some(self.fbb.create_vector(&self.levels));
        }
        let m = fb::L2Snapshot::create(
            &mut self.fbb,
            &fb::L2SnapshotArgs {
                session,
                symbol: s.symbol,
                seq: s.seq,
                cmd_seq,
                bids: sides[0],
                asks: sides[1],
            },
        );
        self.finish(fb::Payload::L2Snapshot, m.as_union_value())
    }

    pub fn top_snapshot(&mut self, session: u64, cmd_seq: Option<Seq>, t: &TopSnapshot) -> &[u8] {
        self.fbb.reset();
        let (bid, ask) = (quote(t.bid), quote(t.ask));
        let m = fb::TopSnapshot::create(
            &mut self.fbb,
            &fb::TopSnapshotArgs {
                session,
                symbol: t.symbol,
                seq: t.seq,
                cmd_seq,
                bid: bid.as_ref(),
                ask: ask.as_ref(),
            },
        );
        self.finish(fb::Payload::TopSnapshot, m.as_union_value())
    }

    /// `trades`: the instrument's latest trades, oldest first (other messages are skipped).
    pub fn trades_snapshot<'m>(
        &mut self,
        session: u64,
        cmd_seq: Option<Seq>,
        symbol: SymbolId,
        seq: u64,
        trades: impl IntoIterator<Item = &'m MdMessage>,
    ) -> &[u8] {
        self.fbb.reset();
        self.prints.clear();
        for m in trades {
            if let MdBody::Trade {
                trade_id,
                price,
                qty,
                aggressor,
            } = m.body
            {
                self.prints.push(fb::TradePrint::new(
                    m.seq,
                    m.cmd_seq,
                    m.ts,
                    trade_id,
                    price,
                    qty,
                    side_code(aggressor),
                ));
            }
        }
        let trades = self.fbb.create_vector(&self.prints);
        let m = fb::TradesSnapshot::create(
            &mut self.fbb,
            &fb::TradesSnapshotArgs {
                session,
                symbol,
                seq,
                cmd_seq,
                trades: Some(trades),
            },
        );
        self.finish(fb::Payload::TradesSnapshot, m.as_union_value())
    }

    /// One market-data message.
    pub fn update(&mut self, m: &MdMessage) -> &[u8] {
        self.fbb.reset();
        let fbb = &mut self.fbb;
        let (body_type, body) = match m.body {
            MdBody::Trade {
                trade_id,
                price,
                qty,
                aggressor,
            } => (
                fb::Body::Trade,
                fb::Trade::create(
                    fbb,
                    &fb::TradeArgs {
                        trade_id,
                        price,
                        qty,
                        aggressor: side_code(aggressor),
                    },
                )
                .as_union_value(),
            ),
            MdBody::Add {
                order_id,
                side,
                price,
                qty,
            } => (
                fb::Body::Add,
                fb::Add::create(
                    fbb,
                    &fb::AddArgs {
                        order_id,
                        side: side_code(side),
                        price,
                        qty,
                    },
                )
                .as_union_value(),
            ),
            MdBody::Modify {
                order_id,
                side,
                price,
                qty,
            } => (
                fb::Body::Modify,
                fb::Modify::create(
                    fbb,
                    &fb::ModifyArgs {
                        order_id,
                        side: side_code(side),
                        price,
                        qty,
                    },
                )
                .as_union_value(),
            ),
            MdBody::Delete {
                order_id,
                side,
                price,
            } => (
                fb::Body::Delete,
                fb::Delete::create(
                    fbb,
                    &fb::DeleteArgs {
                        order_id,
                        side: side_code(side),
                        price,
                    },
                )
                .as_union_value(),
            ),
            MdBody::Execute {
                order_id,
                side,
                price,
                qty,
                leaves,
                trade_id,
            } => (
                fb::Body::Execute,
                fb::Execute::create(
                    fbb,
                    &fb::ExecuteArgs {
                        order_id,
                        side: side_code(side),
                        price,
                        qty,
                        leaves,
                        trade_id,
                    },
                )
                .as_union_value(),
            ),
            MdBody::Level {
                side,
                price,
                qty,
                orders,
            } => (
                fb::Body::LevelUpdate,
                fb::LevelUpdate::create(
                    fbb,
                    &fb::LevelUpdateArgs {
                        side: side_code(side),
                        price,
                        qty,
                        orders,
                    },
                )
                .as_union_value(),
            ),
            MdBody::Top { bid, ask } => {
                let (bid, ask) = (quote(bid), quote(ask));
                (
                    fb::Body::Top,
                    fb::Top::create(
                        fbb,
                        &fb::TopArgs {
                            bid: bid.as_ref(),
                            ask: ask.as_ref(),
                        },
                    )
                    .as_union_value(),
                )
            }
        };
        let u = fb::Update::create(
            fbb,
            &fb::UpdateArgs {
                symbol: m.symbol,
                seq: m.seq,
                cmd_seq: m.cmd_seq,
                ts: m.ts,
                body_type,
                body: Some(body),
            },
        );
        self.finish(fb::Payload::Update, u.as_union_value())
    }

    pub fn heartbeat(&mut self, session: u64, watermarks: &[Seq]) -> &[u8] {
        self.fbb.reset();
        let w = self.fbb.create_vector(watermarks);
        let m = fb::Heartbeat::create(
            &mut self.fbb,
            &fb::HeartbeatArgs {
                session,
                watermarks: Some(w),
            },
        );
        self.finish(fb::Payload::Heartbeat, m.as_union_value())
    }

    pub fn pong(&mut self, id: u64, session: u64, watermarks: &[Seq]) -> &[u8] {
        self.fbb.reset();
        let w = self.fbb.create_vector(watermarks);
        let m = fb::Pong::create(
            &mut self.fbb,
            &fb::PongArgs {
                id,
                session,
                watermarks: Some(w),
            },
        );
        self.finish(fb::Payload::Pong, m.as_union_value())
    }

    pub fn refused(&mut self, reason: &str) -> &[u8] {
        self.fbb.reset();
        let r = self.fbb.create_string(reason);
        let m = fb::Refused::create(&mut self.fbb, &fb::RefusedArgs { reason: Some(r) });
        self.finish(fb::Payload::Refused, m.as_union_value())
    }

    pub fn goodbye(&mut self, reason: &str) -> &[u8] {
        self.fbb.reset();
        let r = self.fbb.create_string(reason);
        let m = fb::Goodbye::create(&mut self.fbb, &fb::GoodbyeArgs { reason: Some(r) });
        self.finish(fb::Payload::Goodbye, m.as_union_value())
    }

    fn names_and_channels<S: AsRef<str>>(
        &mut self,
        symbols: &[S],
        channels: &[Channel],
    ) -> (
        WIPOffset<flatbuffers::Vector<'static, flatbuffers::ForwardsUOffset<&'static str>>>,
        WIPOffset<flatbuffers::Vector<'static, fb::Channel>>,
    ) {
        let names: Vec<_> = symbols
            .iter()
            .map(|s| self.fbb.create_string(s.as_ref()))
            .collect();
        let names = self.fbb.create_vector(&names);
        let codes: Vec<_> = channels.iter().map(|c| channel_code(*c)).collect();
        let codes = self.fbb.create_vector(&codes);
        (names, codes)
    }

    /// Empty `symbols`: every instrument; empty `channels`: every channel.
    pub fn subscribe<S: AsRef<str>>(&mut self, symbols: &[S], channels: &[Channel]) -> &[u8] {
        self.fbb.reset();
        let (names, codes) = self.names_and_channels(symbols, channels);
        let m = fb::Subscribe::create(
            &mut self.fbb,
            &fb::SubscribeArgs {
                symbols: Some(names),
                channels: Some(codes),
            },
        );
        self.finish(fb::Payload::Subscribe, m.as_union_value())
    }

    pub fn unsubscribe<S: AsRef<str>>(&mut self, symbols: &[S], channels: &[Channel]) -> &[u8] {
        self.fbb.reset();
        let (names, codes) = self.names_and_channels(symbols, channels);
        let m = fb::Unsubscribe::create(
            &mut self.fbb,
            &fb::UnsubscribeArgs {
                symbols: Some(names),
                channels: Some(codes),
            },
        );
        self.finish(fb::Payload::Unsubscribe, m.as_union_value())
    }

    pub fn snapshot_request(&mut self, symbol: &str, channel: Channel) -> &[u8] {
        self.fbb.reset();
        let s = self.fbb.create_string(symbol);
        let m = fb::SnapshotRequest::create(
            &mut self.fbb,
            &fb::SnapshotRequestArgs {
                symbol: Some(s),
                channel: channel_code(channel),
            },
        );
        self.finish(fb::Payload::SnapshotRequest, m.as_union_value())
    }

    pub fn ping(&mut self, id: u64) -> &[u8] {
        self.fbb.reset();
        let m = fb::Ping::create(&mut self.fbb, &fb::PingArgs { id });
        self.finish(fb::Payload::Ping, m.as_union_value())
    }
}

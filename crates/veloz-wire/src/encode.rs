//! Encoding: typed messages to frames, through one reusable `FlatBufferBuilder`.
//!
//! Each method resets the builder, writes one `Message` as a size-prefixed buffer (the
//! frame) and returns it borrowed from the builder; copy it to the socket's buffer before
//! the next call. The builder keeps its memory across calls, so once it has grown to the
//! largest message sent, encoding allocates nothing. Fields equal to their schema default are
//! left out (FlatBuffers' rule); optional scalars (`side`, reasons) are written only when
//! present. The encoder writes what it is given: it does not validate (decoders do).

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use veloz_core::{
    AccountId, CancelOrder, Command, Event, MassCancel, NewOrder, ReplaceOrder, Seq, Timestamp,
};

use super::convert::{self, execution_reports};
use super::generated as fb;
use super::message::{ExecutionReport, LogonAck, Logout, TradePrint};

/// Builder capacity to start with: room for any order-entry message.
const INITIAL_CAPACITY: usize = 512;

/// Writes frames into a reusable buffer. See the module docs.
pub struct FrameEncoder {
    fbb: FlatBufferBuilder<'static>,
    /// Scratch for a LogonAck's instrument tables, kept across calls.
    instruments: Vec<WIPOffset<fb::InstrumentInfo<'static>>>,
}

impl Default for FrameEncoder {
    fn default() -> Self {
        FrameEncoder::new()
    }
}

impl std::fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameEncoder").finish_non_exhaustive()
    }
}

impl FrameEncoder {
    pub fn new() -> FrameEncoder {
        FrameEncoder {
            fbb: FlatBufferBuilder::with_capacity(INITIAL_CAPACITY),
            instruments: Vec::new(),
        }
    }

    fn finish(&mut self, kind: fb::Payload, payload: WIPOffset<UnionWIPOffset>) -> &[u8] {
        let msg = fb::Message::create(
            &mut self.fbb,
            &fb::MessageArgs {
                payload_type: kind,
                payload: Some(payload),
            },
        );
        self.fbb.finish_size_prefixed(msg, None);
        self.fbb.finished_data()
    }

    /// Client -> engine: the first frame of a session.
    pub fn logon(&mut self, account: AccountId, token: &str) -> &[u8] {
        self.fbb.reset();
        let token = self.fbb.create_string(token);
        let m = fb::Logon::create(
            &mut self.fbb,
            &fb::LogonArgs {
                account_id: account,
                token: Some(token),
            },
        );
        self.finish(fb::Payload::Logon, m.as_union_value())
    }

    /// Engine -> client: the logon succeeded.
    pub fn logon_ack(&mut self, ack: &LogonAck<'_>) -> &[u8] {
        self.fbb.reset();
        self.instruments.clear();
        for i in &ack.instruments {
            let symbol = self.fbb.create_string(i.symbol);
            let t = fb::InstrumentInfo::create(
                &mut self.fbb,
                &fb::InstrumentInfoArgs {
                    id: i.id,
                    symbol: Some(symbol),
                    price_scale: i.price_scale,
                    tick_size: i.tick_size,
                    lot_size: i.lot_size,
                    min_qty: i.min_qty,
                    max_qty: i.max_qty,
                },
            );
            self.instruments.push(t);
        }
        let instruments = self.fbb.create_vector(&self.instruments);
        let m = fb::LogonAck::create(
            &mut self.fbb,
            &fb::LogonAckArgs {
                session_id: ack.session_id,
                heartbeat_interval_ms: ack.heartbeat_interval_ms,
                instruments: Some(instruments),
            },
        );
        self.finish(fb::Payload::LogonAck, m.as_union_value())
    }

    /// Either direction: the session ends.
    pub fn logout(&mut self, logout: &Logout<'_>) -> &[u8] {
        self.fbb.reset();
        let text = (!logout.text.is_empty()).then(|| self.fbb.create_string(logout.text));
        let m = fb::Logout::create(
            &mut self.fbb,
            &fb::LogoutArgs {
                reason: convert::fb_logout(logout.reason),
                text,
            },
        );
        self.finish(fb::Payload::Logout, m.as_union_value())
    }

    /// Either direction: keep the session alive.
    pub fn heartbeat(&mut self, timestamp_ns: Timestamp) -> &[u8] {
        self.fbb.reset();
        let m = fb::Heartbeat::create(&mut self.fbb, &fb::HeartbeatArgs { timestamp_ns });
        self.finish(fb::Payload::Heartbeat, m.as_union_value())
    }

    /// Client -> engine: any order request. The command's account is not sent (the engine
    /// uses the session's).
    pub fn command(&mut self, command: &Command) -> &[u8] {
        match command {
            Command::New(o) => self.new_order(o),
            Command::Cancel(c) => self.cancel(c),
            Command::Replace(r) => self.replace(r),
            Command::MassCancel(m) => self.mass_cancel(m),
        }
    }

    /// Client -> engine: a new order (its `account` is not sent).
    pub fn new_order(&mut self, o: &NewOrder) -> &[u8] {
        self.fbb.reset();
        let m = fb::NewOrder::create(
            &mut self.fbb,
            &fb::NewOrderArgs {
                client_order_id: o.client_order_id,
                symbol_id: o.symbol,
                side: Some(convert::fb_side(o.side)),
                kind: convert::fb_kind(o.kind),
                tif: convert::fb_tif(o.tif),
                post_only: o.post_only,
                stp: convert::fb_stp(o.stp),
                price: o.price,
                qty: o.qty,
            },
        );
        self.finish(fb::Payload::NewOrder, m.as_union_value())
    }

    /// Client -> engine: cancel a resting order (its `account` is not sent).
    pub fn cancel(&mut self, c: &CancelOrder) -> &[u8] {
        self.fbb.reset();
        let m = fb::Cancel::create(
            &mut self.fbb,
            &fb::CancelArgs {
                client_order_id: c.client_order_id,
                symbol_id: c.symbol,
                order_id: c.order_id,
            },
        );
        self.finish(fb::Payload::Cancel, m.as_union_value())
    }

    /// Client -> engine: replace a resting order (its `account` is not sent).
    pub fn replace(&mut self, r: &ReplaceOrder) -> &[u8] {
        self.fbb.reset();
        let m = fb::Replace::create(
            &mut self.fbb,
            &fb::ReplaceArgs {
                client_order_id: r.client_order_id,
                symbol_id: r.symbol,
                order_id: r.order_id,
                price: r.price,
                qty: r.qty,
            },
        );
        self.finish(fb::Payload::Replace, m.as_union_value())
    }

    /// Client -> engine: mass cancel (its `account` is not sent).
    pub fn mass_cancel(&mut self, m: &MassCancel) -> &[u8] {
        self.fbb.reset();
        let t = fb::MassCancel::create(
            &mut self.fbb,
            &fb::MassCancelArgs {
                client_order_id: m.client_order_id,
                has_symbol: m.symbol.is_some(),
                symbol_id: m.symbol.unwrap_or(0),
            },
        );
        self.finish(fb::Payload::MassCancel, t.as_union_value())
    }

    /// Engine -> client: one execution report.
    pub fn execution_report(&mut self, r: &ExecutionReport<'_>) -> &[u8] {
        self.fbb.reset();
        let reason_text =
            (!r.reason_text.is_empty()).then(|| self.fbb.create_string(r.reason_text));
        let m = fb::ExecutionReport::create(
            &mut self.fbb,
            &fb::ExecutionReportArgs {
                exec_type: convert::fb_exec_type(r.exec_type),
                order_id: r.order_id,
                client_order_id: r.client_order_id,
                symbol_id: r.symbol.unwrap_or(0),
                has_symbol: r.symbol.is_some(),
                side: r.side.map(convert::fb_side),
                price: r.price,
                qty: r.qty,
                last_qty: r.last_qty,
                last_price: r.last_price,
                leaves_qty: r.leaves_qty,
                trade_id: r.trade_id,
                liquidity: convert::fb_liquidity(r.liquidity),
                reject_reason: r.reject_reason.map(convert::fb_reject),
                cancel_reason: r.cancel_reason.map(convert::fb_cancel),
                reason_text,
                seq: r.seq,
                timestamp_ns: r.timestamp_ns,
                kept_priority: r.kept_priority,
                mass_cancel_count: r.mass_cancel_count,
            },
        );
        self.finish(fb::Payload::ExecutionReport, m.as_union_value())
    }

    /// Engine -> client: a public trade print.
    pub fn trade(&mut self, t: &TradePrint) -> &[u8] {
        self.fbb.reset();
        let m = fb::Trade::create(
            &mut self.fbb,
            &fb::TradeArgs {
                symbol_id: t.symbol,
                trade_id: t.trade_id,
                price: t.price,
                qty: t.qty,
                aggressor_side: Some(convert::fb_side(t.aggressor)),
                timestamp_ns: t.timestamp_ns,
            },
        );
        self.finish(fb::Payload::Trade, m.as_union_value())
    }

    /// Engine -> clients: the execution report frames of one core event, handed to `emit`
    /// with the account each is for (two for a trade: maker, then taker).
    pub fn event(
        &mut self,
        event: &Event,
        seq: Seq,
        timestamp_ns: Timestamp,
        mut emit: impl FnMut(AccountId, &[u8]),
    ) {
        for (account, report) in execution_reports(event, seq, timestamp_ns) {
            emit(account, self.execution_report(&report));
        }
    }
}

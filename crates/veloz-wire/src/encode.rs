//! Encoding: typed messages to frames, through one reusable `FlatBufferBuilder`.
//!
//! Each method resets the builder, writes one `Message` as a size-prefixed buffer (the
//! frame) and returns it borrowed from the builder; copy it to the socket's buffer before
//! the next call. The builder keeps its memory across calls, so once it has grown to the
//! largest message sent, encoding allocates nothing. Fields equal to their schema default are
//! left out (FlatBuffers' rule); optional scalars (`side`, reasons) are written only when
//! present. The encoder writes what it is given: it does not validate (decoders do).
//!
//! Execution reports, the bulk of what the engine sends, skip the builder: the crate's
//! `template` module patches a frame of fixed layout prepared once (every field present,
//! defaults included; the reason text in a fixed-capacity slot, a longer text falling back
//! to the builder). The frame is larger than the builder's but decodes to the same message;
//! [`FrameEncoder::execution_report_with_builder`] keeps the builder's encoding for tests and
//! benches to compare against.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use veloz_core::{
    AccountId, CancelOrder, Command, Event, MassCancel, NewOrder, OrderRef, Part, ReplaceOrder,
    Seq, Timestamp,
};

use super::convert::{self, execution_reports};
use super::generated as fb;
use super::message::{
    BalanceReport, ExecutionReport, Logon, LogonAck, Logout, OpenOrdersEnd, OrderStatus, Query,
    StreamResumed, TradePrint,
};
use super::template::ReportTemplates;

/// Builder capacity to start with: room for any order-entry message.
const INITIAL_CAPACITY: usize = 512;

/// Writes frames into a reusable buffer. See the module docs.
pub struct FrameEncoder {
    fbb: FlatBufferBuilder<'static>,
    /// Scratch for a LogonAck's instrument tables, kept across calls.
    instruments: Vec<WIPOffset<fb::InstrumentInfo<'static>>>,
    /// The prepared execution report frames (shared by every encoder of the process).
    templates: &'static ReportTemplates,
    /// The last execution report written from a template.
    report: Vec<u8>,
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
            templates: ReportTemplates::get(),
            report: Vec::with_capacity(INITIAL_CAPACITY),
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

    /// Client -> engine: the first frame of a session (no resend).
    pub fn logon(&mut self, account: AccountId, token: &str) -> &[u8] {
        self.logon_with(&Logon::new(account, token))
    }

    /// Client -> engine: the first frame of a session, asking for the reports after
    /// `resume_after[stream]` on each stream (see [`Logon::resume_after`]).
    pub fn logon_resuming(
        &mut self,
        account: AccountId,
        token: &str,
        resume_after: Option<&[u64]>,
    ) -> &[u8] {
        self.logon_with(&Logon {
            resume_after: resume_after.map(<[u64]>::to_vec),
            ..Logon::new(account, token)
        })
    }

    /// Client -> engine: a Logon with every option.
    pub fn logon_with(&mut self, l: &Logon<'_>) -> &[u8] {
        self.fbb.reset();
        let token = self.fbb.create_string(l.token);
        let resume_after = l.resume_after.as_ref().map(|v| self.fbb.create_vector(v));
        let m = fb::Logon::create(
            &mut self.fbb,
            &fb::LogonArgs {
                account_id: l.account,
                token: Some(token),
                resume_after,
                cancel_on_disconnect: match l.cancel_on_disconnect {
                    None => fb::CancelOnDisconnect::AccountDefault,
                    Some(true) => fb::CancelOnDisconnect::On,
                    Some(false) => fb::CancelOnDisconnect::Off,
                },
            },
        );
        self.finish(fb::Payload::Logon, m.as_union_value())
    }

    /// Engine -> client: a resend is complete on one stream.
    pub fn stream_resumed(&mut self, r: &StreamResumed) -> &[u8] {
        self.fbb.reset();
        let m = fb::StreamResumed::create(
            &mut self.fbb,
            &fb::StreamResumedArgs {
                stream: r.stream,
                after: r.after,
                last: r.last,
                resent: r.resent,
                first_retained: r.first_retained,
            },
        );
        self.finish(fb::Payload::StreamResumed, m.as_union_value())
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
                streams: ack.streams,
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
    /// uses the session's). An operator command has no client message (it comes over the
    /// admin interface): empty.
    pub fn command(&mut self, command: &Command) -> &[u8] {
        match command {
            Command::New(o) => self.new_order(o),
            Command::Cancel(c) => self.cancel(c),
            Command::Replace(r) => self.replace(r),
            Command::MassCancel(m) => self.mass_cancel(m),
            Command::Admin(_) => &[],
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
        let (order_id, orig_client_order_id) = wire_order_ref(c.order_id);
        let m = fb::Cancel::create(
            &mut self.fbb,
            &fb::CancelArgs {
                client_order_id: c.client_order_id,
                symbol_id: c.symbol,
                order_id,
                orig_client_order_id,
            },
        );
        self.finish(fb::Payload::Cancel, m.as_union_value())
    }

    /// Client -> engine: replace a resting order (its `account` is not sent).
    pub fn replace(&mut self, r: &ReplaceOrder) -> &[u8] {
        self.fbb.reset();
        let (order_id, orig_client_order_id) = wire_order_ref(r.order_id);
        let m = fb::Replace::create(
            &mut self.fbb,
            &fb::ReplaceArgs {
                client_order_id: r.client_order_id,
                symbol_id: r.symbol,
                order_id,
                orig_client_order_id,
                price: r.price,
                qty: r.qty,
            },
        );
        self.finish(fb::Payload::Replace, m.as_union_value())
    }

    /// Client -> engine: an order-status or open-orders request.
    pub fn query(&mut self, q: &Query) -> &[u8] {
        self.fbb.reset();
        match *q {
            Query::Status {
                request_id,
                symbol,
                by,
            } => {
                let (order_id, orig_client_order_id) = wire_order_ref(by.raw());
                let m = fb::OrderStatusRequest::create(
                    &mut self.fbb,
                    &fb::OrderStatusRequestArgs {
                        client_order_id: request_id,
                        symbol_id: symbol,
                        order_id,
                        orig_client_order_id,
                    },
                );
                self.finish(fb::Payload::OrderStatusRequest, m.as_union_value())
            }
            Query::OpenOrders {
                request_id,
                symbol,
                after,
                max,
            } => {
                let m = fb::OpenOrdersRequest::create(
                    &mut self.fbb,
                    &fb::OpenOrdersRequestArgs {
                        client_order_id: request_id,
                        has_symbol: symbol.is_some(),
                        symbol_id: symbol.unwrap_or(0),
                        after_order_id: after,
                        max_orders: max,
                    },
                );
                self.finish(fb::Payload::OpenOrdersRequest, m.as_union_value())
            }
            Query::Balances {
                request_id,
                by_shard,
            } => {
                let m = fb::BalanceRequest::create(
                    &mut self.fbb,
                    &fb::BalanceRequestArgs {
                        request_id,
                        by_shard,
                    },
                );
                self.finish(fb::Payload::BalanceRequest, m.as_union_value())
            }
        }
    }

    /// Engine -> client: the answer to a balance request.
    pub fn balance_report(&mut self, r: &BalanceReport<'_>) -> &[u8] {
        self.fbb.reset();
        let mut balances = Vec::with_capacity(r.balances.len());
        for b in &r.balances {
            let name = self.fbb.create_string(b.name);
            balances.push(fb::AssetBalance::create(
                &mut self.fbb,
                &fb::AssetBalanceArgs {
                    asset_id: b.asset,
                    name: Some(name),
                    scale: b.scale,
                    available: b.available,
                    held: b.held,
                },
            ));
        }
        let balances = self.fbb.create_vector(&balances);
        let mut slices = Vec::with_capacity(r.slices.len());
        for s in &r.slices {
            slices.push(fb::ShardBalance::create(
                &mut self.fbb,
                &fb::ShardBalanceArgs {
                    shard: s.shard,
                    asset_id: s.asset,
                    available: s.available,
                    held: s.held,
                },
            ));
        }
        let slices = (!slices.is_empty()).then(|| self.fbb.create_vector(&slices));
        let m = fb::BalanceReport::create(
            &mut self.fbb,
            &fb::BalanceReportArgs {
                request_id: r.request_id,
                account_id: r.account,
                reject_reason: r.reject_reason.map(convert::fb_reject),
                balances: Some(balances),
                slices,
            },
        );
        self.finish(fb::Payload::BalanceReport, m.as_union_value())
    }

    /// Engine -> client: an order's state (a status answer or one open order of a page).
    pub fn order_status(&mut self, o: &OrderStatus) -> &[u8] {
        self.fbb.reset();
        let m = fb::OrderStatus::create(
            &mut self.fbb,
            &fb::OrderStatusArgs {
                client_order_id: o.client_order_id,
                reject_reason: o.reject_reason.map(convert::fb_reject),
                order_id: o.order_id,
                orig_client_order_id: o.orig_client_order_id,
                symbol_id: o.symbol,
                side: o.side.map(convert::fb_side),
                price: o.price,
                leaves_qty: o.leaves_qty,
                entered_ns: o.entered_ns,
            },
        );
        self.finish(fb::Payload::OrderStatus, m.as_union_value())
    }

    /// Engine -> client: the end of a page of open orders.
    pub fn open_orders_end(&mut self, e: &OpenOrdersEnd) -> &[u8] {
        self.fbb.reset();
        let m = fb::OpenOrdersEnd::create(
            &mut self.fbb,
            &fb::OpenOrdersEndArgs {
                client_order_id: e.client_order_id,
                count: e.count,
                next_after_order_id: e.next_after_order_id,
                reject_reason: e.reject_reason.map(convert::fb_reject),
            },
        );
        self.finish(fb::Payload::OpenOrdersEnd, m.as_union_value())
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

    /// Engine -> client: one execution report, patched into the prepared template (through
    /// the builder when its reason text is longer than any reason name).
    pub fn execution_report(&mut self, r: &ExecutionReport<'_>) -> &[u8] {
        if self.templates.write(r, &mut self.report) {
            return &self.report;
        }
        self.execution_report_with_builder(r)
    }

    /// Engine -> client: one execution report through the FlatBuffers builder (smaller frame,
    /// defaults left out; slower). Decodes to the same message as
    /// [`FrameEncoder::execution_report`]'s frame.
    pub fn execution_report_with_builder(&mut self, r: &ExecutionReport<'_>) -> &[u8] {
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
                stream: r.stream,
                stream_seq: r.stream_seq,
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

    /// One report of an account's stream: the `part` of `event`'s reports (a trade's
    /// maker or taker report; [`Part::All`] for the one report of any other event), with
    /// its stream position. `None` when `event` has no such report.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_report(
        &mut self,
        event: &Event,
        part: Part,
        seq: Seq,
        timestamp_ns: Timestamp,
        stream: u16,
        stream_seq: u64,
    ) -> Option<&[u8]> {
        let index = match part {
            Part::All | Part::Maker => 0,
            Part::Taker => 1,
        };
        let (_, mut report) = convert::execution_report_at(event, index, seq, timestamp_ns)?;
        report.stream = stream;
        report.stream_seq = stream_seq;
        Some(self.execution_report(&report))
    }
}

/// The wire's `(order_id, orig_client_order_id)` for a core order reference
/// ([`OrderRef::raw`]).
fn wire_order_ref(raw: u64) -> (u64, u64) {
    match OrderRef::from_raw(raw) {
        OrderRef::Id(id) => (id, 0),
        OrderRef::ClientId(c) => (0, c),
    }
}

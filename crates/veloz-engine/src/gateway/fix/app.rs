//! FIX application messages into the engine's commands and queries: NewOrderSingle (D),
//! OrderCancelRequest (F), OrderCancelReplaceRequest (G), OrderStatusRequest (H),
//! OrderMassCancelRequest (q) and CollateralInquiry (BB, module `collateral`).
//!
//! What cannot become a command is answered here, never sent on: a missing or malformed
//! required field gets a session Reject naming the tag; a value the engine does not serve
//! (an unknown symbol, a price off tick or with too many decimals, TimeInForce Day, a
//! ClOrdID too long) gets the business answer a FIX client expects for that
//! message (ExecutionReport rejected, OrderCancelReject, OrderMassCancelReport rejected),
//! whose Text names the field and the value.
//!
//! ClOrdIDs become the engine's 64-bit client order ids through the session's
//! [`ClOrdIds`](super::clordid::ClOrdIds): a number is itself, other text gets an id of its
//! own, recorded in the store (docs/fix.md).

use veloz_core::{
    CancelOrder, Command, MassCancel, NewOrder, OrderKind, OrderRef, ReplaceOrder,
    SelfTradePrevention, Side, TimeInForce, BY_CLIENT_ID,
};
use veloz_fix::{tags, FieldError, Message};
use veloz_wire::Query;

use super::orders::{Pending, PendingKind};
use super::{FixInbound, FixSession, Instrument};

/// Why a request is refused before it reaches the engine.
pub(super) enum Refusal {
    /// A session-level problem with a field: Reject (3).
    Session(FieldError),
    /// A business refusal: the message type's own reject, with this text.
    Business(String),
}

impl From<FieldError> for Refusal {
    fn from(e: FieldError) -> Refusal {
        Refusal::Session(e)
    }
}

/// "Price (44)".
fn named(tag: u32) -> String {
    format!("{} ({tag})", tags::name(tag))
}

impl FixSession {
    /// A ClOrdID field as a client order id: its number, or the id its text stands for
    /// (a new text is given one, recorded in the store before the command leaves).
    fn cl_field(&mut self, msg: &Message<'_>, tag: u32) -> Result<Option<u64>, Refusal> {
        let Some(v) = msg.get(tag) else {
            return Ok(None);
        };
        match self.cl.assign(v) {
            Ok((id, new)) => {
                if let (true, Some(store)) = (new, self.store.as_mut()) {
                    store.record_clordid(id, v);
                }
                Ok(Some(id))
            }
            Err(why) => Err(Refusal::Business(format!("{} {why}", named(tag)))),
        }
    }

    fn cl_required(&mut self, msg: &Message<'_>, tag: u32) -> Result<u64, Refusal> {
        match self.cl_field(msg, tag)? {
            Some(v) => Ok(v),
            None => Err(Refusal::Session(FieldError::Missing { tag })),
        }
    }

    fn instrument(&self, msg: &Message<'_>) -> Result<&Instrument, Refusal> {
        let symbol = msg.require_str(tags::SYMBOL)?;
        self.shared
            .by_symbol(symbol)
            .ok_or_else(|| Refusal::Business(format!("Symbol (55) {symbol:?} is not traded here")))
    }

    /// A price field as the instrument's integer units, exactly on tick.
    fn price(inst: &Instrument, msg: &Message<'_>, tag: u32) -> Result<Option<i64>, Refusal> {
        let Some(v) = msg.get(tag) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(v);
        let units = veloz_fix::parse_decimal(v, inst.price_scale).map_err(|e| {
            Refusal::Business(format!("{} {text} for {}: {e}", named(tag), inst.symbol,))
        })?;
        if units <= 0 || units % inst.tick_size != 0 {
            let mut tick = Vec::new();
            veloz_fix::format_decimal(inst.tick_size, inst.price_scale, &mut tick);
            let tick = String::from_utf8_lossy(&tick);
            return Err(Refusal::Business(format!(
                "{} {text} is not a positive multiple of {}'s tick {tick}",
                named(tag),
                inst.symbol
            )));
        }
        Ok(Some(units))
    }

    /// An integer quantity field.
    fn qty(msg: &Message<'_>, tag: u32) -> Result<Option<u64>, Refusal> {
        let Some(v) = msg.get(tag) else {
            return Ok(None);
        };
        match veloz_fix::parse_decimal(v, 0) {
            Ok(q) if q > 0 => Ok(Some(q as u64)),
            _ => Err(Refusal::Business(format!(
                "{} {} must be a positive whole number",
                named(tag),
                String::from_utf8_lossy(v)
            ))),
        }
    }

    fn side(msg: &Message<'_>) -> Result<Side, Refusal> {
        match msg.require_char(tags::SIDE)? {
            b'1' => Ok(Side::Buy),
            b'2' => Ok(Side::Sell),
            _ => Err(FieldError::OutOfRange {
                tag: tags::SIDE,
                why: "must be 1 (buy) or 2 (sell)",
            }
            .into()),
        }
    }

    /// Account (1), when given, must be the session's.
    pub(super) fn check_account(&self, msg: &Message<'_>) -> Result<(), Refusal> {
        match msg.get(tags::ACCOUNT) {
            Some(a) if a != self.account.to_string().as_bytes() => Err(Refusal::Business(format!(
                "Account (1) {:?} is not this session's account {}",
                String::from_utf8_lossy(a),
                self.account
            ))),
            _ => Ok(()),
        }
    }

    /// D, F, G, H, q, BB (the client's message `seq`).
    pub(super) fn application(
        &mut self,
        msg: &Message<'_>,
        seq: u64,
        wall: u64,
        out: &mut Vec<u8>,
    ) -> Option<FixInbound> {
        let kind = msg.msg_type();
        let parsed = match kind {
            b"D" => self.new_order(msg),
            b"F" | b"G" => self.cancel_or_replace(msg, kind == b"G"),
            b"H" => self.status(msg),
            b"BB" => self.collateral_inquiry(msg),
            _ => self.mass_cancel(msg),
        };
        match parsed {
            Ok(inbound) => Some(inbound),
            Err(Refusal::Session(e)) => {
                let text = e.to_string();
                self.reject(
                    out,
                    wall,
                    seq,
                    e.tag(),
                    e.session_reject_reason(),
                    &text,
                    Some(kind),
                );
                None
            }
            Err(Refusal::Business(text)) => {
                self.refuse(msg, &text, wall, out);
                None
            }
        }
    }

    fn new_order(&mut self, msg: &Message<'_>) -> Result<FixInbound, Refusal> {
        let client_order_id = self.cl_required(msg, tags::CL_ORD_ID)?;
        // PossResend=Y: the client may have sent this order before. One this session has
        // seen (open, or filled or cancelled lately) is not entered twice.
        if msg.get(tags::POSS_RESEND) == Some(b"Y") && self.orders.seen(client_order_id) {
            return Err(Refusal::Business(format!(
                "ClOrdID (11) {} was entered already (PossResend=Y): not entered again",
                String::from_utf8_lossy(msg.get(tags::CL_ORD_ID).unwrap_or_default())
            )));
        }
        let side = Self::side(msg)?;
        msg.require(tags::TRANSACT_TIME)?;
        let kind = match msg.require_char(tags::ORD_TYPE)? {
            b'1' => OrderKind::Market,
            b'2' => OrderKind::Limit,
            _ => {
                return Err(FieldError::OutOfRange {
                    tag: tags::ORD_TYPE,
                    why: "must be 1 (market) or 2 (limit)",
                }
                .into())
            }
        };
        let qty = match Self::qty(msg, tags::ORDER_QTY)? {
            Some(q) => q,
            None => {
                return Err(FieldError::Missing {
                    tag: tags::ORDER_QTY,
                }
                .into())
            }
        };
        self.check_account(msg)?;
        let inst = self.instrument(msg)?;
        let price = Self::price(inst, msg, tags::PRICE)?;
        let price = match (kind, price) {
            (OrderKind::Limit, Some(p)) => p,
            (OrderKind::Limit, None) => {
                return Err(Refusal::Business(
                    "Price (44) is required for a limit order (OrdType 40=2)".into(),
                ))
            }
            (OrderKind::Market, _) => 0,
        };
        let tif = match msg.get_char(tags::TIME_IN_FORCE)? {
            None | Some(b'1') => TimeInForce::Gtc,
            Some(b'3') => TimeInForce::Ioc,
            Some(b'4') => TimeInForce::Fok,
            Some(b'0') => {
                return Err(Refusal::Business(
                    "TimeInForce (59) 0 (Day) is not supported: the engine has no trading-day end; send 1 (GTC), 3 (IOC) or 4 (FOK)".into(),
                ))
            }
            Some(_) => return Err(FieldError::OutOfRange { tag: tags::TIME_IN_FORCE, why: "must be 1 (GTC), 3 (IOC) or 4 (FOK)" }.into()),
        };
        let post_only = match msg.get(tags::EXEC_INST) {
            None => false,
            Some(b"6") => true,
            Some(v) => {
                return Err(Refusal::Business(format!(
                    "ExecInst (18) {:?} is not supported: 6 (post-only) is the one value served",
                    String::from_utf8_lossy(v)
                )))
            }
        };
        let stp = match msg.get_u64(tags::SELF_TRADE_PREVENTION_INSTRUCTION)? {
            None => SelfTradePrevention::Allow,
            Some(v) => SelfTradePrevention::from_u8(v.min(255) as u8).ok_or(FieldError::OutOfRange {
                tag: tags::SELF_TRADE_PREVENTION_INSTRUCTION,
                why: "must be 0 (account default), 1 (cancel resting), 2 (cancel incoming) or 3 (cancel both)",
            })?,
        };
        let order = NewOrder {
            account: self.account,
            symbol: inst.id,
            client_order_id,
            side,
            kind,
            tif,
            post_only,
            stp,
            price,
            qty,
        };
        self.orders.pending(
            client_order_id,
            Pending {
                kind: PendingKind::New,
                symbol: inst.id,
                side,
                orig: 0,
            },
        );
        Ok(FixInbound::Order(Command::New(order)))
    }

    /// The order a cancel, replace or status request names: OrderID (37) when given,
    /// else OrigClOrdID (41) (for H: ClOrdID (11)).
    fn named_order(&mut self, msg: &Message<'_>, by_client: u32) -> Result<(u64, u64), Refusal> {
        let by_id = msg
            .get(tags::ORDER_ID)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        if let Some(id) = by_id.filter(|&id| id != 0 && id < BY_CLIENT_ID) {
            // By OrderID: the ClOrdID is only echoed (a number, or 0 when it is not one).
            let orig = self.cl_field(msg, by_client).ok().flatten();
            return Ok((id, orig.unwrap_or(0)));
        }
        let orig = self.cl_field(msg, by_client)?;
        match (by_id, orig) {
            // The engine knows an order by the ClOrdID it was entered with; after a
            // replace FIX names it by the replace's: the session's table translates.
            (_, Some(orig)) => match self.orders.order_of(orig) {
                Some(id) => Ok((id, orig)),
                None => Ok((OrderRef::ClientId(orig).raw(), orig)),
            },
            _ => Err(Refusal::Session(FieldError::Missing { tag: by_client })),
        }
    }

    fn cancel_or_replace(
        &mut self,
        msg: &Message<'_>,
        replace: bool,
    ) -> Result<FixInbound, Refusal> {
        let client_order_id = self.cl_required(msg, tags::CL_ORD_ID)?;
        let side = Self::side(msg)?;
        msg.require(tags::TRANSACT_TIME)?;
        let (order_id, orig) = self.named_order(msg, tags::ORIG_CL_ORD_ID)?;
        self.check_account(msg)?;
        let inst = self.instrument(msg)?;
        let symbol = inst.id;
        let kind = if replace {
            PendingKind::Replace
        } else {
            PendingKind::Cancel
        };
        let command = if replace {
            let price = Self::price(inst, msg, tags::PRICE)?.ok_or_else(|| {
                Refusal::Business("Price (44) is required: the replace's new limit price".into())
            })?;
            let total = Self::qty(msg, tags::ORDER_QTY)?.ok_or(FieldError::Missing {
                tag: tags::ORDER_QTY,
            })?;
            // FIX's OrderQty is the order's new total; the engine's is what stays open.
            let filled = self.orders.filled(order_id);
            if total <= filled {
                return Err(Refusal::Business(format!(
                    "OrderQty (38) {total} must be above the quantity already filled ({filled})"
                )));
            }
            Command::Replace(ReplaceOrder {
                account: self.account,
                symbol,
                client_order_id,
                order_id,
                price,
                qty: total - filled,
            })
        } else {
            Command::Cancel(CancelOrder {
                account: self.account,
                symbol,
                client_order_id,
                order_id,
            })
        };
        if replace {
            self.orders.alias(client_order_id, order_id);
        }
        self.orders.pending(
            client_order_id,
            Pending {
                kind,
                symbol,
                side,
                orig,
            },
        );
        Ok(FixInbound::Order(command))
    }

    fn status(&mut self, msg: &Message<'_>) -> Result<FixInbound, Refusal> {
        Self::side(msg)?;
        let (order_id, orig) = self.named_order(msg, tags::CL_ORD_ID)?;
        let inst = self.instrument(msg)?;
        let symbol = inst.id;
        let request = msg
            .get(tags::ORD_STATUS_REQ_ID)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let request_id = self.orders.status_request(request, orig);
        let by = OrderRef::from_raw(order_id);
        Ok(FixInbound::Query(Query::Status {
            request_id,
            symbol,
            by,
        }))
    }

    fn mass_cancel(&mut self, msg: &Message<'_>) -> Result<FixInbound, Refusal> {
        let client_order_id = self.cl_required(msg, tags::CL_ORD_ID)?;
        msg.require(tags::TRANSACT_TIME)?;
        let symbol = match msg.require_char(tags::MASS_CANCEL_REQUEST_TYPE)? {
            b'1' => Some(self.instrument(msg)?.id),
            b'7' => None,
            _ => {
                return Err(Refusal::Business(
                    "MassCancelRequestType (530) must be 1 (one security, with Symbol (55)) or 7 (all orders)".into(),
                ))
            }
        };
        let shards = if symbol.is_some() {
            1
        } else {
            self.shared.streams as u32
        };
        self.orders.mass(client_order_id, symbol, shards);
        Ok(FixInbound::Order(Command::MassCancel(
            MassCancel::requested(self.account, client_order_id, symbol),
        )))
    }

    /// Answer a request refused before the engine with its message type's reject.
    fn refuse(&mut self, msg: &Message<'_>, text: &str, wall: u64, out: &mut Vec<u8>) {
        let kind = msg.msg_type();
        let raw = |tag| msg.get(tag).unwrap_or(b"NONE");
        let cl = raw(tags::CL_ORD_ID).to_vec();
        let peer = self.peer.as_deref().unwrap_or("?");
        tracing::debug!(target: "veloz::fix", comp_id = peer, "FIX session {peer}: {} refused: {text}", String::from_utf8_lossy(kind));
        match kind {
            b"BB" => {
                self.send_app(out, wall, b"j", None, |w, _| {
                    w.str(tags::REF_MSG_TYPE, "BB");
                    w.uint(tags::BUSINESS_REJECT_REASON, 0);
                    w.str(tags::TEXT, text);
                });
            }
            b"F" | b"G" => {
                let orig = raw(tags::ORIG_CL_ORD_ID).to_vec();
                let order = raw(tags::ORDER_ID).to_vec();
                let to = if kind == b"F" { 1 } else { 2 };
                self.send_app(out, wall, b"9", None, |w, _| {
                    w.bytes(tags::ORDER_ID, &order);
                    w.bytes(tags::CL_ORD_ID, &cl);
                    w.bytes(tags::ORIG_CL_ORD_ID, &orig);
                    w.char(tags::ORD_STATUS, b'8');
                    w.uint(tags::CXL_REJ_RESPONSE_TO, to);
                    w.uint(tags::CXL_REJ_REASON, 99);
                    w.str(tags::TEXT, text);
                });
            }
            b"q" => {
                let request = msg
                    .get(tags::MASS_CANCEL_REQUEST_TYPE)
                    .unwrap_or(b"7")
                    .to_vec();
                self.send_app(out, wall, b"r", None, |w, _| {
                    w.bytes(tags::CL_ORD_ID, &cl);
                    w.str(tags::ORDER_ID, "NONE");
                    w.bytes(tags::MASS_CANCEL_REQUEST_TYPE, &request);
                    w.char(tags::MASS_CANCEL_RESPONSE, b'0');
                    w.uint(tags::MASS_CANCEL_REJECT_REASON, 99);
                    w.str(tags::TEXT, text);
                });
            }
            _ => {
                let symbol = msg.get(tags::SYMBOL).unwrap_or(b"NONE").to_vec();
                let side = msg.get(tags::SIDE).unwrap_or(b"1").to_vec();
                let order = raw(tags::ORDER_ID).to_vec();
                let status = kind == b"H";
                let exec_id = format!("R{}", self.next_out());
                self.send_app(out, wall, b"8", None, |w, _| {
                    w.bytes(tags::ORDER_ID, &order);
                    w.bytes(tags::CL_ORD_ID, &cl);
                    w.str(tags::EXEC_ID, &exec_id);
                    w.char(tags::EXEC_TYPE, if status { b'I' } else { b'8' });
                    w.char(tags::ORD_STATUS, b'8');
                    if !status {
                        w.uint(tags::ORD_REJ_REASON, 99);
                    }
                    w.bytes(tags::SYMBOL, &symbol);
                    w.bytes(tags::SIDE, &side);
                    w.uint(tags::LEAVES_QTY, 0);
                    w.uint(tags::CUM_QTY, 0);
                    w.uint(tags::AVG_PX, 0);
                    w.str(tags::TEXT, text);
                });
            }
        }
    }
}

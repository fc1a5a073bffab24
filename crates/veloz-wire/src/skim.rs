//! Fast reads of the few fields the load generator needs from a frame, in safe Rust.
//!
//! The full decoders ([`crate::decode_engine`], [`crate::decode_client`]) run the
//! FlatBuffers verifier over the whole message and convert every field, which costs more than
//! everything else the client does per request (figures in docs/BENCHMARKS.md, "Figures
//! behind design choices") and made the load generator the bottleneck of closed-loop runs. A client
//! that measures a server needs far less: an execution report's ids, type, side, prices and
//! quantities; a request's id (and a new order's fields) when the echo baseline sends it
//! back.
//!
//! So these readers walk the FlatBuffers layout directly (size prefix, root offset, vtable,
//! union, payload table; field slots from the generated `VT_*` constants, so they follow the
//! schema), with every read bounds-checked through `slice::get`. Invariants:
//! - no `unsafe`, no panic: any offset out of bounds, a union of another type or an enum
//!   value the schema does not define gives `None`;
//! - `None` is not an error: the caller then runs the full decoder, which either handles the
//!   message (LogonAck, Logout, Heartbeat, Trade) or names what is wrong with it;
//! - a frame the verifier would refuse for reasons that do not touch these fields (a bad
//!   string elsewhere, misalignment) may be read here anyway: the engine is trusted that far,
//!   and a test checks these readers agree with the full decoders on every report shape.

use crate::generated as fb;
use crate::{ExecType, Liquidity};
use veloz_core::{OrderId, Price, Qty, RejectReason, Side, SymbolId, TimeInForce};

/// What the load generator reads from an execution report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub exec_type: ExecType,
    pub order_id: OrderId,
    pub client_order_id: u64,
    pub symbol: Option<SymbolId>,
    pub side: Option<Side>,
    pub price: Price,
    pub last_price: Price,
    pub leaves_qty: Qty,
    pub liquidity: Liquidity,
    pub reject_reason: Option<RejectReason>,
}

/// What the load generator reads from one of its own requests echoed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echoed {
    pub client_order_id: u64,
    /// For a new order: (symbol, side, time in force, price, quantity).
    pub new_order: Option<(SymbolId, Side, TimeInForce, Price, Qty)>,
}

impl From<&crate::ExecutionReport<'_>> for Report {
    fn from(r: &crate::ExecutionReport<'_>) -> Report {
        Report {
            exec_type: r.exec_type,
            order_id: r.order_id,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            side: r.side,
            price: r.price,
            last_price: r.last_price,
            leaves_qty: r.leaves_qty,
            liquidity: r.liquidity,
            reject_reason: r.reject_reason,
        }
    }
}

impl From<&veloz_core::Command> for Echoed {
    fn from(cmd: &veloz_core::Command) -> Echoed {
        Echoed {
            client_order_id: cmd.client_order_id(),
            new_order: match cmd {
                veloz_core::Command::New(o) => Some((o.symbol, o.side, o.tif, o.price, o.qty)),
                _ => None,
            },
        }
    }
}

fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes(b, at).map(u64::from_le_bytes)
}

/// A table inside a frame: its position and its vtable's.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    at: usize,
    vtable: usize,
    vtable_len: usize,
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], at: usize) -> Option<Table<'a>> {
        let soffset = i32::from_le_bytes(bytes(buf, at)?);
        let vtable = (at as i64).checked_sub(i64::from(soffset))?;
        let vtable = usize::try_from(vtable).ok()?;
        let vtable_len = usize::from(u16_at(buf, vtable)?);
        Some(Table {
            buf,
            at,
            vtable,
            vtable_len,
        })
    }

    /// Position of field `slot` (a generated `VT_*` constant), `None` when absent.
    fn field(&self, slot: u16) -> Option<usize> {
        let slot = usize::from(slot);
        if slot + 2 > self.vtable_len {
            return None;
        }
        match u16_at(self.buf, self.vtable + slot)? {
            0 => None,
            off => self.at.checked_add(usize::from(off)),
        }
    }

    /// `Some(value)` when present, `Some(default)` when absent, `None` when unreadable.
    fn u8_or(&self, slot: u16, default: u8) -> Option<u8> {
        self.field(slot)
            .map_or(Some(default), |p| u8_at(self.buf, p))
    }
    fn u32_or(&self, slot: u16, default: u32) -> Option<u32> {
        self.field(slot)
            .map_or(Some(default), |p| u32_at(self.buf, p))
    }
    fn u64_or(&self, slot: u16, default: u64) -> Option<u64> {
        self.field(slot)
            .map_or(Some(default), |p| u64_at(self.buf, p))
    }
    fn i64_or(&self, slot: u16, default: i64) -> Option<i64> {
        self.u64_or(slot, default as u64).map(|v| v as i64)
    }
    /// An optional scalar: `Ok(None)` when absent.
    fn opt_u8(&self, slot: u16) -> Option<Option<u8>> {
        match self.field(slot) {
            None => Some(None),
            Some(p) => u8_at(self.buf, p).map(Some),
        }
    }
    fn opt_u16(&self, slot: u16) -> Option<Option<u16>> {
        match self.field(slot) {
            None => Some(None),
            Some(p) => u16_at(self.buf, p).map(Some),
        }
    }

    /// The table an offset field points to.
    fn table(&self, slot: u16) -> Option<Table<'a>> {
        let p = self.field(slot)?;
        let target = p.checked_add(usize::try_from(u32_at(self.buf, p)?).ok()?)?;
        Table::at(self.buf, target)
    }
}

/// The payload of a size-prefixed `Message` frame: its union type and table.
fn payload(frame: &[u8]) -> Option<(u8, Table<'_>)> {
    let declared = usize::try_from(u32_at(frame, 0)?).ok()?;
    if declared.checked_add(4)? != frame.len() {
        return None;
    }
    let root = 4usize.checked_add(usize::try_from(u32_at(frame, 4)?).ok()?)?;
    let message = Table::at(frame, root)?;
    let kind = message.u8_or(fb::Message::VT_PAYLOAD_TYPE, 0)?;
    Some((kind, message.table(fb::Message::VT_PAYLOAD)?))
}

fn side(v: u8) -> Option<Side> {
    match v {
        0 => Some(Side::Buy),
        1 => Some(Side::Sell),
        _ => None,
    }
}

/// The execution report in `frame`, or `None` (another message, or unreadable).
pub fn report(frame: &[u8]) -> Option<Report> {
    use fb::ExecutionReport as E;
    let (kind, t) = payload(frame)?;
    if kind != fb::Payload::ExecutionReport.0 {
        return None;
    }
    let has_symbol = t.u8_or(E::VT_HAS_SYMBOL, 1)? != 0;
    let symbol = t.u32_or(E::VT_SYMBOL_ID, 0)?;
    let side = match t.opt_u8(E::VT_SIDE)? {
        None => None,
        Some(v) => Some(self::side(v)?),
    };
    let reject_reason = match t.opt_u16(E::VT_REJECT_REASON)? {
        None => None,
        Some(code) => Some(RejectReason::from_code(code)?),
    };
    Some(Report {
        exec_type: ExecType::from_u8(t.u8_or(E::VT_EXEC_TYPE, 0)?)?,
        order_id: t.u64_or(E::VT_ORDER_ID, 0)?,
        client_order_id: t.u64_or(E::VT_CLIENT_ORDER_ID, 0)?,
        symbol: has_symbol.then_some(symbol),
        side,
        price: t.i64_or(E::VT_PRICE, 0)?,
        last_price: t.i64_or(E::VT_LAST_PRICE, 0)?,
        leaves_qty: t.u64_or(E::VT_LEAVES_QTY, 0)?,
        liquidity: Liquidity::from_u8(t.u8_or(E::VT_LIQUIDITY, 0)?)?,
        reject_reason,
    })
}

/// One of the load generator's own requests echoed back, or `None` (another message, or
/// unreadable).
pub fn echoed(frame: &[u8]) -> Option<Echoed> {
    let (kind, t) = payload(frame)?;
    if kind == fb::Payload::NewOrder.0 {
        use fb::NewOrder as N;
        let tif = match t.u8_or(N::VT_TIF, 0)? {
            0 => TimeInForce::Gtc,
            1 => TimeInForce::Ioc,
            2 => TimeInForce::Fok,
            _ => return None,
        };
        Some(Echoed {
            client_order_id: t.u64_or(N::VT_CLIENT_ORDER_ID, 0)?,
            new_order: Some((
                t.u32_or(N::VT_SYMBOL_ID, 0)?,
                side(t.opt_u8(N::VT_SIDE)??)?,
                tif,
                t.i64_or(N::VT_PRICE, 0)?,
                t.u64_or(N::VT_QTY, 0)?,
            )),
        })
    } else if kind == fb::Payload::Cancel.0 {
        Some(Echoed {
            client_order_id: t.u64_or(fb::Cancel::VT_CLIENT_ORDER_ID, 0)?,
            new_order: None,
        })
    } else if kind == fb::Payload::Replace.0 {
        Some(Echoed {
            client_order_id: t.u64_or(fb::Replace::VT_CLIENT_ORDER_ID, 0)?,
            new_order: None,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        decode_client, decode_engine, ClientMessage, EngineMessage, ExecutionReport, FrameEncoder,
    };
    use veloz_core::{
        CancelOrder, CancelReason, Command, NewOrder, OrderKind, ReplaceOrder, SelfTradePrevention,
    };

    /// The full decoder's reading, `None` when it refuses the combination of fields.
    fn full(frame: &[u8]) -> Option<ExecutionReport<'_>> {
        match decode_engine(frame).ok()? {
            EngineMessage::ExecutionReport(r) => Some(r),
            other => panic!("not a report: {other:?}"),
        }
    }

    #[test]
    fn reports_read_like_the_full_decoder() {
        let mut enc = FrameEncoder::new();
        let mut n = 0;
        let mut compared = std::collections::BTreeSet::new();
        for exec_type in ExecType::ALL {
            for (symbol, side) in [(Some(7), Some(Side::Sell)), (None, None), (Some(0), None)] {
                for reason in [None, Some(RejectReason::UnknownOrder)] {
                    let mut r = ExecutionReport::empty(exec_type);
                    r.order_id = 0xDEAD_BEEF_0000 + n;
                    r.client_order_id = (3 << 52) | n;
                    r.symbol = symbol;
                    r.side = side;
                    r.price = 1_900_100 + n as i64;
                    r.last_price = if n % 2 == 0 { 0 } else { 1_900_000 };
                    r.leaves_qty = n % 3;
                    r.liquidity = [Liquidity::NotApplicable, Liquidity::Maker, Liquidity::Taker]
                        [n as usize % 3];
                    r.reject_reason = reason;
                    r.cancel_reason = (exec_type == ExecType::Cancelled)
                        .then_some(CancelReason::ImmediateOrCancel);
                    r.reason_text = if reason.is_some() {
                        "unknown_order"
                    } else {
                        ""
                    };
                    r.seq = n;
                    n += 1;
                    let frame = enc.execution_report(&r).to_vec();
                    let got = report(&frame).expect("readable");
                    let Some(want) = full(&frame) else {
                        continue;
                    };
                    compared.insert(exec_type as u8);
                    assert_eq!(
                        (got.exec_type, got.order_id, got.client_order_id, got.symbol),
                        (
                            want.exec_type,
                            want.order_id,
                            want.client_order_id,
                            want.symbol
                        )
                    );
                    assert_eq!(
                        (got.side, got.price, got.last_price, got.leaves_qty),
                        (want.side, want.price, want.last_price, want.leaves_qty)
                    );
                    assert_eq!(
                        (got.liquidity, got.reject_reason),
                        (want.liquidity, want.reject_reason)
                    );
                }
            }
        }
        assert_eq!(
            compared.len(),
            ExecType::ALL.len(),
            "every exec type compared"
        );
    }

    #[test]
    fn echoed_requests_read_like_the_full_decoder() {
        let mut enc = FrameEncoder::new();
        let cmds = [
            Command::New(NewOrder {
                account: 0,
                symbol: 4,
                client_order_id: 1 << 45,
                side: Side::Sell,
                kind: OrderKind::Limit,
                tif: TimeInForce::Ioc,
                post_only: false,
                stp: SelfTradePrevention::Allow,
                price: 1_200_000,
                qty: 17,
            }),
            Command::Cancel(CancelOrder {
                account: 0,
                symbol: 1,
                client_order_id: 9,
                order_id: 5,
            }),
            Command::Replace(ReplaceOrder {
                account: 0,
                symbol: 2,
                client_order_id: 0,
                order_id: 6,
                price: 100,
                qty: 1,
            }),
        ];
        for cmd in cmds {
            let frame = enc.command(&cmd).to_vec();
            let ClientMessage::Order(want) = decode_client(&frame, 0).unwrap() else {
                panic!("an order");
            };
            let got = echoed(&frame).expect("readable");
            assert_eq!(got.client_order_id, want.client_order_id());
            match want {
                Command::New(o) => assert_eq!(
                    got.new_order,
                    Some((o.symbol, o.side, o.tif, o.price, o.qty))
                ),
                _ => assert_eq!(got.new_order, None),
            }
        }
    }

    #[test]
    fn garbage_and_other_messages_give_none_never_a_panic() {
        let mut enc = FrameEncoder::new();
        let heartbeat = enc.heartbeat(1).to_vec();
        assert_eq!(report(&heartbeat), None);
        assert_eq!(echoed(&heartbeat), None);
        let mut r = ExecutionReport::empty(ExecType::Filled);
        r.order_id = 42;
        let frame = enc.execution_report(&r).to_vec();
        // Every truncation and every single-byte corruption: no panic.
        for cut in 0..frame.len() {
            let _ = report(&frame[..cut]);
            let _ = echoed(&frame[..cut]);
        }
        for i in 0..frame.len() {
            for v in [0u8, 0x7F, 0xFF] {
                let mut bad = frame.clone();
                bad[i] = v;
                let _ = report(&bad);
                let _ = echoed(&bad);
            }
        }
    }
}

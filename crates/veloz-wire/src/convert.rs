//! Conversions between the matching core's types and the wire's: enum codes both ways, and
//! core [`Event`]s to the [`ExecutionReport`]s and [`TradePrint`]s the sessions send.
//!
//! Invariants:
//! - the core's `#[repr]` enums and the schema's enums share their numbers, so a code
//!   converts by value; a value the core does not define is an error naming the field, never
//!   a guess (tests pin every value and name against the generated code);
//! - every event gives at least one report; a trade gives exactly two, the maker's first,
//!   then the taker's, each addressed to its own account;
//! - sequence number and timestamp are passed in, never read here.

use veloz_core::{
    AccountId, CancelReason, ClientOrderId, Event, Fill, OrderKind, Price, Qty, RejectReason,
    SelfTradePrevention, Seq, Side, SymbolId, TimeInForce, Timestamp, TradeId,
};

use super::error::WireError;
use super::generated as fb;
use super::message::{ExecType, ExecutionReport, Liquidity, LogoutReason, TradePrint};

/// The core's [`CancelReason`] for a wire code (the core type has no decoder of its own).
pub fn cancel_reason_from_code(code: u16) -> Option<CancelReason> {
    Some(match code {
        1 => CancelReason::Requested,
        2 => CancelReason::ImmediateOrCancel,
        3 => CancelReason::FillOrKill,
        4 => CancelReason::SelfTrade,
        5 => CancelReason::MassCancel,
        6 => CancelReason::ProtectionBand,
        7 => CancelReason::NoLiquidity,
        8 => CancelReason::CancelOnDisconnect,
        9 => CancelReason::AccountDisabled,
        _ => return None,
    })
}

// Core -> generated: the numbers are the same by construction.
pub(crate) fn fb_side(s: Side) -> fb::Side {
    fb::Side(s as u8)
}
pub(crate) fn fb_kind(k: OrderKind) -> fb::OrderKind {
    fb::OrderKind(k as u8)
}
pub(crate) fn fb_tif(t: TimeInForce) -> fb::TimeInForce {
    fb::TimeInForce(t as u8)
}
pub(crate) fn fb_stp(s: SelfTradePrevention) -> fb::SelfTradePrevention {
    fb::SelfTradePrevention(s as u8)
}
pub(crate) fn fb_reject(r: RejectReason) -> fb::RejectReason {
    fb::RejectReason(r.code())
}
pub(crate) fn fb_cancel(c: CancelReason) -> fb::CancelReason {
    fb::CancelReason(c.code())
}
pub(crate) fn fb_exec_type(e: ExecType) -> fb::ExecType {
    fb::ExecType(e as u8)
}
pub(crate) fn fb_liquidity(l: Liquidity) -> fb::Liquidity {
    fb::Liquidity(l as u8)
}
pub(crate) fn fb_logout(r: LogoutReason) -> fb::LogoutReason {
    fb::LogoutReason(r.code())
}

/// Where a field sits, for error messages: message name, field name, and the request's
/// client order id when known.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    pub message: &'static str,
    pub field: &'static str,
    pub client_order_id: Option<ClientOrderId>,
}

impl At {
    pub(crate) fn new(message: &'static str, field: &'static str) -> At {
        At {
            message,
            field,
            client_order_id: None,
        }
    }

    pub(crate) fn coid(mut self, id: ClientOrderId) -> At {
        self.client_order_id = Some(id);
        self
    }

    pub(crate) fn invalid_enum(self, ty: &'static str, value: u64) -> WireError {
        WireError::InvalidEnum {
            message: self.message,
            field: self.field,
            ty,
            value,
            client_order_id: self.client_order_id,
        }
    }

    pub(crate) fn missing(self) -> WireError {
        WireError::MissingField {
            message: self.message,
            field: self.field,
            client_order_id: self.client_order_id,
        }
    }

    pub(crate) fn invalid(self, value: i128, why: &'static str) -> WireError {
        WireError::InvalidValue {
            message: self.message,
            field: self.field,
            value,
            why,
            client_order_id: self.client_order_id,
        }
    }
}

// Generated -> core: refuse what the core does not define.
pub(crate) fn side(v: fb::Side, at: At) -> Result<Side, WireError> {
    Side::from_u8(v.0).ok_or_else(|| at.invalid_enum("Side", v.0.into()))
}
pub(crate) fn kind(v: fb::OrderKind, at: At) -> Result<OrderKind, WireError> {
    OrderKind::from_u8(v.0).ok_or_else(|| at.invalid_enum("OrderKind", v.0.into()))
}
pub(crate) fn tif(v: fb::TimeInForce, at: At) -> Result<TimeInForce, WireError> {
    TimeInForce::from_u8(v.0).ok_or_else(|| at.invalid_enum("TimeInForce", v.0.into()))
}
pub(crate) fn stp(v: fb::SelfTradePrevention, at: At) -> Result<SelfTradePrevention, WireError> {
    SelfTradePrevention::from_u8(v.0)
        .ok_or_else(|| at.invalid_enum("SelfTradePrevention", v.0.into()))
}
pub(crate) fn reject(v: fb::RejectReason, at: At) -> Result<RejectReason, WireError> {
    RejectReason::from_code(v.0).ok_or_else(|| at.invalid_enum("RejectReason", v.0.into()))
}
pub(crate) fn cancel(v: fb::CancelReason, at: At) -> Result<CancelReason, WireError> {
    cancel_reason_from_code(v.0).ok_or_else(|| at.invalid_enum("CancelReason", v.0.into()))
}
pub(crate) fn exec_type(v: fb::ExecType, at: At) -> Result<ExecType, WireError> {
    ExecType::from_u8(v.0).ok_or_else(|| at.invalid_enum("ExecType", v.0.into()))
}
pub(crate) fn liquidity(v: fb::Liquidity, at: At) -> Result<Liquidity, WireError> {
    Liquidity::from_u8(v.0).ok_or_else(|| at.invalid_enum("Liquidity", v.0.into()))
}
pub(crate) fn logout(v: fb::LogoutReason, at: At) -> Result<LogoutReason, WireError> {
    LogoutReason::from_code(v.0).ok_or_else(|| at.invalid_enum("LogoutReason", v.0.into()))
}

/// The execution reports of one event, each with the account it is for.
///
/// One report per event, two for a trade (maker, then taker). Nothing is allocated.
pub fn execution_reports(event: &Event, seq: Seq, timestamp_ns: Timestamp) -> ExecutionReports {
    let base = |exec_type: ExecType| ExecutionReport {
        seq,
        timestamp_ns,
        ..ExecutionReport::empty(exec_type)
    };
    let one = |account: AccountId, report: ExecutionReport<'static>| ExecutionReports {
        items: [Some((account, report)), None],
        next: 0,
    };
    match *event {
        // The operator's, in no account's stream: no report.
        Event::Admin { .. } => ExecutionReports {
            items: [None, None],
            next: 0,
        },
        Event::Accepted {
            order_id,
            account,
            client_order_id,
            symbol,
            side,
            price,
            qty,
        } => one(
            account,
            ExecutionReport {
                order_id,
                client_order_id,
                symbol: Some(symbol),
                side: Some(side),
                price,
                qty,
                leaves_qty: qty,
                ..base(ExecType::Accepted)
            },
        ),
        // Maker's, then taker's: built by the function a stream uses for one of them.
        Event::Trade { .. } => ExecutionReports {
            items: [
                execution_report_at(event, 0, seq, timestamp_ns),
                execution_report_at(event, 1, seq, timestamp_ns),
            ],
            next: 0,
        },
        Event::Cancelled {
            order_id,
            account,
            client_order_id,
            symbol,
            side,
            qty,
            reason,
        } => one(
            account,
            ExecutionReport {
                order_id,
                client_order_id,
                symbol: Some(symbol),
                side: Some(side),
                qty,
                cancel_reason: Some(reason),
                reason_text: reason.name(),
                ..base(ExecType::Cancelled)
            },
        ),
        Event::Replaced {
            order_id,
            account,
            client_order_id,
            symbol,
            side,
            price,
            qty,
            kept_priority,
        } => one(
            account,
            ExecutionReport {
                order_id,
                client_order_id,
                symbol: Some(symbol),
                side: Some(side),
                price,
                qty,
                leaves_qty: qty,
                kept_priority,
                ..base(ExecType::Replaced)
            },
        ),
        Event::MassCancelled {
            account,
            client_order_id,
            symbol,
            count,
        } => one(
            account,
            ExecutionReport {
                client_order_id,
                symbol,
                mass_cancel_count: count,
                ..base(ExecType::MassCancelled)
            },
        ),
        Event::Rejected {
            account,
            client_order_id,
            symbol,
            order_id,
            reason,
        } => one(
            account,
            ExecutionReport {
                order_id,
                client_order_id,
                symbol: Some(symbol),
                reject_reason: Some(reason),
                reason_text: reason.name(),
                ..base(ExecType::Rejected)
            },
        ),
    }
}

/// One side's report of a trade.
#[allow(clippy::too_many_arguments)]
fn fill_report(
    base: impl Fn(ExecType) -> ExecutionReport<'static>,
    f: Fill,
    side: Side,
    liquidity: Liquidity,
    symbol: SymbolId,
    trade_id: TradeId,
    price: Price,
    qty: Qty,
) -> (AccountId, ExecutionReport<'static>) {
    let exec_type = if f.leaves_qty == 0 {
        ExecType::Filled
    } else {
        ExecType::PartiallyFilled
    };
    let report = ExecutionReport {
        order_id: f.order_id,
        client_order_id: f.client_order_id,
        symbol: Some(symbol),
        side: Some(side),
        last_qty: qty,
        last_price: price,
        leaves_qty: f.leaves_qty,
        trade_id,
        liquidity,
        ..base(exec_type)
    };
    (f.account, report)
}

/// The `index`-th of [`execution_reports`] (0: the one report, or a trade's maker's; 1: a
/// trade's taker's), built alone: what a stream delivers, one report at a time.
pub(crate) fn execution_report_at(
    event: &Event,
    index: usize,
    seq: Seq,
    timestamp_ns: Timestamp,
) -> Option<(AccountId, ExecutionReport<'static>)> {
    match *event {
        Event::Trade {
            trade_id,
            symbol,
            price,
            qty,
            aggressor,
            maker,
            taker,
        } => {
            let (f, side, liquidity) = match index {
                0 => (maker, aggressor.opposite(), Liquidity::Maker),
                1 => (taker, aggressor, Liquidity::Taker),
                _ => return None,
            };
            let base = |exec_type: ExecType| ExecutionReport {
                seq,
                timestamp_ns,
                ..ExecutionReport::empty(exec_type)
            };
            Some(fill_report(
                base, f, side, liquidity, symbol, trade_id, price, qty,
            ))
        }
        _ if index == 0 => execution_reports(event, seq, timestamp_ns).next(),
        _ => None,
    }
}

/// The public print of a trade event (`None` for other events).
pub fn trade_print(event: &Event, timestamp_ns: Timestamp) -> Option<TradePrint> {
    match *event {
        Event::Trade {
            trade_id,
            symbol,
            price,
            qty,
            aggressor,
            ..
        } => Some(TradePrint {
            symbol,
            trade_id,
            price,
            qty,
            aggressor,
            timestamp_ns,
        }),
        _ => None,
    }
}

/// Iterator over the reports of one event: `(recipient account, report)`.
#[derive(Clone, Debug)]
pub struct ExecutionReports {
    items: [Option<(AccountId, ExecutionReport<'static>)>; 2],
    next: usize,
}

impl Iterator for ExecutionReports {
    type Item = (AccountId, ExecutionReport<'static>);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(slot) = self.items.get_mut(self.next) {
            self.next += 1;
            if let Some(item) = slot.take() {
                return Some(item);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.items[self.next.min(2)..]
            .iter()
            .filter(|i| i.is_some())
            .count();
        (n, Some(n))
    }
}

impl ExactSizeIterator for ExecutionReports {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_and_schema_enums_share_numbers_and_names() {
        for v in 0..=u8::MAX {
            assert_eq!(
                Side::from_u8(v).map(|x| format!("{x:?}")),
                fb::Side(v).variant_name().map(String::from),
                "Side {v}"
            );
            assert_eq!(
                OrderKind::from_u8(v).map(|x| format!("{x:?}")),
                fb::OrderKind(v).variant_name().map(String::from),
                "OrderKind {v}"
            );
            assert_eq!(
                TimeInForce::from_u8(v).map(|x| format!("{x:?}")),
                fb::TimeInForce(v).variant_name().map(String::from),
                "TimeInForce {v}"
            );
            assert_eq!(
                SelfTradePrevention::from_u8(v).map(|x| format!("{x:?}")),
                fb::SelfTradePrevention(v).variant_name().map(String::from),
                "SelfTradePrevention {v}"
            );
            assert_eq!(
                ExecType::from_u8(v).map(|x| format!("{x:?}")),
                fb::ExecType(v).variant_name().map(String::from),
                "ExecType {v}"
            );
            assert_eq!(
                Liquidity::from_u8(v).map(|x| format!("{x:?}")),
                fb::Liquidity(v).variant_name().map(String::from),
                "Liquidity {v}"
            );
        }
        for code in 0..=u16::MAX {
            assert_eq!(
                RejectReason::from_code(code).map(|x| format!("{x:?}")),
                fb::RejectReason(code).variant_name().map(String::from),
                "RejectReason {code}"
            );
            assert_eq!(
                cancel_reason_from_code(code).map(|x| format!("{x:?}")),
                fb::CancelReason(code).variant_name().map(String::from),
                "CancelReason {code}"
            );
            assert_eq!(
                LogoutReason::from_code(code).map(|x| format!("{x:?}")),
                fb::LogoutReason(code).variant_name().map(String::from),
                "LogoutReason {code}"
            );
        }
        for c in [
            CancelReason::Requested,
            CancelReason::ImmediateOrCancel,
            CancelReason::FillOrKill,
            CancelReason::SelfTrade,
            CancelReason::MassCancel,
            CancelReason::ProtectionBand,
            CancelReason::NoLiquidity,
        ] {
            assert_eq!(cancel_reason_from_code(c.code()), Some(c));
        }
        assert_eq!(fb::RejectReason::ENUM_VALUES.len(), RejectReason::ALL.len());
    }

    #[test]
    fn every_event_gives_reports_to_the_right_accounts() {
        let trade = Event::Trade {
            trade_id: 5,
            symbol: 1,
            price: 100,
            qty: 3,
            aggressor: Side::Sell,
            maker: Fill {
                order_id: 10,
                account: 7,
                client_order_id: 70,
                leaves_qty: 0,
            },
            taker: Fill {
                order_id: 11,
                account: 8,
                client_order_id: 80,
                leaves_qty: 2,
            },
        };
        let reports = execution_reports(&trade, 9, 99);
        assert_eq!(reports.len(), 2);
        let v: Vec<_> = reports.collect();
        assert_eq!(v[0].0, 7);
        assert_eq!(v[0].1.exec_type, ExecType::Filled);
        assert_eq!(v[0].1.side, Some(Side::Buy));
        assert_eq!(v[0].1.liquidity, Liquidity::Maker);
        assert_eq!(v[1].0, 8);
        assert_eq!(v[1].1.exec_type, ExecType::PartiallyFilled);
        assert_eq!(v[1].1.side, Some(Side::Sell));
        assert_eq!(v[1].1.leaves_qty, 2);
        assert!(v.iter().all(|(_, r)| r.seq == 9 && r.timestamp_ns == 99));
        assert_eq!(
            trade_print(&trade, 99).map(|t| t.aggressor),
            Some(Side::Sell)
        );
        let rejected = Event::Rejected {
            account: 3,
            client_order_id: 4,
            symbol: 1,
            order_id: 0,
            reason: RejectReason::PriceOffTick,
        };
        let v: Vec<_> = execution_reports(&rejected, 1, 2).collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1.reason_text, "price_off_tick");
        assert_eq!(trade_print(&rejected, 2), None);
    }
}

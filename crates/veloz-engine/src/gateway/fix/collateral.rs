//! Balances over FIX (docs/fix.md, "Balances"): a CollateralInquiry (BB) of the session's
//! account is the binary protocol's balance request (summed over the shards by the
//! gateway, `gateway::balances`), answered with one CollateralReport (BA) per configured
//! asset: Currency (15) the asset's name, AvailableBalance (7930) and HeldBalance (7931) in
//! the asset's units (exact decimals of its `scale`), TotNumReports (911) and
//! LastRptRequested (912) on each so the client knows when it has them all.
//!
//! Invariants: an inquiry names no account but the session's (Account (1), when given,
//! must be it); every inquiry gets exactly one answer (its reports, or one
//! BusinessMessageReject (j) when refused or when the engine runs without money), so the
//! table of inquiries in flight empties itself; its size is bounded by the gateway's limit
//! of balance requests in flight per session.

use rustc_hash::FxHashMap;
use veloz_fix::{tags, Message};
use veloz_wire::{BalanceReport, Query};

use super::{FixInbound, FixSession};

/// CollStatus (910) of every report: 3, assigned (the funds are at the venue).
const ASSIGNED: u64 = 3;
/// BusinessRejectReason (380): 0 other, 3 unsupported message type.
const OTHER: u64 = 0;
const UNSUPPORTED: u64 = 3;

/// CollateralInquiries in flight: the balance request id each became -> its CollInquiryID.
#[derive(Debug, Default)]
pub(crate) struct Inquiries {
    next: u64,
    by_request: FxHashMap<u64, String>,
}

/// `units` smallest units of an asset with `scale` decimals, as an exact decimal
/// ("27052.20" for 2705220 at scale 2).
fn amount(units: u64, scale: u8) -> String {
    let digits = units.to_string();
    let scale = scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = padded.split_at(padded.len() - scale);
    format!("{whole}.{frac}")
}

impl FixSession {
    /// A CollateralInquiry (BB): the balance query it stands for, or why it is refused
    /// (a snapshot only: SubscriptionRequestType (263), when given, must be 0).
    pub(super) fn collateral_inquiry(
        &mut self,
        msg: &Message<'_>,
    ) -> Result<FixInbound, super::app::Refusal> {
        self.check_account(msg)?;
        let id = msg.require(tags::COLL_INQUIRY_ID)?;
        if let Some(v) = msg
            .get(tags::SUBSCRIPTION_REQUEST_TYPE)
            .filter(|v| *v != b"0")
        {
            return Err(super::app::Refusal::Business(format!(
                "SubscriptionRequestType (263) {}: only 0 (snapshot) is served",
                String::from_utf8_lossy(v)
            )));
        }
        let inquiries = &mut self.inquiries;
        inquiries.next += 1;
        let request_id = inquiries.next;
        inquiries
            .by_request
            .insert(request_id, String::from_utf8_lossy(id).into_owned());
        Ok(FixInbound::Query(Query::Balances {
            request_id,
            by_shard: false,
        }))
    }

    /// The answer to an inquiry: one CollateralReport per asset, or a
    /// BusinessMessageReject naming why there is none.
    pub fn balance_answer(
        &mut self,
        b: &BalanceReport<'_>,
        now: u64,
        wall: u64,
        out: &mut Vec<u8>,
    ) {
        self.now = now;
        let inquiry = self
            .inquiries
            .by_request
            .remove(&b.request_id)
            .unwrap_or_default();
        let refused = match b.reject_reason {
            Some(r) => Some((
                OTHER,
                format!(
                    "CollateralInquiry {inquiry} refused: {} ({})",
                    r.name(),
                    r.code()
                ),
            )),
            None if b.balances.is_empty() => Some((
                UNSUPPORTED,
                format!("CollateralInquiry {inquiry}: no balances, the engine runs without money"),
            )),
            None => None,
        };
        if let Some((why, text)) = refused {
            self.send_app(out, wall, b"j", None, |w, _| {
                w.str(tags::REF_MSG_TYPE, "BB");
                w.uint(tags::BUSINESS_REJECT_REASON, why);
                w.str(tags::TEXT, &text);
            });
            return;
        }
        let total = b.balances.len() as u64;
        for (i, a) in b.balances.iter().enumerate() {
            let report_id = format!("C{}", self.next_out());
            let last = i + 1 == b.balances.len();
            self.send_app(out, wall, b"BA", None, |w, _| {
                w.str(tags::COLL_RPT_ID, &report_id);
                w.str(tags::COLL_INQUIRY_ID, &inquiry);
                w.uint(tags::COLL_STATUS, ASSIGNED);
                w.uint(tags::TOT_NUM_REPORTS, total);
                w.bool(tags::LAST_RPT_REQUESTED, last);
                w.uint(tags::ACCOUNT, u64::from(b.account));
                w.str(tags::CURRENCY, a.name);
                w.str(tags::AVAILABLE_BALANCE, &amount(a.available, a.scale));
                w.str(tags::HELD_BALANCE, &amount(a.held, a.scale));
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_are_exact_decimals_of_the_scale() {
        assert_eq!(super::amount(2_705_220, 2), "27052.20");
        assert_eq!(super::amount(5, 8), "0.00000005");
        assert_eq!(super::amount(0, 2), "0.00");
        assert_eq!(super::amount(42, 0), "42");
        assert_eq!(super::amount(u64::MAX, 18), "18.446744073709551615");
    }
}

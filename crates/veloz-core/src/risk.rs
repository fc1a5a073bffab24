//! Money rules of an engine: assets, how an instrument's prices and quantities turn into
//! asset amounts, fees, and pre-trade limits per account. The balances these rules act on
//! live in the engine (`engine::risk`) and in its naive twin (`reference::risk`).
//!
//! Spot semantics (docs/protocol.md, "Balances and risk"):
//! - An instrument of a funded engine trades a **base** asset against a **quote** asset. One
//!   quantity unit is [`Funding::base_unit`] of the base asset's smallest units; one price unit
//!   times one quantity unit is [`Funding::quote_unit`] of the quote asset's smallest units.
//!   So `qty` costs `qty * base_unit` base, and `qty` at `price` is worth
//!   `price * qty * quote_unit` quote (the *notional*).
//! - **Fees** are paid in the quote asset to the fee account, in basis points of the notional
//!   of each fill, rounded up: the maker pays [`Funding::maker_fee_bps`], the taker
//!   [`Funding::taker_fee_bps`] (both at most 10,000, so a seller's fee never exceeds its
//!   proceeds).
//! - **Holds**: a sell holds `qty * base_unit` base; a buy at limit `L` holds
//!   `qty * unit(L)` quote, where `unit(L) = L * quote_unit + ceil(L * quote_unit * f / 10^4)`
//!   and `f` is the larger of the two fee rates. A fill of `x` at `P <= L` releases
//!   `x * unit(L)` and charges `P * x * quote_unit + ceil(P * x * quote_unit * fee / 10^4)`,
//!   which is never more (`ceil(x * y) <= x * ceil(y)`), so a hold always covers what its
//!   order can cost, and the hold of an account always equals `leaves * unit` summed over
//!   its open orders.
//!
//! Every amount is a `u64` count of an asset's smallest units; products are taken in `u128`
//! and an order whose hold or notional does not fit a `u64` is refused
//! (`RejectReason::AmountTooLarge`). No floating point.

use super::types::{AccountId, Price, Qty, Side, SymbolId};

/// Asset id from the configuration.
pub type AssetId = u32;

/// Basis points in one whole.
const BPS: u128 = 10_000;

/// An asset: a currency or a coin. Amounts are integer counts of `10^-scale` of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub id: AssetId,
    pub name: String,
    /// Decimal places of the smallest unit (informational for the core).
    pub scale: u8,
}

/// How an instrument's trades move money: its two assets, their units and its fees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Funding {
    pub base: AssetId,
    pub quote: AssetId,
    /// Smallest base units per quantity unit (> 0).
    pub base_unit: u64,
    /// Smallest quote units per price unit per quantity unit (> 0).
    pub quote_unit: u64,
    /// Fee of the resting side of a fill, basis points of its notional (<= 10,000).
    pub maker_fee_bps: u32,
    /// Fee of the incoming side of a fill, basis points of its notional (<= 10,000).
    pub taker_fee_bps: u32,
}

impl Funding {
    /// `price * qty * quote_unit`, or `None` when it does not fit a `u64` (or the price is
    /// not positive).
    pub fn notional(&self, price: Price, qty: Qty) -> Option<u64> {
        if price <= 0 {
            return None;
        }
        (price as u128)
            .checked_mul(qty as u128)?
            .checked_mul(self.quote_unit as u128)
            .and_then(fit)
    }

    /// `qty * base_unit`, or `None` when it does not fit a `u64`.
    pub fn base_amount(&self, qty: Qty) -> Option<u64> {
        qty.checked_mul(self.base_unit)
    }

    /// The fee on `notional` at `bps`, rounded up.
    pub fn fee(notional: u64, bps: u32) -> u64 {
        (notional as u128 * bps as u128).div_ceil(BPS) as u64
    }

    /// What one quantity unit of a buy at `limit` holds: its notional plus the larger fee,
    /// rounded up (`None` when it does not fit).
    pub fn buy_unit(&self, limit: Price) -> Option<u64> {
        let per = self.notional(limit, 1)? as u128;
        let fee = self.maker_fee_bps.max(self.taker_fee_bps) as u128;
        fit(per + (per * fee).div_ceil(BPS))
    }

    /// The asset a `side` order holds and the amount for `qty` at `limit`: quote for a buy,
    /// base for a sell (`None` when it does not fit).
    pub fn hold(&self, side: Side, limit: Price, qty: Qty) -> Option<(AssetId, u64)> {
        match side {
            Side::Buy => Some((self.quote, self.buy_unit(limit)?.checked_mul(qty)?)),
            Side::Sell => Some((self.base, self.base_amount(qty)?)),
        }
    }
}

/// A `u128` as a `u64`, if it fits.
fn fit(v: u128) -> Option<u64> {
    u64::try_from(v).ok()
}

/// Pre-trade limits of one account; 0 means no limit. They are checked on the order's path,
/// in this order, before its funds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Largest quantity of one order (or of a replace's new quantity).
    pub max_order_qty: Qty,
    /// Largest notional of one order (or of a replace), in the quote asset's smallest units
    /// (`price * qty` on an instrument without funding). A market order's notional is taken
    /// at its protection price.
    pub max_order_notional: u64,
    /// Most open orders at once in this engine (an order counts from its acceptance until
    /// it is filled or cancelled).
    pub max_open_orders: u32,
    /// Most notional of new orders accepted within one second of the sequencer's clock
    /// (the whole second `ts / 10^9`; replay sees the same timestamps).
    pub max_notional_per_sec: u64,
}

impl Limits {
    /// No limit at all.
    pub fn is_none(&self) -> bool {
        *self == Limits::default()
    }
}

/// The money rules of one engine. An engine built without them ([`crate::Engine::new`])
/// accepts any order within its instrument rules and keeps no balances.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Risk {
    /// Every asset an instrument names, ids distinct.
    pub assets: Vec<Asset>,
    /// The account fees are paid to.
    pub fee_account: AccountId,
    /// Funding of instruments: each names two distinct configured assets. An instrument
    /// without funding moves no money (its orders still meet the limits).
    pub funding: Vec<(SymbolId, Funding)>,
    /// Limits of every account without its own entry in `account_limits`.
    pub limits: Limits,
    /// Accounts with their own limits.
    pub account_limits: Vec<(AccountId, Limits)>,
}

impl Risk {
    /// The first inconsistency, named: duplicate ids, a funding that names an unknown asset
    /// or the same asset twice, a zero unit, a fee above 10,000 bps.
    pub fn check(&self) -> Result<(), String> {
        for (i, a) in self.assets.iter().enumerate() {
            if self.assets[..i].iter().any(|b| b.id == a.id) {
                return Err(format!("asset id {} appears twice", a.id));
            }
        }
        let known = |id: AssetId| self.assets.iter().any(|a| a.id == id);
        for (i, (symbol, f)) in self.funding.iter().enumerate() {
            if self.funding[..i].iter().any(|(s, _)| s == symbol) {
                return Err(format!("instrument {symbol} is funded twice"));
            }
            for (what, id) in [("base", f.base), ("quote", f.quote)] {
                if !known(id) {
                    return Err(format!(
                        "instrument {symbol}: {what} asset {id} is not configured"
                    ));
                }
            }
            if f.base == f.quote {
                return Err(format!(
                    "instrument {symbol}: base and quote are the same asset {}",
                    f.base
                ));
            }
            if f.base_unit == 0 || f.quote_unit == 0 {
                return Err(format!(
                    "instrument {symbol}: base_unit {} and quote_unit {} must be > 0",
                    f.base_unit, f.quote_unit
                ));
            }
            for (what, bps) in [("maker", f.maker_fee_bps), ("taker", f.taker_fee_bps)] {
                if bps as u128 > BPS {
                    return Err(format!(
                        "instrument {symbol}: {what} fee {bps} bps is above 10000"
                    ));
                }
            }
        }
        for (i, (account, _)) in self.account_limits.iter().enumerate() {
            if self.account_limits[..i].iter().any(|(a, _)| a == account) {
                return Err(format!("account {account} has two limit entries"));
            }
        }
        Ok(())
    }

    /// The same rules with every list sorted by id (as a snapshot stores them), so that
    /// two spellings of one configuration compare equal.
    pub fn normalized(&self) -> Risk {
        let mut r = self.clone();
        r.assets.sort_by_key(|a| a.id);
        r.funding.sort_by_key(|(s, _)| *s);
        r.account_limits.sort_by_key(|(a, _)| *a);
        r
    }

    /// The limits of `account`.
    pub fn limits_of(&self, account: AccountId) -> Limits {
        self.account_limits
            .iter()
            .find(|(a, _)| *a == account)
            .map_or(self.limits, |(_, l)| *l)
    }

    /// The funding of `symbol`, if any.
    pub fn funding_of(&self, symbol: SymbolId) -> Option<Funding> {
        self.funding
            .iter()
            .find(|(s, _)| *s == symbol)
            .map(|(_, f)| *f)
    }
}

/// One account's amount of one asset: what it may use, and what its open orders hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub available: u64,
    pub held: u64,
}

impl Balance {
    /// Available plus held.
    pub fn total(&self) -> u128 {
        self.available as u128 + self.held as u128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Funding {
        Funding {
            base: 1,
            quote: 2,
            base_unit: 100,
            quote_unit: 3,
            maker_fee_bps: 10,
            taker_fee_bps: 25,
        }
    }

    #[test]
    fn amounts_and_fees_round_up_and_refuse_overflow() {
        let f = f();
        assert_eq!(f.notional(1_000, 7), Some(21_000));
        assert_eq!(f.base_amount(7), Some(700));
        // 21_000 * 25 / 10_000 = 52.5 -> 53.
        assert_eq!(Funding::fee(21_000, 25), 53);
        assert_eq!(Funding::fee(21_000, 0), 0);
        // unit(1_000) = 3_000 + ceil(3_000 * 25 / 10_000) = 3_000 + 8.
        assert_eq!(f.buy_unit(1_000), Some(3_008));
        assert_eq!(f.hold(Side::Buy, 1_000, 7), Some((2, 21_056)));
        assert_eq!(f.hold(Side::Sell, 1_000, 7), Some((1, 700)));
        assert_eq!(f.notional(i64::MAX, u64::MAX), None);
        assert_eq!(f.hold(Side::Sell, 1, u64::MAX), None);
        assert_eq!(f.notional(0, 1), None);
    }

    #[test]
    fn a_fill_never_costs_more_than_it_releases() {
        let f = f();
        for limit in [1, 7, 333, 1_000, 99_999] {
            let unit = f.buy_unit(limit).unwrap();
            for price in [1, limit / 2 + 1, limit] {
                for x in [1u64, 3, 17, 1_000] {
                    let n = f.notional(price, x).unwrap();
                    let cost = n + Funding::fee(n, f.taker_fee_bps.max(f.maker_fee_bps));
                    assert!(cost <= x * unit, "limit {limit} price {price} x {x}");
                }
            }
        }
    }

    #[test]
    fn check_names_each_inconsistency() {
        let asset = |id| Asset {
            id,
            name: format!("A{id}"),
            scale: 2,
        };
        let ok = Risk {
            assets: vec![asset(1), asset(2)],
            fee_account: 9,
            funding: vec![(5, f())],
            ..Risk::default()
        };
        assert_eq!(ok.check(), Ok(()));
        let mut r = ok.clone();
        r.assets.push(asset(1));
        assert!(r.check().unwrap_err().contains("asset id 1 appears twice"));
        let mut r = ok.clone();
        r.funding[0].1.quote = 3;
        assert!(r.check().unwrap_err().contains("quote asset 3"));
        let mut r = ok.clone();
        r.funding[0].1.quote = 1;
        assert!(r.check().unwrap_err().contains("same asset 1"));
        let mut r = ok.clone();
        r.funding[0].1.base_unit = 0;
        assert!(r.check().unwrap_err().contains("base_unit 0"));
        let mut r = ok.clone();
        r.funding[0].1.taker_fee_bps = 10_001;
        assert!(r.check().unwrap_err().contains("taker fee 10001"));
        let mut r = ok;
        r.account_limits = vec![(4, Limits::default()), (4, Limits::default())];
        assert!(r.check().unwrap_err().contains("account 4"));
    }
}

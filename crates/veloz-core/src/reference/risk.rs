//! The naive twin's money: the semantics of `engine::risk`, written from a ledger of totals.
//!
//! The fast engine moves holds incrementally on every accept, fill, cancel and replace. The
//! twin keeps only each account's *total* per asset (moved by deposits, withdrawals and
//! fills) and recomputes what is held, whenever it is asked, from the resting orders: held
//! = the sum of [`Funding::hold`] over the account's resting orders, available = total -
//! held. Both must give the same checks, balances and hash.

use std::collections::BTreeMap;

use super::ReferenceEngine;
use crate::instrument::Instrument;
use crate::risk::{AssetId, Balance, Funding, Risk};
use crate::types::*;

/// The twin's books of money.
#[derive(Clone, Debug)]
pub(super) struct RefLedger {
    pub(super) rules: Risk,
    /// (account, asset) -> available + held.
    totals: BTreeMap<(AccountId, AssetId), u64>,
    /// Accounts that exist, with their current second and its notional.
    accounts: BTreeMap<AccountId, (u64, u64)>,
    /// Per asset: deposits less withdrawals.
    supply: BTreeMap<AssetId, u64>,
}

impl RefLedger {
    pub(super) fn new(rules: Risk) -> RefLedger {
        RefLedger {
            supply: rules.assets.iter().map(|a| (a.id, 0)).collect(),
            rules,
            totals: BTreeMap::new(),
            accounts: BTreeMap::new(),
        }
    }

    fn create(&mut self, account: AccountId) {
        self.accounts.entry(account).or_insert((0, 0));
    }

    fn total(&self, account: AccountId, asset: AssetId) -> u64 {
        self.totals.get(&(account, asset)).copied().unwrap_or(0)
    }

    fn add(&mut self, account: AccountId, asset: AssetId, amount: u64) {
        self.create(account);
        *self.totals.entry((account, asset)).or_default() += amount;
    }

    fn sub(&mut self, account: AccountId, asset: AssetId, amount: u64) {
        let t = self.totals.get_mut(&(account, asset)).expect("has a total");
        *t = t.checked_sub(amount).expect("never below zero");
    }
}

impl ReferenceEngine {
    /// The naive twin of [`crate::Engine::with_risk`].
    pub fn with_risk(
        shard: u16,
        instruments: &[Instrument],
        risk: Risk,
    ) -> Result<ReferenceEngine, String> {
        risk.check()?;
        let mut engine = ReferenceEngine::new(shard, instruments);
        engine.ledger = Some(RefLedger::new(risk));
        Ok(engine)
    }

    fn funding(&self, symbol: SymbolId) -> Option<Funding> {
        self.ledger.as_ref()?.rules.funding_of(symbol)
    }

    /// What `account`'s resting orders hold of `asset`, summed from scratch.
    fn held(&self, account: AccountId, asset: AssetId) -> u64 {
        let mut held = 0u64;
        for (symbol, book) in &self.books {
            let Some(f) = self.funding(*symbol) else {
                continue;
            };
            for o in book.all_orders().filter(|o| o.account == account) {
                let (a, amount) = f.hold(o.side, o.price, o.leaves).expect("fits");
                if a == asset {
                    held += amount;
                }
            }
        }
        held
    }

    fn open_orders(&self, account: AccountId) -> u32 {
        self.books
            .values()
            .map(|b| b.all_orders().filter(|o| o.account == account).count() as u32)
            .sum()
    }

    fn available(&self, account: AccountId, asset: AssetId) -> u64 {
        let l = self.ledger.as_ref().expect("funded");
        l.total(account, asset) - self.held(account, asset)
    }

    /// The limits, then the funds, of a new order whose worst price is `limit`.
    pub(super) fn risk_check_new(
        &self,
        o: &NewOrder,
        limit: Option<Price>,
        ts: Timestamp,
    ) -> Result<(), RejectReason> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        let limits = l.rules.limits_of(o.account);
        let f = self.funding(o.symbol);
        if limits.max_order_qty != 0 && o.qty > limits.max_order_qty {
            return Err(RejectReason::OrderQtyLimit);
        }
        let notional = match (limit, f) {
            (None, _) => 0u128,
            (Some(p), Some(f)) => p as u128 * o.qty as u128 * f.quote_unit as u128,
            (Some(p), None) => p as u128 * o.qty as u128,
        };
        if notional > u64::MAX as u128 {
            return Err(RejectReason::AmountTooLarge);
        }
        if limits.max_order_notional != 0 && notional > limits.max_order_notional as u128 {
            return Err(RejectReason::OrderNotionalLimit);
        }
        if limits.max_open_orders != 0 && self.open_orders(o.account) >= limits.max_open_orders {
            return Err(RejectReason::OpenOrdersLimit);
        }
        if limits.max_notional_per_sec != 0 {
            let used = match l.accounts.get(&o.account) {
                Some(&(sec, n)) if sec == ts / 1_000_000_000 => n as u128,
                _ => 0,
            };
            if used + notional > limits.max_notional_per_sec as u128 {
                return Err(RejectReason::NotionalRateLimit);
            }
        }
        if let (Some(f), Some(p)) = (f, limit) {
            let (asset, need) = f
                .hold(o.side, p, o.qty)
                .ok_or(RejectReason::AmountTooLarge)?;
            if self.available(o.account, asset) < need {
                return Err(RejectReason::InsufficientFunds);
            }
        }
        Ok(())
    }

    /// A new order with worst price `limit` was accepted: the account exists, and its
    /// second counts the notional.
    pub(super) fn risk_accepted(&mut self, o: &NewOrder, limit: Price, ts: Timestamp) {
        let f = self.funding(o.symbol);
        let Some(l) = &mut self.ledger else {
            return;
        };
        let notional = match f {
            Some(f) => f.notional(limit, o.qty).expect("checked"),
            None => (limit as u128 * o.qty as u128) as u64,
        };
        let sec = ts / 1_000_000_000;
        let entry = l.accounts.entry(o.account).or_insert((0, 0));
        if entry.0 != sec {
            *entry = (sec, 0);
        }
        entry.1 = entry.1.saturating_add(notional);
    }

    /// A fill of `qty` at `price` in `symbol`: move the totals (no holds in sight).
    pub(super) fn risk_settle(
        &mut self,
        symbol: SymbolId,
        maker_side: Side,
        maker: AccountId,
        taker: AccountId,
        price: Price,
        qty: Qty,
    ) {
        let Some(f) = self.funding(symbol) else {
            return;
        };
        let l = self.ledger.as_mut().expect("funded");
        let (buyer, buyer_bps, seller, seller_bps) = match maker_side {
            Side::Buy => (maker, f.maker_fee_bps, taker, f.taker_fee_bps),
            Side::Sell => (taker, f.taker_fee_bps, maker, f.maker_fee_bps),
        };
        let notional = price as u64 * qty * f.quote_unit;
        let base = qty * f.base_unit;
        let (buyer_fee, seller_fee) = (
            (notional as u128 * buyer_bps as u128).div_ceil(10_000) as u64,
            (notional as u128 * seller_bps as u128).div_ceil(10_000) as u64,
        );
        l.sub(buyer, f.quote, notional + buyer_fee);
        l.add(buyer, f.base, base);
        l.sub(seller, f.base, base);
        l.add(seller, f.quote, notional - seller_fee);
        let fee_account = l.rules.fee_account;
        l.add(fee_account, f.quote, buyer_fee + seller_fee);
    }

    /// The limits and funds of a replace of `old` (resting in `symbol`) to `price`, `qty`.
    pub(super) fn risk_check_replace(
        &self,
        symbol: SymbolId,
        old: &super::RefOrder,
        price: Price,
        qty: Qty,
    ) -> Result<(), RejectReason> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        let limits = l.rules.limits_of(old.account);
        let f = self.funding(symbol);
        if limits.max_order_qty != 0 && qty > limits.max_order_qty {
            return Err(RejectReason::OrderQtyLimit);
        }
        let unit = f.map_or(1, |f| f.quote_unit) as u128;
        let notional = price as u128 * qty as u128 * unit;
        if notional > u64::MAX as u128 {
            return Err(RejectReason::AmountTooLarge);
        }
        if limits.max_order_notional != 0 && notional > limits.max_order_notional as u128 {
            return Err(RejectReason::OrderNotionalLimit);
        }
        if let Some(f) = f {
            let (asset, new) = f
                .hold(old.side, price, qty)
                .ok_or(RejectReason::AmountTooLarge)?;
            let (_, now) = f.hold(old.side, old.price, old.leaves).expect("fits");
            // Without the order's own hold, what is left must cover the new one.
            if self.available(old.account, asset) + now < new {
                return Err(RejectReason::InsufficientFunds);
            }
        }
        Ok(())
    }

    /// A deposit or withdrawal.
    pub(super) fn risk_move_money(&mut self, action: AdminAction) -> AdminOutcome {
        let (Some((asset, amount)), Some(account)) = (action.money_moved(), action.account())
        else {
            unreachable!("only deposits and withdrawals move money");
        };
        if !self
            .ledger
            .as_ref()
            .is_some_and(|l| l.supply.contains_key(&asset))
        {
            return AdminOutcome::UnknownAsset;
        }
        let available = self.available(account, asset);
        if amount == 0 {
            return AdminOutcome::InvalidAmount;
        }
        let l = self.ledger.as_mut().expect("funded");
        let supply = l.supply[&asset];
        match action {
            AdminAction::Deposit { .. } => {
                if supply.checked_add(amount).is_none() {
                    return AdminOutcome::InvalidAmount;
                }
                l.supply.insert(asset, supply + amount);
                l.add(account, asset, amount);
            }
            _ => {
                if available < amount {
                    return AdminOutcome::InsufficientFunds;
                }
                l.supply.insert(asset, supply - amount);
                l.sub(account, asset, amount);
            }
        }
        AdminOutcome::Applied
    }

    /// The balances of `account`, by ascending asset id (as [`crate::Engine::balances`]).
    pub fn balances(&self, account: AccountId) -> Vec<(AssetId, Balance)> {
        let Some(l) = &self.ledger else {
            return Vec::new();
        };
        if !l.accounts.contains_key(&account) {
            return Vec::new();
        }
        l.supply
            .keys()
            .map(|&asset| {
                let held = self.held(account, asset);
                let available = l.total(account, asset) - held;
                (asset, Balance { available, held })
            })
            .collect()
    }

    /// Every account with a ledger entry, ascending.
    pub fn funded_accounts(&self) -> Vec<AccountId> {
        self.ledger
            .as_ref()
            .map(|l| l.accounts.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Per asset, ascending: deposits less withdrawals.
    pub fn supply(&self) -> Vec<(AssetId, u64)> {
        self.ledger
            .as_ref()
            .map(|l| l.supply.iter().map(|(&a, &s)| (a, s)).collect())
            .unwrap_or_default()
    }

    /// The money part of the state hash (`crate::hash`).
    pub(super) fn hash_ledger(&self, h: &mut crate::hash::StateHasher) {
        let Some(l) = &self.ledger else {
            return;
        };
        let accounts: Vec<(AccountId, u64, u64, Vec<Balance>)> = l
            .accounts
            .iter()
            .map(|(&id, &(sec, notional))| {
                let balances = self.balances(id).into_iter().map(|(_, b)| b).collect();
                (id, sec, notional, balances)
            })
            .collect();
        h.ledger(
            accounts
                .iter()
                .map(|(id, sec, n, b)| (*id, *sec, *n, b.as_slice())),
        );
    }
}

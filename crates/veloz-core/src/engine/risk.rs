//! Balances, holds, settlement and pre-trade limits of an [`Engine`] built with money rules
//! ([`Engine::with_risk`]; the rules and their arithmetic are in [`crate::risk`]).
//!
//! Contract (the naive twin, `reference::risk`, implements the same from a ledger of totals
//! and recomputed holds, and the property tests compare every event and hash):
//! - **New order**, after every instrument check: the account's limits in the order
//!   [`Limits`] lists them (`OrderQtyLimit`, `OrderNotionalLimit`, `OpenOrdersLimit`,
//!   `NotionalRateLimit`), then its funds (`AmountTooLarge` when the hold does not fit a u64,
//!   `InsufficientFunds` when the available balance is short). A market order's notional and
//!   hold are taken at its protection price; a market order that finds no opposite side holds
//!   nothing and counts no notional. Accepted, it holds ([`Funding::hold`]), counts as open
//!   and adds its notional to the account's current second.
//! - **Fill**: both sides release `qty` of their hold; the buyer gets the base, pays the
//!   notional and its fee; the seller gets the notional less its fee; the fee account gets
//!   both fees. An order filled in full stops counting as open.
//! - **Cancel** (any reason, including the rest of an IOC, market or FOK order and self-trade
//!   prevention): the hold of the cancelled quantity is released; the order stops counting.
//! - **Replace**: the qty and notional limits apply to the new quantity and price; the hold
//!   moves from `leaves` at the old price to `qty` at the new one, refused with
//!   `InsufficientFunds` (the order unchanged) when the increase is not available.
//! - **Deposit / withdraw** ([`AdminAction::Deposit`], [`AdminAction::Withdraw`]) move
//!   available funds; a withdrawal never touches held funds.
//! - An account exists from its first deposit, accepted order or credit, and is never
//!   dropped. Instruments without funding move no money; their orders still meet the limits
//!   (notional `price * qty`).
//!
//! Invariants ([`Engine::validate`]): per asset, the balances sum to the asset's supply (the
//! deposits less the withdrawals); each account's held amount of each asset equals what its
//! resting orders hold; its open-order count equals its resting orders.
//!
//! Cost on the event path: nothing when the engine has no rules (one `Option` test); with
//! them, one account probe per new order and per side of each fill.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Engine;
use crate::book::{OrderNode, NIL};
use crate::instrument::Instrument;
use crate::risk::{AssetId, Balance, Funding, Limits, Risk};
use crate::types::*;

/// One second of the sequencer's clock.
const SECOND_NS: u64 = 1_000_000_000;

/// One account's limits and counters in this engine (its balances are in
/// [`Ledger::balances`], at its slot).
#[derive(Clone, Debug)]
pub(super) struct AccountState {
    pub(super) id: AccountId,
    /// Orders accepted and not yet filled or cancelled.
    pub(super) open_orders: u32,
    /// The second (`ts / 10^9`) `window_notional` counts, and the notional of the new orders
    /// accepted in it.
    pub(super) window_sec: u64,
    pub(super) window_notional: u64,
    pub(super) limits: Limits,
}

/// An instrument's funding with its assets' positions in [`Ledger::assets`].
#[derive(Clone, Copy, Debug)]
struct Money {
    f: Funding,
    base: usize,
    quote: usize,
}

/// The balances of an engine with money rules.
#[derive(Clone, Debug)]
pub(super) struct Ledger {
    pub(super) rules: Risk,
    /// Funding by book index.
    funding: Vec<Option<Money>>,
    /// Asset ids, ascending; an asset's position here indexes balances and `supply`.
    pub(super) assets: Vec<AssetId>,
    /// Per asset: the sum of every balance (deposits less withdrawals).
    pub(super) supply: Vec<u64>,
    /// Account id -> slot in `accounts` (point lookup; never iterated).
    index: FxHashMap<AccountId, u32>,
    /// By slot, in creation order; walked sorted by id for the hash and the snapshot.
    pub(super) accounts: Vec<AccountState>,
    /// By slot: the account's balances that were ever touched, as (asset position, balance),
    /// ascending by position; an absent entry is zero. Sparse so that memory grows with what
    /// accounts hold, not with accounts times listed assets (a dense row was no faster in the
    /// matching bench either: docs/BENCHMARKS.md, "Money").
    balances: Vec<Vec<(u32, Balance)>>,
    /// The fee account's slot, once it exists.
    fee_slot: Option<usize>,
}

impl Ledger {
    pub(super) fn new(rules: Risk, symbols: impl Iterator<Item = SymbolId>) -> Ledger {
        let mut assets: Vec<AssetId> = rules.assets.iter().map(|a| a.id).collect();
        assets.sort_unstable();
        let position = |id| assets.binary_search(&id).expect("checked rules");
        let funding = symbols
            .map(|s| {
                rules.funding_of(s).map(|f| Money {
                    f,
                    base: position(f.base),
                    quote: position(f.quote),
                })
            })
            .collect();
        Ledger {
            funding,
            supply: vec![0; assets.len()],
            assets,
            rules,
            index: FxHashMap::default(),
            accounts: Vec::new(),
            balances: Vec::new(),
            fee_slot: None,
        }
    }

    fn asset(&self, id: AssetId) -> Option<usize> {
        self.assets.binary_search(&id).ok()
    }

    fn find(&self, account: AccountId) -> Option<usize> {
        self.index.get(&account).map(|&i| i as usize)
    }

    /// The account's slot, created (empty) if new.
    pub(super) fn slot(&mut self, account: AccountId) -> usize {
        let next = self.accounts.len() as u32;
        let i = *self.index.entry(account).or_insert(next);
        if i == next {
            self.accounts.push(AccountState {
                id: account,
                open_orders: 0,
                window_sec: 0,
                window_notional: 0,
                limits: self.rules.limits_of(account),
            });
            self.balances.push(Vec::new());
        }
        i as usize
    }

    fn fee_slot(&mut self) -> usize {
        match self.fee_slot {
            Some(s) => s,
            None => {
                let s = self.slot(self.rules.fee_account);
                self.fee_slot = Some(s);
                s
            }
        }
    }

    /// The balance of the asset at position `asset` of the account at `slot` (zero when
    /// never touched).
    fn get(&self, slot: usize, asset: usize) -> Balance {
        let row = &self.balances[slot];
        row.iter()
            .find(|(a, _)| *a as usize == asset)
            .map_or(Balance::default(), |(_, b)| *b)
    }

    /// The balance of the asset at position `asset` of the account at `slot`, made if new.
    fn bal(&mut self, slot: usize, asset: usize) -> &mut Balance {
        let row = &mut self.balances[slot];
        let i = match row.iter().position(|(a, _)| *a as usize >= asset) {
            Some(i) if row[i].0 as usize == asset => i,
            Some(i) => {
                row.insert(i, (asset as u32, Balance::default()));
                i
            }
            None => {
                row.push((asset as u32, Balance::default()));
                row.len() - 1
            }
        };
        &mut row[i].1
    }

    /// Every asset's balance of the account at `slot`, by asset position (zeros included).
    pub(super) fn dense(&self, slot: usize) -> Vec<Balance> {
        let mut v = vec![Balance::default(); self.assets.len()];
        for &(a, b) in &self.balances[slot] {
            v[a as usize] = b;
        }
        v
    }

    /// Set the balances of the account at `slot` from a dense row (a snapshot's).
    pub(super) fn set_dense(&mut self, slot: usize, row: &[Balance]) {
        self.balances[slot] = (row.iter().enumerate())
            .filter(|(_, b)| **b != Balance::default())
            .map(|(a, b)| (a as u32, *b))
            .collect();
    }

    /// The limits of `account` at `slot` (its record's copy), or the rules' for an account
    /// without one yet.
    fn limits(&self, slot: Option<usize>, account: AccountId) -> Limits {
        slot.map_or_else(
            || self.rules.limits_of(account),
            |s| self.accounts[s].limits,
        )
    }

    fn available(&self, slot: Option<usize>, asset: usize) -> u64 {
        slot.map_or(0, |s| self.get(s, asset).available)
    }

    /// Slots ascending by account id (the hash's and the snapshot's order).
    pub(super) fn sorted(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.accounts.len()).collect();
        v.sort_unstable_by_key(|&s| self.accounts[s].id);
        v
    }
}

/// The notional limits see: the funded notional, or `price * qty` on an unfunded instrument.
fn notional(funding: Option<Funding>, price: Price, qty: Qty) -> Option<u64> {
    match funding {
        Some(f) => f.notional(price, qty),
        None => u64::try_from(price.max(0) as u128 * qty as u128).ok(),
    }
}

impl Engine {
    /// An empty engine for `instruments` that keeps balances and applies `risk` (checked
    /// first: [`Risk::check`]). Funding of instruments this engine does not have is ignored.
    pub fn with_risk(shard: u16, instruments: &[Instrument], risk: Risk) -> Result<Engine, String> {
        risk.check()?;
        let mut engine = Engine::new(shard, instruments);
        let symbols = engine.books.iter().map(|b| b.instrument.id);
        engine.ledger = Some(Box::new(Ledger::new(risk, symbols)));
        Ok(engine)
    }

    /// The money rules, when the engine keeps balances.
    pub fn risk(&self) -> Option<&Risk> {
        self.ledger.as_ref().map(|l| &l.rules)
    }

    /// The balances of `account`, by ascending asset id (empty for an unknown account or an
    /// engine without money rules).
    pub fn balances(&self, account: AccountId) -> Vec<(AssetId, Balance)> {
        let Some(l) = &self.ledger else {
            return Vec::new();
        };
        l.find(account)
            .map(|s| l.assets.iter().copied().zip(l.dense(s)).collect())
            .unwrap_or_default()
    }

    /// Every account with a ledger entry, ascending.
    pub fn funded_accounts(&self) -> Vec<AccountId> {
        self.ledger
            .as_ref()
            .map(|l| l.sorted().iter().map(|&s| l.accounts[s].id).collect())
            .unwrap_or_default()
    }

    /// Per asset, ascending: the sum of every account's balance (deposits less withdrawals).
    pub fn supply(&self) -> Vec<(AssetId, u64)> {
        self.ledger
            .as_ref()
            .map(|l| {
                l.assets
                    .iter()
                    .copied()
                    .zip(l.supply.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The checks of a new order `o` in book `b` whose worst price is `limit` (`None`: a
    /// market order facing an empty book); nothing changes.
    pub(super) fn risk_check_new(
        &self,
        b: u32,
        o: &NewOrder,
        limit: Option<Price>,
        ts: Timestamp,
    ) -> Result<(), RejectReason> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        let money = l.funding[b as usize];
        let slot = l.find(o.account);
        let account = slot.map(|s| &l.accounts[s]);
        let limits = l.limits(slot, o.account);
        if limits.max_order_qty > 0 && o.qty > limits.max_order_qty {
            return Err(RejectReason::OrderQtyLimit);
        }
        let amount = match limit {
            Some(p) => {
                notional(money.map(|m| m.f), p, o.qty).ok_or(RejectReason::AmountTooLarge)?
            }
            None => 0,
        };
        if limits.max_order_notional > 0 && amount > limits.max_order_notional {
            return Err(RejectReason::OrderNotionalLimit);
        }
        if limits.max_open_orders > 0
            && account.map_or(0, |a| a.open_orders) >= limits.max_open_orders
        {
            return Err(RejectReason::OpenOrdersLimit);
        }
        if limits.max_notional_per_sec > 0 {
            let used = account
                .filter(|a| a.window_sec == ts / SECOND_NS)
                .map_or(0, |a| a.window_notional);
            if used as u128 + amount as u128 > limits.max_notional_per_sec as u128 {
                return Err(RejectReason::NotionalRateLimit);
            }
        }
        if let (Some(m), Some(p)) = (money, limit) {
            let (_, need) =
                m.f.hold(o.side, p, o.qty)
                    .ok_or(RejectReason::AmountTooLarge)?;
            let asset = if o.side == Side::Buy { m.quote } else { m.base };
            if l.available(slot, asset) < need {
                return Err(RejectReason::InsufficientFunds);
            }
        }
        Ok(())
    }

    /// A new order passed [`Engine::risk_check_new`] and was accepted: hold, count, add its
    /// notional to the second.
    pub(super) fn risk_accepted(&mut self, b: u32, o: &NewOrder, limit: Price, ts: Timestamp) {
        let Some(l) = &mut self.ledger else {
            return;
        };
        let money = l.funding[b as usize];
        let amount = notional(money.map(|m| m.f), limit, o.qty).unwrap_or(0);
        let slot = l.slot(o.account);
        let acc = &mut l.accounts[slot];
        acc.open_orders += 1;
        let sec = ts / SECOND_NS;
        if acc.window_sec != sec {
            acc.window_sec = sec;
            acc.window_notional = 0;
        }
        acc.window_notional = acc.window_notional.saturating_add(amount);
        if let Some(m) = money {
            let (_, need) = m.f.hold(o.side, limit, o.qty).expect("checked on entry");
            let asset = if o.side == Side::Buy { m.quote } else { m.base };
            let bal = l.bal(slot, asset);
            bal.available -= need;
            bal.held += need;
        }
    }

    /// `qty` of a `side` order of `account` at `limit` in book `b` left without trading:
    /// release its hold; the order no longer counts as open.
    pub(super) fn risk_released(
        &mut self,
        b: u32,
        account: AccountId,
        side: Side,
        limit: Price,
        qty: Qty,
    ) {
        let Some(l) = &mut self.ledger else {
            return;
        };
        let slot = l.slot(account);
        l.accounts[slot].open_orders -= 1;
        if let Some(m) = l.funding[b as usize] {
            let (_, amount) = m.f.hold(side, limit, qty).expect("held before");
            let asset = if side == Side::Buy { m.quote } else { m.base };
            let bal = l.bal(slot, asset);
            bal.held -= amount;
            bal.available += amount;
        }
    }

    /// Settle a fill of `qty` at `price` in book `b` between `maker` (resting at `price`)
    /// and the taker `taker` with worst price `taker_limit`; `maker_done` / `taker_done`:
    /// that side is filled in full.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn risk_settle(
        &mut self,
        b: u32,
        maker: &OrderNode,
        taker: AccountId,
        taker_limit: Price,
        price: Price,
        qty: Qty,
        maker_done: bool,
        taker_done: bool,
    ) {
        let Some(l) = &mut self.ledger else {
            return;
        };
        let (ms, ts) = (l.slot(maker.account), l.slot(taker));
        l.accounts[ms].open_orders -= maker_done as u32;
        l.accounts[ts].open_orders -= taker_done as u32;
        let Some(m) = l.funding[b as usize] else {
            return;
        };
        let f = m.f;
        let (buyer, buyer_limit, buyer_bps, seller, seller_bps) = match maker.side {
            Side::Buy => (ms, price, f.maker_fee_bps, ts, f.taker_fee_bps),
            Side::Sell => (ts, taker_limit, f.taker_fee_bps, ms, f.maker_fee_bps),
        };
        let notional = f.notional(price, qty).expect("within the hold");
        let base = f.base_amount(qty).expect("within the hold");
        let released = f.buy_unit(buyer_limit).expect("held before") * qty;
        let (buyer_fee, seller_fee) = (
            Funding::fee(notional, buyer_bps),
            Funding::fee(notional, seller_bps),
        );
        let fees = l.fee_slot();
        let q = l.bal(buyer, m.quote);
        q.held -= released;
        q.available += released - notional - buyer_fee;
        l.bal(buyer, m.base).available += base;
        l.bal(seller, m.base).held -= base;
        l.bal(seller, m.quote).available += notional - seller_fee;
        l.bal(fees, m.quote).available += buyer_fee + seller_fee;
    }

    /// The checks of a replace of the order `n` (in book `b`) to `price` and `qty`; nothing
    /// changes.
    pub(super) fn risk_check_replace(
        &self,
        b: u32,
        n: &OrderNode,
        price: Price,
        qty: Qty,
    ) -> Result<(), RejectReason> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        let money = l.funding[b as usize];
        let slot = l.find(n.account);
        let limits = l.limits(slot, n.account);
        if limits.max_order_qty > 0 && qty > limits.max_order_qty {
            return Err(RejectReason::OrderQtyLimit);
        }
        let amount =
            notional(money.map(|m| m.f), price, qty).ok_or(RejectReason::AmountTooLarge)?;
        if limits.max_order_notional > 0 && amount > limits.max_order_notional {
            return Err(RejectReason::OrderNotionalLimit);
        }
        if let Some(m) = money {
            let (_, new) =
                m.f.hold(n.side, price, qty)
                    .ok_or(RejectReason::AmountTooLarge)?;
            let (_, old) = m.f.hold(n.side, n.price, n.leaves).expect("held before");
            let asset = if n.side == Side::Buy { m.quote } else { m.base };
            if new > old && new - old > l.available(slot, asset) {
                return Err(RejectReason::InsufficientFunds);
            }
        }
        Ok(())
    }

    /// A replace passed [`Engine::risk_check_replace`]: move the hold of `n` to `price` and
    /// `qty`.
    pub(super) fn risk_replaced(&mut self, b: u32, n: &OrderNode, price: Price, qty: Qty) {
        let Some(l) = &mut self.ledger else {
            return;
        };
        if let Some(m) = l.funding[b as usize] {
            let (_, new) = m.f.hold(n.side, price, qty).expect("checked");
            let (_, old) = m.f.hold(n.side, n.price, n.leaves).expect("held before");
            let asset = if n.side == Side::Buy { m.quote } else { m.base };
            let slot = l.slot(n.account);
            let bal = l.bal(slot, asset);
            bal.available = bal.available + old - new;
            bal.held = bal.held - old + new;
        }
    }

    /// A deposit or withdrawal; the outcome says what happened.
    pub(super) fn risk_move_money(&mut self, action: AdminAction) -> AdminOutcome {
        let Some(l) = &mut self.ledger else {
            return AdminOutcome::UnknownAsset;
        };
        let (Some((asset, amount)), Some(account)) = (action.money_moved(), action.account())
        else {
            unreachable!("only deposits and withdrawals move money");
        };
        let Some(a) = l.asset(asset) else {
            return AdminOutcome::UnknownAsset;
        };
        if amount == 0 {
            return AdminOutcome::InvalidAmount;
        }
        match action {
            AdminAction::Deposit { .. } => {
                let Some(supply) = l.supply[a].checked_add(amount) else {
                    return AdminOutcome::InvalidAmount;
                };
                l.supply[a] = supply;
                let slot = l.slot(account);
                l.bal(slot, a).available += amount;
            }
            _ => {
                let slot = l.find(account);
                if l.available(slot, a) < amount {
                    return AdminOutcome::InsufficientFunds;
                }
                l.supply[a] -= amount;
                let slot = slot.expect("an account with funds exists");
                l.bal(slot, a).available -= amount;
            }
        }
        AdminOutcome::Applied
    }

    /// The ledger invariants (module docs), the first violation named.
    pub(super) fn validate_ledger(&self) -> Result<(), String> {
        let Some(l) = &self.ledger else {
            return Ok(());
        };
        let mut sums = vec![0u128; l.assets.len()];
        let mut held: BTreeMap<(AccountId, usize), u64> = BTreeMap::new();
        let mut open: BTreeMap<AccountId, u32> = BTreeMap::new();
        for (b, book) in self.books.iter().enumerate() {
            for side in [Side::Buy, Side::Sell] {
                for (_, level) in book.ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(level).head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        *open.entry(n.account).or_default() += 1;
                        if let Some(m) = l.funding[b] {
                            let (_, amount) =
                                m.f.hold(n.side, n.price, n.leaves).ok_or_else(|| {
                                    format!("order {}: its hold does not fit a u64", n.id)
                                })?;
                            let asset = if n.side == Side::Buy { m.quote } else { m.base };
                            *held.entry((n.account, asset)).or_default() += amount;
                        }
                        slot = n.next;
                    }
                }
            }
        }
        for (s, acc) in l.accounts.iter().enumerate() {
            let want_open = open.get(&acc.id).copied().unwrap_or(0);
            if acc.open_orders != want_open {
                return Err(format!(
                    "account {} counts {} open orders, {want_open} rest",
                    acc.id, acc.open_orders
                ));
            }
            for (a, bal) in l.dense(s).iter().enumerate() {
                sums[a] += bal.total();
                let want = held.get(&(acc.id, a)).copied().unwrap_or(0);
                if bal.held != want {
                    return Err(format!(
                        "account {} holds {} of asset {}, its orders need {want}",
                        acc.id, bal.held, l.assets[a]
                    ));
                }
            }
        }
        if let Some(account) = open.keys().find(|a| l.find(**a).is_none()) {
            return Err(format!(
                "account {account} has resting orders and no ledger entry"
            ));
        }
        for (a, sum) in sums.iter().enumerate() {
            if *sum != l.supply[a] as u128 {
                return Err(format!(
                    "asset {}: balances sum to {sum}, supply is {}",
                    l.assets[a], l.supply[a]
                ));
            }
        }
        Ok(())
    }
}

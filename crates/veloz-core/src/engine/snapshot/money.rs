//! The money section of a snapshot body (flag bit 2, [`super::SNAPSHOT_FLAG_MONEY`]), last
//! after the admin section: the engine's money rules and every account's balances
//! (`engine::risk`). Written only by an engine built with rules, so a body without it loads
//! as an engine without them. Layout (little-endian; `docs/journal-format.md`,
//! "Snapshots"):
//!
//! ```text
//! header   24 B  u32 assets, u32 fundings, u32 account limits, u32 accounts,
//!                u32 fee account, u32 reserved 0
//! limits   32 B  the default limits: u64 max_order_qty, u64 max_order_notional,
//!                u64 max_notional_per_sec, u32 max_open_orders, u32 reserved 0
//! asset     8 B  u32 id, u8 scale, u8 reserved 0, u16 name length; then the name (UTF-8)
//! funding  40 B  u32 symbol, u32 base, u32 quote, u32 maker bps, u32 taker bps,
//!                u32 reserved 0, u64 base_unit, u64 quote_unit
//! limits   40 B  per account with its own: u32 account, u32 reserved 0, then 32 B as above
//! account  24 B  u32 id, u32 open orders, u64 current second, u64 its notional;
//!                then per asset (ascending id) u64 available, u64 held
//! ```
//!
//! Assets, fundings, account limits and accounts are each strictly ascending by id. The
//! rules are checked ([`Risk::check`]) and the balances by [`Engine::validate`] (holds equal
//! what the resting orders need, open counts equal them); each asset's supply is the sum of
//! its balances.

use super::{put_u32, put_u64, u32_at, u64_at, Cursor, SnapshotError};
use crate::engine::Engine;
use crate::risk::{Asset, Balance, Funding, Limits, Risk};
use crate::types::*;

const HEADER_LEN: usize = 24;
const LIMITS_LEN: usize = 32;
const ASSET_LEN: usize = 8;
const FUNDING_LEN: usize = 40;
const ACCOUNT_LEN: usize = 24;
const BALANCE_LEN: usize = 16;

fn field(field: &'static str, at: usize, value: u64) -> SnapshotError {
    SnapshotError::Field { field, at, value }
}

fn put_limits(out: &mut Vec<u8>, l: &Limits) {
    let mut b = [0u8; LIMITS_LEN];
    put_u64(&mut b, 0, l.max_order_qty);
    put_u64(&mut b, 8, l.max_order_notional);
    put_u64(&mut b, 16, l.max_notional_per_sec);
    put_u32(&mut b, 24, l.max_open_orders);
    out.extend_from_slice(&b);
}

fn read_limits(c: &mut Cursor<'_>) -> Result<Limits, SnapshotError> {
    let (at, b) = c.take(LIMITS_LEN)?;
    if u32_at(b, 28) != 0 {
        return Err(field("limits reserved", at + 28, u32_at(b, 28) as u64));
    }
    Ok(Limits {
        max_order_qty: u64_at(b, 0),
        max_order_notional: u64_at(b, 8),
        max_notional_per_sec: u64_at(b, 16),
        max_open_orders: u32_at(b, 24),
    })
}

/// `id` after `prev` (strictly ascending), else the named error.
fn ascending(
    prev: Option<u32>,
    id: u32,
    what: &'static str,
    at: usize,
) -> Result<(), SnapshotError> {
    match prev {
        Some(p) if id <= p => Err(field(what, at, id as u64)),
        _ => Ok(()),
    }
}

impl Engine {
    /// Append the money section; nothing for an engine without rules.
    pub(super) fn write_money(&self, out: &mut Vec<u8>) {
        let Some(l) = &self.ledger else {
            return;
        };
        let r = &l.rules;
        let mut assets: Vec<&Asset> = r.assets.iter().collect();
        assets.sort_unstable_by_key(|a| a.id);
        let mut funding = r.funding.clone();
        funding.sort_unstable_by_key(|(s, _)| *s);
        let mut account_limits = r.account_limits.clone();
        account_limits.sort_unstable_by_key(|(a, _)| *a);
        let accounts = l.sorted();
        let mut h = [0u8; HEADER_LEN];
        put_u32(&mut h, 0, assets.len() as u32);
        put_u32(&mut h, 4, funding.len() as u32);
        put_u32(&mut h, 8, account_limits.len() as u32);
        put_u32(&mut h, 12, accounts.len() as u32);
        put_u32(&mut h, 16, r.fee_account);
        out.extend_from_slice(&h);
        put_limits(out, &r.limits);
        for a in assets {
            let mut b = [0u8; ASSET_LEN];
            put_u32(&mut b, 0, a.id);
            b[4] = a.scale;
            b[6..8].copy_from_slice(&(a.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&b);
            out.extend_from_slice(a.name.as_bytes());
        }
        for (symbol, f) in &funding {
            let mut b = [0u8; FUNDING_LEN];
            put_u32(&mut b, 0, *symbol);
            put_u32(&mut b, 4, f.base);
            put_u32(&mut b, 8, f.quote);
            put_u32(&mut b, 12, f.maker_fee_bps);
            put_u32(&mut b, 16, f.taker_fee_bps);
            put_u64(&mut b, 24, f.base_unit);
            put_u64(&mut b, 32, f.quote_unit);
            out.extend_from_slice(&b);
        }
        for (account, limits) in &account_limits {
            let mut b = [0u8; 8];
            put_u32(&mut b, 0, *account);
            out.extend_from_slice(&b);
            put_limits(out, limits);
        }
        for slot in accounts {
            let a = &l.accounts[slot];
            let mut b = [0u8; ACCOUNT_LEN];
            put_u32(&mut b, 0, a.id);
            put_u32(&mut b, 4, a.open_orders);
            put_u64(&mut b, 8, a.window_sec);
            put_u64(&mut b, 16, a.window_notional);
            out.extend_from_slice(&b);
            for bal in l.dense(slot) {
                let mut b = [0u8; BALANCE_LEN];
                put_u64(&mut b, 0, bal.available);
                put_u64(&mut b, 8, bal.held);
                out.extend_from_slice(&b);
            }
        }
    }
}

/// The money section as read: the rules, then each account's state.
pub(super) struct Money {
    pub(super) rules: Risk,
    pub(super) accounts: Vec<AccountRecord>,
}

/// One account as the section stores it, with the offset of its record (for errors).
pub(super) struct AccountRecord {
    at: usize,
    id: AccountId,
    open_orders: u32,
    window_sec: u64,
    window_notional: u64,
    /// By asset position (every asset, zeros included).
    balances: Vec<Balance>,
}

/// Read the money section (its balances are checked once the orders are in).
pub(super) fn read_money(c: &mut Cursor<'_>) -> Result<Money, SnapshotError> {
    let (hat, h) = c.take(HEADER_LEN)?;
    if u32_at(h, 20) != 0 {
        return Err(field(
            "money section reserved",
            hat + 20,
            u32_at(h, 20) as u64,
        ));
    }
    let count = |at: usize| u32_at(h, at) as usize;
    let mut rules = Risk {
        fee_account: u32_at(h, 16),
        limits: read_limits(c)?,
        ..Risk::default()
    };
    for _ in 0..count(0) {
        let (at, b) = c.take(ASSET_LEN)?;
        let id = u32_at(b, 0);
        ascending(
            rules.assets.last().map(|a| a.id),
            id,
            "asset (not ascending)",
            at,
        )?;
        if b[5] != 0 {
            return Err(field("asset reserved", at + 5, b[5] as u64));
        }
        let len = u16::from_le_bytes([b[6], b[7]]) as usize;
        let (nat, name) = c.take(len)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| field("asset name (not UTF-8)", nat, len as u64))?
            .to_string();
        rules.assets.push(Asset {
            id,
            name,
            scale: b[4],
        });
    }
    for _ in 0..count(4) {
        let (at, b) = c.take(FUNDING_LEN)?;
        let symbol = u32_at(b, 0);
        let prev = rules.funding.last().map(|(s, _)| *s);
        ascending(prev, symbol, "funding instrument (not ascending)", at)?;
        if u32_at(b, 20) != 0 {
            return Err(field("funding reserved", at + 20, u32_at(b, 20) as u64));
        }
        rules.funding.push((
            symbol,
            Funding {
                base: u32_at(b, 4),
                quote: u32_at(b, 8),
                maker_fee_bps: u32_at(b, 12),
                taker_fee_bps: u32_at(b, 16),
                base_unit: u64_at(b, 24),
                quote_unit: u64_at(b, 32),
            },
        ));
    }
    for _ in 0..count(8) {
        let (at, b) = c.take(8)?;
        let account = u32_at(b, 0);
        let prev = rules.account_limits.last().map(|(a, _)| *a);
        ascending(prev, account, "account limits (not ascending)", at)?;
        if u32_at(b, 4) != 0 {
            return Err(field(
                "account limits reserved",
                at + 4,
                u32_at(b, 4) as u64,
            ));
        }
        let limits = read_limits(c)?;
        rules.account_limits.push((account, limits));
    }
    rules
        .check()
        .map_err(|why| SnapshotError::Money { at: hat, why })?;
    let n_assets = rules.assets.len();
    let mut accounts: Vec<AccountRecord> = Vec::new();
    for _ in 0..count(12) {
        let (at, b) = c.take(ACCOUNT_LEN)?;
        let id = u32_at(b, 0);
        ascending(
            accounts.last().map(|a| a.id),
            id,
            "account (not ascending)",
            at,
        )?;
        let len = n_assets
            .checked_mul(BALANCE_LEN)
            .ok_or_else(|| field("asset count", hat, n_assets as u64))?;
        let (_, bals) = c.take(len)?;
        let balances = bals
            .chunks_exact(BALANCE_LEN)
            .map(|x| Balance {
                available: u64_at(x, 0),
                held: u64_at(x, 8),
            })
            .collect();
        accounts.push(AccountRecord {
            at,
            id,
            open_orders: u32_at(b, 4),
            window_sec: u64_at(b, 8),
            window_notional: u64_at(b, 16),
            balances,
        });
    }
    Ok(Money { rules, accounts })
}

impl Engine {
    /// Give the accounts of `money` to an engine built with its rules; each asset's supply
    /// becomes the sum of its balances (refused when it does not fit a u64).
    pub(super) fn restore_money(
        &mut self,
        accounts: Vec<AccountRecord>,
    ) -> Result<(), SnapshotError> {
        let l = self
            .ledger
            .as_mut()
            .expect("built with the section's rules");
        for r in accounts {
            for (a, bal) in r.balances.iter().enumerate() {
                l.supply[a] = bal
                    .total()
                    .checked_add(l.supply[a] as u128)
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| {
                        field("balance (asset total above 2^64 - 1)", r.at, r.id as u64)
                    })?;
            }
            let slot = l.slot(r.id);
            let acc = &mut l.accounts[slot];
            acc.open_orders = r.open_orders;
            acc.window_sec = r.window_sec;
            acc.window_notional = r.window_notional;
            l.set_dense(slot, &r.balances);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instrument::Instrument;

    fn funded() -> Engine {
        let asset = |id, name: &str| Asset {
            id,
            name: name.into(),
            scale: 2,
        };
        let funding = Funding {
            base: 1,
            quote: 2,
            base_unit: 10,
            quote_unit: 1,
            maker_fee_bps: 5,
            taker_fee_bps: 7,
        };
        let rules = Risk {
            // Out of order on purpose: the section is written ascending.
            assets: vec![asset(2, "USD"), asset(1, "BTC")],
            fee_account: 99,
            funding: vec![(4, funding)],
            limits: Limits {
                max_open_orders: 9,
                ..Limits::default()
            },
            account_limits: vec![(3, Limits::default())],
        };
        let mut e = Engine::with_risk(0, &[Instrument::simple(4, "BTC/USD")], rules).unwrap();
        let mut out = Vec::new();
        let mut seq = 0;
        let mut apply = |e: &mut Engine, cmd| {
            seq += 1;
            e.apply(seq, seq * 1_000_000_000, &cmd, &mut out);
        };
        for (account, asset, amount) in [(1, 2, 1_000_000), (2, 1, 5_000), (3, 2, 70)] {
            let action = AdminAction::Deposit {
                account,
                asset,
                amount,
            };
            apply(
                &mut e,
                Command::Admin(AdminCommand {
                    action,
                    request_id: 1,
                }),
            );
        }
        apply(
            &mut e,
            Command::New(NewOrder::limit(2, 4, 1, Side::Sell, 100, 30)),
        );
        apply(
            &mut e,
            Command::New(NewOrder::limit(1, 4, 1, Side::Buy, 101, 20)),
        );
        apply(
            &mut e,
            Command::New(NewOrder::limit(1, 4, 2, Side::Buy, 90, 50)),
        );
        e.validate().unwrap();
        e
    }

    /// The body and the offset of its money section.
    fn body(e: &Engine) -> (Vec<u8>, usize) {
        let mut bytes = Vec::new();
        e.write_snapshot(&mut bytes);
        let mut section = Vec::new();
        e.write_money(&mut section);
        let at = bytes.len() - section.len();
        (bytes, at)
    }

    #[test]
    fn rules_and_balances_survive_a_snapshot() {
        let e = funded();
        let (bytes, _) = body(&e);
        let back = Engine::read_snapshot(&bytes).unwrap();
        assert_eq!(back.state_hash(), e.state_hash());
        for account in [1, 2, 3, 99] {
            assert_eq!(
                back.balances(account),
                e.balances(account),
                "account {account}"
            );
        }
        assert_eq!(back.supply(), e.supply());
        assert_eq!(back.funded_accounts(), e.funded_accounts());
        let mut rules = e.risk().unwrap().clone();
        rules.assets.sort_by_key(|a| a.id);
        assert_eq!(back.risk(), Some(&rules));
        // An engine without rules writes no section and loads without rules.
        let plain = Engine::new(0, &[Instrument::simple(4, "BTC/USD")]);
        let mut bytes = Vec::new();
        plain.write_snapshot(&mut bytes);
        assert!(Engine::read_snapshot(&bytes).unwrap().risk().is_none());
    }

    #[test]
    fn damaged_money_sections_are_refused_by_name() {
        let e = funded();
        let (bytes, at) = body(&e);
        let refused = |bad: &[u8]| Engine::read_snapshot(bad).unwrap_err().to_string();
        let mut bad = bytes.clone();
        put_u32(&mut bad, at + 20, 1);
        assert!(
            refused(&bad).contains("money section reserved"),
            "{}",
            refused(&bad)
        );
        // The first asset's id raised above the second's: not ascending.
        let first = at + HEADER_LEN + LIMITS_LEN;
        let mut bad = bytes.clone();
        put_u32(&mut bad, first, 7);
        assert!(
            refused(&bad).contains("asset (not ascending)"),
            "{}",
            refused(&bad)
        );
        // A fee above 10,000 bps: the rules' own check names it.
        let funding = first + 2 * ASSET_LEN + "BTC".len() + "USD".len();
        let mut bad = bytes.clone();
        put_u32(&mut bad, funding + 16, 10_001);
        assert!(
            refused(&bad).contains("taker fee 10001 bps"),
            "{}",
            refused(&bad)
        );
        // A held amount that is not what the resting orders need.
        let mut bad = bytes.clone();
        let last_held = bad.len() - 8;
        let held = u64_at(&bad, last_held);
        put_u64(&mut bad, last_held, held + 1);
        assert!(
            refused(&bad).contains("its orders need"),
            "{}",
            refused(&bad)
        );
        // Cut short.
        assert!(refused(&bytes[..bytes.len() - 1]).contains("ends at byte"));
    }
}

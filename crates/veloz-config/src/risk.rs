//! Money (issue 17): `[[assets]]`, the funding fields of `[[instruments]]` (`base`, `quote`,
//! `base_unit`, `quote_unit`, `maker_fee_bps`, `taker_fee_bps`) and `[risk]` (the fee account
//! and the pre-trade limits), turned into the matching core's [`Risk`]; and the one place that
//! builds a shard's engine from the configuration ([`Config::engine`]).
//!
//! Contract (docs/operations.md, "Money"):
//! - Money is **on** iff `[[assets]]` is non-empty. Off, `[risk]` and every funding field are
//!   refused (they would be ignored), [`Config::risk`] is `None` and engines keep no
//!   balances, exactly as before money existed.
//! - On, `[risk] fee_account` is required and not 0 (it need not be a `[[accounts]]` entry:
//!   the venue's fee account usually never logs on). Each funded instrument names two
//!   distinct configured assets by name; units are > 0, fees at most 10,000 bps.
//! - Limits: `[risk]` holds the default of every account (0 = no limit); a
//!   `[[risk.accounts]]` entry replaces, for its account, each limit it sets, and inherits
//!   the ones it leaves out from `[risk]` (write 0 to lift one for that account).
//! - Balances are per-shard slices: every shard's engine gets the same rules, keeps the
//!   balances of the accounts trading its instruments, and applies the limits on its own.
//!
//! Every refusal names the asset, instrument, account or field and its value.

use serde::{Deserialize, Serialize};

use veloz_core::risk::{Asset, AssetId, Funding, Limits, Risk};
use veloz_core::{AccountId, Engine, Instrument};

use crate::routing::Routing;
use crate::{symbol_char, Config, ConfigError, SYMBOL_MAX_LEN};

/// Largest asset scale (10^18 still fits a u64 amount).
const MAX_SCALE: u8 = 18;
/// Basis points in one whole: the highest fee.
const MAX_FEE_BPS: u32 = 10_000;

/// `[[assets]]`: a currency or a coin. Amounts of it are integer counts of `10^-scale`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// Id in the journal (admin records, snapshots) and on the wire; stable for its life.
    pub id: AssetId,
    /// Unique name, the character rules of a symbol (`USD`, `BTC`, `USDT.E`); instruments
    /// and the admin requests name the asset by it.
    pub name: String,
    /// Decimal places of its smallest unit (0..=18): with 2, an amount of 150 is 1.50.
    #[serde(default)]
    pub scale: u8,
}

/// `[risk]`: the fee account and the default pre-trade limits (0 = no limit). Only with
/// `[[assets]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// The account every fee is paid to (required, not 0). It need not log on; an operator
    /// withdraws from it (`POST /admin/withdraw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_account: Option<AccountId>,
    /// Largest quantity of one order or replace.
    pub max_order_qty: u64,
    /// Largest notional of one order or replace, in the quote asset's smallest units
    /// (`price * qty` on an instrument without funding); a market order at its protection
    /// price.
    pub max_order_notional: u64,
    /// Most open orders of an account at once, per shard.
    pub max_open_orders: u32,
    /// Most notional of an account's new orders within one second of the sequencer's clock,
    /// per shard.
    pub max_notional_per_sec: u64,
    /// `[[risk.accounts]]`: accounts with their own limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountLimitsConfig>,
}

/// `[[risk.accounts]]`: one account's limits; each one set replaces the `[risk]` default,
/// each one left out inherits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountLimitsConfig {
    pub account: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_order_qty: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_order_notional: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_orders: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_notional_per_sec: Option<u64>,
}

impl RiskConfig {
    /// The default limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_order_qty: self.max_order_qty,
            max_order_notional: self.max_order_notional,
            max_open_orders: self.max_open_orders,
            max_notional_per_sec: self.max_notional_per_sec,
        }
    }
}

impl AccountLimitsConfig {
    /// This account's limits over `defaults`.
    pub fn limits(&self, defaults: Limits) -> Limits {
        Limits {
            max_order_qty: self.max_order_qty.unwrap_or(defaults.max_order_qty),
            max_order_notional: self
                .max_order_notional
                .unwrap_or(defaults.max_order_notional),
            max_open_orders: self.max_open_orders.unwrap_or(defaults.max_open_orders),
            max_notional_per_sec: self
                .max_notional_per_sec
                .unwrap_or(defaults.max_notional_per_sec),
        }
    }
}

fn bad(why: String) -> ConfigError {
    ConfigError::InvalidMoney(why)
}

impl Config {
    /// Whether money is on: at least one `[[assets]]` entry.
    pub fn money(&self) -> bool {
        !self.assets.is_empty()
    }

    /// The asset named `v` (its name, else its id).
    pub fn asset(&self, v: &str) -> Option<&AssetConfig> {
        (self.assets.iter().find(|a| a.name == v))
            .or_else(|| self.assets.iter().find(|a| a.id.to_string() == v))
    }

    /// The money rules every shard's engine gets, `None` when money is off. Expects a
    /// validated configuration.
    pub fn risk(&self) -> Option<Risk> {
        if !self.money() {
            return None;
        }
        let id_of = |name: &Option<String>| {
            let name = name.as_deref()?;
            self.assets.iter().find(|a| a.name == name).map(|a| a.id)
        };
        let funding = self
            .instruments
            .iter()
            .filter_map(|i| {
                Some((
                    i.id,
                    Funding {
                        base: id_of(&i.base)?,
                        quote: id_of(&i.quote)?,
                        base_unit: i.base_unit,
                        quote_unit: i.quote_unit,
                        maker_fee_bps: i.maker_fee_bps,
                        taker_fee_bps: i.taker_fee_bps,
                    },
                ))
            })
            .collect();
        let r = self.risk.clone().unwrap_or_default();
        let limits = r.limits();
        Some(Risk {
            assets: (self.assets.iter())
                .map(|a| Asset {
                    id: a.id,
                    name: a.name.clone(),
                    scale: a.scale,
                })
                .collect(),
            fee_account: r.fee_account.unwrap_or(0),
            funding,
            limits,
            account_limits: (r.accounts.iter())
                .map(|a| (a.account, a.limits(limits)))
                .collect(),
        })
    }

    /// The engine of shard `shard` over `instruments`, as every part of Veloz builds it (the
    /// shards, recovery, a standby, `veloz replay`): with the money rules when money is on
    /// ([`Engine::with_risk`]), else [`Engine::new`].
    ///
    /// # Panics
    /// When the money rules fail [`Risk::check`], which [`Config::validate`] refuses first:
    /// only a configuration changed after validation can get here.
    pub fn engine(&self, shard: u16, instruments: &[Instrument]) -> Engine {
        match self.risk() {
            None => Engine::new(shard, instruments),
            Some(risk) => Engine::with_risk(shard, instruments, risk)
                .unwrap_or_else(|e| panic!("money rules of an unvalidated config: {e}")),
        }
    }

    /// [`Config::engine`] for the instruments `routing` gives shard `shard`.
    pub fn shard_engine(&self, routing: &Routing, shard: usize) -> Engine {
        let instruments: Vec<Instrument> = (self.instruments().into_iter())
            .filter(|i| routing.shard_of(i.id) == Some(shard))
            .collect();
        self.engine(shard as u16, &instruments)
    }

    /// What serde cannot check about money (see the module docs).
    pub(crate) fn check_money(&self) -> Result<(), ConfigError> {
        for (i, a) in self.assets.iter().enumerate() {
            if let Some(prev) = self.assets[..i].iter().find(|p| p.id == a.id) {
                return Err(bad(format!(
                    "asset id {} is used twice (names {} and {})",
                    a.id, prev.name, a.name
                )));
            }
            if let Some(prev) = self.assets[..i].iter().find(|p| p.name == a.name) {
                return Err(bad(format!(
                    "asset name {:?} is used twice (ids {} and {})",
                    a.name, prev.id, a.id
                )));
            }
            let first_bad = a.name.chars().enumerate().find(|(_, c)| !symbol_char(*c));
            if let Some((at, c)) = first_bad {
                return Err(bad(format!(
                    "asset {}: name {:?} has {c:?} at character {}: a name is 1 to \
                     {SYMBOL_MAX_LEN} characters out of A-Z 0-9 . _ / -",
                    a.id,
                    a.name,
                    at + 1
                )));
            }
            if a.name.is_empty() || a.name.len() > SYMBOL_MAX_LEN {
                return Err(bad(format!(
                    "asset {}: name {:?} has {} characters: a name is 1 to {SYMBOL_MAX_LEN}",
                    a.id,
                    a.name,
                    a.name.len()
                )));
            }
            if a.scale > MAX_SCALE {
                return Err(bad(format!(
                    "asset {}: scale = {} is invalid: must be <= {MAX_SCALE}",
                    a.name, a.scale
                )));
            }
        }
        for inst in &self.instruments {
            self.check_funding(inst)?;
        }
        if !self.money() {
            if self.risk.is_some() {
                return Err(bad(
                    "[risk] is set but no [[assets]] are configured: money (and its limits) \
                     is on only with at least one asset"
                        .into(),
                ));
            }
            return Ok(());
        }
        let r = self.risk.clone().unwrap_or_default();
        match r.fee_account {
            None => {
                return Err(bad(
                    "[risk] fee_account is missing: it is required when [[assets]] are \
                     configured"
                        .into(),
                ))
            }
            Some(0) => {
                return Err(bad(
                    "[risk] fee_account = 0 is invalid: must be a non-zero account id".into(),
                ))
            }
            Some(_) => {}
        }
        for (i, a) in r.accounts.iter().enumerate() {
            if r.accounts[..i].iter().any(|p| p.account == a.account) {
                return Err(bad(format!(
                    "[[risk.accounts]] lists account {} twice",
                    a.account
                )));
            }
        }
        match self.risk() {
            Some(risk) => risk.check().map_err(bad),
            None => Ok(()),
        }
    }

    /// One instrument's funding fields.
    fn check_funding(&self, inst: &crate::InstrumentConfig) -> Result<(), ConfigError> {
        let s = &inst.symbol;
        let (base, quote) = match (&inst.base, &inst.quote) {
            (None, None) => {
                let set = [
                    ("base_unit", inst.base_unit, 1),
                    ("quote_unit", inst.quote_unit, 1),
                    ("maker_fee_bps", inst.maker_fee_bps as u64, 0),
                    ("taker_fee_bps", inst.taker_fee_bps as u64, 0),
                ];
                if let Some((field, value, _)) = set.iter().find(|(_, v, d)| v != d) {
                    return Err(bad(format!(
                        "instrument {s}: {field} = {value} is set but the instrument has no \
                         base and quote assets"
                    )));
                }
                return Ok(());
            }
            (Some(b), Some(q)) => (b, q),
            (Some(b), None) => {
                return Err(bad(format!(
                    "instrument {s}: base = {b:?} needs quote too (both or neither)"
                )))
            }
            (None, Some(q)) => {
                return Err(bad(format!(
                    "instrument {s}: quote = {q:?} needs base too (both or neither)"
                )))
            }
        };
        if !self.money() {
            return Err(bad(format!(
                "instrument {s}: base = {base:?} and quote = {quote:?} but no [[assets]] are \
                 configured"
            )));
        }
        let names: Vec<&str> = self.assets.iter().map(|a| a.name.as_str()).collect();
        for (field, name) in [("base", base), ("quote", quote)] {
            if !names.contains(&name.as_str()) {
                return Err(bad(format!(
                    "instrument {s}: {field} = {name:?} is not a configured asset (assets: {})",
                    names.join(", ")
                )));
            }
        }
        if base == quote {
            return Err(bad(format!(
                "instrument {s}: base and quote are the same asset {base:?}"
            )));
        }
        for (field, value) in [
            ("base_unit", inst.base_unit),
            ("quote_unit", inst.quote_unit),
        ] {
            if value == 0 {
                return Err(bad(format!(
                    "instrument {s}: {field} = 0 is invalid: must be > 0"
                )));
            }
        }
        for (field, value) in [
            ("maker_fee_bps", inst.maker_fee_bps),
            ("taker_fee_bps", inst.taker_fee_bps),
        ] {
            if value > MAX_FEE_BPS {
                return Err(bad(format!(
                    "instrument {s}: {field} = {value} is invalid: must be <= {MAX_FEE_BPS}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "risk_tests.rs"]
mod tests;

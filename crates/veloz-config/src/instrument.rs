//! `[[instruments]]`: one tradable instrument, its rules and (with money on, `crate::risk`)
//! the two assets it trades and its fees.

use serde::{Deserialize, Serialize};

use veloz_core::Instrument;

use crate::{symbol, ConfigError};

/// One tradable instrument (`[[instruments]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    /// Numeric id used on the wire and in the journal; stable for the instrument's life.
    pub id: u32,
    /// Human-readable symbol, unique: 1 to [`crate::SYMBOL_MAX_LEN`] characters out of `A-Z`,
    /// `0-9`, `.`, `_`, `/` and `-` (`AAPL`, `BRK.B`, `ES_Z5`, `BTC/USD`, `BTC-PERP`), so that it
    /// needs no quoting in the trade tape's CSV, the logs, metrics labels or an admin URL.
    pub symbol: String,
    /// Prices are integer counts of `10^-price_scale` quote units (0..=18).
    #[serde(default)]
    pub price_scale: u8,
    /// Every price must be a positive multiple of this (in price units).
    #[serde(default = "one_i64")]
    pub tick_size: i64,
    /// Every quantity must be a positive multiple of this.
    #[serde(default = "one_u64")]
    pub lot_size: u64,
    /// Smallest order quantity accepted.
    #[serde(default = "one_u64")]
    pub min_qty: u64,
    /// Largest order quantity accepted.
    #[serde(default = "default_max_qty")]
    pub max_qty: u64,
    /// Limit prices further than this from the reference price (in basis points) are
    /// rejected; 0 disables the band.
    #[serde(default)]
    pub price_band_bps: u32,
    /// Reference price for the band before the first trade (0 = none); afterwards the last
    /// trade price is used.
    #[serde(default)]
    pub reference_price: i64,
    /// A market order trades at most this many ticks through the best opposite price it finds
    /// on arrival; the rest is cancelled.
    #[serde(default = "default_protection")]
    pub market_protection_ticks: u32,
    /// Pin the instrument to this shard. Absent: its position among the instruments sorted
    /// by id, modulo the shard count (see `runtime::routing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// With money on (`[[assets]]`, docs/operations.md, "Money"): the asset bought and sold,
    /// by its name in `[[assets]]`. `base` and `quote` are both set or both absent; absent,
    /// the instrument moves no money (its orders still meet the `[risk]` limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The asset prices are paid in (and fees), by name; distinct from `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Smallest base units per quantity unit (> 0): `qty` costs `qty * base_unit` base.
    #[serde(default = "one_u64", skip_serializing_if = "is_one")]
    pub base_unit: u64,
    /// Smallest quote units per price unit per quantity unit (> 0): `qty` at `price` is
    /// worth `price * qty * quote_unit` quote (the notional).
    #[serde(default = "one_u64", skip_serializing_if = "is_one")]
    pub quote_unit: u64,
    /// Fee of the resting side of a fill, basis points of its notional, rounded up, paid in
    /// the quote asset to `[risk] fee_account` (0..=10000).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub maker_fee_bps: u32,
    /// Fee of the incoming side of a fill, as `maker_fee_bps`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub taker_fee_bps: u32,
}

fn one_i64() -> i64 {
    1
}
fn one_u64() -> u64 {
    1
}
fn default_max_qty() -> u64 {
    1_000_000_000
}
fn default_protection() -> u32 {
    100
}
fn is_one(v: &u64) -> bool {
    *v == 1
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl InstrumentConfig {
    pub(crate) fn invalid(
        &self,
        field: &'static str,
        value: i128,
        why: &'static str,
    ) -> ConfigError {
        ConfigError::InvalidInstrument {
            symbol: self.symbol.clone(),
            field,
            value,
            why,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        symbol::check(self.id, &self.symbol)?;
        if self.price_scale > 18 {
            return Err(self.invalid("price_scale", self.price_scale as i128, "must be <= 18"));
        }
        if self.tick_size <= 0 {
            return Err(self.invalid("tick_size", self.tick_size as i128, "must be > 0"));
        }
        if self.lot_size == 0 {
            return Err(self.invalid("lot_size", 0, "must be > 0"));
        }
        if self.min_qty == 0 || !self.min_qty.is_multiple_of(self.lot_size) {
            return Err(self.invalid(
                "min_qty",
                self.min_qty as i128,
                "must be a positive multiple of lot_size",
            ));
        }
        if self.max_qty < self.min_qty {
            return Err(self.invalid("max_qty", self.max_qty as i128, "must be >= min_qty"));
        }
        if self.reference_price < 0 || self.reference_price % self.tick_size != 0 {
            return Err(self.invalid(
                "reference_price",
                self.reference_price as i128,
                "must be 0 or a positive multiple of tick_size",
            ));
        }
        Ok(())
    }

    /// The matching core's form of this instrument.
    pub fn to_instrument(&self) -> Instrument {
        Instrument {
            id: self.id,
            symbol: self.symbol.clone(),
            price_scale: self.price_scale,
            tick_size: self.tick_size,
            lot_size: self.lot_size,
            min_qty: self.min_qty,
            max_qty: self.max_qty,
            price_band_bps: self.price_band_bps,
            reference_price: self.reference_price,
            market_protection_ticks: self.market_protection_ticks,
        }
    }
}

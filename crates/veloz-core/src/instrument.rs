//! Instrument rules the matching core enforces: tick, lot, quantity limits, price band and
//! market protection.
//!
//! An [`Instrument`] is the validated, pure form of a configured instrument. Its checks are
//! integer-only; band arithmetic is done in `i128` so that no price or band can overflow.

use super::types::{Price, Qty, RejectReason, SymbolId};

/// Trading rules of one instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instrument {
    pub id: SymbolId,
    pub symbol: String,
    /// Prices are counts of `10^-price_scale` quote units (informational for the core).
    pub price_scale: u8,
    /// Every price must be a positive multiple of this.
    pub tick_size: Price,
    /// Every quantity must be a positive multiple of this.
    pub lot_size: Qty,
    pub min_qty: Qty,
    pub max_qty: Qty,
    /// Limit prices more than this many basis points away from the reference price are
    /// rejected. 0 disables the band.
    pub price_band_bps: u32,
    /// Reference price before the first trade (0 = none: no band until the first trade).
    /// After a trade, the last trade price is the reference.
    pub reference_price: Price,
    /// A market order trades at most this many ticks through the best opposite price it
    /// found on arrival; the rest is cancelled.
    pub market_protection_ticks: u32,
}

impl Instrument {
    /// A permissive instrument for tests and benches: tick 1, lot 1, no band.
    pub fn simple(id: SymbolId, symbol: &str) -> Instrument {
        Instrument {
            id,
            symbol: symbol.to_string(),
            price_scale: 0,
            tick_size: 1,
            lot_size: 1,
            min_qty: 1,
            max_qty: u32::MAX as Qty,
            price_band_bps: 0,
            reference_price: 0,
            market_protection_ticks: 1_000_000,
        }
    }

    /// Check a limit price: positive, on the tick, inside the band around `reference`
    /// (`0` = no reference yet).
    pub fn check_price(&self, price: Price, reference: Price) -> Result<(), RejectReason> {
        if price <= 0 {
            return Err(RejectReason::InvalidPrice);
        }
        if price % self.tick_size != 0 {
            return Err(RejectReason::PriceOffTick);
        }
        if self.price_band_bps != 0 && reference > 0 {
            let diff = (price as i128 - reference as i128).abs();
            // |price - ref| / ref > band / 10_000, kept in integers.
            if diff * 10_000 > reference as i128 * self.price_band_bps as i128 {
                return Err(RejectReason::PriceOutsideBand);
            }
        }
        Ok(())
    }

    /// Check a quantity: on the lot and inside `[min_qty, max_qty]`.
    pub fn check_qty(&self, qty: Qty) -> Result<(), RejectReason> {
        if qty < self.min_qty || qty == 0 {
            return Err(RejectReason::QtyBelowMin);
        }
        if qty > self.max_qty {
            return Err(RejectReason::QtyAboveMax);
        }
        if !qty.is_multiple_of(self.lot_size) {
            return Err(RejectReason::QtyOffLot);
        }
        Ok(())
    }

    /// The worst price a market order may trade at, given the best opposite price on
    /// arrival: `best ± market_protection_ticks * tick_size`, never below one tick.
    pub fn market_limit(&self, best_opposite: Price, buying: bool) -> Price {
        let span = (self.market_protection_ticks as i128) * (self.tick_size as i128);
        let limit = if buying {
            best_opposite as i128 + span
        } else {
            best_opposite as i128 - span
        };
        limit.clamp(self.tick_size as i128, Price::MAX as i128) as Price
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst() -> Instrument {
        Instrument {
            id: 1,
            symbol: "X".into(),
            price_scale: 4,
            tick_size: 100,
            lot_size: 10,
            min_qty: 10,
            max_qty: 1_000,
            price_band_bps: 500,
            reference_price: 0,
            market_protection_ticks: 5,
        }
    }

    #[test]
    fn price_checks_name_each_reason() {
        let i = inst();
        assert_eq!(i.check_price(0, 0), Err(RejectReason::InvalidPrice));
        assert_eq!(i.check_price(-100, 0), Err(RejectReason::InvalidPrice));
        assert_eq!(i.check_price(10_050, 0), Err(RejectReason::PriceOffTick));
        assert_eq!(i.check_price(10_000, 0), Ok(()));
        // 5% band around 10_000: 9_500 ..= 10_500 allowed.
        assert_eq!(i.check_price(10_500, 10_000), Ok(()));
        assert_eq!(i.check_price(9_500, 10_000), Ok(()));
        assert_eq!(
            i.check_price(10_600, 10_000),
            Err(RejectReason::PriceOutsideBand)
        );
        assert_eq!(
            i.check_price(9_400, 10_000),
            Err(RejectReason::PriceOutsideBand)
        );
        // Extreme values do not overflow.
        assert_eq!(
            i.check_price(Price::MAX - Price::MAX % 100, 10_000),
            Err(RejectReason::PriceOutsideBand)
        );
    }

    #[test]
    fn qty_checks_name_each_reason() {
        let i = inst();
        assert_eq!(i.check_qty(0), Err(RejectReason::QtyBelowMin));
        assert_eq!(i.check_qty(5), Err(RejectReason::QtyBelowMin));
        assert_eq!(i.check_qty(15), Err(RejectReason::QtyOffLot));
        assert_eq!(i.check_qty(1_010), Err(RejectReason::QtyAboveMax));
        assert_eq!(i.check_qty(20), Ok(()));
    }

    #[test]
    fn market_limit_is_banded_and_clamped() {
        let i = inst();
        assert_eq!(i.market_limit(10_000, true), 10_500);
        assert_eq!(i.market_limit(10_000, false), 9_500);
        assert_eq!(i.market_limit(200, false), 100);
    }
}

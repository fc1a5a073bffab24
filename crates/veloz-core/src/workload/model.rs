//! exchange-core's workload model, shared by the offline generator and the online load
//! generator (the `veloz-load` crate): prices and sizes ([`PriceModel`], [`draw_lots`]), the
//! command mix ([`Mix`], [`Kind`]) and the choice of symbol ([`symbol_weights`],
//! [`SymbolPicker`]).
//!
//! Contract: everything here is pure: no clock, no engine, no state beyond what the caller
//! passes in. Every draw comes from the caller's PCG64 stream in a fixed order, so the same
//! seed gives the same draws; each caller keeps its own view of the last trade price.

use rand::Rng;
use rand_distr::{Distribution, Pareto};
use rand_pcg::Pcg64;

use crate::{Instrument, Price, Qty, Side, SymbolId};

/// Command mix in percent; the four weights sum to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub gtc: u32,
    pub ioc: u32,
    pub cancel: u32,
    pub moves: u32,
}

impl Mix {
    /// exchange-core's benchmark mix: 9 % GTC, 3 % IOC, 6 % cancel, 82 % move.
    pub const EXCHANGE_CORE: Mix = Mix {
        gtc: 9,
        ioc: 3,
        cancel: 6,
        moves: 82,
    };
}

/// Symbol weights as exchange-core draws them: Pareto(scale 0.001, shape 1.5) samples,
/// normalised to sum to 1. A single symbol gets weight 1.
pub fn symbol_weights(n: usize, rng: &mut Pcg64) -> Vec<f64> {
    if n <= 1 {
        return vec![1.0; n];
    }
    let pareto = Pareto::new(0.001, 1.5).expect("valid Pareto parameters");
    let raw: Vec<f64> = (0..n).map(|_| pareto.sample(rng)).collect();
    let sum: f64 = raw.iter().sum();
    raw.into_iter().map(|x| x / sum).collect()
}

/// exchange-core's price and size model of one book (`TestOrdersGenerator`), pure: the
/// offline generator here and the online load generator (the `veloz-load` crate) both draw from it,
/// each with its own view of the last trade price.
///
/// Prices are drawn in ticks around a central price and turned into prices the instrument
/// accepts by [`PriceModel::price`] (on the tick, at least one tick, inside the band).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceModel {
    pub symbol: SymbolId,
    pub tick: Price,
    lot: Qty,
    min_qty: Qty,
    max_qty: Qty,
    band_bps: u32,
    configured_reference: Price,
    /// Central price, in ticks.
    pub center: i64,
    /// Spread of GTC placements, in ticks: `min(5 % of the center, 10_000)` by default.
    pub deviation: i64,
    /// The range, in ticks: five deviations either side of the center (IOC limits sit at
    /// its edges).
    pub min: i64,
    pub max: i64,
}

impl PriceModel {
    /// The model of `inst`: its central price is the configured reference price, else
    /// `center`, else drawn from `rng` as exchange-core does (`10^(3.3 + 1.5u + 1.5u)`).
    pub fn new(inst: &Instrument, center: Option<i64>, rng: &mut Pcg64) -> PriceModel {
        let center = if inst.reference_price > 0 {
            (inst.reference_price / inst.tick_size).max(1)
        } else if let Some(c) = center {
            c.max(1)
        } else {
            let e = 3.3 + rng.random::<f64>() * 1.5 + rng.random::<f64>() * 1.5;
            10f64.powf(e) as i64
        };
        let mut model = PriceModel {
            symbol: inst.id,
            tick: inst.tick_size,
            lot: inst.lot_size,
            min_qty: inst.min_qty.div_ceil(inst.lot_size) * inst.lot_size,
            max_qty: inst.max_qty / inst.lot_size * inst.lot_size,
            band_bps: inst.price_band_bps,
            configured_reference: inst.reference_price,
            center,
            deviation: 0,
            min: 0,
            max: 0,
        };
        model.set_deviation((center * 5 / 100).clamp(1, 10_000));
        model
    }

    /// Use another spread (at least one tick); the range follows it.
    pub fn set_deviation(&mut self, deviation: i64) {
        self.deviation = deviation.max(1);
        self.min = (self.center - 5 * self.deviation).max(1);
        self.max = self.center + 5 * self.deviation;
    }

    /// A GTC limit in ticks on the passive side of `last` (bids at or below, asks at or
    /// above): the mean of four uniform draws over a spread that is itself skewed towards
    /// zero, so the book is dense near the touch and thin far from it.
    pub fn passive_ticks(&self, side: Side, last: i64, rng: &mut Pcg64) -> i64 {
        let dev = 1 + (rng.random::<f64>().powi(2) * self.deviation as f64) as i64;
        let mut p: i64 = (0..4).map(|_| rng.random_range(0..dev)).sum();
        p = p / 4 * 2 - dev;
        if (p > 0) ^ (side == Side::Sell) {
            p = -p;
        }
        (last + p).max(1)
    }

    /// An IOC limit in ticks: the edge of the range, so it takes what is there.
    pub fn aggressive_ticks(&self, side: Side) -> i64 {
        match side {
            Side::Buy => self.max,
            Side::Sell => self.min,
        }
    }

    /// A move of an order resting at `from` ticks: 1 % of its distance towards `last`, at
    /// least one tick, or one tick either way when it is at `last`.
    pub fn move_step(from: i64, last: i64, rng: &mut Pcg64) -> i64 {
        if from == last {
            if rng.random::<bool>() {
                1
            } else {
                -1
            }
        } else {
            let d = (last - from) as f64 * 0.01;
            if d > 0.0 {
                d.ceil() as i64
            } else {
                d.floor() as i64
            }
        }
    }

    /// A price in ticks as a price the instrument accepts now: at least one tick, and inside
    /// the band around the engine's reference price (`last_trade` or the configured one).
    pub fn price(&self, ticks: i64, last_trade: Price) -> Price {
        let reference = if last_trade > 0 {
            last_trade
        } else {
            self.configured_reference
        };
        let (mut lo, mut hi) = (1i64, i64::MAX / self.tick);
        if self.band_bps != 0 && reference > 0 {
            let max_diff = (reference as i128 * self.band_bps as i128 / 10_000) as i64;
            lo = lo.max((reference - max_diff + self.tick - 1).div_euclid(self.tick));
            hi = hi.min((reference + max_diff).div_euclid(self.tick));
        }
        ticks.clamp(lo, hi.max(lo)) * self.tick
    }

    /// `lots` lots as a quantity the instrument accepts.
    pub fn qty(&self, lots: u64) -> Qty {
        (lots * self.lot).clamp(self.min_qty, self.max_qty.max(self.min_qty))
    }

    /// The smallest quantity the instrument accepts (a multiple of the lot).
    pub fn min_qty(&self) -> Qty {
        self.min_qty
    }
}

/// exchange-core's size: `1 + a*b*c` lots, each uniform in `0..6`.
pub fn draw_lots(rng: &mut Pcg64) -> u64 {
    1 + rng.random_range(0..6u64) * rng.random_range(0..6u64) * rng.random_range(0..6u64)
}

/// What a drawn command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A GTC limit order on the passive side ([`PriceModel::passive_ticks`]).
    Gtc,
    /// An IOC limit order at the edge of the range ([`PriceModel::aggressive_ticks`]).
    Ioc,
    /// Cancel a resting order.
    Cancel,
    /// Move a resting order ([`PriceModel::move_step`]): a replace with its open quantity.
    Move,
}

impl Kind {
    /// exchange-core's feedback rule that holds a book at its target size: while it holds
    /// fewer resting orders than `target` a cancel becomes a GTC; while it holds more, a GTC
    /// becomes a cancel.
    pub fn held_at(self, size: usize, target: usize) -> Kind {
        match self {
            Kind::Cancel if size < target => Kind::Gtc,
            Kind::Gtc if size > target => Kind::Cancel,
            other => other,
        }
    }
}

impl Mix {
    /// Draw one command kind with the mix's weights.
    pub fn draw(&self, rng: &mut Pcg64) -> Kind {
        let total = self.gtc + self.ioc + self.cancel + self.moves;
        let u = rng.random_range(0..total.max(1));
        if u < self.gtc {
            Kind::Gtc
        } else if u < self.gtc + self.ioc {
            Kind::Ioc
        } else if u < self.gtc + self.ioc + self.cancel {
            Kind::Cancel
        } else {
            Kind::Move
        }
    }
}

/// Weighted choice of a symbol (by index) from [`symbol_weights`].
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolPicker {
    cumulative: Vec<f64>,
}

impl SymbolPicker {
    pub fn new(weights: &[f64]) -> SymbolPicker {
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        SymbolPicker { cumulative }
    }

    /// An index into the weights; a single symbol is chosen without drawing.
    pub fn pick(&self, rng: &mut Pcg64) -> usize {
        if self.cumulative.len() <= 1 {
            return 0;
        }
        let u: f64 = rng.random();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

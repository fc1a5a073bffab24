//! The simulation's commands: random orders, cancels, replaces and mass cancels from its
//! sessions, around each instrument's reference price so that they cross, aimed mostly at
//! recent orders.

use rand::Rng;
use rand_pcg::Pcg64;

use veloz_core::{
    CancelOrder, Command, Instrument, MassCancel, NewOrder, OrderKind, ReplaceOrder,
    SelfTradePrevention, Side, TimeInForce,
};
use veloz_engine::mesh::SessionRef;

use super::{Sim, LOCAL_SESSIONS, SHARD};

impl Sim {
    pub(super) fn random_command(&mut self, from: SessionRef) -> Command {
        let rng = &mut self.rng;
        let m = &mut self.model;
        let account = if from.shard == SHARD {
            from.slot as u32 + 1
        } else {
            from.slot as u32 + 1 + LOCAL_SESSIONS as u32
        };
        let client_order_id = m.next_cid;
        m.next_cid += 1;
        let inst = &self.instruments[rng.random_range(0..self.instruments.len())];
        let target = |rng: &mut Pcg64| {
            (!m.orders.is_empty() && rng.random_bool(0.9)).then(|| {
                let from = m.orders.len().saturating_sub(40);
                m.orders[rng.random_range(from..m.orders.len())]
            })
        };
        match rng.random_range(0..100) {
            0..=59 => Command::New(NewOrder {
                account,
                symbol: inst.id,
                client_order_id,
                side: if rng.random_bool(0.5) {
                    Side::Buy
                } else {
                    Side::Sell
                },
                kind: OrderKind::Limit,
                tif: if rng.random_bool(0.75) {
                    TimeInForce::Gtc
                } else {
                    TimeInForce::Ioc
                },
                post_only: rng.random_bool(0.05),
                stp: if rng.random_bool(0.8) {
                    SelfTradePrevention::Allow
                } else {
                    SelfTradePrevention::CancelResting
                },
                price: price_near(inst, rng),
                qty: inst.lot_size * rng.random_range(1..=10),
            }),
            60..=79 => {
                let (order_id, symbol, owner) = target(rng).unwrap_or((99_999, inst.id, account));
                Command::Cancel(CancelOrder {
                    account: if rng.random_bool(0.9) { owner } else { account },
                    symbol,
                    client_order_id,
                    order_id,
                })
            }
            80..=94 => {
                let (order_id, symbol, owner) = target(rng).unwrap_or((99_999, inst.id, account));
                let inst = self
                    .instruments
                    .iter()
                    .find(|i| i.id == symbol)
                    .expect("orders are on the simulated instruments");
                Command::Replace(ReplaceOrder {
                    account: owner,
                    symbol,
                    client_order_id,
                    order_id,
                    price: price_near(inst, rng),
                    qty: inst.lot_size * rng.random_range(1..=10),
                })
            }
            _ => Command::MassCancel(MassCancel {
                account,
                client_order_id,
                symbol: rng.random_bool(0.5).then_some(inst.id),
                reason: veloz_core::CancelReason::MassCancel,
            }),
        }
    }
}

/// A price within four ticks of `inst`'s reference price, so that orders cross.
fn price_near(inst: &Instrument, rng: &mut Pcg64) -> i64 {
    inst.reference_price + rng.random_range(-4..=4) * inst.tick_size
}

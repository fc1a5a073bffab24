//! Answers to members' queries about their orders and money, from the shard's engine:
//! order status (by engine id or by the client order id the order was entered with), pages
//! of open orders, and the shard's slice of the account's balances.
//!
//! Invariants: read-only (nothing is journaled, the book does not move); a query is
//! answered at its place among its session's commands on this shard (the sequencer's inbox
//! keeps them in arrival order), and its answers are released after the reports of every
//! command sequenced before it (the dispatcher holds them behind those); only the asking
//! account's orders are described. Open-order pages walk the shard's resting orders
//! (O(resting orders) per page, like a mass cancel).
//!
//! Paging over every instrument: order ids carry their shard in the top 16 bits
//! ([`veloz_core::Engine`] numbering), so one cursor pages through the shards in turn: a
//! request goes to the shard of its `after_order_id`, and when that shard has nothing more
//! the page ends with the first id of the next shard as the cursor (0 after the last).
//!
//! Balances: each shard keeps the balances of the accounts trading its instruments, so a
//! balance request goes to every shard; each answers its non-zero slices, then a
//! `BalanceEnd`, and the session's gateway sums them into one report (`gateway::balances`).

use std::ops::Range;

use veloz_core::{Engine, OrderRef, RejectReason};
use veloz_wire::{OpenOrdersEnd, OrderStatus, Query, ShardBalance};

use super::mesh::{AnswerKind, QueryMsg};

/// Bits of an order id below its shard number.
const SHARD_SHIFT: u32 = 48;

/// The shards that answer a query: the one that owns the orders it is about, or every
/// shard for balances; or the answer that needs no shard (a cursor past the last shard, an
/// unknown symbol).
pub fn targets(
    query: &Query,
    shard_of_symbol: impl Fn(u32) -> Option<usize>,
    shards: usize,
) -> Result<Range<usize>, AnswerKind> {
    let one = |s: usize| s..s + 1;
    match *query {
        Query::Balances { .. } => Ok(0..shards),
        Query::Status {
            request_id,
            symbol,
            by,
        } => shard_of_symbol(symbol).map(one).ok_or_else(|| {
            let order_id = match by {
                OrderRef::Id(id) => id,
                OrderRef::ClientId(_) => 0,
            };
            AnswerKind::Status(OrderStatus::refused(
                request_id,
                symbol,
                order_id,
                RejectReason::UnknownSymbol,
            ))
        }),
        Query::OpenOrders {
            request_id,
            symbol: Some(symbol),
            ..
        } => shard_of_symbol(symbol)
            .map(one)
            .ok_or(AnswerKind::End(OpenOrdersEnd {
                client_order_id: request_id,
                count: 0,
                next_after_order_id: 0,
                reject_reason: Some(RejectReason::UnknownSymbol),
            })),
        Query::OpenOrders {
            request_id,
            symbol: None,
            after,
            ..
        } => {
            let shard = (after >> SHARD_SHIFT) as usize;
            if shard < shards {
                Ok(one(shard))
            } else {
                Err(AnswerKind::End(OpenOrdersEnd {
                    client_order_id: request_id,
                    count: 0,
                    next_after_order_id: 0,
                    reject_reason: None,
                }))
            }
        }
    }
}

/// Answer `q` from shard `shard`'s `engine` (of `shards`), in order into `out`.
pub fn answer(
    engine: &Engine,
    shard: usize,
    shards: usize,
    q: &QueryMsg,
    out: &mut Vec<AnswerKind>,
) {
    match q.query {
        Query::Status {
            request_id,
            symbol,
            by,
        } => out.push(AnswerKind::Status(
            match engine.order_status(q.account, symbol, by) {
                Ok(view) => OrderStatus::of(request_id, &view),
                Err(reason) => {
                    let order_id = match by {
                        OrderRef::Id(id) => id,
                        OrderRef::ClientId(_) => 0,
                    };
                    OrderStatus::refused(request_id, symbol, order_id, reason)
                }
            },
        )),
        Query::OpenOrders {
            request_id,
            symbol,
            after,
            max,
        } => match engine.open_orders(q.account, symbol, after, max as usize) {
            Err(reason) => out.push(AnswerKind::End(OpenOrdersEnd {
                client_order_id: request_id,
                count: 0,
                next_after_order_id: 0,
                reject_reason: Some(reason),
            })),
            Ok(page) => {
                for view in &page.orders {
                    out.push(AnswerKind::Status(OrderStatus::of(request_id, view)));
                }
                let next_shard = shard + 1;
                let next_after_order_id = match page.orders.last() {
                    Some(last) if page.more => last.order_id,
                    // This shard is done: on to the next one, unless one symbol was asked.
                    _ if symbol.is_none() && next_shard < shards => {
                        (next_shard as u64) << SHARD_SHIFT
                    }
                    _ => 0,
                };
                out.push(AnswerKind::End(OpenOrdersEnd {
                    client_order_id: request_id,
                    count: page.orders.len() as u32,
                    next_after_order_id,
                    reject_reason: None,
                }));
            }
        },
        Query::Balances { request_id, .. } => {
            let shard = shard as u16;
            for (asset, b) in engine.balances(q.account) {
                if b.available != 0 || b.held != 0 {
                    let slice = ShardBalance {
                        shard,
                        asset,
                        available: b.available,
                        held: b.held,
                    };
                    out.push(AnswerKind::Balance { request_id, slice });
                }
            }
            out.push(AnswerKind::BalanceEnd { request_id, shard });
        }
    }
}

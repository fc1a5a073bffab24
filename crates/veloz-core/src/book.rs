//! Storage of resting orders: an order slab with intrusive FIFO lists per price level, and a
//! price ladder per side.
//!
//! Layout:
//! - [`OrderPool`]: a slab of [`OrderNode`]s addressed by `u32` slot, with a free list. A
//!   resting order lives in one slot from the moment it rests until it leaves the book; its
//!   node links to its neighbours in the level FIFO (`prev`/`next`).
//! - [`LevelPool`]: a slab of [`Level`]s (price, open quantity, order count, head, tail).
//! - [`OrderIndex`]: order id -> slot, open addressing on a hash of the (sequential) order
//!   id; point lookups only, never iterated.
//! - [`ClientIds`]: (book, account, client order id) -> slot of resting orders, open
//!   addressing on a hash of the key, whose keys live in the nodes; point lookups only, never
//!   iterated.
//! - [`Ladder`]: one per side of a book: a window of consecutive prices indexed directly
//!   (slot per tick, occupancy bits with a summary level), so finding, creating and removing
//!   a level near the touch is O(1) and the best level is cached and re-found by bit scans;
//!   levels worse than the window sit in a short sorted vector (see [`Ladder`] for placement
//!   and growth). Iteration is best first, in price order: never over a hash map.
//!
//! Invariants (checked by [`crate::Engine::validate`]):
//! - every level in a ladder has `count >= 1` and `total` = the sum of its orders' `leaves`;
//! - prices in a ladder are strictly increasing towards the best (bids ascend, asks descend);
//! - every order reachable from a level has `leaves > 0`, its `level` field names that level,
//!   and its `price` equals the level's price.
//!
//! Nothing here allocates once the pools, the index and the windows have grown to the
//! working-set size: freed slots are reused before the vectors grow, and a window is only
//! re-placed (in place, reusing its buffers) when prices move past it.
//!
//! Known limit: the index's and the ladder's costs are per-engine, not per-account; a client
//! that keeps many orders alive at chosen ids or prices can lengthen probe runs or push levels
//! into the sorted `far` vector. Per-account order limits (gateway) bound that.
//!
//! Parts (one file each, in `book/`):
//! - `pool`: [`OrderPool`], [`LevelPool`] and the FIFO links between them ([`push_back`],
//!   [`unlink`]);
//! - `index`: [`OrderIndex`];
//! - `client_ids`: [`ClientIds`];
//! - `linear`: the linear-probing table both build on;
//! - `ladder`: [`Ladder`] and its iterator [`BestFirst`].

mod client_ids;
mod index;
mod ladder;
mod linear;
mod pool;

pub use client_ids::ClientIds;
pub use index::OrderIndex;
pub use ladder::{BestFirst, Ladder, MAX_WINDOW, MIN_WINDOW};
pub use pool::{push_back, unlink, Level, LevelPool, OrderNode, OrderPool};

/// Slot index meaning "none" in intrusive links.
pub const NIL: u32 = u32::MAX;

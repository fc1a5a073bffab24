//! The matching core: pure, deterministic, single-threaded.
//!
//! Nothing here does IO, reads a clock, draws a random number or iterates a hash map on the
//! event path. Sequence numbers and timestamps come in with each command
//! ([`Engine::apply`]), so replaying the same commands gives the same events and the same
//! [`Engine::state_hash`].
//!
//! - [`types`]: commands, events, reject and cancel reasons (the contract with the wire and
//!   the journal);
//! - [`instrument`]: tick, lot, quantity limits, price band, market protection;
//! - [`risk`]: assets, funding of instruments, fees, pre-trade limits (the balances live in
//!   the engine);
//! - [`book`]: order slab, intrusive level FIFOs, price ladders;
//! - [`engine`]: the fast matching engine of one shard, and the per-account execution-report
//!   streams it numbers ([`Engine::stream_assigned`], [`Part`]);
//! - [`reference`](mod@reference): its naive twin, for property tests;
//! - [`hash`]: the canonical state hash both implement.
#![forbid(unsafe_code)]

pub mod book;
pub mod engine;
pub mod hash;
pub mod instrument;
pub mod reference;
pub mod risk;
pub mod types;
pub mod workload;

pub use engine::{
    Assigned, Engine, InvariantError, LevelView, OpenOrdersPage, OrderView, SnapshotError,
    StreamReport,
};
pub use hash::StateHasher;
pub use instrument::Instrument;
pub use reference::ReferenceEngine;
pub use risk::{Asset, AssetId, Balance, Funding, Limits, Risk};
pub use types::*;

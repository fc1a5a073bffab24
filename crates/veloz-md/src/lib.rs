//! Market data: what the public may know of the books, derived from the matching core's
//! events alone.
//!
//! | module | what |
//! |---|---|
//! | [`message`] | the messages: public trades, L3 order-by-order events, L2 levels, top of book; their channels and sequence numbers |
//! | [`book`] | [`L3Book`] and [`L2Book`]: the books a feed keeps and a subscriber rebuilds, snapshots, canonical hashes |
//! | [`builder`] | [`FeedBuilder`]: one shard's events, command by command, into messages |
//! | [`subscriber`] | [`Subscriber`]: snapshot, then updates after it, with gap detection |
//! | [`wire`] | the binary feed's frames (`schemas/md.fbs`): [`wire::MdEncoder`], [`wire::decode_server`], [`wire::decode_client`] |
//! | [`client`] | [`client::FeedClient`]: a blocking subscriber of the binary feed; [`client::FeedBooks`] keeps its books and heals gaps |
//! | [`generated`] | what `flatc` makes of `schemas/md.fbs` (`make schema`); used by [`wire`] only |
//!
//! Invariants:
//! - **Derived from events only.** The builder never looks into the engine: it keeps its
//!   own L3 mirror of every book from the events of each command, so it can run anywhere
//!   the events go (the feed thread, a replay, a test) and costs the shard nothing but the
//!   hand-over of the events it already produced.
//! - **Deterministic.** No clock, no randomness, no hash-map iteration: the same events
//!   give the same messages with the same sequence numbers, so a replay of the journal
//!   rebuilds the feed exactly ([`FeedBuilder`] after a restart continues the same numbers).
//! - **Gap-free per channel.** Every message of instrument `s` on channel `c` has the next
//!   number of `(s, c)`, starting at 1; a snapshot names the last number it includes.
//! - **Public.** No account, no client order id: an L3 order is named by its engine order
//!   id, which says nothing about its owner.
//! - **The books agree.** After every command, the mirror's [`L3Book::hash`] equals
//!   [`engine_l3_hash`] of the engine (tested over seeded random streams of every command
//!   type and over real exchange flow).

#![deny(unsafe_code)]

pub mod book;
pub mod builder;
pub mod client;
pub mod message;
pub mod subscriber;
pub mod wire;

// Generated FlatBuffers code uses `unsafe` inside its accessors; hand-written modules may not.
#[allow(unsafe_code, missing_debug_implementations)]
pub mod generated;

pub use book::{engine_l2_hash, engine_l3_hash, BookError, L2Book, L2Snapshot, L3Book, L3Snapshot};
pub use builder::{FeedBuilder, FeedError};
pub use message::{Channel, MdBody, MdMessage, Quote};
pub use subscriber::{Applied, Subscriber};

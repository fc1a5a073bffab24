//! The runtime: pinned shards, rings, gateway, control thread (see `../shared/ARCHITECTURE.md`).
//!
//! Pure pieces (routing, auth, preflight) forbid unsafe; the shard loop is the only place
//! that runs on a pinned glommio executor.

pub mod auth;
pub mod preflight;
pub mod routing;

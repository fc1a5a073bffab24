//! The matching core: pure, deterministic, single-threaded.
//!
//! Nothing here does IO, reads a clock, draws a random number or iterates a hash map on the
//! event path. Sequence numbers and timestamps come in with each command
//! ([`Engine::apply`]), so replaying the same commands gives the same events and the same
//! [`Engine::state_hash`].
#![forbid(unsafe_code)]

pub mod hash;
pub mod instrument;
pub mod types;

pub use hash::StateHasher;
pub use instrument::Instrument;
pub use types::*;

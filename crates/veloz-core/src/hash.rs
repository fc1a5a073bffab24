//! The stable state hash.
//!
//! Every book implementation (the fast one and the naive reference) feeds the same canonical
//! walk of its state into a [`StateHasher`], so equal states give equal hashes whatever the
//! data structures behind them:
//!
//! ```text
//! engine:  next_order_seq, next_trade_seq, then each instrument by ascending id:
//! book:    symbol id, reference price, then bids best..worst, then asks best..worst:
//! level:   price, total open qty, order count, then its orders head..tail:
//! order:   order id, account, client order id, open qty, stp code, priority seq, entry ts
//! ```
//!
//! Values are fed as little-endian bytes into xxh3-64 (a published algorithm with fixed
//! output), so a hash written by one build can be checked by another.

use xxhash_rust::xxh3::Xxh3;

/// Accumulates the canonical walk of a state.
pub struct StateHasher(Xxh3);

impl std::fmt::Debug for StateHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHasher").finish_non_exhaustive()
    }
}

impl Default for StateHasher {
    fn default() -> Self {
        StateHasher::new()
    }
}

impl StateHasher {
    pub fn new() -> StateHasher {
        StateHasher(Xxh3::new())
    }

    pub fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.0.update(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }

    pub fn u8(&mut self, v: u8) {
        self.0.update(&[v]);
    }

    pub fn finish(&self) -> u64 {
        self.0.digest()
    }
}

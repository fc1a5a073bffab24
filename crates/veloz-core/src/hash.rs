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
//! admin:   only when some instrument is halted or some account disabled (`engine::admin`):
//!          tag 0xAD, halted count, halted instrument ids ascending, disabled count,
//!          disabled account ids ascending (all u32)
//! money:   only for an engine with money rules (`engine::risk`): tag 0xBA, account count
//!          (u32), then per account ascending: id (u32), its current second and that
//!          second's notional (u64 each), then per asset ascending by id: available, held
//!          (u64 each)
//! ```
//!
//! The admin part is fed only when it is not empty, so the state of an engine that never
//! halted an instrument or disabled an account (or undid every one of them) hashes exactly
//! as it did before operator controls existed: checkpoints in journals written before them
//! keep verifying. See [`StateHasher::admin`].
//!
//! Values are fed as little-endian bytes into xxh3-64 (a published algorithm with fixed
//! output), so a hash written by one build can be checked by another.

use xxhash_rust::xxh3::Xxh3;

/// Opens the admin part of the walk.
const ADMIN_TAG: u8 = 0xAD;
/// Opens the money part of the walk.
const LEDGER_TAG: u8 = 0xBA;

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

    /// The admin part of the walk: nothing when both are empty, else the tag, then each
    /// list as a count and its ids (the caller gives both ascending).
    pub fn admin<H, D>(&mut self, halted: H, disabled: D)
    where
        H: Iterator<Item = u32> + Clone,
        D: Iterator<Item = u32> + Clone,
    {
        let (h, d) = (halted.clone().count(), disabled.clone().count());
        if h == 0 && d == 0 {
            return;
        }
        self.u8(ADMIN_TAG);
        self.u32(h as u32);
        halted.for_each(|id| self.u32(id));
        self.u32(d as u32);
        disabled.for_each(|id| self.u32(id));
    }

    /// The money part of the walk: the tag, the account count, then each account (given
    /// ascending) as id, current second, its notional, and its balances by ascending asset.
    pub fn ledger<'a, I>(&mut self, accounts: I)
    where
        I: ExactSizeIterator<Item = (u32, u64, u64, &'a [crate::risk::Balance])>,
    {
        self.u8(LEDGER_TAG);
        self.u32(accounts.len() as u32);
        for (id, sec, notional, balances) in accounts {
            self.u32(id);
            self.u64(sec);
            self.u64(notional);
            for b in balances {
                self.u64(b.available);
                self.u64(b.held);
            }
        }
    }

    pub fn finish(&self) -> u64 {
        self.0.digest()
    }
}

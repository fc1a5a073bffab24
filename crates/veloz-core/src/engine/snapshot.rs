//! An engine's whole state as bytes and back: the body of a snapshot file
//! (`docs/journal-format.md`, "Snapshots"; the file header and its CRC are the journal's,
//! `veloz_journal::snapshot`).
//!
//! Layout (little-endian, offsets from the named constants below):
//! - a 32-byte body header: shard, flags, instrument count, `order_seq`, `trade_seq`, resting
//!   orders;
//! - per instrument, ascending by id: a 72-byte record (its rules, its last trade price, its
//!   order count) followed by its symbol's UTF-8 bytes, then its resting orders, 56 bytes
//!   each: bids best to worst, then asks best to worst, each level head (oldest) to tail;
//! - when flag bit 0 ([`SNAPSHOT_FLAG_STREAMS`]) is set, the stream section after the last
//!   instrument's orders: an 8-byte header (u32 account count, u32 reserved 0), then per
//!   account, ascending by id, 16 bytes (u32 account, u32 reserved 0, u64 the last report
//!   number assigned in its stream, > 0). Writers always set the flag (the section may count
//!   0 accounts); a body without it (written before streams existed) loads with no counters.
//!   The section carries the counters only, not the retained windows
//!   ([`Engine::set_report_retention`]); it is not in [`Engine::state_hash`].
//! - when flag bit 1 ([`SNAPSHOT_FLAG_ADMIN`]) is set, the admin section after that (the
//!   operator's controls, `admin`): an 8-byte header (u32 halted instrument count, u32
//!   disabled account count), then the halted instrument ids, then the disabled account
//!   ids, 8 bytes each (u32 id, u32 reserved 0), each list strictly ascending, every halted
//!   id an instrument of the body. Writers set the flag only when some instrument is halted
//!   or some account disabled, so an engine that never used them writes the bytes it wrote
//!   before the section existed; a body without it loads with nothing halted or disabled.
//!   Both lists are in [`Engine::state_hash`] (when not empty; `crate::hash`).
//! - when flag bit 2 ([`SNAPSHOT_FLAG_MONEY`]) is set, the money section after that: the
//!   engine's money rules and every account's balances (layout in `snapshot/money.rs`).
//!   Written only by an engine built with rules ([`Engine::with_risk`]); the balances are in
//!   [`Engine::state_hash`].
//! - Other flag bits are refused.
//!
//! The orders are in the walk of [`Engine::state_hash`], so reading them back in file order and
//! putting each at the back of its level rebuilds the same books, FIFOs, order index and
//! client-order-id map; [`Engine::read_snapshot`] checks every field and the engine's
//! invariants ([`Engine::validate`]). Slot numbers, pool free lists and ladder windows are not
//! state (the hash does not see them) and are rebuilt fresh.
//!
//! Cost: one pass over the resting orders, 56 bytes each, no allocation once `out` has grown
//! (about 56 MB for 1M resting orders) except a sorted copy of the stream counters (12 bytes
//! per account).

use super::Engine;
use crate::book::{OrderNode, NIL};
use crate::instrument::Instrument;
use crate::types::*;

/// Body header length.
pub const SNAPSHOT_BODY_HEADER_LEN: usize = 32;
const SNB_SHARD: usize = 0; // u16
const SNB_FLAGS: usize = 2; // u16: bit 0 = stream section, bit 1 = admin section; others 0
const SNB_INSTRUMENTS: usize = 4; // u32
const SNB_ORDER_SEQ: usize = 8; // u64
const SNB_TRADE_SEQ: usize = 16; // u64
const SNB_ORDERS: usize = 24; // u64

/// Flag bit of the body header: the stream section follows the last instrument's orders.
pub const SNAPSHOT_FLAG_STREAMS: u16 = 1;
/// Flag bit of the body header: the admin section (halted instruments, disabled accounts)
/// follows the stream section (or the orders, without one).
pub const SNAPSHOT_FLAG_ADMIN: u16 = 2;
/// Flag bit of the body header: the money section (rules and balances, `money`) follows
/// the admin section (or what comes before it).
pub const SNAPSHOT_FLAG_MONEY: u16 = 4;
/// Every flag bit this build knows.
const SNAPSHOT_FLAGS_KNOWN: u16 = SNAPSHOT_FLAG_STREAMS | SNAPSHOT_FLAG_ADMIN | SNAPSHOT_FLAG_MONEY;

/// Fixed part of one instrument record (its symbol's bytes follow).
pub const SNAPSHOT_INSTRUMENT_LEN: usize = 72;
const SNI_ID: usize = 0; // u32
const SNI_PRICE_SCALE: usize = 4; // u8
const SNI_RESERVED: usize = 5; // u8, 0
const SNI_SYMBOL_LEN: usize = 6; // u16
const SNI_TICK: usize = 8; // i64
const SNI_LOT: usize = 16; // u64
const SNI_MIN_QTY: usize = 24; // u64
const SNI_MAX_QTY: usize = 32; // u64
const SNI_BAND_BPS: usize = 40; // u32
const SNI_PROTECTION: usize = 44; // u32
const SNI_REFERENCE: usize = 48; // i64
const SNI_LAST_TRADE: usize = 56; // i64
const SNI_ORDERS: usize = 64; // u64: bids then asks

/// One resting order.
pub const SNAPSHOT_ORDER_LEN: usize = 56;
const SNO_ID: usize = 0; // u64
const SNO_CLIENT_ORDER_ID: usize = 8; // u64
const SNO_PRICE: usize = 16; // i64
const SNO_LEAVES: usize = 24; // u64
const SNO_PRIORITY_SEQ: usize = 32; // u64
const SNO_ENTRY_TS: usize = 40; // u64
const SNO_ACCOUNT: usize = 48; // u32
const SNO_SIDE: usize = 52; // u8
const SNO_STP: usize = 53; // u8
const SNO_POST_ONLY: usize = 54; // u8
const SNO_RESERVED: usize = 55; // u8, 0

/// A snapshot body that cannot be loaded; names the offset and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot body ends at byte {len}, {need} bytes needed at offset {at}")]
    Truncated { at: usize, need: usize, len: usize },
    #[error("snapshot body has {extra} bytes after its last order (at offset {at})")]
    Trailing { at: usize, extra: usize },
    #[error("snapshot field {field} at offset {at} has invalid value {value}")]
    Field {
        field: &'static str,
        at: usize,
        value: u64,
    },
    #[error("snapshot order {order_id} at offset {at}: {why}")]
    Order {
        order_id: OrderId,
        at: usize,
        why: String,
    },
    #[error("snapshot money section at offset {at}: {why}")]
    Money { at: usize, why: String },
    #[error("snapshot rebuilds an inconsistent engine: {0}")]
    Invariant(#[from] super::InvariantError),
}

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A bounds-checked little-endian cursor over the body.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<(usize, &'a [u8]), SnapshotError> {
        if self.bytes.len() - self.at < n {
            return Err(SnapshotError::Truncated {
                at: self.at,
                need: n,
                len: self.bytes.len(),
            });
        }
        let at = self.at;
        self.at += n;
        Ok((at, &self.bytes[at..at + n]))
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Engine {
    /// Append the engine's whole state to `out` (the layout in the module docs). `out` is
    /// not cleared: the caller may have put a file header in front.
    pub fn write_snapshot(&self, out: &mut Vec<u8>) {
        let orders = self.order_index.len();
        let admin = self.books.iter().any(|b| b.halted) || !self.disabled.is_empty();
        let flags = SNAPSHOT_FLAG_STREAMS
            | if admin { SNAPSHOT_FLAG_ADMIN } else { 0 }
            | if self.ledger.is_some() {
                SNAPSHOT_FLAG_MONEY
            } else {
                0
            };
        let start = out.len();
        out.resize(start + SNAPSHOT_BODY_HEADER_LEN, 0);
        {
            let h = &mut out[start..];
            put_u16(h, SNB_SHARD, self.shard);
            put_u16(h, SNB_FLAGS, flags);
            put_u32(h, SNB_INSTRUMENTS, self.books.len() as u32);
            put_u64(h, SNB_ORDER_SEQ, self.order_seq);
            put_u64(h, SNB_TRADE_SEQ, self.trade_seq);
            put_u64(h, SNB_ORDERS, orders as u64);
        }
        out.reserve(orders * SNAPSHOT_ORDER_LEN);
        for book in &self.books {
            let i = &book.instrument;
            let at = out.len();
            out.resize(at + SNAPSHOT_INSTRUMENT_LEN, 0);
            let count_at = at + SNI_ORDERS;
            {
                let r = &mut out[at..];
                put_u32(r, SNI_ID, i.id);
                r[SNI_PRICE_SCALE] = i.price_scale;
                r[SNI_RESERVED] = 0;
                put_u16(r, SNI_SYMBOL_LEN, i.symbol.len() as u16);
                put_u64(r, SNI_TICK, i.tick_size as u64);
                put_u64(r, SNI_LOT, i.lot_size);
                put_u64(r, SNI_MIN_QTY, i.min_qty);
                put_u64(r, SNI_MAX_QTY, i.max_qty);
                put_u32(r, SNI_BAND_BPS, i.price_band_bps);
                put_u32(r, SNI_PROTECTION, i.market_protection_ticks);
                put_u64(r, SNI_REFERENCE, i.reference_price as u64);
                put_u64(r, SNI_LAST_TRADE, book.last_trade_price as u64);
            }
            out.extend_from_slice(i.symbol.as_bytes());
            let mut count = 0u64;
            for side in [Side::Buy, Side::Sell] {
                for (_, l) in book.ladder(side).iter_best_first() {
                    let mut slot = self.levels.get(l).head;
                    while slot != NIL {
                        let n = self.orders.get(slot);
                        let mut o = [0u8; SNAPSHOT_ORDER_LEN];
                        put_u64(&mut o, SNO_ID, n.id);
                        put_u64(&mut o, SNO_CLIENT_ORDER_ID, n.client_order_id);
                        put_u64(&mut o, SNO_PRICE, n.price as u64);
                        put_u64(&mut o, SNO_LEAVES, n.leaves);
                        put_u64(&mut o, SNO_PRIORITY_SEQ, n.priority_seq);
                        put_u64(&mut o, SNO_ENTRY_TS, n.entry_ts);
                        put_u32(&mut o, SNO_ACCOUNT, n.account);
                        o[SNO_SIDE] = n.side as u8;
                        o[SNO_STP] = n.stp as u8;
                        o[SNO_POST_ONLY] = n.post_only as u8;
                        o[SNO_RESERVED] = 0;
                        out.extend_from_slice(&o);
                        count += 1;
                        slot = n.next;
                    }
                }
            }
            put_u64(out, count_at, count);
        }
        self.write_streams(out);
        if admin {
            self.write_admin(out);
        }
        self.write_money(out);
    }

    /// Rebuild an engine from a body written by [`Engine::write_snapshot`]. Every field is
    /// checked (codes, order ids and client order ids unique, prices on the right side and in
    /// priority order; the stream section, if flagged) and then the engine's invariants; the
    /// caller compares [`Engine::state_hash`] with the one recorded beside the body. The
    /// loaded engine has the snapshot's stream counters (none for a body without the section)
    /// and retains no reports ([`Engine::set_report_retention`] is 0).
    pub fn read_snapshot(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut c = Cursor { bytes, at: 0 };
        let (_, h) = c.take(SNAPSHOT_BODY_HEADER_LEN)?;
        let field = |field, at, value: u64| SnapshotError::Field { field, at, value };
        let flags = u16_at(h, SNB_FLAGS);
        if flags & !SNAPSHOT_FLAGS_KNOWN != 0 {
            return Err(field("flags", SNB_FLAGS, flags as u64));
        }
        let shard = u16_at(h, SNB_SHARD);
        let n_instruments = u32_at(h, SNB_INSTRUMENTS) as usize;
        let order_seq = u64_at(h, SNB_ORDER_SEQ);
        let trade_seq = u64_at(h, SNB_TRADE_SEQ);
        let total_orders = u64_at(h, SNB_ORDERS);
        let mut instruments = Vec::with_capacity(n_instruments.min(1 << 16));
        let mut bodies = Vec::with_capacity(instruments.capacity());
        for _ in 0..n_instruments {
            let (at, r) = c.take(SNAPSHOT_INSTRUMENT_LEN)?;
            if r[SNI_RESERVED] != 0 {
                return Err(field("reserved", at + SNI_RESERVED, r[SNI_RESERVED] as u64));
            }
            let symbol_len = u16_at(r, SNI_SYMBOL_LEN) as usize;
            let (sat, sym) = c.take(symbol_len)?;
            let symbol = std::str::from_utf8(sym)
                .map_err(|_| field("symbol (not UTF-8)", sat, symbol_len as u64))?
                .to_string();
            let instrument = Instrument {
                id: u32_at(r, SNI_ID),
                symbol,
                price_scale: r[SNI_PRICE_SCALE],
                tick_size: u64_at(r, SNI_TICK) as Price,
                lot_size: u64_at(r, SNI_LOT),
                min_qty: u64_at(r, SNI_MIN_QTY),
                max_qty: u64_at(r, SNI_MAX_QTY),
                price_band_bps: u32_at(r, SNI_BAND_BPS),
                reference_price: u64_at(r, SNI_REFERENCE) as Price,
                market_protection_ticks: u32_at(r, SNI_PROTECTION),
            };
            if instrument.tick_size <= 0 || instrument.lot_size == 0 {
                return Err(field(
                    "tick_size/lot_size",
                    at + SNI_TICK,
                    instrument.tick_size as u64,
                ));
            }
            if let Some(prev) = instruments.last().map(|i: &Instrument| i.id) {
                if instrument.id <= prev {
                    return Err(field(
                        "instrument id (not ascending)",
                        at,
                        instrument.id as u64,
                    ));
                }
            }
            let count = u64_at(r, SNI_ORDERS);
            let len = (count as usize)
                .checked_mul(SNAPSHOT_ORDER_LEN)
                .ok_or_else(|| field("order count", at + SNI_ORDERS, count))?;
            let (oat, orders) = c.take(len)?;
            bodies.push((u64_at(r, SNI_LAST_TRADE) as Price, oat, orders));
            instruments.push(instrument);
        }
        let counters = if flags & SNAPSHOT_FLAG_STREAMS != 0 {
            sections::read_streams(&mut c)?
        } else {
            Vec::new()
        };
        let admin = if flags & SNAPSHOT_FLAG_ADMIN != 0 {
            sections::read_admin(&mut c)?
        } else {
            sections::Admin::default()
        };
        let money = if flags & SNAPSHOT_FLAG_MONEY != 0 {
            Some(money::read_money(&mut c)?)
        } else {
            None
        };
        if c.at != bytes.len() {
            return Err(SnapshotError::Trailing {
                at: c.at,
                extra: bytes.len() - c.at,
            });
        }
        let (mut engine, accounts) = match money {
            None => (Engine::new(shard, &instruments), Vec::new()),
            Some(m) => (
                Engine::with_risk(shard, &instruments, m.rules)
                    .map_err(|why| SnapshotError::Money { at: 0, why })?,
                m.accounts,
            ),
        };
        engine.order_seq = order_seq;
        engine.trade_seq = trade_seq;
        for (account, last) in counters {
            engine.streams.counters.set(account, last);
        }
        engine.apply_admin(admin)?;
        let mut seen = 0u64;
        for (b, (last_trade, oat, orders)) in bodies.into_iter().enumerate() {
            engine.books[b].last_trade_price = last_trade;
            let mut prev: Option<(Side, Price)> = None;
            for (k, o) in orders.chunks_exact(SNAPSHOT_ORDER_LEN).enumerate() {
                let at = oat + k * SNAPSHOT_ORDER_LEN;
                let side = Side::from_u8(o[SNO_SIDE])
                    .ok_or_else(|| field("side", at + SNO_SIDE, o[SNO_SIDE] as u64))?;
                let stp = SelfTradePrevention::from_u8(o[SNO_STP])
                    .ok_or_else(|| field("stp", at + SNO_STP, o[SNO_STP] as u64))?;
                if o[SNO_POST_ONLY] > 1 {
                    return Err(field(
                        "post_only",
                        at + SNO_POST_ONLY,
                        o[SNO_POST_ONLY] as u64,
                    ));
                }
                if o[SNO_RESERVED] != 0 {
                    return Err(field("reserved", at + SNO_RESERVED, o[SNO_RESERVED] as u64));
                }
                let node = OrderNode {
                    id: u64_at(o, SNO_ID),
                    client_order_id: u64_at(o, SNO_CLIENT_ORDER_ID),
                    price: u64_at(o, SNO_PRICE) as Price,
                    leaves: u64_at(o, SNO_LEAVES),
                    priority_seq: u64_at(o, SNO_PRIORITY_SEQ),
                    entry_ts: u64_at(o, SNO_ENTRY_TS),
                    account: u32_at(o, SNO_ACCOUNT),
                    book: b as u32,
                    level: NIL,
                    prev: NIL,
                    next: NIL,
                    side,
                    stp,
                    post_only: o[SNO_POST_ONLY] == 1,
                };
                let fail = |why: &str| SnapshotError::Order {
                    order_id: node.id,
                    at,
                    why: why.to_string(),
                };
                if node.leaves == 0 || node.price <= 0 {
                    return Err(fail("zero open quantity or non-positive price"));
                }
                // Bids then asks, each best first: a side never goes back, and prices within
                // a side never get better.
                if let Some((ps, pp)) = prev {
                    let ladder = engine.books[b].ladder(side);
                    if (ps == Side::Sell && side == Side::Buy)
                        || (ps == side && ladder.better(node.price, pp))
                    {
                        return Err(fail("out of priority order"));
                    }
                }
                prev = Some((side, node.price));
                if engine.order_index.get(node.id).is_some() {
                    return Err(fail("duplicate order id"));
                }
                if engine
                    .client_ids
                    .find(&engine.orders, b as u32, node.account, node.client_order_id)
                    .is_some()
                {
                    return Err(fail(
                        "duplicate client order id in its account and instrument",
                    ));
                }
                engine.rest(b as u32, node);
                seen += 1;
            }
        }
        if seen != total_orders {
            return Err(field("order total", SNB_ORDERS, total_orders));
        }
        if engine.ledger.is_some() {
            engine.restore_money(accounts)?;
        }
        engine.validate()?;
        Ok(engine)
    }
}

mod money;
mod sections;
pub use sections::{
    SNAPSHOT_ADMIN_ENTRY_LEN, SNAPSHOT_ADMIN_HEADER_LEN, SNAPSHOT_STREAMS_HEADER_LEN,
    SNAPSHOT_STREAM_LEN,
};

#[cfg(test)]
mod tests;

//! The optional sections of a snapshot body after the last instrument's orders: the stream
//! section (flag bit 0, [`super::SNAPSHOT_FLAG_STREAMS`]) and the admin section (flag bit 1,
//! [`super::SNAPSHOT_FLAG_ADMIN`]), in that order. Layouts in the parent module's docs and
//! `docs/journal-format.md`; every entry list is strictly ascending and every reserved field
//! 0, refused by name otherwise.

use super::{put_u32, put_u64, u32_at, u64_at, Cursor, SnapshotError};
use crate::engine::Engine;
use crate::types::*;

/// Stream section header length.
pub const SNAPSHOT_STREAMS_HEADER_LEN: usize = 8;
pub(super) const SNS_COUNT: usize = 0; // u32: accounts that follow
pub(super) const SNS_RESERVED: usize = 4; // u32, 0

/// One account's stream counter.
pub const SNAPSHOT_STREAM_LEN: usize = 16;
pub(super) const SNA_ACCOUNT: usize = 0; // u32
pub(super) const SNA_RESERVED: usize = 4; // u32, 0
pub(super) const SNA_LAST: usize = 8; // u64, > 0

/// Admin section header length.
pub const SNAPSHOT_ADMIN_HEADER_LEN: usize = 8;
pub(super) const SNH_HALTED: usize = 0; // u32: halted instruments that follow
pub(super) const SNH_DISABLED: usize = 4; // u32: disabled accounts that follow them

/// One halted instrument or disabled account.
pub const SNAPSHOT_ADMIN_ENTRY_LEN: usize = 8;
pub(super) const SNE_ID: usize = 0; // u32: instrument id or account id
pub(super) const SNE_RESERVED: usize = 4; // u32, 0

fn field(field: &'static str, at: usize, value: u64) -> SnapshotError {
    SnapshotError::Field { field, at, value }
}

/// Read the stream section: accounts strictly ascending, reserved fields 0, counters > 0.
pub(super) fn read_streams(c: &mut Cursor<'_>) -> Result<Vec<(AccountId, u64)>, SnapshotError> {
    let (at, h) = c.take(SNAPSHOT_STREAMS_HEADER_LEN)?;
    if u32_at(h, SNS_RESERVED) != 0 {
        let v = u32_at(h, SNS_RESERVED) as u64;
        return Err(field("stream section reserved", at + SNS_RESERVED, v));
    }
    let count = u32_at(h, SNS_COUNT);
    let len = (count as usize)
        .checked_mul(SNAPSHOT_STREAM_LEN)
        .ok_or_else(|| field("stream account count", at + SNS_COUNT, count as u64))?;
    let (sat, entries) = c.take(len)?;
    let mut counters: Vec<(AccountId, u64)> = Vec::with_capacity(count as usize);
    for (k, a) in entries.chunks_exact(SNAPSHOT_STREAM_LEN).enumerate() {
        let at = sat + k * SNAPSHOT_STREAM_LEN;
        let account = u32_at(a, SNA_ACCOUNT);
        if counters.last().is_some_and(|&(prev, _)| account <= prev) {
            return Err(field(
                "stream account (not ascending)",
                at + SNA_ACCOUNT,
                account as u64,
            ));
        }
        if u32_at(a, SNA_RESERVED) != 0 {
            let v = u32_at(a, SNA_RESERVED) as u64;
            return Err(field("stream account reserved", at + SNA_RESERVED, v));
        }
        let last = u64_at(a, SNA_LAST);
        if last == 0 {
            return Err(field("stream last seq", at + SNA_LAST, 0));
        }
        counters.push((account, last));
    }
    Ok(counters)
}

/// The admin section as read: each id with its offset (for errors found later).
#[derive(Debug, Default)]
pub(super) struct Admin {
    pub(super) halted: Vec<(usize, SymbolId)>,
    pub(super) disabled: Vec<(usize, AccountId)>,
}

/// Read `count` admin entries at the cursor: ids strictly ascending, reserved fields 0.
fn read_ids(
    c: &mut Cursor<'_>,
    count: u32,
    what: [&'static str; 3],
) -> Result<Vec<(usize, u32)>, SnapshotError> {
    let [count_field, order_field, reserved_field] = what;
    let len = (count as usize)
        .checked_mul(SNAPSHOT_ADMIN_ENTRY_LEN)
        .ok_or_else(|| field(count_field, c.at, count as u64))?;
    let (sat, entries) = c.take(len)?;
    let mut ids: Vec<(usize, u32)> = Vec::with_capacity(count as usize);
    for (k, e) in entries.chunks_exact(SNAPSHOT_ADMIN_ENTRY_LEN).enumerate() {
        let at = sat + k * SNAPSHOT_ADMIN_ENTRY_LEN;
        let id = u32_at(e, SNE_ID);
        if ids.last().is_some_and(|&(_, prev)| id <= prev) {
            return Err(field(order_field, at + SNE_ID, id as u64));
        }
        if u32_at(e, SNE_RESERVED) != 0 {
            let v = u32_at(e, SNE_RESERVED) as u64;
            return Err(field(reserved_field, at + SNE_RESERVED, v));
        }
        ids.push((at, id));
    }
    Ok(ids)
}

/// Read the admin section (whether each halted id is an instrument is checked by
/// [`Engine::apply_admin`]).
pub(super) fn read_admin(c: &mut Cursor<'_>) -> Result<Admin, SnapshotError> {
    let (_, h) = c.take(SNAPSHOT_ADMIN_HEADER_LEN)?;
    let (halted, disabled) = (u32_at(h, SNH_HALTED), u32_at(h, SNH_DISABLED));
    let halted = read_ids(
        c,
        halted,
        [
            "halted instrument count",
            "halted instrument (not ascending)",
            "halted instrument reserved",
        ],
    )?;
    let disabled = read_ids(
        c,
        disabled,
        [
            "disabled account count",
            "disabled account (not ascending)",
            "disabled account reserved",
        ],
    )?;
    Ok(Admin { halted, disabled })
}

impl Engine {
    /// Append the stream section (ascending by account).
    pub(super) fn write_streams(&self, out: &mut Vec<u8>) {
        let counters = self.streams.counters_sorted();
        let at = out.len();
        out.resize(at + SNAPSHOT_STREAMS_HEADER_LEN, 0);
        put_u32(&mut out[at..], SNS_COUNT, counters.len() as u32);
        put_u32(&mut out[at..], SNS_RESERVED, 0);
        out.reserve(counters.len() * SNAPSHOT_STREAM_LEN);
        for (account, last) in counters {
            let mut a = [0u8; SNAPSHOT_STREAM_LEN];
            put_u32(&mut a, SNA_ACCOUNT, account);
            put_u32(&mut a, SNA_RESERVED, 0);
            put_u64(&mut a, SNA_LAST, last);
            out.extend_from_slice(&a);
        }
    }

    /// Append the admin section: halted instruments, then disabled accounts, ascending.
    pub(super) fn write_admin(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + SNAPSHOT_ADMIN_HEADER_LEN, 0);
        let halted = self.halted_instruments().count() as u32;
        put_u32(&mut out[at..], SNH_HALTED, halted);
        put_u32(&mut out[at..], SNH_DISABLED, self.disabled.len() as u32);
        for id in self.halted_instruments().chain(self.disabled_accounts()) {
            let mut e = [0u8; SNAPSHOT_ADMIN_ENTRY_LEN];
            put_u32(&mut e, SNE_ID, id);
            put_u32(&mut e, SNE_RESERVED, 0);
            out.extend_from_slice(&e);
        }
    }

    /// Halt and disable what the admin section lists; a halted id that is no instrument of
    /// the body is refused.
    pub(super) fn apply_admin(&mut self, admin: Admin) -> Result<(), SnapshotError> {
        for (at, symbol) in admin.halted {
            let b = self
                .book_of(symbol)
                .ok_or_else(|| field("halted instrument (unknown)", at + SNE_ID, symbol as u64))?;
            self.books[b as usize].halted = true;
        }
        self.disabled
            .extend(admin.disabled.into_iter().map(|(_, account)| account));
        Ok(())
    }
}

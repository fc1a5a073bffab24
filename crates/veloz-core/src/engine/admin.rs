//! The operator's controls of an [`Engine`]: halting an instrument and the account kill
//! switch ([`Command::Admin`], [`AdminAction`]).
//!
//! Contract:
//! - A halted book refuses new orders and replaces with [`RejectReason::InstrumentHalted`];
//!   its resting orders stay, and cancels and mass cancels work as usual.
//! - Disabling an account cancels every resting order of it in this engine, in mass-cancel
//!   order (ascending instrument id, bids then asks, best level first, head first), each
//!   reported as `Cancelled` with [`CancelReason::AccountDisabled`] and the order's own client
//!   order id; then its new orders and replaces are refused with
//!   [`RejectReason::AccountDisabled`] until it is enabled again. Its cancels and mass
//!   cancels still work. Disabling needs no prior knowledge of the account.
//! - Validation order (`may_enter`): instrument known, then not halted, then account not
//!   disabled, before every other check of a new order or replace (engine module docs).
//! - Every admin command ends with exactly one [`Event::Admin`]: `Applied` when the state
//!   changed, `AlreadyInState` when it was already as asked, `UnknownSymbol` for a halt or
//!   resume of an instrument this engine does not have. That event goes to no account's
//!   stream (`streams`); the kill switch's cancels do go to the account's.
//! - State: a `halted` flag per book and a sorted set of disabled accounts. Both are in
//!   [`Engine::state_hash`] only when not empty (see [`crate::hash`]), so an engine that never
//!   used them hashes exactly as before they existed; the snapshot carries both (flag bit 1,
//!   the admin section).
//!
//! Cost: on the event path one bool read per new order or replace, plus a set probe only
//! while some account is disabled; a disable walks the whole of every book once.

use super::Engine;
use crate::types::*;

impl Engine {
    /// May `account` enter or replace an order in book `b`? The halt and the kill switch,
    /// in that order.
    #[inline]
    pub(super) fn may_enter(&self, b: u32, account: AccountId) -> Result<(), RejectReason> {
        if self.books[b as usize].halted {
            return Err(RejectReason::InstrumentHalted);
        }
        if !self.disabled.is_empty() && self.disabled.contains(&account) {
            return Err(RejectReason::AccountDisabled);
        }
        Ok(())
    }

    pub(super) fn admin(&mut self, a: &AdminCommand, out: &mut Vec<Event>) {
        let outcome = match a.action {
            AdminAction::HaltInstrument(symbol) | AdminAction::ResumeInstrument(symbol) => {
                let halt = matches!(a.action, AdminAction::HaltInstrument(_));
                match self.book_of(symbol) {
                    None => AdminOutcome::UnknownSymbol,
                    Some(b) if self.books[b as usize].halted == halt => {
                        AdminOutcome::AlreadyInState
                    }
                    Some(b) => {
                        self.books[b as usize].halted = halt;
                        AdminOutcome::Applied
                    }
                }
            }
            AdminAction::DisableAccount(account) => {
                if self.disabled.insert(account) {
                    let all = 0..self.books.len() as u32;
                    self.cancel_account_orders(all, account, CancelReason::AccountDisabled, out);
                    AdminOutcome::Applied
                } else {
                    AdminOutcome::AlreadyInState
                }
            }
            AdminAction::EnableAccount(account) => {
                if self.disabled.remove(&account) {
                    AdminOutcome::Applied
                } else {
                    AdminOutcome::AlreadyInState
                }
            }
            AdminAction::Deposit { .. } | AdminAction::Withdraw { .. } => {
                self.risk_move_money(a.action)
            }
        };
        out.push(Event::Admin {
            request_id: a.request_id,
            action: a.action,
            applied: outcome.applied(),
            outcome,
        });
    }

    /// Whether `symbol` is halted (`None` when this engine does not have it).
    pub fn is_halted(&self, symbol: SymbolId) -> Option<bool> {
        self.book_of(symbol).map(|b| self.books[b as usize].halted)
    }

    /// Whether `account` is disabled (the kill switch is on).
    pub fn is_disabled(&self, account: AccountId) -> bool {
        self.disabled.contains(&account)
    }

    /// The halted instruments, ascending by id.
    pub fn halted_instruments(&self) -> impl Iterator<Item = SymbolId> + Clone + '_ {
        self.books
            .iter()
            .filter(|b| b.halted)
            .map(|b| b.instrument.id)
    }

    /// The disabled accounts, ascending.
    pub fn disabled_accounts(&self) -> impl Iterator<Item = AccountId> + Clone + '_ {
        self.disabled.iter().copied()
    }
}

#[cfg(test)]
mod tests;

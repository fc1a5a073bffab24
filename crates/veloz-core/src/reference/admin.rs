//! The naive twin's operator controls: the semantics of `engine::admin`, written plainly.

use super::ReferenceEngine;
use crate::types::*;

impl ReferenceEngine {
    /// Halt, then kill switch, for a new order or replace in a known `symbol`.
    pub(super) fn may_enter(
        &self,
        symbol: SymbolId,
        account: AccountId,
    ) -> Result<(), RejectReason> {
        if self.books.get(&symbol).is_some_and(|b| b.halted) {
            return Err(RejectReason::InstrumentHalted);
        }
        if self.disabled.contains(&account) {
            return Err(RejectReason::AccountDisabled);
        }
        Ok(())
    }

    pub(super) fn admin(&mut self, a: &AdminCommand, out: &mut Vec<Event>) {
        let outcome = match a.action {
            AdminAction::HaltInstrument(s) | AdminAction::ResumeInstrument(s) => {
                let halt = matches!(a.action, AdminAction::HaltInstrument(_));
                match self.books.get_mut(&s) {
                    None => AdminOutcome::UnknownSymbol,
                    Some(b) if b.halted == halt => AdminOutcome::AlreadyInState,
                    Some(b) => {
                        b.halted = halt;
                        AdminOutcome::Applied
                    }
                }
            }
            AdminAction::DisableAccount(account) => {
                if self.disabled.contains(&account) {
                    AdminOutcome::AlreadyInState
                } else {
                    self.disabled.insert(account);
                    let all: Vec<SymbolId> = self.books.keys().copied().collect();
                    self.cancel_account(&all, account, CancelReason::AccountDisabled, out);
                    AdminOutcome::Applied
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
            applied: outcome == AdminOutcome::Applied,
            outcome,
        });
    }

    /// Whether `symbol` is halted (`None` for an unknown symbol).
    pub fn is_halted(&self, symbol: SymbolId) -> Option<bool> {
        self.books.get(&symbol).map(|b| b.halted)
    }

    /// Whether `account` is disabled.
    pub fn is_disabled(&self, account: AccountId) -> bool {
        self.disabled.contains(&account)
    }
}

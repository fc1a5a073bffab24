//! Operator controls: halting and resuming an instrument, switching an account off (the kill
//! switch) and on again, and moving money in and out of an account (deposits and withdrawals,
//! `crate::risk`).
//!
//! An [`AdminCommand`] is sequenced and journaled like any other command, so replay
//! reproduces it. It names no member account: its outcome is one [`super::Event::Admin`]
//! (which goes to no account's report stream), preceded for
//! [`AdminAction::DisableAccount`] by a [`super::Event::Cancelled`] with
//! [`super::CancelReason::AccountDisabled`] for each resting order of the account (those do
//! go to the account's stream).
//!
//! Codes are part of the journal format (`docs/journal-format.md`, command payload kind 5):
//! never renumber, only append. A deposit or withdrawal produces only its
//! [`super::Event::Admin`]; the balances it changed are state (`Engine::balances`).

use super::{AccountId, SymbolId};
use crate::risk::AssetId;

/// What an operator asks the engine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminAction {
    /// Refuse new orders and replaces in the instrument
    /// ([`super::RejectReason::InstrumentHalted`]); cancels and mass cancels still work, and
    /// resting orders stay.
    HaltInstrument(SymbolId),
    /// Undo [`AdminAction::HaltInstrument`].
    ResumeInstrument(SymbolId),
    /// The kill switch: cancel every resting order of the account in this engine, then
    /// refuse its new orders and replaces ([`super::RejectReason::AccountDisabled`]) until it
    /// is enabled again. Its cancels and mass cancels still work: it can only reduce.
    DisableAccount(AccountId),
    /// Undo [`AdminAction::DisableAccount`] (its cancelled orders stay cancelled).
    EnableAccount(AccountId),
    /// Credit `amount` of `asset` to the account's available balance in this engine.
    Deposit {
        account: AccountId,
        asset: AssetId,
        amount: u64,
    },
    /// Debit `amount` of `asset` from the account's available balance in this engine;
    /// refused ([`AdminOutcome::InsufficientFunds`]) when less is available (held funds
    /// cannot be withdrawn).
    Withdraw {
        account: AccountId,
        asset: AssetId,
        amount: u64,
    },
}

impl AdminAction {
    /// The action's code in the journal (1 halt, 2 resume, 3 disable, 4 enable, 5 deposit,
    /// 6 withdraw).
    pub fn code(self) -> u8 {
        match self {
            AdminAction::HaltInstrument(_) => 1,
            AdminAction::ResumeInstrument(_) => 2,
            AdminAction::DisableAccount(_) => 3,
            AdminAction::EnableAccount(_) => 4,
            AdminAction::Deposit { .. } => 5,
            AdminAction::Withdraw { .. } => 6,
        }
    }

    /// The action of code `code` applied to `id` (a symbol for 1 and 2, an account for 3
    /// and 4); `None` for an unknown code and for 5 and 6, which need more than an id
    /// ([`AdminAction::money`]).
    pub fn from_code(code: u8, id: u32) -> Option<AdminAction> {
        match code {
            1 => Some(AdminAction::HaltInstrument(id)),
            2 => Some(AdminAction::ResumeInstrument(id)),
            3 => Some(AdminAction::DisableAccount(id)),
            4 => Some(AdminAction::EnableAccount(id)),
            _ => None,
        }
    }

    /// The deposit (code 5) or withdrawal (code 6) of `amount` of `asset` for `account`;
    /// `None` for any other code.
    pub fn money(code: u8, account: AccountId, asset: AssetId, amount: u64) -> Option<AdminAction> {
        match code {
            5 => Some(AdminAction::Deposit {
                account,
                asset,
                amount,
            }),
            6 => Some(AdminAction::Withdraw {
                account,
                asset,
                amount,
            }),
            _ => None,
        }
    }

    /// A short stable name, used in metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            AdminAction::HaltInstrument(_) => "halt_instrument",
            AdminAction::ResumeInstrument(_) => "resume_instrument",
            AdminAction::DisableAccount(_) => "disable_account",
            AdminAction::EnableAccount(_) => "enable_account",
            AdminAction::Deposit { .. } => "deposit",
            AdminAction::Withdraw { .. } => "withdraw",
        }
    }

    /// The instrument a halt or resume names.
    pub fn symbol(self) -> Option<SymbolId> {
        match self {
            AdminAction::HaltInstrument(s) | AdminAction::ResumeInstrument(s) => Some(s),
            AdminAction::DisableAccount(_)
            | AdminAction::EnableAccount(_)
            | AdminAction::Deposit { .. }
            | AdminAction::Withdraw { .. } => None,
        }
    }

    /// The account a disable, enable, deposit or withdrawal names.
    pub fn account(self) -> Option<AccountId> {
        match self {
            AdminAction::DisableAccount(a) | AdminAction::EnableAccount(a) => Some(a),
            AdminAction::Deposit { account, .. } | AdminAction::Withdraw { account, .. } => {
                Some(account)
            }
            AdminAction::HaltInstrument(_) | AdminAction::ResumeInstrument(_) => None,
        }
    }

    /// The asset and amount of a deposit or withdrawal.
    pub fn money_moved(self) -> Option<(AssetId, u64)> {
        match self {
            AdminAction::Deposit { asset, amount, .. }
            | AdminAction::Withdraw { asset, amount, .. } => Some((asset, amount)),
            _ => None,
        }
    }
}

/// An operator's command: an action and the operator's id for the request, echoed in the
/// [`super::Event::Admin`] it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminCommand {
    pub action: AdminAction,
    pub request_id: u64,
}

/// What an [`AdminCommand`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdminOutcome {
    /// The state changed as asked.
    Applied = 1,
    /// Nothing to do: the instrument was already halted (or not halted, for a resume), the
    /// account already disabled (or not disabled, for an enable).
    AlreadyInState = 2,
    /// A halt or resume named an instrument this engine does not have; nothing changed.
    UnknownSymbol = 3,
    /// A withdrawal of more than the account has available; nothing changed.
    InsufficientFunds = 4,
    /// A deposit or withdrawal of an asset this engine does not know (or an engine with no
    /// money rules, `crate::risk`); nothing changed.
    UnknownAsset = 5,
    /// A deposit that would take the asset's total over 2^64 - 1 units, or of 0; nothing
    /// changed.
    InvalidAmount = 6,
}

impl AdminOutcome {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short stable name, used in metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            AdminOutcome::Applied => "applied",
            AdminOutcome::AlreadyInState => "already_in_state",
            AdminOutcome::UnknownSymbol => "unknown_symbol",
            AdminOutcome::InsufficientFunds => "insufficient_funds",
            AdminOutcome::UnknownAsset => "unknown_asset",
            AdminOutcome::InvalidAmount => "invalid_amount",
        }
    }

    /// `true` for [`AdminOutcome::Applied`].
    pub fn applied(self) -> bool {
        self == AdminOutcome::Applied
    }
}

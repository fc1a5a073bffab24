//! Logon checks: tokens are stored as SHA-256 hashes and compared in constant time.
//!
//! The token a client sends lives only in the decoded logon message and in this function's
//! arguments; it is hashed at once and never stored, logged, or put in an error.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use veloz_config::Config;
use veloz_core::{AccountId, SelfTradePrevention};

/// The outcome of a logon attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogonResult {
    Ok {
        account: AccountId,
        stp: SelfTradePrevention,
        /// The account's cancel-on-disconnect default.
        cancel_on_disconnect: bool,
    },
    /// Unknown account or wrong token: the client is not told which.
    Denied,
}

/// Account table with decoded token hashes.
pub struct Authenticator {
    /// (id, token hash, stp default, cancel-on-disconnect default)
    accounts: Vec<(AccountId, [u8; 32], SelfTradePrevention, bool)>,
}

/// Account ids only: token hashes never reach a log line.
impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<AccountId> = self.accounts.iter().map(|a| a.0).collect();
        f.debug_struct("Authenticator")
            .field("accounts", &ids)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(config: &Config) -> Authenticator {
        let accounts = config
            .accounts
            .iter()
            .map(|a| {
                let mut hash = [0u8; 32];
                for (i, byte) in hash.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&a.token_sha256[2 * i..2 * i + 2], 16)
                        .expect("validated as 64 hex digits by Config::validate");
                }
                (a.id, hash, a.stp.mode(), a.cancel_on_disconnect)
            })
            .collect();
        Authenticator { accounts }
    }

    /// Check `token` for `account`. Takes the same time whether the account exists or not.
    pub fn logon(&self, account: AccountId, token: &[u8]) -> LogonResult {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut result = LogonResult::Denied;
        for &(id, ref hash, stp, cancel_on_disconnect) in &self.accounts {
            let same: bool = hash.ct_eq(&presented).into();
            if id == account && same {
                result = LogonResult::Ok {
                    account,
                    stp,
                    cancel_on_disconnect,
                };
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_accounts_log_on_with_their_tokens_only() {
        let auth = Authenticator::new(&Config::default());
        assert_eq!(
            auth.logon(1, b"demo-alice"),
            LogonResult::Ok {
                account: 1,
                stp: SelfTradePrevention::Allow,
                cancel_on_disconnect: false,
            }
        );
        assert_eq!(
            auth.logon(2, b"demo-bob"),
            LogonResult::Ok {
                account: 2,
                stp: SelfTradePrevention::CancelResting,
                cancel_on_disconnect: false,
            }
        );
        assert_eq!(auth.logon(1, b"demo-bob"), LogonResult::Denied);
        assert_eq!(auth.logon(2, b"demo-bobx"), LogonResult::Denied);
        assert_eq!(auth.logon(9, b"demo-alice"), LogonResult::Denied);
        assert_eq!(auth.logon(1, b""), LogonResult::Denied);
    }
}

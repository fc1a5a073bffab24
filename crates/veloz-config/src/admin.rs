//! `[admin]`: the operator interface on the metrics HTTP socket (docs/operations.md,
//! "Operator controls"): halt and resume an instrument, switch an account off and on (kill
//! switch), list sessions, disconnect one. Every request carries the operator token
//! (`Authorization: Bearer TOKEN`); the configuration holds only its SHA-256, like account
//! tokens. No hash: the admin endpoints answer 403 and nothing can be changed.

use serde::{Deserialize, Serialize};

/// `[admin]`: who may operate the engine over HTTP.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// SHA-256 of the operator token, 64 hex digits (`printf %s TOKEN | sha256sum`); empty
    /// (the default): the admin interface is off.
    pub token_sha256: String,
}

impl AdminConfig {
    /// The token hash as bytes, or `None` when admin is off or the hash is not 64 hex
    /// digits (reported by [`AdminConfig::check`]).
    pub fn token_hash(&self) -> Option<[u8; 32]> {
        let h = self.token_sha256.as_bytes();
        if h.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = std::str::from_utf8(&h[2 * i..2 * i + 2]).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(out)
    }

    /// Empty, or exactly 64 hex digits.
    pub fn check(&self) -> Result<(), String> {
        if self.token_sha256.is_empty() || self.token_hash().is_some() {
            Ok(())
        } else {
            Err(format!(
                "admin.token_sha256 must be 64 hex digits (a SHA-256), found {} characters",
                self.token_sha256.len()
            ))
        }
    }
}

/// The hash is credential material: never printed.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("enabled", &!self.token_sha256.is_empty())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_the_hash_is_checked() {
        let off = AdminConfig::default();
        assert_eq!((off.token_hash(), off.check()), (None, Ok(())));
        let on = AdminConfig {
            token_sha256: "ab".repeat(32),
        };
        assert_eq!(on.token_hash(), Some([0xab; 32]));
        assert!(on.check().is_ok());
        assert!(
            !format!("{on:?}").contains("abab"),
            "the hash is never printed"
        );
        let bad = AdminConfig {
            token_sha256: "xyz".into(),
        };
        assert!(bad.check().unwrap_err().contains("64 hex digits"));
    }
}

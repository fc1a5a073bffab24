//! `[[accounts]]`: who may log on, and the per-account defaults of their sessions.

use serde::{Deserialize, Serialize};

use veloz_core::SelfTradePrevention;

/// `[[accounts]]`: who may log on.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Account id carried by every order of its sessions.
    pub id: u32,
    /// Name for operators (reports, logs); never the token.
    pub name: String,
    /// SHA-256 of the logon token, 64 hex digits (`printf %s TOKEN | sha256sum`). The token
    /// itself is never stored, logged or shown.
    pub token_sha256: String,
    /// Self-trade prevention applied when an order asks for the account default.
    #[serde(default)]
    pub stp: StpConfig,
    /// Cancel the account's resting orders when its last session with this on ends
    /// (Logout, a closed connection, a heartbeat timeout), whatever sessions with it off
    /// remain; a Logon may override it for its session. Default off.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
    /// The account's sessions' order rate, replacing `gateway.order_rate_per_s` (0:
    /// unlimited). Each session has its own bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_rate_per_s: Option<u64>,
    /// The account's sessions' burst, replacing `gateway.order_burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_burst: Option<u64>,
}

impl std::fmt::Debug for AccountConfig {
    // The hash is not the token, but it is credential material all the same: keep it out of
    // debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("token_sha256", &"<redacted>")
            .field("stp", &self.stp)
            .field("cancel_on_disconnect", &self.cancel_on_disconnect)
            .field("order_rate_per_s", &self.order_rate_per_s)
            .field("order_burst", &self.order_burst)
            .finish()
    }
}

/// Self-trade prevention mode in the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StpConfig {
    #[default]
    Allow,
    CancelResting,
    CancelIncoming,
    CancelBoth,
}

impl StpConfig {
    pub fn mode(self) -> SelfTradePrevention {
        match self {
            StpConfig::Allow => SelfTradePrevention::Allow,
            StpConfig::CancelResting => SelfTradePrevention::CancelResting,
            StpConfig::CancelIncoming => SelfTradePrevention::CancelIncoming,
            StpConfig::CancelBoth => SelfTradePrevention::CancelBoth,
        }
    }
}

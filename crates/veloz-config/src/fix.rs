//! `[fix]`: the FIX 4.4 order-entry acceptor (docs/fix.md): where it listens, the engine's
//! CompID, and the limits of a FIX session.

use serde::{Deserialize, Serialize};

/// `[fix]`: FIX 4.4 order entry, served by the shards next to the binary gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FixConfig {
    /// Serve FIX at all. Off: no FIX port opens.
    pub enabled: bool,
    /// The acceptor's address. Port 0 picks a free port (printed at start).
    pub listen: String,
    /// The engine's CompID: SenderCompID (49) of everything it sends, the TargetCompID (56)
    /// every client must send.
    pub comp_id: String,
    /// Largest FIX message accepted, in bytes; a client that sends a longer one is logged
    /// out (the stream cannot be resynchronised past it).
    pub max_message_bytes: usize,
    /// HeartBtInt (108) a Logon may ask for, in seconds: `min_heartbeat_s..=max_heartbeat_s`.
    pub min_heartbeat_s: u64,
    pub max_heartbeat_s: u64,
    /// A SendingTime (52) further than this from the engine's clock is refused (FIX
    /// SessionRejectReason 10), in seconds; 0: not checked.
    pub max_clock_skew_s: u64,
}

impl Default for FixConfig {
    fn default() -> Self {
        FixConfig {
            enabled: true,
            listen: "127.0.0.1:7704".to_string(),
            comp_id: "VELOZ".to_string(),
            max_message_bytes: 8192,
            min_heartbeat_s: 1,
            max_heartbeat_s: 300,
            max_clock_skew_s: 120,
        }
    }
}

impl FixConfig {
    /// What serde cannot check: the field and why, for [`crate::ConfigError::InvalidFix`].
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let id = &self.comp_id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err((
                "comp_id",
                format!("{id:?} must be 1 to 64 printable ASCII characters without spaces"),
            ));
        }
        if !(256..=1 << 20).contains(&self.max_message_bytes) {
            let v = self.max_message_bytes;
            return Err(("max_message_bytes", format!("{v} must be 256..=1048576")));
        }
        if self.min_heartbeat_s == 0 || self.min_heartbeat_s > self.max_heartbeat_s {
            let (lo, hi) = (self.min_heartbeat_s, self.max_heartbeat_s);
            return Err((
                "min_heartbeat_s",
                format!("{lo} must be at least 1 and at most max_heartbeat_s ({hi})"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_bad_value_is_named() {
        assert_eq!(FixConfig::default().check(), Ok(()));
        let bad = |f: fn(&mut FixConfig)| {
            let mut c = FixConfig::default();
            f(&mut c);
            c.check().unwrap_err()
        };
        assert_eq!(bad(|c| c.comp_id = String::new()).0, "comp_id");
        let (field, why) = bad(|c| c.comp_id = "A B".to_string());
        assert_eq!(field, "comp_id");
        assert!(why.contains("\"A B\""), "{why}");
        assert_eq!(bad(|c| c.max_message_bytes = 10).0, "max_message_bytes");
        assert_eq!(bad(|c| c.min_heartbeat_s = 0).0, "min_heartbeat_s");
        assert_eq!(bad(|c| c.max_heartbeat_s = 0).0, "min_heartbeat_s");
    }
}

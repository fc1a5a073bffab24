//! `[gateway]`: the client-facing TCP side: the order-entry address, framing and session
//! timers, outbound limits, the resend window of the report streams, and the throttles
//! (order rate per session, logon back-off, half-open connections).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[gateway]`: the client-facing TCP side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The order-entry address: one socket, owned by this process alone, from which every
    /// shard accepts (each new connection goes to a shard with the fewest sessions).
    pub listen: String,
    /// Largest frame body accepted from a client (bytes); a larger length prefix is refused
    /// before any of the body is read, and the session is closed.
    pub max_frame_bytes: u32,
    /// A session must log on within this many milliseconds of connecting.
    pub logon_timeout_ms: u64,
    /// Heartbeat interval announced at logon; the engine sends one when it has been silent
    /// this long (milliseconds).
    pub heartbeat_ms: u64,
    /// A session silent for this long (milliseconds) is logged out.
    pub idle_timeout_ms: u64,
    /// Bytes of execution reports a session may have waiting for its socket; a client that
    /// lets more pile up is disconnected as a slow consumer.
    pub outbound_limit_bytes: usize,
    /// After this many malformed or unknown messages a session is logged out.
    pub max_bad_messages: u32,
    /// Reports per account and stream (shard) kept in memory for resend at logon, newest
    /// (rebuilt from the journal at start). A resend is written at once: keep it well
    /// below what `outbound_limit_bytes` holds (a report frame is 192-222 bytes: what
    /// `FrameEncoder::stream_report` writes, the reason text's slot included).
    pub resend_window: usize,
    /// Orders (new, cancel, replace, mass cancel) a session may send per second, on
    /// average; one over the rate is rejected at once with `Throttled` (104) and never
    /// reaches a shard. 0: unlimited (the default, so that `veloz load` benchmarks measure
    /// the engine, not the limit; a venue sets one, e.g. 10000). `[[accounts]]` may override
    /// it per account.
    pub order_rate_per_s: u64,
    /// Orders a session may send at once above `order_rate_per_s` (the token bucket's size;
    /// at least 1 when a rate is set).
    pub order_burst: u64,
    /// After this many failed logons of one account (unknown account or wrong token), with
    /// no quiet `logon_failure_window_ms` between them, the account's logons are refused
    /// without checking the token for a back-off (`logon_backoff_initial_ms`, doubling per
    /// further failure up to `logon_backoff_max_ms`); a successful logon resets it. 0: off.
    pub logon_failures_before_backoff: u32,
    /// The same per source address: once backed off, connections from the address are
    /// closed at accept, unanswered. Above the per-account number, so that one member's
    /// misconfigured client does not lock out the other accounts behind its address. 0: off.
    pub address_logon_failures_before_backoff: u32,
    /// First back-off (milliseconds).
    pub logon_backoff_initial_ms: u64,
    /// Longest back-off (milliseconds).
    pub logon_backoff_max_ms: u64,
    /// Failed logons are forgotten after this long (milliseconds) without one.
    pub logon_failure_window_ms: u64,
    /// Connections from one address that have not logged on yet, engine-wide; more are
    /// closed at accept. 0: unlimited.
    pub max_pending_logons_per_ip: u32,
    /// How the shards' sockets talk to the kernel (`"auto"`, `"io_uring"`, `"std"`).
    pub network: NetworkPath,
}

/// `gateway.network`: the shards' network path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPath {
    /// io_uring where the kernel offers what the shard needs, else std sockets with a
    /// warning that says why (the default).
    #[default]
    Auto,
    /// Each shard's own io_uring: multishot accept and receive into provided buffers, one
    /// submission of every session's sends per loop pass; refuse to start without it.
    IoUring,
    /// Non-blocking std sockets, one system call per read and per write.
    Std,
}

impl NetworkPath {
    /// The spelling of the configuration and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            NetworkPath::Auto => "auto",
            NetworkPath::IoUring => "io_uring",
            NetworkPath::Std => "std",
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            listen: "127.0.0.1:7700".to_string(),
            max_frame_bytes: 4_096,
            logon_timeout_ms: 5_000,
            heartbeat_ms: 1_000,
            idle_timeout_ms: 10_000,
            outbound_limit_bytes: 4 << 20,
            max_bad_messages: 10,
            resend_window: 10_000,
            order_rate_per_s: 0,
            order_burst: 1_000,
            logon_failures_before_backoff: 5,
            address_logon_failures_before_backoff: 20,
            logon_backoff_initial_ms: 100,
            logon_backoff_max_ms: 30_000,
            logon_failure_window_ms: 60_000,
            max_pending_logons_per_ip: 8,
            network: NetworkPath::Auto,
        }
    }
}

impl GatewayConfig {
    /// What serde cannot check; the error names the field and the value.
    pub fn check(&self) -> Result<(), ConfigError> {
        let g = self;
        let gateway_rules: [(&'static str, u64, bool, &'static str); 7] = [
            (
                "max_frame_bytes",
                g.max_frame_bytes as u64,
                (64..=1 << 20).contains(&g.max_frame_bytes),
                "must be 64..=1048576",
            ),
            (
                "heartbeat_ms",
                g.heartbeat_ms,
                g.heartbeat_ms > 0 && g.heartbeat_ms < g.idle_timeout_ms,
                "must be > 0 and below idle_timeout_ms",
            ),
            (
                "outbound_limit_bytes",
                g.outbound_limit_bytes as u64,
                g.outbound_limit_bytes >= 64 * 1024,
                "must be at least 65536",
            ),
            (
                "resend_window",
                g.resend_window as u64,
                (1..=10_000_000).contains(&g.resend_window),
                "must be 1..=10000000",
            ),
            (
                "order_burst",
                g.order_burst,
                g.order_rate_per_s == 0 || g.order_burst >= 1,
                "must be at least 1 when order_rate_per_s is set",
            ),
            (
                "logon_backoff_initial_ms",
                g.logon_backoff_initial_ms,
                (1..=g.logon_backoff_max_ms).contains(&g.logon_backoff_initial_ms),
                "must be 1..=logon_backoff_max_ms",
            ),
            (
                "logon_failure_window_ms",
                g.logon_failure_window_ms,
                g.logon_failure_window_ms >= g.logon_backoff_max_ms,
                "must be at least logon_backoff_max_ms",
            ),
        ];
        for (field, value, ok, why) in gateway_rules {
            if !ok {
                return Err(ConfigError::InvalidGateway { field, value, why });
            }
        }
        Ok(())
    }
}

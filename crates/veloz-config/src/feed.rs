//! `[feed]`: the public market-data feeds (docs/market-data.md): the binary FlatBuffers feed
//! over TCP, the WebSocket JSON feed with the live book page, and the limits that keep a
//! slow subscriber from costing anyone else anything.

use serde::{Deserialize, Serialize};

/// `[feed]`: where market data is served and how much a subscriber may fall behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Serve market data at all. Off: the shards hand nothing over and no feed port opens.
    pub enabled: bool,
    /// The binary feed's address (length-prefixed FlatBuffers frames, `schemas/md.fbs`).
    /// Port 0 picks a free port (logged at start).
    pub listen: String,
    /// The WebSocket feed's address; plain HTTP GETs on it are answered with the live book
    /// page (`/`). Port 0 picks a free port (logged at start).
    pub ws_listen: String,
    /// Market-data items (one per public event of a command, plus one per command) each
    /// shard's ring to the feed thread holds.
    pub ring_slots: usize,
    /// Items a shard keeps for the feed thread beyond its ring (waiting for durability or
    /// for ring room). Past this the shard stops feeding (its instruments' subscribers are
    /// cut off with the reason) rather than grow without bound; matching never waits.
    pub max_backlog_items: usize,
    /// Bytes a subscriber may have waiting for its socket; a subscriber that lets more pile
    /// up is cut off as a slow consumer (it reconnects and takes a fresh snapshot).
    pub outbound_limit_bytes: usize,
    /// A subscriber that heard nothing for this long gets a heartbeat (milliseconds).
    pub heartbeat_ms: u64,
    /// Connections each feed (binary, WebSocket) serves at once; more are refused.
    pub max_subscribers: usize,
    /// Public trades kept per instrument for new subscribers and the page.
    pub recent_trades: usize,
    /// While commands flow, the feed thread publishes at most once per this many
    /// microseconds: after a pass that found work it sleeps this long (idle, it parks up to
    /// `engine.park_max_us`). Every update is still sent, in order; each is up to this much
    /// later. 0 (the default): no pause, market data as soon as the feed thread runs, which
    /// under load means a wake-up every ~10 us. On a host where the control core is shared
    /// with a shard or a latency-sensitive client, 500 cut the feed thread's share of that
    /// core from 21 % to 8-9 % at 100,000 orders/s, and its context switches from 11,000/s
    /// to 1,600/s (docs/BENCHMARKS.md, "Market-data fan-out": what it does to the round
    /// trip there). 0..=100000.
    pub batch_us: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            enabled: true,
            listen: "127.0.0.1:7702".to_string(),
            ws_listen: "127.0.0.1:7703".to_string(),
            ring_slots: 65_536,
            max_backlog_items: 4_000_000,
            outbound_limit_bytes: 8 << 20,
            heartbeat_ms: 1_000,
            max_subscribers: 1_000,
            recent_trades: 50,
            batch_us: 0,
        }
    }
}

impl FeedConfig {
    /// What serde cannot check: a field name and why, for [`crate::ConfigError::InvalidFeed`].
    pub fn check(&self) -> Result<(), (&'static str, u64, &'static str)> {
        if self.ring_slots < 2 {
            return Err(("ring_slots", self.ring_slots as u64, "must be at least 2"));
        }
        if self.max_backlog_items < self.ring_slots {
            return Err((
                "max_backlog_items",
                self.max_backlog_items as u64,
                "must be at least ring_slots",
            ));
        }
        if self.outbound_limit_bytes < 64 << 10 {
            return Err((
                "outbound_limit_bytes",
                self.outbound_limit_bytes as u64,
                "must be at least 65536 (a snapshot of a deep book is large)",
            ));
        }
        if !(10..=60_000).contains(&self.heartbeat_ms) {
            return Err(("heartbeat_ms", self.heartbeat_ms, "must be 10..=60000"));
        }
        if self.max_subscribers == 0 {
            return Err(("max_subscribers", 0, "must be at least 1"));
        }
        if self.batch_us > 100_000 {
            return Err(("batch_us", self.batch_us, "must be 0..=100000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_each_bad_value_is_named() {
        assert_eq!(FeedConfig::default().check(), Ok(()));
        let bad = |f: fn(&mut FeedConfig)| {
            let mut c = FeedConfig::default();
            f(&mut c);
            c.check().unwrap_err().0
        };
        assert_eq!(bad(|c| c.ring_slots = 1), "ring_slots");
        assert_eq!(bad(|c| c.max_backlog_items = 10), "max_backlog_items");
        assert_eq!(
            bad(|c| c.outbound_limit_bytes = 100),
            "outbound_limit_bytes"
        );
        assert_eq!(bad(|c| c.heartbeat_ms = 0), "heartbeat_ms");
        assert_eq!(bad(|c| c.max_subscribers = 0), "max_subscribers");
        assert_eq!(bad(|c| c.batch_us = 100_001), "batch_us");
    }
}

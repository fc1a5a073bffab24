//! systemd's readiness protocol (`Type=notify`, `sd_notify(3)`), spoken by the control thread.
//!
//! What the service manager is told, in order:
//! - `STATUS=recovering N shard(s)` when the control thread starts (each shard is replaying its
//!   snapshot and journal then; no port is open);
//! - `STATUS=recovered K of N shard(s)` as each shard reports its recovered state;
//! - `READY=1` (with `STATUS=listening on ADDR, metrics on ADDR`) once every shard has recovered,
//!   its state matched the clean-shutdown marker and every listening socket is open: the moment
//!   the `veloz: listening on` line is printed, so `systemctl start` returns when the engine
//!   takes orders, however long the journals took to replay;
//! - `STOPPING=1` (with `STATUS=stopping`) once, when the stop flag is first seen set
//!   (SIGTERM/SIGINT, or a failed shard): the clean stop (drain, sync, checkpoint, marker)
//!   has begun.
//!
//! Without `NOTIFY_SOCKET` in the environment (not started by systemd with `Type=notify`)
//! every call does nothing. A message that cannot be sent is logged once and the engine goes
//! on: readiness is a courtesy to the service manager, never a reason to stop trading.
//! `NOTIFY_SOCKET` is left in the environment (the process starts no children).

use sd_notify::NotifyState;

/// What has been told so far; one per control thread.
#[derive(Debug)]
pub struct Notifier {
    shards: usize,
    ready: bool,
    stopping: bool,
    failed: bool,
}

impl Notifier {
    /// Tell the service manager that `shards` shards are recovering.
    pub fn recovering(shards: usize) -> Notifier {
        let mut n = Notifier {
            shards,
            ready: false,
            stopping: false,
            failed: false,
        };
        n.send(&[NotifyState::Status(&format!(
            "recovering {shards} shard(s)"
        ))]);
        n
    }

    /// A shard reported its recovered state; `recovered` shards have so far.
    pub fn shard_recovered(&mut self, recovered: usize) {
        let status = format!("recovered {recovered} of {} shard(s)", self.shards);
        self.send(&[NotifyState::Status(&status)]);
    }

    /// Every shard recovered and every port is open: `READY=1`, once.
    pub fn ready(&mut self, orders: &str, metrics: &str) {
        if self.ready {
            return;
        }
        self.ready = true;
        let status = format!("listening on {orders}, metrics on {metrics}");
        self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    }

    /// Called on every turn of the control loop with the stop flag: `STOPPING=1` the first
    /// time it is set.
    pub fn stop_flag(&mut self, stop: bool) {
        if stop && !self.stopping {
            self.stopping = true;
            self.send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
        }
    }

    fn send(&mut self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(false, states) {
            if !self.failed {
                self.failed = true;
                let socket = std::env::var("NOTIFY_SOCKET").unwrap_or_default();
                tracing::warn!(
                    target: "veloz::control",
                    "cannot notify the service manager on NOTIFY_SOCKET={socket}: {e}"
                );
            }
        }
    }
}

//! What every shard shares with the others and with the control thread: the configuration,
//! the routing, the account table, and the few atomics of start-up and shutdown.
//!
//! Invariants: nothing here is written on the order path. The counters are touched when a
//! command crosses to another shard and when its `Done` comes back (`in_flight`), when a
//! shard stops reading (`stopped_reading`), and once per shard at start-up (the recovery
//! barrier and the port shard 0 publishes).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use veloz_config::routing::Routing;
use veloz_config::Config;

use super::auth::Authenticator;

/// Shared, read-mostly state of one engine run.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub routing: Routing,
    pub auth: Authenticator,
    /// Process-wide time base for ingress stamps (TSC, comparable across cores); each
    /// shard reads it through its [`Clock`](crate::io::Clock).
    pub epoch: minstant::Instant,
    /// Set on SIGINT/SIGTERM (by signal-hook), or by a shard that failed.
    pub stop: Arc<AtomicBool>,
    /// Shards that have stopped reading their sockets.
    pub stopped_reading: AtomicUsize,
    /// Per shard: remote commands sent and not yet answered with `Done`.
    pub in_flight: Vec<AtomicU64>,
    /// Shards done with recovery (successfully or not): the port opens when all are.
    recovered: Mutex<usize>,
    recovered_cv: Condvar,
    /// The port shard 0 bound (others bind the same one), or why it could not.
    port: Mutex<Option<Result<u16, String>>>,
    port_ready: Condvar,
    /// Journals live in `data_dir/shard-N/`.
    pub data_dir: PathBuf,
    /// The operator asked to cut mid-journal corruption instead of refusing to start.
    pub repair: bool,
    /// Core of each shard, by shard index.
    pub cores: Vec<usize>,
    /// Where journal helper threads (segment preparer, group-commit sync) may run: the
    /// online cores no shard spins on, or every online core on hosts that have none.
    pub helper_cores: Vec<usize>,
}

impl Shared {
    /// The shared state of `cores.len()` shards (one per core), none recovered yet.
    pub fn new(
        config: Config,
        routing: Routing,
        data_dir: PathBuf,
        cores: Vec<usize>,
        helper_cores: Vec<usize>,
        stop: Arc<AtomicBool>,
    ) -> Shared {
        Shared {
            auth: Authenticator::new(&config),
            routing,
            data_dir,
            repair: false,
            helper_cores,
            epoch: minstant::Instant::now(),
            stop,
            stopped_reading: AtomicUsize::new(0),
            in_flight: cores.iter().map(|_| AtomicU64::new(0)).collect(),
            recovered: Mutex::new(0),
            recovered_cv: Condvar::new(),
            port: Mutex::new(None),
            port_ready: Condvar::new(),
            cores,
            config,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.in_flight.len()
    }

    /// Count this shard as recovered and wait for the others (or for a stop: a shard that
    /// could not even be started never arrives).
    pub fn arrive_and_wait(&self) {
        let n = self.shards();
        let mut count = self.recovered.lock().expect("recovered lock");
        *count += 1;
        self.recovered_cv.notify_all();
        while *count < n && !self.stop.load(Ordering::SeqCst) {
            count = self
                .recovered_cv
                .wait_timeout(count, Duration::from_millis(10))
                .expect("recovered lock")
                .0;
        }
    }

    /// Shard 0 announces the port it bound (or why it could not).
    pub fn publish_port(&self, port: Result<u16, String>) {
        *self.port.lock().expect("port lock") = Some(port);
        self.port_ready.notify_all();
    }

    /// The port shard 0 bound; waits until it has.
    pub fn wait_port(&self) -> Result<u16, String> {
        let mut port = self.port.lock().expect("port lock");
        while port.is_none() {
            port = self.port_ready.wait(port).expect("port lock");
        }
        port.clone().expect("set")
    }
}

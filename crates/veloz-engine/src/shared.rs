//! What every shard shares with the others and with the control thread: the configuration,
//! the routing, the account table, and the few atomics of start-up and shutdown.
//!
//! Invariants: nothing here is written on the order path. The counters are touched when a
//! session logs on or ends (`cod_sessions`, for cancel-on-disconnect), when a
//! command crosses to another shard and when its `Done` comes back (`in_flight`), when a
//! shard stops reading (`stopped_reading`), and once per shard at start-up (the recovery
//! barrier and the gateway socket: bound by `serve`, listened on by shard 0, a handle on it
//! taken by every other shard).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;
use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::AccountId;

use super::auth::Authenticator;
use super::gateway::throttle::Throttles;
use super::io::{BoundSocket, Listener};

/// Shared, read-mostly state of one engine run.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub routing: Routing,
    pub auth: Authenticator,
    /// Order rates per account and the logon limiter (touched at accept and logon only).
    pub throttles: Arc<Throttles>,
    /// Process-wide time base for ingress stamps (TSC, comparable across cores); each
    /// shard reads it through its [`Clock`](crate::io::Clock).
    pub epoch: minstant::Instant,
    /// Set on SIGINT/SIGTERM (by signal-hook), or by a shard that failed.
    pub stop: Arc<AtomicBool>,
    /// Shards that have stopped reading their sockets.
    pub stopped_reading: AtomicUsize,
    /// Per shard: remote commands sent and not yet answered with `Done`.
    pub in_flight: Vec<AtomicU64>,
    /// Per shard: sessions open, as last published by [`Shared::may_accept`].
    sessions_open: Vec<AtomicU64>,
    /// Per configured account: its logged-on sessions with cancel-on-disconnect on,
    /// engine-wide (the cancel acts when the last of them ends; sessions without it, such
    /// as a drop copy or a monitor, neither count nor hold the orders up).
    cod_sessions: FxHashMap<AccountId, AtomicU64>,
    /// Shards done with recovery (successfully or not): the port opens when all are.
    recovered: Mutex<usize>,
    recovered_cv: Condvar,
    /// The gateway's one socket on its way to the shards.
    gateway: Mutex<GatewaySocket>,
    gateway_ready: Condvar,
    /// Journals live in `data_dir/shard-N/`.
    pub data_dir: PathBuf,
    /// The operator asked to cut mid-journal corruption instead of refusing to start.
    pub repair: bool,
    /// Core of each shard, by shard index.
    pub cores: Vec<usize>,
    /// Core of the control thread (the feed thread runs there too).
    pub control_core: usize,
    /// The feed thread's figures, for the metrics endpoint.
    pub feed_stats: Arc<crate::feed::FeedStats>,
    /// Where journal helper threads (segment preparer, group-commit sync) may run: the
    /// online cores no shard spins on, or every online core on hosts that have none.
    pub helper_cores: Vec<usize>,
    /// The shards' sockets run on their own io_uring ([`crate::io::Net`]); false: std
    /// sockets (decided at start from `gateway.network` and what the kernel offers).
    pub net_uring: bool,
    /// FIX 4.4 order entry (`[fix]`): what its sessions share, its socket (bound by
    /// `serve`, a handle taken by every shard) and its address; `None` when it is off.
    pub(crate) fix: Option<Arc<crate::gateway::fix::FixShared>>,
    pub(crate) fix_listener: Option<Listener>,
    pub fix_addr: Option<String>,
    /// Replication (`durability = "replicated"`): each shard attaches its journal once
    /// recovered; the control thread renders the figures. `None` otherwise.
    pub replica: Option<veloz_replica::Attacher>,
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
            throttles: Arc::new(Throttles::new(&config)),
            routing,
            data_dir,
            repair: false,
            control_core: 0,
            feed_stats: Arc::default(),
            helper_cores,
            net_uring: false,
            fix: None,
            fix_listener: None,
            fix_addr: None,
            replica: None,
            epoch: minstant::Instant::now(),
            stop,
            stopped_reading: AtomicUsize::new(0),
            in_flight: cores.iter().map(|_| AtomicU64::new(0)).collect(),
            sessions_open: cores.iter().map(|_| AtomicU64::new(0)).collect(),
            cod_sessions: config
                .accounts
                .iter()
                .map(|a| (a.id, AtomicU64::new(0)))
                .collect(),
            recovered: Mutex::new(0),
            recovered_cv: Condvar::new(),
            gateway: Mutex::new(GatewaySocket::Absent),
            gateway_ready: Condvar::new(),
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

    /// Publish that `shard` has `open` sessions, and say whether it takes the next waiting
    /// connection: only a shard no other has fewer sessions than does, so connections from
    /// the one gateway socket spread evenly over the shards (to within one per shard, ties
    /// going to whichever polls first). Written when a shard's count changes, read on
    /// accept: never on the order path.
    pub fn may_accept(&self, shard: usize, open: u64) -> bool {
        let mine = &self.sessions_open[shard];
        if mine.load(Ordering::Relaxed) != open {
            mine.store(open, Ordering::Relaxed);
        }
        self.sessions_open
            .iter()
            .enumerate()
            .all(|(i, other)| i == shard || other.load(Ordering::Relaxed) >= open)
    }

    /// Hand over the gateway socket `serve` bound; shard 0 listens on it once every shard
    /// has recovered ([`Shared::listen_gateway`]).
    pub fn offer_gateway(&self, socket: BoundSocket) {
        *self.gateway.lock().expect("gateway lock") = GatewaySocket::Bound(socket);
    }

    /// Shard 0: start listening on the gateway socket and keep a handle on it; the other
    /// shards take theirs with [`Shared::take_gateway`]. On failure they are told why.
    pub fn listen_gateway(&self) -> Result<Listener, String> {
        let mut slot = self.gateway.lock().expect("gateway lock");
        let others = self.shards() - 1;
        let taken = std::mem::replace(&mut *slot, GatewaySocket::Taken);
        let listener = match taken {
            GatewaySocket::Bound(socket) => socket.listen().map_err(|e| e.to_string()),
            GatewaySocket::Failed(why) => Err(why),
            _ => Err("no gateway socket was bound".to_string()),
        };
        // The slot keeps a handle for the other shards to take theirs from.
        *slot = match &listener {
            Ok(_) if others == 0 => GatewaySocket::Taken,
            Ok(l) => match l.try_clone() {
                Ok(listener) => GatewaySocket::Listening { listener, others },
                Err(e) => GatewaySocket::Failed(format!("cannot share the gateway socket: {e}")),
            },
            Err(why) => GatewaySocket::Failed(why.clone()),
        };
        self.gateway_ready.notify_all();
        match &*slot {
            GatewaySocket::Failed(why) => Err(why.clone()),
            _ => listener,
        }
    }

    /// Shard 0 will not listen (it failed, or the engine stops before start): shards
    /// waiting for the gateway socket are told `why`.
    pub fn fail_gateway(&self, why: String) {
        *self.gateway.lock().expect("gateway lock") = GatewaySocket::Failed(why);
        self.gateway_ready.notify_all();
    }

    /// A shard other than 0: its handle on the gateway socket, once shard 0 listens on it
    /// (waits until then). The last shard to take one takes the shared slot's own, so the
    /// socket closes when the last shard drops its handle.
    pub fn take_gateway(&self) -> Result<Listener, String> {
        let mut slot = self.gateway.lock().expect("gateway lock");
        while matches!(*slot, GatewaySocket::Bound(_) | GatewaySocket::Absent) {
            slot = self.gateway_ready.wait(slot).expect("gateway lock");
        }
        match std::mem::replace(&mut *slot, GatewaySocket::Taken) {
            GatewaySocket::Listening { listener, others } if others > 1 => {
                let mine = listener
                    .try_clone()
                    .map_err(|e| format!("cannot share the gateway socket: {e}"));
                *slot = GatewaySocket::Listening {
                    listener,
                    others: others - 1,
                };
                mine
            }
            GatewaySocket::Listening { listener, .. } => Ok(listener),
            GatewaySocket::Failed(why) => {
                *slot = GatewaySocket::Failed(why.clone());
                Err(why)
            }
            _ => Err("every shard already took the gateway socket".to_string()),
        }
    }
}

/// Where the gateway socket is on its way from `serve` to the shards.
#[derive(Debug)]
enum GatewaySocket {
    /// Not offered yet (and never, in unit tests that build shards by hand).
    Absent,
    /// Bound by `serve`, not listening.
    Bound(BoundSocket),
    /// Shard 0 listens; `others` shards have still to take their handle.
    Listening { listener: Listener, others: usize },
    /// Every shard has its handle.
    Taken,
    /// Why shard 0 could not listen, or would not.
    Failed(String),
}

impl Shared {
    /// A session of `account` logged on (at logon, on its shard), with cancel-on-disconnect
    /// on or off.
    pub fn session_started(&self, account: AccountId, cancel_on_disconnect: bool) {
        if !cancel_on_disconnect {
            return;
        }
        if let Some(n) = self.cod_sessions.get(&account) {
            n.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A logged-on session of `account` ended; returns whether it had cancel-on-disconnect
    /// on and was the account's last such session anywhere in the engine (one atomic step:
    /// of two sessions ending at once, exactly one is the last).
    pub fn session_ended(&self, account: AccountId, cancel_on_disconnect: bool) -> bool {
        cancel_on_disconnect
            && self
                .cod_sessions
                .get(&account)
                .is_some_and(|n| n.fetch_sub(1, Ordering::SeqCst) == 1)
    }
}

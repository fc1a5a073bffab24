//! The shard's io_uring side (part of the shard loop, split out of `shard.rs`): opening the
//! gateway socket on the shard's network path, and running group commit's data syncs on the
//! ring.
//!
//! Journal syncs on the ring (`durability = "group"`, the network on io_uring and
//! `journal.sync_on_ring = true`; off by default until its acknowledgement latency matches the
//! sync thread's, docs/BENCHMARKS.md "Journal sync on the ring"): the journal's writer is opened with
//! [`SyncDriver::Caller`], so no sync thread runs. Every pass [`Shard::drive_syncs`] hands the
//! outcome of a completed sync to the writer (which moves the durable watermark over exactly
//! the synced range, or makes the journal unavailable), then asks the writer for the next due
//! sync and submits it as `IORING_OP_FSYNC` (datasync, over its range); the pass's last
//! [`Net::poll`] carries the submission with the sessions' sends. One sync is in flight at a
//! time; the job is kept until its completion, so its segment file stays open. The kernel
//! runs the sync on an io-wq worker placed off the shard's core ([`Shard::open_net`]).

use veloz_journal::{JournalConfig, Storage, SyncDriver};

use super::{Shard, ShardError, Shared};

/// How often a shard looks for new FIX connections (a connection waits at most this long).
pub(super) const FIX_ACCEPT_EVERY_NS: u64 = 1_000_000;
use crate::io::{Net, NetStream};

/// The journal config shard recovery opens the writer with: syncs driven by the shard when
/// they will run on its ring.
pub(super) fn journal_config(shared: &Shared) -> JournalConfig {
    let mut config = shared.config.journal.clone();
    if config.syncs_on_ring(shared.net_uring) {
        config.sync_driver = SyncDriver::Caller;
    }
    config
}

impl<S: Storage> Shard<S, NetStream> {
    /// Take this shard's handle on the gateway socket `serve` bound: shard 0 starts
    /// listening on it (every shard has recovered by now), the others wait for that and
    /// take a clone. All poll the one queue of waiting connections.
    pub(super) fn open_listener(&mut self) -> Result<u16, ShardError> {
        let listener = if self.index == 0 {
            self.shared.listen_gateway()
        } else {
            self.shared.take_gateway()
        };
        let (shard, addr) = (self.index, self.shared.config.gateway.listen.clone());
        let listen_err = move |detail: String| ShardError::Listen {
            shard,
            addr: addr.clone(),
            detail,
        };
        let listener = listener.map_err(&listen_err)?;
        let port = listener.port().map_err(|e| listen_err(e.to_string()))?;
        self.net = self.open_net().map_err(&listen_err)?;
        self.net
            .listen(listener)
            .map_err(|e| listen_err(e.to_string()))?;
        if let Some(fix) = &self.shared.fix_listener {
            let addr = self.shared.config.fix.listen.clone();
            let fix = fix.try_clone().map_err(|e| ShardError::Listen {
                shard,
                addr,
                detail: format!("cannot share the FIX socket: {e}"),
            })?;
            self.fix_listener = Some((fix, 0));
        }
        Ok(port)
    }

    /// Take waiting FIX connections, each only while no shard has fewer sessions: accepted
    /// from the FIX socket, then run on the shard's network path like a binary session
    /// (adopted by its io_uring, or std sockets). The socket is looked at once per
    /// [`FIX_ACCEPT_EVERY_NS`] at most: on the std socket every look is a system call, and
    /// the shard's spinning passes must not each pay one.
    pub(super) fn accept_fix(&mut self) -> usize {
        let now = self.clock.now_ns();
        match &mut self.fix_listener {
            Some((_, next)) if now >= *next => *next = now + FIX_ACCEPT_EVERY_NS,
            _ => return 0,
        }
        let mut accepted = 0;
        while let Some((listener, _)) = &self.fix_listener {
            let open = self.metrics.counters.sessions_open;
            if !self.shared.may_accept(self.index, open) {
                break;
            }
            let Some((stream, peer)) = listener.accept() else {
                break;
            };
            let stream = self.net.adopt(stream);
            if self
                .gateway
                .open_fix(stream, peer, &mut self.metrics)
                .is_some()
            {
                accepted += 1;
            }
        }
        accepted
    }

    /// The shard's network path: its own io_uring, set up on this thread (the only one
    /// that submits to it), when `serve` chose io_uring; else std sockets. Data syncs the
    /// ring runs go to kernel workers on the cores no shard spins on (PLATFORM.md pitfall
    /// 4), or on every core but this shard's.
    fn open_net(&mut self) -> Result<Net, String> {
        if !self.shared.net_uring {
            self.metrics.counters.net_uring = 0;
            return Ok(Net::Std(None));
        }
        let ring = veloz_uring::Ring::new(veloz_uring::RingConfig::default())
            .map_err(|e| format!("cannot set up the shard's io_uring: {e}"))?;
        let own = self.shared.cores[self.index];
        let mut workers: Vec<usize> = (self.shared.helper_cores.iter().copied())
            .filter(|&c| c != own)
            .collect();
        if workers.is_empty() {
            workers = self.shared.helper_cores.clone();
        }
        if let Err(e) = ring.set_worker_cpus(&workers) {
            tracing::warn!(
                target: "veloz::engine",
                shard = self.index,
                "io_uring: cannot place its kernel workers on cores {workers:?}: {e}; syncs may run on the shard's core"
            );
        }
        self.metrics.counters.net_uring = 1;
        self.metrics.counters.sync_uring =
            u64::from(self.shared.config.journal.syncs_on_ring(true));
        Ok(Net::Uring(ring))
    }
}

impl<S: Storage, T: crate::io::Stream> Shard<S, T> {
    /// Hand completed syncs to the journal, and submit the next due one on the ring.
    /// Returns the work done (syncs completed and submitted). Nothing on the std path (the
    /// writer has its sync thread there, and `sync_due` answers `None`).
    pub(super) fn drive_syncs(&mut self) -> usize {
        let Some(ring) = self.net.ring() else {
            return 0;
        };
        let mut work = 0;
        while let Some((token, result)) = ring.take_synced() {
            match self.sync_in_flight.take() {
                Some((t, job)) if t == token => {
                    self.sequencer.sync_completed(job, result);
                    work += 1;
                }
                other => self.sync_in_flight = other,
            }
        }
        if self.sync_in_flight.is_none() {
            if let Some(job) = self.sequencer.sync_due() {
                work += 1;
                match job.target() {
                    Some((fd, offset, len)) => match ring.fsync(fd, offset, len) {
                        Ok(token) => self.sync_in_flight = Some((token, job)),
                        Err(e) => self.sequencer.sync_completed(job, Err(e)),
                    },
                    // A backend without a file (tests): run it here.
                    None => {
                        let result = job.run_blocking();
                        self.sequencer.sync_completed(job, result);
                    }
                }
            }
        }
        work
    }
}

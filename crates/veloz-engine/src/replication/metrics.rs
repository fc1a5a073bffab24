//! Replication on the metrics endpoint: a standby's own small endpoint while it follows
//! (the engine's control thread is not running yet), and the primary's replication lines.
//!
//! A standby serves, on `metrics.listen`, `veloz_replica_role 0`, each shard's applied
//! sequence, its stream's end and the lag between them (records), the state hash of what it
//! applied, and who holds the lease; `/admin/...` answers 503 (nothing to operate on). When
//! it takes over, the same socket is handed to the engine's metrics endpoint.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use veloz_replica::ReplicaStats;

use crate::exposition::header;
use crate::metrics_server::{response, MetricsServer, Reply};
use crate::ServeError;

#[derive(Debug, Default)]
struct ShardFigures {
    applied: AtomicU64,
    stream_end: AtomicU64,
    state_hash: AtomicU64,
}

#[derive(Debug)]
struct Figures {
    engine: String,
    shards: Vec<ShardFigures>,
    holder: Mutex<String>,
}

/// The standby's endpoint: figures updated by the follower, served by a thread.
#[derive(Debug)]
pub struct StandbyMetrics {
    figures: Arc<Figures>,
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<TcpListener>>,
}

impl StandbyMetrics {
    /// Bind `listen` and serve the standby's figures from a thread.
    pub fn serve(listen: &str, shards: usize, engine: &str) -> Result<StandbyMetrics, ServeError> {
        let listener = crate::io::Listener::bind("metrics", listen)?.into_std();
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| listen.to_string());
        let figures = Arc::new(Figures {
            engine: engine.to_string(),
            shards: (0..shards).map(|_| ShardFigures::default()).collect(),
            holder: Mutex::new(String::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (Arc::clone(&figures), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("veloz-standby-metrics".into())
            .spawn(move || {
                let keep = listener.try_clone().expect("clone the metrics socket");
                if let Ok(mut server) = MetricsServer::new(listener) {
                    while !s.load(Ordering::Acquire) {
                        let busy = server.poll(
                            || render_standby(&f),
                            |_| {
                                Reply::Now(response(
                                    "503 Service Unavailable",
                                    "text/plain",
                                    "a standby takes no operator requests\n",
                                ))
                            },
                        );
                        if !busy {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
                let _ = keep.set_nonblocking(false);
                keep
            })
            .map_err(|e| ServeError::Io {
                path: "standby metrics thread".into(),
                detail: e.to_string(),
            })?;
        Ok(StandbyMetrics {
            figures,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn applied(&self, shard: u16, seq: u64, hash: u64) {
        let s = &self.figures.shards[shard as usize];
        s.applied.store(seq, Ordering::Relaxed);
        s.state_hash.store(hash, Ordering::Relaxed);
    }

    pub fn stream_end(&self, shard: u16, seq: u64) {
        self.figures.shards[shard as usize]
            .stream_end
            .store(seq, Ordering::Relaxed);
    }

    pub fn set_holder(&self, node: &str) {
        *self
            .figures
            .holder
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = node.to_string();
    }

    /// Stop serving; the listening socket, for the engine's endpoint.
    pub fn stop(mut self) -> Option<TcpListener> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for StandbyMetrics {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn render_standby(f: &Figures) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "veloz_replica_role",
        "This node's role: 1 primary, 0 standby",
        "gauge",
    );
    let _ = writeln!(out, "veloz_replica_role 0");
    header(
        &mut out,
        "veloz_standby_applied_seq",
        "Last journal record the standby applied, per shard",
        "gauge",
    );
    for (i, s) in f.shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "veloz_standby_applied_seq{{shard=\"{i}\"}} {}",
            s.applied.load(Ordering::Relaxed)
        );
    }
    header(
        &mut out,
        "veloz_standby_stream_seq",
        "Last journal record in the shard's stream, as last looked at",
        "gauge",
    );
    for (i, s) in f.shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "veloz_standby_stream_seq{{shard=\"{i}\"}} {}",
            s.stream_end.load(Ordering::Relaxed)
        );
    }
    header(
        &mut out,
        "veloz_standby_lag_records",
        "Records in the shard's stream not yet applied by the standby",
        "gauge",
    );
    for (i, s) in f.shards.iter().enumerate() {
        let lag = s
            .stream_end
            .load(Ordering::Relaxed)
            .saturating_sub(s.applied.load(Ordering::Relaxed));
        let _ = writeln!(out, "veloz_standby_lag_records{{shard=\"{i}\"}} {lag}");
    }
    header(
        &mut out,
        "veloz_standby_state_hash",
        "State hash of what the standby applied (compare with the primary's at the same sequence)",
        "gauge",
    );
    for (i, s) in f.shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "veloz_standby_state_hash{{shard=\"{i}\"}} {}",
            s.state_hash.load(Ordering::Relaxed)
        );
    }
    let holder = f.holder.lock().unwrap_or_else(|e| e.into_inner()).clone();
    header(
        &mut out,
        "veloz_standby_info",
        "The engine followed and the lease holder",
        "gauge",
    );
    let _ = writeln!(
        out,
        "veloz_standby_info{{engine=\"{}\",holder=\"{}\"}} 1",
        f.engine,
        holder.replace('"', "'")
    );
    out
}

/// Every replication series a primary and a standby of `shards` shards export, with zero
/// figures (what the monitoring files may name: tests/ops_prometheus_rules.rs).
pub fn exported(shards: usize) -> String {
    let mut out = String::new();
    render_primary(&ReplicaStats::new(shards, 1), &mut out);
    out.push_str(&render_standby(&Figures {
        engine: "veloz".into(),
        shards: (0..shards).map(|_| ShardFigures::default()).collect(),
        holder: Mutex::new(String::new()),
    }));
    out
}

/// The primary's replication lines (appended to the engine's exposition).
pub fn render_primary(stats: &ReplicaStats, out: &mut String) {
    header(
        out,
        "veloz_replica_role",
        "This node's role: 1 primary, 0 standby",
        "gauge",
    );
    let _ = writeln!(out, "veloz_replica_role 1");
    header(
        out,
        "veloz_replica_epoch",
        "Lease epoch this primary holds",
        "gauge",
    );
    let _ = writeln!(
        out,
        "veloz_replica_epoch {}",
        stats.epoch.load(Ordering::Relaxed)
    );
    let shards = stats.shards.len();
    let marks: Vec<(u64, u64)> = (0..shards)
        .map(|i| stats.watermarks(i).unwrap_or((0, 0)))
        .collect();
    header(
        out,
        "veloz_replica_replicated_seq",
        "Last journal record JetStream acknowledged, per shard",
        "gauge",
    );
    for (i, (_, r)) in marks.iter().enumerate() {
        let _ = writeln!(out, "veloz_replica_replicated_seq{{shard=\"{i}\"}} {r}");
    }
    header(
        out,
        "veloz_replica_unacked_records",
        "Records journaled and not yet acknowledged by JetStream (their reports wait)",
        "gauge",
    );
    for (i, (w, r)) in marks.iter().enumerate() {
        let _ = writeln!(
            out,
            "veloz_replica_unacked_records{{shard=\"{i}\"}} {}",
            w.saturating_sub(*r)
        );
    }
    let counter = |out: &mut String, name: &str, help: &str, get: &dyn Fn(usize) -> u64| {
        header(out, name, help, "counter");
        for i in 0..shards {
            let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", get(i));
        }
    };
    counter(
        out,
        "veloz_replica_messages_total",
        "Messages (batches of records) acknowledged by JetStream",
        &|i| stats.shards[i].messages.load(Ordering::Relaxed),
    );
    counter(
        out,
        "veloz_replica_records_total",
        "Journal records acknowledged by JetStream",
        &|i| stats.shards[i].records.load(Ordering::Relaxed),
    );
    counter(
        out,
        "veloz_replica_retries_total",
        "Publishes retried (timeouts, no stream leader)",
        &|i| stats.shards[i].retries.load(Ordering::Relaxed),
    );
    counter(
        out,
        "veloz_replica_acks_total",
        "Publish acknowledgements timed",
        &|i| stats.shards[i].acks.load(Ordering::Relaxed),
    );
    header(
        out,
        "veloz_replica_ack_seconds_total",
        "Publish-to-acknowledgement time, summed over veloz_replica_acks_total",
        "counter",
    );
    for (i, s) in stats.shards.iter().enumerate() {
        let secs = s.ack_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "veloz_replica_ack_seconds_total{{shard=\"{i}\"}} {secs}"
        );
    }
    header(
        out,
        "veloz_replica_ack_max_seconds",
        "Longest publish-to-acknowledgement time since start",
        "gauge",
    );
    for (i, s) in stats.shards.iter().enumerate() {
        let secs = s.ack_max_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "veloz_replica_ack_max_seconds{{shard=\"{i}\"}} {secs}");
    }
    header(
        out,
        "veloz_replica_lease_renew_failures_total",
        "Lease renewals NATS did not answer",
        "counter",
    );
    let _ = writeln!(
        out,
        "veloz_replica_lease_renew_failures_total {}",
        stats.renew_failures.load(Ordering::Relaxed)
    );
}

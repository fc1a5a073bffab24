//! The control thread: pinned to its own core (or sharing one with a shard on small
//! hosts), it reads what the shards report over their control rings and never touches
//! shard state.
//!
//! - announces the listening addresses once every shard has recovered, and checks each
//!   shard's recovered state against the clean-shutdown marker of the previous run;
//! - merges the shards' interval snapshots into cumulative per-shard histograms and
//!   counters ([`Totals`]), and serves them on the metrics socket
//!   ([`super::metrics_server`]);
//! - hands each snapshot to [`Reports`] (interval logs, shutdown report).
//!
//! It sleeps 1 ms between idle polls: nothing it does is on the order path.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rtrb::Consumer;

use super::mesh::ControlMsg;
use super::metrics_server::MetricsServer;
use super::reports::Reports;
use super::shared::Shared;
use super::totals::Totals;
use super::{ServeError, ShutdownMarker, SHUTDOWN_MARKER};

/// Start the control thread; it runs until `done` is set (after the shards have joined).
pub fn spawn(
    shared: Arc<Shared>,
    rx: Vec<Consumer<ControlMsg>>,
    core: usize,
    marker: Option<ShutdownMarker>,
    metrics: TcpListener,
    reports: Reports,
    done: Arc<AtomicBool>,
) -> JoinHandle<Result<(), ServeError>> {
    std::thread::Builder::new()
        .name("veloz-control".into())
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                tracing::warn!(target: "veloz::control", core, "could not pin the control thread to core {core}");
            }
            run(&shared, rx, marker, metrics, reports, &done)
        })
        .expect("spawn control thread")
}

fn run(
    shared: &Shared,
    mut rx: Vec<Consumer<ControlMsg>>,
    marker: Option<ShutdownMarker>,
    metrics: TcpListener,
    mut reports: Reports,
    done: &AtomicBool,
) -> Result<(), ServeError> {
    let n = rx.len();
    let metrics_addr = metrics
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut server = MetricsServer::new(metrics).map_err(|e| ServeError::Io {
        path: metrics_addr.clone(),
        detail: e.to_string(),
    })?;
    let mut totals = Totals::new(n);
    let mut ready = 0;
    let mut result = Ok(());
    loop {
        let mut idle = true;
        for consumer in rx.iter_mut() {
            while let Ok(msg) = consumer.pop() {
                idle = false;
                match msg {
                    ControlMsg::Ready {
                        shard,
                        port,
                        last_seq,
                        state_hash,
                    } => {
                        if let Some(e) = check_marker(
                            shared,
                            marker.as_ref(),
                            shard as usize,
                            last_seq,
                            state_hash,
                        ) {
                            tracing::error!(target: "veloz::control", shard, "{e}");
                            shared.stop.store(true, Ordering::SeqCst);
                            result = Err(e);
                        }
                        ready += 1;
                        if ready == n && result.is_ok() {
                            let host = shared
                                .config
                                .gateway
                                .listen
                                .rsplit_once(':')
                                .map_or("127.0.0.1", |(h, _)| h);
                            // Scripts and tests read these lines from stdout.
                            println!("veloz: listening on {host}:{port}");
                            println!("veloz: metrics on {metrics_addr}");
                            let _ = std::io::stdout().flush();
                            tracing::info!(
                                target: "veloz::control",
                                orders = %format_args!("{host}:{port}"),
                                metrics = %metrics_addr,
                                "listening on {host}:{port} for orders, metrics on {metrics_addr}"
                            );
                        }
                    }
                    ControlMsg::Snapshot(snap) => {
                        totals.absorb(&snap);
                        reports.interval(&snap);
                    }
                    ControlMsg::Stopped { .. } => {}
                }
            }
        }
        idle &= !server.poll(|| totals.render());
        if idle {
            if done.load(Ordering::SeqCst) {
                if result.is_ok() {
                    reports.finish(&totals);
                }
                return result;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The recovered state of `shard` must equal what the last clean shutdown recorded.
fn check_marker(
    shared: &Shared,
    marker: Option<&ShutdownMarker>,
    shard: usize,
    last_seq: u64,
    state_hash: u64,
) -> Option<ServeError> {
    let m = marker?.shards.iter().find(|m| m.shard == shard)?;
    let recorded = u64::from_str_radix(&m.state_hash, 16).ok()?;
    if m.last_seq == last_seq && recorded == state_hash {
        tracing::info!(
            target: "veloz::control",
            shard,
            sequence = last_seq,
            "state matches the clean shutdown (sequence {last_seq}, hash {state_hash:016x})"
        );
        return None;
    }
    Some(ServeError::StateMismatch {
        shard,
        recovered_seq: last_seq,
        recovered: state_hash,
        marker_seq: m.last_seq,
        marker: recorded,
        path: shared.data_dir.join(SHUTDOWN_MARKER).display().to_string(),
    })
}

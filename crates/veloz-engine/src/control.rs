//! The control thread: pinned to its own core (or sharing one with a shard on small
//! hosts), it reads what the shards report over their control rings and never touches
//! shard state.
//!
//! - announces the listening addresses once every shard has recovered, and checks each
//!   shard's recovered state against the clean-shutdown marker of the previous run;
//! - merges the shards' interval snapshots into cumulative per-shard histograms and
//!   counters ([`Totals`]), and serves them on the metrics socket
//!   ([`super::metrics_server`]);
//! - hands each snapshot to [`Reports`] (interval logs, shutdown report);
//! - serves the operator interface ([`crate::admin`]): a checked request goes to the shards
//!   it concerns over their admin rings, and is answered when they have all replied (or
//!   after [`ADMIN_DEADLINE`] with a 504 naming the silent shard).
//!
//! It sleeps 1 ms between idle polls: nothing it does is on the order path.

use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::admin::{self, Request, ShardReply};
use super::mesh::{AdminMsg, ControlLinks, ControlMsg};
use super::metrics_server::MetricsServer;
use super::notify::Notifier;
use super::reports::Reports;
use super::shared::Shared;
use super::totals::Totals;
use super::{ServeError, ShutdownMarker, SHUTDOWN_MARKER};

/// Start the control thread; it runs until `done` is set (after the shards have joined).
pub fn spawn(
    shared: Arc<Shared>,
    links: ControlLinks,
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
            run(&shared, links, marker, metrics, reports, &done)
        })
        .expect("spawn control thread")
}

/// An operator request waits this long for the shards' replies.
pub const ADMIN_DEADLINE: Duration = Duration::from_secs(5);

/// An operator request the shards are working on.
#[derive(Debug)]
struct Pending {
    request: Request,
    /// Shards that have not replied yet.
    waiting: Vec<usize>,
    replies: Vec<ShardReply>,
    deadline: Instant,
}

/// The operator requests in flight, by request id (also the HTTP connection's wait id).
#[derive(Debug, Default)]
struct Operator {
    next_id: u64,
    pending: Vec<(u64, Pending)>,
}

impl Operator {
    /// A request from the metrics socket: answered now (refused, or nothing to ask), or
    /// sent to the shards and answered later.
    fn start(
        &mut self,
        shared: &Shared,
        admin: &mut [rtrb::Producer<AdminMsg>],
        raw: &[u8],
    ) -> super::metrics_server::Reply {
        use super::metrics_server::Reply;
        let request = match admin::parse(raw, &shared.config) {
            Ok(r) => r,
            Err(response) => return Reply::Now(response),
        };
        let shards = admin::shards_for(&request, |s| shared.routing.shard_of(s), admin.len());
        if shards.is_empty() {
            return Reply::Now(admin::answer(&request, &[], &shared.config));
        }
        self.next_id += 1;
        let request_id = self.next_id;
        tracing::warn!(target: "veloz::admin", request = request_id, "operator request {request_id}: {request:?}");
        let msg = match request {
            Request::Act(action) | Request::Money { action, .. } => {
                AdminMsg::Act { request_id, action }
            }
            Request::Sessions => AdminMsg::Sessions { request_id },
            Request::Balances(account) => AdminMsg::Balances {
                request_id,
                account,
            },
            Request::Disconnect(session) => AdminMsg::Disconnect {
                request_id,
                session,
            },
        };
        let mut waiting = Vec::new();
        for &shard in &shards {
            // A full admin ring (64 requests unread) counts as a silent shard: 504.
            if admin[shard].push(msg).is_ok() {
                waiting.push(shard);
            }
        }
        self.pending.push((
            request_id,
            Pending {
                request,
                waiting: if waiting.len() == shards.len() {
                    waiting
                } else {
                    shards
                },
                replies: Vec::new(),
                deadline: Instant::now() + ADMIN_DEADLINE,
            },
        ));
        Reply::Later(request_id)
    }

    /// A shard replied: returns the finished request's id and its response when it was the
    /// last one awaited.
    fn reply(
        &mut self,
        shared: &Shared,
        request_id: u64,
        shard: u16,
        reply: ShardReply,
    ) -> Option<(u64, Vec<u8>)> {
        let i = self.pending.iter().position(|(id, _)| *id == request_id)?;
        let p = &mut self.pending[i].1;
        p.waiting.retain(|&s| s != shard as usize);
        p.replies.push(reply);
        if !p.waiting.is_empty() {
            return None;
        }
        let (id, p) = self.pending.swap_remove(i);
        Some((id, admin::answer(&p.request, &p.replies, &shared.config)))
    }

    /// Requests past their deadline, answered 504.
    fn expired(&mut self) -> Vec<(u64, Vec<u8>)> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.pending.retain(|(id, p)| {
            if now < p.deadline {
                return true;
            }
            out.push((*id, admin::timed_out(p.waiting[0])));
            false
        });
        out
    }
}

fn run(
    shared: &Shared,
    links: ControlLinks,
    marker: Option<ShutdownMarker>,
    metrics: TcpListener,
    mut reports: Reports,
    done: &AtomicBool,
) -> Result<(), ServeError> {
    let ControlLinks { mut rx, mut admin } = links;
    let mut operator = Operator::default();
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
    let mut notify = Notifier::recovering(n);
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
                        notify.shard_recovered(ready);
                        if ready == n && result.is_ok() {
                            let host = shared
                                .config
                                .gateway
                                .listen
                                .rsplit_once(':')
                                .map_or("127.0.0.1", |(h, _)| h);
                            // Scripts and tests read these lines from stdout; "listening on"
                            // and "metrics on" come last (readers stop there).
                            if let Some(fix) = &shared.fix_addr {
                                let comp = &shared.config.fix.comp_id;
                                println!(
                                    "veloz: FIX 4.4 order entry on {fix} (TargetCompID {comp})"
                                );
                            }
                            println!("veloz: listening on {host}:{port}");
                            println!("veloz: metrics on {metrics_addr}");
                            let _ = std::io::stdout().flush();
                            notify.ready(&format!("{host}:{port}"), &metrics_addr);
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
                    ControlMsg::Admin {
                        request_id,
                        shard,
                        reply,
                    } => {
                        if let Some((id, response)) =
                            operator.reply(shared, request_id, shard, reply)
                        {
                            server.complete(id, response);
                        }
                    }
                }
            }
        }
        notify.stop_flag(shared.stop.load(Ordering::SeqCst));
        for (id, response) in operator.expired() {
            server.complete(id, response);
        }
        idle &= !server.poll(
            || {
                let mut text = totals.render();
                if shared.config.feed.enabled {
                    shared.feed_stats.render(&mut text);
                }
                if let Some(fix) = &shared.fix {
                    fix.render(&mut text);
                }
                if let Some(replica) = &shared.replica {
                    crate::replication::metrics::render_primary(&replica.stats, &mut text);
                }
                text
            },
            |raw| operator.start(shared, &mut admin, raw),
        );
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

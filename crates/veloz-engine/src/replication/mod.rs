//! `durability = "replicated"` in the runtime: becoming primary (or following as a standby
//! until the lease is free), then replication while serving (docs/replication.md).
//!
//! [`lead`] runs before any shard starts, with the data directory locked:
//! 1. connect to NATS; each shard's stream and the lease bucket exist afterwards;
//! 2. each shard's local journal is recovered into an engine ([`follow::ShardFollow`]) and
//!    compared with its stream: a local record the stream holds differently, or (for a
//!    standby) local records past the stream's end, are a fork, moved aside;
//! 3. the lease: a primary takes it when it is free, released or its own, or after watching
//!    it unrenewed for `lease_ms` (renewed meanwhile: another node leads, refused); a standby
//!    applies the streams as they grow, its lag served as metrics, until the lease expires;
//! 4. drain every stream to its end, then publish a leader marker to each with the stream
//!    sequence it expects to follow: a marker refused means a message arrived meanwhile, so
//!    drain and try again. After the markers, the old primary's publishes are refused;
//! 5. local records past the stream's end (this node crashed before replicating them; no
//!    client was told of them) are published, and awaited, before anything is served;
//! 6. the local journals are closed: the shards recover them as always.
//!
//! Then [`Leader::start`] runs replication ([`veloz_replica::Publisher`]): each shard attaches
//! its writer's progress handle once recovered, and its acknowledgements wait for JetStream.

pub mod follow;
pub mod metrics;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_replica::publisher::{OnFenced, ShardStart};
use veloz_replica::{
    local, names, Lease, Nats, PublishRefused, Publisher, ReplicaError, StreamEnd, Watch,
};

use crate::ServeError;
use follow::{Applied, ShardFollow};

/// Exit status of a node that was fenced (another node took its lease).
pub const EXIT_FENCED: i32 = 3;

/// Messages a follower applies per shard before it looks at the lease again.
const APPLY_BATCH: usize = 64;

/// How often a standby looks at the lease (it expires `lease_ms` after its last renewal).
const LEASE_LOOK: Duration = Duration::from_millis(50);

/// What [`lead`] hands to `serve`: the lease, and where each stream ends.
pub struct Leader {
    runtime: tokio::runtime::Runtime,
    nats: Nats,
    lease: Lease,
    starts: Vec<ShardStart>,
    /// The standby's metrics listener, handed on to the engine's metrics endpoint.
    pub metrics: Option<std::net::TcpListener>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("lease", &self.lease.value)
            .field("starts", &self.starts)
            .finish_non_exhaustive()
    }
}

impl Leader {
    /// The lease epoch this node holds.
    pub fn epoch(&self) -> u64 {
        self.lease.value.epoch
    }

    /// Start replication while serving; a fenced node exits with [`EXIT_FENCED`].
    pub fn start(self, data_dir: &Path, config: &Config) -> Result<Publisher, ServeError> {
        let on_fenced: OnFenced = Arc::new(|why: String| {
            tracing::error!(target: "veloz::replica", "fenced: {why}; stopping without acknowledging anything more");
            eprintln!("veloz: fenced: {why}; stopping without acknowledging anything more (exit {EXIT_FENCED})");
            std::process::exit(EXIT_FENCED);
        });
        Publisher::start(
            self.runtime,
            self.nats,
            self.lease,
            data_dir,
            self.starts,
            &config.replication,
            on_fenced,
        )
        .map_err(|e| ServeError::Io {
            path: "replication threads".into(),
            detail: e.to_string(),
        })
    }
}

/// This node's name in the lease: `replication.node`, else `<hostname>:<data dir>`.
pub fn node_name(config: &Config, data_dir: &Path) -> String {
    if !config.replication.node.is_empty() {
        return config.replication.node.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

/// What [`lead`] needs: the engine's configuration and data directory, its routing and
/// shard count, whether to start as the standby, and the stop flag (SIGINT/SIGTERM).
#[derive(Clone, Copy, Debug)]
pub struct Lead<'a> {
    pub config: &'a Config,
    pub data_dir: &'a Path,
    pub routing: &'a Routing,
    pub shards: usize,
    pub standby: bool,
    pub stop: &'a AtomicBool,
}

/// Become the primary (see the module docs); `None` when `stop` was set while following.
pub fn lead(args: Lead<'_>) -> Result<Option<Leader>, ServeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io {
            path: "replication runtime".into(),
            detail: e.to_string(),
        })?;
    let led = runtime.block_on(lead_async(args))?;
    Ok(led.map(|(nats, lease, starts, metrics)| Leader {
        runtime,
        nats,
        lease,
        starts,
        metrics,
    }))
}

type Led = (Nats, Lease, Vec<ShardStart>, Option<std::net::TcpListener>);

async fn lead_async(args: Lead<'_>) -> Result<Option<Led>, ServeError> {
    let Lead {
        config,
        data_dir,
        routing,
        shards,
        standby,
        stop,
    } = args;
    let rc = &config.replication;
    let node = node_name(config, data_dir);
    let nats = Nats::connect(rc).await?;
    let bucket = nats.lease_bucket(&rc.lease_bucket).await?;
    let ttl = Duration::from_millis(rc.lease_ms);
    let mut watch = Watch::new(bucket, &rc.lease_bucket, &rc.engine, &node, ttl);
    let mut follows = Vec::with_capacity(shards);
    for shard in 0..shards as u16 {
        follows.push(ShardFollow::open(config, routing, data_dir, &nats, shard, standby).await?);
    }
    let mut standby_metrics = None;
    let lease = if standby {
        let m = metrics::StandbyMetrics::serve(&config.metrics.listen, shards, &rc.engine)?;
        println!(
            "veloz: standby of engine {} ({} stream(s) on {}), node {node}; metrics on {}",
            rc.engine,
            shards,
            rc.shown_urls(),
            m.addr()
        );
        tracing::info!(target: "veloz::replica", engine = %rc.engine, node = %node, "standby: following {shards} stream(s) until the lease of engine {} is free", rc.engine);
        let lease = follow_until_lead(&mut follows, &mut watch, stop, &m).await?;
        match lease {
            Some(l) => {
                standby_metrics = Some(m);
                l
            }
            None => {
                for f in follows {
                    f.close()?;
                }
                m.stop();
                return Ok(None);
            }
        }
    } else {
        // Catch up before taking the lease: the lease is not renewed until serving starts,
        // so only the last few messages are left to drain under it.
        for f in &mut follows {
            while apply_or_rebuild(f).await? > 0 {}
        }
        let began = Instant::now();
        loop {
            if let Some(l) = watch.try_take().await? {
                break l;
            }
            if began.elapsed() >= ttl {
                return Err(watch.held_by_live().into());
            }
            tokio::time::sleep(ttl / 10).await;
        }
    };
    tracing::info!(target: "veloz::replica", engine = %rc.engine, epoch = lease.value.epoch, "took the lease of engine {} (epoch {}); draining the streams", rc.engine, lease.value.epoch);
    let mut starts = Vec::with_capacity(shards);
    for f in &mut follows {
        let epoch = lease.value.epoch;
        let (end, marker) = loop {
            match drain_and_mark(f, &nats, &node, epoch).await {
                Ok(done) => break done,
                Err(ServeError::Replication(e)) if transient(&e) => {
                    tracing::warn!(target: "veloz::replica", shard = f.shard, "draining before serving: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (end, last_id) =
            publish_tail(f, &nats, epoch, (end, marker), rc.max_batch_records).await?;
        starts.push(ShardStart {
            shard: f.shard,
            end,
            last_id,
        });
    }
    if follows.iter().any(|f| f.changed) {
        // The local journals moved on: the clean-shutdown marker no longer describes them.
        let _ = std::fs::remove_file(data_dir.join(crate::SHUTDOWN_MARKER));
    }
    for f in follows {
        f.close()?;
    }
    let metrics = standby_metrics.and_then(|m| m.stop());
    Ok(Some((nats, lease, starts, metrics)))
}

/// A standby: apply the streams as they grow until the lease is taken (or `stop`).
async fn follow_until_lead(
    follows: &mut [ShardFollow],
    watch: &mut Watch,
    stop: &AtomicBool,
    m: &metrics::StandbyMetrics,
) -> Result<Option<Lease>, ServeError> {
    let mut next_look = Instant::now();
    let mut next_end = Instant::now();
    let mut trouble = Trouble::default();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let pass = follow_pass(follows, watch, m, &mut next_look, &mut next_end).await;
        match pass {
            Ok(Pass::Led(lease)) => return Ok(Some(*lease)),
            Ok(Pass::Applied(n)) => {
                trouble.clear();
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            // NATS unreachable, or a stream or the lease bucket electing a leader: the
            // lease's expiry must be seen anew once it answers again.
            Err(ServeError::Replication(e)) if transient(&e) => {
                watch.forget();
                trouble.note(&e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What one pass of a standby did.
enum Pass {
    Applied(u64),
    Led(Box<Lease>),
}

async fn follow_pass(
    follows: &mut [ShardFollow],
    watch: &mut Watch,
    m: &metrics::StandbyMetrics,
    next_look: &mut Instant,
    next_end: &mut Instant,
) -> Result<Pass, ServeError> {
    let mut applied = 0;
    for f in follows.iter_mut() {
        applied += apply_or_rebuild(f).await?;
        m.applied(f.shard, f.last, f.state_hash());
    }
    if Instant::now() >= *next_end {
        for f in follows.iter_mut() {
            let end = f.cursor.end().await?;
            m.stream_end(f.shard, end.journal_seq);
        }
        *next_end = Instant::now() + Duration::from_millis(200);
    }
    if Instant::now() >= *next_look {
        *next_look = Instant::now() + LEASE_LOOK;
        if let Some(lease) = watch.try_take().await? {
            m.set_holder(&lease.value.node);
            return Ok(Pass::Led(Box::new(lease)));
        }
        if let Some(h) = &watch.holder {
            m.set_holder(&h.node);
        }
    }
    Ok(Pass::Applied(applied))
}

/// Errors a standby rides out (retrying): the cluster or a stream not answering now.
fn transient(e: &ReplicaError) -> bool {
    matches!(
        e,
        ReplicaError::Stream { .. } | ReplicaError::Lease { .. } | ReplicaError::Connect { .. }
    )
}

/// A standby's run of transient errors: logged when it starts and every 100th time.
#[derive(Default)]
struct Trouble {
    count: u64,
}

impl Trouble {
    fn note(&mut self, e: &ReplicaError) {
        if self.count.is_multiple_of(100) {
            tracing::warn!(target: "veloz::replica", "standby: {e}; retrying (failed {} time(s) in a row)", self.count + 1);
        }
        self.count += 1;
    }

    fn clear(&mut self) {
        if self.count > 0 {
            tracing::info!(target: "veloz::replica", "standby: NATS answers again after {} failed attempt(s)", self.count);
        }
        self.count = 0;
    }
}

/// Apply what is new; a fork is cut and the shard rebuilt from its stream.
async fn apply_or_rebuild(f: &mut ShardFollow) -> Result<u64, ServeError> {
    match f.apply_new(APPLY_BATCH).await? {
        Applied::Records(n) => Ok(n),
        Applied::Fork(at) => {
            f.rebuild(at).await?;
            Ok(0)
        }
    }
}

/// Apply the stream to its end, then publish the leader marker expecting that end; a
/// marker refused (the stream grew meanwhile) means drain again. Returns the stream's end
/// and the marker's id (which the next message must follow).
async fn drain_and_mark(
    f: &mut ShardFollow,
    nats: &Nats,
    node: &str,
    epoch: u64,
) -> Result<(StreamEnd, String), ServeError> {
    loop {
        while apply_or_rebuild(f).await? > 0 {}
        let (first_stream, last_stream) = f.cursor.bounds().await?;
        if f.cursor.next <= last_stream {
            if f.cursor.next >= first_stream && f.cursor.get(f.cursor.next).await?.is_none() {
                // Applying stopped before the end: a message inside the stream is gone.
                return Err(ReplicaError::BadMessage {
                    stream: f.cursor.name().to_string(),
                    stream_seq: f.cursor.next,
                    why: format!("missing inside the stream's range {first_stream}..={last_stream} (deleted?): the records it held cannot be applied"),
                }
                .into());
            }
            continue;
        }
        match nats.publish_marker(f.shard, node, epoch, last_stream).await {
            Ok((seq, id)) => {
                let end = f.cursor.end().await?;
                f.cursor.next = seq + 1;
                let end = StreamEnd {
                    stream_seq: seq,
                    journal_seq: end.journal_seq,
                };
                return Ok((end, id));
            }
            Err(why) => {
                tracing::info!(target: "veloz::replica", shard = f.shard, "leader marker not written ({why:?}); draining again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Publish local records past the stream's end (this node wrote them, crashed before they
/// were replicated, and told no client) and wait for their acknowledgements.
async fn publish_tail(
    f: &mut ShardFollow,
    nats: &Nats,
    epoch: u64,
    (mut end, mut last_id): (StreamEnd, String),
    max_batch: usize,
) -> Result<(StreamEnd, String), ServeError> {
    if f.last <= end.journal_seq {
        return Ok((end, last_id));
    }
    let (from, to) = (end.journal_seq + 1, f.last);
    let mut records = Vec::new();
    local::records(f.storage(), f.shard, from, to, |seq, bytes| {
        records.push((seq, bytes))
    })?;
    tracing::info!(target: "veloz::replica", shard = f.shard, "publishing records {from}..={to}, journaled here but not yet replicated");
    for chunk in records.chunks(max_batch) {
        let first = chunk[0].0;
        let last = chunk[chunk.len() - 1].0;
        let payload: Vec<u8> = chunk.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        let mut tries = 0;
        let (stream_seq, id) = loop {
            let r = nats
                .publish_records(
                    f.shard,
                    epoch,
                    first,
                    payload.clone().into(),
                    end.stream_seq,
                    &last_id,
                )
                .await;
            match r {
                Ok(done) => break done,
                Err(PublishRefused::WrongLastSequence) => {
                    return Err(ReplicaError::Fenced(format!("shard {}: another primary wrote to the stream while this node published its unreplicated records", f.shard)).into());
                }
                Err(PublishRefused::Other(e)) if tries < 20 => {
                    tries += 1;
                    tracing::warn!(target: "veloz::replica", shard = f.shard, "publishing records {first}..={last}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(PublishRefused::Other(e)) => {
                    return Err(ReplicaError::Stream {
                        stream: names::stream(&nats.engine, f.shard),
                        why: format!("publishing records {first}..={last}: {e}"),
                    }
                    .into())
                }
            }
        };
        end = StreamEnd {
            stream_seq,
            journal_seq: last,
        };
        last_id = id;
    }
    Ok((end, last_id))
}

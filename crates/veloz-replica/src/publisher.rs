//! The running primary's replication: every record a shard journals goes, in order and in
//! batches, to the shard's stream; JetStream's acknowledgements advance the shard's
//! replicated watermark, which releases the shard's reports.
//!
//! Two threads, neither on a shard's core:
//! - the **poller** (`veloz-replpoll`) follows each shard's journal through the page cache
//!   ([`JournalFollower::advance_raw`], up to the writer's written watermark) and cuts a batch
//!   of at most `max_batch_records` whenever fewer than `max_in_flight` messages await an
//!   acknowledgement: a commit group is everything written since the last batch left. It
//!   sleeps `poll_us` when no shard has anything new; the shards never wait for it.
//! - the **publisher** (`veloz-replica`, a tokio runtime) publishes each shard's batches in
//!   order, each with `Nats-Msg-Id` (first record's sequence) and the stream sequence it
//!   expects to follow, awaits the acknowledgements in order, stores the last record of each
//!   acknowledged batch in the shard's [`ReplicaProgress`], and renews the lease.
//!
//! Failures: a publish that times out or finds no stream leader (a node died; 503 "no
//! responders" while the cluster elects one) is retried, with every later in-flight batch,
//! with the same ids and expected sequences, backing off to one second: reports wait, nothing
//! is lost or doubled. A refusal for a wrong expected sequence at the head of the queue, or a
//! lease renewal refused because another node took the lease, is fencing: `on_fenced` is
//! called (the engine exits) and nothing more is acknowledged. A journal that cannot be read
//! stops replication the same way: acknowledgements would wait forever.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use bytes::Bytes;
use tokio::sync::{mpsc as tmpsc, Mutex as AsyncMutex};

use veloz_config::ReplicationConfig;
use veloz_core::Seq;
use veloz_journal::follow::JournalFollower;
use veloz_journal::{MmapStorage, ReplicaProgress};

use crate::lease::{Lease, Renewal};
use crate::names;
use crate::nats::{expecting, refused_by_expectation, Nats, StreamEnd};

/// Called once when this node must stop acknowledging (fenced, or replication broken).
pub type OnFenced = Arc<dyn Fn(String) + Send + Sync>;

/// One shard's replication figures (for the metrics endpoint).
#[derive(Debug, Default)]
pub struct ShardReplica {
    pub messages: AtomicU64,
    pub records: AtomicU64,
    pub retries: AtomicU64,
    /// Sum and count of publish-to-acknowledgement times, in nanoseconds.
    pub ack_ns: AtomicU64,
    pub acks: AtomicU64,
    pub ack_max_ns: AtomicU64,
}

/// Replication figures of every shard; `progress` once the shard has attached.
#[derive(Debug)]
pub struct ReplicaStats {
    pub shards: Vec<ShardReplica>,
    progress: std::sync::Mutex<Vec<Option<ReplicaProgress>>>,
    /// Lease renewals that did not get an answer.
    pub renew_failures: AtomicU64,
    pub epoch: AtomicU64,
}

impl ReplicaStats {
    /// The figures of `shards` shards, all zero, under lease `epoch`.
    pub fn new(shards: usize, epoch: u64) -> ReplicaStats {
        ReplicaStats {
            shards: (0..shards).map(|_| ShardReplica::default()).collect(),
            progress: std::sync::Mutex::new(vec![None; shards]),
            renew_failures: AtomicU64::new(0),
            epoch: AtomicU64::new(epoch),
        }
    }

    /// (written, replicated) of `shard`, once attached.
    pub fn watermarks(&self, shard: usize) -> Option<(Seq, Seq)> {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.get(shard)?
            .as_ref()
            .map(|p| (p.written_seq(), p.replicated_seq()))
    }
}

/// Where a shard's replication starts: its stream's end (which the local journal matches)
/// and the id of the stream's last message (this leader's marker, or its last tail batch).
#[derive(Clone, Debug)]
pub struct ShardStart {
    pub shard: u16,
    pub end: StreamEnd,
    pub last_id: String,
}

/// What a shard needs of replication: attaching its journal, and the figures.
#[derive(Clone, Debug)]
pub struct Attacher {
    tx: mpsc::Sender<ReplicaProgress>,
    pub stats: Arc<ReplicaStats>,
}

impl Attacher {
    /// A shard recovered its journal: replicate it from where its stream ends.
    pub fn attach(&self, progress: ReplicaProgress) {
        let _ = self.tx.send(progress);
    }
}

/// A batch on its way from the poller to the publisher.
#[derive(Debug)]
struct Batch {
    first: Seq,
    last: Seq,
    bytes: Bytes,
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// The running replication of one engine (see the module docs).
pub struct Publisher {
    attach: mpsc::Sender<ReplicaProgress>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
    runtime: Option<JoinHandle<()>>,
    lease: Arc<AsyncMutex<Lease>>,
    handle: tokio::runtime::Handle,
    pub stats: Arc<ReplicaStats>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Start both threads; shards attach as they recover ([`Attacher::attach`]).
    pub fn start(
        runtime: tokio::runtime::Runtime,
        nats: Nats,
        lease: Lease,
        data_dir: &Path,
        starts: Vec<ShardStart>,
        config: &ReplicationConfig,
        on_fenced: OnFenced,
    ) -> std::io::Result<Publisher> {
        let n = starts.len();
        let stats = Arc::new(ReplicaStats::new(n, lease.value.epoch));
        let handle = runtime.handle().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let lease = Arc::new(AsyncMutex::new(lease));
        let (attach_tx, attach_rx) = mpsc::channel::<ReplicaProgress>();

        // The runtime's thread: the lease renewal, and the shards' publish tasks as they come.
        let renew = renew_loop(
            Arc::clone(&lease),
            Arc::clone(&stats),
            Arc::clone(&stop),
            Arc::clone(&on_fenced),
        );
        let stop_rt = Arc::clone(&stop);
        let rt_thread = std::thread::Builder::new()
            .name("veloz-replica".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let renewing = tokio::spawn(renew);
                    while !stop_rt.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let _ = renewing.await;
                });
            })?;

        let poll = Poller {
            nats,
            epoch: stats.epoch.load(Ordering::Relaxed),
            data_dir: data_dir.to_path_buf(),
            starts,
            config: config.clone(),
            stats: Arc::clone(&stats),
            handle: handle.clone(),
            on_fenced,
            stop: Arc::clone(&stop),
        };
        let poller = std::thread::Builder::new()
            .name("veloz-replpoll".into())
            .spawn(move || poll.run(attach_rx))?;
        Ok(Publisher {
            attach: attach_tx,
            stop,
            poller: Some(poller),
            runtime: Some(rt_thread),
            lease,
            handle,
            stats,
        })
    }

    /// A handle the shards attach through (they run on other threads).
    pub fn attacher(&self) -> Attacher {
        Attacher {
            tx: self.attach.clone(),
            stats: Arc::clone(&self.stats),
        }
    }

    /// At a clean stop, after the shards closed their journals: wait (up to `timeout`) until
    /// every record is acknowledged, give the lease up if so, and stop. Returns whether
    /// everything was replicated.
    pub fn finish(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let caught_up = |stats: &ReplicaStats| {
            (0..stats.shards.len()).all(|i| match stats.watermarks(i) {
                Some((w, r)) => r >= w,
                None => true,
            })
        };
        while !caught_up(&self.stats) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let all = caught_up(&self.stats);
        if all {
            let lease = Arc::clone(&self.lease);
            let released = self
                .handle
                .block_on(async move { lease.lock().await.release().await });
            match released {
                Ok(()) => {
                    tracing::info!(target: "veloz::replica", "lease released: a standby takes over at once")
                }
                Err(e) => tracing::warn!(target: "veloz::replica", "{e}"),
            }
        } else {
            tracing::error!(target: "veloz::replica", "stopping with records not yet acknowledged by JetStream (their reports were never released); the lease is kept until it expires");
        }
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.poller.take() {
            let _ = t.join();
        }
        if let Some(t) = self.runtime.take() {
            let _ = t.join();
        }
        all
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

async fn renew_loop(
    lease: Arc<AsyncMutex<Lease>>,
    stats: Arc<ReplicaStats>,
    stop: Arc<AtomicBool>,
    on_fenced: OnFenced,
) {
    let every = lease.lock().await.ttl / 3;
    while !stop.load(Ordering::Acquire) {
        tokio::time::sleep(every).await;
        if stop.load(Ordering::Acquire) {
            break;
        }
        let mut l = lease.lock().await;
        match l.renew().await {
            Renewal::Renewed => {}
            Renewal::Lost(why) => {
                on_fenced(why);
                return;
            }
            Renewal::Failed(why) => {
                stats.renew_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "veloz::replica", "lease renewal failed ({why}); {} ms since the last one", l.renewed.elapsed().as_millis());
            }
        }
    }
}

struct Poller {
    nats: Nats,
    epoch: u64,
    data_dir: std::path::PathBuf,
    starts: Vec<ShardStart>,
    config: ReplicationConfig,
    stats: Arc<ReplicaStats>,
    handle: tokio::runtime::Handle,
    on_fenced: OnFenced,
    stop: Arc<AtomicBool>,
}

struct Followed {
    follower: JournalFollower<MmapStorage>,
    progress: ReplicaProgress,
    tx: tmpsc::UnboundedSender<Batch>,
    in_flight: Arc<AtomicUsize>,
}

impl Poller {
    fn run(self, attach: mpsc::Receiver<ReplicaProgress>) {
        let mut shards: Vec<Followed> = Vec::new();
        let idle = Duration::from_micros(self.config.poll_us);
        let max_batch = self.config.max_batch_records as u64;
        let max_in_flight = self.config.max_in_flight;
        while !self.stop.load(Ordering::Acquire) {
            while let Ok(progress) = attach.try_recv() {
                match self.follow(progress) {
                    Ok(f) => shards.push(f),
                    Err(why) => return (self.on_fenced)(why),
                }
            }
            let mut busy = false;
            for s in &mut shards {
                if s.in_flight.load(Ordering::Acquire) >= max_in_flight {
                    continue;
                }
                let written = s.progress.written_seq();
                let from = s.follower.last_seq();
                if written <= from {
                    continue;
                }
                let upto = written.min(from + max_batch);
                let mut bytes = Vec::with_capacity(((upto - from) as usize) * 96);
                let read = s.follower.advance_raw(upto, |raw, _| {
                    bytes.extend_from_slice(raw);
                    Ok(())
                });
                if let Err(e) = read {
                    let shard = s.progress.shard();
                    return (self.on_fenced)(format!(
                        "replication of shard {shard} cannot read its journal after sequence {from}: {e}"
                    ));
                }
                s.in_flight.fetch_add(1, Ordering::AcqRel);
                let batch = Batch {
                    first: from + 1,
                    last: upto,
                    bytes: Bytes::from(bytes),
                };
                if s.tx.send(batch).is_err() {
                    return;
                }
                busy = true;
            }
            if !busy {
                std::thread::sleep(idle);
            }
        }
    }

    /// Start following a shard that attached, and its publish task.
    fn follow(&self, progress: ReplicaProgress) -> Result<Followed, String> {
        let shard = progress.shard();
        let start = self
            .starts
            .iter()
            .find(|s| s.shard == shard)
            .cloned()
            .ok_or_else(|| format!("replication: shard {shard} attached but has no stream"))?;
        let storage = MmapStorage::for_shard(&self.data_dir, shard)
            .map_err(|e| format!("replication: shard {shard}'s journal directory: {e}"))?;
        let written = progress.written_seq();
        if written < start.end.journal_seq {
            return Err(format!(
                "replication: shard {shard}'s journal ends at {written}, before its stream's {}",
                start.end.journal_seq
            ));
        }
        {
            let mut p = self
                .stats
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p[shard as usize] = Some(progress.clone());
        }
        let (tx, rx) = tmpsc::unbounded_channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let task = ShardTask {
            nats: self.nats.clone(),
            shard,
            epoch: self.epoch,
            subject: names::subject(&self.nats.engine, shard),
            next_expected: start.end.stream_seq,
            last_id: start.last_id.clone(),
            progress: progress.clone(),
            stats: Arc::clone(&self.stats),
            in_flight: Arc::clone(&in_flight),
            on_fenced: Arc::clone(&self.on_fenced),
        };
        self.handle.spawn(task.run(rx));
        Ok(Followed {
            follower: JournalFollower::new(storage, shard, start.end.journal_seq),
            progress,
            tx,
            in_flight,
        })
    }
}

struct Pending {
    batch: Batch,
    /// This message's `Nats-Msg-Id`.
    id: String,
    /// The stream sequence and the message id it must follow (`None`: the id is not
    /// checked, for the one message that re-establishes the chain after the server lost it).
    expected: u64,
    expected_id: Option<String>,
    sent: Instant,
}

struct ShardTask {
    nats: Nats,
    shard: u16,
    epoch: u64,
    subject: String,
    next_expected: u64,
    /// The id of the last message queued (the leader marker's at first).
    last_id: String,
    progress: ReplicaProgress,
    stats: Arc<ReplicaStats>,
    in_flight: Arc<AtomicUsize>,
    on_fenced: OnFenced,
}

/// What a refusal of the message at the head of the queue means.
enum Refusal {
    /// Another primary wrote to the stream.
    Fenced(String),
    /// The stream ends with exactly the message expected, but the server no longer knows its
    /// id (it keeps the last id in memory, rebuilt at a restart only from the messages of the
    /// last two minutes): publish again without the id check, which re-establishes it.
    LostId,
}

impl ShardTask {
    async fn publish(&self, p: &Pending) -> AckFuture {
        let msg = PublishMessage::build()
            .payload(p.batch.bytes.clone())
            .message_id(&p.id);
        let msg = expecting(msg, p.expected, p.expected_id.as_deref());
        match self.nats.js.send_publish(self.subject.clone(), msg).await {
            Ok(ack) => ack.into_future(),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    /// Look at the stream's end after a refusal of `p` (the head of the queue).
    async fn refusal(&self, p: &Pending, e: &PublishError) -> Refusal {
        let fenced = |why: String| {
            Refusal::Fenced(format!(
                "shard {}: JetStream refused records {}..={} (expected to follow message {:?} at stream sequence {}): {e}{why}",
                self.shard, p.batch.first, p.batch.last, p.expected_id, p.expected
            ))
        };
        if e.kind() != PublishErrorKind::WrongLastMessageId {
            return fenced(String::new());
        }
        let name = names::stream(&self.nats.engine, self.shard);
        let last = match self.nats.js.get_stream(&name).await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => {
                    let last = info.state.last_sequence;
                    stream.get_raw_message(last).await.ok().map(|m| (last, m))
                }
                Err(_) => None,
            },
            Err(_) => None,
        };
        match last {
            Some((seq, m))
                if seq == p.expected
                    && m.headers.get("Nats-Msg-Id").map(|v| v.as_str())
                        == p.expected_id.as_deref() =>
            {
                Refusal::LostId
            }
            Some((seq, m)) => fenced(format!(
                "; the stream ends at {seq} with message {:?}",
                m.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string())
            )),
            None => fenced("; its end could not be read".to_string()),
        }
    }

    async fn run(mut self, mut rx: tmpsc::UnboundedReceiver<Batch>) {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut acks: VecDeque<AckFuture> = VecDeque::new();
        let mut backoff = Duration::from_millis(20);
        let st = &self.stats.shards[self.shard as usize];
        loop {
            tokio::select! {
                biased;
                res = async { acks.front_mut().expect("guarded").await }, if !acks.is_empty() => {
                    acks.pop_front();
                    let mut p = pending.pop_front().expect("one pending per ack");
                    let retry = match res {
                        Ok(_) => {
                            backoff = Duration::from_millis(20);
                            let ns = p.sent.elapsed().as_nanos() as u64;
                            st.ack_ns.fetch_add(ns, Ordering::Relaxed);
                            st.acks.fetch_add(1, Ordering::Relaxed);
                            st.ack_max_ns.fetch_max(ns, Ordering::Relaxed);
                            st.messages.fetch_add(1, Ordering::Relaxed);
                            st.records.fetch_add(p.batch.last - p.batch.first + 1, Ordering::Relaxed);
                            self.progress.set_replicated(p.batch.last);
                            self.in_flight.fetch_sub(1, Ordering::AcqRel);
                            false
                        }
                        Err(e) if refused_by_expectation(&e) => {
                            match self.refusal(&p, &e).await {
                                Refusal::Fenced(why) => {
                                    (self.on_fenced)(why);
                                    return;
                                }
                                Refusal::LostId => {
                                    tracing::warn!(target: "veloz::replica", shard = self.shard, "the stream's last message id was lost by the server (restarted?); publishing records {}..={} again, checked by sequence alone", p.batch.first, p.batch.last);
                                    p.expected_id = None;
                                    true
                                }
                            }
                        }
                        Err(e) => {
                            st.retries.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(target: "veloz::replica", shard = self.shard, "publishing records {}..={} failed ({e}); retrying in {} ms with every later batch (reports wait)", p.batch.first, p.batch.last, backoff.as_millis());
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                            true
                        }
                    };
                    if retry {
                        // Again, in order, with the same ids and expectations: a message
                        // already stored is acknowledged as a duplicate.
                        pending.push_front(p);
                        acks.clear();
                        for q in pending.iter_mut() {
                            q.sent = Instant::now();
                        }
                        for q in &pending {
                            let ack = self.publish(q).await;
                            acks.push_back(ack);
                        }
                    }
                }
                b = rx.recv() => {
                    let Some(batch) = b else { return };
                    let id = names::message_id(&self.nats.engine, self.shard, self.epoch, batch.first);
                    let p = Pending {
                        batch,
                        expected: self.next_expected,
                        expected_id: Some(std::mem::replace(&mut self.last_id, id.clone())),
                        id,
                        sent: Instant::now(),
                    };
                    self.next_expected += 1;
                    let ack = self.publish(&p).await;
                    acks.push_back(ack);
                    pending.push_back(p);
                }
            }
        }
    }
}

//! Replication of the shards' journals to NATS JetStream, and the primary/standby lease
//! (`journal.durability = "replicated"`; docs/replication.md).
//!
//! Each shard's journal has its own stream, `VELOZ_<engine>_<shard>` ([`names`]). A message
//! holds consecutive journal records exactly as the journal stores them (header, CRC and
//! payload; [`batch`]), so every reader (a standby, `veloz journal dump --nats`, an audit
//! job) verifies each record as recovery does, and a standby's journal is byte for byte the
//! primary's.
//!
//! | module | what |
//! |---|---|
//! | [`names`] | stream, subject, lease key and message-id names; the leader-marker header |
//! | [`batch`] | records in a message: building and checking |
//! | [`nats`] | connecting, creating streams and the lease bucket, reading a stream back ([`nats::Cursor`]), finding where a journal sequence lies |
//! | [`lease`] | the lease: take, renew, release; losing it is fencing |
//! | [`publisher`] | the running primary's replication: a poller thread reads each journal as it is written, a tokio thread publishes and advances the replicated watermarks |
//! | [`local`] | what a stopped local journal holds (its last record, a record by sequence) |
//!
//! Invariants:
//! - Only the lease holder publishes, and every publish carries the stream sequence it
//!   expects to follow (`Nats-Expected-Last-Sequence`): a primary that lost the lease while
//!   paused has its next publish refused, because the new primary wrote a leader marker to
//!   every stream before serving. Refused is fenced: it acknowledges nothing more.
//! - A record is acknowledged to a client only after JetStream acknowledged the message
//!   holding it (the writer's durable watermark is the replicated one); retries carry the
//!   same message id (`Nats-Msg-Id`), so a retry of a message that was stored is a duplicate,
//!   not a second copy.
//! - The shards never wait on replication and replication never waits on a shard: the
//!   journal's mapping is the ring between them (the poller reads records the writer has
//!   published as written), and acknowledgements come back as one atomic per shard.
#![forbid(unsafe_code)]

pub mod batch;
pub mod lease;
pub mod local;
pub mod names;
pub mod nats;
pub mod publisher;

use veloz_core::Seq;

pub use lease::{Lease, LeaseValue, Watch};
pub use nats::{Cursor, Nats, PublishRefused, StreamEnd};
pub use publisher::{Attacher, Publisher, ReplicaStats};

/// Everything replication can fail with; each names the server, stream or sequence.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("cannot connect to NATS at {urls}: {why} (is the cluster up? `make cluster-up` starts one on loopback)")]
    Connect { urls: String, why: String },
    #[error("JetStream stream {stream}: {why}")]
    Stream { stream: String, why: String },
    #[error("lease {key} in bucket {bucket}: {why}")]
    Lease {
        bucket: String,
        key: String,
        why: String,
    },
    #[error("engine {engine} is led by node {holder} (lease renewed within the last {lease_ms} ms); start this node with --standby to follow it")]
    HeldByLive {
        engine: String,
        holder: String,
        lease_ms: u64,
    },
    #[error("fenced: {0}; this node stops without acknowledging anything more")]
    Fenced(String),
    #[error("stream {stream} message {stream_seq}: {why}")]
    BadMessage {
        stream: String,
        stream_seq: u64,
        why: String,
    },
    #[error("shard {shard}: {why}")]
    Journal { shard: u16, why: String },
    #[error("stream {stream} does not hold journal record {seq}: {why}")]
    Missing {
        stream: String,
        seq: Seq,
        why: String,
    },
}

//! The NATS side: connecting, each shard's stream, the lease bucket, and reading a stream
//! back in order.
//!
//! Streams are created on first use with the engine's settings (file storage, `replicas`,
//! a two-minute de-duplication window, no limits: a stream keeps every record, like the
//! journal it copies). Reading uses direct requests by stream sequence
//! ([`Cursor`]): no consumer state lives on the server, so a reader that restarts, a
//! standby that takes over or an auditor all read the same way from any point.
//!
//! The lease bucket is a key-value bucket created as its stream (`KV_<bucket>`) directly:
//! async-nats 0.51's `create_key_value` sends a request nats-server 2.9 answers in a form
//! that client cannot parse; the stream it would create is the one made here.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::ServerAddr;
use bytes::Bytes;

use veloz_config::ReplicationConfig;
use veloz_core::Seq;

use crate::batch;
use crate::names;
use crate::ReplicaError;

/// How long a JetStream request or publish acknowledgement may take before it is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to the cluster, for one engine.
#[derive(Clone, Debug)]
pub struct Nats {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub engine: String,
    pub replicas: usize,
}

/// Where a stream ends: its last message's stream sequence and the last journal record it
/// holds (0 and 0 when empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamEnd {
    pub stream_seq: u64,
    pub journal_seq: Seq,
}

fn stream_err(stream: &str, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Stream {
        stream: stream.to_string(),
        why: e.to_string(),
    }
}

impl Nats {
    /// Connect to any of `config.urls` (the client moves to another server when one fails).
    pub async fn connect(config: &ReplicationConfig) -> Result<Nats, ReplicaError> {
        let urls = config.shown_urls();
        let err = |why: String| ReplicaError::Connect {
            urls: urls.clone(),
            why,
        };
        let addrs = config
            .urls
            .iter()
            .map(|u| {
                u.parse::<ServerAddr>()
                    .map_err(|e| err(format!("{:?}: {e}", veloz_config::replication::redact(u))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("veloz {}", config.engine))
            .connection_timeout(Duration::from_secs(3))
            .connect(addrs)
            .await
            .map_err(|e| err(e.to_string()))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Nats {
            client,
            js,
            engine: config.engine.clone(),
            replicas: config.replicas,
        })
    }

    /// The stream of `shard`, created with the engine's settings if it does not exist.
    pub async fn stream(&self, shard: u16) -> Result<stream::Stream, ReplicaError> {
        let name = names::stream(&self.engine, shard);
        self.js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![names::subject(&self.engine, shard)],
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                duplicate_window: Duration::from_secs(120),
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| stream_err(&name, e))
    }

    /// The stream of `shard` if it exists (readers never create one).
    pub async fn existing_stream(&self, shard: u16) -> Result<stream::Stream, ReplicaError> {
        let name = names::stream(&self.engine, shard);
        self.js
            .get_stream(&name)
            .await
            .map_err(|e| stream_err(&name, e))
    }

    /// The lease bucket, created if it does not exist.
    pub async fn lease_bucket(&self, bucket: &str) -> Result<kv::Store, ReplicaError> {
        let name = format!("KV_{bucket}");
        self.js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| stream_err(&name, e))?;
        self.js
            .get_key_value(bucket)
            .await
            .map_err(|e| stream_err(&name, e))
    }
}

/// Reads one stream's messages in order of stream sequence, from any point.
#[derive(Debug)]
pub struct Cursor {
    stream: stream::Stream,
    name: String,
    /// The stream sequence of the next message to read.
    pub next: u64,
}

/// A message read back: its stream sequence and payload (records, or none for a marker).
#[derive(Debug)]
pub struct Message {
    pub stream_seq: u64,
    pub payload: Bytes,
    /// The leader-marker header's value, for a marker.
    pub leader: Option<String>,
}

impl Cursor {
    /// Read `stream` from stream sequence `next` on.
    pub fn new(stream: stream::Stream, next: u64) -> Cursor {
        let name = stream.cached_info().config.name.clone();
        Cursor { stream, name, next }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message at `seq`; `None` if the stream has none there (not written yet).
    pub async fn get(&self, seq: u64) -> Result<Option<Message>, ReplicaError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind as K;
        match self.stream.get_raw_message(seq).await {
            Ok(m) => Ok(Some(Message {
                stream_seq: m.sequence,
                leader: m
                    .headers
                    .get(names::LEADER_HEADER)
                    .map(|v| v.as_str().to_string()),
                payload: m.payload,
            })),
            Err(e) if e.kind() == K::NoMessageFound => Ok(None),
            Err(e) => Err(stream_err(
                &self.name,
                format!("reading message {seq}: {e}"),
            )),
        }
    }

    /// The next message, if there is one yet.
    pub async fn next(&mut self) -> Result<Option<Message>, ReplicaError> {
        let m = self.get(self.next).await?;
        if m.is_some() {
            self.next += 1;
        }
        Ok(m)
    }

    /// First and last stream sequences (0, 0 when empty).
    pub async fn bounds(&mut self) -> Result<(u64, u64), ReplicaError> {
        let name = self.name.clone();
        let info = self.stream.info().await.map_err(|e| stream_err(&name, e))?;
        Ok((info.state.first_sequence, info.state.last_sequence))
    }

    /// The journal span of the message at `seq` (skipping forward over markers up to
    /// `last`): (stream sequence, first record, last record), or `None` past the end.
    async fn span_from(
        &self,
        mut seq: u64,
        last: u64,
    ) -> Result<Option<(u64, Seq, Seq)>, ReplicaError> {
        while seq <= last {
            let Some(m) = self.get(seq).await? else {
                return Err(ReplicaError::BadMessage {
                    stream: self.name.clone(),
                    stream_seq: seq,
                    why: "missing inside the stream's range (deleted?)".into(),
                });
            };
            match batch::span(&m.payload).map_err(|why| self.bad(seq, why))? {
                Some((a, b)) => return Ok(Some((seq, a, b))),
                None => seq += 1,
            }
        }
        Ok(None)
    }

    fn bad(&self, stream_seq: u64, why: String) -> ReplicaError {
        ReplicaError::BadMessage {
            stream: self.name.clone(),
            stream_seq,
            why,
        }
    }

    /// Where the stream ends (the last message holding records, skipping markers).
    pub async fn end(&mut self) -> Result<StreamEnd, ReplicaError> {
        let (first, last) = self.bounds().await?;
        let mut seq = last;
        while seq >= first.max(1) {
            let m = self
                .get(seq)
                .await?
                .ok_or_else(|| self.bad(seq, "missing".into()))?;
            if let Some((_, b)) = batch::span(&m.payload).map_err(|why| self.bad(seq, why))? {
                return Ok(StreamEnd {
                    stream_seq: last,
                    journal_seq: b,
                });
            }
            seq -= 1;
        }
        Ok(StreamEnd {
            stream_seq: last,
            journal_seq: 0,
        })
    }

    /// The stream sequence of the message holding journal record `journal_seq` or, if no
    /// message holds it, of the first message after it (binary search over the stream;
    /// `last + 1` when every record is before it).
    pub async fn locate(&mut self, journal_seq: Seq) -> Result<u64, ReplicaError> {
        let (first, last) = self.bounds().await?;
        let (mut lo, mut hi) = (first.max(1), last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.span_from(mid, last).await? {
                Some((_, _, b)) if b >= journal_seq => hi = mid,
                Some((s, _, _)) => lo = s + 1,
                None => hi = mid,
            }
        }
        // `lo` may be a leader marker just before the message sought: skip over markers.
        Ok(match self.span_from(lo, last).await? {
            Some((s, _, _)) => s,
            None => last + 1,
        })
    }

    /// The bytes of journal record `journal_seq` as the stream holds them.
    pub async fn record(&mut self, journal_seq: Seq) -> Result<Vec<u8>, ReplicaError> {
        let name = self.name.clone();
        let missing = |why: &str| ReplicaError::Missing {
            stream: name.clone(),
            seq: journal_seq,
            why: why.to_string(),
        };
        let at = self.locate(journal_seq).await?;
        let m = self.get(at).await?.ok_or_else(|| missing("past its end"))?;
        let recs = batch::records(&m.payload).map_err(|why| self.bad(at, why))?;
        recs.iter()
            .find(|r| r.raw.seq == journal_seq)
            .map(|r| r.bytes.to_vec())
            .ok_or_else(|| missing("no message holds it (the stream starts after it?)"))
    }
}

/// `msg` with the fencing headers every publish of a primary carries: it must follow stream
/// sequence `expected` and, unless `None`, the message with id `expected_id`.
pub fn expecting(
    msg: async_nats::jetstream::message::PublishMessage,
    expected: u64,
    expected_id: Option<&str>,
) -> async_nats::jetstream::message::PublishMessage {
    let msg = msg.expected_last_sequence(expected);
    match expected_id {
        Some(id) => msg.expected_last_message_id(id),
        None => msg,
    }
}

/// Whether JetStream refused a publish because the stream does not end where the publisher
/// expected (by sequence or by message id).
pub fn refused_by_expectation(e: &async_nats::jetstream::context::PublishError) -> bool {
    use async_nats::jetstream::context::PublishErrorKind as K;
    matches!(e.kind(), K::WrongLastSequence | K::WrongLastMessageId)
}

/// Why a publish did not land.
#[derive(Debug)]
pub enum PublishRefused {
    /// The stream does not end where the publisher expected: another node wrote to it.
    WrongLastSequence,
    /// Anything else (timeout, no stream leader, connection): worth retrying.
    Other(String),
}

impl Nats {
    async fn publish_expecting(
        &self,
        shard: u16,
        msg: async_nats::jetstream::message::PublishMessage,
        expected: u64,
        expected_id: Option<&str>,
    ) -> Result<u64, PublishRefused> {
        let msg = expecting(msg, expected, expected_id);
        let subject = names::subject(&self.engine, shard);
        let ack = match self.js.send_publish(subject, msg).await {
            Ok(a) => a.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(a) => Ok(a.sequence),
            Err(e) if refused_by_expectation(&e) => Err(PublishRefused::WrongLastSequence),
            Err(e) => Err(PublishRefused::Other(e.to_string())),
        }
    }

    /// Publish the leader marker of `node` (lease `epoch`) to `shard`'s stream, expecting
    /// it to end at stream sequence `expected`; returns the marker's stream sequence and id.
    pub async fn publish_marker(
        &self,
        shard: u16,
        node: &str,
        epoch: u64,
        expected: u64,
    ) -> Result<(u64, String), PublishRefused> {
        let id = names::marker_id(&self.engine, shard, node, epoch);
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .header(names::LEADER_HEADER, format!("{node} epoch {epoch}"))
            .message_id(&id);
        let seq = self.publish_expecting(shard, msg, expected, None).await?;
        Ok((seq, id))
    }

    /// Publish records (`payload`, the first being `first`) under lease `epoch` to `shard`'s
    /// stream, expecting it to end at stream sequence `expected` with message `expected_id`;
    /// returns the message's stream sequence and id.
    pub async fn publish_records(
        &self,
        shard: u16,
        epoch: u64,
        first: Seq,
        payload: Bytes,
        expected: u64,
        expected_id: &str,
    ) -> Result<(u64, String), PublishRefused> {
        let id = names::message_id(&self.engine, shard, epoch, first);
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(&id);
        let seq = self
            .publish_expecting(shard, msg, expected, Some(expected_id))
            .await?;
        Ok((seq, id))
    }
}

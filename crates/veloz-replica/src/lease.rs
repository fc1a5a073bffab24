//! The lease that makes one node of an engine's primary/standby pair the primary.
//!
//! A key-value entry (key: the engine's name) holds [`LeaseValue`]: the holder's node name,
//! an epoch that grows at every change of holder, and whether the holder let it go at a clean
//! stop. NATS 2.9 has no per-key expiry, so expiry is observed: the holder renews every third
//! of `lease_ms` with compare-and-set on the entry's revision; a node that sees the same
//! revision for `lease_ms` (by its own monotonic clock, no clocks are compared across hosts)
//! takes the lease with compare-and-set on that revision. Exactly one of two nodes racing for
//! it wins.
//!
//! Losing the lease is fencing: a renewal refused because the revision moved means another
//! node took it, and the holder must stop acknowledging at once (its publishes would be
//! refused too: the new primary wrote a leader marker to every stream).

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ReplicaError;

/// What the lease entry holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    /// The holder's node name (`replication.node`).
    pub node: String,
    /// Grows by one at every change of holder (and at every re-take).
    pub epoch: u64,
    /// The holder stopped cleanly and gave the lease up: take it without waiting.
    #[serde(default)]
    pub released: bool,
}

/// A lease held by this node.
#[derive(Debug)]
pub struct Lease {
    store: kv::Store,
    bucket: String,
    key: String,
    pub value: LeaseValue,
    revision: u64,
    /// When the last renewal (or the take) was acknowledged.
    pub renewed: Instant,
    pub ttl: Duration,
}

/// What a renewal found.
#[derive(Debug)]
pub enum Renewal {
    Renewed,
    /// Another node holds the lease now: fenced.
    Lost(String),
    /// NATS did not answer; try again (the lease may expire meanwhile).
    Failed(String),
}

fn lease_err(bucket: &str, key: &str, why: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Lease {
        bucket: bucket.to_string(),
        key: key.to_string(),
        why: why.to_string(),
    }
}

async fn read(
    store: &kv::Store,
    bucket: &str,
    key: &str,
) -> Result<Option<(LeaseValue, u64)>, ReplicaError> {
    let entry = store
        .entry(key)
        .await
        .map_err(|e| lease_err(bucket, key, e))?;
    match entry {
        Some(e) if e.operation == kv::Operation::Put => {
            let v: LeaseValue = serde_json::from_slice(&e.value)
                .map_err(|err| lease_err(bucket, key, format!("unreadable value: {err}")))?;
            Ok(Some((v, e.revision)))
        }
        _ => Ok(None),
    }
}

/// Watches the lease of one engine for this node and takes it when it may (see the module
/// docs): at once when it is free, released or this node's own (a restart of this node),
/// else once nobody renewed it for `lease_ms`.
#[derive(Debug)]
pub struct Watch {
    store: kv::Store,
    bucket: String,
    key: String,
    node: String,
    ttl: Duration,
    /// The revision last seen and since when.
    seen: Option<(u64, Instant)>,
    /// The holder last seen.
    pub holder: Option<LeaseValue>,
}

impl Watch {
    pub fn new(store: kv::Store, bucket: &str, key: &str, node: &str, ttl: Duration) -> Watch {
        Watch {
            store,
            bucket: bucket.to_string(),
            key: key.to_string(),
            node: node.to_string(),
            ttl,
            seen: None,
            holder: None,
        }
    }

    /// Look once: the lease if this node took it now, `None` while another node holds it
    /// and has renewed it within `lease_ms` (as far as this watch has seen).
    pub async fn try_take(&mut self) -> Result<Option<Lease>, ReplicaError> {
        let current = read(&self.store, &self.bucket, &self.key).await?;
        let (epoch, revision, free) = match &current {
            None => (0, None, true),
            Some((v, rev)) => {
                let expired = match self.seen {
                    Some((r, since)) if r == *rev => since.elapsed() >= self.ttl,
                    _ => {
                        self.seen = Some((*rev, Instant::now()));
                        false
                    }
                };
                (
                    v.epoch,
                    Some(*rev),
                    v.released || v.node == self.node || expired,
                )
            }
        };
        self.holder = current.map(|(v, _)| v);
        if !free {
            return Ok(None);
        }
        let value = LeaseValue {
            node: self.node.clone(),
            epoch: epoch + 1,
            released: false,
        };
        let bytes = Bytes::from(serde_json::to_vec(&value).expect("serialises"));
        let outcome = match revision {
            None => self
                .store
                .create(&self.key, bytes)
                .await
                .map_err(|e| e.to_string()),
            Some(r) => self
                .store
                .update(&self.key, bytes, r)
                .await
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(revision) => Ok(Some(Lease {
                store: self.store.clone(),
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                value,
                revision,
                renewed: Instant::now(),
                ttl: self.ttl,
            })),
            Err(why) => {
                // Another node moved first: look again later.
                tracing::info!(target: "veloz::replica", "lease {}: not taken ({why})", self.key);
                self.seen = None;
                Ok(None)
            }
        }
    }

    /// Forget the revision seen: after NATS did not answer, expiry must be observed anew
    /// (the holder may have been unable to renew for the same reason).
    pub fn forget(&mut self) {
        self.seen = None;
    }

    /// The error for a primary that may not start: another node leads.
    pub fn held_by_live(&self) -> ReplicaError {
        ReplicaError::HeldByLive {
            engine: self.key.clone(),
            holder: self
                .holder
                .as_ref()
                .map(|v| v.node.clone())
                .unwrap_or_default(),
            lease_ms: self.ttl.as_millis() as u64,
        }
    }
}

impl Lease {
    /// Renew with compare-and-set on the revision this node last wrote.
    pub async fn renew(&mut self) -> Renewal {
        let bytes = Bytes::from(serde_json::to_vec(&self.value).expect("serialises"));
        match self.store.update(&self.key, bytes, self.revision).await {
            Ok(revision) => {
                self.revision = revision;
                self.renewed = Instant::now();
                Renewal::Renewed
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match read(&self.store, &self.bucket, &self.key).await {
                    // An earlier renewal that timed out here landed there: the entry is
                    // still this node's, at a later revision. Only this node writes its
                    // name with its epoch (a standby writes its own, a restart epoch + 1).
                    Ok(Some((v, revision))) if v == self.value => {
                        self.revision = revision;
                        self.renewed = Instant::now();
                        Renewal::Renewed
                    }
                    Ok(now) => {
                        let who = match now {
                            Some((v, _)) => format!("node {} (epoch {})", v.node, v.epoch),
                            None => "nobody (deleted)".to_string(),
                        };
                        Renewal::Lost(format!(
                            "the lease of engine {} was taken by {who} (this node held epoch {})",
                            self.key, self.value.epoch
                        ))
                    }
                    Err(e) => Renewal::Failed(format!("refused, and then unreadable: {e}")),
                }
            }
            Err(e) => Renewal::Failed(e.to_string()),
        }
    }

    /// Give the lease up at a clean stop, so a standby takes it without waiting.
    pub async fn release(&mut self) -> Result<(), ReplicaError> {
        self.value.released = true;
        let bytes = Bytes::from(serde_json::to_vec(&self.value).expect("serialises"));
        self.store
            .update(&self.key, bytes, self.revision)
            .await
            .map(|_| ())
            .map_err(|e| lease_err(&self.bucket, &self.key, e))
    }

    /// The engine's name (the key).
    pub fn key(&self) -> &str {
        &self.key
    }
}

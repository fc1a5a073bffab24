//! `[replication]`: where `durability = "replicated"` sends each shard's journal (a NATS
//! JetStream stream per shard), the engine's name and this node's, and the lease that makes
//! one node of a primary/standby pair the primary (docs/replication.md).

use serde::{Deserialize, Serialize};

/// `[replication]`: read only when `journal.durability = "replicated"` (or by
/// `veloz journal dump --nats`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// NATS servers of the JetStream cluster (`nats://host:port`); the client connects to
    /// one and fails over to the others.
    pub urls: Vec<String>,
    /// The engine's name, shared by its primary and its standby: shard N's stream is
    /// `VELOZ_<engine>_<N>` on subject `veloz.<engine>.<N>`, and the lease is the key
    /// `<engine>` of the key-value bucket `lease_bucket`. Letters, digits, `-` and `_`.
    pub engine: String,
    /// This node's name in the lease (who is primary); empty: `<hostname>:<data dir>`, which
    /// stays the same across restarts of one node and differs between two nodes on one host.
    pub node: String,
    /// Replicas of each stream and of the lease bucket (3 in production: a quorum of a
    /// 3-node cluster acknowledges each batch; 1 only for a single-server test).
    pub replicas: usize,
    /// Key-value bucket holding the engines' leases.
    pub lease_bucket: String,
    /// How long a lease holds without renewal, in milliseconds. The primary renews every
    /// third of it; a standby that sees no renewal for this long takes the lease.
    pub lease_ms: u64,
    /// Most journal records per published message (one message per commit group, at most
    /// this many records): 1..=900, so that a message stays under NATS's 1 MiB `max_payload`.
    pub max_batch_records: usize,
    /// Published messages awaiting JetStream's acknowledgement, per shard: with acks slower
    /// than the shard's commit groups, the bound on its throughput (docs/BENCHMARKS.md,
    /// "Replication to NATS JetStream").
    pub max_in_flight: usize,
    /// How often the replication thread looks for new records when it finds none, in
    /// microseconds (it never waits on the shards; they never wait on it).
    pub poll_us: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            urls: vec![
                "nats://127.0.0.1:4222".to_string(),
                "nats://127.0.0.1:4223".to_string(),
                "nats://127.0.0.1:4224".to_string(),
            ],
            engine: "veloz".to_string(),
            node: String::new(),
            replicas: 3,
            lease_bucket: "veloz_leases".to_string(),
            lease_ms: 1500,
            max_batch_records: 512,
            max_in_flight: 16,
            poll_us: 100,
        }
    }
}

/// Most records per message: 900 records of the journal's largest (1,024 bytes) stay under
/// NATS's default `max_payload` of 1 MiB.
pub const MAX_BATCH_RECORDS: usize = 900;

/// Names usable in a JetStream stream, subject token and key: letters, digits, `-`, `_`.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `url` without credentials (`nats://user:secret@host:4222` -> `nats://host:4222`): what
/// logs, errors and start-up lines may show.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        (None, Some(at)) => url[at + 1..].to_string(),
        _ => url.to_string(),
    }
}

impl ReplicationConfig {
    /// The servers as logs may show them (credentials removed), comma-joined.
    pub fn shown_urls(&self) -> String {
        let shown: Vec<String> = self.urls.iter().map(|u| redact(u)).collect();
        shown.join(",")
    }

    /// What serde cannot check: the field and why, for [`crate::ConfigError::InvalidReplication`].
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.urls.is_empty() {
            return Err(("urls", "at least one NATS server is needed".to_string()));
        }
        if !plain_name(&self.engine) {
            let e = &self.engine;
            return Err((
                "engine",
                format!("{e:?} must be 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        if !plain_name(&self.lease_bucket) {
            let b = &self.lease_bucket;
            return Err((
                "lease_bucket",
                format!("{b:?} must be 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(("replicas", format!("{} must be 1..=5", self.replicas)));
        }
        if !(300..=60_000).contains(&self.lease_ms) {
            return Err(("lease_ms", format!("{} must be 300..=60000", self.lease_ms)));
        }
        if !(1..=MAX_BATCH_RECORDS).contains(&self.max_batch_records) {
            let v = self.max_batch_records;
            return Err((
                "max_batch_records",
                format!("{v} must be 1..={MAX_BATCH_RECORDS} (a message of that many records of the largest size stays under NATS's 1 MiB max_payload)"),
            ));
        }
        if !(1..=64).contains(&self.max_in_flight) {
            let v = self.max_in_flight;
            return Err(("max_in_flight", format!("{v} must be 1..=64")));
        }
        if !(10..=100_000).contains(&self.poll_us) {
            return Err(("poll_us", format!("{} must be 10..=100000", self.poll_us)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact("nats://alice:s3cret@10.0.0.1:4222"),
            "nats://10.0.0.1:4222"
        );
        assert_eq!(redact("tok@127.0.0.1:4222"), "127.0.0.1:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        let c = ReplicationConfig {
            urls: vec!["nats://u:p@a:1".into(), "nats://b:2".into()],
            ..ReplicationConfig::default()
        };
        assert_eq!(c.shown_urls(), "nats://a:1,nats://b:2");
    }

    #[test]
    fn defaults_pass_and_each_bad_value_is_named() {
        assert_eq!(ReplicationConfig::default().check(), Ok(()));
        let bad = |f: fn(&mut ReplicationConfig)| {
            let mut c = ReplicationConfig::default();
            f(&mut c);
            c.check().unwrap_err().0
        };
        assert_eq!(bad(|c| c.urls.clear()), "urls");
        assert_eq!(bad(|c| c.engine = "a.b".to_string()), "engine");
        assert_eq!(bad(|c| c.engine = String::new()), "engine");
        assert_eq!(bad(|c| c.lease_bucket = "x y".to_string()), "lease_bucket");
        assert_eq!(bad(|c| c.replicas = 0), "replicas");
        assert_eq!(bad(|c| c.lease_ms = 100), "lease_ms");
        assert_eq!(bad(|c| c.max_batch_records = 0), "max_batch_records");
        assert_eq!(bad(|c| c.max_in_flight = 0), "max_in_flight");
        assert_eq!(bad(|c| c.poll_us = 1), "poll_us");
    }
}

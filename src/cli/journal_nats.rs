//! `veloz journal dump|trades --nats`: an engine's journals read back from its NATS
//! JetStream streams (one per shard, `VELOZ_<engine>_<shard>` on `veloz.<engine>.<shard>`)
//! instead of a data directory's files.
//!
//! Every message is checked as a standby checks it, and more:
//! - each record's length, CRC and reserved fields, and the order inside the message
//!   ([`veloz_replica::batch::records`]); a message that fails is refused whole;
//! - journal sequence numbers continue from one message to the next ([`Chain`]): a gap or a
//!   repeat stops the read with an error naming the stream, the message's stream sequence
//!   and both record numbers. A read that ends cleanly has seen one unbroken history, with
//!   no fork; the first record read must be the one asked for (record 1 by default), so a
//!   stream that lost its beginning is refused too;
//! - a message is either records or a leader marker (no payload, a `Veloz-Leader` header);
//!   an empty message without the header, or a marker with records, is refused.
//!
//! A stream is read as it stands when its read starts (up to its last stream sequence then),
//! one direct get per message: no consumer is created and nothing is written to the server.
//! The async client runs on a current-thread tokio runtime owned by [`Streams`]; callers
//! stay synchronous.
//!
//! The shards are the engine's streams that exist, found with one `STREAM.NAMES` request
//! filtered on the subjects `veloz.<engine>.*` (so engine `a` never lists engine `a_1`'s
//! streams).

use veloz_config::ReplicationConfig;
use veloz_core::Seq;
use veloz_journal::format::FORMAT_VERSION;
use veloz_journal::payload::decode_body;
use veloz_journal::Record;
use veloz_replica::batch::{self, MessageRecord};
use veloz_replica::{names, Cursor, Nats, ReplicaError};

use super::Item;
use crate::audit::AuditError;

/// Journal sequence numbers across one stream's messages, read in stream order: each
/// message's records follow the previous message's last record, and the first record read
/// is at most the one asked for.
#[derive(Debug)]
pub struct Chain {
    stream: String,
    /// The record the read starts at (at least 1): the first message read must hold it or
    /// an earlier one.
    from: Seq,
    /// The last record of the messages accepted so far.
    last: Option<Seq>,
}

impl Chain {
    /// A read of `stream` from record `from` (0 and 1 both mean its first record, 1).
    pub fn new(stream: &str, from: Seq) -> Chain {
        Chain {
            stream: stream.to_string(),
            from: from.max(1),
            last: None,
        }
    }

    fn bad(&self, stream_seq: u64, why: String) -> ReplicaError {
        ReplicaError::BadMessage {
            stream: self.stream.clone(),
            stream_seq,
            why,
        }
    }

    /// Check the message at `stream_seq` (its `payload`, and its leader-marker header if any)
    /// and return its records, each verified; none for a leader marker.
    pub fn accept<'a>(
        &mut self,
        stream_seq: u64,
        payload: &'a [u8],
        leader: Option<&str>,
    ) -> Result<Vec<MessageRecord<'a>>, ReplicaError> {
        let recs = batch::records(payload).map_err(|why| self.bad(stream_seq, why))?;
        let (first, last) = match (recs.first(), recs.last(), leader) {
            (None, _, Some(_)) => return Ok(recs),
            (None, _, None) => {
                let why = "an empty message without a leader header (neither records nor a leader marker)";
                return Err(self.bad(stream_seq, why.to_string()));
            }
            (Some(_), _, Some(l)) => {
                let why = format!("a leader marker ({l}) that holds records");
                return Err(self.bad(stream_seq, why));
            }
            (Some(a), Some(b), None) => (a.raw.seq, b.raw.seq),
            (Some(_), None, None) => unreachable!("a first record without a last"),
        };
        match self.last {
            Some(prev) if first == prev + 1 => {}
            Some(prev) if first > prev + 1 => {
                let why = format!(
                    "record {first} follows record {prev}: a gap (records {} to {} are missing)",
                    prev + 1,
                    first - 1
                );
                return Err(self.bad(stream_seq, why));
            }
            Some(prev) => {
                let why = format!(
                    "record {first} follows record {prev}: a repeat (record {first} is in the stream twice: a fork)"
                );
                return Err(self.bad(stream_seq, why));
            }
            None if first > self.from => {
                let why = format!(
                    "the stream's first record from here is {first}, not {} (records {} to {} are not in the stream; --from {first} reads what it holds)",
                    self.from,
                    self.from,
                    first - 1
                );
                return Err(self.bad(stream_seq, why));
            }
            None => {}
        }
        self.last = Some(last);
        Ok(recs)
    }
}

/// A connection to an engine's streams, and the runtime it runs on.
#[derive(Debug)]
pub struct Streams {
    rt: tokio::runtime::Runtime,
    nats: Nats,
    /// The servers, comma-joined (for messages).
    urls: String,
    /// The shards whose stream exists, ascending.
    shards: Vec<u16>,
}

impl Streams {
    /// Connect to `config.urls` and list `config.engine`'s streams. No stream at all is an
    /// error naming the stream of shard 0 (a wrong engine name, or the wrong cluster).
    pub fn connect(config: &ReplicationConfig) -> anyhow::Result<Streams> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the NATS client's runtime: {e}"))?;
        let urls = config.shown_urls();
        let (nats, shards) = rt
            .block_on(async {
                let nats = Nats::connect(config).await?;
                let shards = list_shards(&nats).await?;
                if shards.is_empty() {
                    // Its error names the stream and what the server said ("stream not found").
                    nats.existing_stream(0).await?;
                    anyhow::bail!(
                        "engine {}: the server lists no stream on veloz.{}.* (yet {} exists)",
                        nats.engine,
                        nats.engine,
                        names::stream(&nats.engine, 0)
                    );
                }
                Ok((nats, shards))
            })
            .map_err(|e| e.context(format!("engine {} at {urls}", config.engine)))?;
        Ok(Streams {
            rt,
            nats,
            urls,
            shards,
        })
    }

    /// The shards whose stream exists, ascending.
    pub fn shards(&self) -> &[u16] {
        &self.shards
    }

    /// The shard count the engine ran with, as its streams show it (the highest shard + 1);
    /// a warning when some shard below it has no stream.
    pub fn shard_count(&self) -> (usize, Option<String>) {
        let count = self.shards.last().map_or(0, |s| *s as usize + 1);
        let warning = (self.shards.len() != count).then(|| {
            format!(
                "engine {} has streams for shards {:?} only (of 0..{count}) at {}",
                self.nats.engine, self.shards, self.urls
            )
        });
        (count, warning)
    }

    /// Visit the records of `shard`'s stream from record `from` to `until` (both included)
    /// and the leader markers among the messages read, in stream order; every message is
    /// checked by a [`Chain`]. Records before `from` in the first message are checked, not
    /// visited; the read stops at the first record after `until`.
    pub fn for_each(
        &self,
        shard: u16,
        from: Seq,
        until: Option<Seq>,
        mut visit: impl FnMut(Item<'_>) -> Result<(), AuditError>,
    ) -> anyhow::Result<()> {
        self.rt.block_on(async {
            let stream = self.nats.existing_stream(shard).await?;
            let mut cursor = Cursor::new(stream, 1);
            let (first, last) = cursor.bounds().await?;
            cursor.next = if from > 1 {
                cursor.locate(from).await?
            } else {
                first.max(1)
            };
            let mut chain = Chain::new(cursor.name(), from);
            while cursor.next <= last {
                let at = cursor.next;
                let Some(m) = cursor.next().await? else {
                    return Err(ReplicaError::BadMessage {
                        stream: cursor.name().to_string(),
                        stream_seq: at,
                        why: format!(
                            "missing inside the stream's range {first}..={last} (deleted?)"
                        ),
                    }
                    .into());
                };
                let recs = chain.accept(m.stream_seq, &m.payload, m.leader.as_deref())?;
                if let Some(leader) = m.leader.as_deref() {
                    visit(Item::Marker {
                        stream_seq: m.stream_seq,
                        leader,
                    })?;
                }
                for r in recs {
                    let seq = r.raw.seq;
                    if seq < from {
                        continue;
                    }
                    if until.is_some_and(|u| seq > u) {
                        return Ok(());
                    }
                    let body =
                        decode_body(FORMAT_VERSION, r.raw.rtype, r.raw.payload).map_err(|e| {
                            ReplicaError::BadMessage {
                                stream: cursor.name().to_string(),
                                stream_seq: m.stream_seq,
                                why: format!("record {seq}: {e}"),
                            }
                        })?;
                    let rec = Record {
                        seq,
                        ts: r.raw.ts,
                        body,
                    };
                    visit(Item::Record(&rec))?;
                }
            }
            Ok(())
        })
    }
}

/// The shards of `nats.engine` whose stream exists, ascending: the streams on the subjects
/// `veloz.<engine>.*` named `VELOZ_<engine>_<shard>`.
async fn list_shards(nats: &Nats) -> anyhow::Result<Vec<u16>> {
    let engine = &nats.engine;
    let filter = format!("veloz.{engine}.*");
    let prefix = format!("VELOZ_{engine}_");
    let mut shards = Vec::new();
    let mut offset = 0;
    loop {
        let page: serde_json::Value = nats
            .js
            .request(
                "STREAM.NAMES",
                &serde_json::json!({ "offset": offset, "subject": filter }),
            )
            .await
            .map_err(|e| anyhow::anyhow!("listing the streams on {filter}: {e}"))?;
        if let Some(err) = page.get("error") {
            anyhow::bail!("listing the streams on {filter}: {err}");
        }
        let names: Vec<&str> = page["streams"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        for name in &names {
            let shard = name
                .strip_prefix(&prefix)
                .and_then(|s| s.parse::<u16>().ok());
            match shard {
                Some(s) if names::stream(engine, s) == *name => shards.push(s),
                _ => eprintln!(
                    "veloz: warning: stream {name} holds {filter} but is not named {prefix}<shard>: skipped"
                ),
            }
        }
        offset += names.len();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        if names.is_empty() || offset >= total {
            break;
        }
    }
    shards.sort_unstable();
    shards.dedup();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veloz_journal::format::encode_record_header;

    /// Records `seqs` as one message's payload, each as the journal stores it.
    fn message(seqs: std::ops::RangeInclusive<Seq>) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in seqs {
            let payload = seq.to_le_bytes();
            out.extend_from_slice(&encode_record_header(seq, 1_000 + seq, 1, &payload));
            out.extend_from_slice(&payload);
        }
        out
    }

    fn seqs(recs: &[MessageRecord<'_>]) -> Vec<Seq> {
        recs.iter().map(|r| r.raw.seq).collect()
    }

    #[test]
    fn records_that_continue_across_messages_and_markers_are_accepted() {
        let mut chain = Chain::new("VELOZ_e_0", 0);
        let a = message(1..=3);
        let b = message(4..=4);
        let c = message(5..=9);
        assert_eq!(seqs(&chain.accept(1, &a, None).unwrap()), [1, 2, 3]);
        assert!(chain.accept(2, &[], Some("n2 epoch 2")).unwrap().is_empty());
        assert_eq!(seqs(&chain.accept(3, &b, None).unwrap()), [4]);
        assert_eq!(seqs(&chain.accept(4, &c, None).unwrap()), [5, 6, 7, 8, 9]);
    }

    #[test]
    fn a_gap_between_messages_names_the_stream_the_message_and_both_records() {
        let mut chain = Chain::new("VELOZ_e_3", 0);
        chain.accept(1, &message(1..=3), None).unwrap();
        chain.accept(2, &[], Some("n1 epoch 1")).unwrap();
        let err = chain.accept(3, &message(5..=6), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream VELOZ_e_3 message 3: record 5 follows record 3: a gap (records 4 to 4 are missing)"
        );
    }

    #[test]
    fn a_repeat_between_messages_is_a_fork() {
        let mut chain = Chain::new("VELOZ_e_1", 0);
        chain.accept(7, &message(1..=3), None).unwrap();
        let err = chain.accept(8, &message(3..=4), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stream VELOZ_e_1 message 8: record 3 follows record 3: a repeat (record 3 is in the stream twice: a fork)"
        );
        let mut chain = Chain::new("VELOZ_e_1", 0);
        chain.accept(1, &message(1..=5), None).unwrap();
        let err = chain.accept(2, &message(2..=2), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("message 2: record 2 follows record 5: a repeat"),
            "{err}"
        );
    }

    #[test]
    fn the_first_record_read_must_be_the_one_asked_for_or_earlier() {
        // From the start: record 1 must be there.
        let err = Chain::new("VELOZ_e_0", 0)
            .accept(1, &message(3..=4), None)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "stream VELOZ_e_0 message 1: the stream's first record from here is 3, not 1 (records 1 to 2"
            ),
            "{err}"
        );
        // From record 5: a message holding 4..=6 is fine (4 is checked, not visited).
        let mut chain = Chain::new("VELOZ_e_0", 5);
        assert_eq!(
            seqs(&chain.accept(9, &message(4..=6), None).unwrap()),
            [4, 5, 6]
        );
        assert!(Chain::new("VELOZ_e_0", 5)
            .accept(9, &message(6..=6), None)
            .is_err());
    }

    #[test]
    fn a_bad_record_an_empty_message_and_a_marker_with_records_are_refused() {
        let mut flipped = message(1..=2);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let err = Chain::new("VELOZ_e_0", 0)
            .accept(1, &flipped, None)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stream VELOZ_e_0 message 1: record at offset"),
            "{err}"
        );
        let err = Chain::new("VELOZ_e_0", 0).accept(2, &[], None).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither records nor a leader marker"),
            "{err}"
        );
        let err = Chain::new("VELOZ_e_0", 0)
            .accept(3, &message(1..=1), Some("n1 epoch 1"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("a leader marker (n1 epoch 1) that holds records"),
            "{err}"
        );
        // A refused message changes nothing: the next good one still follows record 0.
        let mut chain = Chain::new("VELOZ_e_0", 0);
        assert!(chain.accept(1, &flipped, None).is_err());
        assert_eq!(
            seqs(&chain.accept(1, &message(1..=2), None).unwrap()),
            [1, 2]
        );
    }
}

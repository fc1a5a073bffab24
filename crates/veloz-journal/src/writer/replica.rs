//! What `durability = "replicated"` needs of the writer: a handle for the replication thread
//! ([`ReplicaProgress`]) and appending records that arrive already made (a standby writes the
//! primary's records byte for byte: [`Writer::append_raw`]).
//!
//! Invariants: the replicated watermark only moves forward and is stored by the replication
//! thread alone; with `durability = "replicated"` the writer's durable watermark *is* the
//! replicated one, so every consumer that waits for durability (acknowledgements, market
//! data, snapshots) waits for JetStream without knowing it. A raw record is appended only if
//! it is whole (length, CRC, reserved fields) and carries the next sequence number; the bytes
//! written are then identical to the primary's (the record header is a function of sequence,
//! timestamp, type and payload).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use veloz_core::Seq;

use super::shared::Shared;
use super::Writer;
use crate::backend::Storage;
use crate::error::JournalError;
use crate::format::{decode_record, RecordType};

/// The replication thread's view of one writer: how far it has written, and where to store
/// how far JetStream has acknowledged.
#[derive(Clone)]
pub struct ReplicaProgress {
    shared: Arc<Shared>,
    shard: u16,
}

impl std::fmt::Debug for ReplicaProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaProgress")
            .field("shard", &self.shard)
            .field("written_seq", &self.written_seq())
            .field("replicated_seq", &self.replicated_seq())
            .finish()
    }
}

impl ReplicaProgress {
    /// The shard whose journal this is.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The last sequence number written (readable by a follower from the page cache).
    #[inline]
    pub fn written_seq(&self) -> Seq {
        self.shared.written.load(Ordering::Acquire)
    }

    /// The last sequence number JetStream has acknowledged.
    #[inline]
    pub fn replicated_seq(&self) -> Seq {
        self.shared.replicated.load(Ordering::Acquire)
    }

    /// JetStream acknowledged every record up to `seq`: release them. Never moves back.
    #[inline]
    pub fn set_replicated(&self, seq: Seq) {
        self.shared.replicated.fetch_max(seq, Ordering::AcqRel);
    }
}

impl<S: Storage> Writer<S> {
    /// The handle the replication thread advances (`durability = "replicated"`).
    pub fn replica_progress(&self) -> ReplicaProgress {
        ReplicaProgress {
            shared: Arc::clone(&self.shared),
            shard: self.shard,
        }
    }

    /// Append one record exactly as another writer made it (`raw`: header and payload, as
    /// read from that writer's segment or from its replicated stream); returns its sequence
    /// number. Refused, naming why, unless it is whole and carries the next sequence number.
    pub fn append_raw(&mut self, raw: &[u8]) -> Result<Seq, JournalError> {
        let expected = self.next_seq;
        let bad = |why: String| JournalError::BadReplicated {
            shard: self.shard,
            expected,
            why,
        };
        let rec = decode_record(raw, 0, Some(expected)).map_err(|e| bad(e.to_string()))?;
        if rec.len() != raw.len() {
            return Err(bad(format!(
                "{} bytes given for a record of {}",
                raw.len(),
                rec.len()
            )));
        }
        let rtype = RecordType::from_code(rec.rtype)
            .ok_or_else(|| bad(format!("unknown record type {}", rec.rtype)))?;
        self.append_record(rtype, rec.ts, rec.payload)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use veloz_core::Command;

    use crate::backend::MemStorage;
    use crate::config::{Durability, JournalConfig};
    use crate::error::JournalError;
    use crate::follow::JournalFollower;
    use crate::recovery::{open, OpenOptions};

    fn mass_cancel(coid: u64) -> Command {
        Command::MassCancel(veloz_core::MassCancel {
            account: 1,
            client_order_id: coid,
            symbol: None,
            reason: veloz_core::CancelReason::MassCancel,
        })
    }

    fn config(durability: Durability) -> JournalConfig {
        JournalConfig {
            segment_size: 1 << 16,
            durability,
            group_max_wait_us: 100,
            ..JournalConfig::default()
        }
    }

    /// Replicated: the local journal syncs as group commit does, but acknowledgements wait
    /// for the replicated watermark, which only the replication handle moves, forward only.
    #[test]
    fn replicated_durability_waits_for_the_replica_not_the_disk() {
        let (mut w, _) = open(
            MemStorage::new(),
            0,
            &config(Durability::Replicated),
            OpenOptions::default(),
        )
        .unwrap();
        let progress = w.replica_progress();
        let watermark = w.watermark();
        for i in 0..10 {
            w.append_command(i, &mass_cancel(i)).unwrap();
        }
        assert_eq!(w.durability(), Durability::Replicated);
        assert_eq!(progress.written_seq(), 10);
        // The disk syncs (group commit runs) ...
        let began = Instant::now();
        while w.shared.durable.load(std::sync::atomic::Ordering::Acquire) < 10
            && began.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            w.shared.durable.load(std::sync::atomic::Ordering::Acquire),
            10
        );
        // ... but nothing is durable until JetStream acknowledged it.
        assert_eq!(w.durable_seq(), 0);
        assert_eq!(watermark.durable_seq(), 0);
        progress.set_replicated(6);
        assert_eq!((w.durable_seq(), watermark.durable_seq()), (6, 6));
        progress.set_replicated(4);
        assert_eq!(
            w.durable_seq(),
            6,
            "the replicated watermark never moves back"
        );
        progress.set_replicated(10);
        assert_eq!(progress.replicated_seq(), 10);
        assert_eq!(w.durable_seq(), 10);
    }

    /// A standby's journal built from the primary's records (as the follower hands them to
    /// replication) is byte for byte the primary's; a record out of order or damaged is
    /// refused, naming the sequence expected.
    #[test]
    fn raw_records_copy_a_journal_byte_for_byte() {
        let primary = MemStorage::new();
        let (mut w, _) = open(
            primary.clone(),
            0,
            &config(Durability::None),
            OpenOptions::default(),
        )
        .unwrap();
        for i in 0..25 {
            w.append_command(1_000 + i, &mass_cancel(i)).unwrap();
        }
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut follower = JournalFollower::new(primary.clone(), 0, 0);
        follower
            .advance_raw(25, |raw, rec| {
                assert_eq!(rec.seq as usize, raws.len() + 1);
                raws.push(raw.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(raws.len(), 25);

        let standby = MemStorage::new();
        let (mut s, _) = open(
            standby.clone(),
            0,
            &config(Durability::None),
            OpenOptions::default(),
        )
        .unwrap();
        let gap = s.append_raw(&raws[1]).unwrap_err();
        assert!(
            matches!(gap, JournalError::BadReplicated { expected: 1, .. }),
            "{gap}"
        );
        let mut torn = raws[0].clone();
        torn.pop();
        assert!(s.append_raw(&torn).is_err());
        let mut flipped = raws[0].clone();
        flipped[40] ^= 0x10;
        assert!(s
            .append_raw(&flipped)
            .unwrap_err()
            .to_string()
            .contains("sequence 1"));
        for raw in &raws {
            s.append_raw(raw).unwrap();
        }
        let mut copied: Vec<Vec<u8>> = Vec::new();
        JournalFollower::new(standby, 0, 0)
            .advance_raw(25, |raw, _| {
                copied.push(raw.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(copied, raws);
    }
}

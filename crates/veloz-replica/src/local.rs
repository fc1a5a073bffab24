//! What a local journal holds, read while no writer runs on it (before the shards start):
//! its last record and the records in a range, as bytes identical to a stream's copy.
//!
//! Records are read through [`JournalReader`] (every record verified as recovery does); a
//! record's bytes are its header re-encoded from (sequence, timestamp, type, payload), which
//! is exactly what the segment holds.

use veloz_core::Seq;
use veloz_journal::format::{encode_record_header, RawRecord};
use veloz_journal::{JournalReader, MmapStorage};

use crate::ReplicaError;

fn bytes_of(raw: &RawRecord<'_>) -> Vec<u8> {
    let mut v = encode_record_header(raw.seq, raw.ts, raw.rtype, raw.payload).to_vec();
    v.extend_from_slice(raw.payload);
    v
}

fn journal_err(shard: u16, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Journal {
        shard,
        why: e.to_string(),
    }
}

/// Hand the bytes of every record from `from` to `to` (inclusive) to `visit`, in order.
pub fn records(
    storage: &MmapStorage,
    shard: u16,
    from: Seq,
    to: Seq,
    mut visit: impl FnMut(Seq, Vec<u8>),
) -> Result<(), ReplicaError> {
    let mut r = JournalReader::open_from(storage.clone(), shard, from)
        .map_err(|e| journal_err(shard, e))?;
    while let Some(raw) = r.next_raw().map_err(|e| journal_err(shard, e))? {
        if raw.seq > to {
            break;
        }
        if raw.seq >= from {
            visit(raw.seq, bytes_of(&raw));
        }
    }
    Ok(())
}

/// The last record of the journal (sequence and bytes); `None` when it has none.
pub fn last(storage: &MmapStorage, shard: u16) -> Result<Option<(Seq, Vec<u8>)>, ReplicaError> {
    let r = JournalReader::open(storage.clone(), shard).map_err(|e| journal_err(shard, e))?;
    // The newest segment, or the one before it when the newest is still empty (just after
    // a rollover).
    let starts: Vec<Seq> = r
        .segments()
        .iter()
        .rev()
        .take(2)
        .map(|s| s.first_seq)
        .collect();
    for start in starts {
        let mut found = None;
        records(storage, shard, start, Seq::MAX, |seq, bytes| {
            found = Some((seq, bytes))
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The bytes of record `seq`, if the journal holds it.
pub fn record(
    storage: &MmapStorage,
    shard: u16,
    seq: Seq,
) -> Result<Option<Vec<u8>>, ReplicaError> {
    let mut found = None;
    records(storage, shard, seq, seq, |_, bytes| found = Some(bytes))?;
    Ok(found)
}

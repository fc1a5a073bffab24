//! Following a live journal: reading, in order, the records a running writer has made
//! durable, incrementally, while it goes on appending (the snapshot helper's shadow engine).
//!
//! A [`JournalFollower`] keeps its position (the segment it reads, the offset and the next
//! sequence number) between calls; [`JournalFollower::advance`] reads the records from there up
//! to a sequence number the caller knows to be durable (the writer's
//! [`DurableWatermark`](crate::DurableWatermark)) and hands each, decoded, to a visitor
//! (`replay::apply_record`, the code recovery uses).
//!
//! Invariants:
//! - It never reads a record past the watermark it is given: a live segment ends in records
//!   being written, zeros or torn bytes, and none of that is looked at, let alone reported.
//!   Every byte it decodes belongs to a record at or below the watermark, which the writer
//!   wrote before publishing it and never changes again.
//! - Each record is checked (length, CRC, reserved fields, sequence number one more than the
//!   previous one) and its payload decoded; a record at or below the watermark that is not
//!   there is an error naming the file, the offset and the sequence number. A failed call
//!   leaves the position at the last record handed out.
//! - Rollover: where the segment's data ends (zeros) but the watermark says more records are
//!   durable, the next record starts the next segment. The writer activates the prepared
//!   `next.spare` (header first) and the preparer renames it to `{first_seq:020}.vlj` later, so
//!   the next segment is looked for under its name, then as `next.spare` with that first
//!   sequence number, then under its name again (renamed meanwhile).
//! - A file stays open between calls. Backends whose live files are copies (the in-memory
//!   one) show nothing appended after the open, so a record not found in a file opened
//!   before this call's watermark was read is looked for again in a fresh open before
//!   anything is concluded. A memory-mapped one shows the page cache, so it is reopened only
//!   at a segment boundary.
//!
//! What it does not check: the links between segments and the chain head (recovery and
//! `veloz journal verify` do; a live journal's head may lag its newest segment by design).
//!
//! Reading a file the writer is appending to: through [`Storage::open_live`], which copies
//! bytes out (for [`MmapStorage`](crate::MmapStorage), a read-only mapping used through a raw
//! pointer), never through a `&[u8]` over bytes that may be changing. Each record is copied
//! (at most `MAX_RECORD_LEN` bytes) and decoded from the copy.
//!
//! Cost: one copy of at most 128 bytes, one decode and CRC per record, no allocation per
//! record; one directory listing when
//! it starts and a few opens per segment.

use veloz_core::Seq;

use crate::backend::{LiveFile, Storage};
use crate::error::JournalError;
use crate::format::{decode_record, Invalid, SegmentHeader, MAX_RECORD_LEN, SEGMENT_HEADER_LEN};
use crate::layout::{list_segments, segment_name, SPARE_NAME};
use crate::payload::{decode_body, Record};
use crate::replay::RecoverError;

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Listing the directory, opening a segment, a bad segment header or payload.
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("journal of shard {shard}: record {seq} is durable but no segment holds it ({why})")]
    Missing { shard: u16, seq: Seq, why: String },
    #[error("journal record in {file} at offset {offset}: expected durable record {seq}: {why}")]
    Record {
        file: String,
        offset: u64,
        seq: Seq,
        why: String,
    },
    /// The visitor refused a record (a checkpoint whose state hash differs).
    #[error(transparent)]
    Replay(#[from] RecoverError),
}

/// The segment being read.
struct Open {
    live: Box<dyn LiveFile>,
    name: String,
    first_seq: Seq,
    version: u16,
    offset: usize,
    /// The sequence number of the record at `offset`.
    expected: Seq,
}

/// Reads a live journal's durable records in order, from where it stopped last time.
pub struct JournalFollower<S: Storage> {
    storage: S,
    shard: u16,
    next_seq: Seq,
    cur: Option<Open>,
    /// The bytes of the record being decoded, copied out of the file.
    scratch: [u8; MAX_RECORD_LEN],
    segments_entered: u64,
}

impl<S: Storage> std::fmt::Debug for JournalFollower<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalFollower")
            .field("shard", &self.shard)
            .field("next_seq", &self.next_seq)
            .field("segment", &self.cur.as_ref().map(|c| (&c.name, c.offset)))
            .field("segments_entered", &self.segments_entered)
            .finish()
    }
}

impl<S: Storage> JournalFollower<S> {
    /// Follow `shard`'s journal in `storage` from the record after `after` (0: from the
    /// start). Nothing is read until [`JournalFollower::advance`].
    pub fn new(storage: S, shard: u16, after: Seq) -> JournalFollower<S> {
        JournalFollower {
            storage,
            shard,
            next_seq: after + 1,
            cur: None,
            scratch: [0; MAX_RECORD_LEN],
            segments_entered: 0,
        }
    }

    /// The last record handed out (or the `after` it started from).
    pub fn last_seq(&self) -> Seq {
        self.next_seq - 1
    }

    /// Segments entered so far: the first one, then one per boundary crossed.
    pub fn segments_entered(&self) -> u64 {
        self.segments_entered
    }

    /// Hand every record after [`JournalFollower::last_seq`] up to `upto` to `visit`, in
    /// order; `upto` must be durable (never beyond the writer's watermark). Returns how many
    /// records were handed out.
    pub fn advance<F>(&mut self, upto: Seq, mut visit: F) -> Result<u64, FollowError>
    where
        F: FnMut(&Record) -> Result<(), RecoverError>,
    {
        self.advance_raw(upto, |_, rec| visit(rec))
    }

    /// [`JournalFollower::advance`], handing each record's bytes (header and payload, as in
    /// the segment) with its decoded form: what the replication thread publishes.
    pub fn advance_raw<F>(&mut self, upto: Seq, mut visit: F) -> Result<u64, FollowError>
    where
        F: FnMut(&[u8], &Record) -> Result<(), RecoverError>,
    {
        let mut handed = 0;
        // Whether the current view was opened during this call (after `upto` was read).
        let mut fresh = false;
        while self.next_seq <= upto {
            let Some(cur) = self.cur.as_mut() else {
                self.cur = Some(self.locate()?);
                self.segments_entered += 1;
                fresh = true;
                continue;
            };
            // Copy the record (at most MAX_RECORD_LEN bytes, fewer at the segment's end)
            // before decoding: bytes past it may be being written, and are never used.
            let n = cur
                .live
                .len()
                .saturating_sub(cur.offset)
                .min(MAX_RECORD_LEN);
            let copied = &mut self.scratch[..n];
            if let Err(e) = cur.live.read_at(cur.offset, copied) {
                let file = self.storage.display_name(&cur.name);
                return Err(JournalError::io("read", file, e).into());
            }
            match decode_record(copied, 0, Some(cur.expected)) {
                Ok(raw) => {
                    let (seq, ts, len) = (raw.seq, raw.ts, raw.len());
                    if seq >= self.next_seq {
                        let body =
                            decode_body(cur.version, raw.rtype, raw.payload).map_err(|source| {
                                JournalError::Payload {
                                    file: self.storage.display_name(&cur.name),
                                    offset: cur.offset as u64,
                                    seq,
                                    source,
                                }
                            })?;
                        visit(&copied[..len], &Record { seq, ts, body })?;
                        self.next_seq = seq + 1;
                        handed += 1;
                    }
                    cur.offset += len;
                    cur.expected = seq + 1;
                }
                Err(_) if !fresh => {
                    // A copy taken before this call may not hold the record yet.
                    let (first_seq, offset, expected) = (cur.first_seq, cur.offset, cur.expected);
                    self.cur = None;
                    let mut again =
                        self.open_starting_at(first_seq)?
                            .ok_or_else(|| FollowError::Missing {
                                shard: self.shard,
                                seq: self.next_seq,
                                why: format!("segment {} is gone", segment_name(first_seq)),
                            })?;
                    again.offset = offset;
                    again.expected = expected;
                    self.cur = Some(again);
                    fresh = true;
                }
                Err(Invalid::End) => {
                    // This segment's data ends here: the next record starts the next one.
                    let ended = format!(
                        "{} ends at offset {} before it",
                        self.storage.display_name(&cur.name),
                        cur.offset
                    );
                    self.cur = None;
                    let next = self.open_starting_at(self.next_seq)?;
                    self.cur = Some(next.ok_or_else(|| FollowError::Missing {
                        shard: self.shard,
                        seq: self.next_seq,
                        why: format!("{ended} and no segment starts at it"),
                    })?);
                    self.segments_entered += 1;
                }
                Err(why) => {
                    return Err(FollowError::Record {
                        file: self.storage.display_name(&cur.name),
                        offset: cur.offset as u64,
                        seq: self.next_seq,
                        why: why.to_string(),
                    })
                }
            }
        }
        Ok(handed)
    }

    /// Open the segment holding `next_seq`, positioned at its first record (records before
    /// `next_seq` are then read and skipped): the newest segment starting at or before it.
    fn locate(&mut self) -> Result<Open, FollowError> {
        // The listing reads `next.spare`, which the preparer may rename meanwhile: try again.
        let mut listing = list_segments(&self.storage, self.shard);
        for _ in 0..3 {
            match &listing {
                Err(JournalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    listing = list_segments(&self.storage, self.shard);
                }
                _ => break,
            }
        }
        let first = listing?
            .segments
            .iter()
            .rev()
            .find(|s| s.first_seq <= self.next_seq)
            .map(|s| s.first_seq);
        let (shard, seq) = (self.shard, self.next_seq);
        let missing = |why: &str| FollowError::Missing {
            shard,
            seq,
            why: why.to_string(),
        };
        let first = first.ok_or_else(|| missing("no segment starts at or before it"))?;
        self.open_starting_at(first)?
            .ok_or_else(|| missing("its segment was removed while being listed"))
    }

    /// The segment whose first record is `first_seq`, under its name or as an activated
    /// `next.spare` not yet renamed; `None` if there is none.
    fn open_starting_at(&mut self, first_seq: Seq) -> Result<Option<Open>, FollowError> {
        let name = segment_name(first_seq);
        for candidate in [name.as_str(), SPARE_NAME, name.as_str()] {
            let file = self.storage.display_name(candidate);
            let live = match self.storage.open_live(candidate) {
                Ok(v) => v,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(JournalError::io("read", file, e).into()),
            };
            let mut header = [0u8; SEGMENT_HEADER_LEN];
            let n = live.len().min(SEGMENT_HEADER_LEN);
            if let Err(e) = live.read_at(0, &mut header[..n]) {
                return Err(JournalError::io("read", file, e).into());
            }
            let header = match SegmentHeader::decode(&header[..n]) {
                Ok(h) => h,
                // A spare not yet activated (blank) is not the segment looked for.
                Err(_) if candidate == SPARE_NAME => continue,
                Err(why) => return Err(JournalError::BadHeader { file, why }.into()),
            };
            if header.shard != self.shard {
                return Err(JournalError::WrongShard {
                    file,
                    expected: self.shard,
                    found: header.shard,
                }
                .into());
            }
            if header.first_seq != first_seq {
                if candidate == SPARE_NAME {
                    continue;
                }
                return Err(JournalError::NameMismatch {
                    file,
                    named: first_seq,
                    header: header.first_seq,
                }
                .into());
            }
            return Ok(Some(Open {
                live,
                name: candidate.to_string(),
                first_seq,
                version: header.version,
                offset: SEGMENT_HEADER_LEN,
                expected: first_seq,
            }));
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;

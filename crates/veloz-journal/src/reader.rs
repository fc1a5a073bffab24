//! Reading a shard's journal: records in sequence order across segments, each verified.
//!
//! [`JournalReader`] walks the segments oldest first and checks, for every record, its length,
//! CRC, reserved fields and that its sequence number is the previous one plus one (also across
//! segment boundaries). Where it meets bytes that are not a valid record it applies the rules
//! of `docs/journal-format.md` ("Reading and recovery"): a clean end, a segment boundary, a
//! torn tail (reported as a [`JournalWarning`] and the end of the journal) or corruption (an
//! error naming file, offset and the last good sequence number). At each segment boundary it
//! checks the chain (the later segment's `prev_link` is the earlier one's link), and at the end
//! that the journal ends where the chain head says (`chain::check_end`). It never
//! writes: recovery
//! ([`super::recovery`]) reads with it and then acts on what it found.
//!
//! Archived segments (`archive.rs`: `{first_seq:020}.vlj.zst`, older than every live segment)
//! are part of the journal for a reader: they are decompressed whole, one at a time, and
//! checked exactly like live ones, so the chain runs across archive and live segments.
//!
//! Cost: one pass over the bytes, no allocation per record; records are decoded from the
//! mapping in place (from the decompressed buffer for an archived segment).
//! [`JournalReader::seek`] finds the segment by its first sequence number (from the file
//! names) and then reads forward within it; segments before it are not opened, and the first
//! segment read is not checked against its predecessor (only the ones after it are).
//! [`JournalReader::seek_after_snapshot`] is the seek recovery uses: it also refuses, by
//! sequence and file, a journal in which no segment holds the sequence after the snapshot.

use veloz_core::Seq;

use super::archive::{list_with_archive, read_archived_into};
use super::backend::Storage;
use super::chain::{check_end, read_head, ChainHead, EndFacts};
use super::error::{Corruption, Following, JournalError, JournalWarning};
use super::format::{
    decode_record, find_valid_record, last_nonzero_end, link_tail_start, segment_link, HeaderError,
    RawRecord, SegmentHeader, FORMAT_VERSION, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::layout::{Listing, SegmentEntry, SpareState};
use super::payload::{decode_body, Record};

/// Where the readable journal ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndPosition {
    /// Index of the segment in [`JournalReader::segments`].
    pub segment_index: usize,
    /// File name of the segment.
    pub name: String,
    /// The segment's first sequence number.
    pub first_seq: Seq,
    /// Offset just past the last valid record (where the next record goes).
    pub offset: usize,
}

/// A torn tail found by the reader (recovery truncates `offset..end`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TornTail {
    pub name: String,
    pub offset: usize,
    pub end: usize,
}

/// The segment read just before the current one, for the chain check.
#[derive(Clone, Debug)]
struct PrevSegment {
    link: u32,
    version: u16,
    file: String,
}

/// The bytes of the segment being read: a live segment's view, or an archived one
/// decompressed.
#[derive(Debug)]
enum SegmentBytes<V> {
    Live(V),
    Archived(Vec<u8>),
}

impl<V: std::ops::Deref<Target = [u8]>> std::ops::Deref for SegmentBytes<V> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SegmentBytes::Live(v) => v,
            SegmentBytes::Archived(b) => b,
        }
    }
}

/// Open the bytes of `entry` (decompressing an archived segment into `buf`'s allocation).
fn open_bytes<S: Storage>(
    storage: &S,
    entry: &SegmentEntry,
    mut buf: Vec<u8>,
) -> Result<SegmentBytes<S::View>, JournalError> {
    if entry.archived {
        read_archived_into(storage, &entry.name, &mut buf)?;
        return Ok(SegmentBytes::Archived(buf));
    }
    storage
        .open_view(&entry.name)
        .map(SegmentBytes::Live)
        .map_err(|e| JournalError::io("read", storage.display_name(&entry.name), e))
}

/// Reads a shard's journal in sequence order. Also an iterator of decoded [`Record`]s.
#[derive(Debug)]
pub struct JournalReader<S: Storage> {
    storage: S,
    shard: u16,
    listing: Listing,
    idx: usize,
    /// The first segment this reader reads (0, or where [`JournalReader::seek`] put it).
    start_idx: usize,
    view: Option<SegmentBytes<S::View>>,
    /// An archived segment's buffer, kept for the next one.
    spare_buf: Vec<u8>,
    version: u16,
    offset: usize,
    record_offset: usize,
    expected: Option<Seq>,
    last_good: Option<Seq>,
    from_seq: Seq,
    finished: bool,
    prev_end: Option<EndPosition>,
    end: Option<EndPosition>,
    torn: Option<TornTail>,
    blank_last: Option<String>,
    warnings: Vec<JournalWarning>,
    /// The chain head; `Err(())`: recovery's repair ignores a bad one.
    head: Result<Option<ChainHead>, ()>,
    prev: Option<PrevSegment>,
    /// (first_seq, header CRC) of every segment opened, and the first of version 2 or later.
    seen: Vec<(Seq, u32)>,
    first_v2: Option<String>,
}

impl<S: Storage> JournalReader<S> {
    /// Open the journal of `shard` in `storage`, positioned at its first record.
    pub fn open(storage: S, shard: u16) -> Result<JournalReader<S>, JournalError> {
        let head = read_head(&storage)?;
        JournalReader::open_with_head(storage, shard, Ok(head))
    }

    /// Open with the chain head already read (`Err(())`: ignore the head; repair).
    pub(crate) fn open_with_head(
        storage: S,
        shard: u16,
        head: Result<Option<ChainHead>, ()>,
    ) -> Result<JournalReader<S>, JournalError> {
        let listing = list_with_archive(&storage, shard)?;
        let mut warnings = Vec::new();
        if listing.spare == SpareState::TornHeader {
            warnings.push(JournalWarning::TornSpareHeader {
                file: storage.display_name(super::layout::SPARE_NAME),
                removed: false,
            });
        }
        Ok(JournalReader {
            storage,
            shard,
            listing,
            idx: 0,
            start_idx: 0,
            view: None,
            spare_buf: Vec::new(),
            version: FORMAT_VERSION,
            offset: 0,
            record_offset: 0,
            expected: None,
            last_good: None,
            from_seq: 0,
            finished: false,
            prev_end: None,
            end: None,
            torn: None,
            blank_last: None,
            warnings,
            head,
            prev: None,
            seen: Vec::new(),
            first_v2: None,
        })
    }

    /// Open positioned at the first record with sequence number `>= seq`.
    pub fn open_from(storage: S, shard: u16, seq: Seq) -> Result<JournalReader<S>, JournalError> {
        let mut r = JournalReader::open(storage, shard)?;
        r.seek(seq);
        Ok(r)
    }

    /// Go to the first record with sequence number `>= seq` (records before it in its segment
    /// are read and verified, not returned).
    pub fn seek(&mut self, seq: Seq) {
        let segs = &self.listing.segments;
        let idx = segs
            .partition_point(|s| s.first_seq <= seq)
            .saturating_sub(1);
        self.idx = idx;
        self.start_idx = idx;
        self.release_view();
        self.expected = None;
        self.last_good = None;
        self.from_seq = seq;
        self.finished = false;
        self.prev_end = None;
        self.end = None;
        self.torn = None;
        self.blank_last = None;
        self.prev = None;
    }

    /// Go to the first record after `snapshot_seq` (recovery from a snapshot at that
    /// sequence): the segment holding `snapshot_seq + 1` is read first (its records up to
    /// `snapshot_seq` verified, not returned), no segment before it is opened. Refused, naming
    /// the sequence and the oldest segment there is, when no segment starts at or before
    /// `snapshot_seq + 1`. A snapshot at 0 (of an empty journal) reads from the start.
    pub fn seek_after_snapshot(&mut self, snapshot_seq: Seq) -> Result<(), JournalError> {
        if snapshot_seq == 0 {
            // A snapshot of an empty journal: every record comes after it.
            return Ok(());
        }
        let first_needed = snapshot_seq + 1;
        let why = match self.listing.segments.first() {
            Some(s) if s.first_seq <= first_needed => None,
            Some(s) => Some(format!(
                "the oldest segment, {}, starts at sequence {} (sequences {first_needed}..={} are missing)",
                self.storage.display_name(&s.name),
                s.first_seq,
                s.first_seq - 1
            )),
            None => Some(format!(
                "{} holds no segment",
                self.storage.display_name("")
            )),
        };
        if let Some(why) = why {
            return Err(JournalError::MissingAfterSnapshot {
                shard: self.shard,
                snapshot_seq,
                first_needed,
                why,
            });
        }
        self.seek(first_needed);
        Ok(())
    }

    /// Index of the first segment this reader reads (0 unless it was positioned by a seek).
    pub fn start_index(&self) -> usize {
        self.start_idx
    }

    /// The journal's segments (archived ones first), oldest first.
    pub fn segments(&self) -> &[SegmentEntry] {
        &self.listing.segments
    }

    /// (first_seq, header CRC) of every segment read so far.
    pub(crate) fn header_crcs(&self) -> &[(Seq, u32)] {
        &self.seen
    }

    pub(crate) fn listing(&self) -> &Listing {
        &self.listing
    }

    /// Warnings so far (a torn tail is known once reading reached it).
    pub fn warnings(&self) -> &[JournalWarning] {
        &self.warnings
    }

    /// The sequence number of the last valid record read.
    pub fn last_seq(&self) -> Option<Seq> {
        self.last_good
    }

    /// Where the journal ends; known once reading returned `None`.
    pub fn end(&self) -> Option<&EndPosition> {
        self.end.as_ref()
    }

    /// The end of the segment before the current one (repair of a bad segment header cuts the
    /// journal there).
    pub(crate) fn prev_end(&self) -> Option<&EndPosition> {
        self.prev_end.as_ref()
    }

    pub(crate) fn torn(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    pub(crate) fn blank_last(&self) -> Option<&str> {
        self.blank_last.as_deref()
    }

    /// The file (as shown) and offset of the last record returned.
    pub fn position(&self) -> (String, u64) {
        (self.current_file(), self.record_offset as u64)
    }

    /// Format version of the segment being read.
    pub fn version(&self) -> u16 {
        self.version
    }

    fn current_file(&self) -> String {
        match self.listing.segments.get(self.idx) {
            Some(s) => self.storage.display_name(&s.name),
            None => self.storage.display_name(""),
        }
    }

    /// The next record, undecoded (its payload is a view into the segment).
    pub fn next_raw(&mut self) -> Result<Option<RawRecord<'_>>, JournalError> {
        let (start, len, seq, ts, rtype) = loop {
            if self.finished {
                return Ok(None);
            }
            let Some(view) = self.view.as_ref() else {
                if let Err(e) = self.open_segment() {
                    self.finished = true;
                    return Err(e);
                }
                continue;
            };
            match decode_record(view, self.offset, self.expected) {
                Ok(r) => {
                    let info = (self.offset, r.len(), r.seq, r.ts, r.rtype);
                    self.offset += r.len();
                    self.expected = Some(r.seq + 1);
                    self.last_good = Some(r.seq);
                    if r.seq >= self.from_seq {
                        break info;
                    }
                }
                Err(_) => {
                    if let Err(e) = self.stop_at() {
                        self.finished = true;
                        return Err(e);
                    }
                }
            }
        };
        self.record_offset = start;
        let Some(view) = self.view.as_ref() else {
            unreachable!("a record was just read from the current view")
        };
        Ok(Some(RawRecord {
            seq,
            ts,
            rtype,
            payload: &view[start + RECORD_HEADER_LEN..start + len],
        }))
    }

    /// The next record, decoded.
    pub fn next_record(&mut self) -> Result<Option<Record>, JournalError> {
        let version = self.version;
        let (seq, ts, body) = match self.next_raw()? {
            None => return Ok(None),
            Some(r) => (r.seq, r.ts, decode_body(version, r.rtype, r.payload)),
        };
        match body {
            Ok(body) => Ok(Some(Record { seq, ts, body })),
            Err(source) => {
                self.finished = true;
                Err(JournalError::Payload {
                    file: self.current_file(),
                    offset: self.record_offset as u64,
                    seq,
                    source,
                })
            }
        }
    }

    /// Open segment `self.idx` (or finish when there is none).
    fn open_segment(&mut self) -> Result<(), JournalError> {
        let Some(entry) = self.listing.segments.get(self.idx).cloned() else {
            self.finished = true;
            self.end = self.prev_end.take();
            return self.check_end();
        };
        let is_last = self.idx + 1 == self.listing.segments.len();
        let file = self.storage.display_name(&entry.name);
        let view = open_bytes(&self.storage, &entry, std::mem::take(&mut self.spare_buf))?;
        let header = match SegmentHeader::decode(&view) {
            Ok(h) => h,
            Err(HeaderError::Version(v)) => {
                return Err(JournalError::BadHeader {
                    file,
                    why: HeaderError::Version(v),
                })
            }
            Err(HeaderError::Blank) if is_last && last_nonzero_end(&view, 0).is_none() => {
                self.warnings.push(JournalWarning::BlankSegment {
                    file,
                    removed: false,
                });
                self.blank_last = Some(entry.name);
                self.finished = true;
                self.end = self.prev_end.take();
                return self.check_end();
            }
            Err(why) => {
                drop(view);
                let following = self.find_following(None, self.idx + 1)?;
                return Err(self.corruption(
                    &entry,
                    0,
                    format!("bad segment header: {why}"),
                    following,
                ));
            }
        };
        if header.shard != self.shard {
            return Err(JournalError::WrongShard {
                file,
                expected: self.shard,
                found: header.shard,
            });
        }
        if !entry.activated_spare && header.first_seq != entry.first_seq {
            return Err(JournalError::NameMismatch {
                file,
                named: entry.first_seq,
                header: header.first_seq,
            });
        }
        let gap = match self.expected {
            Some(expected) if header.first_seq > expected => Some(format!(
                "segment starts at seq {}, expected seq {expected} (a sequence gap: seqs {expected}..={} are missing)",
                header.first_seq,
                header.first_seq - 1
            )),
            Some(expected) if header.first_seq != expected => Some(format!(
                "segment starts at seq {}, expected seq {expected}",
                header.first_seq
            )),
            _ => None,
        };
        let prev = self.prev.take();
        // The journal's first segment, unless the reader starts later (a seek past seq 1):
        // then the first segment read is the start, its predecessor not ours to check.
        let starts_journal = self.idx == 0 && self.from_seq <= 1;
        let broken = gap.or_else(|| chain_break(&header, prev.as_ref(), starts_journal));
        if let Some(why) = broken {
            let n = count_chain(&view, SEGMENT_HEADER_LEN, header.first_seq);
            drop(view);
            let mut following = self.find_following(None, self.idx + 1)?;
            if n > 0 {
                let later = following.as_ref().map_or(0, |f| f.records);
                following = Some(Following {
                    records: n + later,
                    first_seq: header.first_seq,
                    file: file.clone(),
                    offset: SEGMENT_HEADER_LEN as u64,
                });
            }
            return Err(self.corruption(&entry, 0, why, following));
        }
        self.seen
            .push((header.first_seq, SegmentHeader::stored_crc(&view)));
        if header.version >= 2 && self.first_v2.is_none() {
            self.first_v2 = Some(entry.name.clone());
        }
        self.version = header.version;
        self.offset = SEGMENT_HEADER_LEN;
        self.expected = Some(header.first_seq);
        self.view = Some(view);
        Ok(())
    }

    /// Reading stopped at `self.offset` of the current segment: classify what lies there.
    fn stop_at(&mut self) -> Result<(), JournalError> {
        let Some(view) = self.view.take() else {
            return Ok(());
        };
        let result = self.stop_in(&view);
        if let SegmentBytes::Archived(buf) = view {
            self.spare_buf = buf;
        }
        result
    }

    /// Drop the current segment's bytes, keeping an archived segment's buffer for reuse.
    fn release_view(&mut self) {
        if let Some(SegmentBytes::Archived(buf)) = self.view.take() {
            self.spare_buf = buf;
        }
    }

    /// [`JournalReader::stop_at`] on the bytes of the current segment.
    fn stop_in(&mut self, view: &[u8]) -> Result<(), JournalError> {
        let entry = self.listing.segments[self.idx].clone();
        let x = self.offset;
        let is_last = self.idx + 1 == self.listing.segments.len();
        let here = EndPosition {
            segment_index: self.idx,
            name: entry.name.clone(),
            first_seq: entry.first_seq,
            offset: x,
        };
        let nz = if all_zero(&view[x..]) {
            None
        } else {
            last_nonzero_end(view, x)
        };
        let Some(nz) = nz else {
            // Zeros to the end of the file: the end of this segment's data.
            if is_last {
                self.finished = true;
                self.end = Some(here);
                return self.check_end();
            } else {
                self.prev = Some(PrevSegment {
                    link: segment_link(view, &view[link_tail_start(x)..x]),
                    version: self.version,
                    file: self.storage.display_name(&entry.name),
                });
                self.prev_end = Some(here);
                self.idx += 1;
            }
            return Ok(());
        };
        let why = match decode_record(view, x, self.expected) {
            Err(inv) => inv.to_string(),
            Ok(_) => "unexpected valid record".to_string(),
        };
        let after = self.last_good.unwrap_or(entry.first_seq.saturating_sub(1));
        let following = self.find_following(Some((view, x + 1, nz, after)), self.idx + 1)?;
        if following.is_none() && is_last {
            self.warnings.push(JournalWarning::TornTail {
                file: self.storage.display_name(&entry.name),
                offset: x as u64,
                last_good_seq: self.last_good,
                bytes: (nz - x) as u64,
                truncated: false,
            });
            self.torn = Some(TornTail {
                name: entry.name,
                offset: x,
                end: nz,
            });
            self.finished = true;
            self.end = Some(here);
            return self.check_end();
        }
        Err(self.corruption(&entry, x, why, following))
    }

    /// The reader reached the end: check it against the chain head.
    fn check_end(&mut self) -> Result<(), JournalError> {
        let Ok(head) = self.head else {
            return Ok(());
        };
        let facts = EndFacts {
            shard: self.shard,
            listing: &self.listing,
            blank_last: self.blank_last.as_deref(),
            seen: &self.seen,
            first_v2: self.first_v2.as_deref(),
            last_seq: self.last_good,
        };
        let warning = check_end(&self.storage, head.as_ref(), &facts)?;
        self.warnings.extend(warning);
        Ok(())
    }

    fn corruption(
        &self,
        entry: &SegmentEntry,
        offset: usize,
        why: String,
        following: Option<Following>,
    ) -> JournalError {
        JournalError::Corrupt(Box::new(Corruption {
            file: self.storage.display_name(&entry.name),
            name: entry.name.clone(),
            segment_index: self.idx,
            offset: offset as u64,
            last_good_seq: self.last_good,
            why,
            following,
        }))
    }

    /// Valid records after a stop: in `current` (bytes, from, to, greater than seq) and in
    /// every segment from index `later`.
    fn find_following(
        &self,
        current: Option<(&[u8], usize, usize, Seq)>,
        later: usize,
    ) -> Result<Option<Following>, JournalError> {
        let mut found: Option<Following> = None;
        if let Some((bytes, from, to, after)) = current {
            if let Some((off, seq)) = find_valid_record(bytes, from, to, after) {
                found = Some(Following {
                    records: count_chain(bytes, off, seq),
                    first_seq: seq,
                    file: self.current_file(),
                    offset: off as u64,
                });
            }
        }
        for entry in self.listing.segments.iter().skip(later) {
            let file = self.storage.display_name(&entry.name);
            let view = open_bytes(&self.storage, entry, Vec::new())?;
            let Ok(h) = SegmentHeader::decode(&view) else {
                continue;
            };
            let n = count_chain(&view, SEGMENT_HEADER_LEN, h.first_seq);
            if n == 0 {
                continue;
            }
            match &mut found {
                Some(f) => f.records += n,
                None => {
                    found = Some(Following {
                        records: n,
                        first_seq: h.first_seq,
                        file,
                        offset: SEGMENT_HEADER_LEN as u64,
                    })
                }
            }
        }
        Ok(found)
    }
}

/// Why `header` does not continue `prev` (the segment read before it, if any;
/// `starts_journal`: it is the first segment of a reader that starts at sequence 1): the
/// chain rules of `docs/journal-format.md`.
fn chain_break(
    header: &SegmentHeader,
    prev: Option<&PrevSegment>,
    starts_journal: bool,
) -> Option<String> {
    match (prev, header.prev_link) {
        (Some(p), _) if header.version < p.version && header.version < 2 => Some(format!(
            "a version-{} segment cannot follow the version-{} segment {}",
            header.version, p.version, p.file
        )),
        (_, _) if header.version < 2 => None,
        (Some(p), Some(link)) if link != p.link => Some(format!(
            "segment does not continue the previous one: its previous-segment link is {link:#010x}, the link of {} is {:#010x}",
            p.file, p.link
        )),
        (Some(p), None) => Some(format!(
            "segment has no previous-segment link (it starts a journal) but follows {}",
            p.file
        )),
        (None, Some(_)) if starts_journal => Some(format!(
            "segment continues a previous segment but is the first of the journal: the segments before seq {} are missing",
            header.first_seq
        )),
        _ => None,
    }
}

/// Whether `bytes` is all zero: the check of a clean end, over the whole preallocated rest of
/// the last segment at every open (up to a segment's size). 256-byte blocks OR-folded as
/// fixed-size arrays, which the compiler vectorizes, instead of the word-by-word walk of
/// `last_nonzero_end` (which then runs only when something is there).
fn all_zero(bytes: &[u8]) -> bool {
    const BLOCK: usize = 256;
    let mut blocks = bytes.chunks_exact(BLOCK);
    let zero_blocks = blocks.by_ref().all(|b| {
        let b: &[u8; BLOCK] = b.try_into().expect("chunks_exact gives whole blocks");
        b.iter().fold(0u8, |acc, &x| acc | x) == 0
    });
    zero_blocks && blocks.remainder().iter().all(|&x| x == 0)
}

/// Number of valid, consecutive records starting at `offset` with sequence `first`.
fn count_chain(bytes: &[u8], mut offset: usize, first: Seq) -> u64 {
    let mut n = 0;
    let mut expected = first;
    while let Ok(r) = decode_record(bytes, offset, Some(expected)) {
        offset += r.len();
        expected += 1;
        n += 1;
    }
    n
}

impl<S: Storage> Iterator for JournalReader<S> {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_agrees_with_last_nonzero_end() {
        let mut b = vec![0u8; 4096 + 77];
        assert!(all_zero(&b) && last_nonzero_end(&b, 0).is_none());
        for at in [0, 1, 255, 256, 4095, 4096, 4096 + 76] {
            b[at] = 1;
            assert!(!all_zero(&b), "byte {at}");
            assert_eq!(last_nonzero_end(&b, 0), Some(at + 1));
            assert!(all_zero(&b[at + 1..]), "after byte {at}");
            b[at] = 0;
        }
        assert!(all_zero(&[]));
    }
}

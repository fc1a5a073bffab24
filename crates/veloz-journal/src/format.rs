//! The bytes of a journal segment: header and record layout, encoding, decoding and CRCs.
//!
//! This module is `docs/journal-format.md` in code: every offset is a named constant here and
//! nowhere else. It does no IO; it turns values into bytes and checks bytes.
//!
//! Layout (all little-endian):
//! ```text
//! segment: [header: 64 bytes][record][record]...[zeros to the end of the file]
//! header:  magic[8] version:u16 header_len:u16 shard:u16 flags:u16 first_seq:u64
//!          created_ns:u64 prev_link:u32 reserved[24] crc:u32   crc = CRC32C(header[0..60])
//! link:    CRC32C(header[0..64] ++ bytes[max(64, end - 1024)..end])   (see [`segment_link`])
//! record:  crc:u32 len:u32 seq:u64 ts:u64 type:u16 flags:u16 reserved:u32 payload[len-32]
//!          crc = CRC32C(record[4..len])   (everything after the CRC, in one contiguous run)
//! ```
//! Invariants checked by [`decode_record`]: `32 <= len <= MAX_RECORD_LEN`, the record lies
//! inside the segment, the CRC matches, flags and reserved are zero, and (when the caller
//! passes one) the sequence number is the expected one. A `len` of zero is the end of data.

use std::fmt;

use veloz_core::{Seq, Timestamp};

/// The format version this build writes. Version 3: command payloads may be admin commands
/// (kind 5), name their order by client order id (flag bit 1) and carry a mass cancel's
/// reason; segments and records are laid out as in version 2.
pub const FORMAT_VERSION: u16 = 3;
/// The oldest format version this build reads.
pub const MIN_READ_VERSION: u16 = 1;

/// Magic at the start of every segment.
pub const MAGIC: [u8; 8] = *b"VELOZJNL";

// Segment header offsets.
pub const SEG_MAGIC: usize = 0;
pub const SEG_VERSION: usize = 8;
pub const SEG_HEADER_LEN: usize = 10;
pub const SEG_SHARD: usize = 12;
pub const SEG_FLAGS: usize = 14;
pub const SEG_FIRST_SEQ: usize = 16;
pub const SEG_CREATED: usize = 24;
/// Version 2: the link of the previous segment (reserved, zero, in version 1).
pub const SEG_PREV_LINK: usize = 32;
pub const SEG_RESERVED: usize = 36;
pub const SEG_CRC: usize = 60;
/// Length of the segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Version 2 header flag: the segment continues a previous one, whose link is `prev_link`.
pub const SEG_FLAG_HAS_PREV: u16 = 1;
/// Bytes of a segment's records, counted back from their end, that its link covers (the whole
/// last record always fits).
pub const LINK_TAIL_LEN: usize = MAX_RECORD_LEN;

// Record header offsets.
pub const REC_CRC: usize = 0;
pub const REC_LEN: usize = 4;
pub const REC_SEQ: usize = 8;
pub const REC_TS: usize = 16;
pub const REC_TYPE: usize = 24;
pub const REC_FLAGS: usize = 26;
pub const REC_RESERVED: usize = 28;
pub const REC_PAYLOAD: usize = 32;
/// Length of the record header.
pub const RECORD_HEADER_LEN: usize = REC_PAYLOAD;
/// Longest record (header included) a reader accepts.
pub const MAX_RECORD_LEN: usize = 1024;
/// Longest payload a writer accepts.
pub const MAX_PAYLOAD_LEN: usize = MAX_RECORD_LEN - RECORD_HEADER_LEN;

/// Record types. Only ever appended; see the format document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RecordType {
    /// A command as sequenced (`payload::encode_command`).
    Command = 1,
    /// The engine's state hash at this point (`payload::encode_checkpoint`).
    Checkpoint = 2,
}

impl RecordType {
    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<RecordType> {
        match code {
            1 => Some(RecordType::Command),
            2 => Some(RecordType::Checkpoint),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordType::Command => "command",
            RecordType::Checkpoint => "checkpoint",
        }
    }
}

/// The fields of a segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub version: u16,
    pub shard: u16,
    pub first_seq: Seq,
    pub created_ns: Timestamp,
    /// Version 2: the link of the previous segment ([`segment_link`]); `None` for the first
    /// segment of a journal (and for every version-1 segment).
    pub prev_link: Option<u32>,
}

/// Why a segment header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file is shorter than a header.
    TooShort(usize),
    /// All 64 bytes are zero: a prepared file that never became a segment.
    Blank,
    BadMagic([u8; 8]),
    Crc {
        stored: u32,
        computed: u32,
    },
    /// A version this build cannot read.
    Version(u16),
    HeaderLen(u16),
    Flags(u16),
    /// A version-2 header without the previous-segment flag has a non-zero link.
    StrayLink(u32),
    Reserved,
    FirstSeqZero,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort(n) => write!(f, "file is {n} bytes, shorter than a header"),
            HeaderError::Blank => write!(f, "header is all zeros"),
            HeaderError::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            HeaderError::Crc { stored, computed } => write!(
                f,
                "header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeaderError::Version(v) => write!(
                f,
                "format version {v} is not supported (this build reads {MIN_READ_VERSION}..={FORMAT_VERSION})"
            ),
            HeaderError::HeaderLen(n) => write!(f, "header length {n}, expected {SEGMENT_HEADER_LEN}"),
            HeaderError::Flags(x) => write!(f, "unknown header flags {x:#06x}"),
            HeaderError::StrayLink(l) => write!(
                f,
                "previous-segment link {l:#010x} without the previous-segment flag"
            ),
            HeaderError::Reserved => write!(f, "reserved header bytes are not zero"),
            HeaderError::FirstSeqZero => write!(f, "first sequence number is 0"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl SegmentHeader {
    /// A header of the version this build writes, for the first segment of a journal (see
    /// [`SegmentHeader::continuing`] for the others).
    pub fn new(shard: u16, first_seq: Seq, created_ns: Timestamp) -> SegmentHeader {
        SegmentHeader {
            version: FORMAT_VERSION,
            shard,
            first_seq,
            created_ns,
            prev_link: None,
        }
    }

    /// This header, continuing the segment whose link is `prev_link`.
    pub fn continuing(self, prev_link: Option<u32>) -> SegmentHeader {
        SegmentHeader { prev_link, ..self }
    }

    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[SEG_MAGIC..SEG_MAGIC + 8].copy_from_slice(&MAGIC);
        b[SEG_VERSION..SEG_VERSION + 2].copy_from_slice(&self.version.to_le_bytes());
        b[SEG_HEADER_LEN..SEG_HEADER_LEN + 2]
            .copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        b[SEG_SHARD..SEG_SHARD + 2].copy_from_slice(&self.shard.to_le_bytes());
        // Version 1 has neither the flag nor the link: its bytes stay what they always were.
        let link = self.prev_link.filter(|_| self.version >= 2);
        let flags = if link.is_some() { SEG_FLAG_HAS_PREV } else { 0 };
        b[SEG_FLAGS..SEG_FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
        b[SEG_FIRST_SEQ..SEG_FIRST_SEQ + 8].copy_from_slice(&self.first_seq.to_le_bytes());
        b[SEG_CREATED..SEG_CREATED + 8].copy_from_slice(&self.created_ns.to_le_bytes());
        b[SEG_PREV_LINK..SEG_PREV_LINK + 4].copy_from_slice(&link.unwrap_or(0).to_le_bytes());
        let crc = crc32c::crc32c(&b[..SEG_CRC]);
        b[SEG_CRC..SEG_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and check the header at the start of `bytes` (a whole segment or its first 64
    /// bytes).
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < SEGMENT_HEADER_LEN {
            return Err(HeaderError::TooShort(bytes.len()));
        }
        let b = &bytes[..SEGMENT_HEADER_LEN];
        if b.iter().all(|&x| x == 0) {
            return Err(HeaderError::Blank);
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[SEG_MAGIC..SEG_MAGIC + 8]);
        if magic != MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        let stored = u32_at(b, SEG_CRC);
        let computed = crc32c::crc32c(&b[..SEG_CRC]);
        if stored != computed {
            return Err(HeaderError::Crc { stored, computed });
        }
        let version = u16_at(b, SEG_VERSION);
        if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(HeaderError::Version(version));
        }
        let header_len = u16_at(b, SEG_HEADER_LEN);
        if header_len as usize != SEGMENT_HEADER_LEN {
            return Err(HeaderError::HeaderLen(header_len));
        }
        let flags = u16_at(b, SEG_FLAGS);
        let known = if version >= 2 { SEG_FLAG_HAS_PREV } else { 0 };
        if flags & !known != 0 {
            return Err(HeaderError::Flags(flags));
        }
        let (link_bytes, reserved) = if version >= 2 {
            (
                &b[SEG_PREV_LINK..SEG_PREV_LINK + 4],
                &b[SEG_RESERVED..SEG_CRC],
            )
        } else {
            (&b[..0], &b[SEG_PREV_LINK..SEG_CRC])
        };
        if reserved.iter().any(|&x| x != 0) {
            return Err(HeaderError::Reserved);
        }
        let link = if link_bytes.is_empty() {
            0
        } else {
            u32_at(b, SEG_PREV_LINK)
        };
        let prev_link = if flags & SEG_FLAG_HAS_PREV != 0 {
            Some(link)
        } else if link != 0 {
            return Err(HeaderError::StrayLink(link));
        } else {
            None
        };
        let first_seq = u64_at(b, SEG_FIRST_SEQ);
        if first_seq == 0 {
            return Err(HeaderError::FirstSeqZero);
        }
        Ok(SegmentHeader {
            version,
            shard: u16_at(b, SEG_SHARD),
            first_seq,
            created_ns: u64_at(b, SEG_CREATED),
            prev_link,
        })
    }

    /// The CRC stored in an encoded header (what the chain head records of its newest segment).
    pub fn stored_crc(header: &[u8]) -> u32 {
        u32_at(header, SEG_CRC)
    }
}

/// Where the bytes a segment's link covers after its header start, for records ending at `end`.
pub fn link_tail_start(end: usize) -> usize {
    end.saturating_sub(LINK_TAIL_LEN).max(SEGMENT_HEADER_LEN)
}

/// The link of a segment: CRC-32C of its 64-byte `header` followed by `tail`, the bytes
/// `link_tail_start(end)..end` of its records (`end`: just past its last record). The next
/// segment stores it as `prev_link`; see `docs/journal-format.md`, "The chain of segments".
pub fn segment_link(header: &[u8], tail: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&header[..SEGMENT_HEADER_LEN]), tail)
}

/// A record as stored: header fields and a view of the payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub seq: Seq,
    pub ts: Timestamp,
    /// The record type code (see [`RecordType`]); not interpreted at this level.
    pub rtype: u16,
    pub payload: &'a [u8],
}

impl RawRecord<'_> {
    /// Bytes the record takes in the segment, header included.
    pub fn len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload.len()
    }

    /// Never true: a record has at least a header. Present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Build the 32-byte header of a record, CRC included. The CRC covers the header after its own
/// field and `payload`, so the caller writes exactly this header followed by `payload`.
///
/// # Panics
/// If the payload is longer than [`MAX_PAYLOAD_LEN`] (callers check first).
#[inline]
pub fn encode_record_header(
    seq: Seq,
    ts: Timestamp,
    rtype: u16,
    payload: &[u8],
) -> [u8; RECORD_HEADER_LEN] {
    assert!(payload.len() <= MAX_PAYLOAD_LEN, "payload too long");
    let len = (RECORD_HEADER_LEN + payload.len()) as u32;
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[REC_LEN..REC_LEN + 4].copy_from_slice(&len.to_le_bytes());
    h[REC_SEQ..REC_SEQ + 8].copy_from_slice(&seq.to_le_bytes());
    h[REC_TS..REC_TS + 8].copy_from_slice(&ts.to_le_bytes());
    h[REC_TYPE..REC_TYPE + 2].copy_from_slice(&rtype.to_le_bytes());
    // REC_FLAGS and REC_RESERVED stay zero.
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[REC_LEN..]), payload);
    h[REC_CRC..REC_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Fill in the header of the record in `rec` (whose payload is already at
/// `rec[RECORD_HEADER_LEN..]`; `rec.len()` is the record length), CRC last. One CRC pass over
/// contiguous bytes: the writer's path for small records.
///
/// # Panics
/// If `rec` is shorter than a header or longer than [`MAX_RECORD_LEN`] (callers check first).
#[inline]
pub fn finish_record(rec: &mut [u8], seq: Seq, ts: Timestamp, rtype: u16) {
    assert!((RECORD_HEADER_LEN..=MAX_RECORD_LEN).contains(&rec.len()));
    let len = rec.len() as u32;
    rec[REC_LEN..REC_LEN + 4].copy_from_slice(&len.to_le_bytes());
    rec[REC_SEQ..REC_SEQ + 8].copy_from_slice(&seq.to_le_bytes());
    rec[REC_TS..REC_TS + 8].copy_from_slice(&ts.to_le_bytes());
    rec[REC_TYPE..REC_TYPE + 2].copy_from_slice(&rtype.to_le_bytes());
    rec[REC_FLAGS..REC_PAYLOAD].fill(0);
    let crc = crc32c::crc32c(&rec[REC_LEN..]);
    rec[REC_CRC..REC_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// A whole record as bytes (header then payload); for tests and tools. The writer writes the
/// header and the payload separately, without building this.
pub fn encode_record(seq: Seq, ts: Timestamp, rtype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    v.extend_from_slice(&encode_record_header(seq, ts, rtype, payload));
    v.extend_from_slice(payload);
    v
}

/// Why the bytes at a record boundary are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// `len` is zero: the end of data (if everything after is zero too).
    End,
    /// Fewer bytes than a record header are left in the segment.
    Truncated {
        available: usize,
    },
    /// `len` is below the header size, above [`MAX_RECORD_LEN`], or runs past the segment.
    Length {
        len: u32,
        available: usize,
    },
    Crc {
        stored: u32,
        computed: u32,
    },
    /// Flags or reserved bytes are not zero (under a valid CRC).
    NonZeroReserved,
    /// A valid record with another sequence number than the one expected here.
    Seq {
        expected: Seq,
        found: Seq,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::End => write!(f, "record length is 0"),
            Invalid::Truncated { available } => {
                write!(f, "only {available} bytes left, less than a record header")
            }
            Invalid::Length { len, available } => write!(
                f,
                "record length {len} is out of bounds ({RECORD_HEADER_LEN}..={MAX_RECORD_LEN}, {available} bytes left)"
            ),
            Invalid::Crc { stored, computed } => write!(
                f,
                "record CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Invalid::NonZeroReserved => write!(f, "record flags or reserved bytes are not zero"),
            Invalid::Seq { expected, found } => {
                write!(f, "record has seq {found}, expected seq {expected}")
            }
        }
    }
}

/// Decode the record starting at `offset` of `segment`, checking length, CRC, reserved fields
/// and, if given, the expected sequence number.
#[inline]
pub fn decode_record(
    segment: &[u8],
    offset: usize,
    expected_seq: Option<Seq>,
) -> Result<RawRecord<'_>, Invalid> {
    let available = segment.len().saturating_sub(offset);
    if available < REC_LEN + 4 {
        return if segment[offset.min(segment.len())..].iter().all(|&x| x == 0) {
            Err(Invalid::End)
        } else {
            Err(Invalid::Truncated { available })
        };
    }
    let len = u32_at(segment, offset + REC_LEN);
    if len == 0 {
        return Err(Invalid::End);
    }
    if available < RECORD_HEADER_LEN {
        return Err(Invalid::Truncated { available });
    }
    let ulen = len as usize;
    if !(RECORD_HEADER_LEN..=MAX_RECORD_LEN).contains(&ulen) || ulen > available {
        return Err(Invalid::Length { len, available });
    }
    let rec = &segment[offset..offset + ulen];
    let stored = u32_at(rec, REC_CRC);
    let computed = crc32c::crc32c(&rec[REC_LEN..]);
    if stored != computed {
        return Err(Invalid::Crc { stored, computed });
    }
    if u16_at(rec, REC_FLAGS) != 0 || u32_at(rec, REC_RESERVED) != 0 {
        return Err(Invalid::NonZeroReserved);
    }
    let seq = u64_at(rec, REC_SEQ);
    if let Some(expected) = expected_seq {
        if seq != expected {
            return Err(Invalid::Seq {
                expected,
                found: seq,
            });
        }
    }
    Ok(RawRecord {
        seq,
        ts: u64_at(rec, REC_TS),
        rtype: u16_at(rec, REC_TYPE),
        payload: &rec[RECORD_HEADER_LEN..],
    })
}

/// Offset one past the last non-zero byte of `bytes[from..]`, or `None` if it is all zero.
pub fn last_nonzero_end(bytes: &[u8], from: usize) -> Option<usize> {
    if from >= bytes.len() {
        return None;
    }
    let tail = &bytes[from..];
    // Walk back in 8-byte words: recovery scans whole preallocated segments.
    let mut end = tail.len();
    while end >= 8 {
        let w = u64_at(tail, end - 8);
        if w != 0 {
            let lead_zero_bytes = (w.leading_zeros() / 8) as usize; // little-endian: high bytes last
            return Some(from + end - lead_zero_bytes);
        }
        end -= 8;
    }
    tail[..end]
        .iter()
        .rposition(|&x| x != 0)
        .map(|p| from + p + 1)
}

/// The first offset in `from..to` at which a valid record with a sequence number greater than
/// `after_seq` starts (at any byte offset: a corrupted record's length cannot be trusted).
pub fn find_valid_record(
    segment: &[u8],
    from: usize,
    to: usize,
    after_seq: Seq,
) -> Option<(usize, Seq)> {
    let to = to.min(segment.len());
    let mut off = from;
    while off + RECORD_HEADER_LEN <= to {
        let len = u32_at(segment, off + REC_LEN) as usize;
        if (RECORD_HEADER_LEN..=MAX_RECORD_LEN).contains(&len) && off + len <= segment.len() {
            if let Ok(r) = decode_record(segment, off, None) {
                if r.seq > after_seq {
                    return Some((off, r.seq));
                }
            }
        }
        off += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = SegmentHeader::new(7, 12345, 1_700_000_000_000_000_000);
        let b = h.encode();
        assert_eq!(&b[..8], b"VELOZJNL");
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
        assert_eq!(
            SegmentHeader::decode(&[0u8; 64]).unwrap_err(),
            HeaderError::Blank
        );
        assert_eq!(
            SegmentHeader::decode(&b[..10]).unwrap_err(),
            HeaderError::TooShort(10)
        );
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SegmentHeader::decode(&c).is_err(),
                "bit {bit} flip accepted"
            );
        }
        // A newer version with a valid CRC is refused by name.
        let mut newer = b;
        newer[SEG_VERSION..SEG_VERSION + 2].copy_from_slice(&4u16.to_le_bytes());
        let crc = crc32c::crc32c(&newer[..SEG_CRC]);
        newer[SEG_CRC..].copy_from_slice(&crc.to_le_bytes());
        let e = SegmentHeader::decode(&newer).unwrap_err();
        assert_eq!(
            e.to_string(),
            "format version 4 is not supported (this build reads 1..=3)"
        );
        // Version 2 carries the link of the previous segment under its flag; version 1 has
        // neither, and its bytes are those version 1 always wrote.
        let cont = h.continuing(Some(0xDEAD_BEEF));
        let cb = cont.encode();
        assert_eq!(u16_at(&cb, SEG_FLAGS), SEG_FLAG_HAS_PREV);
        assert_eq!(SegmentHeader::decode(&cb).unwrap(), cont);
        let v1 = SegmentHeader { version: 1, ..cont };
        let v1b = v1.encode();
        assert_eq!(u16_at(&v1b, SEG_FLAGS), 0);
        assert!(v1b[SEG_PREV_LINK..SEG_CRC].iter().all(|&x| x == 0));
        assert_eq!(SegmentHeader::decode(&v1b).unwrap().prev_link, None);
    }

    #[test]
    fn record_round_trip_for_each_type() {
        for (rtype, payload) in [
            (RecordType::Command.code(), vec![0xAB; 48]),
            (RecordType::Checkpoint.code(), vec![0x01; 16]),
            (0xFFFF, vec![]),
        ] {
            let mut seg = vec![0u8; 256];
            let rec = encode_record(42, 99, rtype, &payload);
            seg[8..8 + rec.len()].copy_from_slice(&rec);
            let r = decode_record(&seg, 8, Some(42)).unwrap();
            assert_eq!(r.seq, 42);
            assert_eq!(r.ts, 99);
            assert_eq!(r.rtype, rtype);
            assert_eq!(r.payload, &payload[..]);
            assert_eq!(r.len(), rec.len());
            assert_eq!(
                decode_record(&seg, 8 + rec.len(), Some(43)),
                Err(Invalid::End)
            );
        }
    }

    #[test]
    fn crc_catches_every_single_bit_flip() {
        let payload: Vec<u8> = (0..48u8).collect();
        let rec = encode_record(1000, 2000, RecordType::Command.code(), &payload);
        let mut seg = vec![0u8; 512];
        seg[..rec.len()].copy_from_slice(&rec);
        decode_record(&seg, 0, Some(1000)).unwrap();
        for bit in 0..rec.len() * 8 {
            let mut s = seg.clone();
            s[bit / 8] ^= 1 << (bit % 8);
            let r = decode_record(&s, 0, None);
            assert!(r.is_err(), "flip of bit {bit} (byte {}) accepted", bit / 8);
        }
    }

    #[test]
    fn invalid_kinds() {
        let rec = encode_record(5, 6, 1, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut seg = vec![0u8; 64];
        seg[..rec.len()].copy_from_slice(&rec);
        assert_eq!(
            decode_record(&seg, 0, Some(4)),
            Err(Invalid::Seq {
                expected: 4,
                found: 5
            })
        );
        // Runs past the end of the segment.
        assert!(matches!(
            decode_record(&seg[..30], 0, None),
            Err(Invalid::Truncated { available: 30 })
        ));
        assert!(matches!(
            decode_record(&seg[..35], 0, None),
            Err(Invalid::Length {
                len: 40,
                available: 35
            })
        ));
        let mut big = seg.clone();
        big[REC_LEN..REC_LEN + 4].copy_from_slice(&2000u32.to_le_bytes());
        assert!(matches!(
            decode_record(&big, 0, None),
            Err(Invalid::Length { len: 2000, .. })
        ));
        // Trailing bytes shorter than CRC and length.
        assert_eq!(decode_record(&[0; 7], 0, None), Err(Invalid::End));
        assert_eq!(
            decode_record(&[0, 1], 0, None),
            Err(Invalid::Truncated { available: 2 })
        );
        // The one-buffer encoding is the two-part one.
        let payload = [9u8; 24];
        let mut one = vec![0u8; RECORD_HEADER_LEN + payload.len()];
        one[RECORD_HEADER_LEN..].copy_from_slice(&payload);
        finish_record(&mut one, 77, 88, 2);
        assert_eq!(one, encode_record(77, 88, 2, &payload));
    }

    #[test]
    fn last_nonzero_and_find_valid() {
        let mut b = vec![0u8; 100];
        assert_eq!(last_nonzero_end(&b, 0), None);
        b[37] = 1;
        assert_eq!(last_nonzero_end(&b, 0), Some(38));
        assert_eq!(last_nonzero_end(&b, 38), None);
        b[99] = 1;
        assert_eq!(last_nonzero_end(&b, 0), Some(100));
        b[98] = 0;
        b[99] = 0;
        b[93] = 5;
        assert_eq!(last_nonzero_end(&b, 40), Some(94));

        let rec = encode_record(9, 1, 1, &[7; 16]);
        let mut seg = vec![0xEEu8; 200];
        seg[77..77 + rec.len()].copy_from_slice(&rec);
        assert_eq!(find_valid_record(&seg, 0, 200, 8), Some((77, 9)));
        assert_eq!(find_valid_record(&seg, 0, 200, 9), None);
        assert_eq!(find_valid_record(&seg, 78, 200, 0), None);
    }
}

//! The chain head: the small file that records a shard's newest segment, so that losing the
//! *last* segment(s) of a journal cannot pass unnoticed (the links between segments, in
//! [`format`](mod@super::format), catch a missing segment between two others).
//!
//! Layout (`chain-head`, 32 bytes, little-endian; `docs/journal-format.md`, "Chain head"):
//! ```text
//! magic[8] = "VELOZCHN"  version:u16 = 1  shard:u16  flags:u16  reserved:u16
//! newest_first_seq:u64  newest_header_crc:u32  crc:u32      crc = CRC32C(head[0..28])
//! ```
//! Flags: bit 0 a newest segment is named, bit 1 a spare is announced (one more segment may
//! follow the newest). The file is always replaced whole ([`Storage::replace`]) and never
//! by the appending thread: recovery, the preparer thread and `Writer::close` write it, in the
//! order the format document gives, so that a segment holding records is always the newest
//! named, an older one, or the one activated from an announced spare.

use std::fmt;

use veloz_core::Seq;

use super::backend::Storage;
use super::error::{ChainBreak, JournalError, JournalWarning};
use super::layout::{segment_name, Listing, SpareState};

/// File name of the chain head in a shard directory.
pub const HEAD_NAME: &str = "chain-head";
/// Magic at the start of the chain head.
pub const HEAD_MAGIC_BYTES: [u8; 8] = *b"VELOZCHN";
/// Version of the chain head's own layout.
pub const HEAD_FORMAT_VERSION: u16 = 1;

pub const HEAD_MAGIC: usize = 0;
pub const HEAD_VERSION: usize = 8;
pub const HEAD_SHARD: usize = 10;
pub const HEAD_FLAGS: usize = 12;
pub const HEAD_RESERVED: usize = 14;
pub const HEAD_NEWEST_FIRST_SEQ: usize = 16;
pub const HEAD_NEWEST_HEADER_CRC: usize = 24;
pub const HEAD_CRC: usize = 28;
/// Length of the chain head file.
pub const HEAD_LEN: usize = 32;
/// Flag: a newest segment is named.
pub const HEAD_FLAG_NEWEST: u16 = 1;
/// Flag: a spare is announced; one more segment may follow the newest.
pub const HEAD_FLAG_SPARE: u16 = 2;

/// The newest segment as the chain head names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Newest {
    /// Its first sequence number (its name is `layout::segment_name(first_seq)`).
    pub first_seq: Seq,
    /// The CRC stored in its header.
    pub header_crc: u32,
}

/// The fields of a chain head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    pub shard: u16,
    /// `None`: the journal had no segment when the head was written.
    pub newest: Option<Newest>,
    /// A spare was prepared and may have become the segment after `newest`.
    pub spare: bool,
}

/// Why a chain head was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    Length(usize),
    BadMagic([u8; 8]),
    Crc { stored: u32, computed: u32 },
    Version(u16),
    Flags(u16),
    Reserved,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Length(n) => write!(f, "file is {n} bytes, expected {HEAD_LEN}"),
            HeadError::BadMagic(m) => write!(f, "bad magic {m:02x?}"),
            HeadError::Crc { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeadError::Version(v) => write!(
                f,
                "chain head version {v} is not supported (this build reads {HEAD_FORMAT_VERSION})"
            ),
            HeadError::Flags(x) => write!(f, "unknown flags {x:#06x}"),
            HeadError::Reserved => write!(f, "reserved bytes are not zero"),
        }
    }
}

impl ChainHead {
    pub fn encode(&self) -> [u8; HEAD_LEN] {
        let mut b = [0u8; HEAD_LEN];
        let mut flags = 0;
        if self.newest.is_some() {
            flags |= HEAD_FLAG_NEWEST;
        }
        if self.spare {
            flags |= HEAD_FLAG_SPARE;
        }
        let n = self.newest.unwrap_or(Newest {
            first_seq: 0,
            header_crc: 0,
        });
        b[HEAD_MAGIC..HEAD_MAGIC + 8].copy_from_slice(&HEAD_MAGIC_BYTES);
        b[HEAD_VERSION..HEAD_VERSION + 2].copy_from_slice(&HEAD_FORMAT_VERSION.to_le_bytes());
        b[HEAD_SHARD..HEAD_SHARD + 2].copy_from_slice(&self.shard.to_le_bytes());
        b[HEAD_FLAGS..HEAD_FLAGS + 2].copy_from_slice(&flags.to_le_bytes());
        b[HEAD_NEWEST_FIRST_SEQ..HEAD_NEWEST_FIRST_SEQ + 8]
            .copy_from_slice(&n.first_seq.to_le_bytes());
        b[HEAD_NEWEST_HEADER_CRC..HEAD_NEWEST_HEADER_CRC + 4]
            .copy_from_slice(&n.header_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..HEAD_CRC]);
        b[HEAD_CRC..HEAD_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<ChainHead, HeadError> {
        if b.len() != HEAD_LEN {
            return Err(HeadError::Length(b.len()));
        }
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[HEAD_MAGIC..HEAD_MAGIC + 8]);
        if magic != HEAD_MAGIC_BYTES {
            return Err(HeadError::BadMagic(magic));
        }
        let stored = u32_at(HEAD_CRC);
        let computed = crc32c::crc32c(&b[..HEAD_CRC]);
        if stored != computed {
            return Err(HeadError::Crc { stored, computed });
        }
        let version = u16_at(HEAD_VERSION);
        if version != HEAD_FORMAT_VERSION {
            return Err(HeadError::Version(version));
        }
        let flags = u16_at(HEAD_FLAGS);
        if flags & !(HEAD_FLAG_NEWEST | HEAD_FLAG_SPARE) != 0 {
            return Err(HeadError::Flags(flags));
        }
        if u16_at(HEAD_RESERVED) != 0 {
            return Err(HeadError::Reserved);
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[HEAD_NEWEST_FIRST_SEQ..HEAD_NEWEST_FIRST_SEQ + 8]);
        let newest = (flags & HEAD_FLAG_NEWEST != 0).then(|| Newest {
            first_seq: u64::from_le_bytes(seq),
            header_crc: u32_at(HEAD_NEWEST_HEADER_CRC),
        });
        Ok(ChainHead {
            shard: u16_at(HEAD_SHARD),
            newest,
            spare: flags & HEAD_FLAG_SPARE != 0,
        })
    }
}

/// Read the chain head of `storage`; `None` if there is none. Its shard is checked at the end
/// of reading (`check_end`), after the segments' own.
pub fn read_head<S: Storage>(storage: &S) -> Result<Option<ChainHead>, JournalError> {
    let names = storage
        .list()
        .map_err(|e| JournalError::io("list", storage.display_name(""), e))?;
    if !names.iter().any(|n| n == HEAD_NAME) {
        return Ok(None);
    }
    let file = storage.display_name(HEAD_NAME);
    let view = storage
        .open_view(HEAD_NAME)
        .map_err(|e| JournalError::io("read", file.clone(), e))?;
    let head = ChainHead::decode(&view).map_err(|why| JournalError::BadChainHead {
        file: file.clone(),
        why: why.to_string(),
    })?;
    Ok(Some(head))
}

/// Replace the chain head of `storage` durably.
pub fn write_head<S: Storage>(storage: &S, head: &ChainHead) -> Result<(), JournalError> {
    storage
        .replace(HEAD_NAME, &head.encode())
        .map_err(|e| JournalError::io("write", storage.display_name(HEAD_NAME), e))
}

/// What a reader knows when it reaches the end of a journal.
#[derive(Debug)]
pub(crate) struct EndFacts<'a> {
    pub shard: u16,
    pub listing: &'a Listing,
    /// The last segment, if it is blank (holds nothing).
    pub blank_last: Option<&'a str>,
    /// (first_seq, header CRC) of every segment read.
    pub seen: &'a [(Seq, u32)],
    /// The first segment of format version 2 or later.
    pub first_v2: Option<&'a str>,
    pub last_seq: Option<Seq>,
}

/// Check that the journal ends where `head` says (`docs/journal-format.md`, "End of the
/// chain"). Returns the warning to report, if any.
pub(crate) fn check_end<S: Storage>(
    storage: &S,
    head: Option<&ChainHead>,
    f: &EndFacts<'_>,
) -> Result<Option<JournalWarning>, JournalError> {
    let segs = &f.listing.segments;
    let broken = |b: ChainBreak| Err(JournalError::Chain(Box::new(b)));
    if let Some(h) = head.filter(|h| h.shard != f.shard) {
        return Err(JournalError::BadChainHead {
            file: storage.display_name(HEAD_NAME),
            why: format!(
                "it belongs to shard {}, this is the journal of shard {}",
                h.shard, f.shard
            ),
        });
    }
    let Some(head) = head else {
        if let Some(seg) = f.first_v2 {
            return broken(ChainBreak::HeadMissing {
                shard: f.shard,
                file: storage.display_name(HEAD_NAME),
                segment: storage.display_name(seg),
                journal_end: f.last_seq,
            });
        }
        return Ok((!segs.is_empty()).then(|| JournalWarning::LegacyJournal {
            dir: storage.display_name(""),
            head_written: false,
        }));
    };
    let start = match head.newest {
        None => 0,
        Some(n) => {
            let Some(i) = segs.iter().position(|s| s.first_seq == n.first_seq) else {
                return broken(ChainBreak::MissingSegment {
                    shard: f.shard,
                    name: segment_name(n.first_seq),
                    first_seq: n.first_seq,
                    from_spare: false,
                    journal_end: f.last_seq,
                });
            };
            if let Some(&(_, crc)) = f.seen.iter().find(|(s, _)| *s == n.first_seq) {
                if crc != n.header_crc {
                    return broken(ChainBreak::NotNamed {
                        shard: f.shard,
                        name: segs[i].name.clone(),
                        found_crc: crc,
                        head_crc: n.header_crc,
                        journal_end: f.last_seq,
                    });
                }
            }
            i + 1
        }
    };
    let after = segs.len() - start;
    if after == 0 && head.spare && f.listing.spare == SpareState::Absent {
        // The announced spare is neither prepared nor a segment: it was activated and lost.
        let first_seq = f
            .last_seq
            .map_or_else(|| head.newest.map_or(1, |n| n.first_seq), |s| s + 1);
        return broken(ChainBreak::MissingSegment {
            shard: f.shard,
            name: segment_name(first_seq),
            first_seq,
            from_spare: true,
            journal_end: f.last_seq,
        });
    }
    let with_data = after - usize::from(after > 0 && f.blank_last.is_some());
    if with_data > usize::from(head.spare) {
        let newest = segs
            .iter()
            .rev()
            .find(|s| Some(s.name.as_str()) != f.blank_last);
        return Ok(Some(JournalWarning::HeadBehind {
            file: storage.display_name(HEAD_NAME),
            named_first_seq: head.newest.map(|n| n.first_seq),
            newest: newest.map_or_else(String::new, |s| storage.display_name(&s.name)),
            rewritten: false,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trip_and_every_bit_flip_refused() {
        for head in [
            ChainHead {
                shard: 3,
                newest: Some(Newest {
                    first_seq: 7101,
                    header_crc: 0x1234_5678,
                }),
                spare: true,
            },
            ChainHead {
                shard: 0,
                newest: None,
                spare: false,
            },
        ] {
            let b = head.encode();
            assert_eq!(&b[..8], b"VELOZCHN");
            assert_eq!(ChainHead::decode(&b).unwrap(), head);
            for bit in 0..HEAD_LEN * 8 {
                let mut c = b;
                c[bit / 8] ^= 1 << (bit % 8);
                assert!(ChainHead::decode(&c).is_err(), "bit {bit} flip accepted");
            }
        }
        assert_eq!(
            ChainHead::decode(&[0; 3]).unwrap_err().to_string(),
            "file is 3 bytes, expected 32"
        );
    }
}

//! The files of a shard's journal directory: names and the ordered list of segments.
//!
//! ```text
//! {first_seq:020}.vlj                  a segment (the name repeats the header's first_seq)
//! next.spare                           the prepared next segment
//! {segment}.at-{offset:020}.dropped    bytes a repair cut from a segment
//! {segment}.dropped                    a segment a repair set aside
//! ```
//! Other names are ignored. A `next.spare` with a valid header is an activated segment whose
//! rename did not happen before a crash; it is listed as the last segment.

use veloz_core::Seq;

use super::backend::Storage;
use super::error::JournalError;
use super::format::{last_nonzero_end, HeaderError, SegmentHeader, SEGMENT_HEADER_LEN};

/// Name of the prepared spare segment.
pub const SPARE_NAME: &str = "next.spare";
/// Extension of segment files.
pub const SEGMENT_EXT: &str = ".vlj";

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: Seq) -> String {
    format!("{first_seq:020}{SEGMENT_EXT}")
}

/// The first sequence number a segment file name carries, if it is one.
pub fn parse_segment_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(SEGMENT_EXT)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Name under which repair saves the bytes it cut from `segment` at `offset`.
pub fn dropped_bytes_name(segment: &str, offset: u64) -> String {
    format!("{segment}.at-{offset:020}.dropped")
}

/// Name under which repair sets a whole segment aside.
pub fn dropped_segment_name(segment: &str) -> String {
    format!("{segment}.dropped")
}

/// One segment file, in journal order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    /// File name in the shard directory.
    pub name: String,
    /// First sequence number, from the name (or the header, for an activated spare).
    pub first_seq: Seq,
    /// This is `next.spare`, activated but not renamed.
    pub activated_spare: bool,
    /// This is an archived segment (`{first_seq:020}.vlj.zst`, `archive.rs`): read-only, older
    /// than every live segment.
    pub archived: bool,
}

/// What `next.spare` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpareState {
    Absent,
    /// Prepared, never used: all zeros.
    Blank,
    /// Activated (valid header), listed as the last segment.
    Activated,
    /// A header write was cut short; nothing else was written.
    TornHeader,
}

/// The journal's segments, oldest first, and the state of the spare.
#[derive(Clone, Debug)]
pub struct Listing {
    pub segments: Vec<SegmentEntry>,
    pub spare: SpareState,
}

/// List the segments of `storage` (the journal of `shard`).
pub fn list_segments<S: Storage>(storage: &S, shard: u16) -> Result<Listing, JournalError> {
    let names = storage
        .list()
        .map_err(|e| JournalError::io("list", storage.display_name(""), e))?;
    let mut segments: Vec<SegmentEntry> = names
        .iter()
        .filter_map(|n| {
            parse_segment_name(n).map(|first_seq| SegmentEntry {
                name: n.clone(),
                first_seq,
                activated_spare: false,
                archived: false,
            })
        })
        .collect();
    segments.sort_by_key(|s| s.first_seq);
    let mut spare = SpareState::Absent;
    if names.iter().any(|n| n == SPARE_NAME) {
        let file = storage.display_name(SPARE_NAME);
        let view = storage
            .open_view(SPARE_NAME)
            .map_err(|e| JournalError::io("read", file.clone(), e))?;
        match SegmentHeader::decode(&view) {
            Ok(h) => {
                if h.shard != shard {
                    return Err(JournalError::WrongShard {
                        file,
                        expected: shard,
                        found: h.shard,
                    });
                }
                if let Some(last) = segments.last() {
                    if h.first_seq <= last.first_seq {
                        return Err(JournalError::Layout {
                            shard,
                            dir: storage.display_name(""),
                            why: format!(
                                "{file} starts at seq {} but {} starts at seq {}: an activated spare must be the newest segment",
                                h.first_seq,
                                storage.display_name(&last.name),
                                last.first_seq
                            ),
                        });
                    }
                }
                spare = SpareState::Activated;
                segments.push(SegmentEntry {
                    name: SPARE_NAME.to_string(),
                    first_seq: h.first_seq,
                    activated_spare: true,
                    archived: false,
                });
            }
            Err(HeaderError::Blank) | Err(HeaderError::TooShort(_))
                if last_nonzero_end(&view, 0).is_none() =>
            {
                spare = SpareState::Blank;
            }
            Err(why) => {
                if last_nonzero_end(&view, SEGMENT_HEADER_LEN.min(view.len())).is_none() {
                    spare = SpareState::TornHeader;
                } else {
                    return Err(JournalError::BadHeader { file, why });
                }
            }
        }
    }
    Ok(Listing { segments, spare })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(segment_name(1), "00000000000000000001.vlj");
        assert_eq!(parse_segment_name("00000000000000000001.vlj"), Some(1));
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("0000000000000000001.vlj"), None);
        assert_eq!(parse_segment_name("0000000000000000000a.vlj"), None);
        assert_eq!(parse_segment_name("00000000000000000001.vlj.dropped"), None);
        assert_eq!(parse_segment_name(SPARE_NAME), None);
        assert_eq!(
            dropped_bytes_name("00000000000000000001.vlj", 4160),
            "00000000000000000001.vlj.at-00000000000000004160.dropped"
        );
    }
}

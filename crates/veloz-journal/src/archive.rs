//! Retention: journal segments older than the oldest kept snapshot are archived compressed
//! (zstd) or deleted, and readers read archived segments as if they were live
//! (`docs/journal-format.md`, "Archive").
//!
//! Layout, in the shard directory beside the live segments:
//! ```text
//! {first_seq:020}.vlj.zst        an archived segment: one zstd frame whose content is the
//!                                segment file's bytes, all of them (header, records, zero tail),
//!                                with the content size in the frame header and zstd's content
//!                                checksum (XXH64) at its end
//! {first_seq:020}.vlj.zst.tmp    an archive being written (ignored; removed by the next retention)
//! ```
//!
//! Invariants:
//! - A segment is retired only when a *named* later segment starts at or before the sequence
//!   after the retention point (`keep_from_seq + 1`): the segment holding `keep_from_seq + 1`,
//!   every later one, the newest segment and `next.spare` are never touched. So recovery from
//!   the oldest kept snapshot never needs a retired segment.
//! - An archive is written whole through [`Storage::replace`] (`.tmp`, fsync, rename, directory
//!   fsync), read back and compared byte for byte with the segment, and only then is the
//!   segment removed (durably). A crash at any step leaves the live segment, or a complete
//!   archive, or both; the live segment wins when both exist, and the next retention finishes
//!   the job (it compares the archive with the segment again before removing the segment).
//! - [`list_with_archive`] lists archives older than the oldest live segment as segments with
//!   [`SegmentEntry::archived`] set; the reader checks their records and the chain across
//!   archive and live exactly as for live segments. Archives at or after the oldest live
//!   segment's first sequence are ignored (the live segment is the authority).
//!
//! Cost: about 2 s per 256 MiB segment of command records on the 2-vCPU development host
//! (compress at level 3, write and fsync, read back and compare; about 6x smaller), on the
//! thread that calls it, holding a segment's compressed and decompressed bytes in memory
//! meanwhile. Reading one back decompresses it whole into memory: a reader holds one
//! segment's bytes at a time.

use std::io::Read;

use serde::{Deserialize, Serialize};
use veloz_core::Seq;

use super::backend::Storage;
use super::error::JournalError;
use super::layout::{list_segments, parse_segment_name, segment_name, Listing, SegmentEntry};

/// Extension of an archived segment (after the 20 digits of its first sequence).
pub const ARCHIVE_EXT: &str = ".vlj.zst";
/// zstd level archives are written with (3: about 6x on command records).
pub const ARCHIVE_LEVEL: i32 = 3;

/// What retention does with segments older than the oldest kept snapshot (`[retention] mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionMode {
    /// Compress each to `{first_seq:020}.vlj.zst`, then remove it: `veloz replay` from
    /// sequence 1 still works.
    #[default]
    Archive,
    /// Remove it: the journal before the oldest kept snapshot is gone for good.
    Delete,
    /// Keep every segment live.
    Off,
}

impl RetentionMode {
    /// What became of a retired segment, for messages: "archived", "deleted" ("kept" when
    /// off, where nothing is retired).
    pub fn done(self) -> &'static str {
        match self {
            RetentionMode::Archive => "archived",
            RetentionMode::Delete => "deleted",
            RetentionMode::Off => "kept",
        }
    }
}

/// The archive file name of the segment whose first record is `first_seq`.
pub fn archive_name(first_seq: Seq) -> String {
    format!("{first_seq:020}{ARCHIVE_EXT}")
}

/// The first sequence an archive file name carries, if it is one.
pub fn parse_archive_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(ARCHIVE_EXT)?;
    parse_segment_name(&format!("{digits}{}", super::layout::SEGMENT_EXT))
}

/// What [`apply_retention`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments archived: (segment as shown, archive as shown, segment bytes, archive bytes).
    pub archived: Vec<(String, String, u64, u64)>,
    /// Segments removed without an archive (mode `delete`), as shown.
    pub deleted: Vec<String>,
    /// Segments removed because a complete archive of them already existed (a retention
    /// interrupted between writing the archive and removing the segment), as shown.
    pub finished: Vec<String>,
    /// Leftover `.vlj.zst.tmp` files removed, as shown.
    pub temps_removed: Vec<String>,
}

impl RetentionOutcome {
    /// Segments no longer live after this run.
    pub fn retired(&self) -> usize {
        self.archived.len() + self.deleted.len() + self.finished.len()
    }
}

/// Retire the segments of `storage` that lie entirely before `keep_from_seq + 1` (see the
/// module docs), as `mode` says. Safe while the shard's writer appends (it never touches the
/// newest segment or the spare) and after a crash at any point of an earlier run.
pub fn apply_retention<S: Storage>(
    storage: &S,
    keep_from_seq: Seq,
    mode: RetentionMode,
) -> Result<RetentionOutcome, JournalError> {
    let mut out = RetentionOutcome::default();
    if mode == RetentionMode::Off {
        return Ok(out);
    }
    let names = storage
        .list()
        .map_err(|e| JournalError::io("list", storage.display_name(""), e))?;
    for tmp in names.iter().filter(|n| {
        n.strip_suffix(".tmp")
            .is_some_and(|a| parse_archive_name(a).is_some())
    }) {
        remove(storage, tmp)?;
        out.temps_removed.push(storage.display_name(tmp));
    }
    // Named segments only: `next.spare` is the writer's and always newer than all of them.
    let mut live: Vec<Seq> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    live.sort_unstable();
    let retire = live
        .windows(2)
        .take_while(|w| w[1] <= keep_from_seq.saturating_add(1))
        .map(|w| w[0]);
    for first_seq in retire {
        let seg = segment_name(first_seq);
        let shown = storage.display_name(&seg);
        if mode == RetentionMode::Delete {
            remove(storage, &seg)?;
            out.deleted.push(shown);
            continue;
        }
        let arc = archive_name(first_seq);
        let view = storage
            .open_view(&seg)
            .map_err(|e| JournalError::io("read", shown.clone(), e))?;
        if names.contains(&arc) {
            verify_same(storage, &arc, &view)?;
            drop(view);
            remove(storage, &seg)?;
            out.finished.push(shown);
            continue;
        }
        let compressed =
            compress(&view).map_err(|e| JournalError::io("compress", shown.clone(), e))?;
        storage
            .replace(&arc, &compressed)
            .map_err(|e| JournalError::io("write", storage.display_name(&arc), e))?;
        verify_same(storage, &arc, &view)?;
        let seg_len = view.len() as u64;
        drop(view);
        remove(storage, &seg)?;
        out.archived.push((
            shown,
            storage.display_name(&arc),
            seg_len,
            compressed.len() as u64,
        ));
    }
    Ok(out)
}

/// Apply retention after a snapshot: find the oldest kept snapshot of `shard` whose header
/// and CRCs check ([`snapshot::oldest_valid`](super::snapshot::oldest_valid)) and retire the
/// segments before it ([`apply_retention`]). Returns that snapshot's sequence with what was
/// done, or `None` (nothing done) when there is no valid snapshot. This is the one call the
/// engine's snapshot helper makes after writing and pruning, and `veloz journal archive`.
pub fn retain<S: Storage>(
    storage: &S,
    shard: u16,
    mode: RetentionMode,
) -> Result<Option<(Seq, RetentionOutcome)>, JournalError> {
    if mode == RetentionMode::Off {
        return Ok(None);
    }
    let oldest = super::snapshot::oldest_valid(storage, shard)
        .map_err(|e| JournalError::io("list", storage.display_name(""), e))?;
    match oldest {
        Some(seq) => Ok(Some((seq, apply_retention(storage, seq, mode)?))),
        None => Ok(None),
    }
}

/// The segment bytes `bytes` as one zstd frame (content size recorded).
pub fn compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = zstd::stream::Encoder::new(Vec::with_capacity(bytes.len() / 4), ARCHIVE_LEVEL)?;
    enc.include_contentsize(true)?;
    enc.include_checksum(true)?;
    enc.set_pledged_src_size(Some(bytes.len() as u64))?;
    std::io::Write::write_all(&mut enc, bytes)?;
    enc.finish()
}

/// The bytes of the archived segment `name`, decompressed (streaming from the file, into
/// `buf`, cleared first and reused).
pub fn read_archived_into<S: Storage>(
    storage: &S,
    name: &str,
    buf: &mut Vec<u8>,
) -> Result<(), JournalError> {
    let file = storage.display_name(name);
    let view = storage
        .open_view(name)
        .map_err(|e| JournalError::io("read", file.clone(), e))?;
    let bad = |why: String| JournalError::Archive {
        file: file.clone(),
        why,
    };
    let size = zstd::zstd_safe::get_frame_content_size(&view)
        .map_err(|_| bad("not a zstd frame".into()))?
        .ok_or_else(|| bad("the zstd frame does not record its content size".into()))?;
    buf.clear();
    buf.reserve(size as usize);
    let mut dec = zstd::stream::read::Decoder::with_buffer(&view[..])
        .map_err(|e| bad(format!("cannot start decompressing: {e}")))?
        .single_frame();
    dec.read_to_end(buf)
        .map_err(|e| bad(format!("cannot decompress: {e}")))?;
    if buf.len() as u64 != size {
        return Err(bad(format!(
            "decompressed to {} bytes, the frame records {size}",
            buf.len()
        )));
    }
    Ok(())
}

/// Check that archive `name` decompresses to exactly `segment`.
fn verify_same<S: Storage>(storage: &S, name: &str, segment: &[u8]) -> Result<(), JournalError> {
    let mut buf = Vec::new();
    read_archived_into(storage, name, &mut buf)?;
    if buf != segment {
        let at = buf
            .iter()
            .zip(segment)
            .position(|(a, b)| a != b)
            .unwrap_or(buf.len().min(segment.len()));
        return Err(JournalError::Archive {
            file: storage.display_name(name),
            why: format!(
                "it differs from the live segment {} at offset {at} ({} bytes archived, {} live): the segment was kept",
                storage.display_name(&segment_name(parse_archive_name(name).unwrap_or(0))),
                buf.len(),
                segment.len()
            ),
        });
    }
    Ok(())
}

/// The segments of `storage`: the archived ones older than the oldest live segment (flagged
/// [`SegmentEntry::archived`]), then the live ones ([`list_segments`]).
pub fn list_with_archive<S: Storage>(storage: &S, shard: u16) -> Result<Listing, JournalError> {
    let mut listing = list_segments(storage, shard)?;
    let oldest_live = listing.segments.first().map(|s| s.first_seq);
    let names = storage
        .list()
        .map_err(|e| JournalError::io("list", storage.display_name(""), e))?;
    let mut archived: Vec<SegmentEntry> = names
        .iter()
        .filter_map(|n| {
            let first_seq = parse_archive_name(n)?;
            oldest_live
                .is_none_or(|o| first_seq < o)
                .then(|| SegmentEntry {
                    name: n.clone(),
                    first_seq,
                    activated_spare: false,
                    archived: true,
                })
        })
        .collect();
    if archived.is_empty() {
        return Ok(listing);
    }
    archived.sort_by_key(|s| s.first_seq);
    archived.append(&mut listing.segments);
    listing.segments = archived;
    Ok(listing)
}

fn remove<S: Storage>(storage: &S, name: &str) -> Result<(), JournalError> {
    storage
        .remove(name)
        .map_err(|e| JournalError::io("remove", storage.display_name(name), e))
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;

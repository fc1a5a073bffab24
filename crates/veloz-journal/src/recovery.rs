//! Opening a shard's journal for writing: scan, verify, repair what is safe to repair, and
//! continue appending at the next sequence number.
//!
//! [`open`] reads the whole journal with [`JournalReader`] (every record's CRC and sequence
//! checked, every payload decoded) and hands each record to a visitor — the engine, when the
//! shard starts: replay *is* recovery. Then, with no view of any file left open, it acts on
//! what the reader found, following `docs/journal-format.md`:
//! - a torn tail is zeroed (from its offset to the last non-zero byte) and synced, with a
//!   [`JournalWarning::TornTail`];
//! - corruption fails the open with [`JournalError::Corrupt`] unless `repair` is set, in which
//!   case the cut bytes are saved to a `.dropped` file, later segments are renamed
//!   `*.dropped`, and a [`JournalWarning::Repaired`] counts what was dropped;
//! - a journal that does not end where its chain head says (a missing last segment, a lost
//!   head) fails the open with [`JournalError::Chain`] unless `repair` is set, in which case
//!   the journal is accepted as found and a [`JournalWarning::ChainRepaired`] says so; breaks
//!   between segments (a gap, a link that does not match) are corruption, cut as above;
//! - the chain head is rewritten to name the segment appends continue in (a legacy version-1
//!   journal gets its first one), before an unused spare is deleted;
//! - an activated `next.spare` is renamed to its segment name, an unused one is deleted, a
//!   blank last segment is removed;
//! - with group durability every segment is synced, so the state rebuilt from the journal is
//!   durable before anything new depends on it.
//!
//! Recovery is itself crash-safe: every step can be interrupted and redone by the next open.
//!
//! **From a snapshot** ([`open_after_snapshot`]): when the caller loaded a snapshot at
//! sequence S, reading starts at the segment holding S + 1
//! ([`JournalReader::seek_after_snapshot`]); older segments are neither opened nor synced and
//! may be archived or deleted (`archive.rs`). That segment's header is checked as always, its
//! records up to S are verified but not visited, every later segment is chained to it, and the
//! end is checked against the chain head, so a gap or a missing segment *after* the snapshot
//! is refused by name exactly as without one. A journal in which no segment holds S + 1 is
//! refused ([`JournalError::MissingAfterSnapshot`]). Repair never cuts at or before S (the
//! snapshot could then not be continued): it refuses, and the operator moves the snapshot
//! aside. Archived segments are never written: a corruption in one is refused even with
//! repair ([`JournalError::Archive`]).

use veloz_core::Seq;

use super::backend::{RangeSync, SegmentFile, Storage};
use super::chain::{read_head, write_head, ChainHead, Newest};
use super::config::JournalConfig;
use super::error::{Corruption, JournalError, JournalWarning};
use super::format::{last_nonzero_end, SegmentHeader};
use super::layout::{
    dropped_bytes_name, dropped_segment_name, segment_name, SpareState, SPARE_NAME,
};
use super::payload::{Checkpoint, Record, RecordBody};
use super::reader::{EndPosition, JournalReader};
use super::writer::{ResumeAt, Writer};

/// How to open a journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Cut the journal at a mid-journal corruption or a break in its chain, or accept a journal
    /// that ends before its chain head says, instead of refusing to open (the operator's
    /// explicit `--repair`). What is cut is saved and reported, never silently lost.
    pub repair: bool,
}

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryOutcome {
    pub shard: u16,
    /// Segment files read.
    pub segments: usize,
    /// Valid records read (and given to the visitor).
    pub records: u64,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
    /// The sequence number the next append gets.
    pub next_seq: Seq,
    /// The last checkpoint record and its sequence number.
    pub last_checkpoint: Option<(Seq, Checkpoint)>,
    /// Everything an operator must be told (print each with `eprintln!` at the edge).
    pub warnings: Vec<JournalWarning>,
}

/// Open `shard`'s journal in `storage` for appending; see the module docs.
pub fn open<S: Storage>(
    storage: S,
    shard: u16,
    config: &JournalConfig,
    options: OpenOptions,
) -> Result<(Writer<S>, RecoveryOutcome), JournalError> {
    open_with(storage, shard, config, options, |_| {})
}

/// [`open`], giving every valid record, in order, to `visit` (the engine's apply loop).
pub fn open_with<S: Storage, F: FnMut(&Record)>(
    storage: S,
    shard: u16,
    config: &JournalConfig,
    options: OpenOptions,
    visit: F,
) -> Result<(Writer<S>, RecoveryOutcome), JournalError> {
    open_inner(storage, shard, config, options, None, visit)
}

/// [`open_with`] for a shard whose state up to `snapshot_seq` was loaded from a snapshot:
/// only the records after it are given to `visit`, and no segment before the one holding
/// `snapshot_seq + 1` is read (see the module docs). The caller checks that the journal
/// reaches `snapshot_seq` ([`RecoveryOutcome::last_seq`]).
pub fn open_after_snapshot<S: Storage, F: FnMut(&Record)>(
    storage: S,
    shard: u16,
    config: &JournalConfig,
    options: OpenOptions,
    snapshot_seq: Seq,
    visit: F,
) -> Result<(Writer<S>, RecoveryOutcome), JournalError> {
    open_inner(storage, shard, config, options, Some(snapshot_seq), visit)
}

fn open_inner<S: Storage, F: FnMut(&Record)>(
    storage: S,
    shard: u16,
    config: &JournalConfig,
    options: OpenOptions,
    snapshot_seq: Option<Seq>,
    mut visit: F,
) -> Result<(Writer<S>, RecoveryOutcome), JournalError> {
    config.validate()?;
    let mut report = RecoveryOutcome {
        shard,
        ..RecoveryOutcome::default()
    };
    // What repair accepted at the end of the chain (reported once the head is rewritten).
    let mut chain_repaired: Option<String> = None;
    let head = match read_head(&storage) {
        Ok(h) => Ok(h),
        Err(JournalError::BadChainHead { file, why }) if options.repair => {
            chain_repaired = Some(format!("bad chain head {file}: {why}"));
            Err(())
        }
        Err(e) => return Err(e),
    };
    let mut reader = JournalReader::open_with_head(storage.clone(), shard, head)?;
    if let Some(s) = snapshot_seq {
        reader.seek_after_snapshot(s)?;
    }
    let corruption = loop {
        match reader.next_record() {
            Ok(Some(rec)) => {
                report.records += 1;
                report.first_seq.get_or_insert(rec.seq);
                if let RecordBody::Checkpoint(c) = rec.body {
                    report.last_checkpoint = Some((rec.seq, c));
                }
                visit(&rec);
            }
            Ok(None) => break None,
            Err(JournalError::Corrupt(c)) if options.repair => {
                refuse_unrepairable(&storage, shard, &c, &reader, snapshot_seq)?;
                break Some(c);
            }
            Err(JournalError::Chain(b)) if options.repair => {
                chain_repaired = Some(b.what());
                break None;
            }
            Err(JournalError::BadChainHead { file, why }) if options.repair => {
                chain_repaired = Some(format!("bad chain head {file}: {why}"));
                break None;
            }
            Err(e) => return Err(e),
        }
    };
    let listing = reader.listing().clone();
    let torn = reader.torn().cloned();
    let blank = reader.blank_last().map(str::to_string);
    let prev_end = reader.prev_end().cloned();
    let mut end = reader.end().cloned();
    let seen_crcs = reader.header_crcs().to_vec();
    // The reader's chain warnings, as recovery acts on them (it rewrites the head below).
    for w in reader.warnings() {
        match w {
            JournalWarning::LegacyJournal { dir, .. } => {
                report.warnings.push(JournalWarning::LegacyJournal {
                    dir: dir.clone(),
                    head_written: true,
                })
            }
            JournalWarning::HeadBehind {
                file,
                named_first_seq,
                newest,
                ..
            } => report.warnings.push(JournalWarning::HeadBehind {
                file: file.clone(),
                named_first_seq: *named_first_seq,
                newest: newest.clone(),
                rewritten: true,
            }),
            _ => {}
        }
    }
    report.last_seq = reader.last_seq();
    let start_idx = reader.start_index();
    report.segments = listing.segments.len() - start_idx;
    for name in torn.iter().map(|t| &t.name).chain(&blank) {
        if listing
            .segments
            .iter()
            .any(|s| s.archived && &s.name == name)
        {
            return Err(JournalError::Archive {
                file: storage.display_name(name),
                why: "it is the last segment of the journal, which an archive never is (its live successors are missing)".into(),
            });
        }
    }
    // No view of any file may be alive while recovery writes.
    drop(reader);

    // Files recovery renamed or removed.
    let mut gone: Vec<String> = Vec::new();
    if let Some(c) = corruption {
        let (new_end, warning, aside) = repair(&storage, &listing.segments, &c, prev_end)?;
        end = new_end;
        gone = aside;
        report.warnings.push(warning);
    } else {
        if let Some(t) = torn {
            zero_range(&storage, &t.name, t.offset, t.end)?;
            report.warnings.push(JournalWarning::TornTail {
                file: storage.display_name(&t.name),
                offset: t.offset as u64,
                last_good_seq: report.last_seq,
                bytes: (t.end - t.offset) as u64,
                truncated: true,
            });
        }
        if let Some(b) = blank {
            remove(&storage, &b)?;
            report.warnings.push(JournalWarning::BlankSegment {
                file: storage.display_name(&b),
                removed: true,
            });
            gone.push(b);
        }
    }

    // The chain head names the segment appending continues in, and announces no spare (the
    // writer's preparer announces the next one), before an unused spare is deleted.
    let newest = match &end {
        Some(e) => Some(Newest {
            first_seq: e.first_seq,
            header_crc: match seen_crcs.iter().find(|(s, _)| *s == e.first_seq) {
                Some(&(_, crc)) => crc,
                None => header_crc_of(&storage, &e.name)?,
            },
        }),
        None => None,
    };
    write_head(
        &storage,
        &ChainHead {
            shard,
            newest,
            spare: false,
        },
    )?;
    if let Some(what) = chain_repaired {
        report.warnings.push(JournalWarning::ChainRepaired {
            shard,
            what,
            last_seq: report.last_seq,
        });
    }

    match listing.spare {
        SpareState::Absent => {}
        SpareState::Blank => remove(&storage, SPARE_NAME)?,
        SpareState::TornHeader => {
            remove(&storage, SPARE_NAME)?;
            report.warnings.push(JournalWarning::TornSpareHeader {
                file: storage.display_name(SPARE_NAME),
                removed: true,
            });
        }
        SpareState::Activated => {
            let spare = listing.segments.iter().find(|s| s.activated_spare);
            if let (Some(s), false) = (spare, gone.iter().any(|n| n == SPARE_NAME)) {
                let to = segment_name(s.first_seq);
                storage
                    .rename(SPARE_NAME, &to)
                    .map_err(|e| JournalError::io("rename", storage.display_name(SPARE_NAME), e))?;
                report.warnings.push(JournalWarning::SpareActivated {
                    from: storage.display_name(SPARE_NAME),
                    to: storage.display_name(&to),
                });
                if let Some(e) = end.as_mut().filter(|e| e.name == SPARE_NAME) {
                    e.name = to;
                }
            }
        }
    }

    if config.durability.syncs_locally() {
        // Segments before the start were durable before the snapshot that skips them.
        let read = listing.segments.iter().skip(start_idx);
        for s in read.filter(|s| !s.archived && !gone.contains(&s.name)) {
            let name = if s.activated_spare {
                segment_name(s.first_seq)
            } else {
                s.name.clone()
            };
            storage
                .sync_file(&name)
                .map_err(|e| JournalError::io("sync", storage.display_name(&name), e))?;
        }
    }

    report.next_seq = match (report.last_seq, &end) {
        (Some(s), _) => s + 1,
        (None, Some(e)) => e.first_seq,
        (None, None) => 1,
    };
    let resume = match end {
        Some(e) => Some(ResumeAt {
            segment: storage
                .open_segment(&e.name, e.offset)
                .map_err(|err| JournalError::io("open", storage.display_name(&e.name), err))?,
            name: e.name,
            first_seq: e.first_seq,
            offset: e.offset,
        }),
        None => None,
    };
    let writer = Writer::start(storage, shard, config, resume, newest, report.next_seq)?;
    Ok((writer, report))
}

/// With repair, refuse a cut that cannot be made: in an archived segment (read-only), or at or
/// before the snapshot recovery starts from (the snapshot could not be continued).
fn refuse_unrepairable<S: Storage>(
    storage: &S,
    shard: u16,
    c: &Corruption,
    reader: &JournalReader<S>,
    snapshot_seq: Option<Seq>,
) -> Result<(), JournalError> {
    if reader
        .segments()
        .get(c.segment_index)
        .is_some_and(|s| s.archived)
    {
        return Err(JournalError::Archive {
            file: c.file.clone(),
            why: format!("{c} (an archive is never cut: restore the live segment from a copy)"),
        });
    }
    match snapshot_seq {
        Some(s) if c.last_good_seq.is_none_or(|g| g < s) => Err(JournalError::Layout {
            shard,
            dir: storage.display_name(""),
            why: format!(
                "repair would cut the journal after sequence {} (at offset {} of {}: {}), before the snapshot at sequence {s} recovery starts from; move the snapshot aside and repair again",
                super::error::SeqOrNone(c.last_good_seq),
                c.offset,
                c.file,
                c.why
            ),
        }),
        _ => Ok(()),
    }
}

/// The header CRC of segment `name`, read from the file.
fn header_crc_of<S: Storage>(storage: &S, name: &str) -> Result<u32, JournalError> {
    let file = storage.display_name(name);
    let view = storage
        .open_view(name)
        .map_err(|e| JournalError::io("read", file.clone(), e))?;
    SegmentHeader::decode(&view).map_err(|why| JournalError::BadHeader { file, why })?;
    Ok(SegmentHeader::stored_crc(&view))
}

fn remove<S: Storage>(storage: &S, name: &str) -> Result<(), JournalError> {
    storage
        .remove(name)
        .map_err(|e| JournalError::io("remove", storage.display_name(name), e))
}

/// Zero `from..to` of segment `name` and sync it.
fn zero_range<S: Storage>(
    storage: &S,
    name: &str,
    from: usize,
    to: usize,
) -> Result<(), JournalError> {
    let file = storage.display_name(name);
    let mut seg = storage
        .open_segment(name, to)
        .map_err(|e| JournalError::io("open", file.clone(), e))?;
    let zeros = [0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len());
        seg.write_at(at, &zeros[..n])
            .map_err(|e| JournalError::io("truncate", file.clone(), e))?;
        at += n;
    }
    seg.sync_handle()
        .sync_range(from, to - from)
        .map_err(|e| JournalError::io("sync", file, e))
}

/// Cut the journal at a corruption: save the cut bytes, set later segments aside, zero the
/// rest of the corrupt segment. Returns the new end, the warning, and the names set aside.
fn repair<S: Storage>(
    storage: &S,
    segments: &[super::layout::SegmentEntry],
    c: &Corruption,
    prev_end: Option<EndPosition>,
) -> Result<(Option<EndPosition>, JournalWarning, Vec<String>), JournalError> {
    let idx = c.segment_index;
    let x = c.offset as usize;
    let mut dropped_bytes = 0u64;
    let mut saved_as = None;
    let first_aside = if x == 0 { idx } else { idx + 1 };
    if x > 0 {
        let file = storage.display_name(&c.name);
        let view = storage
            .open_view(&c.name)
            .map_err(|e| JournalError::io("read", file.clone(), e))?;
        let nz = last_nonzero_end(&view, x).unwrap_or(x);
        let cut = view[x..nz].to_vec();
        drop(view);
        if !cut.is_empty() {
            let name = dropped_bytes_name(&c.name, x as u64);
            storage
                .save(&name, &cut)
                .map_err(|e| JournalError::io("save", storage.display_name(&name), e))?;
            saved_as = Some(storage.display_name(&name));
            dropped_bytes += cut.len() as u64;
            zero_range(storage, &c.name, x, nz)?;
        }
    }
    let mut set_aside = Vec::new();
    let mut set_aside_shown = Vec::new();
    for s in segments.iter().skip(first_aside) {
        let file = storage.display_name(&s.name);
        let view = storage
            .open_view(&s.name)
            .map_err(|e| JournalError::io("read", file.clone(), e))?;
        dropped_bytes += last_nonzero_end(&view, 0).unwrap_or(0) as u64;
        drop(view);
        let to = dropped_segment_name(&s.name);
        storage
            .rename(&s.name, &to)
            .map_err(|e| JournalError::io("rename", file, e))?;
        set_aside.push(s.name.clone());
        set_aside_shown.push(storage.display_name(&to));
    }
    let end = if x > 0 {
        segments.get(idx).map(|s| EndPosition {
            segment_index: idx,
            name: s.name.clone(),
            first_seq: s.first_seq,
            offset: x,
        })
    } else {
        prev_end
    };
    let warning = JournalWarning::Repaired {
        file: c.file.clone(),
        offset: c.offset,
        last_good_seq: c.last_good_seq,
        dropped_records: c.following.as_ref().map_or(0, |f| f.records),
        dropped_bytes,
        saved_as,
        set_aside: set_aside_shown,
    };
    Ok((end, warning, set_aside))
}

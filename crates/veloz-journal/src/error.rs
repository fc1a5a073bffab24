//! The journal's error enum and its warnings. Every message names the file, the offset and
//! the sequence number involved, so an operator can find the bytes with `xxd -s OFFSET FILE`.

use std::fmt;
use std::io;

use veloz_core::Seq;

use super::config::JournalConfigError;
use super::format::HeaderError;
use super::payload::PayloadError;

/// Shows an optional sequence number; `none` when there is none (an empty journal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqOrNone(pub Option<Seq>);

impl fmt::Display for SeqOrNone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s}"),
            None => write!(f, "none"),
        }
    }
}

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error: cannot {op} {file}: {source}")]
    Io {
        op: &'static str,
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("journal write failed in {file} at offset {offset} (seq {seq}): {source}")]
    Write {
        file: String,
        offset: u64,
        seq: Seq,
        #[source]
        source: io::Error,
    },
    #[error(
        "journal sync failed for {file} (nothing after seq {durable_seq} is durable): {source}"
    )]
    Sync {
        file: String,
        durable_seq: Seq,
        #[source]
        source: io::Error,
    },
    #[error("journal writer stopped after an earlier failure: {0}")]
    Poisoned(String),
    /// The journal cannot take a record now (a segment could not be reserved, a write or a
    /// sync failed); nothing was written for this append, and the journal retries by itself
    /// (`docs/operations.md`, "Journal unavailable"). Appends succeed again once it recovers.
    #[error("journal of shard {shard} unavailable (next seq {next_seq}): {why}")]
    Unavailable {
        shard: u16,
        /// The sequence number the refused record would have taken (and the next one will).
        next_seq: Seq,
        why: String,
    },
    #[error(
        "journal cannot prepare {file} at offset {offset} ahead of the writer (is the disk full?): {source}"
    )]
    Prepare {
        file: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("bad segment header in {file} at offset 0: {why}")]
    BadHeader { file: String, why: HeaderError },
    #[error("{file}: segment belongs to shard {found}, this is the journal of shard {expected}")]
    WrongShard {
        file: String,
        expected: u16,
        found: u16,
    },
    #[error("{file}: the file name says first seq {named} but the header says {header}")]
    NameMismatch {
        file: String,
        named: Seq,
        header: Seq,
    },
    #[error("{0}")]
    Corrupt(Box<Corruption>),
    #[error("bad payload in {file} at offset {offset} (seq {seq}): {source}")]
    Payload {
        file: String,
        offset: u64,
        seq: Seq,
        #[source]
        source: PayloadError,
    },
    #[error("shard {shard}: a replicated record cannot be appended as sequence {expected}: {why}")]
    BadReplicated {
        shard: u16,
        expected: Seq,
        why: String,
    },
    #[error("record payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("bad chain head {file}: {why}; refusing to open without repair")]
    BadChainHead { file: String, why: String },
    #[error("{0}")]
    Chain(Box<ChainBreak>),
    /// An archived segment (`{first_seq:020}.vlj.zst`) that does not decompress, or does not
    /// match the live segment it was made from. Never repaired: archives are read-only.
    #[error("archived segment {file}: {why}")]
    Archive { file: String, why: String },
    /// Recovery from a snapshot cannot start: the segment holding the first sequence after it
    /// is neither live nor archived. Not repairable by cutting (nothing after it can be
    /// applied to the snapshot).
    #[error("shard {shard}: no segment holds sequence {first_needed}, the first after the snapshot at sequence {snapshot_seq}: {why}; refusing to open (restore the segment, or move the snapshot aside to replay the journal from its start)")]
    MissingAfterSnapshot {
        shard: u16,
        snapshot_seq: Seq,
        first_needed: Seq,
        why: String,
    },
    #[error("journal of shard {shard} in {dir}: {why}")]
    Layout {
        shard: u16,
        dir: String,
        why: String,
    },
    #[error(transparent)]
    Config(#[from] JournalConfigError),
}

impl JournalError {
    pub(crate) fn io(op: &'static str, file: String, source: io::Error) -> JournalError {
        JournalError::Io { op, file, source }
    }

    /// Whether this is the transient "journal unavailable" state (an append refused, the
    /// journal retrying), not a failure that stops the writer.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JournalError::Unavailable { .. })
    }

    /// The break at the end of the chain, if this is one.
    pub fn chain_break(&self) -> Option<&ChainBreak> {
        match self {
            JournalError::Chain(c) => Some(c),
            _ => None,
        }
    }

    /// The corruption, if this is one.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            JournalError::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

/// The journal does not end where its chain head says (`docs/journal-format.md`, "End of the
/// chain"): segments at its end are missing, or the head itself is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainBreak {
    /// The newest segment the head names (or the one activated from the spare it announces)
    /// is not there.
    MissingSegment {
        shard: u16,
        /// Its file name.
        name: String,
        first_seq: Seq,
        /// It would have been activated from the announced spare.
        from_spare: bool,
        /// The last sequence number the journal holds.
        journal_end: Option<Seq>,
    },
    /// The segment the head names is there, but it is another file than the one named.
    NotNamed {
        shard: u16,
        name: String,
        found_crc: u32,
        head_crc: u32,
        journal_end: Option<Seq>,
    },
    /// There is no chain head, but a segment of version 2 or later: the head was lost.
    HeadMissing {
        shard: u16,
        file: String,
        /// The first segment of version 2 or later.
        segment: String,
        journal_end: Option<Seq>,
    },
}

impl ChainBreak {
    /// What is wrong, without the refusal (also what a repair reports it accepted).
    pub fn what(&self) -> String {
        match self {
            ChainBreak::MissingSegment {
                name,
                first_seq,
                from_spare: false,
                ..
            } => format!("segment {name} (first sequence {first_seq}) named by the chain head is missing"),
            ChainBreak::MissingSegment {
                name, first_seq, ..
            } => format!(
                "segment {name} (first sequence {first_seq}), activated from the spare the chain head announces, is missing"
            ),
            ChainBreak::NotNamed {
                name,
                found_crc,
                head_crc,
                ..
            } => format!(
                "segment {name} is not the one the chain head names (its header CRC is {found_crc:#010x}, the chain head records {head_crc:#010x})"
            ),
            ChainBreak::HeadMissing { file, segment, .. } => format!(
                "the chain head {file} is missing, but {segment} is of format version 2 or later"
            ),
        }
    }

    pub fn shard(&self) -> u16 {
        match self {
            ChainBreak::MissingSegment { shard, .. }
            | ChainBreak::NotNamed { shard, .. }
            | ChainBreak::HeadMissing { shard, .. } => *shard,
        }
    }

    /// The last sequence number of the journal as found.
    pub fn journal_end(&self) -> Option<Seq> {
        match self {
            ChainBreak::MissingSegment { journal_end, .. }
            | ChainBreak::NotNamed { journal_end, .. }
            | ChainBreak::HeadMissing { journal_end, .. } => *journal_end,
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard {}: {}: the journal ends at sequence {}; refusing to open without repair",
            self.shard(),
            self.what(),
            SeqOrNone(self.journal_end())
        )
    }
}

/// Valid records found after a corruption: the proof that it is not a torn write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Following {
    /// How many valid records could be read after the corruption (all files together).
    pub records: u64,
    /// The first of them.
    pub first_seq: Seq,
    pub file: String,
    pub offset: u64,
}

/// Where and why a journal is corrupt (see `docs/journal-format.md`, "Reading and recovery").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The file, as shown (full path).
    pub file: String,
    /// The file's name in the shard directory.
    pub name: String,
    /// Index of the file among the journal's segments, oldest first.
    pub segment_index: usize,
    /// Offset of the first byte that is not part of a valid record (0: the whole file).
    pub offset: u64,
    /// The last valid record before the corruption.
    pub last_good_seq: Option<Seq>,
    pub why: String,
    pub following: Option<Following>,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt journal {} at offset {} after seq {}: {}",
            self.file,
            self.offset,
            SeqOrNone(self.last_good_seq),
            self.why
        )?;
        if let Some(n) = &self.following {
            write!(
                f,
                "; valid records follow ({} records, first seq {} in {} at offset {})",
                n.records, n.first_seq, n.file, n.offset
            )?;
        }
        write!(f, ": refusing to open without repair")
    }
}

/// Something the journal did or found that an operator must hear about. Returned as values
/// (in a recovery report or from a reader) and printed by the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalWarning {
    /// A partial record at the end of the last segment.
    TornTail {
        file: String,
        offset: u64,
        last_good_seq: Option<Seq>,
        bytes: u64,
        /// Recovery zeroed the bytes; a read-only reader left them.
        truncated: bool,
    },
    /// The last segment file has an all-zero header and holds nothing.
    BlankSegment { file: String, removed: bool },
    /// The prepared spare had been activated (it has a header) but not yet renamed.
    SpareActivated { from: String, to: String },
    /// The prepared spare has a partly written header and holds nothing.
    TornSpareHeader { file: String, removed: bool },
    /// A journal without a chain head whose segments are all of version 1.
    LegacyJournal {
        /// The journal directory, as shown.
        dir: String,
        /// Recovery wrote a chain head; a read-only reader did not.
        head_written: bool,
    },
    /// The chain head names an older newest segment than the journal has (nothing is missing).
    HeadBehind {
        file: String,
        named_first_seq: Option<Seq>,
        newest: String,
        /// Recovery rewrote the head.
        rewritten: bool,
    },
    /// Repair accepted the journal's end as found and rewrote the chain head.
    ChainRepaired {
        shard: u16,
        /// What was wrong ([`ChainBreak::what`], or the bad head).
        what: String,
        last_seq: Option<Seq>,
    },
    /// Repair cut the journal at a corruption.
    Repaired {
        file: String,
        offset: u64,
        last_good_seq: Option<Seq>,
        dropped_records: u64,
        dropped_bytes: u64,
        /// Where the cut bytes were saved, if any.
        saved_as: Option<String>,
        /// Later segment files renamed to `*.dropped`.
        set_aside: Vec<String>,
    },
}

impl fmt::Display for JournalWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalWarning::TornTail {
                file,
                offset,
                last_good_seq,
                bytes,
                truncated,
            } => {
                write!(
                    f,
                    "torn tail in {file} at offset {offset}: {bytes} bytes after last good seq {} ",
                    SeqOrNone(*last_good_seq)
                )?;
                if *truncated {
                    write!(f, "truncated")
                } else {
                    write!(f, "ignored (recovery will truncate them)")
                }
            }
            JournalWarning::BlankSegment { file, removed } => {
                write!(f, "segment {file} has no header and holds nothing")?;
                if *removed {
                    write!(f, ": removed")
                } else {
                    write!(f, ": ignored")
                }
            }
            JournalWarning::SpareActivated { from, to } => {
                write!(f, "activated segment {from} renamed to {to}")
            }
            JournalWarning::TornSpareHeader { file, removed } => {
                write!(
                    f,
                    "spare segment {file} has a partly written header and holds nothing"
                )?;
                if *removed {
                    write!(f, ": removed")
                } else {
                    write!(f, ": ignored")
                }
            }
            JournalWarning::LegacyJournal { dir, head_written } => {
                write!(
                    f,
                    "journal {dir} has no chain head (written by format version 1): its end cannot be checked; accepted as a legacy journal"
                )?;
                if *head_written {
                    write!(f, ", chain head written")
                } else {
                    write!(f, " (recovery will write a chain head)")
                }
            }
            JournalWarning::HeadBehind {
                file,
                named_first_seq,
                newest,
                rewritten,
            } => {
                write!(
                    f,
                    "chain head {file} names the segment of first sequence {} as the newest, but the journal goes on to {newest}",
                    SeqOrNone(*named_first_seq)
                )?;
                if *rewritten {
                    write!(f, ": chain head rewritten")
                } else {
                    write!(f, ": ignored (recovery will rewrite the chain head)")
                }
            }
            JournalWarning::ChainRepaired {
                shard,
                what,
                last_seq,
            } => write!(
                f,
                "repaired the chain of shard {shard}: {what}; accepted the journal ending at sequence {} and rewrote the chain head",
                SeqOrNone(*last_seq)
            ),
            JournalWarning::Repaired {
                file,
                offset,
                last_good_seq,
                dropped_records,
                dropped_bytes,
                saved_as,
                set_aside,
            } => {
                write!(
                    f,
                    "repaired {file}: truncated at offset {offset} after seq {}, dropped {dropped_records} records ({dropped_bytes} bytes)",
                    SeqOrNone(*last_good_seq)
                )?;
                if let Some(s) = saved_as {
                    write!(f, ", cut bytes saved to {s}")?;
                }
                write!(f, ", set aside {} later segment file(s)", set_aside.len())
            }
        }
    }
}

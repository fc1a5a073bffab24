//! Offline rebuild and audit of a data directory: what `veloz replay` and `veloz journal`
//! run, without an engine process and without writing anything.
//!
//! Rebuilding a shard is the recovery path itself: the journal's records, read with the
//! same verifying [`JournalReader`] recovery uses, go through
//! [`veloz_journal::replay::apply_record`] into a fresh [`Engine`] built from the same
//! instruments and routing. So the state hash printed here is the one the engine would
//! recover to, and a checkpoint record whose hash differs stops the replay with an error.
//!
//! The routing record (`DATA/routing.json`) says which shard owns which instrument; the
//! configuration supplies the instruments' rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use veloz_config::routing::{Routing, ROUTING_FILE};
use veloz_config::Config;
use veloz_core::{Engine, Event, LevelView, Seq, Side, SymbolId};
use veloz_engine::{ShutdownMarker, SHUTDOWN_MARKER};
use veloz_journal::replay::{apply_record, RecoverError};
use veloz_journal::{JournalError, JournalReader, MmapStorage, Record, RecordBody};

/// Audit failures, each naming the file, shard or sequence.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {detail} (is this a Veloz data directory?)")]
    Routing { path: String, detail: String },
    #[error("shard {shard} is not in this data directory (it has shards 0..{shards})")]
    NoSuchShard { shard: usize, shards: usize },
    #[error("cannot open {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("shard {shard}: {source}")]
    Journal { shard: usize, source: JournalError },
    #[error("shard {shard}: {source}")]
    Recover { shard: usize, source: RecoverError },
}

/// What to rebuild.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Only this shard (default: all of the routing record).
    pub shard: Option<usize>,
    /// Stop after the record with this sequence number.
    pub until: Option<Seq>,
}

/// Per-instrument figures of a rebuilt shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SymbolStats {
    pub symbol: String,
    pub commands: u64,
    pub trades: u64,
    /// Up to 5 levels, best first: (price, quantity, orders).
    pub bids: Vec<(i64, u64, u32)>,
    pub asks: Vec<(i64, u64, u32)>,
}

/// A rebuilt shard.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShardReplay {
    pub shard: usize,
    pub records: u64,
    pub commands: u64,
    pub trades: u64,
    pub last_seq: Seq,
    /// Hex.
    pub state_hash: String,
    #[serde(skip)]
    pub hash: u64,
    /// The last checkpoint record met: (sequence, hash hex).
    pub last_checkpoint: Option<(Seq, String)>,
    pub symbols: BTreeMap<SymbolId, SymbolStats>,
    pub warnings: Vec<String>,
}

/// Read the routing record of `data`.
pub fn routing(data: &Path) -> Result<Routing, AuditError> {
    let path = data.join(ROUTING_FILE);
    let err = |detail: String| AuditError::Routing {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// The engine of `shard` as the runtime builds it: that shard's instruments.
pub fn engine_for(config: &Config, routing: &Routing, shard: usize) -> Engine {
    let instruments: Vec<_> = config
        .instruments()
        .into_iter()
        .filter(|i| routing.shard_of(i.id) == Some(shard))
        .collect();
    Engine::new(shard as u16, &instruments)
}

/// Shards to visit for `options`.
fn shards(routing: &Routing, options: &ReplayOptions) -> Result<Vec<usize>, AuditError> {
    match options.shard {
        Some(s) if s >= routing.shards => Err(AuditError::NoSuchShard {
            shard: s,
            shards: routing.shards,
        }),
        Some(s) => Ok(vec![s]),
        None => Ok((0..routing.shards).collect()),
    }
}

fn reader(data: &Path, shard: usize) -> Result<JournalReader<MmapStorage>, AuditError> {
    let dir = veloz_journal::shard_dir(data, shard as u16);
    if !dir.is_dir() {
        // MmapStorage would create it; an audit writes nothing.
        return Err(AuditError::Dir {
            dir: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no journal directory"),
        });
    }
    let storage = MmapStorage::new(&dir).map_err(|source| AuditError::Dir {
        dir: dir.display().to_string(),
        source,
    })?;
    JournalReader::open(storage, shard as u16)
        .map_err(|source| AuditError::Journal { shard, source })
}

/// Visit every record of `shard` up to `until`, in order.
pub fn for_each_record(
    data: &Path,
    shard: usize,
    until: Option<Seq>,
    mut visit: impl FnMut(&Record) -> Result<(), AuditError>,
) -> Result<Vec<String>, AuditError> {
    let mut r = reader(data, shard)?;
    while let Some(rec) = r
        .next_record()
        .map_err(|source| AuditError::Journal { shard, source })?
    {
        if until.is_some_and(|u| rec.seq > u) {
            break;
        }
        visit(&rec)?;
    }
    Ok(r.warnings().iter().map(|w| w.to_string()).collect())
}

/// Rebuild each selected shard; `progress` is told the records done per shard.
pub fn replay(
    data: &Path,
    config: &Config,
    options: &ReplayOptions,
    mut progress: impl FnMut(usize, u64),
) -> Result<Vec<ShardReplay>, AuditError> {
    let routing = routing(data)?;
    let mut out = Vec::new();
    for shard in shards(&routing, options)? {
        let mut engine = engine_for(config, &routing, shard);
        let mut scratch: Vec<Event> = Vec::with_capacity(64);
        let mut result = ShardReplay {
            shard,
            records: 0,
            commands: 0,
            trades: 0,
            last_seq: 0,
            state_hash: String::new(),
            hash: 0,
            last_checkpoint: None,
            symbols: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let warnings = for_each_record(data, shard, options.until, |rec| {
            apply_record(&mut engine, rec, &mut scratch)
                .map_err(|source| AuditError::Recover { shard, source })?;
            result.records += 1;
            result.last_seq = rec.seq;
            match rec.body {
                RecordBody::Command(cmd) => {
                    result.commands += 1;
                    let trades = scratch
                        .iter()
                        .filter(|e| matches!(e, Event::Trade { .. }))
                        .count() as u64;
                    result.trades += trades;
                    if let Some(symbol) = cmd.symbol() {
                        let s = result.symbols.entry(symbol).or_default();
                        s.commands += 1;
                        s.trades += trades;
                    }
                }
                RecordBody::Checkpoint(c) => {
                    result.last_checkpoint = Some((rec.seq, format!("{:016x}", c.state_hash)));
                }
            }
            if result.records.is_multiple_of(65_536) {
                progress(shard, result.records);
            }
            Ok(())
        })?;
        progress(shard, result.records);
        result.warnings = warnings;
        result.hash = engine.state_hash();
        result.state_hash = format!("{:016x}", result.hash);
        for inst in engine.instruments().cloned().collect::<Vec<_>>() {
            let levels = |side| -> Vec<(i64, u64, u32)> {
                engine
                    .depth(inst.id, side, 5)
                    .into_iter()
                    .map(|l: LevelView| (l.price, l.qty, l.orders))
                    .collect()
            };
            let s = result.symbols.entry(inst.id).or_default();
            s.symbol = inst.symbol.clone();
            s.bids = levels(Side::Buy);
            s.asks = levels(Side::Sell);
        }
        out.push(result);
    }
    Ok(out)
}

/// The outcome of `--verify` for one shard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    /// Matches the reference (what it was compared with).
    Match(String),
    Mismatch {
        expected: String,
        found: String,
        against: String,
    },
    /// Nothing to compare with.
    NoReference(String),
}

/// Compare a rebuilt shard with the clean-shutdown marker of `data`, or, with `until`, with
/// a checkpoint record at exactly that sequence (replay already checked every checkpoint it
/// met; this says whether the end state has a reference at all).
pub fn verify(data: &Path, r: &ShardReplay, until: Option<Seq>) -> Verdict {
    if let Some(u) = until {
        return match &r.last_checkpoint {
            Some((seq, hash)) if *seq == u => {
                Verdict::Match(format!("checkpoint at sequence {u} ({hash})"))
            }
            _ => Verdict::NoReference(format!("no checkpoint record at sequence {u}")),
        };
    }
    let marker_path: PathBuf = data.join(SHUTDOWN_MARKER);
    let Some(marker) = ShutdownMarker::read(data) else {
        return Verdict::NoReference(format!(
            "no clean-shutdown marker {} (engine running, or it crashed)",
            marker_path.display()
        ));
    };
    let Some(m) = marker.shards.iter().find(|m| m.shard == r.shard) else {
        return Verdict::NoReference(format!(
            "{} has no entry for shard {}",
            marker_path.display(),
            r.shard
        ));
    };
    let against = format!(
        "clean shutdown at sequence {} ({})",
        m.last_seq,
        marker_path.display()
    );
    if m.state_hash == r.state_hash && m.last_seq == r.last_seq {
        Verdict::Match(against)
    } else {
        Verdict::Mismatch {
            expected: format!("sequence {} hash {}", m.last_seq, m.state_hash),
            found: format!("sequence {} hash {}", r.last_seq, r.state_hash),
            against,
        }
    }
}

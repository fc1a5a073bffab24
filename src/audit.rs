//! Offline rebuild and audit of a data directory: what `veloz replay` and `veloz journal`
//! run, without an engine process and without writing anything.
//!
//! Rebuilding a shard is the recovery path itself: the journal's records, read with the
//! same verifying [`JournalReader`] recovery uses, go through
//! [`veloz_journal::replay::apply_record`] (in recovery's warmed batches,
//! [`veloz_journal::replay::Batched`]) into a fresh [`Engine`] built from the same
//! instruments and routing. So the state hash printed here is the one the engine would
//! recover to, and a checkpoint record whose hash differs stops the replay with an error.
//!
//! The routing record (`DATA/routing.json`) says which shard owns which instrument; the
//! configuration supplies the instruments' rules.
//!
//! Snapshots (`docs/journal-format.md`, "Snapshots"): by default the replay starts from the
//! first record and, on the way, compares the state at each snapshot's sequence with the hash
//! the snapshot records (a difference is a mismatch, as for a checkpoint). With
//! [`ReplayOptions::from_snapshot`] it starts from the newest valid snapshot instead (as
//! recovery does) and reads the journal from the segment holding the record after it.
//!
//! Archived segments (`shard-N/{first_seq:020}.vlj.zst`, written by retention,
//! `veloz_journal::archive`) are read like live ones: a replay from the first record
//! decompresses them one at a time, in order, then reads the live segments, checking every
//! record and the chain across both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use veloz_config::routing::{Routing, ROUTING_FILE};
use veloz_config::Config;
use veloz_core::{AccountId, AssetId, Engine, Event, LevelView, Seq, Side, SymbolId};
use veloz_engine::{ShutdownMarker, SHUTDOWN_MARKER};
use veloz_journal::replay::{Batched, RecoverError, Step};
use veloz_journal::{snapshot, JournalError, JournalReader, MmapStorage, Record, RecordBody};

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
    /// Start from the newest valid snapshot (at most `until`) instead of the first record.
    pub from_snapshot: bool,
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
    /// The snapshot the replay started from: (sequence, file).
    pub snapshot: Option<(Seq, String)>,
    /// Snapshots whose recorded hash was compared with the replayed state, one line each.
    pub snapshots_checked: Vec<String>,
    /// A snapshot's recorded hash differs from the replayed state at its sequence.
    pub snapshot_mismatch: bool,
    /// With money on: the shard's slice of the balances at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub money: Option<ShardMoney>,
}

/// A rebuilt shard's money (smallest units of each asset, assets ascending by id).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShardMoney {
    /// Per asset: the sum of every balance here (its deposits less its withdrawals).
    pub supply: Vec<AssetAmount>,
    /// Every account with balances here, ascending.
    pub accounts: Vec<AccountMoney>,
}

/// An amount of one asset.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AssetAmount {
    pub asset: String,
    pub id: AssetId,
    pub amount: u64,
}

/// One account's balances on a shard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountMoney {
    pub account: AccountId,
    /// (asset name, id, available, held).
    pub balances: Vec<(String, AssetId, u64, u64)>,
}

impl ShardMoney {
    /// The money of `engine`, `None` without money rules.
    pub fn of(engine: &Engine) -> Option<ShardMoney> {
        let risk = engine.risk()?;
        let name = |id: AssetId| {
            (risk.assets.iter().find(|a| a.id == id)).map_or(String::new(), |a| a.name.clone())
        };
        Some(ShardMoney {
            supply: (engine.supply().into_iter())
                .map(|(id, amount)| AssetAmount {
                    asset: name(id),
                    id,
                    amount,
                })
                .collect(),
            accounts: (engine.funded_accounts().into_iter())
                .map(|account| AccountMoney {
                    account,
                    balances: (engine.balances(account).into_iter())
                        .map(|(id, b)| (name(id), id, b.available, b.held))
                        .collect(),
                })
                .collect(),
        })
    }
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

/// The engine of `shard` as the runtime builds it ([`Config::shard_engine`]): that shard's
/// instruments, and the money rules when money is on.
pub fn engine_for(config: &Config, routing: &Routing, shard: usize) -> Engine {
    config.shard_engine(routing, shard)
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
    let storage = shard_storage(data, shard)?;
    JournalReader::open(storage, shard as u16)
        .map_err(|source| AuditError::Journal { shard, source })
}

/// The existing directory of `shard`'s journal (never created: an audit writes nothing).
pub fn shard_storage(data: &Path, shard: usize) -> Result<MmapStorage, AuditError> {
    let dir = veloz_journal::shard_dir(data, shard as u16);
    if !dir.is_dir() {
        // MmapStorage would create it; an audit writes nothing.
        return Err(AuditError::Dir {
            dir: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no journal directory"),
        });
    }
    MmapStorage::new(&dir).map_err(|source| AuditError::Dir {
        dir: dir.display().to_string(),
        source,
    })
}

/// A snapshot to compare with the replayed state: (sequence, file, recorded hash).
type PendingSnapshot = (Seq, String, u64);

/// The snapshots of `shard` after sequence `after`, ascending; undecodable ones as warnings.
fn pending_snapshots(
    storage: &MmapStorage,
    shard: usize,
    after: Seq,
    warnings: &mut Vec<String>,
) -> Vec<PendingSnapshot> {
    use veloz_journal::Storage;
    let mut out = Vec::new();
    for seq in snapshot::list_snapshots(storage).unwrap_or_default() {
        if seq <= after {
            continue;
        }
        let name = snapshot::snapshot_name(seq);
        let file = storage.display_name(&name);
        let header = storage
            .open_view(&name)
            .map_err(|e| e.to_string())
            .and_then(|v| snapshot::decode_header(&v, shard as u16));
        match header {
            Ok(h) => out.push((seq, file, h.state_hash)),
            Err(why) => warnings.push(format!("skipped snapshot {file}: {why}")),
        }
    }
    out.sort_by_key(|p| p.0);
    out
}

/// Compare the state (after every record before `before`) with each pending snapshot whose
/// sequence is below `before`.
fn check_snapshots(
    engine: &Engine,
    pending: &mut Vec<PendingSnapshot>,
    before: Seq,
    result: &mut ShardReplay,
) {
    while pending.first().is_some_and(|p| p.0 < before) {
        let (seq, file, recorded) = pending.remove(0);
        let replayed = engine.state_hash();
        if replayed == recorded {
            result.snapshots_checked.push(format!(
                "snapshot {file} at sequence {seq}: hash {recorded:016x} matches"
            ));
        } else {
            result.snapshot_mismatch = true;
            result.snapshots_checked.push(format!(
                "snapshot {file} at sequence {seq}: MISMATCH: records {recorded:016x}, replay gives {replayed:016x}"
            ));
        }
    }
}

/// Visit every record of `shard` up to `until`, in order.
pub fn for_each_record(
    data: &Path,
    shard: usize,
    until: Option<Seq>,
    visit: impl FnMut(&Record) -> Result<(), AuditError>,
) -> Result<Vec<String>, AuditError> {
    for_each_record_after(data, shard, 0, until, visit).map(|(w, _)| w)
}

/// Visit the records of `shard` after sequence `after` up to `until`, in order, reading from
/// the segment that holds `after + 1` (no earlier segment is opened; one must hold it).
/// Returns the reader's warnings and the last sequence it read (records up to `after`
/// included, read but not visited).
pub fn for_each_record_after(
    data: &Path,
    shard: usize,
    after: Seq,
    until: Option<Seq>,
    mut visit: impl FnMut(&Record) -> Result<(), AuditError>,
) -> Result<(Vec<String>, Option<Seq>), AuditError> {
    let mut r = reader(data, shard)?;
    if after > 0 {
        r.seek_after_snapshot(after)
            .map_err(|source| AuditError::Journal { shard, source })?;
    }
    while let Some(rec) = r
        .next_record()
        .map_err(|source| AuditError::Journal { shard, source })?
    {
        if until.is_some_and(|u| rec.seq > u) {
            break;
        }
        visit(&rec)?;
    }
    let warnings = r.warnings().iter().map(|w| w.to_string()).collect();
    Ok((warnings, r.last_seq()))
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
        out.push(replay_shard(data, config, &routing, shard, options, &mut progress)?.0);
    }
    Ok(out)
}

/// Rebuild one shard; returns the figures and the rebuilt engine.
pub fn replay_shard(
    data: &Path,
    config: &Config,
    routing: &Routing,
    shard: usize,
    options: &ReplayOptions,
    mut progress: impl FnMut(usize, u64),
) -> Result<(ShardReplay, Engine), AuditError> {
    let mut engine = engine_for(config, routing, shard);
    let storage = shard_storage(data, shard)?;
    let mut early_warnings = Vec::new();
    let mut from = 0;
    let mut started = None;
    if options.from_snapshot {
        let (loaded, skipped) =
            snapshot::load_newest(&storage, shard as u16, &engine, options.until);
        early_warnings.extend(skipped.iter().map(|w| w.to_string()));
        if let Some(l) = loaded {
            engine = l.engine;
            from = l.header.seq;
            started = Some((from, l.file));
        }
    }
    let mut pending = pending_snapshots(&storage, shard, from, &mut early_warnings);
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
        snapshot: started,
        snapshots_checked: Vec::new(),
        snapshot_mismatch: false,
        money: None,
    };
    result.last_seq = from;
    // Applied in warmed batches (`Batched`: the same states as one by one, faster on large
    // books); the hook sees each record as it is applied.
    let mut batched = Batched::new();
    let mut skipped_to = None;
    let mut hook = |step: Step<'_>| -> Result<(), AuditError> {
        match step {
            Step::Before { engine, rec } => {
                check_snapshots(engine, &mut pending, rec.seq, &mut result);
            }
            Step::After { rec, events } => {
                result.records += 1;
                result.last_seq = rec.seq;
                match rec.body {
                    RecordBody::Command(cmd) => {
                        result.commands += 1;
                        let trades = events
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
            }
        }
        Ok(())
    };
    let lift = |source| AuditError::Recover { shard, source };
    let (warnings, journal_last) =
        for_each_record_after(data, shard, from, options.until, |rec| {
            if rec.seq <= from {
                skipped_to = Some(rec.seq);
                return Ok(());
            }
            batched.push_with(&mut engine, rec, &mut hook, lift)
        })?;
    batched.flush_with(&mut engine, &mut hook, lift)?;
    if result.records == 0 {
        if let Some(seq) = skipped_to {
            result.last_seq = seq;
        }
    }
    progress(shard, result.records);
    if let Some((seq, file)) = &result.snapshot {
        let last_seq = journal_last.unwrap_or(0);
        if last_seq < *seq {
            let source = RecoverError::SnapshotBeyondJournal {
                file: file.clone(),
                seq: *seq,
                last_seq,
            };
            return Err(AuditError::Recover { shard, source });
        }
    }
    check_snapshots(&engine, &mut pending, result.last_seq + 1, &mut result);
    early_warnings.extend(warnings);
    result.warnings = early_warnings;
    result.hash = engine.state_hash();
    result.state_hash = format!("{:016x}", result.hash);
    result.money = ShardMoney::of(&engine);
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
    Ok((result, engine))
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

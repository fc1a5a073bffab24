//! A Veloz data directory written offline, without an engine: the routing record, shard 0's
//! journal (the given commands, then a clean-shutdown checkpoint, as a clean stop writes them)
//! and, as asked, the clean-shutdown marker. For tests of the offline tools (`veloz journal`,
//! `veloz replay`, `scripts/replay.sh`) that need no engine process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use veloz::audit;
use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::Command;
use veloz_engine::{MarkerShard, ShutdownMarker, SHUTDOWN_MARKER};
use veloz_journal::{
    Checkpoint, CheckpointReason, Durability, JournalConfig, MmapStorage, OpenOptions,
};

/// What to leave as `shutdown.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// None: the engine is running or crashed; nothing to verify against.
    Absent,
    /// The journal's true last sequence and state hash.
    Clean,
    /// The true last sequence with another state hash: verification must fail.
    WrongHash,
}

/// Write `dir/data` for `config` (one shard) holding `commands`; returns the data directory.
pub fn write(dir: &Path, config: &Config, commands: &[Command], marker: Marker) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let routing = Routing::from_config(config, 1).unwrap();
    routing.check_and_record(&data).unwrap();
    let storage = MmapStorage::for_shard(&data, 0).unwrap();
    let journal = JournalConfig {
        segment_size: 1 << 20,
        durability: Durability::None,
        ..JournalConfig::default()
    };
    let (mut w, _) = veloz_journal::open(storage, 0, &journal, OpenOptions::default()).unwrap();
    let mut engine = audit::engine_for(config, &routing, 0);
    let mut events = Vec::new();
    for cmd in commands {
        let seq = w.next_seq();
        let ts = 1_700_000_000_000_000_000 + seq * 1_000;
        w.append_command(ts, cmd).unwrap();
        events.clear();
        engine.apply(seq, ts, cmd, &mut events);
    }
    let hash = engine.state_hash();
    let last = w.next_seq();
    w.append_checkpoint(
        1_700_000_000_000_000_000 + last * 1_000,
        &Checkpoint {
            state_hash: hash,
            reason: CheckpointReason::CleanShutdown,
        },
    )
    .unwrap();
    w.close().unwrap();
    let recorded = match marker {
        Marker::Absent => return data,
        Marker::Clean => hash,
        Marker::WrongHash => hash ^ 1,
    };
    let m = ShutdownMarker {
        shards: vec![MarkerShard {
            shard: 0,
            last_seq: last,
            state_hash: format!("{recorded:016x}"),
        }],
    };
    std::fs::write(
        data.join(SHUTDOWN_MARKER),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    data
}

//! Build a data directory for the restart-time figures (docs/BENCHMARKS.md, "Restart time"):
//! one shard owning every instrument of `CONFIG`, `RESTING` resting limit orders, a snapshot
//! at that point, then `TAIL` journal records after it (a new resting order and the cancel of
//! the oldest one, alternately, so the books stay at `RESTING` orders). The journal is written
//! with the journal's own `Writer` and the engine applies every command as it goes, so the
//! snapshot and the journal are exactly what a running shard would have left.
//!
//! ```text
//! cargo run --release -p veloz-engine --example restart_data -- CONFIG RESTING TAIL
//! ```
//! `CONFIG` must give `[engine] cores` one core (one shard) and `data_dir` the directory to
//! fill (it must not hold a journal yet). Fixed arithmetic stream, no randomness: the same
//! arguments give the same bytes.

use std::path::Path;
use std::time::Instant;

use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::Command;
use veloz_journal::{snapshot, Durability, MmapStorage, OpenOptions};

#[path = "common/stream.rs"]
mod stream;
use stream::RestartStream;

/// Timestamps: 2026-11-30T00:00:00Z plus one microsecond per record.
const TS0: u64 = 1_796_083_200_000_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: restart_data CONFIG RESTING TAIL".into());
    }
    let config = Config::load(Path::new(&args[1]))?;
    let resting: u64 = args[2].parse()?;
    let tail: u64 = args[3].parse()?;
    let data = config.engine.data_dir.clone();
    std::fs::create_dir_all(&data)?;
    let routing = Routing::from_config(&config, 1)?;
    routing.check_and_record(&data)?;
    // Built as the engine builds it, so a restart replays to the same state.
    let mut engine = config.shard_engine(&routing, 0);
    let storage = MmapStorage::for_shard(&data, 0)?;
    let journal = config.journal.clone().with_durability(Durability::None);
    let (mut writer, report) =
        veloz_journal::open(storage.clone(), 0, &journal, OpenOptions::default())?;
    if report.last_seq.is_some() {
        return Err(format!("{} already holds a journal", data.display()).into());
    }
    let mut events = Vec::new();
    let mut stream = RestartStream::new(engine.instruments().cloned().collect());
    let began = Instant::now();
    let mut append = |writer: &mut veloz_journal::Writer<MmapStorage>,
                      engine: &mut veloz_core::Engine,
                      cmd: Command| {
        let seq = writer.next_seq();
        let ts = TS0 + seq * 1_000;
        writer.append_command(ts, &cmd).expect("append");
        engine.apply(seq, ts, &cmd, &mut events);
    };
    for _ in 0..resting {
        append(&mut writer, &mut engine, stream.resting());
    }
    // durability "none": everything written is as durable as the snapshot needs here.
    let snap_seq = writer.next_seq() - 1;
    let mut file = Vec::new();
    snapshot::encode(&engine, snap_seq, &mut file);
    snapshot::write(&storage, snap_seq, &file)?;
    eprintln!(
        "{} resting orders, snapshot at sequence {snap_seq} ({} bytes) after {:.1} s",
        engine.resting_orders(),
        file.len(),
        began.elapsed().as_secs_f64()
    );
    for _ in 0..tail {
        append(&mut writer, &mut engine, stream.tail());
    }
    let last = writer.close()?;
    eprintln!(
        "{} records after the snapshot, last sequence {last}, {} resting orders, state hash {:016x}, {:.1} s in all",
        tail,
        engine.resting_orders(),
        engine.state_hash(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

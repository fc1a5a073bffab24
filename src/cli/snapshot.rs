//! `veloz snapshot`: take a snapshot of every shard of a stopped engine's data directory.
//!
//! Holds the data-directory lock (`veloz_journal::DataDirLock`) for the whole run, so no
//! engine appends meanwhile. Each shard is rebuilt as recovery would (from its newest valid
//! snapshot plus the journal after it; every record verified), its journal segments are
//! fsynced (a snapshot must not describe state the journal could lose), and
//! `shard-N/snapshot-{seq}.vsn` is written durably. The `[snapshot] keep` newest are kept,
//! and `[retention]` is applied to the segments before the oldest kept one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::audit::{self, ReplayOptions};
use veloz_config::Config;
use veloz_journal::{snapshot, Storage};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The engine's data directory (routing.json, shard-N/ journals).
    #[arg(long)]
    pub data: PathBuf,
    /// The configuration the engine ran with (instrument rules, `[snapshot] keep`); the
    /// embedded default when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run_snapshot(args: &SnapshotArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load_or_default(args.config.as_deref())?;
    let _lock = veloz_journal::DataDirLock::acquire(&args.data)?;
    let routing = audit::routing(&args.data)?;
    for shard in 0..routing.shards {
        let began = std::time::Instant::now();
        let options = ReplayOptions {
            shard: Some(shard),
            until: None,
            from_snapshot: true,
        };
        let (r, engine) =
            audit::replay_shard(&args.data, &config, &routing, shard, &options, |_, _| {})?;
        for w in &r.warnings {
            eprintln!("veloz: shard {shard}: warning: {w}");
        }
        let storage = audit::shard_storage(&args.data, shard)?;
        // The journal must be durable up to the snapshot's sequence.
        for name in storage.list()? {
            if veloz_journal::layout::parse_segment_name(&name).is_some() {
                storage
                    .sync_file(&name)
                    .with_context(|| format!("cannot sync {}", storage.display_name(&name)))?;
            }
        }
        let mut bytes = Vec::new();
        let hash = snapshot::encode(&engine, r.last_seq, &mut bytes);
        anyhow::ensure!(
            hash == r.hash,
            "shard {shard}: rebuilt state hash {hash:016x} differs from the replay's {}",
            r.state_hash
        );
        let name = snapshot::write(&storage, r.last_seq, &bytes)
            .with_context(|| format!("shard {shard}: cannot write the snapshot"))?;
        let removed = snapshot::prune(&storage, config.snapshot.keep)?;
        // As the engine's snapshot helper does: `[retention]` for the segments before the
        // oldest kept snapshot.
        if let Some((point, out)) =
            veloz_journal::archive::retain(&storage, shard as u16, config.retention.mode)
                .with_context(|| format!("shard {shard}: retention"))?
        {
            if out.retired() > 0 {
                println!(
                    "shard {shard}: retention: {} segment(s) before sequence {point} {}",
                    out.retired(),
                    config.retention.mode.done()
                );
            }
        }
        println!(
            "shard {shard}: wrote {} at sequence {} ({} resting orders, {} bytes, state hash {hash:016x}) in {:.3} s{}",
            storage.display_name(&name),
            r.last_seq,
            engine.resting_orders(),
            bytes.len(),
            began.elapsed().as_secs_f64(),
            if removed.is_empty() {
                String::new()
            } else {
                format!("; removed {}", removed.join(", "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

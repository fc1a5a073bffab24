//! `veloz replay`: rebuild a data directory's shards offline and print (or verify) them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::audit::{self, ReplayOptions, Verdict};
use veloz_config::Config;
use veloz_core::Seq;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The engine's data directory (routing.json, shard-N/ journals).
    #[arg(long)]
    pub data: PathBuf,
    /// The configuration the engine ran with (instrument rules); the embedded default when
    /// absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this shard.
    #[arg(long)]
    pub shard: Option<usize>,
    /// Stop after the record with this sequence number.
    #[arg(long)]
    pub until: Option<Seq>,
    /// Only print this instrument (id or symbol).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Compare each shard's state hash with the clean-shutdown marker (or, with --until, a
    /// checkpoint at that sequence); exit 1 on a mismatch, 2 when there is nothing to
    /// compare with.
    #[arg(long)]
    pub verify: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Start from each shard's newest valid snapshot (as recovery does) instead of the first
    /// record. Without it, the replay starts from the first record and checks every snapshot's
    /// hash at its sequence on the way.
    #[arg(long)]
    pub from_snapshot: bool,
}

pub fn run_replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load_or_default(args.config.as_deref())?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} replaying shard {msg} records")
            .expect("static template"),
    );
    let options = ReplayOptions {
        shard: args.shard,
        until: args.until,
        from_snapshot: args.from_snapshot,
    };
    let started = std::time::Instant::now();
    let mut shards = audit::replay(&args.data, &config, &options, |shard, records| {
        bar.set_message(format!("{shard}: {records}"));
        bar.tick();
    })?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    if let Some(filter) = &args.symbol {
        for s in &mut shards {
            s.symbols
                .retain(|id, st| id.to_string() == *filter || st.symbol == *filter);
        }
    }
    let verdicts: Vec<Verdict> = shards
        .iter()
        .map(|s| audit::verify(&args.data, s, args.until))
        .collect();
    // Line-buffered, as println! would be: stdout and stderr lines keep their order.
    let mut out = super::stdout();
    if args.json {
        let json: Vec<_> = shards
            .iter()
            .zip(&verdicts)
            .map(|(s, v)| serde_json::json!({ "shard": s, "verify": if args.verify { Some(v) } else { None } }))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        for s in &shards {
            writeln!(
                out,
                "shard {}: {} records ({} commands, {} trades), last sequence {}, state hash {}",
                s.shard, s.records, s.commands, s.trades, s.last_seq, s.state_hash
            )?;
            if let Some((seq, file)) = &s.snapshot {
                writeln!(out, "  started from snapshot {file} (sequence {seq})")?;
            }
            for line in &s.snapshots_checked {
                writeln!(out, "  {line}")?;
            }
            for w in &s.warnings {
                writeln!(out, "  warning: {w}")?;
            }
            for (id, st) in &s.symbols {
                let side = |levels: &[(i64, u64, u32)]| {
                    if levels.is_empty() {
                        "-".to_string()
                    } else {
                        levels
                            .iter()
                            .map(|(p, q, n)| format!("{q}@{p}({n})"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                };
                writeln!(
                    out,
                    "  {} (id {id}): {} commands, {} trades\n    bids {}\n    asks {}",
                    st.symbol,
                    st.commands,
                    st.trades,
                    side(&st.bids),
                    side(&st.asks)
                )?;
            }
            if let Some(m) = &s.money {
                let supply: Vec<String> = (m.supply.iter())
                    .map(|a| format!("{} {}", a.asset, a.amount))
                    .collect();
                writeln!(out, "  money (smallest units of each asset)")?;
                writeln!(out, "    supply: {}", supply.join(", "))?;
                for a in &m.accounts {
                    let balances: Vec<String> = (a.balances.iter())
                        .map(|(name, _, available, held)| {
                            format!("{name} {available} available {held} held")
                        })
                        .collect();
                    writeln!(out, "    account {}: {}", a.account, balances.join(", "))?;
                }
            }
        }
        let records: u64 = shards.iter().map(|s| s.records).sum();
        eprintln!(
            "veloz: replayed {records} records in {:.3} s ({:.1}M records/s)",
            elapsed.as_secs_f64(),
            records as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
        );
    }
    out.flush()?;
    drop(out);
    if !args.verify {
        return Ok(ExitCode::SUCCESS);
    }
    let mut code = ExitCode::SUCCESS;
    for s in shards.iter().filter(|s| s.snapshot_mismatch) {
        eprintln!(
            "veloz: shard {}: a snapshot's hash differs from the replayed state",
            s.shard
        );
        code = ExitCode::from(1);
    }
    for (s, v) in shards.iter().zip(&verdicts) {
        match v {
            Verdict::Match(against) => {
                eprintln!("veloz: shard {}: verified against the {against}", s.shard)
            }
            Verdict::Mismatch {
                expected,
                found,
                against,
            } => {
                eprintln!(
                    "veloz: shard {}: MISMATCH with the {against}: expected {expected}, replay gives {found}",
                    s.shard
                );
                code = ExitCode::from(1);
            }
            Verdict::NoReference(why) => {
                eprintln!("veloz: shard {}: cannot verify: {why}", s.shard);
                if code == ExitCode::SUCCESS && !s.snapshot_mismatch {
                    code = ExitCode::from(2);
                }
            }
        }
    }
    Ok(code)
}

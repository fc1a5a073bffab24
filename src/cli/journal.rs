//! `veloz journal dump|trades|archive`: a journal's records as JSON lines, the trade tape
//! regenerated from the journal alone, or retention applied offline.
//!
//! `dump` and `trades` read archived segments (`*.vlj.zst`) like live ones. `archive` holds
//! the data-directory lock (so no engine runs meanwhile) and, per shard, retires the segments
//! before the oldest valid snapshot as `[retention] mode` (or `--mode`) says
//! (`veloz_journal::archive::retain`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::audit;
use veloz_config::Config;
use veloz_core::{Command, Event, Seq};
use veloz_journal::replay::apply_record;
use veloz_journal::{archive, RecordBody, RetentionMode};

#[derive(Debug, Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    pub what: JournalCommand,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Every record as one JSON object per line (audit, debugging).
    Dump(Selection),
    /// The trade tape as CSV, rebuilt by replaying the journal through the matching core.
    Trades(Selection),
    /// Apply retention offline (under the data-directory lock): archive (zstd) or delete
    /// each shard's segments before its oldest valid snapshot.
    Archive(ArchiveArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The engine's data directory.
    #[arg(long)]
    pub data: PathBuf,
    /// The configuration whose `[retention] mode` applies; default: embedded (`archive`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override `[retention] mode`: archive, delete or off.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<RetentionMode>,
}

fn parse_mode(s: &str) -> Result<RetentionMode, String> {
    match s {
        "archive" => Ok(RetentionMode::Archive),
        "delete" => Ok(RetentionMode::Delete),
        "off" => Ok(RetentionMode::Off),
        other => Err(format!(
            "unknown retention mode {other:?} (archive, delete or off)"
        )),
    }
}

#[derive(Debug, Args)]
pub struct Selection {
    /// The engine's data directory.
    #[arg(long)]
    pub data: PathBuf,
    /// The configuration the engine ran with (needed by `trades`); default: embedded.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this shard (default: all).
    #[arg(long)]
    pub shard: Option<usize>,
    /// Records from this sequence number on (`dump` only).
    #[arg(long, default_value_t = 0)]
    pub from: Seq,
    /// Records up to this sequence number.
    #[arg(long)]
    pub until: Option<Seq>,
}

pub fn run_journal(args: &JournalArgs) -> anyhow::Result<ExitCode> {
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    match &args.what {
        JournalCommand::Dump(sel) => {
            let routing = audit::routing(&sel.data)?;
            for shard in shard_list(sel.shard, routing.shards) {
                let after = sel.from.saturating_sub(1);
                let (warnings, _) = audit::for_each_record_after(
                    &sel.data,
                    shard,
                    after,
                    sel.until,
                    |rec| {
                        if rec.seq >= sel.from {
                            let body = match rec.body {
                                RecordBody::Command(cmd) => {
                                    json!({ "type": "command", "command": command_json(&cmd) })
                                }
                                RecordBody::Checkpoint(c) => json!({
                                    "type": "checkpoint",
                                    "state_hash": format!("{:016x}", c.state_hash),
                                    "reason": c.reason.name(),
                                }),
                            };
                            let line = json!({ "shard": shard, "seq": rec.seq, "ts": rec.ts, "record": body });
                            let _ = writeln!(out, "{line}");
                        }
                        Ok(())
                    },
                )?;
                for w in warnings {
                    eprintln!("veloz: shard {shard}: warning: {w}");
                }
            }
        }
        JournalCommand::Trades(sel) => {
            let config = Config::load_or_default(sel.config.as_deref())?;
            let routing = audit::routing(&sel.data)?;
            writeln!(
                out,
                "shard,seq,ts_ns,trade_id,symbol_id,symbol,price,qty,aggressor,maker_order_id,maker_account,taker_order_id,taker_account"
            )?;
            for shard in shard_list(sel.shard, routing.shards) {
                let mut engine = audit::engine_for(&config, &routing, shard);
                let names: std::collections::BTreeMap<u32, String> = engine
                    .instruments()
                    .map(|i| (i.id, i.symbol.clone()))
                    .collect();
                let mut scratch = Vec::new();
                audit::for_each_record(&sel.data, shard, sel.until, |rec| {
                    apply_record(&mut engine, rec, &mut scratch)
                        .map_err(|source| audit::AuditError::Recover { shard, source })?;
                    for e in &scratch {
                        if let Event::Trade {
                            trade_id,
                            symbol,
                            price,
                            qty,
                            aggressor,
                            maker,
                            taker,
                        } = e
                        {
                            let _ =
                                writeln!(
                                out,
                                "{shard},{},{},{trade_id},{symbol},{},{price},{qty},{},{},{},{},{}",
                                rec.seq,
                                rec.ts,
                                names.get(symbol).map_or("", String::as_str),
                                if *aggressor == veloz_core::Side::Buy { "buy" } else { "sell" },
                                maker.order_id,
                                maker.account,
                                taker.order_id,
                                taker.account
                            );
                        }
                    }
                    Ok(())
                })?;
            }
        }
        JournalCommand::Archive(a) => return run_archive(a),
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `veloz journal archive`: retention for every shard of a stopped engine's data directory.
fn run_archive(args: &ArchiveArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load_or_default(args.config.as_deref())?;
    let mode = args.mode.unwrap_or(config.retention.mode);
    let _lock = veloz_journal::DataDirLock::acquire(&args.data)?;
    let routing = audit::routing(&args.data)?;
    for shard in 0..routing.shards {
        let storage = audit::shard_storage(&args.data, shard)?;
        let began = std::time::Instant::now();
        let Some((point, out)) = archive::retain(&storage, shard as u16, mode)
            .map_err(|e| anyhow::anyhow!("shard {shard}: {e}"))?
        else {
            println!("shard {shard}: nothing to do (retention {mode:?}, or no valid snapshot)");
            continue;
        };
        for (seg, arc, from, to) in &out.archived {
            println!(
                "shard {shard}: archived {seg} to {arc} ({from} -> {to} bytes, {:.1}x)",
                *from as f64 / (*to).max(1) as f64
            );
        }
        for seg in &out.deleted {
            println!("shard {shard}: deleted {seg}");
        }
        for seg in &out.finished {
            println!("shard {shard}: removed {seg} (its archive was already complete)");
        }
        for tmp in &out.temps_removed {
            println!("shard {shard}: removed the interrupted archive {tmp}");
        }
        println!(
            "shard {shard}: {} segment(s) retired before the snapshot at sequence {point} in {:.3} s",
            out.retired(),
            began.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn shard_list(one: Option<usize>, shards: usize) -> Vec<usize> {
    match one {
        Some(s) => vec![s],
        None => (0..shards).collect(),
    }
}

/// A cancel's or replace's order as the protocol's `(order_id, orig_client_order_id)`.
fn order_ref_json(raw: u64) -> (u64, u64) {
    match veloz_core::OrderRef::from_raw(raw) {
        veloz_core::OrderRef::Id(id) => (id, 0),
        veloz_core::OrderRef::ClientId(c) => (0, c),
    }
}

/// A command as JSON (field names as in docs/protocol.md).
fn command_json(cmd: &Command) -> serde_json::Value {
    match cmd {
        Command::New(o) => json!({
            "kind": "new", "account": o.account, "symbol": o.symbol, "client_order_id": o.client_order_id,
            "side": format!("{:?}", o.side).to_lowercase(), "order_type": format!("{:?}", o.kind).to_lowercase(),
            "tif": format!("{:?}", o.tif).to_lowercase(), "post_only": o.post_only,
            "stp": format!("{:?}", o.stp).to_lowercase(), "price": o.price, "qty": o.qty,
        }),
        Command::Cancel(c) => {
            let (order_id, orig) = order_ref_json(c.order_id);
            json!({
                "kind": "cancel", "account": c.account, "symbol": c.symbol,
                "client_order_id": c.client_order_id, "order_id": order_id, "orig_client_order_id": orig,
            })
        }
        Command::Replace(r) => {
            let (order_id, orig) = order_ref_json(r.order_id);
            json!({
                "kind": "replace", "account": r.account, "symbol": r.symbol, "client_order_id": r.client_order_id,
                "order_id": order_id, "orig_client_order_id": orig, "price": r.price, "qty": r.qty,
            })
        }
        Command::MassCancel(m) => json!({
            "kind": "mass_cancel", "account": m.account, "client_order_id": m.client_order_id, "symbol": m.symbol,
            "reason": m.reason.name(),
        }),
        Command::Admin(a) => json!({
            "kind": "admin", "action": a.action.name(), "symbol": a.action.symbol(),
            "account": a.action.account(), "request_id": a.request_id,
        }),
    }
}

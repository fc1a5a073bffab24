//! `veloz journal dump|trades|archive`: a journal's records as JSON lines, the trade tape
//! regenerated from the journal alone, or retention applied offline.
//!
//! `dump` spells every enum value by its `name()`, as the configuration and the docs do
//! (`"stp": "cancel_resting"`); `trades` writes RFC 4180 CSV through the `csv` crate, header
//! [`TRADE_COLUMNS`].
//!
//! `dump` and `trades` read archived segments (`*.vlj.zst`) like live ones, or with `--nats`
//! the engine's replicated journals from its NATS JetStream streams (`journal_nats.rs`: every
//! record checked, sequence numbers continuous across messages); both sources yield the same
//! [`Item`]s, so a fully replicated engine's dump is the same text from either. `archive` holds
//! the data-directory lock (so no engine runs meanwhile) and, per shard, retires the segments
//! before the oldest valid snapshot as `[retention] mode` (or `--mode`) says
//! (`veloz_journal::archive::retain`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::audit;
use veloz_config::routing::Routing;
use veloz_config::Config;
use veloz_core::{Command, Event, Seq};
use veloz_journal::replay::apply_record;
use veloz_journal::{archive, Record, RecordBody, RetentionMode};

#[path = "journal_nats.rs"]
mod nats;

#[derive(Debug, Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    pub what: JournalCommand,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Every record as one JSON object per line (audit, debugging).
    Dump(DumpArgs),
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

/// `[retention] mode`'s values as the configuration spells them (`mode = "archive"`).
const MODES: [(&str, RetentionMode); 3] = [
    ("archive", RetentionMode::Archive),
    ("delete", RetentionMode::Delete),
    ("off", RetentionMode::Off),
];

fn parse_mode(s: &str) -> Result<RetentionMode, String> {
    MODES
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, mode)| *mode)
        .ok_or_else(|| format!("unknown retention mode {s:?} (archive, delete or off)"))
}

fn mode_name(mode: RetentionMode) -> &'static str {
    MODES
        .iter()
        .find(|(_, m)| *m == mode)
        .map_or("?", |(name, _)| name)
}

#[derive(Debug, Args)]
pub struct Selection {
    /// The engine's data directory (its local journals).
    // Not `conflicts_with = "nats"` (checked in `Source::open`): clap then drops the
    // `requires = "nats"` of --engine and --markers whenever --data is given.
    #[arg(long, required_unless_present = "nats")]
    pub data: Option<PathBuf>,
    /// Read the engine's replicated journals from NATS JetStream instead of a data directory
    /// (stream `VELOZ_<engine>_<shard>` per shard; every record and the sequence across
    /// messages checked). URLS (comma-separated) override `[replication] urls` of --config.
    #[arg(long, value_name = "URLS")]
    pub nats: Option<Option<String>>,
    /// With --nats: the engine's name (default: `[replication] engine` of --config).
    #[arg(long, requires = "nats")]
    pub engine: Option<String>,
    /// The configuration the engine ran with (needed by `trades`, and by --nats for
    /// `[replication]`); default: embedded.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this shard (default: all).
    #[arg(long)]
    pub shard: Option<usize>,
    /// Records from this sequence number on (`dump` only).
    #[arg(long, visible_alias = "from-seq", default_value_t = 0)]
    pub from: Seq,
    /// Records up to this sequence number.
    #[arg(long)]
    pub until: Option<Seq>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// With --nats: also print each leader marker among the messages read, as
    /// `{"leader":"<node> epoch <n>","shard":N,"stream_seq":S}`.
    #[arg(long, requires = "nats")]
    pub markers: bool,
}

/// What a record source yields, in journal order.
#[derive(Debug)]
pub enum Item<'a> {
    /// A journal record.
    Record(&'a Record),
    /// A leader marker of a stream (`--nats` only): a new primary took over here.
    Marker { stream_seq: u64, leader: &'a str },
}

/// Where `dump` and `trades` read records: a data directory's journals, or an engine's
/// streams.
#[derive(Debug)]
enum Source {
    Local {
        data: PathBuf,
        routing: Routing,
    },
    /// Boxed: the client and its runtime are large beside a path and a routing map.
    Nats(Box<nats::Streams>),
}

impl Source {
    /// The source `sel` names; `config` supplies `[replication]` for --nats.
    fn open(sel: &Selection, config: &Config) -> anyhow::Result<Source> {
        if sel.data.is_some() && sel.nats.is_some() {
            anyhow::bail!("--data and --nats name two sources: give one");
        }
        let Some(urls) = &sel.nats else {
            let data = sel
                .data
                .clone()
                .expect("clap requires --data without --nats");
            let routing = audit::routing(&data)?;
            return Ok(Source::Local { data, routing });
        };
        let mut replication = config.replication.clone();
        if let Some(urls) = urls {
            replication.urls = urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(engine) = &sel.engine {
            replication.engine = engine.clone();
        }
        replication
            .check()
            .map_err(|(field, why)| anyhow::anyhow!("--nats: replication.{field}: {why}"))?;
        Ok(Source::Nats(Box::new(nats::Streams::connect(
            &replication,
        )?)))
    }

    /// The shards to read: `one`, or every shard of the source.
    fn shards(&self, one: Option<usize>) -> Vec<usize> {
        match (one, self) {
            (Some(s), _) => vec![s],
            (None, Source::Local { routing, .. }) => (0..routing.shards).collect(),
            (None, Source::Nats(streams)) => streams.shards().iter().map(|s| *s as usize).collect(),
        }
    }

    /// Which shard owns which instrument: the data directory's routing record, or for
    /// streams the config's instruments routed over the engine's shard count (as the
    /// engine routed them when it first started with this config).
    fn routing(&self, config: &Config) -> anyhow::Result<Routing> {
        match self {
            Source::Local { routing, .. } => Ok(routing.clone()),
            Source::Nats(streams) => {
                let (count, warning) = streams.shard_count();
                if let Some(w) = warning {
                    eprintln!("veloz: warning: {w}");
                }
                Ok(Routing::from_config(config, count)?)
            }
        }
    }

    /// Visit the records of `shard` from `from` to `until` (and, from streams, the leader
    /// markers among them) in order; returns the local reader's warnings.
    fn for_each(
        &self,
        shard: usize,
        from: Seq,
        until: Option<Seq>,
        mut visit: impl FnMut(Item<'_>) -> Result<(), audit::AuditError>,
    ) -> anyhow::Result<Vec<String>> {
        match self {
            Source::Local { data, .. } => {
                let after = from.saturating_sub(1);
                let (warnings, _) =
                    audit::for_each_record_after(data, shard, after, until, |rec| {
                        if rec.seq >= from {
                            visit(Item::Record(rec))?;
                        }
                        Ok(())
                    })?;
                Ok(warnings)
            }
            Source::Nats(streams) => {
                let shard = u16::try_from(shard)
                    .map_err(|_| anyhow::anyhow!("shard {shard}: no such shard"))?;
                streams.for_each(shard, from, until, visit)?;
                Ok(Vec::new())
            }
        }
    }
}

/// The trade tape's columns, in order (`veloz journal trades`).
pub const TRADE_COLUMNS: [&str; 13] = [
    "shard",
    "seq",
    "ts_ns",
    "trade_id",
    "symbol_id",
    "symbol",
    "price",
    "qty",
    "aggressor",
    "maker_order_id",
    "maker_account",
    "taker_order_id",
    "taker_account",
];

/// One row of the trade tape, serialised by the `csv` crate (RFC 4180: a field with a comma,
/// a quote or a line break is quoted), in the order of [`TRADE_COLUMNS`].
#[derive(Debug, serde::Serialize)]
struct TradeRow<'a> {
    shard: usize,
    seq: Seq,
    ts_ns: u64,
    trade_id: u64,
    symbol_id: u32,
    symbol: &'a str,
    price: i64,
    qty: u64,
    aggressor: &'static str,
    maker_order_id: u64,
    maker_account: u32,
    taker_order_id: u64,
    taker_account: u32,
}

pub fn run_journal(args: &JournalArgs) -> anyhow::Result<ExitCode> {
    match &args.what {
        JournalCommand::Dump(args) => dump(args),
        JournalCommand::Trades(sel) => trades(sel),
        JournalCommand::Archive(a) => run_archive(a),
    }
}

/// `veloz journal dump`: every record as one JSON object per line (and with `--markers`,
/// each leader marker of the streams read).
fn dump(args: &DumpArgs) -> anyhow::Result<ExitCode> {
    let sel = &args.sel;
    let config = match sel.nats {
        Some(_) => Config::load_or_default(sel.config.as_deref())?,
        None => Config::default(),
    };
    let source = Source::open(sel, &config)?;
    let mut out = std::io::BufWriter::new(super::stdout());
    // A write that fails for another reason than a closed reader (a full disk under a
    // redirect): the first such error ends the dump with it.
    let mut failed: Option<std::io::Error> = None;
    for shard in source.shards(sel.shard) {
        let warnings = source.for_each(shard, sel.from, sel.until, |item| {
            let line = match item {
                _ if failed.is_some() => return Ok(()),
                Item::Record(rec) => {
                    json!({ "shard": shard, "seq": rec.seq, "ts": rec.ts, "record": record_json(&rec.body) })
                }
                Item::Marker { stream_seq, leader } if args.markers => {
                    json!({ "shard": shard, "stream_seq": stream_seq, "leader": leader })
                }
                Item::Marker { .. } => return Ok(()),
            };
            if let Err(e) = writeln!(out, "{line}") {
                failed = Some(e);
            }
            Ok(())
        })?;
        for w in warnings {
            eprintln!("veloz: shard {shard}: warning: {w}");
        }
        if let Some(e) = failed {
            return Err(anyhow::Error::new(e).context("cannot write the dump to stdout"));
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `veloz journal trades`: the trade tape as CSV, rebuilt through the matching core.
fn trades(sel: &Selection) -> anyhow::Result<ExitCode> {
    let config = Config::load_or_default(sel.config.as_deref())?;
    let source = Source::open(sel, &config)?;
    let routing = source.routing(&config)?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(super::stdout());
    out.write_record(TRADE_COLUMNS)?;
    let mut failed: Option<csv::Error> = None;
    for shard in source.shards(sel.shard) {
        let mut engine = audit::engine_for(&config, &routing, shard);
        let names: std::collections::BTreeMap<u32, String> = engine
            .instruments()
            .map(|i| (i.id, i.symbol.clone()))
            .collect();
        let mut scratch = Vec::new();
        let warnings = source.for_each(shard, 0, sel.until, |item| {
            let Item::Record(rec) = item else {
                return Ok(());
            };
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
                    if failed.is_some() {
                        break;
                    }
                    let row = TradeRow {
                        shard,
                        seq: rec.seq,
                        ts_ns: rec.ts,
                        trade_id: *trade_id,
                        symbol_id: *symbol,
                        symbol: names.get(symbol).map_or("", String::as_str),
                        price: *price,
                        qty: *qty,
                        aggressor: aggressor.name(),
                        maker_order_id: maker.order_id,
                        maker_account: maker.account,
                        taker_order_id: taker.order_id,
                        taker_account: taker.account,
                    };
                    if let Err(e) = out.serialize(row) {
                        failed = Some(e);
                    }
                }
            }
            Ok(())
        })?;
        // The tape stays quiet about the reader's warnings (a torn tail); `dump` prints them.
        drop(warnings);
        if let Some(e) = failed {
            return Err(anyhow::Error::new(e).context("cannot write the trade tape to stdout"));
        }
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
            println!(
                "shard {shard}: nothing to do (retention {}, or no valid snapshot)",
                mode_name(mode)
            );
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

/// A cancel's or replace's order as the protocol's `(order_id, orig_client_order_id)`.
fn order_ref_json(raw: u64) -> (u64, u64) {
    match veloz_core::OrderRef::from_raw(raw) {
        veloz_core::OrderRef::Id(id) => (id, 0),
        veloz_core::OrderRef::ClientId(c) => (0, c),
    }
}

/// A record's body as JSON.
fn record_json(body: &RecordBody) -> serde_json::Value {
    match body {
        RecordBody::Command(cmd) => json!({ "type": "command", "command": command_json(cmd) }),
        RecordBody::Checkpoint(c) => json!({
            "type": "checkpoint",
            "state_hash": format!("{:016x}", c.state_hash),
            "reason": c.reason.name(),
        }),
    }
}

/// A command as JSON: field names as in docs/protocol.md; enum values (side, order type,
/// time in force, STP, reasons, actions) by their `name()`, the snake_case spelling that the
/// configuration and the docs use (`stp = "cancel_resting"`).
fn command_json(cmd: &Command) -> serde_json::Value {
    match cmd {
        Command::New(o) => json!({
            "kind": "new", "account": o.account, "symbol": o.symbol, "client_order_id": o.client_order_id,
            "side": o.side.name(), "order_type": o.kind.name(), "tif": o.tif.name(),
            "post_only": o.post_only, "stp": o.stp.name(), "price": o.price, "qty": o.qty,
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
        Command::Admin(a) => match a.action.money_moved() {
            // A deposit or withdrawal: the asset id and the amount in its smallest units.
            Some((asset, amount)) => json!({
                "kind": "admin", "action": a.action.name(), "account": a.action.account(),
                "asset": asset, "amount": amount, "request_id": a.request_id,
            }),
            None => json!({
                "kind": "admin", "action": a.action.name(), "symbol": a.action.symbol(),
                "account": a.action.account(), "request_id": a.request_id,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deposit or withdrawal shows its account, asset and amount; a halt stays as it was.
    #[test]
    fn money_admin_records_show_asset_and_amount() {
        use veloz_core::{AdminAction, AdminCommand};
        let cmd = |action| {
            Command::Admin(AdminCommand {
                action,
                request_id: 4,
            })
        };
        let deposit = AdminAction::Deposit {
            account: 7,
            asset: 1,
            amount: 250,
        };
        assert_eq!(
            command_json(&cmd(deposit)),
            json!({"kind": "admin", "action": "deposit", "account": 7, "asset": 1,
                "amount": 250, "request_id": 4})
        );
        let withdraw = AdminAction::Withdraw {
            account: 900,
            asset: 2,
            amount: 3,
        };
        assert_eq!(command_json(&cmd(withdraw))["action"], "withdraw");
        assert_eq!(
            command_json(&cmd(AdminAction::HaltInstrument(3))),
            json!({"kind": "admin", "action": "halt_instrument", "symbol": 3, "account": null,
                "request_id": 4})
        );
    }

    /// The tape's quoting is the `csv` crate's (RFC 4180): a field with a comma, a quote or a
    /// line break is quoted, quotes doubled. (The configuration refuses such symbols today;
    /// the tape stays readable whatever a text column holds.)
    #[test]
    fn a_trade_row_with_a_comma_and_quotes_in_its_symbol_stays_one_row() {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(TRADE_COLUMNS).unwrap();
        w.serialize(TradeRow {
            shard: 1,
            seq: 7,
            ts_ns: 9,
            trade_id: 3,
            symbol_id: 2,
            symbol: "BRK,B \"x\"\nY",
            price: -5,
            qty: 10,
            aggressor: veloz_core::Side::Sell.name(),
            maker_order_id: 11,
            maker_account: 1,
            taker_order_id: 12,
            taker_account: 2,
        })
        .unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            format!(
                "{}\n1,7,9,3,2,\"BRK,B \"\"x\"\"\nY\",-5,10,sell,11,1,12,2\n",
                TRADE_COLUMNS.join(",")
            )
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][5], "BRK,B \"x\"\nY");
    }
}

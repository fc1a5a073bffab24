//! What the offline subcommands print, checked on a data directory written without an engine
//! (`offline_datadir`):
//! - a closed stdout (`veloz journal dump | head`) ends every subcommand quietly: killed by
//!   SIGPIPE's default action (status 141 in a shell), nothing on stderr;
//! - the trade tape is CSV that a CSV reader reads back, column for column;
//! - `veloz journal dump` spells every enum as the configuration and the docs do: each STP
//!   mode as `stp = "..."` takes it, and that spelling read back as configuration is the same
//!   mode.

mod common;
mod offline_datadir;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command as Process, ExitStatus, Stdio};

use common::{veloz_bin, TempDir};
use offline_datadir::Marker;
use veloz_config::Config;
use veloz_core::{
    CancelOrder, Command, NewOrder, OrderKind, SelfTradePrevention, Side, TimeInForce,
};

const SIGPIPE: i32 = 13;

/// `n` crossing pairs on the default config's four instruments, near each one's reference
/// price (inside its band): every pair trades.
fn trading_commands(n: u64) -> Vec<Command> {
    let config = Config::default();
    let mut cmds = Vec::new();
    for i in 0..n {
        let instrument = &config.instruments[(i % 4) as usize];
        let symbol = instrument.id;
        let price = instrument.reference_price + (i % 50) as i64 * 100;
        cmds.push(Command::New(NewOrder::limit(
            1,
            symbol,
            2 * i + 1,
            Side::Sell,
            price,
            10,
        )));
        cmds.push(Command::New(NewOrder::limit(
            2,
            symbol,
            2 * i + 2,
            Side::Buy,
            price,
            10,
        )));
    }
    cmds
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Run `veloz ARGS` with stdout a pipe whose reader is already gone; (status, stderr).
fn with_closed_stdout(args: &[&str]) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Process::new(veloz_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `veloz ARGS`, read its first line of stdout, then close the pipe (as `head -1`);
/// (first line, status, stderr).
fn with_head(args: &[&str]) -> (String, ExitStatus, String) {
    let mut child = Process::new(veloz_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the rest of the output meets a closed pipe.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (first, child.wait().unwrap(), stderr)
}

#[test]
fn a_closed_stdout_ends_every_subcommand_quietly_by_sigpipe() {
    let dir = TempDir::new("cli-pipe");
    // Enough output that a dump does not fit in a pipe's buffer (64 KiB).
    let data = offline_datadir::write(
        &dir.0,
        &Config::default(),
        &trading_commands(2_000),
        Marker::Clean,
    );
    let d = path_str(&data);
    let commands: [&[&str]; 8] = [
        &["config"],
        &["journal", "dump", "--data", d],
        &["journal", "trades", "--data", d],
        &["replay", "--data", d],
        &["replay", "--data", d, "--json"],
        &["replay", "--data", d, "--verify"],
        // println! in a module that does not write through cli::stdout: the panic hook.
        &["workload", "--commands", "20000", "--symbols", "2"],
        &[
            "journal", "dump", "--data", d, "--shard", "0", "--from", "5",
        ],
    ];
    for args in commands {
        // The reader is gone before the first write: the first write ends the process.
        let (status, stderr) = with_closed_stdout(args);
        assert_eq!(
            status.signal(),
            Some(SIGPIPE),
            "veloz {args:?} with a closed stdout: {status}, stderr:\n{stderr}"
        );
        assert_eq!(stderr, "", "veloz {args:?} with a closed stdout");
        // As `| head -1`: the rest meets a closed pipe, or had already gone into its buffer.
        let (first, status, stderr) = with_head(args);
        assert!(!first.is_empty(), "veloz {args:?} printed nothing");
        assert!(
            status.success() || status.signal() == Some(SIGPIPE),
            "veloz {args:?} | head -1: {status}, stderr:\n{stderr}"
        );
        if args[0] != "replay" && args[0] != "workload" {
            assert_eq!(stderr, "", "veloz {args:?} | head -1");
        } else {
            // These report their timing on stderr after their results, when they get there;
            // never an error.
            assert!(
                !stderr.contains("error") && !stderr.contains("panicked"),
                "veloz {args:?} | head -1: {stderr}"
            );
        }
    }
    // The big ones do meet the closed pipe.
    let (_, status, _) = with_head(&["journal", "dump", "--data", d]);
    assert_eq!(status.signal(), Some(SIGPIPE), "{status}");
}

#[test]
fn the_trade_tape_is_csv_with_one_row_per_trade() {
    let dir = TempDir::new("cli-csv");
    let config = Config::default();
    let cmds = trading_commands(40);
    let data = offline_datadir::write(&dir.0, &config, &cmds, Marker::Clean);
    let out = Process::new(veloz_bin())
        .args(["journal", "trades", "--data", path_str(&data)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, veloz::cli::journal::TRADE_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 40, "one trade per crossing pair");
    let symbols: Vec<&str> = config
        .instruments
        .iter()
        .map(|i| i.symbol.as_str())
        .collect();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), header.len());
        let field = |name: &str| &row[header.iter().position(|h| h == name).unwrap()];
        // Trade i comes from pair i: the sell (account 1) rests, the buy (account 2) takes.
        assert_eq!(field("shard"), "0");
        assert_eq!(field("seq"), (2 * i + 2).to_string());
        assert_eq!(field("symbol_id"), config.instruments[i % 4].id.to_string());
        assert_eq!(field("symbol"), symbols[i % 4]);
        assert_eq!(field("qty"), "10");
        assert_eq!(field("aggressor"), "buy");
        assert_eq!(field("maker_account"), "1");
        assert_eq!(field("taker_account"), "2");
    }
}

#[test]
fn the_dump_spells_each_stp_mode_as_the_config_takes_it() {
    let modes = [
        SelfTradePrevention::Allow,
        SelfTradePrevention::CancelResting,
        SelfTradePrevention::CancelIncoming,
        SelfTradePrevention::CancelBoth,
    ];
    let kinds = [
        (OrderKind::Limit, TimeInForce::Gtc),
        (OrderKind::Limit, TimeInForce::Ioc),
        (OrderKind::Limit, TimeInForce::Fok),
        (OrderKind::Market, TimeInForce::Ioc),
    ];
    let mut cmds = Vec::new();
    for (i, (stp, (kind, tif))) in modes.iter().zip(kinds).enumerate() {
        cmds.push(Command::New(NewOrder {
            stp: *stp,
            kind,
            tif,
            ..NewOrder::limit(
                1,
                1,
                i as u64 + 1,
                if i % 2 == 0 { Side::Buy } else { Side::Sell },
                1_900_000,
                5,
            )
        }));
    }
    cmds.push(Command::Cancel(CancelOrder {
        account: 1,
        symbol: 1,
        client_order_id: 9,
        order_id: veloz_core::BY_CLIENT_ID | 1,
    }));
    let dir = TempDir::new("cli-stp");
    let data = offline_datadir::write(&dir.0, &Config::default(), &cmds, Marker::Clean);
    let out = Process::new(veloz_bin())
        .args(["journal", "dump", "--data", path_str(&data)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let new: Vec<&serde_json::Value> = lines
        .iter()
        .map(|l| &l["record"]["command"])
        .filter(|c| c["kind"] == "new")
        .collect();
    let field =
        |name: &str| -> Vec<&str> { new.iter().map(|c| c[name].as_str().unwrap()).collect() };
    assert_eq!(
        field("stp"),
        ["allow", "cancel_resting", "cancel_incoming", "cancel_both"]
    );
    assert_eq!(field("order_type"), ["limit", "limit", "limit", "market"]);
    assert_eq!(field("tif"), ["gtc", "ioc", "fok", "ioc"]);
    assert_eq!(field("side"), ["buy", "sell", "buy", "sell"]);
    assert_eq!(lines.last().unwrap()["record"]["reason"], "clean_shutdown");

    // Each spelling, read back as an account's `stp`, is the mode it was printed for.
    let default = Config::default().to_toml_string();
    assert!(default.contains("stp = \"cancel_resting\""), "{default}");
    for (mode, printed) in modes.iter().zip(field("stp")) {
        let text = default.replace("stp = \"cancel_resting\"", &format!("stp = \"{printed}\""));
        let config = Config::from_toml_str(&text, "stp round trip")
            .unwrap_or_else(|e| panic!("stp = {printed:?}: {e}"));
        let bob = config.accounts.iter().find(|a| a.name == "bob").unwrap();
        assert_eq!(bob.stp.mode(), *mode, "stp = {printed:?}");
    }
}

//! `scripts/replay.sh`: each exit status with its message, on data directories written
//! offline (`offline_datadir`, no engine): 0 verified; 1 FAILED (a hash that differs, a data
//! directory that cannot be read); 2 replayed but nothing to compare with (no clean-shutdown
//! marker, no checkpoint at --until); 3 not run (bad arguments, also those after `--` that
//! `veloz replay` refuses, no data directory). The running-engine refusal (3) is checked
//! against a real engine in tests/ops_scripts.rs.

mod common;
mod offline_datadir;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use common::{repo, Run, TempDir};
use offline_datadir::Marker;
use veloz_config::Config;
use veloz_core::{Command, NewOrder, Side};

/// `scripts/replay.sh --data DATA --bin veloz ARGS` on a clean VELOZ_* environment.
fn replay_sh(data: &Path, args: &[&str]) -> Run {
    let mut cmd = Process::new("bash");
    cmd.arg(repo().join("scripts/replay.sh"))
        .arg("--data")
        .arg(data)
        .args(["--bin", env!("CARGO_BIN_EXE_veloz")])
        .args(args);
    for (var, _) in std::env::vars() {
        if var.starts_with("VELOZ_") {
            cmd.env_remove(var);
        }
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run bash");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A few orders on AAPL, two of which trade.
fn commands() -> Vec<Command> {
    vec![
        Command::New(NewOrder::limit(1, 1, 1, Side::Sell, 1_900_000, 10)),
        Command::New(NewOrder::limit(2, 1, 2, Side::Buy, 1_900_000, 4)),
        Command::New(NewOrder::limit(2, 1, 3, Side::Buy, 1_899_900, 7)),
    ]
}

fn data_dir(dir: &TempDir, marker: Marker) -> PathBuf {
    offline_datadir::write(&dir.0, &Config::default(), &commands(), marker)
}

#[test]
fn exit_0_when_every_shard_verifies() {
    let dir = TempDir::new("replay-sh-0");
    let data = data_dir(&dir, Marker::Clean);
    let run = replay_sh(&data, &[]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stdout.contains("replayed and verified"),
        "{}",
        run.show()
    );
    assert!(run.stdout.contains("AAPL (id 1)"), "{}", run.show());
    // The clean-shutdown checkpoint is record 4: --until 4 verifies against it.
    let run = replay_sh(&data, &["--", "--until", "4"]);
    assert_eq!(run.code, 0, "{}", run.show());
}

#[test]
fn exit_1_failed_when_a_hash_differs_or_the_directory_cannot_be_read() {
    let dir = TempDir::new("replay-sh-1");
    let data = data_dir(&dir, Marker::WrongHash);
    let run = replay_sh(&data, &[]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(run.stderr.contains("MISMATCH"), "{}", run.show());
    assert!(
        run.stderr.contains("verification of") && run.stderr.contains("FAILED"),
        "{}",
        run.show()
    );
    // Not a data directory (no routing record): veloz replay cannot read it.
    std::fs::remove_file(data.join("routing.json")).unwrap();
    let run = replay_sh(&data, &[]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(run.stderr.contains("FAILED"), "{}", run.show());
}

#[test]
fn exit_2_not_verified_when_there_is_nothing_to_compare_with() {
    let dir = TempDir::new("replay-sh-2");
    let data = data_dir(&dir, Marker::Absent);
    let run = replay_sh(&data, &[]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains("NOT verified: nothing to compare with"),
        "{}",
        run.show()
    );
    assert!(!run.stderr.contains("FAILED"), "{}", run.show());
    // The books were rebuilt all the same.
    assert!(run.stdout.contains("AAPL (id 1)"), "{}", run.show());
    // With --until, a sequence that has no checkpoint record.
    let dir = TempDir::new("replay-sh-2u");
    let data = data_dir(&dir, Marker::Clean);
    let run = replay_sh(&data, &["--", "--until", "2"]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains("no checkpoint record at sequence 2")
            && run.stderr.contains("nothing to compare with"),
        "{}",
        run.show()
    );
}

#[test]
fn exit_3_not_run_on_bad_arguments_or_no_data_directory() {
    let dir = TempDir::new("replay-sh-3");
    let data = data_dir(&dir, Marker::Clean);
    let run = replay_sh(&data, &["--bogus"]);
    assert_eq!(run.code, 3, "{}", run.show());
    assert!(run.stderr.contains("unknown argument"), "{}", run.show());
    // Arguments after -- that veloz replay refuses (clap exits 2 for those: not "nothing to
    // compare with").
    let run = replay_sh(&data, &["--", "--bogus"]);
    assert_eq!(run.code, 3, "{}", run.show());
    assert!(
        run.stderr.contains("refused the arguments after --"),
        "{}",
        run.show()
    );
    assert!(!run.stderr.contains("nothing to compare"), "{}", run.show());
    let run = replay_sh(&dir.0.join("nowhere"), &[]);
    assert_eq!(run.code, 3, "{}", run.show());
    assert!(run.stderr.contains("no data directory"), "{}", run.show());
}

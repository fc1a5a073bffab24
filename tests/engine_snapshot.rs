//! Snapshots end to end: a real `veloz serve` with a small `[snapshot] every_records` takes
//! snapshots while orders arrive; after SIGKILL the restarted engine loads the newest one and
//! replays only the records after it, to the state hash `veloz replay --verify` finds; a
//! damaged snapshot is skipped with a warning naming it; `veloz snapshot` takes one offline.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use veloz_core::*;
use veloz_load::client::Client;

fn snapshot_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(data).unwrap().flatten() {
        if !shard.file_name().to_string_lossy().starts_with("shard-") {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            if name.starts_with("snapshot-") && name.ends_with(".vsn") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restart_loads_the_newest_snapshot_and_replays_the_tail() {
    let _serial = serial();
    let dir = TempDir::new("snapshot-e2e");
    let config = test_config(dir.path(), "group", "");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("every_records = 0"), "{text}");
    std::fs::write(
        &config,
        text.replace("every_records = 0", "every_records = 20"),
    )
    .unwrap();
    let data = dir.path().join("data");
    let (d, cfg) = (data.to_str().unwrap(), config.to_str().unwrap());

    let engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    // 50 resting bids on AAPL (one shard): snapshots at sequences 20 and 40.
    for k in 1..=50u64 {
        alice
            .send(&limit(
                1,
                k,
                Side::Buy,
                1_800_000 + 100 * (k % 7) as i64,
                1 + k % 3,
            ))
            .unwrap();
        let r = alice.next_report(Duration::from_secs(10)).unwrap();
        assert_eq!(r.client_order_id, k);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !snapshot_files(&data)
        .iter()
        .any(|p| p.ends_with("snapshot-00000000000000000040.vsn"))
    {
        assert!(
            Instant::now() < deadline,
            "no snapshot at 40: {:?}",
            snapshot_files(&data)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(alice);
    engine.kill9();

    let engine = EngineProcess::start(&config);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0);
    let log = stderr.join("\n");
    assert!(
        log.contains("loaded snapshot")
            && log.contains(
                "snapshot-00000000000000000040.vsn (sequence 40) and replayed 10 records"
            ),
        "{log}"
    );
    let (code, out, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("snapshot-00000000000000000040.vsn at sequence 40: hash"),
        "{out}"
    );
    assert!(out.contains("matches"), "{out}");
    let (code, out, err) = veloz(&[
        "replay",
        "--data",
        d,
        "--config",
        cfg,
        "--verify",
        "--from-snapshot",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("started from snapshot"), "{out}");

    // Damage the newest snapshot: the engine falls back to the one at 20, saying so.
    let newest = snapshot_files(&data)
        .into_iter()
        .find(|p| p.ends_with("snapshot-00000000000000000040.vsn"))
        .unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x10;
    std::fs::write(&newest, &bytes).unwrap();
    let engine = EngineProcess::start(&config);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0);
    let log = stderr.join("\n");
    assert!(
        log.contains("skipped snapshot") && log.contains("snapshot-00000000000000000040.vsn"),
        "{log}"
    );
    assert!(
        log.contains("snapshot-00000000000000000020.vsn (sequence 20)"),
        "{log}"
    );
    let (code, out, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("skipped snapshot"), "{out}");

    // Offline: a snapshot at the journal's end, under the data-directory lock.
    let (code, out, err) = veloz(&["snapshot", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("wrote") && out.contains("50 resting orders"),
        "{out}"
    );
    let (code, out, err) = veloz(&[
        "replay",
        "--data",
        d,
        "--config",
        cfg,
        "--verify",
        "--from-snapshot",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
}

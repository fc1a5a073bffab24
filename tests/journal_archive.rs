//! Retention end to end with real `veloz` processes: an engine with 4096-byte segments (50
//! records each) journals 140 resting orders and stops cleanly; `veloz snapshot` takes a
//! snapshot at the journal's end; `veloz journal archive` (under the data-directory lock,
//! refused while the engine runs) compresses the segments before it to `*.vlj.zst`;
//! `veloz replay --verify` from sequence 1 reads the archive and the live segments and still
//! verifies against the clean shutdown; the restarted engine recovers from the snapshot
//! without the archived segments; `veloz journal dump` reads records out of the archive.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use veloz_core::*;
use veloz_load::client::Client;

/// Files of every shard directory of `data` whose name ends with `ext`, sorted.
fn files(data: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(data).unwrap().flatten() {
        if !shard.file_name().to_string_lossy().starts_with("shard-") {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().ends_with(ext) {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn archived_segments_replay_verify_and_the_engine_restarts_from_the_snapshot() {
    let _serial = serial();
    let dir = TempDir::new("archive-e2e");
    let config = test_config(dir.path(), "group", "");
    let text = std::fs::read_to_string(&config).unwrap();
    let small = text.replace(
        &format!("segment_size = {}", 4 << 20),
        "segment_size = 4096",
    );
    assert_ne!(small, text, "the test config sets segment_size");
    std::fs::write(&config, small).unwrap();
    let data = dir.path().join("data");
    let (d, cfg) = (data.to_str().unwrap(), config.to_str().unwrap());

    let engine = EngineProcess::start(&config);
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    // 140 resting bids on AAPL, then the clean-shutdown checkpoint: sequences 1..=141 on
    // AAPL's shard, in segments 1, 51 and 101.
    for k in 1..=140u64 {
        let price = 1_800_000 + 100 * (k % 9) as i64;
        alice
            .send(&limit(1, k, Side::Buy, price, 1 + k % 4))
            .unwrap();
        let r = alice.next_report(Duration::from_secs(10)).unwrap();
        assert_eq!(r.client_order_id, k);
    }
    drop(alice);
    // The lock: no offline retention while the engine runs.
    let (code, out, err) = veloz(&["journal", "archive", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("in use by another veloz process"), "{err}");
    let (code, _, _) = engine.stop();
    assert_eq!(code, 0);

    // No snapshot yet: nothing to retire.
    let (code, out, err) = veloz(&["journal", "archive", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("nothing to do"), "{out}");
    assert!(files(&data, ".vlj.zst").is_empty());

    // `veloz snapshot` applies `[retention]` (archive) after writing, as the engine does.
    let (code, out, err) = veloz(&["snapshot", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("at sequence 141"), "{out}");
    assert!(
        out.contains("shard 0: retention: 2 segment(s) before sequence 141 archived"),
        "{out}"
    );
    // Run again offline: already done, nothing more to retire.
    let (code, out, err) = veloz(&["journal", "archive", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(0), "{out}{err}");
    let archives = files(&data, ".vlj.zst");
    let names: Vec<String> = archives
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "00000000000000000001.vlj.zst",
            "00000000000000000051.vlj.zst"
        ],
        "{out}"
    );
    assert!(
        out.contains("0 segment(s) retired before the snapshot at sequence 141"),
        "{out}"
    );
    let shard_dir = archives[0].parent().unwrap();
    assert!(!shard_dir.join("00000000000000000001.vlj").exists());
    assert!(!shard_dir.join("00000000000000000051.vlj").exists());
    assert!(shard_dir.join("00000000000000000101.vlj").exists());

    // From sequence 1 through the archive: verified against the clean shutdown.
    let (code, out, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("141 records (140 commands"), "{out}");
    assert!(err.contains("verified against the clean shutdown"), "{err}");
    let shard: String = shard_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("shard-")
        .to_string();
    let (code, out, err) = veloz(&[
        "journal", "dump", "--data", d, "--shard", &shard, "--from", "2", "--until", "3",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let seqs: Vec<&str> = out.lines().collect();
    assert_eq!(seqs.len(), 2, "{out}");
    assert!(
        seqs[0].contains("\"seq\":2") && seqs[1].contains("\"seq\":3"),
        "{out}"
    );

    // The engine restarts from the snapshot without the archived segments.
    let engine = EngineProcess::start(&config);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0);
    let log = stderr.join("\n");
    assert!(
        log.contains("snapshot-00000000000000000141.vsn (sequence 141) and replayed 0 records"),
        "{log}"
    );
    let (code, out, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("142 records"), "{out}");
}

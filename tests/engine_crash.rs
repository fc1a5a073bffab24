//! SIGKILL in the middle of a load: nothing acknowledged is lost.
//!
//! Two clients trade on every instrument while the engine is killed with SIGKILL. Then:
//! 1. replaying the journals offline reproduces every execution report the clients had
//!    received, exactly (same order ids, trade ids, quantities, prices, reasons);
//! 2. the restarted engine recovers to the same state hash as the offline replay;
//! 3. orders that rest according to the replay can be cancelled after the restart, with
//!    the quantity the replay says.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use veloz_config::Config;
use veloz_core::*;
use veloz_load::client::{Client, Received};
use veloz_wire::{ExecType, ExecutionReport};

/// What a client saw, keyed so the replay can be compared with it.
type Seen = Vec<ExecutionReport<'static>>;

/// Send a mix of resting and crossing orders until `stop`; return every report received.
fn trader(addr: String, account: (AccountId, &'static str), stop: Arc<AtomicBool>) -> Seen {
    let (mut c, _) = Client::logon(&addr, account.0, account.1).unwrap();
    let instruments = Config::default().instruments();
    let mut seen = Seen::new();
    let mut i: u64 = 0;
    let side = if account.0 == 1 {
        Side::Sell
    } else {
        Side::Buy
    };
    while !stop.load(Ordering::SeqCst) {
        let inst = &instruments[(i % instruments.len() as u64) as usize];
        // Prices within a few ticks of the reference, so many orders cross.
        let offset = ((i * 7) % 5) as i64 - 2;
        let cmd = limit(
            inst.id,
            i,
            side,
            inst.reference_price + offset * inst.tick_size,
            1 + i % 3,
        );
        if c.send(&cmd).is_err() {
            break;
        }
        i += 1;
        // Read what is there without waiting long: pipelined load.
        loop {
            match c.recv(Duration::from_micros(if i.is_multiple_of(16) {
                2_000
            } else {
                0
            })) {
                Ok(Some(Received::Report(r))) => seen.push(r),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return seen,
            }
        }
    }
    // The engine is gone: take whatever was still buffered.
    while let Ok(Some(m)) = c.recv(Duration::from_millis(200)) {
        if let Received::Report(r) = m {
            seen.push(r);
        }
    }
    seen
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let _serial = serial();
    let dir = TempDir::new("crash");
    let config = test_config(dir.path(), "group", "");
    let engine = EngineProcess::start(&config);
    let stop = Arc::new(AtomicBool::new(false));
    let traders: Vec<_> = [ALICE, BOB]
        .into_iter()
        .map(|acc| {
            let (addr, stop) = (engine.addr.clone(), Arc::clone(&stop));
            std::thread::spawn(move || trader(addr, acc, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    let stderr = engine.kill9();
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<Seen> = traders.into_iter().map(|t| t.join().unwrap()).collect();
    let total_seen: usize = seen.iter().map(Vec::len).sum();
    assert!(
        total_seen > 1_000,
        "too little load before the kill: {total_seen} reports\n{}",
        stderr.join("\n")
    );
    let fills = seen
        .iter()
        .flatten()
        .filter(|r| matches!(r.exec_type, ExecType::Filled | ExecType::PartiallyFilled))
        .count();
    assert!(fills > 100, "the load did not trade: {fills} fills");

    // 1. Replay the journals offline and regenerate every report, for each account.
    let data = dir.path().join("data");
    let mut hashes = Vec::new();
    let mut resting: Vec<(SymbolId, OrderId, Qty)> = Vec::new();
    let replayed = replay_reports(&data, &config, report_key, |_, engine| {
        hashes.push(engine.state_hash());
        // Every order resting after the replay, for step 3.
        for inst in engine.instruments().cloned().collect::<Vec<_>>() {
            for side in [Side::Buy, Side::Sell] {
                for level in engine.depth(inst.id, side, usize::MAX) {
                    for id in engine.queue(inst.id, side, level.price) {
                        resting.push((inst.id, id, engine.order_leaves(id).unwrap()));
                    }
                }
            }
        }
    });
    for (who, reports) in [(ALICE.0, &seen[0]), (BOB.0, &seen[1])] {
        let known = replayed.get(&who).cloned().unwrap_or_default();
        for r in reports {
            assert!(
                known.contains(&report_key(r)),
                "account {who} was told {r:?}, which replaying the journal does not reproduce"
            );
        }
    }

    // 2. The restarted engine recovers to the offline replay's state, shard by shard.
    let mut engine = EngineProcess::start(&config);
    std::thread::sleep(Duration::from_millis(200));
    engine.collect();
    for (shard, hash) in hashes.iter().enumerate() {
        let line = format!("veloz: shard {shard}: recovered ");
        let recovered = engine
            .stderr_lines
            .iter()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| {
                panic!(
                    "no recovery line for shard {shard}:\n{}",
                    engine.stderr_lines.join("\n")
                )
            });
        assert!(
            recovered.ends_with(&format!("state hash {hash:016x}")),
            "shard {shard}: offline {hash:016x}, engine: {recovered}"
        );
    }

    // 3. Orders resting per the replay can be cancelled, with the replayed quantity.
    let owner_of = |id: OrderId| -> AccountId {
        for (acc, reports) in [(ALICE.0, &seen[0]), (BOB.0, &seen[1])] {
            if reports
                .iter()
                .any(|r| r.order_id == id && r.exec_type == ExecType::Accepted)
            {
                return acc;
            }
        }
        0 // accepted in the journal, but the client never heard of it
    };
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    let mut cancelled = 0;
    for (symbol, id, leaves) in resting.iter().take(200) {
        let client = match owner_of(*id) {
            1 => &mut alice,
            2 => &mut bob,
            _ => continue,
        };
        client
            .send(&cancel(*symbol, 9_000_000 + cancelled, *id))
            .unwrap();
        let r = client.next_report(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (r.exec_type, r.order_id, r.qty),
            (ExecType::Cancelled, *id, *leaves),
            "{r:?}"
        );
        cancelled += 1;
    }
    assert!(
        cancelled > 0,
        "no resting order to cancel after the restart"
    );
    assert_eq!(engine.stop().0, 0);
}

/// `veloz replay --verify`, `veloz journal dump` and `veloz journal trades` on the data
/// directory of a clean run; a tampered marker is caught.
#[test]
fn offline_replay_verifies_dumps_and_rebuilds_the_trade_tape() {
    let _serial = serial();
    let dir = TempDir::new("replay-cli");
    let config = test_config(dir.path(), "none", "");
    let engine = EngineProcess::start(&config);
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut b, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    for i in 0..10 {
        c.send(&limit(4, i, Side::Sell, 1_200_000, 5)).unwrap();
        c.next_report(Duration::from_secs(10)).unwrap();
    }
    b.send(&limit(4, 1, Side::Buy, 1_200_000, 23)).unwrap();
    let _ = b.next_report(Duration::from_secs(10)).unwrap();
    for _ in 0..5 {
        let r = b.next_report(Duration::from_secs(10)).unwrap();
        assert!(matches!(
            r.exec_type,
            ExecType::Filled | ExecType::PartiallyFilled
        ));
    }
    let (code, _, _) = engine.stop();
    assert_eq!(code, 0);
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let cfg = config.to_str().unwrap();
    let (code, out, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("verified against the clean shutdown"), "{err}");
    assert!(out.contains("NVDA (id 4): 11 commands, 5 trades"), "{out}");
    // 10 sells of 5, 23 bought: 2 left at the best ask (one partly filled), 5 orders open.
    assert!(
        out.contains("asks 2@1200000(1) 25@1200000") || out.contains("asks 27@1200000(6)"),
        "{out}"
    );
    // JSON lines: one per record, checkpoints included.
    let (code, out, _) = veloz(&["journal", "dump", "--data", d]);
    assert_eq!(code, Some(0));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["record"]["type"] == "command")
            .count(),
        11
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["record"]["type"] == "checkpoint")
            .count(),
        2
    );
    // The trade tape from the journal alone.
    let (code, out, _) = veloz(&["journal", "trades", "--data", d, "--config", cfg]);
    assert_eq!(code, Some(0));
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains(",NVDA,1200000,") && r.contains(",buy,")),
        "{out}"
    );
    // A marker that disagrees with the journals fails verification.
    let marker = data.join("shutdown.json");
    let text = std::fs::read_to_string(&marker).unwrap();
    let tampered = text.replacen("\"last_seq\": ", "\"last_seq\": 1", 1);
    std::fs::write(&marker, tampered).unwrap();
    let (code, _, err) = veloz(&["replay", "--data", d, "--config", cfg, "--verify"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("MISMATCH"), "{err}");
}

/// A bad CRC in the middle of a journal (valid records after it) stops the start with an
/// error naming the file and offset; `--repair-journal` cuts it, says so, and starts.
#[test]
fn mid_journal_corruption_refuses_to_start_unless_repaired() {
    let _serial = serial();
    let dir = TempDir::new("corrupt");
    let config = test_config(dir.path(), "none", "");
    let engine = EngineProcess::start(&config);
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for i in 0..20 {
        c.send(&limit(1, i, Side::Buy, 1_800_000 + 100 * i as i64, 1))
            .unwrap();
        c.next_report(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(engine.stop().0, 0);
    // AAPL lives on shard 0: flip one payload byte of its 5th record.
    let shard_dir = dir.path().join("data/shard-0");
    let segment = std::fs::read_dir(&shard_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "vlj"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    use veloz_journal::format::{REC_LEN, SEGMENT_HEADER_LEN};
    let mut offset = SEGMENT_HEADER_LEN;
    for _ in 0..4 {
        let len = &bytes[offset + REC_LEN..offset + REC_LEN + 4];
        offset += u32::from_le_bytes(len.try_into().unwrap()) as usize;
    }
    bytes[offset + 40] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();

    let (_, stderr) = match EngineProcess::try_start(&config) {
        Ok(_) => panic!("the engine started on a corrupt journal"),
        Err(e) => e,
    };
    let all = stderr.join("\n");
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        all.contains(&format!("{name} at offset {offset} after seq 4"))
            && all.contains("refusing to open without repair"),
        "{all}"
    );
    // The operator repairs explicitly: the rest is cut (and reported), the engine starts.
    let mut engine = EngineProcess::try_start_with(&config, &["--repair-journal"])
        .unwrap_or_else(|(e, l)| panic!("{e}\n{}", l.join("\n")));
    std::thread::sleep(Duration::from_millis(200));
    engine.collect();
    let all = engine.stderr_lines.join("\n");
    assert!(
        all.contains("shard 0: warning:") && all.contains(name),
        "{all}"
    );
    assert!(all.contains("shard 0: recovered 4 commands"), "{all}");
    assert_eq!(engine.stop().0, 0);
}

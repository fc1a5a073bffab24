//! Both network paths of the shards (`gateway.network`), end to end over loopback: the
//! engine says which one it runs (log line and `veloz_network_io_uring`), serves a couple of
//! hundred sessions at once, takes a pipelined burst whole, and a session's reports arrive
//! in order on each path.

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use veloz_core::*;
use veloz_load::client::Client;
use veloz_wire::ExecType;

const WAIT: Duration = Duration::from_secs(20);
/// Sessions opened at once, one account each.
const SESSIONS: u64 = 200;
/// Orders one session sends before reading any answer.
const BURST: u64 = 20_000;
const FIRST_ACCOUNT: u64 = 100;

fn shards_online() -> usize {
    veloz_config::preflight::online_cores().unwrap().len()
}

fn token(account: u64) -> String {
    format!("net-test-{account}")
}

/// The test config on `path`, with `SESSIONS` more accounts and no half-open limit.
fn config(dir: &std::path::Path, path: &str) -> std::path::PathBuf {
    let config = test_config(
        dir,
        "none",
        &format!("network = \"{path}\"\nmax_pending_logons_per_ip = 0"),
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    for id in FIRST_ACCOUNT..FIRST_ACCOUNT + SESSIONS {
        let hash = format!("{:x}", Sha256::digest(token(id).as_bytes()));
        text.push_str(&format!(
            "\n[[accounts]]\nid = {id}\nname = \"net{id}\"\ntoken_sha256 = \"{hash}\"\n"
        ));
    }
    std::fs::write(&config, text).unwrap();
    config
}

fn serves_on(path: &str, uring: bool) {
    let _serial = serial();
    let dir = TempDir::new(&format!("net-{path}"));
    let mut engine = EngineProcess::start(&config(dir.path(), path));
    let addr = engine.addr.clone();

    // Many sessions at once: each rests an order and gets its own acknowledgement.
    let mut sessions: Vec<Client> = (FIRST_ACCOUNT..FIRST_ACCOUNT + SESSIONS)
        .map(
            |id| match Client::logon(&addr, id as AccountId, &token(id)) {
                Ok((c, _)) => c,
                Err(e) => {
                    engine.collect();
                    panic!(
                        "logon of account {id}: {e}\n{}",
                        engine.stderr_lines.join("\n")
                    )
                }
            },
        )
        .collect();
    for (i, c) in sessions.iter_mut().enumerate() {
        c.send(&limit(
            1,
            i as u64,
            Side::Buy,
            1_800_000 + (i % 50) as i64 * 100,
            1,
        ))
        .unwrap();
    }
    for (i, c) in sessions.iter_mut().enumerate() {
        let r = c.next_report(WAIT).unwrap();
        assert_eq!(
            (r.exec_type, r.client_order_id),
            (ExecType::Accepted, i as u64),
            "session {i}: {r:?}"
        );
    }

    // A pipelined burst from one session, sent whole before anything is read: every order
    // is answered, in order.
    let burster = &mut sessions[0];
    for i in 0..BURST {
        burster
            .send(&limit(
                2,
                1_000 + i,
                Side::Sell,
                2_400_000 - (i % 50) as i64 * 100,
                1,
            ))
            .unwrap();
    }
    for i in 0..BURST {
        let r = burster.next_report(WAIT).unwrap();
        assert_eq!(
            (r.exec_type, r.client_order_id),
            (ExecType::Accepted, 1_000 + i)
        );
    }

    // Half the sessions go away at once; the others still trade.
    sessions.truncate(SESSIONS as usize / 2);
    let c = &mut sessions[1];
    c.send(&limit(1, 99_999, Side::Buy, 1_750_000, 1)).unwrap();
    let r = c.next_report(WAIT).unwrap();
    assert_eq!(r.exec_type, ExecType::Accepted, "{r:?}");

    // The engine says which path it runs, in its log and its metrics.
    std::thread::sleep(Duration::from_millis(500));
    let text = scrape(&engine.metrics);
    for shard in 0..shards_online() {
        let series = format!("veloz_network_io_uring{{shard=\"{shard}\"}}");
        assert_eq!(
            metric(&text, &series),
            Some(if uring { 1.0 } else { 0.0 }),
            "{series}"
        );
    }
    if uring {
        let completions = metric(&text, "veloz_io_uring_completions_total{shard=\"0\"}");
        assert!(completions.is_some_and(|c| c > 0.0), "{completions:?}");
    }
    drop(sessions);
    engine.collect();
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    let line = stderr
        .iter()
        .find(|l| l.contains("network: "))
        .unwrap_or_else(|| panic!("no network line:\n{}", stderr.join("\n")));
    let expect = if uring {
        "network: io_uring"
    } else {
        "network: std sockets"
    };
    assert!(line.contains(expect), "{line}");
}

#[test]
fn std_sockets_serve_many_sessions_and_say_so() {
    serves_on("std", false);
}

#[test]
fn io_uring_serves_many_sessions_and_says_so() {
    if let Err(why) = veloz_uring::probe() {
        eprintln!("skipped: the kernel refuses what the io_uring path needs: {why}");
        return;
    }
    serves_on("io_uring", true);
}

/// Group commit with its syncs on the shards' rings (`journal.sync_on_ring = true`): every
/// order is acknowledged (so its sync completed), the engine says where syncs run, and the
/// journal replays to the state the engine stopped with.
#[test]
fn group_commit_syncs_on_the_ring_when_asked() {
    if let Err(why) = veloz_uring::probe() {
        eprintln!("skipped: the kernel refuses what the io_uring path needs: {why}");
        return;
    }
    let _serial = serial();
    let dir = TempDir::new("net-ring-sync");
    let config = test_config(dir.path(), "group", "network = \"io_uring\"");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "durability = \"group\"",
            "durability = \"group\"\nsync_on_ring = true",
        ),
    )
    .unwrap();
    let engine = EngineProcess::start(&config);
    let (mut c, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    for i in 0..2_000u64 {
        c.send(&limit(
            1,
            i,
            Side::Buy,
            1_800_000 + (i % 50) as i64 * 100,
            1,
        ))
        .unwrap();
    }
    for i in 0..2_000u64 {
        let r = c.next_report(WAIT).unwrap();
        assert_eq!((r.exec_type, r.client_order_id), (ExecType::Accepted, i));
    }
    std::thread::sleep(Duration::from_millis(500));
    let text = scrape(&engine.metrics);
    let mut syncs = 0.0;
    for shard in 0..shards_online() {
        let on_ring = format!("veloz_journal_sync_io_uring{{shard=\"{shard}\"}}");
        assert_eq!(metric(&text, &on_ring), Some(1.0), "{on_ring}");
        let done = format!("veloz_journal_syncs_total{{shard=\"{shard}\"}}");
        syncs += metric(&text, &done).unwrap_or(0.0);
    }
    assert!(syncs > 0.0, "no sync completed");
    drop(c);
    let (code, _, stderr) = engine.stop();
    assert_eq!(code, 0, "{}", stderr.join("\n"));
    assert!(
        stderr.iter().any(|l| l.contains("journal sync: io_uring")),
        "{}",
        stderr.join("\n")
    );
    let (code, out, err) = replay_verify(&dir.path().join("data"), &config);
    assert_eq!(code, Some(0), "{out}\n{err}");
}

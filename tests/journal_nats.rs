//! `veloz journal dump|trades --nats`: an engine's journals read back from its JetStream
//! streams are the same records as its data directory's journals.
//!
//! One real nats-server (JetStream, loopback, free ports: `tests/replication/cluster.rs`) and
//! one real engine with `journal.durability = "replicated"` pointed at it; two clients trade,
//! the engine stops cleanly, then:
//! - `journal dump --nats --config C` prints exactly what `journal dump --data D` prints, and
//!   so does `--nats URL --engine NAME` without a config (the overrides);
//! - `--markers` adds each stream's leader marker (this engine's lease epoch) and nothing
//!   else; `--shard N --from-seq S --until U` selects as the local `--from`/`--until` do;
//! - `journal trades --nats` prints the local trade tape;
//! - an engine name with no streams fails, naming the stream it looked for;
//! - a message appended to a stream that is neither records nor a leader marker stops the
//!   dump with an error naming the stream and the message (the record checks themselves,
//!   gaps and repeats, are unit tests in `src/cli/journal_nats.rs`).
//!
//! Skips (returns early, saying why) only when nats-server is not installed; `make tools`
//! installs it (Debian package nats-server). Holds `common::serial()` throughout.

mod common;
mod replication;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use replication::cluster::{nats_request, nats_server, NatsCluster};
use veloz_config::Config;
use veloz_core::Side;
use veloz_load::client::Client;

/// Run `veloz ARGS` and return its stdout, failing the test (with stderr) unless it exits 0.
fn veloz_ok(args: &[&str]) -> String {
    let (code, out, err) = veloz(args);
    assert_eq!(
        code,
        Some(0),
        "veloz {} failed:\n--- stdout\n{out}--- stderr\n{err}",
        args.join(" ")
    );
    out
}

/// The `"shard"` and `"seq"` of a dump line of a record.
fn shard_and_seq(line: &str) -> (u64, u64) {
    let v: serde_json::Value = serde_json::from_str(line).expect("a dump line is JSON");
    (v["shard"].as_u64().unwrap(), v["seq"].as_u64().unwrap())
}

#[test]
fn a_dump_from_the_streams_is_the_dump_of_the_data_directory() {
    let _serial = serial();
    const TEST: &str = "a_dump_from_the_streams_is_the_dump_of_the_data_directory";
    if let Err(why) = nats_server() {
        eprintln!("{TEST}: skipped: {why}");
        return;
    }
    let dir = TempDir::new("journal-nats");
    let cluster = NatsCluster::start(&dir.path().join("nats"), 1).unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.urls()[0].clone();
    let config = test_config(dir.path(), "replicated", "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[replication]\nurls = [{url:?}]\nengine = \"dumptest\"\nreplicas = 1\nlease_ms = 1000\n"
    ));
    std::fs::write(&config, text).unwrap();
    let config_s = config.to_str().unwrap();

    // Crossing pairs on every instrument: every pair trades. A report comes back only once
    // JetStream acknowledged the records before it.
    let engine = EngineProcess::start(&config);
    let data = engine.data.clone();
    let data_s = data.to_str().unwrap().to_string();
    let (mut alice, _) = Client::logon(&engine.addr, ALICE.0, ALICE.1).unwrap();
    let (mut bob, _) = Client::logon(&engine.addr, BOB.0, BOB.1).unwrap();
    let wait = Duration::from_secs(10);
    let (mut alice_waits, mut bob_waits) = (BTreeSet::new(), BTreeSet::new());
    for (i, inst) in Config::default()
        .instruments()
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let price = inst.reference_price + (i % 3) as i64 * inst.tick_size;
        let coid = i as u64 + 1;
        alice
            .send(&limit(inst.id, coid, Side::Sell, price, 5))
            .unwrap();
        alice_waits.insert(coid);
        bob.send(&limit(inst.id, coid, Side::Buy, price, 3 + (i % 3) as u64))
            .unwrap();
        bob_waits.insert(coid);
    }
    // Every order acknowledged (its first report) before the engine stops: all journaled.
    for (client, waits) in [(&mut alice, &mut alice_waits), (&mut bob, &mut bob_waits)] {
        while !waits.is_empty() {
            let r = client
                .next_report(wait)
                .unwrap_or_else(|e| panic!("waiting for {waits:?}: {e}"));
            waits.remove(&r.client_order_id);
        }
    }
    drop((alice, bob));
    let (code, _, stderr) = engine.stop();
    assert_eq!(
        code,
        0,
        "the engine did not stop cleanly:\n{}",
        stderr.join("\n")
    );

    let local = veloz_ok(&["journal", "dump", "--data", &data_s]);
    let streamed = veloz_ok(&["journal", "dump", "--nats", "--config", config_s]);
    assert!(local.lines().count() >= 80, "too few records:\n{local}");
    assert!(local.contains("\"kind\":\"new\""), "{local}");
    assert_eq!(
        streamed, local,
        "the streams' dump differs from the data directory's"
    );

    // The URLs and the engine name from the command line, no config at all.
    let overridden = veloz_ok(&["journal", "dump", "--nats", &url, "--engine", "dumptest"]);
    assert_eq!(overridden, local);

    // --markers: one leader marker per stream this engine wrote to (its first message),
    // and the records unchanged around it.
    let marked = veloz_ok(&[
        "journal",
        "dump",
        "--nats",
        "--config",
        config_s,
        "--markers",
    ]);
    let (markers, records): (Vec<&str>, Vec<&str>) =
        marked.lines().partition(|l| l.contains("\"stream_seq\""));
    assert_eq!(records.join("\n") + "\n", local);
    assert!(!markers.is_empty(), "no leader marker:\n{marked}");
    for m in &markers {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        assert!(v["shard"].is_u64() && v["stream_seq"].is_u64(), "{m}");
        assert!(
            v["leader"].as_str().is_some_and(|l| l.contains(" epoch ")),
            "{m}"
        );
        assert_eq!(v.as_object().unwrap().len(), 3, "{m}");
    }
    assert_eq!(
        marked.lines().next().map(|l| l.contains("\"leader\"")),
        Some(true),
        "a stream starts with its leader marker:\n{marked}"
    );

    // One shard, a window in the middle: --from-seq is --from, as the local dump selects.
    let (shard, last) = local
        .lines()
        .map(shard_and_seq)
        .max_by_key(|(_, seq)| *seq)
        .unwrap();
    let (from, until) = ((last / 3).max(2).to_string(), (2 * last / 3).to_string());
    let shard = shard.to_string();
    let window = |source: &[&str], from_flag: &str| {
        let mut args = vec!["journal", "dump"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--shard", &shard, from_flag, &from, "--until", &until]);
        veloz_ok(&args)
    };
    let local_window = window(&["--data", &data_s], "--from");
    let streamed_window = window(&["--nats", "--config", config_s], "--from-seq");
    assert!(!local_window.is_empty(), "shard {shard} {from}..={until}");
    assert_eq!(streamed_window, local_window);
    let first = local_window.lines().next().map(shard_and_seq).unwrap().1;
    assert_eq!(first.to_string(), from);

    // The trade tape, rebuilt from the streams.
    let tape = veloz_ok(&["journal", "trades", "--data", &data_s, "--config", config_s]);
    assert!(tape.lines().count() > 40, "{tape}");
    let streamed_tape = veloz_ok(&["journal", "trades", "--nats", "--config", config_s]);
    assert_eq!(streamed_tape, tape);

    // An engine with no streams: an error naming the stream looked for.
    let (code, out, err) = veloz(&[
        "journal",
        "dump",
        "--nats",
        &url,
        "--engine",
        "nosuchengine",
    ]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("VELOZ_nosuchengine_0"), "{err}");
    assert!(err.contains("not found"), "{err}");

    // A message that is neither records nor a leader marker, appended to shard 0's stream:
    // the dump stops there, naming the stream and the message.
    let ack = nats_request(
        cluster.client_port(0),
        "veloz.dumptest.0",
        "",
        Duration::from_secs(5),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stream_seq = ack
        .split("\"seq\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or_else(|| panic!("no seq in the publish acknowledgement {ack}"));
    let (code, _, err) = veloz(&["journal", "dump", "--nats", "--config", config_s]);
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "stream VELOZ_dumptest_0 message {stream_seq}: an empty message without a leader header"
        )),
        "{err}"
    );
    drop(cluster);
}

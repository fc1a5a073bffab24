//! Replay determinism and format stability.
//!
//! - A seeded workload is applied live (append to the journal, then apply) and then rebuilt
//!   from the journal through the recovery path ([`journal::open_with`] feeding
//!   [`apply_record`], what a shard does at start): every command's events and the final
//!   state hash must be identical, and the clean-shutdown checkpoint must verify.
//! - A small journal written by format version 1 is pinned byte for byte (the golden hex below
//!   is this repository's fixture, kept in the test so the test cannot drift from it), and
//!   replaying those bytes must give its known state hash, read-only and through recovery
//!   (a legacy journal: no chain head): a change that breaks old journals, or changes what they
//!   replay to, fails here. This version (2) writes the same records under a version-2 header,
//!   also pinned, with a pinned chain head.

use veloz_core::workload::{generate, synthetic_instruments, timestamp_of, WorkloadConfig};
use veloz_core::{
    CancelOrder, Command, Event, Instrument, MassCancel, NewOrder, OrderKind, ReplaceOrder,
    SelfTradePrevention, Seq, Side, TimeInForce,
};
use veloz_journal::chain::HEAD_NAME;
use veloz_journal::format::{last_nonzero_end, SegmentHeader, SEGMENT_HEADER_LEN};
use veloz_journal::layout::segment_name;
use veloz_journal::replay::apply_record;
use veloz_journal::{
    Checkpoint, CheckpointReason, Durability, JournalConfig, JournalReader, MemStorage,
    OpenOptions, RecordBody, Storage,
};

const SEED: u64 = 20_260_103;

#[test]
fn live_and_replayed_from_the_journal_are_identical() {
    let instruments = synthetic_instruments(4);
    let wl = generate(&WorkloadConfig::many_symbols(SEED, 30_000, 4), &instruments);
    let mem = MemStorage::new();
    let config = JournalConfig {
        segment_size: 256 << 10, // several rollovers
        durability: Durability::Group,
        ..JournalConfig::default()
    };

    // Live: sequence, append, apply.
    let (mut w, _) = veloz_journal::open(mem.clone(), 0, &config, OpenOptions::default()).unwrap();
    let mut live = wl.engine();
    let mut live_events: Vec<(Seq, Vec<Event>)> = Vec::new();
    let mut trades = 0;
    for cmd in wl.prefill.iter().chain(&wl.commands) {
        let seq = w.next_seq();
        let ts = timestamp_of(seq);
        assert_eq!(w.append_command(ts, cmd).unwrap(), seq);
        let mut ev = Vec::new();
        live.apply(seq, ts, cmd, &mut ev);
        trades += ev
            .iter()
            .filter(|e| matches!(e, Event::Trade { .. }))
            .count();
        live_events.push((seq, ev));
    }
    assert!(trades > 100, "the workload should trade ({trades} trades)");
    let hash = live.state_hash();
    let end = w.next_seq();
    w.append_checkpoint(
        timestamp_of(end),
        &Checkpoint {
            state_hash: hash,
            reason: CheckpointReason::CleanShutdown,
        },
    )
    .unwrap();
    assert_eq!(w.close().unwrap(), end);

    // Rebuilt through the recovery path.
    let mut engine = wl.engine();
    let mut replayed: Vec<(Seq, Vec<Event>)> = Vec::new();
    let mut scratch = Vec::new();
    let (w, report) =
        veloz_journal::open_with(mem.clone(), 0, &config, OpenOptions::default(), |rec| {
            apply_record(&mut engine, rec, &mut scratch).expect("checkpoint verifies");
            if let RecordBody::Command(_) = rec.body {
                replayed.push((rec.seq, scratch.clone()));
            }
        })
        .unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(
        report.last_checkpoint.map(|(s, c)| (s, c.state_hash)),
        Some((end, hash))
    );
    assert_eq!(replayed.len(), live_events.len());
    for (l, r) in live_events.iter().zip(&replayed) {
        assert_eq!(l, r, "events of seq {} differ", l.0);
    }
    assert_eq!(engine.state_hash(), hash);
    drop(w);

    // A checkpoint that does not match the replayed state is caught.
    let (mut w, _) = veloz_journal::open(mem.clone(), 0, &config, OpenOptions::default()).unwrap();
    w.append_checkpoint(
        1,
        &Checkpoint {
            state_hash: hash ^ 1,
            reason: CheckpointReason::Operator,
        },
    )
    .unwrap();
    w.close().unwrap();
    let mut engine = wl.engine();
    let mut first_error = None;
    for rec in JournalReader::open(mem, 0).unwrap() {
        if let Err(e) = apply_record(&mut engine, &rec.unwrap(), &mut scratch) {
            first_error.get_or_insert(e.to_string());
        }
    }
    assert_eq!(
        first_error.unwrap(),
        format!(
            "checkpoint at sequence {} records state hash {:016x}, but replaying the journal up to it gives {hash:016x}",
            end + 1,
            hash ^ 1
        )
    );
}

/// The fixed journal of the stability test: every command variant on one instrument, then a
/// checkpoint.
fn fixture_commands() -> Vec<Command> {
    let new = |account, client_order_id, side, price, qty, tif| {
        Command::New(NewOrder {
            account,
            symbol: 1,
            client_order_id,
            side,
            kind: OrderKind::Limit,
            tif,
            post_only: false,
            stp: SelfTradePrevention::Allow,
            price,
            qty,
        })
    };
    vec![
        new(1, 11, Side::Sell, 1_005, 10, TimeInForce::Gtc),
        new(1, 12, Side::Sell, 1_007, 4, TimeInForce::Gtc),
        new(2, 21, Side::Buy, 1_000, 8, TimeInForce::Gtc),
        new(3, 31, Side::Buy, 1_006, 6, TimeInForce::Ioc),
        Command::Replace(ReplaceOrder {
            account: 2,
            symbol: 1,
            client_order_id: 22,
            order_id: 3,
            price: 1_001,
            qty: 8,
        }),
        Command::Cancel(CancelOrder {
            account: 1,
            symbol: 1,
            client_order_id: 13,
            order_id: 2,
        }),
        Command::New(NewOrder {
            account: 4,
            symbol: 1,
            client_order_id: 41,
            side: Side::Sell,
            kind: OrderKind::Market,
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: SelfTradePrevention::CancelBoth,
            price: 0,
            qty: 3,
        }),
        Command::MassCancel(MassCancel {
            account: 2,
            client_order_id: 23,
            symbol: Some(1),
            reason: veloz_core::CancelReason::MassCancel,
        }),
        Command::MassCancel(MassCancel {
            account: 1,
            client_order_id: 14,
            symbol: None,
            reason: veloz_core::CancelReason::MassCancel,
        }),
    ]
}

/// Format version 1: the segment `00000000000000000001.vlj` of shard 5 holding
/// [`fixture_commands`] (ts = 1_000 * seq) and a clean-shutdown checkpoint, up to its last
/// non-zero byte.
const GOLDEN_HEX: &str = concat!(
    "56454c4f5a4a4e4c01004000050000000100000000000000e80300000000000000000000000000000000000000000000",
    "000000000000000000000000fdeebc1b66ca8a95500000000100000000000000e8030000000000000100000000000000",
    "010100000000000001000000010000000b000000000000000000000000000000ed030000000000000a00000000000000",
    "b5689922500000000200000000000000d007000000000000010000000000000001010000000000000100000001000000",
    "0c000000000000000000000000000000ef03000000000000040000000000000047f301d4500000000300000000000000",
    "b80b00000000000001000000000000000100000000000000020000000100000015000000000000000000000000000000",
    "e80300000000000008000000000000001d043860500000000400000000000000a00f0000000000000100000000000000",
    "010000010000000003000000010000001f000000000000000000000000000000ee030000000000000600000000000000",
    "d6a050bd5000000005000000000000008813000000000000010000000000000003000000000000000200000001000000",
    "16000000000000000300000000000000e9030000000000000800000000000000dce958e1500000000600000000000000",
    "70170000000000000100000000000000020000000000000001000000010000000d000000000000000200000000000000",
    "000000000000000000000000000000007baf2c4f500000000700000000000000581b0000000000000100000000000000",
    "010101010003000004000000010000002900000000000000000000000000000000000000000000000300000000000000",
    "6908c88b500000000800000000000000401f000000000000010000000000000004000000000001000200000001000000",
    "17000000000000000000000000000000000000000000000000000000000000002c5783e7500000000900000000000000",
    "28230000000000000100000000000000040000000000000001000000000000000e000000000000000000000000000000",
    "000000000000000000000000000000003b3f4961300000000a0000000000000010270000000000000200000000000000",
    "dea9dfe71ea36c0801",
);
/// The engine's state hash after the fixture's commands (what its checkpoint records).
const GOLDEN_STATE_HASH: u64 = 0x086c_a31e_e7df_a9de;
/// Format version 3 (like version 2) writes the same records for these commands; only the
/// segment header differs (its version and CRC: the first segment of a journal has no
/// previous-segment link).
const GOLDEN_V3_HEADER_HEX: &str = concat!(
    "56454c4f5a4a4e4c03004000050000000100000000000000e80300000000000000000000000000000000000000000000",
    "00000000000000000000000058718d56",
);
/// The chain head after the fixture's clean close: shard 5, newest segment first seq 1 with the
/// header CRC above, no spare announced.
const GOLDEN_HEAD_HEX: &str = "56454c4f5a43484e0100050001000000010000000000000058718d5661f8ee84";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn format_v1_bytes_and_their_replay_are_stable() {
    let instruments = [Instrument::simple(1, "FIX")];
    let config = JournalConfig::default()
        .with_segment_size(4096)
        .with_durability(Durability::None);

    // This version still writes exactly the pinned bytes.
    let mem = MemStorage::new();
    let (mut w, _) = veloz_journal::open(mem.clone(), 5, &config, OpenOptions::default()).unwrap();
    let mut engine = veloz_core::Engine::new(5, &instruments);
    let mut scratch = Vec::new();
    for cmd in fixture_commands() {
        let seq = w.next_seq();
        w.append_command(1_000 * seq, &cmd).unwrap();
        engine.apply(seq, 1_000 * seq, &cmd, &mut scratch);
    }
    let seq = w.next_seq();
    w.append_checkpoint(
        1_000 * seq,
        &Checkpoint {
            state_hash: engine.state_hash(),
            reason: CheckpointReason::CleanShutdown,
        },
    )
    .unwrap();
    w.close().unwrap();
    let bytes = mem.read(&segment_name(1)).unwrap();
    let used = last_nonzero_end(&bytes, 0).unwrap();
    assert_eq!(
        hex(&bytes[..used]),
        format!(
            "{GOLDEN_V3_HEADER_HEX}{}",
            &GOLDEN_HEX[SEGMENT_HEADER_LEN * 2..]
        ),
        "the bytes this version writes changed: readers of existing journals would break"
    );
    assert_eq!(
        hex(&mem.read(HEAD_NAME).unwrap()),
        GOLDEN_HEAD_HEX,
        "the chain head's bytes changed"
    );
    assert_eq!(
        engine.state_hash(),
        GOLDEN_STATE_HASH,
        "the fixture's commands now lead to another state: existing journals replay differently"
    );

    // The pinned bytes, as an old journal on disk would hold them, replay to the known hash.
    let old = MemStorage::new();
    let mut file = unhex(GOLDEN_HEX);
    file.resize(4096, 0);
    old.save(&segment_name(1), &file).unwrap();
    let mut engine = veloz_core::Engine::new(5, &instruments);
    let mut records = 0;
    let mut reader = JournalReader::open(old.clone(), 5).unwrap();
    for rec in reader.by_ref() {
        apply_record(&mut engine, &rec.unwrap(), &mut scratch).expect("its checkpoint verifies");
        records += 1;
    }
    assert_eq!(records, fixture_commands().len() + 1);
    assert_eq!(engine.state_hash(), GOLDEN_STATE_HASH);
    assert_eq!(
        reader.warnings().iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        vec!["journal mem: has no chain head (written by format version 1): its end cannot be checked; accepted as a legacy journal (recovery will write a chain head)"]
    );
    drop(reader);

    // Recovery opens it as a legacy journal, replays it to the same hash and writes a chain
    // head; the next segment is the current version, linked to the version-1 one.
    let mut engine = veloz_core::Engine::new(5, &instruments);
    let (mut w, report) =
        veloz_journal::open_with(old.clone(), 5, &config, OpenOptions::default(), |rec| {
            apply_record(&mut engine, rec, &mut scratch).expect("its checkpoint verifies")
        })
        .unwrap();
    assert_eq!(engine.state_hash(), GOLDEN_STATE_HASH);
    assert_eq!(
        report.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        vec!["journal mem: has no chain head (written by format version 1): its end cannot be checked; accepted as a legacy journal, chain head written"]
    );
    let mut cmds = fixture_commands().into_iter().cycle();
    while w.stats().segments_activated == 0 {
        let seq = w.next_seq();
        w.append_command(1_000 * seq, &cmds.next().unwrap())
            .unwrap();
    }
    let last = w.written_seq();
    w.close().unwrap();
    let first = report.next_seq + (4096 - used) as u64 / 80;
    let second = SegmentHeader::decode(&old.read(&segment_name(first)).unwrap()).unwrap();
    assert_eq!((second.version, second.prev_link.is_some()), (3, true));
    assert_eq!(SegmentHeader::decode(&file).unwrap().version, 1);
    let mut reader = JournalReader::open(old.clone(), 5).unwrap();
    assert_eq!(reader.by_ref().map(|r| r.unwrap().seq).last(), Some(last));
    assert!(reader.warnings().is_empty(), "{:?}", reader.warnings());
    // The old bytes are untouched.
    assert_eq!(&old.read(&segment_name(1)).unwrap()[..used], &file[..used]);
}

use super::sections::*;
use super::*;

fn new_order(coid: u64, side: Side, price: Price, qty: Qty) -> Command {
    Command::New(NewOrder {
        account: 1 + (coid % 3) as AccountId,
        client_order_id: coid,
        symbol: 1,
        side,
        kind: OrderKind::Limit,
        price,
        qty,
        tif: TimeInForce::Gtc,
        post_only: false,
        stp: SelfTradePrevention::Allow,
    })
}

#[test]
fn round_trip_keeps_hash_and_priority() {
    let mut e = Engine::new(3, &[Instrument::simple(1, "A"), Instrument::simple(7, "B")]);
    let mut out = Vec::new();
    for k in 1..=50u64 {
        let side = if k % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if side == Side::Buy {
            100 - (k % 5) as i64
        } else {
            103 + (k % 4) as i64
        };
        e.apply(k, k * 10, &new_order(k, side, price, k), &mut out);
    }
    e.apply(51, 510, &new_order(51, Side::Buy, 104, 7), &mut out);
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    let back = Engine::read_snapshot(&bytes).unwrap();
    assert_eq!(back.state_hash(), e.state_hash());
    assert_eq!(back.resting_orders(), e.resting_orders());
    assert_eq!(back.queue(1, Side::Buy, 100), e.queue(1, Side::Buy, 100));
    assert_eq!(
        back.instruments().collect::<Vec<_>>(),
        e.instruments().collect::<Vec<_>>()
    );
    assert_eq!(back.shard(), 3);
}

#[test]
fn damaged_bodies_are_refused_by_name() {
    let mut e = Engine::new(0, &[Instrument::simple(1, "A")]);
    let mut out = Vec::new();
    e.apply(1, 1, &new_order(1, Side::Buy, 10, 5), &mut out);
    e.apply(2, 2, &new_order(2, Side::Buy, 11, 5), &mut out);
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    assert!(matches!(
        Engine::read_snapshot(&bytes[..bytes.len() - 1]),
        Err(SnapshotError::Truncated { .. })
    ));
    let first = SNAPSHOT_BODY_HEADER_LEN + SNAPSHOT_INSTRUMENT_LEN + 1;
    let mut bad = bytes.clone();
    bad[first + SNO_SIDE] = 9;
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Field { field: "side", .. })
    ));
    // The two orders swapped: the worse bid first.
    let mut bad = bytes.clone();
    let (a, b) = (first, first + SNAPSHOT_ORDER_LEN);
    let second = bad[b..b + SNAPSHOT_ORDER_LEN].to_vec();
    bad.copy_within(a..a + SNAPSHOT_ORDER_LEN, b);
    bad[a..a + SNAPSHOT_ORDER_LEN].copy_from_slice(&second);
    let err = Engine::read_snapshot(&bad).unwrap_err().to_string();
    assert!(err.contains("out of priority order"), "{err}");
    bytes.push(0);
    assert!(matches!(
        Engine::read_snapshot(&bytes),
        Err(SnapshotError::Trailing { extra: 1, .. })
    ));
}

/// What a snapshot of 1M resting orders costs the snapshot helper (serializing its
/// shadow engine, off the shard's core), and recovery (loading them back). `cargo test -p veloz-core --release snapshot_of_a_million
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn snapshot_of_a_million_resting_orders() {
    let inst: Vec<Instrument> = (1..=4).map(|i| Instrument::simple(i, "S")).collect();
    let mut e = Engine::new(0, &inst);
    let mut out = Vec::new();
    for k in 1..=1_000_000u64 {
        let mut cmd = new_order(k, Side::Buy, 1_000 + (k % 500) as i64, 1 + k % 9);
        if let Command::New(o) = &mut cmd {
            o.symbol = 1 + (k % 4) as u32;
            if k % 2 == 0 {
                o.side = Side::Sell;
                o.price += 1_000;
            }
        }
        out.clear();
        e.apply(k, k, &cmd, &mut out);
    }
    assert_eq!(e.resting_orders(), 1_000_000);
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes); // grow the buffer once, as the shard's reused one is
    let t = std::time::Instant::now();
    bytes.clear();
    e.write_snapshot(&mut bytes);
    let write = t.elapsed();
    let t = std::time::Instant::now();
    let hash = e.state_hash();
    let hashing = t.elapsed();
    let t = std::time::Instant::now();
    let back = Engine::read_snapshot(&bytes).unwrap();
    let read = t.elapsed();
    assert_eq!(back.state_hash(), hash);
    eprintln!(
        "1M resting orders: {} bytes; write_snapshot {write:?} (reused buffer), state_hash {hashing:?}, read_snapshot (with validate) {read:?}",
        bytes.len()
    );
}

/// An engine whose accounts 1..=3 have stream counters (trades included).
fn engine_with_streams() -> (Engine, Seq) {
    let mut e = Engine::new(2, &[Instrument::simple(1, "A")]);
    let mut out = Vec::new();
    for k in 1..=12u64 {
        let cmd = if k % 2 == 0 {
            new_order(k, Side::Buy, 100 - (k % 3) as i64, 2)
        } else {
            new_order(k, Side::Sell, 105 + (k % 3) as i64, 2)
        };
        e.apply(k, k, &cmd, &mut out);
    }
    for k in 13..=16u64 {
        e.apply(k, k, &new_order(k, Side::Buy, 106, 1), &mut out);
    }
    assert!(out.iter().any(|ev| matches!(ev, Event::Trade { .. })));
    (e, 16)
}

/// Offset of the stream section in a body written by `write_snapshot`.
fn streams_at(e: &Engine, bytes: &[u8]) -> usize {
    bytes.len() - SNAPSHOT_STREAMS_HEADER_LEN - e.stream_accounts() * SNAPSHOT_STREAM_LEN
}

#[test]
fn stream_counters_survive_a_snapshot_and_continue() {
    let (mut e, last_seq) = engine_with_streams();
    e.set_report_retention(5);
    let before: Vec<u64> = (1..=3).map(|a| e.stream_last(a)).collect();
    assert!(before.iter().all(|&n| n > 0));
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    assert_eq!(u16_at(&bytes, SNB_FLAGS), SNAPSHOT_FLAG_STREAMS);
    let at = streams_at(&e, &bytes);
    assert_eq!(u32_at(&bytes, at + SNS_COUNT), 3);
    let mut back = Engine::read_snapshot(&bytes).unwrap();
    assert_eq!(back.state_hash(), e.state_hash());
    assert_eq!(back.stream_accounts(), 3);
    assert_eq!(
        (1..=3).map(|a| back.stream_last(a)).collect::<Vec<_>>(),
        before
    );
    // The windows are not carried.
    assert_eq!(back.report_retention(), 0);
    assert_eq!(back.stream_first_retained(1), None);
    // Both continue with the same numbers.
    let cmd = new_order(30, Side::Buy, 200, 50); // account 1, sweeps the asks
    let (mut x, mut y) = (Vec::new(), Vec::new());
    e.apply(last_seq + 1, 99, &cmd, &mut x);
    back.apply(last_seq + 1, 99, &cmd, &mut y);
    assert_eq!(x, y);
    assert!(x.len() > 2);
    assert_eq!(back.stream_assigned(), e.stream_assigned());
    assert_eq!(back.stream_assigned()[0].stream_seq, before[0] + 1);
    assert_eq!(
        (1..=3).map(|a| back.stream_last(a)).collect::<Vec<_>>(),
        (1..=3).map(|a| e.stream_last(a)).collect::<Vec<_>>()
    );
    // An engine without reports writes an empty section.
    let mut bytes = Vec::new();
    Engine::new(0, &[]).write_snapshot(&mut bytes);
    assert_eq!(
        bytes.len(),
        SNAPSHOT_BODY_HEADER_LEN + SNAPSHOT_STREAMS_HEADER_LEN
    );
    assert_eq!(Engine::read_snapshot(&bytes).unwrap().stream_accounts(), 0);
}

#[test]
fn old_body_without_stream_section_loads_with_empty_counters() {
    let (e, _) = engine_with_streams();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    let at = streams_at(&e, &bytes);
    bytes.truncate(at);
    put_u16(&mut bytes, SNB_FLAGS, 0);
    let back = Engine::read_snapshot(&bytes).unwrap();
    assert_eq!(back.state_hash(), e.state_hash());
    assert_eq!(back.stream_accounts(), 0);
    assert_eq!(back.stream_last(1), 0);
    // The flag set but the section missing: truncated.
    put_u16(&mut bytes, SNB_FLAGS, SNAPSHOT_FLAG_STREAMS);
    assert!(matches!(
        Engine::read_snapshot(&bytes),
        Err(SnapshotError::Truncated { at: a, need: 8, .. }) if a == at
    ));
}

#[test]
fn damaged_stream_sections_are_refused_by_name() {
    let (e, _) = engine_with_streams();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    let at = streams_at(&e, &bytes);
    let first = at + SNAPSHOT_STREAMS_HEADER_LEN;
    let second = first + SNAPSHOT_STREAM_LEN;
    let refused = |bad: &[u8]| match Engine::read_snapshot(bad) {
        Err(SnapshotError::Field { field, at, .. }) => (field, at),
        other => panic!("expected a field error, got {other:?}"),
    };
    let mut bad = bytes.clone();
    put_u16(&mut bad, SNB_FLAGS, SNAPSHOT_FLAG_STREAMS | 8);
    assert_eq!(refused(&bad), ("flags", SNB_FLAGS));
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNS_RESERVED, 1);
    assert_eq!(
        refused(&bad),
        ("stream section reserved", at + SNS_RESERVED)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, second + SNA_ACCOUNT, 1); // equal to the first: not strictly ascending
    assert_eq!(
        refused(&bad),
        ("stream account (not ascending)", second + SNA_ACCOUNT)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, first + SNA_RESERVED, 7);
    assert_eq!(
        refused(&bad),
        ("stream account reserved", first + SNA_RESERVED)
    );
    let mut bad = bytes.clone();
    put_u64(&mut bad, second + SNA_LAST, 0);
    assert_eq!(refused(&bad), ("stream last seq", second + SNA_LAST));
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNS_COUNT, 4); // one account more than there is
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Truncated { .. })
    ));
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNS_COUNT, 2); // one account less: its 16 bytes trail
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Trailing { extra: 16, .. })
    ));
    let mut bad = bytes.clone();
    bad.extend_from_slice(&[0; 3]);
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Trailing { extra: 3, .. })
    ));
    // The error message names the field.
    let mut bad = bytes.clone();
    put_u64(&mut bad, first + SNA_LAST, 0);
    let msg = Engine::read_snapshot(&bad).unwrap_err().to_string();
    assert!(msg.contains("stream last seq"), "{msg}");
}

/// An engine with book 7 halted and accounts 2 and 9 disabled (2 had resting orders).
fn engine_with_admin() -> Engine {
    let mut e = Engine::new(4, &[Instrument::simple(1, "A"), Instrument::simple(7, "B")]);
    let mut out = Vec::new();
    for k in 1..=9u64 {
        e.apply(k, k, &new_order(k, Side::Buy, 90 + k as i64, 3), &mut out);
    }
    for (k, action) in [
        AdminAction::DisableAccount(9),
        AdminAction::HaltInstrument(7),
        AdminAction::DisableAccount(2),
    ]
    .into_iter()
    .enumerate()
    {
        let cmd = Command::Admin(AdminCommand {
            action,
            request_id: k as u64,
        });
        e.apply(10 + k as u64, 10, &cmd, &mut out);
    }
    e
}

/// Offset of the admin section in a body written by `write_snapshot`.
fn admin_at(e: &Engine, bytes: &[u8]) -> usize {
    let entries = e.halted_instruments().count() + e.disabled_accounts().count();
    bytes.len() - SNAPSHOT_ADMIN_HEADER_LEN - entries * SNAPSHOT_ADMIN_ENTRY_LEN
}

#[test]
fn halts_and_disabled_accounts_survive_a_snapshot() {
    let e = engine_with_admin();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    assert_eq!(
        u16_at(&bytes, SNB_FLAGS),
        SNAPSHOT_FLAG_STREAMS | SNAPSHOT_FLAG_ADMIN
    );
    let at = admin_at(&e, &bytes);
    assert_eq!(u32_at(&bytes, at + SNH_HALTED), 1);
    assert_eq!(u32_at(&bytes, at + SNH_DISABLED), 2);
    let first = at + SNAPSHOT_ADMIN_HEADER_LEN;
    let ids: Vec<u32> = (0..3)
        .map(|k| u32_at(&bytes, first + k * SNAPSHOT_ADMIN_ENTRY_LEN + SNE_ID))
        .collect();
    assert_eq!(ids, [7, 2, 9]);
    let mut back = Engine::read_snapshot(&bytes).unwrap();
    assert_eq!(back.state_hash(), e.state_hash());
    assert_eq!(back.halted_instruments().collect::<Vec<_>>(), [7]);
    assert_eq!(back.disabled_accounts().collect::<Vec<_>>(), [2, 9]);
    // The loaded engine refuses as the original does.
    let mut out = Vec::new();
    let mut cmd = new_order(32, Side::Sell, 200, 1); // account 3
    if let Command::New(o) = &mut cmd {
        o.symbol = 7;
    }
    back.apply(20, 20, &cmd, &mut out);
    assert!(matches!(
        out[..],
        [Event::Rejected {
            reason: RejectReason::InstrumentHalted,
            ..
        }]
    ));
    out.clear();
    back.apply(21, 21, &new_order(35, Side::Sell, 200, 1), &mut out); // account 3
    assert!(matches!(out[0], Event::Accepted { .. }));
    out.clear();
    back.apply(22, 22, &new_order(37, Side::Sell, 200, 1), &mut out); // account 2
    assert!(matches!(
        out[..],
        [Event::Rejected {
            reason: RejectReason::AccountDisabled,
            ..
        }]
    ));
}

#[test]
fn engine_without_admin_state_writes_no_admin_section() {
    let (e, _) = engine_with_streams();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    assert_eq!(u16_at(&bytes, SNB_FLAGS), SNAPSHOT_FLAG_STREAMS);
    // Halted and resumed again: nothing to carry, the same bytes as before.
    let mut f = Engine::read_snapshot(&bytes).unwrap();
    let mut out = Vec::new();
    for (seq, action) in [
        (17, AdminAction::HaltInstrument(1)),
        (18, AdminAction::ResumeInstrument(1)),
    ] {
        let cmd = Command::Admin(AdminCommand {
            action,
            request_id: seq,
        });
        f.apply(seq, seq, &cmd, &mut out);
    }
    let mut again = Vec::new();
    f.write_snapshot(&mut again);
    assert_eq!(again, bytes);
}

#[test]
fn old_body_without_admin_section_loads_with_nothing_halted() {
    let e = engine_with_admin();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    let at = admin_at(&e, &bytes);
    bytes.truncate(at);
    put_u16(&mut bytes, SNB_FLAGS, SNAPSHOT_FLAG_STREAMS);
    let back = Engine::read_snapshot(&bytes).unwrap();
    assert_eq!(back.halted_instruments().count(), 0);
    assert_eq!(back.disabled_accounts().count(), 0);
    assert_ne!(back.state_hash(), e.state_hash());
    // The flag set but the section missing: truncated.
    put_u16(
        &mut bytes,
        SNB_FLAGS,
        SNAPSHOT_FLAG_STREAMS | SNAPSHOT_FLAG_ADMIN,
    );
    assert!(matches!(
        Engine::read_snapshot(&bytes),
        Err(SnapshotError::Truncated { at: a, need: 8, .. }) if a == at
    ));
}

#[test]
fn damaged_admin_sections_are_refused_by_name() {
    let e = engine_with_admin();
    let mut bytes = Vec::new();
    e.write_snapshot(&mut bytes);
    let at = admin_at(&e, &bytes);
    let halted = at + SNAPSHOT_ADMIN_HEADER_LEN;
    let (d1, d2) = (
        halted + SNAPSHOT_ADMIN_ENTRY_LEN,
        halted + 2 * SNAPSHOT_ADMIN_ENTRY_LEN,
    );
    let refused = |bad: &[u8]| match Engine::read_snapshot(bad) {
        Err(SnapshotError::Field { field, at, .. }) => (field, at),
        other => panic!("expected a field error, got {other:?}"),
    };
    let mut bad = bytes.clone();
    put_u16(
        &mut bad,
        SNB_FLAGS,
        SNAPSHOT_FLAG_STREAMS | SNAPSHOT_FLAG_ADMIN | 8,
    );
    assert_eq!(refused(&bad), ("flags", SNB_FLAGS));
    let mut bad = bytes.clone();
    put_u32(&mut bad, halted + SNE_ID, 5); // no such instrument
    assert_eq!(
        refused(&bad),
        ("halted instrument (unknown)", halted + SNE_ID)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, halted + SNE_RESERVED, 1);
    assert_eq!(
        refused(&bad),
        ("halted instrument reserved", halted + SNE_RESERVED)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, d2 + SNE_ID, 2); // equal to the first: not strictly ascending
    assert_eq!(
        refused(&bad),
        ("disabled account (not ascending)", d2 + SNE_ID)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, d1 + SNE_RESERVED, 3);
    assert_eq!(
        refused(&bad),
        ("disabled account reserved", d1 + SNE_RESERVED)
    );
    // Two halted entries (7, then 2): the second is not ascending.
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNH_HALTED, 2);
    put_u32(&mut bad, at + SNH_DISABLED, 1);
    assert_eq!(
        refused(&bad),
        ("halted instrument (not ascending)", d1 + SNE_ID)
    );
    let mut bad = bytes.clone();
    put_u32(&mut bad, d1 + SNE_ID, 3); // account 3 has resting orders
    let err = Engine::read_snapshot(&bad).unwrap_err();
    assert!(matches!(err, SnapshotError::Invariant(_)), "{err}");
    assert!(err.to_string().contains("disabled account 3"), "{err}");
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNH_DISABLED, 3); // one more than there is
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Truncated { .. })
    ));
    let mut bad = bytes.clone();
    put_u32(&mut bad, at + SNH_DISABLED, 1); // one less: its 8 bytes trail
    assert!(matches!(
        Engine::read_snapshot(&bad),
        Err(SnapshotError::Trailing { extra: 8, .. })
    ));
    let msg = Engine::read_snapshot(&{
        let mut bad = bytes.clone();
        put_u32(&mut bad, halted + SNE_ID, 5);
        bad
    })
    .unwrap_err()
    .to_string();
    assert!(msg.contains("halted instrument (unknown)"), "{msg}");
}

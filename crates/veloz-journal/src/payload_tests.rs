//! Round trips and refusals of the record payloads (`payload.rs`).

use super::*;

/// One command of every variant with every enum value (and extreme numbers).
pub(crate) fn every_command() -> Vec<Command> {
    let mut v = Vec::new();
    let sides = [Side::Buy, Side::Sell];
    let kinds = [OrderKind::Limit, OrderKind::Market];
    let tifs = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok];
    let stps = [
        SelfTradePrevention::Allow,
        SelfTradePrevention::CancelResting,
        SelfTradePrevention::CancelIncoming,
        SelfTradePrevention::CancelBoth,
    ];
    let mut n = 0u64;
    for side in sides {
        for kind in kinds {
            for tif in tifs {
                for stp in stps {
                    for post_only in [false, true] {
                        n += 1;
                        v.push(Command::New(NewOrder {
                            account: n as u32,
                            symbol: u32::MAX - n as u32,
                            client_order_id: u64::MAX - n,
                            side,
                            kind,
                            tif,
                            post_only,
                            stp,
                            price: if n.is_multiple_of(2) {
                                i64::MIN + n as i64
                            } else {
                                n as i64
                            },
                            qty: u64::MAX / n,
                        }));
                    }
                }
            }
        }
    }
    v.push(Command::Cancel(CancelOrder {
        account: 1,
        symbol: 2,
        client_order_id: 3,
        order_id: u64::MAX,
    }));
    // By client order id (the id the order was entered with).
    v.push(Command::Cancel(CancelOrder {
        account: 1,
        symbol: 2,
        client_order_id: 3,
        order_id: OrderRef::ClientId(77).raw(),
    }));
    v.push(Command::Replace(ReplaceOrder {
        account: 4,
        symbol: 5,
        client_order_id: 6,
        order_id: OrderRef::ClientId(u64::MAX >> 1).raw(),
        price: 8,
        qty: 9,
    }));
    v.push(Command::Replace(ReplaceOrder {
        account: u32::MAX,
        symbol: 0,
        client_order_id: 5,
        order_id: 6,
        price: -7,
        qty: 8,
    }));
    v.push(Command::MassCancel(MassCancel {
        account: 9,
        client_order_id: 10,
        symbol: None,
        reason: CancelReason::MassCancel,
    }));
    v.push(Command::MassCancel(MassCancel {
        account: 9,
        client_order_id: 11,
        symbol: Some(0),
        reason: CancelReason::CancelOnDisconnect,
    }));
    v.extend(every_admin_command());
    v
}

/// Every admin action, with extreme ids.
fn every_admin_command() -> Vec<Command> {
    [
        AdminAction::HaltInstrument(7),
        AdminAction::ResumeInstrument(u32::MAX),
        AdminAction::DisableAccount(0),
        AdminAction::EnableAccount(u32::MAX),
        AdminAction::HaltInstrument(0),
        AdminAction::DisableAccount(42),
        AdminAction::Deposit {
            account: u32::MAX,
            asset: 7,
            amount: u64::MAX,
        },
        AdminAction::Withdraw {
            account: 3,
            asset: u32::MAX,
            amount: 1,
        },
    ]
    .into_iter()
    .enumerate()
    .map(|(k, action)| {
        Command::Admin(AdminCommand {
            action,
            request_id: if k % 2 == 0 {
                u64::MAX - k as u64
            } else {
                k as u64
            },
        })
    })
    .collect()
}

#[test]
fn every_command_round_trips() {
    let all = every_command();
    assert!(all.len() > 90);
    for c in &all {
        let b = encode_command(c);
        assert_eq!(decode_command(&b).unwrap(), *c);
        let body = decode_body(1, RecordType::Command.code(), &b).unwrap();
        assert_eq!(body, RecordBody::Command(*c));
    }
}

#[test]
fn checkpoint_round_trips() {
    for reason in CheckpointReason::ALL {
        let c = Checkpoint {
            state_hash: 0xDEAD_BEEF_0123_4567,
            reason,
        };
        let b = encode_checkpoint(&c);
        assert_eq!(decode_checkpoint(&b).unwrap(), c);
        assert_eq!(
            decode_body(1, RecordType::Checkpoint.code(), &b).unwrap(),
            RecordBody::Checkpoint(c)
        );
        assert_eq!(CheckpointReason::from_code(reason.code()), Some(reason));
    }
}

#[test]
fn unknown_values_are_named() {
    let new = every_command()[0];
    let base = encode_command(&new);
    let cases: [(usize, u8, &str); 8] = [
        (CMD_KIND, 9, "unknown value 9 for command field kind"),
        (CMD_SIDE, 2, "unknown value 2 for command field side"),
        (
            CMD_ORDER_KIND,
            5,
            "unknown value 5 for command field order_kind",
        ),
        (CMD_TIF, 3, "unknown value 3 for command field tif"),
        (
            CMD_POST_ONLY,
            2,
            "unknown value 2 for command field post_only",
        ),
        (CMD_STP, 4, "unknown value 4 for command field stp"),
        (CMD_FLAGS, 1, "unknown value 1 for command field flags"),
        (CMD_RESERVED, 1, "command field reserved must be 0, found 1"),
    ];
    for (at, value, msg) in cases {
        let mut b = base;
        b[at] = value;
        assert_eq!(decode_command(&b).unwrap_err().to_string(), msg);
    }
    assert_eq!(
        decode_command(&base[..40]).unwrap_err().to_string(),
        "command payload is 40 bytes, expected 48"
    );
    let mut c = encode_checkpoint(&Checkpoint {
        state_hash: 1,
        reason: CheckpointReason::Periodic,
    });
    c[CKP_REASON] = 77;
    assert_eq!(
        decode_checkpoint(&c).unwrap_err().to_string(),
        "unknown value 77 for checkpoint field reason"
    );
    c[CKP_REASON] = 1;
    c[15] = 3;
    assert_eq!(
        decode_checkpoint(&c).unwrap_err().to_string(),
        "checkpoint field reserved must be 0, found 3"
    );
    assert_eq!(
        decode_body(1, 3, &[]).unwrap_err().to_string(),
        "unknown record type 3"
    );
}

#[test]
fn admin_commands_round_trip_with_their_bytes() {
    for c in every_admin_command() {
        let Command::Admin(a) = c else { unreachable!() };
        let b = encode_command(&c);
        assert_eq!(decode_command(&b).unwrap(), c);
        assert_eq!(b[CMD_KIND], KIND_ADMIN);
        assert_eq!(b[CMD_ADMIN_ACTION], a.action.code());
        assert_eq!(get_u64(&b, CMD_CLIENT_ORDER_ID), a.request_id);
        // A deposit or withdrawal keeps its asset in the symbol field, its amount in qty.
        let (account, symbol, qty) = match a.action {
            AdminAction::HaltInstrument(s) | AdminAction::ResumeInstrument(s) => (0, s, 0),
            AdminAction::DisableAccount(x) | AdminAction::EnableAccount(x) => (x, 0, 0),
            AdminAction::Deposit {
                account,
                asset,
                amount,
            }
            | AdminAction::Withdraw {
                account,
                asset,
                amount,
            } => (account, asset, amount),
        };
        assert_eq!(
            (
                get_u32(&b, CMD_ACCOUNT),
                get_u32(&b, CMD_SYMBOL),
                get_u64(&b, CMD_QTY)
            ),
            (account, symbol, qty)
        );
        // Nothing else is written.
        let mut rest = b;
        rest[CMD_KIND] = 0;
        rest[CMD_ADMIN_ACTION] = 0;
        rest[CMD_ACCOUNT..CMD_ORDER_ID].fill(0);
        rest[CMD_QTY..CMD_QTY + 8].fill(0);
        assert_eq!(rest, [0u8; COMMAND_PAYLOAD_LEN]);
    }
    for code in [ADMIN_DEPOSIT, ADMIN_WITHDRAW] {
        let a = AdminAction::money(code, 1, 2, 3).expect("a money code");
        assert_eq!(a.code(), code);
        assert_eq!(
            AdminAction::from_code(code, 1),
            None,
            "needs more than an id"
        );
    }
    let codes = [ADMIN_HALT, ADMIN_RESUME, ADMIN_DISABLE, ADMIN_ENABLE];
    assert_eq!(codes, [1, 2, 3, 4]);
    for code in codes {
        assert_eq!(
            AdminAction::from_code(code, 5).map(|a| a.code()),
            Some(code)
        );
    }
}

#[test]
fn admin_refusals_name_the_field() {
    let halt = encode_command(&Command::Admin(AdminCommand {
        action: AdminAction::HaltInstrument(3),
        request_id: 9,
    }));
    let disable = encode_command(&Command::Admin(AdminCommand {
        action: AdminAction::DisableAccount(4),
        request_id: 9,
    }));
    let refused = |base: [u8; COMMAND_PAYLOAD_LEN], at: usize, value: u8| {
        let mut b = base;
        b[at] = value;
        decode_command(&b).unwrap_err().to_string()
    };
    assert_eq!(
        refused(halt, CMD_ADMIN_ACTION, 0),
        "unknown value 0 for command field admin_action"
    );
    assert_eq!(
        refused(disable, CMD_ADMIN_ACTION, 7),
        "unknown value 7 for command field admin_action"
    );
    let deposit = encode_command(&Command::Admin(AdminCommand {
        action: AdminAction::Deposit {
            account: 4,
            asset: 2,
            amount: 100,
        },
        request_id: 9,
    }));
    for (at, field) in [
        (CMD_SIDE, "side"),
        (CMD_PRICE, "price"),
        (CMD_ORDER_ID, "order_id"),
    ] {
        assert_eq!(
            refused(deposit, at, 1),
            format!("admin command field {field} must be 0, found 1")
        );
    }
    let cases: [(usize, &str); 8] = [
        (CMD_SIDE, "side"),
        (CMD_TIF, "tif"),
        (CMD_POST_ONLY, "post_only"),
        (CMD_STP, "stp"),
        (CMD_ACCOUNT, "account"),
        (CMD_ORDER_ID + 7, "order_id"),
        (CMD_PRICE, "price"),
        (CMD_QTY, "qty"),
    ];
    for (at, field) in cases {
        assert_eq!(
            refused(halt, at, 1),
            format!(
                "admin command field {field} must be 0, found {}",
                if at == CMD_ORDER_ID + 7 {
                    1u64 << 56
                } else {
                    1
                }
            )
        );
    }
    assert_eq!(
        refused(disable, CMD_SYMBOL, 2),
        "admin command field symbol must be 0, found 2"
    );
    assert_eq!(
        refused(disable, CMD_FLAGS, FLAG_HAS_SYMBOL),
        "unknown value 1 for command field flags"
    );
    assert_eq!(
        refused(disable, CMD_RESERVED, 1),
        "command field reserved must be 0, found 1"
    );
}

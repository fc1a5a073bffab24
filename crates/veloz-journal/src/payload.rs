//! Record payloads: [`Command`] and [`Checkpoint`] to bytes and back.
//!
//! Version 1 layouts (little-endian; `docs/journal-format.md` has the tables):
//! ```text
//! command (48 bytes):   kind:u8 side:u8 order_kind:u8 tif:u8 post_only:u8 stp:u8 flags:u8
//!                       reserved:u8 account:u32 symbol:u32 client_order_id:u64 order_id:u64
//!                       price:i64 qty:u64
//! checkpoint (16 bytes): state_hash:u64 reason:u16 reserved[6]
//! ```
//! Every variant uses the one command layout; fields it does not use are written as zero.
//! A cancel or replace that names its order by client order id sets [`FLAG_BY_CLIENT_ID`]
//! and keeps that id in the `order_id` field.
//! A mass cancel keeps its cancel reason in the `order_kind` byte ([`CMD_MASS_REASON`]): 0
//! for the account's own mass cancel (`mass_cancel`, so every record written before the
//! field existed reads as one), else the reason's code (8, `cancel_on_disconnect`).
//! An operator's admin command ([`KIND_ADMIN`]) keeps its action in the `order_kind` byte
//! ([`CMD_ADMIN_ACTION`]: 1 halt, 2 resume, 3 disable, 4 enable), the instrument of a halt or
//! resume in `symbol`, the account of a disable or enable in `account`, and its request id in
//! `client_order_id`; every other field is 0, and decoding refuses a non-zero one by name.
//! Decoding refuses an unknown enum value, a `post_only` other than 0/1, unknown flag bits and
//! non-zero reserved bytes, naming the field and the value. `decode(encode(x)) == x` for every
//! value (tested for every variant and every enum value).

use veloz_core::{
    AdminAction, AdminCommand, CancelOrder, CancelReason, Command, MassCancel, NewOrder, OrderKind,
    OrderRef, ReplaceOrder, SelfTradePrevention, Seq, Side, TimeInForce, Timestamp, BY_CLIENT_ID,
};

use super::format::{RecordType, FORMAT_VERSION, MIN_READ_VERSION};

// Command payload offsets.
pub const CMD_KIND: usize = 0;
pub const CMD_SIDE: usize = 1;
pub const CMD_ORDER_KIND: usize = 2;
pub const CMD_TIF: usize = 3;
pub const CMD_POST_ONLY: usize = 4;
pub const CMD_STP: usize = 5;
pub const CMD_FLAGS: usize = 6;
pub const CMD_RESERVED: usize = 7;
pub const CMD_ACCOUNT: usize = 8;
pub const CMD_SYMBOL: usize = 12;
pub const CMD_CLIENT_ORDER_ID: usize = 16;
pub const CMD_ORDER_ID: usize = 24;
pub const CMD_PRICE: usize = 32;
pub const CMD_QTY: usize = 40;
/// Length of a command payload.
pub const COMMAND_PAYLOAD_LEN: usize = 48;

/// `CMD_KIND` values.
pub const KIND_NEW: u8 = 1;
pub const KIND_CANCEL: u8 = 2;
pub const KIND_REPLACE: u8 = 3;
pub const KIND_MASS_CANCEL: u8 = 4;
/// An operator's command (`Command::Admin`).
pub const KIND_ADMIN: u8 = 5;
/// An admin command's action byte (the `order_kind` byte, which it has no other use for):
/// [`ADMIN_HALT`], [`ADMIN_RESUME`], [`ADMIN_DISABLE`], [`ADMIN_ENABLE`], [`ADMIN_DEPOSIT`],
/// [`ADMIN_WITHDRAW`] (`AdminAction::code`).
pub const CMD_ADMIN_ACTION: usize = CMD_ORDER_KIND;
/// Halt the instrument in `symbol`.
pub const ADMIN_HALT: u8 = 1;
/// Resume the instrument in `symbol`.
pub const ADMIN_RESUME: u8 = 2;
/// Disable the account in `account` (the kill switch).
pub const ADMIN_DISABLE: u8 = 3;
/// Enable the account in `account` again.
pub const ADMIN_ENABLE: u8 = 4;
/// Deposit `qty` units of asset `symbol` to `account` (the `symbol` field holds the asset).
pub const ADMIN_DEPOSIT: u8 = 5;
/// Withdraw `qty` units of asset `symbol` from `account`.
pub const ADMIN_WITHDRAW: u8 = 6;
/// A mass cancel's reason byte (the `order_kind` byte, which a mass cancel has no use for).
pub const CMD_MASS_REASON: usize = CMD_ORDER_KIND;
/// `CMD_FLAGS` bit: the mass cancel names a symbol.
pub const FLAG_HAS_SYMBOL: u8 = 1;
/// `CMD_FLAGS` bit of a cancel or replace: the order is named by the client order id it was
/// entered with, held in the `order_id` field (the core's [`OrderRef::ClientId`]).
pub const FLAG_BY_CLIENT_ID: u8 = 2;

// Checkpoint payload offsets.
pub const CKP_STATE_HASH: usize = 0;
pub const CKP_REASON: usize = 8;
pub const CKP_RESERVED: usize = 10;
/// Length of a checkpoint payload.
pub const CHECKPOINT_PAYLOAD_LEN: usize = 16;

/// Why a payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown record type {0}")]
    UnknownType(u16),
    #[error("{what} payload is {found} bytes, expected {expected}")]
    Length {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("unknown value {value} for {what} field {field}")]
    UnknownValue {
        what: &'static str,
        field: &'static str,
        value: u64,
    },
    #[error("{what} field {field} must be 0, found {value}")]
    NonZero {
        what: &'static str,
        field: &'static str,
        value: u64,
    },
    #[error("format version {0} has no payload layouts in this build")]
    Version(u16),
}

/// Why the engine wrote a checkpoint. Codes are part of the format: only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CheckpointReason {
    /// Written as the last record of a clean shutdown.
    CleanShutdown = 1,
    /// Written on a timer or every N commands.
    Periodic = 2,
    /// Asked for by an operator.
    Operator = 3,
}

impl CheckpointReason {
    pub const ALL: [CheckpointReason; 3] = [
        CheckpointReason::CleanShutdown,
        CheckpointReason::Periodic,
        CheckpointReason::Operator,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<CheckpointReason> {
        CheckpointReason::ALL
            .iter()
            .copied()
            .find(|r| r.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            CheckpointReason::CleanShutdown => "clean_shutdown",
            CheckpointReason::Periodic => "periodic",
            CheckpointReason::Operator => "operator",
        }
    }
}

/// The engine's state at a point of the journal: the state hash after applying every command
/// with a smaller sequence number than the checkpoint record's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub state_hash: u64,
    pub reason: CheckpointReason,
}

/// A decoded record body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordBody {
    Command(Command),
    Checkpoint(Checkpoint),
}

/// A decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    pub ts: Timestamp,
    pub body: RecordBody,
}

impl RecordBody {
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordBody::Command(_) => RecordType::Command,
            RecordBody::Checkpoint(_) => RecordType::Checkpoint,
        }
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The 48-byte payload of a command.
pub fn encode_command(cmd: &Command) -> [u8; COMMAND_PAYLOAD_LEN] {
    let mut b = [0u8; COMMAND_PAYLOAD_LEN];
    match cmd {
        Command::New(o) => {
            b[CMD_KIND] = KIND_NEW;
            b[CMD_SIDE] = o.side as u8;
            b[CMD_ORDER_KIND] = o.kind as u8;
            b[CMD_TIF] = o.tif as u8;
            b[CMD_POST_ONLY] = o.post_only as u8;
            b[CMD_STP] = o.stp as u8;
            put_u32(&mut b, CMD_ACCOUNT, o.account);
            put_u32(&mut b, CMD_SYMBOL, o.symbol);
            put_u64(&mut b, CMD_CLIENT_ORDER_ID, o.client_order_id);
            put_u64(&mut b, CMD_PRICE, o.price as u64);
            put_u64(&mut b, CMD_QTY, o.qty);
        }
        Command::Cancel(c) => {
            b[CMD_KIND] = KIND_CANCEL;
            put_u32(&mut b, CMD_ACCOUNT, c.account);
            put_u32(&mut b, CMD_SYMBOL, c.symbol);
            put_u64(&mut b, CMD_CLIENT_ORDER_ID, c.client_order_id);
            put_order_ref(&mut b, c.order_id);
        }
        Command::Replace(r) => {
            b[CMD_KIND] = KIND_REPLACE;
            put_u32(&mut b, CMD_ACCOUNT, r.account);
            put_u32(&mut b, CMD_SYMBOL, r.symbol);
            put_u64(&mut b, CMD_CLIENT_ORDER_ID, r.client_order_id);
            put_order_ref(&mut b, r.order_id);
            put_u64(&mut b, CMD_PRICE, r.price as u64);
            put_u64(&mut b, CMD_QTY, r.qty);
        }
        Command::MassCancel(m) => {
            b[CMD_KIND] = KIND_MASS_CANCEL;
            b[CMD_MASS_REASON] = match m.reason {
                CancelReason::MassCancel => 0,
                other => other.code() as u8,
            };
            put_u32(&mut b, CMD_ACCOUNT, m.account);
            put_u64(&mut b, CMD_CLIENT_ORDER_ID, m.client_order_id);
            if let Some(s) = m.symbol {
                b[CMD_FLAGS] = FLAG_HAS_SYMBOL;
                put_u32(&mut b, CMD_SYMBOL, s);
            }
        }
        Command::Admin(a) => {
            b[CMD_KIND] = KIND_ADMIN;
            b[CMD_ADMIN_ACTION] = a.action.code();
            match a.action {
                AdminAction::HaltInstrument(s) | AdminAction::ResumeInstrument(s) => {
                    put_u32(&mut b, CMD_SYMBOL, s)
                }
                AdminAction::DisableAccount(x) | AdminAction::EnableAccount(x) => {
                    put_u32(&mut b, CMD_ACCOUNT, x)
                }
                AdminAction::Deposit {
                    account,
                    asset,
                    amount,
                }
                | AdminAction::Withdraw {
                    account,
                    asset,
                    amount,
                } => {
                    put_u32(&mut b, CMD_ACCOUNT, account);
                    put_u32(&mut b, CMD_SYMBOL, asset);
                    put_u64(&mut b, CMD_QTY, amount);
                }
            }
            put_u64(&mut b, CMD_CLIENT_ORDER_ID, a.request_id);
        }
    }
    b
}

/// Decode an admin command: the action, its symbol or account, the request id; every other
/// field must be 0 (named when not).
fn decode_admin(b: &[u8]) -> Result<Command, PayloadError> {
    let code = b[CMD_ADMIN_ACTION];
    if matches!(code, ADMIN_DEPOSIT | ADMIN_WITHDRAW) {
        return decode_money(b, code);
    }
    let (account, symbol) = (get_u32(b, CMD_ACCOUNT), get_u32(b, CMD_SYMBOL));
    let (id, unused_id) = match code {
        ADMIN_HALT | ADMIN_RESUME => (symbol, ("account", account)),
        _ => (account, ("symbol", symbol)),
    };
    let action = AdminAction::from_code(code, id).ok_or(unknown("admin_action", code))?;
    let unused: [(&'static str, u64); 8] = [
        ("side", b[CMD_SIDE] as u64),
        ("tif", b[CMD_TIF] as u64),
        ("post_only", b[CMD_POST_ONLY] as u64),
        ("stp", b[CMD_STP] as u64),
        (unused_id.0, unused_id.1 as u64),
        ("order_id", get_u64(b, CMD_ORDER_ID)),
        ("price", get_u64(b, CMD_PRICE)),
        ("qty", get_u64(b, CMD_QTY)),
    ];
    if let Some(&(field, value)) = unused.iter().find(|(_, v)| *v != 0) {
        return Err(PayloadError::NonZero {
            what: "admin command",
            field,
            value,
        });
    }
    Ok(Command::Admin(AdminCommand {
        action,
        request_id: get_u64(b, CMD_CLIENT_ORDER_ID),
    }))
}

/// Decode a deposit or withdrawal: account, asset (in the `symbol` field), amount (in
/// `qty`), request id; every other field must be 0 (named when not).
fn decode_money(b: &[u8], code: u8) -> Result<Command, PayloadError> {
    let unused: [(&'static str, u64); 6] = [
        ("side", b[CMD_SIDE] as u64),
        ("tif", b[CMD_TIF] as u64),
        ("post_only", b[CMD_POST_ONLY] as u64),
        ("stp", b[CMD_STP] as u64),
        ("order_id", get_u64(b, CMD_ORDER_ID)),
        ("price", get_u64(b, CMD_PRICE)),
    ];
    if let Some(&(field, value)) = unused.iter().find(|(_, v)| *v != 0) {
        return Err(PayloadError::NonZero {
            what: "admin command",
            field,
            value,
        });
    }
    let (account, asset, amount) = (
        get_u32(b, CMD_ACCOUNT),
        get_u32(b, CMD_SYMBOL),
        get_u64(b, CMD_QTY),
    );
    let action =
        AdminAction::money(code, account, asset, amount).ok_or(unknown("admin_action", code))?;
    Ok(Command::Admin(AdminCommand {
        action,
        request_id: get_u64(b, CMD_CLIENT_ORDER_ID),
    }))
}

/// A cancel's or replace's order ([`OrderRef::raw`]): its engine id, or, under
/// [`FLAG_BY_CLIENT_ID`], the client order id it was entered with.
fn put_order_ref(b: &mut [u8; COMMAND_PAYLOAD_LEN], raw: u64) {
    match OrderRef::from_raw(raw) {
        OrderRef::Id(id) => put_u64(b, CMD_ORDER_ID, id),
        OrderRef::ClientId(c) => {
            b[CMD_FLAGS] = FLAG_BY_CLIENT_ID;
            put_u64(b, CMD_ORDER_ID, c);
        }
    }
}

fn unknown(field: &'static str, value: u8) -> PayloadError {
    PayloadError::UnknownValue {
        what: "command",
        field,
        value: value as u64,
    }
}

/// Decode a command payload (format version 1).
pub fn decode_command(b: &[u8]) -> Result<Command, PayloadError> {
    if b.len() != COMMAND_PAYLOAD_LEN {
        return Err(PayloadError::Length {
            what: "command",
            expected: COMMAND_PAYLOAD_LEN,
            found: b.len(),
        });
    }
    if b[CMD_RESERVED] != 0 {
        return Err(PayloadError::NonZero {
            what: "command",
            field: "reserved",
            value: b[CMD_RESERVED] as u64,
        });
    }
    let kind = b[CMD_KIND];
    let flags = b[CMD_FLAGS];
    let allowed_flags = match kind {
        KIND_MASS_CANCEL => FLAG_HAS_SYMBOL,
        KIND_CANCEL | KIND_REPLACE => FLAG_BY_CLIENT_ID,
        _ => 0,
    };
    if flags & !allowed_flags != 0 {
        return Err(unknown("flags", flags));
    }
    let account = get_u32(b, CMD_ACCOUNT);
    let symbol = get_u32(b, CMD_SYMBOL);
    let client_order_id = get_u64(b, CMD_CLIENT_ORDER_ID);
    let stored = get_u64(b, CMD_ORDER_ID);
    if stored & BY_CLIENT_ID != 0 && matches!(kind, KIND_CANCEL | KIND_REPLACE) {
        // Neither an engine order id nor a client order id a command can name.
        return Err(PayloadError::UnknownValue {
            what: "command",
            field: "order_id",
            value: stored,
        });
    }
    let order_id = if flags & FLAG_BY_CLIENT_ID != 0 {
        OrderRef::ClientId(stored).raw()
    } else {
        stored
    };
    let price = get_u64(b, CMD_PRICE) as i64;
    let qty = get_u64(b, CMD_QTY);
    Ok(match kind {
        KIND_NEW => Command::New(NewOrder {
            account,
            symbol,
            client_order_id,
            side: Side::from_u8(b[CMD_SIDE]).ok_or(unknown("side", b[CMD_SIDE]))?,
            kind: OrderKind::from_u8(b[CMD_ORDER_KIND])
                .ok_or(unknown("order_kind", b[CMD_ORDER_KIND]))?,
            tif: TimeInForce::from_u8(b[CMD_TIF]).ok_or(unknown("tif", b[CMD_TIF]))?,
            post_only: match b[CMD_POST_ONLY] {
                0 => false,
                1 => true,
                v => return Err(unknown("post_only", v)),
            },
            stp: SelfTradePrevention::from_u8(b[CMD_STP]).ok_or(unknown("stp", b[CMD_STP]))?,
            price,
            qty,
        }),
        KIND_CANCEL => Command::Cancel(CancelOrder {
            account,
            symbol,
            client_order_id,
            order_id,
        }),
        KIND_REPLACE => Command::Replace(ReplaceOrder {
            account,
            symbol,
            client_order_id,
            order_id,
            price,
            qty,
        }),
        KIND_MASS_CANCEL => Command::MassCancel(MassCancel {
            account,
            client_order_id,
            symbol: (flags & FLAG_HAS_SYMBOL != 0).then_some(symbol),
            reason: match b[CMD_MASS_REASON] {
                0 => CancelReason::MassCancel,
                8 => CancelReason::CancelOnDisconnect,
                v => return Err(unknown("mass_cancel_reason", v)),
            },
        }),
        KIND_ADMIN => decode_admin(b)?,
        other => return Err(unknown("kind", other)),
    })
}

/// The 16-byte payload of a checkpoint.
pub fn encode_checkpoint(c: &Checkpoint) -> [u8; CHECKPOINT_PAYLOAD_LEN] {
    let mut b = [0u8; CHECKPOINT_PAYLOAD_LEN];
    put_u64(&mut b, CKP_STATE_HASH, c.state_hash);
    b[CKP_REASON..CKP_REASON + 2].copy_from_slice(&c.reason.code().to_le_bytes());
    b
}

/// Decode a checkpoint payload (format version 1).
pub fn decode_checkpoint(b: &[u8]) -> Result<Checkpoint, PayloadError> {
    if b.len() != CHECKPOINT_PAYLOAD_LEN {
        return Err(PayloadError::Length {
            what: "checkpoint",
            expected: CHECKPOINT_PAYLOAD_LEN,
            found: b.len(),
        });
    }
    if let Some(&v) = b[CKP_RESERVED..].iter().find(|&&x| x != 0) {
        return Err(PayloadError::NonZero {
            what: "checkpoint",
            field: "reserved",
            value: v as u64,
        });
    }
    let code = u16::from_le_bytes([b[CKP_REASON], b[CKP_REASON + 1]]);
    let reason = CheckpointReason::from_code(code).ok_or(PayloadError::UnknownValue {
        what: "checkpoint",
        field: "reason",
        value: code as u64,
    })?;
    Ok(Checkpoint {
        state_hash: get_u64(b, CKP_STATE_HASH),
        reason,
    })
}

/// Decode the payload of a record of type code `rtype` from a segment of format `version`.
pub fn decode_body(version: u16, rtype: u16, payload: &[u8]) -> Result<RecordBody, PayloadError> {
    // Versions 1 and 2 share every payload layout (version 2 changed the segment header only).
    if !(MIN_READ_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(PayloadError::Version(version));
    }
    match RecordType::from_code(rtype) {
        Some(RecordType::Command) => decode_command(payload).map(RecordBody::Command),
        Some(RecordType::Checkpoint) => decode_checkpoint(payload).map(RecordBody::Checkpoint),
        None => Err(PayloadError::UnknownType(rtype)),
    }
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;

//! The FIX 4.4 subset Veloz speaks: which messages, and which fields each may carry.
//!
//! This table and `schemas/fix44-veloz.xml` (the QuickFIX DataDictionary counterparties
//! load) say the same thing; a test reads the XML and fails on any difference in a message,
//! a field, a `required` flag, a field's name or type. Change both together.
//!
//! [`validate`] applies the table to a parsed message: the MsgType is one of [`MESSAGES`],
//! every field belongs to the header, the trailer or that message, and every required one
//! is there. It checks presence only; values are for the typed getters of
//! [`crate::Message`]. No repeating groups, no components.

use crate::parse::{FieldError, Message};
use crate::tags::*;

const Y: bool = true;
const N: bool = false;

/// One message type: its fields (tag, required) in the dictionary's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageDef {
    /// MsgType (35) value.
    pub msg_type: &'static str,
    /// The FIX name ("NewOrderSingle").
    pub name: &'static str,
    /// A session (admin) message rather than an application one.
    pub admin: bool,
    /// Body fields: (tag, required).
    pub fields: &'static [(u32, bool)],
}

/// The standard header: (tag, required).
pub const HEADER: &[(u32, bool)] = &[
    (BEGIN_STRING, Y),
    (BODY_LENGTH, Y),
    (MSG_TYPE, Y),
    (SENDER_COMP_ID, Y),
    (TARGET_COMP_ID, Y),
    (MSG_SEQ_NUM, Y),
    (POSS_DUP_FLAG, N),
    (POSS_RESEND, N),
    (SENDING_TIME, Y),
    (ORIG_SENDING_TIME, N),
];

/// The standard trailer: (tag, required).
pub const TRAILER: &[(u32, bool)] = &[(SIGNATURE_LENGTH, N), (SIGNATURE, N), (CHECK_SUM, Y)];

const fn def(
    msg_type: &'static str,
    name: &'static str,
    admin: bool,
    fields: &'static [(u32, bool)],
) -> MessageDef {
    MessageDef {
        msg_type,
        name,
        admin,
        fields,
    }
}

/// Every message Veloz sends or accepts.
pub const MESSAGES: &[MessageDef] = &[
    def("0", "Heartbeat", Y, &[(TEST_REQ_ID, N)]),
    def("1", "TestRequest", Y, &[(TEST_REQ_ID, Y)]),
    def(
        "2",
        "ResendRequest",
        Y,
        &[(BEGIN_SEQ_NO, Y), (END_SEQ_NO, Y)],
    ),
    def(
        "3",
        "Reject",
        Y,
        &[
            (REF_SEQ_NUM, Y),
            (REF_TAG_ID, N),
            (REF_MSG_TYPE, N),
            (SESSION_REJECT_REASON, N),
            (TEXT, N),
        ],
    ),
    def(
        "4",
        "SequenceReset",
        Y,
        &[(GAP_FILL_FLAG, N), (NEW_SEQ_NO, Y)],
    ),
    def("5", "Logout", Y, &[(TEXT, N)]),
    def(
        "A",
        "Logon",
        Y,
        &[
            (ENCRYPT_METHOD, Y),
            (HEART_BT_INT, Y),
            (RESET_SEQ_NUM_FLAG, N),
            (USERNAME, N),
            (PASSWORD, N),
            (RAW_DATA_LENGTH, N),
            (RAW_DATA, N),
            (NEXT_EXPECTED_MSG_SEQ_NUM, N),
            (TEXT, N),
        ],
    ),
    def(
        "D",
        "NewOrderSingle",
        N,
        &[
            (CL_ORD_ID, Y),
            (ACCOUNT, N),
            (EXEC_INST, N),
            (SYMBOL, Y),
            (SIDE, Y),
            (TRANSACT_TIME, Y),
            (ORDER_QTY, Y),
            (ORD_TYPE, Y),
            (PRICE, N),
            (TIME_IN_FORCE, N),
            (SELF_TRADE_PREVENTION_INSTRUCTION, N),
        ],
    ),
    def(
        "F",
        "OrderCancelRequest",
        N,
        &[
            (ORIG_CL_ORD_ID, Y),
            (ORDER_ID, N),
            (CL_ORD_ID, Y),
            (ACCOUNT, N),
            (SYMBOL, Y),
            (SIDE, Y),
            (TRANSACT_TIME, Y),
            (ORDER_QTY, N),
        ],
    ),
    def(
        "G",
        "OrderCancelReplaceRequest",
        N,
        &[
            (ORDER_ID, N),
            (ORIG_CL_ORD_ID, Y),
            (CL_ORD_ID, Y),
            (ACCOUNT, N),
            (SYMBOL, Y),
            (SIDE, Y),
            (TRANSACT_TIME, Y),
            (ORDER_QTY, Y),
            (ORD_TYPE, Y),
            (PRICE, N),
            (TIME_IN_FORCE, N),
            (EXEC_INST, N),
        ],
    ),
    def(
        "H",
        "OrderStatusRequest",
        N,
        &[
            (ORDER_ID, N),
            (CL_ORD_ID, Y),
            (ORD_STATUS_REQ_ID, N),
            (ACCOUNT, N),
            (SYMBOL, Y),
            (SIDE, Y),
        ],
    ),
    def(
        "q",
        "OrderMassCancelRequest",
        N,
        &[
            (CL_ORD_ID, Y),
            (MASS_CANCEL_REQUEST_TYPE, Y),
            (SYMBOL, N),
            (SIDE, N),
            (TRANSACT_TIME, Y),
        ],
    ),
    def(
        "8",
        "ExecutionReport",
        N,
        &[
            (ORDER_ID, Y),
            (CL_ORD_ID, N),
            (ORIG_CL_ORD_ID, N),
            (EXEC_ID, Y),
            (EXEC_TYPE, Y),
            (ORD_STATUS, Y),
            (ORD_REJ_REASON, N),
            (ACCOUNT, N),
            (SYMBOL, Y),
            (SIDE, Y),
            (ORDER_QTY, N),
            (ORD_TYPE, N),
            (PRICE, N),
            (TIME_IN_FORCE, N),
            (EXEC_INST, N),
            (LAST_QTY, N),
            (LAST_PX, N),
            (LEAVES_QTY, Y),
            (CUM_QTY, Y),
            (AVG_PX, Y),
            (TRANSACT_TIME, N),
            (TEXT, N),
            (ORD_STATUS_REQ_ID, N),
            (TRD_MATCH_ID, N),
            (AGGRESSOR_INDICATOR, N),
            (SELF_TRADE_PREVENTION_INSTRUCTION, N),
        ],
    ),
    def(
        "9",
        "OrderCancelReject",
        N,
        &[
            (ORDER_ID, Y),
            (CL_ORD_ID, Y),
            (ORIG_CL_ORD_ID, Y),
            (ORD_STATUS, Y),
            (CXL_REJ_RESPONSE_TO, Y),
            (CXL_REJ_REASON, N),
            (TEXT, N),
            (TRANSACT_TIME, N),
            (ACCOUNT, N),
        ],
    ),
    def(
        "r",
        "OrderMassCancelReport",
        N,
        &[
            (CL_ORD_ID, N),
            (ORDER_ID, Y),
            (MASS_CANCEL_REQUEST_TYPE, Y),
            (MASS_CANCEL_RESPONSE, Y),
            (MASS_CANCEL_REJECT_REASON, N),
            (TOTAL_AFFECTED_ORDERS, N),
            (SYMBOL, N),
            (TEXT, N),
        ],
    ),
    def(
        "BB",
        "CollateralInquiry",
        N,
        &[
            (COLL_INQUIRY_ID, Y),
            (SUBSCRIPTION_REQUEST_TYPE, N),
            (ACCOUNT, N),
        ],
    ),
    def(
        "BA",
        "CollateralReport",
        N,
        &[
            (COLL_RPT_ID, Y),
            (COLL_INQUIRY_ID, N),
            (COLL_STATUS, Y),
            (TOT_NUM_REPORTS, N),
            (LAST_RPT_REQUESTED, N),
            (ACCOUNT, N),
            (CURRENCY, N),
            (AVAILABLE_BALANCE, N),
            (HELD_BALANCE, N),
            (TEXT, N),
        ],
    ),
    def(
        "j",
        "BusinessMessageReject",
        N,
        &[
            (REF_SEQ_NUM, N),
            (REF_MSG_TYPE, Y),
            (BUSINESS_REJECT_REASON, Y),
            (TEXT, N),
        ],
    ),
];

/// The definition of MsgType `msg_type`, if Veloz speaks it.
pub fn message(msg_type: &[u8]) -> Option<&'static MessageDef> {
    MESSAGES.iter().find(|m| m.msg_type.as_bytes() == msg_type)
}

/// Check `msg` against the dictionary (see the module docs); the first breach found, in
/// field order, then missing required fields in the dictionary's order.
pub fn validate(msg: &Message<'_>) -> Result<&'static MessageDef, FieldError> {
    let Some(def) = message(msg.msg_type()) else {
        return Err(FieldError::UnknownMsgType {
            msg_type: String::from_utf8_lossy(msg.msg_type()).into_owned(),
        });
    };
    let has = |list: &[(u32, bool)], tag: u32| list.iter().any(|f| f.0 == tag);
    for (tag, _) in msg.fields() {
        if has(HEADER, tag) || has(TRAILER, tag) || has(def.fields, tag) {
            continue;
        }
        if ALL.binary_search_by_key(&tag, |t| t.0).is_err() {
            return Err(FieldError::UnknownTag { tag });
        }
        return Err(FieldError::NotInMessage {
            tag,
            message: def.name,
        });
    }
    for &(tag, _) in HEADER
        .iter()
        .chain(def.fields)
        .chain(TRAILER)
        .filter(|f| f.1)
    {
        if msg.get(tag).is_none() {
            return Err(FieldError::Missing { tag });
        }
    }
    Ok(def)
}

#[cfg(test)]
#[path = "dictionary_xml_tests.rs"]
mod xml_tests;

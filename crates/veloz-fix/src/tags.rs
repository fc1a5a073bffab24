//! FIX 4.4 tag numbers: one constant per field Veloz speaks, named as in the FIX spec
//! (`ClOrdID` (11) is [`CL_ORD_ID`]), with the spec's name and type beside it in [`ALL`].
//!
//! Invariants: every tag in [`ALL`] is defined, with the same name and type, in
//! `schemas/fix44-veloz.xml` and the other way round (a test reads the XML); the numbers and
//! types are those of the standard FIX44.xml, except the tags FIX 4.4 lacks:
//! `AggressorIndicator` (1057, from FIX 5.0), and the user-defined
//! `SelfTradePreventionInstruction` (7928), `AvailableBalance` (7930) and `HeldBalance`
//! (7931). [`ALL`] is sorted by tag number.

use std::fmt;

macro_rules! tags {
    ($($konst:ident = $num:literal, $name:literal, $ty:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "` (", stringify!($num), "), type ", $ty, ".")]
            pub const $konst: u32 = $num;
        )*

        /// Every tag this crate names: (tag, FIX name, FIX type), sorted by tag.
        pub const ALL: &[(u32, &str, &str)] = &[$(($num, $name, $ty)),*];

        /// The FIX name of `tag` ("Price" for 44), or "Tag" for a tag Veloz does not speak.
        pub fn name(tag: u32) -> &'static str {
            match tag {
                $($num => $name,)*
                _ => "Tag",
            }
        }
    };
}

tags! {
    ACCOUNT = 1, "Account", "STRING";
    AVG_PX = 6, "AvgPx", "PRICE";
    BEGIN_SEQ_NO = 7, "BeginSeqNo", "SEQNUM";
    BEGIN_STRING = 8, "BeginString", "STRING";
    BODY_LENGTH = 9, "BodyLength", "LENGTH";
    CHECK_SUM = 10, "CheckSum", "STRING";
    CL_ORD_ID = 11, "ClOrdID", "STRING";
    CUM_QTY = 14, "CumQty", "QTY";
    CURRENCY = 15, "Currency", "CURRENCY";
    END_SEQ_NO = 16, "EndSeqNo", "SEQNUM";
    EXEC_ID = 17, "ExecID", "STRING";
    EXEC_INST = 18, "ExecInst", "MULTIPLEVALUESTRING";
    LAST_PX = 31, "LastPx", "PRICE";
    LAST_QTY = 32, "LastQty", "QTY";
    MSG_SEQ_NUM = 34, "MsgSeqNum", "SEQNUM";
    MSG_TYPE = 35, "MsgType", "STRING";
    NEW_SEQ_NO = 36, "NewSeqNo", "SEQNUM";
    ORDER_ID = 37, "OrderID", "STRING";
    ORDER_QTY = 38, "OrderQty", "QTY";
    ORD_STATUS = 39, "OrdStatus", "CHAR";
    ORD_TYPE = 40, "OrdType", "CHAR";
    ORIG_CL_ORD_ID = 41, "OrigClOrdID", "STRING";
    POSS_DUP_FLAG = 43, "PossDupFlag", "BOOLEAN";
    PRICE = 44, "Price", "PRICE";
    REF_SEQ_NUM = 45, "RefSeqNum", "SEQNUM";
    SENDER_COMP_ID = 49, "SenderCompID", "STRING";
    SENDING_TIME = 52, "SendingTime", "UTCTIMESTAMP";
    SIDE = 54, "Side", "CHAR";
    SYMBOL = 55, "Symbol", "STRING";
    TARGET_COMP_ID = 56, "TargetCompID", "STRING";
    TEXT = 58, "Text", "STRING";
    TIME_IN_FORCE = 59, "TimeInForce", "CHAR";
    TRANSACT_TIME = 60, "TransactTime", "UTCTIMESTAMP";
    SIGNATURE = 89, "Signature", "DATA";
    SIGNATURE_LENGTH = 93, "SignatureLength", "LENGTH";
    RAW_DATA_LENGTH = 95, "RawDataLength", "LENGTH";
    RAW_DATA = 96, "RawData", "DATA";
    POSS_RESEND = 97, "PossResend", "BOOLEAN";
    ENCRYPT_METHOD = 98, "EncryptMethod", "INT";
    CXL_REJ_REASON = 102, "CxlRejReason", "INT";
    ORD_REJ_REASON = 103, "OrdRejReason", "INT";
    HEART_BT_INT = 108, "HeartBtInt", "INT";
    TEST_REQ_ID = 112, "TestReqID", "STRING";
    ORIG_SENDING_TIME = 122, "OrigSendingTime", "UTCTIMESTAMP";
    GAP_FILL_FLAG = 123, "GapFillFlag", "BOOLEAN";
    RESET_SEQ_NUM_FLAG = 141, "ResetSeqNumFlag", "BOOLEAN";
    EXEC_TYPE = 150, "ExecType", "CHAR";
    LEAVES_QTY = 151, "LeavesQty", "QTY";
    SUBSCRIPTION_REQUEST_TYPE = 263, "SubscriptionRequestType", "CHAR";
    REF_TAG_ID = 371, "RefTagID", "INT";
    REF_MSG_TYPE = 372, "RefMsgType", "STRING";
    SESSION_REJECT_REASON = 373, "SessionRejectReason", "INT";
    BUSINESS_REJECT_REASON = 380, "BusinessRejectReason", "INT";
    CXL_REJ_RESPONSE_TO = 434, "CxlRejResponseTo", "CHAR";
    MASS_CANCEL_REQUEST_TYPE = 530, "MassCancelRequestType", "CHAR";
    MASS_CANCEL_RESPONSE = 531, "MassCancelResponse", "CHAR";
    MASS_CANCEL_REJECT_REASON = 532, "MassCancelRejectReason", "STRING";
    TOTAL_AFFECTED_ORDERS = 533, "TotalAffectedOrders", "INT";
    USERNAME = 553, "Username", "STRING";
    PASSWORD = 554, "Password", "STRING";
    NEXT_EXPECTED_MSG_SEQ_NUM = 789, "NextExpectedMsgSeqNum", "SEQNUM";
    ORD_STATUS_REQ_ID = 790, "OrdStatusReqID", "STRING";
    TRD_MATCH_ID = 880, "TrdMatchID", "STRING";
    COLL_RPT_ID = 908, "CollRptID", "STRING";
    COLL_INQUIRY_ID = 909, "CollInquiryID", "STRING";
    COLL_STATUS = 910, "CollStatus", "INT";
    TOT_NUM_REPORTS = 911, "TotNumReports", "INT";
    LAST_RPT_REQUESTED = 912, "LastRptRequested", "BOOLEAN";
    AGGRESSOR_INDICATOR = 1057, "AggressorIndicator", "BOOLEAN";
    SELF_TRADE_PREVENTION_INSTRUCTION = 7928, "SelfTradePreventionInstruction", "INT";
    AVAILABLE_BALANCE = 7930, "AvailableBalance", "AMT";
    HELD_BALANCE = 7931, "HeldBalance", "AMT";
}

/// A tag shown as its name and number, "Price (44)" (or "Tag (9999)" for one Veloz does not
/// speak): the form every error message of this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named(pub u32);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", name(self.0), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_sorted_and_unique() {
        assert!(
            ALL.windows(2).all(|w| w[0].0 < w[1].0),
            "ALL must be sorted by tag, no repeats"
        );
        let mut names: Vec<&str> = ALL.iter().map(|t| t.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "two tags share a name");
    }

    #[test]
    fn names_follow_the_spec() {
        assert_eq!(name(PRICE), "Price");
        assert_eq!(name(CL_ORD_ID), "ClOrdID");
        assert_eq!(name(9999), "Tag");
        assert_eq!(Named(44).to_string(), "Price (44)");
        assert_eq!(Named(9999).to_string(), "Tag (9999)");
        for &(tag, n, _) in ALL {
            assert_eq!(name(tag), n);
        }
    }
}

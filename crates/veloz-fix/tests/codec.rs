//! Writer -> frame -> parser, as properties over seeded random messages and byte streams.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use veloz_fix::tags::*;
use veloz_fix::{checksum, dictionary, frame, FieldError, FrameError, FrameStatus, Parser, Writer};

const MAX: usize = 8192;

fn config(seed: u64, cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Body fields: distinct tags (not 8, 9, 10, 35), non-empty printable values.
fn body_fields() -> impl Strategy<Value = Vec<(u32, Vec<u8>)>> {
    let tag = prop_oneof![1u32..200, 200u32..1100, 1100u32..100_000];
    let value = proptest::collection::vec(0x20u8..0x7f, 1..24);
    proptest::collection::btree_map(tag, value, 0..20).prop_map(|m| {
        m.into_iter()
            .filter(|(t, _)| ![8, 9, 10, 35].contains(t))
            .collect::<Vec<_>>()
    })
}

fn msg_type() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"D".to_vec()),
        Just(b"8".to_vec()),
        Just(b"AE".to_vec()),
        proptest::collection::vec(b'A'..=b'z', 1..3)
    ]
}

fn write(kind: &[u8], fields: &[(u32, Vec<u8>)], out: &mut Vec<u8>) -> std::ops::Range<usize> {
    let mut w = Writer::new();
    w.begin(kind);
    for (t, v) in fields {
        w.bytes(*t, v);
    }
    w.finish(out)
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    (msg_type(), body_fields()).prop_map(|(k, f)| {
        let mut out = Vec::new();
        write(&k, &f, &mut out);
        out
    })
}

/// The fields of `bytes` parsed, or None.
fn fields_of(bytes: &[u8]) -> Option<Vec<(u32, Vec<u8>)>> {
    let mut p = Parser::new();
    let m = p.parse(bytes).ok()?;
    Some(m.fields().map(|(t, v)| (t, v.to_vec())).collect())
}

proptest! {
    #![proptest_config(config(0xf1c5_0001, 1500))]

    #[test]
    fn written_messages_frame_and_parse_back(kind in msg_type(), fields in body_fields(), prefix in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        let range = write(&kind, &fields, &mut out);
        prop_assert_eq!(range.start, prefix.len());
        let bytes = &out[range.clone()];
        prop_assert_eq!(frame(bytes, MAX), FrameStatus::Complete(bytes.len()));
        let mut p = Parser::new();
        let m = p.parse(bytes).unwrap();
        prop_assert_eq!(m.msg_type(), &kind[..]);
        let got: Vec<(u32, Vec<u8>)> = m.fields().skip(3).map(|(t, v)| (t, v.to_vec())).collect();
        let (trailer, body) = got.split_last().unwrap();
        prop_assert_eq!(body, &fields[..]);
        prop_assert_eq!(trailer.0, CHECK_SUM);
    }

    #[test]
    fn typed_values_round_trip(seq in any::<u64>(), px in any::<i64>(), scale in 0u8..=9, ts in any::<u64>(), side in 0x21u8..0x7f, flag in any::<bool>()) {
        let mut w = Writer::new();
        w.begin(b"D");
        w.uint(MSG_SEQ_NUM, seq);
        w.decimal(PRICE, px, scale);
        w.timestamp(SENDING_TIME, ts);
        w.char(SIDE, side);
        w.bool(POSS_DUP_FLAG, flag);
        w.int(REF_TAG_ID, px);
        let mut out = Vec::new();
        w.finish(&mut out);
        let mut p = Parser::new();
        let m = p.parse(&out).unwrap();
        prop_assert_eq!(m.seq_num(), Some(seq));
        prop_assert_eq!(m.require_decimal(PRICE, scale), Ok(px));
        prop_assert_eq!(m.require_timestamp(SENDING_TIME), Ok(ts - ts % 1_000_000));
        prop_assert_eq!(m.require_char(SIDE), Ok(side));
        prop_assert_eq!(m.require_bool(POSS_DUP_FLAG), Ok(flag));
        prop_assert_eq!(m.require_str(REF_TAG_ID).unwrap().parse::<i64>().unwrap(), px);
    }

    #[test]
    fn concatenated_messages_split_exactly(msgs in proptest::collection::vec(message(), 1..8)) {
        let stream: Vec<u8> = msgs.concat();
        let mut at = 0;
        for m in &msgs {
            prop_assert_eq!(frame(&stream[at..], MAX), FrameStatus::Complete(m.len()));
            at += m.len();
        }
        prop_assert_eq!(frame(&stream[at..], MAX), FrameStatus::Incomplete);
    }

    #[test]
    fn every_prefix_is_incomplete(m in message()) {
        for n in 0..m.len() {
            prop_assert_eq!(frame(&m[..n], MAX), FrameStatus::Incomplete, "prefix of {} bytes", n);
        }
    }

    #[test]
    fn a_flipped_byte_never_passes_unnoticed(m in message(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
        let mut bad = m.clone();
        let i = at.index(m.len());
        bad[i] ^= x;
        let original = fields_of(&m).unwrap();
        match frame(&bad, MAX) {
            FrameStatus::Incomplete => {}
            FrameStatus::Garbled { len, .. } => prop_assert!(len >= 1 && len <= bad.len()),
            FrameStatus::Complete(n) => {
                prop_assert!(n <= bad.len());
                prop_assert_ne!(fields_of(&bad[..n]), Some(original), "flip at {} went unnoticed", i);
            }
        }
    }

    #[test]
    fn wrong_body_length_resyncs_to_the_next(m in message(), next in message(), delta in prop_oneof![-1000i64..0, 1i64..1000]) {
        // Rewrite BodyLength to a wrong value and fix the CheckSum, so only the length is wrong.
        let text = m.clone();
        let soh = text[10..].iter().position(|&b| b == 1).unwrap() + 10;
        let actual: i64 = std::str::from_utf8(&text[12..soh]).unwrap().parse().unwrap();
        let declared = (actual + delta).max(0);
        prop_assume!(declared != actual);
        let mut bad = b"8=FIX.4.4\x019=".to_vec();
        bad.extend_from_slice(declared.to_string().as_bytes());
        bad.extend_from_slice(&text[soh..text.len() - 7]);
        let ck = checksum(&bad);
        bad.extend_from_slice(format!("10={ck:03}\x01").as_bytes());
        let first = bad.len();
        bad.extend_from_slice(&next);
        let want = FrameError::BodyLengthMismatch { declared: declared as usize, actual: actual as usize };
        prop_assert_eq!(frame(&bad, MAX), FrameStatus::Garbled { len: first, error: want });
        prop_assert_eq!(frame(&bad[first..], MAX), FrameStatus::Complete(next.len()));
    }

    #[test]
    fn checksum_mismatch_names_both_values(m in message(), wrong in 0u32..256) {
        let n = m.len();
        let right = checksum(&m[..n - 7]);
        prop_assume!(wrong != u32::from(right));
        let mut bad = m.clone();
        bad[n - 4..n - 1].copy_from_slice(format!("{wrong:03}").as_bytes());
        let FrameStatus::Garbled { len, error } = frame(&bad, MAX) else { panic!("not garbled") };
        prop_assert_eq!(len, n);
        prop_assert_eq!(error.to_string(), format!("CheckSum (10) is {wrong:03}, the message sums to {right:03}"));
    }
}

/// Random bytes, salted with pieces of real messages so that every branch of the framer is
/// reached.
fn noisy_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 1..40),
        1 => Just(b"8=FIX.4.4\x01".to_vec()),
        1 => Just(b"\x0110=".to_vec()),
        1 => Just(b"9=12\x01".to_vec()),
        1 => proptest::collection::vec(prop_oneof![Just(b'1'), Just(b'0'), Just(b'='), Just(1u8), Just(b'8')], 1..12),
        2 => message(),
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(0xf1c5_0002, 1500))]

    #[test]
    fn garbage_never_panics_and_always_progresses(stream in noisy_stream(), max in prop_oneof![Just(MAX), 1usize..200]) {
        let mut at = 0;
        let mut parser = Parser::new();
        while at < stream.len() {
            let rest = &stream[at..];
            match frame(rest, max) {
                FrameStatus::Incomplete => {
                    prop_assert!(rest.len() < max, "Incomplete with {} bytes, max {}", rest.len(), max);
                    break;
                }
                FrameStatus::Garbled { len, .. } => {
                    prop_assert!(len >= 1 && len <= rest.len());
                    at += len;
                }
                FrameStatus::Complete(n) => {
                    prop_assert!(n >= 1 && n <= rest.len() && n <= max);
                    let _ = parser.parse(&rest[..n]).map(|m| dictionary::validate(&m).is_ok());
                    at += n;
                }
            }
        }
    }
}

#[test]
fn dictionary_validation() {
    let build = |f: &dyn Fn(&mut Writer)| {
        let mut w = Writer::new();
        w.begin(b"D");
        w.str(SENDER_COMP_ID, "CLIENT");
        w.str(TARGET_COMP_ID, "VELOZ");
        w.uint(MSG_SEQ_NUM, 2);
        w.timestamp(SENDING_TIME, 1_700_000_000_000_000_000);
        f(&mut w);
        let mut out = Vec::new();
        w.finish(&mut out);
        out
    };
    let order = |w: &mut Writer| {
        w.str(CL_ORD_ID, "c1");
        w.str(SYMBOL, "BTC-USD");
        w.char(SIDE, b'1');
        w.timestamp(TRANSACT_TIME, 1_700_000_000_000_000_000);
        w.decimal(ORDER_QTY, 5, 0);
        w.char(ORD_TYPE, b'2');
        w.decimal(PRICE, 10125, 2);
    };
    let check = |bytes: Vec<u8>| {
        let mut p = Parser::new();
        let m = p.parse(&bytes).unwrap();
        dictionary::validate(&m).map(|d| d.name)
    };
    assert_eq!(check(build(&order)), Ok("NewOrderSingle"));
    assert_eq!(
        check(build(&|w: &mut Writer| {
            order(w);
            w.str(LAST_PX, "1");
        })),
        Err(FieldError::NotInMessage {
            tag: LAST_PX,
            message: "NewOrderSingle"
        })
    );
    let e = check(build(&|w: &mut Writer| {
        order(w);
        w.str(5000, "x");
    }))
    .unwrap_err();
    assert_eq!(
        (e.clone(), e.session_reject_reason()),
        (FieldError::UnknownTag { tag: 5000 }, 0)
    );
    let e = check(build(&|w: &mut Writer| {
        w.str(CL_ORD_ID, "c1");
        w.str(SYMBOL, "BTC-USD");
    }))
    .unwrap_err();
    assert_eq!(
        (e.clone(), e.session_reject_reason()),
        (FieldError::Missing { tag: SIDE }, 1)
    );
    assert_eq!(e.to_string(), "Side (54) is missing");
    let mut w = Writer::new();
    w.begin(b"ZZ");
    let mut out = Vec::new();
    w.finish(&mut out);
    let e = check(out).unwrap_err();
    assert_eq!((e.tag(), e.session_reject_reason()), (Some(MSG_TYPE), 11));
    assert!(dictionary::message(b"8").is_some_and(|d| !d.admin));
    assert!(dictionary::message(b"A").is_some_and(|d| d.admin));
}

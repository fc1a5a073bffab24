//! Execution reports by template: the hot path of [`crate::FrameEncoder::execution_report`].
//!
//! Running the FlatBuffers builder for each report (reset, 22 slot pushes, vtable search,
//! finish) costs about 115 ns; every report has the same shape, so the frame is built once
//! and then patched. Layout: the builder writes, once per process, a `Message` holding an
//! `ExecutionReport` with `force_defaults(true)` and every optional field present, so every
//! field has a slot; the positions of the fields, of the vtable entries of the optional
//! ones, and of the reason text are read back from that frame through the generated `VT_*`
//! constants (nothing is hard-coded, so a schema change moves the offsets with it). A report
//! is then one copy of the template and one little-endian store per field.
//!
//! - Optional scalars (`side`, `reject_reason`, `cancel_reason`): when `None`, the field's
//!   vtable entry is set to 0, so the field is absent exactly as the builder leaves it (a
//!   generated reader then gives `None`, not a default value).
//! - The reason text (variable length) lives in a fixed-capacity slot: a second template
//!   carries a string of [`text_capacity`] bytes, the last thing in the frame; a report
//!   writes its length, bytes and NUL terminator there and the frame is cut right after the
//!   terminator (size prefix patched), so no unreferenced byte trails the message. The
//!   capacity is the longest reject or cancel reason name, so every text the engine produces
//!   fits; a longer text makes [`ReportTemplates::write`] return `false` and the caller uses
//!   the builder. An empty text uses the template without the string (the field is absent,
//!   as the builder leaves it).
//!
//! Cost: the frame carries every default, so it is larger than the builder's (192 bytes
//! against 136 to 144 for a report without text, 206 with a cancel's text).
//!
//! Invariants: the output bytes depend on the report alone (the whole template is copied
//! first, so nothing of an earlier report, possibly another account's, is left in unused
//! bytes); the frame passes the verifier and decodes, with the generated readers and with
//! [`crate::decode_engine`], to the same message as the builder's frame (byte identity is
//! not a goal). The tests in `codec_tests.rs` compare both over many seeded random reports.

use std::sync::OnceLock;

use flatbuffers::FlatBufferBuilder;
use veloz_core::RejectReason;

use crate::convert::cancel_reason_from_code;
use crate::frame::LENGTH_PREFIX_LEN;
use crate::generated as fb;
use crate::message::ExecutionReport;

/// The text slot's size: the longest reject or cancel reason name (the texts the engine
/// sends), rounded up to 8.
pub(crate) fn text_capacity() -> usize {
    static TEXT_CAPACITY: OnceLock<usize> = OnceLock::new();
    *TEXT_CAPACITY.get_or_init(|| {
        let reject = RejectReason::ALL.iter().map(|r| r.name().len());
        let cancel = (0..=u16::MAX)
            .filter_map(cancel_reason_from_code)
            .map(|c| c.name().len());
        reject.chain(cancel).max().unwrap_or(0).next_multiple_of(8)
    })
}

/// The two prepared frames: without and with a reason text.
#[derive(Debug)]
pub(crate) struct ReportTemplates {
    plain: Template,
    with_text: Template,
}

/// One prepared frame and where its fields are.
#[derive(Debug)]
struct Template {
    frame: Box<[u8]>,
    exec_type: usize,
    order_id: usize,
    client_order_id: usize,
    symbol_id: usize,
    has_symbol: usize,
    price: usize,
    qty: usize,
    last_qty: usize,
    last_price: usize,
    leaves_qty: usize,
    trade_id: usize,
    liquidity: usize,
    seq: usize,
    timestamp_ns: usize,
    kept_priority: usize,
    mass_cancel_count: usize,
    stream: usize,
    stream_seq: usize,
    side: Optional,
    reject_reason: Optional,
    cancel_reason: Optional,
    /// Where the text's `u32` length is (its bytes follow); only in `with_text`.
    text_len: usize,
}

/// An optional field: its value's position, and its vtable entry's, to clear when `None`.
#[derive(Clone, Copy, Debug)]
struct Optional {
    value: usize,
    entry: usize,
}

impl ReportTemplates {
    /// The process's templates, built on first use.
    pub(crate) fn get() -> &'static ReportTemplates {
        static TEMPLATES: OnceLock<ReportTemplates> = OnceLock::new();
        TEMPLATES.get_or_init(|| ReportTemplates {
            plain: Template::build(None),
            with_text: Template::build(Some(text_capacity())),
        })
    }

    /// Write `r`'s frame into `out` (cleared first); `false` (and `out` untouched) when its
    /// reason text does not fit the slot: use the builder then.
    pub(crate) fn write(&self, r: &ExecutionReport<'_>, out: &mut Vec<u8>) -> bool {
        let text = r.reason_text.as_bytes();
        let t = if text.is_empty() {
            &self.plain
        } else if text.len() <= text_capacity() {
            &self.with_text
        } else {
            return false;
        };
        out.clear();
        out.extend_from_slice(&t.frame);
        let f = out.as_mut_slice();
        put(f, t.exec_type, [r.exec_type as u8]);
        put(f, t.order_id, r.order_id.to_le_bytes());
        put(f, t.client_order_id, r.client_order_id.to_le_bytes());
        put(f, t.symbol_id, r.symbol.unwrap_or(0).to_le_bytes());
        put(f, t.has_symbol, [u8::from(r.symbol.is_some())]);
        put(f, t.price, r.price.to_le_bytes());
        put(f, t.qty, r.qty.to_le_bytes());
        put(f, t.last_qty, r.last_qty.to_le_bytes());
        put(f, t.last_price, r.last_price.to_le_bytes());
        put(f, t.leaves_qty, r.leaves_qty.to_le_bytes());
        put(f, t.trade_id, r.trade_id.to_le_bytes());
        put(f, t.liquidity, [r.liquidity as u8]);
        put(f, t.seq, r.seq.to_le_bytes());
        put(f, t.timestamp_ns, r.timestamp_ns.to_le_bytes());
        put(f, t.kept_priority, [u8::from(r.kept_priority)]);
        put(f, t.mass_cancel_count, r.mass_cancel_count.to_le_bytes());
        put(f, t.stream, r.stream.to_le_bytes());
        put(f, t.stream_seq, r.stream_seq.to_le_bytes());
        optional(f, t.side, r.side.map(|s| [s as u8]));
        optional(
            f,
            t.reject_reason,
            r.reject_reason.map(|c| c.code().to_le_bytes()),
        );
        optional(
            f,
            t.cancel_reason,
            r.cancel_reason.map(|c| c.code().to_le_bytes()),
        );
        if !text.is_empty() {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            put(f, t.text_len, len.to_le_bytes());
            let start = t.text_len + 4;
            f[start..start + text.len()].copy_from_slice(text);
            // The slot is zero past the text, so the NUL terminator is already there; the
            // slot is the last thing in the frame, so the frame ends right after it.
            let end = start + text.len() + 1;
            out.truncate(end);
            let body = u32::try_from(end - LENGTH_PREFIX_LEN).unwrap_or(u32::MAX);
            put(out, 0, body.to_le_bytes());
        }
        true
    }
}

#[inline]
fn put<const N: usize>(f: &mut [u8], at: usize, v: [u8; N]) {
    f[at..at + N].copy_from_slice(&v);
}

#[inline]
fn optional<const N: usize>(f: &mut [u8], o: Optional, v: Option<[u8; N]>) {
    match v {
        Some(v) => put(f, o.value, v),
        None => put(f, o.entry, [0, 0]),
    }
}

impl Template {
    /// Build the frame (with a zeroed text slot of `text` bytes, or no text) and find its
    /// fields. Panics only if the builder did not write a slot for every field, which
    /// `force_defaults` guarantees (a test builds both templates).
    fn build(text: Option<usize>) -> Template {
        let mut fbb = FlatBufferBuilder::with_capacity(512);
        fbb.force_defaults(true);
        let reason_text = text.map(|n| fbb.create_string(&"\0".repeat(n)));
        let report = fb::ExecutionReport::create(
            &mut fbb,
            &fb::ExecutionReportArgs {
                has_symbol: false,
                side: Some(fb::Side(0)),
                reject_reason: Some(fb::RejectReason(0)),
                cancel_reason: Some(fb::CancelReason(0)),
                reason_text,
                ..Default::default()
            },
        );
        let msg = fb::Message::create(
            &mut fbb,
            &fb::MessageArgs {
                payload_type: fb::Payload::ExecutionReport,
                payload: Some(report.as_union_value()),
            },
        );
        fbb.finish_size_prefixed(msg, None);
        let frame: Box<[u8]> = fbb.finished_data().into();

        let root = follow(&frame, 4);
        let msg_vtable = vtable(&frame, root);
        let payload_slot = root + entry(&frame, msg_vtable, fb::Message::VT_PAYLOAD);
        let table = follow(&frame, payload_slot);
        let vt = vtable(&frame, table);
        let at = |voffset: u16| table + entry(&frame, vt, voffset);
        let opt = |voffset: u16| Optional {
            value: at(voffset),
            entry: vt + usize::from(voffset),
        };
        use fb::ExecutionReport as R;
        let text_len = match text {
            Some(n) => {
                let len_at = follow(&frame, at(R::VT_REASON_TEXT));
                // `write` cuts the frame after the text: the slot must be at its end.
                assert!(
                    frame.len() - (len_at + 4 + n + 1) < 8,
                    "the text slot is not at the end of the template"
                );
                len_at
            }
            None => 0,
        };
        Template {
            exec_type: at(R::VT_EXEC_TYPE),
            order_id: at(R::VT_ORDER_ID),
            client_order_id: at(R::VT_CLIENT_ORDER_ID),
            symbol_id: at(R::VT_SYMBOL_ID),
            has_symbol: at(R::VT_HAS_SYMBOL),
            price: at(R::VT_PRICE),
            qty: at(R::VT_QTY),
            last_qty: at(R::VT_LAST_QTY),
            last_price: at(R::VT_LAST_PRICE),
            leaves_qty: at(R::VT_LEAVES_QTY),
            trade_id: at(R::VT_TRADE_ID),
            liquidity: at(R::VT_LIQUIDITY),
            seq: at(R::VT_SEQ),
            timestamp_ns: at(R::VT_TIMESTAMP_NS),
            kept_priority: at(R::VT_KEPT_PRIORITY),
            mass_cancel_count: at(R::VT_MASS_CANCEL_COUNT),
            stream: at(R::VT_STREAM),
            stream_seq: at(R::VT_STREAM_SEQ),
            side: opt(R::VT_SIDE),
            reject_reason: opt(R::VT_REJECT_REASON),
            cancel_reason: opt(R::VT_CANCEL_REASON),
            text_len,
            frame,
        }
    }
}

// Readers of the template the builder just wrote (trusted input: indexing panics only on a
// builder bug, at start-up).
fn u32_at(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(f[at..at + 4].try_into().expect("4 bytes"))
}

fn follow(f: &[u8], at: usize) -> usize {
    at + u32_at(f, at) as usize
}

/// The vtable position of the table at `table`.
fn vtable(f: &[u8], table: usize) -> usize {
    let soffset = u32_at(f, table) as i32;
    (table as i64 - i64::from(soffset)) as usize
}

/// A field's offset in its table; every field of the template has one.
fn entry(f: &[u8], vt: usize, voffset: u16) -> usize {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([f[at], f[at + 1]]));
    let v = usize::from(voffset);
    assert!(
        v < u16_at(vt),
        "template vtable too short for voffset {voffset}"
    );
    let e = u16_at(vt + v);
    assert!(e != 0, "template field at voffset {voffset} is absent");
    e
}

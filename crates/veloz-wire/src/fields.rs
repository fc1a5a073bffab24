//! Order requests read straight from the frame: the hot path of [`crate::decode_client`].
//!
//! NewOrder, Cancel, Replace and MassCancel are flat tables of scalars under the `Message`
//! root. For them the full FlatBuffers verifier (about two thirds of a decode, figures in
//! `benches/codec.rs`) is replaced by [`read_order`], which makes the same checks the
//! verifier makes for these shapes and reads each field as it checks it, from the frame,
//! into a plain [`OrderFields`] value (no copy of the frame, no allocation):
//! - the size prefix equals the bytes after it; the root `uoffset` (at 4) is 4-aligned and
//!   in the frame;
//! - for each of the two tables (`Message`, then the payload): its `soffset` is 4-aligned and
//!   in the frame, the vtable it points to is 2-aligned, its length even and the whole
//!   vtable in the frame; every field slot the vtable lists below its length, when non-zero,
//!   points to a value aligned to its size and in the frame (slots at or past the vtable's
//!   length are absent, as in the verifier and the generated readers);
//! - the union: type and value both present (the verifier refuses one without the other),
//!   the value's `uoffset` 4-aligned and in the frame, the type one of the four above.
//!
//! Invariant: `read_order` returns `Some` only for frames the verifier accepts under
//! [`VerifyLimits::CLIENT`](crate::VerifyLimits::CLIENT) (two tables of depth two, and an
//! apparent size under 2 x 64 KiB of vtables plus a few hundred bytes, far inside its 1 MiB
//! bound), and then the fields equal what the generated accessors read (same slots, same
//! defaults, `bool` as `byte != 0`). It returns `None` for anything else, malformed or not
//! one of these messages, and the caller runs the verifier, which names the fault: so every
//! malformed frame still gets the verifier's [`WireError`](crate::WireError). A test mutates
//! valid frames and checks both invariants. Enum values are not checked here: the decoder
//! converts [`OrderFields`] the same way whichever path read them.

use crate::frame::{declared_len, LENGTH_PREFIX_LEN};
use crate::generated as fb;

/// A NewOrder's fields as sent; enums as their raw codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NewOrderFields {
    pub client_order_id: u64,
    pub symbol_id: u32,
    pub side: Option<u8>,
    pub kind: u8,
    pub tif: u8,
    pub post_only: bool,
    pub stp: u8,
    pub price: i64,
    pub qty: u64,
}

/// A Cancel's fields (also a Replace's, with its price and quantity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CancelFields {
    pub client_order_id: u64,
    pub symbol_id: u32,
    pub order_id: u64,
    pub orig_client_order_id: u64,
}

/// A Replace's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReplaceFields {
    pub cancel: CancelFields,
    pub price: i64,
    pub qty: u64,
}

/// A MassCancel's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MassCancelFields {
    pub client_order_id: u64,
    pub has_symbol: bool,
    pub symbol_id: u32,
}

/// One order request as read from its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderFields {
    New(NewOrderFields),
    Cancel(CancelFields),
    Replace(ReplaceFields),
    MassCancel(MassCancelFields),
}

impl From<fb::NewOrder<'_>> for NewOrderFields {
    fn from(m: fb::NewOrder<'_>) -> Self {
        NewOrderFields {
            client_order_id: m.client_order_id(),
            symbol_id: m.symbol_id(),
            side: m.side().map(|s| s.0),
            kind: m.kind().0,
            tif: m.tif().0,
            post_only: m.post_only(),
            stp: m.stp().0,
            price: m.price(),
            qty: m.qty(),
        }
    }
}

impl From<fb::Cancel<'_>> for CancelFields {
    fn from(m: fb::Cancel<'_>) -> Self {
        CancelFields {
            client_order_id: m.client_order_id(),
            symbol_id: m.symbol_id(),
            order_id: m.order_id(),
            orig_client_order_id: m.orig_client_order_id(),
        }
    }
}

impl From<fb::Replace<'_>> for ReplaceFields {
    fn from(m: fb::Replace<'_>) -> Self {
        ReplaceFields {
            cancel: CancelFields {
                client_order_id: m.client_order_id(),
                symbol_id: m.symbol_id(),
                order_id: m.order_id(),
                orig_client_order_id: m.orig_client_order_id(),
            },
            price: m.price(),
            qty: m.qty(),
        }
    }
}

impl From<fb::MassCancel<'_>> for MassCancelFields {
    fn from(m: fb::MassCancel<'_>) -> Self {
        MassCancelFields {
            client_order_id: m.client_order_id(),
            has_symbol: m.has_symbol(),
            symbol_id: m.symbol_id(),
        }
    }
}

/// The order request in `frame` (with its prefix), when the frame is one of the four flat
/// order messages and passes the verifier's checks; `None` otherwise. See the module docs.
#[inline]
pub(crate) fn read_order(frame: &[u8]) -> Option<OrderFields> {
    let declared = declared_len(frame)?;
    if declared as usize != frame.len() - LENGTH_PREFIX_LEN {
        return None;
    }
    let root = follow(frame, LENGTH_PREFIX_LEN)?;
    let msg = Table::open(frame, root)?;
    let kind = msg
        .get::<1>(fb::Message::VT_PAYLOAD_TYPE)?
        .map(u8::from_le_bytes)?;
    let value_slot = msg.slot(fb::Message::VT_PAYLOAD)?;
    let t = Table::open(frame, follow(frame, value_slot)?)?;
    Some(match fb::Payload(kind) {
        fb::Payload::NewOrder => OrderFields::New(NewOrderFields {
            client_order_id: t.u64(fb::NewOrder::VT_CLIENT_ORDER_ID)?,
            symbol_id: t.u32(fb::NewOrder::VT_SYMBOL_ID)?,
            side: t.get::<1>(fb::NewOrder::VT_SIDE)?.map(u8::from_le_bytes),
            kind: t.u8(fb::NewOrder::VT_KIND)?,
            tif: t.u8(fb::NewOrder::VT_TIF)?,
            post_only: t.u8(fb::NewOrder::VT_POST_ONLY)? != 0,
            stp: t.u8(fb::NewOrder::VT_STP)?,
            price: t.i64(fb::NewOrder::VT_PRICE)?,
            qty: t.u64(fb::NewOrder::VT_QTY)?,
        }),
        fb::Payload::Cancel => OrderFields::Cancel(CancelFields {
            client_order_id: t.u64(fb::Cancel::VT_CLIENT_ORDER_ID)?,
            symbol_id: t.u32(fb::Cancel::VT_SYMBOL_ID)?,
            order_id: t.u64(fb::Cancel::VT_ORDER_ID)?,
            orig_client_order_id: t.u64(fb::Cancel::VT_ORIG_CLIENT_ORDER_ID)?,
        }),
        fb::Payload::Replace => OrderFields::Replace(ReplaceFields {
            cancel: CancelFields {
                client_order_id: t.u64(fb::Replace::VT_CLIENT_ORDER_ID)?,
                symbol_id: t.u32(fb::Replace::VT_SYMBOL_ID)?,
                order_id: t.u64(fb::Replace::VT_ORDER_ID)?,
                orig_client_order_id: t.u64(fb::Replace::VT_ORIG_CLIENT_ORDER_ID)?,
            },
            price: t.i64(fb::Replace::VT_PRICE)?,
            qty: t.u64(fb::Replace::VT_QTY)?,
        }),
        fb::Payload::MassCancel => OrderFields::MassCancel(MassCancelFields {
            client_order_id: t.u64(fb::MassCancel::VT_CLIENT_ORDER_ID)?,
            has_symbol: t.u8(fb::MassCancel::VT_HAS_SYMBOL)? != 0,
            symbol_id: t.u32(fb::MassCancel::VT_SYMBOL_ID)?,
        }),
        _ => return None,
    })
}

#[inline(always)]
fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// `N` bytes at `at`, aligned to `N` relative to the frame start (the verifier's rule for
/// scalars: `align_of` equals `size_of` for every scalar of the schema on the targets we
/// build for).
#[inline(always)]
fn aligned<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    if !at.is_multiple_of(N) {
        return None;
    }
    bytes(b, at)
}

/// Where the `uoffset` at `at` points.
#[inline(always)]
fn follow(b: &[u8], at: usize) -> Option<usize> {
    let off = u32::from_le_bytes(aligned::<4>(b, at)?) as usize;
    Some(off.saturating_add(at))
}

/// A table whose header and vtable passed the verifier's checks.
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

impl<'a> Table<'a> {
    #[inline(always)]
    fn open(buf: &'a [u8], pos: usize) -> Option<Table<'a>> {
        let soffset = i32::from_le_bytes(aligned::<4>(buf, pos)?);
        let vtable = if soffset > 0 {
            pos.checked_sub(soffset.unsigned_abs() as usize)?
        } else {
            pos.checked_add(soffset.unsigned_abs() as usize)?
        };
        let vtable_len = usize::from(u16::from_le_bytes(aligned::<2>(buf, vtable)?));
        if !vtable_len.is_multiple_of(2) || vtable.checked_add(vtable_len)? > buf.len() {
            return None;
        }
        Some(Table {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// `Some(None)`: the field is absent; `Some(Some(pos))`: where it is; `None`: the slot
    /// is unreadable (cannot happen once `open` succeeded, kept for safety without panics).
    #[inline(always)]
    fn position(&self, voffset: u16) -> Option<Option<usize>> {
        let voffset = usize::from(voffset);
        if voffset >= self.vtable_len {
            return Some(None);
        }
        let entry = u16::from_le_bytes(bytes(self.buf, self.vtable + voffset)?);
        Some((entry != 0).then(|| self.pos.saturating_add(usize::from(entry))))
    }

    /// The raw value of a field of `N` bytes: `Some(None)` when absent, `None` when the
    /// verifier would refuse it.
    #[inline(always)]
    fn get<const N: usize>(&self, voffset: u16) -> Option<Option<[u8; N]>> {
        match self.position(voffset)? {
            None => Some(None),
            Some(at) => aligned::<N>(self.buf, at).map(Some),
        }
    }

    /// Where an offset field's `uoffset` sits; `None` when absent or refused.
    #[inline(always)]
    fn slot(&self, voffset: u16) -> Option<usize> {
        let at = self.position(voffset)??;
        aligned::<4>(self.buf, at)?;
        Some(at)
    }

    #[inline(always)]
    fn u8(&self, voffset: u16) -> Option<u8> {
        Some(self.get::<1>(voffset)?.map_or(0, u8::from_le_bytes))
    }
    #[inline(always)]
    fn u32(&self, voffset: u16) -> Option<u32> {
        Some(self.get::<4>(voffset)?.map_or(0, u32::from_le_bytes))
    }
    #[inline(always)]
    fn u64(&self, voffset: u16) -> Option<u64> {
        Some(self.get::<8>(voffset)?.map_or(0, u64::from_le_bytes))
    }
    #[inline(always)]
    fn i64(&self, voffset: u16) -> Option<i64> {
        Some(self.get::<8>(voffset)?.map_or(0, i64::from_le_bytes))
    }
}

//! The parse path allocates nothing once warm: framing, parsing and the typed getters of a
//! message, and writing one into buffers that have grown. Counted by a global allocator that
//! wraps the system one and counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use veloz_fix::tags::*;
use veloz_fix::{frame, FrameStatus, Parser, Writer};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counter is a const-initialised thread-local `Cell` (no allocation, no
// destructor), so counting cannot recurse into the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's `layout` contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn write_order(w: &mut Writer, out: &mut Vec<u8>, seq: u64) {
    out.clear();
    w.begin(b"D");
    w.str(SENDER_COMP_ID, "C01");
    w.str(TARGET_COMP_ID, "VELOZ");
    w.uint(MSG_SEQ_NUM, seq);
    w.timestamp(SENDING_TIME, 1_700_000_000_123_456_789);
    w.str(CL_ORD_ID, "o12345");
    w.str(SYMBOL, "BTC-USD");
    w.char(SIDE, b'1');
    w.decimal(ORDER_QTY, 15, 1);
    w.decimal_ratio(PRICE, 30_002, 3, 2, 2);
    w.finish(out);
}

#[test]
fn warm_parse_and_write_do_not_allocate() {
    let (mut w, mut out, mut parser) = (Writer::new(), Vec::new(), Parser::new());
    write_order(&mut w, &mut out, 1);
    let _ = parser.parse(&out).map(|m| m.get(SYMBOL));
    assert!(
        allocations_in(|| drop(vec![0u8; 64])) >= 1,
        "the counter counts"
    );

    let n = allocations_in(|| write_order(&mut w, &mut out, 2));
    assert_eq!(n, 0, "writing allocated");
    let n = allocations_in(|| {
        let FrameStatus::Complete(len) = frame(&out, 4096) else {
            panic!("not framed")
        };
        let m = parser.parse(&out[..len]).expect("parses");
        assert_eq!(m.seq_num(), Some(2));
        assert_eq!(m.require_decimal(PRICE, 4), Ok(1_000_067));
        assert_eq!(m.require_char(SIDE), Ok(b'1'));
        assert_eq!(m.fields().count(), 13);
    });
    assert_eq!(n, 0, "framing or parsing allocated");
}

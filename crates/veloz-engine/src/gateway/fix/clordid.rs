//! ClOrdIDs: text on the FIX wire, 64-bit client order ids in the engine.
//!
//! An OMS names its orders with strings (`ORD-20261201-0001`); the engine keys an account's
//! open orders by a 64-bit client order id. A ClOrdID that is a canonical decimal number
//! below [`TEXT_BASE`] (no sign, no leading zero) is that number, so FIX and binary sessions
//! of one account name the same order the same way. Any other ClOrdID gets the next id
//! from `TEXT_BASE` up, for this CompID, recorded in its store (a `C` record) before the
//! command leaves the session, so every report of the order is written with the text the
//! client chose, also after reconnects and restarts.
//!
//! Invariants: the mapping is one-to-one and never changes for the life of the store file;
//! an id at or above `TEXT_BASE` written without a mapping (another session's order) is
//! written in decimal.

use rustc_hash::FxHashMap;
use veloz_core::BY_CLIENT_ID;
use veloz_fix::Writer;

/// Ids from here up (to [`BY_CLIENT_ID`]) stand for ClOrdIDs that are not numbers.
pub(crate) const TEXT_BASE: u64 = 1 << 62;

/// The longest ClOrdID accepted, in bytes.
pub(crate) const MAX_LEN: usize = 64;

/// One CompID's ClOrdIDs that are not numbers.
#[derive(Debug, Default)]
pub(crate) struct ClOrdIds {
    by_text: FxHashMap<Box<[u8]>, u64>,
    by_id: FxHashMap<u64, Box<[u8]>>,
    next: u64,
}

/// `text` as a canonical decimal below [`TEXT_BASE`], if it is one.
fn number(text: &[u8]) -> Option<u64> {
    if text.first() == Some(&b'0') || text.is_empty() || text.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    (n < TEXT_BASE).then_some(n)
}

impl ClOrdIds {
    /// The id of ClOrdID `text`: its number, its mapping, or a new mapping (returned as
    /// `Err`-free `(id, true)` so the caller records it). Refuses an empty or overlong
    /// text, or one with bytes outside printable ASCII.
    pub fn assign(&mut self, text: &[u8]) -> Result<(u64, bool), String> {
        if let Some(n) = number(text) {
            return Ok((n, false));
        }
        if let Some(&id) = self.by_text.get(text) {
            return Ok((id, false));
        }
        if text.is_empty() || text.len() > MAX_LEN || !text.iter().all(u8::is_ascii_graphic) {
            return Err(format!(
                "{:?} must be 1 to {MAX_LEN} printable characters",
                String::from_utf8_lossy(text)
            ));
        }
        let id = TEXT_BASE + self.next;
        if id >= BY_CLIENT_ID {
            return Err("this CompID has used up its ClOrdIDs: log on with ResetSeqNumFlag".into());
        }
        self.insert(id, text);
        Ok((id, true))
    }

    /// A mapping read back from the store.
    pub fn insert(&mut self, id: u64, text: &[u8]) {
        self.by_text.insert(text.into(), id);
        self.by_id.insert(id, text.into());
        self.next = self.next.max(id - TEXT_BASE + 1);
    }

    /// The id of `text` without making one (`None`: not a number, never seen).
    pub fn lookup(&self, text: &[u8]) -> Option<u64> {
        number(text).or_else(|| self.by_text.get(text).copied())
    }

    /// Write `id` as field `tag`: the client's text, or the number.
    pub fn write(&self, w: &mut Writer, tag: u32, id: u64) {
        match self.by_id.get(&id) {
            Some(text) => w.bytes(tag, text),
            None => w.uint(tag, id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_and_text_maps_one_to_one() {
        let mut c = ClOrdIds::default();
        assert_eq!(c.assign(b"42"), Ok((42, false)));
        // Not canonical numbers: text, so the client gets back exactly what it sent.
        let (a, new) = c.assign(b"007").unwrap();
        assert!(new && a == TEXT_BASE);
        let (b, new) = c.assign(b"ORD-1").unwrap();
        assert!(new && b == TEXT_BASE + 1);
        assert_eq!(c.assign(b"ORD-1"), Ok((b, false)));
        assert_eq!(c.lookup(b"ORD-1"), Some(b));
        assert_eq!(c.lookup(b"ORD-2"), None);
        assert_eq!(c.lookup(b"9"), Some(9));
        let huge = (TEXT_BASE).to_string();
        assert!(c.assign(huge.as_bytes()).unwrap().0 >= TEXT_BASE);
        for bad in [&b""[..], b"a b", &[b'x'; 65]] {
            assert!(c.assign(bad).is_err(), "{bad:?}");
        }
        let mut w = Writer::new();
        w.begin(b"8");
        c.write(&mut w, 11, b);
        c.write(&mut w, 41, 42);
        let mut out = Vec::new();
        let r = w.finish(&mut out);
        let text = String::from_utf8_lossy(&out[r]).replace('\x01', "|");
        assert!(text.contains("|11=ORD-1|41=42|"), "{text}");
        // Read back from a store, the next new text continues after the highest id.
        let mut again = ClOrdIds::default();
        again.insert(TEXT_BASE + 5, b"X");
        assert_eq!(again.assign(b"Y").unwrap().0, TEXT_BASE + 6);
    }
}

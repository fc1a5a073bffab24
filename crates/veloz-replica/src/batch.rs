//! Records in a message: the payload is consecutive journal records exactly as a segment
//! holds them (header with CRC, payload). A leader marker has none.
//!
//! [`records`] checks every record (length, CRC, reserved fields) and that sequence numbers
//! follow each other; a message that fails is refused whole, naming the offset.

use veloz_core::Seq;
use veloz_journal::format::{decode_record, RawRecord};

/// One record of a message: its bytes (what the journal stores) and its decoded header.
#[derive(Debug)]
pub struct MessageRecord<'a> {
    pub bytes: &'a [u8],
    pub raw: RawRecord<'a>,
}

/// The records of `payload`, in order, each checked; `Err` names the offset and why.
pub fn records(payload: &[u8]) -> Result<Vec<MessageRecord<'_>>, String> {
    let mut out = Vec::new();
    let mut off = 0;
    let mut expected: Option<Seq> = None;
    while off < payload.len() {
        let raw = decode_record(payload, off, expected)
            .map_err(|e| format!("record at offset {off} of {}: {e}", payload.len()))?;
        let len = raw.len();
        expected = Some(raw.seq + 1);
        out.push(MessageRecord {
            bytes: &payload[off..off + len],
            raw,
        });
        off += len;
    }
    Ok(out)
}

/// First and last sequence numbers of a message's records; `None` for a leader marker.
pub fn span(payload: &[u8]) -> Result<Option<(Seq, Seq)>, String> {
    let recs = records(payload)?;
    Ok(match (recs.first(), recs.last()) {
        (Some(a), Some(b)) => Some((a.raw.seq, b.raw.seq)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use veloz_journal::format::encode_record_header;

    fn record(seq: Seq, payload: &[u8]) -> Vec<u8> {
        let mut v = encode_record_header(seq, 7, 1, payload).to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn records_are_checked_in_order() {
        let mut msg = record(5, b"abcd");
        msg.extend(record(6, b"efgh"));
        let recs = records(&msg).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].raw.seq, recs[1].raw.seq), (5, 6));
        assert_eq!(recs[1].raw.payload, b"efgh");
        assert_eq!(span(&msg).unwrap(), Some((5, 6)));
        assert_eq!(span(&[]).unwrap(), None);

        // A gap in sequence numbers, a flipped bit and a torn tail are refused.
        let mut gap = record(5, b"abcd");
        gap.extend(record(7, b"efgh"));
        assert!(
            records(&gap).unwrap_err().contains("offset 36"),
            "{:?}",
            records(&gap)
        );
        let mut flipped = msg.clone();
        flipped[40] ^= 1;
        assert!(records(&flipped).is_err());
        assert!(records(&msg[..msg.len() - 1]).is_err());
    }
}

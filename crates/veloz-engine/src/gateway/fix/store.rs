//! A FIX session's persistent state: its sequence numbers, the account its CompID is bound
//! to, every application message it was sent (for ResendRequest), and how far into each
//! report stream it has been sent (so a logon resumes the streams where it left off, also
//! after an engine restart).
//!
//! One append-only file per client CompID, `DATA/fix/<CompID>.log` (CompID bytes outside
//! `A-Z a-z 0-9 - _ .` are written `%XX`), of text records, each a line:
//!
//! ```text
//! A <account>                                 the CompID is bound to this account
//! N <next_in> <next_out>                      sequence reset: earlier O records are gone
//! W <stream> <stream_seq>                     a watermark carried over a reset
//! I <next_in>                                 the next MsgSeqNum expected from the client
//! S <next_out>                                the next MsgSeqNum to send (session
//!                                             messages are not stored, their numbers are)
//! O <seq> <stream> <stream_seq> <len>         a message sent with MsgSeqNum seq; its <len>
//!                                             bytes follow the line, then a newline
//! C <id> <len>                                a ClOrdID that is not a number stands for
//!                                             client order id <id> (module `clordid`); its
//!                                             <len> bytes follow the line, then a newline
//! ```
//!
//! Invariants:
//! - records are appended in the order things happened, so replaying the file gives the
//!   state at its end; a torn last record (a crash mid-write) is cut at open, with a WARN;
//! - what a pass changed is written with one `write` at the pass's flush
//!   ([`Store::flush`]), before the shard waits again: a SIGKILL of the engine loses nothing
//!   written (the page cache keeps it); a host crash may lose the tail, in which case the
//!   client's next logon sees sequence numbers behind what it has (FIX's usual recovery:
//!   its ResendRequest or a SequenceReset);
//! - `O` records of report messages carry their stream position: the watermark of a stream
//!   is the highest position recorded, reset or not.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use veloz_core::AccountId;

/// A stored outbound message: its sequence number and where its bytes are in the file.
#[derive(Clone, Copy, Debug)]
struct Stored {
    seq: u64,
    offset: u64,
    len: u32,
}

/// One CompID's persistent session state.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    file: File,
    /// Bytes of the file already written.
    len: u64,
    /// Records of this pass, not yet written.
    pending: Vec<u8>,
    pub account: Option<AccountId>,
    pub next_in: u64,
    pub next_out: u64,
    /// The next_in / next_out last recorded (`I` / `S` records are written when they moved).
    recorded_in: u64,
    recorded_out: u64,
    messages: Vec<Stored>,
    /// Per report stream (shard), the highest stream position sent.
    watermarks: Vec<u64>,
    /// The ClOrdIDs that are not numbers, read back at open: (id, text).
    pub clordids: Vec<(u64, Vec<u8>)>,
    /// The file as read at open, until [`Store::take_opened`] (the logon rebuilds its order
    /// table from it: one read of the file, not one per message).
    opened: Vec<u8>,
}

/// The file name for `comp_id`.
fn file_name(comp_id: &str) -> String {
    let mut name = String::with_capacity(comp_id.len() + 4);
    for b in comp_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".log");
    name
}

impl Store {
    /// Open (or create) the store of `comp_id` under `dir`, replaying its records.
    pub fn open(dir: &Path, comp_id: &str, streams: usize) -> std::io::Result<Store> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(file_name(comp_id));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut store = Store {
            path,
            file,
            len: 0,
            pending: Vec::new(),
            account: None,
            next_in: 1,
            next_out: 1,
            recorded_in: 1,
            recorded_out: 1,
            messages: Vec::new(),
            watermarks: vec![0; streams],
            clordids: Vec::new(),
            opened: Vec::new(),
        };
        let good = store.replay(&bytes);
        if good < bytes.len() {
            tracing::warn!(target: "veloz::fix", path = %store.path.display(), cut = bytes.len() - good, "FIX store {}: a torn last record ({} bytes) is cut", store.path.display(), bytes.len() - good);
            store.file.set_len(good as u64)?;
        }
        store.len = good as u64;
        bytes.truncate(good);
        store.opened = bytes;
        store.recorded_in = store.next_in;
        store.recorded_out = store.next_out;
        Ok(store)
    }

    /// Apply the records of `bytes`; returns the length of the whole records.
    fn replay(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') {
            let line = &bytes[at..at + nl];
            let Ok(line) = std::str::from_utf8(line) else {
                break;
            };
            let mut words = line.split(' ');
            let kind = words.next().unwrap_or("");
            let nums: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
            let next = at + nl + 1;
            match (kind, nums.as_slice()) {
                ("A", [a]) => self.account = Some(*a as AccountId),
                ("N", [i, o]) => {
                    (self.next_in, self.next_out) = (*i, *o);
                    self.messages.clear();
                }
                ("W", [s, q]) => self.watermark(*s as usize, *q),
                ("I", [i]) => self.next_in = *i,
                ("S", [o]) => self.next_out = *o,
                ("C", [id, len]) => {
                    let end = next + *len as usize + 1;
                    if end > bytes.len() || bytes[end - 1] != b'\n' {
                        break;
                    }
                    self.clordids.push((*id, bytes[next..end - 1].to_vec()));
                    at = end;
                    continue;
                }
                ("O", [seq, stream, stream_seq, len]) => {
                    let end = next + *len as usize + 1;
                    if end > bytes.len() || bytes[end - 1] != b'\n' {
                        break;
                    }
                    self.messages.push(Stored {
                        seq: *seq,
                        offset: next as u64,
                        len: *len as u32,
                    });
                    self.next_out = seq + 1;
                    if *stream_seq != 0 {
                        self.watermark(*stream as usize, *stream_seq);
                    }
                    at = end;
                    continue;
                }
                _ => break,
            }
            at = next;
        }
        at
    }

    fn watermark(&mut self, stream: usize, seq: u64) {
        if let Some(w) = self.watermarks.get_mut(stream) {
            *w = (*w).max(seq);
        }
    }

    /// The file's path (for log lines).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Per report stream, the last position this CompID was sent (the logon's resume point).
    pub fn watermarks(&self) -> &[u64] {
        &self.watermarks
    }

    /// Bind the CompID to `account` (its first logon).
    pub fn bind(&mut self, account: AccountId) {
        self.account = Some(account);
        let _ = writeln!(self.pending, "A {account}");
    }

    /// Both sequence numbers back to 1 (ResetSeqNumFlag): the stored messages are gone,
    /// the watermarks stay.
    pub fn reset(&mut self) {
        self.next_in = 1;
        self.next_out = 1;
        self.recorded_in = 1;
        self.recorded_out = 1;
        self.messages.clear();
        self.pending.extend_from_slice(b"N 1 1\n");
        for (stream, &w) in self.watermarks.iter().enumerate() {
            if w != 0 {
                let _ = writeln!(self.pending, "W {stream} {w}");
            }
        }
    }

    /// Take the next outbound sequence number.
    pub fn take_out(&mut self) -> u64 {
        let seq = self.next_out;
        self.next_out += 1;
        seq
    }

    /// Keep `msg`, sent with `seq`, for resends; `stream_pos` is its report's place in a
    /// report stream, if it is one.
    pub fn record(&mut self, seq: u64, stream_pos: Option<(u16, u64)>, msg: &[u8]) {
        let (stream, stream_seq) = stream_pos.unwrap_or((0, 0));
        let _ = writeln!(self.pending, "O {seq} {stream} {stream_seq} {}", msg.len());
        let offset = self.len + self.pending.len() as u64;
        self.pending.extend_from_slice(msg);
        self.pending.push(b'\n');
        self.messages.push(Stored {
            seq,
            offset,
            len: msg.len() as u32,
        });
        if stream_seq != 0 {
            self.watermark(stream as usize, stream_seq);
        }
    }

    /// ClOrdID `text` stands for client order id `id` from now on.
    pub fn record_clordid(&mut self, id: u64, text: &[u8]) {
        let _ = writeln!(self.pending, "C {id} {}", text.len());
        self.pending.extend_from_slice(text);
        self.pending.push(b'\n');
    }

    /// A report at `stream_seq` of `stream` was taken without a message of its own (a
    /// mass cancel's partial count): the next logon resumes after it.
    pub fn passed(&mut self, stream: u16, stream_seq: u64) {
        self.watermark(stream as usize, stream_seq);
        let _ = writeln!(self.pending, "W {stream} {stream_seq}");
    }

    /// Write what this pass recorded (and the next expected inbound number when it moved).
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.next_in != self.recorded_in {
            let _ = writeln!(self.pending, "I {}", self.next_in);
            self.recorded_in = self.next_in;
        }
        if self.next_out != self.recorded_out {
            let _ = writeln!(self.pending, "S {}", self.next_out);
            self.recorded_out = self.next_out;
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.pending);
        // On failure the file may hold part of the records: what replays is cut at open.
        self.len += self.pending.len() as u64;
        self.pending.clear();
        result
    }

    /// The stored messages with sequence numbers in `from..=to`, in order (read from the
    /// file: call after [`Store::flush`]).
    pub fn messages(&self, from: u64, to: u64) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let start = self.messages.partition_point(|m| m.seq < from);
        let mut out = Vec::new();
        for m in self.messages[start..].iter().take_while(|m| m.seq <= to) {
            let mut buf = vec![0; m.len as usize];
            self.file.read_exact_at(&mut buf, m.offset)?;
            out.push((m.seq, buf));
        }
        Ok(out)
    }

    /// The stored messages as the file held them at open, in order (from the one read of
    /// the file `open` made; empty after [`Store::drop_opened`]).
    pub fn opened_messages(&self) -> impl Iterator<Item = &[u8]> {
        let end = self.opened.len() as u64;
        (self.messages.iter())
            .filter(move |m| m.offset + m.len as u64 <= end)
            .map(|m| &self.opened[m.offset as usize..(m.offset + m.len as u64) as usize])
    }

    /// Give up the file's bytes read at open.
    pub fn drop_opened(&mut self) {
        self.opened = Vec::new();
    }

    /// The sequence number of the last stored message.
    pub fn last_stored(&self) -> Option<u64> {
        self.messages.last().map(|m| m.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("veloz-fix-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn what_a_session_did_survives_a_reopen_and_a_torn_tail_is_cut() {
        let d = dir("reopen");
        let mut s = Store::open(&d, "CLIENT/1", 2).unwrap();
        assert_eq!((s.next_in, s.next_out, s.account), (1, 1, None));
        s.bind(7);
        for n in 0..3u64 {
            let seq = s.take_out();
            s.record(
                seq,
                Some((1, 10 + n)),
                format!("msg{seq}\n\x01x").as_bytes(),
            );
        }
        s.record_clordid(1 << 62, b"ORD\n1");
        s.next_in = 5;
        // A session message (not stored) still uses up its number.
        assert_eq!(s.take_out(), 4);
        s.flush().unwrap();
        assert_eq!(s.path().file_name().unwrap(), "CLIENT%2F1.log");
        let again = Store::open(&d, "CLIENT/1", 2).unwrap();
        assert_eq!(
            (again.next_in, again.next_out, again.account),
            (5, 5, Some(7))
        );
        assert_eq!(again.watermarks(), &[0, 12]);
        assert_eq!(again.clordids, vec![(1 << 62, b"ORD\n1".to_vec())]);
        let got = again.messages(2, 3).unwrap();
        assert_eq!(
            got,
            vec![(2, b"msg2\n\x01x".to_vec()), (3, b"msg3\n\x01x".to_vec())]
        );

        // A record cut short by a crash is dropped; the rest stays.
        let path = again.path().to_path_buf();
        drop(again);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"O 5 1 13 100\nshort").unwrap();
        let cut = Store::open(&d, "CLIENT/1", 2).unwrap();
        assert_eq!((cut.next_out, cut.watermarks()[1]), (5, 12));
        assert_eq!(cut.last_stored(), Some(3));

        // A reset forgets the messages and the numbers, not the watermarks or the account.
        let mut r = cut;
        r.reset();
        r.flush().unwrap();
        let after = Store::open(&d, "CLIENT/1", 2).unwrap();
        assert_eq!(
            (after.next_in, after.next_out, after.account),
            (1, 1, Some(7))
        );
        assert_eq!(after.watermarks(), &[0, 12]);
        assert_eq!(after.last_stored(), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}

//! [`FrameReader`]: a byte stream (socket reads of any size) cut into whole frames.
//!
//! Invariants: frames come out in stream order, each exactly `4 + length` bytes, prefix
//! included (the verifier needs the prefix for alignment); a length above the limit is an
//! error as soon as the prefix is in, and the reader stays failed (frame boundaries are
//! lost: close the connection).

use std::io::Read;

use super::{DecodeError, LENGTH_PREFIX_LEN};

/// Free space made available for each socket read.
const READ_CHUNK: usize = 64 << 10;

/// Cuts a byte stream into frames; see the module docs.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// First byte not yet handed out.
    start: usize,
    /// One past the last byte received.
    end: usize,
    max_frame_len: u32,
    too_large: Option<u32>,
}

impl FrameReader {
    /// A reader refusing bodies longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: u32) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_frame_len,
            too_large: None,
        }
    }

    /// Bytes received and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    fn make_room(&mut self, want: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            let len = (self.end + want).max(self.buf.len() * 2);
            self.buf.resize(len, 0);
        }
    }

    /// One read from `source` into the buffer: the bytes read (0: end of stream), or the
    /// read's error (`WouldBlock` included).
    pub fn read_from<R: Read>(&mut self, source: &mut R) -> std::io::Result<usize> {
        self.make_room(READ_CHUNK);
        let n = source.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Append received bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Whether [`FrameReader::next_frame`] has something to say now (a whole frame, or an
    /// error).
    pub fn ready(&self) -> bool {
        if self.too_large.is_some() {
            return true;
        }
        let pending = &self.buf[self.start..self.end];
        match pending.get(..LENGTH_PREFIX_LEN) {
            None => false,
            Some(p) => {
                let len = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                len > self.max_frame_len || pending.len() >= LENGTH_PREFIX_LEN + len as usize
            }
        }
    }

    /// The next whole frame (prefix included), `None` when it is not all in yet.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if let Some(len) = self.too_large {
            return Err(DecodeError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let pending = &self.buf[self.start..self.end];
        let Some(prefix) = pending.get(..LENGTH_PREFIX_LEN) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len > self.max_frame_len {
            self.too_large = Some(len);
            return Err(DecodeError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let total = LENGTH_PREFIX_LEN + len as usize;
        if pending.len() < total {
            return Ok(None);
        }
        let at = self.start;
        self.start += total;
        Ok(Some(&self.buf[at..at + total]))
    }
}

/// Walk `bytes`, a run of whole frames, and return the end of the frame that contains
/// offset `at` (or `bytes.len()` when the run ends first).
pub fn frame_end_after(bytes: &[u8], at: usize) -> usize {
    let mut pos = 0;
    while pos < bytes.len() {
        let Some(prefix) = bytes.get(pos..pos + LENGTH_PREFIX_LEN) else {
            return bytes.len();
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let end = pos + LENGTH_PREFIX_LEN + len;
        if end > at {
            return end.min(bytes.len());
        }
        pos = end;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_whole_from_pieces_of_any_size() {
        let mut stream = Vec::new();
        for body in [&b"abcd"[..], b"", b"0123456789"] {
            stream.extend_from_slice(&(body.len() as u32).to_le_bytes());
            stream.extend_from_slice(body);
        }
        let mut r = FrameReader::new(100);
        let mut got = Vec::new();
        for b in &stream {
            r.extend_from_slice(std::slice::from_ref(b));
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got.concat(), stream);
        assert_eq!(r.buffered(), 0);
        assert_eq!(frame_end_after(&stream, 0), 8);
        assert_eq!(frame_end_after(&stream, 8), 12);
        assert_eq!(frame_end_after(&stream, 13), stream.len());
    }

    #[test]
    fn a_length_over_the_limit_fails_at_once_and_stays_failed() {
        let mut r = FrameReader::new(10);
        r.extend_from_slice(&11u32.to_le_bytes());
        let e = r.next_frame().unwrap_err();
        assert_eq!(e, DecodeError::FrameTooLarge { len: 11, max: 10 });
        assert!(r.next_frame().is_err());
    }
}

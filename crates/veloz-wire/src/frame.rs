//! Framing: a frame is a `u32` little-endian body length, then the body, a FlatBuffers
//! buffer whose root is `veloz.wire.Message`.
//!
//! This is exactly a FlatBuffers *size-prefixed* buffer (`FinishSizePrefixed` in every
//! FlatBuffers library), so alignment is relative to the first byte of the length prefix;
//! the verifier checks it, so a frame must be passed on whole, prefix included.
//!
//! [`FrameDecoder`] cuts a byte stream (what a socket hands over, in pieces of any size)
//! into frames. Invariants:
//! - a length above `max_frame_len` is refused as soon as the 4 prefix bytes are in, before
//!   any body byte is buffered or awaited; after that the decoder stays failed (the frame
//!   boundaries are lost) and the session must be closed;
//! - frames come out in stream order, each exactly `4 + length` bytes, prefix included;
//! - the buffer never holds more than one incomplete frame, so it grows at most to
//!   `4 + max_frame_len` bytes (lazily, only when such a frame arrives); in steady state
//!   nothing is allocated;
//! - [`FrameDecoder::read_buf`] is never empty after [`FrameDecoder::next_frame`] returned
//!   `Ok(None)`.

use super::error::WireError;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Default limit on the body length of one frame: 64 KiB. Order-entry messages are under
/// 200 bytes; the largest message is a LogonAck listing every instrument (about 100 bytes
/// each).
pub const DEFAULT_MAX_FRAME_LEN: u32 = 64 * 1024;

/// Initial buffer of a [`FrameDecoder`]: many small frames per socket read.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// The body length a frame declares, if at least its prefix is present.
pub fn declared_len(bytes: &[u8]) -> Option<u32> {
    let prefix: [u8; LENGTH_PREFIX_LEN] = bytes.get(..LENGTH_PREFIX_LEN)?.try_into().ok()?;
    Some(u32::from_le_bytes(prefix))
}

/// Cuts a byte stream into frames; see the module docs for its invariants.
///
/// ```
/// use veloz_wire::{FrameDecoder, FrameEncoder};
/// let mut enc = FrameEncoder::new();
/// let frame = enc.heartbeat(7).to_vec();
/// let mut dec = FrameDecoder::new(1024);
/// dec.extend_from_slice(&frame[..3]);
/// assert_eq!(dec.next_frame().unwrap(), None);
/// dec.extend_from_slice(&frame[3..]);
/// assert_eq!(dec.next_frame().unwrap(), Some(&frame[..]));
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    /// Storage; `buf.len()` is the capacity in use.
    buf: Vec<u8>,
    /// First byte not yet handed out as a frame.
    start: usize,
    /// One past the last byte received.
    end: usize,
    max_frame_len: u32,
    /// Set once a length above the limit was seen: the length, for the repeated error.
    too_large: Option<u32>,
}

impl FrameDecoder {
    /// A decoder refusing bodies longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: u32) -> FrameDecoder {
        FrameDecoder {
            buf: vec![0; INITIAL_CAPACITY],
            start: 0,
            end: 0,
            max_frame_len,
            too_large: None,
        }
    }

    /// The body length limit.
    pub fn max_frame_len(&self) -> u32 {
        self.max_frame_len
    }

    /// Bytes received and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Free space to read socket bytes into; report how many were written with
    /// [`FrameDecoder::commit`]. Moves a pending partial frame to the front first, and grows
    /// the buffer (never beyond `4 + max_frame_len`) when the pending frame needs it.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.compact();
        let need = match declared_len(&self.buf[..self.end]) {
            Some(len) if len <= self.max_frame_len => LENGTH_PREFIX_LEN + len as usize,
            _ => LENGTH_PREFIX_LEN,
        };
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Record that `n` bytes were written at the start of [`FrameDecoder::read_buf`].
    ///
    /// # Panics
    /// If `n` is larger than the slice `read_buf` returned (a caller bug).
    pub fn commit(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.end,
            "FrameDecoder::commit({n}) beyond the {} bytes read_buf offered",
            self.buf.len() - self.end
        );
        self.end += n;
    }

    /// Append received bytes (copying; grows the buffer when they do not fit).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.compact();
        let want = self.end + bytes.len();
        if want > self.buf.len() {
            self.buf.resize(want, 0);
        }
        self.buf[self.end..want].copy_from_slice(bytes);
        self.end = want;
    }

    /// The next complete frame (prefix included), `Ok(None)` when more bytes are needed, or
    /// [`WireError::FrameTooLarge`] as soon as a prefix above the limit is seen (and on every
    /// call after that).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, WireError> {
        if let Some(len) = self.too_large {
            return Err(self.too_large_error(len));
        }
        let pending = &self.buf[self.start..self.end];
        let Some(len) = declared_len(pending) else {
            return Ok(None);
        };
        if len > self.max_frame_len {
            self.too_large = Some(len);
            return Err(self.too_large_error(len));
        }
        let total = LENGTH_PREFIX_LEN + len as usize;
        if pending.len() < total {
            return Ok(None);
        }
        let frame_start = self.start;
        self.start += total;
        Ok(Some(&self.buf[frame_start..frame_start + total]))
    }

    /// At the end of the stream: `Ok` when no partial frame is left over, else
    /// [`WireError::TruncatedStream`] (or the sticky `FrameTooLarge`).
    pub fn finish(&self) -> Result<(), WireError> {
        if let Some(len) = self.too_large {
            return Err(self.too_large_error(len));
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(WireError::TruncatedStream { buffered }),
        }
    }

    fn too_large_error(&self, len: u32) -> WireError {
        WireError::FrameTooLarge {
            len,
            max: self.max_frame_len,
        }
    }

    /// Move the unread bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn read_buf_and_commit_assemble_a_frame_split_anywhere() {
        let f = frame(&[9; 100]);
        for split in 0..=f.len() {
            let mut d = FrameDecoder::new(1_000);
            for part in [&f[..split], &f[split..]] {
                let buf = d.read_buf();
                buf[..part.len()].copy_from_slice(part);
                d.commit(part.len());
            }
            assert_eq!(d.next_frame().unwrap(), Some(&f[..]), "split at {split}");
            assert_eq!(d.next_frame().unwrap(), None);
            assert!(d.finish().is_ok());
        }
    }

    #[test]
    fn too_large_is_refused_with_only_the_prefix_in_and_stays_refused() {
        let mut d = FrameDecoder::new(10);
        d.extend_from_slice(&11u32.to_le_bytes());
        let err = d.next_frame().unwrap_err();
        assert_eq!(err, WireError::FrameTooLarge { len: 11, max: 10 });
        assert_eq!(
            err.to_string(),
            "frame length 11 exceeds the limit of 10 bytes"
        );
        assert!(err.is_fatal());
        d.extend_from_slice(&frame(&[1, 2]));
        assert_eq!(d.next_frame().unwrap_err(), err);
        assert_eq!(d.finish().unwrap_err(), err);
        // The body was never awaited: the buffer did not grow for it.
        assert!(d.read_buf().len() >= LENGTH_PREFIX_LEN);
    }

    #[test]
    fn grows_only_to_the_largest_allowed_frame() {
        let max = 100_000u32;
        let mut d = FrameDecoder::new(max);
        let f = frame(&vec![3; max as usize]);
        let mut fed = 0;
        while fed < f.len() {
            let buf = d.read_buf();
            assert!(!buf.is_empty());
            let n = buf.len().min(f.len() - fed).min(7_000);
            buf[..n].copy_from_slice(&f[fed..fed + n]);
            d.commit(n);
            fed += n;
        }
        assert_eq!(d.next_frame().unwrap().map(<[u8]>::len), Some(f.len()));
        assert_eq!(d.buf.len(), LENGTH_PREFIX_LEN + max as usize);
    }

    #[test]
    fn truncated_stream_is_reported_at_finish() {
        let mut d = FrameDecoder::new(100);
        d.extend_from_slice(&frame(&[1; 10])[..7]);
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(
            d.finish().unwrap_err(),
            WireError::TruncatedStream { buffered: 7 }
        );
    }
}

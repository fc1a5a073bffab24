//! [`UringStream`]: a connection of a [`Ring`](crate::Ring) as a non-blocking `Read` +
//! `Write` (the crate docs hold the invariants).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Instant;

use super::{Driver, PENDING_LIMIT};

/// A connection accepted by a [`Ring`](crate::Ring): reads take what the ring received, writes queue
/// bytes for the ring's next send. Neither blocks: both answer `WouldBlock` when there is
/// nothing to read or no room to write.
pub struct UringStream {
    pub(crate) driver: Rc<RefCell<Driver>>,
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

impl std::fmt::Debug for UringStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStream")
            .field("slot", &self.slot)
            .field("gen", &self.gen)
            .finish()
    }
}

impl UringStream {
    /// Shut the connection down both ways once what was written has been sent (or the peer
    /// took nothing for [`LINGER`](crate::LINGER) after the stream is dropped).
    pub fn shutdown(&self) {
        let mut d = self.driver.borrow_mut();
        if let Some(c) = d.conn(self.slot, self.gen) {
            c.shutdown_wanted = true;
            d.mark_dirty(self.slot);
        }
    }
}

impl Read for UringStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut d = self.driver.borrow_mut();
        let Some(c) = d.conn(self.slot, self.gen) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let have = &c.inbound[c.in_pos..];
        if !have.is_empty() {
            let n = have.len().min(buf.len());
            buf[..n].copy_from_slice(&have[..n]);
            c.in_pos += n;
            return Ok(n);
        }
        if let Some(e) = &c.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if c.eof || c.shut {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for UringStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut d = self.driver.borrow_mut();
        let Some(c) = d.conn(self.slot, self.gen) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if let Some(e) = &c.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if c.shut || c.shutdown_wanted {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let room = PENDING_LIMIT.saturating_sub(c.pending.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(buf.len());
        c.pending.extend_from_slice(&buf[..n]);
        d.mark_dirty(self.slot);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for UringStream {
    fn drop(&mut self) {
        let mut d = self.driver.borrow_mut();
        if let Some(c) = d.conn(self.slot, self.gen) {
            c.shutdown_wanted = true;
            c.dropped = Some(Instant::now());
            d.lingering.push(self.slot);
            d.mark_dirty(self.slot);
        }
    }
}

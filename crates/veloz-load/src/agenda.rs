//! What a load thread's pass visits: the connections with something to read
//! ([`Readiness`]) and, in open loop, the connections whose next request is due ([`Due`]).
//! With many connections per thread a pass must cost what the traffic costs, not what the
//! connection count does: a thousand sessions at 100 orders/s each leave most sockets quiet
//! in any given microsecond.
//!
//! - [`Readiness::All`]: up to [`DIRECT_POLL_MAX`] connections, every one is read each pass
//!   (one `read` each, `WouldBlock` when quiet): the least latency for a few sockets.
//! - [`Readiness::Epoll`]: more, one level-triggered epoll set; a pass asks it (one
//!   `epoll_wait` with a zero timeout, never blocking) and reads only the sockets that have
//!   data. Level-triggered: a socket left with data (its read budget spent) is reported
//!   again on the next pass.
//! - [`Due`]: the open-loop schedule as a min-heap of (due time, connection), each
//!   connection in it at most once, under its next request's intended time. A pass pops what
//!   is due: O(log n) per request. A connection whose window is full leaves the heap
//!   (blocked) and returns, under its overdue time, when an answer opens its window; a
//!   connection whose next request falls after the window leaves it for good.
//! - [`Backlog`]: the connections whose socket did not take all their queued bytes; each
//!   pass writes them again, until it has.
//!
//! Ties in the heap break on the connection's index in the thread: the order of sends is a
//! function of the schedule alone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use super::conn::Conn;
use super::LoadError;

/// Connections per thread read one by one each pass; above this, through epoll.
pub(crate) const DIRECT_POLL_MAX: usize = 4;
/// Readiness events taken per `epoll_wait` (the rest come on the next pass).
const EVENTS: usize = 256;

/// Which connections to read this pass; see the module docs.
pub(crate) enum Readiness {
    All,
    Epoll {
        epoll: Epoll,
        events: Vec<EpollEvent>,
    },
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Readiness::All => "Readiness::All",
            Readiness::Epoll { .. } => "Readiness::Epoll",
        })
    }
}

fn epoll_error(conn: Option<&Conn>, what: &'static str, e: nix::errno::Errno) -> LoadError {
    LoadError::Io {
        addr: conn.map_or_else(|| "(epoll)".to_string(), |c| c.addr().to_string()),
        account: conn.map_or(0, |c| c.account),
        what,
        source: std::io::Error::from(e),
    }
}

impl Readiness {
    /// Direct reads for a few connections, an epoll set over them for more.
    pub fn new(conns: &[Conn]) -> Result<Readiness, LoadError> {
        if conns.len() <= DIRECT_POLL_MAX {
            return Ok(Readiness::All);
        }
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| epoll_error(None, "create an epoll set", e))?;
        for (i, c) in conns.iter().enumerate() {
            epoll
                .add(c.stream(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .map_err(|e| epoll_error(Some(c), "add the socket to the epoll set", e))?;
        }
        Ok(Readiness::Epoll {
            epoll,
            events: vec![EpollEvent::empty(); EVENTS.min(conns.len())],
        })
    }

    /// Replace `ready` with the indexes of the connections to read, in ascending order
    /// (of `count` connections).
    pub fn collect(&mut self, count: usize, ready: &mut Vec<usize>) -> Result<(), LoadError> {
        ready.clear();
        match self {
            Readiness::All => ready.extend(0..count),
            Readiness::Epoll { epoll, events } => {
                let n = loop {
                    match epoll.wait(events, 0) {
                        Ok(n) => break n,
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(epoll_error(None, "wait on the epoll set", e)),
                    }
                };
                ready.extend(events[..n].iter().map(|e| e.data() as usize));
                ready.sort_unstable();
            }
        }
        Ok(())
    }
}

/// The open-loop schedule of one thread's connections; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Due {
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// By connection: waiting for its window to open (not in the heap).
    blocked: Vec<bool>,
}

impl Due {
    pub fn new(count: usize) -> Due {
        Due {
            heap: BinaryHeap::with_capacity(count),
            blocked: vec![false; count],
        }
    }

    /// Connection `conn`'s next request is due at `due`.
    pub fn push(&mut self, due: u64, conn: usize) {
        self.blocked[conn] = false;
        self.heap.push(Reverse((due, conn)));
    }

    /// The earliest connection due at or before `now`, taken out of the heap.
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, usize)> {
        match self.heap.peek() {
            Some(&Reverse((due, conn))) if due <= now => {
                self.heap.pop();
                Some((due, conn))
            }
            _ => None,
        }
    }

    /// `conn` is due but its window is full: out of the heap until [`Due::unblock`].
    pub fn block(&mut self, conn: usize) {
        self.blocked[conn] = true;
    }

    pub fn is_blocked(&self, conn: usize) -> bool {
        self.blocked[conn]
    }
}

/// Connections with queued bytes their socket did not take yet; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    list: Vec<usize>,
    listed: Vec<bool>,
}

impl Backlog {
    pub fn new(count: usize) -> Backlog {
        Backlog {
            list: Vec::new(),
            listed: vec![false; count],
        }
    }

    /// Write what connection `i` queued; what the socket does not take waits in the backlog.
    pub fn flush(&mut self, conns: &mut [Conn], i: usize) -> Result<(), LoadError> {
        let c = &mut conns[i];
        c.flush()?;
        if c.wants_write() && !self.listed[i] {
            self.listed[i] = true;
            self.list.push(i);
        }
        Ok(())
    }

    /// Write the backlog again; connections whose bytes are all out leave it.
    pub fn retry(&mut self, conns: &mut [Conn]) -> Result<(), LoadError> {
        let mut k = 0;
        while k < self.list.len() {
            let i = self.list[k];
            conns[i].flush()?;
            if conns[i].wants_write() {
                k += 1;
            } else {
                self.listed[i] = false;
                self.list.swap_remove(k);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_pops_in_time_order_and_ties_by_connection() {
        let mut d = Due::new(3);
        d.push(30, 0);
        d.push(10, 2);
        d.push(10, 1);
        assert_eq!(d.pop_due(5), None);
        assert_eq!(d.pop_due(10), Some((10, 1)));
        assert_eq!(d.pop_due(10), Some((10, 2)));
        assert_eq!(d.pop_due(29), None);
        d.block(1);
        assert!(d.is_blocked(1) && !d.is_blocked(0));
        d.push(12, 1);
        assert!(!d.is_blocked(1));
        assert_eq!(d.pop_due(40), Some((12, 1)));
        assert_eq!(d.pop_due(40), Some((30, 0)));
        assert_eq!(d.pop_due(u64::MAX), None);
    }
}

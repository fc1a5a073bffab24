//! The IO layer: every place where the runtime touches the operating system.
//!
//! - [`Listener`]: the shard's listening socket, bound with SO_REUSEPORT and SO_REUSEADDR
//!   (the kernel spreads connections over the shards), non-blocking, polled by the shard
//!   loop; accepted streams are non-blocking with Nagle off.
//! - [`Stream`], [`read_some`], [`write_some`]: a byte stream the gateway reads frames from and
//!   writes reports to. Implemented for TCP streams (production) and Unix stream pairs
//!   (tests); the gateway is generic over it, so there is no dynamic dispatch per read.
//! - [`Idle`]: what a shard does when a pass found no work (spin, then park with a growing
//!   sleep), and [`sleep`].
//! - [`set_affinity`]: the calling thread's CPU mask.
//! - [`Clock`]: the process-wide time base for ingress stamps and the shard's anchor for
//!   wall-clock timestamps.
//!
//! Invariants: nothing here blocks except [`Idle::wait`] and [`sleep`] (and only when asked
//! to); reads and writes return [`Transfer::WouldBlock`] instead of waiting; an interrupted
//! system call is retried. Moving the runtime to another IO model (io_uring) changes this
//! module only.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel queues for a listener before the shard accepts them.
const LISTEN_BACKLOG: i32 = 1024;

/// A byte stream a session runs over: non-blocking reads and writes, and a shutdown.
pub trait Stream: Read + Write {
    /// Shut the stream down both ways (the peer sees EOF after what was written). Errors
    /// are ignored: the stream is being given up.
    fn shutdown_both(&self);
}

impl Stream for TcpStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Stream for UnixStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// What one non-blocking read or write did.
#[derive(Debug)]
pub enum Transfer {
    /// Moved this many bytes (never 0).
    Done(usize),
    /// Nothing can move now.
    WouldBlock,
    /// The stream is finished: end of stream on a read, or an error.
    Closed(std::io::Error),
}

/// Read what `stream` has into `buf` (which must not be empty), retrying interrupts.
#[inline]
pub fn read_some<R: Read>(stream: &mut R, buf: &mut [u8]) -> Transfer {
    loop {
        return match stream.read(buf) {
            Ok(0) => Transfer::Closed(ErrorKind::UnexpectedEof.into()),
            Ok(n) => Transfer::Done(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Transfer::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => Transfer::Closed(e),
        };
    }
}

/// Write as much of `buf` (which must not be empty) as `stream` takes, retrying interrupts.
#[inline]
pub fn write_some<W: Write>(stream: &mut W, buf: &[u8]) -> Transfer {
    loop {
        return match stream.write(buf) {
            Ok(0) => Transfer::Closed(ErrorKind::WriteZero.into()),
            Ok(n) => Transfer::Done(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Transfer::WouldBlock,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => Transfer::Closed(e),
        };
    }
}

/// A non-blocking listening socket.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Bind `addr` with SO_REUSEPORT and SO_REUSEADDR, non-blocking.
    pub fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(Listener {
            inner: socket.into(),
        })
    }

    /// The port the socket is bound to.
    pub fn port(&self) -> std::io::Result<u16> {
        Ok(self.inner.local_addr()?.port())
    }

    /// The next waiting connection, made non-blocking with Nagle off; `None` when nobody
    /// waits. A connection that cannot be set up is dropped and the next one taken.
    pub fn accept(&self) -> Option<(TcpStream, SocketAddr)> {
        loop {
            let (stream, peer) = self.inner.accept().ok()?;
            if stream.set_nonblocking(true).is_ok() && stream.set_nodelay(true).is_ok() {
                return Some((stream, peer));
            }
        }
    }
}

/// Restrict the calling thread to `cores` (best effort: a failure leaves the mask as it was
/// and is reported, it does not stop the shard).
pub fn set_affinity(cores: &[usize]) {
    let mut set = nix::sched::CpuSet::new();
    for &c in cores {
        if set.set(c).is_err() {
            eprintln!("veloz: warning: core {c} is beyond the CPU set size");
        }
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        eprintln!("veloz: warning: cannot set the CPU affinity to {cores:?}: {e}");
    }
}

/// Block the calling thread for `d`.
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}

/// Time as a shard reads it: TSC ticks (`minstant`) since the process-wide epoch, and wall
/// clock nanoseconds through the shard's own anchor.
#[derive(Clone, Copy)]
pub struct Clock {
    epoch: minstant::Instant,
    anchor: minstant::Anchor,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("since_epoch_ns", &self.now_ns())
            .finish()
    }
}

impl Clock {
    /// A clock counting from `epoch` (shared by every shard so that stamps compare across
    /// cores), with a fresh wall-clock anchor.
    pub fn new(epoch: minstant::Instant) -> Clock {
        Clock {
            epoch,
            anchor: minstant::Anchor::new(),
        }
    }

    /// Nanoseconds since the epoch (ingress stamps, latencies, timers).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A reading for measuring short spans.
    #[inline]
    pub fn instant(&self) -> minstant::Instant {
        minstant::Instant::now()
    }

    /// Wall-clock nanoseconds since the Unix epoch at `at`.
    #[inline]
    pub fn unix_ns(&self, at: minstant::Instant) -> u64 {
        at.as_unix_nanos(&self.anchor)
    }

    /// Wall-clock nanoseconds since the Unix epoch now.
    #[inline]
    pub fn wall_ns(&self) -> u64 {
        self.unix_ns(minstant::Instant::now())
    }
}

/// What a shard does between passes that found no work: while the last work is less than
/// `spin` ago it yields the core to any other runnable thread (returning at once when there
/// is none); after that it parks with a plain sleep that doubles from 10 us up to
/// `park_max`.
///
/// The sleep is a thread sleep, not the executor's timer: the shard task is its executor's
/// only task and uses no executor IO, and a spinning task waiting on the executor's timer
/// wake-up can hang the executor.
#[derive(Debug)]
pub struct Idle {
    spin: Duration,
    park_max: Duration,
    park: Duration,
    last_work: minstant::Instant,
}

impl Idle {
    const PARK_MIN: Duration = Duration::from_micros(10);

    pub fn new(spin: Duration, park_max: Duration) -> Idle {
        Idle {
            spin,
            park_max: park_max.max(Self::PARK_MIN),
            park: Self::PARK_MIN,
            last_work: minstant::Instant::now(),
        }
    }

    /// A pass did work: spin again from now.
    #[inline]
    pub fn worked(&mut self) {
        self.last_work = minstant::Instant::now();
        self.park = Self::PARK_MIN;
    }

    /// A pass found nothing to do: yield, or park.
    pub fn wait(&mut self) {
        if self.last_work.elapsed() <= self.spin {
            std::thread::yield_now();
        } else {
            std::thread::sleep(self.park);
            self.park = (self.park * 2).min(self.park_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_report_would_block_and_close() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(read_some(&mut a, &mut buf), Transfer::WouldBlock));
        assert!(matches!(write_some(&mut b, b"abc"), Transfer::Done(3)));
        assert!(matches!(read_some(&mut a, &mut buf), Transfer::Done(3)));
        assert_eq!(&buf[..3], b"abc");
        b.shutdown_both();
        assert!(matches!(read_some(&mut a, &mut buf), Transfer::Closed(_)));
    }

    #[test]
    fn listener_accepts_non_blocking_streams() {
        let l = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = l.port().unwrap();
        assert!(l.accept().is_none());
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut accepted = None;
        for _ in 0..1000 {
            accepted = l.accept();
            if accepted.is_some() {
                break;
            }
            sleep(Duration::from_millis(1));
        }
        let (mut stream, _) = accepted.expect("a connection");
        let mut buf = [0u8; 4];
        assert!(matches!(
            read_some(&mut stream, &mut buf),
            Transfer::WouldBlock
        ));
    }
}

//! The IO layer: every place where the runtime touches the operating system.
//!
//! - [`BoundSocket`], [`Listener`]: listening sockets this process owns alone. A socket is
//!   bound with SO_REUSEADDR (a restart is not held up by connections in TIME_WAIT) and
//!   without SO_REUSEPORT, so no other process can bind the same address and take a share
//!   of its connections: a taken address is a [`BindError::InUse`]. The gateway's socket is
//!   bound once at start-up, listens once every shard has recovered, and each shard polls a
//!   clone of it ([`Listener::try_clone`]): every shard's non-blocking accept takes from the
//!   one queue. Accepted streams are non-blocking with Nagle off.
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
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
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

/// Why a listening socket could not be had; each names the socket's role and address.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{what} address {addr} is in use by another process (another veloz engine, or another server): stop it first, or configure another address")]
    InUse { what: &'static str, addr: String },
    #[error("{what} address {addr:?} is not a socket address such as 127.0.0.1:7700: {detail}")]
    BadAddress {
        what: &'static str,
        addr: String,
        detail: String,
    },
    #[error("cannot {op} the {what} socket on {addr}: {source}")]
    Io {
        what: &'static str,
        op: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl BindError {
    fn io(what: &'static str, op: &'static str, addr: SocketAddr, source: std::io::Error) -> Self {
        if source.kind() == ErrorKind::AddrInUse {
            BindError::InUse {
                what,
                addr: addr.to_string(),
            }
        } else {
            BindError::Io {
                what,
                op,
                addr: addr.to_string(),
                source,
            }
        }
    }
}

/// A socket bound to an address by this process alone (SO_REUSEADDR, no SO_REUSEPORT), not
/// yet listening: connections to it are refused until [`BoundSocket::listen`]. Binding
/// early claims the address (a start on an address another process listens on fails at
/// once); listening later keeps the port closed while the shards recover.
#[derive(Debug)]
pub struct BoundSocket {
    socket: Socket,
    what: &'static str,
    addr: SocketAddr,
}

impl BoundSocket {
    /// Bind `addr` (a literal socket address; port 0 takes any free port) for the socket
    /// named `what` in errors ("gateway", "metrics").
    pub fn bind(what: &'static str, addr: &str) -> Result<BoundSocket, BindError> {
        let parsed: SocketAddr =
            addr.parse()
                .map_err(|e: std::net::AddrParseError| BindError::BadAddress {
                    what,
                    addr: addr.to_string(),
                    detail: e.to_string(),
                })?;
        BoundSocket::bind_addr(what, parsed)
    }

    fn bind_addr(what: &'static str, addr: SocketAddr) -> Result<BoundSocket, BindError> {
        let err = |op| move |e| BindError::io(what, op, addr, e);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(err("create"))?;
        socket
            .set_reuse_address(true)
            .map_err(err("set SO_REUSEADDR on"))?;
        socket
            .set_nonblocking(true)
            .map_err(err("make non-blocking"))?;
        socket.bind(&addr.into()).map_err(err("bind"))?;
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(addr);
        Ok(BoundSocket { socket, what, addr })
    }

    /// The address bound (with the port the kernel chose when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Start listening. Fails with [`BindError::InUse`] when another process started
    /// listening on the address since it was bound.
    pub fn listen(self) -> Result<Listener, BindError> {
        self.socket
            .listen(LISTEN_BACKLOG)
            .map_err(|e| BindError::io(self.what, "listen on", self.addr, e))?;
        Ok(Listener {
            inner: self.socket.into(),
        })
    }
}

/// A non-blocking listening socket owned by this process; its clones share one queue of
/// waiting connections.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Bind and listen at once on the first of `addr`'s addresses (a `host:port`, resolved)
    /// that can be had; the error is the last address's.
    pub fn bind(what: &'static str, addr: &str) -> Result<Listener, BindError> {
        let addrs = addr.to_socket_addrs().map_err(|e| BindError::BadAddress {
            what,
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
        let mut last = BindError::BadAddress {
            what,
            addr: addr.to_string(),
            detail: "it resolves to no address".into(),
        };
        for a in addrs {
            match BoundSocket::bind_addr(what, a).and_then(BoundSocket::listen) {
                Ok(l) => return Ok(l),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Another handle on the same socket (and the same queue of waiting connections).
    pub fn try_clone(&self) -> std::io::Result<Listener> {
        Ok(Listener {
            inner: self.inner.try_clone()?,
        })
    }

    /// The std listener (non-blocking), for servers that accept on their own.
    pub fn into_std(self) -> TcpListener {
        self.inner
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
            tracing::warn!(target: "veloz::engine", core = c, "core {c} is beyond the CPU set size");
        }
    }
    if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
        tracing::warn!(target: "veloz::engine", "cannot set the CPU affinity to {cores:?}: {e}");
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
        let l = Listener::bind("gateway", "127.0.0.1:0").unwrap();
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

    #[test]
    fn a_taken_address_is_refused_naming_it_and_clones_share_one_queue() {
        let bound = BoundSocket::bind("gateway", "127.0.0.1:0").unwrap();
        let addr = bound.local_addr();
        assert_ne!(addr.port(), 0);
        // Bound but not listening: connections are refused.
        assert!(TcpStream::connect(addr).is_err());
        let first = bound.listen().unwrap();
        // No SO_REUSEPORT: nobody else binds it, in this process or another.
        let err = BoundSocket::bind("gateway", &addr.to_string()).unwrap_err();
        assert!(matches!(err, BindError::InUse { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("gateway address {addr} is in use by another process (another veloz engine, or another server): stop it first, or configure another address")
        );
        let err = Listener::bind("metrics", &addr.to_string()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("metrics address {addr} is in use")));
        let bad = BoundSocket::bind("gateway", "localhost:x").unwrap_err();
        assert!(matches!(bad, BindError::BadAddress { .. }), "{bad:?}");

        // Two handles, one queue: each connection is accepted exactly once, by either.
        let second = first.try_clone().unwrap();
        let _clients: Vec<_> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut accepted = 0;
        for round in 0..2000 {
            let l = if round % 2 == 0 { &first } else { &second };
            accepted += usize::from(l.accept().is_some());
            if accepted == 4 {
                break;
            }
            sleep(Duration::from_millis(1));
        }
        assert_eq!(accepted, 4);
        assert!(first.accept().is_none() && second.accept().is_none());
        // Closing every handle frees the address (SO_REUSEADDR: TIME_WAIT does not hold it).
        drop((first, second, _clients));
        Listener::bind("gateway", &addr.to_string()).unwrap();
    }
}

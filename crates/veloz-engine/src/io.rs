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
//!   writes reports to. Implemented for [`NetStream`] (production: a connection on the
//!   shard's io_uring or a std TCP stream) and Unix stream pairs (tests); the gateway is
//!   generic over it, so there is no dynamic dispatch per read.
//! - [`Net`]: how a shard's sockets reach the kernel: its own io_uring
//!   ([`veloz_uring::Ring`]: multishot accept and receive into provided buffers, every
//!   session's sends in one submission per pass, idle parking in the ring) or std sockets
//!   (one system call per accept, read and write), chosen at start ([`choose_network`]).
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

/// A connection of a client session: on the shard's io_uring, or a std TCP stream.
#[derive(Debug)]
pub enum NetStream {
    Uring(veloz_uring::UringStream),
    Std(TcpStream),
}

impl Read for NetStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            NetStream::Uring(s) => s.read(buf),
            NetStream::Std(s) => s.read(buf),
        }
    }
}

impl Write for NetStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            NetStream::Uring(s) => s.write(buf),
            NetStream::Std(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Stream for NetStream {
    fn shutdown_both(&self) {
        match self {
            NetStream::Uring(s) => s.shutdown(),
            NetStream::Std(s) => s.shutdown_both(),
        }
    }
}

/// The network path `serve` runs, decided once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkChoice {
    /// Each shard's sockets run on its own io_uring.
    pub uring: bool,
    /// The line for the start-up log.
    pub describe: String,
    /// With `auto`: why io_uring was not taken (logged as a warning).
    pub fallback: Option<String>,
}

/// Decide the network path for `gateway.network`: `auto` takes io_uring when
/// [`veloz_uring::probe`] finds what the shard needs, else std sockets with the reason;
/// `io_uring` refuses to start without it (the error says what the kernel lacks).
pub fn choose_network(
    wanted: veloz_config::NetworkPath,
    probe: impl FnOnce() -> Result<(), String>,
) -> Result<NetworkChoice, String> {
    use veloz_config::NetworkPath;
    let uring = "io_uring: one ring per shard, multishot accept and receive into provided \
                 buffers, every session's sends in one submission per pass";
    let std = "std sockets: one system call per accept, read and write";
    match wanted {
        NetworkPath::Std => Ok(NetworkChoice {
            uring: false,
            describe: format!("{std} (gateway.network = \"std\")"),
            fallback: None,
        }),
        NetworkPath::IoUring => match probe() {
            Ok(()) => Ok(NetworkChoice {
                uring: true,
                describe: uring.to_string(),
                fallback: None,
            }),
            Err(why) => Err(format!(
                "gateway.network = \"io_uring\", but {why}; set gateway.network = \"auto\" or \"std\" to run on std sockets"
            )),
        },
        NetworkPath::Auto => match probe() {
            Ok(()) => Ok(NetworkChoice {
                uring: true,
                describe: uring.to_string(),
                fallback: None,
            }),
            Err(why) => Ok(NetworkChoice {
                uring: false,
                describe: format!("{std} (io_uring unavailable)"),
                fallback: Some(format!(
                    "network: io_uring unavailable ({why}); the shards use std sockets (slower: one system call per read and write)"
                )),
            }),
        },
    }
}

/// How a shard's sockets reach the kernel (see the module docs).
#[derive(Debug)]
pub enum Net {
    Uring(veloz_uring::Ring),
    Std(Option<Listener>),
}

impl Net {
    /// Take connections from `listener`: the ring adopts it; the std path keeps it.
    pub fn listen(&mut self, listener: Listener) -> std::io::Result<()> {
        match self {
            Net::Uring(ring) => ring.listen(listener.into_std())?,
            Net::Std(l) => *l = Some(listener),
        }
        Ok(())
    }

    /// Stop taking connections for good (shutdown).
    pub fn close_listener(&mut self) {
        match self {
            Net::Uring(ring) => {
                let _ = ring.stop_accepting();
            }
            Net::Std(l) => *l = None,
        }
    }

    /// The next waiting connection while `may` says to take one: non-blocking, Nagle off.
    pub fn accept(&mut self, may: bool) -> Option<(NetStream, SocketAddr)> {
        match self {
            Net::Uring(ring) => {
                if let Err(e) = ring.set_accepting(may) {
                    tracing::error!(target: "veloz::gateway", "io_uring: cannot arm or cancel the accept: {e}");
                }
                let (s, peer) = ring.take_accepted()?;
                Some((NetStream::Uring(s), peer))
            }
            Net::Std(Some(l)) if may => l.accept().map(|(s, p)| (NetStream::Std(s), p)),
            Net::Std(_) => None,
        }
    }

    /// A connection accepted from another socket (the FIX acceptor's), on this shard's
    /// network path: adopted by the ring (a ring that cannot take it leaves it on std
    /// sockets, with a WARN), or kept as it is.
    pub fn adopt(&mut self, stream: TcpStream) -> NetStream {
        match self {
            Net::Uring(ring) => match stream.try_clone().and_then(|s| ring.adopt(s)) {
                Ok(s) => NetStream::Uring(s),
                Err(e) => {
                    tracing::warn!(target: "veloz::gateway", "io_uring: cannot adopt a connection: {e}; it runs on std sockets");
                    NetStream::Std(stream)
                }
            },
            Net::Std(_) => NetStream::Std(stream),
        }
    }

    /// One pass of the ring: submit the sends the sessions wrote, reap what completed.
    /// Returns completions handled (0 on the std path). A failing ring is fatal to the
    /// shard's network and logged; the shard keeps running its other work.
    #[inline]
    pub fn poll(&mut self) -> usize {
        match self {
            Net::Uring(ring) => ring.poll().unwrap_or_else(|e| {
                tracing::error!(target: "veloz::gateway", "io_uring: submit failed: {e}");
                0
            }),
            Net::Std(_) => 0,
        }
    }

    /// Park an idle shard for up to `d`: in the ring (a connection, a receive or a sync
    /// wakes it early), or a plain sleep.
    pub fn park(&mut self, d: Duration) {
        match self {
            Net::Uring(ring) => {
                if let Err(e) = ring.wait(d) {
                    tracing::error!(target: "veloz::gateway", "io_uring: wait failed: {e}");
                    std::thread::sleep(d);
                }
            }
            Net::Std(_) => std::thread::sleep(d),
        }
    }

    /// The ring, when the shard runs on one.
    pub fn ring(&self) -> Option<&veloz_uring::Ring> {
        match self {
            Net::Uring(ring) => Some(ring),
            Net::Std(_) => None,
        }
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
/// is none); after that it parks for a time that doubles from 10 us up to `park_max`: in
/// the shard's io_uring ([`Net::park`]: network completions wake it early) or a plain sleep.
///
/// The park is the shard's own ring or a thread sleep, never the executor's timer: the shard task is its executor's
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

    /// A pass found nothing to do: yield, or park with `park` (a sleep, or a wait in the
    /// shard's ring).
    pub fn wait(&mut self, park: impl FnOnce(Duration)) {
        if self.last_work.elapsed() <= self.spin {
            std::thread::yield_now();
        } else {
            park(self.park);
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

    /// `auto` falls back to std sockets with the kernel's reason; `io_uring` refuses to
    /// start without it, naming the way out; `std` never asks the kernel.
    #[test]
    fn the_network_path_follows_the_config_and_the_kernel() {
        use veloz_config::NetworkPath;
        let refused = || Err("the kernel's io_uring lacks recv".to_string());
        let fine = || Ok(());
        let auto = choose_network(NetworkPath::Auto, fine).unwrap();
        assert!(auto.uring && auto.fallback.is_none());
        assert!(auto.describe.starts_with("io_uring: one ring per shard"));
        let auto = choose_network(NetworkPath::Auto, refused).unwrap();
        assert!(!auto.uring);
        assert_eq!(
            auto.fallback.as_deref(),
            Some("network: io_uring unavailable (the kernel's io_uring lacks recv); the shards use std sockets (slower: one system call per read and write)")
        );
        let err = choose_network(NetworkPath::IoUring, refused).unwrap_err();
        assert_eq!(err, "gateway.network = \"io_uring\", but the kernel's io_uring lacks recv; set gateway.network = \"auto\" or \"std\" to run on std sockets");
        assert!(choose_network(NetworkPath::IoUring, fine).unwrap().uring);
        let std = choose_network(NetworkPath::Std, || panic!("std does not probe")).unwrap();
        assert!(!std.uring && std.describe.starts_with("std sockets"));
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

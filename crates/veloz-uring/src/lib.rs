//! Veloz's io_uring driver: one ring per shard, created on the shard's thread and
//! busy-polled by its loop. Everything the shard says to the kernel about sockets and journal
//! syncs goes through it:
//!
//! - **accept**: one multishot accept on the shard's clone of the gateway socket, cancelled
//!   while the shard should not take new sessions ([`Ring::set_accepting`]); accepted
//!   sockets wait in [`Ring::take_accepted`]. The cancel is lazy: turning accepting off
//!   leaves the accept armed, and it is cancelled only when it brings a connection while
//!   still not wanted (that connection is taken; [`Ring::stop_accepting`] cancels at once).
//!   A shard that balances sessions turns accepting off and on again around every session
//!   when connections come one at a time; an eager cancel cost an `AsyncCancel`, its
//!   completion, the accept's final completion and a new accept per connection (in a flood
//!   of 10,000 one-at-a-time connections, each a refused logon (`engine_throttles`), on the
//!   2-vCPU dev VM, engine CPU beyond idle: 1.36 s eager, 1.07-1.31 s lazy (5 runs); std
//!   sockets 0.58-0.80 s in the same hour; the host was loaded, +-0.2 s between runs). The
//!   io_uring path still costs more than std there: its shards sleep and wake about as
//!   often (~33k against ~27k context switches for the flood), but each wake costs more.
//!   Tried without a measurable gain: `DEFER_TASKRUN` (completions do not interrupt a
//!   sleeping shard), with a 20-100 us `min_wait` batch in [`Ring::wait`], and plain
//!   sleeps instead of ring waits for parks under 80 us (which also doubled the flood's
//!   time). A shard may so hold one session more than the balance says; the next
//!   connection it gets cancels its accept. Cancels are `SKIP_SUCCESS`: only the cancelled
//!   operation completes. The kernel wakes one accept per connection
//!   (accept polls are exclusive), and a wake that reaches an accept being cancelled is
//!   lost, leaving the connection queued until the next one arrives; so while accepting,
//!   [`Ring::take_accepted`] also tries a plain non-blocking accept every
//!   [`DIRECT_ACCEPT_EVERY`] (one system call per millisecond at most);
//! - **receive**: one multishot receive per connection into the ring's provided buffers
//!   (a buffer ring registered once); [`Ring::poll`] copies what arrived into the
//!   connection and gives the buffer straight back;
//! - **send**: writes to a [`UringStream`] only append to the connection's pending bytes;
//!   [`Ring::poll`] turns every connection's pending bytes into one send each, so one
//!   `io_uring_enter` per pass carries every session's reports;
//! - **data sync**: [`Ring::fsync`] submits `IORING_OP_FSYNC` (datasync, over a range) for a
//!   journal file; the outcome comes back from [`Ring::take_synced`]. The kernel runs syncs
//!   on its io-wq workers; [`Ring::set_worker_cpus`] keeps those off the shard's own core
//!   (PLATFORM.md pitfall 4: a sync worker sharing the spinning shard's core waits for it).
//!
//! The ring is set up with `COOP_TASKRUN | TASKRUN_FLAG | SINGLE_ISSUER`: the kernel does not
//! interrupt the spinning shard to post completions; it raises a flag, and the next
//! [`Ring::poll`] enters the kernel (one system call) only when that flag is up or entries
//! wait to be submitted. A pass with nothing to do costs two loads.
//!
//! Invariants:
//! - a connection's bytes are delivered in order and each exactly once: receives complete in
//!   order per socket, and a connection holds one multishot receive at a time;
//! - a connection has at most one send in flight; the bytes written while it is in flight
//!   wait in `pending` and leave in the next send, in order; a short send is resubmitted
//!   from where it stopped;
//! - a [`UringStream`]'s `write` takes bytes only while the connection holds fewer than
//!   [`PENDING_LIMIT`] unsent bytes, so a peer that does not read backs up into the
//!   session's own outbound buffer (where the gateway's slow-consumer limit applies), as a
//!   full socket buffer does on the std path;
//! - a connection's slot, its buffers and its socket live until its last operation has
//!   completed: a dropped [`UringStream`] first sends what it had written (as closing a
//!   socket does), then shuts the socket down and cancels its receive; a peer that takes
//!   nothing for [`LINGER`] is shut down regardless;
//! - single-threaded: [`Ring`] and [`UringStream`] are `!Send` and live on the shard thread.
//!
//! The FFI that needs `unsafe` is in `sys` alone.
#![deny(unsafe_code)]

mod stream;
#[allow(unsafe_code)]
mod sys;

pub use stream::UringStream;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use io_uring::types::{Fd, FsyncFlags, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

use sys::BufRing;

/// A connection takes no more writes while this many bytes wait to be sent.
pub const PENDING_LIMIT: usize = 256 << 10;
/// A dropped connection whose peer takes nothing for this long is shut down with its bytes
/// unsent.
pub const LINGER: Duration = Duration::from_secs(2);

/// While accepting, a plain non-blocking accept is tried this often (see the crate docs).
pub const DIRECT_ACCEPT_EVERY: Duration = Duration::from_millis(1);

/// The buffer group of the receive buffers.
const RECV_GROUP: u16 = 0;

// user_data: kind in the top 4 bits, then a 28-bit generation and a 32-bit slot (or a sync
// token in the low 32 bits).
const KIND_SHIFT: u32 = 60;
const KIND_ACCEPT: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_SEND: u64 = 3;
const KIND_FSYNC: u64 = 4;
const KIND_CANCEL: u64 = 5;
const GEN_MASK: u32 = (1 << 28) - 1;

fn tag(kind: u64, gen: u32, slot: u32) -> u64 {
    (kind << KIND_SHIFT) | (((gen & GEN_MASK) as u64) << 32) | slot as u64
}

fn untag(data: u64) -> (u64, u32, u32) {
    (
        data >> KIND_SHIFT,
        ((data >> 32) as u32) & GEN_MASK,
        data as u32,
    )
}

/// How the ring is sized.
#[derive(Clone, Copy, Debug)]
pub struct RingConfig {
    /// Submission queue entries (the completion queue has four times as many).
    pub entries: u32,
    /// Provided receive buffers: how many (a power of two, at most 32768) ...
    pub recv_buffers: u16,
    /// ... and how large each is.
    pub recv_buffer_bytes: usize,
}

impl Default for RingConfig {
    /// 1024 entries; 1024 receive buffers of 16 KiB (16 MiB per shard).
    fn default() -> Self {
        RingConfig {
            entries: 1024,
            recv_buffers: 1024,
            recv_buffer_bytes: 16 << 10,
        }
    }
}

/// What the ring did since it was built (for metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// `io_uring_enter` calls made by [`Ring::poll`] and [`Ring::wait`].
    pub enters: u64,
    /// Completions reaped.
    pub completions: u64,
    /// Sends submitted.
    pub sends: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Of those, taken by the plain accept (see the crate docs).
    pub accepted_direct: u64,
    /// Accepts that failed (the error is retried; `EAGAIN` from a non-blocking listener
    /// never counts: the listener is made blocking for the ring).
    pub accept_errors: u64,
    /// Receives that found every provided buffer taken (re-armed after buffers came back).
    pub recv_no_buffers: u64,
    /// Data syncs submitted.
    pub syncs: u64,
}

/// Whether this kernel gives the driver what it needs (ring setup with the flags above,
/// multishot accept and receive, provided-buffer rings); `Err` says what is missing, as the
/// kernel put it.
pub fn probe() -> Result<(), String> {
    let ring = build_ring(8).map_err(|e| format!("cannot set up an io_uring: {e}"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("cannot probe io_uring opcodes: {e}"))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::Fsync::CODE, "fsync"),
        (opcode::AsyncCancel::CODE, "async cancel"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("the kernel's io_uring lacks {name}"));
        }
    }
    BufRing::register(&ring, RECV_GROUP, 2, 64)
        .map(drop)
        .map_err(|e| format!("cannot register a provided-buffer ring (Linux 6.0 or newer): {e}"))
}

fn build_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer()
        .setup_cqsize(entries * 4)
        .build(entries)
}

/// One connection's state, shared by the driver and its [`UringStream`].
#[derive(Debug)]
struct Conn {
    socket: TcpStream,
    /// Received, not yet read: `inbound[in_pos..]`.
    inbound: Vec<u8>,
    in_pos: usize,
    /// Written, not yet in a send.
    pending: Vec<u8>,
    /// The bytes of the send in flight (`sending`), from `sent` on.
    inflight: Vec<u8>,
    sent: usize,
    sending: bool,
    recv_armed: bool,
    /// A cancel of the receive was submitted.
    recv_cancelling: bool,
    /// The peer closed its side.
    eof: bool,
    /// The first error a receive or send met.
    error: Option<io::Error>,
    /// The stream asked for a shutdown, or was dropped.
    shutdown_wanted: bool,
    shut: bool,
    /// The stream was dropped (the slot is freed once nothing is in flight).
    dropped: Option<Instant>,
    /// In the driver's list of connections with pending bytes.
    dirty: bool,
}

impl Conn {
    fn idle(&self) -> bool {
        !self.sending && !self.recv_armed
    }
}

/// The driver behind a [`Ring`] (the ring, its buffers and its connections).
struct Driver {
    // Dropped before `bufs` (sys.rs invariants).
    ring: IoUring,
    bufs: BufRing,
    conns: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    /// Slots with pending bytes to send, or a shutdown or receive to arm.
    dirty: Vec<u32>,
    listener: Option<TcpListener>,
    accept_wanted: bool,
    accept_armed: bool,
    accept_cancelling: bool,
    /// When the plain accept was last tried.
    direct_at: Instant,
    accepted: VecDeque<(u32, u32, SocketAddr)>,
    /// Receives to re-arm (they ran out of buffers).
    rearm: Vec<u32>,
    synced: VecDeque<(u32, io::Result<()>)>,
    next_sync: u32,
    /// Data syncs submitted and not yet completed.
    syncs_in_flight: usize,
    /// Slots of dropped connections not yet released (still sending, or waiting for their
    /// receive's cancel): revisited every pass, against `LINGER`.
    lingering: Vec<u32>,
    stats: RingStats,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("bufs", &self.bufs)
            .field("conns", &(self.conns.len() - self.free.len()))
            .field("stats", &self.stats)
            .finish()
    }
}

impl Drop for Driver {
    /// Before the ring goes, its operations end: every socket is shut down (receives
    /// complete with the end of stream, sends fail), the accept is cancelled, and the
    /// completions are reaped for up to a second, so that the kernel is done with the
    /// connections' buffers before they are freed.
    fn drop(&mut self) {
        for (_, c) in self.conns.iter_mut() {
            if let Some(c) = c {
                let _ = c.socket.shutdown(Shutdown::Both);
                c.shut = true;
            }
        }
        self.accept_wanted = false;
        let _ = self.arm_accept();
        let deadline = Instant::now() + Duration::from_secs(1);
        let busy = |d: &Driver| {
            d.accept_armed
                || d.syncs_in_flight > 0
                || d.conns
                    .iter()
                    .any(|(_, c)| c.as_ref().is_some_and(|c| !c.idle()))
        };
        while busy(self) && Instant::now() < deadline {
            if self.pass(Some(Duration::from_millis(10))).is_err() {
                break;
            }
        }
    }
}

fn conn_mut(conns: &mut [(u32, Option<Conn>)], slot: u32, gen: u32) -> Option<&mut Conn> {
    match conns.get_mut(slot as usize) {
        Some((g, Some(c))) if *g == gen => Some(c),
        _ => None,
    }
}

/// A shard's io_uring (see the crate docs). Cloning gives another handle to the same ring.
#[derive(Clone, Debug)]
pub struct Ring {
    driver: Rc<RefCell<Driver>>,
}

impl Ring {
    /// Set up a ring on the calling thread (the only thread that may use it).
    pub fn new(config: RingConfig) -> io::Result<Ring> {
        let ring = build_ring(config.entries)?;
        let bufs = BufRing::register(
            &ring,
            RECV_GROUP,
            config.recv_buffers,
            config.recv_buffer_bytes,
        )?;
        Ok(Ring {
            driver: Rc::new(RefCell::new(Driver {
                ring,
                bufs,
                conns: Vec::new(),
                free: Vec::new(),
                dirty: Vec::new(),
                listener: None,
                accept_wanted: false,
                accept_armed: false,
                accept_cancelling: false,
                direct_at: Instant::now(),
                accepted: VecDeque::new(),
                rearm: Vec::new(),
                synced: VecDeque::new(),
                next_sync: 0,
                syncs_in_flight: 0,
                lingering: Vec::new(),
                stats: RingStats::default(),
            })),
        })
    }

    /// Run the kernel's io-wq workers of this ring (where syncs run) on `cpus` only.
    pub fn set_worker_cpus(&self, cpus: &[usize]) -> io::Result<()> {
        let set = sys::cpu_set(cpus);
        self.driver
            .borrow()
            .ring
            .submitter()
            .register_iowq_aff(&set)
    }

    /// Accept connections from `listener` (a clone of the gateway socket) through this ring.
    /// Accepting starts with [`Ring::set_accepting`]. The listener is made non-blocking
    /// (for the plain accept; the flag is shared by every clone of it).
    pub fn listen(&self, listener: TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut d = self.driver.borrow_mut();
        d.listener = Some(listener);
        Ok(())
    }

    /// Whether to take new connections: on arms the multishot accept; off lets it be, and
    /// it is cancelled when it next completes while still not wanted (a lazy cancel, see
    /// the crate docs: the connection it brought still arrives in [`Ring::take_accepted`]).
    /// Setting it on and off again in between costs nothing.
    pub fn set_accepting(&self, on: bool) -> io::Result<()> {
        let mut d = self.driver.borrow_mut();
        d.accept_wanted = on;
        if on {
            d.arm_accept()
        } else {
            Ok(())
        }
    }

    /// Stop taking connections now: the accept is cancelled at once (shutdown).
    pub fn stop_accepting(&self) -> io::Result<()> {
        let mut d = self.driver.borrow_mut();
        d.accept_wanted = false;
        d.arm_accept()
    }

    /// The next accepted connection, with its peer's address.
    pub fn take_accepted(&self) -> Option<(UringStream, SocketAddr)> {
        let mut d = self.driver.borrow_mut();
        if d.accepted.is_empty() && d.accept_wanted && d.direct_at.elapsed() >= DIRECT_ACCEPT_EVERY
        {
            d.direct_at = Instant::now();
            if let Some(Ok((socket, peer))) = d.listener.as_ref().map(|l| l.accept()) {
                let _ = socket.set_nodelay(true);
                if let Ok((slot, gen)) = d.add_conn(socket) {
                    d.stats.accepted += 1;
                    d.stats.accepted_direct += 1;
                    d.accepted.push_back((slot, gen, peer));
                }
            }
        }
        let (slot, gen, peer) = d.accepted.pop_front()?;
        drop(d);
        let stream = UringStream {
            driver: Rc::clone(&self.driver),
            slot,
            gen,
        };
        Some((stream, peer))
    }

    /// Run a connection accepted elsewhere (a listener this ring does not serve, such as the
    /// FIX acceptor's) on this ring: its receive is armed now, its sends go out with the
    /// pass's others. Nagle is turned off.
    pub fn adopt(&self, socket: TcpStream) -> io::Result<UringStream> {
        socket.set_nodelay(true)?;
        let (slot, gen) = self.driver.borrow_mut().add_conn(socket)?;
        Ok(UringStream {
            driver: Rc::clone(&self.driver),
            slot,
            gen,
        })
    }

    /// Submit a data sync of `len` bytes of `fd` from `offset` (`len` 0: to the end of the
    /// file). Returns the token [`Ring::take_synced`] reports it under. `fd` must stay open
    /// until then.
    pub fn fsync(&self, fd: RawFd, offset: u64, len: u32) -> io::Result<u32> {
        let mut d = self.driver.borrow_mut();
        let token = d.next_sync;
        d.next_sync = d.next_sync.wrapping_add(1);
        let entry = opcode::Fsync::new(Fd(fd))
            .flags(FsyncFlags::DATASYNC)
            .offset(offset)
            .len(len)
            .build()
            .user_data(tag(KIND_FSYNC, 0, token));
        sys::push(&mut d.ring, &entry)?;
        d.stats.syncs += 1;
        d.syncs_in_flight += 1;
        Ok(token)
    }

    /// The next completed data sync: its token and outcome.
    pub fn take_synced(&self) -> Option<(u32, io::Result<()>)> {
        self.driver.borrow_mut().synced.pop_front()
    }

    /// One pass: submit what waits (sends, re-armed receives, syncs) and reap every
    /// completion. Enters the kernel only when there is something to submit or the kernel
    /// flagged completions to run. Returns how many completions were handled.
    pub fn poll(&self) -> io::Result<usize> {
        self.driver.borrow_mut().pass(None)
    }

    /// Like [`Ring::poll`], but when nothing has completed wait up to `timeout` for a
    /// completion (an idle shard parks here: a connection, a receive or a sync wakes it at
    /// once).
    pub fn wait(&self, timeout: Duration) -> io::Result<usize> {
        self.driver.borrow_mut().pass(Some(timeout))
    }

    /// What the ring did so far.
    pub fn stats(&self) -> RingStats {
        self.driver.borrow().stats
    }

    /// Connections the ring still holds (open, or dropped and finishing their last send).
    pub fn connections(&self) -> usize {
        let d = self.driver.borrow();
        d.conns.len() - d.free.len()
    }
}

impl Driver {
    fn conn(&mut self, slot: u32, gen: u32) -> Option<&mut Conn> {
        conn_mut(&mut self.conns, slot, gen)
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let Some(fd) = self.listener.as_ref().map(|l| l.as_raw_fd()) else {
            return Ok(());
        };
        if self.accept_wanted && !self.accept_armed {
            let entry = opcode::AcceptMulti::new(Fd(fd))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(tag(KIND_ACCEPT, 0, 0));
            sys::push(&mut self.ring, &entry)?;
            self.accept_armed = true;
        } else if !self.accept_wanted && self.accept_armed && !self.accept_cancelling {
            let entry = opcode::AsyncCancel::new(tag(KIND_ACCEPT, 0, 0))
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(tag(KIND_CANCEL, 0, 0));
            sys::push(&mut self.ring, &entry)?;
            self.accept_cancelling = true;
        }
        Ok(())
    }

    fn add_conn(&mut self, socket: TcpStream) -> io::Result<(u32, u32)> {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push((0, None));
                (self.conns.len() - 1) as u32
            }
        };
        let entry = &mut self.conns[slot as usize];
        entry.0 = entry.0.wrapping_add(1) & GEN_MASK;
        let gen = entry.0;
        entry.1 = Some(Conn {
            socket,
            inbound: Vec::new(),
            in_pos: 0,
            pending: Vec::new(),
            inflight: Vec::new(),
            sent: 0,
            sending: false,
            recv_armed: false,
            recv_cancelling: false,
            eof: false,
            error: None,
            shutdown_wanted: false,
            shut: false,
            dropped: None,
            dirty: false,
        });
        self.arm_recv(slot, gen)?;
        Ok((slot, gen))
    }

    fn arm_recv(&mut self, slot: u32, gen: u32) -> io::Result<()> {
        let Some(c) = self.conn(slot, gen) else {
            return Ok(());
        };
        if c.recv_armed || c.eof || c.error.is_some() || c.shut || c.shutdown_wanted {
            return Ok(());
        }
        c.recv_armed = true;
        let fd = c.socket.as_raw_fd();
        let entry = opcode::RecvMulti::new(Fd(fd), RECV_GROUP)
            .build()
            .user_data(tag(KIND_RECV, gen, slot));
        sys::push(&mut self.ring, &entry)
    }

    /// Mark `slot` as having work for the next pass.
    fn mark_dirty(&mut self, slot: u32) {
        if let Some((_, Some(c))) = self.conns.get_mut(slot as usize) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Start what the dirty connections need: a send of their pending bytes, a shutdown
    /// once everything is sent, the slot's release once nothing is in flight.
    fn flush_dirty(&mut self) -> io::Result<()> {
        let mut i = 0;
        while i < self.dirty.len() {
            let slot = self.dirty[i];
            i += 1;
            let gen = self.conns[slot as usize].0;
            let Some(c) = self.conn(slot, gen) else {
                continue;
            };
            c.dirty = false;
            if !c.sending && !c.pending.is_empty() && c.error.is_none() && !c.shut {
                std::mem::swap(&mut c.pending, &mut c.inflight);
                c.pending.clear();
                c.sent = 0;
                c.sending = true;
                let entry = opcode::Send::new(
                    Fd(c.socket.as_raw_fd()),
                    c.inflight.as_ptr(),
                    c.inflight.len() as u32,
                )
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(tag(KIND_SEND, gen, slot));
                sys::push(&mut self.ring, &entry)?;
                self.stats.sends += 1;
                continue;
            }
            self.settle(slot, gen)?;
        }
        self.dirty.clear();
        Ok(())
    }

    /// A connection with nothing left to send: shut it down when asked (cancelling its
    /// receive), and free its slot once it was dropped and nothing is in flight.
    fn settle(&mut self, slot: u32, gen: u32) -> io::Result<()> {
        let Some(c) = self.conn(slot, gen) else {
            return Ok(());
        };
        let lingered_out = c.dropped.is_some_and(|t| t.elapsed() >= LINGER);
        let flushed = !c.sending && (c.pending.is_empty() || c.error.is_some());
        // Reading stops at once (what the peer sends from now on stays unread, so closing
        // resets the connection, as closing a std socket with unread data does); what was
        // written still goes out first.
        let cancel = c.shutdown_wanted && c.recv_armed && !c.recv_cancelling;
        if cancel {
            c.recv_cancelling = true;
        }
        if c.shutdown_wanted && !c.shut && (flushed || lingered_out) {
            c.shut = true;
            let _ = c.socket.shutdown(Shutdown::Both);
        }
        if cancel {
            let entry = opcode::AsyncCancel::new(tag(KIND_RECV, gen, slot))
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(tag(KIND_CANCEL, gen, slot));
            sys::push(&mut self.ring, &entry)?;
        }
        let c = self.conn(slot, gen).expect("checked above");
        if c.dropped.is_some() && c.shut && c.idle() {
            self.conns[slot as usize].1 = None;
            self.free.push(slot);
            if let Some(i) = self.lingering.iter().position(|&s| s == slot) {
                self.lingering.swap_remove(i);
            }
        }
        Ok(())
    }

    fn pass(&mut self, wait: Option<Duration>) -> io::Result<usize> {
        self.flush_dirty()?;
        for slot in std::mem::take(&mut self.rearm) {
            let gen = self.conns[slot as usize].0;
            self.arm_recv(slot, gen)?;
        }
        if !self.lingering.is_empty() {
            for i in 0..self.lingering.len() {
                self.mark_dirty(self.lingering[i]);
            }
            self.flush_dirty()?;
        }
        let mut handled = self.reap()?;
        let queued = !self.ring.submission().is_empty();
        let flagged = {
            let sq = self.ring.submission();
            sq.taskrun() || sq.cq_overflow()
        };
        if queued || flagged || (handled == 0 && wait.is_some()) {
            self.stats.enters += 1;
            let res = match wait {
                Some(t) if handled == 0 => {
                    let ts = Timespec::new().sec(t.as_secs()).nsec(t.subsec_nanos());
                    let args = SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args)
                }
                _ => self.ring.submit(),
            };
            match res {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                    ) => {}
                Err(e) => return Err(e),
            }
            handled += self.reap()?;
            // Completions may have produced more to submit (short sends, re-arms).
            self.flush_dirty()?;
        }
        Ok(handled)
    }

    /// Handle every completion in the queue.
    fn reap(&mut self) -> io::Result<usize> {
        let mut n = 0;
        loop {
            let cqe = {
                let mut cq = self.ring.completion();
                match cq.next() {
                    Some(c) => c,
                    None => break,
                }
            };
            n += 1;
            self.stats.completions += 1;
            self.complete(cqe.user_data(), cqe.result(), cqe.flags())?;
        }
        Ok(n)
    }

    fn complete(&mut self, data: u64, res: i32, flags: u32) -> io::Result<()> {
        let (kind, gen, slot) = untag(data);
        match kind {
            KIND_ACCEPT => {
                if res < 0 && res != -libc::ECANCELED {
                    self.stats.accept_errors += 1;
                }
                if res >= 0 {
                    let socket = sys::adopt_socket(res);
                    let _ = socket.set_nodelay(true);
                    let peer = socket
                        .peer_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    let (slot, gen) = self.add_conn(socket)?;
                    self.stats.accepted += 1;
                    self.accepted.push_back((slot, gen, peer));
                }
                if !cqueue::more(flags) {
                    self.accept_armed = false;
                    self.accept_cancelling = false;
                }
                // Arms it again when it ended and is wanted; cancels it when it brought a
                // connection while not wanted (the lazy cancel).
                self.arm_accept()?;
            }
            KIND_RECV => {
                let more = cqueue::more(flags);
                let mut rearm = false;
                let bid = cqueue::buffer_select(flags);
                if let Some(c) = conn_mut(&mut self.conns, slot, gen) {
                    match (res, bid) {
                        // What arrives for a dropped connection is let go.
                        (n, Some(bid)) if n > 0 && c.dropped.is_none() => {
                            if c.in_pos == c.inbound.len() {
                                c.inbound.clear();
                                c.in_pos = 0;
                            }
                            c.inbound
                                .extend_from_slice(self.bufs.bytes(bid, n as usize));
                        }
                        (0, _) => c.eof = true,
                        (n, _) if n == -libc::ENOBUFS => rearm = true,
                        (n, _) if n < 0 && n != -libc::ECANCELED => {
                            c.error.get_or_insert(io::Error::from_raw_os_error(-n));
                        }
                        _ => {}
                    }
                    if !more {
                        c.recv_armed = false;
                    }
                }
                if let Some(bid) = bid {
                    self.bufs.give_back(bid);
                }
                if rearm && !more {
                    self.stats.recv_no_buffers += 1;
                    self.rearm.push(slot);
                }
                if !more {
                    self.mark_dirty(slot);
                }
            }
            KIND_SEND => {
                if let Some(c) = self.conn(slot, gen) {
                    if res < 0 {
                        c.error.get_or_insert(io::Error::from_raw_os_error(-res));
                        c.sending = false;
                        c.inflight.clear();
                        c.pending.clear();
                    } else {
                        c.sent += res as usize;
                        if c.sent < c.inflight.len() && c.error.is_none() && !c.shut {
                            let rest = &c.inflight[c.sent..];
                            let entry = opcode::Send::new(
                                Fd(c.socket.as_raw_fd()),
                                rest.as_ptr(),
                                rest.len() as u32,
                            )
                            .flags(libc::MSG_NOSIGNAL)
                            .build()
                            .user_data(tag(KIND_SEND, gen, slot));
                            sys::push(&mut self.ring, &entry)?;
                            self.stats.sends += 1;
                            return Ok(());
                        }
                        c.sending = false;
                        c.inflight.clear();
                    }
                }
                self.mark_dirty(slot);
            }
            KIND_FSYNC => {
                let outcome = if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else {
                    Ok(())
                };
                self.syncs_in_flight -= 1;
                self.synced.push_back((slot, outcome));
            }
            _ => {}
        }
        Ok(())
    }
}

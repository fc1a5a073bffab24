//! The baseline: a busy-polled echo server speaking Veloz's framing (`u32` LE length + body),
//! so that a run can measure the host's own loopback floor with the same client, rate and
//! connections, and quote Veloz's latency as a ratio to it.
//!
//! One thread per given core, each pinned, sharing one non-blocking listener on
//! `127.0.0.1:0`. A thread never sleeps: it reads every socket it owns into a
//! [`FrameDecoder`], appends each complete frame (prefix included) to that socket's output
//! and writes it back, like the engine's gateway minus decoding, matching and journaling. It
//! looks for new connections on every pass while it has none, then every 4096 passes:
//! `accept` allocates a socket even when nothing waits, which costs microseconds here.
//! It stops when [`EchoServer::stop`] is called; a connection that sends a malformed length
//! is closed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use veloz_wire::{FrameDecoder, DEFAULT_MAX_FRAME_LEN};

use super::LoadError;

/// A running echo server; see the module docs.
#[derive(Debug)]
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct EchoConn {
    stream: TcpStream,
    decoder: FrameDecoder,
    out: Vec<u8>,
    out_pos: usize,
}

impl EchoServer {
    /// Listen on `127.0.0.1:0` and serve with one pinned thread per core of `cores`.
    pub fn start(cores: &[usize]) -> Result<EchoServer, LoadError> {
        let echo = |detail: String| LoadError::Echo { detail };
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| echo(format!("bind 127.0.0.1:0: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| echo(format!("set the listener non-blocking: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| echo(format!("local address: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(cores.len());
        for &core in cores {
            let listener = listener
                .try_clone()
                .map_err(|e| echo(format!("clone the listener: {e}")))?;
            let stop_flag = Arc::clone(&stop);
            let spawned = std::thread::Builder::new()
                .name(format!("veloz-echo-{core}"))
                .spawn(move || {
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        tracing::warn!(target: "veloz::load", core, "echo thread could not pin to core {core}");
                    }
                    serve(&listener, &stop_flag);
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let server = EchoServer {
                        addr,
                        stop,
                        threads,
                    };
                    server.stop();
                    return Err(echo(format!("spawn the echo thread for core {core}: {e}")));
                }
            }
        }
        Ok(EchoServer {
            addr,
            stop,
            threads,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop every thread and wait for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool) {
    let mut conns: Vec<EchoConn> = Vec::new();
    let mut spins = 0u32;
    loop {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) && stop.load(Ordering::Relaxed) {
            return;
        }
        // accept() allocates a socket even when nothing waits (a few microseconds here):
        // look for new connections only every 4096 passes once some are open.
        if !(conns.is_empty() || spins.is_multiple_of(4096)) {
            conns.retain_mut(|c| c.poll());
            continue;
        }
        if let Ok((stream, _)) = listener.accept() {
            if stream.set_nonblocking(true).is_ok() && stream.set_nodelay(true).is_ok() {
                conns.push(EchoConn {
                    stream,
                    decoder: FrameDecoder::new(DEFAULT_MAX_FRAME_LEN),
                    out: Vec::with_capacity(64 * 1024),
                    out_pos: 0,
                });
            }
        }
        conns.retain_mut(|c| c.poll());
    }
}

impl EchoConn {
    /// Read, echo, write; `false` when the connection is finished.
    fn poll(&mut self) -> bool {
        loop {
            match self.stream.read(self.decoder.read_buf()) {
                Ok(0) => return false,
                Ok(n) => {
                    self.decoder.commit(n);
                    loop {
                        match self.decoder.next_frame() {
                            Ok(Some(frame)) => self.out.extend_from_slice(frame),
                            Ok(None) => break,
                            Err(_) => return false,
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return false,
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        true
    }
}

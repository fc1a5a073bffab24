//! The measurement behind the shard's network path (docs/BENCHMARKS.md, "Network paths"):
//! one echo server pinned to a core, driven three ways, and one client pinned to another.
//!
//! - `std`: non-blocking std sockets, busy-polled (one `recv` and one `send` system call per
//!   message batch): the path the shards had;
//! - `glommio`: glommio's own `TcpStream` on a pinned executor with `spin_before_park`
//!   (the executor's own io_uring, waited on by its reactor);
//! - `uring`: this crate's [`veloz_uring::Ring`], busy-polled: multishot receive into
//!   provided buffers, sends submitted once per pass.
//!
//! Two figures per path: the round trip of one 64-byte message at a time (ping-pong,
//! percentiles over `ROUND_TRIPS`), and the message rate with `PIPELINE` messages in flight.
//!
//! ```sh
//! cargo run --release -p veloz-uring --example net_paths -- [server core] [client core]
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

const MSG: usize = 64;
const ROUND_TRIPS: usize = 200_000;
const PIPELINE: usize = 256;
const PIPELINED_MSGS: usize = 4_000_000;

fn pin(core: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

/// Echo on std sockets, busy-polled.
fn serve_std(listener: TcpListener, stop: Arc<AtomicBool>) {
    let (mut s, _) = listener.accept().unwrap();
    s.set_nodelay(true).unwrap();
    s.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => write_all_spin(&mut s, &buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

fn write_all_spin(s: &mut impl Write, mut b: &[u8]) {
    while !b.is_empty() {
        match s.write(b) {
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
    }
}

/// Echo on this crate's ring, busy-polled.
fn serve_uring(listener: TcpListener, stop: Arc<AtomicBool>) {
    let ring = veloz_uring::Ring::new(veloz_uring::RingConfig::default()).unwrap();
    ring.listen(listener).unwrap();
    ring.set_accepting(true).unwrap();
    let mut s = loop {
        ring.poll().unwrap();
        if let Some((s, _)) = ring.take_accepted() {
            break s;
        }
    };
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let mut off = 0;
                while off < n {
                    match s.write(&buf[off..n]) {
                        Ok(k) => off += k,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            ring.poll().unwrap();
                        }
                        Err(e) => panic!("write: {e}"),
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        ring.poll().unwrap();
    }
}

/// Echo on glommio's own networking, with the executor spinning before it parks. The
/// listener is glommio's (bound on the executor); its address goes back over `addr`.
fn serve_glommio(core: usize, addr: std::sync::mpsc::Sender<SocketAddr>, stop: Arc<AtomicBool>) {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(core))
        .spin_before_park(Duration::from_millis(10))
        .spawn(move || async move {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            addr.send(listener.local_addr().unwrap()).unwrap();
            let mut s = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; 64 << 10];
            while !stop.load(Ordering::Relaxed) {
                let n = match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Read exactly `buf.len()` bytes, spinning on a non-blocking socket.
fn read_exact_spin(s: &mut TcpStream, buf: &mut [u8]) {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => panic!("server closed"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The client: ping-pong percentiles, then the pipelined message rate.
fn drive(addr: SocketAddr, core: usize) -> (Histogram<u64>, f64) {
    pin(core);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_nonblocking(true).unwrap();
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..ROUND_TRIPS + 10_000 {
        let t = Instant::now();
        write_all_spin(&mut s, &msg);
        read_exact_spin(&mut s, &mut back);
        if i >= 10_000 {
            h.record(t.elapsed().as_nanos() as u64).unwrap();
        }
    }
    let batch = vec![7u8; MSG * PIPELINE];
    let mut sink = vec![0u8; MSG * PIPELINE];
    let t = Instant::now();
    for _ in 0..PIPELINED_MSGS / PIPELINE {
        write_all_spin(&mut s, &batch);
        read_exact_spin(&mut s, &mut sink);
    }
    let rate = PIPELINED_MSGS as f64 / t.elapsed().as_secs_f64();
    (h, rate)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let online = core_affinity::get_core_ids().map_or(1, |c| c.len());
    let server_core = args.first().copied().unwrap_or(0);
    let client_core = args.get(1).copied().unwrap_or(online.saturating_sub(1));
    if let Err(why) = veloz_uring::probe() {
        eprintln!("io_uring unavailable here: {why}");
        std::process::exit(1);
    }
    println!(
        "echo of {MSG}-byte messages, server on core {server_core}, client on core {client_core}: \
         {ROUND_TRIPS} round trips one at a time, then {PIPELINED_MSGS} messages {PIPELINE} in flight"
    );
    println!(
        "{:<9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "path", "p50 us", "p99 us", "p99.9 us", "max us", "pipelined/s"
    );
    for path in ["std", "uring", "glommio"] {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (tx, rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || match path {
            "glommio" => serve_glommio(server_core, tx, stop2),
            _ => {
                pin(server_core);
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                if path == "std" {
                    serve_std(l, stop2)
                } else {
                    serve_uring(l, stop2)
                }
            }
        });
        let addr = rx.recv().unwrap();
        let (h, rate) = drive(addr, client_core);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        println!(
            "{path:<9} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>12.0}",
            us(0.5),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1e3,
            rate
        );
    }
}

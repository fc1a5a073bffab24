//! The driver over real loopback sockets and a real file: bytes arrive in order and once,
//! large writes leave whole through short sends, a dropped stream sends what it had
//! written before the peer sees the end, provided buffers running out loses nothing, and a
//! data sync completes.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use veloz_uring::{Ring, RingConfig, UringStream};

const DEADLINE: Duration = Duration::from_secs(20);

fn ring_with(config: RingConfig) -> Option<Ring> {
    if let Err(why) = veloz_uring::probe() {
        eprintln!("skipped: io_uring unavailable here: {why}");
        return None;
    }
    Some(Ring::new(config).expect("ring"))
}

fn listening(ring: &Ring) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // As the engine's gateway socket is.
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    ring.listen(l).unwrap();
    ring.set_accepting(true).unwrap();
    addr
}

fn accept(ring: &Ring) -> UringStream {
    let t = Instant::now();
    loop {
        ring.poll().unwrap();
        if let Some((s, peer)) = ring.take_accepted() {
            assert!(peer.ip().is_loopback());
            return s;
        }
        assert!(t.elapsed() < DEADLINE, "no connection accepted");
    }
}

/// Read from `s` until `want` bytes came, polling the ring.
fn read_all(ring: &Ring, s: &mut UringStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 7000];
    let t = Instant::now();
    while got.len() < want {
        ring.poll().unwrap();
        match s.read(&mut buf) {
            Ok(0) => panic!("end of stream after {} of {want} bytes", got.len()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(t.elapsed() < DEADLINE, "only {} of {want} bytes", got.len());
    }
    got
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn echo_in_order_over_many_connections() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    let addr = listening(&ring);
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..50 {
        clients.push(TcpStream::connect(addr).unwrap());
        servers.push(accept(&ring));
    }
    assert_eq!(ring.stats().accepted, 50);
    for round in 0..5u8 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&pattern(1000 + i, round)).unwrap();
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let got = read_all(&ring, s, 1000 + i);
            assert_eq!(
                got,
                pattern(1000 + i, round),
                "connection {i} round {round}"
            );
            let mut off = 0;
            while off < got.len() {
                match s.write(&got[off..]) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        ring.poll().unwrap();
                    }
                    Err(e) => panic!("write: {e}"),
                }
            }
        }
        ring.poll().unwrap();
        for (i, c) in clients.iter_mut().enumerate() {
            let mut back = vec![0u8; 1000 + i];
            c.set_read_timeout(Some(DEADLINE)).unwrap();
            // The sends may still be in flight: keep polling from here.
            let mut got = 0;
            let t = Instant::now();
            c.set_nonblocking(true).unwrap();
            while got < back.len() {
                ring.poll().unwrap();
                match c.read(&mut back[got..]) {
                    Ok(0) => panic!("closed"),
                    Ok(n) => got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                assert!(t.elapsed() < DEADLINE);
            }
            c.set_nonblocking(false).unwrap();
            assert_eq!(back, pattern(1000 + i, round));
        }
    }
}

/// Eight megabytes written to a peer reading slowly: the connection takes no more than its
/// pending limit at a time, every byte arrives in order (short sends resumed), and dropping
/// the stream afterwards still delivers the tail before the end of stream.
#[test]
fn large_writes_arrive_whole_and_a_drop_flushes_first() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    let addr = listening(&ring);
    let client = TcpStream::connect(addr).unwrap();
    let mut server = accept(&ring);
    let data = pattern(8 << 20, 7);
    let reader = std::thread::spawn(move || {
        let mut c = client;
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got
    });
    let mut off = 0;
    let t = Instant::now();
    while off < data.len() {
        match server.write(&data[off..]) {
            Ok(n) => {
                assert!(n <= veloz_uring::PENDING_LIMIT);
                off += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
        ring.poll().unwrap();
        assert!(t.elapsed() < DEADLINE);
    }
    drop(server);
    let t = Instant::now();
    while !reader.is_finished() {
        ring.poll().unwrap();
        assert!(t.elapsed() < DEADLINE, "the peer never saw the end");
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    // The slot is released once its receive is cancelled.
    let t = Instant::now();
    while ring.connections() > 0 {
        ring.poll().unwrap();
        assert!(t.elapsed() < DEADLINE, "the connection was never released");
    }
}

/// Two provided buffers of 64 bytes for a 1 MiB burst: receives run out of buffers, are
/// re-armed, and nothing is lost or reordered.
#[test]
fn running_out_of_receive_buffers_loses_nothing() {
    let Some(ring) = ring_with(RingConfig {
        entries: 64,
        recv_buffers: 2,
        recv_buffer_bytes: 64,
    }) else {
        return;
    };
    let addr = listening(&ring);
    let mut client = TcpStream::connect(addr).unwrap();
    let mut server = accept(&ring);
    let data = pattern(1 << 20, 3);
    let to_send = data.clone();
    let writer = std::thread::spawn(move || client.write_all(&to_send).map(|_| client));
    let got = read_all(&ring, &mut server, data.len());
    assert!(got == data, "bytes differ");
    assert!(ring.stats().recv_no_buffers > 0, "{:?}", ring.stats());
    let client = writer.join().unwrap().unwrap();
    // The peer's close is seen as the end of stream.
    drop(client);
    let mut buf = [0u8; 16];
    let t = Instant::now();
    loop {
        ring.poll().unwrap();
        match server.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("{n} unexpected bytes"),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        assert!(t.elapsed() < DEADLINE);
    }
}

/// While accepting is off nobody is taken, but for the one connection that finds the accept
/// still armed (the lazy cancel, crate docs); turned on, the waiting connection arrives.
#[test]
fn accepting_can_be_paused() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    let addr = listening(&ring);
    ring.set_accepting(false).unwrap();
    for _ in 0..100 {
        ring.poll().unwrap();
    }
    let _first = TcpStream::connect(addr).unwrap();
    accept(&ring);
    let _second = TcpStream::connect(addr).unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(200) {
        ring.poll().unwrap();
        assert!(ring.take_accepted().is_none(), "accepted while paused");
    }
    ring.set_accepting(true).unwrap();
    accept(&ring);
    // Stopping cancels at once.
    ring.stop_accepting().unwrap();
    for _ in 0..100 {
        ring.poll().unwrap();
    }
    let _third = TcpStream::connect(addr).unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(200) {
        ring.poll().unwrap();
        assert!(ring.take_accepted().is_none(), "accepted after stopping");
    }
}

/// A data sync of a written range completes with its token; one on a closed descriptor
/// reports the error.
#[test]
fn data_sync_completes_with_its_token() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    let path = std::env::temp_dir().join(format!("veloz-uring-sync-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&pattern(1 << 20, 1)).unwrap();
    use std::os::fd::AsRawFd;
    let token = ring.fsync(f.as_raw_fd(), 0, 1 << 20).unwrap();
    let bad = ring.fsync(-1, 0, 0).unwrap();
    let mut seen = Vec::new();
    let t = Instant::now();
    while seen.len() < 2 {
        ring.wait(Duration::from_millis(10)).unwrap();
        while let Some(done) = ring.take_synced() {
            seen.push(done);
        }
        assert!(t.elapsed() < DEADLINE);
    }
    let ok = seen.iter().find(|(t, _)| *t == token).unwrap();
    assert!(ok.1.is_ok(), "{:?}", ok.1);
    let failed = seen.iter().find(|(t, _)| *t == bad).unwrap();
    assert!(failed.1.is_err());
    assert_eq!(ring.stats().syncs, 2);
    std::fs::remove_file(&path).unwrap();
}

/// An idle ring waits for the timeout, and a connection wakes it early.
#[test]
fn wait_wakes_on_a_connection() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    let addr = listening(&ring);
    ring.poll().unwrap();
    let t = Instant::now();
    ring.wait(Duration::from_millis(50)).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(40),
        "{:?}",
        t.elapsed()
    );
    let connector = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        TcpStream::connect(addr).unwrap()
    });
    let t = Instant::now();
    while ring.take_accepted().is_none() {
        ring.wait(Duration::from_secs(10)).unwrap();
        assert!(t.elapsed() < DEADLINE);
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    connector.join().unwrap();
}

/// Two rings on clones of one listener, taking turns (as shards balance sessions): every
/// connection is accepted exactly once (by the ring accepting, or by the other one when it
/// arrived before that ring's cancel was submitted), and none waits.
#[test]
fn two_rings_take_turns_on_one_listener() {
    let Some(a) = ring_with(RingConfig::default()) else {
        return;
    };
    let b = Ring::new(RingConfig::default()).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    a.listen(l.try_clone().unwrap()).unwrap();
    b.listen(l).unwrap();
    let mut kept = Vec::new();
    for i in 0..40 {
        let (on, off) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        off.set_accepting(false).unwrap();
        on.set_accepting(true).unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        let got = loop {
            on.poll().unwrap();
            off.poll().unwrap();
            if let Some(s) = on.take_accepted().or_else(|| off.take_accepted()) {
                break s;
            }
            assert!(t.elapsed() < DEADLINE, "connection {i} never accepted");
        };
        kept.push((client, got));
        for _ in 0..10 {
            on.poll().unwrap();
            off.poll().unwrap();
        }
        assert!(on.take_accepted().is_none() && off.take_accepted().is_none());
    }
}

/// Two rings accepting at once from clones of one non-blocking listener: every connection
/// is taken by one of them, connection after connection.
#[test]
fn two_rings_accepting_at_once_take_every_connection() {
    let Some(a) = ring_with(RingConfig::default()) else {
        return;
    };
    let b = Ring::new(RingConfig::default()).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    a.listen(l.try_clone().unwrap()).unwrap();
    b.listen(l).unwrap();
    a.set_accepting(true).unwrap();
    b.set_accepting(true).unwrap();
    let mut kept = Vec::new();
    for i in 0..40 {
        let client = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        let got = loop {
            a.poll().unwrap();
            b.poll().unwrap();
            if let Some(s) = a.take_accepted().or_else(|| b.take_accepted()) {
                break s;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "connection {i} never accepted: {:?} {:?}",
                a.stats(),
                b.stats()
            );
        };
        kept.push((client, got));
    }
    assert_eq!((a.stats().accept_errors, b.stats().accept_errors), (0, 0));
}

#[test]
fn a_connection_accepted_elsewhere_runs_on_the_ring() {
    let Some(ring) = ring_with(RingConfig::default()) else {
        return;
    };
    // A listener the ring does not serve (the engine's FIX acceptor).
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(other.local_addr().unwrap()).unwrap();
    let (socket, _) = other.accept().unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut s = ring.adopt(socket).unwrap();
    let sent = pattern(50_000, 3);
    client.write_all(&sent).unwrap();
    assert_eq!(read_all(&ring, &mut s, sent.len()), sent);
    // And back: written through the ring, read by the peer whole and in order.
    let reply = pattern(30_000, 9);
    s.write_all(&reply).unwrap();
    ring.poll().unwrap();
    drop(s);
    let mut got = Vec::new();
    let t = Instant::now();
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 8192];
    while got.len() < reply.len() {
        ring.poll().unwrap();
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(
            t.elapsed() < DEADLINE,
            "only {} of {} bytes",
            got.len(),
            reply.len()
        );
    }
    assert_eq!(got, reply);
}

//! systemd's readiness protocol (`Type=notify`, crates/veloz-engine/src/notify.rs) against a
//! real `veloz serve` on loopback: the test binds the Unix datagram socket that systemd would
//! (in a temporary directory) and hands it over as `NOTIFY_SOCKET`. Only STATUS= lines come
//! while the shards recover; READY=1 comes once the `veloz: listening on` line has been printed
//! and its port (and the metrics port) accept connections; STOPPING=1 comes after SIGTERM, and
//! the engine then stops cleanly.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command as Process, Stdio};
use std::time::Duration;

use common::*;

/// SIGKILLs the engine if the test ends before it stopped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The next datagram, as text; `what` names what is awaited when none comes.
fn next(sock: &UnixDatagram, what: &str, stderr: &std::sync::mpsc::Receiver<String>) -> String {
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => panic!(
            "no notification ({what}): {e}; engine stderr:\n{}",
            stderr.try_iter().collect::<Vec<_>>().join("\n")
        ),
    }
}

#[test]
fn ready_after_the_ports_accept_and_stopping_after_sigterm() {
    let _serial = serial();
    let dir = TempDir::new("notify");
    let config = test_config(dir.path(), "none", "");
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    // A guard against a hang, not a measurement: recovery of an empty journal takes far less.
    sock.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();

    let mut child = Process::new(veloz_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn veloz serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, stderr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut engine = KillOnDrop(child);

    // While the shards recover: progress only.
    let first = next(&sock, "recovering", &stderr);
    assert!(
        first.starts_with("STATUS=recovering ") && first.contains("shard(s)"),
        "{first:?}"
    );
    let ready = loop {
        let msg = next(&sock, "READY=1", &stderr);
        if msg.lines().any(|l| l == "READY=1") {
            break msg;
        }
        assert!(
            msg.starts_with("STATUS=recovered ") && !msg.contains("STOPPING"),
            "before READY=1: {msg:?}"
        );
    };

    // READY=1 came: the listening line is out, and both ports accept connections now.
    let mut orders = None;
    let mut metrics = None;
    let mut line = String::new();
    while orders.is_none() || metrics.is_none() {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "stdout ended before the listening lines"
        );
        if let Some(a) = line.trim().strip_prefix("veloz: listening on ") {
            orders = Some(a.to_string());
        }
        if let Some(a) = line.trim().strip_prefix("veloz: metrics on ") {
            metrics = Some(a.to_string());
        }
    }
    let (orders, metrics) = (orders.unwrap(), metrics.unwrap());
    TcpStream::connect(&orders)
        .unwrap_or_else(|e| panic!("READY=1 sent but {orders} refuses a connection: {e}"));
    TcpStream::connect(&metrics)
        .unwrap_or_else(|e| panic!("READY=1 sent but {metrics} refuses a connection: {e}"));
    assert!(
        ready
            .lines()
            .any(|l| l == format!("STATUS=listening on {orders}, metrics on {metrics}")),
        "{ready:?}"
    );

    // SIGTERM: STOPPING=1, then a clean stop.
    let pid = engine.0.id().to_string();
    assert!(Process::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopping = next(&sock, "STOPPING=1", &stderr);
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "after SIGTERM: {stopping:?}"
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = engine.0.wait().unwrap();
    assert!(
        status.success(),
        "{status}; stderr:\n{}",
        stderr.try_iter().collect::<Vec<_>>().join("\n")
    );
    assert!(rest.contains("clean shutdown at sequence"), "{rest}");
}

//! A NATS JetStream cluster for tests: 1 or 3 real `nats-server` processes on loopback.
//!
//! Guarantees:
//! - Loopback only: every node listens on 127.0.0.1 (client, route and monitoring ports); the
//!   ports are free ports the kernel handed out (bind 127.0.0.1:0, then release). When a port
//!   race makes a node exit during start, the whole start is retried once on new ports.
//! - Ready means JetStream is usable: [`NatsCluster::start`] and [`NatsCluster::wait_ready`]
//!   return `Ok` only once every running node's `/healthz` says ok and, for 3 nodes, every
//!   running node's `/jsz` names the same meta leader and that leader is a running node (an R3
//!   stream creation fails until a meta leader is elected). nats-server 2.9.10 elects one in
//!   well under a second on a fresh cluster and about 5 s after its leader is killed.
//! - Nothing outlives the test: each node process has a watchdog (`sh` blocked reading a pipe
//!   whose only writer is the test process). Dropping the cluster, also while a test panics,
//!   SIGKILLs and reaps every node; when the test process itself dies (even by SIGKILL), the
//!   pipe closes and the watchdog SIGKILLs its node.
//! - Layout of `dir`: `nK.conf` (the node's config), `nK.log` (its stdout and stderr, appended
//!   across restarts) and the JetStream store `nK/`, for K = 1..=nodes. `start` removes the
//!   `nK/` stores first, so every start is a fresh cluster; `restart_node` keeps the store.
//! - The binary is `VELOZ_NATS_SERVER`, else `nats-server` on PATH, else
//!   `/usr/sbin/nats-server` (`make tools` installs the Debian package nats-server);
//!   [`nats_server`] says which, or why there is none, so a test can skip.
//! - std only: the monitoring endpoints are read with a minimal HTTP/1.0 GET over
//!   [`TcpStream`], and the JSON is searched for the one field needed, not parsed.
//!
//! Limits: node indexes are 0-based (node `i` is server `n{i+1}`); the cluster is named `veloz`
//! as in `scripts/cluster-up.sh`; `kill_node`/`restart_node` panic on misuse or failure, as a
//! test harness should.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long `start` and `restart_node` wait for a node, or the cluster, to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(100);
/// Lines of a node's log that error messages carry.
const LOG_TAIL_LINES: usize = 25;

/// The nats-server binary: `VELOZ_NATS_SERVER`, else `nats-server` on PATH, else
/// `/usr/sbin/nats-server`. Err says it is missing and that `make tools` installs it.
pub fn nats_server() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("VELOZ_NATS_SERVER").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!(
                "VELOZ_NATS_SERVER={} is not a file: `make tools` installs nats-server (Debian package nats-server)",
                bin.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|d| d.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "nats-server is not installed (not on PATH, no /usr/sbin/nats-server): `make tools` installs it (Debian package nats-server)"
                .to_string()
        })
}

/// One HTTP/1.0 GET of `http://127.0.0.1:{port}{path}`: the status code and the body.
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let what = format!("GET http://{addr}{path}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("{what}: connect: {e}"))?;
    let io = |e: std::io::Error| format!("{what}: {e}");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(io)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{what}: no end of headers in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{what}: no status code in {head:?}"))?;
    Ok((code, body.to_string()))
}

/// The value of the first string field `"key": "value"` at or after `from` in a JSON text.
fn json_string_after(text: &str, from: usize, key: &str) -> Option<String> {
    let pattern = format!("\"{key}\"");
    let at = from + text[from..].find(&pattern)? + pattern.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let value = rest.strip_prefix('"')?;
    Some(value[..value.find('"')?].to_string())
}

/// The meta leader named in a `/jsz` body (`meta_cluster.leader`), if any.
pub fn meta_leader_of(jsz: &str) -> Option<String> {
    let at = jsz.find("\"meta_cluster\"")?;
    let open = at + jsz[at..].find('{')? + 1;
    // `leader` is omitted while there is none: read only the object's own fields, up to its
    // first nested object or array (`replicas`) or its end.
    let end = jsz[open..]
        .find(['{', '[', '}'])
        .map_or(jsz.len(), |e| open + e);
    json_string_after(&jsz[..end], open, "leader").filter(|l| !l.is_empty())
}

/// The first line a NATS server sends on connect (`INFO {...}`), without its CRLF.
pub fn info_line(port: u16) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return Err(format!("{addr} closed before a full INFO line: {line:?}")),
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("reading INFO from {addr}: {e}")),
        }
        if line.len() > 64 * 1024 {
            return Err(format!("{addr}: no CRLF in the first 64 KiB"));
        }
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// One request over the NATS protocol to the server on `port`: publish `payload` on `subject`
/// with a reply inbox and return the first reply's payload. JetStream's API is reached this
/// way (`$JS.API.STREAM.CREATE.NAME` and so on) without a client library.
pub fn nats_request(
    port: u16,
    subject: &str,
    payload: &str,
    timeout: Duration,
) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let what = format!("request {subject} on {addr}");
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map_err(|e| format!("{what}: connect: {e}"))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| format!("{what}: {e}"))?);
    let inbox = "_INBOX.veloz-test";
    write!(
        stream,
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"echo\":false,\"protocol\":1}}\r\nSUB {inbox} 1\r\nPUB {subject} {inbox} {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    )
    .map_err(|e| format!("{what}: write: {e}"))?;
    let mut line = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| format!("{what}: {e}"))?;
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(format!("{what}: the server closed the connection")),
            Ok(_) => {}
            Err(e) => return Err(format!("{what}: no reply: {e}")),
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["MSG", _, _, len] | ["MSG", _, _, _, len] => {
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("{what}: bad MSG line {line:?}"))?;
                let mut body = vec![0u8; len + 2];
                reader
                    .read_exact(&mut body)
                    .map_err(|e| format!("{what}: reading the reply: {e}"))?;
                body.truncate(len);
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            ["PING"] => stream
                .write_all(b"PONG\r\n")
                .map_err(|e| format!("{what}: write: {e}"))?,
            ["-ERR", ..] => return Err(format!("{what}: {}", line.trim())),
            _ => {} // INFO, PONG, +OK
        }
    }
    Err(format!("{what}: no reply within {timeout:?}"))
}

/// A running node: the server and the watchdog that kills it should this process die.
struct Running {
    server: Child,
    /// `sh -c 'read -r _; kill -KILL PID'`, its stdin a pipe only this process writes.
    watchdog: Child,
}

impl Running {
    fn spawn(bin: &Path, conf: &Path, log: &Path) -> Result<Running, String> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("open {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let server = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {} -c {}: {e}", bin.display(), conf.display()))?;
        let watchdog = Command::new("sh")
            .args(["-c", "read -r _; kill -KILL \"$0\" 2>/dev/null"])
            .arg(server.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut server = server;
        match watchdog {
            Ok(watchdog) => Ok(Running { server, watchdog }),
            Err(e) => {
                let _ = server.kill();
                let _ = server.wait();
                Err(format!("spawn the watchdog sh: {e}"))
            }
        }
    }

    /// The server's exit status when it has exited.
    fn exited(&mut self) -> Option<String> {
        match self.server.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The watchdog first: once the server is reaped its pid may be reused.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// One node's fixed identity: its name, ports and files.
struct Node {
    name: String,
    client: u16,
    route: u16,
    monitor: u16,
    conf: PathBuf,
    log: PathBuf,
    store: PathBuf,
    running: Option<Running>,
}

/// 1 or 3 nats-server processes with JetStream on loopback; see the module docs.
pub struct NatsCluster {
    bin: PathBuf,
    dir: PathBuf,
    nodes: Vec<Node>,
}

/// `count` distinct free loopback ports, all held at once while choosing, then released.
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("local_addr: {e}"))
}

/// The last `lines` lines of a file, or why it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

impl NatsCluster {
    /// Start `nodes` (1 or 3) nats-server processes with JetStream on free loopback ports,
    /// store dirs under `dir`; wait (<= 30 s) until JetStream has a meta leader. Err(message)
    /// when nats-server is not installed (the message says `make tools` installs it) or it
    /// does not come up (include the nodes' log tails).
    pub fn start(dir: &Path, nodes: usize) -> Result<NatsCluster, String> {
        if nodes != 1 && nodes != 3 {
            return Err(format!(
                "NatsCluster::start: {nodes} nodes; 1 or 3 are supported"
            ));
        }
        let bin = nats_server()?;
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        match Self::try_start(&bin, dir, nodes) {
            Ok(cluster) => Ok(cluster),
            // A node that exited early most likely lost a port race: once more, new ports.
            Err((first, true)) => Self::try_start(&bin, dir, nodes)
                .map_err(|(second, _)| format!("{second}\n(a first attempt failed too: {first})")),
            Err((message, false)) => Err(message),
        }
    }

    /// One start attempt; Err((message, a node exited)).
    fn try_start(bin: &Path, dir: &Path, count: usize) -> Result<NatsCluster, (String, bool)> {
        let ports = free_ports(3 * count).map_err(|e| (e, false))?;
        let mut cluster = NatsCluster {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            nodes: (0..count)
                .map(|i| {
                    let name = format!("n{}", i + 1);
                    Node {
                        client: ports[3 * i],
                        route: ports[3 * i + 1],
                        monitor: ports[3 * i + 2],
                        conf: dir.join(format!("{name}.conf")),
                        log: dir.join(format!("{name}.log")),
                        store: dir.join(&name),
                        name,
                        running: None,
                    }
                })
                .collect(),
        };
        for i in 0..count {
            let node = &cluster.nodes[i];
            if node.store.exists() {
                fs::remove_dir_all(&node.store)
                    .map_err(|e| (format!("remove {}: {e}", node.store.display()), false))?;
            }
            fs::write(&node.conf, cluster.config(i))
                .map_err(|e| (format!("write {}: {e}", node.conf.display()), false))?;
        }
        // All at once, so the chosen ports are taken as soon as possible.
        for i in 0..count {
            let node = &cluster.nodes[i];
            let running = Running::spawn(bin, &node.conf, &node.log).map_err(|e| (e, false))?;
            cluster.nodes[i].running = Some(running);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            for i in 0..count {
                if let Some(status) = cluster.nodes[i].running.as_mut().and_then(Running::exited) {
                    let message = format!(
                        "nats-server node {} exited ({status}) while the cluster started; logs:\n{}",
                        cluster.nodes[i].name,
                        cluster.all_log_tails()
                    );
                    return Err((message, true));
                }
            }
            match cluster.ready() {
                Ok(()) => return Ok(cluster),
                Err(why) if Instant::now() >= deadline => {
                    let message = format!(
                        "the nats cluster ({count} node(s) in {}) was not ready within {START_TIMEOUT:?}: {why}; logs:\n{}",
                        dir.display(),
                        cluster.all_log_tails()
                    );
                    return Err((message, false));
                }
                Err(_) => sleep(POLL),
            }
        }
    }

    /// The config file of node `i`.
    fn config(&self, i: usize) -> String {
        let node = &self.nodes[i];
        let mut text = format!(
            "# Written by tests/replication/cluster.rs.\nserver_name: {}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\njetstream {{\n  store_dir: {:?}\n}}\n",
            node.name,
            node.client,
            node.monitor,
            node.store.display().to_string()
        );
        if self.nodes.len() > 1 {
            text.push_str(&format!(
                "cluster {{\n  name: veloz\n  listen: 127.0.0.1:{}\n  routes: [\n",
                node.route
            ));
            for other in self.nodes.iter().filter(|o| o.name != node.name) {
                text.push_str(&format!("    nats-route://127.0.0.1:{}\n", other.route));
            }
            text.push_str("  ]\n}\n");
        }
        text
    }

    /// Ok when every running node's /healthz is ok and (3 nodes) all name the same meta
    /// leader, a running node; Err says what is missing.
    fn ready(&self) -> Result<(), String> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect();
        if live.is_empty() {
            return Err("no node is running".into());
        }
        for &i in &live {
            self.healthy(i)?;
        }
        if self.nodes.len() == 1 {
            return Ok(());
        }
        let mut leaders = Vec::new();
        for &i in &live {
            let leader = self
                .meta_leader(i)
                .ok_or_else(|| format!("{} names no JetStream meta leader", self.nodes[i].name))?;
            leaders.push(leader);
        }
        if leaders.iter().any(|l| *l != leaders[0]) {
            return Err(format!(
                "the nodes name different meta leaders: {leaders:?}"
            ));
        }
        let leader = &leaders[0];
        if !live.iter().any(|&i| self.nodes[i].name == *leader) {
            return Err(format!("the meta leader {leader} is not running"));
        }
        Ok(())
    }

    /// Ok when node `i`'s /healthz answers 200 with status ok.
    fn healthy(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        match http_get(node.monitor, "/healthz") {
            Ok((200, body)) if body.contains("\"ok\"") => Ok(()),
            Ok((code, body)) => Err(format!("{} /healthz: {code} {}", node.name, body.trim())),
            Err(e) => Err(format!("{}: {e}", node.name)),
        }
    }

    /// "nats://127.0.0.1:PORT" per node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client))
            .collect()
    }

    /// The client URLs, comma-joined (what NATS clients take as a server list).
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The server name of node `i` (`n{i+1}`).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The client port of node `i`.
    pub fn client_port(&self, i: usize) -> u16 {
        self.nodes[i].client
    }

    /// The monitoring (HTTP) port of node `i`.
    pub fn monitor_port(&self, i: usize) -> u16 {
        self.nodes[i].monitor
    }

    /// Every port of node `i`: client, route, monitoring.
    pub fn ports(&self, i: usize) -> [u16; 3] {
        let n = &self.nodes[i];
        [n.client, n.route, n.monitor]
    }

    /// The directory holding the configs, logs and stores.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether node `i` was started and not killed (it may still have crashed since).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].running.is_some()
    }

    /// The meta leader node `i`'s /jsz names right now (it may be stale for a few seconds
    /// after the leader died).
    pub fn meta_leader(&self, i: usize) -> Option<String> {
        match http_get(self.nodes[i].monitor, "/jsz") {
            Ok((200, body)) => meta_leader_of(&body),
            _ => None,
        }
    }

    /// SIGKILL node `i` (and its watchdog) and wait for it to be gone.
    pub fn kill_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let running = node
            .running
            .take()
            .unwrap_or_else(|| panic!("kill_node({i}): {} is not running", node.name));
        drop(running);
    }

    /// Start node `i` again with the same ports, config and store; wait (<= 30 s) until its
    /// /healthz says ok. Panics, with the node's log tail, when it does not come up.
    pub fn restart_node(&mut self, i: usize) {
        assert!(
            !self.is_running(i),
            "restart_node({i}): {} is running; kill_node it first",
            self.nodes[i].name
        );
        let node = &self.nodes[i];
        let running = Running::spawn(&self.bin, &node.conf, &node.log)
            .unwrap_or_else(|e| panic!("restart_node({i}): {e}"));
        self.nodes[i].running = Some(running);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.nodes[i].running.as_mut().and_then(Running::exited) {
                self.nodes[i].running = None;
                panic!(
                    "restart_node({i}): {} exited ({status}); its log:\n{}",
                    self.nodes[i].name,
                    self.log_tail(i)
                );
            }
            match self.healthy(i) {
                Ok(()) => return,
                Err(why) if Instant::now() >= deadline => panic!(
                    "restart_node({i}): not healthy within {START_TIMEOUT:?}: {why}; its log:\n{}",
                    self.log_tail(i)
                ),
                Err(_) => sleep(POLL),
            }
        }
    }

    /// Wait up to `timeout` until JetStream is usable on the running nodes: every one's
    /// /healthz is ok and (3 nodes) all name the same meta leader, itself running.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.ready() {
                Ok(()) => return Ok(()),
                Err(why) if Instant::now() >= deadline => {
                    return Err(format!(
                        "JetStream not ready within {timeout:?}: {why}; logs:\n{}",
                        self.all_log_tails()
                    ))
                }
                Err(_) => sleep(POLL),
            }
        }
    }

    /// The last lines of node `i`'s log.
    pub fn log_tail(&self, i: usize) -> String {
        tail(&self.nodes[i].log, LOG_TAIL_LINES)
    }

    /// Every node's log tail, each under a header line.
    fn all_log_tails(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                format!(
                    "--- {} ({})\n{}\n",
                    self.nodes[i].name,
                    self.nodes[i].log.display(),
                    self.log_tail(i)
                )
            })
            .collect()
    }
}

impl Drop for NatsCluster {
    /// SIGKILL every node and reap it (also while a test panics).
    fn drop(&mut self) {
        for node in &mut self.nodes {
            drop(node.running.take());
        }
    }
}

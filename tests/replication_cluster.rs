//! The local NATS JetStream cluster the replication work runs against: the test harness
//! `tests/replication/cluster.rs` (start, kill and restart nodes, meta leader, nothing left
//! behind after drop or a panic) and the developer scripts `scripts/cluster-up.sh` and
//! `scripts/cluster-down.sh`, all with real nats-server processes on 127.0.0.1.
//!
//! Each test skips (returns early, saying why) only when nats-server is not installed;
//! `make tools` installs it (Debian package nats-server). The tests hold `common::serial()`,
//! as every test here that starts servers does. The shellcheck gate over the scripts is in
//! `tests/tuning_scripts/`.

mod common;
mod replication;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use replication::cluster::{
    http_get, info_line, meta_leader_of, nats_request, nats_server, NatsCluster,
};

/// True (after saying why on stderr) when nats-server is not installed and the test must skip.
fn no_nats_server(test: &str) -> bool {
    match nats_server() {
        Ok(_) => false,
        Err(why) => {
            eprintln!("{test}: skipped: {why}");
            true
        }
    }
}

/// Ok when nothing accepts connections on 127.0.0.1:port.
fn refuses(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Ok(_) => Err(format!("{addr} still accepts connections")),
        Err(_) => Ok(()),
    }
}

/// Assert the NATS server on `port` sends an INFO line with JetStream on and this name.
fn assert_nats_info(port: u16, name: &str) {
    let info = info_line(port).unwrap_or_else(|e| panic!("node {name}: {e}"));
    assert!(info.starts_with("INFO {"), "node {name}: {info}");
    assert!(info.contains("\"jetstream\":true"), "node {name}: {info}");
    assert!(
        info.contains(&format!("\"server_name\":\"{name}\"")),
        "node {name}: {info}"
    );
}

/// Create the file-backed stream `name` with 3 replicas through the node on `port`; panics
/// with JetStream's answer unless it was created.
fn create_r3_stream(port: u16, name: &str) {
    let config =
        format!(r#"{{"name":"{name}","subjects":["{name}.>"],"num_replicas":3,"storage":"file"}}"#);
    let subject = format!("$JS.API.STREAM.CREATE.{name}");
    let reply = nats_request(port, &subject, &config, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !reply.contains("\"error\"") && reply.contains("\"num_replicas\":3"),
        "R3 stream {name} not created: {reply}"
    );
}

/// The JetStream answer to a stream info request for `name` through the node on `port` (a
/// request made while the stream elects a new leader gets no answer: Err).
fn stream_info(port: u16, name: &str) -> Result<String, String> {
    let subject = format!("$JS.API.STREAM.INFO.{name}");
    nats_request(port, &subject, "", Duration::from_secs(2))
}

#[test]
fn a_three_node_cluster_keeps_a_meta_leader_when_a_node_dies_and_takes_it_back() {
    let _serial = serial();
    if no_nats_server("a_three_node_cluster_keeps_a_meta_leader_when_a_node_dies_and_takes_it_back")
    {
        return;
    }
    let started = Instant::now();
    let dir = TempDir::new("nats-cluster");
    let mut cluster = NatsCluster::start(dir.path(), 3).unwrap_or_else(|e| panic!("{e}"));
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(*url, format!("nats://127.0.0.1:{}", cluster.client_port(i)));
    }
    assert_eq!(cluster.url_list(), urls.join(","));
    let ports: Vec<u16> = (0..3).flat_map(|i| cluster.ports(i)).collect();
    for i in 0..3 {
        assert_nats_info(cluster.client_port(i), cluster.name(i));
        assert!(dir.path().join(format!("n{}", i + 1)).is_dir());
    }
    let leader = cluster.meta_leader(0).expect("a meta leader once started");
    assert!(["n1", "n2", "n3"].contains(&leader.as_str()), "{leader}");
    // Ready means ready: a replicated stream can be created at once.
    create_r3_stream(cluster.client_port(2), "READY");

    // Node 1 (n2) dies: the other two still answer, and a survivor's /jsz names a meta
    // leader that is alive (a new one when n2 led) within 15 s.
    cluster.kill_node(1);
    let killed = Instant::now();
    assert!(!cluster.is_running(1));
    refuses(cluster.client_port(1)).unwrap();
    for i in [0, 2] {
        assert_nats_info(cluster.client_port(i), cluster.name(i));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let leader = loop {
        match cluster.meta_leader(2) {
            Some(l) if l != "n2" => break l,
            other if Instant::now() >= deadline => panic!(
                "no live meta leader on n3 within 15 s of killing n2 (it names {other:?}); logs:\n{}\n{}",
                cluster.log_tail(0),
                cluster.log_tail(2)
            ),
            _ => sleep(Duration::from_millis(100)),
        }
    };
    assert!(["n1", "n3"].contains(&leader.as_str()), "{leader}");
    cluster.wait_ready(Duration::from_secs(15)).unwrap();
    // The R3 stream keeps its quorum (2 of 3): it answers again once it has a leader.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = stream_info(cluster.client_port(0), "READY");
        match &info {
            Ok(i) if !i.contains("\"error\"") && i.contains("\"name\":\"READY\"") => break,
            _ if Instant::now() >= deadline => {
                panic!("stream READY 20 s after killing n2: {info:?}")
            }
            _ => sleep(Duration::from_millis(200)),
        }
    }
    eprintln!(
        "stream READY answers {:?} after killing n2",
        killed.elapsed()
    );

    // n2 comes back on the same ports and store, and rejoins.
    cluster.restart_node(1);
    assert!(cluster.is_running(1));
    assert_nats_info(cluster.client_port(1), "n2");
    cluster.wait_ready(Duration::from_secs(15)).unwrap();
    // Its log (appended across restarts) shows both starts.
    let log = fs::read_to_string(dir.path().join("n2.log")).unwrap();
    assert_eq!(log.matches("Server is ready").count(), 2, "{log}");

    // Dropped: every node is gone, every port refuses.
    drop(cluster);
    for port in ports {
        refuses(port).unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_single_node_and_a_panicking_test_leave_no_server_behind() {
    let _serial = serial();
    if no_nats_server("a_single_node_and_a_panicking_test_leave_no_server_behind") {
        return;
    }
    let dir = TempDir::new("nats-single");
    let ports = Mutex::new(Vec::new());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let cluster = NatsCluster::start(dir.path(), 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cluster.urls().len(), 1);
        assert_eq!(cluster.url_list(), cluster.urls()[0]);
        assert_nats_info(cluster.client_port(0), "n1");
        // A single node has no meta group: ready means /healthz says ok.
        assert_eq!(cluster.meta_leader(0), None);
        cluster.wait_ready(Duration::from_secs(5)).unwrap();
        let (code, jsz) = http_get(cluster.monitor_port(0), "/jsz").unwrap();
        assert_eq!(code, 200, "{jsz}");
        assert!(jsz.contains("\"store_dir\""), "{jsz}");
        ports.lock().unwrap().extend(cluster.ports(0));
        panic!("deliberate panic with the node running");
    }));
    assert!(outcome.is_err(), "the closure panics");
    let ports = ports.into_inner().unwrap();
    assert_eq!(ports.len(), 3);
    for port in ports {
        refuses(port).unwrap();
    }
    assert!(
        NatsCluster::start(dir.path(), 2).is_err(),
        "2 nodes: refused"
    );
}

/// Set for the child process of `a_killed_test_process_leaves_no_server_behind`: the directory
/// for its cluster and its `ports` file.
const CHILD_DIR_ENV: &str = "VELOZ_NATS_CHILD_DIR";

/// Not a test on its own (ignored, and it returns at once without CHILD_DIR_ENV): the child
/// process that `a_killed_test_process_leaves_no_server_behind` starts and then SIGKILLs.
#[test]
#[ignore = "the child process of a_killed_test_process_leaves_no_server_behind"]
fn child_holds_a_one_node_cluster_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let cluster = NatsCluster::start(&dir.join("cluster"), 1).unwrap_or_else(|e| panic!("{e}"));
    let ports = cluster.ports(0).map(|p| p.to_string()).join(" ");
    fs::write(dir.join("ports.tmp"), ports).unwrap();
    fs::rename(dir.join("ports.tmp"), dir.join("ports")).unwrap();
    sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_test_process_leaves_no_server_behind() {
    let _serial = serial();
    if no_nats_server("a_killed_test_process_leaves_no_server_behind") {
        return;
    }
    let dir = TempDir::new("nats-orphan");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_holds_a_one_node_cluster_until_killed",
            "--nocapture",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(35);
    let ports = loop {
        if let Ok(text) = fs::read_to_string(dir.path().join("ports")) {
            break text;
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the child test process did not start its node; log:\n{:?}",
                fs::read_to_string(dir.path().join("cluster/n1.log"))
            );
        }
        sleep(Duration::from_millis(50));
    };
    let ports: Vec<u16> = ports.split(' ').map(|p| p.parse().unwrap()).collect();
    assert_nats_info(ports[0], "n1");
    // SIGKILL: no Drop runs; the watchdog sees its pipe close and kills the node.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    for port in ports {
        while let Err(e) = refuses(port) {
            assert!(
                Instant::now() < deadline,
                "5 s after SIGKILL of the test: {e}"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn meta_leader_is_read_from_the_meta_cluster_object_only() {
    let jsz = r#"{"config": {"store_dir": "/x"}, "meta_cluster": {"name": "veloz", "leader": "n3", "peer": "p", "replicas": [{"name": "n1"}]}}"#;
    assert_eq!(meta_leader_of(jsz).as_deref(), Some("n3"));
    let none = r#"{"meta_cluster": {"name": "veloz", "peer": "p", "replicas": [{"name": "n1", "leader": "x"}]}}"#;
    assert_eq!(meta_leader_of(none), None);
    assert_eq!(meta_leader_of(r#"{"config": {}}"#), None);
}

/// A base port N whose nine ports (N..N+2, N+2000.., N+4000..) are free right now, below the
/// kernel's usual ephemeral range (32768..) so outgoing connections do not take them.
fn free_base_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    for attempt in 0..200u32 {
        let base = 10_000 + ((seed.wrapping_add(attempt.wrapping_mul(7919))) % 18_000) as u16;
        let all: Vec<u16> = [0, 2000, 4000]
            .iter()
            .flat_map(|off| (0..3).map(move |k| base + off + k))
            .collect();
        if all
            .iter()
            .all(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        {
            return base;
        }
    }
    panic!("no free base port with nine free ports in 10000..30002");
}

/// Run `bash scripts/NAME ARGS` with `env` set (VELOZ_NATS_SERVER cleared otherwise).
fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new("bash")
        .arg(repo().join("scripts").join(name))
        .args(args)
        .env_remove("VELOZ_NATS_SERVER")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// SIGKILLs whatever the pid files of a script-started cluster still name, when the test ends
/// (also by a panic) before cluster-down.sh did its job.
struct KillPidFiles<'a>(&'a Path);

impl Drop for KillPidFiles<'_> {
    fn drop(&mut self) {
        for name in ["n1", "n2", "n3"] {
            if let Ok(pid) = fs::read_to_string(self.0.join(format!("{name}.pid"))) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
    }
}

#[test]
fn cluster_up_and_down_scripts_start_and_stop_three_nodes() {
    let _serial = serial();
    if no_nats_server("cluster_up_and_down_scripts_start_and_stop_three_nodes") {
        return;
    }
    let dir = TempDir::new("nats-scripts");
    let d = dir.path().to_str().expect("utf-8 temp dir");
    let _kill = KillPidFiles(dir.path());
    let base = free_base_port();
    let base_arg = base.to_string();

    let up = script(
        "cluster-up.sh",
        &["--dir", d, "--base-port", &base_arg],
        &[],
    );
    assert_eq!(up.code, 0, "{}", up.show());
    let expected = format!(
        "nats: cluster up: nats://127.0.0.1:{base},nats://127.0.0.1:{},nats://127.0.0.1:{}",
        base + 1,
        base + 2
    );
    assert_eq!(
        up.stdout.lines().next(),
        Some(expected.as_str()),
        "{}",
        up.show()
    );
    let ports: Vec<u16> = [0, 2000, 4000]
        .iter()
        .flat_map(|off| (0..3).map(move |k| base + off + k))
        .collect();
    let mut leaders = Vec::new();
    for k in 0..3 {
        let name = format!("n{}", k + 1);
        assert_nats_info(base + k, &name);
        assert!(dir.path().join(format!("{name}.conf")).is_file());
        assert!(dir.path().join(format!("{name}.pid")).is_file());
        let (code, jsz) = http_get(base + 4000 + k, "/jsz").unwrap();
        assert_eq!(code, 200, "{jsz}");
        leaders.push(meta_leader_of(&jsz).unwrap_or_else(|| panic!("no meta leader: {jsz}")));
    }
    assert!(leaders.iter().all(|l| *l == leaders[0]), "{leaders:?}");
    create_r3_stream(base + 1, "SCRIPTED");

    // Started twice from one dir, or on taken ports: refused, the running cluster untouched.
    let again = script(
        "cluster-up.sh",
        &["--dir", d, "--base-port", &base_arg],
        &[],
    );
    assert_eq!(again.code, 1, "{}", again.show());
    assert!(again.stderr.contains("already running"), "{}", again.show());
    let other = TempDir::new("nats-scripts-other");
    let od = other.path().to_str().expect("utf-8 temp dir");
    let taken = script(
        "cluster-up.sh",
        &["--dir", od, "--base-port", &base_arg],
        &[],
    );
    assert_eq!(taken.code, 1, "{}", taken.show());
    assert!(
        taken.stderr.contains(&format!("{base} ")) && taken.stderr.contains("already in use"),
        "{}",
        taken.show()
    );
    for k in 0..3 {
        assert_nats_info(base + k, &format!("n{}", k + 1));
    }

    let down = script("cluster-down.sh", &["--dir", d], &[]);
    assert_eq!(down.code, 0, "{}", down.show());
    for name in ["n1", "n2", "n3"] {
        assert!(
            down.stdout.contains(&format!("{name} (pid ")),
            "{}",
            down.show()
        );
        assert!(!dir.path().join(format!("{name}.pid")).exists());
    }
    for port in &ports {
        refuses(*port).unwrap();
    }
    let twice = script("cluster-down.sh", &["--dir", d], &[]);
    assert_eq!(twice.code, 0, "{}", twice.show());
    assert!(twice.stdout.contains("nothing to stop"), "{}", twice.show());

    // Without nats-server: says how to install it.
    let missing = script(
        "cluster-up.sh",
        &["--dir", od, "--base-port", &base_arg],
        &[("VELOZ_NATS_SERVER", "/nonexistent/nats-server")],
    );
    assert_eq!(missing.code, 1, "{}", missing.show());
    assert!(missing.stderr.contains("make tools"), "{}", missing.show());
}

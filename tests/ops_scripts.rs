//! The operations scripts: `scripts/start.sh`, `status.sh` and `stop.sh` against a real
//! `veloz serve` on loopback (port 0, a temporary data directory); their pid-file, timeout and
//! NUMA decisions against stand-in processes and fake sysfs trees; and the systemd unit
//! example `scripts/veloz.service` (with `systemd-analyze verify` where it is installed).
//!
//! Tests that run the engine hold `common::serial()`: busy-polling engines never run side by
//! side. The shellcheck gate over these scripts is in `tests/tuning_scripts/`.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use veloz_core::Side;
use veloz_load::client::Client;
use veloz_wire::ExecType;

/// Script output reading, beside [`Run::show`] in tests/common.
impl Run {
    /// The value of an indented `  name: value` line of the output.
    fn field(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} line in:\n{}", self.show()))
    }
}

/// Settings of the caller's shell that would change what the scripts do.
const SCRIPT_ENV: [&str; 10] = [
    "VELOZ_CONFIG",
    "VELOZ_DATA",
    "VELOZ_BIN",
    "VELOZ_RUN_DIR",
    "VELOZ_START_TIMEOUT",
    "VELOZ_STOP_TIMEOUT",
    "VELOZ_NUMACTL",
    "VELOZ_SYSROOT",
    "VELOZ_METRICS",
    "VELOZ_CURL",
];

/// Run `scripts/NAME ARGS` with bash, with `env` set on a clean VELOZ_* environment.
fn script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Process::new("bash");
    cmd.arg(repo().join("scripts").join(name)).args(args);
    for var in SCRIPT_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
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

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A live process that is not a zombie.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(false)
}

/// SIGKILLs the engine named by a pid file when the test ends before stop.sh did its job.
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.0) {
            let _ = Process::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

/// The common test config with extra lines at the top of its [engine] table.
fn config_with_engine(dir: &Path, engine_extra: &str) -> PathBuf {
    let path = test_config(dir, "none", "");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("[engine]\n"), "{text}");
    fs::write(
        &path,
        text.replacen("[engine]\n", &format!("[engine]\n{engine_extra}\n"), 1),
    )
    .unwrap();
    path
}

#[test]
fn start_status_stop_a_real_engine_on_loopback() {
    let _serial = serial();
    let dir = TempDir::new("ops-life");
    let config = test_config(dir.path(), "none", "");
    let cfg = path_str(&config);
    let data = dir.path().join("data");
    let pid_file = data.join("veloz.pid");
    let _kill = KillOnDrop(pid_file.clone());
    let bin = veloz_bin();

    // A pid file left by a crash names a dead process: start.sh says so and replaces it.
    let mut gone = Process::new("true").spawn().unwrap();
    gone.wait().unwrap();
    fs::create_dir_all(&data).unwrap();
    fs::write(&pid_file, format!("{}\n", gone.id())).unwrap();

    let start = script("start.sh", &["--config", cfg, "--bin", bin], &[]);
    assert_eq!(start.code, 0, "{}", start.show());
    assert!(
        start.stderr.contains("removing the stale pid file"),
        "{}",
        start.show()
    );
    let pid: u32 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid));
    assert!(
        start.stdout.contains(&format!("veloz started (pid {pid})")),
        "{}",
        start.show()
    );
    let addr = start.field("listening:").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{}", start.show());
    assert!(start.field("cores:").contains("shard(s) on cores"));
    let log = data.join("veloz.log");
    assert_eq!(start.field("log:"), path_str(&log));

    // A second start while it runs is refused, and leaves the first engine and its pid file.
    let again = script("start.sh", &["--config", cfg, "--bin", bin], &[]);
    assert_ne!(again.code, 0, "{}", again.show());
    assert!(
        again
            .stderr
            .contains(&format!("veloz is already running (pid {pid}")),
        "{}",
        again.show()
    );
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert!(alive(pid));

    let status = script("status.sh", &["--config", cfg], &[]);
    assert_eq!(status.code, 0, "{}", status.show());
    assert!(
        status
            .stdout
            .starts_with(&format!("veloz is running (pid {pid}")),
        "{}",
        status.show()
    );
    assert_eq!(status.field("listening:"), addr);
    assert!(status.field("cores:").contains("shard(s) on cores"));

    if fs::read_to_string(&log)
        .unwrap()
        .contains("veloz: metrics on ")
    {
        // One session and one acknowledged order, so the metrics have something to show.
        let (mut client, _) = Client::logon(&addr, ALICE.0, ALICE.1).unwrap();
        client.send(&limit(1, 1, Side::Buy, 1_890_000, 1)).unwrap();
        let ack = client.next_report(Duration::from_secs(10)).unwrap();
        assert_eq!(ack.exec_type, ExecType::Accepted, "{ack:?}");
        // Through curl (when installed) and through bash's /dev/tcp.
        for curl in [None, Some("none")] {
            let env: Vec<(&str, &str)> = curl.map(|c| ("VELOZ_CURL", c)).into_iter().collect();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let status = script("status.sh", &["--config", cfg], &env);
                assert_eq!(status.code, 0, "{}", status.show());
                if status.stdout.contains("  sessions:  1 open (")
                    && status.stdout.contains("  latency:   ingress to ack p50 ")
                {
                    assert!(status.field("metrics:").contains("veloz_up 1"));
                    assert!(status.field("commands:").contains("new 1"));
                    // Quantiles from the shards' histogram buckets, and the largest value.
                    let latency = status.field("latency:");
                    assert!(
                        latency.contains(", max ")
                            && latency.ends_with("(1 commands; p from the histogram buckets)"),
                        "{}",
                        status.show()
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "status.sh ({curl:?}) shows no session and latency:\n{}",
                    status.show()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let _ = client.logout();
    } else {
        eprintln!(
            "note: this build of veloz prints no 'metrics on' line: sessions and latency not checked"
        );
    }

    // No offline replay of journals that are still being written: not run (3).
    let replay = script("replay.sh", &["--config", cfg, "--bin", bin], &[]);
    assert_eq!(replay.code, 3, "{}", replay.show());
    assert!(
        replay
            .stderr
            .contains(&format!("veloz (pid {pid}) is running on")),
        "{}",
        replay.show()
    );

    let stop = script("stop.sh", &["--config", cfg], &[]);
    assert_eq!(stop.code, 0, "{}", stop.show());
    assert!(
        stop.stdout
            .contains(&format!("veloz stopped cleanly (pid {pid})")),
        "{}",
        stop.show()
    );
    assert!(stop.stdout.contains("clean shutdown at sequence"));
    assert!(
        data.join("shutdown.json").is_file(),
        "no clean-shutdown marker"
    );
    assert!(!pid_file.exists(), "pid file left behind");
    assert!(!alive(pid), "engine still running after stop.sh");

    let status = script("status.sh", &["--config", cfg], &[]);
    assert_eq!(status.code, 3, "{}", status.show());
    assert!(status.stdout.contains("veloz is not running"));

    // Offline replay verifies the journals against the clean-shutdown marker ...
    let replay = script("replay.sh", &["--config", cfg, "--bin", bin], &[]);
    assert_eq!(replay.code, 0, "{}", replay.show());
    assert!(
        replay.stdout.contains("replayed and verified"),
        "{}",
        replay.show()
    );
    // ... and fails when the state the marker records is not what the journals rebuild.
    let marker = data.join("shutdown.json");
    let text = fs::read_to_string(&marker).unwrap();
    let hash_at = text
        .find("\"state_hash\": \"")
        .expect("state_hash in the marker")
        + 15;
    let mut tampered = text.clone();
    let flipped = if &text[hash_at..hash_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(hash_at..hash_at + 1, flipped);
    fs::write(&marker, tampered).unwrap();
    let replay = script("replay.sh", &["--config", cfg, "--bin", bin], &[]);
    assert_ne!(replay.code, 0, "{}", replay.show());
    assert!(replay.stderr.contains("FAILED"), "{}", replay.show());
    fs::write(&marker, text).unwrap();
    let stop = script("stop.sh", &["--config", cfg], &[]);
    assert_eq!(stop.code, 0, "{}", stop.show());
    assert!(stop.stdout.contains("not running"), "{}", stop.show());
}

#[test]
fn start_shows_the_log_when_the_engine_exits_before_listening() {
    let dir = TempDir::new("ops-early-exit");
    // Preflight refuses a core that is not online, before any shard starts.
    let config = config_with_engine(dir.path(), "cores = [4095]");
    let data = dir.path().join("data");
    let _kill = KillOnDrop(data.join("veloz.pid"));
    let run = script(
        "start.sh",
        &["--config", path_str(&config), "--bin", veloz_bin()],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(
        run.stderr
            .contains("veloz exited with status 1 before listening"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr.contains("4095"),
        "the engine's error: {}",
        run.show()
    );
    assert!(!data.join("veloz.pid").exists());
}

#[test]
fn start_refuses_a_config_the_engine_refuses_before_detaching() {
    let dir = TempDir::new("ops-bad-config");
    let config = dir.path().join("veloz.toml");
    fs::write(&config, "[engine]\ncorez = [1]\n").unwrap();
    let run = script(
        "start.sh",
        &["--config", path_str(&config), "--bin", veloz_bin()],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(run.stderr.contains("corez"), "{}", run.show());
    assert!(!dir.path().join("veloz-data").exists());
}

/// A fake sysfs with the given NUMA nodes and their CPU lists.
fn fake_numa(root: &Path, nodes: &[&str]) {
    for (n, cpus) in nodes.iter().enumerate() {
        let d = root.join(format!("sys/devices/system/node/node{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("cpulist"), format!("{cpus}\n")).unwrap();
    }
    fs::create_dir_all(root.join("sys/devices/system/cpu")).unwrap();
    fs::write(root.join("sys/devices/system/cpu/online"), "0-3\n").unwrap();
}

#[test]
fn start_binds_to_the_numa_node_of_the_shard_cores_only_when_there_is_one() {
    let dir = TempDir::new("ops-numa");
    let numactl = dir.path().join("numactl");
    fs::write(&numactl, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    fs::set_permissions(&numactl, fs::Permissions::from_mode(0o755)).unwrap();
    let two = dir.path().join("two-nodes");
    fake_numa(&two, &["0-1", "2-3"]);
    let one = dir.path().join("one-node");
    fake_numa(&one, &["0-3"]);
    let bin = veloz_bin();

    let dry = |cores: &str, root: &Path, numactl: &str| {
        let sub = TempDir::new("ops-numa-cfg");
        let config = config_with_engine(sub.path(), &format!("cores = [{cores}]"));
        let run = script(
            "start.sh",
            &["--dry-run", "--config", path_str(&config), "--bin", bin],
            &[
                ("VELOZ_SYSROOT", path_str(root)),
                ("VELOZ_NUMACTL", numactl),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.show());
        assert!(
            !sub.path().join("data").exists(),
            "a dry run writes nothing"
        );
        let numa = run.field("numa:").to_string();
        let command = run.field("command:").to_string();
        (numa, command)
    };
    let fake = path_str(&numactl);

    let (numa, command) = dry("2, 3", &two, fake);
    assert!(
        numa.starts_with("bound to node 1 (shard cores 2-3)"),
        "{numa}"
    );
    assert!(
        command.starts_with(&format!(
            "{fake} --cpunodebind=1 --membind=1 {bin} serve --data "
        )),
        "{command}"
    );

    let (numa, command) = dry("1, 2", &two, fake);
    assert!(
        numa.starts_with("not bound: shard cores 1-2 span NUMA nodes 0 1"),
        "{numa}"
    );
    assert!(command.starts_with(&format!("{bin} serve")), "{command}");

    let (numa, command) = dry("0, 1", &two, "none");
    assert!(numa.contains("numactl is not installed"), "{numa}");
    assert!(command.starts_with(&format!("{bin} serve")), "{command}");

    let (numa, command) = dry("2, 3", &one, fake);
    assert!(
        numa.starts_with("not bound: sysfs shows 1 NUMA node"),
        "{numa}"
    );
    assert!(command.starts_with(&format!("{bin} serve")), "{command}");
}

/// A stand-in process that is killed when the test ends, also when an assertion fails
/// first: a stand-in that ignores SIGTERM would otherwise loop forever after the test.
struct StandIn(Child);

impl std::ops::Deref for StandIn {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for StandIn {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stand-in for the engine: `bash FAKE serve` (stop.sh and status.sh look for `serve` in
/// the arguments), doing `on_term` when it gets SIGTERM.
fn stand_in(dir: &Path, on_term: &str) -> StandIn {
    let fake = dir.join("fake-veloz");
    fs::write(
        &fake,
        format!("trap '{on_term}' TERM\nwhile :; do sleep 0.05; done\n"),
    )
    .unwrap();
    let child = Process::new("bash")
        .arg(&fake)
        .arg("serve")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Until bash has read the script, SIGTERM would still kill it outright.
    std::thread::sleep(Duration::from_millis(300));
    StandIn(child)
}

#[test]
fn stop_sends_sigkill_only_after_the_timeout_and_says_so() {
    let dir = TempDir::new("ops-stop-kill");
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let mut child = stand_in(dir.path(), "");
    fs::write(data.join("veloz.pid"), child.id().to_string()).unwrap();
    let begun = Instant::now();
    let run = script(
        "stop.sh",
        &["--data", path_str(&data), "--timeout", "1"],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(
        begun.elapsed() >= Duration::from_secs(1),
        "SIGKILL before the timeout"
    );
    assert!(
        run.stderr
            .contains("did not exit within 1s of SIGTERM: sent SIGKILL"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr.contains("NOT a clean shutdown"),
        "{}",
        run.show()
    );
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(!data.join("veloz.pid").exists());
}

#[test]
fn stop_reports_an_exit_without_a_fresh_clean_shutdown_marker() {
    let dir = TempDir::new("ops-stop-nomarker");
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    // A marker from an earlier run does not count: it predates this SIGTERM.
    let marker = data.join("shutdown.json");
    fs::write(&marker, "{\"shards\": []}").unwrap();
    fs::File::options()
        .write(true)
        .open(&marker)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let mut child = stand_in(dir.path(), "exit 0");
    fs::write(data.join("veloz.pid"), child.id().to_string()).unwrap();
    let run = script("stop.sh", &["--data", path_str(&data)], &[]);
    assert_eq!(run.code, 1, "{}", run.show());
    assert!(
        run.stderr
            .contains("exited, but wrote no clean-shutdown marker"),
        "{}",
        run.show()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(!data.join("veloz.pid").exists());
}

#[test]
fn a_stale_pid_file_is_reported_by_status_and_removed_by_stop() {
    let dir = TempDir::new("ops-stale");
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let mut gone = Process::new("true").spawn().unwrap();
    gone.wait().unwrap();
    fs::write(data.join("veloz.pid"), format!("{}\n", gone.id())).unwrap();
    let d = path_str(&data);

    let status = script("status.sh", &["--data", d], &[]);
    assert_eq!(
        status.code,
        1,
        "LSB: dead, pid file remains\n{}",
        status.show()
    );
    assert!(status.stdout.contains("pid file"), "{}", status.show());
    let stop = script("stop.sh", &["--data", d], &[]);
    assert_eq!(stop.code, 0, "{}", stop.show());
    assert!(
        stop.stdout.contains("removed the stale pid file"),
        "{}",
        stop.show()
    );
    assert!(
        stop.stderr.contains("no clean-shutdown marker"),
        "{}",
        stop.show()
    );
    assert!(!data.join("veloz.pid").exists());
    let status = script("status.sh", &["--data", d], &[]);
    assert_eq!(status.code, 3, "{}", status.show());
}

#[test]
fn the_systemd_unit_matches_stop_sh_and_passes_systemd_analyze_verify() {
    let unit = fs::read_to_string(repo().join("scripts/veloz.service")).unwrap();
    let value = |key: &str| -> String {
        let found: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .collect();
        assert_eq!(found.len(), 1, "{key}= once in scripts/veloz.service");
        found[0].to_string()
    };
    assert_eq!(
        value("ExecStart"),
        "/usr/local/bin/veloz serve --config /etc/veloz/veloz.toml"
    );
    // Started once READY=1 comes (every shard recovered, ports open: tests/engine_notify.rs),
    // from the engine itself, with time for a long recovery.
    assert_eq!(value("Type"), "notify");
    assert_eq!(value("NotifyAccess"), "main");
    assert_eq!(value("TimeoutStartSec"), "30min");
    assert_eq!(value("LimitMEMLOCK"), "infinity");
    // The journal's sync thread may take SCHED_FIFO 1 as the unprivileged user.
    assert_eq!(value("LimitRTPRIO"), "1");
    assert_eq!(value("RestrictRealtime"), "no");
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(value("KillSignal"), "SIGTERM");
    assert_eq!(value("User"), "veloz");
    assert!(!value("CPUAffinity").is_empty());
    // systemd's stop timeout is stop.sh's: SIGKILL comes at the same point either way.
    let stop_sh = fs::read_to_string(repo().join("scripts/stop.sh")).unwrap();
    let default = stop_sh
        .split_once("${VELOZ_STOP_TIMEOUT:-")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(v, _)| v)
        .expect("stop.sh has timeout=${VELOZ_STOP_TIMEOUT:-N}");
    assert_eq!(value("TimeoutStopSec"), default);

    match Process::new("systemd-analyze").arg("--version").output() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            eprintln!(
                "SKIPPED: systemd-analyze is not installed (Debian package systemd): \
                 scripts/veloz.service not verified"
            );
            return;
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
        Ok(_) => {}
    }
    // verify checks that ExecStart is executable: point it at the binary just built.
    let dir = TempDir::new("ops-unit");
    let copy = dir.path().join("veloz.service");
    fs::write(&copy, unit.replace("/usr/local/bin/veloz", veloz_bin())).unwrap();
    let out = Process::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("veloz.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify scripts/veloz.service:\n{stderr}"
    );
}

#[test]
fn make_help_lists_the_operations_targets() {
    let out = Process::new("make")
        .args(["-s", "help"])
        .current_dir(repo())
        .output()
        .expect("run make");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for target in [
        "build",
        "run",
        "test",
        "bench",
        "bench-all",
        "fmt",
        "lint",
        "schema",
        "tune-check",
        "start",
        "stop",
        "status",
        "replay",
        "clean",
    ] {
        assert!(
            help.lines()
                .any(|l| l.split_whitespace().next() == Some(target)),
            "make help does not list {target}:\n{help}"
        );
    }
}

#[test]
fn readme_and_makefile_name_the_same_targets_with_the_same_words() {
    let makefile = fs::read_to_string(repo().join("Makefile")).unwrap();
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    // `target: deps ## what` lines: what `make help` prints.
    let documented: Vec<(&str, &str)> = makefile
        .lines()
        .filter_map(|l| {
            let (head, what) = l.split_once(" ## ")?;
            let (target, _) = head.split_once(':')?;
            Some((target, what.trim()))
        })
        .collect();
    assert!(documented.len() > 10, "{makefile}");
    let all_targets: Vec<&str> = makefile
        .lines()
        .filter(|l| !l.starts_with(['\t', '#', '.', ' ']))
        .filter_map(|l| l.split_once(':'))
        .filter(|(t, rest)| !t.contains(' ') && !rest.starts_with('='))
        .map(|(t, _)| t)
        .collect();
    // The README opens with the two commands a newcomer needs.
    assert!(
        readme.starts_with("# Veloz\n\n```sh\nmake run ") && readme.contains("\nmake test "),
        "README.md must start with `make run` and `make test`"
    );
    // Every documented target has its row in the README's table, in the Makefile's words.
    for (target, what) in &documented {
        let row = format!("| `make {target}` | {what} |");
        assert!(
            readme.lines().any(|l| l == row),
            "README.md lacks the row {row:?} (the Makefile's `## ` text)"
        );
    }
    // Every `make X` the README names (in backquotes, or starting a line of a shell block)
    // is a target of the Makefile; prose such as "make sure" is neither.
    let mut named = 0;
    for (i, _) in readme.match_indices("make ") {
        if !matches!(readme[..i].chars().last(), None | Some('`' | '\n')) {
            continue;
        }
        let target: String = readme[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        named += 1;
        assert!(
            all_targets.contains(&target.as_str()),
            "README.md names `make {target}`, which the Makefile does not have (it has {all_targets:?})"
        );
    }
    assert!(
        named >= documented.len(),
        "{named} `make X` found in README.md"
    );
}

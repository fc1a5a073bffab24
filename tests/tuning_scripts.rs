//! The host tuning scripts (`tuning/check.sh`, `apply.sh`, `restore.sh`) and the shellcheck
//! gate over every shell script of the project.
//!
//! The scripts read and write /sys, /proc and /etc through `VELOZ_SYSROOT`. Each test copies a
//! fake host from `tests/fixtures/tuning/` (`tuned/`: a host tuned for shard cores 2-3;
//! `untuned/`: a stock 4-CPU, 2-node host) into a temporary directory, runs the scripts
//! against it with bash, and compares their output line for line and the tree byte for byte.
//! Nothing on the real host is read or changed. `veloz.toml` there names shard cores 2 and 3.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture config, as the scripts see it from the repository root.
const CONFIG: &str = "tests/fixtures/tuning/veloz.toml";

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("veloz-tuning-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Every path under `root`, `root` included, parents before children.
fn walk_paths(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = fs::read_dir(&out[i])
                .expect("read dir")
                .map(|e| e.expect("dir entry").path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// Every directory and file under a root, with file contents.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
}

type Snapshot = BTreeMap<String, Node>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &path, out);
            } else {
                out.insert(rel, Node::File(fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = Snapshot::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// Paths whose presence or content differ between two snapshots.
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The report line of one check item ("PASS item: ..."), which must be there once.
    fn item(&self, item: &str) -> &str {
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                ["PASS ", "WARN ", "FAIL "].iter().any(|s| {
                    l.strip_prefix(s)
                        .is_some_and(|r| r.starts_with(&format!("{item}: ")))
                })
            })
            .collect();
        assert_eq!(found.len(), 1, "item {item:?} once in:\n{}", self.stdout);
        found[0]
    }
}

/// A fake host: a copy of a fixture tree in a temporary directory.
struct FakeHost {
    tmp: TempDir,
    root: PathBuf,
}

impl FakeHost {
    fn new(fixture: &str) -> FakeHost {
        let tmp = TempDir::new(fixture);
        let root = tmp.0.join("root");
        if fixture == "empty" {
            fs::create_dir_all(&root).expect("mkdir root");
        } else {
            copy_tree(&repo().join("tests/fixtures/tuning").join(fixture), &root);
        }
        FakeHost { tmp, root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }

    /// A file beside the root (not part of the fake host).
    fn outside(&self, name: &str, content: &str) -> String {
        let path = self.tmp.0.join(name);
        fs::write(&path, content).expect("write");
        path.to_string_lossy().into_owned()
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(&self.root)
    }

    /// A copy of what the scripts read from the checkout (`tuning/` and the fixture config,
    /// at the same relative paths) under this host's temporary tree, readable by every user.
    /// Panics, naming the folder, when the temporary tree itself cannot be entered by others
    /// (`TMPDIR` pointing into a private folder): that is the runner's setting, and a test
    /// that silently ran from the checkout instead would hide the problem.
    fn public_checkout(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let top = self.tmp.0.join("checkout");
        if !top.exists() {
            copy_tree(&repo().join("tuning"), &top.join("tuning"));
            let config = top.join(CONFIG);
            fs::create_dir_all(config.parent().expect("config parent")).expect("mkdir");
            fs::copy(repo().join(CONFIG), &config).expect("copy fixture config");
        }
        // The temporary tree is ours: open it whatever the umask was.
        for entry in [self.tmp.0.clone()].into_iter().chain(walk_paths(&top)) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).expect("chmod copy");
        }
        for dir in self.tmp.0.ancestors().skip(1) {
            let mode = fs::metadata(dir)
                .expect("stat temp dir")
                .permissions()
                .mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {:o}) cannot be entered by other users, so the scripts cannot run as \
                 another user from under it: point TMPDIR at a world-traversable folder",
                dir.display(),
                mode & 0o777
            );
        }
        top
    }

    fn state(&self) -> String {
        format!("{}/var/lib/veloz-tuning/saved.tsv", self.root.display())
    }

    /// Run tuning/SCRIPT with bash against this root, with only the VELOZ_* variables given.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_as(&[], script, args, env)
    }

    /// `run` under a command prefix (such as setpriv to drop root).
    ///
    /// With a prefix the scripts run as another user, who may not be able to enter the
    /// checkout (a clone in root's 0700 home or in a `mktemp -d` folder): they then run from
    /// a world-readable copy of `tuning/` and the fixture config in this host's temporary
    /// tree (see [`FakeHost::public_checkout`]), never from the checkout itself.
    fn run_as(&self, prefix: &[&str], script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let (mut cmd, top) = match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg("bash");
                (cmd, self.public_checkout())
            }
            None => (Command::new("bash"), repo().to_path_buf()),
        };
        cmd.arg(top.join("tuning").join(script))
            .args(args)
            .current_dir(&top)
            .env("LC_ALL", "C");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VELOZ_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("VELOZ_SYSROOT", &self.root);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run bash");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn assert_lines(actual: &str, expected: &str) {
    let a: Vec<&str> = actual.lines().collect();
    let e: Vec<&str> = expected.lines().collect();
    for (i, (a, e)) in a.iter().zip(&e).enumerate() {
        assert_eq!(a, e, "line {} differs; whole output:\n{actual}", i + 1);
    }
    assert_eq!(
        a.len(),
        e.len(),
        "line count differs; whole output:\n{actual}"
    );
}

// ---- shellcheck ---------------------------------------------------------------------------

fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name == "__pycache__" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            shell_scripts(&path, out);
        } else if name.ends_with(".sh") {
            out.push(path.strip_prefix(repo()).expect("in repo").to_path_buf());
        }
    }
}

#[test]
fn every_shell_script_is_shellcheck_clean() {
    let mut scripts = Vec::new();
    shell_scripts(&repo().join("tuning"), &mut scripts);
    shell_scripts(&repo().join("scripts"), &mut scripts);
    scripts.sort();
    for must in ["tuning/check.sh", "tuning/apply.sh", "tuning/restore.sh"] {
        assert!(
            scripts.iter().any(|s| s == Path::new(must)),
            "{must} not found"
        );
    }
    let out = match Command::new("shellcheck")
        .arg("--external-sources")
        .args(&scripts)
        .current_dir(repo())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "shellcheck is not installed: run `make tools` (it installs the Debian package shellcheck)"
        ),
        Err(e) => panic!("cannot run shellcheck: {e}"),
    };
    assert!(
        out.status.success(),
        "shellcheck found problems in {scripts:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- check.sh -----------------------------------------------------------------------------

const TUNED_CHECK: &str = "\
# veloz tuning check: shard cores 2-3 ([engine] cores in tests/fixtures/tuning/veloz.toml); online CPUs 0-3
PASS cores: shard cores 2-3 online; CPUs 0-1 left for the OS and IRQs
PASS kernel: 6.8.0-45-generic (glommio needs 5.8+)
PASS io_uring: enabled (kernel.io_uring_disabled = 0)
PASS memlock: unlimited
PASS governor cpu2: performance
PASS governor cpu3: performance
PASS boost: off (/sys/devices/system/cpu/cpufreq/boost = 0)
PASS c-states: no idle state with an exit latency above 2 us enabled on shard cores (driver intel_idle)
PASS isolcpus: shard cores 2-3 covered (isolcpus: 2-3)
PASS nohz_full: shard cores 2-3 covered (nohz_full: 2-3)
PASS rcu_nocbs: shard cores 2-3 covered (rcu_nocbs: 2-3)
PASS irqbalance: not running
PASS irq affinity: none of 5 IRQs may run on shard cores
PASS numa cpu: shard cores 2-3 on node 1
PASS numa nic: eth0 on node 1 (shard cores on node 1)
PASS thp: enabled=madvise defrag=madvise
PASS hugepages: none reserved (vm.nr_hugepages = 0); Veloz maps no hugetlbfs pages
PASS swap: none active
PASS vm.swappiness: 1
PASS kernel.numa_balancing: 0
PASS clocksource: tsc
21 PASS, 0 WARN, 0 FAIL
";

#[test]
fn check_passes_everything_on_a_tuned_host() {
    let host = FakeHost::new("tuned");
    let run = host.run("check.sh", &["--config", CONFIG], &[]);
    assert_lines(&run.stdout, TUNED_CHECK);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
}

const UNTUNED_CHECK: &str = "\
# veloz tuning check: shard cores 2-3 ([engine] cores in tests/fixtures/tuning/veloz.toml); online CPUs 0-3
PASS cores: shard cores 2-3 online; CPUs 0-1 left for the OS and IRQs
PASS kernel: 6.6.15-amd64 (glommio needs 5.8+)
FAIL io_uring: disabled for every process (kernel.io_uring_disabled = 2): glommio cannot start -> fix: sudo sysctl -w kernel.io_uring_disabled=0 (or tuning/apply.sh --apply)
FAIL memlock: 64 KiB is below the 512 KiB glommio needs: executor creation fails (MemLockLimit) -> fix: tuning/apply.sh --apply (writes /etc/security/limits.d/veloz.conf; log in again), or LimitMEMLOCK=infinity in the systemd unit
WARN governor cpu2: powersave (the clock follows the load) -> fix: echo performance | sudo tee /sys/devices/system/cpu/cpu2/cpufreq/scaling_governor (or tuning/apply.sh --apply)
WARN governor cpu3: powersave (the clock follows the load) -> fix: echo performance | sudo tee /sys/devices/system/cpu/cpu3/cpufreq/scaling_governor (or tuning/apply.sh --apply)
WARN boost: on (/sys/devices/system/cpu/cpufreq/boost = 1): the clock varies with load and temperature, latency with it -> fix: echo 0 | sudo tee /sys/devices/system/cpu/cpufreq/boost (steadier latency; or keep boost knowingly for a lower median)
WARN c-states: C1E (10 us), C6 (133 us) enabled on shard cores 2-3 (driver intel_idle): waking up costs that much -> fix: kernel parameters intel_idle.max_cstate=1 processor.max_cstate=1, or at run time echo 1 | sudo tee /sys/devices/system/cpu/cpuN/cpuidle/stateK/disable for each deep state
WARN isolcpus: shard cores 2-3 not covered (isolcpus: none) -> fix: kernel parameter isolcpus=managed_irq,domain,2-3 (tuning/apply.sh prints the whole line)
WARN nohz_full: shard cores 2-3 not covered (nohz_full: none) -> fix: kernel parameter nohz_full=2-3 (tuning/apply.sh prints the whole line)
WARN rcu_nocbs: shard cores 2-3 not covered (rcu_nocbs: none) -> fix: kernel parameter rcu_nocbs=2-3 (tuning/apply.sh prints the whole line)
WARN irqbalance: running (pid 812): it moves IRQs back onto shard cores -> fix: sudo systemctl disable --now irqbalance (or IRQBALANCE_BANNED_CPULIST=2-3 in /etc/default/irqbalance)
WARN irq affinity: 4 of 5 IRQs (0,1,24,25) and the default affinity for new IRQs (f) may run on shard cores 2-3 -> fix: tuning/apply.sh --apply (moves them to CPUs 0-1), or echo 0-1 | sudo tee /proc/irq/N/smp_affinity_list
WARN numa cpu: shard cores span node 0 (cores 2), node 1 (cores 3): rings and memory cross nodes -> fix: choose [engine] cores from one node, the NIC's (see /sys/devices/system/node/nodeN/cpulist)
PASS numa nic: eth0 on node 1 (shard cores on node 0,1)
WARN thp: enabled=always defrag=always: khugepaged collapses and fault-time compaction stall the engine -> fix: echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag (or tuning/apply.sh --apply)
PASS hugepages: none reserved (vm.nr_hugepages = 0); Veloz maps no hugetlbfs pages
WARN swap: active: /dev/sda3 (8388604 kB): engine memory may be paged out -> fix: sudo swapoff -a, and remove swap from /etc/fstab
WARN vm.swappiness: 60: the kernel swaps anonymous memory readily -> fix: sudo sysctl -w vm.swappiness=1 (or tuning/apply.sh --apply)
WARN kernel.numa_balancing: 1: the kernel unmaps pages to sample accesses, faults land on shard cores -> fix: sudo sysctl -w kernel.numa_balancing=0 (or tuning/apply.sh --apply)
WARN clocksource: hpet: timestamps cost more than with the TSC -> fix: echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource; kernel parameter clocksource=tsc to keep it
4 PASS, 15 WARN, 2 FAIL
";

#[test]
fn check_reports_every_problem_of_an_untuned_host_and_fails() {
    let host = FakeHost::new("untuned");
    let before = host.snapshot();
    let run = host.run("check.sh", &["--config", CONFIG], &[]);
    assert_lines(&run.stdout, UNTUNED_CHECK);
    assert_eq!(run.code, 1, "a FAIL line means exit 1");
    assert_eq!(run.stderr, "");
    assert_eq!(host.snapshot(), before, "check.sh must not write");
}

#[test]
fn check_in_a_bare_container_warns_not_available_and_never_crashes() {
    let host = FakeHost::new("empty");
    let run = host.run("check.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("# veloz tuning check: shard cores unknown"));
    let items = &lines[1..lines.len() - 1];
    assert_eq!(items.len(), 20, "{}", run.stdout);
    for line in items {
        assert!(
            line.starts_with("WARN ") && line.contains("not available"),
            "{line}"
        );
    }
    assert_eq!(lines[lines.len() - 1], "0 PASS, 20 WARN, 0 FAIL");

    // A container that shows /proc/sys but hides sysfs: still no crash and no FAIL.
    let host = FakeHost::new("empty");
    host.write("proc/sys/kernel/osrelease", "6.8.0\n");
    host.write("proc/sys/kernel/io_uring_disabled", "0\n");
    let run = host.run(
        "check.sh",
        &["--cores", "0-1"],
        &[("VELOZ_MEMLOCK_KB", "unlimited")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.item("governor"),
        "WARN governor: not available (no cpufreq on shard cores 0-1: a VM, a container or no cpufreq driver)"
    );
    assert_eq!(
        run.item("kernel.numa_balancing"),
        "PASS kernel.numa_balancing: not present (kernel without automatic NUMA balancing)"
    );
}

#[test]
fn check_fails_only_what_stops_the_engine() {
    let host = FakeHost::new("tuned");
    let check = |env: &[(&str, &str)]| host.run("check.sh", &["--config", CONFIG], env);

    let run = check(&[("VELOZ_KERNEL_RELEASE", "5.4.0-150-generic")]);
    assert_eq!(
        run.item("kernel"),
        "FAIL kernel: 5.4.0-150-generic is older than 5.8: glommio needs 5.8+ for its io_uring operations -> fix: boot a kernel 5.8 or newer"
    );
    assert_eq!(run.code, 1);

    // memlock: the 512 KiB floor fails; a short limit only loses buffer registration
    // (32 MiB per shard, two shards here) unless the process has CAP_IPC_LOCK.
    let fix = " -> fix: tuning/apply.sh --apply (writes /etc/security/limits.d/veloz.conf; log in again), or LimitMEMLOCK=infinity in the systemd unit";
    let cases = [
        ("511", "1001", 1, format!("FAIL memlock: 511 KiB is below the 512 KiB glommio needs: executor creation fails (MemLockLimit){fix}")),
        ("511", "0", 1, format!("FAIL memlock: 511 KiB is below the 512 KiB glommio needs: executor creation fails (MemLockLimit){fix}")),
        ("8192", "1001", 0, format!("WARN memlock: 8192 KiB is below ~65536 KiB (32 MiB per shard, 2 shards): glommio skips registering its io_uring buffers{fix}")),
        ("8192", "0", 0, "PASS memlock: 8192 KiB; with CAP_IPC_LOCK (root) locked memory is not charged to the limit".to_string()),
        ("65536", "1001", 0, "PASS memlock: 65536 KiB (>= 32 MiB per shard)".to_string()),
        ("unlimited", "1001", 0, "PASS memlock: unlimited".to_string()),
    ];
    for (kb, euid, code, line) in cases {
        let run = check(&[("VELOZ_MEMLOCK_KB", kb), ("VELOZ_EUID", euid)]);
        assert_eq!(run.item("memlock"), line, "memlock {kb} KiB, euid {euid}");
        assert_eq!(run.code, code, "memlock {kb} KiB, euid {euid}");
    }

    // io_uring_disabled = 1: root may use it, a plain user may not.
    host.write("proc/sys/kernel/io_uring_disabled", "1\n");
    let run = check(&[("VELOZ_EUID", "1001")]);
    assert_eq!(
        run.item("io_uring"),
        "FAIL io_uring: root and group -1 only (kernel.io_uring_disabled = 1): uid 1001 cannot start glommio -> fix: sudo sysctl -w kernel.io_uring_disabled=0 (or tuning/apply.sh --apply)"
    );
    assert_eq!(run.code, 1);
    let run = check(&[("VELOZ_EUID", "0")]);
    assert!(run
        .item("io_uring")
        .starts_with("WARN io_uring: root and group -1 only"));
    assert_eq!(run.code, 0);

    // Kernels before 6.6 have no switch at all: io_uring is on.
    fs::remove_file(host.path("proc/sys/kernel/io_uring_disabled")).expect("rm");
    let run = check(&[("VELOZ_KERNEL_RELEASE", "5.15.0-105-generic")]);
    assert_eq!(
        run.item("io_uring"),
        "PASS io_uring: enabled (kernel 5.15.0-105-generic has no kernel.io_uring_disabled switch)"
    );
    assert_eq!(run.code, 0);
}

#[test]
fn shard_cores_come_from_cores_then_config_then_every_online_cpu() {
    let host = FakeHost::new("tuned");

    // --cores wins over the config.
    let run = host.run("check.sh", &["--config", CONFIG, "--cores", "1,3"], &[]);
    assert!(run
        .stdout
        .starts_with("# veloz tuning check: shard cores 1,3 (--cores); online CPUs 0-3\n"));
    assert_eq!(run.item("governor cpu1"), "PASS governor cpu1: performance");
    assert_eq!(run.item("governor cpu3"), "PASS governor cpu3: performance");
    assert!(run
        .item("isolcpus")
        .starts_with("WARN isolcpus: shard cores 1 not covered"));

    // A multi-line array in [engine], with comments and other tables around it.
    let config = host.outside(
        "multi.toml",
        "[gateway]\ncores = [3]\n\n[engine] # where the shards run\ncores = [\n  0, # first\n  1,\n]\ndata_dir = \"d\"\n\n[[instruments]]\nid = 1\n",
    );
    let run = host.run("check.sh", &["--config", &config], &[]);
    assert!(
        run.stdout.starts_with(&format!(
            "# veloz tuning check: shard cores 0-1 ([engine] cores in {config}); online CPUs 0-3\n"
        )),
        "{}",
        run.stdout
    );

    // `cores = []`, no [engine] table, or no config: every online CPU, and a warning that
    // none is left for the OS.
    for toml in ["[engine]\ncores = []\n", "[gateway]\nlisten = \"x\"\n"] {
        let config = host.outside("all.toml", toml);
        for args in [vec!["--config", config.as_str()], vec![]] {
            let run = host.run("check.sh", &args, &[]);
            assert!(
                run.stdout.starts_with("# veloz tuning check: shard cores 0-3 (every online CPU: [engine] cores not set); online CPUs 0-3\n"),
                "{}",
                run.stdout
            );
            assert_eq!(
                run.item("cores"),
                "WARN cores: every online CPU (0-3) is a shard core: none is left for the OS, IRQs and the control thread -> fix: leave at least one online CPU out of [engine] cores (or --cores) for the OS, IRQs and the control thread"
            );
        }
    }

    // A core that is not online cannot take a shard.
    let run = host.run("check.sh", &["--cores", "2-4"], &[]);
    assert_eq!(
        run.item("cores"),
        "FAIL cores: shard cores 4 are not online (online: 0-3): executors cannot be pinned there -> fix: set [engine] cores (or --cores) to online CPUs"
    );
    assert_eq!(run.code, 1);

    // Bad arguments are refused with a message, not misread.
    let run = host.run("check.sh", &["--cores", "two"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--cores 'two' is not a CPU list"),
        "{}",
        run.stderr
    );
    let run = host.run("check.sh", &["--config", "/nonexistent/veloz.toml"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("config file not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_warns_when_the_nic_is_on_another_node_than_the_shards() {
    let host = FakeHost::new("tuned");
    let run = host.run("check.sh", &["--cores", "0-1"], &[]);
    assert_eq!(
        run.item("numa cpu"),
        "PASS numa cpu: shard cores 0-1 on node 0"
    );
    assert_eq!(
        run.item("numa nic"),
        "WARN numa nic: eth0 on node 1, shard cores on node 0: packets cross the interconnect -> fix: choose [engine] cores from node 1 (/sys/devices/system/node/node1/cpulist) or a NIC on node 0; --nic IFACE checks only the trading NIC"
    );
    let run = host.run("check.sh", &["--cores", "0-1", "--nic", "eth9"], &[]);
    assert_eq!(
        run.item("numa nic"),
        "WARN numa nic: not available (no eth9 with /sys/class/net/*/device/numa_node)"
    );
}

// ---- apply.sh and restore.sh --------------------------------------------------------------

const APPLY_CHANGES: &str = "\
set /sys/devices/system/cpu/cpu2/cpufreq/scaling_governor powersave -> performance
set /sys/devices/system/cpu/cpu3/cpufreq/scaling_governor powersave -> performance
set /proc/irq/0/smp_affinity_list 0-3 -> 0-1
set /proc/irq/1/smp_affinity_list 0-3 -> 0-1
set /proc/irq/24/smp_affinity_list 3 -> 0-1
set /proc/irq/25/smp_affinity_list 1-2 -> 1
set /proc/irq/default_smp_affinity f -> 3
set /sys/kernel/mm/transparent_hugepage/enabled always -> madvise
set /sys/kernel/mm/transparent_hugepage/defrag always -> madvise
set /proc/sys/kernel/io_uring_disabled 2 -> 0
set /proc/sys/vm/swappiness 60 -> 1
set /proc/sys/kernel/numa_balancing 1 -> 0
";

const APPLY_TAIL: &str = "\
note: irqbalance is running and will move IRQs back onto the shard cores: sudo systemctl disable --now irqbalance
kernel command line for isolation (not applied: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot):
  isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1
";

#[test]
fn apply_dry_run_prints_the_changes_and_writes_nothing() {
    let host = FakeHost::new("untuned");
    let before = host.snapshot();
    let run = host.run("apply.sh", &["--config", CONFIG], &[]);
    let expected = format!(
        "# veloz tuning apply: dry run, nothing is written (add --apply to make these changes); shard cores 2-3 ([engine] cores in {CONFIG})\n{}would create /etc/security/limits.d/veloz.conf: veloz soft/hard memlock unlimited\n{APPLY_TAIL}",
        APPLY_CHANGES.replace("set /", "would set /")
    );
    assert_lines(&run.stdout, &expected);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(host.snapshot(), before, "a dry run must not write anything");
}

#[test]
fn apply_writes_exactly_the_expected_values_and_restore_puts_the_tree_back() {
    let host = FakeHost::new("untuned");
    let before = host.snapshot();
    let state = host.state();

    let run = host.run("apply.sh", &["--config", CONFIG, "--apply"], &[]);
    let expected = format!(
        "# veloz tuning apply: shard cores 2-3 ([engine] cores in {CONFIG}); previous values go to {state}\n{APPLY_CHANGES}created /etc/security/limits.d/veloz.conf: veloz soft/hard memlock unlimited (effective at veloz's next login)\nprevious values saved in {state}; tuning/restore.sh puts them back\n{APPLY_TAIL}"
    );
    assert_lines(&run.stdout, &expected);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "");

    // Exactly these files changed or appeared, with exactly these contents.
    let written = [
        ("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor", "performance\n"),
        ("sys/devices/system/cpu/cpu3/cpufreq/scaling_governor", "performance\n"),
        ("proc/irq/0/smp_affinity_list", "0-1\n"),
        ("proc/irq/1/smp_affinity_list", "0-1\n"),
        ("proc/irq/24/smp_affinity_list", "0-1\n"),
        ("proc/irq/25/smp_affinity_list", "1\n"),
        ("proc/irq/default_smp_affinity", "3\n"),
        ("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n"),
        ("sys/kernel/mm/transparent_hugepage/defrag", "always defer defer+madvise [madvise] never\n"),
        ("proc/sys/kernel/io_uring_disabled", "0\n"),
        ("proc/sys/vm/swappiness", "1\n"),
        ("proc/sys/kernel/numa_balancing", "0\n"),
        (
            "etc/security/limits.d/veloz.conf",
            "# Written by Veloz tuning/apply.sh; tuning/restore.sh removes it.\n\
             # glommio locks memory for its io_uring buffers: below 512 KiB executor creation fails, and a\n\
             # short limit makes it skip buffer registration. pam_limits applies this at the next login;\n\
             # a systemd service needs LimitMEMLOCK=infinity in its unit instead.\n\
             veloz soft memlock unlimited\n\
             veloz hard memlock unlimited\n",
        ),
    ];
    for (rel, content) in written {
        assert_eq!(host.read(rel), content, "{rel}");
    }
    let after = host.snapshot();
    let mut expected_changes: Vec<String> = written.iter().map(|(p, _)| p.to_string()).collect();
    expected_changes.extend(
        [
            "etc",
            "etc/security",
            "etc/security/limits.d",
            "var",
            "var/lib",
            "var/lib/veloz-tuning",
            "var/lib/veloz-tuning/saved.tsv",
        ]
        .map(String::from),
    );
    expected_changes.sort();
    assert_eq!(changed(&before, &after), expected_changes);

    // The saved state holds every previous value.
    let saved = host.read("var/lib/veloz-tuning/saved.tsv");
    for line in [
        "value\t/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor\tpowersave",
        "value\t/proc/irq/25/smp_affinity_list\t1-2",
        "value\t/proc/irq/default_smp_affinity\tf",
        "value\t/sys/kernel/mm/transparent_hugepage/enabled\talways",
        "value\t/proc/sys/vm/swappiness\t60",
        "created\t/etc/security/limits.d/veloz.conf",
    ] {
        assert!(
            saved.lines().any(|l| l == line),
            "{line:?} not in:\n{saved}"
        );
    }

    // check.sh now passes what apply tunes at run time.
    let run = host.run("check.sh", &["--config", CONFIG], &[]);
    for item in [
        "io_uring",
        "governor cpu2",
        "governor cpu3",
        "irq affinity",
        "thp",
        "vm.swappiness",
        "kernel.numa_balancing",
    ] {
        assert!(run.item(item).starts_with("PASS "), "{}", run.item(item));
    }

    // Running it again changes nothing.
    let run = host.run("apply.sh", &["--config", CONFIG, "--apply"], &[]);
    assert!(run
        .stdout
        .contains("\nnothing to change: the runtime settings are already tuned\n"));
    assert_eq!(host.snapshot(), after);

    // restore.sh returns the tree byte for byte, created files and directories included.
    let run = host.run("restore.sh", &["--dry-run"], &[]);
    assert!(run
        .stdout
        .contains("would restore /proc/sys/vm/swappiness 1 -> 60\n"));
    assert_eq!(host.snapshot(), after, "a dry run must not write anything");
    let run = host.run("restore.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr, "");
    let expected = format!(
        "\
removed /etc/security/limits.d/veloz.conf
removed directory /etc/security/limits.d
removed directory /etc/security
removed directory /etc
restored /proc/sys/kernel/numa_balancing 0 -> 1
restored /proc/sys/vm/swappiness 1 -> 60
restored /proc/sys/kernel/io_uring_disabled 0 -> 2
restored /sys/kernel/mm/transparent_hugepage/defrag madvise -> always
restored /sys/kernel/mm/transparent_hugepage/enabled madvise -> always
restored /proc/irq/default_smp_affinity 3 -> f
restored /proc/irq/25/smp_affinity_list 1 -> 1-2
restored /proc/irq/24/smp_affinity_list 0-1 -> 3
restored /proc/irq/1/smp_affinity_list 0-1 -> 0-3
restored /proc/irq/0/smp_affinity_list 0-1 -> 0-3
restored /sys/devices/system/cpu/cpu3/cpufreq/scaling_governor performance -> powersave
restored /sys/devices/system/cpu/cpu2/cpufreq/scaling_governor performance -> powersave
restored everything; removed the saved state {state}
"
    );
    assert_lines(&run.stdout, &expected);
    assert_eq!(changed(&before, &host.snapshot()), Vec::<String>::new());

    let run = host.run("restore.sh", &[], &[]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.starts_with("nothing to restore"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_second_apply_keeps_the_values_from_before_the_first() {
    let host = FakeHost::new("untuned");
    let before = host.snapshot();
    // State outside the fake root, chosen with --state.
    let state_dir = host.tmp.0.join("state").to_string_lossy().into_owned();

    let run = host.run(
        "apply.sh",
        &["--config", CONFIG, "--apply", "--state", &state_dir],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Someone changes a value by hand; apply runs again and fixes only that.
    host.write("proc/sys/vm/swappiness", "30\n");
    let run = host.run(
        "apply.sh",
        &["--config", CONFIG, "--apply", "--state", &state_dir],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sets: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("set "))
        .collect();
    assert_eq!(sets, ["set /proc/sys/vm/swappiness 30 -> 1"]);

    let run = host.run("restore.sh", &[], &[("VELOZ_STATE_DIR", &state_dir)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run
        .stdout
        .contains("restored /proc/sys/vm/swappiness 1 -> 60\n"));
    assert_eq!(changed(&before, &host.snapshot()), Vec::<String>::new());
    assert!(
        !Path::new(&state_dir).exists(),
        "the state directory it created is removed"
    );
}

#[test]
fn apply_replaces_a_different_limits_file_and_restore_brings_it_back() {
    let host = FakeHost::new("untuned");
    host.write(
        "etc/security/limits.d/veloz.conf",
        "veloz hard memlock 1024\n",
    );
    let before = host.snapshot();

    let run = host.run("apply.sh", &["--config", CONFIG, "--user", "trader"], &[]);
    assert!(run.stdout.contains(
        "\nwould replace /etc/security/limits.d/veloz.conf (a backup is saved) with: trader soft/hard memlock unlimited\n"
    ));
    let run = host.run(
        "apply.sh",
        &["--config", CONFIG, "--user", "trader", "--apply"],
        &[],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let limits = host.read("etc/security/limits.d/veloz.conf");
    assert!(limits.ends_with("\ntrader soft memlock unlimited\ntrader hard memlock unlimited\n"));

    let run = host.run("restore.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(changed(&before, &host.snapshot()), Vec::<String>::new());
}

#[test]
fn apply_on_a_tuned_host_changes_nothing() {
    let host = FakeHost::new("tuned");
    let before = host.snapshot();
    let run = host.run("apply.sh", &["--config", CONFIG, "--apply"], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run
        .stdout
        .contains("\nnothing to change: the runtime settings are already tuned\n"));
    assert!(!run.stdout.contains("irqbalance"));
    assert_eq!(changed(&before, &host.snapshot()), Vec::<String>::new());
}

#[test]
fn apply_leaves_irqs_alone_when_every_cpu_is_a_shard_core() {
    let host = FakeHost::new("untuned");
    let run = host.run("apply.sh", &["--cores", "0-3"], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("smp_affinity"), "{}", run.stdout);
    for line in [
        "skip IRQ affinity: every online CPU is a shard core; leave at least one out of [engine] cores for IRQs",
        "no kernel command line for isolation: every online CPU is a shard core; leave at least one out of [engine] cores for the OS first",
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "{line:?} not in:\n{}", run.stdout);
    }
    // Cores that are not online are refused before anything is planned.
    let run = host.run("apply.sh", &["--cores", "2-5", "--apply"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("shard cores 4-5 are not online"),
        "{}",
        run.stderr
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn apply_skips_irqs_the_kernel_will_not_move_and_reports_failed_writes() {
    use std::os::unix::fs::PermissionsExt;
    let host = FakeHost::new("untuned");
    // Read-only files stand for what the kernel refuses; root writes them anyway, so as root
    // the scripts run as nobody.
    let mut prefix: Vec<&str> = Vec::new();
    if is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("skipped: running as root and setpriv is missing");
            return;
        }
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&host.root)
            .status()
            .expect("chown");
        assert!(chown.success());
        prefix = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ];
    }
    for rel in ["proc/irq/24/smp_affinity_list", "proc/sys/vm/swappiness"] {
        fs::set_permissions(host.path(rel), fs::Permissions::from_mode(0o444)).expect("chmod");
    }
    let before = host.snapshot();

    let run = host.run_as(&prefix, "apply.sh", &["--config", CONFIG, "--apply"], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let skip = "skip /proc/irq/24/smp_affinity_list (stays 3): the kernel refused it (Permission denied): a per-CPU or managed interrupt";
    assert!(run.stdout.lines().any(|l| l == skip), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("\nset /proc/irq/25/smp_affinity_list 1-2 -> 1\n"));
    assert!(
        run.stderr
            .contains("FAILED to set /proc/sys/vm/swappiness 60 -> 1: Permission denied\n"),
        "{}",
        run.stderr
    );
    let saved = host.read("var/lib/veloz-tuning/saved.tsv");
    assert!(
        !saved.contains("irq/24/") && !saved.contains("swappiness"),
        "{saved}"
    );

    let run = host.run_as(&prefix, "restore.sh", &[], &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(changed(&before, &host.snapshot()), Vec::<String>::new());
}

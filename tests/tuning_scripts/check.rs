//! `tuning/check.sh`: the report on a tuned host, an untuned one and a bare container, what
//! fails it, and where the shard cores and the NIC's node come from.

use super::*;

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

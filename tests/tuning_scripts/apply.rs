//! `tuning/apply.sh` and `tuning/restore.sh`: the dry run, the values written, the saved
//! state, and that restore puts the tree back byte for byte.

use super::*;

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

#!/usr/bin/env bash
# tuning/apply.sh [--config FILE] [--cores LIST] [--user NAME] [--state DIR] [--apply]
#
# Tunes this host for Veloz at run time. Without --apply it is a dry run: it prints every
# change it would make ("would set <path> <old> -> <new>") and writes nothing at all.
# With --apply (as root) it saves each previous value to <state>/saved.tsv first, then:
#   - scaling_governor = performance on the shard cores;
#   - IRQ affinity away from the shard cores: every /proc/irq/N/smp_affinity_list that
#     includes one (kept on its other CPUs, else moved to all non-shard CPUs; IRQs the kernel
#     will not move are reported and skipped), and /proc/irq/default_smp_affinity for new IRQs;
#   - transparent huge pages enabled/defrag "always" -> "madvise". Not "never": with madvise
#     only memory that asks for huge pages (MADV_HUGEPAGE) gets them and pays for compaction.
#     Veloz asks for none, so khugepaged never collapses its pages (no compaction stalls, no
#     TLB-shootdown IPIs to shard cores), while other software on the host that opts in keeps
#     working. Values already madvise or never are left alone;
#   - sysctls: kernel.io_uring_disabled = 0 (when it is set: glommio needs io_uring),
#     vm.swappiness = 1 (when above 10), kernel.numa_balancing = 0 (its sampling unmaps pages
#     and faults them back in on the shard cores). kernel.sched_rt_runtime_us is left alone:
#     shards run as normal (SCHED_OTHER) threads, so RT throttling never applies to them, and
#     removing it would only let a runaway RT task starve the kernel's per-CPU work;
#   - memlock unlimited for the service user: /etc/security/limits.d/veloz.conf.
# It never touches the bootloader: it prints the kernel command line to add for isolation
# (isolcpus, nohz_full, rcu_nocbs, irqaffinity). Frequency boost and C-states are left to the
# operator (tuning/check.sh prints the commands). Running it again is safe: values saved by an
# earlier run are kept, so tuning/restore.sh always returns to the state before the first run.
# Runtime values do not survive a reboot; run it again after one.
#
# Shard cores: --cores LIST, else [engine] cores in --config FILE, else every online CPU.
# --user NAME  the service user for the memlock limit (default $VELOZ_USER or veloz)
# --state DIR  where previous values are saved (default $VELOZ_STATE_DIR or
#              <root>/var/lib/veloz-tuning)
#
# Environment (for tests; see tuning/lib.sh): VELOZ_SYSROOT (root prefix for /sys, /proc and
# /etc, default the real host), VELOZ_IRQBALANCE, VELOZ_EUID, VELOZ_STATE_DIR, VELOZ_USER.
# Exit status: 0 when everything was applied (or the dry run ran), 1 when a write failed,
# 2 on bad arguments.
set -euo pipefail

PROG=apply.sh
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

config="" cores_arg="" apply=0 user=${VELOZ_USER:-veloz} STATE_DIR_ARG=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --config=*) config=${1#*=}; shift ;;
    --cores) cores_arg=${2:?--cores needs a CPU list}; shift 2 ;;
    --cores=*) cores_arg=${1#*=}; shift ;;
    --user) user=${2:?--user needs a name}; shift 2 ;;
    --user=*) user=${1#*=}; shift ;;
    --state) STATE_DIR_ARG=${2:?--state needs a directory}; shift 2 ;;
    --state=*) STATE_DIR_ARG=${1#*=}; shift ;;
    --apply) apply=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $user =~ ^[a-z_][a-z0-9_-]*[$]?$ ]] || die "--user '$user' is not a valid user name"

resolve_cores "$cores_arg" "$config"
[ -n "$SHARD_CORES" ] || die "no shard cores known: pass --cores LIST (no /sys/devices/system/cpu/online)"
if [ -n "$ONLINE_CPUS" ]; then
  offline=$(cpuset_minus "$SHARD_CORES" "$ONLINE_CPUS")
  [ -z "$offline" ] || die "shard cores $(cpulist_compress "$offline") are not online (online: $(cpulist_compress "$ONLINE_CPUS")); fix [engine] cores or --cores"
fi
if [ "$apply" = 1 ] && ! fake_root && [ "$(effective_uid)" != 0 ]; then
  die "--apply changes kernel settings and needs root: sudo $0 --apply"
fi

read -ra SHARDS <<<"$SHARD_CORES"
SHARD_LIST=$(cpulist_compress "$SHARD_CORES")
HOUSEKEEPING=$(housekeeping_cpus)
HK_LIST=$(cpulist_compress "$HOUSEKEEPING")
STATE_DIR=$(state_dir)
STATE=$STATE_DIR/saved.tsv
changes=0 failures=0

if [ "$apply" = 1 ]; then
  echo "# veloz tuning apply: shard cores $SHARD_LIST ($CORES_SOURCE); previous values go to $STATE"
else
  echo "# veloz tuning apply: dry run, nothing is written (add --apply to make these changes); shard cores $SHARD_LIST ($CORES_SOURCE)"
fi

# ---- the state file ---------------------------------------------------------------------------
# saved.tsv, one line per change, tab separated, replayed backwards by restore.sh:
#   value    <host path>  <previous value>     a sysfs/procfs value that was changed
#   created  <host path>                       a file apply created
#   replaced <host path>  <backup file>        a file apply overwrote (backup in DIR/backup)
#   sysmkdir <host path>                       a directory apply created under the root
#   mkdir    <path>                            a directory created to hold the state itself
state_init() {
  local d missing=()
  [ ! -f "$STATE" ] || return 0
  d=$STATE_DIR
  while [ ! -d "$d" ]; do
    missing=("$d" "${missing[@]}")
    d=$(dirname "$d")
  done
  mkdir -p "$STATE_DIR"
  {
    echo "# veloz tuning state: tuning/restore.sh puts these values back, last line first"
    for d in "${missing[@]}"; do printf 'mkdir\t%s\n' "$d"; done
  } >"$STATE"
}

# state_has KIND PATH: an earlier run already saved this path (its first value wins)
state_has() {
  [ -f "$STATE" ] && awk -F'\t' -v k="$1" -v p="$2" '$1 == k && $2 == p { found = 1 } END { exit !found }' "$STATE"
}

state_add() { # fields...
  local IFS=$'\t'
  printf '%s\n' "$*" >>"$STATE"
}

state_drop_last() {
  local tmp="$STATE.tmp"
  sed '$d' "$STATE" >"$tmp" && mv "$tmp" "$STATE"
}

# set_value HOSTPATH OLD NEW [REFUSED]: change one sysfs/procfs value (or say it would). When
# the kernel refuses the write and REFUSED is given, say "skip ...: REFUSED" instead of failing.
set_value() {
  local path=$1 old=$2 new=$3 refused=${4:-} err recorded=0
  changes=$((changes + 1))
  if [ "$apply" = 0 ]; then
    echo "would set $path $old -> $new"
    return 0
  fi
  state_init
  if ! state_has value "$path"; then
    state_add value "$path" "$old"
    recorded=1
  fi
  if err=$(write_value "$path" "$new"); then
    echo "set $path $old -> $new"
    return 0
  fi
  [ "$recorded" = 0 ] || state_drop_last
  err=${err##*: }
  if [ -n "$refused" ]; then
    echo "skip $path (stays $old): the kernel refused it (${err:-write error}): $refused"
  else
    echo "FAILED to set $path $old -> $new: ${err:-write refused}" >&2
    failures=$((failures + 1))
  fi
}

# ---- the changes --------------------------------------------------------------------------------
apply_governor() {
  local c f g avail
  for c in "${SHARDS[@]}"; do
    f=/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor
    if ! g=$(read_line "$f"); then
      echo "skip governor cpu$c: no cpufreq here ($f)"
      continue
    fi
    [ "$g" != performance ] || continue
    avail=$(read_line "/sys/devices/system/cpu/cpu$c/cpufreq/scaling_available_governors" || echo performance)
    if ! grep -qw performance <<<"$avail"; then
      echo "skip governor cpu$c: no performance governor (available: $avail)"
      continue
    fi
    set_value "$f" "$g" performance
  done
}

# new_affinity "CPUS": keep an IRQ on its non-shard CPUs, else give it every non-shard CPU
new_affinity() {
  local keep
  keep=$(cpuset_and "$1" "$HOUSEKEEPING")
  printf '%s' "${keep:-$HOUSEKEEPING}"
}

apply_irqs() {
  local irq f old cpus mask
  if [ -z "$HOUSEKEEPING" ]; then
    echo "skip IRQ affinity: every online CPU is a shard core; leave at least one out of [engine] cores for IRQs"
    return
  fi
  for irq in $(irq_numbers); do
    f=/proc/irq/$irq/smp_affinity_list
    old=$(read_line "$f" || true)
    cpus=$(cpulist_expand "$old" || true)
    [ -n "$(cpuset_and "$cpus" "$SHARD_CORES")" ] || continue
    set_value "$f" "$old" "$(cpulist_compress "$(new_affinity "$cpus")")" "a per-CPU or managed interrupt"
  done
  f=/proc/irq/default_smp_affinity
  if old=$(read_line "$f") && cpus=$(mask_to_cpus "$old") &&
    [ -n "$(cpuset_and "$cpus" "$SHARD_CORES")" ]; then
    mask=$(cpus_to_mask "$(new_affinity "$cpus")")
    set_value "$f" "$old" "$mask"
  fi
}

apply_thp() {
  local f v
  for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag; do
    v=$(read_line "$f") || continue
    v=$(selected_choice "$v")
    [ "$v" != always ] || set_value "$f" "$v" madvise
  done
}

# sysctl_set NAME NEW TEST: set /proc/sys/<name> to NEW when `TEST <current>` succeeds
sysctl_set() {
  local name=$1 new=$2 test=$3 f v
  f=/proc/sys/${name//.//}
  v=$(read_line "$f") || return 0
  if "$test" "$v"; then set_value "$f" "$v" "$new"; fi
}
nonzero() { [ "$1" != 0 ]; }
above_10() { ! [[ $1 =~ ^[0-9]+$ ]] || (($1 > 10)); }

apply_sysctls() {
  sysctl_set kernel.io_uring_disabled 0 nonzero
  sysctl_set vm.swappiness 1 above_10
  sysctl_set kernel.numa_balancing 0 nonzero
}

apply_memlock() {
  local f want d missing=() backup
  f=$(p "$LIMITS_FILE")
  want=$(limits_content "$user")
  if [ -f "$f" ] && [ "$(cat "$f")" = "$want" ]; then
    return 0
  fi
  changes=$((changes + 1))
  if [ "$apply" = 0 ]; then
    if [ -f "$f" ]; then
      echo "would replace $LIMITS_FILE (a backup is saved) with: $user soft/hard memlock unlimited"
    else
      echo "would create $LIMITS_FILE: $user soft/hard memlock unlimited"
    fi
    return 0
  fi
  state_init
  d=$(dirname "$f")
  while [ ! -d "$d" ]; do
    missing=("${d#"$SYSROOT"}" "${missing[@]}")
    d=$(dirname "$d")
  done
  for d in "${missing[@]}"; do
    mkdir "$(p "$d")"
    state_add sysmkdir "$d"
  done
  if [ -f "$f" ]; then
    if ! state_has replaced "$LIMITS_FILE" && ! state_has created "$LIMITS_FILE"; then
      mkdir -p "$STATE_DIR/backup"
      backup=$STATE_DIR/backup/${LIMITS_FILE//\//_}
      cp -p "$f" "$backup"
      state_add replaced "$LIMITS_FILE" "$backup"
    fi
    printf '%s\n' "$want" >"$f"
    echo "replaced $LIMITS_FILE (backup in $STATE_DIR/backup): $user soft/hard memlock unlimited"
  else
    state_has created "$LIMITS_FILE" || state_add created "$LIMITS_FILE"
    printf '%s\n' "$want" >"$f"
    echo "created $LIMITS_FILE: $user soft/hard memlock unlimited (effective at $user's next login)"
  fi
}

apply_governor
apply_irqs
apply_thp
apply_sysctls
apply_memlock

if [ "$changes" = 0 ]; then
  echo "nothing to change: the runtime settings are already tuned"
elif [ "$apply" = 1 ] && [ -f "$STATE" ]; then
  echo "previous values saved in $STATE; tuning/restore.sh puts them back"
fi

st=$(irqbalance_state)
if [[ $st == running* ]]; then
  echo "note: irqbalance is running and will move IRQs back onto the shard cores: sudo systemctl disable --now irqbalance"
fi

if [ -n "$HOUSEKEEPING" ]; then
  echo "kernel command line for isolation (not applied: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot):"
  echo "  isolcpus=managed_irq,domain,$SHARD_LIST nohz_full=$SHARD_LIST rcu_nocbs=$SHARD_LIST irqaffinity=$HK_LIST"
else
  echo "no kernel command line for isolation: every online CPU is a shard core; leave at least one out of [engine] cores for the OS first"
fi

[ "$failures" -eq 0 ] || {
  echo "$PROG: $failures change(s) failed; the others were applied and saved in $STATE" >&2
  exit 1
}

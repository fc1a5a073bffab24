#!/usr/bin/env bash
# tuning/check.sh [--config FILE] [--cores LIST] [--nic IFACE]
#
# Readiness report of this host for Veloz: one line per item,
#   PASS|WARN|FAIL <item>: <what was found> [-> fix: <command or kernel parameter>]
# then "N PASS, N WARN, N FAIL". Reads only; changes nothing.
#   FAIL  the engine cannot run: io_uring disabled, kernel older than 5.8, RLIMIT_MEMLOCK
#         below 512 KiB, shard cores that are not online.
#   WARN  it runs, with worse latency; or the item cannot be read here ("not available",
#         e.g. in a container or a VM).
# Exit status: 0 when no item is FAIL, 1 otherwise, 2 on bad arguments.
#
# Shard cores: --cores LIST (kernel cpu-list syntax, e.g. 0,2-3), else `cores = [..]` in the
# [engine] table of --config FILE, else every online CPU.
# --nic IFACE restricts the NIC NUMA check to the trading NIC (default: every NIC with a device).
#
# Environment (for tests and for checking a copy of another host's files; see tuning/lib.sh):
#   VELOZ_SYSROOT         root prefix for /sys, /proc, /etc (default: the real host)
#   VELOZ_MEMLOCK_KB      RLIMIT_MEMLOCK in KiB or "unlimited" instead of <root>/proc/self/limits
#   VELOZ_EUID            effective uid instead of <root>/proc/self/status (0: CAP_IPC_LOCK too)
#   VELOZ_KERNEL_RELEASE  kernel release instead of <root>/proc/sys/kernel/osrelease
#   VELOZ_IRQBALANCE      running|stopped instead of scanning <root>/proc/*/comm
set -euo pipefail

PROG=check.sh
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

config="" cores_arg="" nic_arg=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --config=*) config=${1#*=}; shift ;;
    --cores) cores_arg=${2:?--cores needs a CPU list}; shift 2 ;;
    --cores=*) cores_arg=${1#*=}; shift ;;
    --nic) nic_arg=${2:?--nic needs an interface name}; shift 2 ;;
    --nic=*) nic_arg=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

resolve_cores "$cores_arg" "$config"
HOUSEKEEPING=$(housekeeping_cpus)
SHARD_LIST=$(cpulist_compress "$SHARD_CORES")
HK_LIST=$(cpulist_compress "$HOUSEKEEPING")
read -ra SHARDS <<<"$SHARD_CORES"
NSHARDS=${#SHARDS[@]}

n_pass=0 n_warn=0 n_fail=0
# report STATUS ITEM FOUND [FIX]
report() {
  local line="$1 $2: $3"
  [ -z "${4:-}" ] || line+=" -> fix: $4"
  printf '%s\n' "$line"
  case "$1" in
    PASS) n_pass=$((n_pass + 1)) ;;
    WARN) n_warn=$((n_warn + 1)) ;;
    FAIL) n_fail=$((n_fail + 1)) ;;
  esac
}

# how to fix something that needs a CPU outside the shard cores
NO_HK_FIX="leave at least one online CPU out of [engine] cores (or --cores) for the OS, IRQs and the control thread"

ONLINE_LIST=$(cpulist_compress "$ONLINE_CPUS")
echo "# veloz tuning check: shard cores ${SHARD_LIST:-unknown} (${CORES_SOURCE}); online CPUs ${ONLINE_LIST:-unknown}"

# ---- cores ----------------------------------------------------------------------------------
check_cores() {
  local offline
  if [ -z "$ONLINE_CPUS" ]; then
    if [ -z "$SHARD_CORES" ]; then
      report WARN cores "online CPUs not available (no /sys/devices/system/cpu/online)" "pass --cores LIST"
    else
      report WARN cores "shard cores $SHARD_LIST; online CPUs not available (no /sys/devices/system/cpu/online)"
    fi
    return
  fi
  offline=$(cpuset_minus "$SHARD_CORES" "$ONLINE_CPUS")
  if [ -n "$offline" ]; then
    report FAIL cores "shard cores $(cpulist_compress "$offline") are not online (online: $(cpulist_compress "$ONLINE_CPUS")): executors cannot be pinned there" \
      "set [engine] cores (or --cores) to online CPUs"
  elif [ -z "$HOUSEKEEPING" ]; then
    report WARN cores "every online CPU ($SHARD_LIST) is a shard core: none is left for the OS, IRQs and the control thread" "$NO_HK_FIX"
  else
    report PASS cores "shard cores $SHARD_LIST online; CPUs $HK_LIST left for the OS and IRQs"
  fi
}

# ---- kernel, io_uring, memlock ----------------------------------------------------------------
KREL=$(kernel_release || true)
kernel_at_least() { # MAJOR MINOR; return 2 when the release is unknown
  local maj min
  [[ $KREL =~ ^([0-9]+)\.([0-9]+) ]] || return 2
  maj=${BASH_REMATCH[1]} min=${BASH_REMATCH[2]}
  ((maj > $1 || (maj == $1 && min >= $2)))
}

check_kernel() {
  local rc=0
  kernel_at_least 5 8 || rc=$?
  case "$rc" in
    0) report PASS kernel "$KREL (glommio needs 5.8+)" ;;
    1) report FAIL kernel "$KREL is older than 5.8: glommio needs 5.8+ for its io_uring operations" "boot a kernel 5.8 or newer" ;;
    *) report WARN kernel "release not available" ;;
  esac
}

check_io_uring() {
  local v euid gid rc=0
  euid=$(effective_uid || true)
  if ! v=$(read_line /proc/sys/kernel/io_uring_disabled); then
    kernel_at_least 6 6 || rc=$?
    if [ "$rc" = 1 ]; then
      report PASS io_uring "enabled (kernel $KREL has no kernel.io_uring_disabled switch)"
    else
      report WARN io_uring "not available (no /proc/sys/kernel/io_uring_disabled)"
    fi
    return
  fi
  local fix="sudo sysctl -w kernel.io_uring_disabled=0 (or tuning/apply.sh --apply)"
  case "$v" in
    0) report PASS io_uring "enabled (kernel.io_uring_disabled = 0)" ;;
    2) report FAIL io_uring "disabled for every process (kernel.io_uring_disabled = 2): glommio cannot start" "$fix" ;;
    1)
      gid=$(read_line /proc/sys/kernel/io_uring_group || echo "?")
      if [ "$euid" = 0 ]; then
        report WARN io_uring "root and group $gid only (kernel.io_uring_disabled = 1): a non-root service user cannot start glommio" "$fix"
      elif ! fake_root && [ "$gid" != "?" ] && id -G | tr ' ' '\n' | grep -qx -- "$gid"; then
        report PASS io_uring "root and group $gid only (kernel.io_uring_disabled = 1); this user is in group $gid"
      else
        report FAIL io_uring "root and group $gid only (kernel.io_uring_disabled = 1): uid ${euid:-?} cannot start glommio" "$fix"
      fi
      ;;
    *) report WARN io_uring "unexpected kernel.io_uring_disabled = $v" "$fix" ;;
  esac
}

check_memlock() {
  local kb need shards=$NSHARDS
  kb=$(memlock_kb || true)
  [ "$shards" -gt 0 ] || shards=1
  # glommio: below 512 KiB LocalExecutor creation fails (MemLockLimit); above it, each
  # executor registers its 10 MiB io_memory in 3 rings, all charged to the user's locked
  # memory unless it has CAP_IPC_LOCK: about 32 MiB per shard or registration is skipped.
  need=$((shards * 32 * 1024))
  local fix="tuning/apply.sh --apply (writes /etc/security/limits.d/veloz.conf; log in again), or LimitMEMLOCK=infinity in the systemd unit"
  if [ -z "$kb" ]; then
    report WARN memlock "RLIMIT_MEMLOCK not available"
  elif [ "$kb" = unlimited ]; then
    report PASS memlock "unlimited"
  elif ! [[ $kb =~ ^[0-9]+$ ]]; then
    report WARN memlock "unexpected RLIMIT_MEMLOCK '$kb'"
  elif ((kb < 512)); then
    report FAIL memlock "$kb KiB is below the 512 KiB glommio needs: executor creation fails (MemLockLimit)" "$fix"
  elif has_ipc_lock; then
    report PASS memlock "$kb KiB; with CAP_IPC_LOCK (root) locked memory is not charged to the limit"
  elif ((kb < need)); then
    report WARN memlock "$kb KiB is below ~$need KiB (32 MiB per shard, $shards shards): glommio skips registering its io_uring buffers" "$fix"
  else
    report PASS memlock "$kb KiB (>= 32 MiB per shard)"
  fi
}

# ---- CPU frequency and idle ------------------------------------------------------------------
check_governor() {
  local c g have=0
  if [ "$NSHARDS" -eq 0 ]; then
    report WARN governor "not available (no shard cores known)"
    return
  fi
  for c in "${SHARDS[@]}"; do
    [ -f "$(p "/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor")" ] && have=1
  done
  if [ "$have" = 0 ]; then
    report WARN governor "not available (no cpufreq on shard cores $SHARD_LIST: a VM, a container or no cpufreq driver)"
    return
  fi
  for c in "${SHARDS[@]}"; do
    local f=/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor
    if ! g=$(read_line "$f"); then
      report WARN "governor cpu$c" "not available (no $f)"
    elif [ "$g" = performance ]; then
      report PASS "governor cpu$c" "performance"
    else
      report WARN "governor cpu$c" "$g (the clock follows the load)" \
        "echo performance | sudo tee $f (or tuning/apply.sh --apply)"
    fi
  done
}

check_boost() {
  local v f=/sys/devices/system/cpu/cpufreq/boost nt=/sys/devices/system/cpu/intel_pstate/no_turbo
  if v=$(read_line "$f"); then
    if [ "$v" = 0 ]; then
      report PASS boost "off ($f = 0)"
    else
      report WARN boost "on ($f = $v): the clock varies with load and temperature, latency with it" \
        "echo 0 | sudo tee $f (steadier latency; or keep boost knowingly for a lower median)"
    fi
  elif v=$(read_line "$nt"); then
    if [ "$v" = 1 ]; then
      report PASS boost "off ($nt = 1)"
    else
      report WARN boost "turbo on ($nt = $v): the clock varies with load and temperature, latency with it" \
        "echo 1 | sudo tee $nt (steadier latency; or keep turbo knowingly for a lower median)"
    fi
  else
    report WARN boost "not available (no $f or $nt)"
  fi
}

check_cstates() {
  local c d name lat dis driver have=0
  local -a deep=() deep_cores=()
  local -A seen=()
  if cmdline_param idle >/dev/null && [ "$(cmdline_param idle)" = poll ]; then
    report PASS c-states "idle=poll: shard cores never enter an idle state"
    return
  fi
  driver=$(read_line /sys/devices/system/cpu/cpuidle/current_driver || echo unknown)
  for c in "${SHARDS[@]}"; do
    local core_deep=0
    for d in "$(p "/sys/devices/system/cpu/cpu$c/cpuidle")"/state[0-9]*; do
      [ -d "$d" ] || continue
      have=1
      name=$(read_line "${d#"$SYSROOT"}/name" || echo "${d##*/}")
      lat=$(read_line "${d#"$SYSROOT"}/latency" || echo 0)
      dis=$(read_line "${d#"$SYSROOT"}/disable" || echo 0)
      [[ $lat =~ ^[0-9]+$ ]] || lat=0
      if [ "$dis" = 0 ] && ((lat > 2)); then
        core_deep=1
        if [ -z "${seen[$name]:-}" ]; then
          seen[$name]=1
          deep+=("$name (${lat} us)")
        fi
      fi
    done
    [ "$core_deep" = 0 ] || deep_cores+=("$c")
  done
  if [ "$have" = 0 ]; then
    report WARN c-states "not available (no cpuidle states on shard cores; cpuidle driver: $driver)"
  elif [ "${#deep[@]}" -gt 0 ]; then
    local IFS=,
    local names="${deep[*]}"
    IFS=' '
    report WARN c-states "${names//,/, } enabled on shard cores $(cpulist_compress "${deep_cores[*]}") (driver $driver): waking up costs that much" \
      "kernel parameters intel_idle.max_cstate=1 processor.max_cstate=1, or at run time echo 1 | sudo tee /sys/devices/system/cpu/cpuN/cpuidle/stateK/disable for each deep state"
  else
    report PASS c-states "no idle state with an exit latency above 2 us enabled on shard cores (driver $driver)"
  fi
}

# ---- isolation --------------------------------------------------------------------------------
# check_isolation ITEM "CPUS" SOURCE_KNOWN PARAM_HINT
check_isolation() {
  local item=$1 covered=$2 known=$3 param=$4 missing fix
  if [ "$known" = 0 ]; then
    report WARN "$item" "not available (no /proc/cmdline or sysfs list)"
    return
  fi
  missing=$(cpuset_minus "$SHARD_CORES" "$covered")
  if [ -z "$SHARD_CORES" ]; then
    report WARN "$item" "no shard cores known"
  elif [ -z "$missing" ]; then
    report PASS "$item" "shard cores $SHARD_LIST covered ($item: $(cpulist_compress "$covered"))"
  else
    fix="kernel parameter $param$SHARD_LIST (tuning/apply.sh prints the whole line)"
    [ -n "$HOUSEKEEPING" ] || fix="$NO_HK_FIX; then kernel parameter $param<shard cores>"
    local have
    have=$(cpulist_compress "$covered")
    report WARN "$item" "shard cores $(cpulist_compress "$missing") not covered ($item: ${have:-none})" "$fix"
  fi
}

check_isolation_all() {
  local cmdline_ok=0 v iso="" nohz="" nocb="" iso_known=0 nohz_known=0 all
  all=$(cpulist_compress "$ONLINE_CPUS")
  read_line /proc/cmdline >/dev/null && cmdline_ok=1
  if v=$(read_line /sys/devices/system/cpu/isolated); then
    iso_known=1
    iso=$(cpulist_expand "$v" "$all" || true)
  fi
  if v=$(cmdline_param isolcpus); then
    iso="$iso $(cpulist_expand "$(isolcpus_list "$v")" "$all" || true)"
  fi
  [ "$cmdline_ok" = 0 ] || iso_known=1
  iso=$(cpuset_union "$iso")

  if v=$(read_line /sys/devices/system/cpu/nohz_full); then
    nohz_known=1
    nohz=$(cpulist_expand "$v" "$all" || true) # "(null)" when none
  fi
  if v=$(cmdline_param nohz_full); then
    nohz="$nohz $(cpulist_expand "$v" "$all" || true)"
  fi
  [ "$cmdline_ok" = 0 ] || nohz_known=1
  nohz=$(cpuset_union "$nohz")

  if v=$(cmdline_param rcu_nocbs); then
    nocb=$(cpulist_expand "${v:-all}" "$all" || true)
  fi
  # nohz_full CPUs are RCU callback-offloaded too
  nocb=$(cpuset_union "$nocb" "$nohz")

  check_isolation isolcpus "$iso" "$iso_known" "isolcpus=managed_irq,domain,"
  check_isolation nohz_full "$nohz" "$nohz_known" "nohz_full="
  check_isolation rcu_nocbs "$nocb" "$cmdline_ok" "rcu_nocbs="
}

# ---- interrupts -------------------------------------------------------------------------------
check_irqbalance() {
  local st
  st=$(irqbalance_state)
  case "$st" in
    stopped) report PASS irqbalance "not running" ;;
    running*)
      local pidlist=${st#running}
      pidlist=${pidlist# }
      report WARN irqbalance "running${pidlist:+ (pid $pidlist)}: it moves IRQs back onto shard cores" \
        "sudo systemctl disable --now irqbalance (or IRQBALANCE_BANNED_CPULIST=${SHARD_LIST} in /etc/default/irqbalance)"
      ;;
    *) report WARN irqbalance "not available (no /proc)" ;;
  esac
}

check_irq_affinity() {
  local irqs n=0 irq aff cpus list shown fix def defcpus
  local -a hits=()
  if [ ! -d "$(p /proc/irq)" ]; then
    report WARN "irq affinity" "not available (no /proc/irq)"
    return
  fi
  irqs=$(irq_numbers)
  for irq in $irqs; do
    n=$((n + 1))
    aff=$(read_line "/proc/irq/$irq/smp_affinity_list" || true)
    cpus=$(cpulist_expand "$aff" || true)
    [ -z "$(cpuset_and "$cpus" "$SHARD_CORES")" ] || hits+=("$irq")
  done
  def=""
  if aff=$(read_line /proc/irq/default_smp_affinity) && defcpus=$(mask_to_cpus "$aff") &&
    [ -n "$(cpuset_and "$defcpus" "$SHARD_CORES")" ]; then
    def=" and the default affinity for new IRQs ($aff)"
  fi
  if [ "${#hits[@]}" -eq 0 ] && [ -z "$def" ]; then
    report PASS "irq affinity" "none of $n IRQs may run on shard cores"
    return
  fi
  list="${hits[*]:0:8}"
  [ "${#hits[@]}" -le 8 ] || list+=" ..."
  shown=""
  [ "${#hits[@]}" -eq 0 ] || shown=" (${list// /,})"
  if [ -n "$HOUSEKEEPING" ]; then
    fix="tuning/apply.sh --apply (moves them to CPUs $HK_LIST), or echo $HK_LIST | sudo tee /proc/irq/N/smp_affinity_list"
  else
    fix=$NO_HK_FIX
  fi
  report WARN "irq affinity" "${#hits[@]} of $n IRQs$shown$def may run on shard cores $SHARD_LIST" "$fix"
}

# ---- NUMA -------------------------------------------------------------------------------------
# node_of_cpu N: print the NUMA node of a CPU; return 1 when unknown
node_of_cpu() {
  local d list
  for d in "$(p "/sys/devices/system/cpu/cpu$1")"/node[0-9]*; do
    [ -e "$d" ] || continue
    printf '%s' "${d##*/node}"
    return 0
  done
  for d in "$(p /sys/devices/system/node)"/node[0-9]*; do
    [ -f "$d/cpulist" ] || continue
    list=$(read_line "${d#"$SYSROOT"}/cpulist" || true)
    if [ -n "$(cpuset_and "$1" "$(cpulist_expand "$list" || true)")" ]; then
      printf '%s' "${d##*/node}"
      return 0
    fi
  done
  return 1
}

SHARD_NODES=""
check_numa_cpu() {
  local c node unknown=() parts=()
  local -A cores_of=()
  if [ "$NSHARDS" -eq 0 ]; then
    report WARN "numa cpu" "not available (no shard cores known)"
    return
  fi
  for c in "${SHARDS[@]}"; do
    if node=$(node_of_cpu "$c"); then
      cores_of[$node]="${cores_of[$node]:-} $c"
    else
      unknown+=("$c")
    fi
  done
  SHARD_NODES=$(printf '%s\n' "${!cores_of[@]}" | sort -n | paste -sd' ' -)
  if [ "${#unknown[@]}" -gt 0 ]; then
    report WARN "numa cpu" "not available for cores $(cpulist_compress "${unknown[*]}") (no /sys/devices/system/cpu/cpuN/nodeM or node/nodeM/cpulist)"
    return
  fi
  if [ "$(wc -w <<<"$SHARD_NODES")" -eq 1 ]; then
    report PASS "numa cpu" "shard cores $SHARD_LIST on node $SHARD_NODES"
  else
    for node in $SHARD_NODES; do
      parts+=("node $node (cores $(cpulist_compress "${cores_of[$node]}"))")
    done
    local IFS=,
    local joined="${parts[*]}"
    report WARN "numa cpu" "shard cores span ${joined//,/, }: rings and memory cross nodes" \
      "choose [engine] cores from one node, the NIC's (see /sys/devices/system/node/nodeN/cpulist)"
  fi
}

check_numa_nic() {
  local d name node nnodes found=() bad=() far=""
  nnodes=0
  for d in "$(p /sys/devices/system/node)"/node[0-9]*; do
    [ -d "$d" ] && nnodes=$((nnodes + 1))
  done
  for d in "$(p /sys/class/net)"/*; do
    name=${d##*/}
    [ -f "$d/device/numa_node" ] || continue
    [ -z "$nic_arg" ] || [ "$name" = "$nic_arg" ] || continue
    node=$(read_line "${d#"$SYSROOT"}/device/numa_node" || echo "?")
    found+=("$name on node $node")
    if [ "$node" = -1 ] || [ "$node" = "?" ]; then
      [ "$nnodes" -le 1 ] || bad+=("$name (node unknown)")
    elif [ -n "$SHARD_NODES" ] && ! grep -qw -- "$node" <<<"$SHARD_NODES"; then
      bad+=("$name on node $node")
      far=$node
    fi
  done
  if [ "${#found[@]}" -eq 0 ]; then
    report WARN "numa nic" "not available (no ${nic_arg:-network device} with /sys/class/net/*/device/numa_node)"
    return
  fi
  local IFS=,
  local found_s="${found[*]}" bad_s="${bad[*]}" nodes_s=${SHARD_NODES// /,}
  IFS=' '
  if [ "${#bad[@]}" -eq 0 ]; then
    report PASS "numa nic" "${found_s//,/, } (shard cores on node ${nodes_s:-?})"
  else
    local fix="use shard cores of the NIC's node"
    [ -z "$far" ] || fix="choose [engine] cores from node $far (/sys/devices/system/node/node$far/cpulist) or a NIC on node ${nodes_s}"
    [ -n "$nic_arg" ] || fix+="; --nic IFACE checks only the trading NIC"
    report WARN "numa nic" "${bad_s//,/, }, shard cores on node ${nodes_s:-?}: packets cross the interconnect" "$fix"
  fi
}

# ---- memory -----------------------------------------------------------------------------------
check_thp() {
  local e d base=/sys/kernel/mm/transparent_hugepage paths=()
  if ! e=$(read_line "$base/enabled") || ! d=$(read_line "$base/defrag"); then
    report WARN thp "not available (no $base)"
    return
  fi
  e=$(selected_choice "$e")
  d=$(selected_choice "$d")
  [ "$e" != always ] || paths+=("$base/enabled")
  [ "$d" != always ] || paths+=("$base/defrag")
  if [ "${#paths[@]}" -eq 0 ]; then
    report PASS thp "enabled=$e defrag=$d"
  else
    report WARN thp "enabled=$e defrag=$d: khugepaged collapses and fault-time compaction stall the engine" \
      "echo madvise | sudo tee ${paths[*]} (or tuning/apply.sh --apply)"
  fi
}

check_hugepages() {
  local n size
  if ! n=$(read_line /proc/sys/vm/nr_hugepages); then
    report WARN hugepages "not available (no /proc/sys/vm/nr_hugepages)"
    return
  fi
  size=$(awk '/^Hugepagesize:/ {print $2 " " $3}' "$(p /proc/meminfo)" 2>/dev/null || true)
  if [ "$n" = 0 ]; then
    report PASS hugepages "none reserved (vm.nr_hugepages = 0); Veloz maps no hugetlbfs pages"
  else
    report PASS hugepages "$n x ${size:-?} reserved (vm.nr_hugepages); Veloz maps no hugetlbfs pages, that memory is not its"
  fi
}

check_swap() {
  local f active
  f=$(p /proc/swaps)
  if [ ! -r "$f" ]; then
    report WARN swap "not available (no /proc/swaps)"
    return
  fi
  active=$(awk 'NR > 1 && NF { printf "%s%s (%s kB)", sep, $1, $3; sep = ", " }' "$f")
  if [ -z "$active" ]; then
    report PASS swap "none active"
  else
    report WARN swap "active: $active: engine memory may be paged out" "sudo swapoff -a, and remove swap from /etc/fstab"
  fi
}

check_swappiness() {
  local v
  if ! v=$(read_line /proc/sys/vm/swappiness); then
    report WARN vm.swappiness "not available (no /proc/sys/vm/swappiness)"
  elif [[ $v =~ ^[0-9]+$ ]] && ((v <= 10)); then
    report PASS vm.swappiness "$v"
  else
    report WARN vm.swappiness "$v: the kernel swaps anonymous memory readily" "sudo sysctl -w vm.swappiness=1 (or tuning/apply.sh --apply)"
  fi
}

check_numa_balancing() {
  local v
  if ! v=$(read_line /proc/sys/kernel/numa_balancing); then
    if [ -d "$(p /proc/sys/kernel)" ]; then
      report PASS kernel.numa_balancing "not present (kernel without automatic NUMA balancing)"
    else
      report WARN kernel.numa_balancing "not available (no /proc/sys/kernel)"
    fi
  elif [ "$v" = 0 ]; then
    report PASS kernel.numa_balancing "0"
  else
    report WARN kernel.numa_balancing "$v: the kernel unmaps pages to sample accesses, faults land on shard cores" \
      "sudo sysctl -w kernel.numa_balancing=0 (or tuning/apply.sh --apply)"
  fi
}

check_clocksource() {
  local cur avail base=/sys/devices/system/clocksource/clocksource0
  if ! cur=$(read_line "$base/current_clocksource"); then
    report WARN clocksource "not available (no $base/current_clocksource)"
    return
  fi
  if [ "$cur" = tsc ]; then
    report PASS clocksource "tsc"
    return
  fi
  avail=$(read_line "$base/available_clocksource" || true)
  if grep -qw tsc <<<"$avail"; then
    report WARN clocksource "$cur: timestamps cost more than with the TSC" \
      "echo tsc | sudo tee $base/current_clocksource; kernel parameter clocksource=tsc to keep it"
  else
    report WARN clocksource "$cur; tsc is not offered (available: ${avail:-?}): timestamps cost more" \
      "use a host with an invariant, stable TSC (no fix on this one)"
  fi
}

check_cores
check_kernel
check_io_uring
check_memlock
check_governor
check_boost
check_cstates
check_isolation_all
check_irqbalance
check_irq_affinity
check_numa_cpu
check_numa_nic
check_thp
check_hugepages
check_swap
check_swappiness
check_numa_balancing
check_clocksource

echo "$n_pass PASS, $n_warn WARN, $n_fail FAIL"
[ "$n_fail" -eq 0 ]

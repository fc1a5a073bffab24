# shellcheck shell=bash
# Variables assigned here (SHARD_CORES, CORES_SOURCE, ONLINE_CPUS) are read by the scripts
# that source this file, which shellcheck cannot see when it checks lib.sh alone.
# shellcheck disable=SC2034
# Shared helpers of tuning/check.sh, apply.sh and restore.sh. Sourced, never run.
#
# Every system file is read and written through a root prefix so tests can point the scripts
# at a fake tree:
#   VELOZ_SYSROOT        root prefix for /sys, /proc and /etc (default empty: the real host).
#                        When set, nothing is read from the running host: the values below
#                        come from files under the fake root or from the overrides.
#   VELOZ_MEMLOCK_KB     RLIMIT_MEMLOCK soft limit in KiB or "unlimited" (default: read from
#                        <root>/proc/self/limits, else `ulimit -l`).
#   VELOZ_EUID           effective uid (default: <root>/proc/self/status, else `id -u`);
#                        when set, uid 0 also stands for CAP_IPC_LOCK (default: CapEff in
#                        <root>/proc/self/status).
#   VELOZ_KERNEL_RELEASE kernel release such as 6.1.0-18-amd64 (default:
#                        <root>/proc/sys/kernel/osrelease, else `uname -r`).
#   VELOZ_IRQBALANCE     "running" or "stopped" (default: look for a process named irqbalance
#                        in <root>/proc/<pid>/comm).
#   VELOZ_STATE_DIR      where apply.sh saves previous values and restore.sh finds them
#                        (default <root>/var/lib/veloz-tuning).
#   VELOZ_USER           service user that gets the memlock limit (default veloz).

VELOZ_SYSROOT=${VELOZ_SYSROOT:-}
SYSROOT=${VELOZ_SYSROOT%/}
# Set by resolve_cores.
SHARD_CORES="" CORES_SOURCE="" ONLINE_CPUS=""

die() {
  echo "$PROG: $*" >&2
  exit 2
}

# host path -> the path under the root prefix
p() {
  printf '%s%s' "$SYSROOT" "$1"
}

fake_root() {
  [ -n "$SYSROOT" ]
}

# read_line HOSTPATH: print the first line of a file; return 1 when it is missing or
# unreadable (a container may hide or forbid it).
read_line() {
  local f line=""
  f=$(p "$1")
  [ -f "$f" ] && [ -r "$f" ] || return 1
  { IFS= read -r line || true; } 2>/dev/null <"$f" || return 1
  printf '%s' "$line"
}

# selected_choice TEXT: "always [madvise] never" -> madvise (sysfs choice files); plain text
# is returned unchanged.
selected_choice() {
  if [[ $1 =~ \[([^]]*)\] ]]; then
    printf '%s' "${BASH_REMATCH[1]}"
  else
    printf '%s' "$1"
  fi
}

# ---- CPU lists ("0-3,8") --------------------------------------------------------------------

# cpulist_expand LIST: print the CPUs of a kernel cpu list, space separated, sorted and
# unique; "all" needs the online list as $2. Returns 1 when LIST is malformed.
cpulist_expand() {
  local list=${1//[[:space:]]/} part a b i
  local -a parts out=()
  if [ "$list" = all ]; then
    list=${2:-}
  fi
  [ -n "$list" ] || return 0
  IFS=, read -ra parts <<<"$list"
  for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
      a=$((10#${BASH_REMATCH[1]}))
      b=$((10#${BASH_REMATCH[2]}))
      ((a <= b)) || return 1
      for ((i = a; i <= b; i++)); do
        out+=("$i")
      done
    elif [[ $part =~ ^[0-9]+$ ]]; then
      out+=("$((10#$part))")
    else
      return 1
    fi
  done
  [ "${#out[@]}" -gt 0 ] || return 0
  printf '%s\n' "${out[@]}" | sort -n -u | paste -sd' ' -
}

# cpulist_compress "0 1 2 5": print 0-2,5
cpulist_compress() {
  local -a cpus ranges=()
  local start="" prev="" c
  read -ra cpus <<<"$*"
  for c in "${cpus[@]}" end; do
    if [ -n "$start" ] && { [ "$c" = end ] || ((c != prev + 1)); }; then
      if [ "$start" = "$prev" ]; then ranges+=("$start"); else ranges+=("$start-$prev"); fi
      start=""
    fi
    [ "$c" = end ] && break
    [ -n "$start" ] || start=$c
    prev=$c
  done
  local IFS=,
  printf '%s' "${ranges[*]}"
}

# cpuset_and "A" "B" / cpuset_minus "A" "B": set operations on space-separated CPU numbers
cpuset_and() {
  local -A in_b=()
  local -a a b out=()
  local c
  read -ra a <<<"$1"
  read -ra b <<<"$2"
  for c in "${b[@]}"; do in_b[$c]=1; done
  for c in "${a[@]}"; do [ -z "${in_b[$c]:-}" ] || out+=("$c"); done
  printf '%s' "${out[*]}"
}

cpuset_minus() {
  local -A in_b=()
  local -a a b out=()
  local c
  read -ra a <<<"$1"
  read -ra b <<<"$2"
  for c in "${b[@]}"; do in_b[$c]=1; done
  for c in "${a[@]}"; do [ -n "${in_b[$c]:-}" ] || out+=("$c"); done
  printf '%s' "${out[*]}"
}

cpuset_union() {
  tr -s ' ' '\n' <<<"$*" | grep . | sort -n -u | paste -sd' ' - || true
}

# mask_to_cpus "00000000,00000003": CPUs of a hex mask as /proc/irq/default_smp_affinity
# shows it (comma-separated 32-bit words, most significant first). Returns 1 when malformed.
mask_to_cpus() {
  local mask=${1//[[:space:]]/} w v bit base
  local -a words out=()
  [[ $mask =~ ^[0-9a-fA-F]+(,[0-9a-fA-F]+)*$ ]] || return 1
  IFS=, read -ra words <<<"$mask"
  local n=${#words[@]} i
  for ((i = n - 1; i >= 0; i--)); do
    w=${words[i]}
    v=$((16#$w))
    base=$(((n - 1 - i) * 32))
    for ((bit = 0; bit < 32; bit++)); do
      if (((v >> bit) & 1)); then out+=("$((base + bit))"); fi
    done
  done
  printf '%s' "${out[*]}"
}

# cpus_to_mask "0 1": print the hex mask the kernel accepts (3; words joined by commas)
cpus_to_mask() {
  local -a cpus
  local c max=0 nwords i v hex=""
  read -ra cpus <<<"$1"
  for c in "${cpus[@]}"; do ((c > max)) && max=$c; done
  nwords=$((max / 32 + 1))
  for ((i = nwords - 1; i >= 0; i--)); do
    v=0
    for c in "${cpus[@]}"; do
      if ((c / 32 == i)); then v=$((v | (1 << (c % 32)))); fi
    done
    if [ -z "$hex" ]; then
      hex=$(printf '%x' "$v")
    else
      hex+=,$(printf '%08x' "$v")
    fi
  done
  printf '%s' "$hex"
}

# ---- host facts -----------------------------------------------------------------------------

# online CPUs, space separated (empty when unknown)
online_cpus() {
  local list n
  if list=$(read_line /sys/devices/system/cpu/online) && cpulist_expand "$list" >/dev/null; then
    cpulist_expand "$list"
  elif ! fake_root && n=$(getconf _NPROCESSORS_ONLN 2>/dev/null) && [ "$n" -gt 0 ]; then
    seq -s' ' 0 $((n - 1))
  fi
}

# config_cores FILE: print the raw value of `cores` in the [engine] table ("2,3" or "2-5"),
# nothing when the table or the key is absent.
config_cores() {
  awk '
    { sub(/#.*/, "") }
    collecting {
      value = value " " $0
      if ($0 ~ /\]/) { print value; exit }
      next
    }
    /^[[:space:]]*\[/ { engine = ($0 ~ /^[[:space:]]*\[[[:space:]]*engine[[:space:]]*\][[:space:]]*$/); next }
    engine && /^[[:space:]]*cores[[:space:]]*=/ {
      value = $0
      sub(/^[^=]*=/, "", value)
      if (value ~ /\[/ && value !~ /\]/) { collecting = 1; next }
      print value
      exit
    }
  ' "$1" | tr -d '[]"'"'"' \t' | sed -e 's/,*$//'
}

# resolve_cores CORES_ARG CONFIG: sets SHARD_CORES (space separated), CORES_SOURCE and
# ONLINE_CPUS; exits 2 on a malformed list or a missing config file.
resolve_cores() {
  local arg=$1 config=$2 raw
  ONLINE_CPUS=$(online_cpus)
  if [ -n "$arg" ]; then
    SHARD_CORES=$(cpulist_expand "$arg" "$(cpulist_compress "$ONLINE_CPUS")") ||
      die "--cores '$arg' is not a CPU list such as 0,2-3"
    CORES_SOURCE="--cores"
    return 0
  fi
  if [ -n "$config" ]; then
    [ -f "$config" ] || die "config file not found: $config"
    raw=$(config_cores "$config")
    if [ -n "$raw" ]; then
      SHARD_CORES=$(cpulist_expand "$raw" "$(cpulist_compress "$ONLINE_CPUS")") ||
        die "$config: [engine] cores = '$raw' is not a list of CPU numbers"
      CORES_SOURCE="[engine] cores in $config"
      return 0
    fi
  fi
  SHARD_CORES=$ONLINE_CPUS
  CORES_SOURCE="every online CPU: [engine] cores not set"
}

# memlock soft limit in KiB or "unlimited"; empty when unknown
memlock_kb() {
  local line bytes f
  if [ -n "${VELOZ_MEMLOCK_KB:-}" ]; then
    printf '%s' "$VELOZ_MEMLOCK_KB"
    return 0
  fi
  f=$(p /proc/self/limits)
  if [ -r "$f" ] && line=$(grep -E '^Max locked memory' "$f" 2>/dev/null); then
    bytes=$(awk '{print $4}' <<<"$line")
    if [ "$bytes" = unlimited ]; then
      printf unlimited
    else
      printf '%s' "$((bytes / 1024))"
    fi
  elif ! fake_root; then
    ulimit -l
  fi
}

effective_uid() {
  local f
  if [ -n "${VELOZ_EUID:-}" ]; then
    printf '%s' "$VELOZ_EUID"
    return 0
  fi
  f=$(p /proc/self/status)
  if [ -r "$f" ] && grep -qE '^Uid:' "$f" 2>/dev/null; then
    awk '/^Uid:/ {print $3; exit}' "$f"
  elif ! fake_root; then
    id -u
  fi
}

# has_ipc_lock: CAP_IPC_LOCK in the effective set (root has it): locked memory is then not
# charged against RLIMIT_MEMLOCK. With VELOZ_EUID set, uid 0 stands for it.
has_ipc_lock() {
  local f caps
  if [ -n "${VELOZ_EUID:-}" ]; then
    [ "$VELOZ_EUID" = 0 ]
    return
  fi
  f=$(p /proc/self/status)
  if [ -r "$f" ] && caps=$(awk '/^CapEff:/ {print $2; exit}' "$f") && [[ $caps =~ ^[0-9a-fA-F]+$ ]]; then
    (((16#$caps >> 14) & 1))
    return
  fi
  [ "$(effective_uid)" = 0 ]
}

kernel_release() {
  if [ -n "${VELOZ_KERNEL_RELEASE:-}" ]; then
    printf '%s' "$VELOZ_KERNEL_RELEASE"
  elif read_line /proc/sys/kernel/osrelease; then
    :
  elif ! fake_root; then
    uname -r
  fi
}

# prints "running <pids>" or "stopped"; empty when /proc cannot tell
irqbalance_state() {
  local comm pids=() d
  case "${VELOZ_IRQBALANCE:-}" in
    running | stopped)
      printf '%s' "$VELOZ_IRQBALANCE"
      return 0
      ;;
    "") ;;
    *) die "VELOZ_IRQBALANCE must be running or stopped, not '$VELOZ_IRQBALANCE'" ;;
  esac
  [ -d "$(p /proc)" ] || return 0
  for d in "$(p /proc)"/[0-9]*; do
    [ -f "$d/comm" ] || continue
    comm=""
    { IFS= read -r comm || true; } 2>/dev/null <"$d/comm" || continue
    if [ "$comm" = irqbalance ]; then pids+=("${d##*/}"); fi
  done
  if [ "${#pids[@]}" -gt 0 ]; then
    printf 'running %s' "${pids[*]}"
  elif [ -d "$(p /proc/1)" ] || [ -d "$(p /proc/self)" ]; then
    printf stopped
  fi
}

# IRQ numbers that have an smp_affinity_list, sorted numerically
irq_numbers() {
  local d
  [ -d "$(p /proc/irq)" ] || return 0
  for d in "$(p /proc/irq)"/[0-9]*; do
    [ -f "$d/smp_affinity_list" ] && printf '%s\n' "${d##*/}"
  done | sort -n | paste -sd' ' -
}

# the kernel command line value of a parameter (last occurrence wins); return 1 when absent
cmdline_param() {
  local cmdline word found=1 value=""
  cmdline=$(read_line /proc/cmdline) || return 1
  for word in $cmdline; do
    case "$word" in
      "$1="*)
        value=${word#"$1"=}
        found=0
        ;;
      "$1") found=0 ;;
    esac
  done
  printf '%s' "$value"
  return "$found"
}

# isolcpus=[flags,]list -> the list part (flags are nohz, domain, managed_irq)
isolcpus_list() {
  local v=$1
  while [[ $v =~ ^(nohz|domain|managed_irq),(.*)$ ]]; do v=${BASH_REMATCH[2]}; done
  case "$v" in nohz | domain | managed_irq) v="" ;; esac
  printf '%s' "$v"
}

# The housekeeping CPUs: online CPUs that are not shard cores.
housekeeping_cpus() {
  cpuset_minus "$ONLINE_CPUS" "$SHARD_CORES"
}

# ---- writing (apply.sh, restore.sh) -----------------------------------------------------------

# write_value HOSTPATH VALUE: write VALUE to an existing sysfs/procfs file under the root. On a
# fake root, sysfs choice files ("always [madvise] never") are rewritten the way the kernel
# shows them after such a write, so a fake tree reads back like the real one. Prints the
# error and returns 1 when the file is missing or the write is refused.
write_value() {
  local f cur tok found=0 choice_line=""
  local -a toks
  f=$(p "$1")
  if [ ! -f "$f" ]; then
    echo "$1 does not exist"
    return 1
  fi
  if fake_root && cur=$(read_line "$1") && [[ $cur =~ \[[^]]*\] ]]; then
    read -ra toks <<<"${cur//[][]/}"
    for tok in "${toks[@]}"; do
      if [ "$tok" = "$2" ]; then
        choice_line+="[$tok] "
        found=1
      else
        choice_line+="$tok "
      fi
    done
    if [ "$found" = 0 ]; then
      echo "$1: invalid value '$2' (choices: ${toks[*]})"
      return 1
    fi
    { printf '%s\n' "${choice_line% }" >"$f"; } 2>&1 || return 1
    return 0
  fi
  { printf '%s\n' "$2" >"$f"; } 2>&1 || return 1
}

# state_dir: the (absolute) state directory apply.sh saves to and restore.sh reads
state_dir() {
  local d
  if [ -n "${STATE_DIR_ARG:-}" ]; then
    d=$STATE_DIR_ARG
  elif [ -n "${VELOZ_STATE_DIR:-}" ]; then
    d=$VELOZ_STATE_DIR
  else
    d=$(p /var/lib/veloz-tuning)
  fi
  # absolute, so restore.sh finds what it records from any directory
  [[ $d == /* ]] || d=$PWD/$d
  printf '%s' "${d%/}"
}

# the memlock limits file for the service user
LIMITS_FILE=/etc/security/limits.d/veloz.conf
limits_content() {
  cat <<EOT
# Written by Veloz tuning/apply.sh; tuning/restore.sh removes it.
# glommio locks memory for its io_uring buffers: below 512 KiB executor creation fails, and a
# short limit makes it skip buffer registration. pam_limits applies this at the next login;
# a systemd service needs LimitMEMLOCK=infinity in its unit instead.
$1 soft memlock unlimited
$1 hard memlock unlimited
EOT
}

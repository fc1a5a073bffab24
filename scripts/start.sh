#!/usr/bin/env bash
# scripts/start.sh [--config FILE] [--data DIR] [--bin PATH] [--run-dir DIR] [--listen ADDR]
#                  [--timeout S] [--dry-run] [--print-paths]
#
# Starts `veloz serve` in the background, detached from this shell (setsid + nohup), and
# waits until it listens. Prints the address, the pid, the cores and the log file, exit 0.
#   - The pid file (veloz.pid) and the log file (veloz.log: the engine's stdout and stderr)
#     live in the run directory: --run-dir DIR, else the data directory. The log of the
#     previous run is kept as veloz.log.1.
#   - The data directory is --data DIR, else `data_dir` in the [engine] table of --config
#     FILE, else veloz-data (the embedded default); a relative path is taken from the current
#     directory, as `veloz serve` would, and handed to the engine as an absolute --data.
#   - Refuses to start (exit 1) while the pid file names a live `veloz serve`; a stale pid file
#     (the process is gone) is reported and replaced.
#   - NUMA: when the machine has more than one NUMA node, numactl is installed and every shard
#     core ([engine] cores, or every online CPU when unset) sits on one node N, the engine runs
#     under `numactl --cpunodebind=N --membind=N`, so its threads and their memory stay on the
#     shard cores' node. Cores that span nodes are reported and left unbound.
#   - Waits up to --timeout S seconds (default 60) for the engine's `veloz: listening on` line
#     (recovery replays the journals before any port opens). When the engine exits first, the
#     last lines of its log are shown and the exit status is 1. When the time runs out the
#     engine is left running (a long journal may still be replaying) and the exit status is 1.
# --listen ADDR  overrides [gateway] listen (e.g. 127.0.0.1:0 for any free port).
# --dry-run      prints the paths, the NUMA decision and the command; starts and writes nothing.
# --print-paths  prints config=, data_dir=, run_dir=, pid_file=, log_file= and bin= (empty when
#                no binary is found) lines and exits: stop.sh, status.sh and replay.sh find
#                the engine's files this way.
#
# Environment (each overridden by its option):
#   VELOZ_CONFIG         config file (default: none, the engine's embedded default)
#   VELOZ_DATA           data directory
#   VELOZ_BIN            the veloz binary (default: target/release/veloz of this checkout,
#                        else veloz on PATH)
#   VELOZ_RUN_DIR        run directory for the pid and log files
#   VELOZ_START_TIMEOUT  seconds to wait for the listening line (default 60)
#   VELOZ_NUMACTL        the numactl binary (default: numactl on PATH); "none" never binds
#   VELOZ_SYSROOT        root prefix for the sysfs NUMA lookup (tests; see tuning/lib.sh)
# Exit status: 0 started (or dry run), 1 not started or not listening, 2 bad arguments.
set -euo pipefail

PROG=start.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# cpu-list helpers, config_cores, online_cpus, read_line and p() (the sysfs root prefix)
# shellcheck source-path=SCRIPTDIR source=../tuning/lib.sh
. "$HERE/../tuning/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

fail() {
  echo "$PROG: $*" >&2
  exit 1
}

config=${VELOZ_CONFIG:-} data=${VELOZ_DATA:-} bin=${VELOZ_BIN:-} run_dir=${VELOZ_RUN_DIR:-}
timeout=${VELOZ_START_TIMEOUT:-60} listen="" dry=0 print_paths=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --config=*) config=${1#*=}; shift ;;
    --data) data=${2:?--data needs a directory}; shift 2 ;;
    --data=*) data=${1#*=}; shift ;;
    --bin) bin=${2:?--bin needs the path of the veloz binary}; shift 2 ;;
    --bin=*) bin=${1#*=}; shift ;;
    --run-dir) run_dir=${2:?--run-dir needs a directory}; shift 2 ;;
    --run-dir=*) run_dir=${1#*=}; shift ;;
    --listen) listen=${2:?--listen needs HOST:PORT}; shift 2 ;;
    --listen=*) listen=${1#*=}; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --dry-run) dry=1; shift ;;
    --print-paths) print_paths=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $timeout =~ ^[0-9]+$ ]] || fail "--timeout '$timeout' is not a number of seconds"

abspath() {
  if [[ $1 == /* ]]; then printf '%s' "${1%/}"; else printf '%s/%s' "$PWD" "${1%/}"; fi
}

# engine_value KEY FILE: the value of KEY in the [engine] table (quotes removed), if set.
engine_value() {
  awk -v key="$1" '
    /^[[:space:]]*\[/ { engine = ($0 ~ /^[[:space:]]*\[[[:space:]]*engine[[:space:]]*\][[:space:]]*(#.*)?$/); next }
    engine && $0 ~ ("^[[:space:]]*" key "[[:space:]]*=") {
      v = $0
      sub(/^[^=]*=[[:space:]]*/, "", v)
      q = substr(v, 1, 1)
      if (q == "\"" || q == "\047") { v = substr(v, 2); sub(q ".*$", "", v) }
      else { sub(/[[:space:]]*#.*$/, "", v); sub(/[[:space:]]+$/, "", v) }
      print v
      exit
    }
  ' "$2"
}

# ---- paths ------------------------------------------------------------------------------------
if [ -n "$config" ]; then
  [ -f "$config" ] || fail "config file not found: $config"
  config=$(abspath "$config")
fi
if [ -z "$data" ] && [ -n "$config" ]; then
  data=$(engine_value data_dir "$config")
fi
data=$(abspath "${data:-veloz-data}")
run_dir=$(abspath "${run_dir:-$data}")
pid_file=$run_dir/veloz.pid
log_file=$run_dir/veloz.log

# ---- the binary -------------------------------------------------------------------------------
# find_bin: print the absolute path of the veloz binary; print why and return 1 when none
find_bin() {
  local exe=$bin
  if [ -z "$exe" ]; then
    if [ -x "$HERE/../target/release/veloz" ]; then
      exe=$HERE/../target/release/veloz
    elif ! exe=$(command -v veloz); then
      echo "no veloz binary: build it with 'make build', or pass --bin PATH"
      return 1
    fi
  elif [[ $exe != */* ]] && ! exe=$(command -v "$exe"); then
    echo "--bin $bin: no such command on PATH"
    return 1
  fi
  if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then
    echo "--bin $exe is not an executable file"
    return 1
  fi
  (cd "$(dirname "$exe")" && printf '%s/%s' "$PWD" "${exe##*/}")
}

if [ "$print_paths" = 1 ]; then
  bin=$(find_bin) || bin=""
  printf 'config=%s\ndata_dir=%s\nrun_dir=%s\npid_file=%s\nlog_file=%s\nbin=%s\n' \
    "$config" "$data" "$run_dir" "$pid_file" "$log_file" "$bin"
  exit 0
fi

bin=$(find_bin) || fail "$bin"
# Check the config before detaching, so a typo is an error here rather than in the log.
if [ -n "$config" ] && ! check=$("$bin" config --config "$config" 2>&1 >/dev/null); then
  fail "$check"
fi

# ---- NUMA binding -----------------------------------------------------------------------------
# node_of_cpu N: the NUMA node of a CPU; return 1 when sysfs does not say
node_of_cpu() {
  local d list
  for d in "$(p "/sys/devices/system/cpu/cpu$1")"/node[0-9]*; do
    [ -e "$d" ] || continue
    printf '%s' "${d##*/node}"
    return 0
  done
  for d in "$(p /sys/devices/system/node)"/node[0-9]*; do
    list=$(read_line "${d#"$SYSROOT"}/cpulist") || continue
    if [ -n "$(cpuset_and "$1" "$(cpulist_expand "$list" || true)")" ]; then
      printf '%s' "${d##*/node}"
      return 0
    fi
  done
  return 1
}

numactl=${VELOZ_NUMACTL:-$(command -v numactl || true)}
numa_node="" numa_note=""
decide_numa() {
  local raw cores nodes=() c n node d
  n=0
  for d in "$(p /sys/devices/system/node)"/node[0-9]*; do
    [ -d "$d" ] && n=$((n + 1))
  done
  if [ "$n" -le 1 ]; then
    numa_note="not bound: sysfs shows $n NUMA node(s), nothing to choose"
    return
  fi
  raw=""
  [ -z "$config" ] || raw=$(config_cores "$config")
  if [ -n "$raw" ]; then
    cores=$(cpulist_expand "$raw") || fail "$config: [engine] cores = '$raw' is not a list of CPU numbers"
  else
    cores=$(online_cpus)
  fi
  if [ -z "$cores" ]; then
    numa_note="not bound: the shard cores are not known (no /sys/devices/system/cpu/online)"
    return
  fi
  for c in $cores; do
    node=$(node_of_cpu "$c") || {
      numa_note="not bound: the NUMA node of core $c is not known to sysfs"
      return
    }
    nodes+=("$node")
  done
  read -ra nodes <<<"$(cpuset_union "${nodes[*]}")"
  if [ "${#nodes[@]}" -ne 1 ]; then
    numa_note="not bound: shard cores $(cpulist_compress "$cores") span NUMA nodes ${nodes[*]} (choose [engine] cores on one node; see tuning/check.sh)"
  elif [ -z "$numactl" ] || [ "$numactl" = none ]; then
    numa_note="not bound: shard cores $(cpulist_compress "$cores") are on node ${nodes[0]}, but numactl is not installed (apt-get install numactl)"
  elif [ ! -x "$numactl" ]; then
    fail "VELOZ_NUMACTL=$numactl is not an executable file"
  else
    numa_node=${nodes[0]}
    numa_note="bound to node $numa_node (shard cores $(cpulist_compress "$cores")): $numactl --cpunodebind=$numa_node --membind=$numa_node"
  fi
}
decide_numa

cmd=("$bin" serve --data "$data")
[ -z "$config" ] || cmd+=(--config "$config")
[ -z "$listen" ] || cmd+=(--listen "$listen")
if [ -n "$numa_node" ]; then
  cmd=("$numactl" "--cpunodebind=$numa_node" "--membind=$numa_node" "${cmd[@]}")
fi

if [ "$dry" = 1 ]; then
  echo "$PROG: dry run, nothing started"
  echo "  data dir:  $data"
  echo "  pid file:  $pid_file"
  echo "  log:       $log_file"
  echo "  numa:      $numa_note"
  echo "  command:   ${cmd[*]}"
  exit 0
fi

# ---- refuse to start twice --------------------------------------------------------------------
# veloz_pid PID: true when PID is a live (not zombie) process running `... serve ...`
veloz_pid() {
  local stat args
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  args=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  grep -qx serve <<<"$args"
}

mkdir -p "$data" "$run_dir"
# Two start.sh racing for one run directory: the second one stops here. The engine does not
# inherit the lock (9>&- below), so it is free again once this script exits.
exec 9>>"$run_dir/veloz.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  fail "another start.sh is starting veloz in $run_dir right now"
fi
if [ -f "$pid_file" ]; then
  old=$(head -c 32 "$pid_file" | tr -dc 0-9)
  if [ -n "$old" ] && veloz_pid "$old"; then
    fail "veloz is already running (pid $old, pid file $pid_file); stop it first with scripts/stop.sh"
  fi
  echo "$PROG: removing the stale pid file $pid_file (pid ${old:-?} is not running: the last run did not stop through stop.sh)" >&2
  rm -f "$pid_file"
fi

# ---- start ------------------------------------------------------------------------------------
[ ! -f "$log_file" ] || mv -f "$log_file" "$log_file.1"
printf '# %s %s: %s\n# numa: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "${cmd[*]}" "$numa_note" >"$log_file"
detach=(nohup)
if command -v setsid >/dev/null 2>&1; then
  # Its own session: no controlling terminal, and a Ctrl-C in this shell does not reach it.
  # (A background job of a script is no process group leader, so setsid execs in place and
  # $! is the engine's pid.)
  detach=(setsid nohup)
fi
"${detach[@]}" "${cmd[@]}" </dev/null >>"$log_file" 2>&1 9>&- &
pid=$!
printf '%s\n' "$pid" >"$pid_file.tmp"
mv -f "$pid_file.tmp" "$pid_file"

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME; date on older shells)
now_us() {
  if [ -n "${EPOCHREALTIME:-}" ]; then
    printf '%s' "${EPOCHREALTIME//[.,]/}"
  else
    date +%s%6N
  fi
}

# alive PID: the process exists and is not a zombie (it is our child until this script ends)
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

deadline=$(($(now_us) + timeout * 1000000))
addr=""
while :; do
  addr=$(sed -n 's/^veloz: listening on //p' "$log_file" | head -n 1)
  [ -z "$addr" ] || break
  if ! alive "$pid"; then
    rc=0
    wait "$pid" || rc=$?
    rm -f "$pid_file"
    {
      echo "$PROG: veloz exited with status $rc before listening; last lines of $log_file:"
      tail -n 20 "$log_file" | sed 's/^/  | /'
    } >&2
    exit 1
  fi
  if (($(now_us) >= deadline)); then
    {
      echo "$PROG: veloz (pid $pid) is running but printed no 'listening on' line within ${timeout}s;"
      echo "  it may still be replaying its journals. It was left running: watch $log_file,"
      echo "  check it with scripts/status.sh, or stop it with scripts/stop.sh. Last lines:"
      tail -n 10 "$log_file" | sed 's/^/  | /'
    } >&2
    exit 1
  fi
  sleep 0.1
done

cores=$(sed -n 's/^veloz: starting \(.*\), data in .*/\1/p' "$log_file" | head -n 1)
metrics=$(sed -n 's/^veloz: metrics on //p' "$log_file" | head -n 1)
echo "$PROG: veloz started (pid $pid)"
echo "  listening: $addr"
[ -z "$metrics" ] || echo "  metrics:   $metrics"
[ -z "$cores" ] || echo "  cores:     $cores"
echo "  numa:      $numa_note"
echo "  data dir:  $data"
echo "  log:       $log_file"
echo "  pid file:  $pid_file"

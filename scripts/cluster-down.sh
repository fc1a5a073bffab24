#!/usr/bin/env bash
# scripts/cluster-down.sh [--dir DIR] [--timeout S]
#
# Stops the local NATS cluster that scripts/cluster-up.sh started from DIR (--dir, default
# target/nats-cluster of this checkout): every node whose pid file DIR/nK.pid names a live
# nats-server gets SIGTERM; nodes still running --timeout S seconds later (default 10) get
# SIGKILL. Says which nodes it stopped (marking those it had to kill), then removes their pid
# files.
# The configs, logs and JetStream stores stay in DIR (remove DIR to start from scratch).
#   - Nothing running (no pid files, or stale ones, which are removed) is not an error: it says
#     so and exits 0, so running it twice is harmless.
#   - Only processes whose command is nats-server are signalled: a pid file whose pid now
#     belongs to another program is reported as stale and removed.
# Exit status: 0 stopped or nothing running, 1 a node could not be signalled or did not die,
# 2 bad arguments.
set -euo pipefail

PROG=cluster-down.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

dir="" timeout=10
while [ "$#" -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout '$timeout' is not a number of seconds"
[ -n "$dir" ] || dir=$HERE/../target/nats-cluster
if [ ! -d "$dir" ]; then
  echo "$PROG: no cluster in $dir (no such directory); nothing to stop"
  exit 0
fi
dir=$(cd "$dir" && pwd)

# nats_alive PID: a live (not zombie) process whose command is nats-server
nats_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  local argv0=""
  IFS= read -r -d '' argv0 <"/proc/$1/cmdline" 2>/dev/null || [ -n "$argv0" ] || return 1
  [[ $argv0 == *nats-server ]]
}

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME; date on older shells)
now_us() {
  if [ -n "${EPOCHREALTIME:-}" ]; then
    printf '%s' "${EPOCHREALTIME//[.,]/}"
  else
    date +%s%6N
  fi
}

names=() pids=() killed=() rc=0
for pid_file in "$dir"/n[0-9]*.pid; do
  [ -f "$pid_file" ] || continue
  name=$(basename "$pid_file" .pid)
  pid=$(head -c 32 "$pid_file" | tr -dc 0-9)
  if [ -z "$pid" ] || ! nats_alive "$pid"; then
    echo "$PROG: node $name is not running: removed the stale pid file $pid_file (pid ${pid:-?})"
    rm -f "$pid_file"
    continue
  fi
  if ! err=$(kill -TERM "$pid" 2>&1); then
    echo "$PROG: cannot signal node $name (pid $pid): $err" >&2
    rc=1
    continue
  fi
  names+=("$name") pids+=("$pid")
done
if [ "${#pids[@]}" -eq 0 ]; then
  [ "$rc" = 1 ] || echo "$PROG: no cluster node running from $dir; nothing to stop"
  exit "$rc"
fi
echo "$PROG: sent SIGTERM to ${names[*]} (pids ${pids[*]}); waiting up to ${timeout}s"

deadline=$(($(now_us) + timeout * 1000000))
while :; do
  left=()
  for i in "${!pids[@]}"; do
    nats_alive "${pids[$i]}" && left+=("$i")
  done
  [ "${#left[@]}" -gt 0 ] || break
  if (($(now_us) >= deadline)); then
    for i in "${left[@]}"; do
      echo "$PROG: node ${names[$i]} (pid ${pids[$i]}) did not exit within ${timeout}s of SIGTERM: sent SIGKILL" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      killed[i]=1
    done
    for _ in $(seq 50); do
      still=0
      for i in "${left[@]}"; do nats_alive "${pids[$i]}" && still=1; done
      [ "$still" = 1 ] || break
      sleep 0.1
    done
    for i in "${left[@]}"; do
      if nats_alive "${pids[$i]}"; then
        echo "$PROG: node ${names[$i]} (pid ${pids[$i]}) is still running after SIGKILL" >&2
        rc=1
      fi
    done
    break
  fi
  sleep 0.1
done

stopped=()
for i in "${!pids[@]}"; do
  if ! nats_alive "${pids[$i]}"; then
    rm -f "$dir/${names[$i]}.pid"
    stopped+=("${names[$i]} (pid ${pids[$i]}${killed[$i]:+, SIGKILL})")
  fi
done
if [ "${#stopped[@]}" -gt 0 ]; then
  list=$(printf ', %s' "${stopped[@]}")
  echo "$PROG: stopped ${list#, } of the cluster in $dir"
fi
exit "$rc"

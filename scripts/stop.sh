#!/usr/bin/env bash
# scripts/stop.sh [--config FILE] [--data DIR] [--run-dir DIR] [--timeout S]
#
# Stops the engine that scripts/start.sh started (same --config/--data/--run-dir, which locate
# its pid file). Sends SIGTERM; the engine drains, answers, syncs its journals and writes the
# clean-shutdown marker DATA/shutdown.json before it exits. This script waits for both: the
# process gone and the marker there. Then it removes the pid file.
#   - Only when the engine has not exited --timeout S seconds (default 30, as TimeoutStopSec
#     in scripts/veloz.service) after SIGTERM does it send SIGKILL, and then it says so loudly
#     and exits 1: a killed engine wrote no marker, and its next start recovers from the
#     journal.
#   - An engine that exits without writing the marker (it failed while stopping) is reported
#     with the last lines of its log, exit 1.
#   - Not running (no pid file, or a stale one, which is removed) is not an error: exit 0, with
#     a warning when the last run left no clean-shutdown marker.
#
# Environment (each overridden by its option): VELOZ_CONFIG, VELOZ_DATA, VELOZ_RUN_DIR (as for
# scripts/start.sh), VELOZ_STOP_TIMEOUT (seconds, default 30).
# Exit status: 0 stopped cleanly or not running, 1 not stopped cleanly, 2 bad arguments.
set -euo pipefail

PROG=stop.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

where=() timeout=${VELOZ_STOP_TIMEOUT:-30}
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config | --data | --run-dir)
      [ "$#" -ge 2 ] || die "$1 needs a value"
      where+=("$1" "$2")
      shift 2
      ;;
    --config=* | --data=* | --run-dir=*) where+=("$1"); shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout '$timeout' is not a number of seconds"

# The engine's files, as start.sh lays them out.
paths=$("$HERE/start.sh" --print-paths "${where[@]}") || exit 2
path_of() { sed -n "s/^$1=//p" <<<"$paths"; }
data_dir=$(path_of data_dir)
pid_file=$(path_of pid_file)
log_file=$(path_of log_file)
marker=$data_dir/shutdown.json

# alive PID: a live process (zombies count as gone) whose arguments include `serve`
veloz_alive() {
  local stat args
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  args=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  grep -qx serve <<<"$args"
}

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME; date on older shells)
now_us() {
  if [ -n "${EPOCHREALTIME:-}" ]; then
    printf '%s' "${EPOCHREALTIME//[.,]/}"
  else
    date +%s%6N
  fi
}

log_tail() {
  [ -f "$log_file" ] || return 0
  echo "  last lines of $log_file:"
  tail -n "${1:-15}" "$log_file" | sed 's/^/  | /'
}

if [ ! -f "$pid_file" ]; then
  echo "$PROG: veloz is not running (no pid file $pid_file)"
  exit 0
fi
pid=$(head -c 32 "$pid_file" | tr -dc 0-9)
[ -n "$pid" ] || die "$pid_file holds no pid; remove it once you know no engine runs on $data_dir"

if ! veloz_alive "$pid"; then
  rm -f "$pid_file"
  echo "$PROG: veloz is not running: removed the stale pid file $pid_file (pid $pid is gone)"
  if [ ! -f "$marker" ]; then
    {
      echo "$PROG: warning: no clean-shutdown marker $marker: the last run ended without a clean"
      echo "  stop (crash or kill); the next start recovers its state from the journals."
      log_tail 10
    } >&2
  fi
  exit 0
fi

echo "$PROG: sent SIGTERM to veloz (pid $pid); waiting up to ${timeout}s for it to exit and write $marker"
sent_at=$(date +%s)
if ! err=$(kill -TERM "$pid" 2>&1); then
  echo "$PROG: cannot signal veloz (pid $pid): $err; run as the engine's user or as root" >&2
  exit 1
fi
deadline=$(($(now_us) + timeout * 1000000))
while veloz_alive "$pid"; do
  if (($(now_us) >= deadline)); then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      veloz_alive "$pid" || break
      sleep 0.1
    done
    rm -f "$pid_file"
    {
      echo "$PROG: !!! veloz (pid $pid) did not exit within ${timeout}s of SIGTERM: sent SIGKILL !!!"
      echo "$PROG: !!! NOT a clean shutdown: no marker was written; the next start recovers from the"
      echo "$PROG: !!! journals (a torn tail is truncated with a warning). Find out why it hung:"
      log_tail 20
    } >&2
    exit 1
  fi
  sleep 0.1
done
rm -f "$pid_file"

# The engine removes the marker when it starts, so one written before SIGTERM is not its.
if [ ! -f "$marker" ] || (($(stat -c %Y "$marker") < sent_at)); then
  {
    echo "$PROG: veloz (pid $pid) exited, but wrote no clean-shutdown marker $marker:"
    echo "  it did not stop cleanly; the next start recovers its state from the journals."
    log_tail 20
  } >&2
  exit 1
fi
echo "$PROG: veloz stopped cleanly (pid $pid); clean-shutdown marker $marker"
# The engine's own summary: one line per shard with its last sequence and state hash.
if [ -f "$log_file" ]; then
  sed -n 's/^veloz: \(shard [0-9]* clean shutdown at .*\)/  \1/p' "$log_file"
fi

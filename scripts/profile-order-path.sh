#!/usr/bin/env bash
# scripts/profile-order-path.sh [--out DIR] [--seconds N] [--pipeline K] [--shard-core C]
#                               [--load-cores LIST] [--bin PATH] [--no-build]
#
# Where the shard's time per order goes: builds the release binary, starts an engine with one
# shard (on --shard-core, default 0) and journal durability "none" on a private data
# directory, drives it with `veloz load --closed-loop`, records the shard thread
# (veloz-shard-0) with `perf record -g` for N seconds of the run, and prints the per-function
# split of that thread (`perf report --no-children --sort symbol`, top 30). Results in one
# directory (default target/profile-results/<UTC time>/):
#   engine.toml     the configuration the engine ran with
#   start.txt       scripts/start.sh's output; engine.log the engine's log
#   load.txt        veloz load's report (throughput, latency)
#   perf.data       the recording (open it with `perf report -i perf.data`)
#   report.txt      `perf report` of the shard thread, every function
#   split.txt       the shard thread's top 30 functions, self time in percent (of the
#                   busiest thread named veloz-shard-0*: the one that polls)
#   host.txt        date, commit, kernel, CPUs, the perf event used
# The event is `cycles` when the host counts hardware events (`perf stat -e instructions`
# works), else the software event `cpu-clock` (VMs without a PMU).
#
# --out DIR          result directory (default target/profile-results/<UTC time>)
# --seconds N        seconds recorded (default 5); the load runs N + 3 seconds
# --pipeline K       closed-loop requests in flight per connection (default 256)
# --shard-core C     the shard's core (default 0)
# --load-cores LIST  cores of the load threads (default 1)
# --bin PATH         the veloz binary (default target/release/veloz, built first)
# --no-build         do not run `cargo build --release` first
#
# On a shared host, keep engine runs from overlapping:
#   flock /tmp/veloz-e2e.lock scripts/profile-order-path.sh
# The data directory is a fresh mktemp directory under /tmp, removed at the end.
# Environment: CARGO (default cargo), PERF (default perf).
# Exit status: 0 done, 1 a step failed, 2 bad arguments.
set -euo pipefail

PROG=profile-order-path.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PERF=${PERF:-perf}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

fail() {
  echo "$PROG: $*" >&2
  exit 1
}

out="" seconds=5 pipeline=256 shard_core=0 load_cores=1 bin="" build=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a number}; shift 2 ;;
    --shard-core) shard_core=${2:?--shard-core needs a core}; shift 2 ;;
    --load-cores) load_cores=${2:?--load-cores needs a CPU list}; shift 2 ;;
    --bin) bin=${2:?--bin needs the path of the veloz binary}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for n in "$seconds" "$pipeline"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive number"
done
[[ $shard_core =~ ^[0-9]+$ ]] || die "--shard-core '$shard_core' is not a core number"
command -v "$PERF" >/dev/null || die "perf not found (install linux-tools, or set PERF)"

out=${out:-$ROOT/target/profile-results/$(date -u +%Y%m%dT%H%M%SZ)}
[[ $out == /* ]] || out=$PWD/$out
mkdir -p "$out"
[ -z "$(ls -A "$out")" ] || die "$out is not empty: results of another run?"

if [ "$build" = 1 ]; then
  echo "$PROG: cargo build --release --bin veloz"
  (cd "$ROOT" && "${CARGO:-cargo}" build --release --locked --bin veloz) || fail "build failed"
fi
bin=${bin:-$ROOT/target/release/veloz}
[ -x "$bin" ] || die "no veloz binary at $bin (build it, or pass --bin PATH)"

# Hardware cycles where the PMU is there; perf stat exits 0 with "<not supported>" otherwise.
event=cycles
if ! "$PERF" stat -x, -e instructions true 2>&1 >/dev/null | grep -q '^[0-9]'; then
  event=cpu-clock
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "kernel: $(uname -srm)"
  echo "cpus: $(nproc) online; $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | paste -sd';' -)"
  echo "binary: $bin"
  echo "perf event: $event"
  echo "shard core: $shard_core; load cores: $load_cores; pipeline: $pipeline; seconds: $seconds"
} >"$out/host.txt"

# The embedded configuration: one shard on the shard core, no fsync, every port picked by
# the kernel, no market-data feed, small journal segments.
config=$out/engine.toml
"$bin" config | awk -v core="$shard_core" '
  /^\[/ { section = $0 }
  /^(listen|ws_listen)[[:space:]]*=/ { sub(/:[0-9]+"/, ":0\"") }
  section == "[engine]" && /^cores[[:space:]]*=/ { $0 = "cores = [" core "]" }
  section == "[journal]" && /^durability[[:space:]]*=/ { $0 = "durability = \"none\"" }
  section == "[journal]" && /^segment_size[[:space:]]*=/ { $0 = "segment_size = 16777216" }
  section == "[feed]" && /^enabled[[:space:]]*=/ { $0 = "enabled = false" }
  { print }
' >"$config"

data=$(mktemp -d /tmp/veloz-profile.XXXXXX)
engine_up=0
cleanup() {
  if [ "$engine_up" = 1 ]; then
    "$HERE/stop.sh" --data "$data" >/dev/null || echo "$PROG: stop.sh failed" >&2
  fi
  [ ! -f "$data/veloz.log" ] || cp "$data/veloz.log" "$out/engine.log"
  rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/start.sh" --config "$config" --data "$data" --bin "$bin" | tee "$out/start.txt" ||
  fail "the engine did not start (see $out/start.txt)"
engine_up=1
addr=$(sed -n 's/^ *listening: *//p' "$out/start.txt")
pid=$(cat "$data/veloz.pid")
[ -n "$addr" ] || fail "no listening address in start.txt"

# The shard's threads are named veloz-shard-0 (glommio may append its executor id: -1). After
# the warm-up the one that busy-polls is the one with the most CPU time: record that one.
shard_threads() {
  local task comm
  for task in /proc/"$pid"/task/*; do
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    case "$comm" in
      veloz-shard-0 | veloz-shard-0-*) echo "${task##*/}" ;;
    esac
  done
}
[ -n "$(shard_threads)" ] || fail "no veloz-shard-0 thread in process $pid"

warmup=2
echo "$PROG: veloz load --closed-loop --pipeline $pipeline against $addr; recording ${seconds}s ($event)"
"$bin" load --connect "$addr" --config "$config" --closed-loop --pipeline "$pipeline" \
  --cores "$load_cores" --connections 1 --warmup "$warmup" --duration "$((seconds + 1))" \
  >"$out/load.txt" 2>&1 &
load_pid=$!
sleep "$warmup"
tid="" best=-1
for t in $(shard_threads); do
  # utime + stime: fields 14 and 15 of /proc/PID/task/TID/stat (the name, field 2, has no
  # spaces here).
  read -r -a stat <"/proc/$pid/task/$t/stat"
  ticks=$((stat[13] + stat[14]))
  if [ "$ticks" -gt "$best" ]; then
    tid=$t best=$ticks
  fi
done
comm=$(cat "/proc/$pid/task/$tid/comm")
echo "$PROG: the shard thread: $tid ($comm, $best ticks of CPU so far)"
echo "shard thread: $tid ($comm)" >>"$out/host.txt"
"$PERF" record -g -e "$event" -t "$tid" -o "$out/perf.data" -- sleep "$seconds" \
  >"$out/perf-record.txt" 2>&1 || fail "perf record failed (see $out/perf-record.txt)"
wait "$load_pid" || fail "veloz load failed (see $out/load.txt)"

"$PERF" report -i "$out/perf.data" --stdio --no-children --sort symbol --tid "$tid" \
  -g none >"$out/report.txt" 2>/dev/null || fail "perf report failed"
# No `| head` here: under pipefail its early exit would fail the pipeline.
# Keep percent, [.] user / [k] kernel, symbol (drop perf's empty IPC columns).
awk '/^[[:space:]]+[0-9.]+%/ && n++ < 30 {
  sub(/[[:space:]]+-[[:space:]]+-[[:space:]]*$/, ""); print
}' "$out/report.txt" >"$out/split.txt"

echo
echo "== load (load.txt)"
sed -n '1,8p' "$out/load.txt"
echo
echo "== $comm (thread $tid), self time by function (top 30, $event)"
cat "$out/split.txt"
echo
echo "$PROG: results in $out"

#!/usr/bin/env bash
# scripts/bench-fix.sh [--bin PATH] [--out DIR] [--rate R] [--duration S] [--warmup S]
#                      [--connections N] [--pipeline K] [--rounds N] [--engine-core C]
#                      [--load-cores L] [--no-closed] [--no-parse-bench] [--quick]
#
# The FIX order-entry benchmark of docs/BENCHMARKS.md (issue 15): the binary protocol and
# FIX 4.4 against the SAME engine, same mix, rate, connections and duration. It starts one
# engine (one shard on --engine-core, durability "none", every port picked by the kernel, a
# fresh data directory, the FIX acceptor on), then per round runs `veloz load` on
# --load-cores:
#   open loop at R orders/s, binary        -> open-binary-<round>.json
#   open loop at R orders/s, --protocol fix -> open-fix-<round>.json
#   closed loop, K in flight per connection, binary and fix -> closed-<proto>-<round>.json
# (each run after a warm-up of --warmup s; every run mass-cancels its orders at the end, so
# they follow each other on one engine), stops the engine, and runs the FIX codec's own
# benchmark (`cargo bench -p veloz-fix --bench parse`, criterion) into parse.txt. It prints
# summary.txt: per run p50/p90/p99/p99.9/max (us), answered/s, rejects and unanswered,
# the engine's CPU per 1,000 orders, and per round the FIX/binary p50 ratio of the open-loop
# runs (the issue's target: at most 1.5) and of the closed-loop throughput.
# The host's load average and busiest processes are recorded before the runs (host.txt).
#
# --bin PATH        the veloz binary (default target/release/veloz; built when missing)
# --out DIR         result directory (default target/bench-results/fix-<UTC time>)
# --rate R          open-loop orders per second, both protocols (default 100000)
# --duration S      seconds measured per run (default 10)
# --warmup S        seconds of load before each measured window (default 2)
# --connections N   sessions per run (default 2: the demo accounts 1 and 2, one each)
# --pipeline K      closed loop: requests in flight per connection (default 256)
# --rounds N        rounds, each binary then FIX (default 2)
# --engine-core C   the engine's shard core (default 0)
# --load-cores L    the load's cores (default 1)
# --no-closed       open loop only (more rounds in the same time)
# --no-parse-bench  skip the criterion benchmark of the FIX parser
# --quick           3 s runs, one round
#
# Run it on a quiet host, or read every figure as one of a noisy pair: with two vCPUs the
# engine and the load each get one core and share them with everything else.
# Exit status: 0 when every run finished, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="" out="" rate=100000 duration=10 warmup=2 connections=2 pipeline=256 rounds=2
engine_core=0 load_cores=1 parse_bench=1 closed=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --rate) rate=${2:?--rate needs orders per second}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs seconds}; shift 2 ;;
    --connections) connections=${2:?--connections needs a number}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a number}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --engine-core) engine_core=${2:?--engine-core needs a core}; shift 2 ;;
    --load-cores) load_cores=${2:?--load-cores needs a core list}; shift 2 ;;
    --no-closed) closed=0; shift ;;
    --no-parse-bench) parse_bench=0; shift ;;
    --quick) duration=3; rounds=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
command -v jq > /dev/null || die "jq is needed to read the load's JSON reports"
[ -n "$out" ] || out="$ROOT/target/bench-results/fix-$(date -u +%Y%m%dT%H%M%SZ)"
[ -n "$bin" ] || bin="$ROOT/target/release/veloz"
CARGO=${CARGO:-cargo}
if [ ! -x "$bin" ]; then
  (cd "$ROOT" && "$CARGO" build --release --bin veloz) || die "cannot build $bin"
fi
mkdir -p "$out"
failed=0

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc); kernel: $(uname -r)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busiest processes:"
  ps aux --sort=-%cpu | head -6 | cut -c1-160
} > "$out/host.txt"
cat "$out/host.txt"

dir=$(mktemp -d "${TMPDIR:-/tmp}/veloz-bench-fix.XXXXXX")
pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin" config | sed -e "s/^cores = \[\]/cores = [$engine_core]/" \
  -e 's/^durability = "group"/durability = "none"/' \
  -e "s#^data_dir = .*#data_dir = \"$dir/data\"#" \
  -e 's#"127.0.0.1:77[0-9][0-9]"#"127.0.0.1:0"#' > "$dir/veloz.toml"
grep -q '^\[fix\]' "$dir/veloz.toml" || die "the engine's configuration has no [fix] section"
"$bin" serve --config "$dir/veloz.toml" > "$dir/out.log" 2> "$dir/err.log" &
pid=$!
addr="" fix=""
for _ in $(seq 300); do
  addr=$(sed -n 's/^veloz: listening on \([0-9.:]*\).*/\1/p' "$dir/out.log" | head -1)
  fix=$(sed -n 's/^veloz: FIX 4.4 order entry on \([0-9.:]*\).*/\1/p' "$dir/out.log" | head -1)
  [ -n "$addr" ] && [ -n "$fix" ] && break
  sleep 0.1
done
if [ -z "$addr" ] || [ -z "$fix" ]; then
  echo "$PROG: the engine did not start (binary '$addr', FIX '$fix'):" >&2
  cat "$dir/err.log" >&2
  exit 1
fi
echo "$PROG: engine $pid, binary on $addr, FIX on $fix; results in $out"

# load NAME PROTOCOL LOAD ARGS...: one `veloz load` run into $out/NAME.json.
load() {
  local name=$1 protocol=$2
  shift 2
  "$bin" load --connect "$addr" --protocol "$protocol" --fix-connect "$fix" \
    --connections "$connections" --cores "$load_cores" --duration "$duration" \
    --warmup "$warmup" --engine-pid "$pid" --json "$@" \
    > "$out/$name.json" 2> "$out/$name.err"
}

# run NAME PROTOCOL -- LOAD ARGS...: a load run, tried twice (on this shared host a stall of
# seconds can time a logon out), and its summary row.
run() {
  local name=$1 protocol=$2
  shift 3
  if ! load "$name" "$protocol" "$@"; then
    echo "$PROG: $name failed, once more: $(tail -1 "$out/$name.err")" | tee -a "$out/retries.txt" >&2
    if ! load "$name" "$protocol" "$@"; then
      echo "$PROG: $name failed:" >&2
      cat "$out/$name.err" >&2
      failed=1
      return
    fi
  fi
  jq -r --arg name "$name" 'def r: . * 10 | round / 10;
    .veloz as $v | $v.latency_us as $l |
    [$name, ($v.answered_per_s | floor), ($l.p50 | r), ($l.p90 | r), ($l.p99 | r),
     ($l.p99_9 | r), ($l.max | r), $v.rejected, $v.unanswered, ($v.send_lag_us.p99 | r),
     (.engine_cpu.process_ms_per_1000_orders // null | if . == null then "-" else r end)]
    | @tsv' "$out/$name.json" >> "$out/rows.tsv"
}

# p50 NAME / answered NAME: one figure of a finished run.
figure() {
  jq -r "$2" "$out/$1.json" 2> /dev/null || echo ""
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

: > "$out/rows.tsv"
ratios=""
for round in $(seq "$rounds"); do
  run "open-binary-$round" binary -- --rate "$rate"
  run "open-fix-$round" fix -- --rate "$rate"
  if [ "$closed" = 1 ]; then
    run "closed-binary-$round" binary -- --closed-loop --pipeline "$pipeline"
    run "closed-fix-$round" fix -- --closed-loop --pipeline "$pipeline"
  fi
  p50=$(ratio "$(figure "open-fix-$round" .veloz.latency_us.p50)" \
    "$(figure "open-binary-$round" .veloz.latency_us.p50)")
  p99=$(ratio "$(figure "open-fix-$round" .veloz.latency_us.p99)" \
    "$(figure "open-binary-$round" .veloz.latency_us.p99)")
  thr=$(ratio "$(figure "closed-fix-$round" .veloz.answered_per_s)" \
    "$(figure "closed-binary-$round" .veloz.answered_per_s)")
  ratios+="round $round: open loop FIX/binary p50 $p50 (target <= 1.5), p99 $p99; closed-loop throughput FIX/binary $thr"$'\n'
done

kill -TERM "$pid" 2> /dev/null || true
wait "$pid" 2> /dev/null || true
pid=""
cp "$dir/err.log" "$out/engine.log"

if [ "$parse_bench" = 1 ]; then
  (cd "$ROOT" && "$CARGO" bench -p veloz-fix --bench parse -- --warm-up-time 1 --measurement-time 3) \
    > "$out/parse.txt" 2>&1 || failed=1
fi

{
  printf 'veloz load, binary vs FIX 4.4 on one engine (shard core %s, load cores %s, %s connections, %s s after %s s warm-up)\n' \
    "$engine_core" "$load_cores" "$connections" "$duration" "$warmup"
  printf '%-16s %10s %8s %8s %8s %8s %9s %7s %6s %9s %8s\n' run answered/s p50 p90 p99 p99.9 max \
    rejects unans lag_p99 cpu/1k
  while IFS=$'\t' read -r name ans p50 p90 p99 p999 max rej una lag cpu; do
    printf '%-16s %10s %8s %8s %8s %8s %9s %7s %6s %9s %8s\n' "$name" "$ans" "$p50" "$p90" \
      "$p99" "$p999" "$max" "$rej" "$una" "$lag" "$cpu"
  done < "$out/rows.tsv"
  echo "(latency in us: round trip from intended send time to first answer; lag_p99: the load's own send lag)"
  printf '%s' "$ratios"
  if [ -f "$out/parse.txt" ]; then
    echo "veloz-fix codec (criterion, one message per iteration):"
    grep -E "^fix/|time:|thrpt:" "$out/parse.txt" || true
  fi
} | tee "$out/summary.txt"
exit "$failed"

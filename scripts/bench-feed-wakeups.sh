#!/usr/bin/env bash
# scripts/bench-feed-wakeups.sh [--bin PATH] [--rounds N] [--batches "0 500"] [--duration S]
#
# What the market-data feed thread's wake-ups cost (docs/BENCHMARKS.md, "Market-data
# fan-out", "The feed thread's wake-ups and the order path"). For each round and each
# `[feed] batch_us` value: one engine, one shard on core 0, `durability = "none"`, the feed
# on (no subscribers); `veloz load` open loop at 100,000 orders/s on core 1 with --baseline.
# Prints one line per run: the feed thread's share of a core and its context switches per
# second (from /proc over the middle 2 s of the run), and the load's `veloz / echo` line
# (p50, p90, p99, p99.9, p99.99, max as multiples of the echo floor measured in the run).
#
# --bin PATH      the veloz binary (default target/release/veloz; built when missing)
# --rounds N      rounds (default 2)
# --batches LIST  the batch_us values, alternated in each round (default "0 500")
# --duration S    seconds of load per run (default 5, at least 4)
#
# Exit status: 0 when every run finished, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="" rounds=2 batches="0 500" duration=5
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs the veloz binary}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --batches) batches=${2:?--batches needs a list}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ "$duration" -ge 4 ] 2>/dev/null || die "--duration must be a number of seconds, at least 4"
[ -n "$bin" ] || bin="$ROOT/target/release/veloz"
if [ ! -x "$bin" ]; then
  (cd "$ROOT" && cargo build --release --bin veloz) || die "cannot build $bin"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# run BATCH: one engine and one load run; prints the line described above.
run() {
  local d="$work/run" port=7798 engine task a b c1 c2 load
  rm -rf "$d"
  mkdir -p "$d"
  "$bin" config | sed -e 's/^cores = \[\]/cores = [0]/' \
    -e 's/^durability = "group"/durability = "none"/' \
    -e "s#^data_dir = .*#data_dir = \"$d/data\"#" \
    -e "s#\"127.0.0.1:7700\"#\"127.0.0.1:$port\"#" \
    -e 's#"127.0.0.1:7701"#"127.0.0.1:0"#' -e 's#"127.0.0.1:7702"#"127.0.0.1:0"#' \
    -e 's#"127.0.0.1:7703"#"127.0.0.1:0"#' -e 's#"127.0.0.1:7704"#"127.0.0.1:0"#' \
    -e "s/^batch_us = .*/batch_us = $1/" > "$d/cfg.toml"
  "$bin" serve --config "$d/cfg.toml" > "$d/serve.log" 2>&1 &
  engine=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  task=$(grep -l '^veloz-feed$' /proc/"$engine"/task/*/comm | head -1)
  task=$(dirname "$task")
  "$bin" load --connect "127.0.0.1:$port" --rate 100000 --duration "$duration" --cores 1 \
    --baseline > "$d/load.txt" 2>&1 &
  load=$!
  sleep 1
  a=$(awk '{print $14 + $15}' "$task/stat")
  c1=$(awk '/ctxt_switches/ {s += $2} END {print s}' "$task/status")
  sleep 2
  b=$(awk '{print $14 + $15}' "$task/stat")
  c2=$(awk '/ctxt_switches/ {s += $2} END {print s}' "$task/status")
  wait "$load" || failed=1
  kill -TERM "$engine"
  wait "$engine" || true
  # Clock ticks are hundredths of a second: ticks over 2 s are the percentage of a core x 2.
  echo "batch_us $1: feed thread $(( (b - a) / 2 ))% of a core, $(( (c2 - c1) / 2 )) context switches/s;" \
    "$(grep 'veloz / echo' "$d/load.txt" || echo 'no result')"
}

for round in $(seq "$rounds"); do
  echo "$PROG: round $round"
  for batch in $batches; do
    run "$batch"
  done
done
exit "$failed"

#!/usr/bin/env bash
# scripts/bench-feed.sh [--bin PATH] [--out DIR] [--rate R] [--duration S] [--runs N]
#                       [--ws N] [--binary N] [--engine-cores LIST] [--load-cores LIST]
#                       [--ws-channels LIST]
#
# The market-data fan-out benchmark of docs/BENCHMARKS.md: one engine (durability "none",
# ports picked by the kernel, data in a fresh directory) driven by `veloz load` in open loop,
# alternately WITHOUT and WITH market-data subscribers (N WebSocket subscribers, each on one
# instrument's channels, dealt round-robin, and N binary subscribers to everything), so that
# both kinds of run share the engine, the host and its noise. Prints the order path's
# round-trip percentiles of each run, the subscribers' feed latency (update received minus
# the command's engine timestamp) and the medians, then stops the engine.
#
# --bin PATH          the veloz binary (default: target/release/veloz; `make build` makes it)
# --out DIR           where the runs' output goes (default target/bench-results/feed-<UTC time>)
# --rate R            open-loop orders per second (default 100000)
# --duration S        seconds measured per run, after 2 s of warm-up (default 8)
# --runs N            pairs of runs (default 3)
# --ws N              WebSocket subscribers (default 100)
# --binary N          binary subscribers (default 10)
# --engine-cores L    the engine's shard cores (default: 0)
# --load-cores L      the load's cores; the subscriber threads are pinned to the first
#                     (default: the last online core)
# --ws-channels LIST  channels of each WebSocket subscriber (default l2,trades,ticker)
# --subscriber-core C the subscriber threads' core (default: the first load core)
#
# Exit status: 0 when every run completed, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="$ROOT/target/release/veloz" out="" rate=100000 duration=8 runs=3 ws=100 binary=10
engine_cores=0 load_cores="" ws_channels="l2,trades,ticker" sub_core=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --rate) rate=${2:?--rate needs orders per second}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --ws) ws=${2:?--ws needs a number}; shift 2 ;;
    --binary) binary=${2:?--binary needs a number}; shift 2 ;;
    --engine-cores) engine_cores=${2:?--engine-cores needs a list}; shift 2 ;;
    --load-cores) load_cores=${2:?--load-cores needs a list}; shift 2 ;;
    --ws-channels) ws_channels=${2:?--ws-channels needs a list}; shift 2 ;;
    --subscriber-core) sub_core=${2:?--subscriber-core needs a core}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (--help lists them)" ;;
  esac
done
[ -x "$bin" ] || die "no veloz binary at $bin: run 'make build' or pass --bin"
online=$(cat /sys/devices/system/cpu/online)
last_core=${online##*[-,]}
[ -n "$load_cores" ] || load_cores=$last_core
[ -n "$sub_core" ] || sub_core=${load_cores%%[-,]*}
[ -n "$out" ] || out="$ROOT/target/bench-results/feed-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

# The embedded configuration with the bench's cores, ports and durability.
"$bin" config >"$out/default.toml"
python3 - "$out/default.toml" "$out/veloz.toml" "$out/data" "$engine_cores" <<'EOF'
import re, sys
src, dst, data, cores = sys.argv[1:5]
text = open(src).read()
text = text.replace('cores = []', 'cores = [%s]' % cores, 1)
text = re.sub(r'data_dir = ".*"', 'data_dir = "%s"' % data, text, count=1)
text = re.sub(r'(?m)^(ws_listen|listen) = "127\.0\.0\.1:\d+"', r'\1 = "127.0.0.1:0"', text)
text = re.sub(r'durability = "\w+"', 'durability = "none"', text)
open(dst, "w").write(text)
EOF

engine_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [ -n "$engine_pid" ] && kill -0 "$engine_pid" 2>/dev/null; then
    kill -TERM "$engine_pid"
    wait "$engine_pid" || true
  fi
}
trap cleanup EXIT
"$bin" serve --config "$out/veloz.toml" >"$out/engine.out" 2>"$out/engine.log" &
engine_pid=$!
for _ in $(seq 1 300); do
  grep -q '^veloz: metrics on ' "$out/engine.out" 2>/dev/null && break
  kill -0 "$engine_pid" 2>/dev/null || die "the engine exited; see $out/engine.log"
  sleep 0.1
done
orders=$(sed -n 's/^veloz: listening on //p' "$out/engine.out")
feed=$(sed -n 's/^veloz: market data on \([^ ]*\) .*/\1/p' "$out/engine.out")
wsaddr=$(sed -n 's/^veloz: market data on .*ws:\/\/\([^/]*\)\/ws.*/\1/p' "$out/engine.out")
if [ -z "$orders" ] || [ -z "$feed" ] || [ -z "$wsaddr" ]; then
  die "no addresses from the engine; see $out/engine.out"
fi
echo "$PROG: engine on cores [$engine_cores] (orders $orders, binary feed $feed, websocket $wsaddr); load on $load_cores, subscribers on core $sub_core; $rate orders/s, $duration s x $runs pairs"

status=0
load() {
  "$bin" load --connect "$orders" --cores "$load_cores" --rate "$rate" --duration "$duration" \
    --warmup 2 --connections 2 "$@"
}
for i in $(seq 1 "$runs"); do
  load >"$out/plain-$i.txt" 2>&1 || status=1
  load --ws "$wsaddr" --ws-subscribers "$ws" --ws-channels "$ws_channels" \
    --feed "$feed" --feed-subscribers "$binary" --subscriber-core "$sub_core" \
    >"$out/fanout-$i.txt" 2>&1 || status=1
  printf 'pair %s\n  without: %s\n  with:    %s\n' "$i" \
    "$(grep '^  veloz  ' "$out/plain-$i.txt" || echo FAILED)" \
    "$(grep '^  veloz  ' "$out/fanout-$i.txt" || echo FAILED)"
  grep 'subscribers:' "$out/fanout-$i.txt" | sed 's/^/  /' || true
done
# Medians of p50 and p99 (columns 4 and 6 of the `veloz` row, microseconds).
median() {
  sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'
}
for kind in plain fanout; do
  p50=$(cat "$out"/"$kind"-*.txt | awk '/^  veloz  /{print $4}' | median)
  p99=$(cat "$out"/"$kind"-*.txt | awk '/^  veloz  /{print $6}' | median)
  echo "median round trip ($kind): p50 $p50 us, p99 $p99 us"
done
curl -s "http://$(sed -n 's/^veloz: metrics on //p' "$out/engine.out")/metrics" \
  | grep '^veloz_feed_' >"$out/feed-metrics.txt" || true
echo "$PROG: results in $out"
exit "$status"

#!/usr/bin/env bash
# scripts/bench-network.sh [--out DIR] [--bin PATH] [--duration S] [--rounds N] [--quick]
#
# The network and journal-sync comparisons of docs/BENCHMARKS.md ("io_uring and the order
# path"), every result in one directory (default target/bench-results/network-<UTC time>/):
#   1. net-paths.txt: `cargo run --release -p veloz-uring --example net_paths 0 1`: one echo
#      server on core 0 driven by std sockets, veloz-uring's ring and glommio's own
#      networking, the client on core 1 (the measurement that chose the shard's driver);
#   2. for each round and each network path (`gateway.network = "std"`, then "io_uring"):
#      one engine shard on core 0, `durability = "none"`, `veloz load` on core 1 with
#      --baseline (the echo floor measured in the same run):
#        open loop 100,000 orders/s       -> open-<path>-<round>.txt
#        closed loop, 2 x 256 in flight   -> closed-<path>-<round>.txt
#   3. for each round, group commit (`durability = "group"`, network io_uring) with the sync
#      thread (`journal.sync_on_ring = false`) and with the syncs on the shard's ring (true),
#      open loop 10,000 and 50,000 orders/s -> group-<thread|ring>-<rate>-<round>.txt
#   4. summary.txt: one line per run (p50, p99, p99.9, rate, ratio to the echo floor).
# Run it on a quiet host: every figure here is a ratio of runs made minutes apart.
#
# --out DIR       result directory
# --bin PATH      the veloz binary (default target/release/veloz; built when missing)
# --duration S    seconds measured per run (default 10; --quick 3)
# --rounds N      rounds (default 2; --quick 1)
# --quick         short runs
#
# Exit status: 0 when every run finished, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

out="" bin="" duration=10 rounds=2
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --bin) bin=${2:?--bin needs the veloz binary}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --quick) duration=3; rounds=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -n "$out" ] || out="$ROOT/target/bench-results/network-$(date -u +%Y%m%dT%H%M%SZ)"
[ -n "$bin" ] || bin="$ROOT/target/release/veloz"
CARGO=${CARGO:-cargo}
if [ ! -x "$bin" ]; then
  (cd "$ROOT" && "$CARGO" build --release --bin veloz) || die "cannot build $bin"
fi
mkdir -p "$out"
failed=0

echo "$PROG: results in $out"
(cd "$ROOT" && "$CARGO" run --quiet --release -p veloz-uring --example net_paths -- 0 1) \
  > "$out/net-paths.txt" 2>&1 || failed=1
cat "$out/net-paths.txt"

# engine NAME NETWORK DURABILITY SYNC_ON_RING -- LOAD ARGS...: start an engine on a fresh
# data directory, run `veloz load` against it into $out/NAME.txt, stop it.
engine() {
  local name=$1 network=$2 durability=$3 ring=$4
  shift 5
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/veloz-bench-net.XXXXXX")
  "$bin" config | sed -e 's/^cores = \[\]/cores = [0]/' \
    -e "s/^durability = \"group\"/durability = \"$durability\"/" \
    -e "s/^network = .*/network = \"$network\"/" \
    -e "s/^sync_on_ring = .*/sync_on_ring = $ring/" \
    -e "s#^data_dir = .*#data_dir = \"$dir/data\"#" \
    -e 's#"127.0.0.1:77[0-9][0-9]"#"127.0.0.1:0"#' > "$dir/veloz.toml"
  "$bin" serve --config "$dir/veloz.toml" > "$dir/out.log" 2> "$dir/err.log" &
  local pid=$! addr=""
  for _ in $(seq 300); do
    addr=$(sed -n 's/^veloz: listening on \([0-9.:]*\).*/\1/p' "$dir/out.log" 2>/dev/null | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "$PROG: $name: the engine did not start:" >&2
    cat "$dir/err.log" >&2
    kill "$pid" 2>/dev/null || true
    failed=1
    rm -rf "$dir"
    return
  fi
  if ! "$bin" load --connect "$addr" --cores 1 --duration "$duration" --warmup 1 "$@" \
    > "$out/$name.txt" 2>&1; then
    failed=1
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -E "network: |journal sync: " "$dir/err.log" >> "$out/$name.txt" || true
  rm -rf "$dir"
  # The load's table: "  veloz  sent/s answered/s p50 p90 p99 p99.9 ..." and the ratio row.
  local row ratio
  row=$(grep -E '^  veloz +[0-9]' "$out/$name.txt" | head -1 | awk '{print $3" "$4" "$6" "$7}' || true)
  ratio=$(grep -E '^  veloz / echo' "$out/$name.txt" | head -1 | awk '{print $4" "$6}' || true)
  printf '%-28s answered/s p50 p99 p99.9 (us): %s  vs echo p50 p99: %s\n' \
    "$name" "${row:-?}" "${ratio:--}" | tee -a "$out/summary.txt"
}

for round in $(seq "$rounds"); do
  for path in std io_uring; do
    engine "open-$path-$round" "$path" none false -- --rate 100000 --baseline
    engine "closed-$path-$round" "$path" none false -- --closed-loop --pipeline 256 --baseline
  done
  for rate in 10000 50000; do
    engine "group-thread-$rate-$round" io_uring group false -- --rate "$rate"
    engine "group-ring-$rate-$round" io_uring group true -- --rate "$rate"
  done
done
exit "$failed"

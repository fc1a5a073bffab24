#!/usr/bin/env bash
# scripts/bench-risk.sh [--bin PATH] [--out DIR] [--rounds N] [--rate R] [--pipeline K]
#                       [--duration S] [--engine-core C] [--quick]
#
# What money costs end to end (issue 17, docs/BENCHMARKS.md "Money"): the same engine run
# with money off and with money on, `veloz load` against each with --baseline (a busy-polled
# echo server measured in the same run), so each figure comes with its ratio to the host's
# loopback floor. Per round, for each mode (off, then on):
#   1. a fresh engine from the embedded configuration: one shard on --engine-core, durability
#      "none", every listener on a port the kernel picks, a fresh data directory;
#      "on" adds money: an asset per instrument (its symbol) and USD, each instrument funded
#      (base = its symbol, quote USD, base_unit 1, quote_unit 1, maker 1 bps, taker 2 bps),
#      fee account 900, limits on every account high enough never to fire (so each order
#      pays for the checks), and, before the load, deposits of 10^15 units of every asset to
#      the load's accounts 1 and 2 through POST /admin/deposit;
#   2. open loop at --rate orders/s             -> <round>-<mode>-open.json
#   3. closed loop, --pipeline K per connection  -> <round>-<mode>-closed.json
#      (for "on" the balances after the run are kept in <round>-on-balances.json);
# then summary.txt: per mode the median over the rounds of the open loop's p50/p99/p99.9
# (us) with their ratios to the echo floor, and the closed loop's orders/s with its ratio to
# the echo's; the last line gives on/off for each.
#
# --bin PATH        the veloz binary (default target/release/veloz; built when missing)
# --out DIR         result directory (default target/bench-results/risk-<UTC time>)
# --rounds N        rounds of off-then-on (default 3)
# --rate R          open-loop orders per second (default 100000)
# --pipeline K      closed loop: requests in flight per connection (default 256)
# --duration S      seconds measured per run (default 10)
# --engine-core C   the shard's core (default 0; the load runs on veloz load's default core,
#                   the last online one)
# --quick           1 round of 3 s runs
#
# Everything runs on 127.0.0.1. On a shared host run it under `flock /tmp/veloz-e2e.lock`.
# Needs curl and python3 (to read the JSON reports). Exit status: 0 when every run finished,
# 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="" out="" rounds=3 rate=100000 pipeline=256 duration=10 core=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs the path of the veloz binary}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    --rate) rate=${2:?--rate needs orders per second}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a number}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --engine-core) core=${2:?--engine-core needs a core}; shift 2 ;;
    --quick) rounds=1 duration=3; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for n in "$rounds" "$rate" "$pipeline" "$duration"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive number"
done
[[ $core =~ ^[0-9]+$ ]] || die "--engine-core '$core' is not a core number"
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
command -v python3 >/dev/null || die "python3 is needed to read the JSON reports"

bin=${bin:-$ROOT/target/release/veloz}
if [ ! -x "$bin" ]; then
  echo "$PROG: building $bin" >&2
  (cd "$ROOT" && cargo build --release --locked)
fi
out=${out:-$ROOT/target/bench-results/risk-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
[ -z "$(ls -A "$out")" ] || die "$out is not empty: results of another run?"

work=$(mktemp -d "${TMPDIR:-/tmp}/veloz-bench-risk.XXXXXX")
engine_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [ -n "$engine_pid" ]; then
    kill "$engine_pid" 2>/dev/null || true
    wait "$engine_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token="bench-operator"
token_hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)

# The embedded configuration, one shard, no durability, kernel-picked ports, an operator.
"$bin" config |
  sed -e "s/^cores = \[\]/cores = [$core]/" \
    -e 's/^durability = "group"/durability = "none"/' \
    -e "s#^data_dir = .*#data_dir = \"$work/data\"#" \
    -e 's#"127\.0\.0\.1:[0-9]*"#"127.0.0.1:0"#g' \
    -e "s/^token_sha256 = \"\"/token_sha256 = \"$token_hash\"/" >"$work/off.toml"
grep -q "^token_sha256 = \"$token_hash\"" "$work/off.toml" ||
  printf '\n[admin]\ntoken_sha256 = "%s"\n' "$token_hash" >>"$work/off.toml"
symbols=$(sed -n 's/^symbol = "\(.*\)"$/\1/p' "$work/off.toml")
[ -n "$symbols" ] || die "no instruments in the embedded configuration"

# Money on: each instrument's symbol is its base asset, USD the quote of all.
sed -e 's/^symbol = "\(.*\)"$/symbol = "\1"\nbase = "\1"\nquote = "USD"\nmaker_fee_bps = 1\ntaker_fee_bps = 2/' \
  "$work/off.toml" >"$work/on.toml"
{
  printf '\n[risk]\nfee_account = 900\nmax_order_qty = 1_000_000_000\n'
  printf 'max_order_notional = 1_000_000_000_000_000\nmax_open_orders = 1_000_000\n'
  printf 'max_notional_per_sec = 1_000_000_000_000_000_000\n'
  printf '\n[[assets]]\nid = 1000\nname = "USD"\nscale = 4\n'
  id=1001
  for s in $symbols; do
    printf '\n[[assets]]\nid = %d\nname = "%s"\nscale = 0\n' "$id" "$s"
    id=$((id + 1))
  done
} >>"$work/on.toml"
"$bin" config --config "$work/on.toml" >/dev/null || die "the funded configuration is refused"

# start MODE: a fresh engine; sets engine_pid, addr, metrics.
start() {
  rm -rf "$work/data"
  "$bin" serve --config "$work/$1.toml" >"$work/engine.log" 2>&1 &
  engine_pid=$!
  for _ in $(seq 1 300); do
    addr=$(sed -n 's/^veloz: listening on //p' "$work/engine.log" | head -n 1)
    metrics=$(sed -n 's/^veloz: metrics on //p' "$work/engine.log" | head -n 1)
    [ -n "$addr" ] && [ -n "$metrics" ] && return 0
    kill -0 "$engine_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/engine.log" >&2
  echo "$PROG: the engine did not start" >&2
  return 1
}

stop() {
  kill "$engine_pid"
  wait "$engine_pid" || true
  engine_pid=""
}

admin() {
  curl -sS --fail-with-body -H "Authorization: Bearer $token" "$@"
}

status=0
for round in $(seq 1 "$rounds"); do
  for mode in off on; do
    start "$mode" || { status=1; continue; }
    if [ "$mode" = on ]; then
      for account in 1 2; do
        for asset in USD $symbols; do
          admin -X POST "http://$metrics/admin/deposit?account=$account&asset=$asset&amount=1000000000000000" \
            >/dev/null || { echo "$PROG: deposit refused" >&2; status=1; }
        done
      done
    fi
    echo "$PROG: round $round, money $mode: open loop at $rate/s" >&2
    "$bin" load --connect "$addr" --rate "$rate" --duration "$duration" --baseline --json \
      >"$out/$round-$mode-open.json" || status=1
    echo "$PROG: round $round, money $mode: closed loop, $pipeline in flight" >&2
    "$bin" load --connect "$addr" --closed-loop --pipeline "$pipeline" --duration "$duration" \
      --baseline --json >"$out/$round-$mode-closed.json" || status=1
    if [ "$mode" = on ]; then
      admin "http://$metrics/admin/balances?account=1" >"$out/$round-on-balances.json" || status=1
    fi
    stop
  done
done

python3 - "$out" "$rounds" >"$out/summary.txt" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(r, mode, kind):
    with open(f"{out}/{r}-{mode}-{kind}.json") as f:
        return json.load(f)
rows = {}
for mode in ("off", "on"):
    o = [load(r, mode, "open") for r in range(1, rounds + 1)]
    c = [load(r, mode, "closed") for r in range(1, rounds + 1)]
    med = lambda xs: statistics.median(xs)
    rows[mode] = {
        "p50": med([x["veloz"]["latency_us"]["p50"] for x in o]),
        "p99": med([x["veloz"]["latency_us"]["p99"] for x in o]),
        "p99_9": med([x["veloz"]["latency_us"]["p99_9"] for x in o]),
        "r50": med([x["ratio_to_baseline"]["p50"] for x in o]),
        "r99": med([x["ratio_to_baseline"]["p99"] for x in o]),
        "rejects": sum(x["veloz"]["rejected"] for x in o + c),
        "closed": med([x["veloz"]["answered_per_s"] for x in c]),
        "rclosed": med([x["veloz"]["answered_per_s"] / x["baseline"]["answered_per_s"] for x in c]),
    }
print(f"rounds: {rounds} (medians); open loop round trip in us, ratio to the echo floor of the same run")
print(f"{'money':<6} {'p50':>8} {'(x echo)':>9} {'p99':>9} {'(x echo)':>9} {'p99.9':>9} {'closed/s':>12} {'(x echo)':>9} {'rejects':>8}")
for mode, r in rows.items():
    print(f"{mode:<6} {r['p50']:>8.1f} {r['r50']:>9.2f} {r['p99']:>9.1f} {r['r99']:>9.2f} {r['p99_9']:>9.1f} {r['closed']:>12.0f} {r['rclosed']:>9.3f} {r['rejects']:>8}")
on, off = rows["on"], rows["off"]
print(f"on/off: p50 {on['p50'] / off['p50']:.2f}x, p99 {on['p99'] / off['p99']:.2f}x, closed loop {on['closed'] / off['closed']:.2f}x")
EOF
cat "$out/summary.txt"
echo "$PROG: results in $out" >&2
exit "$status"

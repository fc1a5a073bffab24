#!/usr/bin/env bash
# scripts/bench-replication.sh [--bin PATH] [--out DIR] [--durabilities LIST] [--connections LIST]
#                              [--pipeline K] [--rates LIST] [--duration S] [--warmup S]
#                              [--open-connections N] [--engine-cores LIST] [--failovers N]
#                              [--failover-rate R] [--in-flight N] [--no-failover] [--quick]
#
# The replication benchmark of docs/BENCHMARKS.md (issue 16): what `journal.durability =
# "replicated"` (each shard's journal to a NATS JetStream R3 stream, every acknowledgement
# waiting for JetStream's) costs against "none" and "group", and how long a failover takes.
# It starts a local 3-node NATS cluster (scripts/cluster-up.sh, in a temporary directory, on
# loopback ports it picks), then:
#   1. per durability of LIST (default none,group,replicated), one fresh engine (a shard per
#      core of --engine-cores, a fresh data directory, every port picked by the kernel;
#      "replicated": engine name bench-replicated, lease_ms 1500) and on it, one after the
#      other, `veloz load`:
#        closed loop, K in flight per connection, at each connection count of --connections
#          -> <durability>-closed-<N>.json
#        open loop at each rate of --rates, --open-connections     -> <durability>-open-<R>.json
#      with the engine's metrics read after each run (<durability>-<run>.metrics); for
#      "replicated" the summary gives, per run, the mean publish-to-ack time
#      (veloz_replica_ack_seconds_total / veloz_replica_acks_total) and the records per
#      message (veloz_replica_records_total / veloz_replica_messages_total);
#   2. --failovers times: a primary and its hot standby (`veloz serve --standby`, fresh data
#      directories, fixed loopback ports, engine bench-failover-<i>), an open-loop load of
#      --failover-rate orders/s on the primary, then a Python probe (clients/python) that
#      SIGKILLs the primary itself and measures from the kill to the standby's
#      `veloz: listening on` line (read from its stdout every 2 ms) and to the answer of the
#      first order it gets in: it logs on with Session.connect("PRIMARY,STANDBY") (each
#      address once per try, a new try every 5 ms) and sends one resting limit order ->
#      failover-<i>.json; min/median/max in the summary.
# It prints summary.txt (latencies in us: round trip from the intended send time to the
# first answer; lag_p99: the load's own send lag; cpu/1k: the engine's CPU ms per 1,000
# orders). The host's load average and busiest processes are recorded first (host.txt).
#
# --bin PATH          the veloz binary (default target/release/veloz; built when missing)
# --out DIR           result directory (default target/bench-results/replication-<UTC time>)
# --durabilities L    comma-separated, of none, group, replicated (default all three)
# --connections L     closed-loop connection counts (default 2,8,16,32)
# --pipeline K        closed loop: requests in flight per connection (default 64)
# --rates L           open-loop orders per second (default 10000,50000)
# --open-connections N  open loop: connections (default 2; each holds at most 128 requests
#                     in flight, so N x 128 / round trip bounds the rate an engine can answer)
# --engine-cores L    the shards' cores, comma-separated (default: every online core, as
#                     the embedded configuration has it; the load runs on the last core)
# --duration S        seconds measured per run (default 10)
# --warmup S          seconds of load before each measured window (default 2)
# --failovers N       failover trials (default 5)
# --failover-rate R   orders/s on the primary while it is killed (default 1000)
# --in-flight N       replication.max_in_flight (default: the embedded configuration's)
# --no-failover       skip the failover trials
# --quick             3 s runs after 1 s of warm-up, 2 failover trials
#
# Environment: VELOZ_PYTHON  a Python with the flatbuffers package (default .tools/venv/bin/python
# of `make tools`, else python3); VELOZ_NATS_SERVER as for scripts/cluster-up.sh.
# Everything runs on 127.0.0.1 and shares the host's cores: on a 2-vCPU machine the three
# nats-server processes, the engine's busy-polling shards and the load compete for them.
# On a shared host run it under `flock /tmp/veloz-e2e.lock`, the lock engine tests are run under.
# Exit status: 0 when every run finished, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="" out="" durabilities="none,group,replicated" conn_list="2,8,16,32" pipeline=64 cores=""
rates="10000,50000" open_connections=2 duration=10 warmup=2 failovers=5 failover_rate=1000
in_flight=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --durabilities) durabilities=${2:?--durabilities needs a list}; shift 2 ;;
    --connections) conn_list=${2:?--connections needs a list}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a number}; shift 2 ;;
    --rates) rates=${2:?--rates needs a list}; shift 2 ;;
    --open-connections) open_connections=${2:?--open-connections needs a number}; shift 2 ;;
    --engine-cores) cores=${2:?--engine-cores needs a core list}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs seconds}; shift 2 ;;
    --failovers) failovers=${2:?--failovers needs a number}; shift 2 ;;
    --failover-rate) failover_rate=${2:?--failover-rate needs orders per second}; shift 2 ;;
    --in-flight) in_flight=${2:?--in-flight needs a number}; shift 2 ;;
    --no-failover) failovers=0; shift ;;
    --quick) duration=3; warmup=1; failovers=2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
IFS=, read -r -a durability_list <<< "$durabilities"
IFS=, read -r -a connection_counts <<< "$conn_list"
IFS=, read -r -a rate_list <<< "$rates"
for d in "${durability_list[@]}"; do
  case "$d" in none|group|replicated) ;; *) die "unknown durability '$d' (none, group, replicated)" ;; esac
done
for n in "${connection_counts[@]}" "${rate_list[@]}" "$pipeline" "$open_connections" "$duration" \
  "$warmup" "$failovers" "$failover_rate"; do
  [[ $n =~ ^[0-9]+$ ]] || die "'$n' is not a number (see --help)"
done
[[ $in_flight =~ ^[0-9]*$ ]] || die "--in-flight '$in_flight' is not a number"
[[ $cores =~ ^([0-9]+(,[0-9]+)*)?$ ]] || die "--engine-cores '$cores' is not a list of cores"
command -v jq > /dev/null || die "jq is needed to read the load's JSON reports"
command -v curl > /dev/null || die "curl is needed to read the engine's metrics"
[ -n "$out" ] || out="$ROOT/target/bench-results/replication-$(date -u +%Y%m%dT%H%M%SZ)"
[ -n "$bin" ] || bin="$ROOT/target/release/veloz"
CARGO=${CARGO:-cargo}
if [ ! -x "$bin" ]; then
  (cd "$ROOT" && "$CARGO" build --release --bin veloz) || die "cannot build $bin"
fi
python=""
if [ "$failovers" -gt 0 ]; then
  for py in "${VELOZ_PYTHON:-}" "$ROOT/.tools/venv/bin/python" python3; do
    if [ -n "$py" ] && "$py" -c 'import flatbuffers' 2> /dev/null; then
      python=$py
      break
    fi
  done
  [ -n "$python" ] || die "the failover probe needs a Python with flatbuffers ('make tools'; or --no-failover)"
fi
mkdir -p "$out"
failed=0

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc); kernel: $(uname -r); $("${VELOZ_NATS_SERVER:-nats-server}" --version 2> /dev/null || echo 'nats-server ?')"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busiest processes:"
  ps aux --sort=-%cpu | head -6 | cut -c1-160
} > "$out/host.txt"
cat "$out/host.txt"

dir=$(mktemp -d "${TMPDIR:-/tmp}/veloz-bench-replication.XXXXXX")
pids=() cluster=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do { wait "$p"; } 2> /dev/null || true; done
  if [ "$cluster" = 1 ]; then
    "$HERE/cluster-down.sh" --dir "$dir/nats" > /dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# stop PID...: SIGTERM, wait, and forget them (the trap kills what is left)
stop() {
  local p q keep=()
  kill -TERM "$@" 2> /dev/null || true
  for p in "$@"; do { wait "$p"; } 2> /dev/null || true; done
  for q in "${pids[@]}"; do
    for p in "$@"; do [ "$q" != "$p" ] || continue 2; done
    keep+=("$q")
  done
  pids=("${keep[@]}")
}

# ---- the NATS cluster, on loopback ports nobody uses ------------------------------------------
urls=""
for _ in 1 2 3 4 5; do
  base=$((20000 + RANDOM % 20000))
  cluster=1
  if "$HERE/cluster-up.sh" --dir "$dir/nats" --base-port "$base" > "$dir/cluster.txt" 2>&1; then
    urls=$(sed -n 's/^nats: cluster up: //p' "$dir/cluster.txt" | head -1)
    break
  fi
done
if [ -z "$urls" ]; then
  echo "$PROG: the NATS cluster did not start:" >&2
  cat "$dir/cluster.txt" >&2
  exit 1
fi
sed 's/^/  /' "$dir/cluster.txt" | head -3
IFS=, read -r -a url_list <<< "$urls"
toml_urls=$(printf '"%s", ' "${url_list[@]}")
toml_urls=${toml_urls%, }

# free_port: a loopback TCP port nothing accepts connections on
free_port() {
  local port
  while :; do
    port=$((40000 + RANDOM % 20000))
    (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null || break
  done
  echo "$port"
}

# config FILE HOME DURABILITY LISTEN ENGINE NODE: the embedded configuration with the data
# directory HOME/data, the gateway on LISTEN, every other listener on port 0, DURABILITY,
# and [replication] pointing at the cluster (engine ENGINE, node NODE).
config() {
  local file=$1 home=$2 durability=$3 listen=$4 engine=$5 node=$6
  mkdir -p "$home"
  "$bin" config | awk '/^\[/ { skip = ($0 == "[replication]") } !skip' |
    sed -e "s/^durability = \"group\"/durability = \"$durability\"/" \
      -e "s/^cores = \[\]/cores = [$cores]/" \
      -e "s#^data_dir = .*#data_dir = \"$home/data\"#" \
      -e "/^\[gateway\]/,/^\[/ s#^listen = .*#listen = \"$listen\"#" \
      -e 's#"127.0.0.1:77[0-9][0-9]"#"127.0.0.1:0"#' > "$file"
  cat >> "$file" << EOF

[replication]
urls = [$toml_urls]
engine = "$engine"
node = "$node"
lease_ms = 1500
EOF
  [ -z "$in_flight" ] || echo "max_in_flight = $in_flight" >> "$file"
}

# wait_line FILE PATTERN SECONDS PID: the first line of FILE matching the sed pattern's
# capture, waiting while PID lives; empty when none came
wait_line() {
  local file=$1 pattern=$2 seconds=$3 pid=$4 line=""
  for _ in $(seq $((seconds * 20))); do
    line=$(sed -n "s/$pattern/\\1/p" "$file" | head -1)
    [ -z "$line" ] || break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  echo "$line"
}

# metric FILE NAME: NAME summed over its shards in a metrics scrape (0 when absent)
metric() {
  awk -v n="$2" '{ split($1, a, "{") } a[1] == n { s += $2 } END { printf "%.9g\n", s + 0 }' "$1"
}

# ---- 1. throughput and latency per durability -------------------------------------------------
: > "$out/rows.tsv"
addr="" metrics="" pid=""

# load NAME LOAD ARGS...: one `veloz load` run into $out/NAME.json
load() {
  local name=$1
  shift
  "$bin" load --connect "$addr" --duration "$duration" --warmup "$warmup" \
    --engine-pid "$pid" --json "$@" > "$out/$name.json" 2> "$out/$name.err"
}

# run DURABILITY RUN LOAD ARGS...: a load run, tried twice (on a shared host a stall of
# seconds can time a logon out), the metrics after it, and its summary row
run() {
  local durability=$1 run=$2 name="$1-$2" ack="-" per="-"
  shift 2
  if ! kill -0 "$pid" 2> /dev/null; then
    echo "$PROG: $name skipped: the $durability engine has exited" >&2
    failed=1
    return
  fi
  if ! load "$name" "$@"; then
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "$PROG: $name failed: the $durability engine exited; its last lines:" >&2
      tail -3 "$dir/$durability/err.log" >&2
      failed=1
      return
    fi
    echo "$PROG: $name failed, once more: $(tail -1 "$out/$name.err")" | tee -a "$out/retries.txt" >&2
    if ! load "$name" "$@"; then
      echo "$PROG: $name failed:" >&2
      cat "$out/$name.err" >&2
      failed=1
      return
    fi
  fi
  curl -sf "http://$metrics/metrics" > "$out/$name.metrics" || : > "$out/$name.metrics"
  if [ "$durability" = replicated ]; then
    local before="$dir/metrics.last" now="$out/$name.metrics"
    [ -f "$before" ] || : > "$before"
    ack=$(awk -v s1="$(metric "$now" veloz_replica_ack_seconds_total)" \
      -v s0="$(metric "$before" veloz_replica_ack_seconds_total)" \
      -v a1="$(metric "$now" veloz_replica_acks_total)" -v a0="$(metric "$before" veloz_replica_acks_total)" \
      'BEGIN { if (a1 - a0 > 0) printf "%.0f", (s1 - s0) / (a1 - a0) * 1e6; else print "-" }')
    per=$(awk -v r1="$(metric "$now" veloz_replica_records_total)" \
      -v r0="$(metric "$before" veloz_replica_records_total)" \
      -v m1="$(metric "$now" veloz_replica_messages_total)" -v m0="$(metric "$before" veloz_replica_messages_total)" \
      'BEGIN { if (m1 - m0 > 0) printf "%.1f", (r1 - r0) / (m1 - m0); else print "-" }')
    cp "$now" "$before"
  fi
  jq -r --arg d "$durability" --arg run "$run" --arg ack "$ack" --arg per "$per" \
    'def r: . * 10 | round / 10;
    .veloz as $v | $v.latency_us as $l |
    [$d, $run, ($v.answered_per_s | floor), ($l.p50 | r), ($l.p90 | r), ($l.p99 | r),
     ($l.p99_9 | r), ($l.max | r), $v.rejected, $v.unanswered, ($v.send_lag_us.p99 | r),
     (.engine_cpu.process_ms_per_1000_orders // null | if . == null then "-" else r end),
     $ack, $per] | @tsv' "$out/$name.json" >> "$out/rows.tsv"
}

for durability in "${durability_list[@]}"; do
  home="$dir/$durability"
  config "$dir/$durability.toml" "$home" "$durability" 127.0.0.1:0 bench-replicated bench
  "$bin" serve --config "$dir/$durability.toml" > "$home/out.log" 2> "$home/err.log" &
  pid=$!
  pids+=("$pid")
  addr=$(wait_line "$home/out.log" '^veloz: listening on \([0-9.:]*\).*' 60 "$pid")
  metrics=$(wait_line "$home/out.log" '^veloz: metrics on \([0-9.:]*\).*' 5 "$pid")
  if [ -z "$addr" ] || [ -z "$metrics" ]; then
    echo "$PROG: the $durability engine did not start:" >&2
    cat "$home/err.log" >&2
    exit 1
  fi
  echo "$PROG: $durability engine $pid on $addr (metrics $metrics); results in $out"
  rm -f "$dir/metrics.last"
  curl -sf "http://$metrics/metrics" > "$dir/metrics.last" || true
  for n in "${connection_counts[@]}"; do
    run "$durability" "closed-$n" --connections "$n" --closed-loop --pipeline "$pipeline"
  done
  for r in "${rate_list[@]}"; do
    run "$durability" "open-$r" --connections "$open_connections" --rate "$r"
  done
  stop "$pid"
  cp "$home/err.log" "$out/$durability-engine.log"
done

# ---- 2. failover ------------------------------------------------------------------------------
cat > "$dir/probe.py" << 'EOF'
"""Kill the primary, then measure from the kill to the standby's `veloz: listening on` line
and to the answer of the first order a client gets in (see scripts/bench-replication.sh)."""
import json, os, signal, sys, threading, time
from decimal import Decimal
from veloz_client import Session, RequestRejected

pid, addresses, standby_out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = {}


def watch():
    while "listening" not in seen:
        try:
            with open(standby_out) as f:
                if any(line.startswith("veloz: listening on") for line in f):
                    seen["listening"] = time.monotonic()
                    return
        except OSError:
            pass
        time.sleep(0.002)


threading.Thread(target=watch, daemon=True).start()
killed = time.monotonic()
os.kill(pid, signal.SIGKILL)
tries, errors, outcome = 0, {}, None
while time.monotonic() - killed < 60:
    tries += 1
    try:
        s = Session.connect(addresses, None, 1, "demo-alice", timeout=5.0)
    except OSError as e:
        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        time.sleep(0.005)
        continue
    try:
        r = s.new_order("AAPL", "buy", 1, Decimal("180.00"))
        outcome = "accepted order %d" % r.order_id
    except RequestRejected as e:
        outcome = "rejected: %s" % e
    except Exception as e:  # the engine went away under the session: try again
        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        continue
    answered = time.monotonic()
    try:
        s.logout()
    except Exception:
        pass
    break
else:
    answered = None
for _ in range(500):
    if "listening" in seen:
        break
    time.sleep(0.01)
print(json.dumps({
    "listening_s": seen["listening"] - killed if "listening" in seen else None,
    "first_order_s": answered - killed if answered is not None else None,
    "outcome": outcome, "tries": tries, "errors": errors,
}))
EOF

: > "$out/failover.tsv"
for i in $(seq "$failovers"); do
  engine="bench-failover-$i"
  p_port=$(free_port)
  s_port=$(free_port)
  while [ "$s_port" = "$p_port" ]; do s_port=$(free_port); done
  config "$dir/fo-$i-p.toml" "$dir/fo-$i-p" replicated "127.0.0.1:$p_port" "$engine" primary
  config "$dir/fo-$i-s.toml" "$dir/fo-$i-s" replicated "127.0.0.1:$s_port" "$engine" standby
  "$bin" serve --config "$dir/fo-$i-p.toml" > "$dir/fo-$i-p/out.log" 2> "$dir/fo-$i-p/err.log" &
  primary=$!
  pids+=("$primary")
  if [ -z "$(wait_line "$dir/fo-$i-p/out.log" '^veloz: \(listening\) on.*' 60 "$primary")" ]; then
    echo "$PROG: failover $i: the primary did not start:" >&2
    cat "$dir/fo-$i-p/err.log" >&2
    failed=1
    stop "$primary"
    continue
  fi
  "$bin" serve --config "$dir/fo-$i-s.toml" --standby > "$dir/fo-$i-s/out.log" 2> "$dir/fo-$i-s/err.log" &
  standby=$!
  pids+=("$standby")
  if [ -z "$(wait_line "$dir/fo-$i-s/out.log" '^veloz: \(standby\) of engine.*' 60 "$standby")" ]; then
    echo "$PROG: failover $i: the standby did not start:" >&2
    cat "$dir/fo-$i-s/err.log" >&2
    failed=1
    stop "$primary" "$standby"
    continue
  fi
  "$bin" load --connect "127.0.0.1:$p_port" --connections 2 --rate "$failover_rate" \
    --duration 3600 --warmup 0 > "$dir/fo-$i-load.out" 2>&1 &
  loader=$!
  pids+=("$loader")
  sleep 3
  if ! PYTHONPATH="$ROOT/clients/python/src" PYTHONDONTWRITEBYTECODE=1 "$python" "$dir/probe.py" \
    "$primary" "127.0.0.1:$p_port,127.0.0.1:$s_port" "$dir/fo-$i-s/out.log" \
    > "$out/failover-$i.json" 2> "$out/failover-$i.err"; then
    echo "$PROG: failover $i: the probe failed:" >&2
    cat "$out/failover-$i.err" >&2
    failed=1
  fi
  stop "$primary" "$loader" "$standby"
  cp "$dir/fo-$i-s/err.log" "$out/failover-$i-standby.log"
  cp "$dir/fo-$i-p/err.log" "$out/failover-$i-primary.log"
  jq -r --arg i "$i" '[$i, (.listening_s // "-"), (.first_order_s // "-"), .tries, (.outcome // "none")] | @tsv' \
    "$out/failover-$i.json" >> "$out/failover.tsv" 2> /dev/null || failed=1
  echo "$PROG: failover $i: $(cat "$out/failover-$i.json" 2> /dev/null)"
done

# stats COLUMN: min / median / max of a failover.tsv column, in seconds
stats() {
  cut -f"$1" "$out/failover.tsv" | grep -E '^[0-9.]+$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.3f / %.3f / %.3f s (%d trials)", v[1], m, v[NR], NR }'
}

{
  printf 'veloz load against each durability (shard cores [%s], load on the last core; closed loop %s in flight per connection; open loop %s connections; %s s after %s s warm-up)\n' \
    "${cores:-every online core}" "$pipeline" "$open_connections" "$duration" "$warmup"
  printf '%-11s %-12s %10s %8s %8s %8s %9s %9s %7s %6s %9s %7s %7s %7s\n' durability run answered/s \
    p50 p90 p99 p99.9 max rejects unans lag_p99 cpu/1k ack_us rec/msg
  while IFS=$'\t' read -r d name ans p50 p90 p99 p999 max rej una lag cpu ack per; do
    printf '%-11s %-12s %10s %8s %8s %8s %9s %9s %7s %6s %9s %7s %7s %7s\n' "$d" "$name" "$ans" \
      "$p50" "$p90" "$p99" "$p999" "$max" "$rej" "$una" "$lag" "$cpu" "$ack" "$per"
  done < "$out/rows.tsv"
  echo "(latency in us: round trip from intended send time to first answer; ack_us: the engine's mean"
  echo " publish-to-JetStream-ack time over the run, rec/msg: journal records per published message)"
  if [ "$failovers" -gt 0 ]; then
    printf 'failover: SIGKILL of the primary under %s orders/s, then\n' "$failover_rate"
    printf '%-6s %14s %16s %6s  %s\n' trial listening_s first_order_s tries outcome
    while IFS=$'\t' read -r i l f t o; do
      printf '%-6s %14s %16s %6s  %s\n' "$i" "$l" "$f" "$t" "$o"
    done < "$out/failover.tsv"
    echo "kill -> standby listening: min / median / max $(stats 2)"
    echo "kill -> first order answered: min / median / max $(stats 3)"
  fi
} | tee "$out/summary.txt"
exit "$failed"

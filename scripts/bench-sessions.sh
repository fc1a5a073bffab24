#!/usr/bin/env bash
# scripts/bench-sessions.sh [--bin PATH] [--out DIR] [--network LIST] [--sessions LIST]
#                           [--rate R] [--duration S] [--warmup S] [--engine-core C]
#                           [--load-cores LIST]
#
# The many-sessions benchmark of docs/BENCHMARKS.md (issue 12): the same total order rate
# spread over few or many sessions, for each network path of the gateway. For every path
# and session count it starts an engine of its own (one shard on --engine-core, durability
# "none", ports picked by the kernel, a fresh data directory), runs
#   veloz load --connections N --rate R --duration S --cores L --engine-pid PID --json
# against it and stops it. Then it prints one table (path, sessions, orders/s per session,
# round trip p50/p99/p99.9 in us, the engine's CPU per 1,000 orders, requests unanswered)
# and, per path, the p99 at the most sessions over the p99 at the fewest (the issue's
# target is at most 2x). Two more columns help read it: the shard threads' share of the
# engine's CPU, and the load's own send lag p99 (how late it queued requests after their
# intended times: when that is a large part of the round trip, the load's core bounds the
# figures, not the engine). The host's load average is printed before and after.
#
# --bin PATH         the veloz binary (default: target/release/veloz; `make build` makes it)
# --out DIR          where the runs' output goes (default target/bench-results/sessions-<UTC time>)
# --network LIST     gateway network paths, comma-separated (default: default): each is
#                    written as `network = "<path>"` under [gateway] (std, io_uring);
#                    `default` writes nothing (the engine's own default path)
# --sessions LIST    session counts, comma-separated (default 10,100,1000)
# --rate R           total open-loop orders per second, whatever the sessions (default 100000)
# --duration S       seconds measured per run (default 10)
# --warmup S         seconds of load before each measured window (default 2)
# --engine-core C    the engine's shard core (default 0)
# --load-cores L     the load's cores (default: the last online core)
#
# Every session logs on as an account of its own (bench accounts 1..N replace the demo ones
# in the engine's configuration; their tokens go to an accounts file for the load): the
# engine sends each report of an account to every session of the account, so sessions that
# shared the two demo accounts would each read hundreds of times the traffic. The soft file
# descriptor limit is raised to the hard one for the engine and the load (a thousand
# sessions need a thousand sockets on each side). The load logs its sessions on one at a
# time, within the gateway's default logon throttles (8 pending logons per address).
# Exit status: 0 when every run completed, 1 when one failed, 2 on bad arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bin="$ROOT/target/release/veloz" out="" networks=default sessions=10,100,1000 rate=100000
duration=10 warmup=2 engine_core=0 load_cores=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --network) networks=${2:?--network needs a list}; shift 2 ;;
    --sessions) sessions=${2:?--sessions needs a list}; shift 2 ;;
    --rate) rate=${2:?--rate needs orders per second}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs seconds}; shift 2 ;;
    --engine-core) engine_core=${2:?--engine-core needs a core}; shift 2 ;;
    --load-cores) load_cores=${2:?--load-cores needs a list}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (--help lists them)" ;;
  esac
done
[ -x "$bin" ] || die "no veloz binary at $bin: run 'make build' or pass --bin"
[[ $rate =~ ^[1-9][0-9]*$ ]] || die "--rate '$rate' is not a positive number"
[[ $engine_core =~ ^[0-9]+$ ]] || die "--engine-core '$engine_core' is not a core number"
for s in "$duration" "$warmup"; do
  [[ $s =~ ^[0-9]+([.][0-9]+)?$ ]] || die "'$s' is not a number of seconds"
done
IFS=, read -r -a network_list <<<"$networks"
IFS=, read -r -a session_list <<<"$sessions"
for n in "${session_list[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "--sessions: '$n' is not a positive number"
done
for p in "${network_list[@]}"; do
  [[ $p =~ ^[a-z_]+$ ]] || die "--network: '$p' is not a path name (std, io_uring, default)"
done
online=$(cat /sys/devices/system/cpu/online)
[ -n "$load_cores" ] || load_cores=${online##*[-,]}
[ -n "$out" ] || out="$ROOT/target/bench-results/sessions-$(date -u +%Y%m%dT%H%M%SZ)"
[[ $out == /* ]] || out=$PWD/$out
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"

"$bin" config >"$out/default.toml"
# The embedded configuration with one shard, fresh data, free ports, no durability, the
# network path under [gateway] and accounts 1..N (tokens in ACCOUNTS, as ID:TOKEN lines).
engine_config() { # PATH DATA DST SESSIONS ACCOUNTS
  python3 - "$out/default.toml" "$3" "$2" "$engine_core" "$1" "$4" "$5" <<'EOF'
import hashlib, os, re, sys
src, dst, data, core, network, sessions, accounts = sys.argv[1:8]
text = open(src).read()
text = re.sub(r'(?m)^cores = \[.*\]', 'cores = [%s]' % core, text, count=1)
text = re.sub(r'(?m)^data_dir = ".*"', 'data_dir = "%s"' % data, text, count=1)
text = re.sub(r'(?m)^(listen|ws_listen) = "127\.0\.0\.1:\d+"', r'\1 = "127.0.0.1:0"', text)
text = re.sub(r'(?m)^durability = "\w+"', 'durability = "none"', text)
if network != "default":
    line = 'network = "%s"' % network
    text, n = re.subn(r'(?m)^network = ".*"$', line, text, count=1)
    if n == 0:
        text = text.replace('[gateway]\n', '[gateway]\n%s\n' % line, 1)
text = re.sub(r'(?ms)^\[\[accounts\]\]\n.*?(?=^\[|\Z)', '', text).rstrip() + '\n'
lines = []
for i in range(1, int(sessions) + 1):
    token = 'bench-session-%d' % i
    text += '\n[[accounts]]\nid = %d\nname = "bench-%d"\ntoken_sha256 = "%s"\n' % (
        i, i, hashlib.sha256(token.encode()).hexdigest())
    lines.append('%d:%s\n' % (i, token))
open(dst, "w").write(text)
fd = os.open(accounts, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, ''.join(lines).encode())
os.close(fd)
EOF
}

engine_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap and stop_engine
stop_engine() {
  if [ -n "$engine_pid" ] && kill -0 "$engine_pid" 2>/dev/null; then
    kill -TERM "$engine_pid"
    wait "$engine_pid" || true
  fi
  engine_pid=""
}
trap stop_engine EXIT

# One run: start an engine, load it, stop it. Output in $out/<path>-<sessions>.*
run() { # PATH SESSIONS
  local path=$1 n=$2 tag="$1-$2" addr
  engine_config "$path" "$out/$tag-data" "$out/$tag.toml" "$n" "$out/$tag.accounts"
  "$bin" serve --config "$out/$tag.toml" >"$out/$tag.engine.out" 2>"$out/$tag.engine.log" &
  engine_pid=$!
  for _ in $(seq 1 300); do
    grep -q '^veloz: metrics on ' "$out/$tag.engine.out" 2>/dev/null && break
    kill -0 "$engine_pid" 2>/dev/null || break
    sleep 0.1
  done
  addr=$(sed -n 's/^veloz: listening on //p' "$out/$tag.engine.out")
  if [ -z "$addr" ]; then
    echo "$PROG: $tag: the engine did not start; see $out/$tag.engine.log" >&2
    stop_engine
    return 1
  fi
  local status=0
  "$bin" load --connect "$addr" --config "$out/$tag.toml" --connections "$n" --rate "$rate" \
    --accounts "$out/$tag.accounts" \
    --duration "$duration" --warmup "$warmup" --cores "$load_cores" \
    --engine-pid "$engine_pid" --json >"$out/$tag.json" 2>"$out/$tag.load.log" || status=1
  stop_engine
  rm -rf "$out/$tag-data"
  if [ "$status" != 0 ]; then
    echo "$PROG: $tag: veloz load failed: $(tail -n 3 "$out/$tag.load.log")" >&2
    rm -f "$out/$tag.json"
  fi
  return "$status"
}

echo "$PROG: host load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$PROG: engine shard on core $engine_core, load on $load_cores; $rate orders/s in all, $duration s after $warmup s of warm-up per run; results in $out"
status=0
for path in "${network_list[@]}"; do
  for n in "${session_list[@]}"; do
    echo "$PROG: network $path, $n sessions ..."
    run "$path" "$n" || status=1
  done
done

python3 - "$out" "$rate" "$networks" "$sessions" <<'EOF' | tee "$out/table.txt"
import json, os, sys
out, rate, networks, sessions = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
paths, counts = networks.split(","), [int(n) for n in sessions.split(",")]
head = "%-9s %8s %11s %9s %9s %9s %17s %13s %10s %13s" % (
    "path", "sessions", "per session", "p50 us", "p99 us", "p99.9 us", "engine CPU ms/1k",
    "shard ms/1k", "unanswered", "lag p99 us")
print(head)
p99 = {}
for path in paths:
    for n in counts:
        f = os.path.join(out, "%s-%d.json" % (path, n))
        if not os.path.exists(f):
            print("%-9s %8d %11s %s" % (path, n, "%g/s" % (rate / n), "FAILED"))
            continue
        v = json.load(open(f))
        lat, cpu = v["veloz"]["latency_us"], v.get("engine_cpu") or {}
        p99[(path, n)] = lat["p99"]
        lag = v["veloz"].get("send_lag_us") or {}
        print("%-9s %8d %11s %9.1f %9.1f %9.1f %17s %13s %10d %13s" % (
            path, n, "%g/s" % (rate / n), lat["p50"], lat["p99"], lat["p99_9"],
            "%.2f" % cpu["process_ms_per_1000_orders"] if cpu else "-",
            "%.2f" % cpu["shard_ms_per_1000_orders"] if cpu else "-",
            v["veloz"]["unanswered"], "%.1f" % lag["p99"] if lag else "-"))
lo, hi = min(counts), max(counts)
for path in paths:
    a, b = p99.get((path, lo)), p99.get((path, hi))
    ratio = "%.2fx" % (b / a) if a and b else "n/a"
    print("%s: p99 at %d sessions / p99 at %d sessions = %s (target <= 2x)" % (path, hi, lo, ratio))
EOF
echo "$PROG: host load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/table.txt"
echo "$PROG: results in $out"
exit "$status"

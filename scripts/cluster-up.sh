#!/usr/bin/env bash
# scripts/cluster-up.sh [--dir DIR] [--base-port N] [--timeout S]
#
# Starts a local 3-node NATS JetStream cluster on loopback (127.0.0.1 only), for developing and
# testing JetStream replication. The nodes run in the background, detached from this shell
# (setsid + nohup); scripts/cluster-down.sh --dir DIR stops them.
#   - Nodes n1, n2, n3 of the cluster `veloz`. Node k (0, 1, 2) listens for clients on N+k
#     (default N = 4222: 4222, 4223, 4224), for routes on N+2000+k (6222..6224) and serves its
#     monitoring endpoints on N+4000+k (8222..8224).
#   - Everything lives in DIR (--dir, default target/nats-cluster of this checkout): per node a
#     config file nK.conf (written on every start), a log nK.log (the previous run's kept as
#     nK.log.1), a pid file nK.pid and its JetStream store nK/ (kept across runs).
#   - Refuses to start (exit 1) while a pid file in DIR names a live nats-server, and when any
#     of the nine ports is already taken (something answers a connect on 127.0.0.1).
#   - Waits up to --timeout S seconds (default 30) until every node's /healthz says ok and all
#     three name the same JetStream meta leader in /jsz: only then does a replicated (R3) stream
#     creation succeed. Then prints one line with the client URLs, comma-joined:
#       nats: cluster up: nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
#     followed by the monitoring URLs and the files. When a node exits early or the time runs
#     out, the nodes it started are stopped, the last lines of their logs are shown, exit 1.
#
# Environment: VELOZ_NATS_SERVER  the nats-server binary (default: nats-server on PATH, else
#              /usr/sbin/nats-server; `make tools` installs the Debian package nats-server).
# Exit status: 0 up, 1 not started (nats-server missing, ports taken, not ready), 2 bad arguments.
set -euo pipefail

PROG=cluster-up.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

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

dir="" base=4222 timeout=30
while [ "$#" -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --base-port) base=${2:?--base-port needs a port number}; shift 2 ;;
    --base-port=*) base=${1#*=}; shift ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout '$timeout' is not a number of seconds"
if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base + 4002 > 65535)); then
  die "--base-port '$base' must be a number from 1024 to $((65535 - 4002)) (it uses N..N+2, N+2000.., N+4000..)"
fi
[ -n "$dir" ] || dir=$HERE/../target/nats-cluster
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# ---- the binary -------------------------------------------------------------------------------
bin=${VELOZ_NATS_SERVER:-}
if [ -z "$bin" ]; then
  bin=$(command -v nats-server || true)
  [ -n "$bin" ] || [ ! -x /usr/sbin/nats-server ] || bin=/usr/sbin/nats-server
fi
if [ -z "$bin" ] || [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
  fail "nats-server is not installed (${bin:-not on PATH, no /usr/sbin/nats-server}): 'make tools' installs it, or 'sudo apt-get install nats-server'"
fi

# ---- refuse to start twice, or on taken ports -------------------------------------------------
names=(n1 n2 n3)
client_port() { echo $((base + $1)); }
route_port() { echo $((base + 2000 + $1)); }
monitor_port() { echo $((base + 4000 + $1)); }

# alive PID: the process exists and is not a zombie
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# nats_alive PID: a live nats-server process (what a pid file of an earlier start names)
nats_alive() {
  local argv0=""
  alive "$1" || return 1
  IFS= read -r -d '' argv0 <"/proc/$1/cmdline" 2>/dev/null || [ -n "$argv0" ] || return 1
  [[ $argv0 == *nats-server ]]
}

exec 9>>"$dir/cluster.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  fail "another cluster-up.sh is starting a cluster in $dir right now"
fi
for name in "${names[@]}"; do
  [ -f "$dir/$name.pid" ] || continue
  pid=$(head -c 32 "$dir/$name.pid" | tr -dc 0-9)
  if [ -n "$pid" ] && nats_alive "$pid"; then
    fail "node $name is already running (pid $pid, $dir/$name.pid); stop the cluster first with scripts/cluster-down.sh --dir $dir"
  fi
  rm -f "$dir/$name.pid"
done

# port_taken PORT: something accepts connections on 127.0.0.1:PORT
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
taken=()
for k in 0 1 2; do
  for port in "$(client_port "$k")" "$(route_port "$k")" "$(monitor_port "$k")"; do
    port_taken "$port" && taken+=("$port")
  done
done
if [ "${#taken[@]}" -gt 0 ]; then
  fail "port(s) ${taken[*]} on 127.0.0.1 are already in use: stop what listens there (scripts/cluster-down.sh for an earlier cluster) or choose other ports with --base-port N"
fi

# ---- configs and start ------------------------------------------------------------------------
pids=()
for k in 0 1 2; do
  name=${names[$k]}
  routes=""
  for j in 0 1 2; do
    [ "$j" = "$k" ] || routes+="    nats-route://127.0.0.1:$(route_port "$j")"$'\n'
  done
  cat >"$dir/$name.conf" <<EOF
# Written by scripts/cluster-up.sh; rewritten on every start.
server_name: $name
listen: 127.0.0.1:$(client_port "$k")
http: 127.0.0.1:$(monitor_port "$k")
jetstream {
  store_dir: "$dir/$name"
}
cluster {
  name: veloz
  listen: 127.0.0.1:$(route_port "$k")
  routes: [
$routes  ]
}
EOF
  log=$dir/$name.log
  [ ! -f "$log" ] || mv -f "$log" "$log.1"
  detach=(nohup)
  ! command -v setsid >/dev/null 2>&1 || detach=(setsid nohup)
  "${detach[@]}" "$bin" -c "$dir/$name.conf" </dev/null >>"$log" 2>&1 9>&- &
  pids+=("$!")
  printf '%s\n' "$!" >"$dir/$name.pid"
done

# now_us: microseconds since the epoch (bash 5's EPOCHREALTIME; date on older shells)
now_us() {
  if [ -n "${EPOCHREALTIME:-}" ]; then
    printf '%s' "${EPOCHREALTIME//[.,]/}"
  else
    date +%s%6N
  fi
}

# http_get PORT PATH: the body of GET http://127.0.0.1:PORT/PATH (bash's /dev/tcp; no curl)
http_get() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
    body=0
    while IFS= read -r -t 2 line <&3 || [ -n "$line" ]; do
      line=${line%$'\r'}
      if [ "$body" = 1 ]; then printf '%s\n' "$line"; elif [ -z "$line" ]; then body=1; fi
    done
  ) 2>/dev/null
}

# meta_leader PORT: the JetStream meta leader that the node with this monitoring port names
meta_leader() {
  http_get "$1" /jsz | tr -d ' \n' | grep -o '"meta_cluster":{"name":"[^"]*","leader":"[^"]*"' |
    sed 's/.*"leader":"//; s/"$//' || true
}

show_logs() {
  local name
  for name in "${names[@]}"; do
    echo "  last lines of $dir/$name.log:"
    tail -n 15 "$dir/$name.log" 2>/dev/null | sed 's/^/  | /'
  done
}

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for name in "${names[@]}"; do rm -f "$dir/$name.pid"; done
}

deadline=$(($(now_us) + timeout * 1000000))
leader=""
while :; do
  for k in 0 1 2; do
    if ! alive "${pids[$k]}"; then
      rc=0
      wait "${pids[$k]}" || rc=$?
      stop_all
      {
        echo "$PROG: node ${names[$k]} exited with status $rc before the cluster was ready; stopped the others"
        show_logs
      } >&2
      exit 1
    fi
  done
  ready=1 leaders=()
  for k in 0 1 2; do
    [[ $(http_get "$(monitor_port "$k")" /healthz) == *'"status":"ok"'* ]] || ready=0
    leaders+=("$(meta_leader "$(monitor_port "$k")")")
  done
  if [ "$ready" = 1 ] && [ -n "${leaders[0]}" ] && [ "${leaders[0]}" = "${leaders[1]}" ] &&
    [ "${leaders[0]}" = "${leaders[2]}" ]; then
    leader=${leaders[0]}
    break
  fi
  if (($(now_us) >= deadline)); then
    stop_all
    named=""
    for k in 0 1 2; do named+=" ${names[$k]}->${leaders[$k]:-none}"; done
    {
      echo "$PROG: the cluster was not ready within ${timeout}s (healthz ok on all: $([ "$ready" = 1 ] && echo yes || echo no); meta leader named by each:$named); stopped the nodes"
      show_logs
    } >&2
    exit 1
  fi
  sleep 0.2
done

urls=() monitors=()
for k in 0 1 2; do
  urls+=("nats://127.0.0.1:$(client_port "$k")")
  monitors+=("http://127.0.0.1:$(monitor_port "$k")")
done
joined=$(IFS=,; echo "${urls[*]}")
echo "nats: cluster up: $joined"
echo "  nodes:      ${names[*]} (pids ${pids[*]}), cluster veloz, JetStream meta leader $leader"
echo "  monitoring: ${monitors[*]}"
echo "  dir:        $dir (nK.conf, nK.log, nK.pid, store nK/)"
echo "  stop:       scripts/cluster-down.sh --dir $dir"

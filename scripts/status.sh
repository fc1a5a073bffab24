#!/usr/bin/env bash
# scripts/status.sh [--config FILE] [--data DIR] [--run-dir DIR] [--metrics HOST:PORT]
#
# Is the engine that scripts/start.sh started running (same --config/--data/--run-dir, which
# locate its pid file)? When it is, prints its pid and uptime, the address it listens on and
# its cores (from its log), then what its metrics socket says: sessions open per shard,
# commands by type, and the ingress-to-ack latency (p50, p99, p99.9 over every shard,
# interpolated within the histogram's buckets as Prometheus' histogram_quantile does; and
# the largest value).
# The metrics address is the engine's `veloz: metrics on HOST:PORT` log line, or --metrics.
# It is read with curl when installed, else with bash's /dev/tcp. An engine without a metrics
# socket, or one that does not answer, is still reported as running.
#
# Environment (each overridden by its option): VELOZ_CONFIG, VELOZ_DATA, VELOZ_RUN_DIR (as for
# scripts/start.sh), VELOZ_METRICS (HOST:PORT), VELOZ_CURL (the curl binary; "none" reads
# through /dev/tcp).
# Exit status (LSB): 0 running, 1 not running but the pid file remains (it crashed or was
# killed), 3 not running, 4 unknown (the pid file cannot be read), 2 bad arguments.
set -euo pipefail

PROG=status.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

where=() metrics=${VELOZ_METRICS:-}
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config | --data | --run-dir)
      [ "$#" -ge 2 ] || die "$1 needs a value"
      where+=("$1" "$2")
      shift 2
      ;;
    --config=* | --data=* | --run-dir=*) where+=("$1"); shift ;;
    --metrics) metrics=${2:?--metrics needs HOST:PORT}; shift 2 ;;
    --metrics=*) metrics=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

paths=$("$HERE/start.sh" --print-paths "${where[@]}") || exit 2
path_of() { sed -n "s/^$1=//p" <<<"$paths"; }
pid_file=$(path_of pid_file)
log_file=$(path_of log_file)

# alive PID: a live process (zombies count as gone) whose arguments include `serve`
veloz_alive() {
  local stat args
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ] || return 1
  args=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  grep -qx serve <<<"$args"
}

# log_value PREFIX: the rest of the engine's first log line that starts with PREFIX
log_value() {
  [ -r "$log_file" ] || return 0
  sed -n "s/^$1//p" "$log_file" | head -n 1
}

if [ ! -e "$pid_file" ]; then
  echo "veloz is not running (no pid file $pid_file)"
  exit 3
fi
if [ ! -r "$pid_file" ]; then
  echo "veloz status unknown: cannot read $pid_file"
  exit 4
fi
pid=$(head -c 32 "$pid_file" | tr -dc 0-9)
if [ -z "$pid" ] || ! veloz_alive "$pid"; then
  echo "veloz is not running, but its pid file $pid_file remains (pid ${pid:-?} is gone: crashed or killed?)"
  echo "  the next scripts/start.sh recovers from the journals; its log: $log_file"
  exit 1
fi

uptime=$(ps -o etime= -p "$pid" 2>/dev/null | tr -d ' ' || true)
listen=$(log_value 'veloz: listening on ')
cores=$(log_value 'veloz: starting ')
cores=${cores%, data in *}
[ -n "$metrics" ] || metrics=$(log_value 'veloz: metrics on ')

echo "veloz is running (pid $pid${uptime:+, up $uptime})"
echo "  listening: ${listen:-not yet (replaying its journals?)}"
echo "  cores:     ${cores:-unknown (no 'starting' line in $log_file)}"
echo "  log:       $log_file"

# fetch_metrics HOST:PORT: print the metrics text; return 1 with the reason on stderr
fetch_metrics() {
  local host=${1%:*} port=${1##*:} curl=${VELOZ_CURL:-$(command -v curl || true)} out
  host=${host#[}
  host=${host%]}
  # A wildcard listen address is reached over loopback.
  case "$host" in
    0.0.0.0 | "") host=127.0.0.1 ;;
    :: | "::0") host=::1 ;;
  esac
  if [ -n "$curl" ] && [ "$curl" != none ]; then
    local url_host=$host
    [[ $host != *:* ]] || url_host="[$host]"
    "$curl" -fsS --max-time 3 "http://$url_host:$port/metrics"
    return
  fi
  # bash /dev/tcp: send a plain HTTP/1.0 request, read to EOF, drop the response headers.
  # shellcheck disable=SC2016 # $1 and $2 are the inner bash's arguments
  out=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    cat <&3' _ "$host" "$port") || {
    echo "no answer from $host:$port" >&2
    return 1
  }
  out=${out//$'\r'/}
  if [[ $out == HTTP/* ]]; then
    out=${out#*$'\n\n'}
  fi
  printf '%s\n' "$out"
}

if [ -z "$metrics" ]; then
  echo "  metrics:   not served (no 'veloz: metrics on' line in the log; --metrics HOST:PORT to ask one)"
  exit 0
fi
if ! text=$(fetch_metrics "$metrics" 2>&1); then
  echo "  metrics:   $metrics does not answer: ${text:-no reply}"
  exit 0
fi

# The summary, from the Prometheus text: sessions per shard, commands by type, latency.
awk -v addr="$metrics" '
  function label(s, name) {
    if (match(s, name "=\"[^\"]*\"")) return substr(s, RSTART + length(name) + 2, RLENGTH - length(name) - 3)
    return ""
  }
  function us(v) {
    if (v ~ /^[+-]?(NaN|nan|Inf|inf)/) return "n/a"
    v = v * 1e6
    if (v >= 1e6) return sprintf("%.2f s", v / 1e6)
    if (v >= 1000) return sprintf("%.2f ms", v / 1000)
    return sprintf("%.1f us", v)
  }
  /^#/ || NF < 2 { next }
  {
    split($1, part, "{")
    name = part[1]
  }
  name == "veloz_up" { up = $2 }
  name == "veloz_shards" { shards = $2 }
  name == "veloz_sessions_open" {
    s = label($1, "shard")
    if (!(s in sess)) order[++n_shards] = s
    sess[s] += $2
    total_open += $2
  }
  name == "veloz_commands_total" {
    t = label($1, "type")
    if (!(t in cmds)) types[++n_types] = t
    cmds[t] += $2
    total_cmds += $2
  }
  name == "veloz_ingress_to_ack_seconds_bucket" {
    le = label($1, "le")
    if (le == "+Inf") { inf += $2; next }
    if (!(le in cum)) bounds[++n_bounds] = le
    cum[le] += $2
  }
  name == "veloz_ingress_to_ack_seconds_count" { count += $2; counted = 1 }
  name == "veloz_ingress_to_ack_max_seconds" && (max == "" || $2 + 0 > max + 0) { max = $2 }
  # quantile(Q): histogram_quantile over the buckets summed over the shards
  function quantile(q,   rank, i, lo, below) {
    rank = q * inf
    lo = 0; below = 0
    for (i = 1; i <= n_bounds; i++) {
      if (cum[bounds[i]] >= rank) {
        return lo + (bounds[i] - lo) * (rank - below) / (cum[bounds[i]] - below)
      }
      lo = bounds[i] + 0; below = cum[bounds[i]]
    }
    return -lo
  }
  function shown(v) { return v < 0 ? "over " us(-v) : us(v) }
  END {
    # The bounds in numeric order (insertion sort: a couple of dozen of them).
    for (i = 2; i <= n_bounds; i++) {
      b = bounds[i]
      for (j = i - 1; j >= 1 && bounds[j] + 0 > b + 0; j--) bounds[j + 1] = bounds[j]
      bounds[j + 1] = b
    }
    line = "  metrics:   " addr
    if (up != "" || shards != "") line = line " (veloz_up " (up == "" ? "?" : up) ", " (shards == "" ? "?" : shards) " shard(s))"
    print line
    if (n_shards == 0) { print "  sessions:  no veloz_sessions_open in the metrics" }
    else {
      line = ""
      for (i = 1; i <= n_shards; i++) line = line (i > 1 ? ", " : "") "shard " order[i] ": " sess[order[i]]
      printf "  sessions:  %d open (%s)\n", total_open, line
    }
    if (n_types > 0) {
      line = ""
      for (i = 1; i <= n_types; i++) line = line (i > 1 ? ", " : "") types[i] " " cmds[types[i]]
      printf "  commands:  %d (%s)\n", total_cmds, line
    }
    if (n_bounds == 0 || !counted) { print "  latency:   no veloz_ingress_to_ack_seconds histogram in the metrics" }
    else if (inf == 0) { print "  latency:   ingress to ack: no command measured yet" }
    else {
      printf "  latency:   ingress to ack p50 %s, p99 %s, p99.9 %s", shown(quantile(0.5)), shown(quantile(0.99)), shown(quantile(0.999))
      if (max != "") printf ", max %s", us(max)
      printf " (%d commands; p from the histogram buckets)\n", count
    }
  }
' <<<"$text"

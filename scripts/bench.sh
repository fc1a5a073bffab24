#!/usr/bin/env bash
# scripts/bench.sh [--quick] [--out DIR] [--config FILE] [--bin PATH] [--rate R] [--pipeline K]
#                  [--connections N] [--duration S] [--load-cores LIST] [--no-criterion]
#
# The benchmarks of docs/BENCHMARKS.md in one go, every result in one timestamped directory
# (default target/bench-results/<UTC time>/):
#   1. criterion benches (`cargo bench --bench '*'`): criterion.txt (the full reports stay
#      in target/criterion/);
#   2. an engine started with scripts/start.sh on a fresh data directory, then `veloz load`
#      against it with --baseline (a busy-polled echo server measured in the same run, so
#      Veloz's percentiles come as ratios to the host's loopback floor):
#        open loop   --rate R                      -> open-loop.txt, open-loop.hlog
#        closed loop --closed-loop --pipeline K    -> closed-loop.txt, closed-loop.hlog
#      then scripts/stop.sh: the engine's own latency report (ingress to ack, matching,
#      journal append, ...) is at the end of engine.log, its interval logs under
#      engine-data/reports/ (read them with `veloz report`);
#   3. host.txt: commit, kernel, CPUs and tuning/check.sh's readiness report, since figures
#      mean little without the host they came from.
# Compare runs of one host, and medians of several runs: a shared host is noisy (PLATFORM.md).
#
# --quick          a short version: criterion --quick, 2 s of load after 0.5 s of warm-up
# --out DIR        result directory (default target/bench-results/<UTC time>)
# --config FILE    engine config (default: the embedded one, on ports picked by the kernel)
# --bin PATH       the veloz binary (default: target/release/veloz; `make build` makes it)
# --rate R         open-loop orders per second (default 10000)
# --pipeline K     closed-loop requests in flight per connection (default 64)
# --connections N  sessions (default 2)
# --duration S     seconds measured per run (default 10; --quick 2)
# --load-cores L   cores of the load threads (default: veloz load's, the last online core)
# --no-criterion   skip step 1
#
# Environment: CARGO (default cargo); VELOZ_* of scripts/start.sh and stop.sh apply.
# Exit status: 0 when every step ran, 1 when one failed (the others still run), 2 on bad
# arguments.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
# shellcheck source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

quick=0 out="" config="" bin="" rate=10000 pipeline=64 connections=2 duration="" cores=""
criterion=1
while [ "$#" -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --bin) bin=${2:?--bin needs the path of the veloz binary}; shift 2 ;;
    --rate) rate=${2:?--rate needs orders per second}; shift 2 ;;
    --pipeline) pipeline=${2:?--pipeline needs a number}; shift 2 ;;
    --connections) connections=${2:?--connections needs a number}; shift 2 ;;
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --load-cores) cores=${2:?--load-cores needs a CPU list}; shift 2 ;;
    --no-criterion) criterion=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for n in "$rate" "$pipeline" "$connections"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive number"
done
warmup=1
if [ "$quick" = 1 ]; then
  warmup=0.5
  duration=${duration:-2}
fi
duration=${duration:-10}
[[ $duration =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration '$duration' is not a number of seconds"

out=${out:-$ROOT/target/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
[[ $out == /* ]] || out=$PWD/$out
mkdir -p "$out"
[ -z "$(ls -A "$out")" ] || die "$out is not empty: results of another run?"
if [ -n "$config" ]; then
  [ -f "$config" ] || die "config file not found: $config"
  [[ $config == /* ]] || config=$PWD/$config
fi
if [ -z "$bin" ]; then
  bin=$("$HERE/start.sh" --print-paths | sed -n 's/^bin=//p')
  [ -n "$bin" ] || die "no veloz binary: build it with 'make build', or pass --bin PATH"
fi
echo "$PROG: results in $out"

failed=()
step() {
  echo
  echo "== $PROG: $*"
}

# ---- the host ----------------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "kernel: $(uname -srm)"
  echo "cpus: $(nproc) online; $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | paste -sd';' -)"
  echo "binary: $bin"
  echo "mode: $([ "$quick" = 1 ] && echo quick || echo full)"
  echo
  echo "tuning/check.sh${config:+ --config $config}:"
  "$ROOT/tuning/check.sh" ${config:+--config "$config"} || true
} >"$out/host.txt" 2>&1

# ---- 1. criterion ------------------------------------------------------------------------------
if [ "$criterion" = 1 ]; then
  step "criterion benches (cargo bench)"
  bench_args=()
  [ "$quick" = 0 ] || bench_args=(-- --quick)
  if ! (cd "$ROOT" && "${CARGO:-cargo}" bench --locked --bench '*' "${bench_args[@]}") 2>&1 | tee "$out/criterion.txt"; then
    failed+=("cargo bench")
  fi
fi

# ---- 2. the engine under veloz load ------------------------------------------------------------
step "engine + veloz load (open loop --rate $rate, closed loop --pipeline $pipeline, --baseline)"
engine_config=$out/engine.toml
if [ -n "$config" ]; then
  cp "$config" "$engine_config"
else
  # The embedded configuration on ports the kernel picks, so nothing else on the host clashes.
  "$bin" config | sed -E 's/^(listen[[:space:]]*=[[:space:]]*"[^"]*):[0-9]+"/\1:0"/' >"$engine_config"
fi
data=$out/engine-data
stop_engine() {
  "$HERE/stop.sh" --data "$data" || failed+=("stop.sh")
  [ ! -f "$data/veloz.log" ] || cp "$data/veloz.log" "$out/engine.log"
}
if "$HERE/start.sh" --config "$engine_config" --data "$data" --bin "$bin" | tee "$out/start.txt"; then
  trap stop_engine EXIT
  trap 'exit 130' INT TERM
  addr=$(sed -n 's/^ *listening: *//p' "$out/start.txt")
  load=("$bin" load --connect "$addr" --config "$engine_config" --connections "$connections"
    --duration "$duration" --warmup "$warmup" --baseline)
  [ -z "$cores" ] || load+=(--cores "$cores")
  for run in open-loop closed-loop; do
    mode=(--rate "$rate")
    [ "$run" = open-loop ] || mode=(--closed-loop --pipeline "$pipeline")
    step "$run: ${load[*]} ${mode[*]} --hlog $out/$run.hlog"
    if ! "${load[@]}" "${mode[@]}" --hlog "$out/$run.hlog" 2>&1 | tee "$out/$run.txt"; then
      failed+=("veloz load $run")
    fi
  done
  trap - EXIT INT TERM
  step "stopping the engine (its latency report goes to engine.log)"
  stop_engine
else
  failed+=("start.sh")
fi

# ---- summary -----------------------------------------------------------------------------------
echo
echo "$PROG: results in $out:"
for f in "$out"/*; do echo "  ${f##*/}"; done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "$PROG: FAILED: ${failed[*]}" >&2
  exit 1
fi

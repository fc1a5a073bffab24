#!/usr/bin/env bash
# scripts/replay.sh [--config FILE] [--data DIR] [--bin PATH] [--force] [-- VELOZ_REPLAY_ARGS...]
#
# Offline audit of an engine's journals: runs `veloz replay --verify` on its data directory,
# which replays every shard's journal through the recovery code path, read-only, prints each
# shard's books, and compares each shard's state hash with the clean-shutdown marker (with
# `-- --until SEQ`, with the checkpoint at SEQ). Exit status is the replay's: 0 verified,
# 1 a mismatch or a journal it cannot read, 2 nothing to compare with (no clean shutdown).
#   - The data directory is found as scripts/start.sh finds it: --data DIR, else `data_dir` in
#     the [engine] table of --config FILE, else veloz-data. --config is also handed to the
#     replay (instruments and routing come from it).
#   - Refuses (exit 1) while an engine started by scripts/start.sh runs on that directory: the
#     journals are still being written. --force replays anyway.
#   - Arguments after -- go to `veloz replay` unchanged.
#
# Environment (each overridden by its option): VELOZ_CONFIG, VELOZ_DATA, VELOZ_RUN_DIR,
# VELOZ_BIN (as for scripts/start.sh).
# Exit status: the replay's; 1 when it could not run; 2 on bad arguments.
set -euo pipefail

PROG=replay.sh
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

where=() force=0 extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config | --data | --run-dir | --bin)
      [ "$#" -ge 2 ] || die "$1 needs a value"
      where+=("$1" "$2")
      shift 2
      ;;
    --config=* | --data=* | --run-dir=* | --bin=*) where+=("$1"); shift ;;
    --force) force=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help; arguments for veloz replay go after --)" ;;
  esac
done

paths=$("$HERE/start.sh" --print-paths "${where[@]}") || exit 2
path_of() { sed -n "s/^$1=//p" <<<"$paths"; }
config=$(path_of config)
data=$(path_of data_dir)
pid_file=$(path_of pid_file)
bin=$(path_of bin)
[ -n "$bin" ] || fail "no veloz binary: build it with 'make build', or pass --bin PATH"
[ -d "$data" ] || fail "no data directory $data (pass --data DIR or --config FILE)"

if [ "$force" = 0 ] && [ -f "$pid_file" ]; then
  pid=$(head -c 32 "$pid_file" | tr -dc 0-9)
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx serve; then
    fail "veloz (pid $pid) is running on $data and still writes its journals: stop it first (scripts/stop.sh), or pass --force"
  fi
fi
if ! "$bin" help replay >/dev/null 2>&1; then
  fail "$bin has no 'replay' subcommand (veloz --help lists what it has): rebuild it with 'make build'"
fi

cmd=("$bin" replay --data "$data")
[ -z "$config" ] || cmd+=(--config "$config")
cmd+=(--verify "${extra[@]}")
echo "$PROG: ${cmd[*]}"
rc=0
"${cmd[@]}" || rc=$?
if [ "$rc" = 0 ]; then
  echo "$PROG: journals in $data replayed and verified"
else
  echo "$PROG: replay of $data FAILED verification or could not read it (exit $rc); see above" >&2
fi
exit "$rc"

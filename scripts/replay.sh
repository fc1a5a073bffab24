#!/usr/bin/env bash
# scripts/replay.sh [--config FILE] [--data DIR] [--bin PATH] [--force] [-- VELOZ_REPLAY_ARGS...]
#
# Offline audit of an engine's journals: runs `veloz replay --verify` on its data directory,
# which replays every shard's journal through the recovery code path, read-only, prints each
# shard's books, and compares each shard's state hash with the clean-shutdown marker (with
# `-- --until SEQ`, with the checkpoint at SEQ).
#   - The data directory is found as scripts/start.sh finds it: --data DIR, else `data_dir` in
#     the [engine] table of --config FILE, else veloz-data. --config is also handed to the
#     replay (instruments and routing come from it).
#   - Refuses (exit 1) while an engine started by scripts/start.sh runs on that directory: the
#     journals are still being written. --force replays anyway.
#   - Arguments after -- go to `veloz replay` unchanged.
#
# Environment (each overridden by its option): VELOZ_CONFIG, VELOZ_DATA, VELOZ_RUN_DIR,
# VELOZ_BIN (as for scripts/start.sh).
# Exit status, that of `veloz replay --verify` for 0 to 2:
#   0  every shard verified
#   1  FAILED: a state hash differs from the marker, a checkpoint or a snapshot, or a journal
#      could not be read
#   2  replayed but not verified: nothing to compare with (no clean-shutdown marker: the
#      engine is running or did not stop cleanly; or no checkpoint at --until SEQ)
#   3  not run: bad arguments (this script's, or those after -- that veloz replay refused),
#      no binary, no data directory, or an engine still writing the journals
set -euo pipefail

PROG=replay.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# Not run (exit 3): bad arguments, no binary, no data directory, a running engine.
die() {
  echo "$PROG: $*" >&2
  exit 3
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

paths=$("$HERE/start.sh" --print-paths "${where[@]}") || exit 3
path_of() { sed -n "s/^$1=//p" <<<"$paths"; }
config=$(path_of config)
data=$(path_of data_dir)
pid_file=$(path_of pid_file)
bin=$(path_of bin)
[ -n "$bin" ] || die "no veloz binary: build it with 'make build', or pass --bin PATH"
[ -d "$data" ] || die "no data directory $data (pass --data DIR or --config FILE)"

if [ "$force" = 0 ] && [ -f "$pid_file" ]; then
  pid=$(head -c 32 "$pid_file" | tr -dc 0-9)
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx serve; then
    die "veloz (pid $pid) is running on $data and still writes its journals: stop it first (scripts/stop.sh), or pass --force"
  fi
fi
if ! "$bin" help replay >/dev/null 2>&1; then
  die "$bin has no 'replay' subcommand (veloz --help lists what it has): rebuild it with 'make build'"
fi

cmd=("$bin" replay --data "$data")
[ -z "$config" ] || cmd+=(--config "$config")
cmd+=(--verify "${extra[@]}")
echo "$PROG: ${cmd[*]}"
# veloz replay's stderr is shown as it comes and kept: its exit 2 is "nothing to compare
# with" when it says "cannot verify", and clap's refusal of the arguments after -- otherwise.
errors=$(mktemp "${TMPDIR:-/tmp}/veloz-replay.XXXXXX")
trap 'rm -f "$errors"' EXIT
set +e
{ "${cmd[@]}" 2>&1 1>&3 3>&- | tee "$errors" >&2 3>&-; } 3>&1
rc=${PIPESTATUS[0]}
set -e
case "$rc" in
  0) echo "$PROG: journals in $data replayed and verified" ;;
  1) echo "$PROG: verification of $data FAILED: a state hash differs, or a journal could not be read (exit 1); see above" >&2 ;;
  2)
    if grep -q ': cannot verify: ' "$errors"; then
      echo "$PROG: journals in $data replayed but NOT verified: nothing to compare with (no clean-shutdown marker: the engine runs or did not stop cleanly; with --until SEQ, no checkpoint at SEQ) (exit 2)" >&2
    else
      echo "$PROG: veloz replay refused the arguments after -- (see above); nothing was replayed" >&2
      rc=3
    fi
    ;;
  *) echo "$PROG: veloz replay ended with exit $rc (see above)" >&2 ;;
esac
exit "$rc"

# shellcheck shell=bash
# What every benchmark script (scripts/bench*.sh) starts with; sourced, not run:
#   PROG  the script's name, for messages
#   HERE  scripts/, ROOT the repository
#   usage print the script's header comment (its lines 2 up to `set -euo pipefail`)
#   die   print "PROG: message" on stderr and exit 2 (bad arguments)
# shellcheck disable=SC2034  # used by the scripts that source this file
PROG=$(basename "$0")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2034
ROOT=$(cd "$HERE/.." && pwd)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

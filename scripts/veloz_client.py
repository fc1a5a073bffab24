#!/usr/bin/env python3
"""The Veloz Python client's command line, run from a checkout without installing it.

The client is the package in clients/python (`pip install ./clients/python` gives the
`veloz-client` command and `import veloz_client`); this wrapper runs the same command line
from the source tree: `.tools/venv/bin/python scripts/veloz_client.py --help`
(`make tools` puts the `flatbuffers` package it needs into .tools/venv).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients",
                                "python", "src"))

from veloz_client.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="veloz_client.py"))

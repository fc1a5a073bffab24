"""`python -m veloz_client ...`: the command line (veloz_client.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m veloz_client"))

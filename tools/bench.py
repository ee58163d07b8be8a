#!/usr/bin/env python3
"""Speed and complexity benchmark (not a test): ``python tools/bench.py --help`` (= ``dvclic bench``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("bench", sys.argv[1:]))

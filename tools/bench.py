#!/usr/bin/env python3
"""Speed and complexity benchmark (not a test): ``python tools/bench.py --help``."""

import sys

from dvclic.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())

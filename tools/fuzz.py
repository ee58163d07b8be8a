#!/usr/bin/env python3
"""Fuzz the decoder with hostile, checksum-valid streams: ``python tools/fuzz.py --help`` (= ``dvclic fuzz``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("fuzz", sys.argv[1:]))

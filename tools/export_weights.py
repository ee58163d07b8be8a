#!/usr/bin/env python3
"""Compact weights file from a checkpoint: ``python tools/export_weights.py --help`` (= ``dvclic export-weights``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("export-weights", sys.argv[1:]))

#!/usr/bin/env python3
"""Evaluate dvclic against x264/x265 on a dataset manifest: ``python tools/eval.py --help`` (= ``dvclic eval``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("eval", sys.argv[1:]))

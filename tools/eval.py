#!/usr/bin/env python3
"""Evaluate dvclic against x264/x265 on a dataset manifest: ``python tools/eval.py --help``."""

import sys

from dvclic.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())

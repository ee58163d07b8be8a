#!/usr/bin/env python3
"""What a model's motion path predicts on real frames: ``python tools/inspect_motion.py --help`` (= ``dvclic inspect-motion``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("inspect-motion", sys.argv[1:]))

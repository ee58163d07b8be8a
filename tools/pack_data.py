#!/usr/bin/env python3
"""A training config's pictures as a small folder of patches: ``python tools/pack_data.py --help`` (= ``dvclic pack-data``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("pack-data", sys.argv[1:]))

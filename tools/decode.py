#!/usr/bin/env python3
"""Decode a .dvc file: ``python tools/decode.py IN.dvc -o OUT.y4m|OUT.yuv|OUT.mp4|DIR/`` (= ``dvclic decode``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("decode", sys.argv[1:]))

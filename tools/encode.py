#!/usr/bin/env python3
"""Encode a video file to .dvc: ``python tools/encode.py INPUT -o OUT.dvc [options]`` (= ``dvclic encode``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("encode", sys.argv[1:]))

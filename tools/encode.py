#!/usr/bin/env python3
"""Encode a video file to .dvc: ``python tools/encode.py INPUT -o OUT.dvc [options]``."""

import sys

from dvclic.cli import encode_main

if __name__ == "__main__":
    sys.exit(encode_main())

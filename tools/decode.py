#!/usr/bin/env python3
"""Decode a .dvc file: ``python tools/decode.py IN.dvc -o OUT.y4m|OUT.yuv|OUT.mp4|DIR/``."""

import sys

from dvclic.cli import decode_main

if __name__ == "__main__":
    sys.exit(decode_main())

#!/usr/bin/env python3
"""A model's intra codec on a folder of images: ``python tools/eval_images.py --help`` (= ``dvclic eval-images``)."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("eval-images", sys.argv[1:]))

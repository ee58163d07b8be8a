#!/usr/bin/env python3
"""Train dvclic models: ``python tools/train.py --config configs/train/X.yaml --out runs/X [--resume | --init W.pt]`` (= ``dvclic train``).

Multi-GPU / multi-node: ``torchrun --nproc_per_node=K tools/train.py ...``."""

import sys

from dvclic.commands import run

if __name__ == "__main__":
    sys.exit(run("train", sys.argv[1:]))

#!/usr/bin/env python3
"""Train dvclic models: ``python tools/train.py --config configs/train/X.yaml --out runs/X [--resume]``.

Multi-GPU / multi-node: ``torchrun --nproc_per_node=K tools/train.py ...``.
"""

import sys

from dvclic.train.cli import main

if __name__ == "__main__":
    sys.exit(main())

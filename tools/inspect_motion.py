#!/usr/bin/env python3
"""Inspect a model's motion path on real frames (flow statistics, prediction error, real bytes).

``python tools/inspect_motion.py --weights W.pt|OUT/last.pt INPUT [--frames 9] [--quality 1] [--json]``

INPUT is any video the encoder reads (raw .yuv geometry from its name). See
``dvclic/motion_inspect.py`` for what each column means.
"""

import argparse
import json
import sys

from dvclic.cli import quiet_third_party_warnings
from dvclic.errors import DvclicError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("input", help="video file")
    p.add_argument("--weights", default="dvc-dis.pt",
                   help="dvclic weights file or training checkpoint (default: the shipped model)")
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--quality", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    quiet_third_party_warnings()
    import torch

    from dvclic.checkpoint import load_model_or_checkpoint
    from dvclic.motion_inspect import FIELDS, inspect_motion

    torch.set_num_threads(min(2, torch.get_num_threads()))
    try:
        model, _, kind, _ = load_model_or_checkpoint(args.weights)
        res = inspect_motion(model, args.input, frames=args.frames, quality=args.quality)
    except DvclicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res["weights"], res["weights_kind"] = args.weights, kind
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{args.weights} ({kind}) on {res['video']} {res['width']}x{res['height']}, quality {res['quality']}")
    shown = [k for k in FIELDS if not k.startswith("mse_")]
    print("pair " + " ".join(f"{k:>17}" for k in shown) + "  mode")
    for i, row in enumerate([*res["pairs"], res["mean"]]):
        name = "mean" if i == len(res["pairs"]) else f"{i}->{i + 1}"
        print(f"{name:>4} " + " ".join(f"{row[k]:>17.5g}" for k in shown) + "  " + row.get("mode", ""))
    print("modes chosen: " + ", ".join(f"{k} {v}" for k, v in sorted(res["modes"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())

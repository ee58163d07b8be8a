"""``dvclic inspect-motion``: a model's motion path on real frames (flow statistics, prediction
error, real bytes). See :mod:`dvclic.motion_inspect` for what each column means."""

from __future__ import annotations

import json
from typing import Sequence

from ..cli import ArgParser, call_guarded, parse_size, quiet_third_party_warnings


def main(argv: Sequence[str] | None = None, *, prog: str = "inspect-motion") -> int:
    p = ArgParser(prog=prog, description="Inspect a model's motion path on real frames: copy, warp, decoded-flow "
                                         "warp, MC and chosen prediction PSNR, real motion/residual bytes, modes.")
    p.add_argument("input", help="video file the encoder reads (raw .yuv geometry from its name, or --size)")
    p.add_argument("--weights", default=None,
                   help="dvclic weights file or training checkpoint (default: the shipped model)")
    p.add_argument("--frames", type=int, default=9, help="frames to read (pairs: frames - 1; default 9)")
    p.add_argument("--quality", type=int, default=1, help="quality index (default 1)")
    p.add_argument("--size", type=parse_size, help="WxH for raw .yuv input whose name does not say it")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        import torch

        from ..motion_inspect import inspect_motion
        from ..store import ModelStore

        torch.set_num_threads(min(2, torch.get_num_threads()))
        loaded = ModelStore().load(args.weights, checkpoints=True)
        video_args = {} if args.size is None else {"width": args.size[0], "height": args.size[1]}
        res = inspect_motion(loaded.model, args.input, frames=args.frames, quality=args.quality, **video_args)
        res["weights"], res["weights_kind"] = str(loaded.path), loaded.kind
        return res

    rc, res = call_guarded(work)
    if res is None:
        return rc
    if args.json:
        print(json.dumps(res))
        return 0
    from ..motion_inspect import FIELDS

    print(f"{res['weights']} ({res['weights_kind']}) on {res['video']} {res['width']}x{res['height']}, "
          f"quality {res['quality']}")
    shown = [k for k in FIELDS if not k.startswith("mse_")]
    print("pair " + " ".join(f"{k:>17}" for k in shown) + "  mode")
    for i, row in enumerate([*res["pairs"], res["mean"]]):
        name = "mean" if i == len(res["pairs"]) else f"{i}->{i + 1}"
        print(f"{name:>4} " + " ".join(f"{row[k]:>17.5g}" for k in shown) + "  " + row.get("mode", ""))
    print("modes chosen: " + ", ".join(f"{k} {v}" for k, v in sorted(res["modes"].items())))
    return 0

#!/usr/bin/env python3
"""Evaluate a model's intra codec on a folder of images (e.g. Kodak), real bytes.

``python tools/eval_images.py --weights W.pt --images DIR [--qualities 0 1 2 3] [--refine-steps 0 500 2000] [--json]``

Several ``--refine-steps`` values share one refinement per picture (the longest); each refined
run reports its BD-rate (PSNR-RGB) against the unrefined run when 0 is among them.
"""

import argparse
import json
import sys

from dvclic.cli import quiet_third_party_warnings
from dvclic.errors import DvclicError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--weights", default="dvc-hyperprior.pt", help="weights file (default: the shipped model)")
    p.add_argument("--images", required=True, help="folder of PNG/JPEG pictures")
    p.add_argument("--qualities", type=int, nargs="+")
    p.add_argument("--refine-steps", type=int, nargs="+", default=[0],
                   help="SGA refinement steps per picture, one run per value (0: off)")
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    quiet_third_party_warnings()
    from dvclic.image_eval import evaluate_images

    try:
        res = evaluate_images(args.weights, args.images, qualities=args.qualities, refine_steps=args.refine_steps,
                              device=args.device, limit=args.limit,
                              progress=lambda s: print(s, file=sys.stderr))
    except DvclicError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['intra_codec']} on {res['count']} images")
        for run in res["runs"]:
            print(f"refine_steps={run['refine_steps']}")
            for pt in run["points"]:
                print(f"  q{pt['quality']}: {pt['bpp']:.4f} bpp  {pt['psnr_rgb']:.2f} dB  MS-SSIM {pt['ms_ssim']:.4f}  "
                      f"R+lD {pt['rd_cost']:.4f}  enc {pt['encode_s']:.3f} s  dec {pt['decode_s']:.3f} s")
            bd = run.get("bd_rate_psnr_rgb_vs_unrefined")
            if bd is not None:
                value = "n/a" if bd["bd_rate"] is None else f"{bd['bd_rate']:+.2f}%"
                print(f"  BD-rate (PSNR-RGB) vs unrefined: {value}" + (f" ({bd['reason']})" if bd["reason"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``dvclic eval-images``: a model's intra codec on a folder of images (e.g. Kodak), real bytes.

``dvclic eval-images --weights W.pt --images DIR [--qualities 0 1 2 3] [--refine-steps 0 500 2000]
[--profile P] [--json]``

Several ``--refine-steps`` values share one refinement per picture (the longest); each refined
run reports its BD-rate (PSNR-RGB) against the unrefined run when 0 is among them.

``dvclic eval-images --compare ANCHOR.json TEST.json [...]`` codes nothing: it prints the
BD-rate (PSNR-RGB) of every run in each TEST result against ANCHOR's unrefined run (files written
by ``--json``), e.g. a codec against the hyperprior baseline trained with the same budget.
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from ..cli import ArgParser, call_guarded, quiet_third_party_warnings
from ..errors import InputError


def main(argv: Sequence[str] | None = None, *, prog: str = "eval-images") -> int:
    p = ArgParser(prog=prog, description="Evaluate a model's intra codec on a folder of images, real bytes "
                                         "(or compare saved results by BD-rate).")
    p.add_argument("--weights", help="weights file, shipped name or SHA-256 (default: the shipped model)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", help="folder of PNG/JPEG pictures")
    what.add_argument("--compare", nargs="+", metavar="JSON",
                      help="no coding: BD-rate of the 2nd.. results against the 1st (--json outputs)")
    p.add_argument("--qualities", type=int, nargs="+")
    p.add_argument("--refine-steps", type=int, nargs="+", default=[0],
                   help="encode-time refinement steps per picture (SGA / LOF), one run per value (0: off)")
    p.add_argument("--refine-precision", default="float32", choices=["float32", "bfloat16"],
                   help="precision of the refinement steps: bfloat16 is faster where bf16 convolutions are "
                        "native (measured on AMX CPUs; elsewhere measure first); "
                        "streams and decoder unchanged")
    p.add_argument("--profile", type=int, help="entropy-model profile of codecs that have one (msp: passes)")
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    quiet_third_party_warnings()
    if args.compare:
        return _compare(args.compare, args.json)

    def work() -> dict:
        from ..evaluation.images import evaluate_images

        return evaluate_images(args.weights, args.images, qualities=args.qualities, refine_steps=args.refine_steps,
                               device=args.device, limit=args.limit, profile=args.profile,
                               refine_precision=args.refine_precision,
                               progress=lambda s: print(s, file=sys.stderr))

    rc, res = call_guarded(work)
    if res is None:
        return rc
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['intra_codec']} on {res['count']} images" + (f", profile {res['profile']}" if res["profile"] else ""))
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


def _compare(paths: list[str], as_json: bool) -> int:
    def work() -> dict:
        from ..evaluation.images import compare_results

        if len(paths) < 2:
            raise InputError("--compare needs an anchor and at least one result")
        results = []
        for path in paths:
            try:
                with open(path, encoding="utf-8") as f:
                    results.append(json.load(f))
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: cannot read a JSON result ({type(exc).__name__})") from None
        rows = [dict(row, result=path) for path, result in zip(paths[1:], results[1:])
                for row in compare_results(results[0], [result])]
        return {"anchor": paths[0], "rows": rows}

    rc, res = call_guarded(work)
    if res is None:
        return rc
    if as_json:
        print(json.dumps(res))
        return 0
    print(f"BD-rate (PSNR-RGB) against {paths[0]} (unrefined)")
    for row in res["rows"]:
        bd = row["bd_rate_psnr_rgb"]
        value = "n/a" if bd["bd_rate"] is None else f"{bd['bd_rate']:+.2f}%"
        print(f"  {row['result']} ({row['intra_codec']}, refine {row['refine_steps']}): {value}"
              + (f" ({bd['reason']})" if bd["reason"] else ""))
    return 0

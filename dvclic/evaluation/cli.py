"""Command line of ``dvclic eval`` and ``tools/eval.py`` (thin: parse, call :func:`~dvclic.evaluation.runner.evaluate`, print)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..cli import EXIT_USER_ERROR, ArgParser, flag_error, quiet_third_party_warnings
from ..errors import DvclicError


def _frames(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame count or 'all', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"frame count must be >= 1, got {value}")
    return value


def _names(text: str) -> tuple[str, ...]:
    if text.strip().lower() == "none":
        return ()
    return tuple(p.strip() for p in text.split(",") if p.strip())


def build_parser(prog: str = "eval") -> argparse.ArgumentParser:
    p = ArgParser(prog=prog, description=(
        "Evaluate dvclic models against x264/x265 (PyAV) on raw YUV sequences: bpp from real bitstreams, "
        "PSNR-RGB/YUV, MS-SSIM, fps, BD-rate (pchip), RD plots. Writes OUT/results.json, results.md, plots/."))
    p.add_argument("--dataset", required=True, help="dataset manifest YAML (configs/datasets/*.yaml)")
    p.add_argument("--root", required=True, help="folder holding the manifest's .yuv files")
    p.add_argument("--config", action="extend", nargs="+", default=[], metavar="YAML",
                   help="model config(s) to evaluate (each needs trained weights)")
    p.add_argument("--default", action="store_true",
                   help="evaluate the shipped default model (implied when no --config is given)")
    p.add_argument("--weights", help="weights file for the single model (default: the config's / shipped)")
    p.add_argument("--frames", type=_frames, default=None, help="frames per sequence: N or 'all' (default: all)")
    p.add_argument("--intra-period", type=int, default=12, help="I-frame period, also the anchors' keyint; -1: first only")
    p.add_argument("--modes", default="mc,warp,zero,skip,intra",
                   help="dvclic's P-frame candidates, chosen per frame by R-D cost (as tools/encode.py --modes)")
    p.add_argument("--intra-offset", type=int,
                   help="dvclic codes the intra period's I-frames this many qualities higher (as tools/encode.py; "
                        "default: the model config's)")
    p.add_argument("--qualities", type=int, nargs="+", help="dvclic quality indices (default: all)")
    p.add_argument("--anchors", type=_names, default=("x264", "x265"),
                   help="comma list from x264,x265,svtav1, or 'none' (default: x264,x265)")
    p.add_argument("--preset", type=_names, default=("medium",), help="anchor preset(s), comma list (default: medium)")
    p.add_argument("--crf", type=int, nargs="+", help="anchor CRFs (default: x264/x265 23 27 31 35; svtav1 27 35 43 51)")
    p.add_argument("--crop", action="store_true", help="crop to the codec multiple instead of padding (stated in output)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--sequences", nargs="+", help="evaluate only these sequences of the manifest (by name)")
    p.add_argument("--workers", type=int, default=1, help="sequences coded in parallel processes (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: unchanged with one worker, else CPU cores / workers)")
    p.add_argument("--out", required=True, help="output folder (results.json, results.md, plots/, cache/)")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "eval") -> int:
    args = build_parser(prog).parse_args(argv)
    quiet_third_party_warnings()
    from .plan import EvalOptions
    from .runner import evaluate

    configs: list[str | None] = list(args.config)
    if args.default or not configs:
        configs.insert(0, None)
    command = [*("dvclic eval" if prog == "eval" else prog).split(), *(sys.argv[1:] if argv is None else argv)]
    options = EvalOptions(
        dataset=args.dataset, root=args.root, out=args.out, configs=tuple(configs), weights=args.weights,
        frames=args.frames, sequences=tuple(args.sequences) if args.sequences else None, intra_period=args.intra_period,
        modes=args.modes, intra_offset=args.intra_offset,
        qualities=tuple(args.qualities) if args.qualities else None, anchors=args.anchors, presets=args.preset,
        crfs=tuple(args.crf) if args.crf else None, crop=args.crop, device=args.device, workers=args.workers, threads=args.threads,
        progress=sys.stderr.isatty(), command=tuple(command),
    )
    try:
        outcome = evaluate(options)
    except DvclicError as exc:
        print(f"error: {flag_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"error: interrupted; rerun the same command to resume (finished points are in {args.out}/cache)",
              file=sys.stderr)
        return 130
    print(outcome.markdown)
    print(f"results: {outcome.out / 'results.json'}; plots: {', '.join(outcome.results['plots'].values())}")
    return 0

"""Command line of ``dvclic bench``: parse, :func:`~dvclic.bench.runner.run_benchmark`, print.

A human-readable table goes to stderr with ``--json`` (stdout otherwise); with ``--json`` the
last stdout line is the result as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from ..cli import ArgParser, call_guarded, parse_size, quiet_third_party_warnings
from ..errors import DvclicError


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def format_table(r: dict[str, Any]) -> str:
    """The result as an aligned two-column table."""
    rows: list[tuple[str, str]] = []
    what = r.get("codec") or r.get("model")
    profile = f", profile {r['profile']}" if r.get("profile") else ""
    rows.append(("benchmark", f"{r['kind']} {what} ({r['weights']}), quality {r['quality']}{profile}"))
    dev = r["device"] + (f" ({r['device_name']})" if "device_name" in r else "")
    rows.append(("device / threads", f"{dev}, {r['torch_threads']} torch threads"))
    pad = r["padded_size"]
    rows.append(("size (WxH)", f"{r['size']['width']}x{r['size']['height']} (coded {pad['width']}x{pad['height']})"))
    rows.append(("picture", r["picture"]))
    rows.append(("runs", f"warmup {r['warmup']}, repeat {r['repeat']} (means)"))
    if r["kind"] == "video-model":
        rows.append(("basis", r["fps_basis"]))
    for side in ("encode", "decode"):
        split = r[f"{side}_split_s"]
        rows.append((f"{side}", f"{_fmt_s(r[f'{side}_s'])}/picture, {r[f'{side}_fps']:.2f} fps "
                                f"(network {_fmt_s(split['network'])}, entropy coding {_fmt_s(split['entropy_coding'])})"))
        stages = r.get(f"{side}_stages_s")
        if stages:
            rows.append((f"  {side} stages", ", ".join(f"{k} {_fmt_s(v)}" for k, v in stages.items())))
    if "i_frame" in r:
        rows.append(("I-frame", f"encode {_fmt_s(r['i_frame']['encode_s'])}, decode {_fmt_s(r['i_frame']['decode_s'])}, "
                                f"{r['i_frame']['bytes']} bytes"))
    rows.append(("bytes / bpp", f"{r['bytes']} / {r['bpp']:.4f}"))
    k = r["kmac_per_pixel"]
    if k:
        main = ", ".join(f"{n} {k[n]:.2f}" for n in ("encoder", "decoder") if k.get(n) is not None)
        rows.append(("kMAC/pixel", main or "n/a"))
        rows.append(("  per module", ", ".join(f"{n} {v:.2f}" for n, v in k.items()
                                                if n not in ("encoder", "decoder") and v is not None)))
    rows.append(("peak memory", f"{r['peak_mem_mb']:.1f} MB ({r['peak_mem_kind']})"))
    if "compare_decode_s" in r:
        rows.append(("compare", f"{r['compare_model']}: encode {_fmt_s(r['compare_encode_s'])}, decode "
                                f"{_fmt_s(r['compare_decode_s'])}; decode speedup {r['decode_speedup']:.1f}x "
                                f"({r['compare_note']})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def build_parser(prog: str = "bench") -> argparse.ArgumentParser:
    p = ArgParser(prog=prog, description=(
        "Speed and complexity of an image codec or a video model: encode/decode time split into network and "
        "entropy coding, fps, kMAC/pixel per module, peak memory; optionally against compressai's mbt2018."))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--codec", help="registered image codec name (random init unless --weights STATE_DICT), "
                                      "or 'intra' with --weights W.pt: that model's trained intra codec")
    what.add_argument("--config", help="video model config YAML (its weights; with --random-weights, random init)")
    p.add_argument("--codec-args", default="", help="constructor arguments for --codec, e.g. N=64,M=96")
    p.add_argument("--weights", help="weights: a dvclic weights file (video; alone = its own config), "
                                     "or a state_dict for --codec")
    p.add_argument("--random-weights", action="store_true",
                   help="with --config: time the networks with random weights (seeded), not trained ones")
    p.add_argument("--size", type=parse_size, required=True, help="picture size WxH (width x height)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--frames", type=int, default=3, help="video: frames coded per run (I + P-frames, default 3)")
    p.add_argument("--quality", type=int, help="quality index (default: the middle one)")
    p.add_argument("--profile", type=int, help="image codec: entropy-model profile (msp: decoding passes)")
    p.add_argument("--picture", help="image or clip to use instead of the default real picture")
    p.add_argument("--compare", choices=["mbt2018"], help="also time compressai's mbt2018 on the same picture")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs, averaged (default 3)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line (table on stderr)")
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "bench") -> int:
    args = build_parser(prog).parse_args(argv)
    quiet_third_party_warnings()
    from .runner import BenchOptions, parse_codec_args, run_benchmark

    def work() -> dict:
        if args.codec_args and not args.codec:
            raise DvclicError("--codec-args needs --codec")
        options = BenchOptions(
            width=args.size[0], height=args.size[1], codec=args.codec, codec_args=parse_codec_args(args.codec_args),
            config=args.config, weights=args.weights, device=args.device, frames=args.frames, quality=args.quality,
            picture=args.picture, compare=args.compare, warmup=args.warmup, repeat=args.repeat, threads=args.threads,
            random_weights=args.random_weights, profile=args.profile,
        )
        return run_benchmark(options)

    rc, result = call_guarded(work)
    if rc:
        return rc
    table = format_table(result)
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(result))
    else:
        print(table)
    return 0

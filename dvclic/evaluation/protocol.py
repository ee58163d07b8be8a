"""The protocol record printed into every results file: everything needed to rerun and to read it."""

from __future__ import annotations

import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import av
import torch

from .. import __version__
from .anchors import INFINITE_KEYINT, NOTES
from .bdrate import CLASS_RULE, METHOD, METRICS, MIN_GOOD_OVERLAP
from .measure import COLOUR_CONVERSION, MEASURE_VERSION
from .plan import Plan

#: The colour statement the protocol carries verbatim.
COLOUR_STATEMENT = "BT.709 limited range, bilinear chroma upsampling"


def _git_commit() -> str | None:
    try:
        repo = Path(__file__).resolve().parents[2]
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {"dvclic": __version__, "git_commit": _git_commit(), "python": platform.python_version(),
            "torch": torch.__version__, "compressai": version("compressai"), "av": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
            "bjontegaard": version("bjontegaard"), "pytorch_msssim": version("pytorch-msssim")}


def protocol_record(plan: Plan) -> dict[str, Any]:
    """The ``protocol`` section of results.json (the caller adds ``run``)."""
    opt = plan.options
    manifest, sequences, clips, multiple = plan.manifest, plan.sequences, plan.clips, plan.multiple
    models, qualities, anchor_specs = plan.models, plan.qualities, plan.anchors
    labels, anchor_labels, device, threads = plan.labels, plan.anchor_labels, plan.device, plan.threads
    if opt.crop:
        handling = {"mode": "crop", "multiple": multiple,
                    "statement": f"cropped to the top-left region whose sides are multiples of {multiple} "
                                 "(every codec, anchors included, codes and is measured on the cropped pictures)"}
    else:
        handling = {"mode": "pad", "multiple": multiple,
                    "statement": f"full pictures; dvclic pads to multiples of {multiple} by replicating the last "
                                 "row/column and crops its output back; metrics on the full pictures"}
    return {
        "command": shlex.join(opt.command) if opt.command else None,
        "dataset": {"name": manifest.name, "manifest": str(Path(opt.dataset).resolve()),
                    "root": str(Path(opt.root).resolve()), "description": manifest.description},
        "sequences": {
            s.spec.name: {"class": s.spec.cls, "file": s.spec.file, "width": s.spec.width, "height": s.spec.height,
                          "fps": str(s.spec.fps), "bit_depth": s.spec.bit_depth, "frames_in_file": s.spec.frames,
                          "frames": s.frames,
                          "coded_size": "{1}x{0}".format(*clips[s.spec.name].coded_size)}
            for s in sequences},
        "frames": "all" if opt.frames is None else opt.frames,
        "frames_rule": "at most N frames per sequence from the first; shorter sequences use all of theirs",
        "intra_period": opt.intra_period,
        "dvclic_modes": opt.modes,
        "dvclic_intra_offset": "each model config's" if opt.intra_offset is None else opt.intra_offset,
        "picture_handling": handling,
        "device": device,
        "workers": opt.workers,
        "torch_threads_per_worker": threads,
        "colour_statement": COLOUR_STATEMENT,
        "colour_conversion": COLOUR_CONVERSION,
        "metrics": {
            "psnr_rgb": "mean over frames of PSNR on RGB in [0,1] (peak 1)",
            "psnr_yuv": "mean over frames of (6*PSNR_Y + PSNR_U + PSNR_V)/8, peak 2^bit_depth-1",
            "ms_ssim": "mean over frames of MS-SSIM on RGB (pytorch-msssim, 5 scales; smaller Gaussian windows below 161 px, see dvclic.metrics)",
            "bpp": "bytes*8/(W*H*frames) with the coded W x H; dvclic: every byte of the .dvc file; "
                   "anchors: all packet bytes + extradata",
            "encode_fps": "dvclic: encode_file wall time (read, colour conversion, coding, writing); "
                          "anchors: libav encoder calls only, one thread",
            "decode_fps": "dvclic: decode_file wall time (decoding, writing YUV); anchors: libav decoder calls only",
            "check": "every .dvc file is decoded by decode_file and its output compared byte for byte with the "
                     "encoder's reconstruction; any difference stops the evaluation",
        },
        "dvclic": {m.label: {"config": m.config, "weights": m.weights, "weights_sha256": m.sha256,
                             "model_config": m.config_dict, "qualities": list(qualities[m.label]),
                             "size_multiple": m.size_multiple} for m in models},
        "anchors": {
            label: {
                "preset": specs[0].preset, "crfs": [s.crf for s in specs],
                "encoder": specs[0].encoder, "decoder": specs[0].decoder, "thread_count": 1,
                "pix_fmt": "yuv420p for 8-bit sequences, yuv420p10le for 10-bit ones (no conversion)",
                "options": {str(s.crf): s.options() for s in specs},
                "notes": NOTES[specs[0].name] + (f"; intra period -1 -> keyint {INFINITE_KEYINT}"
                                                 if opt.intra_period == -1 else ""),
            }
            for label in anchor_labels for specs in [[s for s in anchor_specs if s.label == label]]},
        "labels": {"dvclic": labels, "anchors": anchor_labels},
        "bd_rate": {"method": METHOD, "package": "bjontegaard", "metrics": list(METRICS), "class_rule": CLASS_RULE,
                    "low_overlap_flag": MIN_GOOD_OVERLAP},
        "measure_version": MEASURE_VERSION,
        "versions": _versions(),
    }

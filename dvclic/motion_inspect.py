"""What the P-frame parts of a model do on real frames: does the prediction predict?

For each consecutive pair of source frames (reference = the previous *source*
frame, so coding error of earlier frames does not mix in) it codes the P-frame
the way the encoder does (``dvclic.rdo.choose_pframe``, real bytes, every mode
allowed) and reports:

- ``psnr_copy``: the plain reference (what zero motion gives);
- ``psnr_warp``: the reference warped by the estimator's flow (before coding);
- ``psnr_warp_decoded``: warped by the *decoded* flow (what the motion codec keeps);
- ``psnr_mc``: the MC net's prediction from the decoded flow;
- ``psnr_pred``: the prediction of the chosen mode (what the residual codes against);
- ``psnr_rgb``: the reconstruction; ``motion_bytes`` / ``residual_bytes`` (real);
- the chosen mode (``intra``, ``mc``, ``warp``, ``zero``, ``+skip``) and skipped blocks.

``mse_ref`` / ``mse_warped`` / ``mse_pred`` are the same measurements as MSE.
A useful P-frame path has ``psnr_warp_decoded`` and ``psnr_pred`` well above ``psnr_copy``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from flow import warp

from .bitstream import FRAME_I
from .color import yuv420_to_rgb
from .errors import InputError
from .model import VideoCodecModel
from .params import ParameterError, check_quality
from .rdo import ModeSet, choose_pframe, code_motion, mode_label
from .video import open_video
from .video.padding import pad_to_multiple

FIELDS = ("flow_abs_mean", "flow_std", "psnr_copy", "psnr_warp", "psnr_warp_decoded", "psnr_mc", "psnr_pred",
          "psnr_rgb", "motion_bytes", "residual_bytes", "skipped_blocks", "mse_ref", "mse_warped", "mse_pred")


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.mean((a - b) ** 2).item()


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


@torch.no_grad()
def inspect_motion(model: VideoCodecModel, video: str, *, frames: int = 9, quality: int = 1,
                   modes: ModeSet = ModeSet(), **video_args: Any) -> dict[str, Any]:
    """Per-pair and mean statistics over the first ``frames`` frames of ``video``."""
    if frames < 2:
        raise ParameterError("frames", f"must be >= 2 (pairs of frames), got {frames}")
    check_quality(quality, model.num_qualities)
    model.eval()
    pf = model.pframe
    lmbda = model.lambdas[quality]
    pairs: list[dict[str, Any]] = []
    ref = None
    with open_video(video, max_frames=frames, **video_args) as src:
        info = src.info
        h, w = info.height, info.width
        crop = (..., slice(0, h), slice(0, w))
        for yuv in src:
            cur = pad_to_multiple(yuv420_to_rgb(yuv), model.size_multiple)
            if ref is not None:
                coded_motion = code_motion(pf, cur, ref, quality)  # coded once, shared with the mode decision
                flow, flow_hat = coded_motion[0].flow, coded_motion[0].flow_hat
                warped_dec, mc = pf.predict(ref, flow_hat)
                choice = choose_pframe(pf, model.intra, cur, ref, quality, lmbda=lmbda, modes=modes,
                                       motion=coded_motion)
                coded = choice.coded_p if choice.frame_type != FRAME_I else None
                pred = coded.pred if coded is not None else choice.x_hat
                row = {
                    "flow_abs_mean": flow[crop].abs().mean().item(), "flow_std": flow[crop].std().item(),
                    "mse_ref": _mse(ref[crop], cur[crop]), "mse_warped": _mse(warp(ref, flow)[crop], cur[crop]),
                    "mse_warped_decoded": _mse(warped_dec[crop], cur[crop]), "mse_mc": _mse(mc[crop], cur[crop]),
                    "mse_pred": _mse(pred[crop], cur[crop]),
                    "psnr_rgb": _psnr(_mse(choice.x_hat.clamp(0, 1)[crop], cur[crop])),
                    "motion_bytes": float(choice.motion_bytes),
                    "residual_bytes": float(choice.residual_bytes + choice.intra_bytes),
                    "skipped_blocks": float(choice.skipped_blocks),
                    "mode": mode_label(choice.frame_type, choice.modes),
                }
                for name, key in (("copy", "mse_ref"), ("warp", "mse_warped"),
                                  ("warp_decoded", "mse_warped_decoded"), ("mc", "mse_mc"), ("pred", "mse_pred")):
                    row[f"psnr_{name}"] = _psnr(row[key])
                pairs.append(row)
            ref = cur
    if not pairs:
        raise InputError(f"{video}: fewer than 2 frames")
    mean = {k: sum(p[k] for p in pairs) / len(pairs) for k in FIELDS}
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["mode"]] = counts.get(p["mode"], 0) + 1
    return {"video": str(video), "width": info.width, "height": info.height, "quality": quality,
            "pairs": pairs, "mean": mean, "modes": counts}

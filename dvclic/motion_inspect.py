"""What the P-frame parts of a model do on real frames: is motion being learned?

For each consecutive pair of source frames (reference = the previous *source*
frame, so coding error of earlier frames does not mix in) it reports the
estimator's flow statistics, how well its flow and the coded prediction match
the current frame, and the real motion and residual bytes of the P-frame
(``PFrameCodec.compress``, the encoder's path):

- ``mse_ref``: plain reference vs current (what zero motion would give);
- ``mse_warped``: reference warped by the estimator's flow (before coding);
- ``mse_pred``: the MC prediction from the *decoded* flow (what the residual codes);
- ``motion_bytes`` / ``residual_bytes``, ``psnr_rgb`` of the reconstruction.

A collapsed estimator shows |flow| ~ constant (tiny ``flow_std``) and
``mse_warped`` ~ ``mse_ref``; a useful P-frame path has ``mse_pred`` < ``mse_ref``.
"""

from __future__ import annotations

from typing import Any

import torch

from flow import warp

from .color import yuv420_to_rgb
from .errors import InputError
from .metrics import psnr_rgb
from .model import VideoCodecModel
from .video import open_video
from .video.padding import pad_to_multiple

FIELDS = ("flow_abs_mean", "flow_std", "mse_ref", "mse_warped", "mse_pred", "motion_bytes", "residual_bytes",
          "psnr_rgb")


@torch.no_grad()
def inspect_motion(model: VideoCodecModel, video: str, *, frames: int = 9, quality: int = 1,
                   **video_args: Any) -> dict[str, Any]:
    """Per-pair and mean statistics over the first ``frames`` frames of ``video``."""
    if frames < 2:
        raise InputError(f"--frames must be >= 2 (pairs of frames), got {frames}")
    if not 0 <= quality < model.num_qualities:
        raise InputError(f"--quality must be in 0..{model.num_qualities - 1}, got {quality}")
    model.eval()
    pf = model.pframe
    pairs: list[dict[str, float]] = []
    ref = None
    with open_video(video, max_frames=frames, **video_args) as src:
        info = src.info
        for yuv in src:
            cur = pad_to_multiple(yuv420_to_rgb(yuv), model.size_multiple)
            if ref is not None:
                coded = pf.compress(cur, ref, quality)
                flow, pred = coded.flow, coded.pred
                h, w = info.height, info.width
                crop = (..., slice(0, h), slice(0, w))
                pairs.append({
                    "flow_abs_mean": flow[crop].abs().mean().item(), "flow_std": flow[crop].std().item(),
                    "mse_ref": torch.mean((ref - cur)[crop] ** 2).item(),
                    "mse_warped": torch.mean((warp(ref, flow) - cur)[crop] ** 2).item(),
                    "mse_pred": torch.mean((pred - cur)[crop] ** 2).item(),
                    "motion_bytes": float(coded.motion.num_bytes), "residual_bytes": float(coded.residual.num_bytes),
                    "psnr_rgb": psnr_rgb(coded.x_hat.clamp(0, 1)[crop], cur[crop]),
                })
            ref = cur
    if not pairs:
        raise InputError(f"{video}: fewer than 2 frames")
    mean = {k: sum(p[k] for p in pairs) / len(pairs) for k in FIELDS}
    return {"video": str(video), "width": info.width, "height": info.height, "quality": quality,
            "pairs": pairs, "mean": mean}

"""DIS optical flow (Kroeger et al., ECCV 2016) through OpenCV, as a ``MotionEstimator``.

A classical dense flow that needs no training: coarse-to-fine inverse search of
small patches, densification, then variational refinement, on 8-bit luma::

    cur, ref (N x 3 x H x W RGB in [0, 1]) -> luma (BT.709 weights) -> uint8
    cv2.DISOpticalFlow(preset).calc(cur_y, ref_y) -> H x W x 2 (x, y) in pixels

``calc(cur, ref)`` returns, for each pixel of ``cur``, where it lies in ``ref``,
which is the backward flow ``flow.warp(ref, flow) ~= cur`` expects.

It runs on the encoder only (the decoder reads the decoded flow from the
stream), on the CPU whatever the input's device, and has no parameters, so it
trains nothing and adds nothing to a weights file. The result does not depend on
OpenCV's thread count (tested); frames smaller than DIS's coarsest patch grid
are padded (replicate) before and cropped after. Presets, by measurement on the
dev sequences (README): ``medium`` (the default) warps BasketballPass about
10 dB better than copying the previous frame.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import MotionEstimator

PRESETS = ("ultrafast", "fast", "medium")
MIN_SIDE = 32  # DIS's patch pyramid needs a few patches per side


def _luma_u8(x: Tensor) -> np.ndarray:
    """1 x 3 x H x W RGB in [0, 1] -> H x W uint8 luma (BT.709 weights)."""
    r, g, b = x[0].detach().float().cpu()
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (y.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


class DISFlow(MotionEstimator):
    """OpenCV's DIS flow. ``preset``: one of :data:`PRESETS`."""

    def __init__(self, *, preset: str = "medium") -> None:
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; valid: {', '.join(PRESETS)}")
        self.preset = preset
        self.size_multiple = 1

    def _make(self):  # noqa: ANN202 - cv2 object
        import cv2  # imported here: the decoder never needs OpenCV

        code = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[self.preset]
        return cv2.DISOpticalFlow_create(code)

    @torch.no_grad()
    def estimate(self, cur: Tensor, ref: Tensor) -> Tensor:
        h, w = cur.shape[-2:]
        pad_h, pad_w = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
        if pad_h or pad_w:
            cur = F.pad(cur, (0, pad_w, 0, pad_h), mode="replicate")
            ref = F.pad(ref, (0, pad_w, 0, pad_h), mode="replicate")
        dis = self._make()  # one object per call: no state carried between frames
        flows = []
        for n in range(cur.shape[0]):
            f = dis.calc(_luma_u8(cur[n : n + 1]), _luma_u8(ref[n : n + 1]), None)
            flows.append(torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1))))
        flow = torch.stack(flows).to(device=cur.device, dtype=torch.float32)
        return flow[:, :, :h, :w]

"""Upsampling of flow fields between pyramid levels, keeping pixel units."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def upsample_flow(flow: Tensor, factor: int) -> Tensor:
    """N x 2 x h x w (pixels of the coarse grid) -> N x 2 x (factor*h) x (factor*w).

    Values are multiplied by ``factor`` so the result is in pixels of the fine grid.
    Bilinear with ``align_corners=False``: a coarse pixel ``i`` covers fine pixels
    ``factor*i .. factor*i + factor - 1``, as in an average-pooling pyramid.
    """
    if factor == 1:
        return flow
    return factor * F.interpolate(
        flow, scale_factor=float(factor), mode="bilinear", align_corners=False
    )

"""SpyNet (Ranjan & Black, CVPR 2017), the motion estimator of DVC.

An image pyramid of ``levels`` scales (each an average-pooled half of the one above)
and one small CNN per scale that predicts a residual flow, coarse to fine::

    cur_L, ref_L (coarsest)                flow_L = 0
    for l = L .. 1 (finest, full padded resolution):
        up    = 2 * upsample2(flow_{l+1})        (0 at the coarsest level)
        flow_l = up + G_l([cur_l, warp(ref_l, up), up])     G_l: 8 -> 2 channels

``G_l`` is conv7x7 8->32->64->32->16->2 with ReLU between. Flows are in pixels of
their own level, so ``warp(ref, flow) ~= cur`` holds at every level.

No pretrained weights can be downloaded here, so weights are random; the last conv
of every ``G_l`` starts at zero, which makes the untrained estimator return zero
flow (warp = identity, the usual starting point of DVC training).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import MotionEstimator
from .upsample import upsample_flow
from .warp import warp

# ImageNet statistics: SpyNet was designed (and its public weights trained) on
# inputs normalised this way, so keeping it lets such weights be loaded later.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _basic_module() -> nn.Sequential:
    """One pyramid level's CNN: N x 8 x h x w -> residual flow N x 2 x h x w (pixels)."""
    hidden = (8, 32, 64, 32, 16)
    layers: list[nn.Module] = []
    for c_in, c_out in zip(hidden[:-1], hidden[1:]):
        layers += [nn.Conv2d(c_in, c_out, kernel_size=7, padding=3), nn.ReLU(inplace=True)]
    head = nn.Conv2d(hidden[-1], 2, kernel_size=7, padding=3)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*layers, head)


class SpyNet(MotionEstimator):
    """SpyNet motion estimator (see module docstring).

    Args:
        levels: pyramid levels, 4 to 6 (DVC uses 5 or 6 with pretrained weights;
            fewer levels reach smaller motions but cost less). Inputs are padded to
            multiples of ``2 ** (levels - 1)``.

    Raises:
        ValueError: if ``levels`` is outside [4, 6].
    """

    def __init__(self, *, levels: int = 5) -> None:
        super().__init__()
        if not 4 <= levels <= 6:
            raise ValueError(f"levels must be in [4, 6], got {levels}")
        self.levels = levels
        self.size_multiple = 2 ** (levels - 1)
        # basic[0] is the coarsest level, basic[-1] the finest.
        self.basic = nn.ModuleList(_basic_module() for _ in range(levels))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _pyramid(self, x: Tensor) -> list[Tensor]:
        """RGB [0, 1] N x 3 x H x W -> ImageNet-normalised pyramid, coarse to fine.

        Entry ``levels - 1 - l`` is N x 3 x H/2^l x W/2^l.
        """
        x = (x - self.mean) / self.std
        pyramid = [x]
        for _ in range(self.levels - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], kernel_size=2, stride=2))
        return pyramid[::-1]

    def estimate(self, cur: Tensor, ref: Tensor) -> Tensor:
        """N x 3 x H x W (RGB [0, 1], H, W multiples of 2^(levels-1)) -> N x 2 x H x W pixels."""
        cur_pyr = self._pyramid(cur)
        ref_pyr = self._pyramid(ref)
        coarsest = cur_pyr[0]
        # The flow accumulates in float32 whatever the network's dtype: half
        # precision cannot hold sub-pixel offsets of large displacements.
        flow = coarsest.new_zeros(coarsest.shape[0], 2, *coarsest.shape[-2:], dtype=torch.float32)
        for level, (cur_l, ref_l, basic) in enumerate(zip(cur_pyr, ref_pyr, self.basic)):
            if level > 0:
                flow = upsample_flow(flow, 2)
            residual = basic(torch.cat((cur_l, warp(ref_l, flow), flow.to(cur_l.dtype)), dim=1))
            flow = flow + residual.float()
        return flow

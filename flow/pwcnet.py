"""A compact PWC-Net (Sun et al., CVPR 2018): Pyramid, Warping, Cost volume.

Small channel counts so it runs on a CPU; no context network and no dense
connections (the full model's refinements), which keeps it a plain coarse-to-fine
residual estimator::

    features f_cur^l, f_ref^l = pyramid(cur), pyramid(ref)    l = 1..L, stride 2^l
    flow^L = 0
    for l = L .. finest_level:
        up     = upsample2(flow^{l+1})  (pixels of level l; 0 at l = L)
        cost   = corr(f_cur^l, warp(f_ref^l, up))              (2d+1)^2 channels
        flow^l = up + E_l([cost, f_cur^l, up])
    flow = upsample_{2^finest_level}(flow^finest_level)       pixels of the input

Every flow is in pixels of its own level, so ``warp(ref, flow) ~= cur`` holds at
every level. The last conv of each ``E_l`` starts at zero: the untrained network
returns zero flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import MotionEstimator
from .correlation import Backend, Correlation
from .upsample import upsample_flow
from .warp import warp


def _conv(c_in: int, c_out: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1),
        nn.LeakyReLU(0.1, inplace=True),
    )


class _FeaturePyramid(nn.Module):
    """N x 3 x H x W -> list, fine to coarse, of N x channels[l] x H/2^(l+1) x W/2^(l+1)."""

    def __init__(self, *, channels: Sequence[int]) -> None:
        super().__init__()
        c_in = [3, *channels[:-1]]
        self.levels = nn.ModuleList(
            nn.Sequential(_conv(a, b, stride=2), _conv(b, b)) for a, b in zip(c_in, channels)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


def _flow_estimator(c_in: int, hidden: Sequence[int]) -> nn.Sequential:
    """E_l: N x c_in x h x w -> residual flow N x 2 x h x w (pixels of level l)."""
    layers = [_conv(a, b) for a, b in zip([c_in, *hidden[:-1]], hidden)]
    head = nn.Conv2d(hidden[-1], 2, kernel_size=3, padding=1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*layers, head)


class PWCNet(MotionEstimator):
    """Compact PWC-Net motion estimator (see module docstring).

    Args:
        pyramid_channels: feature channels per pyramid level, finest first; the
            number of entries is the number of levels ``L`` (inputs are padded to
            multiples of ``2 ** L``).
        estimator_channels: hidden channels of each level's flow-estimation CNN.
        max_displacement: cost-volume search radius ``d`` in pixels of each level.
        finest_level: the finest level with a flow estimate (1 = stride 2); the
            flow there is bilinearly upsampled to full resolution, as in PWC-Net
            (which stops at stride 4, ``finest_level=2``).
        correlation_backend: see ``flow.correlation.Correlation``.

    Raises:
        ValueError: on empty/non-positive channel lists, negative displacement, or
            ``finest_level`` outside [1, L].
    """

    def __init__(
        self,
        *,
        pyramid_channels: Sequence[int] = (16, 32, 64, 96, 128),
        estimator_channels: Sequence[int] = (96, 64, 32),
        max_displacement: int = 4,
        finest_level: int = 2,
        correlation_backend: Backend = "auto",
    ) -> None:
        super().__init__()
        pyramid_channels = tuple(int(c) for c in pyramid_channels)
        estimator_channels = tuple(int(c) for c in estimator_channels)
        if not pyramid_channels or min(pyramid_channels) < 1:
            raise ValueError(f"pyramid_channels must be positive, got {pyramid_channels}")
        if not estimator_channels or min(estimator_channels) < 1:
            raise ValueError(f"estimator_channels must be positive, got {estimator_channels}")
        num_levels = len(pyramid_channels)
        if not 1 <= finest_level <= num_levels:
            raise ValueError(f"finest_level must be in [1, {num_levels}], got {finest_level}")
        self.finest_level = finest_level
        self.size_multiple = 2**num_levels
        self.pyramid = _FeaturePyramid(channels=pyramid_channels)
        self.correlation = Correlation(max_displacement=max_displacement, backend=correlation_backend)
        self.cost_activation = nn.LeakyReLU(0.1)
        # estimators[0] serves the coarsest level L, estimators[-1] finest_level.
        # Each E_l sees [cost volume, f_cur^l, upsampled flow].
        self.estimators = nn.ModuleList(
            _flow_estimator(
                self.correlation.out_channels + pyramid_channels[level - 1] + 2, estimator_channels
            )
            for level in range(num_levels, finest_level - 1, -1)
        )

    def estimate(self, cur: Tensor, ref: Tensor) -> Tensor:
        """N x 3 x H x W (RGB [0, 1], H, W multiples of 2^L) -> N x 2 x H x W pixels."""
        # Centre the inputs: the pyramid has no normalisation layers.
        f_cur = self.pyramid(cur - 0.5)
        f_ref = self.pyramid(ref - 0.5)
        num_levels = len(f_cur)
        coarsest = f_cur[-1]
        # float32 accumulation, as in SpyNet: sub-pixel offsets need the precision.
        flow = coarsest.new_zeros(coarsest.shape[0], 2, *coarsest.shape[-2:], dtype=torch.float32)
        for i, level in enumerate(range(num_levels, self.finest_level - 1, -1)):
            if i > 0:
                flow = upsample_flow(flow, 2)
            cur_l, ref_l = f_cur[level - 1], f_ref[level - 1]
            cost = self.cost_activation(self.correlation(cur_l, warp(ref_l, flow)))
            residual = self.estimators[i](torch.cat((cost, cur_l, flow.to(cur_l.dtype)), dim=1))
            flow = flow + residual.float()
        return upsample_flow(flow, 2**self.finest_level)

"""Per-quality channel gains: one network, several rate points.

Follows the gain-unit idea (Cui et al., CVPR 2021; also used by DCVC): the latent
is scaled channel-wise by a learned gain for the chosen quality before
quantisation, and by a learned inverse gain after. A larger gain means finer
quantisation and more bits.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class QualityGain(nn.Module):
    """Learned per-quality, per-channel gains for an M-channel latent.

    Gains are stored as logs so they stay positive. Initial gains are spaced
    geometrically over ``init_range`` (lowest quality first).
    """

    def __init__(self, *, num_qualities: int, channels: int, init_range: tuple[float, float] = (0.5, 2.0)) -> None:
        super().__init__()
        if num_qualities < 1:
            raise ValueError("num_qualities must be >= 1")
        lo, hi = init_range
        if num_qualities == 1:
            init = torch.zeros(1)
        else:
            init = torch.linspace(math.log(lo), math.log(hi), num_qualities)
        self.num_qualities = num_qualities
        self.log_gain = nn.Parameter(init[:, None].repeat(1, channels))
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, channels))

    def _select(self, table: Tensor, quality: Tensor | int, n: int) -> Tensor:
        if isinstance(quality, int):
            g = table[quality].exp()[None].expand(n, -1)
        else:
            g = table[quality.long()].exp()
        return g[:, :, None, None]

    def forward(self, y: Tensor, quality: Tensor | int) -> Tensor:
        """Scale y (N x M x h x w) by the gain of ``quality`` (int or LongTensor [N])."""
        return y * self._select(self.log_gain, quality, y.shape[0])

    def inverse(self, y_hat: Tensor, quality: Tensor | int) -> Tensor:
        """Undo the gain on the quantised latent."""
        return y_hat * self._select(self.log_inv_gain, quality, y_hat.shape[0])

"""Squeeze-and-excitation channel attention (Hu et al. 2018), as used by EDIC.

EDIC applies it to latent-side features to exploit channel relations: in
``edic.py`` one block re-weights y after the last convolution of g_a, and one
re-weights the features after the first transposed convolution of g_s.
"""

from __future__ import annotations

from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """x * sigmoid(W_up relu(W_down avgpool(x))), per channel.

    N x C x H x W -> N x C x H x W. The bottleneck has ``max(4, C // reduction)``
    channels; the scale is in (0, 1) and constant over space.
    """

    def __init__(self, channels: int, *, reduction: int = 16, min_hidden: int = 4) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.excite = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.excite(self.pool(x))

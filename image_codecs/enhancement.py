"""Decoder-side enhancement (EDIC): x_hat + f(x_hat) at full resolution.

f = conv3x3(C -> ch) -> ``blocks`` x [conv3x3 -> ReLU -> conv3x3, + skip] ->
conv3x3(ch -> C). The last convolution starts at zero, so a fresh module is the
identity and training only has to learn the correction (high-frequency detail,
fewer artefacts). It is the tail of g_s, so compress and decompress run it alike.
"""

from __future__ import annotations

from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """x + conv3x3(relu(conv3x3(x))), channels and size preserved."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DecoderEnhancement(nn.Module):
    """N x C x H x W -> N x C x H x W: x + f(x) (same units as the codec's output)."""

    def __init__(self, channels: int, *, hidden: int = 32, blocks: int = 3) -> None:
        super().__init__()
        tail = nn.Conv2d(hidden, channels, 3, padding=1)
        nn.init.zeros_(tail.weight)
        nn.init.zeros_(tail.bias)
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1),
            *(ResidualBlock(hidden) for _ in range(blocks)),
            tail,
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)

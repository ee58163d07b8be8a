"""ELIC analysis transform (He et al., CVPR 2022), as in compressai's ``Elic2022Official.g_a``.

::

    x (C, H x W)
      ─conv5x5 s2─> N ─[RBB] x3─ conv5x5 s2─> N ─[RBB] x3─ Attn(N)
      ─conv5x5 s2─> N ─[RBB] x3─ conv5x5 s2─> M ─ Attn(M) ─> y (M, H/16 x W/16)

RBB = residual bottleneck block (1x1 -> 3x3 -> 1x1 with a skip), Attn = the
simplified attention block of Cheng et al. 2020. Default channels
(N, N, N, M) = (192, 192, 192, 320). Used by the shallow-decoder codecs as the
"strong encoder" half of their asymmetric design.
"""

from __future__ import annotations

from compressai.layers import AttentionBlock
from compressai.models.sensetime import ResidualBottleneckBlock
from compressai.models.utils import conv
from torch import nn


def elic_analysis(*, in_channels: int = 3, N: int = 192, M: int = 320) -> nn.Sequential:
    """g_a: ``B x in_channels x H x W -> B x M x H/16 x W/16`` (H, W multiples of 16).

    N and M must be even (the attention blocks halve their channels).
    """
    if N % 2 or M % 2:
        raise ValueError(f"N and M must be even for the attention blocks, got N={N}, M={M}")

    def rbb_x3() -> list[nn.Module]:
        return [ResidualBottleneckBlock(N, N) for _ in range(3)]

    return nn.Sequential(
        conv(in_channels, N, kernel_size=5, stride=2),
        *rbb_x3(),
        conv(N, N, kernel_size=5, stride=2),
        *rbb_x3(),
        AttentionBlock(N),
        conv(N, N, kernel_size=5, stride=2),
        *rbb_x3(),
        conv(N, M, kernel_size=5, stride=2),
        AttentionBlock(M),
    )

"""``hyperprior``: mean-scale hyperprior codec (Balle 2018 / Minnen 2018, no context model).

::

    x ─[conv5x5 s2, GDN] x3 ─ conv5x5 s2─> y (M ch, 1/16)     g_a
    y_hat ─[deconv5x5 s2, IGDN] x3 ─ deconv5x5 s2─> x_hat    g_s
    entropy: GaussianHyperprior(N, M), entropy parameters "float" or "integer"

Works for pictures/residuals (in_channels=3) and motion fields (in_channels=2).
"""

from __future__ import annotations

from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from .entropy import GaussianHyperprior
from .transform_codec import TransformCodec


def balle_analysis(*, in_channels: int, N: int, M: int) -> nn.Sequential:
    return nn.Sequential(
        conv(in_channels, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M)
    )


def balle_synthesis(*, out_channels: int, N: int, M: int) -> nn.Sequential:
    return nn.Sequential(
        deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
        deconv(N, N), GDN(N, inverse=True), deconv(N, out_channels),
    )


class HyperpriorCodec(TransformCodec):
    """Mean-scale hyperprior image codec. Size multiple 64."""

    def __init__(self, *, in_channels: int = 3, N: int = 128, M: int = 192, num_qualities: int = 4,
                 entropy_parameters: str = "float") -> None:
        super().__init__(
            g_a=balle_analysis(in_channels=in_channels, N=N, M=M),
            g_s=balle_synthesis(out_channels=in_channels, N=N, M=M),
            entropy=GaussianHyperprior(N=N, M=M, parameters=entropy_parameters),
            latent_channels=M,
            latent_stride=16,
            in_channels=in_channels,
            num_qualities=num_qualities,
        )

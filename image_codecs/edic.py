"""``edic``: Efficient Deep Image Compression (EDIC): channel attention, a
Gaussian-mixture entropy model and decoder-side enhancement on the Balle/Minnen
transform codec.

::

    x ─[conv5x5 s2, GDN] x3 ─ conv5x5 s2 ─ SE ─> y  (M ch, 1/16)               g_a
    y ──gain[q]──> GaussianMixtureHyperprior(N, M, K) ──> y_hat ──gain⁻¹[q]──┐
          h_a: y ─> z (N ch, 1/64) ─Q─> z_hat ─h_s─> K x (weight, mean, scale)  │
    ┌─────────────────────────────────────────────────────────────────────────┘
    └─ deconv5x5 s2 ─ SE ─ IGDN ─[deconv5x5 s2, IGDN] x2 ─ deconv5x5 s2 ─> x_tilde
       x_tilde ─> x_tilde + f(x_tilde) = x_hat                                  g_s
                  f: conv3x3 ─ [res block] x B ─ conv3x3 (full resolution)

SE = squeeze-and-excitation channel attention (``attention.py``), on y after the
last conv of g_a and on the features after the first deconv of g_s;
f = decoder-side enhancement (``enhancement.py``), the tail of g_s. Both can be
switched off (Identity). With ``mixtures=1`` the entropy model is exactly the
mean-scale Gaussian likelihood. Size multiple 64 (16 for y, 4 more for z).
Works for pictures/residuals (in_channels=3) and motion fields (in_channels=2).
"""

from __future__ import annotations

from torch import nn

from .attention import ChannelAttention
from .enhancement import DecoderEnhancement
from .entropy.gmm import GaussianMixtureHyperprior
from .hyperprior import balle_analysis, balle_synthesis
from .transform_codec import TransformCodec


def edic_analysis(*, in_channels: int, N: int, M: int, attention: bool) -> nn.Sequential:
    """x (C ch) -> y (M ch, 1/16 size)."""
    return nn.Sequential(*balle_analysis(in_channels=in_channels, N=N, M=M), _attention(M, attention))


def edic_synthesis(
    *, out_channels: int, N: int, M: int, attention: bool, enhancement: bool, enhancement_channels: int, enhancement_blocks: int
) -> nn.Sequential:
    """y_hat (M ch) -> x_hat (C ch, 16x size)."""
    layers = list(balle_synthesis(out_channels=out_channels, N=N, M=M))
    tail = (
        DecoderEnhancement(out_channels, hidden=enhancement_channels, blocks=enhancement_blocks)
        if enhancement
        else nn.Identity()
    )
    return nn.Sequential(layers[0], _attention(N, attention), *layers[1:], tail)


def _attention(channels: int, enabled: bool) -> nn.Module:
    return ChannelAttention(channels) if enabled else nn.Identity()


class EDICCodec(TransformCodec):
    """EDIC image codec (see module docstring). Size multiple 64."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        N: int = 128,
        M: int = 192,
        num_qualities: int = 4,
        mixtures: int = 3,
        attention: bool = True,
        enhancement: bool = True,
        enhancement_channels: int = 32,
        enhancement_blocks: int = 3,
    ) -> None:
        super().__init__(
            g_a=edic_analysis(in_channels=in_channels, N=N, M=M, attention=attention),
            g_s=edic_synthesis(
                out_channels=in_channels,
                N=N,
                M=M,
                attention=attention,
                enhancement=enhancement,
                enhancement_channels=enhancement_channels,
                enhancement_blocks=enhancement_blocks,
            ),
            entropy=GaussianMixtureHyperprior(N=N, M=M, mixtures=mixtures),
            latent_channels=M,
            latent_stride=16,
            in_channels=in_channels,
            num_qualities=num_qualities,
        )

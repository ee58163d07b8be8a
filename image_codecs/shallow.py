"""Shallow-decoder codecs (Yang & Mandt, ICCV 2023, arXiv 2304.06244).

A strong ELIC analysis, a mean-scale Gaussian hyperprior, and a very cheap
synthesis; the encoder closes part of the gap at encode time with SGA
(see ``refine.sga_compress``). Decoding cost of g_s (kMAC per output pixel,
M=320, 3 channels): ``jpeg`` ~1.2, ``2layer`` ~5.3 (Minnen-2018 g_s: ~94).

::

    x ──elic_analysis──> y (M, /16) ──gain[q]── GaussianHyperprior(N, M) ──gain⁻¹[q]──> g_s ──> x_hat

    g_s "jpeg":   y_hat ──ConvT(M -> C, k18, s16)──> x_hat                  (one linear layer)

    g_s "2layer": y_hat ─┬─ConvT(M -> 12, k13, s8)── IGDN ─┐
                         └─ConvT(M -> 12, k13, s8)─────────(+)──ConvT(12 -> C, k5, s2)──> x_hat

Every transposed convolution is padded so its output is exactly ``stride``
times its input (TF "SAME" semantics), so x_hat is exactly 16x the latent.
Works for pictures/residuals (C=3) and motion fields (C=2).
"""

from __future__ import annotations

from compressai.layers import GDN
from torch import Tensor, nn

from .elic_analysis import elic_analysis
from .entropy import GaussianHyperprior
from .transform_codec import TransformCodec

SYNTHESIS_NAMES = ("jpeg", "2layer")


def exact_upsampling_deconv(in_channels: int, out_channels: int, *, kernel_size: int, stride: int) -> nn.ConvTranspose2d:
    """ConvTranspose2d whose output is exactly ``stride`` x its input size.

    Output size is ``(h-1)*s - 2p + k + op``; it equals ``s*h`` when
    ``2p - op = k - s``, i.e. ``p = ceil((k-s)/2)``, ``op = 2p - (k-s)`` (0 or 1).
    """
    if kernel_size < stride:
        raise ValueError(f"kernel_size ({kernel_size}) must be >= stride ({stride})")
    excess = kernel_size - stride
    padding = (excess + 1) // 2
    return nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        output_padding=2 * padding - excess,
    )


def jpeg_like_synthesis(*, M: int, out_channels: int, kernel_size: int = 18) -> nn.ConvTranspose2d:
    """One linear transposed conv: ``B x M x h x w -> B x out_channels x 16h x 16w``."""
    return exact_upsampling_deconv(M, out_channels, kernel_size=kernel_size, stride=16)


class TwoLayerSynthesis(nn.Module):
    """``B x M x h x w -> B x out_channels x 16h x 16w``: (ConvT+IGDN) + linear ConvT, then ConvT.

    The parallel linear branch is the residual connection of the paper; it
    helps at low rates where the IGDN branch alone is too constrained.
    """

    def __init__(self, *, M: int, out_channels: int, hidden: int = 12) -> None:
        super().__init__()
        self.nonlinear = nn.Sequential(
            exact_upsampling_deconv(M, hidden, kernel_size=13, stride=8),
            GDN(hidden, inverse=True),
        )
        self.linear = exact_upsampling_deconv(M, hidden, kernel_size=13, stride=8)
        self.out = exact_upsampling_deconv(hidden, out_channels, kernel_size=5, stride=2)

    def forward(self, y_hat: Tensor) -> Tensor:
        return self.out(self.nonlinear(y_hat) + self.linear(y_hat))


def shallow_synthesis(name: str, *, M: int, out_channels: int) -> nn.Module:
    """Build the named shallow g_s (one of ``SYNTHESIS_NAMES``)."""
    if name == "jpeg":
        return jpeg_like_synthesis(M=M, out_channels=out_channels)
    if name == "2layer":
        return TwoLayerSynthesis(M=M, out_channels=out_channels)
    raise ValueError(f"unknown shallow synthesis {name!r}; valid: {', '.join(SYNTHESIS_NAMES)}")


class ShallowCodec(TransformCodec):
    """ELIC analysis + mean-scale hyperprior + shallow synthesis. Size multiple 64."""

    def __init__(
        self,
        *,
        in_channels: int = 3,
        N: int = 192,
        M: int = 320,
        num_qualities: int = 4,
        synthesis: str = "2layer",
    ) -> None:
        g_s = shallow_synthesis(synthesis, M=M, out_channels=in_channels)
        super().__init__(
            g_a=elic_analysis(in_channels=in_channels, N=N, M=M),
            g_s=g_s,
            entropy=GaussianHyperprior(N=N, M=M),
            latent_channels=M,
            latent_stride=16,
            in_channels=in_channels,
            num_qualities=num_qualities,
        )
        # Not ``self.synthesis``: that name is TransformCodec's synthesis method.
        self.synthesis_name = synthesis


class ShallowJPEGCodec(ShallowCodec):
    """Registry entry ``shallow-jpeg``: ShallowCodec with the JPEG-like synthesis."""

    def __init__(self, *, in_channels: int = 3, N: int = 192, M: int = 320, num_qualities: int = 4) -> None:
        super().__init__(in_channels=in_channels, N=N, M=M, num_qualities=num_qualities, synthesis="jpeg")


class Shallow2LayerCodec(ShallowCodec):
    """Registry entry ``shallow-2layer``: ShallowCodec with the 2-layer synthesis."""

    def __init__(self, *, in_channels: int = 3, N: int = 192, M: int = 320, num_qualities: int = 4) -> None:
        super().__init__(in_channels=in_channels, N=N, M=M, num_qualities=num_qualities, synthesis="2layer")

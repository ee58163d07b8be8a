"""Mean-scale Gaussian hyperprior (Minnen et al. 2018, without the context model).

::

    y ──h_a──> z ──Q──> z_hat ──h_s──> (scales, means)
    y ──Q(around means)──> y_hat ~ N(means, scales) convolved with U(-.5, .5)

z is coded with a factorised EntropyBottleneck, y with compressai's indexed
GaussianConditional (rANS). The hyper-synthesis output has 2M channels.
"""

from __future__ import annotations

from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv3x3
from compressai.models.google import get_scale_table
from compressai.models.utils import conv, deconv
from torch import Tensor, nn

from ..quantize import Quantizer
from .base import LatentEntropyModel
from .bottleneck import bottleneck_forward, bottleneck_tables_built


def mean_scale_hyper_transforms(*, N: int, M: int) -> tuple[nn.Module, nn.Module]:
    """The standard (h_a, h_s) pair: M -> N at 1/4 the size, and back to 2M channels."""
    h_a = nn.Sequential(
        conv3x3(M, N),
        nn.LeakyReLU(inplace=True),
        conv(N, N, stride=2, kernel_size=5),
        nn.LeakyReLU(inplace=True),
        conv(N, N, stride=2, kernel_size=5),
    )
    h_s = nn.Sequential(
        deconv(N, M, stride=2, kernel_size=5),
        nn.LeakyReLU(inplace=True),
        deconv(M, M * 3 // 2, stride=2, kernel_size=5),
        nn.LeakyReLU(inplace=True),
        conv3x3(M * 3 // 2, M * 2),
    )
    return h_a, h_s


class GaussianHyperprior(LatentEntropyModel):
    """Entropy model for an M-channel y with an N-channel hyper-latent."""

    num_streams = 2  # [z bytes, y bytes]
    z_stride = 4

    def __init__(self, *, N: int, M: int) -> None:
        super().__init__()
        self.N, self.M = N, M
        self.h_a, self.h_s = mean_scale_hyper_transforms(N=N, M=M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)

    def hyper_analysis(self, y: Tensor) -> Tensor:
        return self.h_a(y)

    def params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """z_hat -> (scales, means), each N x M x h x w."""
        scales, means = self.h_s(z_hat).chunk(2, dim=1)
        return scales, means

    def forward(self, y: Tensor, z: Tensor, quantizer: Quantizer) -> tuple[Tensor, dict[str, Tensor]]:
        z_hat, z_lik = bottleneck_forward(self.entropy_bottleneck, z, quantizer)
        scales, means = self.params(z_hat)
        y_rate, y_synth = quantizer(y, means)
        y_lik = self.gaussian_conditional._likelihood(y_rate, scales, means)
        y_lik = self.gaussian_conditional.likelihood_lower_bound(y_lik)
        return y_synth, {"y": y_lik, "z": z_lik}

    def compress(self, y: Tensor, z: Tensor) -> tuple[list[bytes], Tensor]:
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self.params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means)
        y_hat = self.gaussian_conditional.quantize(y, "dequantize", means)
        return [z_strings[0], y_strings[0]], y_hat

    def decompress(self, strings: list[bytes], latent_hw: tuple[int, int]) -> Tensor:
        h, w = latent_hw
        z_hat = self.entropy_bottleneck.decompress([strings[0]], (h // self.z_stride, w // self.z_stride))
        scales, means = self.params(z_hat)
        indexes = self.gaussian_conditional.build_indexes(scales)
        return self.gaussian_conditional.decompress([strings[1]], indexes, means=means)

    def update(self, force: bool = False) -> bool:
        changed = self.gaussian_conditional.update_scale_table(get_scale_table(), force=force)
        changed |= self.entropy_bottleneck.update(force=force)
        return changed

    def tables_built(self) -> bool:
        gc = self.gaussian_conditional
        return bottleneck_tables_built(self.entropy_bottleneck) and gc._quantized_cdf.numel() > 0

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # CDF buffers are sized by update(); resize ours to the stored ones first.
        for module, name in ((self.entropy_bottleneck, "entropy_bottleneck"), (self.gaussian_conditional, "gaussian_conditional")):
            for buf in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table"):
                key = f"{prefix}{name}.{buf}"
                if key in state_dict and hasattr(module, buf):
                    getattr(module, buf).resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

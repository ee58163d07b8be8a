"""Helpers around compressai's factorised ``EntropyBottleneck`` for the hyper-latent z."""

from __future__ import annotations

from compressai.entropy_models import EntropyBottleneck
from torch import Tensor

from ..quantize import Quantizer


def bottleneck_forward(eb: EntropyBottleneck, z: Tensor, quantizer: Quantizer) -> tuple[Tensor, Tensor]:
    """Quantise z (N x C x h x w) around the bottleneck medians with ``quantizer``.

    Returns (z for the hyper-synthesis, likelihoods of the rate proxy).
    """
    medians = eb._get_medians().detach().reshape(1, -1, 1, 1)
    z_rate, z_synth = quantizer(z, medians)
    c = z_rate.shape[1]
    values = z_rate.permute(1, 0, 2, 3).reshape(c, 1, -1)
    lik, _, _ = eb._likelihood(values)
    if eb.use_likelihood_bound:
        lik = eb.likelihood_lower_bound(lik)
    lik = lik.reshape(c, z.shape[0], *z.shape[2:]).permute(1, 0, 2, 3)
    return z_synth, lik


def bottleneck_tables_built(eb: EntropyBottleneck) -> bool:
    return eb._quantized_cdf.numel() > 0 and eb._offset.numel() > 0

"""Gaussian-mixture hyperprior: y given z as a K-component Gaussian mixture
(Cheng et al. 2020 without the context model; the EDIC entropy model).

::

    y ──h_a──> z ──Q──> z_hat ──h_s──> (weight logits, means, scales) x K
                                        weights = softmax over K
    mu_bar = sum_k w_k mu_k                      (coding centre)
    y ──Q(around mu_bar)──> y_hat ~ sum_k w_k N(mu_k, sigma_k) convolved with U(-.5, .5)

h_a and the trunk of h_s are the mean-scale hyperprior's
(``mean_scale_hyper_transforms``: ... -> conv3x3 -> 2M channels); a LeakyReLU and
a 1x1 conv then map those 2M channels to the 3*K*M mixture parameters, as in
Cheng 2020's entropy-parameter layers. (A 3x3 conv straight to 3*K*M channels
costs ~4.5x the whole mean-scale h_s at K=3; the 1x1 head keeps h_s cheap.)

Likelihood (training and rate estimates):
``sum_k w_k [Phi((y - mu_k + .5) / s_k) - Phi((y - mu_k - .5) / s_k)]``, scales
lower-bounded at 0.11 and the likelihood at 1e-9, exactly as compressai's
GaussianConditional; with K = 1 it is bit-identical to ``GaussianHyperprior``
given the same scales and means.

Coding: z with the factorised EntropyBottleneck; y as integer symbols
``round(y - mu_bar)`` with compressai's rANS coder, under integer CDF tables
built from z_hat alone (see ``rans_tables.py``), so the decoder rebuilds
exactly the encoder's tables.
"""

from __future__ import annotations

import torch
from compressai import ans
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv1x1
from torch import Tensor, nn

from ..quantize import Quantizer
from .base import LatentEntropyModel
from .bottleneck import bottleneck_forward, bottleneck_tables_built
from .gaussian_hyperprior import mean_scale_hyper_transforms
from .rans_tables import CodingTables, MixtureCdfTables

_MAX_SYMBOL = 1 << 24  # |round(y - mu_bar)| beyond this is clamped (int32-safe bypass codes)


def mixture_likelihood(
    gaussian: GaussianConditional, values: Tensor, weights: Tensor, means: Tensor, scales: Tensor
) -> Tensor:
    """Per-element mixture likelihood of integer-spaced ``values`` (N x M x h x w).

    weights, means, scales: N x K x M x h x w (weights sum to 1 over K). Each
    component uses ``gaussian._likelihood`` (scale lower bound included), so
    K = 1 reproduces the single-Gaussian likelihood exactly. Not lower-bounded.
    """
    likelihood = weights[:, 0] * gaussian._likelihood(values, scales[:, 0], means[:, 0])
    for k in range(1, weights.shape[1]):
        likelihood = likelihood + weights[:, k] * gaussian._likelihood(values, scales[:, k], means[:, k])
    return likelihood


def mixture_center(weights: Tensor, means: Tensor) -> Tensor:
    """The quantisation / coding centre mu_bar = sum_k w_k mu_k (N x M x h x w)."""
    return (weights * means).sum(dim=1)


class GaussianMixtureHyperprior(LatentEntropyModel):
    """Entropy model for an M-channel y with an N-channel hyper-latent and K mixtures."""

    num_streams = 2  # [z bytes, y bytes]
    z_stride = 4

    def __init__(self, *, N: int, M: int, mixtures: int = 3) -> None:
        super().__init__()
        if mixtures < 1:
            raise ValueError(f"mixtures must be >= 1, got {mixtures}")
        self.N, self.M, self.K = N, M, mixtures
        self.h_a, h_s_trunk = mean_scale_hyper_transforms(N=N, M=M)
        self.h_s = nn.Sequential(*h_s_trunk, nn.LeakyReLU(inplace=True), conv1x1(2 * M, 3 * mixtures * M))
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)  # bounds and the per-component likelihood
        self.mixture_tables = MixtureCdfTables()

    def hyper_analysis(self, y: Tensor) -> Tensor:
        return self.h_a(y)

    def params(self, z_hat: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z_hat -> (weights, means, scales), each N x K x M x h x w; weights softmaxed over K."""
        out = self.h_s(z_hat)
        n, _, h, w = out.shape
        logits, means, scales = out.reshape(n, 3, self.K, self.M, h, w).unbind(dim=1)
        return torch.softmax(logits, dim=1), means, scales

    def forward(self, y: Tensor, z: Tensor, quantizer: Quantizer) -> tuple[Tensor, dict[str, Tensor]]:
        z_hat, z_lik = bottleneck_forward(self.entropy_bottleneck, z, quantizer)
        weights, means, scales = self.params(z_hat)
        y_rate, y_synth = quantizer(y, mixture_center(weights, means))
        y_lik = mixture_likelihood(self.gaussian_conditional, y_rate, weights, means, scales)
        y_lik = self.gaussian_conditional.likelihood_lower_bound(y_lik)
        return y_synth, {"y": y_lik, "z": z_lik}

    # -- coding -----------------------------------------------------------------
    def coding_tables(self, z_hat: Tensor) -> tuple[CodingTables, Tensor]:
        """Integer rANS tables for y and the coding centre mu_bar, from z_hat only.

        Encoder and decoder both call this; the tables depend on nothing else.
        """
        weights, means, scales = self.params(z_hat)
        if not (torch.isfinite(weights).all() and torch.isfinite(means).all() and torch.isfinite(scales).all()):
            raise ValueError("mixture parameters are not finite; cannot build coding tables")
        center = mixture_center(weights, means)
        keys = self.mixture_tables.component_keys(
            weights.movedim(1, -1), means.movedim(1, -1), scales.movedim(1, -1), center
        )
        return self.mixture_tables.build(keys), center

    @torch.no_grad()
    def compress(self, y: Tensor, z: Tensor) -> tuple[list[bytes], Tensor]:
        if y.shape[0] != 1:
            raise ValueError(f"compress codes one latent at a time, got batch {y.shape[0]}")
        if not torch.isfinite(y).all():
            raise ValueError("latent y is not finite")
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        tables, center = self.coding_tables(z_hat)
        symbols = torch.round(y - center).clamp_(-_MAX_SYMBOL, _MAX_SYMBOL).int()
        indexes, cdfs, lengths, offsets = tables.coder_args()
        y_string = ans.RansEncoder().encode_with_indexes(symbols.reshape(-1).tolist(), indexes, cdfs, lengths, offsets)
        y_hat = symbols.to(center.dtype) + center
        return [z_strings[0], y_string], y_hat

    @torch.no_grad()
    def decompress(self, strings: list[bytes], latent_hw: tuple[int, int]) -> Tensor:
        h, w = latent_hw
        z_hat = self.entropy_bottleneck.decompress([strings[0]], (h // self.z_stride, w // self.z_stride))
        tables, center = self.coding_tables(z_hat)
        indexes, cdfs, lengths, offsets = tables.coder_args()
        values = ans.RansDecoder().decode_with_indexes(strings[1], indexes, cdfs, lengths, offsets)
        symbols = torch.tensor(values, dtype=torch.int32, device=center.device).reshape(center.shape)
        return symbols.to(center.dtype) + center

    # -- tables -----------------------------------------------------------------
    def update(self, force: bool = False) -> bool:
        changed = self.mixture_tables.update(force=force)
        changed |= self.entropy_bottleneck.update(force=force)
        return changed

    def tables_built(self) -> bool:
        return bottleneck_tables_built(self.entropy_bottleneck) and self.mixture_tables.built()

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # Table buffers are sized by update(); resize ours to the stored ones first.
        resizable = [
            (self.entropy_bottleneck, "entropy_bottleneck", ("_quantized_cdf", "_offset", "_cdf_length")),
            (self.mixture_tables, "mixture_tables", MixtureCdfTables._BUFFERS),
        ]
        for module, name, buffers in resizable:
            for buf in buffers:
                key = f"{prefix}{name}.{buf}"
                if key in state_dict:
                    getattr(module, buf).resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

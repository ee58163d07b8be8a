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
``s = round(y - mu_bar)``, both through an ``IndexedCoder`` (``coders.py``). Each symbol is coded as
a few binary decisions (zero? sign? magnitude by interval halving) whose exact
mixture probabilities select one of ~1000 shared 16-bit binary CDFs; an escape
path takes |s| >= 2**16 (see ``rans_tables.py``). The decoder derives every
decision's table row from z_hat and the decisions before it, through the same
code as the encoder, so it uses exactly the encoder's integer CDFs.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv1x1
from torch import Tensor, nn

from ..quantize import Quantizer
from .base import LatentEntropyModel
from .bottleneck import bottleneck_compress, bottleneck_decompress, bottleneck_forward, bottleneck_tables_built
from .coders import IndexedCoder, resolve_coder
from .gaussian_hyperprior import mean_scale_hyper_transforms
from .rans_tables import (
    MAX_MAGNITUDE,
    BinaryDecisionTables,
    MixtureParams,
    decode_mixture_symbols,
    encode_mixture_symbols,
)


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
        self.decision_tables = BinaryDecisionTables()

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
    def coding_params(self, z_hat: Tensor) -> tuple[MixtureParams, Tensor]:
        """Per-element mixture parameters for the coder and the centre mu_bar, from z_hat only.

        Encoder and decoder both call this; nothing else feeds the y coder.
        Returns (params: [K, M*h*w] float32 CPU tensors, mu_bar: 1 x M x h x w).
        Non-finite parameters need no check: they map to valid table rows, the
        same ones on both sides.
        """
        if z_hat.shape[0] != 1:
            raise ValueError(f"coding handles one latent at a time, got batch {z_hat.shape[0]}")
        weights, means, scales = self.params(z_hat)
        center = mixture_center(weights, means)
        scales = self.gaussian_conditional.lower_bound_scale(scales)  # same bound as the likelihood

        def per_element(t: Tensor) -> Tensor:  # 1 x K x M x h x w -> [K, M*h*w]
            return t.detach().reshape(self.K, -1).float().cpu().contiguous()

        params = MixtureParams(
            offsets=per_element(means - center[:, None]), scales=per_element(scales), weights=per_element(weights)
        )
        return params, center

    @torch.no_grad()
    def compress(self, y: Tensor, z: Tensor, *, coder: IndexedCoder | None = None) -> tuple[list[bytes], Tensor]:
        if y.shape[0] != 1:
            raise ValueError(f"compress codes one latent at a time, got batch {y.shape[0]}")
        if not torch.isfinite(y).all():
            raise ValueError("latent y is not finite")
        coder = resolve_coder(coder)
        z_string, z_hat = bottleneck_compress(self.entropy_bottleneck, z, coder=coder)
        params, center = self.coding_params(z_hat)
        symbols = torch.round(y - center).clamp_(-MAX_MAGNITUDE, MAX_MAGNITUDE)
        y_string, _ = encode_mixture_symbols(params, symbols.reshape(-1).long(), self.decision_tables, coder=coder)
        return [z_string, y_string], symbols + center

    @torch.no_grad()
    def decompress(
        self, strings: list[bytes], latent_hw: tuple[int, int], *, coder: IndexedCoder | None = None
    ) -> Tensor:
        if len(strings) != self.num_streams:
            raise ValueError(f"expected {self.num_streams} byte strings, got {len(strings)}")
        coder = resolve_coder(coder)
        h, w = latent_hw
        z_hat = bottleneck_decompress(
            self.entropy_bottleneck, strings[0], (h // self.z_stride, w // self.z_stride), coder=coder
        )
        params, center = self.coding_params(z_hat)
        symbols, _ = decode_mixture_symbols(params, strings[1], self.decision_tables, coder=coder)
        return symbols.to(device=center.device, dtype=center.dtype).reshape(center.shape) + center

    # -- tables -----------------------------------------------------------------
    def update(self, force: bool = False) -> bool:
        changed = self.decision_tables.update(force=force)
        changed |= self.entropy_bottleneck.update(force=force)
        return changed

    def tables_built(self) -> bool:
        return bottleneck_tables_built(self.entropy_bottleneck) and self.decision_tables.built()

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # Table buffers are sized by update(); resize ours to the stored ones first.
        resizable = [
            (self.entropy_bottleneck, "entropy_bottleneck", ("_quantized_cdf", "_offset", "_cdf_length")),
            (self.decision_tables, "decision_tables", BinaryDecisionTables.BUFFERS),
        ]
        for module, name, buffers in resizable:
            for buf in buffers:
                key = f"{prefix}{name}.{buf}"
                if key in state_dict:
                    getattr(module, buf).resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

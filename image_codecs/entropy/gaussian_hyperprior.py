"""Mean-scale Gaussian hyperprior (Minnen et al. 2018, without the context model).

::

    y ──h_a──> z ──Q──> z_hat ──h_s──> (scales, means)
    y ──Q(around means)──> y_hat ~ N(means, scales) convolved with U(-.5, .5)

z is coded with a factorised EntropyBottleneck, y with compressai's indexed
GaussianConditional tables, both through an ``IndexedCoder`` (``coders.py``;
``LegacyRans`` reproduces compressai's own bytes). The hyper-synthesis output
has 2M channels.

Entropy parameters for coding come from ``h_s`` in floating point (``parameters="float"``,
the first releases) or from its integer version (``parameters="integer"``,
``integer_synthesis.py``), which selects the same tables and means on every machine. Training
(``forward``) always uses the float ``h_s``.
"""

from __future__ import annotations

from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv3x3
from compressai.models.google import get_scale_table
from compressai.models.utils import conv, deconv
import torch
from torch import Tensor, nn

from ..quantize import Quantizer
from .base import LatentEntropyModel
from .bottleneck import bottleneck_compress, bottleneck_decompress, bottleneck_forward, bottleneck_tables_built
from .coders import CdfTables, IndexedCoder, resolve_coder
from .integer_synthesis import IntegerHyperSynthesis

#: How the coding path computes the entropy parameters (see the module docstring).
ENTROPY_PARAMETERS = ("float", "integer")


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


def _coded_positions(latent_mask: Tensor, like: Tensor) -> Tensor:
    """bool [h x w] -> bool like ``like`` (1 x M x h x w), every channel of a position alike."""
    if latent_mask.shape != like.shape[-2:]:
        raise ValueError(f"latent mask {tuple(latent_mask.shape)} does not match the latent {tuple(like.shape[-2:])}")
    return latent_mask.to(device=like.device, dtype=torch.bool)[None, None].expand_as(like)


class GaussianHyperprior(LatentEntropyModel):
    """Entropy model for an M-channel y with an N-channel hyper-latent.

    Supports a latent mask (positions whose y is not coded and decodes to the means;
    z positions with no coded y under them are not coded either and decode to the
    bottleneck medians), which the P-frame skip mode uses.
    """

    num_streams = 2  # [z bytes, y bytes]
    z_stride = 4
    supports_latent_mask = True

    def __init__(self, *, N: int, M: int, parameters: str = "float") -> None:
        super().__init__()
        if parameters not in ENTROPY_PARAMETERS:
            raise ValueError(f"entropy parameters must be one of {', '.join(ENTROPY_PARAMETERS)}, got {parameters!r}")
        self.N, self.M = N, M
        self.parameters = parameters
        self._integer: tuple[tuple, IntegerHyperSynthesis] | None = None
        self.h_a, self.h_s = mean_scale_hyper_transforms(N=N, M=M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)

    def hyper_analysis(self, y: Tensor) -> Tensor:
        return self.h_a(y)

    def params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """z_hat -> (scales, means), each N x M x h x w."""
        scales, means = self.h_s(z_hat).chunk(2, dim=1)
        return scales, means

    def coding_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """z_hat -> (table indexes int32, means) for coding y, by ``self.parameters``."""
        if self.parameters == "integer":
            return self.integer_synthesis()(z_hat)
        scales, means = self.params(z_hat)
        return self.gaussian_conditional.build_indexes(scales), means

    def integer_synthesis(self) -> IntegerHyperSynthesis:
        """The integer version of ``h_s``, derived again whenever its weights or the scale table change."""
        tensors = [*self.h_s.parameters(), self.gaussian_conditional.scale_table]
        key = tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in tensors)
        if self._integer is None or self._integer[0] != key:
            self._integer = (key, IntegerHyperSynthesis(self.h_s, self.gaussian_conditional.scale_table))
        return self._integer[1]

    def forward(self, y: Tensor, z: Tensor, quantizer: Quantizer) -> tuple[Tensor, dict[str, Tensor]]:
        z_hat, z_lik = bottleneck_forward(self.entropy_bottleneck, z, quantizer)
        scales, means = self.params(z_hat)
        y_rate, y_synth = quantizer(y, means)
        y_lik = self.gaussian_conditional._likelihood(y_rate, scales, means)
        y_lik = self.gaussian_conditional.likelihood_lower_bound(y_lik)
        return y_synth, {"y": y_lik, "z": z_lik}

    def compress(self, y: Tensor, z: Tensor, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None) -> tuple[list[bytes], Tensor]:
        """``latent_mask``: bool [h x w], True where y is coded; elsewhere y_hat = means (no bits)."""
        if y.shape[0] != 1:
            raise ValueError(f"compress codes one latent at a time, got batch {y.shape[0]}")
        coder = resolve_coder(coder)
        gc = self.gaussian_conditional
        z_mask = None if latent_mask is None else self._z_mask(latent_mask)
        z_string, z_hat = bottleneck_compress(self.entropy_bottleneck, z, coder=coder, mask=z_mask)
        indexes, means = self.coding_params(z_hat)
        symbols = gc.quantize(y, "symbols", means)
        y_hat = gc.quantize(y, "dequantize", means)
        if latent_mask is not None:
            coded = _coded_positions(latent_mask, y)
            symbols, indexes = symbols[coded], indexes[coded]
            y_hat = torch.where(coded, y_hat, means)
        y_string = coder.encode(symbols.reshape(-1), indexes.reshape(-1), CdfTables.from_entropy_model(gc))
        return [z_string, y_string], y_hat

    def decompress(
        self, strings: list[bytes], latent_hw: tuple[int, int], *, coder: IndexedCoder | None = None,
        latent_mask: Tensor | None = None,
    ) -> Tensor:
        if len(strings) != self.num_streams:
            raise ValueError(f"expected {self.num_streams} byte strings, got {len(strings)}")
        coder = resolve_coder(coder)
        gc = self.gaussian_conditional
        h, w = latent_hw
        z_hat = bottleneck_decompress(
            self.entropy_bottleneck, strings[0], (h // self.z_stride, w // self.z_stride), coder=coder,
            mask=None if latent_mask is None else self._z_mask(latent_mask),
        )
        indexes, means = self.coding_params(z_hat)
        tables = CdfTables.from_entropy_model(gc)
        if latent_mask is None:
            symbols = coder.decode(strings[1], indexes.reshape(-1), tables)
            return gc.dequantize(symbols.reshape(indexes.shape).to(means.device), means)
        coded = _coded_positions(latent_mask, means)
        symbols = coder.decode(strings[1], indexes[coded].reshape(-1), tables)
        y_hat = means.clone()
        y_hat[coded] = symbols.to(device=means.device, dtype=means.dtype) + means[coded]
        return y_hat

    def _z_mask(self, latent_mask: Tensor) -> Tensor:
        """z positions to code: those above at least one coded y position."""
        pooled = torch.nn.functional.max_pool2d(latent_mask.float()[None, None], self.z_stride)
        return pooled[0, 0] > 0

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

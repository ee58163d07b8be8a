"""Helpers around compressai's factorised ``EntropyBottleneck`` for the hyper-latent z."""

from __future__ import annotations

from compressai.entropy_models import EntropyBottleneck
import torch
from torch import Tensor

from ..quantize import Quantizer
from .coders import CdfTables, IndexedCoder


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
    """True once ``update()`` built the bottleneck's CDF tables."""
    return eb._quantized_cdf.numel() > 0 and eb._offset.numel() > 0


def _medians(eb: EntropyBottleneck) -> Tensor:
    """Per-channel medians, 1 x C x 1 x 1 (what ``EntropyBottleneck.compress`` rounds around)."""
    return eb._get_medians().detach().reshape(1, -1, 1, 1)


def _indexes(eb: EntropyBottleneck, hw: tuple[int, int]) -> Tensor:
    """Table row of every element of a 1 x C x h x w z: its channel, int32 [C*h*w]."""
    return eb._build_indexes((1, eb._quantized_cdf.shape[0], *hw)).reshape(-1)


def bottleneck_compress(eb: EntropyBottleneck, z: Tensor, *, coder: IndexedCoder,
                        mask: Tensor | None = None) -> tuple[bytes, Tensor]:
    """``EntropyBottleneck.compress`` through ``coder``: z (1 x C x h x w) -> (bytes, z_hat).

    Symbols ``round(z - medians)`` (int32), one table row per channel; z_hat
    (1 x C x h x w, z's dtype and device) is bit-identical to what
    :func:`bottleneck_decompress` returns. With ``LegacyRans`` the bytes equal
    compressai's own. ``mask`` (bool h x w, True = coded): the other positions
    are not coded and decode to the medians.
    """
    if z.dim() != 4 or z.shape[0] != 1:
        raise ValueError(f"z must be 1 x C x h x w, got {tuple(z.shape)}")
    medians = _medians(eb)
    symbols = eb.quantize(z, "symbols", medians)
    indexes = _indexes(eb, tuple(z.shape[-2:]))
    if mask is not None:
        coded = _coded(mask, symbols)
        symbols = torch.where(coded, symbols, torch.zeros_like(symbols))
        string = coder.encode(symbols[coded], indexes.reshape(symbols.shape)[coded], CdfTables.from_entropy_model(eb))
    else:
        string = coder.encode(symbols.reshape(-1), indexes, CdfTables.from_entropy_model(eb))
    return string, eb.dequantize(symbols, medians)


def bottleneck_decompress(
    eb: EntropyBottleneck, string: bytes, hw: tuple[int, int], *, coder: IndexedCoder,
    mask: Tensor | None = None,
) -> Tensor:
    """``EntropyBottleneck.decompress`` through ``coder``: bytes -> z_hat (1 x C x h x w)."""
    medians = _medians(eb)
    indexes = _indexes(eb, hw)
    tables = CdfTables.from_entropy_model(eb)
    if mask is None:
        symbols = coder.decode(string, indexes, tables).reshape(1, -1, *hw)
    else:
        shape = (1, medians.reshape(-1).numel(), *hw)
        coded = _coded(mask, torch.empty(shape))
        symbols = torch.zeros(shape, dtype=torch.int32)
        symbols[coded] = coder.decode(string, indexes.reshape(shape)[coded], tables)
    return eb.dequantize(symbols.to(medians.device), medians)


def _coded(mask: Tensor, like: Tensor) -> Tensor:
    if mask.shape != like.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the hyper-latent {tuple(like.shape[-2:])}")
    return mask.to(device=like.device, dtype=torch.bool)[None, None].expand_as(like)

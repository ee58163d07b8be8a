"""Entropy coding of a P-frame's skip mask (format v2, ``MODE_SKIP``).

One bit per block, True = skipped. The section is one byte ``level`` (1..255)
followed by the bits, coded with the frame's entropy coder (so they enter the
frame's symbol hash) under one binary table: P(keep) = level / 256, P(skip) =
1 - level / 256 - 2**-16 (the last 2**-16 is the table's unused overflow bin).
The encoder picks ``level`` from the mask's own statistics, so a mask costs about
its empirical entropy plus one byte.
"""

from __future__ import annotations

import torch
from torch import Tensor

from image_codecs.entropy.coders import CdfTables, IndexedCoder, SafeAns


def _tables(level: int) -> CdfTables:
    keep = level << 8
    return CdfTables(cdf=torch.tensor([[0, keep, 65535, 65536]]), cdf_length=torch.tensor([4]),
                     offset=torch.tensor([0]))


def encode_skip_mask(skip: Tensor, *, coder: IndexedCoder | None = None) -> bytes:
    """bool [bh x bw] -> section bytes."""
    bits = skip.reshape(-1).to(torch.int32).cpu()
    n_keep = int((bits == 0).sum())
    level = min(255, max(1, round(256 * (n_keep + 0.5) / (bits.numel() + 1))))
    coder = coder or SafeAns()
    return bytes([level]) + coder.encode(bits, torch.zeros_like(bits), _tables(level))


def decode_skip_mask(section: bytes, shape: tuple[int, int], *, coder: IndexedCoder | None = None) -> Tensor:
    """Section bytes -> bool [bh x bw]; ValueError (CorruptStreamError) on bad data."""
    if not section or not 1 <= section[0] <= 255:
        raise ValueError("skip mask: missing or invalid probability level")
    n = shape[0] * shape[1]
    coder = coder or SafeAns()
    bits = coder.decode(section[1:], torch.zeros(n, dtype=torch.int32), _tables(section[0]))
    if bool(((bits != 0) & (bits != 1)).any()):
        raise ValueError("skip mask: symbol out of range")
    return bits.reshape(shape).bool()

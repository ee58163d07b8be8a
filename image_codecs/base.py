"""The ``ImageCodec`` contract shared by every learned image codec.

An image codec codes an ``N x C x H x W`` float tensor (C=3 for pictures and
residuals, C=2 for motion fields in pixels). ``H`` and ``W`` must be multiples of
:attr:`ImageCodec.size_multiple`; callers pad (see ``dvclic.video.padding``).

Three entry points, one network:

- ``forward(x, quality)`` -> :class:`CodecOutput` (training: differentiable
  reconstruction and likelihoods for the rate term);
- ``compress(x, quality)`` -> :class:`CompressedImage` (real bytes plus the exact
  reconstruction the decoder will produce);
- ``decompress(strings, size, quality)`` -> reconstruction.

Bytes come from an entropy-coder backend (``entropy/coders.py``) passed as
``coder=``: ``SafeAns`` (memory-safe, the default) or ``LegacyRans``
(compressai's rANS, to read format-v1 data).

``update()`` builds the entropy coder's CDF tables (stored as buffers, so they
travel in checkpoints). Calling ``compress``/``decompress`` before it raises
:class:`EntropyTablesNotBuiltError`.

Quality is an integer index in ``[0, num_qualities)``; one set of weights covers
all qualities through learned per-channel gains on the latent (see ``gain.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .entropy.coders import IndexedCoder


class EntropyTablesNotBuiltError(RuntimeError):
    """compress()/decompress() was called before update() built the CDF tables."""


@dataclass(frozen=True)
class CodecOutput:
    """Result of a training-time forward pass.

    x_hat: reconstruction, N x C x H x W (same range/units as the input).
    likelihoods: name -> tensor of per-element likelihoods in (0, 1]; the rate in
        bits is ``sum(-log2(l))`` over all of them.
    """

    x_hat: Tensor
    likelihoods: dict[str, Tensor]

    def bits(self) -> Tensor:
        """Total estimated bits (a scalar tensor, differentiable)."""
        return sum((-torch.log2(l)).sum() for l in self.likelihoods.values())


@dataclass(frozen=True)
class CompressedImage:
    """Real entropy-coded bytes for one picture (batch size 1).

    strings: one ``bytes`` per entropy stream (``num_streams`` of them).
    x_hat: 1 x C x H x W, bit-identical to what ``decompress`` returns.
    """

    strings: list[bytes]
    x_hat: Tensor

    @property
    def num_bytes(self) -> int:
        return sum(len(s) for s in self.strings)


class ImageCodec(nn.Module, ABC):
    """Abstract learned image codec (see module docstring)."""

    in_channels: int
    size_multiple: int
    num_qualities: int
    num_streams: int

    @abstractmethod
    def forward(self, x: Tensor, quality: Tensor | int) -> CodecOutput:
        """Training pass. quality: int or LongTensor of shape [N]."""

    @abstractmethod
    def compress(self, x: Tensor, quality: int, *, coder: IndexedCoder | None = None) -> CompressedImage:
        """Code a 1 x C x H x W tensor; H, W multiples of size_multiple.

        coder: the entropy coder backend; None means ``SafeAns()`` (all new streams).
        """

    @abstractmethod
    def decompress(
        self, strings: list[bytes], size: tuple[int, int], quality: int, *, coder: IndexedCoder | None = None
    ) -> Tensor:
        """Decode to 1 x C x H x W where (H, W) = size (the padded size).

        coder: the backend that wrote the strings (None: ``SafeAns()``; ``LegacyRans()``
        for format-v1 data). Invalid strings raise ``CorruptStreamError``.
        """

    @abstractmethod
    def update(self, force: bool = False) -> bool:
        """Build the entropy coder tables. Returns True if anything changed."""

    @abstractmethod
    def aux_loss(self) -> Tensor:
        """Loss for the auxiliary optimizer (entropy-bottleneck quantiles)."""

    def check_size(self, x: Tensor) -> None:
        """Raise ValueError unless x is N x in_channels x H x W with H, W multiples."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects N x {self.in_channels} x H x W, got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"height and width must be multiples of {m}, got {h}x{w}; pad first")

    def check_quality(self, quality: int) -> int:
        if not 0 <= int(quality) < self.num_qualities:
            raise ValueError(f"quality must be in [0, {self.num_qualities}), got {quality}")
        return int(quality)

"""Contract for the entropy model of a latent y (with side information z)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from ..quantize import Quantizer
from .coders import IndexedCoder


class LatentEntropyModel(nn.Module, ABC):
    """Models p(y) (usually through a hyper-latent z) and codes y to bytes.

    All tensors are N x C x h x w latents; ``latent_hw`` is the spatial size of y.
    ``z_stride`` is how much smaller z is than y (so codecs know their size multiple).
    """

    num_streams: int
    z_stride: int

    @abstractmethod
    def hyper_analysis(self, y: Tensor) -> Tensor:
        """y -> z (continuous)."""

    @abstractmethod
    def forward(self, y: Tensor, z: Tensor, quantizer: Quantizer) -> tuple[Tensor, dict[str, Tensor]]:
        """Quantise y and z with ``quantizer``; return (y for synthesis, likelihoods)."""

    @abstractmethod
    def compress(self, y: Tensor, z: Tensor, *, coder: IndexedCoder | None = None) -> tuple[list[bytes], Tensor]:
        """Code a batch-1 latent pair with ``coder`` (None: ``SafeAns()``);
        return (byte strings, y_hat exactly as decoded)."""

    @abstractmethod
    def decompress(
        self, strings: list[bytes], latent_hw: tuple[int, int], *, coder: IndexedCoder | None = None
    ) -> Tensor:
        """Bytes -> y_hat (1 x C x h x w), with the coder that wrote them (None: ``SafeAns()``).

        Raises ``CorruptStreamError`` for strings that are not valid for it."""

    @abstractmethod
    def update(self, force: bool = False) -> bool:
        """Build CDF tables."""

    @abstractmethod
    def tables_built(self) -> bool:
        """True once update() has produced usable tables."""

    @abstractmethod
    def aux_loss(self) -> Tensor:
        """Auxiliary loss (bottleneck quantiles)."""

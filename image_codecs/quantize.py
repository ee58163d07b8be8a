"""Quantisation proxies used between analysis and synthesis.

A quantiser maps a latent ``x`` and the centre it is rounded around (the
predicted mean, or the entropy bottleneck's medians) to a pair
``(x_rate, x_synth)``: the value whose likelihood is the rate term, and the
value fed to the synthesis transform. Keeping both explicit lets training,
coding and encode-time refinement (SGA, see ``refine.py``) share one forward
path.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class Quantizer(Protocol):
    def __call__(self, x: Tensor, center: Tensor) -> tuple[Tensor, Tensor]: ...


def ste_round(x: Tensor) -> Tensor:
    """Round with a straight-through (identity) gradient."""
    return x + (torch.round(x) - x).detach()


class NoiseSTE:
    """Training proxy: additive U(-0.5, 0.5) noise for the rate, straight-through
    rounding around the centre for the synthesis (the usual mixed quantisation)."""

    def __call__(self, x: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
        noisy = x + torch.empty_like(x).uniform_(-0.5, 0.5)
        return noisy, ste_round(x - center) + center


class HardRound:
    """Evaluation: round around the centre, exactly as the entropy coder does."""

    def __call__(self, x: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
        q = torch.round(x - center) + center
        return q, q

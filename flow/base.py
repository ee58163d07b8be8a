"""The ``MotionEstimator`` contract shared by every optical flow estimator.

Data contract:

- inputs ``cur`` and ``ref``: N x 3 x H x W RGB in [0, 1], same shape, any H, W >= 1;
- output: backward flow N x 2 x H x W, float32, in pixels (channel 0 = x,
  channel 1 = y) such that ``warp(ref, flow) ~= cur`` (see ``flow.warp``).

Networks work on sizes that are multiples of :attr:`MotionEstimator.size_multiple`.
``forward`` pads both frames (replicate, bottom/right) to that multiple, runs
:meth:`MotionEstimator.estimate`, and crops the flow back. Padding only at the
bottom/right keeps the pixel origin fixed, so the cropped flow needs no rescaling.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad N x C x H x W at the bottom/right so H and W are multiples."""
    h, w = x.shape[-2:]
    pad_h = -h % multiple
    pad_w = -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


class MotionEstimator(nn.Module, ABC):
    """Abstract optical flow estimator (see module docstring).

    Subclasses set :attr:`size_multiple` in their constructor and implement
    :meth:`estimate`. They hold no sequence state: every call is independent.
    """

    size_multiple: int

    def forward(self, cur: Tensor, ref: Tensor) -> Tensor:
        """Flow N x 2 x H x W (float32, pixels) with ``warp(ref, flow) ~= cur``.

        Args:
            cur: N x 3 x H x W current frame, RGB in [0, 1].
            ref: N x 3 x H x W reference frame, RGB in [0, 1].

        Raises:
            ValueError: on mismatched or non N x 3 x H x W inputs.
        """
        if cur.dim() != 4 or cur.shape[1] != 3:
            raise ValueError(f"cur must be N x 3 x H x W, got shape {tuple(cur.shape)}")
        if cur.shape != ref.shape:
            raise ValueError(
                f"cur and ref must have the same shape, got {tuple(cur.shape)} and {tuple(ref.shape)}"
            )
        h, w = cur.shape[-2:]
        flow = self.estimate(
            pad_to_multiple(cur, self.size_multiple), pad_to_multiple(ref, self.size_multiple)
        )
        return flow[:, :, :h, :w].float()

    @abstractmethod
    def estimate(self, cur: Tensor, ref: Tensor) -> Tensor:
        """Flow for padded inputs: N x 3 x H x W -> N x 2 x H x W (float32, pixels).

        H and W are multiples of :attr:`size_multiple`. Called by ``forward`` only.
        """

"""Replicate padding to a codec's size multiple, and cropping back.

Codecs need ``H`` and ``W`` to be multiples of their ``size_multiple`` (e.g. 64). Pictures are
padded on the bottom and right by replicating the last row/column, coded, and cropped back to
the original size, so no border pixel is lost and metrics are computed on the full picture.
"""

from __future__ import annotations

import torch
from torch import Tensor


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Smallest ``(H', W') >= (height, width)`` with both divisible by ``multiple``."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad ``x`` (``N x C x H x W``, any dtype) on the bottom/right to multiples of ``multiple``.

    Returns ``N x C x H' x W'`` with ``(H', W') = padded_size(H, W, multiple)``; ``x`` itself when
    no padding is needed. Works for any amount of padding, including pads larger than the
    picture (a 1x1 picture padded to 64x64 is a constant picture), because rows and columns are
    gathered by clamped index rather than mirrored. Differentiable.
    """
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got {tuple(x.shape)}")
    height, width = int(x.shape[-2]), int(x.shape[-1])
    if height < 1 or width < 1:
        raise ValueError(f"cannot pad an empty picture {tuple(x.shape)}")
    target_h, target_w = padded_size(height, width, multiple)
    if target_h != height:
        rows = torch.arange(target_h, device=x.device).clamp_(max=height - 1)
        x = x.index_select(2, rows)
    if target_w != width:
        cols = torch.arange(target_w, device=x.device).clamp_(max=width - 1)
        x = x.index_select(3, cols)
    return x


def crop_to(x: Tensor, height: int, width: int) -> Tensor:
    """Top-left ``height x width`` crop of ``x`` (``N x C x H x W`` with ``H >= height``, ``W >= width``).

    Undoes :func:`pad_to_multiple`; returns a view.
    """
    if x.dim() != 4:
        raise ValueError(f"expected N x C x H x W, got {tuple(x.shape)}")
    if not (1 <= height <= x.shape[-2] and 1 <= width <= x.shape[-1]):
        raise ValueError(f"cannot crop {tuple(x.shape)} to {height}x{width}")
    return x[..., :height, :width]

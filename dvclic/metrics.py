"""Quality metrics. PSNR values are per frame; sequences report the mean of them."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .color import YUVFrame

#: Cap for identical pictures, so means stay finite.
MAX_PSNR = 100.0


def _psnr_from_mse(mse: float, peak: float) -> float:
    if mse <= 0:
        return MAX_PSNR
    return min(MAX_PSNR, 10.0 * math.log10(peak * peak / mse))


def psnr_rgb(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of two RGB tensors in [0, 1] (peak 1, i.e. 255 on 8-bit)."""
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return _psnr_from_mse(mse, 1.0)


def plane_psnr(a: np.ndarray, b: np.ndarray, bit_depth: int) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return _psnr_from_mse(mse, float((1 << bit_depth) - 1))


def psnr_yuv(a: YUVFrame, b: YUVFrame) -> float:
    """(6 * PSNR_Y + PSNR_U + PSNR_V) / 8 on the 4:2:0 planes, peak 2^bitdepth - 1."""
    if a.bit_depth != b.bit_depth:
        raise ValueError("bit depths differ")
    d = a.bit_depth
    return (6 * plane_psnr(a.y, b.y, d) + plane_psnr(a.u, b.u, d) + plane_psnr(a.v, b.v, d)) / 8.0


def ms_ssim_rgb(a: Tensor, b: Tensor) -> float:
    """MS-SSIM (pytorch-msssim, 11x11 Gaussian window) of RGB tensors in [0, 1].

    The standard 5 scales need the short side > 160 px; smaller pictures use as
    many scales as fit (weights renormalised), and plain SSIM below 2 scales.
    """
    from pytorch_msssim import ms_ssim, ssim

    side = min(a.shape[-2:])
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    levels = 5
    while levels > 1 and side <= 10 * 2 ** (levels - 1):
        levels -= 1
    a, b = a.float(), b.float()
    if side < 11:
        raise ValueError(f"MS-SSIM needs pictures of at least 11x11, got {tuple(a.shape[-2:])}")
    if levels < 2:
        return float(ssim(a, b, data_range=1.0))
    w = weights[:levels]
    return float(ms_ssim(a, b, data_range=1.0, weights=[x / sum(w) for x in w]))

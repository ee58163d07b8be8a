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


def ms_ssim_per_sample(a: Tensor, b: Tensor) -> Tensor:
    """MS-SSIM per picture (N,) of N x C x H x W tensors in [0, 1] (pytorch-msssim,
    5 scales, standard weights, Gaussian window sigma 1.5).

    The 11x11 window needs the short side > 160 px for 4 downsamplings; smaller
    pictures use the largest odd window that fits (down to 3x3, short side > 32),
    and pictures smaller than that fall back to single-scale SSIM (7x7 or less).
    Differentiable, so training uses it as the MS-SSIM distortion too.
    """
    from pytorch_msssim import ms_ssim, ssim

    side = min(a.shape[-2:])
    a, b = a.float(), b.float()
    win = 11
    while win > 3 and (win - 1) * 16 >= side:
        win -= 2
    if (win - 1) * 16 < side:
        return ms_ssim(a, b, data_range=1.0, size_average=False, win_size=win)
    win = min(7, side - (1 - side % 2))
    if win < 3:
        raise ValueError(f"(MS-)SSIM needs pictures of at least 3x3, got {tuple(a.shape[-2:])}")
    return ssim(a, b, data_range=1.0, size_average=False, win_size=win)


def ms_ssim_rgb(a: Tensor, b: Tensor) -> float:
    """Mean MS-SSIM of RGB tensors in [0, 1] (see :func:`ms_ssim_per_sample`)."""
    return float(ms_ssim_per_sample(a, b).mean())

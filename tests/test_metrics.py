import numpy as np
import pytest
import torch

from dvclic.color import YUVFrame
from dvclic.metrics import MAX_PSNR, ms_ssim_per_sample, ms_ssim_rgb, psnr_rgb, psnr_yuv


def test_psnr_rgb_known_value():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert psnr_rgb(a, b) == pytest.approx(20.0, abs=1e-6)  # mse 0.01 -> 20 dB
    assert psnr_rgb(a, a) == MAX_PSNR


def test_psnr_yuv_weights_planes_6_1_1():
    y = np.full((4, 4), 100, np.uint8)
    c = np.full((2, 2), 128, np.uint8)
    ref = YUVFrame(y, c, c, 8)
    off = YUVFrame(y + 1, c, c, 8)  # only luma off by 1: PSNR_Y = 20*log10(255)
    assert psnr_yuv(off, ref) == pytest.approx((6 * 20 * np.log10(255) + 2 * MAX_PSNR) / 8)


@pytest.mark.parametrize("h, w", [(256, 256), (144, 176), (40, 48), (9, 17)])
def test_ms_ssim_any_size(h, w):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, h, w, generator=g)
    noisy = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert ms_ssim_rgb(x, x) == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim_rgb(noisy, x) < 0.99


def test_ms_ssim_is_differentiable_per_sample():
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    v = ms_ssim_per_sample(x, torch.rand(2, 3, 64, 64))
    assert v.shape == (2,)
    v.sum().backward()
    assert x.grad is not None

"""The classical DIS estimator: known motions on a real frame, determinism, any size."""

from __future__ import annotations

import math

import cv2
import pytest
import torch

from flow import build_estimator, warp

from .conftest import shared_file


def _kodak_crop(h: int = 160, w: int = 224) -> torch.Tensor:
    from PIL import Image
    import numpy as np

    img = np.asarray(Image.open(shared_file("images/kodak/kodim05.png")).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(img).permute(2, 0, 1)[None, :, 100:100 + h, 200:200 + w].contiguous()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float(torch.mean((a - b) ** 2)))


def test_recovers_a_known_shift_on_a_real_frame():
    ref = _kodak_crop()
    cur = torch.roll(ref, shifts=(-2, 3), dims=(2, 3))  # cur(y, x) = ref(y + 2, x - 3)
    flow = build_estimator("dis")(cur, ref)
    inner = flow[..., 16:-16, 16:-16]
    assert inner[:, 0].median().item() == pytest.approx(-3.0, abs=0.25)
    assert inner[:, 1].median().item() == pytest.approx(2.0, abs=0.25)


def test_recovers_a_known_affine_motion_on_a_real_frame():
    ref = _kodak_crop()
    _, _, h, w = ref.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    # a small zoom and rotation about the centre: flow = A (p - c) + t
    a, b, t = 0.02, 0.015, (1.5, -1.0)
    fx = a * (xs - w / 2) - b * (ys - h / 2) + t[0]
    fy = b * (xs - w / 2) + a * (ys - h / 2) + t[1]
    true = torch.stack([fx, fy])[None]
    cur = warp(ref, true)
    flow = build_estimator("dis")(cur, ref)
    err = (flow - true).norm(dim=1)[..., 16:-16, 16:-16]
    assert err.median().item() < 0.3
    assert _psnr(warp(ref, flow), cur) > _psnr(ref, cur) + 8


def test_deterministic_and_independent_of_opencv_threads():
    ref = _kodak_crop()
    cur = torch.roll(ref, shifts=(1, -2), dims=(2, 3))
    est = build_estimator("dis")
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = est(cur, ref)
        cv2.setNumThreads(2)
        two = est(cur, ref)
    finally:
        cv2.setNumThreads(threads)
    assert torch.equal(one, two) and torch.equal(one, est(cur, ref))


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 7, 5), (2, 3, 37, 53)])
def test_any_size_and_batch(shape):
    g = torch.Generator().manual_seed(0)
    cur, ref = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
    flow = build_estimator("dis")(cur, ref)
    assert flow.shape == (shape[0], 2, *shape[2:]) and flow.dtype == torch.float32 and torch.isfinite(flow).all()


def test_has_no_parameters_and_rejects_unknown_presets():
    assert list(build_estimator("dis").parameters()) == []
    with pytest.raises(ValueError, match="preset"):
        build_estimator("dis", preset="slow")

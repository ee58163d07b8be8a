"""kMAC/pixel counting: known single layers, the shallow synthesis budgets, and a codec breakdown."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from image_codecs.complexity import codec_complexity, count_kmac_per_pixel, count_kmacs
from image_codecs.hyperprior import balle_synthesis
from image_codecs.shallow import ShallowCodec, shallow_synthesis


def test_conv2d_known_count() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.zeros(1, 3, 16, 16)
    assert count_kmac_per_pixel(conv, x) == pytest.approx(3 * 8 * 9 / 1000)  # 0.216
    assert count_kmacs(conv, (x,), 16 * 16) == pytest.approx(0.216)
    assert count_kmac_per_pixel(conv, torch.zeros(4, 3, 16, 16)) == pytest.approx(0.216)  # per picture


def test_conv_transpose2d_known_count() -> None:
    # each of the 8x8 input positions scatters a 2x4x4x4 kernel: 8*8 * 4*2*16 MACs over 16x16 outputs
    deconv = nn.ConvTranspose2d(4, 2, kernel_size=4, stride=2, padding=1)
    assert count_kmac_per_pixel(deconv, torch.zeros(1, 4, 8, 8)) == pytest.approx(8 * 8 * 4 * 2 * 16 / 256 / 1000)


@pytest.mark.parametrize(("name", "expected", "budget"), [
    ("jpeg", 320 * 3 * 18 * 18 / 256, 1.3),
    ("2layer", 2 * 320 * 12 * 13 * 13 / 64 / 4 + 12 * 12 / 4 + 12 * 3 * 5 * 5 / 4, 5.5),
])
def test_shallow_synthesis_budget_at_M320(name: str, expected: float, budget: float) -> None:
    g_s = shallow_synthesis(name, M=320, out_channels=3)
    kmacs = count_kmac_per_pixel(g_s, torch.zeros(1, 320, 2, 2))
    assert kmacs == pytest.approx(expected / 1000)
    assert kmacs <= budget


def test_minnen_synthesis_reference() -> None:
    g_s = balle_synthesis(out_channels=3, N=192, M=320)
    assert count_kmac_per_pixel(g_s, torch.zeros(1, 320, 2, 2)) == pytest.approx(93.696)


def test_codec_complexity_breakdown() -> None:
    codec = ShallowCodec(N=32, M=48, synthesis="jpeg")
    parts = codec_complexity(codec, 64, 128)
    assert parts["synthesis"] == pytest.approx(48 * 3 * 18 * 18 / 256 / 1000)
    # h_s: deconv5x5 N->M on z (picture/64), deconv5x5 M->3M/2 on picture/32, conv3x3 3M/2->2M at picture/16
    h_s = (32 * 48 * 25) / 4096 + (48 * 72 * 25) / 1024 + (72 * 96 * 9) / 256
    assert parts["hyper_synthesis"] == pytest.approx(h_s / 1000)
    assert parts["decoder"] == pytest.approx(parts["synthesis"] + parts["hyper_synthesis"])
    assert parts["encoder"] == pytest.approx(parts["analysis"] + parts["hyper_analysis"] + parts["hyper_synthesis"])
    assert parts["analysis"] > parts["synthesis"]
    with pytest.raises(ValueError):
        codec_complexity(codec, 64, 100)

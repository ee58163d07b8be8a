"""Encode-time refinement (SGA): lowers the true cost, stays decodable, leaves the codec alone."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from image_codecs.quantize import HardRound
from image_codecs.refine import SGAQuantizer, rd_cost, refine_latents, refine_latents_at, sga_compress, sga_temperature
from image_codecs.shallow import ShallowCodec

KODIM23 = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "kodak" / "kodim23.png"
LMBDA = 100.0
QUALITY = 1


@pytest.fixture(scope="module")
def picture() -> torch.Tensor:
    """A 64 x 64 crop of kodim23, 1 x 3 x 64 x 64 in [0, 1]."""
    if not KODIM23.exists():
        pytest.skip(f"{KODIM23} not available")
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(KODIM23).convert("RGB"))[200:264, 300:364].copy()
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def codec(picture: torch.Tensor) -> ShallowCodec:
    """A small 2-layer shallow codec fitted for 30 Adam steps on the picture (a few seconds of CPU)."""
    torch.manual_seed(0)
    net = ShallowCodec(N=32, M=48, num_qualities=2, synthesis="2layer")
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(30):
        out = net(picture, QUALITY)
        loss = out.bits() / picture[0, 0].numel() + LMBDA * torch.mean((out.x_hat - picture) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    net.update(force=True)
    return net


def hard_cost(codec: ShallowCodec, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> float:
    with torch.no_grad():
        return float(rd_cost(codec, x, y, z, QUALITY, lmbda=LMBDA, quantizer=HardRound()).loss)


def test_temperature_schedule() -> None:
    assert sga_temperature(0) == 0.5  # min(0.5, 0.5*exp(+0.1))
    assert sga_temperature(200) == 0.5
    assert sga_temperature(5000) == pytest.approx(0.5 * math.exp(-5e-4 * 4800))
    assert sga_temperature(10**7) == 1e-8


def test_sga_quantizer_brackets_and_sharpens() -> None:
    g = torch.Generator().manual_seed(0)
    center = torch.full((1, 1, 1, 1), 0.3)
    frac = torch.tensor([0.1, 0.3, 0.7, 0.9]).repeat(50)
    x = (torch.randint(-3, 3, (200,), generator=g) + frac).reshape(1, 1, 10, 20) + center
    x.requires_grad_(True)
    soft, synth = SGAQuantizer(0.5, generator=g)(x, center)
    assert soft is synth
    v = (x - center).detach()
    assert torch.all(soft - center >= torch.floor(v) - 1e-5) and torch.all(soft - center <= torch.ceil(v) + 1e-5)
    soft.sum().backward()
    assert torch.isfinite(x.grad).all()
    cold, _ = SGAQuantizer(0.01, generator=g)(x.detach(), center)
    assert torch.allclose(cold, HardRound()(x.detach(), center)[0], atol=1e-4)


def test_sga_lowers_true_cost_and_decodes_exactly(picture: torch.Tensor, codec: ShallowCodec) -> None:
    with torch.no_grad():
        y0, z0 = codec.analysis(picture, QUALITY)
    before = hard_cost(codec, picture, y0, z0)
    g = torch.Generator().manual_seed(0)
    y, z = refine_latents(codec, picture, QUALITY, lmbda=LMBDA, steps=30, lr=2e-2, eval_every=5, generator=g)
    after = hard_cost(codec, picture, y, z)
    print(f"hard-rounded R + lambda*D: {before:.4f} -> {after:.4f}")
    assert after < 0.95 * before  # 1.158 -> 1.024 (-11.6%) when written

    with torch.no_grad():
        compressed = codec.compress_latents(y, z, QUALITY)
        decoded = codec.decompress(compressed.strings, picture.shape[-2:], QUALITY)
    assert torch.equal(decoded, compressed.x_hat)


def test_one_long_run_gives_each_shorter_run(picture: torch.Tensor, codec: ShallowCodec) -> None:
    """Snapshots of one 12-step run equal separate 0-, 7- and 12-step runs (7 is off the eval grid)."""
    kwargs = dict(lmbda=LMBDA, lr=2e-2, eval_every=5)
    many = refine_latents_at(codec, picture, QUALITY, steps=[7, 12, 0],
                             generator=torch.Generator().manual_seed(3), **kwargs)
    for k, (y, z) in zip([7, 12, 0], many):
        y1, z1 = refine_latents(codec, picture, QUALITY, steps=k, generator=torch.Generator().manual_seed(3), **kwargs)
        assert torch.equal(y, y1) and torch.equal(z, z1), k
    assert not torch.equal(many[0][0], many[2][0])  # refinement moved the latents


def test_sga_compress_leaves_codec_untouched(picture: torch.Tensor, codec: ShallowCodec) -> None:
    state = {k: v.clone() for k, v in codec.state_dict().items()}
    frozen = codec.gain.log_gain
    frozen.requires_grad_(False)  # a mixed set of flags must come back as it was
    codec.train()
    calls: list[tuple[int, int, float]] = []
    try:
        compressed = sga_compress(
            codec, picture, QUALITY, lmbda=LMBDA, steps=3, lr=1e-2, progress=lambda *a: calls.append(a)
        )
        assert codec.training
        assert not frozen.requires_grad
        assert all(p.requires_grad for n, p in codec.named_parameters() if n != "gain.log_gain")
    finally:
        frozen.requires_grad_(True)
        codec.eval()
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(math.isfinite(c[2]) for c in calls)
    assert all(torch.equal(v, codec.state_dict()[k]) for k, v in state.items())
    with torch.no_grad():
        decoded = codec.decompress(compressed.strings, picture.shape[-2:], QUALITY)
    assert torch.equal(decoded, compressed.x_hat)


def test_make_compressor_refuses_an_unknown_precision() -> None:
    from dvclic.errors import InputError
    from dvclic.refinement import make_compressor

    assert make_compressor(0, [1.0], precision="bfloat16") is None
    with pytest.raises(InputError, match="refine_precision: must be one of float32, bfloat16"):
        make_compressor(5, [1.0], precision="half")

"""Shallow-decoder codecs: exact synthesis sizes, exact compress/decompress, registry names."""

from __future__ import annotations

import pytest
import torch

from image_codecs import build_codec
from image_codecs.shallow import SYNTHESIS_NAMES, ShallowCodec, Shallow2LayerCodec, ShallowJPEGCodec, shallow_synthesis

SMALL = dict(N=32, M=48)


@pytest.mark.parametrize("name", SYNTHESIS_NAMES)
@pytest.mark.parametrize("channels", [2, 3])
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (4, 4)])
def test_synthesis_output_is_exactly_16x_latent(name: str, channels: int, hw: tuple[int, int]) -> None:
    g_s = shallow_synthesis(name, M=SMALL["M"], out_channels=channels)
    with torch.no_grad():
        out = g_s(torch.randn(2, SMALL["M"], *hw))
    assert out.shape == (2, channels, 16 * hw[0], 16 * hw[1])


def test_unknown_synthesis_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="jpeg, 2layer"):
        ShallowCodec(**SMALL, synthesis="deep")


@pytest.mark.parametrize("name", SYNTHESIS_NAMES)
@pytest.mark.parametrize("channels", [2, 3])
def test_compress_decompress_exact(name: str, channels: int) -> None:
    torch.manual_seed(0)
    codec = ShallowCodec(in_channels=channels, num_qualities=2, synthesis=name, **SMALL).eval()
    codec.update(force=True)
    scale = 4.0 if channels == 2 else 1.0  # motion in pixels, pictures in [0, 1]
    x = torch.rand(1, channels, 64, 128) * scale
    with torch.no_grad():
        out = codec(x, 1)
        compressed = codec.compress(x, 1)
        decoded = codec.decompress(compressed.strings, (64, 128), 1)
    assert out.x_hat.shape == x.shape
    assert len(compressed.strings) == codec.num_streams == 2
    assert torch.equal(decoded, compressed.x_hat)


@pytest.mark.parametrize(("registry_name", "cls", "synthesis"), [
    ("shallow-jpeg", ShallowJPEGCodec, "jpeg"),
    ("shallow-2layer", Shallow2LayerCodec, "2layer"),
])
def test_registry_builds(registry_name: str, cls: type, synthesis: str) -> None:
    codec = build_codec(registry_name, in_channels=2, **SMALL)
    assert type(codec) is cls
    assert codec.synthesis_name == synthesis
    assert codec.in_channels == 2 and codec.size_multiple == 64

"""The ImageCodec contract, parametrized over every registered codec."""

from __future__ import annotations

import pytest
import torch

from image_codecs import EntropyTablesNotBuiltError, UnknownNameError, build_codec, codec_names

SMALL = {"N": 16, "M": 24}


def small_codec(name: str, in_channels: int):
    codec = build_codec(name, in_channels=in_channels, num_qualities=3, **SMALL)
    return codec.eval()


@pytest.mark.parametrize("name", codec_names())
@pytest.mark.parametrize("in_channels", [3, 2])
def test_compress_decompress_exact(name, in_channels):
    codec = small_codec(name, in_channels)
    codec.update(force=True)
    m = codec.size_multiple
    x = torch.rand(1, in_channels, m, 2 * m) * (8.0 if in_channels == 2 else 1.0)
    with torch.no_grad():
        for q in range(codec.num_qualities):
            coded = codec.compress(x, q)
            assert len(coded.strings) == codec.num_streams
            assert torch.equal(codec.decompress(coded.strings, (m, 2 * m), q), coded.x_hat)
            assert coded.x_hat.shape == x.shape


@pytest.mark.parametrize("name", codec_names())
def test_compress_before_update_is_a_clear_error(name):
    codec = small_codec(name, 3)
    x = torch.rand(1, 3, codec.size_multiple, codec.size_multiple)
    with pytest.raises(EntropyTablesNotBuiltError, match="update"):
        codec.compress(x, 0)


@pytest.mark.parametrize("name", codec_names())
def test_forward_shapes_and_rate(name):
    codec = small_codec(name, 3).train()
    m = codec.size_multiple
    out = codec(torch.rand(2, 3, m, m), torch.tensor([0, 2]))
    assert out.x_hat.shape == (2, 3, m, m)
    assert all(((l > 0) & (l <= 1)).all() for l in out.likelihoods.values())
    assert out.bits() > 0


@pytest.mark.parametrize("name", codec_names())
def test_bad_inputs_rejected(name):
    codec = small_codec(name, 3)
    codec.update(force=True)
    m = codec.size_multiple
    with pytest.raises(ValueError, match="multiples"):
        codec.compress(torch.rand(1, 3, m + 1, m), 0)
    with pytest.raises(ValueError, match="quality"):
        codec.compress(torch.rand(1, 3, m, m), 7)
    with pytest.raises(ValueError):
        codec.compress(torch.rand(1, 2, m, m), 0)


@pytest.mark.parametrize("name", ["hyperprior", "msp"])
def test_state_dict_round_trip_keeps_tables(name):
    a = small_codec(name, 3)
    a.update(force=True)
    b = small_codec(name, 3)
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        coded = a.compress(x, 1)
        assert torch.equal(b.decompress(coded.strings, (64, 64), 1), coded.x_hat)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        build_codec("jpeg2000")
    assert "hyperprior" in str(err.value) and "msp" in str(err.value)

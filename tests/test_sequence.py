"""Sequence coding: GOP structure, exact decoder reconstruction, P-frame economy."""

import io
from fractions import Fraction

import pytest
import torch

from dvclic.bitstream import FRAME_I, FRAME_P, BitstreamReader, BitstreamWriter, SequenceHeader
from dvclic.checkpoint import load_weights
from dvclic.sequence import SequenceDecoder, SequenceEncoder, is_intra


def test_gop_structure():
    assert "".join("I" if is_intra(i, 3) else "P" for i in range(7)) == "IPPIPPI"
    assert "".join("I" if is_intra(i, -1) else "P" for i in range(4)) == "IPPP"
    assert "".join("I" if is_intra(i, 1) else "P" for i in range(3)) == "III"


def _clip(n: int, h: int = 64, w: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w),
                                           mode="bilinear", align_corners=False)
    return torch.stack([torch.roll(base, shifts=(0, 2 * i), dims=(2, 3)) for i in range(n)])


def test_two_gop_clip_decodes_exactly(tiny_weights):
    loaded = load_weights(tiny_weights)
    model = loaded.model
    clip = _clip(4)
    enc = SequenceEncoder(model, quality=1, intra_period=2)
    buf = io.BytesIO()
    header = SequenceHeader(width=128, height=64, frame_count=0, fps=Fraction(25), bit_depth=8,
                            intra_period=2, quality=1, model="test-tiny", weights_sha256=loaded.sha256)
    writer = BitstreamWriter(buf, header)
    recons = []
    for t in range(4):
        coded = enc.encode(clip[t])
        writer.write_frame(coded.unit)
        recons.append(coded.x_hat)
    writer.close()
    reader = BitstreamReader(io.BytesIO(buf.getvalue()))
    dec = SequenceDecoder(model, padded_size=(64, 128))
    types = []
    for t, unit in enumerate(reader):
        types.append(unit.frame_type)
        assert torch.equal(dec.decode(unit).x_hat, recons[t])
    assert types == [FRAME_I, FRAME_P, FRAME_I, FRAME_P]


def test_bad_quality_is_rejected(tiny_weights):
    model = load_weights(tiny_weights).model
    with pytest.raises(ValueError):
        SequenceEncoder(model, quality=5, intra_period=2)
    with pytest.raises(ValueError):
        SequenceEncoder(model, quality=0, intra_period=0)


@pytest.mark.parametrize("offset", [1, 5])
def test_intra_offset_codes_the_gop_i_frames_higher_and_decodes_exactly(tiny_weights, offset):
    """--intra-offset K: the intra period's I-frames carry quality q + K (capped), the rest q; the
    decoder follows each unit's quality and reproduces the encoder's reconstruction."""
    from dvclic.params import CodingParams, ParameterError

    loaded = load_weights(tiny_weights)
    model = loaded.model  # 2 qualities
    clip = _clip(4)
    enc = SequenceEncoder(model, quality=0, intra_period=2, intra_offset=offset)
    dec = SequenceDecoder(model, padded_size=(64, 128))
    units = []
    for t in range(4):
        coded = enc.encode(clip[t])
        units.append(coded.unit)
        assert torch.equal(dec.decode(coded.unit).x_hat, coded.x_hat)
    assert [u.quality for i, u in enumerate(units) if i % 2 == 0] == [1, 1]
    assert [u.quality for i, u in enumerate(units) if i % 2 == 1] == [0, 0]
    with pytest.raises(ValueError):
        SequenceEncoder(model, quality=0, intra_period=2, intra_offset=-1)
    with pytest.raises(ParameterError, match="intra_offset"):
        CodingParams(intra_offset=-1)

"""Format-v2 P-frame modes: every mode decodes exactly, costs what it should, and is checked on read."""

from __future__ import annotations

import io
from dataclasses import replace
from fractions import Fraction

import pytest
import torch

from dvclic.bitstream import (FRAME_I, FRAME_P, MODE_NO_MC, MODE_SKIP, MODE_ZERO_MOTION, BitstreamReader,
                              BitstreamWriter, SequenceHeader)
from dvclic.checkpoint import load_weights
from dvclic.errors import BitstreamError
from dvclic.pframe import PMode
from dvclic.rdo import ModeSet, choose_pframe
from dvclic.sequence import SequenceDecoder, SequenceEncoder


def _clip(n: int, h: int = 128, w: int = 128, step: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w),
                                           mode="bilinear", align_corners=False)
    return torch.stack([torch.roll(base, shifts=(0, step * i), dims=(2, 3)) for i in range(n)])


def _round_trip(model, clip, modes: ModeSet, intra_period: int = -1):
    enc = SequenceEncoder(model, quality=1, intra_period=intra_period, modes=modes)
    buf = io.BytesIO()
    header = SequenceHeader(width=clip.shape[-1], height=clip.shape[-2], frame_count=0, fps=Fraction(25),
                            bit_depth=8, intra_period=intra_period, quality=1, model="test-tiny",
                            weights_sha256=bytes(32))
    writer = BitstreamWriter(buf, header)
    coded = []
    for t in range(clip.shape[0]):
        c = enc.encode(clip[t])
        writer.write_frame(c.unit)
        coded.append(c)
    writer.close()
    reader = BitstreamReader(io.BytesIO(buf.getvalue()))
    dec = SequenceDecoder(model, padded_size=tuple(clip.shape[-2:]))
    for c, unit in zip(coded, reader):
        d = dec.decode(unit)
        assert torch.equal(d.x_hat, c.x_hat) and d.exact is True
        assert unit.modes == c.unit.modes
    return coded, buf.getvalue()


@pytest.mark.parametrize("names,flags", [
    ("mc", 0), ("warp", MODE_NO_MC), ("zero", MODE_ZERO_MOTION | MODE_NO_MC),
])
def test_each_mode_decodes_exactly(tiny_weights, one_torch_thread, names, flags):
    model = load_weights(tiny_weights).model
    coded, _ = _round_trip(model, _clip(3), ModeSet.parse(names))
    assert all(c.unit.frame_type == FRAME_P and c.unit.modes & ~MODE_SKIP == flags for c in coded[1:])
    if "zero" in names:  # zero motion costs no motion bits
        assert all(c.motion_bytes == 0 and len(c.unit.sections) == 2 for c in coded[1:])


def test_skip_mask_decodes_exactly_and_costs_no_motion(tiny_weights, one_torch_thread):
    model = load_weights(tiny_weights).model
    pf = model.pframe
    clip = _clip(2)
    ref = clip[0]
    for skip in (torch.tensor([[True, False], [False, True]]), torch.ones(2, 2, dtype=torch.bool)):
        coded = pf.compress(clip[1], ref, 1, mode=PMode(zero_motion=True, use_mc=False, skip=skip))
        assert coded.motion_bytes == 0
        x_hat = pf.decompress(coded.sections, ref, 1, zero_motion=True, use_mc=False, skip=True)
        assert torch.equal(x_hat, coded.x_hat)
        keep = pf.pixel_mask(skip, (128, 128))
        # skipped blocks keep the prediction exactly
        assert torch.equal((x_hat * (1 - keep)), (coded.pred * (1 - keep)))


def test_rdo_picks_the_cheapest_candidate(tiny_weights, one_torch_thread):
    model = load_weights(tiny_weights).model
    clip = _clip(2)
    best = choose_pframe(model.pframe, model.intra, clip[1], clip[0], 1, lmbda=model.lambdas[1], modes=ModeSet())
    for names in ("mc", "warp", "zero"):
        alone = choose_pframe(model.pframe, model.intra, clip[1], clip[0], 1, lmbda=model.lambdas[1],
                              modes=ModeSet.parse(names))
        assert best.cost <= alone.cost + 1e-9


def test_reader_refuses_corrupted_modes_and_masks_with_offset(tiny_weights, one_torch_thread):
    model = load_weights(tiny_weights).model
    pf = model.pframe
    clip = _clip(2)
    skip = torch.tensor([[True, False], [False, False]])
    coded = pf.compress(clip[1], clip[0], 1, mode=PMode(skip=skip))
    # an undefined mode bit, or modes on an I-frame: refused by the reader, with the offset
    from dvclic.bitstream import _crc, _varint  # build units by hand
    for frame_type, modes in ((FRAME_P, 0x08), (FRAME_I, MODE_SKIP)):
        payload = bytes([frame_type, 1, modes]) + _varint(0) + bytes(24)
        unit = bytes([0xF1]) + _varint(len(payload)) + payload + _crc(payload)
        buf = io.BytesIO()
        header = SequenceHeader(width=128, height=128, frame_count=1, fps=Fraction(25), bit_depth=8,
                                intra_period=-1, quality=1, model="t", weights_sha256=bytes(32))
        BitstreamWriter(buf, header)
        data = buf.getvalue() + unit + bytes([0xFE]) + (1).to_bytes(4, "little")
        with pytest.raises(BitstreamError, match=r"byte offset \d+.*modes"):
            list(BitstreamReader(io.BytesIO(data)))
    # a damaged skip mask: an error naming the section, never a wrong picture
    bad = list(coded.sections)
    bad[2] = bytes([bad[2][0]]) + bytes(b ^ 0x55 for b in bad[2][1:])
    with pytest.raises(ValueError, match="skip mask"):
        pf.decompress(bad, clip[0], 1, skip=True)
    bad[2] = b"\x00" + coded.sections[2][1:]
    with pytest.raises(ValueError, match="skip mask"):
        pf.decompress(bad, clip[0], 1, skip=True)

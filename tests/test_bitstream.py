import io
from fractions import Fraction

import pytest

from dvclic.bitstream import (FRAME_I, FRAME_P, BitstreamReader, BitstreamWriter, FrameUnit, SequenceHeader,
                              _unzigzag, _zigzag)
from dvclic.errors import BitstreamError

HEADER = SequenceHeader(width=417, height=239, frame_count=0, fps=Fraction(30000, 1001), bit_depth=10,
                        intra_period=-1, quality=3, model="dvc-hyperprior", weights_sha256=bytes(range(32)))
UNITS = [
    FrameUnit(FRAME_I, 3, [b"zz", b"y" * 300]),
    FrameUnit(FRAME_P, 3, [b"", b"m" * 5, b"r" * 200, b"\x00\xff"]),
    FrameUnit(FRAME_P, 2, [b"a", b"b", b"c", b"d"]),
]


def small_stream() -> bytes:
    buf = io.BytesIO()
    w = BitstreamWriter(buf, HEADER)
    for u in UNITS:
        w.write_frame(u)
    w.close()
    return buf.getvalue()


def read_all(data: bytes):
    r = BitstreamReader(io.BytesIO(data))
    return r.header, list(r)


def test_header_and_units_round_trip():
    header, units = read_all(small_stream())
    assert header == SequenceHeader(**{**HEADER.__dict__, "frame_count": 3})
    assert units == UNITS


def test_zigzag_round_trip():
    for v in (-1, 0, 1, 12, 32, -12345, 2**40):
        assert _unzigzag(_zigzag(v)) == v


def test_every_truncation_point_raises():
    data = small_stream()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            read_all(data[:cut])


def test_every_single_byte_corruption_is_detected():
    data = small_stream()
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        with pytest.raises(BitstreamError):
            read_all(bytes(bad))


def test_trailing_garbage_and_bad_magic():
    with pytest.raises(BitstreamError, match="after end of stream"):
        read_all(small_stream() + b"x")
    with pytest.raises(BitstreamError, match="magic"):
        read_all(b"GIF89a" + small_stream()[6:])
    with pytest.raises(BitstreamError, match="version"):
        data = bytearray(small_stream())
        data[6] = 99
        read_all(bytes(data))


def test_error_names_offset():
    data = small_stream()
    with pytest.raises(BitstreamError, match=r"byte offset \d+"):
        read_all(data[: len(data) // 2])

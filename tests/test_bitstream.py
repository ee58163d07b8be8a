import io
from fractions import Fraction

import pytest

from dvclic.bitstream import (FRAME_I, FRAME_P, MODE_NO_MC, MODE_SKIP, MODE_ZERO_MOTION, OPEN_ENDED, VERSION,
                              BitstreamReader, BitstreamWriter, FrameUnit, SequenceHeader, _crc, _header_payload,
                              _unzigzag, _zigzag)
from dvclic.errors import BitstreamError

HEADER = SequenceHeader(width=417, height=239, frame_count=0, fps=Fraction(30000, 1001), bit_depth=10,
                        intra_period=-1, quality=3, model="dvc-hyperprior", weights_sha256=bytes(range(32)))
V1_UNITS = [
    FrameUnit(FRAME_I, 3, [b"zz", b"y" * 300]),
    FrameUnit(FRAME_P, 3, [b"", b"m" * 5, b"r" * 200, b"\x00\xff"]),
    FrameUnit(FRAME_P, 2, [b"a", b"b", b"c", b"d"]),
]
UNITS = [
    FrameUnit(FRAME_I, 3, [b"zz", b"y" * 300], symbols_hash=b"s" * 8, recon_hash=b"r" * 16),
    FrameUnit(FRAME_P, 3, [b"", b"m" * 5, b"r" * 200, b"\x00\xff"], modes=MODE_SKIP | MODE_NO_MC,
              symbols_hash=bytes(8), recon_hash=bytes(range(16))),
    FrameUnit(FRAME_P, 2, [b"a", b"b"], modes=MODE_ZERO_MOTION | MODE_NO_MC, symbols_hash=b"12345678",
              recon_hash=b"x" * 16),
]


def small_stream(version: int = VERSION) -> bytes:
    buf = io.BytesIO()
    w = BitstreamWriter(buf, HEADER, version=version)
    for u in (UNITS if version >= 2 else V1_UNITS):
        w.write_frame(u)
    w.close()
    return buf.getvalue()


def read_all(data: bytes):
    r = BitstreamReader(io.BytesIO(data))
    return r.header, list(r)


def test_header_and_units_round_trip():
    header, units = read_all(small_stream())
    assert header == SequenceHeader(**{**HEADER.__dict__, "frame_count": OPEN_ENDED})
    assert units == UNITS
    assert [u.offset for u in units] == sorted(u.offset for u in units) and units[0].offset > 0


def test_version_1_streams_still_read():
    data = small_stream(version=1)
    assert data[6] == 1
    header, units = read_all(data)
    assert units == V1_UNITS and all(u.modes == 0 and u.symbols_hash == b"" for u in units)


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink (like stdout on a pipe)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # noqa: ANN001
        self.data += bytes(b)
        return len(b)


def test_unseekable_output_is_open_ended_and_confirmed_by_the_end_unit():
    pipe = _Pipe()
    w = BitstreamWriter(pipe, HEADER)
    for u in UNITS:
        w.write_frame(u)
    w.close()
    r = BitstreamReader(io.BytesIO(bytes(pipe.data)))
    assert r.header.frame_count == OPEN_ENDED and r.open_ended
    assert list(r) == UNITS
    assert bytes(pipe.data) == small_stream()  # a pipe and a seekable file get the same bytes


def test_a_count_known_up_front_is_written_and_enforced():
    buf = io.BytesIO()
    w = BitstreamWriter(buf, SequenceHeader(**{**HEADER.__dict__, "frame_count": 3}))
    for u in UNITS:
        w.write_frame(u)
    w.close()
    header, units = read_all(buf.getvalue())
    assert header.frame_count == 3 and units == UNITS
    short = BitstreamWriter(io.BytesIO(), SequenceHeader(**{**HEADER.__dict__, "frame_count": 4}))
    short.write_frame(UNITS[0])
    with pytest.raises(ValueError, match="announced 4"):
        short.close()


def _with_header(**fields) -> bytes:
    """A v2 stream of UNITS under a header with some fields changed (CRC recomputed)."""
    data = small_stream()
    good = _header_payload(SequenceHeader(**{**HEADER.__dict__, "frame_count": 3}))
    h = SequenceHeader(**{**HEADER.__dict__, "frame_count": 3})
    from dvclic import bitstream as b
    parts = [b._varint(fields.get("width", h.width)), b._varint(fields.get("height", h.height)),
             (3).to_bytes(4, "little"), b._varint(fields.get("fps_num", 30000)), b._varint(fields.get("fps_den", 1001)),
             bytes([fields.get("bit_depth", 10), 0, 1, 0]), b._varint(b._zigzag(fields.get("intra_period", -1))),
             bytes([fields.get("quality", 3)]), b._str(h.model), h.weights_sha256]
    bad = b"".join(parts)
    start = 7 + len(b._varint(len(good)))
    return data[:7] + b._varint(len(bad)) + bad + _crc(bad) + data[start + len(good) + 4:]


@pytest.mark.parametrize("fields,match", [
    ({"bit_depth": 12}, "bit depth 12"), ({"bit_depth": 16}, "bit depth 16"),
    ({"fps_num": (1 << 63) - 1, "fps_den": 1}, "frame rate"), ({"fps_num": 1, "fps_den": 100000}, "frame rate"),
    ({"width": 16384, "height": 16384}, "over the limit"), ({"intra_period": 0}, "intra period"),
])
def test_strict_header_checks_name_the_offset(fields, match):
    data = _with_header(**fields)
    with pytest.raises(BitstreamError, match=rf"byte offset 7.*{match}"):
        read_all(data)


def test_picture_size_limit_can_be_raised():
    data = _with_header(width=4096, height=4096)
    with pytest.raises(BitstreamError, match="over the limit"):
        read_all(data)
    assert BitstreamReader(io.BytesIO(data), max_pixels=4096 * 4096).header.width == 4096


def test_quality_outside_the_model_and_frame_types_against_the_intra_period():
    r = BitstreamReader(io.BytesIO(small_stream()))
    with pytest.raises(BitstreamError, match="byte offset 7.*quality 3"):
        r.check_quality(2)
    data = _with_header(intra_period=2)  # frame 2 is a P-frame at an intra position
    with pytest.raises(BitstreamError, match=r"frame 2 at byte offset \d+ is a P-frame"):
        read_all(data)


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

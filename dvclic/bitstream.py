"""The ``.dvc`` bitstream: symmetric writer and reader, versioned, checksummed.

Layout (all multi-byte fixed-width integers little-endian)::

    file      := MAGIC(6) VERSION(u8) seq_unit frame_unit* end_unit
    seq_unit  := len(varint) payload crc32(u32 of payload)
      payload := width(varint) height(varint) frame_count(u32) fps_num(varint)
                 fps_den(varint) bit_depth(u8) chroma(u8: 0 = 4:2:0)
                 matrix(u8: 1 = BT.709) range(u8: 0 = limited)
                 intra_period(zigzag varint; -1 = first frame only)
                 quality(u8) model(str) weights_sha256(32 bytes)
    frame_unit := UNIT_FRAME(u8) len(varint) payload crc32(u32 of payload)
      payload := type(u8: 0 = I, 1 = P) quality(u8) n(varint) (len(varint) bytes){n}
    end_unit  := UNIT_END(u8) frame_count(u32)
    str       := len(varint) utf-8 bytes

``frame_count`` in the sequence header is patched when the writer closes, so the
header is complete while frames are streamed. Every read error raises
:class:`~dvclic.errors.BitstreamError` naming what is wrong and the byte offset.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Iterator

from .errors import BitstreamError

MAGIC = b"DVCLIC"
VERSION = 1
UNIT_FRAME = 0xF1
UNIT_END = 0xFE
FRAME_I = 0
FRAME_P = 1
FRAME_TYPE_CHARS = {FRAME_I: "I", FRAME_P: "P"}
MATRIX_BT709 = 1
RANGE_LIMITED = 0
CHROMA_420 = 0

MAX_DIMENSION = 16384
MAX_SECTIONS = 64
MAX_UNIT_BYTES = 1 << 30


@dataclass(frozen=True)
class SequenceHeader:
    """Everything a decoder needs before the first frame."""

    width: int
    height: int
    frame_count: int
    fps: Fraction
    bit_depth: int
    intra_period: int
    quality: int
    model: str
    weights_sha256: bytes
    matrix: int = MATRIX_BT709
    colour_range: int = RANGE_LIMITED
    chroma: int = CHROMA_420


@dataclass(frozen=True)
class FrameUnit:
    """One coded frame: its type (FRAME_I / FRAME_P), quality and payload sections."""

    frame_type: int
    quality: int
    sections: list[bytes]

    @property
    def num_bytes(self) -> int:
        return sum(len(s) for s in self.sections)


# -- primitive encoders ------------------------------------------------------
def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def _unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


def _str(value: str) -> bytes:
    data = value.encode("utf-8")
    return _varint(len(data)) + data


def _header_payload(h: SequenceHeader) -> bytes:
    if not (0 < h.width <= MAX_DIMENSION and 0 < h.height <= MAX_DIMENSION):
        raise ValueError(f"frame size {h.width}x{h.height} outside 1..{MAX_DIMENSION}")
    if len(h.weights_sha256) != 32:
        raise ValueError("weights_sha256 must be 32 bytes")
    return b"".join(
        [
            _varint(h.width),
            _varint(h.height),
            struct.pack("<I", h.frame_count),
            _varint(h.fps.numerator),
            _varint(h.fps.denominator),
            struct.pack("<BBBB", h.bit_depth, h.chroma, h.matrix, h.colour_range),
            _varint(_zigzag(h.intra_period)),
            struct.pack("<B", h.quality),
            _str(h.model),
            h.weights_sha256,
        ]
    )


def _crc(data: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


class BitstreamWriter:
    """Streams a sequence to a seekable binary file: header, frames, end unit."""

    def __init__(self, fp: BinaryIO, header: SequenceHeader) -> None:
        self._fp = fp
        self._header = header
        self._frames = 0
        self._fp.write(MAGIC + bytes([VERSION]))
        payload = _header_payload(header)
        self._fp.write(_varint(len(payload)))
        self._header_pos = self._fp.tell()
        self._fp.write(payload + _crc(payload))

    def write_frame(self, unit: FrameUnit) -> int:
        """Append one frame unit; returns the bytes written."""
        if unit.frame_type not in FRAME_TYPE_CHARS:
            raise ValueError(f"unknown frame type {unit.frame_type}")
        if len(unit.sections) > MAX_SECTIONS:
            raise ValueError("too many sections")
        parts = [struct.pack("<BB", unit.frame_type, unit.quality), _varint(len(unit.sections))]
        for section in unit.sections:
            parts += [_varint(len(section)), section]
        payload = b"".join(parts)
        data = bytes([UNIT_FRAME]) + _varint(len(payload)) + payload + _crc(payload)
        self._fp.write(data)
        self._frames += 1
        return len(data)

    def close(self) -> None:
        """Write the end unit and patch the frame count into the header."""
        self._fp.write(bytes([UNIT_END]) + struct.pack("<I", self._frames))
        end = self._fp.tell()
        h = self._header
        patched = SequenceHeader(**{**h.__dict__, "frame_count": self._frames})
        payload = _header_payload(patched)
        self._fp.seek(self._header_pos)
        self._fp.write(payload + _crc(payload))
        self._fp.seek(end)
        self._header = patched


# -- reader ------------------------------------------------------------------
class _Cursor:
    """Bounds-checked reads from a stream, tracking the byte offset for messages."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.pos = 0

    def read(self, n: int, what: str) -> bytes:
        data = self.fp.read(n)
        if len(data) != n:
            raise BitstreamError(
                f"truncated file: expected {n} bytes of {what} at byte offset {self.pos}, got {len(data)}"
            )
        self.pos += n
        return data

    def varint(self, what: str) -> int:
        value, shift, start = 0, 0, self.pos
        while True:
            byte = self.read(1, what)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise BitstreamError(f"corrupt {what}: varint too long at byte offset {start}")


def _parse_header(payload: bytes, offset: int) -> SequenceHeader:
    c = _Cursor(io.BytesIO(payload))
    try:
        width, height = c.varint("width"), c.varint("height")
        (frame_count,) = struct.unpack("<I", c.read(4, "frame count"))
        num, den = c.varint("fps numerator"), c.varint("fps denominator")
        bit_depth, chroma, matrix, rng = c.read(4, "pixel format")
        intra_period = _unzigzag(c.varint("intra period"))
        quality = c.read(1, "quality")[0]
        model = c.read(c.varint("model name length"), "model name").decode("utf-8")
        sha = c.read(32, "weights hash")
    except (BitstreamError, UnicodeDecodeError) as exc:
        raise BitstreamError(f"corrupt sequence header at byte offset {offset}: {exc}") from None
    problems = []
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        problems.append(f"frame size {width}x{height}")
    if num == 0 or den == 0:
        problems.append(f"frame rate {num}/{den}")
    if bit_depth not in (8, 10, 12, 16) or chroma != CHROMA_420 or matrix != MATRIX_BT709 or rng != RANGE_LIMITED:
        problems.append(f"pixel format (bit depth {bit_depth}, chroma {chroma}, matrix {matrix}, range {rng})")
    if intra_period == 0 or intra_period < -1:
        problems.append(f"intra period {intra_period}")
    if c.fp.read(1):
        problems.append("trailing bytes")
    if problems:
        raise BitstreamError(f"invalid sequence header at byte offset {offset}: {'; '.join(problems)}")
    return SequenceHeader(
        width=width, height=height, frame_count=frame_count, fps=Fraction(num, den), bit_depth=bit_depth,
        intra_period=intra_period, quality=quality, model=model, weights_sha256=sha,
        matrix=matrix, colour_range=rng, chroma=chroma,
    )


def _parse_frame(payload: bytes, index: int, offset: int) -> FrameUnit:
    c = _Cursor(io.BytesIO(payload))
    try:
        frame_type, quality = c.read(2, "frame type")
        if frame_type not in FRAME_TYPE_CHARS:
            raise BitstreamError(f"unknown frame type {frame_type}")
        n = c.varint("section count")
        if n > MAX_SECTIONS:
            raise BitstreamError(f"{n} sections (max {MAX_SECTIONS})")
        sections = [c.read(c.varint("section length"), "section") for _ in range(n)]
        if c.fp.read(1):
            raise BitstreamError("trailing bytes in frame payload")
    except BitstreamError as exc:
        raise BitstreamError(f"corrupt frame {index} at byte offset {offset}: {exc}") from None
    return FrameUnit(frame_type=frame_type, quality=quality, sections=sections)


class BitstreamReader:
    """Reads a ``.dvc`` stream unit by unit (memory does not grow with length).

    ``header`` is parsed on construction; iterate to get :class:`FrameUnit` s. The
    iteration ends only at a valid end unit whose count matches the header.
    """

    def __init__(self, fp: BinaryIO) -> None:
        self._c = _Cursor(fp)
        magic = self._c.fp.read(len(MAGIC))
        self._c.pos = len(magic)
        if magic != MAGIC:
            raise BitstreamError("not a .dvc file: bad magic bytes at byte offset 0")
        version = self._c.read(1, "format version")[0]
        if version != VERSION:
            raise BitstreamError(f"unsupported .dvc format version {version} (this reader knows {VERSION})")
        offset = self._c.pos
        length = self._c.varint("sequence header length")
        if length > 4096:
            raise BitstreamError(f"corrupt sequence header length {length} at byte offset {offset}")
        payload = self._c.read(length, "sequence header")
        if self._c.read(4, "sequence header checksum") != _crc(payload):
            raise BitstreamError(f"sequence header checksum mismatch at byte offset {offset}")
        self.header = _parse_header(payload, offset)

    def __iter__(self) -> Iterator[FrameUnit]:
        c = self._c
        index = 0
        while True:
            offset = c.pos
            kind = c.read(1, f"unit type (frame {index})")[0]
            if kind == UNIT_END:
                (count,) = struct.unpack("<I", c.read(4, "end-of-stream frame count"))
                if count != index or count != self.header.frame_count:
                    raise BitstreamError(
                        f"frame count mismatch at byte offset {offset}: header says "
                        f"{self.header.frame_count}, end unit says {count}, read {index}"
                    )
                if c.fp.read(1):
                    raise BitstreamError(f"unexpected bytes after end of stream at byte offset {c.pos}")
                return
            if kind != UNIT_FRAME:
                raise BitstreamError(f"corrupt unit type 0x{kind:02x} at byte offset {offset} (frame {index})")
            if index >= self.header.frame_count:
                raise BitstreamError(f"more frames than the header's {self.header.frame_count} at byte offset {offset}")
            length = c.varint(f"frame {index} length")
            if length > MAX_UNIT_BYTES:
                raise BitstreamError(f"corrupt frame {index} length {length} at byte offset {offset}")
            payload = c.read(length, f"frame {index} payload")
            if c.read(4, f"frame {index} checksum") != _crc(payload):
                raise BitstreamError(f"checksum mismatch in frame {index} at byte offset {offset}")
            yield _parse_frame(payload, index, offset)
            index += 1

"""The ``.dvc`` bitstream: symmetric writer and reader, versioned, checksummed.

Layout (all multi-byte fixed-width integers little-endian)::

    file      := MAGIC(6) VERSION(u8) seq_unit frame_unit* end_unit
    seq_unit  := len(varint) payload crc32(u32 of payload)
      payload := width(varint) height(varint) frame_count(u32; v2: 0xFFFFFFFF = open-ended)
                 fps_num(varint) fps_den(varint) bit_depth(u8) chroma(u8: 0 = 4:2:0)
                 matrix(u8: 1 = BT.709) range(u8: 0 = limited)
                 intra_period(zigzag varint; -1 = first frame only)
                 quality(u8) model(str) weights_sha256(32 bytes)
    frame_unit := UNIT_FRAME(u8) len(varint) payload crc32(u32 of payload)
      v1 payload := type(u8: 0 = I, 1 = P) quality(u8) n(varint) (len(varint) bytes){n}
      v2 payload := type(u8) quality(u8) modes(u8) n(varint) (len(varint) bytes){n}
                    symbols_hash(8 bytes) recon_hash(16 bytes)
    end_unit  := UNIT_END(u8) frame_count(u32)
    str       := len(varint) utf-8 bytes

Version 2 adds, per frame:

- ``modes`` (P-frames only; 0 for I-frames): bit 0 ``MODE_ZERO_MOTION`` (no motion
  sections: the flow is zero), bit 1 ``MODE_NO_MC`` (the prediction is the warped
  reference, without the MC net), bit 2 ``MODE_SKIP`` (a skip-mask section precedes
  the residual sections). Other bits must be 0. The encoder chooses them by
  rate-distortion cost (``dvclic.rdo``); the decoder follows them.
- ``symbols_hash``: BLAKE2b-64 of every entropy-decoded integer symbol of the frame,
  in coding order, and (type, quality, modes), chained with the previous frame's
  hash (the first frame's with the header's coding fields: ``dvclic.sequence``).
  The decoder recomputes it; a mismatch is an error, so a damaged or crafted
  payload, header edit or reordering cannot decode to a wrong video unnoticed.
- ``recon_hash``: BLAKE2b-128 of the encoder's reconstruction as written (the
  cropped YUV 4:2:0 planes at the source bit depth), like HEVC's decoded picture
  hash: the decoder reports whether its output is bit-exact.
- entropy-coded sections are coded with the memory-safe coder
  (``image_codecs.entropy.coders.SafeAns``); version 1 used compressai's rANS.

``frame_count`` in a version-2 header is the count when the writer knew it up
front, else open-ended (0xFFFFFFFF); the writer never seeks, so a stream on a
pipe and in a file are the same bytes, and the end unit confirms the count.
Version 1 patched the count into the header of a seekable file.
Every read error raises :class:`~dvclic.errors.BitstreamError` naming what is
wrong and the byte offset.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO, Iterator

from .errors import BitstreamError

MAGIC = b"DVCLIC"
VERSION = 2
READABLE_VERSIONS = (1, 2)
UNIT_FRAME = 0xF1
UNIT_END = 0xFE
FRAME_I = 0
FRAME_P = 1
FRAME_TYPE_CHARS = {FRAME_I: "I", FRAME_P: "P"}
MATRIX_BT709 = 1
RANGE_LIMITED = 0
CHROMA_420 = 0

MODE_ZERO_MOTION = 1
MODE_NO_MC = 2
MODE_SKIP = 4
MODE_BITS = MODE_ZERO_MOTION | MODE_NO_MC | MODE_SKIP
SYMBOLS_HASH_BYTES = 8
RECON_HASH_BYTES = 16

MAX_DIMENSION = 16384
#: Default limit on width * height, protecting memory (4096 x 2304 covers DCI 4K and UHD);
#: readers take ``max_pixels`` to raise it.
DEFAULT_MAX_PIXELS = 4096 * 2304
MAX_SECTIONS = 64
MAX_UNIT_BYTES = 1 << 30
BIT_DEPTHS = (8, 10)
MAX_FPS = 1000
MIN_FPS = Fraction(1, 3600)  # one frame an hour
MAX_FPS_TERM = (1 << 31) - 1  # numerator and denominator fit an int32 (container time bases)
OPEN_ENDED = 0xFFFFFFFF


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
    """One coded frame: its type (FRAME_I / FRAME_P), quality, payload sections and,
    from version 2, its coding modes and hashes (empty in version-1 units).

    ``offset`` is where the unit starts in the file and ``section_offsets`` where each
    section's bytes start (set by the reader, for messages).
    """

    frame_type: int
    quality: int
    sections: list[bytes]
    modes: int = 0
    symbols_hash: bytes = b""
    recon_hash: bytes = b""
    offset: int = field(default=0, compare=False)
    section_offsets: tuple[int, ...] = field(default=(), compare=False)

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
    problems = _header_problems(h.width, h.height, h.fps.numerator, h.fps.denominator, h.bit_depth,
                                h.chroma, h.matrix, h.colour_range, h.intra_period, max_pixels=None)
    if problems:
        raise ValueError(f"cannot write this sequence header: {'; '.join(problems)}")
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
    """Streams a sequence: header, frames, end unit. Writes ``version`` (default: the
    current one; 1 only for compatibility tests).

    Version 2 never seeks, so a file and a pipe get the same bytes: the header holds the
    header's ``frame_count`` when the caller knows it up front (then exactly that many frames
    must be written), else (``frame_count`` 0) the open-ended count, and the end unit states
    the count. Version 1 needs a seekable file: its frame count is patched at :meth:`close`."""

    def __init__(self, fp: BinaryIO, header: SequenceHeader, *, version: int = VERSION) -> None:
        if version not in READABLE_VERSIONS:
            raise ValueError(f"cannot write format version {version}")
        self._fp = fp
        self.version = version
        self._seekable = version == 1
        if version == 1 and not _seekable(fp):
            raise ValueError("format version 1 needs a seekable output")
        if version >= 2 and header.frame_count == 0:
            header = SequenceHeader(**{**header.__dict__, "frame_count": OPEN_ENDED})
        self._header = header
        self._frames = 0
        self._fp.write(MAGIC + bytes([version]))
        payload = _header_payload(self._header)
        self._fp.write(_varint(len(payload)))
        self._header_pos = self._fp.tell() if self._seekable else 0
        self._fp.write(payload + _crc(payload))

    def write_frame(self, unit: FrameUnit) -> int:
        """Append one frame unit; returns the bytes written."""
        if unit.frame_type not in FRAME_TYPE_CHARS:
            raise ValueError(f"unknown frame type {unit.frame_type}")
        if len(unit.sections) > MAX_SECTIONS:
            raise ValueError("too many sections")
        if self.version == 1:
            parts = [struct.pack("<BB", unit.frame_type, unit.quality)]
        else:
            if unit.modes & ~MODE_BITS or (unit.frame_type == FRAME_I and unit.modes):
                raise ValueError(f"invalid modes {unit.modes:#x} for frame type {unit.frame_type}")
            if len(unit.symbols_hash) != SYMBOLS_HASH_BYTES or len(unit.recon_hash) != RECON_HASH_BYTES:
                raise ValueError("version-2 frame units need both hashes")
            parts = [struct.pack("<BBB", unit.frame_type, unit.quality, unit.modes)]
        parts.append(_varint(len(unit.sections)))
        for section in unit.sections:
            parts += [_varint(len(section)), section]
        if self.version >= 2:
            parts += [unit.symbols_hash, unit.recon_hash]
        payload = b"".join(parts)
        data = bytes([UNIT_FRAME]) + _varint(len(payload)) + payload + _crc(payload)
        self._fp.write(data)
        self._frames += 1
        return len(data)

    def close(self) -> None:
        """Write the end unit (and in version 1 patch the frame count into the header)."""
        announced = self._header.frame_count
        if not self._seekable and announced != OPEN_ENDED and announced != self._frames:
            raise ValueError(f"the header announced {announced} frames, {self._frames} were written")
        self._fp.write(bytes([UNIT_END]) + struct.pack("<I", self._frames))
        if not self._seekable:
            self._fp.flush()
            return
        end = self._fp.tell()
        patched = SequenceHeader(**{**self._header.__dict__, "frame_count": self._frames})
        payload = _header_payload(patched)
        self._fp.seek(self._header_pos)
        self._fp.write(payload + _crc(payload))
        self._fp.seek(end)
        self._header = patched


def _seekable(fp: BinaryIO) -> bool:
    try:
        return bool(fp.seekable())
    except (AttributeError, ValueError, OSError):
        return False


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


def valid_intra_period(period: int) -> bool:
    """The format's intra-period rule: an I-frame every ``period >= 1`` frames, or ``-1`` (first only)."""
    return period >= 1 or period == -1


def _header_problems(width: int, height: int, num: int, den: int, bit_depth: int, chroma: int, matrix: int,
                     rng: int, intra_period: int, *, max_pixels: int | None) -> list[str]:
    """What is wrong with these sequence-header values (empty: nothing)."""
    problems = []
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        problems.append(f"frame size {width}x{height} outside 1..{MAX_DIMENSION}")
    elif max_pixels is not None and width * height > max_pixels:
        problems.append(f"frame size {width}x{height} is over the limit of {max_pixels} pixels "
                        "(raise it with --max-pixels if this is intended)")
    if not (0 < num <= MAX_FPS_TERM and 0 < den <= MAX_FPS_TERM) or not MIN_FPS <= Fraction(num, den) <= MAX_FPS:
        problems.append(f"frame rate {num}/{den} outside {MIN_FPS}..{MAX_FPS} fps")
    if bit_depth not in BIT_DEPTHS:
        problems.append(f"bit depth {bit_depth} (8 or 10)")
    if chroma != CHROMA_420 or matrix != MATRIX_BT709 or rng != RANGE_LIMITED:
        problems.append(f"pixel format (chroma {chroma}, matrix {matrix}, range {rng})")
    if not valid_intra_period(intra_period):
        problems.append(f"intra period {intra_period}")
    return problems


def _parse_header(payload: bytes, offset: int, max_pixels: int) -> SequenceHeader:
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
    problems = _header_problems(width, height, num, den, bit_depth, chroma, matrix, rng, intra_period,
                                max_pixels=max_pixels)
    if c.fp.read(1):
        problems.append("trailing bytes")
    if problems:
        raise BitstreamError(f"invalid sequence header at byte offset {offset}: {'; '.join(problems)}")
    return SequenceHeader(
        width=width, height=height, frame_count=frame_count, fps=Fraction(num, den), bit_depth=bit_depth,
        intra_period=intra_period, quality=quality, model=model, weights_sha256=sha,
        matrix=matrix, colour_range=rng, chroma=chroma,
    )


def _parse_frame(payload: bytes, index: int, offset: int, version: int, payload_offset: int = 0) -> FrameUnit:
    c = _Cursor(io.BytesIO(payload))
    modes, symbols_hash, recon_hash = 0, b"", b""
    try:
        frame_type, quality = c.read(2, "frame type")
        if frame_type not in FRAME_TYPE_CHARS:
            raise BitstreamError(f"unknown frame type {frame_type}")
        if version >= 2:
            modes = c.read(1, "modes")[0]
            if modes & ~MODE_BITS or (frame_type == FRAME_I and modes):
                raise BitstreamError(f"invalid modes {modes:#04x} for a {FRAME_TYPE_CHARS[frame_type]}-frame")
        n = c.varint("section count")
        if n > MAX_SECTIONS:
            raise BitstreamError(f"{n} sections (max {MAX_SECTIONS})")
        sections, starts = [], []
        for _ in range(n):
            length = c.varint("section length")
            starts.append(payload_offset + c.pos)
            sections.append(c.read(length, "section"))
        if version >= 2:
            symbols_hash = c.read(SYMBOLS_HASH_BYTES, "symbols hash")
            recon_hash = c.read(RECON_HASH_BYTES, "reconstruction hash")
        if c.fp.read(1):
            raise BitstreamError("trailing bytes in frame payload")
    except BitstreamError as exc:
        raise BitstreamError(f"corrupt frame {index} at byte offset {offset}: {exc}") from None
    return FrameUnit(frame_type=frame_type, quality=quality, sections=sections, modes=modes,
                     symbols_hash=symbols_hash, recon_hash=recon_hash, offset=offset,
                     section_offsets=tuple(starts))


class BitstreamReader:
    """Reads a ``.dvc`` stream unit by unit (memory does not grow with length).

    ``header`` is parsed on construction; iterate to get :class:`FrameUnit` s. The
    iteration ends only at a valid end unit whose count matches the header (or,
    for an open-ended header, the frames read). ``max_pixels`` limits width *
    height (memory protection). Frame types are checked against the intra period:
    a frame at an intra position must be an I-frame (the encoder may code any
    other frame as an I-frame too, when that costs less).
    """

    def __init__(self, fp: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self._c = _Cursor(fp)
        magic = self._c.fp.read(len(MAGIC))
        self._c.pos = len(magic)
        if magic != MAGIC:
            raise BitstreamError("not a .dvc file: bad magic bytes at byte offset 0")
        version = self._c.read(1, "format version")[0]
        if version not in READABLE_VERSIONS:
            raise BitstreamError(f"unsupported .dvc format version {version} at byte offset 6 "
                                 f"(this reader knows {', '.join(map(str, READABLE_VERSIONS))})")
        self.version = version
        offset = self._c.pos
        self.header_offset = offset
        length = self._c.varint("sequence header length")
        if length > 4096:
            raise BitstreamError(f"corrupt sequence header length {length} at byte offset {offset}")
        payload = self._c.read(length, "sequence header")
        if self._c.read(4, "sequence header checksum") != _crc(payload):
            raise BitstreamError(f"sequence header checksum mismatch at byte offset {offset}")
        self.header = _parse_header(payload, offset, max_pixels)
        if self.header.frame_count == OPEN_ENDED and version < 2:
            raise BitstreamError(f"invalid sequence header at byte offset {offset}: open-ended frame count in v1")

    @property
    def open_ended(self) -> bool:
        return self.header.frame_count == OPEN_ENDED

    def check_quality(self, num_qualities: int) -> None:
        """The header's quality must be one of the model's ``num_qualities``."""
        if not 0 <= self.header.quality < num_qualities:
            raise BitstreamError(f"invalid sequence header at byte offset {self.header_offset}: quality "
                                 f"{self.header.quality} outside the model's 0..{num_qualities - 1}")

    def __iter__(self) -> Iterator[FrameUnit]:
        c = self._c
        h = self.header
        index = 0
        while True:
            offset = c.pos
            kind = c.read(1, f"unit type (frame {index})")[0]
            if kind == UNIT_END:
                (count,) = struct.unpack("<I", c.read(4, "end-of-stream frame count"))
                if count != index or (count != h.frame_count and not self.open_ended):
                    shown = "open-ended" if self.open_ended else h.frame_count
                    raise BitstreamError(
                        f"frame count mismatch at byte offset {offset}: header says "
                        f"{shown}, end unit says {count}, read {index}"
                    )
                if c.fp.read(1):
                    raise BitstreamError(f"unexpected bytes after end of stream at byte offset {c.pos}")
                return
            if kind != UNIT_FRAME:
                raise BitstreamError(f"corrupt unit type 0x{kind:02x} at byte offset {offset} (frame {index})")
            if index >= (OPEN_ENDED - 1 if self.open_ended else h.frame_count):
                raise BitstreamError(f"more frames than the header's {h.frame_count} at byte offset {offset}")
            length = c.varint(f"frame {index} length")
            if length > MAX_UNIT_BYTES:
                raise BitstreamError(f"corrupt frame {index} length {length} at byte offset {offset}")
            payload_offset = c.pos
            payload = c.read(length, f"frame {index} payload")
            if c.read(4, f"frame {index} checksum") != _crc(payload):
                raise BitstreamError(f"checksum mismatch in frame {index} at byte offset {offset}")
            unit = _parse_frame(payload, index, offset, self.version, payload_offset)
            if is_intra_position(index, h.intra_period) and unit.frame_type != FRAME_I:
                raise BitstreamError(f"frame {index} at byte offset {offset} is a "
                                     f"{FRAME_TYPE_CHARS[unit.frame_type]}-frame, but intra period "
                                     f"{h.intra_period} makes it an I-frame")
            yield unit
            index += 1


def is_intra_position(index: int, intra_period: int) -> bool:
    """Frame ``index`` must be an I-frame (every ``intra_period`` frames; -1: only the first)."""
    return index == 0 if intra_period == -1 else index % intra_period == 0

"""Hostile-stream fuzzing of the ``.dvc`` decoder.

The decoder's contract (``tools/decode.py IN.dvc -o OUT.y4m``): on ANY input it
either decodes correctly or prints one line ``error: ...`` and exits 2 -- no
traceback, no crash, no hang, and no output or temporary file left behind. This
module checks that contract against *hostile* streams: variants of a valid stream
whose checksums (the header CRC and every frame unit's CRC) are recomputed after
the edit, so only the format's semantic checks and the version-2 symbol hashes
stand between them and the output.

Parts:

- :class:`DvcStream` / :class:`HeaderFields`: a byte-level model of a file (magic,
  version, header payload and its fields, frame-unit payloads, end unit, trailing
  bytes) that rebuilds the file with recomputed CRCs, on the primitives of
  :mod:`dvclic.bitstream`; :func:`fix_crcs` recomputes the CRCs of raw bytes
  wherever the framing still parses.
- :func:`hostile_variants`: edge values of every header field, every frame-unit
  byte and section edit, frame drops/duplicates/reorders, end-unit edits and
  re-encodings that change nothing; :func:`random_case`: a seeded random
  mutator, deterministic for a given (stream, seed, index).
- :func:`run_case` with a decoder: :class:`SubprocessDecoder` (the real CLI, one
  interpreter per case: seconds of imports each) or :class:`ForkDecoder` (the CLI
  entry point ``decode_main`` -> ``api.decode_file`` in a forked child of a parent
  that imported torch and loaded the weights once: the fork, ~0.07 s, plus the
  decoding done before the case is refused). A child's crash or hang is caught
  either way. Both decode single-threaded (see :class:`ForkDecoder`).

Outcomes (:data:`OUTCOMES`): ``error`` (exit 2, exactly one stderr line
``error: ...``, nothing left in the folder), ``decoded`` (exit 0, the output is a
correct decode), ``inexact`` (exit 0, the output differs from the correct decode,
the decoder's JSON summary says ``"exact": false`` -- its reconstruction hashes
caught it -- and the same case under ``--strict`` is an ``error``; a failure too:
the chained symbol hashes must refuse every hostile edit, so a reconstruction
mismatch may only come from a decoding environment that differs from the
encoder's, which the tests rule out), and the other failures (:data:`FAILURES`):
``wrong_video`` (exit 0 and any other output),
``leftover`` (files left behind), ``traceback`` (an exit status other than 0/2,
``Traceback`` in stderr, more than one stderr line, or stderr on success),
``crash`` (killed by a signal), ``hang`` (over the timeout).

What "correct" means -- every non-error decode equals the true decode:

- The *true decode* is the decoder's output for the unmutated stream (in the
  tests it must also be bit-exact: ``"exact": true``).
- A case carries ``expect``, the true-decode frame indices a correct decode
  reproduces, in order. For almost every mutation (the random ones included) it
  is all of them: a decode must output exactly the true frames, same count, same
  width/height/pixel format, or refuse the stream. So a re-encoding that changes
  nothing (a non-canonical varint, an open-ended frame count, an intra period the
  frame types still satisfy, a recomputed CRC, a flipped reconstruction hash)
  must decode to the true video -- refusing it is allowed too.
- Only an edit that turns the stream into another stream an encoder could have
  written gets a different ``expect``: dropping, duplicating or reordering whole
  frame units with both frame counts fixed. Frame ``k`` of such a stream is
  correct as true frame ``j`` when its unit is unit ``j`` and either it is an
  I-frame or frame ``k - 1`` is correct as true frame ``j - 1`` (a P-frame is
  only right on the reference it was coded against). When some frame has no such
  ``j``, ``expect`` is ``None``: no decode is correct, the stream must be refused
  (or caught as ``inexact``).
- The frame rate is metadata no hash covers: the output's ``F`` tag is compared
  with the case's own header (when it parses), not the original's.
"""

from __future__ import annotations

import faulthandler
import hashlib
import io
import itertools
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from .bitstream import (FRAME_I, FRAME_P, MAGIC, MAX_SECTIONS, MAX_UNIT_BYTES, MODE_BITS, OPEN_ENDED, RECON_HASH_BYTES,
                        SYMBOLS_HASH_BYTES, UNIT_END, UNIT_FRAME, BitstreamReader, FrameUnit, SequenceHeader, _crc,
                        _Cursor, _parse_frame, _parse_header, _varint, _zigzag)
from .errors import BitstreamError, InputError

#: Every outcome :func:`run_case` reports.
OUTCOMES = ("error", "decoded", "inexact", "wrong_video", "leftover", "traceback", "crash", "hang")
#: The outcomes that break the decoder's contract.
FAILURES = ("inexact", "wrong_video", "leftover", "traceback", "crash", "hang")

REPO = Path(__file__).resolve().parents[1]
DECODE_TOOL = REPO / "tools" / "decode.py"
SAMPLE = Path(__file__).resolve().parent / "samples" / "CiscoVT2people_320x192_12.mp4"
#: Address-space limit of a decoding child (a hostile size must not take the machine's memory).
DEFAULT_MEMORY_LIMIT = 8 << 30
_NO_PIXEL_LIMIT = 1 << 62
CASE_NAME, OUTPUT_NAME = "case.dvc", "out.y4m"


# =============================================================================== byte-level model
@dataclass(frozen=True)
class HeaderFields:
    """The sequence-header payload's fields as raw values (no range checks), ``model`` as bytes.

    :meth:`encode` writes them in :mod:`dvclic.bitstream`'s layout; ``raw`` replaces the
    encoding of named fields with given bytes (a non-canonical varint, a 31-byte hash).
    """

    width: int
    height: int
    frame_count: int  # u32
    fps_num: int
    fps_den: int
    bit_depth: int  # u8, like chroma, matrix, colour_range and quality
    chroma: int
    matrix: int
    colour_range: int
    intra_period: int  # any int (zigzag varint)
    quality: int
    model: bytes
    weights_sha256: bytes

    @classmethod
    def from_header(cls, h: SequenceHeader) -> HeaderFields:
        return cls(width=h.width, height=h.height, frame_count=h.frame_count, fps_num=h.fps.numerator,
                   fps_den=h.fps.denominator, bit_depth=h.bit_depth, chroma=h.chroma, matrix=h.matrix,
                   colour_range=h.colour_range, intra_period=h.intra_period, quality=h.quality,
                   model=h.model.encode("utf-8"), weights_sha256=h.weights_sha256)

    def encode(self, **raw: bytes) -> bytes:
        parts = {
            "width": _varint(self.width),
            "height": _varint(self.height),
            "frame_count": struct.pack("<I", self.frame_count),
            "fps_num": _varint(self.fps_num),
            "fps_den": _varint(self.fps_den),
            "bit_depth": bytes([self.bit_depth]),
            "chroma": bytes([self.chroma]),
            "matrix": bytes([self.matrix]),
            "colour_range": bytes([self.colour_range]),
            "intra_period": _varint(_zigzag(self.intra_period)),
            "quality": bytes([self.quality]),
            "model": _varint(len(self.model)) + self.model,
            "weights_sha256": self.weights_sha256,
        }
        unknown = set(raw) - set(parts)
        if unknown:
            raise ValueError(f"unknown header fields {sorted(unknown)}")
        return b"".join(raw.get(name, data) for name, data in parts.items())


def frame_payload(unit: FrameUnit, version: int, *, section_count: int | None = None,
                  section_lengths: dict[int, bytes] | None = None) -> bytes:
    """A frame unit's payload in ``version``'s layout, values unchecked (``section_count``
    overrides the count written before the sections; ``section_lengths`` the encoding of
    the given sections' lengths)."""
    lengths = section_lengths or {}
    parts = [bytes([unit.frame_type, unit.quality]) + (bytes([unit.modes]) if version >= 2 else b"")]
    parts.append(_varint(len(unit.sections) if section_count is None else section_count))
    for j, section in enumerate(unit.sections):
        parts += [lengths.get(j, _varint(len(section))), section]
    if version >= 2:
        parts += [unit.symbols_hash, unit.recon_hash]
    return b"".join(parts)


def noncanonical_varint(value: int, extra: int = 1) -> bytes:
    """``value`` as a varint with ``extra`` redundant zero groups (same value, longer)."""
    data = _varint(value)
    return data[:-1] + bytes([data[-1] | 0x80]) + b"\x80" * (extra - 1) + b"\x00"


@dataclass(frozen=True)
class DvcStream:
    """A ``.dvc`` file as its units: ``header`` and ``frames`` are unit payloads, CRCs are
    recomputed by :meth:`to_bytes` (``end_count`` None: no end unit)."""

    version: int
    header: bytes
    frames: tuple[bytes, ...]
    end_count: int | None
    magic: bytes = MAGIC
    trailing: bytes = b""

    @classmethod
    def parse(cls, data: bytes, *, check_crc: bool = True) -> DvcStream:
        """Split ``data`` into units (framing only; payloads are not interpreted).

        Raises :class:`BitstreamError` on a truncated unit, an unknown unit type or (with
        ``check_crc``) a checksum mismatch. A file without an end unit has ``end_count`` None.
        """
        c = _Cursor(io.BytesIO(data))
        magic = c.read(len(MAGIC), "magic")
        version = c.read(1, "format version")[0]
        header = c.read(c.varint("sequence header length"), "sequence header")
        if c.read(4, "sequence header checksum") != _crc(header) and check_crc:
            raise BitstreamError("sequence header checksum mismatch")
        frames: list[bytes] = []
        while True:
            kind = c.fp.read(1)
            c.pos += len(kind)
            if not kind:
                return cls(version, header, tuple(frames), None, magic)
            if kind[0] == UNIT_END:
                (count,) = struct.unpack("<I", c.read(4, "end-of-stream frame count"))
                return cls(version, header, tuple(frames), count, magic, c.fp.read())
            if kind[0] != UNIT_FRAME:
                raise BitstreamError(f"unit type 0x{kind[0]:02x} at byte offset {c.pos - 1}")
            payload = c.read(c.varint("frame length"), "frame payload")
            if c.read(4, "frame checksum") != _crc(payload) and check_crc:
                raise BitstreamError(f"checksum mismatch in frame {len(frames)}")
            frames.append(payload)

    def segments(self) -> list[tuple[str, bytes]]:
        """The file as labelled pieces (``magic``, ``header.crc``, ``frame1.length``, ``end.count``...)
        whose concatenation is :meth:`to_bytes`."""
        out = [("magic", self.magic), ("version", bytes([self.version])),
               ("header.length", _varint(len(self.header))), ("header", self.header), ("header.crc", _crc(self.header))]
        for i, payload in enumerate(self.frames):
            out += [(f"frame{i}.kind", bytes([UNIT_FRAME])), (f"frame{i}.length", _varint(len(payload))),
                    (f"frame{i}", payload), (f"frame{i}.crc", _crc(payload))]
        if self.end_count is not None:
            out += [("end.kind", bytes([UNIT_END])), ("end.count", struct.pack("<I", self.end_count))]
        return out + [("trailing", self.trailing)]

    def to_bytes(self, **raw: bytes) -> bytes:
        """The file, CRCs recomputed; ``raw`` replaces labelled segments verbatim (``frame0.kind=b"\\0"``;
        dots as ``__``: ``frame0__kind``), which no CRC then follows."""
        raw = {k.replace("__", "."): v for k, v in raw.items()}
        segments = self.segments()
        unknown = set(raw) - {label for label, _ in segments}
        if unknown:
            raise ValueError(f"unknown segments {sorted(unknown)}")
        return b"".join(raw.get(label, data) for label, data in segments)

    def fields(self) -> HeaderFields:
        """The header's fields (raises :class:`BitstreamError` when they are not valid ones)."""
        return HeaderFields.from_header(_parse_header(self.header, len(MAGIC) + 1, _NO_PIXEL_LIMIT))

    def unit(self, index: int) -> FrameUnit:
        """Frame unit ``index`` (raises :class:`BitstreamError` when its payload is invalid)."""
        return _parse_frame(self.frames[index], index, 0, self.version)

    def with_fields(self, fields: HeaderFields, **raw: bytes) -> DvcStream:
        return replace(self, header=fields.encode(**raw))

    def with_frames(self, frames: Iterable[bytes], *, fix_counts: bool) -> DvcStream:
        """Other frame payloads; ``fix_counts`` sets the header's (unless open-ended) and the end
        unit's frame counts to the new number of frames."""
        frames = tuple(frames)
        if not fix_counts:
            return replace(self, frames=frames)
        f = self.fields()
        count = f.frame_count if f.frame_count == OPEN_ENDED else len(frames)
        return replace(self.with_fields(replace(f, frame_count=count)), frames=frames, end_count=len(frames))


def fix_crcs(data: bytes) -> bytes:
    """``data`` with the CRC of every unit the framing still delimits recomputed (best effort:
    stops at the first unit that does not parse; the rest is left as it is)."""
    out = bytearray(data)
    c = _Cursor(io.BytesIO(data))

    def fix(length: int) -> bool:
        """Recompute the CRC after the ``length``-byte payload at the cursor; False past the end."""
        start, end = c.pos, c.pos + length + 4
        if end > len(out):
            return False
        out[end - 4:end] = _crc(bytes(out[start:end - 4]))
        c.fp.seek(end)
        c.pos = end
        return True

    try:
        c.read(len(MAGIC) + 1, "magic and version")
        if fix(c.varint("header length")):
            while c.pos < len(out) and out[c.pos] == UNIT_FRAME:
                c.read(1, "unit type")
                if not fix(c.varint("frame length")):
                    break
    except BitstreamError:
        pass
    return bytes(out)


# =============================================================================== cases
@dataclass(frozen=True)
class Case:
    """One input for the decoder: ``expect`` lists the true-decode frames a correct decode
    reproduces (None: no decode is correct; see the module docstring)."""

    name: str
    data: bytes
    expect: tuple[int, ...] | None


def expected_order(order: Sequence[int], frame_types: Sequence[int]) -> tuple[int, ...] | None:
    """The expectation of a stream made of the original units ``order`` (indices into the
    original's ``frame_types``): ``tuple(order)`` when every frame is an I-frame or a P-frame
    on the reference it was coded against, else None."""
    for k, j in enumerate(order):
        if frame_types[j] != FRAME_I and (k == 0 or order[k - 1] != j - 1):
            return None
    return tuple(order)


def _byte_values(original: int, exhaustive: bool, also: Iterable[int] = ()) -> list[int]:
    values = range(256) if exhaustive else {0, 1, 2, 3, 4, 7, 8, 15, 16, 127, 128, 254, 255,
                                             (original - 1) % 256, (original + 1) % 256, *also}
    return sorted(v for v in values if v != original)


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _random_bytes(name: str, n: int) -> bytes:
    return random.Random(name).randbytes(n)


def hostile_variants(data: bytes, *, exhaustive: bool = True) -> Iterator[Case]:
    """Checksum-valid edits of the valid stream ``data``, named ``part.what=value``.

    ``exhaustive`` tries every value of each frame's type, quality and modes bytes;
    otherwise their edge values. Deterministic: the same ``data`` gives the same cases.
    Edits that leave the file as it was (swapping equal sections) are skipped.
    """
    return (case for case in _variants(data, exhaustive) if case.data != data)


def _variants(data: bytes, exhaustive: bool) -> Iterator[Case]:
    s = DvcStream.parse(data)
    f = s.fields()
    units = [s.unit(i) for i in range(len(s.frames))]
    n = len(units)
    types = [u.frame_type for u in units]
    every = tuple(range(n))

    def case(name: str, stream: DvcStream | bytes, expect: tuple[int, ...] | None = every) -> Case:
        return Case(name, stream if isinstance(stream, bytes) else stream.to_bytes(), expect)

    def header(name: str, **changes: object) -> Case:
        return case(f"header.{name}", s.with_fields(replace(f, **changes)))

    # -- file framing
    for magic in (b"DVCLIB", MAGIC.lower(), b"\0" * len(MAGIC), MAGIC[:-1]):
        yield case(f"magic={magic!r}", s.to_bytes(magic=magic))
    yield case("file=empty", b"")
    for version in (0, 1, 3, 255):
        yield case(f"version={version}", s.to_bytes(version=bytes([version])))
    v1_frames = [frame_payload(u, 1) for u in units]
    yield case("version=1,frames-rewritten-as-v1", replace(s, version=1, frames=tuple(v1_frames)))
    yield case("header.length=noncanonical", s.to_bytes(header__length=noncanonical_varint(len(s.header))))
    for delta in (-1, 1, 4096):
        yield case(f"header.length{delta:+d}", s.to_bytes(header__length=_varint(len(s.header) + delta)))
    yield case("header.crc=flipped", s.to_bytes(header__crc=_flip(_crc(s.header), 0)))

    # -- header fields
    for name in ("width", "height"):
        v = getattr(f, name)
        values = {0, 1, 2, 15, 16, 17, 63, 64, 65, 16383, 16384, 16385, v - 64, v - 16, v - 1, v + 1, v + 16,
                  v + 64, 2 * v, 1 << 31, 1 << 32, (1 << 63) - 1, 1 << 64, 1 << 70}
        for value in sorted(x for x in values if x >= 0 and x != v):
            yield header(f"{name}={value}", **{name: value})
        yield case(f"header.{name}=noncanonical", s.with_fields(f, **{name: noncanonical_varint(v)}))
    yield header("size=16384x16384", width=16384, height=16384)
    yield header("size=swapped", width=f.height, height=f.width)
    for count in sorted({0, 1, n - 1, n + 1, 2 * n, OPEN_ENDED - 1, OPEN_ENDED} - {n}):
        yield header(f"frame_count={count}", frame_count=count)
        yield case(f"header.frame_count={count},end.count={count}",
                   replace(s.with_fields(replace(f, frame_count=count)), end_count=count))
    fps = [(0, 1), (1, 0), (0, 0), (1, 1), (1000, 1), (1001, 1), (1, 3600), (1, 3601), (30000, 1001),
           (2 * f.fps_num, 2 * f.fps_den), ((1 << 31) - 1, 1), (1 << 31, 1), ((1 << 63) - 1, 1),
           (1, (1 << 63) - 1), (1 << 70, 1)]
    for num, den in fps:
        if (num, den) != (f.fps_num, f.fps_den):
            yield header(f"fps={num}/{den}", fps_num=num, fps_den=den)
    for name, values in (("bit_depth", (0, 1, 7, 8, 9, 10, 12, 16, 255)), ("chroma", (0, 1, 2, 3, 255)),
                         ("matrix", (0, 1, 2, 5, 255)), ("colour_range", (0, 1, 2, 255))):
        for value in values:
            if value != getattr(f, name):
                yield header(f"{name}={value}", **{name: value})
    for period in sorted({-(1 << 62), -3, -2, -1, 0, 1, 2, 3, n - 1, n, n + 1, 1 << 31, 1 << 62, 1 << 64}
                         - {f.intra_period}):
        yield header(f"intra_period={period}", intra_period=period)
    for q in _byte_values(f.quality, exhaustive=False):
        yield header(f"quality={q}", quality=q)
    models = [b"", b"x" * 300, b"x" * 5000, b"\xff\xfe\x00", b"\xc3", f.model + b"\0", f.model.upper(),
              f.model[:-1], f.model + b"x"]
    for model in models:
        yield header(f"model={model[:24]!r}{'...' if len(model) > 24 else ''}({len(model)})", model=model)
    yield case("header.model.length=noncanonical",
               s.with_fields(f, model=noncanonical_varint(len(f.model)) + f.model))
    for where in (0, 31):
        yield header(f"weights_sha256=flipped@{where}", weights_sha256=_flip(f.weights_sha256, where))
    yield header("weights_sha256=zeros", weights_sha256=bytes(32))
    for length in (0, 31, 33):
        yield case(f"header.weights_sha256.length={length}",
                   s.with_fields(f, weights_sha256=(f.weights_sha256 * 2)[:length]))
    for extra in (b"\0", b"\xff" * 8):
        yield case(f"header+trailing{len(extra)}", replace(s, header=s.header + extra))
    for cut in sorted({1, 2, 8, 33, len(s.header) - 1}):
        if 0 < cut <= len(s.header):
            yield case(f"header-truncated{cut}", replace(s, header=s.header[:-cut]))

    # -- frame units: bytes, sections, hashes
    def frame_case(name: str, i: int, payload: bytes, expect: tuple[int, ...] | None = every) -> Case:
        return case(f"frame{i}.{name}", replace(s, frames=s.frames[:i] + (payload,) + s.frames[i + 1:]), expect)

    def edited(i: int, **changes: object) -> bytes:
        return frame_payload(replace(units[i], **changes), s.version)

    for i, u in enumerate(units):
        for name in ("frame_type", "quality", "modes"):
            also = range(MODE_BITS + 1) if name == "modes" else ()  # every valid combination
            for value in _byte_values(getattr(u, name), exhaustive, also):
                yield frame_case(f"{name}={value}", i, edited(i, **{name: value}))
        yield frame_case("relabelled-" + ("P" if u.frame_type == FRAME_I else "I"), i,
                         edited(i, frame_type=FRAME_P if u.frame_type == FRAME_I else FRAME_I,
                                modes=0 if u.frame_type != FRAME_I else u.modes))
        k = len(u.sections)
        for count in sorted({0, k - 1, k + 1, MAX_SECTIONS, MAX_SECTIONS + 1, 1 << 40} - {k}):
            if count >= 0:
                payload = frame_payload(u, s.version, section_count=count)
                yield frame_case(f"section_count={count}", i, payload)
        for j, sec in enumerate(u.sections):
            def sec_case(name: str, new: bytes) -> Case:
                sections = u.sections[:j] + [new] + u.sections[j + 1:]
                return frame_case(f"section{j}.{name}", i, edited(i, sections=sections))

            tag = f"{i}.{j}"
            yield sec_case("random-same-length", _random_bytes(tag + "same", len(sec)))
            for length in sorted({1, len(sec) // 2, len(sec) + 1, 2 * len(sec) + 1} - {len(sec)}):
                yield sec_case(f"random-length{length}", _random_bytes(f"{tag}len{length}", length))
            for cut in range(1, 9):
                if cut <= len(sec):
                    yield sec_case(f"truncated{cut}", sec[:-cut])
            for extra in (1, 2, 3, 4, 8, 16, 32, 64):
                yield sec_case(f"extended{extra}-zeros", sec + bytes(extra))
                yield sec_case(f"extended{extra}-random", sec + _random_bytes(f"{tag}ext{extra}", extra))
            yield sec_case("emptied", b"")
            for where in sorted({0, len(sec) // 2, len(sec) - 1}):
                if sec:
                    yield sec_case(f"flipped@{where}", _flip(sec, where, where % 8))
            yield frame_case(f"section{j}.duplicated", i, edited(i, sections=u.sections[:j + 1] + u.sections[j:]))
            yield frame_case(f"section{j}.removed", i, edited(i, sections=u.sections[:j] + u.sections[j + 1:]))
            for name, length in (("=noncanonical", noncanonical_varint(len(sec))), ("+1", _varint(len(sec) + 1)),
                                 ("-1", _varint(max(len(sec) - 1, 0))), ("=2**40", _varint(1 << 40))):
                yield frame_case(f"section{j}.length{name}", i, frame_payload(u, s.version, section_lengths={j: length}))
            for j2 in range(j + 1, k):
                swapped = list(u.sections)
                swapped[j], swapped[j2] = swapped[j2], swapped[j]
                yield frame_case(f"sections{j}<->{j2}", i, edited(i, sections=swapped))
        for i2 in range(i + 1, n):
            other = units[i2]
            for j in range(min(k, len(other.sections))):
                a, b = list(u.sections), list(other.sections)
                a[j], b[j] = b[j], a[j]
                frames = list(s.frames)
                frames[i], frames[i2] = edited(i, sections=a), frame_payload(replace(other, sections=b), s.version)
                yield case(f"frame{i}<->frame{i2}.section{j}", replace(s, frames=tuple(frames)))
            yield frame_case(f"sections-from-frame{i2}", i, edited(i, sections=list(other.sections)))
            yield frame_case(f"hashes-from-frame{i2}", i, edited(i, symbols_hash=other.symbols_hash,
                                                                 recon_hash=other.recon_hash))
        if s.version >= 2:
            for where in (0, SYMBOLS_HASH_BYTES - 1):
                yield frame_case(f"symbols_hash=flipped@{where}", i,
                                 edited(i, symbols_hash=_flip(u.symbols_hash, where, 7)))
            yield frame_case("symbols_hash=zeros", i, edited(i, symbols_hash=bytes(SYMBOLS_HASH_BYTES)))
            for where in (0, RECON_HASH_BYTES - 1):
                yield frame_case(f"recon_hash=flipped@{where}", i, edited(i, recon_hash=_flip(u.recon_hash, where)))
        yield frame_case("payload+trailing1", i, s.frames[i] + b"\0")
        for cut in (1, RECON_HASH_BYTES, RECON_HASH_BYTES + SYMBOLS_HASH_BYTES):
            yield frame_case(f"payload-truncated{cut}", i, s.frames[i][:-cut])
        yield frame_case("payload=empty", i, b"")
        for kind in sorted({0x00, UNIT_FRAME - 1, UNIT_FRAME + 1, UNIT_END, 0xFF} - {UNIT_FRAME}):
            yield case(f"frame{i}.kind=0x{kind:02x}", s.to_bytes(**{f"frame{i}__kind": bytes([kind])}))
        yield case(f"frame{i}.length=noncanonical",
                   s.to_bytes(**{f"frame{i}__length": noncanonical_varint(len(s.frames[i]))}))
        for length in (MAX_UNIT_BYTES, MAX_UNIT_BYTES + 1, (1 << 63) - 1):
            yield case(f"frame{i}.length={length}", s.to_bytes(**{f"frame{i}__length": _varint(length)}))
        yield case(f"frame{i}.crc=flipped", s.to_bytes(**{f"frame{i}__crc": _flip(_crc(s.frames[i]), 3)}))

    # -- whole frames: drop, duplicate, reorder (with and without fixing both counts)
    orders: dict[str, list[int]] = {}
    for i in range(n):
        orders[f"dropped{i}"] = [j for j in every if j != i]
        orders[f"duplicated{i}"] = sorted(list(every) + [i])
        orders[f"appended-copy-of-frame{i}"] = list(every) + [i]
        for i2 in range(i + 1, n):
            order = list(every)
            order[i], order[i2] = i2, i
            orders[f"swapped{i}<->{i2}"] = order
    orders["reversed"] = list(reversed(every))
    orders["rotated"] = list(every[1:]) + [0]
    orders["first-only"] = [0]
    orders["none"] = []
    for name, order in orders.items():
        frames = [s.frames[j] for j in order]
        yield case(f"frames.{name},counts-fixed", s.with_frames(frames, fix_counts=True),
                   expected_order(order, types))
        if len(order) != n:
            yield case(f"frames.{name}", s.with_frames(frames, fix_counts=False))
    open_ended = s.with_fields(replace(f, frame_count=OPEN_ENDED))
    yield case("header.open-ended", open_ended)
    yield case("header.counted", s.with_fields(replace(f, frame_count=n)))  # the count stated up front
    for i in range(n):
        order = list(range(n - i - 1))
        yield case(f"header.open-ended,frames.first{len(order)}", replace(
            open_ended, frames=tuple(s.frames[j] for j in order), end_count=len(order)),
            expected_order(order, types))

    # -- end unit and what follows
    for count in sorted({0, n - 1, n + 1, OPEN_ENDED} - {n}):
        yield case(f"end.count={count}", replace(s, end_count=count))
    yield case("end=missing", replace(s, end_count=None))
    for kind in sorted({0x00, UNIT_FRAME, UNIT_END - 1, 0xFF} - {UNIT_END}):
        yield case(f"end.kind=0x{kind:02x}", s.to_bytes(end__kind=bytes([kind])))
    for extra in (b"\0", b"\xff", bytes([UNIT_END]) + struct.pack("<I", n), bytes([UNIT_FRAME]) + s.frames[-1]):
        yield case(f"trailing={extra[:8]!r}({len(extra)})", replace(s, trailing=extra))
    total = len(data)
    boundaries, pos = set(), 0
    for _, piece in s.segments():
        boundaries.add(pos)
        boundaries.add(pos + len(piece) // 2)
        pos += len(piece)
    for cut in sorted(b for b in boundaries | {total - 1, total - 2, total - 4} if 0 < b < total):
        yield case(f"file-truncated-to{cut}", data[:cut])


def _mutate(rng: random.Random, data: bytes, pool: bytes, ops: int) -> tuple[bytes, list[str]]:
    """Apply ``ops`` random byte edits to ``data`` (splices copy from ``pool``)."""
    out, done = bytearray(data), []
    for _ in range(ops):
        op = rng.choice(("byte", "bit", "insert", "delete", "splice") if out else ("insert", "splice"))
        at = rng.randrange(len(out) + (1 if op in ("insert", "splice") else 0))
        if op == "byte":
            out[at] = rng.randrange(256)
        elif op == "bit":
            out[at] ^= 1 << rng.randrange(8)
        elif op == "insert":
            out[at:at] = rng.randbytes(rng.choice((1, 1, 2, 4, 16)))
        elif op == "delete":
            del out[at:at + rng.choice((1, 1, 2, 4, 16))]
        else:
            size = rng.randint(1, min(64, len(pool)))
            start = rng.randrange(len(pool) - size + 1)
            if rng.random() < 0.5:  # overwrite
                out[at:at + size] = pool[start:start + size]
            else:
                out[at:at] = pool[start:start + size]
        done.append(f"{op}@{at}")
    return bytes(out), done


def random_case(data: bytes, seed: int, index: int) -> Case:
    """A random mutant of the valid stream ``data``, a function of (``data``, ``seed``, ``index``).

    Mostly (70%) one to four byte edits inside one unit's payload -- a frame (a
    section in most cases) or the header -- rebuilt with recomputed CRCs; otherwise
    edits anywhere in the file, after which the CRCs are recomputed where the framing
    still parses (20%) or left as they are (10%).
    """
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    rng = random.Random(f"dvclic.fuzz/{digest}/{seed}/{index}")
    s = DvcStream.parse(data)
    ops = rng.choice((1, 1, 1, 2, 2, 3, 4))
    roll = rng.random()
    if roll < 0.7:
        target = rng.randrange(-1, len(s.frames)) if rng.random() < 0.9 else -1
        if target < 0:
            payload, done = _mutate(rng, s.header, data, ops)
            return Case(f"random.{seed}.{index}:header:{','.join(done)}", replace(s, header=payload).to_bytes(),
                        tuple(range(len(s.frames))))
        unit = s.unit(target)
        if unit.sections and rng.random() < 0.8:
            j = rng.randrange(len(unit.sections))
            new, done = _mutate(rng, unit.sections[j], data, ops)
            sections = unit.sections[:j] + [new] + unit.sections[j + 1:]
            payload, where = frame_payload(replace(unit, sections=sections), s.version), f"frame{target}.section{j}"
        else:
            payload, done = _mutate(rng, s.frames[target], data, ops)
            where = f"frame{target}"
        frames = s.frames[:target] + (payload,) + s.frames[target + 1:]
        return Case(f"random.{seed}.{index}:{where}:{','.join(done)}", replace(s, frames=frames).to_bytes(),
                    tuple(range(len(s.frames))))
    mutated, done = _mutate(rng, data, data, ops)
    fixed = roll < 0.9
    return Case(f"random.{seed}.{index}:file{'+crc' if fixed else ''}:{','.join(done)}",
                fix_crcs(mutated) if fixed else mutated, tuple(range(len(s.frames))))


def case_kind(name: str) -> str:
    """A case's kind: its name with every number replaced by ``#`` (``frame#.section#.truncated#``)."""
    return re.sub(r"\d+", "#", name)


def plan_cases(data: bytes, count: int, *, seed: int, random_share: float = 0.5,
               exhaustive: bool = True) -> list[Case]:
    """``count`` cases: a seeded sample of :func:`hostile_variants` and random mutants, about
    ``random_share`` of them random (more when the variants run out).

    The sample is stratified by :func:`case_kind`: one case of every kind (seeded choice)
    before a second of any, so even a small sample covers every kind of edit; the picked
    variants keep their generation order.
    """
    variants = list(hostile_variants(data, exhaustive=exhaustive))
    n_var = min(len(variants), count - round(count * random_share))
    rng = random.Random(seed)
    by_kind: dict[str, list[int]] = {}
    for i, case in enumerate(variants):
        by_kind.setdefault(case_kind(case.name), []).append(i)
    for members in by_kind.values():
        rng.shuffle(members)
    rounds = (members[r] for r in range(max(map(len, by_kind.values()), default=0))
              for members in by_kind.values() if r < len(members))
    picked = sorted(itertools.islice(rounds, n_var))
    return [variants[i] for i in picked] + [random_case(data, seed, i) for i in range(count - n_var)]


# =============================================================================== judging
@dataclass(frozen=True)
class Y4M:
    """A parsed YUV4MPEG2 file: header tags (letter -> value, first occurrence) and raw frames."""

    tags: dict[str, str]
    frames: tuple[bytes, ...]

    @classmethod
    def parse(cls, data: bytes) -> Y4M:
        """Raises ValueError when ``data`` is not a 4:2:0 y4m file with whole frames."""
        from .video.raw_yuv import frame_num_bytes  # imports torch: not at module import

        line, sep, rest = data.partition(b"\n")
        words = line.decode("ascii").split(" ")
        if not sep or words[0] != "YUV4MPEG2":
            raise ValueError("no YUV4MPEG2 header line")
        tags: dict[str, str] = {}
        for word in words[1:]:
            if word:
                tags.setdefault(word[0], word[1:])
        width, height = int(tags["W"]), int(tags["H"])
        depth = {"420jpeg": 8, "420": 8, "420mpeg2": 8, "420paldv": 8, "420p10": 10}[tags.get("C", "420")]
        size = frame_num_bytes(width, height, depth)
        frames, pos = [], 0
        while pos < len(rest):
            end = rest.index(b"\n", pos)
            if not rest[pos:end].startswith(b"FRAME"):
                raise ValueError(f"no FRAME marker at byte {pos}")
            frame = rest[end + 1:end + 1 + size]
            if len(frame) != size:
                raise ValueError("truncated frame")
            frames.append(frame)
            pos = end + 1 + size
        return cls(tags, tuple(frames))


def _header_fps(data: bytes) -> Fraction | None:
    """The frame rate a case's header declares, or None when its header does not parse."""
    try:
        f = DvcStream.parse(data, check_crc=False).fields()
        return Fraction(f.fps_num, f.fps_den)
    except (BitstreamError, ZeroDivisionError, ValueError):
        return None


def judge(output: bytes, case: Case, truth: Y4M) -> str | None:
    """Why ``output`` (the decode of ``case``) is not a correct decode; None when it is."""
    if case.expect is None:
        return "decoded a stream of which no decode is correct"
    try:
        got = Y4M.parse(output)
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        return f"output is not a valid y4m file ({exc})"
    for tag in ("W", "H", "C"):
        if got.tags.get(tag) != truth.tags.get(tag):
            return f"y4m {tag}{got.tags.get(tag)} instead of {tag}{truth.tags.get(tag)}"
    fps = _header_fps(case.data)
    want_fps = f"{fps.numerator}:{fps.denominator}" if fps is not None else truth.tags.get("F")
    if got.tags.get("F") != want_fps:
        return f"y4m F{got.tags.get('F')} instead of F{want_fps}"
    if len(got.frames) != len(case.expect):
        return f"{len(got.frames)} frames instead of {len(case.expect)}"
    wrong = [k for k, j in enumerate(case.expect) if got.frames[k] != truth.frames[j]]
    return f"frames {wrong} differ from the true decode" if wrong else None


# =============================================================================== running the decoder
@dataclass(frozen=True)
class RawRun:
    """What one decoder run did: exit status (negative: killed by that signal; None: timed out)."""

    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


class Decoder(Protocol):
    def __call__(self, case: Path, output: Path, *, strict: bool, timeout: float) -> RawRun: ...


def _decode_argv(case: Path, output: Path, device: str, strict: bool) -> list[str]:
    return [str(case), "-o", str(output), "--json", "--device", device] + (["--strict"] if strict else [])


def _limit_memory(limit: int | None) -> None:
    if limit is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class SubprocessDecoder:
    """``python tools/decode.py CASE -o OUT --json --device DEVICE``, one interpreter per case.

    The child's address space is limited to ``memory_limit`` bytes (set before the tool
    runs, through a ``-c`` launcher that then runs the tool as ``__main__``) and its torch
    threads to ``threads`` (OMP/MKL_NUM_THREADS; None: inherited). Keep the thread count the
    true decode was made with (1, as :class:`ForkDecoder`): float results, and so the output,
    depend on it.
    """

    def __init__(self, *, tool: Path = DECODE_TOOL, device: str = "cpu", threads: int | None = 1,
                 memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> None:
        if not Path(tool).is_file():
            raise InputError(f"decoder tool not found: {tool}")
        self.tool, self.device, self.threads, self.memory_limit = Path(tool), device, threads, memory_limit

    def __call__(self, case: Path, output: Path, *, strict: bool, timeout: float) -> RawRun:
        argv = [str(self.tool), *_decode_argv(case, output, self.device, strict)]
        limit = "" if self.memory_limit is None else (
            f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({self.memory_limit}, {self.memory_limit})); ")
        launcher = (f"{limit}import runpy, sys; sys.argv = {argv!r}; sys.path[0] = {str(self.tool.parent)!r}; "
                    f"runpy.run_path({str(self.tool)!r}, run_name='__main__')")
        env = dict(os.environ)
        if self.threads is not None:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(REPO), start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            rc: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            rc = None
        return RawRun(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                      time.perf_counter() - start)


class ForkDecoder:
    """The decoder's CLI entry (``decode_main`` -> ``api.decode_file``) in a forked child per case.

    The parent imports torch and dvclic once, and :meth:`warm` loads the weights a stream
    names into a :class:`~dvclic.store.ModelStore` that every child inherits and decodes from
    (a stream naming other weights is looked up by the same store, in the child). A child
    decodes with one torch thread (OpenMP cannot start a new pool in a child forked after the
    parent used one: more threads hang), in an address space of ``memory_limit`` bytes; its
    stdout and stderr are files, its exit status or signal is the run's, and it is SIGKILLed at
    the timeout. Usable as a context manager.
    """

    def __init__(self, *, device: str = "cpu", memory_limit: int | None = DEFAULT_MEMORY_LIMIT) -> None:
        if not hasattr(os, "fork"):
            raise InputError("the fork runner needs os.fork (POSIX); use the subprocess runner")
        from .api import resolve_device
        from .cli import quiet_third_party_warnings
        from .store import ModelStore

        quiet_third_party_warnings()
        self.device, self.memory_limit = device, memory_limit
        self.store = ModelStore(device=resolve_device(device))

    def warm(self, data: bytes) -> None:
        """Load the weights the stream ``data`` names, for every later child."""
        header = BitstreamReader(io.BytesIO(data), max_pixels=_NO_PIXEL_LIMIT).header
        self.store.for_stream(header)

    def close(self) -> None:
        """Nothing to undo (kept for the context-manager protocol)."""

    def __enter__(self) -> ForkDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, case: Path, output: Path, *, strict: bool, timeout: float) -> RawRun:
        argv = _decode_argv(case, output, self.device, strict)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            start = time.perf_counter()
            with warnings.catch_warnings():  # a multi-threaded parent (torch's pool) is expected here
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the child: never returns
                self._child(argv, out.fileno(), err.fileno())
            rc = _wait(pid, timeout)
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            return RawRun(rc, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"), seconds)

    def _child(self, argv: list[str], out_fd: int, err_fd: int) -> None:
        rc = 1
        try:
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
            faulthandler.enable(sys.stderr)  # a crash's stack goes to the case's stderr, not the parent's
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _limit_memory(self.memory_limit)
            import torch

            torch.set_num_threads(1)
            from .cli import decode_main

            try:
                rc = decode_main(argv, store=self.store)
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - what the interpreter would print for an uncaught error
            traceback.print_exc()
            rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(rc)


def _wait(pid: int, timeout: float) -> int | None:
    """Reap child ``pid``: its exit status, minus the signal that killed it, or None (killed at
    ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(left, 0.005))
    finally:
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class Outcome:
    """How the decoder handled one case: ``kind`` is one of :data:`OUTCOMES`."""

    kind: str
    returncode: int | None
    stderr: str
    detail: str = ""
    seconds: float = 0.0
    exact: bool | None = None  # the decoder's JSON summary's "exact" (decodes only)

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _summary(stdout: str) -> dict:
    try:
        return json.loads(_lines(stdout)[-1])
    except (IndexError, ValueError):
        return {}


def run_case(data: bytes | Case, *, timeout: float, workdir: str | os.PathLike[str],
             decoder: Decoder | None = None, truth: Y4M | None = None, strict: bool = False,
             keep_output: bool = False) -> Outcome:
    """Decode ``data`` in a fresh folder under ``workdir`` and classify the result.

    ``decoder``: how to run it (default: a new :class:`SubprocessDecoder`). ``truth``: the
    true decode; with it (and a :class:`Case`, whose ``expect`` says which frames a correct
    decode has; bytes expect all of them) a successful decode is judged ``decoded``,
    ``inexact`` or ``wrong_video``; without it, any complete y4m output is ``decoded``.
    The folder is removed afterwards (``keep_output``: not when the output is wanted, i.e.
    ``detail`` then names the output path).
    """
    if not isinstance(data, Case):
        data = Case("bytes", data, None if truth is None else tuple(range(len(truth.frames))))
    case = data
    decoder = decoder or SubprocessDecoder()
    folder = Path(tempfile.mkdtemp(prefix="case-", dir=workdir))
    try:
        path, output = folder / CASE_NAME, folder / OUTPUT_NAME
        path.write_bytes(case.data)
        run = decoder(path, output, strict=strict, timeout=timeout)
        outcome = _classify(run, folder, case, truth)
        if outcome.kind == "inexact" and strict:
            outcome = replace(outcome, kind="wrong_video", detail=outcome.detail + "; --strict did not refuse it")
        elif outcome.kind == "inexact":  # only if --strict refuses it, too
            again = run_case(case, timeout=timeout, workdir=workdir, decoder=decoder, truth=truth, strict=True)
            if again.kind != "error":
                outcome = replace(outcome, kind="wrong_video",
                                  detail=f"{outcome.detail}; with --strict: {again.kind} {again.detail}".strip())
        if keep_output and output.exists():
            return replace(outcome, detail=str(output))
        shutil.rmtree(folder, ignore_errors=True)
        return outcome
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _classify(run: RawRun, folder: Path, case: Case, truth: Y4M | None) -> Outcome:
    def outcome(kind: str, detail: str = "") -> Outcome:
        exact = _summary(run.stdout).get("exact") if run.returncode == 0 else None
        return Outcome(kind, run.returncode, run.stderr[-2000:], detail, run.seconds, exact)

    if run.returncode is None:
        return outcome("hang", f"killed after {run.seconds:.1f} s")
    if run.returncode < 0:
        try:
            name = signal.Signals(-run.returncode).name
        except ValueError:
            name = f"signal {-run.returncode}"
        return outcome("crash", name)
    lines = _lines(run.stderr)
    if "Traceback" in run.stderr or run.returncode not in (0, 2) or len(lines) > 1 or (run.returncode == 0 and lines):
        return outcome("traceback", f"exit {run.returncode}, {len(lines)} stderr lines")
    left = sorted(set(os.listdir(folder)) - {CASE_NAME, OUTPUT_NAME})
    output = folder / OUTPUT_NAME
    if run.returncode == 2:
        if not lines or not lines[0].startswith("error:"):
            return outcome("traceback", "exit 2 without an 'error:' line")
        if left or output.exists():
            return outcome("leftover", f"left {left + ([OUTPUT_NAME] if output.exists() else [])}")
        return outcome("error", lines[0])
    if left:
        return outcome("leftover", f"left {left}")
    if not output.is_file():
        return outcome("wrong_video", "exit 0 without an output file")
    if truth is None:
        try:
            Y4M.parse(output.read_bytes())
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            return outcome("wrong_video", f"output is not a valid y4m file ({exc})")
        return outcome("decoded")
    why = judge(output.read_bytes(), case, truth)
    if why is None:
        return outcome("decoded")
    if _summary(run.stdout).get("exact") is False:
        return outcome("inexact", why + " (reported exact: false)")
    return outcome("wrong_video", why)


def true_decode(data: bytes, *, decoder: Decoder, workdir: str | os.PathLike[str], timeout: float = 300.0,
                require_exact: bool = True) -> tuple[Y4M, bool | None]:
    """The decode of the unmutated stream ``data``, which must succeed, and whether it matches the
    encoder's reconstruction hashes (``require_exact``: it must; a stream from another machine, or
    decoded with another thread count, may not)."""
    run_dir = Path(tempfile.mkdtemp(prefix="truth-", dir=workdir))
    try:
        out = run_case(data, timeout=timeout, workdir=run_dir, decoder=decoder, keep_output=True)
        if out.kind != "decoded" or (require_exact and out.exact is False):
            raise InputError(f"the stream does not decode{' bit-exactly' if require_exact else ''} ({out.kind}, "
                             f"exact {out.exact}: {out.stderr.strip()[-300:] or out.detail})")
        return Y4M.parse(Path(out.detail).read_bytes()), out.exact
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class FuzzReport:
    """Counts per outcome, and the failed cases with their outcomes."""

    counts: Counter = field(default_factory=Counter)
    failures: list[tuple[Case, Outcome]] = field(default_factory=list)
    seconds: float = 0.0
    truth_exact: bool | None = None  # whether the unmutated stream decoded bit-exactly

    def summary(self) -> dict:
        return {"cases": sum(self.counts.values()), "seconds": round(self.seconds, 2), "truth_exact": self.truth_exact,
                "counts": {k: self.counts.get(k, 0) for k in OUTCOMES},
                "failures": [{"case": c.name, "kind": o.kind, "detail": o.detail,
                              "stderr": (_lines(o.stderr) or [""])[-1][:300]} for c, o in self.failures]}


def run_cases(cases: Iterable[Case], *, decoder: Decoder, truth: Y4M, workdir: str | os.PathLike[str],
              timeout: float = 30.0, progress: Callable[[int, Case, Outcome], None] | None = None) -> FuzzReport:
    """Run every case through ``decoder`` and count the outcomes."""
    report, start = FuzzReport(), time.perf_counter()
    for i, case in enumerate(cases):
        outcome = run_case(case, timeout=timeout, workdir=workdir, decoder=decoder, truth=truth)
        report.counts[outcome.kind] += 1
        if outcome.failed:
            report.failures.append((case, outcome))
        if progress:
            progress(i, case, outcome)
    report.seconds = time.perf_counter() - start
    return report


def make_decoder(runner: str, *, device: str = "cpu") -> ForkDecoder | SubprocessDecoder:
    """``fork`` (:class:`ForkDecoder`) or ``subprocess`` (:class:`SubprocessDecoder`)."""
    if runner == "fork":
        return ForkDecoder(device=device)
    if runner == "subprocess":
        return SubprocessDecoder(device=device)
    raise InputError(f"unknown runner {runner!r} (fork, subprocess)")


def fuzz_stream(data: bytes, *, cases: int, seed: int, runner: str = "fork", timeout: float = 60.0,
                random_share: float = 0.5, workdir: str | os.PathLike[str] | None = None,
                progress: Callable[[int, Case, Outcome], None] | None = None) -> FuzzReport:
    """Decode ``data`` (it must decode bit-exactly), then ``cases`` cases of :func:`plan_cases`."""
    if cases < 1:
        raise InputError(f"the number of cases must be >= 1, got {cases}")
    try:
        for _ in BitstreamReader(io.BytesIO(data), max_pixels=_NO_PIXEL_LIMIT):
            pass
    except BitstreamError as exc:
        raise InputError(f"the stream to fuzz is not a valid .dvc file: {exc}") from None
    planned = plan_cases(data, cases, seed=seed, random_share=random_share)
    decoder = make_decoder(runner)
    with tempfile.TemporaryDirectory(prefix="dvclic-fuzz-", dir=workdir) as folder:
        try:
            if isinstance(decoder, ForkDecoder):
                decoder.warm(data)
            truth, exact = true_decode(data, decoder=decoder, workdir=folder, timeout=max(timeout, 300.0),
                                       require_exact=False)
            report = run_cases(planned, decoder=decoder, truth=truth, workdir=folder, timeout=timeout,
                               progress=progress)
            report.truth_exact = exact
            return report
        finally:
            if isinstance(decoder, ForkDecoder):
                decoder.close()


#: The encoder's P-frame candidates for :func:`encode_sample`: all but intra, so that the stream
#: has P-frames whatever the shipped weights' rate-distortion choices (an all-intra stream, which
#: an earlier default model made of this clip, leaves the P-frame decoder unfuzzed).
SAMPLE_MODES = "mc,warp,zero,skip"


def encode_sample(output: str | os.PathLike[str], *, frames: int = 3, device: str = "cpu",
                  modes: str = SAMPLE_MODES) -> Path:
    """Encode the bundled sample's first ``frames`` frames with the shipped weights (I P P ...).

    Single-threaded, as the runners decode: the output depends on the thread count (float
    reductions), and the true decode must match the encoder's reconstruction hashes.
    """
    import torch

    from .api import encode_file
    from .params import CodingParams

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encode_file(SAMPLE, output, params=CodingParams(frames=frames, modes=modes), device=device)
    finally:
        torch.set_num_threads(threads)
    return Path(output)


__all__ = [
    "FAILURES", "OUTCOMES", "Case", "Decoder", "DvcStream", "ForkDecoder", "FuzzReport", "HeaderFields", "Outcome",
    "RawRun", "SubprocessDecoder", "Y4M", "case_kind", "encode_sample", "expected_order", "fix_crcs", "frame_payload",
    "fuzz_stream", "hostile_variants", "judge", "make_decoder", "noncanonical_varint", "plan_cases", "random_case",
    "run_case", "run_cases", "true_decode",
]

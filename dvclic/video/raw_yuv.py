"""Raw planar YUV 4:2:0 files (``.yuv``): layout helpers and the reader.

Layout of one frame: the Y plane (``H x W``), then U, then V (each ``ceil(H/2) x ceil(W/2)``),
rows packed without padding. 8-bit files hold one byte per sample; deeper files hold each sample
in a 16-bit little-endian word (10-bit values in ``[0, 1023]``). A file is a sequence of such
frames with no header, so the geometry comes from the file name
(``Name_WxH_FPS[...].yuv``, e.g. ``BasketballPass_416x240_50.yuv``,
``Beauty_1920x1080_120fps_420_10bit_YUV.yuv``; ``10bit`` in the name means 10-bit) or from
explicit arguments, which take precedence over the name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..color import YUVFrame, chroma_shape, sample_dtype
from ..errors import InputError
from .source import SUPPORTED_PIX_FMTS, VideoInfo, VideoSource, pix_fmt_for_bit_depth

_SIZE_FPS = re.compile(
    r"(?:^|[_\-.])(\d+)x(\d+)(?:_(\d+(?:\.\d+)?)(?:fps|hz)?)?(?=[_\-.]|$)", re.IGNORECASE
)
_BIT_DEPTH = re.compile(r"(?:^|[_\-.])(\d+)-?bits?(?=[_\-.]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class NameGeometry:
    """What a raw file name says; None for what it does not say."""

    width: int | None
    height: int | None
    fps: Fraction | None
    bit_depth: int | None


def parse_yuv_name(name: str) -> NameGeometry:
    """Read ``WxH``, the frame rate and ``<n>bit`` from a raw YUV file name.

    ``"BasketballPass_416x240_50.yuv"`` -> (416, 240, 50, None);
    ``"Sparks_480x270_30_10bit.yuv"`` -> (480, 270, 30, 10);
    ``"Beauty_1920x1080_120fps_420_8bit_YUV.yuv"`` -> (1920, 1080, 120, 8).
    """
    stem = Path(name).name
    if stem.lower().endswith(".yuv"):
        stem = stem[: -len(".yuv")]
    width = height = bit_depth = None
    fps: Fraction | None = None
    match = _SIZE_FPS.search(stem)
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if match.group(3) is not None:
            fps = Fraction(match.group(3))
    depth = _BIT_DEPTH.search(stem)
    if depth:
        bit_depth = int(depth.group(1))
    return NameGeometry(width=width, height=height, fps=fps, bit_depth=bit_depth)


def frame_num_bytes(width: int, height: int, bit_depth: int) -> int:
    """Bytes of one raw ``width x height`` 4:2:0 frame (2 bytes per sample above 8 bits)."""
    ch, cw = chroma_shape(height, width)
    return (width * height + 2 * ch * cw) * sample_dtype(bit_depth).itemsize


def frame_to_bytes(frame: YUVFrame) -> bytes:
    """Serialise a frame as raw planar Y, U, V (16-bit little-endian above 8 bits)."""
    if frame.bit_depth == 8:
        return b"".join(np.ascontiguousarray(p).tobytes() for p in frame.planes)
    return b"".join(p.astype("<u2").tobytes() for p in frame.planes)


def frame_from_bytes(buffer: bytes | bytearray, width: int, height: int, bit_depth: int) -> YUVFrame:
    """Inverse of :func:`frame_to_bytes`. ``buffer`` must hold exactly one frame.

    The planes are views into ``buffer`` (no copy when the byte order is native).
    Sample values are not range-checked here.
    """
    expected = frame_num_bytes(width, height, bit_depth)
    if len(buffer) != expected:
        raise ValueError(f"a {width}x{height} {bit_depth}-bit frame is {expected} bytes, got {len(buffer)}")
    dtype = sample_dtype(bit_depth)
    samples = np.frombuffer(buffer, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
    ch, cw = chroma_shape(height, width)
    n_y, n_c = width * height, ch * cw
    return YUVFrame(
        y=samples[:n_y].reshape(height, width),
        u=samples[n_y : n_y + n_c].reshape(ch, cw),
        v=samples[n_y + n_c :].reshape(ch, cw),
        bit_depth=bit_depth,
    )


class RawYUVSource(VideoSource):
    """Reader for raw planar YUV 4:2:0 files, 8-bit or 10-bit little-endian.

    Explicit ``width``/``height`` (both or neither), ``fps`` and ``bit_depth`` override what the
    file name says; the bit depth defaults to 8. The frame count is the file size divided by the
    frame size; ``max_frames`` caps it. Frames are read one at a time (seek + read), so memory
    does not depend on the file length.

    Raises :class:`~dvclic.errors.InputError` when the file is missing, the geometry or rate is
    unknown, the size is not a whole number of frames, or (while iterating) a 10-bit sample
    exceeds 1023.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int | None = None,
        height: int | None = None,
        fps: Fraction | None = None,
        bit_depth: int | None = None,
        max_frames: int | None = None,
    ) -> None:
        self._path = Path(path)
        if not self._path.exists():
            raise InputError(f"{self._path}: file not found")
        if not self._path.is_file():
            raise InputError(f"{self._path}: not a regular file")
        named = parse_yuv_name(self._path.name)
        if (width is None) != (height is None):
            raise InputError("give both width and height (--size WxH), or neither")
        if width is None:
            width, height = named.width, named.height
        if width is None or height is None:
            raise InputError(f"{self._path}: cannot infer WxH from name; pass --size WxH --fps F")
        if width < 1 or height < 1:
            raise InputError(f"{self._path}: invalid size {width}x{height}")
        if fps is None:
            fps = named.fps
        if fps is None:
            raise InputError(f"{self._path}: cannot infer the frame rate from name; pass --fps F")
        if fps <= 0:
            raise InputError(f"{self._path}: frame rate must be positive, got {fps}")
        if bit_depth is None:
            bit_depth = named.bit_depth if named.bit_depth is not None else 8
        if bit_depth not in SUPPORTED_PIX_FMTS:
            raise InputError(f"{self._path}: unsupported bit depth {bit_depth}; supported: 8, 10")

        self._frame_bytes = frame_num_bytes(width, height, bit_depth)
        file_bytes = self._path.stat().st_size
        if file_bytes == 0:
            raise InputError(f"{self._path}: file is empty")
        if file_bytes % self._frame_bytes:
            raise InputError(
                f"{self._path}: size {file_bytes} bytes is not a whole number of {width}x{height} "
                f"{bit_depth}-bit 4:2:0 frames ({self._frame_bytes} bytes each); check the size and bit depth"
            )
        count = file_bytes // self._frame_bytes
        if max_frames is not None:
            count = min(count, max_frames)
        super().__init__(
            VideoInfo(
                width=width,
                height=height,
                fps=Fraction(fps),
                bit_depth=bit_depth,
                pix_fmt=pix_fmt_for_bit_depth(bit_depth),
                frame_count=count,
            )
        )

    def _frames(self) -> Generator[YUVFrame, None, None]:
        info = self.info
        count = info.frame_count or 0
        peak = (1 << info.bit_depth) - 1
        with open(self._path, "rb") as file:
            for index in range(count):
                file.seek(index * self._frame_bytes)
                buffer = bytearray(self._frame_bytes)
                if file.readinto(buffer) != self._frame_bytes:
                    raise InputError(f"{self._path}: frame {index} is truncated (did the file change?)")
                frame = frame_from_bytes(buffer, info.width, info.height, info.bit_depth)
                if info.bit_depth > 8:
                    top = max(int(p.max()) for p in frame.planes)
                    if top > peak:
                        raise InputError(
                            f"{self._path}: frame {index} has sample value {top} above the "
                            f"{info.bit_depth}-bit maximum {peak}; is it really {info.bit_depth}-bit little-endian?"
                        )
                yield frame

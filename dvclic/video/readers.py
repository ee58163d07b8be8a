"""``open_video``: the one entry point for reading a video, whatever its format."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from .pipe import PipeSource
from .pyav_source import PyAVSource
from .raw_yuv import RawYUVSource
from .source import VideoSource

RAW_EXTENSIONS = (".yuv",)


def parse_fps(value: Fraction | int | float | str) -> Fraction:
    """Frame rate as an exact positive Fraction: ``25``, ``29.97``, ``"30000/1001"``, ``"50"``.

    Floats go through their decimal text (``29.97`` -> ``2997/100``). Raises InputError when the
    value is not a positive number.
    """
    try:
        fps = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise InputError(f"invalid frame rate {value!r}; give e.g. 25, 29.97 or 30000/1001") from None
    if fps <= 0:
        raise InputError(f"frame rate must be positive, got {value!r}")
    return fps


def open_video(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: Fraction | int | float | str | None = None,
    bit_depth: int | None = None,
    max_frames: int | None = None,
) -> VideoSource:
    """Open a video for reading, frame by frame.

    ``.yuv`` files are raw planar 4:2:0 (:class:`RawYUVSource`): ``width``/``height``/``fps``/
    ``bit_depth`` override what the file name says, and the name must say what they do not.
    Everything else goes through PyAV (:class:`PyAVSource`): only ``fps`` may be given there (it
    overrides the stream's rate); a size or bit depth is an error because the file states them.

    max_frames: read at most this many frames (>= 1); ``info.frame_count`` is capped too.

    A binary file object (e.g. ``sys.stdin.buffer``) is read once, through PyAV, as a stream
    (:class:`~dvclic.video.pipe.PipeSource`: y4m, Matroska, MPEG-TS, ...); only ``fps`` and
    ``max_frames`` apply.

    Returns a :class:`VideoSource` (iterable of ``YUVFrame``, context manager). Raises
    :class:`~dvclic.errors.InputError` for missing, unreadable or unsupported input and bad
    arguments.
    """
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    rate = parse_fps(fps) if fps is not None else None
    if hasattr(path, "read"):
        if width is not None or height is not None or bit_depth is not None:
            raise InputError("size and bit depth options apply only to raw .yuv files, not to a stream")
        return PipeSource(path, fps=rate, max_frames=max_frames)
    target = Path(path)
    if target.suffix.lower() in RAW_EXTENSIONS:
        return RawYUVSource(
            target, width=width, height=height, fps=rate, bit_depth=bit_depth, max_frames=max_frames
        )
    if width is not None or height is not None or bit_depth is not None:
        raise InputError(
            f"{target}: size and bit depth options apply only to raw .yuv input; this file states its own"
        )
    return PyAVSource(target, fps=rate, max_frames=max_frames)

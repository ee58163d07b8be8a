"""Video writers, chosen from the output path, all written atomically.

``open_writer(path, info)`` picks the writer:

- ``*.y4m``: YUV4MPEG2, lossless; ``C420jpeg`` (8-bit, centre-sited chroma, which is dvclic's
  convention) or ``C420p10`` (10-bit), ``F num:den``, ``Ip``, ``A1:1``;
- ``*.yuv``: raw planar 4:2:0 at the source bit depth (16-bit little-endian above 8 bits);
- ``*.mp4`` / ``*.mkv``: H.264 (libx264 through PyAV), 8-bit ``yuv420p``, CRF 10, preset medium,
  tagged BT.709 limited range, so any standard player opens it. 10-bit frames are reduced to
  8 bits with rounding (``(v + 2) >> 2``). libx264 cannot code odd sizes in 4:2:0, so odd widths
  or heights are padded to even ones by replicating the last column/row: the file is then one
  pixel wider/taller than the source;
- a directory (a path ending in ``/`` or an existing directory, which must be empty): one PNG per
  frame, ``frame_00000.png``, ``frame_00001.png``, ... in RGB converted with
  :func:`dvclic.color.yuv420_to_rgb`; 8-bit RGB for 8-bit sources, 16-bit RGB for deeper ones.

Atomicity: everything is written to a temporary file (or directory) next to the output, named
``.<name>.<pid>.<random>.tmp`` (:mod:`dvclic.outputs`), and moved into place with ``os.replace``
only when :meth:`close` succeeds. On an exception inside ``with open_writer(...)``, on
:meth:`VideoWriter.abort`, or when an unclosed writer is garbage-collected, the temporary is
removed and no output appears; one left by a killed process is removed by the next writer of the
same output. :func:`check_video_output` is the pre-flight check :func:`open_writer` runs, which
the tools also run before any coding work.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import torch
from PIL import Image

from ..color import YUVFrame, yuv420_to_rgb
from ..errors import InputError
from ..outputs import check_output, create_temp_dir, create_temp_file
from .pipe import y4m_header
from .raw_yuv import frame_to_bytes
from .source import VideoInfo, check_frame

if TYPE_CHECKING:  # PyAV is imported where a video is written (see pyav_source.py)
    import av

SUPPORTED_OUTPUTS = ".y4m, .yuv, .mp4, .mkv, or a directory (path ending in '/') for PNG frames"
X264_CRF = 10
X264_PRESET = "medium"


def _create_temp_file(path: Path) -> tuple[Path, BinaryIO]:
    """A new temporary file next to ``path`` (mode 0666 & ~umask), opened for writing."""
    temp, fd = create_temp_file(path)
    return temp, os.fdopen(fd, "wb")


def _discard(temp: Path, closers: list[Callable[[], object]]) -> None:
    """Close what writes into ``temp``, then remove it. Never raises (runs in cleanup paths)."""
    for close in reversed(closers):
        try:
            close()
        except Exception:  # the temporary is being thrown away; its handles may be half-broken
            pass
    if temp.is_dir():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        try:
            temp.unlink()
        except FileNotFoundError:
            pass


class VideoWriter(ABC):
    """Writes :class:`~dvclic.color.YUVFrame` objects matching ``info`` to ``path`` atomically.

    ``write(frame)`` appends one frame; ``close()`` finishes and moves the output into place;
    ``abort()`` throws everything away. As a context manager, a clean exit closes and an
    exception aborts.
    """

    def __init__(self, path: Path, info: VideoInfo, temp: Path) -> None:
        self._path = path
        self._info = info
        self._temp = temp
        self._closers: list[Callable[[], object]] = []
        self._finalizer = weakref.finalize(self, _discard, temp, self._closers)
        self._frames_written = 0
        self._state = "open"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def write(self, frame: YUVFrame) -> None:
        """Append one frame; its size and bit depth must match ``info`` (else ValueError).

        Any failure while writing aborts the writer (the temporary is removed); an OS error
        (disk full, permissions) is raised as InputError naming the output.
        """
        if self._state != "open":
            raise ValueError(f"writer for {self._path} is {self._state}")
        check_frame(frame, self._info)
        with self._abort_on_error():
            self._write(frame)
        self._frames_written += 1

    def close(self) -> None:
        """Finish writing and move the output into place. Idempotent once closed."""
        if self._state == "closed":
            return
        if self._state == "aborted":
            raise ValueError(f"writer for {self._path} was aborted")
        with self._abort_on_error():
            self._finish()
            os.replace(self._temp, self._path)
        self._finalizer.detach()
        self._state = "closed"

    @contextlib.contextmanager
    def _abort_on_error(self) -> Iterator[None]:
        """Any failure discards the temporary output; OS errors become one-line InputErrors."""
        try:
            yield
        except OSError as error:
            self.abort()
            raise InputError(f"{self._path}: cannot write output ({error.strerror or error})") from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard the temporary output; nothing appears at ``path``. Idempotent."""
        if self._state == "closed":
            return
        self._state = "aborted"
        self._finalizer()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @abstractmethod
    def _write(self, frame: YUVFrame) -> None:
        """Write one validated frame into the temporary output."""

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the temporary output (before it is moved into place)."""


class _FileWriter(VideoWriter):
    """A writer whose output is one binary file written sequentially."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        temp, self._file = _create_temp_file(path)
        super().__init__(path, info, temp)
        self._closers.append(self._file.close)

    def _finish(self) -> None:
        self._file.close()


class RawYUVWriter(_FileWriter):
    """Raw planar YUV 4:2:0 (``.yuv``) at the source bit depth; 16-bit LE samples above 8 bits."""

    def _write(self, frame: YUVFrame) -> None:
        self._file.write(frame_to_bytes(frame))


class Y4MWriter(_FileWriter):
    """YUV4MPEG2 (``.y4m``): 8-bit ``C420jpeg`` or 10-bit ``C420p10`` (16-bit LE samples)."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        super().__init__(path, info)
        self._file.write(y4m_header(info))

    def _write(self, frame: YUVFrame) -> None:
        self._file.write(b"FRAME\n")
        self._file.write(frame_to_bytes(frame))


def _to_8bit(plane: np.ndarray, bit_depth: int) -> np.ndarray:
    """Reduce samples to 8 bits with rounding (10-bit: ``(v + 2) >> 2``), clamped to 255."""
    if bit_depth == 8:
        return plane
    shift = bit_depth - 8
    return np.minimum((plane.astype(np.uint32) + (1 << (shift - 1))) >> shift, 255).astype(np.uint8)


class X264Writer(VideoWriter):
    """H.264 in MP4 or Matroska through PyAV/libx264 (8-bit 4:2:0, CRF 10, preset medium).

    Odd widths/heights are padded to even by replicating the last column/row (libx264 needs even
    4:2:0 sizes), so the stored picture is then ``ceil(W/2)*2 x ceil(H/2)*2``. Chroma planes
    need no padding: ``ceil(H/2)`` is the same for ``H`` and ``H + 1`` when ``H`` is odd.
    """

    def __init__(self, path: Path, info: VideoInfo, container_format: str) -> None:
        temp, file = _create_temp_file(path)
        file.close()
        super().__init__(path, info, temp)
        import av

        self._width = info.width + info.width % 2
        self._height = info.height + info.height % 2
        try:
            self._container = av.open(str(temp), mode="w", format=container_format)
            self._closers.append(self._container.close)
            self._stream = self._add_stream()
        except av.FFmpegError as error:
            self.abort()
            raise InputError(f"{path}: cannot create the {container_format} output ({error})") from None
        except BaseException:
            self.abort()
            raise

    def _add_stream(self) -> av.VideoStream:
        info = self._info
        stream = self._container.add_stream(
            "libx264",
            rate=info.fps,
            options={
                "crf": str(X264_CRF),
                "preset": X264_PRESET,
                "x264-params": "colorprim=bt709:transfer=bt709:colormatrix=bt709:range=tv:chromaloc=1",
            },
        )
        stream.width = self._width
        stream.height = self._height
        stream.pix_fmt = "yuv420p"
        context = stream.codec_context
        context.color_range = 1  # MPEG (limited)
        context.colorspace = 1  # BT.709
        context.color_primaries = 1
        context.color_trc = 1
        return stream

    def _write(self, frame: YUVFrame) -> None:
        y, u, v = (_to_8bit(p, frame.bit_depth) for p in frame.planes)
        if (self._height, self._width) != y.shape:
            y = np.pad(y, ((0, self._height - y.shape[0]), (0, self._width - y.shape[1])), mode="edge")
        packed = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(self._height * 3 // 2, self._width)
        import av

        video_frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        video_frame.pts = self._frames_written
        self._container.mux(self._stream.encode(video_frame))

    def _finish(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


class PNGDirWriter(VideoWriter):
    """One RGB PNG per frame (``frame_00000.png``, ...) in a directory that is new or empty.

    8-bit sources give 8-bit RGB PNGs (Pillow); deeper sources give 16-bit RGB PNGs (FFmpeg's PNG
    encoder through PyAV), both from :func:`dvclic.color.yuv420_to_rgb` rounded to the nearest
    code value. The directory is built under a temporary name and renamed on ``close()``.
    :func:`check_video_output` (run by :func:`open_writer`) refuses a non-empty directory.
    """

    def __init__(self, path: Path, info: VideoInfo) -> None:
        super().__init__(path, info, create_temp_dir(path))
        self._png16: av.VideoCodecContext | None = None
        if info.bit_depth > 8:
            import av

            context = av.CodecContext.create("png", "w")
            if not isinstance(context, av.VideoCodecContext):
                raise RuntimeError("FFmpeg's PNG encoder is not a video codec context")
            context.width = info.width
            context.height = info.height
            context.pix_fmt = "rgb48be"
            self._png16 = context

    def _write(self, frame: YUVFrame) -> None:
        rgb = yuv420_to_rgb(frame)[0].permute(1, 2, 0)
        target = self._temp / f"frame_{self._frames_written:05d}.png"
        if self._png16 is None:
            pixels = torch.round(rgb * 255.0).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(target, format="PNG")
            return
        pixels = torch.round(rgb * 65535.0).to(torch.int32).numpy().astype(np.uint16)
        import av

        picture = av.VideoFrame.from_ndarray(pixels, format="rgb48le").reformat(format="rgb48be")
        packets = self._png16.encode(picture)
        if len(packets) != 1:
            raise RuntimeError(f"PNG encoder returned {len(packets)} packets for one picture")
        target.write_bytes(bytes(packets[0]))

    def _finish(self) -> None:
        if self._path.is_dir():
            # os.replace onto an existing directory only works when it is empty; say so clearly.
            if any(self._path.iterdir()):
                raise InputError(f"{self._path}: output directory is no longer empty")
            self._path.rmdir()


def is_directory_output(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` asks for PNG frames: it ends with a separator or is an existing directory."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


_FILE_WRITERS: dict[str, Callable[[Path, VideoInfo], VideoWriter]] = {
    ".y4m": Y4MWriter,
    ".yuv": RawYUVWriter,
    ".mp4": lambda path, info: X264Writer(path, info, "mp4"),
    ".mkv": lambda path, info: X264Writer(path, info, "matroska"),
}


def check_video_output(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    outputs: Iterable[str | os.PathLike[str] | None] = (),
) -> Path:
    """Pre-flight check of a video output (no file is created); returns the output path.

    Raises :class:`~dvclic.errors.InputError` for an unsupported extension (listing the supported
    outputs), an output that is one of ``inputs`` or ``outputs``, a missing or unwritable parent
    folder, a file output that is an existing directory, or a PNG output that is a file or a
    non-empty directory.
    """
    target = Path(os.fspath(path))  # drops a trailing separator
    if is_directory_output(path):
        check_output(target, inputs=inputs, outputs=outputs, directory=True, create_parents=False)
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: exists and is not a directory; PNG frames need a directory")
        if target.is_dir() and any(target.iterdir()):
            raise InputError(f"{target}: output directory is not empty; give a new or empty directory")
        return target
    suffix = target.suffix.lower()
    if suffix not in _FILE_WRITERS:
        raise InputError(f"{target}: unsupported output type {suffix or '(none)'!r}; supported: {SUPPORTED_OUTPUTS}")
    return check_output(target, inputs=inputs, outputs=outputs, create_parents=False)


def open_writer(path: str | os.PathLike[str], info: VideoInfo) -> VideoWriter:
    """Open the writer that ``path`` asks for (see the module docstring), after
    :func:`check_video_output` (its errors are :class:`~dvclic.errors.InputError`)."""
    target = check_video_output(path)
    if is_directory_output(path):
        return PNGDirWriter(target, info)
    return _FILE_WRITERS[target.suffix.lower()](target, info)

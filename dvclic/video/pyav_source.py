"""Reader for anything PyAV/FFmpeg opens (mp4, mkv, avi, mov, y4m, webm, single images, ...).

The first video stream is decoded one frame at a time and converted to YUV 4:2:0:

- YUV / grey sources: ``frame.reformat`` to ``yuv420p`` (sources of at most 8 bits) or
  ``yuv420p10le`` (deeper sources, 12-bit ones included, which lose their low bits);
  full-range ("JPEG") sources are converted to limited range on the way;
- RGB / palette sources (Cinepak, PNG, ...): converted to 8- or 16-bit RGB by FFmpeg and then to
  YUV by :func:`dvclic.color.rgb_to_yuv420`, so RGB -> YUV uses dvclic's one BT.709 convention
  rather than swscale's default (BT.601).

Frames come out one per coded frame in presentation order. Timestamp gaps (variable frame rate,
AVI "dropped" frames) are not filled with repeated frames: ``info.fps`` is the stream's average
rate.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..color import YUVFrame, rgb_to_yuv420, sample_dtype
from ..errors import InputError
from .source import VideoInfo, VideoSource, pix_fmt_for_bit_depth

if TYPE_CHECKING:  # PyAV is imported where a video is opened or written, so that
    import av  # training on pictures (e.g. on a machine without PyAV) does not need it

DEFAULT_FPS = Fraction(25)
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG: full-range YUV
# FFmpeg renders text files (e.g. any *.txt, through its "tty" demuxer) as pictures with these
# decoders; a text file is not a video, so they are refused.
TEXT_ART_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


def _one_line(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error).strip() or type(error).__name__
    return " ".join(str(text).split())


def _source_bits(fmt: av.VideoFormat) -> int:
    return max((component.bits for component in fmt.components), default=8)


def _is_rgb_like(fmt: av.VideoFormat) -> bool:
    return bool(fmt.is_rgb or fmt.has_palette or fmt.is_bayer)


def _plane_array(plane: av.video.plane.VideoPlane, bit_depth: int) -> np.ndarray:
    """Copy one plane into a ``height x width`` array, dropping the ``line_size`` row padding."""
    dtype = sample_dtype(bit_depth)
    per_row = plane.line_size // dtype.itemsize
    raw = np.frombuffer(memoryview(plane), dtype=np.uint8, count=plane.line_size * plane.height)
    rows = raw.view(dtype.newbyteorder("<")).reshape(plane.height, per_row)
    return np.ascontiguousarray(rows[:, : plane.width]).astype(dtype, copy=False)


def frame_to_yuv(frame: av.VideoFrame, bit_depth: int) -> YUVFrame:
    """Convert a decoded PyAV frame to a :class:`YUVFrame` of ``bit_depth`` (8 or 10)."""
    fmt = frame.format
    if _is_rgb_like(fmt):
        if bit_depth == 8:
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).float() / 255.0
        else:
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb48le").astype(np.int32)).float() / 65535.0
        return rgb_to_yuv420(rgb.permute(2, 0, 1).unsqueeze(0), bit_depth)

    target = pix_fmt_for_bit_depth(bit_depth)
    full_range = fmt.name.startswith("yuvj") or frame.color_range == _COLOR_RANGE_JPEG
    if full_range:
        frame = frame.reformat(format=target, src_color_range="JPEG", dst_color_range="MPEG")
    elif fmt.name != target:
        frame = frame.reformat(format=target)
    y, u, v = (_plane_array(frame.planes[i], bit_depth) for i in range(3))
    return YUVFrame(y=y, u=u, v=v, bit_depth=bit_depth)


class PyAVSource(VideoSource):
    """Video file read through PyAV (see the module docstring for the conversions).

    Opening probes the file: it decodes the first frame (size, pixel format, bit depth: 8 for
    sources of at most 8 bits, else 10) and counts the stream's non-empty packets without
    decoding them, which is the number of coded frames (container headers are not trusted:
    AVI counts dropped-frame entries, e.g. ``tree_320x240_cinepak.avi`` declares 444 frames and
    holds 68). Counting reads the file once (about 1 ms per MB); ``max_frames`` stops it early.

    fps: explicit rate, else the stream's average rate, else its guessed rate, else 25.

    Raises :class:`~dvclic.errors.InputError` when the file is missing, cannot be opened, has no
    video stream or no decodable frame, and (while iterating) when a frame fails to decode or
    changes size, naming the frame index.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Fraction | None = None,
        max_frames: int | None = None,
    ) -> None:
        self._path = Path(path)
        self._max_frames = max_frames
        if not self._path.exists():
            raise InputError(f"{self._path}: file not found")
        if not self._path.is_file():
            raise InputError(f"{self._path}: not a regular file")

        container = self._open()
        try:
            stream = container.streams.video[0]
            first, packets = self._probe(container, stream)
            if fps is None:
                fps = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
                if fps <= 0:
                    fps = DEFAULT_FPS
        finally:
            container.close()

        bit_depth = 8 if _source_bits(first.format) <= 8 else 10
        count = packets if max_frames is None else min(packets, max_frames)
        super().__init__(
            VideoInfo(
                width=first.width,
                height=first.height,
                fps=Fraction(fps),
                bit_depth=bit_depth,
                pix_fmt=pix_fmt_for_bit_depth(bit_depth),
                frame_count=count,
            )
        )

    def _open(self) -> av.container.InputContainer:
        """Open the container; InputError unless it has a video stream."""
        import av

        try:
            container = av.open(str(self._path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise InputError(f"{self._path}: cannot open as a video ({_one_line(error)})") from None
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            container.close()
            raise InputError(f"{self._path}: no video stream (streams found: {kinds})")
        codec = container.streams.video[0].codec_context.name
        if codec in TEXT_ART_CODECS:
            container.close()
            raise InputError(f"{self._path}: a text file, not a video (FFmpeg would render it as {codec} art)")
        return container

    def _probe(
        self, container: av.container.InputContainer, stream: av.VideoStream
    ) -> tuple[av.VideoFrame, int]:
        """Decode the first frame and count non-empty packets (up to max_frames)."""
        import av

        first: av.VideoFrame | None = None
        packets = 0
        try:
            for packet in container.demux(stream):
                if packet.size > 0:
                    packets += 1
                if first is None:
                    decoded = packet.decode()
                    if decoded:
                        first = decoded[0]
                if first is not None and self._max_frames is not None and packets >= self._max_frames:
                    break
        except av.FFmpegError as error:
            if first is None:
                raise InputError(f"{self._path}: cannot decode the video ({_one_line(error)})") from None
            # A broken packet later on: keep the count so far; iteration reports the frame.
        if first is None:
            raise InputError(f"{self._path}: no decodable video frame")
        return first, packets

    def _frames(self) -> Generator[YUVFrame, None, None]:
        import av

        info = self.info
        limit = info.frame_count if self._max_frames is not None else None
        if limit == 0:
            return
        container = self._open()
        index = 0
        try:
            stream = container.streams.video[0]
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except av.FFmpegError as error:
                    raise InputError(f"{self._path}: cannot decode frame {index} ({_one_line(error)})") from None
                if frame.width != info.width or frame.height != info.height:
                    raise InputError(
                        f"{self._path}: frame {index} is {frame.width}x{frame.height}, expected "
                        f"{info.width}x{info.height} (size changes are not supported)"
                    )
                try:
                    converted = frame_to_yuv(frame, info.bit_depth)
                except av.FFmpegError as error:
                    raise InputError(f"{self._path}: cannot convert frame {index} ({_one_line(error)})") from None
                yield converted
                index += 1
                if limit is not None and index >= limit:
                    return
        finally:
            container.close()

"""Video through pipes: a source that reads a stream once (stdin), and a y4m writer to a stream.

:class:`PipeSource` reads any format FFmpeg can demux without seeking (YUV4MPEG2 above all, as
``ffmpeg -f yuv4mpegpipe -`` writes it; also Matroska, MPEG-TS, NUT) from a binary file object
through PyAV. It decodes the first frame when it is opened (size, bit depth) and keeps the same
container for the frames, so the stream is read exactly once; the frame count is unknown.

:class:`Y4MPipeWriter` writes YUV4MPEG2 to a binary file object (stdout): the same header and
frames as :class:`~dvclic.video.writers.Y4MWriter`, so any y4m reader (PyAV, ffmpeg, x264) takes
it. A pipe cannot be written atomically: on an error the reader sees a truncated stream, and
the tool exits 2 with its one-line error.
"""

from __future__ import annotations

from collections.abc import Generator
from fractions import Fraction
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from ..color import YUVFrame
from ..errors import InputError
from .pyav_source import DEFAULT_FPS, TEXT_ART_CODECS, _one_line, _source_bits, frame_to_yuv
from .raw_yuv import frame_to_bytes
from .source import VideoInfo, VideoSource, check_frame, pix_fmt_for_bit_depth

if TYPE_CHECKING:  # PyAV is imported where a video is opened or written, so that
    import av  # training on pictures (e.g. on a machine without PyAV) does not need it


class PipeSource(VideoSource):
    """Frames read once from a binary stream (see the module docstring). ``name`` is for messages."""

    def __init__(self, stream: BinaryIO, *, name: str = "<stdin>", fps: Fraction | None = None,
                 max_frames: int | None = None) -> None:
        import av

        self._name = name
        self._max_frames = max_frames
        try:
            self._container = av.open(stream, mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as error:
            raise InputError(f"{name}: cannot read a video from the stream ({_one_line(error)})") from None
        try:
            if not self._container.streams.video:
                raise InputError(f"{name}: the stream holds no video")
            video = self._container.streams.video[0]
            if video.codec_context.name in TEXT_ART_CODECS:
                raise InputError(f"{name}: a text stream, not a video")
            self._decoded = self._container.decode(video)
            try:
                self._first = next(self._decoded)
            except StopIteration:
                raise InputError(f"{name}: no decodable video frame") from None
            except av.FFmpegError as error:
                raise InputError(f"{name}: cannot decode the video ({_one_line(error)})") from None
            if fps is None:
                fps = video.average_rate or video.guessed_rate or DEFAULT_FPS
                if fps <= 0:
                    fps = DEFAULT_FPS
        except BaseException:
            self._container.close()
            raise
        bit_depth = 8 if _source_bits(self._first.format) <= 8 else 10
        super().__init__(VideoInfo(width=self._first.width, height=self._first.height, fps=Fraction(fps),
                                   bit_depth=bit_depth, pix_fmt=pix_fmt_for_bit_depth(bit_depth), frame_count=None))
        self._used = False

    def _frames(self) -> Generator[YUVFrame, None, None]:
        import av

        if self._used:
            raise ValueError(f"{self._name}: a pipe can be read only once")
        self._used = True
        info, index, frame = self.info, 0, self._first
        try:
            while frame is not None:
                if frame.width != info.width or frame.height != info.height:
                    raise InputError(f"{self._name}: frame {index} is {frame.width}x{frame.height}, expected "
                                     f"{info.width}x{info.height} (size changes are not supported)")
                yield frame_to_yuv(frame, info.bit_depth)
                index += 1
                if self._max_frames is not None and index >= self._max_frames:
                    return
                try:
                    frame = next(self._decoded)
                except StopIteration:
                    frame = None
                except av.FFmpegError as error:
                    raise InputError(f"{self._name}: cannot decode frame {index} ({_one_line(error)})") from None
        finally:
            self._container.close()

    def close(self) -> None:
        super().close()
        self._container.close()


def y4m_header(info: VideoInfo) -> bytes:
    """The YUV4MPEG2 stream header dvclic writes: 8-bit ``C420jpeg`` or 10-bit ``C420p10``."""
    colour = "C420jpeg XYSCSS=420JPEG" if info.bit_depth == 8 else "C420p10 XYSCSS=420P10"
    return (f"YUV4MPEG2 W{info.width} H{info.height} F{info.fps.numerator}:{info.fps.denominator} "
            f"Ip A1:1 {colour} XCOLORRANGE=LIMITED\n").encode("ascii")


class Y4MPipeWriter:
    """YUV4MPEG2 frames to a binary stream; the writer interface of ``open_writer``'s writers."""

    def __init__(self, stream: BinaryIO, info: VideoInfo) -> None:
        self._stream = stream
        self._info = info
        self._frames_written = 0
        self._header_written = False

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def write(self, frame: YUVFrame) -> None:
        check_frame(frame, self._info)
        try:
            if not self._header_written:
                self._stream.write(y4m_header(self._info))
                self._header_written = True
            self._stream.write(b"FRAME\n" + frame_to_bytes(frame))
            self._stream.flush()
        except BrokenPipeError:
            raise InputError("the output pipe was closed by its reader") from None
        self._frames_written += 1

    def close(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise InputError("the output pipe was closed by its reader") from None

    def abort(self) -> None:
        """Nothing to remove: what was written has gone down the pipe."""

    def __enter__(self) -> Y4MPipeWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()

"""What every video reader provides: :class:`VideoInfo` and the :class:`VideoSource` contract."""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType, TracebackType

from ..color import YUVFrame

SUPPORTED_PIX_FMTS = MappingProxyType({8: "yuv420p", 10: "yuv420p10le"})


def pix_fmt_for_bit_depth(bit_depth: int) -> str:
    """FFmpeg pixel-format name for a supported bit depth (8 -> ``yuv420p``, 10 -> ``yuv420p10le``).

    Raises ValueError for other depths.
    """
    if bit_depth not in SUPPORTED_PIX_FMTS:
        raise ValueError(f"unsupported bit depth {bit_depth}; supported: 8, 10")
    return SUPPORTED_PIX_FMTS[bit_depth]


@dataclass(frozen=True)
class VideoInfo:
    """Geometry and timing of a YUV 4:2:0 video.

    width, height: luma size in pixels (>= 1; odd sizes allowed).
    fps: frames per second, exact (e.g. ``Fraction(30000, 1001)``), > 0.
    bit_depth: 8 or 10.
    pix_fmt: ``"yuv420p"`` (8-bit) or ``"yuv420p10le"`` (10-bit); must agree with bit_depth.
    frame_count: number of frames the source yields, or None when unknown.

    Raises ValueError in ``__post_init__`` on inconsistent values.
    """

    width: int
    height: int
    fps: Fraction
    bit_depth: int
    pix_fmt: str
    frame_count: int | None

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"video size must be at least 1x1, got {self.width}x{self.height}")
        if not isinstance(self.fps, Fraction) or self.fps <= 0:
            raise ValueError(f"fps must be a positive Fraction, got {self.fps!r}")
        expected = pix_fmt_for_bit_depth(self.bit_depth)
        if self.pix_fmt != expected:
            raise ValueError(f"pix_fmt {self.pix_fmt!r} does not match bit_depth {self.bit_depth}")
        if self.frame_count is not None and self.frame_count < 0:
            raise ValueError(f"frame_count must be >= 0 or None, got {self.frame_count}")


class VideoSource(ABC):
    """A video that yields :class:`~dvclic.color.YUVFrame` objects one at a time.

    ``info`` describes the frames; iterating yields them in display order with memory that does
    not grow with the video length. A source can be iterated more than once (each iteration
    starts from the first frame). Use it as a context manager or call :meth:`close`, which also
    stops iterations still in progress. Readers raise :class:`~dvclic.errors.InputError` for
    problems with the file, naming the file (and the frame index, where there is one).
    """

    def __init__(self, info: VideoInfo) -> None:
        self._info = info
        self._closed = False
        self._live: weakref.WeakSet[Generator[YUVFrame, None, None]] = weakref.WeakSet()

    @property
    def info(self) -> VideoInfo:
        return self._info

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> Iterator[YUVFrame]:
        if self._closed:
            raise ValueError("video source is closed")
        frames = self._frames()
        self._live.add(frames)
        return frames

    @abstractmethod
    def _frames(self) -> Generator[YUVFrame, None, None]:
        """Yield every frame (at most ``info.frame_count`` when known), releasing resources in
        a ``finally`` block so that :meth:`close` can stop it."""

    def close(self) -> None:
        """Stop running iterations and release their files. Idempotent."""
        self._closed = True
        for frames in list(self._live):
            frames.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_frame(frame: YUVFrame, info: VideoInfo) -> None:
    """ValueError unless ``frame`` has the size and bit depth ``info`` describes (writers check this)."""
    if (frame.width, frame.height, frame.bit_depth) != (info.width, info.height, info.bit_depth):
        raise ValueError(f"frame is {frame.width}x{frame.height} {frame.bit_depth}-bit, writer expects "
                         f"{info.width}x{info.height} {info.bit_depth}-bit")

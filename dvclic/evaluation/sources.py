"""The source frames one evaluation codes: a raw sequence, its first N frames, optionally cropped.

Pad mode (the default) hands the full pictures to every codec (dvclic pads them to its size
multiple by replicating the last row/column and crops the reconstruction back). Crop mode keeps
the top-left ``H' x W'`` region, ``H'`` and ``W'`` the largest multiples of the codec multiple,
and *every* codec (anchors included) codes and is measured on that region only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..color import YUVFrame
from ..outputs import atomic_output
from ..video import open_video
from ..video.raw_yuv import frame_to_bytes
from .manifest import ResolvedSequence
from .measure import EvaluationError


def crop_frame(frame: YUVFrame, height: int, width: int) -> YUVFrame:
    """Top-left ``height x width`` region of a 4:2:0 frame (both even)."""
    if height % 2 or width % 2:
        raise ValueError(f"4:2:0 crops need even sizes, got {width}x{height}")
    return YUVFrame(y=frame.y[:height, :width], u=frame.u[: height // 2, : width // 2],
                    v=frame.v[: height // 2, : width // 2], bit_depth=frame.bit_depth)


def crop_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Largest ``(H', W') <= (height, width)``, multiples of ``multiple`` (and even)."""
    step = multiple if multiple % 2 == 0 else 2 * multiple
    h, w = height // step * step, width // step * step
    if h == 0 or w == 0:
        raise EvaluationError(f"cannot crop {width}x{height} to a multiple of {step}: the picture is too small")
    return h, w


@dataclass(frozen=True)
class SourceClip:
    """Frames ``0 .. frames-1`` of a raw file, cropped to ``crop`` (H, W) when given."""

    path: Path
    width: int
    height: int
    fps: Fraction
    bit_depth: int
    frames: int
    crop: tuple[int, int] | None = None

    @classmethod
    def of(cls, seq: ResolvedSequence, crop_multiple: int | None) -> SourceClip:
        s = seq.spec
        crop = crop_size(s.height, s.width, crop_multiple) if crop_multiple else None
        return cls(path=seq.path, width=s.width, height=s.height, fps=s.fps, bit_depth=s.bit_depth,
                   frames=seq.frames, crop=crop)

    @property
    def coded_size(self) -> tuple[int, int]:
        """(height, width) of the pictures every codec codes and is measured on."""
        return self.crop if self.crop else (self.height, self.width)

    def __iter__(self) -> Iterator[YUVFrame]:
        with open_video(self.path, width=self.width, height=self.height, fps=self.fps, bit_depth=self.bit_depth,
                        max_frames=self.frames) as src:
            for frame in src:
                yield crop_frame(frame, *self.crop) if self.crop else frame

    def as_raw_file(self, scratch: Path) -> Path:
        """A raw .yuv file holding exactly what is coded: the source itself in pad mode, else a
        cropped copy written to ``scratch`` (the caller deletes it)."""
        if self.crop is None:
            return self.path
        with atomic_output(scratch) as tmp, open(tmp, "wb") as out:
            for frame in self:
                out.write(frame_to_bytes(frame))
        return scratch

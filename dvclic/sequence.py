"""Sequence coding: GOP structure and the reference buffer.

The sequence encoder/decoder own all state (reference frame, frame counter);
the networks are stateless. Frames are tensors 1 x 3 x H x W in [0, 1], already
padded to the model's size multiple. The reference is always the decoder's
reconstruction (clamped to [0, 1]), so encoder and decoder stay in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .bitstream import FRAME_I, FRAME_P, FrameUnit
from .errors import BitstreamError
from .model import VideoCodecModel
from .pframe import ImageCompressor, plain_compress


def is_intra(index: int, intra_period: int) -> bool:
    """Frame ``index`` is an I-frame every ``intra_period`` frames (-1: only the first)."""
    return index == 0 if intra_period == -1 else index % intra_period == 0


@dataclass(frozen=True)
class EncodedFrame:
    unit: FrameUnit
    x_hat: Tensor
    intra_bytes: int
    motion_bytes: int
    residual_bytes: int


class SequenceEncoder:
    """Codes frames one at a time; call :meth:`encode` in display order."""

    def __init__(self, model: VideoCodecModel, *, quality: int, intra_period: int,
                 refine: ImageCompressor | None = None) -> None:
        if not 0 <= quality < model.num_qualities:
            raise ValueError(f"quality must be in [0, {model.num_qualities}), got {quality}")
        if intra_period == 0 or intra_period < -1:
            raise ValueError(f"intra period must be >= 1 or -1, got {intra_period}")
        self.model = model
        self.quality = quality
        self.intra_period = intra_period
        self._compress = refine or plain_compress
        self._ref: Tensor | None = None
        self._index = 0

    @torch.no_grad()
    def encode(self, x: Tensor) -> EncodedFrame:
        q = self.quality
        if is_intra(self._index, self.intra_period):
            coded = self._compress(self.model.intra, x, q)
            x_hat, sections = coded.x_hat, coded.strings
            sizes = (coded.num_bytes, 0, 0)
            frame_type = FRAME_I
        else:
            coded_p = self.model.pframe.compress(x, self._ref, q, self._compress)
            x_hat = coded_p.x_hat
            sections = coded_p.motion.strings + coded_p.residual.strings
            sizes = (0, coded_p.motion.num_bytes, coded_p.residual.num_bytes)
            frame_type = FRAME_P
        x_hat = x_hat.clamp(0.0, 1.0)
        self._ref = x_hat
        self._index += 1
        unit = FrameUnit(frame_type=frame_type, quality=q, sections=list(sections))
        return EncodedFrame(unit, x_hat, *sizes)


class SequenceDecoder:
    """Decodes frame units one at a time into padded 1 x 3 x H x W frames."""

    def __init__(self, model: VideoCodecModel, *, padded_size: tuple[int, int]) -> None:
        self.model = model
        self.size = padded_size
        self._ref: Tensor | None = None
        self._index = 0

    @torch.no_grad()
    def decode(self, unit: FrameUnit) -> Tensor:
        idx = self._index
        if not 0 <= unit.quality < self.model.num_qualities:
            raise BitstreamError(f"frame {idx}: quality {unit.quality} out of range for this model")
        intra, pf = self.model.intra, self.model.pframe
        try:
            if unit.frame_type == FRAME_I:
                self._expect_sections(unit, intra.num_streams)
                x_hat = intra.decompress(unit.sections, self.size, unit.quality)
            else:
                if self._ref is None:
                    raise BitstreamError(f"frame {idx}: P-frame without a reference frame")
                n_m = pf.motion_codec.num_streams
                self._expect_sections(unit, n_m + pf.residual_codec.num_streams)
                x_hat = pf.decompress(unit.sections[:n_m], unit.sections[n_m:], self._ref, unit.quality)
        except BitstreamError:
            raise
        except (RuntimeError, ValueError, IndexError) as exc:
            raise BitstreamError(f"frame {idx}: entropy decoding failed ({exc})") from None
        if not torch.isfinite(x_hat).all():
            raise BitstreamError(f"frame {idx}: decoded picture is not finite (corrupt payload)")
        x_hat = x_hat.clamp(0.0, 1.0)
        self._ref = x_hat
        self._index += 1
        return x_hat

    def _expect_sections(self, unit: FrameUnit, n: int) -> None:
        if len(unit.sections) != n:
            raise BitstreamError(f"frame {self._index}: expected {n} payload sections, found {len(unit.sections)}")

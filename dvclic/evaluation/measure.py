"""Rate-distortion points and the one way their quality metrics are computed.

Every codec — dvclic or an anchor — is measured on its *decoded YUV 4:2:0 output* against the
source frames, with the same functions:

- PSNR-RGB: both pictures converted with :func:`dvclic.color.yuv420_to_rgb` (BT.709, limited
  range, bilinear chroma upsampling, clamped to [0, 1]), then :func:`dvclic.metrics.psnr_rgb`;
- PSNR-YUV: (6 Y + U + V) / 8 on the integer planes, peak ``2**bit_depth - 1``
  (:func:`dvclic.metrics.psnr_yuv`);
- MS-SSIM: :func:`dvclic.metrics.ms_ssim_rgb` on the same RGB pictures.

Sequence values are the mean of per-frame values. Rates count every byte the codec produced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import torch

from ..color import YUVFrame, yuv420_to_rgb
from ..errors import DvclicError
from ..metrics import ms_ssim_rgb, psnr_rgb, psnr_yuv

#: How RGB is obtained from YUV for every metric (printed into every results file).
COLOUR_CONVERSION = (
    "BT.709 limited range, bilinear chroma upsampling (centre-sited 4:2:0), RGB clamped to [0, 1]; "
    "metrics computed on each codec's decoded YUV 4:2:0 output against the source YUV"
)

#: Bump when a metric or a rate definition changes: it is part of every cache key.
MEASURE_VERSION = 1


class EvaluationError(DvclicError):
    """An evaluation cannot go on: a decoder disagrees with its encoder, an anchor broke protocol, ..."""


@dataclass(frozen=True)
class FrameMetrics:
    psnr_rgb: float
    psnr_yuv: float
    ms_ssim: float


@torch.no_grad()
def check_measurable(height: int, width: int) -> None:
    """Raise EvaluationError now (before any coding) if a metric cannot handle ``height x width``.

    (S)SIM needs pictures of at least 3x3 (see dvclic.metrics.ms_ssim_per_sample).
    """
    picture = torch.zeros(1, 3, height, width)
    try:
        ms_ssim_rgb(picture, picture)
    except (AssertionError, ValueError) as exc:
        raise EvaluationError(f"MS-SSIM cannot be computed on {width}x{height} pictures ({exc})") from None


@torch.no_grad()
def frame_metrics(decoded: YUVFrame, source: YUVFrame, *, device: torch.device | str = "cpu") -> FrameMetrics:
    """Metrics of one decoded picture against its source (same size and bit depth)."""
    if (decoded.width, decoded.height, decoded.bit_depth) != (source.width, source.height, source.bit_depth):
        raise EvaluationError(
            f"decoded frame is {decoded.width}x{decoded.height} {decoded.bit_depth}-bit, source is "
            f"{source.width}x{source.height} {source.bit_depth}-bit"
        )
    rgb_dec = yuv420_to_rgb(decoded, device=device)
    rgb_src = yuv420_to_rgb(source, device=device)
    return FrameMetrics(psnr_rgb(rgb_dec, rgb_src), psnr_yuv(decoded, source), ms_ssim_rgb(rgb_dec, rgb_src))


def sequence_metrics(decoded: Iterable[YUVFrame], source: Iterable[YUVFrame], *,
                     device: torch.device | str = "cpu", what: str = "decoded video") -> list[FrameMetrics]:
    """Per-frame metrics of two equally long frame streams (read in lockstep, constant memory)."""
    out: list[FrameMetrics] = []
    for index, (dec, src) in enumerate(zip_longest(decoded, source)):
        if dec is None or src is None:
            raise EvaluationError(f"{what}: frame count differs from the source at frame {index}")
        out.append(frame_metrics(dec, src, device=device))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class RDPoint:
    """One rate-distortion point of one codec setting on one sequence.

    quality: dvclic quality index (None for anchors); crf: anchor CRF (None for dvclic).
    bytes: every byte of the coded video (whole .dvc file; anchor packets + extradata).
    bpp: ``bytes * 8 / (W * H * frames)`` with the coded (possibly cropped) W x H.
    bits: ``intra`` (I-frame payloads), ``motion`` / ``residual`` (dvclic P-frame payloads;
        None for anchors, whose P-frames mix both), ``inter`` (all P-frame payloads),
        ``overhead`` (headers, unit framing, checksums; anchors: extradata). They add up to
        ``bytes * 8``.
    encode_fps, decode_fps: frames per second of wall time (see the protocol statement).
    frame_types: one character per frame (``I``/``P``), as coded.
    per_frame: per-frame PSNR-RGB, PSNR-YUV and MS-SSIM lists (kept in the cache, not in results).
    """

    quality: int | None
    crf: int | None
    frames: int
    width: int
    height: int
    bytes: int
    psnr_rgb: float
    psnr_yuv: float
    ms_ssim: float
    encode_fps: float
    decode_fps: float
    bits: dict[str, int | None]
    frame_types: str
    per_frame: dict[str, list[float]] = field(default_factory=dict, compare=False)

    @property
    def bpp(self) -> float:
        return self.bytes * 8.0 / (self.width * self.height * self.frames)

    @classmethod
    def from_frames(cls, metrics: list[FrameMetrics], **fields: Any) -> RDPoint:
        if not metrics:
            raise EvaluationError("no frames were measured")
        per_frame = {key: [getattr(m, key) for m in metrics] for key in ("psnr_rgb", "psnr_yuv", "ms_ssim")}
        return cls(psnr_rgb=_mean(per_frame["psnr_rgb"]), psnr_yuv=_mean(per_frame["psnr_yuv"]),
                   ms_ssim=_mean(per_frame["ms_ssim"]), per_frame=per_frame, frames=len(metrics), **fields)

    def to_dict(self, *, per_frame: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"quality": self.quality} if self.crf is None else {"crf": self.crf}
        out.update({
            "bpp": self.bpp, "bytes": self.bytes, "frames": self.frames, "psnr_rgb": self.psnr_rgb,
            "psnr_yuv": self.psnr_yuv, "ms_ssim": self.ms_ssim, "encode_fps": self.encode_fps,
            "decode_fps": self.decode_fps, "bits": dict(self.bits), "frame_types": self.frame_types,
        })
        if per_frame:
            out["size"] = [self.width, self.height]
            out["per_frame"] = self.per_frame
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RDPoint:
        """Inverse of ``to_dict(per_frame=True)`` (cache files)."""
        return cls(quality=raw.get("quality"), crf=raw.get("crf"), frames=raw["frames"], width=raw["size"][0],
                   height=raw["size"][1], bytes=raw["bytes"], psnr_rgb=raw["psnr_rgb"], psnr_yuv=raw["psnr_yuv"],
                   ms_ssim=raw["ms_ssim"], encode_fps=raw["encode_fps"], decode_fps=raw["decode_fps"],
                   bits=dict(raw["bits"]), frame_types=raw["frame_types"], per_frame=raw.get("per_frame", {}))

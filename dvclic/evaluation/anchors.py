"""Conventional anchors (libx264, libx265, libsvtav1) run in-process through PyAV.

Protocol (low delay, as for the learned codec): tune zerolatency, no B-frames, an I-frame every
``intra_period`` frames (keyint = min-keyint = intra period; ``-1`` -> keyint 100000, i.e. only
the first frame), scene-cut detection off, constant rate factor. Each encoder runs with one
thread so that its bitstream does not depend on the machine (x264's zerolatency sliced threads
would otherwise make one slice per thread). The source is fed at its own bit depth:
``yuv420p`` (8-bit) or ``yuv420p10le`` (10-bit: x264 High 10, x265 Main 10, AV1 10-bit).

Bytes are the sum of all packet sizes plus the codec extradata (no container; headers are
in-band because no global-header flag is set, and x265 runs with ``info=0`` so it writes no
version SEI; x264 cannot turn its version/options SEI off, so those ~hundreds of bytes count).
The packets are decoded back with FFmpeg's decoders (h264, hevc, libdav1d) and measured with
:mod:`dvclic.evaluation.measure`, exactly like dvclic's output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from ..color import YUVFrame
from ..video.pyav_source import frame_to_yuv
from ..video.source import pix_fmt_for_bit_depth
from .measure import EvaluationError, RDPoint, sequence_metrics

#: Anchor families: short name -> (FFmpeg encoder, FFmpeg decoder, default CRFs).
ANCHORS: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "x264": ("libx264", "h264", (23, 27, 31, 35)),
    "x265": ("libx265", "hevc", (23, 27, 31, 35)),
    "svtav1": ("libsvtav1", "libdav1d", (27, 35, 43, 51)),
}
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
#: SVT-AV1 has numbered presets (0 slowest .. 13 fastest); x26x names map onto these.
SVT_PRESETS = {"veryslow": 2, "slower": 4, "slow": 6, "medium": 8, "fast": 10, "faster": 11, "veryfast": 12,
               "superfast": 13, "ultrafast": 13}
#: keyint standing in for "only the first frame is intra" (intra period -1).
INFINITE_KEYINT = 100000
#: What the results say about each family's byte count and settings.
NOTES = {
    "x264": "bytes = packets + extradata (headers in-band); includes x264's version/options SEI, which it "
            "cannot omit; x264 clamps min-keyint to keyint/2+1 (irrelevant with scenecut=0)",
    "x265": "bytes = packets + extradata (headers in-band); info=0 (no version SEI); closed GOP",
    "svtav1": "bytes = packets + extradata (sequence header in-band); pred-struct=1 (low delay), scd=0; "
              "named presets map to SVT numbers (medium=8, veryfast=12)",
}
_PICTURE_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}


def anchor_names() -> list[str]:
    return list(ANCHORS)


def check_anchor(name: str, preset: str) -> None:
    """Raise EvaluationError for an unknown anchor or preset (before any work starts)."""
    if name not in ANCHORS:
        raise EvaluationError(f"unknown anchor {name!r}; valid: {', '.join(ANCHORS)}")
    if name == "svtav1":
        if preset not in SVT_PRESETS and not (preset.isdigit() and 0 <= int(preset) <= 13):
            raise EvaluationError(f"svtav1 preset must be 0..13 or one of {', '.join(SVT_PRESETS)}, got {preset!r}")
    elif preset not in X26X_PRESETS:
        raise EvaluationError(f"{name} preset must be one of {', '.join(X26X_PRESETS)}, got {preset!r}")
    try:
        av.Codec(ANCHORS[name][0], "w")
        av.Codec(ANCHORS[name][1], "r")
    except Exception as exc:  # noqa: BLE001 - FFmpeg builds without the codec raise several types
        raise EvaluationError(f"anchor {name}: this FFmpeg build lacks {ANCHORS[name][0]} ({exc})") from None


@dataclass(frozen=True)
class AnchorSpec:
    """One anchor setting: family (``x264``/``x265``/``svtav1``), preset, CRF and GOP."""

    name: str
    preset: str
    crf: int
    intra_period: int

    @property
    def label(self) -> str:
        """Results label, e.g. ``x265-medium``."""
        return f"{self.name}-{self.preset}"

    @property
    def encoder(self) -> str:
        return ANCHORS[self.name][0]

    @property
    def decoder(self) -> str:
        return ANCHORS[self.name][1]

    def options(self) -> dict[str, str]:
        """The exact libav options passed to the encoder (written into the results)."""
        k = INFINITE_KEYINT if self.intra_period == -1 else self.intra_period
        if self.name == "x264":
            return {"preset": self.preset, "tune": "zerolatency", "crf": str(self.crf),
                    "x264-params": f"keyint={k}:min-keyint={k}:scenecut=0:bframes=0:threads=1"}
        if self.name == "x265":
            return {"preset": self.preset, "tune": "zerolatency", "crf": str(self.crf),
                    "x265-params": f"keyint={k}:min-keyint={k}:scenecut=0:bframes=0:open-gop=0:info=0:"
                                   "frame-threads=1:pools=1:log-level=error"}
        preset = str(SVT_PRESETS.get(self.preset, self.preset))
        return {"preset": preset, "crf": str(self.crf), "svtav1-params": f"keyint={k}:scd=0:pred-struct=1:lp=1"}

    def describe(self, bit_depth: int) -> dict[str, Any]:
        """Everything needed to rerun this encoder setting by hand."""
        return {"encoder": self.encoder, "decoder": self.decoder, "pix_fmt": pix_fmt_for_bit_depth(bit_depth),
                "thread_count": 1, "options": self.options(), "crf": self.crf}


@dataclass(frozen=True)
class AnchorEncoding:
    """What an anchor encoder emitted for one sequence."""

    spec: AnchorSpec
    packets: tuple[bytes, ...]
    keyframes: tuple[bool, ...]
    extradata: bytes
    width: int
    height: int
    bit_depth: int
    encode_seconds: float

    @property
    def num_bytes(self) -> int:
        """Every byte: packets + extradata."""
        return sum(len(p) for p in self.packets) + len(self.extradata)


def to_av_frame(frame: YUVFrame) -> av.VideoFrame:
    """Copy a YUVFrame into a new PyAV frame (``yuv420p`` or ``yuv420p10le``), honouring line sizes."""
    out = av.VideoFrame(frame.width, frame.height, pix_fmt_for_bit_depth(frame.bit_depth))
    for plane, src in zip(out.planes, frame.planes):
        data = src if src.dtype == np.uint8 else src.astype("<u2").view(np.uint8)
        dst = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        dst[:, : data.shape[1]] = data
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def encode_anchor(frames: Iterable[YUVFrame], spec: AnchorSpec, *, width: int, height: int, fps: Fraction,
                  bit_depth: int) -> AnchorEncoding:
    """Encode ``frames`` with ``spec``; returns every packet the encoder emitted (flushed)."""
    if width % 2 or height % 2:
        raise EvaluationError(f"{spec.encoder} codes 4:2:0 only at even sizes, got {width}x{height}")
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner to stdout unless told otherwise
    ctx = av.CodecContext.create(spec.encoder, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = pix_fmt_for_bit_depth(bit_depth)
    ctx.time_base = Fraction(1) / fps
    ctx.framerate = fps
    ctx.thread_count = 1
    ctx.options = spec.options()
    packets: list[av.Packet] = []
    seconds = 0.0
    try:
        ctx.open()
        for index, frame in enumerate(frames):
            picture = to_av_frame(frame)
            picture.pts = index
            start = time.perf_counter()
            packets += ctx.encode(picture)
            seconds += time.perf_counter() - start
        start = time.perf_counter()
        packets += ctx.encode(None)
        seconds += time.perf_counter() - start
    except av.FFmpegError as exc:
        raise EvaluationError(f"{spec.encoder} failed ({_one_line(exc)})") from None
    extradata = bytes(ctx.extradata or b"")
    return AnchorEncoding(spec=spec, packets=tuple(bytes(p) for p in packets),
                          keyframes=tuple(bool(p.is_keyframe) for p in packets), extradata=extradata,
                          width=width, height=height, bit_depth=bit_depth, encode_seconds=seconds)


class DecodedAnchor:
    """Iterates the decoded frames of an :class:`AnchorEncoding`, timing only the decoder calls.

    After iteration: ``seconds`` (decoder time) and ``frame_types`` (``I``/``P``/``B`` ...).
    """

    def __init__(self, encoding: AnchorEncoding) -> None:
        self.encoding = encoding
        self.seconds = 0.0
        self.frame_types = ""

    def __iter__(self) -> Iterator[YUVFrame]:
        enc = self.encoding
        ctx = av.CodecContext.create(enc.spec.decoder, "r")
        if enc.extradata:
            ctx.extradata = enc.extradata
        ctx.thread_count = 1
        pending = [av.Packet(p) for p in enc.packets] + [None]
        for packet in pending:
            start = time.perf_counter()
            try:
                decoded = ctx.decode(packet)
            except av.FFmpegError as exc:
                raise EvaluationError(f"{enc.spec.decoder} could not decode the {enc.spec.encoder} stream "
                                      f"({_one_line(exc)})") from None
            self.seconds += time.perf_counter() - start
            for picture in decoded:
                self.frame_types += _PICTURE_TYPES.get(int(picture.pict_type), "?")
                yield frame_to_yuv(picture, enc.bit_depth)


def measure_anchor_encoding(encoding: AnchorEncoding, source: Iterable[YUVFrame], *, device: str = "cpu") -> RDPoint:
    """Decode ``encoding`` and measure it against ``source`` (the frames that were encoded)."""
    spec = encoding.spec
    decoded = DecodedAnchor(encoding)
    metrics = sequence_metrics(decoded, source, device=device, what=f"{spec.label} crf {spec.crf}")
    if "B" in decoded.frame_types or "b" in decoded.frame_types:
        raise EvaluationError(f"{spec.label} crf {spec.crf} produced B-frames ({decoded.frame_types}); "
                              "the low-delay protocol forbids them")
    payload = [len(p) for p in encoding.packets]
    intra = sum(n for n, key in zip(payload, encoding.keyframes) if key) * 8
    inter = sum(n for n, key in zip(payload, encoding.keyframes) if not key) * 8
    n = len(metrics)
    return RDPoint.from_frames(
        metrics, quality=None, crf=spec.crf, width=encoding.width, height=encoding.height, bytes=encoding.num_bytes,
        encode_fps=n / max(encoding.encode_seconds, 1e-9), decode_fps=n / max(decoded.seconds, 1e-9),
        bits={"intra": intra, "motion": None, "residual": None, "inter": inter,
              "overhead": len(encoding.extradata) * 8},
        frame_types=decoded.frame_types,
    )


def measure_anchor_point(source: Iterable[YUVFrame], spec: AnchorSpec, *, width: int, height: int,
                         fps: Fraction, bit_depth: int, device: str = "cpu") -> RDPoint:
    """Encode, decode and measure one anchor point (``source`` is iterated twice)."""
    encoding = encode_anchor(source, spec, width=width, height=height, fps=fps, bit_depth=bit_depth)
    return measure_anchor_encoding(encoding, source, device=device)

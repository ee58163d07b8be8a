"""Coding entry points: a loaded model, a source, a sink and the coding parameters.

- :func:`encode` reads frames from a :class:`~dvclic.video.VideoSource` and writes a ``.dvc``
  stream to any binary file object (a file, a pipe, ``sys.stdout.buffer``);
- :func:`decode` reads a ``.dvc`` stream from any binary file object (nothing seeks) and writes
  frames to the :class:`~dvclic.video.VideoWriter` its ``open_sink`` returns for the stream's
  video info.

Both work one frame at a time, so memory stays flat in the video's length. They know nothing of
paths or flags: :mod:`dvclic.api` wraps them for files, and the command line wraps that.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import BinaryIO, Callable

import torch

from .bitstream import DEFAULT_MAX_PIXELS, FRAME_TYPE_CHARS, BitstreamReader, BitstreamWriter, SequenceHeader
from .checkpoint import LoadedWeights
from .color import yuv420_to_rgb
from .errors import BitstreamError, InputError
from .metrics import psnr_rgb, psnr_yuv
from .params import CodingParams, ParameterError
from .rdo import mode_label
from .refinement import ProgressFn, codec_profiles, make_compressor
from .sequence import SequenceDecoder, SequenceEncoder
from .store import ModelStore
from .video import VideoInfo, VideoSource, VideoWriter, pix_fmt_for_bit_depth
from .video.padding import crop_to, pad_to_multiple

#: Progress callback: (frames done, total or None).
Progress = Callable[[int, "int | None"], None]


@dataclass
class FrameStats:
    type: str
    bytes: int
    intra_bytes: int = 0
    motion_bytes: int = 0
    residual_bytes: int = 0
    psnr_rgb: float | None = None
    psnr_yuv: float | None = None
    modes: str = ""
    skipped_blocks: int = 0
    exact: bool | None = None
    quality: int | None = None  # the quality the frame unit carries


@dataclass
class CodingReport:
    """What encode/decode report (``--json`` prints ``summary()``)."""

    frames: int
    width: int
    height: int
    bytes: int
    frame_types: str
    fps_key: str
    fps_value: float
    model: str
    quality: int
    intra_period: int
    device: str
    per_frame: list[FrameStats] = field(default_factory=list)

    @property
    def bpp(self) -> float:
        return self.bytes * 8.0 / (self.width * self.height * max(self.frames, 1))

    def summary(self) -> dict:
        out = {
            "frames": self.frames, "width": self.width, "height": self.height, "bytes": self.bytes,
            "bpp": round(self.bpp, 6), "frame_types": self.frame_types, "model": self.model,
            "quality": self.quality, "intra_period": self.intra_period, "device": self.device,
            self.fps_key: round(self.fps_value, 4),
        }
        rgb = [f.psnr_rgb for f in self.per_frame if f.psnr_rgb is not None]
        if rgb:
            out["psnr_rgb"] = round(sum(rgb) / len(rgb), 4)
            out["psnr_yuv"] = round(sum(f.psnr_yuv for f in self.per_frame) / len(rgb), 4)
            out["bits"] = {k: sum(getattr(f, k + "_bytes") for f in self.per_frame) * 8
                           for k in ("intra", "motion", "residual")}
        counts: dict[str, int] = {}
        for f in self.per_frame:
            counts[f.modes] = counts.get(f.modes, 0) + 1
        out["modes"] = counts
        if any(f.type == "P" for f in self.per_frame) and rgb:
            out["skipped_blocks"] = sum(f.skipped_blocks for f in self.per_frame)
        checked = [f.exact for f in self.per_frame if f.exact is not None]
        if checked:
            out["exact"] = all(checked)
            out["inexact_frames"] = [i for i, f in enumerate(self.per_frame) if f.exact is False]
        return out

    def to_dict(self) -> dict:
        return {**self.summary(), "per_frame": [asdict(f) for f in self.per_frame]}


def model_device(loaded: LoadedWeights) -> torch.device:
    return next(loaded.model.parameters()).device


class _Counted:
    """A file object that counts the bytes read or written through it (the stream size, for the
    report); it never seeks."""

    def __init__(self, fp: BinaryIO) -> None:
        self._fp = fp
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fp.read(n)
        self.count += len(data)
        return data

    def write(self, data: bytes) -> int:
        self._fp.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self._fp.flush()

    def seekable(self) -> bool:
        return False


def check_profile(loaded: LoadedWeights, profile: int) -> None:
    """``profile`` must be offered by the model's intra or residual codec."""
    offered = sorted(set(codec_profiles(loaded.model.intra)) | set(codec_profiles(loaded.model.pframe.residual_codec)))
    if not offered:
        raise ParameterError("profile", f"model {loaded.config.name!r} has no codec with entropy-model profiles")
    if profile not in offered:
        raise ParameterError("profile", f"must be one of {offered}, got {profile}")


def encode(loaded: LoadedWeights, source: VideoSource, sink: BinaryIO, params: CodingParams = CodingParams(), *,
           reconstruction: VideoWriter | None = None, progress: Progress | None = None,
           refine_progress: ProgressFn | None = None) -> CodingReport:
    """Encode every frame of ``source`` (at most ``params.frames``) into ``sink``.

    ``reconstruction``: also write the encoder's reconstruction, which the decoder reproduces
    exactly (the caller closes it). ``sink`` is never sought; the caller owns and closes it.
    """
    model, cfg = loaded.model, loaded.config
    p = params.for_model(model.num_qualities, cfg.intra_period, cfg.intra_offset)
    dev = model_device(loaded)
    info = source.info
    header = SequenceHeader(
        width=info.width, height=info.height, frame_count=0, fps=info.fps, bit_depth=info.bit_depth,
        intra_period=p.intra_period, quality=p.quality, model=cfg.name, weights_sha256=loaded.sha256,
    )
    if p.profile is not None:
        check_profile(loaded, p.profile)
    compress = make_compressor(p.refine_steps, cfg.lambdas, profile=p.profile, progress=refine_progress,
                               precision=p.refine_precision)
    encoder = SequenceEncoder(model, quality=p.quality, intra_period=p.intra_period,
                              output_size=(info.height, info.width), bit_depth=info.bit_depth,
                              refine=compress, modes=p.mode_set, header=header, intra_offset=p.intra_offset)
    report = CodingReport(0, info.width, info.height, 0, "", "encode_fps", 0.0, cfg.name, p.quality,
                          p.intra_period, str(dev))
    total = info.frame_count if p.frames is None or info.frame_count is None else min(p.frames, info.frame_count)
    out = _Counted(sink)
    writer = BitstreamWriter(out, header)
    start = time.perf_counter()
    for yuv in source:
        if p.frames is not None and len(report.per_frame) >= p.frames:
            break
        rgb = yuv420_to_rgb(yuv).to(dev)
        enc = encoder.encode(pad_to_multiple(rgb, model.size_multiple))
        x_hat = crop_to(enc.x_hat, info.height, info.width)
        n = writer.write_frame(enc.unit)
        if reconstruction is not None:
            reconstruction.write(enc.yuv)
        report.per_frame.append(FrameStats(
            FRAME_TYPE_CHARS[enc.unit.frame_type], n, enc.intra_bytes, enc.motion_bytes, enc.residual_bytes,
            psnr_rgb(x_hat.cpu(), rgb.cpu()), psnr_yuv(enc.yuv, yuv),
            modes=mode_label(enc.unit.frame_type, enc.unit.modes), skipped_blocks=enc.skipped_blocks,
            quality=enc.unit.quality))
        if progress:
            progress(len(report.per_frame), total)
    if not report.per_frame:
        raise InputError("the input has no frames to encode")
    writer.close()
    elapsed = time.perf_counter() - start
    report.frames = len(report.per_frame)
    report.bytes = out.count
    report.frame_types = "".join(f.type for f in report.per_frame)
    report.fps_value = report.frames / max(elapsed, 1e-9)
    return report


def decode(store: ModelStore, stream: BinaryIO, open_sink: Callable[[VideoInfo], VideoWriter], *,
           weights: str | None = None, strict: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
           progress: Progress | None = None) -> CodingReport:
    """Decode a ``.dvc`` stream read from ``stream`` (never sought) into ``open_sink(info)``.

    The weights come from ``store``: ``weights`` (checked against the stream), else the file the
    stream names by SHA-256. Version-2 streams carry a hash of the encoder's reconstruction per
    frame; the report says whether every decoded frame matches it (``exact``), and ``strict``
    makes a mismatch an error. ``max_pixels`` limits width * height. The sink is closed on
    success and aborted on any error.
    """
    counted = _Counted(stream)
    reader = BitstreamReader(counted, max_pixels=max_pixels)
    h = reader.header
    loaded = store.for_stream(h, weights)
    model = loaded.model
    reader.check_quality(model.num_qualities)
    m = model.size_multiple
    padded = (-(-h.height // m) * m, -(-h.width // m) * m)
    decoder = SequenceDecoder(model, padded_size=padded, output_size=(h.height, h.width),
                              bit_depth=h.bit_depth, version=reader.version, header=h)
    total = None if reader.open_ended else h.frame_count
    info = VideoInfo(width=h.width, height=h.height, fps=h.fps, bit_depth=h.bit_depth,
                     pix_fmt=pix_fmt_for_bit_depth(h.bit_depth), frame_count=total)
    report = CodingReport(0, h.width, h.height, 0, "", "decode_fps", 0.0, h.model, h.quality, h.intra_period,
                          str(model_device(loaded)))
    start = time.perf_counter()
    with open_sink(info) as writer:
        for unit in reader:
            dec = decoder.decode(unit)
            if strict and dec.exact is False:
                raise BitstreamError(f"frame {len(report.per_frame)} at byte offset {unit.offset}: the decoded "
                                     "frame differs from the encoder's reconstruction (--strict)")
            writer.write(dec.yuv)
            report.per_frame.append(FrameStats(FRAME_TYPE_CHARS[unit.frame_type], unit.num_bytes,
                                               modes=mode_label(unit.frame_type, unit.modes), exact=dec.exact,
                                               quality=unit.quality))
            if progress:
                progress(len(report.per_frame), total)
    elapsed = time.perf_counter() - start
    report.frames = len(report.per_frame)
    report.bytes = counted.count
    report.frame_types = "".join(f.type for f in report.per_frame)
    report.fps_value = report.frames / max(elapsed, 1e-9)
    return report

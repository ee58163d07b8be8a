"""Anchors through PyAV: the bytes are what the encoder emitted, the PSNR is what its frames give."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np
import pytest

from dvclic.color import yuv420_to_rgb
from dvclic.evaluation.anchors import AnchorSpec, encode_anchor, measure_anchor_encoding, measure_anchor_point
from dvclic.evaluation.measure import EvaluationError, sequence_metrics
from dvclic.video import open_video
from dvclic.video.pyav_source import frame_to_yuv

from .conftest import shared_file


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reencode(frames, spec: AnchorSpec, width: int, height: int, fps: Fraction, bit_depth: int):
    """Encode again with the options the anchor records, counting bytes independently."""
    described = spec.describe(bit_depth)
    ctx = av.CodecContext.create(described["encoder"], "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, described["pix_fmt"]
    ctx.time_base, ctx.framerate = 1 / fps, fps
    ctx.thread_count = described["thread_count"]
    ctx.options = described["options"]
    packets = []
    for i, f in enumerate(frames):
        planes = [p if p.dtype == np.uint8 else p.astype("<u2").view(np.uint8) for p in f.planes]
        packed = np.concatenate([p.ravel() for p in planes])
        picture = av.VideoFrame(width, height, described["pix_fmt"])
        offset = 0
        for plane, src in zip(picture.planes, planes):  # line sizes may be padded
            rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
            rows[:, : src.shape[1]] = packed[offset: offset + src.size].reshape(src.shape)
            offset += src.size
        picture.pts = i
        packets += ctx.encode(picture)
    packets += ctx.encode(None)
    return [bytes(p) for p in packets], bytes(ctx.extradata or b"")


def _direct_psnrs(packets: list[bytes], decoder: str, sources, bit_depth: int) -> tuple[float, float]:
    """Mean PSNR-YUV (6:1:1) and PSNR-RGB of independently decoded frames, computed with numpy."""
    ctx = av.CodecContext.create(decoder, "r")
    decoded = [frame_to_yuv(f, bit_depth) for p in [*packets, None]
               for f in ctx.decode(av.Packet(p) if p is not None else None)]
    assert len(decoded) == len(sources)
    peak = (1 << bit_depth) - 1
    yuv, rgb = [], []
    for dec, src in zip(decoded, sources):
        plane = [10 * math.log10(peak**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
                 for a, b in zip(dec.planes, src.planes)]
        yuv.append((6 * plane[0] + plane[1] + plane[2]) / 8)
        mse = np.mean((yuv420_to_rgb(dec).double().numpy() - yuv420_to_rgb(src).double().numpy()) ** 2)
        rgb.append(10 * math.log10(1 / mse))
    return float(np.mean(yuv)), float(np.mean(rgb))


def test_x265_bytes_and_psnr_match_an_independent_count() -> None:
    path = shared_file("video/CiscoVT2people_320x192_12.yuv")
    frames = list(open_video(path, max_frames=5))
    spec = AnchorSpec(name="x265", preset="veryfast", crf=31, intra_period=4)
    fps = Fraction(12)
    encoding = encode_anchor(frames, spec, width=320, height=192, fps=fps, bit_depth=8)
    packets, extradata = _reencode(frames, spec, 320, 192, fps, 8)
    assert list(encoding.packets) == packets  # threads=1: deterministic
    assert encoding.num_bytes == sum(len(p) for p in packets) + len(extradata)

    point = measure_anchor_encoding(encoding, frames)
    assert point.bytes == sum(len(p) for p in packets) + len(extradata)
    assert point.bpp == pytest.approx(point.bytes * 8 / (320 * 192 * 5))
    assert point.frame_types == "IPPPI"  # keyint 4, no B-frames, scene cut off
    bits = point.bits
    assert bits["intra"] + bits["inter"] + bits["overhead"] == point.bytes * 8
    assert bits["motion"] is None and bits["residual"] is None
    psnr_yuv, psnr_rgb = _direct_psnrs(packets, "hevc", frames, 8)
    assert point.psnr_yuv == pytest.approx(psnr_yuv, abs=1e-9)
    assert point.psnr_rgb == pytest.approx(psnr_rgb, abs=1e-6)
    assert 0.5 < point.ms_ssim <= 1.0
    assert "info=0" in spec.options()["x265-params"] and "bframes=0" in spec.options()["x265-params"]


def test_x264_codes_10bit_sources_at_10bit() -> None:
    path = shared_file("video/Sparks_480x270_30_10bit.yuv")
    frames = list(open_video(path, max_frames=2))
    spec = AnchorSpec(name="x264", preset="veryfast", crf=30, intra_period=-1)
    point = measure_anchor_point(frames, spec, width=480, height=270, fps=Fraction(30), bit_depth=10)
    assert spec.describe(10)["pix_fmt"] == "yuv420p10le"
    assert point.frame_types == "IP"
    assert 25 < point.psnr_yuv < 100
    assert "keyint=100000" in spec.options()["x264-params"]


def test_decoded_and_source_must_have_the_same_frames() -> None:
    path = shared_file("video/CiscoVT2people_320x192_12.yuv")
    frames = list(open_video(path, max_frames=2))
    with pytest.raises(EvaluationError, match="frame count differs from the source at frame 1"):
        sequence_metrics(frames, frames[:1])

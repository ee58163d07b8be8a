"""Benchmark a video model: per-frame P-frame encode / decode time by stage, kMAC/pixel.

The ordinary :class:`~dvclic.sequence.SequenceEncoder` / :class:`~dvclic.sequence.SequenceDecoder`
code the frames (first frame I, then P-frames, intra period -1); timers wrapped around the
model's parts split each P-frame into flow estimation, motion coding, motion compensation and
residual coding, and into network time vs entropy-coding time.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import Tensor

from image_codecs.complexity import count_kmacs

from ..model import VideoCodecModel
from ..sequence import SequenceDecoder, SequenceEncoder
from ..video.padding import pad_to_multiple
from .image import codec_kmacs
from .timers import StageTimer, entropy_coding_seconds, peak_memory_mb, reset_peak_memory, wrap_codec


def video_kmacs(model: VideoCodecModel, height: int, width: int) -> dict[str, float | None]:
    """kMAC/pixel of every part at a padded ``height x width``, and totals.

    ``encoder`` (P-frame) = estimator + motion encoder + motion synthesis + motion compensation +
    residual encoder + residual synthesis (the encoder reconstructs the frame, its next
    reference); ``decoder`` (P-frame) = motion decoder + motion compensation + residual decoder.
    ``intra_encoder`` / ``intra_decoder`` likewise for I-frames. A total is None when a part
    could not be counted.
    """
    pf = model.pframe
    pixels = height * width
    out: dict[str, float | None] = {}
    out.update(codec_kmacs(model.intra, height, width, "intra."))
    out.update(codec_kmacs(pf.motion_codec, height, width, "motion."))
    out.update(codec_kmacs(pf.residual_codec, height, width, "residual."))
    param = next(model.parameters())
    frame = torch.zeros(1, 3, height, width, device=param.device)
    flow = torch.zeros(1, 2, height, width, device=param.device)
    out["estimator"] = count_kmacs(pf.estimator, (frame, frame), pixels)
    out["motion_compensation"] = count_kmacs(pf.predict, (frame, flow), pixels)

    def total(*keys: str) -> float | None:
        values = [out.get(k) for k in keys]
        return None if any(v is None for v in values) else sum(values)  # type: ignore[misc]

    out["encoder"] = total("estimator", "motion.encoder", "motion.synthesis", "motion_compensation",
                           "residual.encoder", "residual.synthesis")
    out["decoder"] = total("motion.decoder", "motion_compensation", "residual.decoder")
    out["intra_encoder"] = total("intra.encoder", "intra.synthesis")
    out["intra_decoder"] = total("intra.decoder")
    return out


def _wrap_model(timer: StageTimer, model: VideoCodecModel) -> None:
    pf = model.pframe
    timer.wrap(pf.estimator, "forward", "flow")
    timer.wrap(pf, "predict", "motion_compensation")
    wrap_codec(timer, pf.motion_codec, "motion")
    wrap_codec(timer, pf.residual_codec, "residual")
    wrap_codec(timer, model.intra, "intra")


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


@torch.no_grad()
def bench_video_model(model: VideoCodecModel, frames: list[Tensor], *, quality: int, warmup: int, repeat: int,
                      device: torch.device) -> dict[str, Any]:
    """Code ``frames`` (each 1 x 3 x H x W in [0, 1]; at least 2) ``warmup + repeat`` times.

    Returns mean seconds per P-frame (``encode_s``, ``decode_s`` and their stages and splits),
    the I-frame's times, fps (P-frames), bytes, kMAC/pixel and peak memory.
    """
    if len(frames) < 2:
        raise ValueError("a video benchmark needs at least 2 frames (one I-frame, then P-frames)")
    model = model.to(device).eval()
    height, width = frames[0].shape[-2:]
    xs = [pad_to_multiple(f.to(device), model.size_multiple) for f in frames]
    padded = tuple(xs[0].shape[-2:])
    kmacs = video_kmacs(model, *padded)
    timer = StageTimer(device)
    _wrap_model(timer, model)
    p_enc: dict[str, list[float]] = {}
    p_dec: dict[str, list[float]] = {}
    i_enc: list[float] = []
    i_dec: list[float] = []
    p_bytes: list[int] = []
    i_bytes: list[int] = []

    def record(store: dict[str, list[float]], values: dict[str, float]) -> None:
        for k, v in values.items():
            store.setdefault(k, []).append(v)

    reset_peak_memory(device)
    try:
        for run in range(warmup + repeat):
            measured = run >= warmup
            encoder = SequenceEncoder(model, quality=quality, intra_period=-1)
            decoder = SequenceDecoder(model, padded_size=padded)
            for index, x in enumerate(xs):
                timer.reset()
                with timer.stage("frame"):
                    coded = encoder.encode(x)
                enc = dict(timer.seconds)
                timer.reset()
                with timer.stage("frame"):
                    x_hat = decoder.decode(coded.unit).x_hat
                dec = dict(timer.seconds)
                if not torch.equal(x_hat, coded.x_hat):
                    raise RuntimeError(f"frame {index}: decoder output differs from the encoder's reconstruction")
                if not measured:
                    continue
                if index == 0:
                    i_enc.append(enc["frame"])
                    i_dec.append(dec["frame"])
                    i_bytes.append(coded.unit.num_bytes)
                    continue
                enc_entropy = (entropy_coding_seconds(enc, "motion", "compress")
                               + entropy_coding_seconds(enc, "residual", "compress"))
                dec_entropy = (entropy_coding_seconds(dec, "motion", "decompress")
                               + entropy_coding_seconds(dec, "residual", "decompress"))
                record(p_enc, {"total": enc["frame"], "flow": enc.get("flow", 0.0),
                               "motion_coding": enc.get("motion.compress", 0.0),
                               "motion_compensation": enc.get("motion_compensation", 0.0),
                               "residual_coding": enc.get("residual.compress", 0.0), "entropy_coding": enc_entropy})
                record(p_dec, {"total": dec["frame"], "motion_decoding": dec.get("motion.decompress", 0.0),
                               "motion_compensation": dec.get("motion_compensation", 0.0),
                               "residual_decoding": dec.get("residual.decompress", 0.0),
                               "entropy_coding": dec_entropy})
                p_bytes.append(coded.unit.num_bytes)
    finally:
        timer.unwrap()
    peak, peak_kind = peak_memory_mb(device)
    enc_m = {k: _mean(v) for k, v in p_enc.items()}
    dec_m = {k: _mean(v) for k, v in p_dec.items()}
    enc_stages = {k: enc_m[k] for k in ("flow", "motion_coding", "motion_compensation", "residual_coding")}
    dec_stages = {k: dec_m[k] for k in ("motion_decoding", "motion_compensation", "residual_decoding")}
    enc_stages["other"] = enc_m["total"] - sum(enc_stages.values())
    dec_stages["other"] = dec_m["total"] - sum(dec_stages.values())
    return {
        "fps_basis": "P-frames (mean seconds per P-frame; the I-frame is reported separately)",
        "encode_s": enc_m["total"], "decode_s": dec_m["total"],
        "encode_fps": 1.0 / enc_m["total"], "decode_fps": 1.0 / dec_m["total"],
        "encode_split_s": {"network": enc_m["total"] - enc_m["entropy_coding"], "entropy_coding": enc_m["entropy_coding"]},
        "decode_split_s": {"network": dec_m["total"] - dec_m["entropy_coding"], "entropy_coding": dec_m["entropy_coding"]},
        "encode_stages_s": enc_stages, "decode_stages_s": dec_stages,
        "i_frame": {"encode_s": _mean(i_enc), "decode_s": _mean(i_dec), "bytes": int(_mean(i_bytes))},
        "bytes": int(round(_mean(p_bytes))), "bpp": _mean(p_bytes) * 8 / (height * width),
        "frames": len(frames), "padded_size": {"height": padded[0], "width": padded[1]},
        "kmac_per_pixel": kmacs, "peak_mem_mb": peak, "peak_mem_kind": peak_kind,
    }

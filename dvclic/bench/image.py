"""Benchmark one image codec: compress / decompress time (network vs entropy coding), kMAC/pixel."""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import Tensor

from image_codecs import ImageCodec
from image_codecs.complexity import codec_complexity
from image_codecs.transform_codec import TransformCodec

from ..video.padding import pad_to_multiple
from .timers import StageTimer, entropy_coding_seconds, peak_memory_mb, reset_peak_memory, wrap_codec


def codec_kmacs(codec: ImageCodec, height: int, width: int, prefix: str = "") -> dict[str, float]:
    """kMAC/pixel per part (``analysis``, ``synthesis``, ..., ``encoder``, ``decoder``) at a padded
    size, from :func:`image_codecs.complexity.codec_complexity`; empty when the codec is not a
    TransformCodec with a hyper-synthesis network (the counter cannot split it)."""
    if not isinstance(codec, TransformCodec):
        return {}
    try:
        parts = codec_complexity(codec, height, width)
    except TypeError:
        return {}
    return {prefix + k: v for k, v in parts.items()}


@torch.no_grad()
def bench_image_codec(codec: ImageCodec, picture: Tensor, *, quality: int, warmup: int, repeat: int,
                      device: torch.device, profile: int | None = None) -> dict[str, Any]:
    """Time ``codec.compress`` / ``decompress`` on ``picture`` (1 x 3 x H x W, padded here).

    Returns seconds per picture (mean over ``repeat`` runs after ``warmup``), split into
    entropy-coding time (the entropy model's compress/decompress minus its h_s network) and
    network time (the rest: g_a, h_a, h_s, g_s — compress also reconstructs the picture),
    bytes and bpp of the coded picture, kMAC/pixel and peak memory. ``profile``: the entropy-model
    profile of codecs that have profiles (``msp``: decoding passes; None: the codec's default).
    """
    options = {} if profile is None else {"profile": profile}
    codec = codec.to(device).eval()
    height, width = picture.shape[-2:]
    x = pad_to_multiple(picture.to(device), codec.size_multiple)
    padded = tuple(x.shape[-2:])
    kmacs = codec_kmacs(codec, *padded)
    timer = StageTimer(device)
    wrap_codec(timer, codec, "codec")
    runs: dict[str, list[float]] = {"encode": [], "decode": [], "encode_entropy": [], "decode_entropy": []}
    reset_peak_memory(device)
    try:
        for i in range(warmup + repeat):
            timer.reset()
            coded = codec.compress(x, quality, **options)
            enc, enc_entropy = timer.seconds["codec.compress"], entropy_coding_seconds(timer.seconds, "codec", "compress")
            timer.reset()
            x_hat = codec.decompress(coded.strings, padded, quality)
            dec, dec_entropy = timer.seconds["codec.decompress"], entropy_coding_seconds(timer.seconds, "codec", "decompress")
            if i >= warmup:
                for key, value in zip(runs, (enc, dec, enc_entropy, dec_entropy)):
                    runs[key].append(value)
    finally:
        timer.unwrap()
    if not torch.equal(x_hat, coded.x_hat):
        raise RuntimeError("decompress() did not reproduce compress()'s reconstruction")
    peak, peak_kind = peak_memory_mb(device)
    mean = {k: statistics.fmean(v) for k, v in runs.items()}
    return {
        "encode_s": mean["encode"], "decode_s": mean["decode"],
        "encode_fps": 1.0 / mean["encode"], "decode_fps": 1.0 / mean["decode"],
        "encode_split_s": {"network": mean["encode"] - mean["encode_entropy"], "entropy_coding": mean["encode_entropy"]},
        "decode_split_s": {"network": mean["decode"] - mean["decode_entropy"], "entropy_coding": mean["decode_entropy"]},
        "encode_s_runs": runs["encode"], "decode_s_runs": runs["decode"],
        "bytes": coded.num_bytes, "bpp": coded.num_bytes * 8 / (height * width),
        "padded_size": {"height": padded[0], "width": padded[1]},
        "kmac_per_pixel": kmacs, "peak_mem_mb": peak, "peak_mem_kind": peak_kind,
    }

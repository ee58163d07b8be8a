"""compressai's ``mbt2018`` (Minnen 2018: hyperprior + autoregressive context model) on the same
picture and device, as the reference for decoding speed.

Random initialisation (``pretrained=False``) is enough for timing: the network cost does not
depend on the weights, and its serial context-model decoding dominates either way; the bytes
and entropy-coding time of random weights are not representative, so only times are reported.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import Tensor

from ..video.padding import pad_to_multiple
from .timers import StageTimer

COMPARE_MODELS = ("mbt2018",)


@torch.no_grad()
def bench_mbt2018(picture: Tensor, *, warmup: int, repeat: int, device: torch.device, quality: int = 3) -> dict[str, Any]:
    """Mean compress / decompress seconds of ``compressai.zoo.mbt2018(quality)`` (random init)."""
    from compressai.zoo import mbt2018

    torch.manual_seed(0)
    net = mbt2018(quality=quality, pretrained=False).to(device).eval()
    net.update(force=True)
    x = pad_to_multiple(picture.to(device), 64)
    timer = StageTimer(device)
    enc: list[float] = []
    dec: list[float] = []
    for run in range(warmup + repeat):
        timer.reset()
        with timer.stage("encode"):
            coded = net.compress(x)
        with timer.stage("decode"):
            net.decompress(coded["strings"], coded["shape"])
        if run >= warmup:
            enc.append(timer.seconds["encode"])
            dec.append(timer.seconds["decode"])
    return {"compare_model": f"compressai.zoo.mbt2018(quality={quality}, pretrained=False)",
            "compare_note": "random init, timing only (autoregressive context model, serial decoding)",
            "compare_encode_s": statistics.fmean(enc), "compare_decode_s": statistics.fmean(dec)}

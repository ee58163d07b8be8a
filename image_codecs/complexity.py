"""Multiply-accumulate counts (kMAC per pixel) for codec components.

Counts come from ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2).
It counts matrix products and convolutions, including ``ConvTranspose2d``
(input positions x kernel x channels) and compressai's GDN/IGDN, which are a
1x1 ``conv2d`` on x². Element-wise work (activations, the quality gain, the
square root in GDN, bias adds) is not counted, as in the papers' kMAC/pixel
tables.

Per-pixel numbers divide by the pixel count of the *picture* (H x W of the
codec input), not of each layer's own output, so the parts of one codec add
up: ``decoder = synthesis + hyper_synthesis``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from .transform_codec import TransformCodec


def _count_macs(fn: Callable[..., Any], inputs: tuple[Any, ...]) -> tuple[int, Any]:
    """Run ``fn(*inputs)`` without autograd; return (MACs, output)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = fn(*inputs)
    return counter.get_total_flops() // 2, out


def count_kmacs(fn: Callable[..., Any], inputs: tuple[Any, ...], pixels: int) -> float:
    """kMAC per pixel of ``fn(*inputs)`` (a module or any callable), divided by ``pixels``."""
    if pixels <= 0:
        raise ValueError(f"pixels must be positive, got {pixels}")
    macs, _ = _count_macs(fn, inputs)
    return macs / pixels / 1000.0


def count_kmac_per_pixel(fn: Callable[..., Any], *inputs: Any) -> float:
    """kMAC per pixel of the output, for a callable returning one ``B x C x H x W`` tensor.

    Pixels = H x W of that output (per picture of the batch, so batch size does
    not change the result).
    """
    macs, out = _count_macs(fn, inputs)
    if not isinstance(out, Tensor) or out.dim() != 4:
        raise TypeError("count_kmac_per_pixel needs a callable returning a B x C x H x W tensor; use count_kmacs")
    return macs / (out.shape[0] * out.shape[-2] * out.shape[-1]) / 1000.0


def codec_complexity(codec: TransformCodec, height: int, width: int) -> dict[str, float]:
    """kMAC per picture pixel of each part of a TransformCodec at ``height x width``.

    Keys: ``analysis`` (g_a), ``hyper_analysis`` (h_a), ``hyper_synthesis`` (h_s),
    ``synthesis`` (inverse gain + g_s), ``decoder`` = synthesis + hyper_synthesis,
    ``encoder`` = analysis + hyper_analysis + hyper_synthesis (the encoder needs
    the means/scales too). Excludes entropy coding itself and any encode-time
    refinement (SGA multiplies the encoder's cost by the number of steps).

    ``hyper_synthesis`` is the entropy model's ``h_s``. Entropy models with a
    context network (``context_calls(profile)`` and ``context_params``, e.g. MSP's
    ProgressiveGaussian) add ``context``: one call's cost times the calls of the
    default profile, counted in both ``decoder`` and ``encoder``.
    """
    h_s = getattr(codec.entropy, "h_s", None)
    if not isinstance(h_s, torch.nn.Module):
        raise TypeError(f"{type(codec.entropy).__name__} has no h_s module; cannot count its hyper-synthesis")
    param = next(codec.parameters())
    x = torch.zeros(1, codec.in_channels, height, width, device=param.device, dtype=param.dtype)
    codec.check_size(x)
    pixels = height * width
    with torch.no_grad():
        y, z = codec.analysis(x, 0)
        z_hat = torch.round(z)
        y_hat = torch.round(y)
    parts = {
        "analysis": count_kmacs(codec.g_a, (x,), pixels),
        "hyper_analysis": count_kmacs(codec.entropy.hyper_analysis, (y,), pixels),
        "hyper_synthesis": count_kmacs(h_s, (z_hat,), pixels),
        "synthesis": count_kmacs(codec.synthesis, (y_hat, 0), pixels),
    }
    context = 0.0
    context_calls = getattr(codec.entropy, "context_calls", None)
    if callable(context_calls):
        with torch.no_grad():
            scales, means = codec.entropy.params(z_hat)
        known = torch.zeros_like(y_hat, dtype=torch.bool)
        per_call = count_kmacs(codec.entropy.context_params, (scales, means, y_hat, known), pixels)
        context = parts["context"] = per_call * context_calls(codec.entropy.default_profile)
    parts["decoder"] = parts["synthesis"] + parts["hyper_synthesis"] + context
    parts["encoder"] = parts["analysis"] + parts["hyper_analysis"] + parts["hyper_synthesis"] + context
    return parts

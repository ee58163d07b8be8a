"""Exact entropy parameters: the hyper-synthesis computed on integers.

After Ballé, Johnston and Minnen (2019), "Integer networks for data compression with
latent-variable models". The CDF table of every y symbol is chosen by comparing a
predicted scale with the scale table, and y is coded around a predicted mean. Computed in
floating point, those predictions depend on the order of the sums inside the convolutions
(thread count, CPU kernel, GPU), so a scale next to a table boundary can select another
table on another machine, and the decoder loses sync. :class:`IntegerHyperSynthesis` gives
the same table indexes and the same means on every machine.

It is derived from the trained float ``h_s`` (post-training; nothing is retrained):

- **weights:** one power-of-two step ``2^e_c`` per output channel, ``W_int = round(W / 2^e_c)``
  with ``|W_int| < 2^(bits-1)`` (``bits`` = :data:`WEIGHT_BITS`, fewer if the exactness bound
  needs it); biases in the units of the layer's accumulator.
- **activations:** integers below a per-layer limit ``A`` (about 2^30), with one power-of-two
  step per layer and picture, the smallest that holds the picture's largest value (a maximum
  of exact values, so encoder and decoder find the same step; no calibration data is needed,
  and a crafted stream only moves the step). Biases are scaled to that step when the layer runs.
- **convolutions** run in float64 on these integers. Every product and every partial sum is
  an integer of magnitude at most ``A * sum|W_int| + |b_int| < 2^53`` (``A`` is chosen per layer
  from the weights, and the step has a floor that keeps ``|b_int|`` below 2^51), so float64
  represents all of them exactly and the result does not depend on the summation order or
  the kernel. Transform-based kernels
  (Winograd, FFT) would break this; on CUDA cuDNN is switched off for these calls, and
  PyTorch's CPU kernels for float64 are im2col + BLAS.
- **requantisation** multiplies by a power of two (exact) and rounds (exact); LeakyReLU
  multiplies negatives by its slope and rounds. Elementwise IEEE-754 operations are
  correctly rounded, so they agree on every machine.
- **the last layer** gives scales and means in fixed point (step ``2^-FRACTION_BITS``). The
  table index counts the scale table entries below the scale (compressai's
  ``build_indexes`` rule, on exact values), and the mean is an exactly representable float32.

The derivation itself uses only exact operations (powers of two, rounding, integer sums,
``max``) and scalar IEEE arithmetic, so every machine derives the same integers from the same
weights file. The reconstruction after ``g_s`` stays floating point (bounded, not exact,
across machines: see the README).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: Bits of a weight, sign included.
WEIGHT_BITS = 14
#: Activations stay below 2^ACT_BITS (fewer where a layer's weights need it).
ACT_BITS = 30
#: Fraction bits of the output scales and means (means up to 1024 in magnitude).
FRACTION_BITS = 14
#: Means are clipped so that ``mean * 2^FRACTION_BITS`` fits float32's 24-bit significand.
MEAN_MAX = (1 << 24) - 1
#: Sums of products stay below 2^ACC_BITS; biases below 2^BIAS_BITS; together under 2^53.
ACC_BITS = 52
BIAS_BITS = 51
#: Floor of an activation exponent (an all-zero picture with zero biases).
MIN_EXPONENT = -60


class UnsupportedSynthesisError(ValueError):
    """The hyper-synthesis has a layer the integer version cannot compute exactly."""


@dataclass(frozen=True)
class _Layer:
    """One convolution of the integer network (float64 tensors holding exact values)."""

    weight: Tensor          # W_int (integers), in the layout of the float layer
    weight_unit: Tensor     # [C_out] 2^e_c: W ~ W_int * 2^e_c
    bias: Tensor            # [C_out] the float bias
    limit: int              # the input's magnitude stays <= limit
    min_exponent: int       # the input's step is at least 2^min_exponent (keeps |b_int| < 2^51)
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    slope: float | None     # LeakyReLU after the layer (0.0 for ReLU), None for the last layer

    def to(self, device: torch.device) -> "_Layer":
        return _Layer(self.weight.to(device), self.weight_unit.to(device), self.bias.to(device), self.limit,
                      self.min_exponent, self.transposed, self.stride, self.padding, self.output_padding,
                      self.slope)


def _exponent_at_least(value: float) -> int:
    """The smallest e with 2^e >= value (value > 0), exactly."""
    mantissa, exp = math.frexp(value)  # value = mantissa * 2^exp, 0.5 <= mantissa < 1
    return exp - 1 if mantissa == 0.5 else exp


def _square(conv: nn.Module) -> tuple[int, int, int]:
    """(stride, padding, output_padding) of a layer with equal height and width settings."""
    stride, padding = conv.stride, conv.padding
    output_padding = getattr(conv, "output_padding", (0, 0))
    if (conv.groups != 1 or conv.dilation != (1, 1) or isinstance(padding, str) or stride[0] != stride[1]
            or padding[0] != padding[1] or output_padding[0] != output_padding[1]
            or getattr(conv, "padding_mode", "zeros") != "zeros"):
        raise UnsupportedSynthesisError(f"unsupported convolution settings in {conv}")
    return stride[0], padding[0], output_padding[0]


def _layers(h_s: nn.Module) -> list[tuple[nn.Module, float | None]]:
    """(convolution, slope of the activation after it or None) for a Sequential h_s."""
    modules = list(h_s.children()) if isinstance(h_s, nn.Sequential) else [h_s]
    out: list[tuple[nn.Module, float | None]] = []
    for m in modules:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            out.append((m, None))
        elif isinstance(m, (nn.LeakyReLU, nn.ReLU)) and out and out[-1][1] is None:
            slope = float(m.negative_slope) if isinstance(m, nn.LeakyReLU) else 0.0
            out[-1] = (out[-1][0], slope)
        else:
            raise UnsupportedSynthesisError(
                f"integer entropy parameters need a hyper-synthesis of convolutions, each optionally "
                f"followed by a (leaky) ReLU; found {type(m).__name__}")
    if not out or out[-1][1] is not None:
        raise UnsupportedSynthesisError("the hyper-synthesis must end with a convolution")
    return out


def _integer_layer(conv: nn.Module, slope: float | None) -> _Layer:
    w = conv.weight.detach().to(device="cpu", dtype=torch.float64)
    d = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    per_out = w.transpose(0, d).reshape(w.shape[d], -1)        # C_out x fan-in
    n_out = per_out.shape[0]
    b = (conv.bias.detach().to(device="cpu", dtype=torch.float64) if conv.bias is not None
         else torch.zeros(n_out, dtype=torch.float64))
    if not (torch.isfinite(per_out).all() and torch.isfinite(b).all()):
        raise UnsupportedSynthesisError(f"{conv} has non-finite weights")
    limit_w = float((1 << (WEIGHT_BITS - 1)) - 1)
    # e_c: the smallest power of two with peak / 2^e_c <= limit (exact per channel).
    exps = [(_exponent_at_least(p / limit_w) if p > 0 else 0) for p in per_out.abs().amax(1).tolist()]
    unit = torch.tensor([math.ldexp(1.0, e) for e in exps], dtype=torch.float64)
    w_int = torch.round(per_out / unit[:, None])   # division by a power of two: exact
    l1 = int(w_int.abs().to(torch.int64).sum(1).max())
    # Input limit: the largest 2^k - 1 with limit * l1 < 2^ACC_BITS.
    k = min(ACT_BITS, ACC_BITS - max(l1, 1).bit_length())
    if k < 8:
        raise UnsupportedSynthesisError(f"{conv} is too wide for exact float64 accumulation")
    # Step floor: |b_c| / 2^(e + e_c) < 2^BIAS_BITS for every channel.
    floors = [_exponent_at_least(abs(bc) / math.ldexp(1.0, BIAS_BITS)) - e
              for bc, e in zip(b.tolist(), exps) if bc != 0]
    stride, padding, output_padding = _square(conv)
    layout = w_int.reshape(w.transpose(0, d).shape).transpose(0, d).contiguous()
    return _Layer(weight=layout, weight_unit=unit, bias=b, limit=(1 << k) - 1,
                  min_exponent=max(floors, default=MIN_EXPONENT), transposed=d == 1, stride=stride,
                  padding=padding, output_padding=output_padding, slope=slope)


def _step_exponent(largest: float, limit: int, floor: int) -> int:
    """Exponent of the step for values up to ``largest``: fits ``limit``, at least ``floor``."""
    if largest <= 0:
        return floor
    return max(_exponent_at_least(largest / limit), floor)


class IntegerHyperSynthesis:
    """z_hat -> (table indexes, means), identical on every machine (see the module docstring).

    ``h_s``: the float hyper-synthesis (a Sequential of Conv2d / ConvTranspose2d layers, each
    optionally followed by LeakyReLU or ReLU), whose output has 2M channels: M scales, then M
    means. ``scale_table``: the GaussianConditional's table (float32, ascending).
    """

    def __init__(self, h_s: nn.Module, scale_table: Tensor) -> None:
        self.layers = [_integer_layer(conv, slope) for conv, slope in _layers(h_s)]
        table = scale_table.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        if table.numel() < 1:
            raise ValueError("the scale table is empty; call update() first")
        # Index = number of table entries (but the last) strictly below the scale.
        self.thresholds = table[:-1].contiguous()
        self._device_cache: dict[torch.device, tuple[list[_Layer], Tensor]] = {}

    def _on(self, device: torch.device) -> tuple[list[_Layer], Tensor]:
        if device not in self._device_cache:
            self._device_cache[device] = ([l.to(device) for l in self.layers], self.thresholds.to(device))
        return self._device_cache[device]

    def fixed_point(self, z_hat: Tensor) -> Tensor:
        """The last layer's output as integers in units of 2^-FRACTION_BITS (float64, N x 2M x h x w)."""
        layers, _ = self._on(z_hat.device)
        z = z_hat.detach().to(torch.float64)
        if not torch.isfinite(z).all():
            raise ValueError("z_hat is not finite")
        first = layers[0]
        exp = _step_exponent(float(z.abs().max()) if z.numel() else 0.0, first.limit, first.min_exponent)
        x = torch.clamp(torch.round(z * math.ldexp(1.0, -exp)), -first.limit, first.limit)
        cudnn_off = (torch.backends.cudnn.flags(enabled=False) if z_hat.device.type == "cuda"
                     else contextlib.nullcontext())
        with cudnn_off:
            for i, layer in enumerate(layers):
                if layer.transposed:
                    acc = torch.nn.functional.conv_transpose2d(
                        x, layer.weight, stride=layer.stride, padding=layer.padding,
                        output_padding=layer.output_padding)
                else:
                    acc = torch.nn.functional.conv2d(x, layer.weight, stride=layer.stride, padding=layer.padding)
                in_unit = math.ldexp(1.0, exp)
                acc = acc + torch.round(layer.bias / (layer.weight_unit * in_unit)).view(1, -1, 1, 1)
                # Real value of acc[c]: acc[c] * 2^e_c * 2^exp (all powers of two: exact).
                real = acc * (layer.weight_unit * in_unit).view(1, -1, 1, 1)
                if layer.slope is None:
                    return torch.round(real * math.ldexp(1.0, FRACTION_BITS))
                nxt = layers[i + 1]
                exp = _step_exponent(float(real.abs().max()), nxt.limit, nxt.min_exponent)
                x = torch.round(real * math.ldexp(1.0, -exp))
                x = torch.where(x < 0, torch.round(x * layer.slope), x)
                x = torch.clamp(x, -nxt.limit, nxt.limit)
        raise AssertionError("unreachable: the last layer returns")

    def __call__(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """z_hat (N x C x h x w) -> (indexes int32 N x M x H x W, means float32 N x M x H x W)."""
        _, thresholds = self._on(z_hat.device)
        out = self.fixed_point(z_hat)
        m = out.shape[1] // 2
        unit = math.ldexp(1.0, -FRACTION_BITS)
        scales = out[:, :m] * unit
        means = torch.clamp(out[:, m:], -MEAN_MAX, MEAN_MAX) * unit
        indexes = torch.searchsorted(thresholds, scales.contiguous(), right=False).to(torch.int32)
        return indexes, means.to(torch.float32)

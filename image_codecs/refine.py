"""Encode-time latent refinement: one engine for SGA and latent overfitting (LOF).

The decoder is frozen; only the latents of one picture change, so the bitstream
format and the decoder are untouched::

    x ──analysis──> (y0, z0)                      amortised guess
    repeat: (y, z) ──latent_forward(SGA(tau_t))──> x_hat, likelihoods
            loss = bpp + lmbda * MSE(x_hat, x);   Adam step on (y, z)
    every k steps: the same loss under HardRound (what the coder really does);
                   keep the best (y, z)
    best (y, z) ──compress_latents──> bytes       hard rounding happens here

Objective and lambda scale
--------------------------
``loss = R + lmbda * D`` with R in bits per pixel (estimated from the
likelihoods, summed over y and z, divided by B*H*W) and D the plain mean squared
error over all elements. This is the same scale as our training loss
``lmbda * MSE + bpp`` for pictures in [0, 1]; DVC's lambdas (256, 512, 1024,
2048) are on this scale unchanged. CompressAI's lambdas (0.0018 ... 0.0483,
defined with MSE on [0, 255]) convert as ``lmbda = 255**2 * lmbda_compressai``
(e.g. 0.0130 -> 845). For motion fields (pixels as units) D is still plain MSE,
so lambda has to be chosen for those units. Use the lambda the codec was trained
with at that quality; a different one moves the operating point along the
R-D curve.

SGA (Yang, Marino & Mandt, NeurIPS 2020, "Improving Inference for Neural Image
Compression"): each latent, relative to its rounding centre, is a Gumbel-softmax
mixture of its floor and ceil, with logits ``-atanh(distance)/tau`` and the
same temperature ``tau`` in the Gumbel-softmax (as in the authors' code), and
``tau(t) = min(0.5, 0.5 * exp(-5e-4 * (t - 200)))``, at least 1e-8.

LOF (latent overfitting) for codecs with a context model (``msp``) is this same
engine: ``latent_forward`` gives the codec's own progressive rate (every pass,
each conditioned on the earlier passes' quantised latents, so the gradient also
reaches y through the context network), and ``compress_latents`` codes the
result. ``profile`` (in ``rd_cost``, ``refine_latents``, ``refine_latents_at``,
``sga_compress``) picks the coding profile the rate is measured and coded with;
None uses the codec's default. It is passed on only to codecs whose
``coding_options`` include it; other codecs ignore it, so their behaviour is
unchanged.

Precision
---------
``precision="float32"`` (the default) runs every step in float32.
``"bfloat16"`` runs the SGA steps' networks under bf16 autocast with the
latents in channels-last layout; the entropy model stays float32
(``TransformCodec.latent_forward``), and the hard-rounded cost that picks the
returned iterate, and the coding, are float32 as always. It is an encoder
speed setting: the decoder and the stream format are unchanged, the refined
streams decode exactly, and only the optimisation path differs (bf16
gradients). It pays where bf16 convolutions are native (measured on a CPU
with AMX, README "LOF"); elsewhere it can be slower than float32.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import CompressedImage
from .entropy.coders import IndexedCoder
from .quantize import HardRound, Quantizer
from .transform_codec import TransformCodec

ProgressFn = Callable[[int, int, float], None]

#: refinement precisions (see module docstring)
PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISIONS``, else ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown refinement precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def sga_temperature(step: int, *, ub: float = 0.5, rate: float = 5e-4, warmup: float = 200.0, lb: float = 1e-8) -> float:
    """SGA temperature at ``step`` (0-based): ``min(ub, ub*exp(-rate*(step-warmup)))``, >= lb."""
    return max(lb, min(ub, ub * math.exp(-rate * (step - warmup))))


class SGAQuantizer:
    """Stochastic Gumbel annealing around the centre; a ``Quantizer``.

    Returns the same soft value for the rate and the synthesis. As ``tau -> 0``
    it becomes stochastic rounding with P(ceil) -> 1 for values past the midpoint,
    i.e. hard rounding.
    """

    def __init__(self, tau: float, *, eps: float = 1e-5, generator: torch.Generator | None = None) -> None:
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.tau = tau
        self.eps = eps
        self.generator = generator

    def __call__(self, x: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
        v = x - center
        v_floor = torch.floor(v).detach()
        v_ceil = torch.ceil(v).detach()
        # Nearer bound -> larger logit; atanh makes the logit diverge as the distance -> 0.
        logit_floor = -torch.atanh((v - v_floor).clamp(-1 + self.eps, 1 - self.eps)) / self.tau
        logit_ceil = -torch.atanh((v_ceil - v).clamp(-1 + self.eps, 1 - self.eps)) / self.tau
        # Two-class Gumbel-softmax: softmax([l0 + g0, l1 + g1] / tau)[1] = sigmoid(...).
        gumbel = -torch.empty((2, *v.shape), dtype=v.dtype, device=v.device).exponential_(generator=self.generator).log()
        p_ceil = torch.sigmoid((logit_ceil + gumbel[1] - logit_floor - gumbel[0]) / self.tau)
        soft = v_floor + p_ceil * (v_ceil - v_floor) + center
        return soft, soft


@dataclass(frozen=True)
class RDCost:
    """``loss = bpp + lmbda * mse`` (scalar tensors; differentiable when the inputs are)."""

    loss: Tensor
    bpp: Tensor
    mse: Tensor


def _profile_kwargs(codec: TransformCodec, profile: int | None) -> dict[str, int]:
    """``{"profile": profile}`` for codecs that take a coding profile and a given one; else ``{}``."""
    if profile is None or "profile" not in getattr(codec, "coding_options", ()):
        return {}
    return {"profile": profile}


def rd_cost(
    codec: TransformCodec, x: Tensor, y: Tensor, z: Tensor, quality: Tensor | int, *, lmbda: float,
    quantizer: Quantizer, profile: int | None = None,
) -> RDCost:
    """R + lmbda*D of latents (y, z) for picture x (B x C x H x W) under ``quantizer``
    (``profile``: the coding profile of codecs that have them, see module docstring)."""
    out = codec.latent_forward(y, z, quality, quantizer, **_profile_kwargs(codec, profile))
    bpp = out.bits() / (x.shape[0] * x.shape[-2] * x.shape[-1])
    mse = F.mse_loss(out.x_hat.float(), x)
    return RDCost(loss=bpp + lmbda * mse, bpp=bpp, mse=mse)


def refine_latents(
    codec: TransformCodec,
    x: Tensor,
    quality: Tensor | int,
    *,
    lmbda: float,
    steps: int,
    lr: float = 5e-3,
    schedule: Callable[[int], float] = sga_temperature,
    progress: ProgressFn | None = None,
    eval_every: int = 50,
    generator: torch.Generator | None = None,
    profile: int | None = None,
    precision: str = "float32",
) -> tuple[Tensor, Tensor]:
    """Optimise (y, z) of ``x`` for the codec's true R-D cost with SGA; the codec is frozen.

    x: B x C x H x W, the codec's input (pictures in [0, 1]); H, W multiples of
    ``codec.size_multiple``. Starts from ``codec.analysis(x, quality)`` and
    returns the iterate with the lowest hard-rounded cost among the start, every
    ``eval_every`` steps and the last step, so the result is never worse than
    plain rounding of the initial latents (under the estimated rate).
    ``progress(step, steps, sga_loss)`` is called after each step (step 1-based).
    ``schedule(step)`` gives the SGA temperature; ``generator`` (on x's device)
    makes the Gumbel noise reproducible. ``profile``: the coding profile whose
    rate is optimised (codecs with profiles; None: the codec's default).
    ``precision``: ``"float32"`` or ``"bfloat16"`` for the SGA steps (module docstring).

    The codec's parameters are not changed; their ``requires_grad`` flags and the
    codec's train/eval mode are restored afterwards.
    """
    return refine_latents_at(codec, x, quality, lmbda=lmbda, steps=[steps], lr=lr, schedule=schedule,
                             progress=progress, eval_every=eval_every, generator=generator, profile=profile,
                             precision=precision)[0]


def refine_latents_at(
    codec: TransformCodec,
    x: Tensor,
    quality: Tensor | int,
    *,
    lmbda: float,
    steps: Sequence[int],
    lr: float = 5e-3,
    schedule: Callable[[int], float] = sga_temperature,
    progress: ProgressFn | None = None,
    eval_every: int = 50,
    generator: torch.Generator | None = None,
    profile: int | None = None,
    precision: str = "float32",
) -> list[tuple[Tensor, Tensor]]:
    """``refine_latents`` for several step counts from one run of ``max(steps)`` steps.

    Returns, for each entry of ``steps`` (in the given order), exactly the (y, z)
    that a separate ``refine_latents(..., steps=k)`` run with the same generator
    state would return: the temperature and Adam updates of step t do not depend
    on the total, and the best iterate for k is chosen among the start, the
    multiples of ``eval_every`` up to k, and step k itself.
    """
    codec.check_size(x)
    check_precision(precision)
    steps = [int(k) for k in steps]
    if not steps or min(steps) < 0 or eval_every < 1:
        raise ValueError(f"need steps >= 0 and eval_every >= 1, got steps={steps}, eval_every={eval_every}")
    total = max(steps)
    wanted = set(steps)
    was_training = codec.training
    flags = [(p, p.requires_grad) for p in codec.parameters()]
    try:
        codec.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        # Inference-mode callers (CLIs) still get autograd on the latents.
        with torch.inference_mode(False), torch.enable_grad():
            x = x.detach().clone()
            with torch.no_grad():
                y0, z0 = codec.analysis(x, quality)
            fast = precision == "bfloat16"
            layout = torch.channels_last if fast else torch.preserve_format
            y = y0.clone(memory_format=layout).requires_grad_(True)
            z = z0.clone(memory_format=layout).requires_grad_(True)
            optimizer = torch.optim.Adam([y, z], lr=lr)

            def hard_loss() -> float:
                with torch.no_grad():
                    return float(rd_cost(codec, x, y, z, quality, lmbda=lmbda, quantizer=HardRound(),
                                         profile=profile).loss)

            def iterate() -> tuple[float, Tensor, Tensor]:
                return (hard_loss(), y.detach().clone(memory_format=torch.contiguous_format),
                        z.detach().clone(memory_format=torch.contiguous_format))

            def sga_precision() -> contextlib.AbstractContextManager:
                if fast:
                    return torch.autocast(x.device.type, dtype=torch.bfloat16)
                return contextlib.nullcontext()

            best = iterate()
            snapshots = {0: best}
            for step in range(total):
                quantizer = SGAQuantizer(schedule(step), generator=generator)
                with sga_precision():
                    loss = rd_cost(codec, x, y, z, quality, lmbda=lmbda, quantizer=quantizer, profile=profile).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                done = step + 1
                if progress is not None:
                    progress(done, total, loss.detach().item())
                if done % eval_every == 0 or done in wanted:
                    current = iterate()
                    if done % eval_every == 0 and current[0] < best[0]:
                        best = current
                    if done in wanted:  # a run of `done` steps would also weigh its last iterate
                        snapshots[done] = current if current[0] < best[0] else best
        return [(snapshots[k][1], snapshots[k][2]) for k in steps]
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        codec.train(was_training)


def sga_compress(
    codec: TransformCodec,
    x: Tensor,
    quality: int,
    *,
    lmbda: float,
    steps: int,
    lr: float = 5e-3,
    progress: ProgressFn | None = None,
    coder: IndexedCoder | None = None,
    latent_mask: Tensor | None = None,
    profile: int | None = None,
    precision: str = "float32",
) -> CompressedImage:
    """``compress`` with SGA-refined latents; decodable by the unchanged ``decompress``.

    x: 1 x C x H x W. See ``refine_latents`` for lambda's scale. ~3000 steps is
    the paper's setting; fewer steps is a faster encoder profile. coder: the
    entropy coder backend (None: ``SafeAns()``), as for ``compress``. latent_mask:
    as for ``compress_latents`` (the refinement itself optimises every position).
    profile: the coding profile to optimise for and code with (codecs with
    profiles, e.g. ``msp``: LOF with the progressive rate; others ignore it).
    precision: of the refinement steps, ``"float32"`` or ``"bfloat16"`` (module docstring).
    """
    if x.shape[0] != 1:
        raise ValueError(f"sga_compress codes one picture at a time, got batch {x.shape[0]}")
    quality = codec.check_quality(quality)
    codec._check_tables()  # fail before spending the refinement steps
    options = _profile_kwargs(codec, profile)
    y, z = refine_latents(codec, x, quality, lmbda=lmbda, steps=steps, lr=lr, progress=progress, profile=profile,
                          precision=precision)
    with torch.no_grad():
        return codec.compress_latents(y, z, quality, coder=coder, latent_mask=latent_mask, **options)

"""Encode-time latent refinement for the sequence encoder (SGA).

Turns ``--refine-steps N`` into an :data:`~dvclic.pframe.ImageCompressor` that
refines the latents of I-frames and P-frame residuals before entropy coding,
with the lambda the model was trained with at that quality. The decoder is
unchanged: it never knows refinement happened.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from image_codecs import CompressedImage, ImageCodec
from image_codecs.entropy.coders import IndexedCoder
from image_codecs.refine import ProgressFn, sga_compress  # noqa: F401 (ProgressFn re-exported)
from image_codecs.transform_codec import TransformCodec

from .errors import InputError
from .pframe import ImageCompressor


def make_refiner(steps: int, lambdas: Sequence[float], *, lr: float = 5e-3,
                 progress: ProgressFn | None = None) -> ImageCompressor | None:
    """None for ``steps == 0`` (plain compress); else an SGA compressor."""
    if steps < 0:
        raise InputError(f"--refine-steps must be >= 0, got {steps}")
    if steps == 0:
        return None

    def compress(codec: ImageCodec, x: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None) -> CompressedImage:
        if not isinstance(codec, TransformCodec):
            raise InputError(f"{type(codec).__name__} does not support latent refinement")
        return sga_compress(codec, x, quality, lmbda=float(lambdas[quality]), steps=steps, lr=lr,
                            progress=progress, coder=coder, latent_mask=latent_mask)

    return compress

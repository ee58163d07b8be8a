"""How the sequence encoder codes I-frames and residuals: plainly, or with encode-time refinement.

Turns the coding parameters' ``refine_steps`` and ``profile`` into an
:data:`~dvclic.pframe.ImageCompressor`:

- ``refine_steps > 0`` refines the latents of I-frames and P-frame residuals before entropy
  coding (SGA; for codecs with a context model, latent overfitting with the model's own
  progressive rate), with the lambda the model was trained with at that quality;
- ``profile`` picks the entropy-model profile of codecs that have profiles (``msp``: the number
  of decoding passes); it is written into the stream, so the decoder needs no option.

The decoder is unchanged by either: it never knows refinement happened. Motion fields are coded
with their codec's defaults.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor

from image_codecs import CompressedImage, ImageCodec
from image_codecs.entropy.coders import IndexedCoder
from image_codecs.refine import ProgressFn, sga_compress  # noqa: F401 (ProgressFn re-exported)
from image_codecs.transform_codec import TransformCodec

from .errors import InputError
from .params import check_refine_precision
from .pframe import ImageCompressor


def codec_profiles(codec: ImageCodec) -> tuple[int, ...]:
    """The entropy-model profiles a codec offers (empty for codecs without them)."""
    return tuple(getattr(codec, "profiles", ()))


def make_compressor(steps: int, lambdas: Sequence[float], *, profile: int | None = None, lr: float = 5e-3,
                    progress: ProgressFn | None = None, precision: str = "float32") -> ImageCompressor | None:
    """None when there is nothing to change (plain ``compress``); else a compressor that refines
    (``steps`` > 0) and/or passes ``profile`` to the codecs that have profiles. ``precision``: of
    the refinement steps (``image_codecs.refine.PRECISIONS``)."""
    if steps < 0:
        raise InputError(f"refine steps must be >= 0, got {steps}")
    check_refine_precision(precision)
    if steps == 0 and profile is None:
        return None

    def compress(codec: ImageCodec, x: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None) -> CompressedImage:
        options = {}
        if profile is not None and codec_profiles(codec):
            options["profile"] = profile
        if latent_mask is not None:
            options["latent_mask"] = latent_mask
        if steps == 0:
            return codec.compress(x, quality, coder=coder, **options)
        if not isinstance(codec, TransformCodec):
            raise InputError(f"{type(codec).__name__} does not support latent refinement")
        return sga_compress(codec, x, quality, lmbda=float(lambdas[quality]), steps=steps, lr=lr,
                            progress=progress, coder=coder, precision=precision, **options)

    return compress

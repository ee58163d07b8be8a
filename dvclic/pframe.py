"""DVC P-frame codec: motion estimation, motion coding, compensation, residual coding.

::

    cur, ref ──estimator──> flow ──motion codec──> flow_hat ─┐       (zero motion: flow_hat = 0)
    ref ───────────────────────────────────────────────────┴─> predict() ─> pred
    cur - pred ──residual codec──> res_hat;   x_hat = pred + res_hat * keep

:meth:`PFrameCodec.predict` is THE prediction path, used by training
(``forward``), encoding (``compress``) and decoding (``decompress``). The encoder
predicts from the *decoded* flow and the decoder's reference, so encoder and
decoder reconstructions are bit-identical and there is no drift.

Coding modes (:class:`PMode`, signalled per frame in format v2): zero motion (no
motion bits), prediction without the MC net (the warped reference), and a skip
mask of ``block_size`` blocks (the residual codec's size multiple, 64 pixels for
the hyperprior) in which no residual latents are coded and the prediction is kept
as it is (``keep`` = 0 there). ``dvclic.rdo`` chooses them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flow import MotionEstimator, warp
from image_codecs import CompressedImage, ImageCodec
from image_codecs.entropy.coders import CorruptStreamError, IndexedCoder

from .motion_compensation import MotionCompensationNet
from .skip_mask import decode_skip_mask, encode_skip_mask

#: Encoder-side replacement for ``codec.compress`` (e.g. SGA refinement of the residual):
#: ``(codec, x, quality, coder=..., latent_mask=...) -> CompressedImage``.
ImageCompressor = Callable[..., CompressedImage]


def plain_compress(codec: ImageCodec, x: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                   latent_mask: Tensor | None = None) -> CompressedImage:
    if latent_mask is None:
        return codec.compress(x, quality, coder=coder)
    return codec.compress(x, quality, coder=coder, latent_mask=latent_mask)


@dataclass(frozen=True)
class PMode:
    """How one P-frame is coded (format v2 ``modes``).

    zero_motion: no motion is coded; the flow is zero (the prediction starts from the
        reference itself).
    use_mc: the prediction is the MC net's output; False: the warped reference.
    skip: bool [H/B x W/B] per block of ``B = block_size`` pixels, True where the
        prediction is kept as it is and no residual is coded; None: no skip mask.
    """

    zero_motion: bool = False
    use_mc: bool = True
    skip: Tensor | None = None


@dataclass(frozen=True)
class PFrameOutput:
    """Training-time result. Likelihood dicts are keyed like the codecs' outputs."""

    x_hat: Tensor
    pred: Tensor
    warped: Tensor
    flow: Tensor
    motion_likelihoods: dict[str, Tensor]
    residual_likelihoods: dict[str, Tensor]


@dataclass(frozen=True)
class CodedMotion:
    """The encoder's motion for one frame: estimated flow, and its coded form (None for zero motion)."""

    flow: Tensor
    coded: CompressedImage | None

    @property
    def flow_hat(self) -> Tensor:
        return torch.zeros_like(self.flow) if self.coded is None else self.coded.x_hat

    @property
    def strings(self) -> list[bytes]:
        return [] if self.coded is None else list(self.coded.strings)


@dataclass(frozen=True)
class CodedPFrame:
    mode: PMode
    motion: CodedMotion
    residual: CompressedImage
    mask_section: bytes | None  # the coded skip mask (MODE_SKIP), else None
    x_hat: Tensor
    warped: Tensor  # the reference warped by the decoded flow
    pred: Tensor  # the prediction the residual codes against

    @property
    def sections(self) -> list[bytes]:
        mask = [] if self.mask_section is None else [self.mask_section]
        return self.motion.strings + mask + list(self.residual.strings)

    @property
    def motion_bytes(self) -> int:
        return sum(len(s) for s in self.motion.strings)

    @property
    def residual_bytes(self) -> int:
        return self.residual.num_bytes + (0 if self.mask_section is None else len(self.mask_section))


@contextmanager
def _naming(part: str, first_section: int = 0) -> Iterator[None]:
    """Prefix decoding errors with the part of the frame (its sections) they come from; a
    ``CorruptStreamError`` that names its stream gets the frame's section index instead."""
    try:
        yield
    except CorruptStreamError as exc:
        stream = None if exc.stream is None else first_section + exc.stream
        raise CorruptStreamError(f"{part} section: {exc}", stream=stream, position=exc.position) from None
    except ValueError as exc:
        raise type(exc)(f"{part} section: {exc}") from None


class PFrameCodec(nn.Module):
    """Composes the four parts. Frame sizes must be multiples of ``size_multiple``."""

    def __init__(
        self,
        *,
        estimator: MotionEstimator,
        motion_codec: ImageCodec,
        mc_net: MotionCompensationNet,
        residual_codec: ImageCodec,
    ) -> None:
        super().__init__()
        if motion_codec.in_channels != 2:
            raise ValueError(f"motion codec must take 2 channels, got {motion_codec.in_channels}")
        if residual_codec.in_channels != 3:
            raise ValueError(f"residual codec must take 3 channels, got {residual_codec.in_channels}")
        self.estimator = estimator
        self.motion_codec = motion_codec
        self.mc_net = mc_net
        self.residual_codec = residual_codec
        self.size_multiple = max(motion_codec.size_multiple, residual_codec.size_multiple)
        #: skip-mask block size in pixels: one hyper-latent position of the residual codec
        self.block_size = residual_codec.size_multiple

    def predict(self, ref: Tensor, flow_hat: Tensor, *, use_mc: bool = True) -> tuple[Tensor, Tensor]:
        """The one prediction path: (warped, pred) from the reference and decoded flow."""
        warped = warp(ref, flow_hat)
        return warped, (self.mc_net(warped, ref, flow_hat) if use_mc else warped)

    def forward(self, cur: Tensor, ref: Tensor, quality: Tensor | int) -> PFrameOutput:
        flow = self.estimator(cur, ref)
        motion = self.motion_codec(flow, quality)
        warped, pred = self.predict(ref, motion.x_hat)
        residual = self.residual_codec(cur - pred, quality)
        return PFrameOutput(
            x_hat=pred + residual.x_hat, pred=pred, warped=warped, flow=flow,
            motion_likelihoods=motion.likelihoods, residual_likelihoods=residual.likelihoods,
        )

    # -- coding ----------------------------------------------------------------
    def code_motion(self, cur: Tensor, ref: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                    zero: bool = False) -> CodedMotion:
        """Estimate the flow of ``cur`` (1 x 3 x H x W) against ``ref`` and code it (unless ``zero``)."""
        flow = self.estimator(cur, ref)
        return CodedMotion(flow, None if zero else self.motion_codec.compress(flow, quality, coder=coder))

    def pixel_mask(self, skip: Tensor, size: tuple[int, int]) -> Tensor:
        """1 x 1 x H x W float: 1 where the residual is kept, 0 in skipped blocks."""
        keep = (~skip).to(torch.float32)[None, None]
        return F.interpolate(keep, size=size, mode="nearest")

    def latent_mask(self, skip: Tensor) -> Tensor:
        """bool [h x w] on the residual codec's latent grid: True where latents are coded."""
        r = self.block_size // self.residual_codec.latent_stride
        return (~skip).repeat_interleave(r, 0).repeat_interleave(r, 1)

    def compress(self, cur: Tensor, ref: Tensor, quality: int, *, mode: PMode = PMode(),
                 motion: CodedMotion | None = None, coder: IndexedCoder | None = None,
                 compress_residual: ImageCompressor = plain_compress) -> CodedPFrame:
        """Code ``cur`` (1 x 3 x H x W) against the decoder's reference ``ref`` in ``mode``.

        ``motion`` (from :meth:`code_motion`) lets several modes share one motion coding.
        """
        if motion is None or (motion.coded is None) != mode.zero_motion:
            motion = self.code_motion(cur, ref, quality, coder=coder, zero=mode.zero_motion)
        warped, pred = self.predict(ref, motion.flow_hat, use_mc=mode.use_mc)
        mask_section, latent_mask = None, None
        if mode.skip is not None:
            mask_section = encode_skip_mask(mode.skip, coder=coder)
            latent_mask = self.latent_mask(mode.skip)
        residual = compress_residual(self.residual_codec, cur - pred, quality, coder=coder, latent_mask=latent_mask)
        res_hat = residual.x_hat
        if mode.skip is not None:
            res_hat = res_hat * self.pixel_mask(mode.skip, cur.shape[-2:])
        return CodedPFrame(mode, motion, residual, mask_section, pred + res_hat, warped, pred)

    def decompress(self, sections: list[bytes], ref: Tensor, quality: int, *, zero_motion: bool = False,
                   use_mc: bool = True, skip: bool = False, coder: IndexedCoder | None = None) -> Tensor:
        """Decode one P-frame's sections (motion, skip mask, residual: ``CodedPFrame.sections``).

        The flags are the frame's signalled modes (``skip``: a skip mask is present).
        Raises ValueError (or the coder's CorruptStreamError) on bad data.
        """
        h, w = ref.shape[-2:]
        n_m = 0 if zero_motion else self.motion_codec.num_streams
        expected = n_m + self.residual_codec.num_streams + (1 if skip else 0)
        if len(sections) != expected:
            raise ValueError(f"expected {expected} payload sections, found {len(sections)}")
        with _naming("motion", 0):
            flow_hat = (ref.new_zeros(1, 2, h, w) if zero_motion
                        else self.motion_codec.decompress(sections[:n_m], (h, w), quality, coder=coder))
        _, pred = self.predict(ref, flow_hat, use_mc=use_mc)
        if not skip:
            with _naming("residual", n_m):
                return pred + self.residual_codec.decompress(sections[n_m:], (h, w), quality, coder=coder)
        b = self.block_size
        with _naming("skip mask", n_m):
            mask = decode_skip_mask(sections[n_m], (h // b, w // b), coder=coder)
        with _naming("residual", n_m + 1):
            res_hat = self.residual_codec.decompress(sections[n_m + 1:], (h, w), quality, coder=coder,
                                                     latent_mask=self.latent_mask(mask))
        return pred + res_hat * self.pixel_mask(mask, (h, w))

    def update(self, force: bool = False) -> bool:
        changed = self.motion_codec.update(force=force)
        return self.residual_codec.update(force=force) or changed

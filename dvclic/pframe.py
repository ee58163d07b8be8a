"""DVC P-frame codec: motion estimation, motion coding, compensation, residual coding.

::

    cur, ref ──estimator──> flow ──motion codec──> flow_hat ─┐
    ref ───────────────────────────────────────────────────┴─> predict() ─> pred
    cur - pred ──residual codec──> res_hat;   x_hat = pred + res_hat

:meth:`PFrameCodec.predict` is THE prediction path, used by training
(``forward``), encoding (``compress``) and decoding (``decompress``). The encoder
predicts from the *decoded* flow and the decoder's reference, so encoder and
decoder reconstructions are bit-identical and there is no drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from flow import MotionEstimator, warp
from image_codecs import CompressedImage, ImageCodec

from .motion_compensation import MotionCompensationNet


#: Encoder-side replacement for ``codec.compress`` (e.g. SGA refinement of the residual).
ImageCompressor = Callable[[ImageCodec, Tensor, int], CompressedImage]


def plain_compress(codec: ImageCodec, x: Tensor, quality: int) -> CompressedImage:
    return codec.compress(x, quality)


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
class CodedPFrame:
    motion: CompressedImage
    residual: CompressedImage
    x_hat: Tensor
    flow: Tensor  # the estimator's flow, before motion coding
    pred: Tensor  # the MC prediction from the decoded flow (what the residual codes against)


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

    def predict(self, ref: Tensor, flow_hat: Tensor) -> tuple[Tensor, Tensor]:
        """The one prediction path: (warped, pred) from the reference and decoded flow."""
        warped = warp(ref, flow_hat)
        return warped, self.mc_net(warped, ref, flow_hat)

    def forward(self, cur: Tensor, ref: Tensor, quality: Tensor | int) -> PFrameOutput:
        flow = self.estimator(cur, ref)
        motion = self.motion_codec(flow, quality)
        warped, pred = self.predict(ref, motion.x_hat)
        residual = self.residual_codec(cur - pred, quality)
        return PFrameOutput(
            x_hat=pred + residual.x_hat, pred=pred, warped=warped, flow=flow,
            motion_likelihoods=motion.likelihoods, residual_likelihoods=residual.likelihoods,
        )

    def compress(self, cur: Tensor, ref: Tensor, quality: int,
                 compress_residual: ImageCompressor = plain_compress) -> CodedPFrame:
        """Code ``cur`` (1 x 3 x H x W) against the decoder's reference ``ref``."""
        flow = self.estimator(cur, ref)
        motion = self.motion_codec.compress(flow, quality)
        _, pred = self.predict(ref, motion.x_hat)
        residual = compress_residual(self.residual_codec, cur - pred, quality)
        return CodedPFrame(motion, residual, pred + residual.x_hat, flow, pred)

    def decompress(self, motion_strings: list[bytes], residual_strings: list[bytes], ref: Tensor, quality: int) -> Tensor:
        size = (ref.shape[-2], ref.shape[-1])
        flow_hat = self.motion_codec.decompress(motion_strings, size, quality)
        _, pred = self.predict(ref, flow_hat)
        return pred + self.residual_codec.decompress(residual_strings, size, quality)

    def update(self, force: bool = False) -> bool:
        changed = self.motion_codec.update(force=force)
        return self.residual_codec.update(force=force) or changed

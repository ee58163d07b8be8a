"""The video codec model: an intra codec for I-frames and a P-frame codec."""

from __future__ import annotations

import math

from torch import nn

from flow import build_estimator
from image_codecs import ImageCodec, build_codec

from .config import ComponentSpec, ConfigError, ModelConfig
from .motion_compensation import MotionCompensationNet
from .pframe import PFrameCodec


class VideoCodecModel(nn.Module):
    """Holds the networks only; sequence state lives in dvclic.sequence."""

    def __init__(self, *, intra: ImageCodec, pframe: PFrameCodec, lambdas: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.intra = intra
        self.pframe = pframe
        #: the rate-distortion trade-off of each quality (training loss lambda * MSE + bpp)
        self.lambdas = tuple(float(v) for v in lambdas)
        self.size_multiple = math.lcm(intra.size_multiple, pframe.size_multiple)
        self.num_qualities = min(intra.num_qualities, pframe.motion_codec.num_qualities,
                                 pframe.residual_codec.num_qualities)

    def update(self, force: bool = False) -> bool:
        changed = self.intra.update(force=force)
        return self.pframe.update(force=force) or changed

    def aux_loss(self):  # noqa: ANN201 - scalar tensor
        return self.intra.aux_loss() + self.pframe.motion_codec.aux_loss() + self.pframe.residual_codec.aux_loss()


def _codec(spec: ComponentSpec, role: str, in_channels: int, num_qualities: int) -> ImageCodec:
    try:
        return build_codec(spec.name, in_channels=in_channels, num_qualities=num_qualities, **spec.kwargs())
    except KeyError as exc:
        raise ConfigError(f"{role}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{role}: bad arguments for codec {spec.name!r}: {exc}") from None


def build_model(cfg: ModelConfig) -> VideoCodecModel:
    """Build the networks a config describes (random weights)."""
    q = cfg.num_qualities
    try:
        estimator = build_estimator(cfg.estimator.name, **cfg.estimator.kwargs())
    except KeyError as exc:
        raise ConfigError(f"estimator: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"estimator: bad arguments for {cfg.estimator.name!r}: {exc}") from None
    pframe = PFrameCodec(
        estimator=estimator,
        motion_codec=_codec(cfg.motion, "motion", 2, q),
        mc_net=MotionCompensationNet(channels=cfg.mc_channels),
        residual_codec=_codec(cfg.residual, "residual", 3, q),
    )
    return VideoCodecModel(intra=_codec(cfg.intra, "intra", 3, q), pframe=pframe, lambdas=tuple(cfg.lambdas))

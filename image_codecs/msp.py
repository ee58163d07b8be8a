"""``msp``: mean-scale hyperprior codec with a multi-scale progressive context model.

::

    x ─[conv5x5 s2, GDN] x3 ─ conv5x5 s2─> y (M ch, 1/16)      g_a "balle" (as ``hyperprior``)
      (or elic_analysis: conv5x5 s2 / residual bottleneck blocks / attention)   g_a "elic"
    y ──gain[q]──> ProgressiveGaussian(N, M, profile) ──> y_hat ──gain⁻¹[q]──┐
          h_a: y ─> z (N ch, 1/64) ─Q─> z_hat ─h_s─> (scales, means)_hp       │
          pass 1: hyperprior only; pass k > 1: context(hp, y_hat so far, mask) │
    ┌──────────────────────────────────────────────────────────────────────────┘
    └─[deconv5x5 s2, IGDN] x3 ─ deconv5x5 s2─> x_hat                            g_s (Ballé)

Pass schedules over 16 cells = 4 channel groups g x 4 phases of each 2x2 block
(p: 0 = (0,0), 1 = (1,1), 2 = (0,1), 3 = (1,0)); the profile id is the pass count:

    profile 1: [all cells]                             = the plain hyperprior
    profile 2: [p in {0,1}], [p in {2,3}]              checkerboard, every group
    profile 4: pass k: group g codes p = (g + k) % 4   1/4 of y per pass, spatial + channel context
    profile 8: profile 4, each pass as (g even), (g odd)

With ``analysis="balle"`` the transforms are those of ``hyperprior``, so at equal
N, M the comparison isolates the context model. ``profile`` is the default coding
profile (a construction-time setting); ``compress(..., profile=p)`` overrides it
per call, and the decoder reads it from the first stream (one byte). Streams:
``[profile, z, y]``. Size multiple 64. Works for pictures/residuals
(in_channels=3) and motion fields (in_channels=2).
"""

from __future__ import annotations

from torch import Tensor

from .base import CodecOutput, CompressedImage
from .elic_analysis import elic_analysis
from .entropy.coders import IndexedCoder
from .entropy.msp_context import PROFILES, ProgressiveGaussian
from .hyperprior import balle_analysis, balle_synthesis
from .quantize import Quantizer
from .transform_codec import TransformCodec

ANALYSIS_NAMES = ("balle", "elic")


class MSPCodec(TransformCodec):
    """Hyperprior + multi-scale progressive context model (see module docstring). Size multiple 64."""

    coding_options = ("profile",)
    #: the entropy-model profiles (pass counts) this codec can code with
    profiles = PROFILES

    def __init__(
        self,
        *,
        in_channels: int = 3,
        N: int = 128,
        M: int = 192,
        num_qualities: int = 4,
        profile: int = 4,
        analysis: str = "balle",
        train_profiles: dict | None = None,
    ) -> None:
        if in_channels < 1 or N < 1 or num_qualities < 1:
            raise ValueError(
                f"need positive in_channels, N and num_qualities, got {in_channels}, {N}, {num_qualities}"
            )
        if M < 1 or M % 4:
            raise ValueError(f"M must be a positive multiple of 4 (4 channel groups), got {M}")
        if isinstance(profile, bool) or profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(map(str, PROFILES))}")
        if analysis == "balle":
            g_a = balle_analysis(in_channels=in_channels, N=N, M=M)
        elif analysis == "elic":
            g_a = elic_analysis(in_channels=in_channels, N=N, M=M)
        else:
            raise ValueError(f"unknown analysis {analysis!r}; valid: {', '.join(ANALYSIS_NAMES)}")
        super().__init__(
            g_a=g_a,
            g_s=balle_synthesis(out_channels=in_channels, N=N, M=M),
            entropy=ProgressiveGaussian(N=N, M=M, default_profile=profile, train_profiles=train_profiles),
            latent_channels=M,
            latent_stride=16,
            in_channels=in_channels,
            num_qualities=num_qualities,
        )
        self.analysis_name = analysis

    @property
    def profile(self) -> int:
        """The default coding profile (fixed at construction)."""
        return self.entropy.default_profile

    def latent_forward(self, y: Tensor, z: Tensor, quality: Tensor | int, quantizer: Quantizer, *,
                       profile: int | None = None) -> CodecOutput:
        """As TransformCodec's; ``profile`` None: random in training mode, the default in eval mode."""
        return super().latent_forward(y, z, quality, quantizer, profile=profile)

    def compress_latents(self, y: Tensor, z: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                         latent_mask: Tensor | None = None, profile: int | None = None) -> CompressedImage:
        """As TransformCodec's; ``profile`` None: the default profile."""
        return super().compress_latents(y, z, quality, coder=coder, latent_mask=latent_mask, profile=profile)

    def compress(self, x: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None, profile: int | None = None) -> CompressedImage:
        """As TransformCodec's; ``profile`` None: the default profile. The decoder needs none."""
        if profile is not None:
            self.entropy.resolve_profile(profile)  # ValueError before any work
        return super().compress(x, quality, coder=coder, latent_mask=latent_mask, profile=profile)

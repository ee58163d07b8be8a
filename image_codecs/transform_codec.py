"""Skeleton shared by the transform codecs: analysis, gain, entropy model, synthesis.

::

    x ──g_a──> y ──gain[q]──> y' ──(entropy model: Q, rANS)──> y'_hat ──gain⁻¹[q]──g_s──> x_hat

Hyperprior, EDIC and the shallow-decoder codecs differ only in ``g_a``, ``g_s``
and the entropy model, so this class owns the one forward/compress/decompress
path they all use, and the latent-level hooks (``analysis``, ``latent_forward``,
``compress_latents``) that encode-time refinement (SGA / LOF) drives.

Per-call coding options: an entropy model may take extra keyword options in
``forward`` and ``compress`` (MSP's ``profile``). A codec names them in
``coding_options``; ``latent_forward``, ``compress_latents`` and ``compress``
pass such options on only when given (not None), so codecs without options
call their entropy model exactly as before. The decoder never needs them
(whatever it needs is in the bitstream).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import CodecOutput, CompressedImage, EntropyTablesNotBuiltError, ImageCodec
from .entropy.base import LatentEntropyModel
from .entropy.coders import IndexedCoder
from .gain import QualityGain
from .quantize import HardRound, NoiseSTE, Quantizer


class TransformCodec(ImageCodec):
    """An ImageCodec built from parts. Subclasses build the parts in ``__init__``."""

    #: Extra keyword options of the entropy model's forward/compress (see module docstring).
    coding_options: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        g_a: nn.Module,
        g_s: nn.Module,
        entropy: LatentEntropyModel,
        latent_channels: int,
        latent_stride: int,
        in_channels: int,
        num_qualities: int,
    ) -> None:
        super().__init__()
        self.g_a = g_a
        self.g_s = g_s
        self.entropy = entropy
        self.gain = QualityGain(num_qualities=num_qualities, channels=latent_channels)
        self.in_channels = in_channels
        self.num_qualities = num_qualities
        self.latent_stride = latent_stride
        self.size_multiple = latent_stride * entropy.z_stride
        self.num_streams = entropy.num_streams

    # -- latent-level hooks -------------------------------------------------
    def analysis(self, x: Tensor, quality: Tensor | int) -> tuple[Tensor, Tensor]:
        """x -> (y, z): gained latent and continuous hyper-latent."""
        y = self.gain(self.g_a(x), quality)
        return y, self.entropy.hyper_analysis(y)

    def synthesis(self, y_hat: Tensor, quality: Tensor | int) -> Tensor:
        return self.g_s(self.gain.inverse(y_hat, quality))

    def latent_forward(
        self, y: Tensor, z: Tensor, quality: Tensor | int, quantizer: Quantizer, **options: object
    ) -> CodecOutput:
        """Reconstruction and likelihoods for given latents under ``quantizer``.

        ``options``: the codec's ``coding_options`` (None values are not passed on).
        """
        # The entropy model runs in float32 even under autocast (bf16 training, bf16 refinement):
        # rates from low-precision scales and CDF differences are not worth their speed. Outside
        # autocast, with float32 latents, this is exactly the plain call.
        with torch.autocast(y.device.type, enabled=False):
            y_synth, likelihoods = self.entropy(y.float(), z.float(), quantizer, **self._coding_kwargs(options))
        if y.dim() == 4 and y.is_contiguous(memory_format=torch.channels_last):
            y_synth = y_synth.contiguous(memory_format=torch.channels_last)  # the synthesis follows y's layout
        return CodecOutput(x_hat=self.synthesis(y_synth, quality), likelihoods=likelihoods)

    def compress_latents(
        self, y: Tensor, z: Tensor, quality: int, *, coder: IndexedCoder | None = None,
        latent_mask: Tensor | None = None, **options: object,
    ) -> CompressedImage:
        """Entropy-code given (possibly refined) latents of one picture (coder None: ``SafeAns()``).

        ``latent_mask`` (bool h x w, True = coded; entropy models with
        ``supports_latent_mask``): the other positions cost nothing and decode to the means.
        ``options``: the codec's ``coding_options`` (None values are not passed on).
        """
        kwargs = self._coding_kwargs(options)
        self._check_tables()
        quality = self.check_quality(quality)
        strings, y_hat = self.entropy.compress(y, z, coder=coder, **self._mask_kwargs(latent_mask), **kwargs)
        return CompressedImage(strings=strings, x_hat=self.synthesis(y_hat, quality))

    # -- ImageCodec -----------------------------------------------------------
    def forward(self, x: Tensor, quality: Tensor | int) -> CodecOutput:
        self.check_size(x)
        y, z = self.analysis(x, quality)
        quantizer = NoiseSTE() if self.training else HardRound()
        return self.latent_forward(y, z, quality, quantizer)

    def compress(self, x: Tensor, quality: int, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None, **options: object) -> CompressedImage:
        self._coding_kwargs(options)  # reject unknown options before any work
        self.check_size(x)
        if x.shape[0] != 1:
            raise ValueError(f"compress codes one picture at a time, got batch {x.shape[0]}")
        self._check_tables()
        y, z = self.analysis(x, self.check_quality(quality))
        return self.compress_latents(y, z, quality, coder=coder, latent_mask=latent_mask, **options)

    def _coding_kwargs(self, options: dict[str, object]) -> dict[str, object]:
        """The given (not None) ``options``; TypeError for names not in ``coding_options``."""
        unknown = sorted(set(options) - set(self.coding_options))
        if unknown:
            raise TypeError(f"{type(self).__name__} takes no coding option(s) {', '.join(unknown)}")
        return {k: v for k, v in options.items() if v is not None}

    def _mask_kwargs(self, latent_mask: Tensor | None) -> dict:
        if latent_mask is None:
            return {}
        if not getattr(self.entropy, "supports_latent_mask", False):
            raise ValueError(f"{type(self.entropy).__name__} does not support a latent mask")
        return {"latent_mask": latent_mask}

    def decompress(
        self, strings: list[bytes], size: tuple[int, int], quality: int, *, coder: IndexedCoder | None = None,
        latent_mask: Tensor | None = None,
    ) -> Tensor:
        self._check_tables()
        quality = self.check_quality(quality)
        h, w = size
        m = self.size_multiple
        if h % m or w % m or h <= 0 or w <= 0:
            raise ValueError(f"decode size must be positive multiples of {m}, got {h}x{w}")
        if len(strings) != self.num_streams:
            raise ValueError(f"expected {self.num_streams} byte strings, got {len(strings)}")
        s = self.latent_stride
        y_hat = self.entropy.decompress(list(strings), (h // s, w // s), coder=coder,
                                        **self._mask_kwargs(latent_mask))
        return self.synthesis(y_hat, quality)

    def update(self, force: bool = False) -> bool:
        return self.entropy.update(force=force)

    def aux_loss(self) -> Tensor:
        return self.entropy.aux_loss()

    def _check_tables(self) -> None:
        if not self.entropy.tables_built():
            raise EntropyTablesNotBuiltError(
                f"{type(self).__name__}: entropy tables are not built; call update() before compress()/decompress()"
            )

"""Multi-scale progressive (MSP) context model: a mean-scale hyperprior whose y is
coded in a few passes, each pass conditioned on everything decoded before it.

::

    y ──h_a──> z ──Q──> z_hat ──h_s──> (scales, means)_hp          pass 1: hyperprior only
    pass k > 1:  ((scales, means)_hp, y_hat known so far, known mask)
                     ──context──> (scales, means)  used at the cells of pass k only
    y_hat ~ N(means, scales) convolved with U(-.5, .5), pass by pass

Cells. y (M channels, M divisible by 4) is split into 16 cells: 4 equal,
contiguous channel groups g x the 4 positions (phases) of every 2x2 spatial
block, ordered p = 0: (0,0), 1: (1,1), 2: (0,1), 3: (1,0) (row, column offset).
A *profile* is an ordered partition of the cells into passes; its id, one byte
in the stream, is its pass count:

- 1: one pass, all cells, hyperprior only (exactly the mean-scale hyperprior);
- 2: checkerboard: pass 1 = phases 0, 1 of every group (anchors), pass 2 = phases 2, 3;
- 4: pass k (k = 0..3) codes phase (g + k) mod 4 of group g: a quarter of the
  elements per pass, and every position has one group known after pass 1, so
  each later pass has spatial and channel context;
- 8: profile 4 with each pass split into two halves, the even groups (0, 2)
  first, then the odd groups (1, 3), which then also see their neighbouring
  groups at the same pass's phases.

Context network (:class:`MultiScaleContext`, one instance shared by all passes
and profiles), width W (default M)::

    known = [y_known (M), mask (M)]                           y_known = where(mask, y_hat, 0)
    full    = conv1x1(2M->W)[(scales, means)_hp] + conv3x3(2M->W)[known]
    half    = up2(conv3x3(W->W) . lrelu . conv3x3(2M->W) [avgpool2(known)])
    quarter = up4(conv3x3(W->W) . lrelu . conv3x3(2M->W) [avgpool4(known)])
    (d_scales, d_means) = conv1x1(W->2M) . lrelu . conv3x3(W->W) . lrelu . conv1x1(3W->W) . lrelu [full, half, quarter]
    (scales, means) = (scales, means)_hp + (d_scales, d_means)      last conv1x1 zero-initialised

That is 27.625 M*W + 14.8125 W^2 MACs per latent position per call, 42.4 M^2
for W = M (M = 192: ~1.56 M MACs, ~8.1 k per latent element, ~6.1 kMAC per
picture pixel; ``complexity.codec_complexity`` reports it as ``context``), and a
profile with P passes calls it P - 1 times on the whole latent, whatever the
picture size.

Why one set of weights serves every profile: the network is never told the
profile. It sees the hyperprior parameters, the decoded values and the mask of
what is known, and its output at an unknown element is an estimate of that
element's distribution given z and the known elements. That conditional does
not depend on which schedule made those elements known. The convolutions are
local and translation-equivariant, so what matters is the known pattern around
an element. The patterns of all profiles repeat with the 2x2 block and the 4
channel groups, which makes them a small finite set, and training covers all of
them. Outputs at cells outside the current pass are ignored, so no profile
constrains them. Pass 1 is the hyperprior alone in every profile, so h_s is
shared in the same way.

Training: ``forward`` with ``profile=None`` in training mode draws the profile
once per call from torch's global RNG with weights ``train_profiles``, by default
:data:`TRAIN_PROFILE_WEIGHTS` (1: 0.1, 2: 0.2, 4: 0.5, 8: 0.2). Profile 4 gets
the most weight because it is the default, profile 1 keeps the hyperprior good
alone, and 2 and 8 cover the other mask patterns. In eval mode ``None`` means
``default_profile``.

Coding: z as in :class:`GaussianHyperprior` (EntropyBottleneck helpers); y
with compressai's GaussianConditional tables, one ``encode_chunks`` chunk per
pass. Streams: ``[bytes([profile]), z, y]``. The decoder rebuilds the context
input from exactly the tensors the encoder used (same z_hat, same y_hat built
pass by pass with ``torch.where``), so its y_hat is bit-identical. A latent mask
works as in GaussianHyperprior: masked positions get no symbols and decode to
their pass's predicted means (which later passes then see as known values).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import conv1x1, conv3x3
from torch import Tensor, nn

from ..quantize import Quantizer
from .bottleneck import bottleneck_compress, bottleneck_decompress, bottleneck_forward
from .coders import CdfTables, CorruptStreamError, IndexedCoder, resolve_coder
from .gaussian_hyperprior import GaussianHyperprior, _coded_positions

PROFILES: tuple[int, ...] = (1, 2, 4, 8)
"""Known profiles; each id is its pass count and the stream's header byte."""

TRAIN_PROFILE_WEIGHTS: dict[int, float] = {1: 0.1, 2: 0.2, 4: 0.5, 8: 0.2}
"""Default sampling weights of the per-call training profile (see module docstring)."""


def check_train_profiles(weights: dict | None) -> dict[int, float]:
    """Validated training-profile weights (``None``: :data:`TRAIN_PROFILE_WEIGHTS`).

    Keys are profiles, values non-negative numbers with a positive sum; profiles
    left out are never drawn in training (they still decode with the same weights).
    """
    if weights is None:
        return dict(TRAIN_PROFILE_WEIGHTS)
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"train_profiles must be a non-empty mapping profile -> weight, got {weights!r}")
    out: dict[int, float] = {}
    for key, value in weights.items():
        profile = int(key) if isinstance(key, str) and key.isdigit() else key
        if isinstance(profile, bool) or profile not in PROFILES:
            raise ValueError(f"train_profiles: unknown profile {key!r}; valid: {', '.join(map(str, PROFILES))}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"train_profiles: weight of profile {profile} must be a number >= 0, got {value!r}")
        out[profile] = float(value)
    if not sum(out.values()) > 0:
        raise ValueError("train_profiles: the weights must not all be zero")
    return out

GROUPS = 4  # channel groups
PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))  # (row, column) offset in the 2x2 block, by phase number

Cell = tuple[int, int]  # (channel group, phase)


def _schedules() -> dict[int, tuple[tuple[Cell, ...], ...]]:
    every = tuple((g, p) for g in range(GROUPS) for p in range(4))
    anchors = tuple((g, p) for g in range(GROUPS) for p in (0, 1))
    others = tuple((g, p) for g in range(GROUPS) for p in (2, 3))
    quarters = tuple(tuple((g, (g + k) % 4) for g in range(GROUPS)) for k in range(4))
    eighths = tuple(tuple(c for c in q if c[0] % 2 == half) for q in quarters for half in (0, 1))
    return {1: (every,), 2: (anchors, others), 4: quarters, 8: eighths}


SCHEDULES = _schedules()
"""profile -> passes, each a tuple of (group, phase) cells; every profile covers each cell once."""


class MultiScaleContext(nn.Module):
    """(scales_hp, means_hp, y_known, known) -> (scales, means); layers in the module docstring.

    All inputs are B x M x h x w (``known`` as 0/1 floats). Pooling uses
    ``ceil_mode`` and upsampling goes back to exactly h x w, so any size works.
    """

    def __init__(self, M: int, *, width: int | None = None) -> None:
        super().__init__()
        W = M if width is None else width
        if W < 1:
            raise ValueError(f"context width must be positive, got {W}")
        self.prior_in = conv1x1(2 * M, W)
        self.known_in = conv3x3(2 * M, W)
        self.scale2 = nn.Sequential(conv3x3(2 * M, W), nn.LeakyReLU(inplace=True), conv3x3(W, W))
        self.scale4 = nn.Sequential(conv3x3(2 * M, W), nn.LeakyReLU(inplace=True), conv3x3(W, W))
        self.fuse = nn.Sequential(
            nn.LeakyReLU(inplace=True),
            conv1x1(3 * W, W),
            nn.LeakyReLU(inplace=True),
            conv3x3(W, W),
            nn.LeakyReLU(inplace=True),
            conv1x1(W, 2 * M),
        )
        # The correction starts at zero: an untrained context model is exactly the hyperprior, so
        # a codec continued from trained hyperprior weights (``--init``) starts where they were.
        nn.init.zeros_(self.fuse[-1].weight)
        nn.init.zeros_(self.fuse[-1].bias)

    def forward(self, scales: Tensor, means: Tensor, y_known: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        size = y_known.shape[-2:]
        k = torch.cat([y_known, known], dim=1)
        full = self.prior_in(torch.cat([scales, means], dim=1)) + self.known_in(k)
        half = F.interpolate(self.scale2(F.avg_pool2d(k, 2, ceil_mode=True)), size=size, mode="nearest")
        quarter = F.interpolate(self.scale4(F.avg_pool2d(k, 4, ceil_mode=True)), size=size, mode="nearest")
        d_scales, d_means = self.fuse(torch.cat([full, half, quarter], dim=1)).chunk(2, dim=1)
        return scales + d_scales, means + d_means


class ProgressiveGaussian(GaussianHyperprior):
    """MSP entropy model for an M-channel y with an N-channel hyper-latent (module docstring)."""

    num_streams = 3  # [profile byte, z bytes, y bytes]
    z_stride = 4
    supports_latent_mask = True

    def __init__(self, *, N: int, M: int, default_profile: int = 4, context_width: int | None = None,
                 train_profiles: dict | None = None) -> None:
        if N < 1 or M < 1 or M % GROUPS:
            raise ValueError(f"need N >= 1 and M a positive multiple of {GROUPS}, got N={N}, M={M}")
        super().__init__(N=N, M=M)  # h_a, h_s, z's bottleneck, y's tables: the hyperprior's
        self._default_profile = self._check_profile(default_profile)
        self._train_profiles = check_train_profiles(train_profiles)
        self.context = MultiScaleContext(M, width=context_width)
        # cell id (group * 4 + phase) -> pass number, one row per profile
        table = torch.full((max(PROFILES) + 1, GROUPS * 4), -1, dtype=torch.long)
        for profile, passes in SCHEDULES.items():
            for k, cells in enumerate(passes):
                for g, p in cells:
                    table[profile, g * 4 + p] = k
        self.register_buffer("_pass_of_cell", table, persistent=False)

    @property
    def default_profile(self) -> int:
        """The profile used when none is given (eval forward, compress); fixed at construction."""
        return self._default_profile

    # -- profiles and passes ----------------------------------------------------
    @staticmethod
    def _check_profile(profile: int) -> int:
        if isinstance(profile, bool) or not isinstance(profile, int) or profile not in PROFILES:
            raise ValueError(f"unknown MSP profile {profile!r}; valid: {', '.join(map(str, PROFILES))}")
        return profile

    def resolve_profile(self, profile: int | None) -> int:
        """``profile``, or for None: a random one in training mode, ``default_profile`` in eval mode."""
        if profile is not None:
            return self._check_profile(profile)
        if not self.training:
            return self._default_profile
        drawn = tuple(self._train_profiles)
        weights = torch.tensor([self._train_profiles[p] for p in drawn], dtype=torch.float64)
        return drawn[int(torch.multinomial(weights, 1))]

    @staticmethod
    def context_calls(profile: int) -> int:
        """Context-network calls per picture for ``profile``: passes - 1."""
        return len(SCHEDULES[profile]) - 1

    def pass_map(self, profile: int, hw: tuple[int, int], device: torch.device | None = None) -> Tensor:
        """Pass number of every element, long 1 x M x h x w."""
        h, w = hw
        table = self._pass_of_cell[self._check_profile(profile)].to(device)
        group = torch.arange(self.M, device=device) // (self.M // GROUPS)
        rows = torch.arange(h, device=device) % 2
        cols = torch.arange(w, device=device) % 2
        phase_of = torch.tensor([0, 2, 3, 1], device=device)  # 2 * row + col -> phase number
        phase = phase_of[2 * rows[:, None] + cols[None, :]]
        return table[group[:, None, None] * 4 + phase[None]][None]

    def context_params(self, scales_hp: Tensor, means_hp: Tensor, y_hat: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        """(scales, means) for a later pass; ``known``: bool, broadcastable to y_hat (True = decoded)."""
        known = known.expand_as(y_hat)
        y_known = torch.where(known, y_hat, torch.zeros_like(y_hat))
        return self.context(scales_hp, means_hp, y_known, known.to(y_hat.dtype))

    def _pass_params(self, k: int, scales_hp: Tensor, means_hp: Tensor, y_hat: Tensor,
                     known: Tensor) -> tuple[Tensor, Tensor]:
        if k == 0:
            return scales_hp, means_hp
        return self.context_params(scales_hp, means_hp, y_hat, known)

    # -- training / rate estimates ------------------------------------------------
    def forward(self, y: Tensor, z: Tensor, quantizer: Quantizer, *,
                profile: int | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Per pass: ``quantizer(y, means_k)``; keeps its outputs at the pass's cells.

        The quantisers are element-wise, so applying one to all of y with pass
        k's means and keeping pass k's cells is the same as applying it to those
        cells alone. The context network sees the synthesis values (x_synth) of
        earlier passes. Under HardRound in eval mode, the y returned is exactly
        what ``compress`` codes.
        """
        profile = self.resolve_profile(profile)
        gc = self.gaussian_conditional
        z_hat, z_lik = bottleneck_forward(self.entropy_bottleneck, z, quantizer)
        scales_hp, means_hp = self.params(z_hat)
        pass_map = self.pass_map(profile, tuple(y.shape[-2:]), y.device)
        known = torch.zeros_like(pass_map, dtype=torch.bool)
        y_synth = torch.zeros_like(y)
        y_lik = torch.ones_like(y)
        for k in range(len(SCHEDULES[profile])):
            cells = pass_map == k
            scales, means = self._pass_params(k, scales_hp, means_hp, y_synth, known)
            y_rate, y_pass = quantizer(y, means)
            y_lik = torch.where(cells, gc._likelihood(y_rate, scales, means), y_lik)
            y_synth = torch.where(cells, y_pass, y_synth)
            known = known | cells
        y_lik = gc.likelihood_lower_bound(y_lik)
        return y_synth, {"y": y_lik, "z": z_lik}

    # -- coding ---------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, y: Tensor, z: Tensor, *, coder: IndexedCoder | None = None,
                 latent_mask: Tensor | None = None, profile: int | None = None) -> tuple[list[bytes], Tensor]:
        """-> ([profile byte, z bytes, y bytes], y_hat); ``profile`` None: ``default_profile``.

        ``latent_mask``: bool [h x w], True where y is coded; elsewhere y_hat = the
        pass's means (no bits).
        """
        if y.shape[0] != 1:
            raise ValueError(f"compress codes one latent at a time, got batch {y.shape[0]}")
        profile = self._default_profile if profile is None else self._check_profile(profile)
        coder = resolve_coder(coder)
        gc = self.gaussian_conditional
        z_mask = None if latent_mask is None else self._z_mask(latent_mask)
        z_string, z_hat = bottleneck_compress(self.entropy_bottleneck, z, coder=coder, mask=z_mask)
        scales_hp, means_hp = self.params(z_hat)
        coded = None if latent_mask is None else _coded_positions(latent_mask, means_hp)
        pass_map = self.pass_map(profile, tuple(means_hp.shape[-2:]), means_hp.device)
        known = torch.zeros_like(pass_map, dtype=torch.bool)
        y_hat = torch.zeros_like(means_hp)
        chunks = []
        for k in range(len(SCHEDULES[profile])):
            cells = pass_map == k
            scales, means = self._pass_params(k, scales_hp, means_hp, y_hat, known)
            indexes = gc.build_indexes(scales)
            symbols = gc.quantize(y, "symbols", means)
            values = gc.dequantize(symbols, means)
            sel = cells if coded is None else cells & coded
            chunks.append((symbols[sel], indexes[sel]))
            if coded is not None:
                values = torch.where(coded, values, means)
            y_hat = torch.where(cells, values, y_hat)
            known = known | cells
        y_string = coder.encode_chunks(chunks, CdfTables.from_entropy_model(gc))
        return [bytes([profile]), z_string, y_string], y_hat

    @staticmethod
    def read_profile(header: bytes) -> int:
        """The profile named by stream 0; CorruptStreamError (stream 0, position 0) unless valid."""
        header = bytes(header)
        if len(header) != 1 or header[0] not in PROFILES:
            raise CorruptStreamError(
                f"MSP profile header must be one byte in {{{', '.join(map(str, PROFILES))}}}, "
                f"got {len(header)} byte(s) {header[:8]!r}",
                stream=0, position=0,
            )
        return header[0]

    @torch.no_grad()
    def decompress(self, strings: list[bytes], latent_hw: tuple[int, int], *, coder: IndexedCoder | None = None,
                   latent_mask: Tensor | None = None) -> Tensor:
        if len(strings) != self.num_streams:
            raise ValueError(f"expected {self.num_streams} byte strings, got {len(strings)}")
        profile = self.read_profile(strings[0])
        coder = resolve_coder(coder)
        gc = self.gaussian_conditional
        h, w = latent_hw
        z_hat = bottleneck_decompress(
            self.entropy_bottleneck, strings[1], (h // self.z_stride, w // self.z_stride), coder=coder,
            mask=None if latent_mask is None else self._z_mask(latent_mask),
        )
        scales_hp, means_hp = self.params(z_hat)
        coded = None if latent_mask is None else _coded_positions(latent_mask, means_hp)
        pass_map = self.pass_map(profile, tuple(means_hp.shape[-2:]), means_hp.device)
        known = torch.zeros_like(pass_map, dtype=torch.bool)
        y_hat = torch.zeros_like(means_hp)
        stream = coder.open(strings[2], CdfTables.from_entropy_model(gc))
        for k in range(len(SCHEDULES[profile])):
            cells = pass_map == k
            scales, means = self._pass_params(k, scales_hp, means_hp, y_hat, known)
            indexes = gc.build_indexes(scales)
            sel = cells if coded is None else cells & coded
            symbols = torch.zeros(means.shape, dtype=torch.int32, device=means.device)
            symbols[sel] = stream.decode(indexes[sel]).to(means.device)
            values = gc.dequantize(symbols, means)
            if coded is not None:
                values = torch.where(coded, values, means)
            y_hat = torch.where(cells, values, y_hat)
            known = known | cells
        stream.finish()
        return y_hat

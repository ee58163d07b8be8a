"""Integer rANS tables for Gaussian-mixture latents, built fast and bit-exactly.

The mixture entropy model (``gmm.py``) codes each latent element as the integer
symbol ``s = round(y - mu_bar)`` under its own K-component mixture
``sum_k w_k N(mu_k, sigma_k)``. compressai's rANS coder takes a *table* of integer
CDFs and one table index per symbol; handing it one CDF per element means one
Python list per element, which is what makes ``GaussianMixtureConditional.compress``
slow. This module instead

1. **quantises** every component's parameters, relative to the coding centre
   ``mu_bar``, to a small integer grid (exact float comparisons and power-of-two
   scalings only, so the same floats always give the same integers):

   - scale ``sigma``: one of ``NUM_SCALE_LEVELS`` log-spaced levels
     ``0.11 * 2**(j/3)`` (3 per octave, 0.11 .. ~71), by ``bucketize``;
   - offset ``d = mu_k - mu_bar``: rounded to a step of ``2**e_j / PHASES``
     (``e_j`` chosen so the step is about ``sigma_j / 4``, never finer than
     1/16), clamped to ``|d| <= MAX_OFFSET``; stored as integer part ``n`` and
     phase ``f`` in sixteenths;
   - weight: log-spaced levels ``2**((i - WEIGHT_LEVELS) / 4)`` (4 per octave,
     down to ~2**-10; smaller weights are dropped); components that land in the
     same (scale, offset) cell are merged first;

2. packs the K component keys of an element, sorted (so component order does
   not matter), into one int64, and keeps only the **distinct** mixtures of the
   picture (``torch.unique``): elements share CDF rows through their indexes;

3. builds each distinct mixture's CDF **in integers** from a stored table of
   fixed-point Gaussian CDF values (``component_cdf``, built once by ``update``
   and saved in the checkpoint): ``C[b] = sum_k W_k * G[j_k, f_k, b - n_k]``,
   then 16-bit frequencies ``1 + floor(p * (2**16 - bins) / total)`` (every bin,
   including the overflow bin, gets at least 1; the remainder goes to the most
   likely bin), so encoder and decoder derive identical tables from z_hat alone.

Support: symbols ``[-R, R]`` with ``R = max_k(ceil(|d_k|) + ceil(4 sigma_k))``
rounded up to one of ``SUPPORT_CLASSES`` (at most ``MAX_SUPPORT`` = 64); anything
outside is coded through the coder's overflow bin (Elias-gamma-like 4-bit
bypass), so every int32 symbol is codable.

Trade-off: parameter quantisation costs a little rate (on the order of 0.01
bit per element; see the tests for the measured gap) and buys tables whose size
is the number of *distinct* quantised mixtures in the picture rather than the
number of elements. In the worst case (all elements distinct) the work is that
of per-element CDFs, never more.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

CDF_PRECISION = 16  # compressai's rANS coder works with 16-bit frequencies
SCALE_MIN = 0.11  # same lower bound as compressai's GaussianConditional
SCALE_LEVELS_PER_OCTAVE = 3
NUM_SCALE_LEVELS = 29  # 0.11 .. 0.11 * 2**(28/3) ~ 71
PHASES = 16  # finest mean-offset step: 1/16
OFFSET_STEP_PER_SCALE = 0.25  # offset step ~ sigma / 4 (mean-shift KL <= 1/128 nat)
MAX_OFFSET = 31  # |mu_k - mu_bar| is clamped to this many symbols
TAIL_SIGMAS = 4.0  # support half-width per component, in sigmas
MAX_SUPPORT = 64
SUPPORT_CLASSES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
WEIGHT_LEVELS_PER_OCTAVE = 4
WEIGHT_LEVELS = 40  # weights from 2**-9.75 to 1; index 0 means "dropped"
WEIGHT_BITS = 12  # fixed-point weights: weight 1.0 -> 4096
CDF_FIXED_POINT_BITS = 30  # fixed-point Gaussian CDF values: 1.0 -> 2**30

# bit layout of one component key: [scale j | phase f | offset n + MAX_OFFSET | weight i]
_WEIGHT_FIELD = 6
_OFFSET_FIELD = 6
_PHASE_FIELD = 4
_SCALE_FIELD = 5
_COMPONENT_BITS = _WEIGHT_FIELD + _OFFSET_FIELD + _PHASE_FIELD + _SCALE_FIELD  # 21
_TABLE_SHIFT = MAX_SUPPORT + MAX_OFFSET + 2  # G's column of m = 0
_TABLE_WIDTH = 2 * _TABLE_SHIFT + 1

assert NUM_SCALE_LEVELS <= 1 << _SCALE_FIELD and PHASES <= 1 << _PHASE_FIELD
assert 2 * MAX_OFFSET + 1 <= 1 << _OFFSET_FIELD and WEIGHT_LEVELS < 1 << _WEIGHT_FIELD
assert SUPPORT_CLASSES[-1] == MAX_SUPPORT


@dataclass(frozen=True)
class CodingTables:
    """The rANS coder's inputs for one latent, as integer tensors (CPU).

    blocks: CDF rows grouped by support class; block c is
        ``U_c x (2 R_c + 3)`` int32 (``0, ..., 2**16``; the last bin is the overflow bin).
        Table row t is row t of the blocks concatenated in order.
    cdf_lengths, offsets: int32 [T]: ``2 R + 3`` and ``-R`` per table row.
    indexes: int32 [n]: table row of each latent element (C-order of y).
    """

    blocks: tuple[Tensor, ...]
    cdf_lengths: Tensor
    offsets: Tensor
    indexes: Tensor

    @property
    def num_rows(self) -> int:
        return int(self.cdf_lengths.numel())

    def coder_args(self) -> tuple[list[int], list[list[int]], list[int], list[int]]:
        """(indexes, cdfs, cdf_lengths, offsets) as the lists compressai's coder takes."""
        cdfs: list[list[int]] = []
        with _gc_paused():  # one list per row: keep the cyclic GC from rescanning the heap
            for block in self.blocks:
                cdfs += block.tolist()
        return self.indexes.tolist(), cdfs, self.cdf_lengths.tolist(), self.offsets.tolist()

    def equal(self, other: CodingTables) -> bool:
        """Exact equality of every integer tensor."""
        return (
            len(self.blocks) == len(other.blocks)
            and all(torch.equal(a, b) for a, b in zip(self.blocks, other.blocks))
            and torch.equal(self.cdf_lengths, other.cdf_lengths)
            and torch.equal(self.offsets, other.offsets)
            and torch.equal(self.indexes, other.indexes)
        )


class MixtureCdfTables(nn.Module):
    """Stored integer tables (built by :meth:`update`) and the table builder.

    The buffers travel in checkpoints, so a decoder with the same weights uses
    the very same integers; only the element-wise quantisation runs on floats,
    and it uses exact comparisons (``bucketize``) and power-of-two scalings.
    """

    scale_bounds: Tensor
    offset_step_exp: Tensor
    half_width: Tensor
    weight_bounds: Tensor
    weight_values: Tensor
    component_cdf: Tensor

    _BUFFERS = ("scale_bounds", "offset_step_exp", "half_width", "weight_bounds", "weight_values", "component_cdf")

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale_bounds", torch.Tensor())  # float32 [J-1]
        self.register_buffer("offset_step_exp", torch.IntTensor())  # int32 [J]
        self.register_buffer("half_width", torch.IntTensor())  # int32 [J]
        self.register_buffer("weight_bounds", torch.Tensor())  # float32 [I]
        self.register_buffer("weight_values", torch.LongTensor())  # int64 [I+1]
        self.register_buffer("component_cdf", torch.IntTensor())  # int32 [J, PHASES, width]
        self.register_buffer("support_classes", torch.tensor(SUPPORT_CLASSES, dtype=torch.int32), persistent=False)

    # -- building the stored tables --------------------------------------------
    def built(self) -> bool:
        return all(getattr(self, name).numel() > 0 for name in self._BUFFERS)

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build the stored tables (deterministic; float64 maths rounded to integers)."""
        if self.built() and not force:
            return False
        device = self.component_cdf.device
        f64 = dict(dtype=torch.float64, device=device)
        j = torch.arange(NUM_SCALE_LEVELS, **f64)
        sigma = SCALE_MIN * torch.exp2(j / SCALE_LEVELS_PER_OCTAVE)
        scale_bounds = SCALE_MIN * torch.exp2((j[:-1] + 0.5) / SCALE_LEVELS_PER_OCTAVE)
        # offset step 2**e / PHASES with 2**e / PHASES <= sigma / 4 (and e >= 0)
        e = torch.floor(torch.log2(sigma * OFFSET_STEP_PER_SCALE * PHASES)).clamp_(min=0)
        half_width = torch.ceil(TAIL_SIGMAS * sigma)
        i = torch.arange(1, WEIGHT_LEVELS + 1, **f64)
        weight_bounds = torch.exp2((i - WEIGHT_LEVELS - 0.5) / WEIGHT_LEVELS_PER_OCTAVE)
        weight_values = torch.round(torch.exp2((i - WEIGHT_LEVELS) / WEIGHT_LEVELS_PER_OCTAVE + WEIGHT_BITS))
        weight_values = torch.cat([torch.zeros(1, **f64), weight_values])
        # G[j, f, m] = Phi((m - 1/2 - f / PHASES) / sigma_j): CDF at the lower edge of symbol n + m
        m = torch.arange(-_TABLE_SHIFT, _TABLE_SHIFT + 1, **f64)
        phase = torch.arange(PHASES, **f64) / PHASES
        x = (m[None, None, :] - 0.5 - phase[None, :, None]) / sigma[:, None, None]
        g = torch.round(0.5 * torch.erfc(-x / math.sqrt(2.0)) * 2.0**CDF_FIXED_POINT_BITS)
        g = torch.cummax(g, dim=-1).values  # monotone in m by construction
        self.scale_bounds = scale_bounds.float()
        self.offset_step_exp = e.int()
        self.half_width = half_width.int()
        self.weight_bounds = weight_bounds.float()
        self.weight_values = weight_values.long()
        self.component_cdf = g.int()
        return True

    # -- per-picture tables ----------------------------------------------------
    @torch.no_grad()
    def component_keys(self, weights: Tensor, means: Tensor, scales: Tensor, center: Tensor) -> Tensor:
        """Quantise mixture parameters to canonical integer component keys.

        weights, means, scales: [..., K] (weights summing to 1 over K, scales
        raw; anything below 0.11 counts as 0.11); center: [...] coding centre.
        Returns int64 [n, K] (n = number of elements), sorted along K.
        """
        k = weights.shape[-1]
        weights = weights.reshape(-1, k).float()
        scales = scales.reshape(-1, k).float()
        offsets = (means.reshape(-1, k) - center.reshape(-1, 1)).float()
        scale_bounds, step_exp = self.scale_bounds, self.offset_step_exp
        j = torch.bucketize(scales.contiguous(), scale_bounds)  # [n, K], 0..J-1
        # exact: multiplying by a power of two (built from Python floats) and rounding
        inv_step_table = [PHASES * 2.0**-e for e in step_exp.tolist()]
        inv_step = torch.tensor(inv_step_table, dtype=torch.float32, device=j.device)[j]
        q = torch.round(offsets * inv_step).clamp_(-MAX_OFFSET * PHASES, MAX_OFFSET * PHASES)
        dq = q.long() << step_exp.long()[j]  # offset in 1/PHASES units
        dq = dq.clamp_(-MAX_OFFSET * PHASES, MAX_OFFSET * PHASES)
        cell = (j.long() << (_PHASE_FIELD + _OFFSET_FIELD)) | ((dq + MAX_OFFSET * PHASES) // PHASES) | (
            (dq % PHASES) << _OFFSET_FIELD
        )
        # merge components that fall in the same cell, then quantise the weights
        same = cell[:, :, None] == cell[:, None, :]
        merged = (same * weights[:, None, :]).sum(-1)
        earlier = torch.tril(torch.ones(k, k, dtype=torch.bool, device=same.device), diagonal=-1)
        duplicate = (same & earlier).any(-1)
        merged = merged.masked_fill(duplicate, 0.0)
        i = torch.bucketize(merged.contiguous(), self.weight_bounds).long()
        keys = torch.where(i > 0, (cell << _WEIGHT_FIELD) | i, torch.zeros_like(i))
        return torch.sort(keys, dim=-1).values

    @torch.no_grad()
    def build(self, component_keys: Tensor) -> CodingTables:
        """Distinct mixtures -> integer CDF rows; one table index per element."""
        keys = component_keys.cpu()
        rows, inverse = _unique_rows(keys)
        u, k = rows.shape
        weight_idx = rows & ((1 << _WEIGHT_FIELD) - 1)
        cell = rows >> _WEIGHT_FIELD
        n = (cell & ((1 << _OFFSET_FIELD) - 1)) - MAX_OFFSET
        f = (cell >> _OFFSET_FIELD) & ((1 << _PHASE_FIELD) - 1)
        j = cell >> (_OFFSET_FIELD + _PHASE_FIELD)
        tables = self._cpu_tables()
        w = tables["weight_values"][weight_idx]  # [U, K] int64, 0 for dropped components
        active = w > 0
        dq = n * PHASES + f
        reach = (dq.abs() + PHASES - 1) // PHASES + tables["half_width"][j].long()
        radius = torch.where(active, reach, torch.zeros_like(reach)).amax(-1).clamp_(1, MAX_SUPPORT)
        classes = tables["support_classes"]
        cls = torch.bucketize(radius.int(), classes)  # smallest class >= radius
        order = torch.argsort(cls, stable=True)
        position = torch.empty_like(order)
        position[order] = torch.arange(u)
        g_flat = tables["component_cdf"].reshape(-1).long()
        base = (j * PHASES + f) * _TABLE_WIDTH + _TABLE_SHIFT - n  # [U, K]
        total = w.sum(-1, keepdim=True) << CDF_FIXED_POINT_BITS  # [U, 1]
        blocks, lengths, offsets = [], [], []
        for c in torch.unique(cls).tolist():
            r = SUPPORT_CLASSES[c]
            sel = order[cls[order] == c]
            edges = torch.arange(-r, r + 2)  # lower edges of symbols -R .. R+1
            base_c, w_c = base[sel], w[sel]
            cum = torch.zeros(sel.numel(), edges.numel(), dtype=torch.int64)
            for comp in range(k):  # fixed-point mixture CDF: sum_k W_k G[j_k, f_k, edge - n_k]
                g = g_flat.index_select(0, (base_c[:, comp, None] + edges).reshape(-1))
                cum += w_c[:, comp, None] * g.view(sel.numel(), -1)
            blocks.append(_quantized_cdf(cum, total[sel]))
            lengths.append(torch.full((sel.numel(),), 2 * r + 3, dtype=torch.int32))
            offsets.append(torch.full((sel.numel(),), -r, dtype=torch.int32))
        return CodingTables(
            blocks=tuple(blocks),
            cdf_lengths=torch.cat(lengths),
            offsets=torch.cat(offsets),
            indexes=position[inverse].int(),
        )

    def _cpu_tables(self) -> dict[str, Tensor]:
        names = ("half_width", "weight_values", "component_cdf", "support_classes")
        return {name: getattr(self, name).cpu() for name in names}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restoring its previous state).

    Creating hundreds of thousands of small lists otherwise triggers repeated
    full-heap collections that cost several times the list creation itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _unique_rows(keys: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct rows of int64 [n, K] component keys and each row's index."""
    k = keys.shape[1]
    if k * _COMPONENT_BITS <= 63:
        packed = keys[:, 0].clone()
        for c in range(1, k):
            packed |= keys[:, c] << (c * _COMPONENT_BITS)
        values, inverse = torch.unique(packed, return_inverse=True)
        mask = (1 << _COMPONENT_BITS) - 1
        rows = torch.stack([(values >> (c * _COMPONENT_BITS)) & mask for c in range(k)], dim=1)
        return rows, inverse
    rows, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return rows, inverse


def _quantized_cdf(cum: Tensor, total: Tensor) -> Tensor:
    """Fixed-point CDF values at the 2R+2 symbol edges -> 16-bit rANS CDF rows.

    cum: int64 [U, 2R+2], non-decreasing, within [0, total]; total: int64 [U, 1].
    Returns int32 [U, 2R+3]: 2R+1 symbol bins plus the overflow bin (the mass
    outside the support), each with frequency >= 1, summing to 2**16.
    """
    bins = torch.cat([cum.diff(dim=1), total - (cum[:, -1:] - cum[:, :1])], dim=1)
    nbins = bins.shape[1]
    spare = (1 << CDF_PRECISION) - nbins
    freq = 1 + bins * spare // total  # floor; sum <= 2**16 since sum(bins) == total
    remainder = (1 << CDF_PRECISION) - freq.sum(1, keepdim=True)
    freq.scatter_add_(1, freq.argmax(1, keepdim=True), remainder)
    return torch.nn.functional.pad(freq.cumsum(1), (1, 0)).int()

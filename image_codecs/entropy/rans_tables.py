"""Exact, fast rANS coding of Gaussian-mixture symbols with small shared tables.

Problem. Each latent element has its own K-component mixture, so its integer
symbol ``s = round(y - mu_bar)`` has its own pmf. compressai's rANS coder takes
CDFs as Python lists (``list[list[int]]``) plus one table index per symbol; one
CDF per element means one Python list per element, and with K = 3 the mixtures
are too varied for elements to share quantised CDFs (measured: with parameters
bucketed finely enough to lose < 1% rate, ~99% of elements of a picture still
need their own row, and coding took 8-20x the single-Gaussian time).

Design. Code ``s`` as a short sequence of **binary decisions** whose exact
conditional probabilities come from the mixture, and code each decision with
one of ``T`` shared 2-symbol rANS tables (the decision probability is the only
per-element quantity, quantised to the nearest of ``T`` levels):

1. ``s == 0 ?``                       p = P(s = 0)
2. ``s < 0 ?`` (if not 0)             p = P(s <= -1) / P(s != 0)
3. magnitude ``m = |s| >= 1`` on that side, by interval halving on ``[lo, hi)``:
   while the interval is open (``hi = inf``) split first at a power of two near
   the median of m (from the mixture's standard deviation; 2 for narrow
   mixtures), then at twice the last split (Elias-gamma-like prefix: is m < 2,
   < 4, < 8, ...); once closed, bisect ``[lo, hi)`` down to one value;
   p = mass(``[lo, mid)``) / mass(``[lo, hi)``) from the mixture's tail masses.
4. ``m >= ESCAPE_MAGNITUDE``: the remainder goes through the coder's overflow
   path (a table whose overflow bin holds all but 2**-16 of the mass, so the
   value costs only its escape bits, see ``coders.py``): every int32 symbol
   is codable.

A zero costs one decision, ``|s| = 1`` three, ...: in practice about (bits per
element + 0.5 to 1) rANS symbols, each as cheap as one single-Gaussian symbol,
and no per-element Python lists. Probabilities are exact mixture masses (float32
``erfc``, no parameter quantisation); the only rate overhead is quantising each
decision probability to one of the ``T`` levels (ratio ``2**(1/32)`` on the
minority probability, down to ``2**-16``) plus 1/65536 per decision for the
unused overflow bin: well under 0.5% in practice.

Exactness. Encoder and decoder run the **same** round loop
(:func:`code_mixture_symbols`): round r handles, in element order, every element
still undecided after round r-1, from state that depends only on z_hat and the
decisions already coded. The encoder reads outcomes from the true symbols, the
decoder from the stream; both evaluate identical float ops on identical
tensors, so they pick identical table rows (tests compare the per-round integer
index tensors with ``torch.equal``). The shared tables are integers built by
``update()`` and stored as buffers, so they travel with the checkpoint.
Like every learned codec here (the single-Gaussian one included), bit-exact
decoding assumes the decoder's h_s reproduces the encoder's floats, i.e. the
same kind of device and library build.

The bytes come from an ``IndexedCoder`` (``coders.py``): each round is one
chunk of :meth:`IndexedCoder.encode_chunks`, and the decoder decodes round r
as chunk r, so a coder may reorder symbols within a round (SafeAns groups
them by table row) but never across rounds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .coders import CdfTables, IndexedCoder, resolve_coder

CDF_PRECISION = 16  # compressai's rANS coder: 16-bit frequencies
MIN_PROB_LOG2 = -16  # smallest decision probability level: 2**-16
PROB_LEVELS_PER_OCTAVE = 32  # level spacing on the minority probability
_ESCAPE_LOG2 = 16
ESCAPE_MAGNITUDE = 1 << _ESCAPE_LOG2  # |s| >= this is finished with bypass bits
MAX_MAGNITUDE = 1 << 24  # callers clamp |s| to this (keeps bypass values int32-safe)


@dataclass(frozen=True)
class MixtureParams:
    """Per-element mixture parameters for coding, all float32 [K, n] (elements in
    C-order of y; component-major, so they are views of h_s's N x K x M x h x w output).

    offsets: mu_k - mu_bar (symbols are ``round(y - mu_bar)``);
    scales: sigma_k, already lower-bounded; weights: w_k, summing to 1 over K.
    """

    offsets: Tensor
    scales: Tensor
    weights: Tensor

    @property
    def num_elements(self) -> int:
        return int(self.offsets.shape[1])

    def equal(self, other: MixtureParams) -> bool:
        return (
            torch.equal(self.offsets, other.offsets)
            and torch.equal(self.scales, other.scales)
            and torch.equal(self.weights, other.weights)
        )

    def tail(self, elements: Tensor | None, side: float | Tensor, magnitude: int | Tensor) -> Tensor:
        """Mixture mass of ``{s : side * s >= magnitude}`` (magnitude >= 1), float32 [A].

        elements: int64 [A] elements to evaluate (None: all); side: +1 / -1 (float
        or float32 [A]); magnitude: int or int64 [A].
        ``sum_k w_k Q((magnitude - 1/2 - side * d_k) / sigma_k)``, Q the Gaussian
        upper tail, evaluated with ``erfc`` so small tails keep their precision.
        """
        d, s, w = self._select(elements)
        edge = magnitude.to(torch.float32) - 0.5 if isinstance(magnitude, Tensor) else float(magnitude) - 0.5
        x = (edge - side * d) / s
        return (w * torch.special.erfc(x * (1.0 / math.sqrt(2.0)))).sum(0) * 0.5

    def first_split(self, elements: Tensor) -> Tensor:
        """First split of the open magnitude interval, int64 [A]: a power of two >= 2
        near the median of |s| (0.674 x the mixture's standard deviation), chosen
        by exact comparisons so encoder and decoder agree."""
        d, s, w = self._select(elements)
        var = (w * (s * s + d * d)).sum(0) * (0.674**2)
        # round(log2(sqrt(var))) = k  <=>  2**(2k-1) <= var < 2**(2k+1)
        bounds = torch.tensor([2.0 ** (2 * k + 1) for k in range(_ESCAPE_LOG2)], dtype=var.dtype)
        k = torch.bucketize(var, bounds, right=True).clamp_(1, _ESCAPE_LOG2)
        return torch.ones_like(k) << k

    def _select(self, elements: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        if elements is None:
            return self.offsets, self.scales, self.weights
        return tuple(t.index_select(1, elements) for t in (self.offsets, self.scales, self.weights))


class BinaryDecisionTables(nn.Module):
    """The shared rANS tables: ``T`` two-symbol CDFs plus one bypass-only CDF.

    Row t < T: ``[0, f_t, 2**16 - 1, 2**16]``: outcome 0 ("in the first part")
    with frequency f_t, outcome 1 with ``2**16 - 1 - f_t``, and a 1-count
    overflow bin the decisions never use. Row T: ``[0, 1, 2**16]`` with offset
    -1: every value v >= 0 lands in the overflow bin (probability 1 - 2**-16),
    so it costs bypass bits only. (No bin may have frequency 2**16: compressai's
    coder stores frequencies as uint16.)
    """

    cdfs: Tensor
    cdf_lengths: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("cdfs", torch.IntTensor())  # int32 [T+1, 4], bypass row zero-padded
        self.register_buffer("cdf_lengths", torch.IntTensor())  # int32 [T+1]

    BUFFERS = ("cdfs", "cdf_lengths")

    @property
    def bypass_row(self) -> int:
        return int(self.cdfs.shape[0]) - 1

    def built(self) -> bool:
        return all(getattr(self, name).numel() > 0 for name in self.BUFFERS)

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        if self.built() and not force:
            return False
        device = self.cdfs.device
        total = 1 << CDF_PRECISION
        # minority probabilities 2**-16 .. just below 1/2, geometric; then 1/2; then mirrored
        steps = -MIN_PROB_LOG2 * PROB_LEVELS_PER_OCTAVE
        low = torch.exp2(torch.arange(steps, dtype=torch.float64) / PROB_LEVELS_PER_OCTAVE + MIN_PROB_LOG2)
        levels = torch.cat([low, torch.tensor([0.5], dtype=torch.float64), 1.0 - low.flip(0)])
        freq = torch.round(levels * total).clamp_(1, total - 2).long()
        rows = torch.stack([torch.zeros_like(freq), freq, torch.full_like(freq, total - 1), torch.full_like(freq, total)], 1)
        bypass = torch.tensor([[0, 1, total, 0]])
        self.cdfs = torch.cat([rows, bypass]).int().to(device)
        lengths = [4] * rows.shape[0] + [3]
        self.cdf_lengths = torch.tensor(lengths, dtype=torch.int32, device=device)
        return True

    def rows_for(self, prob: Tensor) -> Tensor:
        """Table row (int64) for decision probabilities P(outcome 0), float32 in [0, 1].

        The level nearest in log2 of the minority probability (levels 2**(j/32 - 16),
        j < 512, then 1/2, then mirrored), from float ops only, so identical
        inputs give identical rows.
        """
        steps = -MIN_PROB_LOG2 * PROB_LEVELS_PER_OCTAVE
        minority = torch.minimum(prob, 1.0 - prob).clamp_(min=2.0 ** (MIN_PROB_LOG2 - 1))
        j = ((torch.log2(minority) - MIN_PROB_LOG2) * PROB_LEVELS_PER_OCTAVE).round_().clamp_(0, steps - 1).long()
        rows = torch.where(prob < 0.5, j, 2 * steps - j)
        return rows.masked_fill_(prob == 0.5, steps)

    def coder_lists(self) -> tuple[list[list[int]], list[int], list[int]]:
        """(cdfs, cdf_lengths, offsets) as compressai's coder takes them (rows unpadded)."""
        lengths = self.cdf_lengths.tolist()
        cdfs = [row[:n] for row, n in zip(self.cdfs.tolist(), lengths)]
        return cdfs, lengths, [0] * (len(lengths) - 1) + [-1]

    def coder_tables(self) -> CdfTables:
        """The tables for an ``IndexedCoder``: offsets 0, and -1 for the bypass row."""
        offset = torch.zeros(self.cdf_lengths.shape, dtype=torch.int32)
        offset[-1] = -1
        return CdfTables(cdf=self.cdfs, cdf_length=self.cdf_lengths, offset=offset)


class _Channel(ABC):
    """Where decisions go (encoder) or come from (decoder); records table rows per round."""

    def __init__(self, tables: BinaryDecisionTables) -> None:
        self.tables = tables
        self.trace: list[Tensor] = []  # int32 table rows, one tensor per round

    @abstractmethod
    def decide(self, rows: Tensor, truth: Tensor | None) -> Tensor:
        """One binary decision per row; returns the outcomes (bool, True = second part)."""

    @abstractmethod
    def bypass(self, values: Tensor | None, count: int) -> Tensor:
        """``count`` non-negative integers in bypass mode; returns them (int64)."""


class _EncoderChannel(_Channel):
    """Collects one (symbols, rows) chunk per round; ``finish`` codes them all in one string."""

    def __init__(self, tables: BinaryDecisionTables) -> None:
        super().__init__(tables)
        self._chunks: list[tuple[Tensor, Tensor]] = []

    def decide(self, rows: Tensor, truth: Tensor | None) -> Tensor:
        assert truth is not None
        self.trace.append(rows.int())
        self._chunks.append((truth.int(), rows.int()))
        return truth

    def bypass(self, values: Tensor | None, count: int) -> Tensor:
        assert values is not None
        rows = torch.full((count,), self.tables.bypass_row, dtype=torch.int32)
        self.trace.append(rows)
        self._chunks.append((values.int(), rows))  # values <= MAX_MAGNITUDE
        return values

    def finish(self, coder: IndexedCoder) -> bytes:
        return coder.encode_chunks(self._chunks, self.tables.coder_tables())


class _DecoderChannel(_Channel):
    """Decodes each round as the chunk the encoder's round produced."""

    def __init__(self, tables: BinaryDecisionTables, string: bytes, coder: IndexedCoder) -> None:
        super().__init__(tables)
        self._stream = coder.open(string, tables.coder_tables())

    def _decode(self, rows: Tensor) -> Tensor:
        self.trace.append(rows.int())
        return self._stream.decode(rows).long()

    def decide(self, rows: Tensor, truth: Tensor | None) -> Tensor:
        return self._decode(rows).bool()

    def bypass(self, values: Tensor | None, count: int) -> Tensor:
        return self._decode(torch.full((count,), self.tables.bypass_row, dtype=torch.int64))

    def finish(self) -> None:
        self._stream.finish()


def _split_probability(first: Tensor, total: Tensor) -> Tensor:
    """first / total clamped to [0, 1]; 1/2 where the masses underflowed to 0."""
    prob = first / total
    return torch.where(total > 0, prob, torch.full_like(prob, 0.5)).nan_to_num_(0.5).clamp_(0.0, 1.0)


def code_mixture_symbols(params: MixtureParams, channel: _Channel, symbols: Tensor | None) -> Tensor:
    """The one round loop shared by encoder and decoder (see module docstring).

    symbols: int64 [n] (encoder: the truth; decoder: None). Returns the symbols
    (int64 [n]) as decided. Outcome ``True`` means "not in the first part".
    """
    n = params.num_elements
    tables = channel.tables
    out = torch.zeros(n, dtype=torch.int64)
    if n == 0:
        return out
    t_neg = params.tail(None, -1.0, 1)  # P(s <= -1)
    t_pos = params.tail(None, 1.0, 1)  # P(s >= 1)
    # round 0: is s == 0 ?
    p_zero = (1.0 - t_neg - t_pos).nan_to_num_(0.5).clamp_(0.0, 1.0)
    nonzero = channel.decide(tables.rows_for(p_zero), None if symbols is None else symbols != 0)
    active = nonzero.nonzero().squeeze(1)
    if active.numel() == 0:
        return out
    # round 1: which side ?
    t_neg, t_pos = t_neg[active], t_pos[active]
    truth = None if symbols is None else symbols[active] > 0
    positive = channel.decide(tables.rows_for(_split_probability(t_neg, t_neg + t_pos)), truth)
    side = torch.where(positive, 1.0, -1.0)
    sign = torch.where(positive, 1, -1)
    magnitude = None if symbols is None else symbols[active].abs()
    lo = torch.ones_like(active)  # magnitude interval [lo, hi); hi == 0 means open
    hi = torch.zeros_like(active)
    grow = params.first_split(active)  # where the open interval is split next
    t_lo = torch.where(positive, t_pos, t_neg)  # mass of [lo, inf) on this side
    t_hi = torch.zeros_like(t_lo)  # mass of [hi, inf)
    escaped: list[tuple[Tensor, Tensor, Tensor | None]] = []
    while active.numel() > 0:
        open_ = hi == 0
        mid = torch.where(open_, grow, (lo + hi) // 2)
        t_mid = params.tail(active, side, mid)
        truth = None if magnitude is None else magnitude >= mid
        upper = channel.decide(tables.rows_for(_split_probability(t_lo - t_mid, t_lo - t_hi)), truth)
        lo = torch.where(upper, mid, lo)
        t_lo = torch.where(upper, t_mid, t_lo)
        hi = torch.where(upper, hi, mid)
        grow = torch.where(open_ & upper, 2 * mid, grow)
        t_hi = torch.where(upper, t_hi, t_mid)
        done = ((hi - lo) == 1).nonzero().squeeze(1)
        out.index_copy_(0, active.index_select(0, done), sign.index_select(0, done) * lo.index_select(0, done))
        escape = (hi == 0) & (lo >= ESCAPE_MAGNITUDE)
        if escape.any():
            escaped.append((active[escape], sign[escape], None if magnitude is None else magnitude[escape]))
        keep = ((hi - lo != 1) & ~escape).nonzero().squeeze(1)
        active, side, sign, lo, hi, grow, t_lo, t_hi = (
            t.index_select(0, keep) for t in (active, side, sign, lo, hi, grow, t_lo, t_hi)
        )
        magnitude = None if magnitude is None else magnitude.index_select(0, keep)
    if escaped:  # last round: the rest of every escaped magnitude, as bypass bits
        elements = torch.cat([e for e, _, _ in escaped])
        signs = torch.cat([s for _, s, _ in escaped])
        rest = None if symbols is None else torch.cat([m for _, _, m in escaped]) - ESCAPE_MAGNITUDE
        rest = channel.bypass(rest, elements.numel())
        out[elements] = signs * (rest + ESCAPE_MAGNITUDE)
    return out


def encode_mixture_symbols(
    params: MixtureParams, symbols: Tensor, tables: BinaryDecisionTables, *, coder: IndexedCoder | None = None
) -> tuple[bytes, list[Tensor]]:
    """int64 symbols [n] (|s| <= MAX_MAGNITUDE) -> (bytes, per-round table rows); coder None: ``SafeAns()``."""
    if symbols.numel() != params.num_elements:
        raise ValueError(f"{symbols.numel()} symbols for {params.num_elements} mixtures")
    if symbols.numel() and int(symbols.abs().max()) > MAX_MAGNITUDE:
        raise ValueError(f"symbols must satisfy |s| <= {MAX_MAGNITUDE}; clamp them first")
    channel = _EncoderChannel(tables)
    code_mixture_symbols(params, channel, symbols.long().cpu())
    return channel.finish(resolve_coder(coder)), channel.trace


def decode_mixture_symbols(
    params: MixtureParams, string: bytes, tables: BinaryDecisionTables, *, coder: IndexedCoder | None = None
) -> tuple[Tensor, list[Tensor]]:
    """bytes -> (int64 symbols [n], per-round table rows); raises ``CorruptStreamError``
    (SafeAns) unless ``string`` is exactly the encoding of the decoded decisions."""
    channel = _DecoderChannel(tables, string, resolve_coder(coder))
    symbols = code_mixture_symbols(params, channel, None)
    channel.finish()
    return symbols, channel.trace

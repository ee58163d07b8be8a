"""Entropy-coder backends with compressai's indexed-table semantics.

Contract (both backends). Symbols are int32; symbol ``i`` is coded with table row
``indexes[i]`` of a :class:`CdfTables` (compressai's ``_quantized_cdf`` int32
[T, W], 16-bit CDFs, row t valid up to ``_cdf_length[t]``; ``_offset`` [T]).
With ``v = s - offset[t]`` and ``n = cdf_length[t] - 2``: ``0 <= v < n`` is coded
as bin v of the row; anything else as the row's last bin n (the overflow bin)
followed by an escape value, as compressai's bypass mode does. A string may be
decoded in several calls (``open`` -> ``decode`` per chunk -> ``finish``): the
GMM coder decides its round-r table rows from the symbols of rounds < r, so its
encoder hands all rounds to :meth:`IndexedCoder.encode_chunks` and its decoder
decodes them chunk by chunk. An optional ``digest`` (``hashlib`` object) gets
every coded symbol, int32 little-endian in coding order, on both sides.

:class:`LegacyRans` is compressai's C++ rANS coder, byte-identical to what this
package wrote before; it does no bounds checking, so it is for reading old
(trusted) files only. :class:`SafeAns` is the default for new streams.

SafeAns format: the little-endian uint32 words of a ``constriction`` ANS stack
(``constriction.stream.stack.AnsCoder``: 32-bit words, 64-bit state, 24-bit
models). Each row becomes ``Categorical(frequencies, perfect=False)`` built
from the row's integer frequencies as float64; constriction's fast
quantisation (``floor(cumulative * (2**24 - bins) / 2**16) + bin``) is then
exact integer arithmetic in float64 (every product is below 2**53), so the
24-bit model is a pure function of the 16-bit CDF: identical on every machine
(for constriction 0.5's quantisation rule). Within one chunk the decode order
is: symbols grouped by row (rows ascending, element order within a row; one
constriction call per row used), then the chunk's escapes (element order):
a head ``2k + below`` (``Uniform(66)``) with k = bit length of the escape
magnitude e < 2**32 (``e = -v - 1`` below the table, ``v - n`` above), then e's
k - 1 bits under its leading one in <= 2 ``Uniform(2**b)`` parts (b <= 16).
Chunks decode in the order they were given; the encoder pushes everything in
reverse, because ANS is a stack.

Detection (SafeAns). The encoder starts from a non-empty "sealed" state: the
words ``[0, 1]`` (state 2**32, what ``AnsCoder(np.array([0]), seal=True)``
holds); ``finish()`` requires the decoder to land exactly there (state 2**32,
no words left). The plain, empty coder cannot detect missing data:
constriction decodes past the end without error, and state 0 is a fixed point
(decoding symbol 0 keeps it empty, so ``is_empty()`` stays True). With the
seal every ANS step is a bijection between valid states (decoding strictly
shrinks the state unless it refills a word; encoding strictly grows it unless
it flushes one), which gives exactly, not probabilistically:

1. Accepted means canonical: ``decode(data, indexes)`` (``finish`` passing)
   returns X only if ``encode(X, indexes) == data``. Decoding is injective,
   and a decoded escape or symbol outside int32 raises.
2. Whole chunks missing or extra: finishing before every chunk with symbols
   was decoded (leftover data: state above the seal, or words left), or
   decoding a further non-empty chunk (missing data: decoding past the seal
   always shrinks the state), raises.
3. Length not a multiple of 4, fewer than 8 bytes (empty included), or a zero
   last word raise.

Everything else raises unless the damaged input happens to be canonical (1).
A wrong symbol count inside a chunk (e.g. the whole z or hyperprior-y string)
changes the row grouping, so the decode runs off the encoder's path and must
still end exactly on the 64-bit seal; likewise for truncation or extension by
whole words and for random strings: none got through in about 2,000 trials.
A flipped bit inside near-uniform data (escape bits, wide rows) can simply
change one symbol (about 5% of the tests' flips on synthetic near-uniform
symbols decode canonically; 0 of 400 single flips in a trained residual
codec's z and y strings): entropy-coded data has little redundancy left, so
the caller's per-frame ``digest`` is the end-to-end check. Every failure is
one exception type, :class:`CorruptStreamError`; decoding never reads outside
the data and takes time linear in the symbol count. Bad indexes or tables
(caller bugs, not data) raise plain ``ValueError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import constriction
import numpy as np
import torch
from compressai import ans
from compressai.entropy_models import EntropyModel
from torch import Tensor

CDF_PRECISION = 16  # compressai's table precision
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_SEAL = (0, 1)  # the SafeAns initial words: state 2**32
_ESCAPE_HEADS = 2 * 33  # (bit length k in [0, 32]) x (below, above)
_ESCAPE_PART_BITS = 16  # Uniform sizes stay <= 2**16 (constriction allows < 2**24)
_LEGACY_ESCAPE_LIMIT = 1 << 27  # compressai's bypass value 2|v| must stay below 2**28


class CorruptStreamError(ValueError):
    """A byte string is not a valid encoding for the given indexes and tables.

    ``stream`` (index of the offending byte string among a codec's strings) and
    ``position`` (byte offset within it) are set where the raiser knows them,
    e.g. a bad header byte; both are None otherwise.
    """

    def __init__(self, message: str = "", *, stream: int | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.stream = stream
        self.position = position


class Digest(Protocol):
    """What the coders need of a ``hashlib`` object."""

    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True)
class CdfTables:
    """compressai's indexed tables, validated, as CPU int32 tensors.

    cdf: [T, W], row t a 16-bit CDF ``0 = c_0 < c_1 < ... < c_{L-1} = 2**16`` in
    its first ``L = cdf_length[t]`` entries (3 <= L <= W; the rest is padding);
    cdf_length: [T]; offset: [T] (value v = symbol - offset[t]).
    """

    cdf: Tensor
    cdf_length: Tensor
    offset: Tensor

    def __post_init__(self) -> None:
        for name in ("cdf", "cdf_length", "offset"):  # normalise; frozen, so through object
            t = getattr(self, name)
            if not isinstance(t, Tensor) or t.is_floating_point() or t.is_complex():
                raise ValueError(f"CdfTables.{name} must be an integer tensor")
            object.__setattr__(self, name, t.detach().to(device="cpu", dtype=torch.int32).contiguous())
        cdf, lengths, offset = self.cdf, self.cdf_length, self.offset
        if cdf.dim() != 2 or cdf.shape[0] == 0 or lengths.shape != (cdf.shape[0],) or offset.shape != lengths.shape:
            raise ValueError(
                f"tables need cdf [T, W] (T >= 1), cdf_length [T], offset [T]; got "
                f"{tuple(cdf.shape)}, {tuple(lengths.shape)}, {tuple(offset.shape)}"
            )
        if int(lengths.min()) < 3 or int(lengths.max()) > cdf.shape[1]:
            raise ValueError(f"cdf_length must lie in [3, {cdf.shape[1]}]")
        rising = (cdf[:, 1:] > cdf[:, :-1]) | (torch.arange(1, cdf.shape[1]) >= lengths[:, None])
        ends = cdf.gather(1, (lengths.long() - 1)[:, None])[:, 0]
        if (cdf[:, 0] != 0).any() or (ends != 1 << CDF_PRECISION).any() or not rising.all():
            raise ValueError(f"every CDF row must rise strictly from 0 to 2**{CDF_PRECISION} within its length")

    @classmethod
    def from_entropy_model(cls, model: EntropyModel) -> CdfTables:
        """The tables a compressai EntropyModel built in ``update()``."""
        return cls(cdf=model._quantized_cdf, cdf_length=model._cdf_length.reshape(-1), offset=model._offset.reshape(-1))

    @property
    def num_rows(self) -> int:
        return int(self.cdf.shape[0])


def _symbols_array(symbols: Tensor) -> np.ndarray:
    """int64 [n] copy of 1-D integer ``symbols`` within int32."""
    if symbols.dim() != 1 or symbols.is_floating_point() or symbols.is_complex():
        raise ValueError(f"symbols must be a 1-D integer tensor, got {symbols.dtype} {tuple(symbols.shape)}")
    out = symbols.detach().cpu().numpy().astype(np.int64)
    if out.size and (out.min() < _INT32_MIN or out.max() > _INT32_MAX):
        raise ValueError("symbols must fit in int32")
    return out


def _indexes_array(indexes: Tensor, tables: CdfTables) -> np.ndarray:
    """int64 [n] copy of 1-D integer ``indexes``, each a row of ``tables``."""
    if indexes.dim() != 1 or indexes.is_floating_point() or indexes.is_complex():
        raise ValueError(f"indexes must be a 1-D integer tensor, got {indexes.dtype} {tuple(indexes.shape)}")
    out = indexes.detach().cpu().numpy().astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= tables.num_rows):
        raise ValueError(f"indexes must lie in [0, {tables.num_rows})")
    return out


def _feed(digest: Digest | None, symbols: np.ndarray) -> None:
    if digest is not None:
        digest.update(symbols.astype("<i4").tobytes())


class StreamDecoder(ABC):
    """Decodes one byte string in chunks; ``finish()`` once everything was read."""

    def __init__(self, tables: CdfTables, digest: Digest | None) -> None:
        self.tables = tables
        self._digest = digest
        self._finished = False

    def decode(self, indexes: Tensor) -> Tensor:
        """The next ``len(indexes)`` symbols, int32 [n] (indexes: int [n] table rows)."""
        if self._finished:
            raise RuntimeError("decode() after finish()")
        idx = _indexes_array(indexes, self.tables)
        symbols = self._decode(idx) if idx.size else np.zeros(0, dtype=np.int32)
        _feed(self._digest, symbols)
        return torch.from_numpy(symbols)

    def finish(self) -> None:
        """Raise :class:`CorruptStreamError` unless the string was consumed exactly."""
        self._finished = True
        self._finish()

    @abstractmethod
    def _decode(self, indexes: np.ndarray) -> np.ndarray:
        """int64 [n >= 1] validated rows -> int32 [n] symbols."""

    @abstractmethod
    def _finish(self) -> None: ...


class IndexedCoder(ABC):
    """An entropy coder over :class:`CdfTables` (see module docstring).

    digest: optional ``hashlib`` object updated with every symbol this coder
    encodes or decodes (int32 little-endian, coding order).
    """

    def __init__(self, *, digest: Digest | None = None) -> None:
        self.digest = digest

    def encode(self, symbols: Tensor, indexes: Tensor, tables: CdfTables) -> bytes:
        """int32-range symbols [n] with table rows [n] -> bytes."""
        return self.encode_chunks([(symbols, indexes)], tables)

    def encode_chunks(self, chunks: Sequence[tuple[Tensor, Tensor]], tables: CdfTables) -> bytes:
        """(symbols [n_k], indexes [n_k]) chunks -> one string, decodable chunk by chunk
        with one ``StreamDecoder.decode(indexes_k)`` call per chunk, in order."""
        arrays = []
        for symbols, indexes in chunks:
            s, i = _symbols_array(symbols), _indexes_array(indexes, tables)
            if s.shape != i.shape:
                raise ValueError(f"{s.size} symbols but {i.size} indexes")
            _feed(self.digest, s)
            arrays.append((s, i))
        return self._encode_chunks(arrays, tables)

    def open(self, data: bytes, tables: CdfTables) -> StreamDecoder:
        """Start decoding ``data``."""
        return self._open(bytes(data), tables)

    def decode(self, data: bytes, indexes: Tensor, tables: CdfTables) -> Tensor:
        """bytes -> int32 symbols [n] for table rows ``indexes`` [n]; the whole string."""
        stream = self.open(data, tables)
        symbols = stream.decode(indexes)
        stream.finish()
        return symbols

    @abstractmethod
    def _encode_chunks(self, chunks: list[tuple[np.ndarray, np.ndarray]], tables: CdfTables) -> bytes:
        """Validated int64 (symbols, indexes) chunks -> bytes."""

    @abstractmethod
    def _open(self, data: bytes, tables: CdfTables) -> StreamDecoder: ...


def resolve_coder(coder: IndexedCoder | None) -> IndexedCoder:
    """``coder``, or a fresh :class:`SafeAns` (no digest) for None: the default for new streams."""
    return SafeAns() if coder is None else coder


# -- compressai's rANS ----------------------------------------------------------


def _compressai_lists(tables: CdfTables) -> tuple[list[list[int]], list[int], list[int]]:
    """(cdfs, cdf_lengths, offsets) exactly as compressai's EntropyModel passes them."""
    return tables.cdf.tolist(), tables.cdf_length.tolist(), tables.offset.tolist()


class LegacyRans(IndexedCoder):
    """compressai's C++ rANS coder (``compressai.ans``), for reading old files.

    Byte-identical to ``EntropyModel.compress`` (chunks are simply
    concatenated). NOT memory-safe: a crafted string can make the decoder read
    out of bounds, and it never checks that a string was consumed exactly, so
    ``finish()`` checks nothing. Use it only on trusted format-v1 data.
    """

    def _encode_chunks(self, chunks: list[tuple[np.ndarray, np.ndarray]], tables: CdfTables) -> bytes:
        offset, in_range = tables.offset.numpy(), tables.cdf_length.numpy() - 2
        for s, i in chunks:  # compressai's bypass loop never ends for values 2**28 and up (shift by 32)
            v = s - offset[i]
            if v.size and (v.min() < -_LEGACY_ESCAPE_LIMIT or (v - in_range[i]).max() >= _LEGACY_ESCAPE_LIMIT):
                raise ValueError("LegacyRans cannot code symbols 2**27 or more outside their table")
        symbols = np.concatenate([s for s, _ in chunks]).tolist() if chunks else []
        indexes = np.concatenate([i for _, i in chunks]).tolist() if chunks else []
        return ans.RansEncoder().encode_with_indexes(symbols, indexes, *_compressai_lists(tables))

    def _open(self, data: bytes, tables: CdfTables) -> StreamDecoder:
        return _LegacyStream(data, tables, self.digest)


class _LegacyStream(StreamDecoder):
    def __init__(self, data: bytes, tables: CdfTables, digest: Digest | None) -> None:
        super().__init__(tables, digest)
        self._decoder = ans.RansDecoder()
        self._decoder.set_stream(data)
        self._lists = _compressai_lists(tables)

    def _decode(self, indexes: np.ndarray) -> np.ndarray:
        values = self._decoder.decode_stream(indexes.tolist(), *self._lists)
        return np.asarray(values, dtype=np.int32)

    def _finish(self) -> None:
        pass  # compressai's decoder cannot tell how much of the string it read


# -- constriction ANS ---------------------------------------------------------------


class _Rows:
    """Per-row constriction models of one table set, built on first use."""

    def __init__(self, tables: CdfTables) -> None:
        self.num_rows = tables.num_rows
        self.in_range = tables.cdf_length.numpy().astype(np.int64) - 2  # bins before the overflow bin
        self.offset = tables.offset.numpy().astype(np.int64)
        self._freq = np.diff(tables.cdf.numpy(), axis=1).astype(np.float64)  # exact integers
        self._models: dict[int, constriction.stream.model.Categorical] = {}
        self.heads = constriction.stream.model.Uniform(_ESCAPE_HEADS)
        self.uniform = constriction.stream.model.Uniform()  # family: per-symbol sizes

    def model(self, row: int) -> constriction.stream.model.Categorical:
        if row not in self._models:
            freq = np.ascontiguousarray(self._freq[row, : self.in_range[row] + 1])
            self._models[row] = constriction.stream.model.Categorical(freq, perfect=False)
        return self._models[row]

    def groups(self, indexes: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """(stable order grouping indexes by row, [(row, start, end)] rows ascending)."""
        small = indexes.astype(np.int16) if self.num_rows <= 1 << 15 else indexes  # radix sort
        order = np.argsort(small, kind="stable")
        counts = np.bincount(indexes, minlength=self.num_rows)
        used = np.flatnonzero(counts)
        ends = np.cumsum(counts[used])
        return order, [(int(r), int(e - c), int(e)) for r, c, e in zip(used, counts[used], ends)]


def _escape_parts(heads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Escape heads [m] -> (bit length k, bits in part A, bits in part B), int64 [m] each."""
    k = heads.astype(np.int64) >> 1
    low_bits = np.maximum(k - 1, 0)
    bits_a = np.minimum(low_bits, _ESCAPE_PART_BITS)
    return k, bits_a, low_bits - bits_a


def _push_escapes(coder: constriction.stream.stack.AnsCoder, rows: _Rows, v: np.ndarray, n: np.ndarray) -> None:
    """Push the escape values of out-of-table values v (int64 [m], bins n [m]), in reverse decode order."""
    below = v < 0
    e = np.where(below, -v - 1, v - n)  # < 2**32 for int32 symbols and offsets
    k = np.frexp(e.astype(np.float64))[1].astype(np.int64)  # bit length; exact below 2**53
    heads = (2 * k + below).astype(np.int32)
    _, bits_a, bits_b = _escape_parts(heads)
    low = e - np.where(k > 0, np.int64(1) << np.maximum(k - 1, 0), 0)
    for bits, values in ((bits_b, low >> _ESCAPE_PART_BITS), (bits_a, low & ((np.int64(1) << bits_a) - 1))):
        sel = bits > 0
        if sel.any():
            sizes = (np.int64(1) << bits[sel]).astype(np.int32)
            coder.encode_reverse(values[sel].astype(np.int32), rows.uniform, sizes)
    coder.encode_reverse(heads, rows.heads)


def _push_chunk(
    coder: constriction.stream.stack.AnsCoder, rows: _Rows, symbols: np.ndarray, indexes: np.ndarray
) -> None:
    """Push one chunk (int64 symbols and rows [n]) in reverse decode order: escapes, then rows descending."""
    n = rows.in_range[indexes]
    v = symbols - rows.offset[indexes]
    escape = (v < 0) | (v >= n)
    bins = np.where(escape, n, v).astype(np.int32)
    if escape.any():
        _push_escapes(coder, rows, v[escape], n[escape])
    order, groups = rows.groups(indexes)
    bins = bins[order]
    for row, start, end in reversed(groups):
        coder.encode_reverse(bins[start:end], rows.model(row))


class SafeAns(IndexedCoder):
    """Memory-safe ANS (``constriction``, Rust) with exact corruption detection;
    the default for new streams. Format and guarantees: module docstring."""

    def _encode_chunks(self, chunks: list[tuple[np.ndarray, np.ndarray]], tables: CdfTables) -> bytes:
        rows = _Rows(tables)
        coder = constriction.stream.stack.AnsCoder(np.array(_SEAL, dtype=np.uint32))
        for symbols, indexes in reversed(chunks):  # a stack: the first chunk goes on last
            if symbols.size:
                _push_chunk(coder, rows, symbols, indexes)
        return coder.get_compressed().astype("<u4").tobytes()

    def _open(self, data: bytes, tables: CdfTables) -> StreamDecoder:
        return _SafeAnsStream(data, tables, self.digest)


class _SafeAnsStream(StreamDecoder):
    def __init__(self, data: bytes, tables: CdfTables, digest: Digest | None) -> None:
        super().__init__(tables, digest)
        if len(data) % 4 or len(data) < 4 * len(_SEAL):
            raise CorruptStreamError(f"ANS stream of {len(data)} bytes: not a whole number of >= 2 words")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        if words[-1] == 0:
            raise CorruptStreamError("ANS stream ends in a zero word")
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CorruptStreamError(f"not an ANS stream ({exc})") from None
        self._rows = _Rows(tables)

    def _decode(self, indexes: np.ndarray) -> np.ndarray:
        try:
            return self._pop_chunk(indexes)
        except CorruptStreamError:
            raise
        except (ValueError, KeyError, RuntimeError) as exc:  # constriction's errors
            raise CorruptStreamError(f"ANS stream does not decode ({exc})") from None

    def _pop_chunk(self, indexes: np.ndarray) -> np.ndarray:
        rows, coder = self._rows, self._coder
        order, groups = rows.groups(indexes)
        bins = np.empty(indexes.size, dtype=np.int32)
        sorted_bins = np.empty_like(bins)
        for row, start, end in groups:
            sorted_bins[start:end] = coder.decode(rows.model(row), end - start)
        bins[order] = sorted_bins
        n = rows.in_range[indexes]
        offset = rows.offset[indexes]
        symbols = bins.astype(np.int64) + offset
        escape = bins == n
        if escape.any():
            symbols[escape] = self._pop_escapes(offset[escape], n[escape])
        if symbols.min() < _INT32_MIN or symbols.max() > _INT32_MAX:
            raise CorruptStreamError("ANS stream decodes to a symbol outside int32")
        return symbols.astype(np.int32)

    def _pop_escapes(self, offset: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Escaped symbols (int64 [m]) for rows with these offsets and overflow bins."""
        rows, coder = self._rows, self._coder
        heads = coder.decode(rows.heads, offset.size)
        k, bits_a, bits_b = _escape_parts(heads)
        parts = []
        for bits in (bits_a, bits_b):
            values = np.zeros(offset.size, dtype=np.int64)
            sel = bits > 0
            if sel.any():
                values[sel] = coder.decode(rows.uniform, (np.int64(1) << bits[sel]).astype(np.int32))
            parts.append(values)
        e = np.where(k > 0, (np.int64(1) << np.maximum(k - 1, 0)) | (parts[1] << _ESCAPE_PART_BITS) | parts[0], 0)
        return np.where((heads & 1).astype(bool), offset - 1 - e, offset + n + e)

    def _finish(self) -> None:
        words = self._coder.get_compressed()
        if words.size != len(_SEAL) or tuple(int(w) for w in words) != _SEAL:
            raise CorruptStreamError(
                f"ANS stream not consumed exactly ({words.size} words where the seal's {len(_SEAL)} should be left)"
            )

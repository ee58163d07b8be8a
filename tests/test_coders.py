"""Entropy-coder backends: LegacyRans reproduces compressai's bytes, SafeAns is
exact, deterministic, and rejects every malformed string with one error type.

CPU, tiny untrained codecs (their quality gains are raised so the latents are
not all zeros); the hostile-data tests assert the documented guarantees of
``image_codecs/entropy/coders.py``: a string is accepted only if it is the
canonical encoding of what it decodes to.
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np
import pytest
import torch
from compressai import ans

from image_codecs import CdfTables, CorruptStreamError, LegacyRans, SafeAns, build_codec
from image_codecs.entropy.bottleneck import bottleneck_compress, bottleneck_decompress
from image_codecs.entropy.rans_tables import encode_mixture_symbols

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# SafeAns bytes of _pinned_input(): pins the format across machines and library updates
PINNED_SAFE_ANS = "00fcff001e4461fc9f2cbb84e1d309f0a70200ee444f2c04f4024bb4"


def _with_gains(codec, gains: tuple[float, ...]):
    """Set per-quality latent gains so an untrained g_a gives non-trivial symbols."""
    log_gain = torch.tensor([math.log(g) for g in gains])[:, None].expand_as(codec.gain.log_gain)
    with torch.no_grad():
        codec.gain.log_gain.copy_(log_gain)
        codec.gain.log_inv_gain.copy_(-log_gain)
    codec.update()
    return codec.eval()


@pytest.fixture(scope="module")
def codecs(one_torch_thread):
    """name -> small codec: hyperprior with 3 and 2 channels, EDIC (GMM) with 3 and 2."""
    out = {}
    for channels in (3, 2):
        torch.manual_seed(channels)
        out[f"hyperprior{channels}"] = _with_gains(
            build_codec("hyperprior", in_channels=channels, num_qualities=2, N=16, M=24), (20.0, 80.0)
        )
        out[f"edic{channels}"] = _with_gains(
            build_codec(
                "edic", in_channels=channels, num_qualities=2, N=16, M=24, mixtures=3,
                enhancement_channels=8, enhancement_blocks=1,
            ),
            (20.0, 80.0),
        )
    return out


@pytest.fixture(scope="module")
def y_tables(codecs) -> CdfTables:
    return CdfTables.from_entropy_model(codecs["hyperprior3"].entropy.gaussian_conditional)


def _picture(channels: int, h: int = 64, w: int = 128) -> torch.Tensor:
    return torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(7 * h + channels))


def _random_symbols(tables: CdfTables, n: int, seed: int, *, far: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(int32 symbols [n], int32 rows [n]): mostly inside each row's range, some just
    outside; with ``far`` also some anywhere in int32 (LegacyRans cannot code those)."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, tables.num_rows, (n,), generator=g, dtype=torch.int32)
    span = (tables.cdf_length[rows.long()] - 2).float()
    symbols = (torch.rand(n, generator=g) * span * 1.2 - span * 0.1).floor() + tables.offset[rows.long()]
    symbols = symbols.to(torch.int64)
    if far:
        where = torch.randint(0, n, (max(n // 50, 1),), generator=g)
        symbols[where] = torch.randint(INT32_MIN, INT32_MAX, (where.numel(),), generator=g, dtype=torch.int64)
        symbols[: min(n, 4)] = torch.tensor([INT32_MIN, INT32_MAX, INT32_MIN + 1, 0])[: min(n, 4)]
    return symbols.to(torch.int32), rows


def _decodes_or_rejects(decode) -> torch.Tensor | None:
    """Run a decode: None if it raised CorruptStreamError, else its result (any other exception fails)."""
    try:
        return decode()
    except CorruptStreamError:
        return None


# -- LegacyRans: compressai's own bytes -----------------------------------------


def test_legacy_rans_bytes_equal_compressai(codecs) -> None:
    entropy = codecs["hyperprior3"].entropy
    eb, gc = entropy.entropy_bottleneck, entropy.gaussian_conditional
    g = torch.Generator().manual_seed(3)
    y = torch.randn(1, 24, 8, 12, generator=g) * 6
    with torch.no_grad():
        z = entropy.hyper_analysis(y) * 30
        strings, y_hat = entropy.compress(y, z, coder=LegacyRans())
        z_ref = eb.compress(z)
        z_hat = eb.decompress(z_ref, z.shape[-2:])
        scales, means = entropy.params(z_hat)
        y_ref = gc.compress(y, gc.build_indexes(scales), means=means)
        assert strings == [z_ref[0], y_ref[0]]
        assert len(strings[1]) > 100
        assert torch.equal(bottleneck_compress(eb, z, coder=LegacyRans())[1], z_hat)
        assert torch.equal(bottleneck_decompress(eb, strings[0], tuple(z.shape[-2:]), coder=LegacyRans()), z_hat)
        decoded = entropy.decompress(strings, (8, 12), coder=LegacyRans())
    assert torch.equal(decoded, y_hat)
    assert torch.equal(decoded, gc.decompress(y_ref, gc.build_indexes(scales), means=means))


class _RecordingLegacy(LegacyRans):
    """LegacyRans that also keeps the chunks it was asked to code."""

    def _encode_chunks(self, chunks, tables):
        self.chunks = chunks
        return super()._encode_chunks(chunks, tables)


def test_legacy_rans_gmm_bytes_equal_the_former_single_call(codecs) -> None:
    """The GMM y string is what rans_tables wrote before: one encode_with_indexes call
    over all rounds, with the unpadded rows of coder_lists()."""
    entropy = codecs["edic3"].entropy
    y = torch.randn(1, 24, 8, 8, generator=torch.Generator().manual_seed(4)) * 4
    y[0, 0, 0, :3] = torch.tensor([3e5, -7e4, 1e7])  # escaped magnitudes: the bypass round
    with torch.no_grad():
        z = entropy.hyper_analysis(y)
        _, z_hat = bottleneck_compress(entropy.entropy_bottleneck, z, coder=LegacyRans())
        params, center = entropy.coding_params(z_hat)
        symbols = torch.round(y - center).reshape(-1).long()
        recorder = _RecordingLegacy()
        string, trace = encode_mixture_symbols(params, symbols, entropy.decision_tables, coder=recorder)
        strings, _ = entropy.compress(y, z, coder=LegacyRans())
    assert string == strings[1] and len(trace) == len(recorder.chunks) > 3
    flat_symbols = np.concatenate([s for s, _ in recorder.chunks]).tolist()
    flat_rows = np.concatenate([i for _, i in recorder.chunks]).tolist()
    former = ans.RansEncoder().encode_with_indexes(flat_symbols, flat_rows, *entropy.decision_tables.coder_lists())
    assert string == former
    assert torch.equal(entropy.decompress(strings, (8, 8), coder=LegacyRans()), entropy.compress(y, z)[1])


def test_legacy_rans_limits(y_tables) -> None:
    """compressai's bypass loop never ends for values 2**28 and up: LegacyRans refuses
    symbols 2**27 or more outside their row, and codes everything up to that exactly."""
    row = torch.tensor([5, 5], dtype=torch.int32)
    offset, n = int(y_tables.offset[5]), int(y_tables.cdf_length[5]) - 2
    edge = torch.tensor([offset - 2**27, offset + n + 2**27 - 1], dtype=torch.int32)
    assert torch.equal(LegacyRans().decode(LegacyRans().encode(edge, row, y_tables), row, y_tables), edge)
    for beyond in ([offset - 2**27 - 1, 0], [0, offset + n + 2**27]):
        with pytest.raises(ValueError, match="LegacyRans cannot"):
            LegacyRans().encode(torch.tensor(beyond, dtype=torch.int32), row, y_tables)


# -- SafeAns: exact round trips ----------------------------------------------------


@pytest.mark.parametrize("name", ["hyperprior3", "hyperprior2", "edic3", "edic2"])
def test_codec_round_trip_and_digests(codecs, name: str) -> None:
    codec = codecs[name]
    x = _picture(codec.in_channels)
    for make in (SafeAns, LegacyRans):
        for quality in range(codec.num_qualities):
            enc_digest, dec_digest = hashlib.sha256(), hashlib.sha256()
            with torch.no_grad():
                coded = codec.compress(x, quality, coder=make(digest=enc_digest))
                decoded = codec.decompress(coded.strings, (64, 128), quality, coder=make(digest=dec_digest))
            assert len(coded.strings[1]) > 50  # the gains make y non-trivial
            assert torch.equal(decoded, coded.x_hat)
            assert enc_digest.digest() == dec_digest.digest()
    with torch.no_grad():  # None is SafeAns
        assert codec.compress(x, 1).strings == codec.compress(x, 1, coder=SafeAns()).strings


@pytest.mark.parametrize("name", ["hyperprior3", "edic3"])
def test_escapes_round_trip_exactly(codecs, name: str) -> None:
    """Latents far outside the tables (up to ~2**30) take the escape path, exactly."""
    entropy = codecs[name].entropy
    y = torch.randn(1, 24, 8, 8, generator=torch.Generator().manual_seed(5))
    y[0, 0, 0, :6] = torch.tensor([1e3, -7e4, 3e6, -2e5, 1.0e9, -1.5e9])
    y[0, 3, 2, :2] = torch.tensor([65536.0 * 3, -65536.0 * 0.5])
    with torch.no_grad():
        z = entropy.hyper_analysis(y)
        strings, y_hat = entropy.compress(y, z, coder=SafeAns())
        assert torch.equal(entropy.decompress(strings, (8, 8), coder=SafeAns()), y_hat)
    assert y_hat[0, 0, 0, 4] > 1e7 and y_hat[0, 0, 0, 5] < -1e7  # far outside every table


def test_every_int32_symbol_round_trips(y_tables) -> None:
    symbols, rows = _random_symbols(y_tables, 5000, seed=1)
    digests = [hashlib.sha256() for _ in range(2)]
    data = SafeAns(digest=digests[0]).encode(symbols, rows, y_tables)
    decoded = SafeAns(digest=digests[1]).decode(data, rows, y_tables)
    assert decoded.dtype == torch.int32 and torch.equal(decoded, symbols)
    # the digest is the int32 little-endian symbols in coding order, the same on both sides
    expected = hashlib.sha256(symbols.numpy().astype("<i4").tobytes()).digest()
    assert digests[0].digest() == digests[1].digest() == expected
    assert SafeAns().encode(symbols, rows, y_tables) == data  # deterministic


def _pinned_input() -> tuple[torch.Tensor, torch.Tensor, CdfTables]:
    cdf = torch.tensor([[0, 30000, 50000, 65536, 0], [0, 1, 2, 3, 65536]], dtype=torch.int32)
    tables = CdfTables(cdf=cdf, cdf_length=torch.tensor([4, 5]), offset=torch.tensor([-1, 7]))
    symbols = torch.tensor([-1, 0, 1, 2, -5, 7, 8, 9, 10, 6, INT32_MAX, INT32_MIN, 12345678], dtype=torch.int32)
    rows = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1], dtype=torch.int32)
    return symbols, rows, tables


def test_safe_ans_format_is_pinned() -> None:
    """Integer CDF -> 24-bit model is exact arithmetic, so these bytes hold on every machine."""
    symbols, rows, tables = _pinned_input()
    data = SafeAns().encode(symbols, rows, tables)
    assert data.hex() == PINNED_SAFE_ANS
    assert torch.equal(SafeAns().decode(data, rows, tables), symbols)


def test_chunks_decode_round_by_round(y_tables) -> None:
    """encode_chunks keeps chunk boundaries: rows are grouped within a chunk only."""
    symbols, rows = _random_symbols(y_tables, 3000, seed=2, far=False)
    cuts = [0, 1000, 1001, 1001, 3000]  # includes a one-symbol and an empty chunk
    chunks = [(symbols[a:b], rows[a:b]) for a, b in zip(cuts, cuts[1:])]
    for make in (SafeAns, LegacyRans):
        digests = [hashlib.sha256() for _ in range(2)]
        data = make(digest=digests[0]).encode_chunks(chunks, y_tables)
        stream = make(digest=digests[1]).open(data, y_tables)
        for chunk_symbols, chunk_rows in chunks:
            assert torch.equal(stream.decode(chunk_rows), chunk_symbols)
        stream.finish()
        assert digests[0].digest() == digests[1].digest()
    # a chunked string decoded in one go is a different symbol sequence: rejected or different
    one_go = _decodes_or_rejects(lambda: SafeAns().decode(data, rows, y_tables))
    assert one_go is None or not torch.equal(one_go, symbols)


# -- SafeAns: detection ---------------------------------------------------------------


def test_missing_and_extra_chunks_always_raise(y_tables) -> None:
    """Guarantee 2: finishing early (leftover data) or decoding a chunk too many (missing data)."""
    symbols, rows = _random_symbols(y_tables, 900, seed=8)
    chunks = [(symbols[a : a + 300], rows[a : a + 300]) for a in (0, 300, 600)]
    data = SafeAns().encode_chunks(chunks, y_tables)
    for decoded_chunks in (0, 1, 2):
        stream = SafeAns().open(data, y_tables)
        for _, chunk_rows in chunks[:decoded_chunks]:
            stream.decode(chunk_rows)
        with pytest.raises(CorruptStreamError, match="not consumed exactly"):
            stream.finish()
    for extra in (rows[:1], torch.zeros(1, dtype=torch.int32), rows):
        stream = SafeAns().open(data, y_tables)
        for _, chunk_rows in chunks:
            stream.decode(chunk_rows)
        with pytest.raises(CorruptStreamError):  # in decode (an impossible escape) or in finish
            stream.decode(extra)
            stream.finish()


def test_wrong_symbol_count_is_detected(y_tables) -> None:
    """Leftover data (decoding a strict prefix) and missing data (a strict extension)."""
    for seed in range(40):
        symbols, rows = _random_symbols(y_tables, 1 + seed * 7, seed=100 + seed)
        data = SafeAns().encode(symbols, rows, y_tables)
        for k in {1, 2, len(rows)} & set(range(1, len(rows) + 1)):
            with pytest.raises(CorruptStreamError):
                SafeAns().decode(data, rows[:-k], y_tables)
        more = torch.cat([rows, rows[:1], torch.zeros(seed % 3, dtype=torch.int32)])
        with pytest.raises(CorruptStreamError):
            SafeAns().decode(data, more, y_tables)
    stream = SafeAns().open(data, y_tables)  # chunked: finish() before everything was read
    stream.decode(rows[:5])
    with pytest.raises(CorruptStreamError, match="not consumed exactly"):
        stream.finish()


def test_structurally_invalid_strings_are_rejected(y_tables) -> None:
    symbols, rows = _random_symbols(y_tables, 500, seed=3)
    data = SafeAns().encode(symbols, rows, y_tables)
    for bad in [b"", b"\x01", b"\x00\x00\x00\x01", data[:-1], data + b"\x05", data[:-3], data + b"\x00" * 4]:
        with pytest.raises(CorruptStreamError):
            SafeAns().decode(bad, rows, y_tables)
    with pytest.raises(CorruptStreamError):  # nothing encoded is still a sealed, non-empty string
        SafeAns().decode(b"", rows[:0], y_tables)
    assert SafeAns().decode(SafeAns().encode(symbols[:0], rows[:0], y_tables), rows[:0], y_tables).numel() == 0
    assert issubclass(CorruptStreamError, ValueError)


def _hostile_variants(data: bytes, rng: random.Random) -> dict[str, list[bytes]]:
    """Damaged copies of ``data`` by kind: truncated by 1..64 bytes, extended by 1..64
    random bytes, random strings, and 1-5 flipped bits."""
    def random_bytes(k: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(k))

    flips = []
    for _ in range(64):
        flipped = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 5])):
            pos = rng.randrange(len(flipped))
            flipped[pos] ^= 1 << rng.randrange(8)
        flips.append(bytes(flipped))
    lengths = [0, 4, 8, 12, len(data)] + [4 * rng.randrange(1, 200) for _ in range(35)]
    return {
        "truncated": [data[:-k] for k in range(1, 65)],
        "extended": [data + random_bytes(k) for k in range(1, 65)],
        "random": [random_bytes(k) for k in lengths],
        "flipped": flips,
    }


def test_hostile_strings_raise_or_decode_canonically(y_tables) -> None:
    """Hundreds of damaged strings: each raises CorruptStreamError or (guarantee 1)
    decodes to symbols whose encoding is exactly that string. Truncation, extension
    and random strings never got through (they scramble the state, which would have
    to land on the 64-bit seal); a flipped bit may just change one near-uniform symbol."""
    rng = random.Random(0)
    accepted = {}
    for seed in range(3):
        symbols, rows = _random_symbols(y_tables, 700, seed=4 + seed)
        data = SafeAns().encode(symbols, rows, y_tables)
        for kind, variants in _hostile_variants(data, rng).items():
            for bad in variants:
                decoded = _decodes_or_rejects(lambda: SafeAns().decode(bad, rows, y_tables))
                if decoded is not None:
                    assert decoded.shape == rows.shape and SafeAns().encode(decoded, rows, y_tables) == bad
                    assert not torch.equal(decoded, symbols)
                    accepted[kind] = accepted.get(kind, 0) + 1
    assert set(accepted) <= {"flipped"} and accepted.get("flipped", 0) <= 0.2 * 64 * 3, accepted


@pytest.mark.parametrize("name", ["hyperprior3", "edic3"])
def test_hostile_codec_strings_never_crash(codecs, name: str) -> None:
    """Damaged z or y strings through the whole decoder (z damage scrambles the y tables)."""
    codec = codecs[name]
    rng = random.Random(1)
    x = _picture(3)
    with torch.no_grad():
        strings = codec.compress(x, 1).strings
        for stream in (0, 1):
            variants = [v for kind in _hostile_variants(strings[stream], rng).values() for v in kind[::3]]
            for bad in variants:
                damaged = list(strings)
                damaged[stream] = bad
                out = _decodes_or_rejects(lambda: codec.decompress(damaged, (64, 128), 1))
                assert out is None or out.shape == x.shape


def test_wrong_indexes_are_detected_or_decode(y_tables) -> None:
    symbols, rows = _random_symbols(y_tables, 2000, seed=5)
    data = SafeAns().encode(symbols, rows, y_tables)
    g = torch.Generator().manual_seed(6)
    for wrong in (rows.flip(0), (rows + 1) % y_tables.num_rows, rows[torch.randperm(rows.numel(), generator=g)],
                  torch.zeros_like(rows), torch.full_like(rows, y_tables.num_rows - 1)):
        decoded = _decodes_or_rejects(lambda: SafeAns().decode(data, wrong, y_tables))
        assert decoded is None or (decoded.shape == rows.shape and decoded.dtype == torch.int32)


def test_bad_indexes_and_tables_are_caller_errors(y_tables) -> None:
    symbols, rows = _random_symbols(y_tables, 10, seed=7, far=False)
    for make in (SafeAns, LegacyRans):  # LegacyRans would read outside its tables
        data = make().encode(symbols, rows, y_tables)
        for bad_rows in (rows - 1 - rows.max(), rows + y_tables.num_rows):
            with pytest.raises(ValueError, match="indexes must lie"):
                make().decode(data, bad_rows, y_tables)
            with pytest.raises(ValueError, match="indexes must lie"):
                make().encode(symbols, bad_rows, y_tables)
    with pytest.raises(ValueError, match="int32"):
        SafeAns().encode(torch.tensor([2**31]), torch.tensor([0]), y_tables)
    with pytest.raises(ValueError, match="symbols but"):
        SafeAns().encode(symbols, rows[:-1], y_tables)
    good = dict(cdf=torch.tensor([[0, 5, 65536, 0]]), cdf_length=torch.tensor([3]), offset=torch.tensor([0]))
    CdfTables(**good)
    for change in (dict(cdf=torch.tensor([[0, 5, 5, 65536]]), cdf_length=torch.tensor([4])),  # empty bin
                   dict(cdf=torch.tensor([[0, 5, 65535, 0]])),  # does not end at 2**16
                   dict(cdf_length=torch.tensor([2])), dict(cdf_length=torch.tensor([5])),
                   dict(offset=torch.tensor([0, 1])), dict(cdf=torch.tensor([[0.0, 5.0, 65536.0, 0.0]]))):
        with pytest.raises(ValueError):
            CdfTables(**{**good, **change})

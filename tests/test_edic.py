"""EDIC codec: exact coding, the Gaussian-mixture entropy model and its rANS path.

CPU, small widths (N=32, M=48) and small pictures; codecs are untrained, so the
tests check coding properties (exactness, table agreement, rate faithfulness),
not rate-distortion quality.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from compressai.entropy_models import GaussianConditional

from image_codecs import EntropyTablesNotBuiltError, build_codec
from image_codecs.attention import ChannelAttention
from image_codecs.edic import EDICCodec
from image_codecs.enhancement import DecoderEnhancement
from image_codecs.entropy import GaussianHyperprior, SafeAns
from image_codecs.entropy.bottleneck import bottleneck_compress, bottleneck_decompress
from image_codecs.entropy.gmm import GaussianMixtureHyperprior, mixture_center, mixture_likelihood
from image_codecs.entropy.rans_tables import (
    ESCAPE_MAGNITUDE,
    MAX_MAGNITUDE,
    BinaryDecisionTables,
    MixtureParams,
    decode_mixture_symbols,
    encode_mixture_symbols,
)
from image_codecs.quantize import HardRound, NoiseSTE

from .conftest import shared_file

SMALL = dict(N=32, M=48)
SMALL_ENHANCEMENT = dict(enhancement_channels=8, enhancement_blocks=1)  # full-resolution convs dominate CPU time


def _codec(channels: int, **kwargs) -> EDICCodec:
    """An untrained codec whose two quality gains (20, 80) make the latent non-trivial:
    an untrained g_a outputs y of std ~0.03, which would round to all zeros."""
    torch.manual_seed(0)
    codec = EDICCodec(in_channels=channels, num_qualities=2, **SMALL, **{**SMALL_ENHANCEMENT, **kwargs}).eval()
    log_gain = torch.tensor([math.log(20.0), math.log(80.0)])[:, None].expand_as(codec.gain.log_gain)
    with torch.no_grad():
        codec.gain.log_gain.copy_(log_gain)
        codec.gain.log_inv_gain.copy_(-log_gain)
    codec.update()
    return codec


def _picture(channels: int, h: int, w: int) -> torch.Tensor:
    return torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(h * w + channels))


@pytest.fixture(scope="module")
def codecs() -> dict[int, EDICCodec]:
    return {c: _codec(c) for c in (2, 3)}


@pytest.mark.parametrize("channels", [3, 2])
@pytest.mark.parametrize("size", [(64, 128), (64, 192)])
def test_decompress_equals_compress_reconstruction(codecs, channels: int, size: tuple[int, int]) -> None:
    codec = codecs[channels]
    x = _picture(channels, *size)
    with torch.no_grad():
        for quality in range(codec.num_qualities):
            compressed = codec.compress(x, quality)
            decoded = codec.decompress(compressed.strings, size, quality)
            assert len(compressed.strings) == codec.num_streams == 2
            assert len(compressed.strings[1]) > 500  # 30-80% of the y symbols are non-zero
            assert decoded.shape == x.shape
            assert torch.equal(decoded, compressed.x_hat)
            # eval-mode forward quantises exactly as the coder does
            assert torch.equal(codec(x, quality).x_hat, compressed.x_hat)


def test_decoder_rebuilds_the_encoders_tables(codecs) -> None:
    """A fresh decoder (weights from the state dict) derives bit-identical mixture
    parameters from z_hat and picks the same integer table row for every decision."""
    encoder = codecs[3]
    decoder = EDICCodec(in_channels=3, num_qualities=2, **SMALL, **SMALL_ENHANCEMENT).eval()
    decoder.load_state_dict(encoder.state_dict())
    assert decoder.entropy.tables_built()
    assert torch.equal(decoder.entropy.decision_tables.cdfs, encoder.entropy.decision_tables.cdfs)

    x = _picture(3, 64, 192)
    with torch.no_grad():
        compressed = encoder.compress(x, 1)
        y, z = encoder.analysis(x, 1)
        eb = encoder.entropy.entropy_bottleneck
        z_hat_enc = bottleneck_compress(eb, z, coder=SafeAns())[1]
        params_enc, center_enc = encoder.entropy.coding_params(z_hat_enc)
        symbols = torch.round(y - center_enc).reshape(-1).long()
        string, trace_enc = encode_mixture_symbols(params_enc, symbols, encoder.entropy.decision_tables)
        assert string == compressed.strings[1]

        z_hat_dec = bottleneck_decompress(
            decoder.entropy.entropy_bottleneck, compressed.strings[0], tuple(z.shape[-2:]), coder=SafeAns()
        )
        params_dec, center_dec = decoder.entropy.coding_params(z_hat_dec)
        decoded, trace_dec = decode_mixture_symbols(params_dec, compressed.strings[1], decoder.entropy.decision_tables)

    assert torch.equal(z_hat_dec, z_hat_enc)
    assert params_dec.equal(params_enc) and torch.equal(center_dec, center_enc)
    assert len(trace_dec) == len(trace_enc) > 2
    assert all(torch.equal(a, b) for a, b in zip(trace_enc, trace_dec))
    assert torch.equal(decoded, symbols)


def test_one_mixture_component_is_exactly_the_gaussian_hyperprior() -> None:
    """With K=1 and the same (scales, means), likelihoods, quantisation centre and
    synthesis input are bit-identical to GaussianHyperprior's, for both quantisers."""
    torch.manual_seed(0)
    gauss = GaussianHyperprior(**SMALL)
    gmm = GaussianMixtureHyperprior(**SMALL, mixtures=1)
    gmm.h_a.load_state_dict(gauss.h_a.state_dict())
    gmm.entropy_bottleneck.load_state_dict(gauss.entropy_bottleneck.state_dict())

    def same_params(z_hat: torch.Tensor):
        scales, means = gauss.params(z_hat)
        logits = torch.full_like(means, 3.7)[:, None]  # any logits: softmax over one component is 1
        return torch.softmax(logits, dim=1), means[:, None], scales[:, None]

    gmm.params = same_params  # instance attribute: only the parameter source is swapped
    y = torch.randn(2, SMALL["M"], 8, 12) * 3
    z = gauss.hyper_analysis(y)
    for quantizer in (HardRound(), NoiseSTE()):
        torch.manual_seed(1)
        y_g, lik_g = gauss(y, z, quantizer)
        torch.manual_seed(1)
        y_m, lik_m = gmm(y, z, quantizer)
        assert torch.equal(y_m, y_g)
        assert torch.equal(lik_m["y"], lik_g["y"]) and torch.equal(lik_m["z"], lik_g["z"])

    scales, means = torch.rand(1, 4, 3, 3) * 3, torch.randn(1, 4, 3, 3)
    values = torch.round(torch.randn(1, 4, 3, 3) * 2)
    ones = torch.ones(1, 1, 4, 3, 3)
    gc = gauss.gaussian_conditional
    assert torch.equal(mixture_likelihood(gc, values, ones, means[:, None], scales[:, None]), gc._likelihood(values, scales, means))
    assert torch.equal(mixture_center(ones, means[:, None]), means)


def test_mixture_weights_sum_to_one(codecs) -> None:
    entropy = codecs[3].entropy
    z_hat = torch.round(torch.randn(1, SMALL["N"], 1, 2) * 5)  # y is 4x larger: 4 x 8
    with torch.no_grad():
        weights, means, scales = entropy.params(z_hat)
    assert weights.shape == means.shape == scales.shape == (1, 3, SMALL["M"], 4, 8)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(dim=1), torch.ones(1, SMALL["M"], 4, 8), atol=1e-6, rtol=0)


def test_coded_bytes_match_the_likelihood_estimate_on_a_real_picture() -> None:
    """Real bytes of compress() vs -log2 of forward()'s likelihoods of the same
    y_hat / z_hat, on a 256x256 crop of kodim23.

    Untrained networks give a near-zero latent and near-zero scales, so we make
    both non-trivial: a quality gain of 100 on y (std ~2.5, heavy-tailed, spatially
    varying) and an h_s head bias that gives each element a 3-component mixture
    (scales ~1, 2.5, 6; means -1, 0, 1) modulated by z. What this proves: the coder
    (binary decisions, probability quantisation, overflow path, z bottleneck)
    spends within 3% of the model's own ideal code length. It says nothing about
    rate-distortion performance.
    """
    from PIL import Image

    with Image.open(shared_file("images/kodak/kodim23.png")) as image:
        rgb = np.asarray(image.convert("RGB"))[100:356, 200:456].copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0

    torch.manual_seed(0)
    codec = EDICCodec(num_qualities=1, **SMALL).eval()
    m, k = SMALL["M"], 3
    with torch.no_grad():
        codec.gain.log_gain.fill_(math.log(100.0))
        codec.gain.log_inv_gain.fill_(-math.log(100.0))
        bias = codec.entropy.h_s[-1].bias.view(3, k, m)
        bias[0] = 0.0  # equal weight logits
        bias[1] = torch.tensor([-1.0, 0.0, 1.0])[:, None]  # means
        bias[2] = torch.tensor([1.0, 2.5, 6.0])[:, None]  # scales
    codec.update()
    with torch.no_grad():
        out = codec(x, 0)
        compressed = codec.compress(x, 0)
    est = {name: float((-torch.log2(lik)).sum()) for name, lik in out.likelihoods.items()}
    real_y = len(compressed.strings[1]) * 8
    real = compressed.num_bytes * 8
    assert est["y"] > 20_000  # a non-trivial latent: ~2 bits per element
    assert abs(real_y / est["y"] - 1) < 0.03
    assert abs(real / (est["y"] + est["z"]) - 1) < 0.03
    assert torch.equal(codec.decompress(compressed.strings, (256, 256), 0), compressed.x_hat)


def test_coder_spends_the_mixture_code_length() -> None:
    """Symbols drawn from known, varied 3-component mixtures: real bits within 1%
    of sum(-log2 P(s)) (the only losses: probability levels, 1/65536 per decision)."""
    n, k = 20_000, 3
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(n, k, generator=g) * 2, dim=1)
    means = torch.randn(n, k, generator=g) * 1.5
    scales = torch.exp(torch.randn(n, k, generator=g) * 0.7).clamp(min=0.11)
    comp = torch.multinomial(weights, 1, generator=g)[:, 0]
    rows = torch.arange(n)
    y = means[rows, comp] + torch.randn(n, generator=g) * scales[rows, comp]
    center = (weights * means).sum(1)
    symbols = torch.round(y - center)
    params = MixtureParams(offsets=(means - center[:, None]).T.contiguous(), scales=scales.T.contiguous(), weights=weights.T.contiguous())
    tables = BinaryDecisionTables()
    tables.update()
    string, _ = encode_mixture_symbols(params, symbols.long(), tables)
    decoded, _ = decode_mixture_symbols(params, string, tables)
    assert torch.equal(decoded, symbols.long())

    gc = GaussianConditional(None)  # what the entropy model uses for each component

    def as_latent(t: torch.Tensor) -> torch.Tensor:  # [n, K] -> 1 x K x n x 1 x 1
        return t.T[None, :, :, None, None]

    y_hat = (symbols + center)[None, :, None, None]
    lik = mixture_likelihood(gc, y_hat, as_latent(weights), as_latent(means), as_latent(scales))
    ideal = float(-torch.log2(lik).sum())
    assert ideal > 20_000
    assert abs(len(string) * 8 / ideal - 1) < 0.01


def test_far_symbols_round_trip_through_the_overflow_path() -> None:
    torch.manual_seed(0)
    entropy = GaussianMixtureHyperprior(**SMALL, mixtures=3).eval()
    entropy.update()
    y = torch.randn(1, SMALL["M"], 8, 8)
    y[0, 0, 0, :4] = torch.tensor([1e3, -7e4, 3e6, -2e5])  # far outside any mixture's support
    y[0, 1, 1, :2] = torch.tensor([3.0 * ESCAPE_MAGNITUDE, -0.5 * ESCAPE_MAGNITUDE])  # escaped; not escaped
    y[0, 2, 2, :2] = torch.tensor([5e7, -5e7])  # beyond MAX_MAGNITUDE: clamped, still exact
    with torch.no_grad():
        z = entropy.hyper_analysis(y)
        strings, y_hat = entropy.compress(y, z)
        decoded = entropy.decompress(strings, (8, 8))
        z_hat = bottleneck_decompress(entropy.entropy_bottleneck, strings[0], (2, 2), coder=SafeAns())
        params, center = entropy.coding_params(z_hat)
    assert torch.equal(decoded, y_hat)
    symbols = torch.round(y - center)
    in_range = symbols.abs() <= MAX_MAGNITUDE
    assert ((y_hat - y).abs() <= 0.5 + y.abs() * 2**-22)[in_range].all()
    assert torch.equal(y_hat[~in_range], (symbols.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE) + center)[~in_range])
    assert (~in_range).sum() == 2

    # the escape path really was used: the last round codes the 6 escaped magnitudes in bypass mode
    flat = symbols.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE).reshape(-1).long()
    _, trace = encode_mixture_symbols(params, flat, entropy.decision_tables)
    assert (trace[-1] == entropy.decision_tables.bypass_row).all() and trace[-1].numel() == 6


@pytest.mark.parametrize(
    "flags", [dict(attention=False), dict(enhancement=False), dict(attention=False, enhancement=False), dict(mixtures=1)]
)
def test_switches_build_and_round_trip(flags) -> None:
    codec = _codec(3, **flags)
    if flags.get("attention") is False:
        assert not any(isinstance(m, ChannelAttention) for m in codec.modules())
    if flags.get("enhancement") is False:
        assert not any(isinstance(m, DecoderEnhancement) for m in codec.modules())
    x = _picture(3, 64, 64)
    with torch.no_grad():
        compressed = codec.compress(x, 0)
        assert torch.equal(codec.decompress(compressed.strings, (64, 64), 0), compressed.x_hat)


def test_compress_and_decompress_before_update_raise() -> None:
    codec = EDICCodec(**SMALL, num_qualities=1).eval()
    assert not codec.entropy.tables_built()
    with pytest.raises(EntropyTablesNotBuiltError):
        codec.compress(torch.rand(1, 3, 64, 64), 0)
    with pytest.raises(EntropyTablesNotBuiltError):
        codec.decompress([b"", b""], (64, 64), 0)


def test_parts() -> None:
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(DecoderEnhancement(3)(x), x)  # zero-initialised last conv: identity at start
    se = ChannelAttention(48)
    assert se.excite[0].out_channels == 4  # 48 // 16 = 3, at least 4
    f = torch.randn(2, 48, 5, 7)
    scale = se(f) / f
    assert torch.allclose(scale, scale[..., :1, :1].expand_as(scale), rtol=1e-4, atol=1e-5)
    assert ((scale > 0) & (scale < 1)).all()

    tables = BinaryDecisionTables()
    tables.update()
    cdfs, lengths, _ = tables.coder_lists()
    for cdf, length in zip(cdfs, lengths):
        assert len(cdf) == length and cdf[0] == 0 and cdf[-1] == 1 << 16
        assert all(b > a for a, b in zip(cdf, cdf[1:]))


def test_registry() -> None:
    codec = build_codec("edic", in_channels=2, **SMALL, mixtures=2)
    assert type(codec) is EDICCodec
    assert codec.in_channels == 2 and codec.size_multiple == 64 and codec.entropy.K == 2

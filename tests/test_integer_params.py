"""Integer entropy parameters (image_codecs/entropy/integer_synthesis.py).

The convolutions run in float64 on integers whose sums are provably below 2^53; these tests
check that claim against an int64 reference at the largest magnitudes the bound allows, that
the result does not depend on threads, oneDNN or memory layout, that coding with it decodes
exactly, and that it stays close to the float hyper-synthesis it was derived from.
"""

from __future__ import annotations

import yaml
import pytest
import torch
import torch.nn.functional as F
from compressai.layers import GDN
from compressai.models.google import get_scale_table

from dvclic.config import ConfigError, model_config_from_dict
from dvclic.errors import WeightsError
from dvclic.model import build_model
from dvclic.store import ModelStore, export_weights
from image_codecs import build_codec
from image_codecs.entropy.gaussian_hyperprior import mean_scale_hyper_transforms
from image_codecs.entropy.integer_synthesis import IntegerHyperSynthesis, UnsupportedSynthesisError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _h_s(N: int = 16, M: int = 24, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    _, h_s = mean_scale_hyper_transforms(N=N, M=M)
    with torch.no_grad():
        for m in h_s:
            if getattr(m, "bias", None) is not None:
                m.bias.normal_(0, 0.1)
    return h_s.eval()


def _int64_conv(x: torch.Tensor, layer) -> torch.Tensor:  # noqa: ANN001 - an integer layer
    """The layer's convolution in int64 arithmetic (unfold + integer matmul): the reference."""
    xi, w = x.to(torch.int64), layer.weight.to(torch.int64)
    if layer.transposed:
        # conv_transpose = conv over the zero-stuffed input with the flipped, transposed kernel.
        n, c, h, wd = xi.shape
        k, s, p, op = w.shape[-1], layer.stride, layer.padding, layer.output_padding
        stuffed = torch.zeros(n, c, (h - 1) * s + 1, (wd - 1) * s + 1, dtype=torch.int64)
        stuffed[:, :, ::s, ::s] = xi
        lo, hi = k - 1 - p, k - 1 - p + op
        xi = F.pad(stuffed, (lo, hi, lo, hi))
        w = w.flip(-1, -2).transpose(0, 1)
        stride, padding = 1, 0
    else:
        stride, padding = layer.stride, layer.padding
    k = w.shape[-1]
    xp = F.pad(xi, (padding,) * 4)
    n, c, h, wd = xp.shape
    oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
    cols = xp.unfold(2, k, stride).unfold(3, k, stride)             # n c oh ow k k
    cols = cols.permute(0, 2, 3, 1, 4, 5).reshape(n, oh * ow, c * k * k)
    out = cols @ w.reshape(w.shape[0], -1).T                        # n (oh ow) C_out
    return out.permute(0, 2, 1).reshape(n, -1, oh, ow)


def test_float64_convolutions_are_exact_at_the_bound():
    """Inputs at ±limit with random signs and the derived integer weights: float64 equals int64."""
    net = IntegerHyperSynthesis(_h_s(), get_scale_table())
    gen = torch.Generator().manual_seed(3)
    x = None
    for layer in net.layers:
        c_in = layer.weight.shape[0] if layer.transposed else layer.weight.shape[1]
        shape = (1, c_in, 5, 6)
        x = (torch.randint(0, 2, shape, generator=gen) * 2 - 1).to(torch.float64) * layer.limit
        conv = F.conv_transpose2d if layer.transposed else F.conv2d
        kwargs = dict(stride=layer.stride, padding=layer.padding)
        if layer.transposed:
            kwargs["output_padding"] = layer.output_padding
        got = conv(x, layer.weight, **kwargs)
        ref = _int64_conv(x, layer)
        assert got.abs().max() > 2**40  # really near the bound
        assert torch.equal(got.to(torch.int64), ref)


def test_result_independent_of_threads_onednn_and_layout():
    net = IntegerHyperSynthesis(_h_s(), get_scale_table())
    z = torch.randn(1, 16, 6, 7) * 3
    base = net.fixed_point(z)
    torch.set_num_threads(2)
    try:
        two = net.fixed_point(z)
    finally:
        torch.set_num_threads(1)
    with torch.backends.mkldnn.flags(enabled=False):
        no_onednn = net.fixed_point(z)
    channels_last = net.fixed_point(z.contiguous(memory_format=torch.channels_last))
    fresh = IntegerHyperSynthesis(_h_s(), get_scale_table()).fixed_point(z)  # derived again: same integers
    for other in (two, no_onednn, channels_last, fresh):
        assert torch.equal(base, other)
    assert torch.equal(base, torch.round(base))  # integers


def test_close_to_the_float_hyper_synthesis():
    from compressai.entropy_models import GaussianConditional

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    h_s = _h_s()
    z = torch.round(torch.randn(1, 16, 8, 8) * 2)
    indexes, means = IntegerHyperSynthesis(h_s, gc.scale_table)(z)
    with torch.no_grad():
        scales_f, means_f = h_s(z).chunk(2, dim=1)
    assert (indexes == gc.build_indexes(scales_f)).float().mean() > 0.99
    assert (means - means_f).abs().max() < 1e-3
    assert indexes.dtype == torch.int32 and means.dtype == torch.float32


def test_hostile_hyper_latents_give_finite_deterministic_parameters():
    net = IntegerHyperSynthesis(_h_s(), get_scale_table())
    for z in (torch.zeros(1, 16, 2, 2), torch.full((1, 16, 2, 2), 2.0**31), torch.full((1, 16, 2, 2), -1e30)):
        indexes, means = net(z)
        again_i, again_m = net(z.clone())
        assert torch.isfinite(means).all() and torch.equal(means, again_m) and torch.equal(indexes, again_i)
        assert int(indexes.min()) >= 0 and int(indexes.max()) < get_scale_table().numel()
    with pytest.raises(ValueError, match="not finite"):
        net(torch.full((1, 16, 2, 2), float("nan")))


def test_unsupported_hyper_synthesis_is_refused():
    with pytest.raises(UnsupportedSynthesisError, match="GDN"):
        IntegerHyperSynthesis(torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3), GDN(4), torch.nn.Conv2d(4, 8, 3)),
                              get_scale_table())
    with pytest.raises(UnsupportedSynthesisError, match="end with a convolution"):
        IntegerHyperSynthesis(torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.ReLU()), get_scale_table())


@pytest.mark.parametrize("channels", [2, 3])
def test_codec_round_trip_is_exact(channels):
    torch.manual_seed(channels)
    codec = build_codec("hyperprior", in_channels=channels, N=16, M=24, num_qualities=2,
                        entropy_parameters="integer").eval()
    codec.update(force=True)
    x = torch.rand(1, channels, 128, 192)
    with torch.no_grad():
        for q in (0, 1):
            enc = codec.compress(x, q)
            assert torch.equal(codec.decompress(enc.strings, (128, 192), q), enc.x_hat)
        mask = torch.zeros(8, 12, dtype=torch.bool)
        mask[:4, 3:] = True
        enc = codec.compress(x, 1, latent_mask=mask)
        assert torch.equal(codec.decompress(enc.strings, (128, 192), 1, latent_mask=mask), enc.x_hat)


def test_derived_again_when_the_weights_change():
    codec = build_codec("hyperprior", in_channels=3, N=16, M=24, num_qualities=1,
                        entropy_parameters="integer").eval()
    codec.update(force=True)
    first = codec.entropy.integer_synthesis()
    assert codec.entropy.integer_synthesis() is first
    with torch.no_grad():
        codec.entropy.h_s[0].weight.mul_(2)
    assert codec.entropy.integer_synthesis() is not first


def test_bad_entropy_parameters_is_a_config_error(tiny_model_config):
    raw = tiny_model_config.to_dict()
    raw["intra"] = {**raw["intra"], "entropy_parameters": "fixed"}
    with pytest.raises(ConfigError, match="entropy parameters must be one of float, integer"):
        build_model(model_config_from_dict(raw))
    raw["intra"] = {"codec": "msp", "N": 16, "M": 24, "entropy_parameters": "integer"}
    with pytest.raises(ConfigError, match="bad arguments"):
        build_model(model_config_from_dict(raw))


def test_export_under_an_integer_config(tmp_path, tiny_model_config, tiny_weights):
    raw = tiny_model_config.to_dict()
    for role in ("intra", "motion", "residual"):
        raw[role] = {**raw[role], "entropy_parameters": "integer"}
    raw.pop("weights", None)
    cfg = tmp_path / "tiny-int.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    res = export_weights(tiny_weights, tmp_path / "int.pt", model_config=cfg)
    loaded = ModelStore().load(tmp_path / "int.pt")
    assert loaded.model.intra.entropy.parameters == "integer"
    assert loaded.provenance["exported_with_config"] == "tiny-int.yaml"
    assert res["sha256"] != ModelStore().load(tiny_weights).sha256.hex()
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**raw, "intra": {"codec": "hyperprior", "N": 8, "M": 24}}))
    with pytest.raises(WeightsError, match="does not describe the networks"):
        export_weights(tiny_weights, tmp_path / "x.pt", model_config=other)
    assert not (tmp_path / "x.pt").exists()

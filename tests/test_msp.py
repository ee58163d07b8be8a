"""``msp``: multi-scale progressive context model — exact coding for every profile, the
profile in the stream, the pass schedule's call count, latent masks, training and LOF."""

from __future__ import annotations

import math

import pytest
import torch

from image_codecs import CorruptStreamError, build_codec
from image_codecs.complexity import codec_complexity
from image_codecs.entropy import GaussianHyperprior, ProgressiveGaussian
from image_codecs.entropy.msp_context import PROFILES, SCHEDULES, TRAIN_PROFILE_WEIGHTS, check_train_profiles
from image_codecs.msp import MSPCodec
from image_codecs.quantize import HardRound, NoiseSTE
from image_codecs.refine import rd_cost, refine_latents, sga_compress

N, M = 16, 16
QUALITY = 1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_codec(in_channels: int = 3, *, profile: int = 4, seed: int = 0, **kwargs) -> MSPCodec:
    """Random weights, gains 20 / 80 (so y has many non-zero symbols), tables built, eval mode; the
    context model's zero-initialised output layer is randomised too, so the context matters."""
    torch.manual_seed(seed)
    codec = MSPCodec(in_channels=in_channels, N=N, M=M, num_qualities=2, profile=profile, **kwargs)
    torch.nn.init.normal_(codec.entropy.context.fuse[-1].weight, std=0.1)
    log_gain = torch.tensor([math.log(20.0), math.log(80.0)])[:, None].expand_as(codec.gain.log_gain)
    with torch.no_grad():
        codec.gain.log_gain.copy_(log_gain)
        codec.gain.log_inv_gain.copy_(-log_gain)
    codec.eval()
    codec.update(force=True)
    return codec


def picture(in_channels: int, h: int = 64, w: int = 64, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, in_channels, h, w, generator=g)
    return x * 8.0 - 4.0 if in_channels == 2 else x  # motion fields: pixels


@pytest.fixture(scope="module")
def codecs() -> dict[int, MSPCodec]:
    return {c: make_codec(c) for c in (2, 3)}


class CallCounter:
    """Counts forward calls of a module through a forward hook."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls

    def close(self) -> None:
        self._handle.remove()


def test_schedules_partition_the_cells() -> None:
    every = {(g, p) for g in range(4) for p in range(4)}
    for profile, passes in SCHEDULES.items():
        assert len(passes) == profile
        cells = [c for cells in passes for c in cells]
        assert len(cells) == 16 and set(cells) == every
    assert set(PROFILES) == set(SCHEDULES)
    entropy = ProgressiveGaussian(N=N, M=M)
    for profile in PROFILES:  # every pass codes the same share of the elements
        counts = torch.bincount(entropy.pass_map(profile, (8, 12)).reshape(-1), minlength=profile)
        assert (counts == M * 8 * 12 // profile).all()


@pytest.mark.parametrize("in_channels", [2, 3])
@pytest.mark.parametrize("profile", PROFILES)
def test_round_trip_is_exact(codecs, in_channels: int, profile: int) -> None:
    codec = codecs[in_channels]
    x = picture(in_channels, 64, 128)
    with torch.no_grad():
        coded = codec.compress(x, QUALITY, profile=profile)
        assert len(coded.strings) == codec.num_streams == 3 and coded.strings[0] == bytes([profile])
        assert torch.equal(codec.decompress(coded.strings, (64, 128), QUALITY), coded.x_hat)

        y, z = codec.analysis(x, QUALITY)
        strings, y_hat = codec.entropy.compress(y, z, profile=profile)
        assert strings == coded.strings
        assert torch.equal(codec.entropy.decompress(strings, tuple(y.shape[-2:])), y_hat)
        # Under HardRound the training path gives exactly what is coded (LOF's hard cost is the real one).
        y_synth, _ = codec.entropy(y, z, HardRound(), profile=profile)
        assert torch.equal(y_synth, y_hat)
    assert len(coded.strings[2]) > 100  # the symbols are not all trivial


def test_context_changes_the_prediction(codecs) -> None:
    codec = codecs[3]
    with torch.no_grad():
        y, z = codec.analysis(picture(3, 64, 128), QUALITY)
        y_hats = {p: codec.entropy.compress(y, z, profile=p)[1] for p in PROFILES}
    for p in (2, 4, 8):
        assert not torch.equal(y_hats[p], y_hats[1])


def test_an_untrained_context_model_is_exactly_the_hyperprior() -> None:
    """The context's output layer starts at zero, so ``--init`` from hyperprior weights starts there."""
    torch.manual_seed(0)
    codec = MSPCodec(N=N, M=M, num_qualities=2).eval()
    codec.update(force=True)
    x = picture(3, 64, 64)
    with torch.no_grad():
        y, z = codec.analysis(x, QUALITY)
        liks = [codec.latent_forward(y, z, QUALITY, HardRound(), profile=p).likelihoods["y"] for p in PROFILES]
    assert all(torch.equal(lik, liks[0]) for lik in liks)


def test_profile_1_is_the_plain_hyperprior(codecs) -> None:
    msp = codecs[3].entropy
    plain = GaussianHyperprior(N=N, M=M)
    plain.load_state_dict({k: v for k, v in msp.state_dict().items() if not k.startswith("context.")})
    with torch.no_grad():
        y, z = codecs[3].analysis(picture(3, 64, 128), QUALITY)
        for quantizer in (HardRound(), NoiseSTE()):
            torch.manual_seed(5)
            y_a, lik_a = msp(y, z, quantizer, profile=1)
            torch.manual_seed(5)
            y_b, lik_b = plain(y, z, quantizer)
            assert torch.equal(y_a, y_b)
            assert torch.equal(lik_a["y"], lik_b["y"]) and torch.equal(lik_a["z"], lik_b["z"])
        # ... and the same bytes (one chunk, same order) after the profile byte.
        strings, y_hat = msp.compress(y, z, profile=1)
        plain_strings, plain_y_hat = plain.compress(y, z)
    assert strings[1:] == plain_strings and torch.equal(y_hat, plain_y_hat)


def test_context_calls_per_picture_do_not_grow_with_size(codecs) -> None:
    codec = codecs[3]
    counter = CallCounter(codec.entropy.context)
    try:
        for h, w in ((64, 64), (512, 768)):
            x = picture(3, h, w)
            with torch.no_grad():
                y, z = codec.analysis(x, QUALITY)
                for profile in PROFILES:
                    expected = profile - 1
                    assert codec.entropy.context_calls(profile) == expected
                    strings, _ = codec.entropy.compress(y, z, profile=profile)
                    assert counter.take() == expected, ("compress", h, w, profile)
                    codec.entropy.decompress(strings, tuple(y.shape[-2:]))
                    assert counter.take() == expected, ("decompress", h, w, profile)
                    codec.entropy(y, z, HardRound(), profile=profile)
                    assert counter.take() == expected, ("forward", h, w, profile)
        # The whole codec, at the large size and the default profile (4).
        x = picture(3, 512, 768)
        with torch.no_grad():
            coded = codec.compress(x, QUALITY)
            assert counter.take() == 3
            assert torch.equal(codec.decompress(coded.strings, (512, 768), QUALITY), coded.x_hat)
            assert counter.take() == 3
    finally:
        counter.close()


def test_decoder_reads_the_profile_from_the_stream(codecs) -> None:
    codec = codecs[3]
    assert codec.profile == codec.entropy.default_profile == 4
    x = picture(3, 64, 128)
    with torch.no_grad():
        default = codec.compress(x, QUALITY)
        two = codec.compress(x, QUALITY, profile=2)
        assert default.strings[0] == b"\x04" and two.strings[0] == b"\x02"
        assert torch.equal(codec.decompress(two.strings, (64, 128), QUALITY), two.x_hat)
        # A codec whose default is 2 decodes profile-4 streams too (same weights).
        other = make_codec(3, profile=2)
        assert other.compress(x, QUALITY).strings[0] == b"\x02"
        assert torch.equal(other.decompress(default.strings, (64, 128), QUALITY), default.x_hat)


@pytest.mark.parametrize("header", [b"\x03", b"\x00", b"\xff", b"\x04\x04", b"", b"\x02\x00"])
def test_bad_profile_byte_is_a_corrupt_stream(codecs, header: bytes) -> None:
    codec = codecs[3]
    with torch.no_grad():
        coded = codec.compress(picture(3), QUALITY)
        with pytest.raises(CorruptStreamError) as err:
            codec.decompress([header, *coded.strings[1:]], (64, 64), QUALITY)
    assert err.value.stream == 0 and err.value.position == 0
    assert isinstance(err.value, ValueError)
    assert CorruptStreamError("plain message").stream is None  # old callers unchanged


def test_bad_profile_arguments() -> None:
    codec = make_codec(3)
    with pytest.raises(ValueError, match="profile"):
        codec.compress(picture(3), QUALITY, profile=3)
    with pytest.raises(ValueError, match="profile"):
        codec.latent_forward(*codec.analysis(picture(3), QUALITY), QUALITY, HardRound(), profile=0)
    for kwargs in ({"profile": 3}, {"M": 18}, {"analysis": "vgg"}, {"N": 0}):
        with pytest.raises(ValueError):
            MSPCodec(**{"N": N, "M": M, **kwargs})
    plain = build_codec("hyperprior", N=N, M=M).eval()
    plain.update(force=True)
    with pytest.raises(TypeError, match="profile"):
        plain.compress(picture(3), 0, profile=2)


@pytest.mark.parametrize("profile", [1, 2, 4, 8])
def test_latent_mask_round_trip_and_masked_positions_are_free(codecs, profile: int) -> None:
    codec = codecs[3]
    assert codec.entropy.supports_latent_mask
    x = picture(3, 128, 128)
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[:4, :4] = False  # a whole z position: z not coded there either
    mask[5, 1::2] = False
    mask[6:, 6] = False
    with torch.no_grad():
        full = codec.compress(x, QUALITY, profile=profile)
        masked = codec.compress(x, QUALITY, profile=profile, latent_mask=mask)
        assert torch.equal(codec.decompress(masked.strings, (128, 128), QUALITY, latent_mask=mask), masked.x_hat)
        assert masked.num_bytes < full.num_bytes
        assert len(masked.strings[1]) < len(full.strings[1]) and len(masked.strings[2]) < len(full.strings[2])
        nothing = torch.zeros(8, 8, dtype=torch.bool)
        empty = codec.compress(x, QUALITY, profile=profile, latent_mask=nothing)
        assert [len(s) for s in empty.strings] == [1, 8, 8]  # the header and two sealed, empty ANS stacks
        assert torch.equal(codec.decompress(empty.strings, (128, 128), QUALITY, latent_mask=nothing), empty.x_hat)


@pytest.mark.parametrize("profile", [None, 2, 4, 8])
def test_training_forward_is_finite_and_trains_the_context(profile: int | None) -> None:
    codec = make_codec(3).train()
    x = torch.cat([picture(3, seed=2), picture(3, seed=3)])
    quality = torch.tensor([0, 1])
    torch.manual_seed(7)
    y, z = codec.analysis(x, quality)
    out = codec.latent_forward(y, z, quality, NoiseSTE(), profile=profile)
    for lik in out.likelihoods.values():
        assert torch.isfinite(lik).all() and ((lik > 0) & (lik <= 1)).all()
    loss = out.bits() / x[0, 0].numel() + 100.0 * torch.mean((out.x_hat - x) ** 2)
    loss.backward()
    grads = [p.grad for p in codec.entropy.context.parameters()]
    if profile is not None:
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    assert torch.isfinite(codec.g_a[0].weight.grad).all()


def test_training_draws_profiles_from_the_global_rng() -> None:
    codec = make_codec(3).train()
    counter = CallCounter(codec.entropy.context)
    x = picture(3)
    seen = []
    try:
        torch.manual_seed(11)
        with torch.no_grad():
            for _ in range(40):
                codec(x, QUALITY)
                seen.append(counter.take())
        torch.manual_seed(11)
        with torch.no_grad():
            again = []
            for _ in range(40):
                codec(x, QUALITY)
                again.append(counter.take())
        codec.eval()
        with torch.no_grad():
            codec(x, QUALITY)
        assert counter.take() == 3  # eval: the default profile
    finally:
        counter.close()
    assert seen == again
    assert set(seen) <= {p - 1 for p in PROFILES} and len(set(seen)) >= 3
    assert max(set(seen), key=seen.count) == 3  # profile 4 is the most likely


def test_train_profiles_choose_what_training_draws() -> None:
    entropy = MSPCodec(N=N, M=M, num_qualities=2, train_profiles={1: 1, 4: 3}).entropy.train()
    torch.manual_seed(5)
    drawn = [entropy.resolve_profile(None) for _ in range(400)]
    assert set(drawn) == {1, 4}
    assert 0.15 < drawn.count(1) / len(drawn) < 0.35  # weight 1 of 4
    assert entropy.resolve_profile(2) == 2  # an explicit profile is not limited by the weights
    entropy.eval()
    assert entropy.resolve_profile(None) == 4


def test_default_train_profiles_are_the_documented_weights() -> None:
    assert check_train_profiles(None) == TRAIN_PROFILE_WEIGHTS
    assert check_train_profiles({"2": 1}) == {2: 1.0}  # keys written as strings (JSON) are accepted


@pytest.mark.parametrize("weights", [{}, {3: 1.0}, {4: -1.0}, {4: 0.0}, {4: "x"}, {True: 1.0}, [4], {4: float("nan")}])
def test_bad_train_profiles_are_refused(weights) -> None:
    with pytest.raises(ValueError, match="train_profiles"):
        MSPCodec(N=N, M=M, train_profiles=weights)


def test_elic_analysis_variant_round_trips() -> None:
    codec = make_codec(3, analysis="elic")
    x = picture(3)
    with torch.no_grad():
        coded = codec.compress(x, QUALITY, profile=8)
        assert torch.equal(codec.decompress(coded.strings, (64, 64), QUALITY), coded.x_hat)


def test_lof_lowers_the_hard_cost_and_decodes_exactly(codecs) -> None:
    codec = codecs[3]
    x = picture(3, seed=4)
    lmbda = 100.0

    def hard(y: torch.Tensor, z: torch.Tensor, profile: int | None) -> float:
        with torch.no_grad():
            return float(rd_cost(codec, x, y, z, QUALITY, lmbda=lmbda, quantizer=HardRound(), profile=profile).loss)

    with torch.no_grad():
        y0, z0 = codec.analysis(x, QUALITY)
    for profile in (None, 2):
        before = hard(y0, z0, profile)
        y, z = refine_latents(codec, x, QUALITY, lmbda=lmbda, steps=10, lr=2e-2, eval_every=5,
                              generator=torch.Generator().manual_seed(0), profile=profile)
        after = hard(y, z, profile)
        print(f"profile {profile}: hard-rounded R + lambda*D {before:.4f} -> {after:.4f}")
        assert after < before  # 42.52 -> 42.46 (profile 4) and 42.52 -> 42.46 (profile 2) when written
    assert hard(y0, z0, 1) != hard(y0, z0, 4)  # the profile reaches the rate term

    coded = sga_compress(codec, x, QUALITY, lmbda=lmbda, steps=3, lr=1e-2, profile=2)
    assert coded.strings[0] == b"\x02"
    with torch.no_grad():
        assert torch.equal(codec.decompress(coded.strings, (64, 64), QUALITY), coded.x_hat)
    assert not codec.training


def test_profile_is_ignored_by_codecs_without_profiles() -> None:
    torch.manual_seed(0)
    plain = build_codec("hyperprior", N=N, M=M, num_qualities=2).eval()
    x = picture(3)
    with torch.no_grad():
        y, z = plain.analysis(x, QUALITY)
        a = rd_cost(plain, x, y, z, QUALITY, lmbda=10.0, quantizer=HardRound())
        b = rd_cost(plain, x, y, z, QUALITY, lmbda=10.0, quantizer=HardRound(), profile=2)
    assert torch.equal(a.loss, b.loss)


def test_complexity_counts_the_context_calls(codecs) -> None:
    parts = codec_complexity(codecs[3], 64, 128)
    per_position = 42.4375 * M * M  # context width = M; see the msp_context docstring
    assert parts["context"] == pytest.approx(3 * per_position / 256 / 1000)
    assert parts["decoder"] == pytest.approx(parts["synthesis"] + parts["hyper_synthesis"] + parts["context"])


def test_bfloat16_lof_gives_fp32_latents_no_worse_than_rounding_and_exact_decoding(codecs) -> None:
    codec = codecs[3]
    x = picture(3, seed=5)
    lmbda = 100.0
    with torch.no_grad():
        y0, z0 = codec.analysis(x, QUALITY)

    def hard(y: torch.Tensor, z: torch.Tensor) -> float:
        with torch.no_grad():
            return float(rd_cost(codec, x, y, z, QUALITY, lmbda=lmbda, quantizer=HardRound()).loss)

    y, z = refine_latents(codec, x, QUALITY, lmbda=lmbda, steps=6, lr=2e-2, eval_every=2,
                          generator=torch.Generator().manual_seed(0), precision="bfloat16")
    assert y.dtype == z.dtype == torch.float32 and y.is_contiguous() and z.is_contiguous()
    assert y.shape == y0.shape and z.shape == z0.shape
    assert hard(y, z) <= hard(y0, z0)  # the step-0 candidate is kept when no step beats it

    coded = sga_compress(codec, x, QUALITY, lmbda=lmbda, steps=3, lr=1e-2, precision="bfloat16")
    assert coded.x_hat.dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(codec.decompress(coded.strings, (64, 64), QUALITY), coded.x_hat)


def test_entropy_model_stays_fp32_under_autocast(codecs) -> None:
    codec = codecs[3]
    with torch.no_grad():
        y, z = codec.analysis(picture(3, seed=6), QUALITY)
        plain = codec.latent_forward(y, z, QUALITY, HardRound())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cast = codec.latent_forward(y, z, QUALITY, HardRound())
    for a, b in zip(plain.likelihoods.values(), cast.likelihoods.values()):
        assert b.dtype == torch.float32 and torch.equal(a, b)


def test_unknown_refine_precision_is_refused(codecs) -> None:
    codec = codecs[3]
    x = picture(3)
    with pytest.raises(ValueError, match="refinement precision"):
        refine_latents(codec, x, QUALITY, lmbda=100.0, steps=1, precision="float16")
    with pytest.raises(ValueError, match="refinement precision"):
        sga_compress(codec, x, QUALITY, lmbda=100.0, steps=1, precision="fp8")

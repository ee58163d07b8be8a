"""Tests for the ``flow`` package: warp, estimators, correlation, registry.

CPU only, small tensors. Float tolerances are stated where used; warp paths that
must be exact (zero and integer flows) are compared with ``torch.equal``.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
import torch

from flow import (
    Correlation,
    CorrelationExtensionUnavailableError,
    MotionEstimator,
    UnknownEstimatorError,
    build_estimator,
    estimator_names,
    warp,
)
from flow.correlation import correlation_torch, extension_available

FLOW_DIR = Path(__file__).resolve().parents[1] / "flow"
KODIM05 = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "kodak" / "kodim05.png"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------- layering


def test_flow_is_a_leaf_package() -> None:
    allowed = {"torch", "numpy", "spatial_correlation_sampler", "cv2", "__future__", "typing", "collections", "abc"}
    for path in sorted(FLOW_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"


# ------------------------------------------------------------------------- warp


@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 17, 29), (1, 1, 1, 1), (1, 2, 1, 7), (1, 4, 64, 64)])
def test_warp_zero_flow_is_exact_identity(shape: tuple[int, int, int, int]) -> None:
    ref = torch.rand(shape, generator=_gen())
    flow = torch.zeros(shape[0], 2, *shape[2:])
    assert torch.equal(warp(ref, flow), ref)


def test_warp_zero_flow_exact_for_many_widths() -> None:
    # grid_sample's own normalisation is inexact for most sizes; ours must not be.
    for size in range(1, 70):
        ref = torch.rand(1, 1, size, size + 3, generator=_gen(size))
        assert torch.equal(warp(ref, torch.zeros(1, 2, size, size + 3)), ref), size


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_warp_low_precision_under_autocast_runs_in_fp32(dtype: torch.dtype) -> None:
    ref32 = torch.rand(1, 3, 19, 23, generator=_gen(1))
    ref = ref32.to(dtype)
    flow = 3.0 * torch.randn(1, 2, 19, 23, generator=_gen(2))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = warp(ref, flow)
        identity = warp(ref, torch.zeros_like(flow))
    assert out.dtype == dtype
    assert torch.equal(identity, ref)
    # Same numbers as an fp32 computation on the fp32-cast input, rounded once.
    assert torch.equal(out, warp(ref.float(), flow).to(dtype))


def test_warp_integer_flow_is_a_pixel_shift() -> None:
    h, w, dx, dy = 20, 24, 3, -2
    ref = torch.rand(2, 3, h, w, generator=_gen(3))
    flow = torch.empty(2, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    out = warp(ref, flow)
    # out[y, x] = ref[y + dy, x + dx] wherever that lies inside the picture.
    assert torch.equal(out[:, :, -dy:, : w - dx], ref[:, :, : h + dy, dx:])
    # Outside, coordinates clamp to the border (replicate).
    assert torch.equal(out[:, :, 0, : w - dx], ref[:, :, 0, dx:])
    assert torch.equal(out[:, :, -dy:, -1], ref[:, :, : h + dy, -1])


def test_warp_half_pixel_flow_is_bilinear() -> None:
    ref = torch.rand(1, 2, 9, 11, generator=_gen(4))
    flow = torch.zeros(1, 2, 9, 11)
    flow[:, 0] = 0.5
    out = warp(ref, flow)
    expected = 0.5 * (ref[..., :-1] + ref[..., 1:])
    torch.testing.assert_close(out[..., :-1], expected, rtol=0, atol=1e-6)


def test_warp_matches_float64_grid_sample_with_border_clamping() -> None:
    # Reference: unpadded float64 grid_sample, where normalisation error is ~1e-13.
    n, c, h, w = 2, 3, 13, 18
    ref = torch.rand(n, c, h, w, generator=_gen(13))
    flow = 6.0 * torch.randn(n, 2, h, w, generator=_gen(14))  # often leaves the picture
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    fx, fy = flow[:, 0].double(), flow[:, 1].double()
    grid = torch.stack((2 * (xs + fx) / (w - 1) - 1, 2 * (ys + fy) / (h - 1) - 1), dim=-1)
    expected = torch.nn.functional.grid_sample(
        ref.double(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    # float32 sampling coordinates (|x| < ~40 px) carry ~4e-6 px of rounding.
    torch.testing.assert_close(warp(ref, flow).double(), expected, rtol=0, atol=1e-5)


def test_warp_gradient_wrt_flow() -> None:
    # On a horizontal ramp ref[x] = x, the interior of warp(ref, flow) is x + flow_x,
    # so d(sum)/d(flow_x) = 1 and d(sum)/d(flow_y) = 0 there.
    h, w = 8, 12
    ramp = torch.arange(w, dtype=torch.float32).expand(1, 1, h, w)
    flow = torch.full((1, 2, h, w), 0.25, requires_grad=True)
    warp(ramp, flow)[..., 1:-2].sum().backward()
    grad = flow.grad
    assert grad is not None
    torch.testing.assert_close(grad[0, 0, 1:-1, 1:-2], torch.ones(h - 2, w - 3), rtol=0, atol=1e-5)
    torch.testing.assert_close(grad[0, 1], torch.zeros(h, w), rtol=0, atol=1e-6)


def test_warp_rejects_bad_shapes() -> None:
    ref = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="flow must be"):
        warp(ref, torch.zeros(1, 2, 8, 9))
    with pytest.raises(ValueError, match="ref must be"):
        warp(ref[0], torch.zeros(1, 2, 8, 8))


# ------------------------------------------------------------------- estimators


LEARNED = [n for n in estimator_names() if n != "dis"]  # estimators with weights (untrained: zero flow)


@pytest.mark.parametrize("name", LEARNED)
@pytest.mark.parametrize("shape", [(1, 3, 17, 29), (2, 3, 37, 53)])
def test_estimator_any_size_untrained_zero_flow(name: str, shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    estimator = build_estimator(name)
    assert isinstance(estimator, MotionEstimator)
    cur = torch.rand(shape, generator=_gen(5))
    ref = torch.rand(shape, generator=_gen(6))
    with torch.no_grad():
        flow = estimator(cur, ref)
    assert flow.shape == (shape[0], 2, *shape[2:])
    assert flow.dtype == torch.float32
    assert torch.equal(flow, torch.zeros_like(flow))


@pytest.mark.parametrize("name", LEARNED)
def test_estimator_under_autocast_returns_fp32_zero_flow(name: str) -> None:
    estimator = build_estimator(name)
    cur, ref = torch.rand(1, 3, 17, 29, generator=_gen(15)), torch.rand(1, 3, 17, 29, generator=_gen(16))
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        flow = estimator(cur, ref)
    assert flow.shape == (1, 2, 17, 29) and flow.dtype == torch.float32
    assert torch.equal(flow, torch.zeros_like(flow))


@pytest.mark.parametrize("name", estimator_names())
def test_estimator_rejects_bad_inputs(name: str) -> None:
    estimator = build_estimator(name)
    with pytest.raises(ValueError):
        estimator(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError):
        estimator(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))


def test_spynet_levels_validated() -> None:
    assert build_estimator("spynet", levels=4).size_multiple == 8
    with pytest.raises(ValueError, match="levels"):
        build_estimator("spynet", levels=3)


def test_pwcnet_is_configurable() -> None:
    net = build_estimator("pwcnet", pyramid_channels=(8, 12, 16), estimator_channels=(16,), finest_level=1)
    assert net.size_multiple == 8
    with torch.no_grad():
        assert net(torch.rand(1, 3, 10, 13), torch.rand(1, 3, 10, 13)).shape == (1, 2, 10, 13)
    with pytest.raises(ValueError, match="finest_level"):
        build_estimator("pwcnet", pyramid_channels=(8, 12), finest_level=3)


@pytest.mark.skipif(not KODIM05.is_file(), reason=f"{KODIM05} not present")
def test_spynet_training_reduces_warp_loss_on_shifted_crops() -> None:
    import numpy as np

    image_module = pytest.importorskip("PIL.Image")
    rgb = np.asarray(image_module.open(KODIM05).convert("RGB"))
    picture = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255.0)[None]
    size, dx, dy, y0, x0 = 32, 2, -1, 200, 300
    cur = picture[:, :, y0 : y0 + size, x0 : x0 + size]
    ref = picture[:, :, y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size]
    # cur[y, x] = ref[y - dy, x - dx]: the true backward flow is (-dx, -dy) everywhere.
    torch.manual_seed(0)
    net = build_estimator("spynet", levels=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        flow = net(cur, ref)
        loss = torch.mean((warp(ref, flow) - cur) ** 2)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.2 * losses[0], losses
    mean_flow = flow.detach().mean(dim=(0, 2, 3))
    torch.testing.assert_close(mean_flow, torch.tensor([-dx, -dy], dtype=torch.float32), rtol=0, atol=0.5)


# --------------------------------------------------------------------- registry


def test_registry_names_and_unknown_name() -> None:
    assert estimator_names() == ["dis", "pwcnet", "spynet"]
    with pytest.raises(KeyError) as info:
        build_estimator("raft")
    assert isinstance(info.value, UnknownEstimatorError)
    message = str(info.value)
    assert "raft" in message and "pwcnet" in message and "spynet" in message


# ------------------------------------------------------------------ correlation


def _naive_correlation(f1: torch.Tensor, f2: torch.Tensor, d: int) -> torch.Tensor:
    """Direct definition in float64, one output element at a time."""
    n, c, h, w = f1.shape
    out = torch.zeros(n, (2 * d + 1) ** 2, h, w, dtype=torch.float64)
    a, b = f1.double(), f2.double()
    for k, (dy, dx) in enumerate(itertools.product(range(-d, d + 1), repeat=2)):
        for y, x in itertools.product(range(h), range(w)):
            if 0 <= y + dy < h and 0 <= x + dx < w:
                out[:, k, y, x] = (a[:, :, y, x] * b[:, :, y + dy, x + dx]).sum(dim=1) / c
    return out


@pytest.mark.parametrize("d", [0, 1, 2])
def test_correlation_torch_matches_naive(d: int) -> None:
    f1 = torch.randn(2, 5, 6, 7, generator=_gen(7))
    f2 = torch.randn(2, 5, 6, 7, generator=_gen(8))
    out = Correlation(max_displacement=d, backend="torch")(f1, f2)
    assert out.shape == (2, (2 * d + 1) ** 2, 6, 7)
    torch.testing.assert_close(out.double(), _naive_correlation(f1, f2, d), rtol=0, atol=1e-6)


def test_correlation_backends_validated() -> None:
    with pytest.raises(ValueError, match="backend"):
        Correlation(backend="cuda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_displacement"):
        Correlation(max_displacement=-1)
    if not extension_available():
        assert Correlation(backend="auto").backend == "torch"
        with pytest.raises(CorrelationExtensionUnavailableError, match="spatial-correlation-sampler"):
            Correlation(backend="extension")


def test_correlation_keeps_input_dtype_under_autocast() -> None:
    f1 = torch.randn(1, 4, 5, 6, generator=_gen(9)).to(torch.bfloat16)
    f2 = torch.randn(1, 4, 5, 6, generator=_gen(10)).to(torch.bfloat16)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = Correlation(max_displacement=1, backend="torch")(f1, f2)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, correlation_torch(f1, f2, 1).to(torch.bfloat16))


@pytest.mark.skipif(not extension_available(), reason="spatial_correlation_sampler not installed")
def test_correlation_extension_matches_torch() -> None:
    f1 = torch.randn(2, 16, 12, 15, generator=_gen(11), requires_grad=True)
    f2 = torch.randn(2, 16, 12, 15, generator=_gen(12), requires_grad=True)
    ext = Correlation(max_displacement=3, backend="extension")
    ref = Correlation(max_displacement=3, backend="torch")
    assert ext.backend == "extension"
    out_ext, out_ref = ext(f1, f2), ref(f1, f2)
    # float32 sums over 16 channels in different orders: a few ulps apart.
    torch.testing.assert_close(out_ext, out_ref, rtol=1e-5, atol=1e-6)
    grads_ext = torch.autograd.grad(out_ext.square().sum(), (f1, f2))
    grads_ref = torch.autograd.grad(out_ref.square().sum(), (f1, f2))
    for g_ext, g_ref in zip(grads_ext, grads_ref):
        torch.testing.assert_close(g_ext, g_ref, rtol=1e-5, atol=1e-5)

"""dvclic.color: BT.709 limited-range YUV 4:2:0 <-> RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dvclic.color import YUVFrame, chroma_shape, rgb_to_yuv420, yuv420_to_rgb

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KODIM23 = DATA / "images" / "kodak" / "kodim23.png"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _constant_rgb(value: tuple[float, float, float], height: int = 4, width: int = 6) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, height, width).clone()


def _constant_planes(frame: YUVFrame) -> tuple[int, int, int]:
    for plane in frame.planes:
        assert (plane == plane.flat[0]).all()
    return tuple(int(p.flat[0]) for p in frame.planes)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("rgb", "bit_depth", "yuv"),
    [
        ((1.0, 1.0, 1.0), 8, (235, 128, 128)),
        ((0.0, 0.0, 0.0), 8, (16, 128, 128)),
        ((0.5, 0.5, 0.5), 8, (126, 128, 128)),  # 125.5 rounds half to even
        ((1.0, 1.0, 1.0), 10, (940, 512, 512)),
        ((0.0, 0.0, 0.0), 10, (64, 512, 512)),
        ((0.5, 0.5, 0.5), 10, (502, 512, 512)),
        # BT.709 primaries (limited range, 8-bit), the standard table values
        ((1.0, 0.0, 0.0), 8, (63, 102, 240)),
        ((0.0, 1.0, 0.0), 8, (173, 42, 26)),
        ((0.0, 0.0, 1.0), 8, (32, 240, 118)),
    ],
)
def test_matrix_maps_reference_colours(rgb, bit_depth, yuv):
    frame = rgb_to_yuv420(_constant_rgb(rgb), bit_depth)
    assert frame.bit_depth == bit_depth
    assert frame.y.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    assert _constant_planes(frame) == yuv


@pytest.mark.parametrize("bit_depth", [8, 10])
def test_inverse_maps_white_black_grey_exactly(bit_depth):
    s = 1 << (bit_depth - 8)
    for luma, expected in ((235 * s, 1.0), (16 * s, 0.0), (16 * s + 219 * s // 2, (219 * s // 2) / (219 * s))):
        dtype = np.uint8 if bit_depth == 8 else np.uint16
        frame = YUVFrame(
            y=np.full((3, 5), luma, dtype),
            u=np.full((2, 3), 128 * s, dtype),
            v=np.full((2, 3), 128 * s, dtype),
            bit_depth=bit_depth,
        )
        rgb = yuv420_to_rgb(frame)
        assert rgb.shape == (1, 3, 3, 5) and rgb.dtype == torch.float32
        torch.testing.assert_close(rgb, torch.full_like(rgb, expected), atol=1e-6, rtol=0)


def test_output_is_clamped_to_unit_range():
    frame = YUVFrame(
        y=np.array([[0, 255]], np.uint8), u=np.array([[255]], np.uint8), v=np.array([[0]], np.uint8)
    )
    rgb = yuv420_to_rgb(frame)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0


@pytest.mark.skipif(not KODIM23.exists(), reason="needs ../shared/data/images/kodak/kodim23.png")
@pytest.mark.parametrize("bit_depth", [8, 10])
def test_round_trip_is_near_fixed_point_on_a_real_picture(bit_depth):
    """rgb -> yuv1 -> rgb -> yuv2: yuv2 ~= yuv1.

    Not exact by design: bilinear upsampling followed by the 2x2 mean blurs chroma with the
    kernel [1/8, 3/4, 1/8] per axis, and saturated colours clamp in RGB. Tolerance, in 8-bit
    code values (x4 at 10 bits): |yuv2 - yuv1| <= 1 on >= 99% of luma samples and >= 95% of
    chroma samples, and mean |difference| <= 0.05 (luma) / 0.3 (chroma).
    """
    from PIL import Image

    with Image.open(KODIM23) as image:
        pixels = np.asarray(image.convert("RGB"))
    rgb = torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    first = rgb_to_yuv420(rgb, bit_depth)
    second = rgb_to_yuv420(yuv420_to_rgb(first), bit_depth)
    unit = 1 << (bit_depth - 8)
    for name, a, b, share, mean in (
        ("y", first.y, second.y, 0.99, 0.05),
        ("u", first.u, second.u, 0.95, 0.3),
        ("v", first.v, second.v, 0.95, 0.3),
    ):
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64)) / unit
        assert (diff <= 1).mean() >= share, name
        assert diff.mean() <= mean, name
    # First conversion is faithful too: RGB PSNR of one YUV 4:2:0 round trip is ~45 dB here.
    mse = torch.mean((yuv420_to_rgb(first) - rgb) ** 2).item()
    assert -10 * np.log10(mse) > 40


@pytest.mark.parametrize(("height", "width"), [(9, 17), (1, 1), (2, 1), (1, 2), (3, 3)])
def test_odd_and_tiny_sizes(height, width):
    generator = torch.Generator().manual_seed(height * 100 + width)
    rgb = torch.rand(1, 3, height, width, generator=generator)
    for bit_depth in (8, 10):
        frame = rgb_to_yuv420(rgb, bit_depth)
        assert (frame.height, frame.width) == (height, width)
        assert frame.u.shape == frame.v.shape == chroma_shape(height, width)
        back = yuv420_to_rgb(frame)
        assert back.shape == (1, 3, height, width)
        # A constant, in-gamut colour survives exactly whatever the size.
        grey = rgb_to_yuv420(_constant_rgb((0.25, 0.5, 0.75), height, width), bit_depth)
        again = rgb_to_yuv420(yuv420_to_rgb(grey), bit_depth)
        for a, b in zip(grey.planes, again.planes):
            np.testing.assert_array_equal(a, b)


def test_odd_size_chroma_replicates_the_last_row_and_column():
    # 3x3 picture: the bottom-right chroma sample averages the corner pixel with itself.
    rgb = torch.zeros(1, 3, 3, 3)
    rgb[:, 0, 2, 2] = 1.0  # one red corner pixel
    frame = rgb_to_yuv420(rgb, 8)
    assert frame.v[1, 1] == 240  # Cr of pure red, undiluted
    assert frame.v[0, 0] == 128


def test_conversion_is_deterministic():
    rgb = torch.rand(1, 3, 33, 47, generator=torch.Generator().manual_seed(0))
    a, b = rgb_to_yuv420(rgb, 10), rgb_to_yuv420(rgb.clone(), 10)
    for x, y in zip(a.planes, b.planes):
        np.testing.assert_array_equal(x, y)


def test_rgb_input_is_clamped_first():
    rgb = _constant_rgb((1.5, 1.2, 7.0))
    assert _constant_planes(rgb_to_yuv420(rgb, 8)) == (235, 128, 128)


@pytest.mark.parametrize(
    "bad",
    [torch.rand(3, 4, 4), torch.rand(2, 3, 4, 4), torch.rand(1, 4, 4, 4), torch.ones(1, 3, 4, 4, dtype=torch.uint8)],
)
def test_rgb_to_yuv_rejects_bad_tensors(bad):
    with pytest.raises(ValueError):
        rgb_to_yuv420(bad, 8)


@pytest.mark.parametrize("bit_depth", [7, 17, True])
def test_rgb_to_yuv_rejects_bad_bit_depth(bit_depth):
    with pytest.raises(ValueError):
        rgb_to_yuv420(torch.rand(1, 3, 2, 2), bit_depth)


def test_yuvframe_properties():
    frame = YUVFrame(
        y=np.zeros((11, 17), np.uint16), u=np.zeros((6, 9), np.uint16), v=np.zeros((6, 9), np.uint16), bit_depth=10
    )
    assert (frame.width, frame.height) == (17, 11)
    assert len(frame.planes) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        # chroma of the wrong size
        dict(y=np.zeros((4, 4), np.uint8), u=np.zeros((2, 3), np.uint8), v=np.zeros((2, 2), np.uint8)),
        # 8-bit frame with 16-bit planes
        dict(y=np.zeros((4, 4), np.uint16), u=np.zeros((2, 2), np.uint16), v=np.zeros((2, 2), np.uint16)),
        # 10-bit frame with 8-bit planes
        dict(y=np.zeros((4, 4), np.uint8), u=np.zeros((2, 2), np.uint8), v=np.zeros((2, 2), np.uint8), bit_depth=10),
        # mixed dtypes
        dict(y=np.zeros((4, 4), np.uint8), u=np.zeros((2, 2), np.uint16), v=np.zeros((2, 2), np.uint8)),
        # not 2-D
        dict(y=np.zeros((4, 4, 1), np.uint8), u=np.zeros((2, 2), np.uint8), v=np.zeros((2, 2), np.uint8)),
        # empty
        dict(y=np.zeros((0, 4), np.uint8), u=np.zeros((0, 2), np.uint8), v=np.zeros((0, 2), np.uint8)),
        # unsupported depth
        dict(y=np.zeros((2, 2), np.uint16), u=np.zeros((1, 1), np.uint16), v=np.zeros((1, 1), np.uint16), bit_depth=17),
        # big-endian samples are not native uint16
        dict(y=np.zeros((2, 2), ">u2"), u=np.zeros((1, 1), ">u2"), v=np.zeros((1, 1), ">u2"), bit_depth=10),
    ],
)
def test_yuvframe_rejects_inconsistent_planes(kwargs):
    with pytest.raises(ValueError):
        YUVFrame(**kwargs)

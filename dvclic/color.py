"""Colour conversion between YUV 4:2:0 and RGB — the one place it is done in dvclic.

Convention, used by every reader, writer, metric and codec:

- matrix: BT.709, ``Kr = 0.2126``, ``Kb = 0.0722``, ``Kg = 1 - Kr - Kb = 0.7152``;
- range: limited ("TV") range. With ``s = 2 ** (bit_depth - 8)``, RGB ``[0, 1]`` maps to
  ``Y in [16 s, 235 s]`` and ``Cb, Cr in [16 s, 240 s]`` centred on ``128 s``
  (8-bit: 16..235 / 128; 10-bit: 64..940 / 512);
- 4:2:0 with centre-sited chroma (JPEG / MPEG-1 siting, y4m ``C420jpeg``): each chroma sample
  sits at the centre of its 2x2 luma block. Downsampling is the 2x2 mean, upsampling is
  bilinear (``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)``), which is
  the interpolation matching that siting;
- odd sizes: chroma planes are ``ceil(H/2) x ceil(W/2)``; the last row/column is replicated
  before the 2x2 mean, and upsampled chroma is cropped back to ``H x W``.

The matrix is applied to every source whatever matrix its file is tagged with (most SD material
is BT.601). A YUV input therefore comes back as YUV in its own space and the YUV round trip is
consistent; only RGB-domain numbers of BT.601 material carry a small hue difference.

Codes outside the nominal range (super-white, super-black) map outside ``[0, 1]`` and are
clamped in RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

KR = 0.2126
KB = 0.0722
KG = 1.0 - KR - KB


def chroma_shape(height: int, width: int) -> tuple[int, int]:
    """Chroma plane shape ``(ceil(H/2), ceil(W/2))`` of an ``H x W`` 4:2:0 picture."""
    return (height + 1) // 2, (width + 1) // 2


def sample_dtype(bit_depth: int) -> np.dtype:
    """numpy dtype of YUV samples: ``uint8`` for 8 bits, native ``uint16`` for 9..16 bits."""
    return np.dtype(np.uint8) if bit_depth == 8 else np.dtype(np.uint16)


@dataclass(frozen=True)
class YUVFrame:
    """One YUV 4:2:0 picture in integer code values (BT.709, limited range; see module docstring).

    y: ``H x W``; u, v: ``ceil(H/2) x ceil(W/2)`` (Cb, Cr).
    bit_depth: 8 -> all planes ``uint8``; 9..16 -> all planes native-order ``uint16`` whose
        values lie in ``[0, 2**bit_depth - 1]`` (the value range is checked by readers, not
        here, to keep construction cheap).

    Raises ValueError in ``__post_init__`` when the shapes or dtypes are inconsistent.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    bit_depth: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.bit_depth, bool) or not isinstance(self.bit_depth, int):
            raise ValueError(f"bit_depth must be an int, got {self.bit_depth!r}")
        if not 8 <= self.bit_depth <= 16:
            raise ValueError(f"bit_depth must be in [8, 16], got {self.bit_depth}")
        dtype = sample_dtype(self.bit_depth)
        for name, plane in (("y", self.y), ("u", self.u), ("v", self.v)):
            if not isinstance(plane, np.ndarray):
                raise ValueError(f"plane {name} must be a numpy array, got {type(plane).__name__}")
            if plane.ndim != 2:
                raise ValueError(f"plane {name} must be 2-D, got shape {plane.shape}")
            if plane.dtype != dtype:
                raise ValueError(
                    f"plane {name} must be {dtype} for bit_depth {self.bit_depth}, got {plane.dtype}"
                )
        height, width = self.y.shape
        if height < 1 or width < 1:
            raise ValueError(f"empty picture: luma shape {self.y.shape}")
        expected = chroma_shape(height, width)
        if self.u.shape != expected or self.v.shape != expected:
            raise ValueError(
                f"chroma planes of a {width}x{height} picture must be {expected}, "
                f"got u {self.u.shape}, v {self.v.shape}"
            )

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y, u, v)``."""
        return self.y, self.u, self.v


def _check_bit_depth(bit_depth: int) -> None:
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, int) or not 8 <= bit_depth <= 16:
        raise ValueError(f"bit_depth must be an int in [8, 16], got {bit_depth!r}")


def yuv420_to_rgb(frame: YUVFrame, *, device: torch.device | str | None = None) -> Tensor:
    """Convert a :class:`YUVFrame` to RGB.

    Returns a ``1 x 3 x H x W`` float32 tensor in ``[0, 1]`` (clamped) on ``device``
    (CPU when None). Chroma is upsampled bilinearly (centre siting), then the BT.709 inverse
    matrix is applied.
    """
    scale = float(1 << (frame.bit_depth - 8))
    height, width = frame.height, frame.width

    def as_float(plane: np.ndarray) -> Tensor:
        return torch.from_numpy(plane.astype(np.float32)).to(device)

    y = (as_float(frame.y) - 16.0 * scale) / (219.0 * scale)
    c = torch.stack([as_float(frame.u), as_float(frame.v)]).unsqueeze(0)
    c = (c - 128.0 * scale) / (224.0 * scale)
    c = F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = c[0, 0, :height, :width], c[0, 1, :height, :width]

    r = y + 2.0 * (1.0 - KR) * cr
    b = y + 2.0 * (1.0 - KB) * cb
    g = (y - KR * r - KB * b) / KG
    return torch.stack([r, g, b]).unsqueeze(0).clamp_(0.0, 1.0)


def rgb_to_yuv420(rgb: Tensor, bit_depth: int) -> YUVFrame:
    """Convert RGB to a :class:`YUVFrame` of the given bit depth.

    rgb: ``1 x 3 x H x W`` floating-point tensor, nominally in ``[0, 1]`` (clamped first);
        any device. Computation is in float32 on that device.
    bit_depth: 8..16.

    The forward BT.709 matrix is applied at full resolution, chroma is the 2x2 mean (odd sizes
    replicate the last row/column first), then values are scaled to limited range, rounded with
    ``torch.round`` (half to even), clamped to ``[0, 2**bit_depth - 1]`` and cast to
    ``uint8`` / ``uint16``. Deterministic for a given device.
    """
    _check_bit_depth(bit_depth)
    if rgb.dim() != 4 or rgb.shape[0] != 1 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be 1 x 3 x H x W, got {tuple(rgb.shape)}")
    if not rgb.is_floating_point():
        raise ValueError(f"rgb must be a floating-point tensor in [0, 1], got {rgb.dtype}")
    height, width = int(rgb.shape[2]), int(rgb.shape[3])
    if height < 1 or width < 1:
        raise ValueError(f"empty picture: {tuple(rgb.shape)}")

    x = rgb.detach().to(torch.float32).clamp(0.0, 1.0)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = KR * r + KG * g + KB * b
    c = torch.cat([(b - y) / (2.0 * (1.0 - KB)), (r - y) / (2.0 * (1.0 - KR))], dim=1)
    if height % 2 or width % 2:
        c = F.pad(c, (0, width % 2, 0, height % 2), mode="replicate")
    c = F.avg_pool2d(c, kernel_size=2, stride=2)

    scale = float(1 << (bit_depth - 8))
    peak = float((1 << bit_depth) - 1)
    y_code = torch.round(y * (219.0 * scale) + 16.0 * scale).clamp_(0.0, peak)
    c_code = torch.round(c * (224.0 * scale) + 128.0 * scale).clamp_(0.0, peak)

    dtype = sample_dtype(bit_depth)

    def to_numpy(plane: Tensor) -> np.ndarray:
        return np.ascontiguousarray(plane.to(torch.int32).cpu().numpy().astype(dtype))

    return YUVFrame(
        y=to_numpy(y_code[0, 0]),
        u=to_numpy(c_code[0, 0]),
        v=to_numpy(c_code[0, 1]),
        bit_depth=bit_depth,
    )

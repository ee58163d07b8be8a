"""Cost volume (correlation) between two feature maps, as in PWC-Net.

For features ``f1, f2`` of shape N x C x H x W and a maximum displacement ``d``::

    out[n, (dy + d) * (2d + 1) + (dx + d), y, x]
        = sum_c f1[n, c, y, x] * f2[n, c, y + dy, x + dx] / C,   |dx|, |dy| <= d

with ``f2`` taken as zero outside the picture; ``dy`` is the slow index. Output:
N x (2d + 1)^2 x H x W.

Two backends compute the same numbers:

- ``"torch"``: pure PyTorch, always available. One multiply-and-reduce over the
  whole tensor per displacement: (2d + 1)^2 vectorised steps, and only one
  N x C x H x W temporary alive at a time (an unfold-based version materialises
  (2d + 1)^2 copies of ``f2`` and measured slower on CPU).
- ``"extension"``: ``spatial_correlation_sampler.SpatialCorrelationSampler``
  (optional, ``pip install dvclic[correlation]``), a fused CPU/CUDA kernel.

``"auto"`` picks the extension when it imports, else the PyTorch path. Both run in
float32 (also under autocast) and return the dtype of ``f1``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Backend = Literal["auto", "torch", "extension"]
_BACKENDS = ("auto", "torch", "extension")


class CorrelationExtensionUnavailableError(ImportError):
    """backend="extension" was requested but spatial_correlation_sampler does not import."""


def _load_extension() -> type[nn.Module]:
    """Import ``SpatialCorrelationSampler`` or raise CorrelationExtensionUnavailableError."""
    try:
        from spatial_correlation_sampler import SpatialCorrelationSampler
    except (ImportError, OSError) as exc:  # OSError: built against another torch ABI
        raise CorrelationExtensionUnavailableError(
            "correlation backend 'extension' needs the optional package "
            "spatial-correlation-sampler (pip install 'dvclic[correlation]'), "
            f"which failed to import: {exc}. Use backend='torch' or 'auto'."
        ) from exc
    return SpatialCorrelationSampler


def extension_available() -> bool:
    """True when the optional ``spatial_correlation_sampler`` extension imports."""
    try:
        _load_extension()
    except CorrelationExtensionUnavailableError:
        return False
    return True


def correlation_torch(f1: Tensor, f2: Tensor, max_displacement: int) -> Tensor:
    """Pure-PyTorch cost volume: N x C x H x W (x2) -> N x (2d+1)^2 x H x W, float32."""
    d = max_displacement
    _, c, h, w = f1.shape
    f1 = f1.float()
    f2 = F.pad(f2.float(), (d, d, d, d))  # zeros outside the picture
    costs = [
        (f1 * f2[:, :, dy : dy + h, dx : dx + w]).sum(dim=1)
        for dy in range(2 * d + 1)
        for dx in range(2 * d + 1)
    ]
    return torch.stack(costs, dim=1) / c


class Correlation(nn.Module):
    """PWC-Net cost volume layer (see module docstring); no learnable parameters.

    Args:
        max_displacement: ``d`` >= 0, in pixels of the feature map.
        backend: "auto" (extension if installed, else torch), "torch", or
            "extension" (raises CorrelationExtensionUnavailableError when missing).

    Raises:
        ValueError: unknown backend or negative ``max_displacement``.
        CorrelationExtensionUnavailableError: backend="extension" without the package.
    """

    def __init__(self, *, max_displacement: int = 4, backend: Backend = "auto") -> None:
        super().__init__()
        if max_displacement < 0:
            raise ValueError(f"max_displacement must be >= 0, got {max_displacement}")
        if backend not in _BACKENDS:
            raise ValueError(f"unknown correlation backend {backend!r}; valid: {', '.join(_BACKENDS)}")
        self.max_displacement = max_displacement
        self.sampler: nn.Module | None = None
        if backend == "extension" or (backend == "auto" and extension_available()):
            sampler_cls = _load_extension()
            self.sampler = sampler_cls(
                kernel_size=1,
                patch_size=2 * max_displacement + 1,
                stride=1,
                padding=0,
                dilation_patch=1,
            )

    @property
    def backend(self) -> str:
        """The backend actually in use: "torch" or "extension"."""
        return "torch" if self.sampler is None else "extension"

    @property
    def out_channels(self) -> int:
        return (2 * self.max_displacement + 1) ** 2

    def forward(self, f1: Tensor, f2: Tensor) -> Tensor:
        """N x C x H x W (x2, same shape) -> N x (2d+1)^2 x H x W in f1's dtype.

        Raises:
            ValueError: if the inputs are not 4-D tensors of the same shape.
        """
        if f1.dim() != 4 or f1.shape != f2.shape:
            raise ValueError(
                f"f1 and f2 must both be N x C x H x W of the same shape, "
                f"got {tuple(f1.shape)} and {tuple(f2.shape)}"
            )
        with torch.autocast(device_type=f1.device.type, enabled=False):
            if self.sampler is None:
                out = correlation_torch(f1, f2, self.max_displacement)
            else:
                n, c, h, w = f1.shape
                # The extension wants contiguous float inputs and returns
                # N x P x P x H x W (dy slow), unnormalised.
                out = self.sampler(f1.float().contiguous(), f2.float().contiguous())
                out = out.reshape(n, self.out_channels, h, w) / c
        return out.to(f1.dtype)

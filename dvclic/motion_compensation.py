"""Motion compensation network (DVC): refines the warped reference.

::

    [warped ref (3), ref (3), flow_hat (2)] ─conv3x3─ C ─res─┬──────────────────────┐
                                             avgpool2 ─res─┬─┤                      │
                                                avgpool2 ─res─ up2 (+) ─res─ up2 (+) ─res─ conv3x3 ─> 3
    pred = warped + output        (output conv zero-initialised: pred starts as warped)

Kept lean (C=32 by default, two scales) because on a P-frame decoder this
network, running at full resolution, dominates the cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class MotionCompensationNet(nn.Module):
    """Small U-Net with residual blocks; input sizes must be multiples of 4."""

    def __init__(self, *, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.head = nn.Conv2d(8, c, 3, padding=1)
        self.enc0, self.enc1, self.enc2 = ResBlock(c), ResBlock(c), ResBlock(c)
        self.dec1, self.dec0 = ResBlock(c), ResBlock(c)
        self.tail = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, warped: Tensor, ref: Tensor, flow: Tensor) -> Tensor:
        """warped, ref: N x 3 x H x W in [0, 1]; flow: N x 2 x H x W pixels -> prediction."""
        f0 = self.enc0(self.head(torch.cat([warped, ref, flow], dim=1)))
        f1 = self.enc1(F.avg_pool2d(f0, 2))
        f2 = self.enc2(F.avg_pool2d(f1, 2))
        d1 = self.dec1(f1 + F.interpolate(f2, scale_factor=2.0, mode="nearest"))
        d0 = self.dec0(f0 + F.interpolate(d1, scale_factor=2.0, mode="nearest"))
        return warped + self.tail(d0)

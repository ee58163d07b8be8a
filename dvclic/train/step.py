"""One training step's loss, as an nn.Module so DDP can wrap it.

The step reuses the model's own forward paths (``ImageCodec.forward`` and
``PFrameCodec.forward``, whose ``predict`` is the same prediction path that
encoding and decoding use). Each sample in a batch has its own quality index
and lambda (variable-rate training).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flow import warp
from flow.dis import DISFlow

from ..metrics import ms_ssim_per_sample
from ..model import VideoCodecModel
from .config import StageConfig


def per_sample_bpp(likelihoods: Mapping[str, Tensor], pixels: int) -> Tensor:
    """Bits per pixel for each sample of a batch (N,)."""
    return sum((-torch.log2(l)).flatten(1).sum(1) for l in likelihoods.values()) / pixels


def per_sample_mse(a: Tensor, b: Tensor) -> Tensor:
    return F.mse_loss(a, b, reduction="none").flatten(1).mean(1)


def per_sample_distortion(a: Tensor, b: Tensor, kind: str) -> Tensor:
    """MSE, or 1 - MS-SSIM (dvclic.metrics), per sample."""
    if kind == "mse":
        return per_sample_mse(a, b)
    return 1.0 - ms_ssim_per_sample(a.clamp(0, 1), b)


class TrainStep(nn.Module):
    """forward(clip N x T x 3 x H x W, quality (N,), lmbda (N,)) -> (loss, aux_loss, metrics)."""

    def __init__(self, model: VideoCodecModel, stage: StageConfig, distortion: str) -> None:
        super().__init__()
        self.model = model
        self.stage = stage
        self.distortion = distortion
        # the classical flow that the ``flow`` term distils into a learned estimator (no parameters)
        self.teacher = DISFlow(preset="medium") if "flow" in stage.loss else None

    def forward(self, clip: Tensor, quality: Tensor, lmbda: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        pixels = clip.shape[-1] * clip.shape[-2]
        if self.stage.task == "intra":
            loss, metrics = self._intra(clip[:, 0], quality, lmbda, pixels)
        else:
            loss, metrics = self._pframes(clip, quality, lmbda, pixels)
        return loss, self.model.aux_loss(), metrics

    def _intra(self, x: Tensor, q: Tensor, lmbda: Tensor, pixels: int) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model.intra(x, q)
        bpp = per_sample_bpp(out.likelihoods, pixels)
        dist = per_sample_distortion(out.x_hat, x, self.distortion)
        w = self.stage.loss
        loss = (w.get("rd", 0.0) * lmbda * dist + w.get("rate", 0.0) * bpp).mean()
        mse = per_sample_mse(out.x_hat.clamp(0, 1), x).mean()
        return loss, {"bpp": bpp.mean().detach(), "psnr": -10 * torch.log10(mse.detach())}

    @torch.no_grad()
    def _intra_reference(self, x: Tensor, q: Tensor) -> Tensor:
        """The first reference: the intra codec's hard-rounded reconstruction."""
        intra = self.model.intra
        was_training = intra.training
        intra.eval()
        ref = intra(x, q).x_hat.clamp(0, 1)
        intra.train(was_training)
        return ref

    def _pframes(self, clip: Tensor, q: Tensor, lmbda: Tensor, pixels: int) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.stage.loss
        pf = self.model.pframe
        ref = self._intra_reference(clip[:, 0], q)
        total = clip.new_zeros(())
        sums = {"bpp": 0.0, "mse": 0.0, "warp_mse": 0.0}
        steps = clip.shape[1] - 1
        for t in range(1, clip.shape[1]):
            cur = clip[:, t]
            if set(w) <= {"warp", "flow"}:  # motion pre-training needs only the estimator
                flow = pf.estimator(cur, ref)
                warped = warp(ref, flow)
                warp_mse = per_sample_mse(warped, cur)
                loss = w.get("warp", 0.0) * lmbda * warp_mse
                if self.teacher is not None:  # endpoint error against the classical flow of the same pair
                    epe = (flow - self.teacher(cur, ref)).norm(dim=1).flatten(1).mean(1)
                    loss = loss + w["flow"] * epe
                    sums["epe"] = sums.get("epe", 0.0) + epe.mean().detach()
                total = total + loss.mean()
                sums["warp_mse"] += warp_mse.mean().detach()
                sums["mse"] += warp_mse.mean().detach()
                ref = warped.clamp(0, 1).detach()
                continue
            out = pf(cur, ref, q)
            motion_bpp = per_sample_bpp(out.motion_likelihoods, pixels)
            bpp = motion_bpp + per_sample_bpp(out.residual_likelihoods, pixels)
            loss = w.get("rate", 0.0) * bpp + w.get("motion_rate", 0.0) * motion_bpp
            if "rd" in w:
                loss = loss + w["rd"] * lmbda * per_sample_distortion(out.x_hat, cur, self.distortion)
            if "pred" in w:
                loss = loss + w["pred"] * lmbda * per_sample_mse(out.pred, cur)
            warp_mse = per_sample_mse(out.warped, cur)
            if "warp" in w:
                loss = loss + w["warp"] * lmbda * warp_mse
            total = total + loss.mean()
            sums["bpp"] += bpp.mean().detach()
            sums["warp_mse"] += warp_mse.mean().detach()
            sums["mse"] += per_sample_mse(out.x_hat.clamp(0, 1), cur).mean().detach()
            ref = out.x_hat.clamp(0, 1)
            if self.stage.detach_reference:
                ref = ref.detach()
        metrics = {k: torch.as_tensor(v / steps) for k, v in sums.items()}
        metrics["psnr"] = -10 * torch.log10(metrics.pop("mse"))
        return total / steps, metrics

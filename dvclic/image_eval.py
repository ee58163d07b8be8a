"""Intra (image) codec evaluation on a folder of pictures, e.g. Kodak.

Each picture is padded to the codec's multiple (replicate), coded with real
rANS bytes, decoded, checked bit-exact against the encoder's reconstruction,
cropped back, and measured: bpp = bytes * 8 / (H * W) of the *unpadded*
picture, PSNR on RGB in [0, 1] (peak 1, i.e. 255 on 8-bit). Optional SGA
refinement shows what encode-time search buys on the same weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .checkpoint import load_weights
from .errors import InputError
from .metrics import ms_ssim_rgb, psnr_rgb
from .refinement import make_refiner
from .train.data import IMAGE_SUFFIXES, load_rgb
from .video.padding import crop_to, pad_to_multiple


@dataclass(frozen=True)
class ImagePoint:
    quality: int
    bpp: float
    psnr_rgb: float
    ms_ssim: float
    rd_cost: float
    encode_s: float
    decode_s: float


def evaluate_images(weights: str, images: str | Path, *, qualities: Sequence[int] | None = None,
                    refine_steps: int = 0, device: str = "cpu", limit: int | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Mean bpp / PSNR / MS-SSIM per quality of the model's intra codec over a folder."""
    loaded = load_weights(weights, device=device)
    codec = loaded.model.intra
    folder = Path(images)
    if not folder.is_dir():
        raise InputError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise InputError(f"no images in {folder}")
    qualities = list(range(codec.num_qualities)) if qualities is None else list(qualities)
    lambdas = loaded.config.lambdas
    refine = make_refiner(refine_steps, lambdas)
    points = []
    for q in qualities:
        rows = []
        for f in files:
            x = load_rgb(f)[None].to(device)
            h, w = x.shape[-2:]
            xp = pad_to_multiple(x, codec.size_multiple)
            t0 = time.perf_counter()
            with torch.no_grad():
                coded = refine(codec, xp, q) if refine else codec.compress(xp, q)
            t1 = time.perf_counter()
            with torch.no_grad():
                dec = codec.decompress(coded.strings, tuple(xp.shape[-2:]), q)
            t2 = time.perf_counter()
            if not torch.equal(dec, coded.x_hat):
                raise RuntimeError(f"{f.name}: decoder output differs from the encoder's reconstruction")
            x_hat = crop_to(dec, h, w).clamp(0, 1)
            bpp = coded.num_bytes * 8 / (h * w)
            mse = torch.mean((x_hat - x) ** 2).item()
            rows.append((bpp, psnr_rgb(x_hat, x), ms_ssim_rgb(x_hat, x), bpp + lambdas[q] * mse, t1 - t0, t2 - t1))
            if progress:
                progress(f"q{q} {f.name}: {bpp:.4f} bpp {rows[-1][1]:.2f} dB")
        n = len(rows)
        points.append(ImagePoint(q, *(sum(r[i] for r in rows) / n for i in range(6))))
    return {
        "weights": str(loaded.path), "weights_sha256": loaded.sha256.hex(), "intra_codec": loaded.config.intra.name,
        "images": str(folder), "count": len(files), "refine_steps": refine_steps, "device": device,
        "protocol": "RGB PSNR (peak 1.0), bpp = real bytes*8/(H*W), replicate padding to the codec multiple, "
                    "mean over images per quality",
        "points": [p.__dict__ for p in points],
    }

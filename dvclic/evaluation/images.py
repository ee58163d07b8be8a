"""Intra (image) codec evaluation on a folder of pictures, e.g. Kodak.

Each picture is padded to the codec's multiple (replicate), coded with real
rANS bytes, decoded, checked bit-exact against the encoder's reconstruction,
cropped back, and measured: bpp = bytes * 8 / (H * W) of the *unpadded*
picture, PSNR on RGB in [0, 1] (peak 1, i.e. 255 on 8-bit). Optional encode-time
refinement (SGA; latent overfitting, LOF, for codecs with a context model; one or several
step counts) shows what encode-time search buys on the same weights, with the BD-rate against
plain rounding. ``profile`` picks the entropy-model profile of codecs that have profiles
(``msp``: the number of decoding passes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from image_codecs import CompressedImage, ImageCodec
from image_codecs.refine import refine_latents_at
from image_codecs.transform_codec import TransformCodec

from ..errors import InputError
from ..metrics import ms_ssim_rgb, psnr_rgb
from ..params import ParameterError, check_refine_precision
from ..refinement import codec_profiles
from ..store import ModelStore
from ..train.data import IMAGE_SUFFIXES, load_rgb
from ..video.padding import crop_to, pad_to_multiple
from .bdrate import bd_rate


@dataclass(frozen=True)
class ImagePoint:
    quality: int
    bpp: float
    psnr_rgb: float
    ms_ssim: float
    rd_cost: float
    encode_s: float
    decode_s: float


def evaluate_images(weights: str | None, images: str | Path, *, qualities: Sequence[int] | None = None,
                    refine_steps: Sequence[int] = (0,), device: str = "cpu", limit: int | None = None,
                    progress: Callable[[str], None] | None = None, profile: int | None = None,
                    store: ModelStore | None = None, refine_precision: str = "float32") -> dict:
    """Mean bpp / PSNR / MS-SSIM per quality of the model's intra codec over a folder.

    One run per entry of ``refine_steps`` (0: plain rounding, k > 0: k SGA steps
    with the model's lambda for that quality). All k > 0 come from one refinement
    of ``max(refine_steps)`` steps per picture (``refine_latents_at``), so the
    k-step result is exactly what a separate k-step encode gives, and its
    ``encode_s`` is the time at which that run would have stopped. With 0 in the
    list, each refined run also gets its BD-rate against the unrefined one. ``weights``: any
    reference ``store`` resolves (None: the shipped default). ``refine_precision``: of the
    refinement steps, ``"float32"`` or ``"bfloat16"`` (``image_codecs.refine``; an encoder speed setting).
    """
    loaded = (store or ModelStore(device=device)).load(weights)
    codec = loaded.model.intra
    options: dict = {}
    if profile is not None:
        offered = codec_profiles(codec)
        if profile not in offered:
            raise ParameterError("profile", f"the intra codec {loaded.config.intra.name!r} offers "
                                            f"{list(offered) or 'no profiles'}, got {profile}")
        options["profile"] = profile
    folder = Path(images)
    if limit is not None and limit < 1:
        raise ParameterError("limit", f"must be >= 1, got {limit}")
    if not folder.is_dir():
        raise InputError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise InputError(f"no images in {folder}")
    qualities = list(range(codec.num_qualities)) if qualities is None else list(qualities)
    for q in qualities:
        if not 0 <= q < codec.num_qualities:
            raise InputError(f"quality {q} out of range 0..{codec.num_qualities - 1}")
    steps = list(dict.fromkeys(int(k) for k in refine_steps))
    if not steps or min(steps) < 0:
        raise ParameterError("refine_steps", f"must be >= 0, got {list(refine_steps)}")
    refined = sorted(k for k in steps if k > 0)
    check_refine_precision(refine_precision)
    if refined and not isinstance(codec, TransformCodec):
        raise InputError(f"{type(codec).__name__} does not support latent refinement")
    lambdas = loaded.config.lambdas
    rows: dict[int, dict[int, list[tuple[float, ...]]]] = {k: {q: [] for q in qualities} for k in steps}
    for q in qualities:
        for f in files:
            x = load_rgb(f)[None].to(device)
            h, w = x.shape[-2:]
            xp = pad_to_multiple(x, codec.size_multiple)
            for k, (coded, encode_s) in _encode(codec, xp, q, steps, refined, float(lambdas[q]), progress,
                                                f"q{q} {f.name}", options, refine_precision).items():
                t0 = time.perf_counter()
                with torch.no_grad():
                    dec = codec.decompress(coded.strings, tuple(xp.shape[-2:]), q)
                decode_s = time.perf_counter() - t0
                if not torch.equal(dec, coded.x_hat):
                    raise RuntimeError(f"{f.name}: decoder output differs from the encoder's reconstruction")
                x_hat = crop_to(dec, h, w).clamp(0, 1)
                bpp = coded.num_bytes * 8 / (h * w)
                mse = torch.mean((x_hat - x) ** 2).item()
                rows[k][q].append((bpp, psnr_rgb(x_hat, x), ms_ssim_rgb(x_hat, x), bpp + lambdas[q] * mse,
                                   encode_s, decode_s))
                if progress:
                    progress(f"q{q} {f.name} refine {k}: {bpp:.4f} bpp {rows[k][q][-1][1]:.2f} dB")
    points = {k: [ImagePoint(q, *(sum(r[i] for r in rows[k][q]) / len(files) for i in range(6))) for q in qualities]
              for k in steps}
    runs = []
    for k in steps:
        run: dict = {"refine_steps": k, "points": [p.__dict__ for p in points[k]]}
        if k > 0 and 0 in points:
            run["bd_rate_psnr_rgb_vs_unrefined"] = bd_rate([(p.bpp, p.psnr_rgb) for p in points[0]],
                                                           [(p.bpp, p.psnr_rgb) for p in points[k]]).to_dict()
        runs.append(run)
    return {
        "weights": str(loaded.path), "weights_sha256": loaded.sha256.hex(), "intra_codec": loaded.config.intra.name,
        "images": str(folder), "count": len(files), "names": [f.name for f in files], "refine_steps": steps,
        "device": device, "profile": profile, "refine_precision": refine_precision,
        "protocol": "RGB PSNR (peak 1.0), bpp = real bytes*8/(H*W), replicate padding to the codec multiple, "
                    "mean over images per quality; rd_cost = bpp + lambda*MSE with the model's lambda",
        "runs": runs,
    }


def compare_results(anchor: dict, tests: Sequence[dict]) -> list[dict]:
    """BD-rate (PSNR-RGB) of every run of every ``tests`` result against the unrefined run of
    ``anchor``; each argument is an :func:`evaluate_images` result (e.g. loaded from its JSON)."""
    base = _unrefined(anchor)
    rows = []
    for test in tests:
        for run in _runs(test):
            test_points = [(p["bpp"], p["psnr_rgb"]) for p in run["points"]]
            rows.append({"weights": test.get("weights"), "intra_codec": test.get("intra_codec"),
                         "refine_steps": run["refine_steps"], "count": test.get("count"),
                         "bd_rate_psnr_rgb": bd_rate(base, test_points).to_dict()})
    return rows


def _runs(result: dict) -> list[dict]:
    try:
        runs = result["runs"]
        for run in runs:
            for p in run["points"]:
                float(p["bpp"]), float(p["psnr_rgb"])
        return runs
    except (KeyError, TypeError, ValueError):
        raise InputError("not an eval-images result (expected 'runs' with bpp/psnr_rgb points)") from None


def _unrefined(result: dict) -> list[tuple[float, float]]:
    for run in _runs(result):
        if run["refine_steps"] == 0:
            return [(p["bpp"], p["psnr_rgb"]) for p in run["points"]]
    raise InputError("the anchor result has no unrefined run (refine_steps 0)")


def _encode(codec: ImageCodec, x: torch.Tensor, quality: int, steps: list[int], refined: list[int], lmbda: float,
            progress: Callable[[str], None] | None, label: str,
            options: dict, precision: str = "float32") -> dict[int, tuple[CompressedImage, float]]:
    """{k: (compressed picture, encode seconds)} for every k in ``steps`` (0: plain compress)."""
    out: dict[int, tuple[CompressedImage, float]] = {}
    if 0 in steps:
        t0 = time.perf_counter()
        with torch.no_grad():
            coded = codec.compress(x, quality, **options)
        out[0] = (coded, time.perf_counter() - t0)
    if refined:
        assert isinstance(codec, TransformCodec)
        stamps: dict[int, float] = {}

        def stamp(step: int, total: int, loss: float) -> None:
            stamps[step] = time.perf_counter()
            if progress and step % 250 == 0:
                progress(f"{label}: SGA step {step}/{total}, loss {loss:.4f}")

        t0 = time.perf_counter()
        latents = refine_latents_at(codec, x, quality, lmbda=lmbda, steps=refined, progress=stamp,
                                    precision=precision, **options)
        for k, (y, z) in zip(refined, latents):
            t1 = time.perf_counter()
            with torch.no_grad():
                coded = codec.compress_latents(y, z, quality, **options)
            out[k] = (coded, stamps[k] - t0 + time.perf_counter() - t1)
    return {k: out[k] for k in steps}

"""Real pictures for the benchmark, resized to the size being measured.

Search order for a still picture: an explicit path (``--picture``, e.g. a Kodak image); the
first frame of a clip in ``dvclic/samples/``; random noise (a last resort, stated in the output
because entropy-coding time depends on content). For a video benchmark, consecutive frames of an
explicit clip or of a clip in ``dvclic/samples/``; else a still picture shifted by 2 pixels per
frame. Pictures are resized (bilinear, antialiased) to the requested size; any
upscaling is stated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ..color import yuv420_to_rgb
from ..params import ParameterError
from ..video import open_video

PACKAGE = Path(__file__).resolve().parents[1]
VIDEO_SUFFIXES = (".y4m", ".mp4", ".mkv", ".avi", ".mov", ".webm")


def _resize(rgb: Tensor, height: int, width: int) -> tuple[Tensor, str]:
    h, w = rgb.shape[-2:]
    if (h, w) == (height, width):
        return rgb, f"{w}x{h}, not resized"
    out = F.interpolate(rgb, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    verb = "upscaled" if height * width > h * w else "resized"
    return out.clamp(0.0, 1.0), f"{verb} from {w}x{h} to {width}x{height} (WxH, bilinear)"


def _image(path: Path) -> Tensor:
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)


def _sample_clips() -> list[Path]:
    folder = PACKAGE / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if folder.is_dir() else []


def _video_frames(path: Path, count: int) -> list[Tensor]:
    with open_video(path, max_frames=count) as src:
        return [yuv420_to_rgb(f) for f in src]


def bench_picture(height: int, width: int, path: str | None = None) -> tuple[Tensor, str]:
    """A ``1 x 3 x height x width`` RGB picture in [0, 1] and a sentence saying where it came from."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ParameterError("picture", f"{p}: file not found")
        rgb = _image(p) if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp") else _video_frames(p, 1)[0]
        out, how = _resize(rgb, height, width)
        return out, f"{p.name}, {how}"
    clips = _sample_clips()
    if clips:
        out, how = _resize(_video_frames(clips[0], 1)[0], height, width)
        return out, f"first frame of {clips[0].name}, {how}"
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, height, width, generator=g), "random noise (no real picture found; entropy-coding time is content dependent)"


def bench_frames(count: int, height: int, width: int, path: str | None = None) -> tuple[list[Tensor], str]:
    """``count`` consecutive RGB frames (each ``1 x 3 x H x W``) and where they came from."""
    if path is not None and Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
        still, how = bench_picture(height, width, path)
        return [torch.roll(still, shifts=(0, 2 * i), dims=(2, 3)) for i in range(count)], \
            f"{how}, shifted right by 2 px per frame"
    candidates = [Path(path)] if path is not None else _sample_clips()
    for clip in candidates:
        if not clip.is_file():
            raise ParameterError("picture", f"{clip}: file not found")
        frames = _video_frames(clip, count)
        if len(frames) >= count:
            resized = [_resize(f, height, width) for f in frames]
            return [f for f, _ in resized], f"{count} frames of {clip.name}, {resized[0][1]}"
    still, how = bench_picture(height, width)
    shifted = [torch.roll(still, shifts=(0, 2 * i), dims=(2, 3)) for i in range(count)]
    return shifted, f"{how}, shifted right by 2 px per frame (no real clip found)"

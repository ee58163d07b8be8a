"""A packed training subset: patches of a training config's pictures, small enough to travel.

A lent GPU machine receives the working tree and at most 64 MiB in all, and reaches no data
(README, "Training on a lent GPU"). :func:`pack_pictures` turns the picture sources of a training
config (``images``, ``frames`` and ``vimeo`` kinds; ``video`` sources are left out, since they need
PyAV) into one folder of JPEG patches that the ``images`` data kind reads, under a byte budget:

- the pictures of every source (each dataset's ``pictures()``: every image, the first frame of each
  clip start, three frames of each Vimeo septuplet) are shuffled together with ``seed`` and taken in
  that order until the budget is spent (one patch per picture, so every picture counts once);
- each picture is shrunk by up to ``shrink`` (never below ``min_side`` on its short side), which
  removes most of the sources' JPEG/H.264 artefacts as the training recipe's random downscaling does,
  and a ``patch`` x ``patch`` window (smaller where the picture is) is cut at a seeded position;
- patches are written as JPEG with 4:4:4 chroma at ``quality``, and ``pack.json`` records, for each
  patch, the source file, shrink factor and window, plus the settings and the sources' specs.

The folder is built under a temporary name and renamed into place, so a stopped run leaves nothing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..outputs import create_temp_dir
from .config import DataSpec
from .engine import build_dataset

PACKABLE_KINDS = ("images", "frames", "vimeo")


def _patch(path: Path, rng: random.Random, *, patch: int, shrink: float, min_side: int
           ) -> tuple[Image.Image, float, list[int]] | None:
    try:
        with Image.open(path) as im:
            picture = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read training picture {path}: {exc}") from None
    w, h = picture.size
    if min(w, h) < min_side:
        return None
    factor = max(1.0, min(shrink, min(w, h) / min_side))
    if factor > 1.0:
        picture = picture.resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.LANCZOS)
        w, h = picture.size
    pw, ph = min(patch, w), min(patch, h)
    left, top = rng.randint(0, w - pw), rng.randint(0, h - ph)
    return picture.crop((left, top, left + pw, top + ph)), factor, [left, top, pw, ph]


def pack_pictures(specs: Sequence[DataSpec], dest: str | Path, *, max_bytes: int, patch: int = 384,
                  shrink: float = 2.0, min_side: int = 256, quality: int = 92, seed: int = 0) -> dict[str, Any]:
    """Write the packed folder ``dest`` (new, or empty) and return its summary (see the module docstring)."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError(f"{dest}: exists and is not an empty folder")
    if max_bytes < 1 or patch < min_side or min_side < 16 or shrink < 1.0 or not 1 <= quality <= 100:
        raise InputError("pack settings: need max bytes >= 1, patch >= min side >= 16, shrink >= 1, quality 1..100")
    packable = [s for s in specs if s.kind in PACKABLE_KINDS]
    if not packable:
        raise InputError(f"no packable data source (packable kinds: {', '.join(PACKABLE_KINDS)})")
    # The sources list their own pictures (the same files, exclusions and checks as in training).
    sources = build_dataset(tuple(packable), frames=1, crop=min_side, seed=seed, train=False)
    pictures = sorted({f for part in sources.datasets for f in part.pictures()})
    rng = random.Random(seed)
    rng.shuffle(pictures)
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = create_temp_dir(dest)
    entries: list[dict[str, Any]] = []
    used = 0
    try:
        for source in pictures:
            cut = _patch(source, rng, patch=patch, shrink=shrink, min_side=min_side)
            if cut is None:
                continue
            image, factor, box = cut
            name = f"{len(entries):05d}.jpg"
            image.save(temp / name, format="JPEG", quality=quality, subsampling=0)
            size = (temp / name).stat().st_size
            if used + size > max_bytes:
                (temp / name).unlink()
                break
            used += size
            entries.append({"file": name, "source": str(source), "shrink": round(factor, 4), "box": box})
        if not entries:
            raise InputError(f"no patch fits in {max_bytes} bytes")
        summary = {
            "patches": len(entries), "bytes": used, "candidates": len(pictures), "patch": patch,
            "shrink": shrink, "min_side": min_side, "quality": quality, "seed": seed,
            "sources": [{"kind": s.kind, **dict(s.params)} for s in packable],
            "left_out": [{"kind": s.kind, **dict(s.params)} for s in specs if s.kind not in PACKABLE_KINDS],
        }
        (temp / "pack.json").write_text(json.dumps({**summary, "entries": entries}, indent=1))
        if dest.exists():
            dest.rmdir()
        os.replace(temp, dest)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return {"dest": str(dest), **summary}

"""Training data: Vimeo-90k septuplets, image folders, frame folders, and clips from video files.

Every dataset returns clips as float tensors ``T x 3 x H x W`` in [0, 1] (T = 1
for image datasets). Augmentation (random downscaling, random crop,
horizontal/vertical flips, temporal reversal; random frame steps in the
sources that hold frames on disk) draws from a generator seeded by
``(seed, epoch, index)``,
so a resumed run sees exactly the batches an uninterrupted run would, whatever
the worker count.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, DistributedSampler

from ..color import yuv420_to_rgb
from ..errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def load_rgb(path: Path) -> Tensor:
    """Read an image file as 3 x H x W float in [0, 1]; InputError names a bad file."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise InputError(f"training image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read training image {path}: {exc}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{epoch}/{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def random_step(max_step: int, frames: int, available: int, g: torch.Generator) -> int:
    """A frame step in ``1..max_step`` drawn from ``g``, capped so ``frames`` frames fit in ``available``."""
    cap = max(1, min(max_step, (available - 1) // max(frames - 1, 1)))
    return 1 if cap == 1 else int(torch.randint(1, cap + 1, (1,), generator=g))


@dataclass(frozen=True)
class Augment:
    """Random downscaling, random crop (pads by replication if the clip is smaller), flips, reversal.

    ``downscale = (lo, hi)``: the clip is first shrunk by a factor drawn log-uniformly
    from [lo, hi] (antialiased bilinear; never below the crop size). Shrinking
    photos and camera clips by about 2x removes most of their JPEG/H.264 artefacts
    and shows the codec more structure per crop; (1, 1) leaves sizes alone.
    """

    crop: int = 256
    flips: bool = True
    reverse: bool = True
    downscale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.downscale
        if not 1.0 <= lo <= hi:
            raise ValueError(f"downscale must be (lo, hi) with 1 <= lo <= hi, got {self.downscale}")

    def _shrink(self, clip: Tensor, g: torch.Generator) -> Tensor:
        lo, hi = self.downscale
        if hi == 1.0:
            return clip
        u = float(torch.rand(1, generator=g))
        factor = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        h, w = clip.shape[-2:]
        scale = max(1.0 / factor, self.crop / min(h, w))
        if scale >= 1.0:
            return clip
        size = (max(self.crop, round(h * scale)), max(self.crop, round(w * scale)))
        out = torch.nn.functional.interpolate(clip, size=size, mode="bilinear", antialias=True, align_corners=False)
        return out.clamp_(0.0, 1.0)

    def __call__(self, clip: Tensor, g: torch.Generator) -> Tensor:
        clip = self._shrink(clip, g)
        t, c, h, w = clip.shape
        if h < self.crop or w < self.crop:
            ph, pw = max(0, self.crop - h), max(0, self.crop - w)
            clip = torch.nn.functional.pad(clip, (0, pw, 0, ph), mode="replicate")
            h, w = clip.shape[-2:]
        top = int(torch.randint(0, h - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.crop + 1, (1,), generator=g))
        clip = clip[..., top:top + self.crop, left:left + self.crop]
        flips = torch.rand(3, generator=g)
        if self.flips and flips[0] < 0.5:
            clip = clip.flip(-1)
        if self.flips and flips[1] < 0.5:
            clip = clip.flip(-2)
        if self.reverse and flips[2] < 0.5:
            clip = clip.flip(0)
        return clip.contiguous()


class EpochDataset(Dataset):
    """Base: ``__getitem__`` is deterministic given (seed, epoch, index)."""

    def __init__(self, *, augment: Augment, seed: int = 0) -> None:
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load_clip(self, index: int, g: torch.Generator) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tensor:
        g = sample_generator(self.seed, self.epoch, index)
        return self.augment(self.load_clip(index, g), g)


class VimeoSeptuplets(EpochDataset):
    """Vimeo-90k septuplet layout: ``root/sequences/XXXXX/YYYY/im1..im7.png`` plus
    ``root/sep_trainlist.txt`` / ``sep_testlist.txt`` (one ``XXXXX/YYYY`` per line).

    Each item is ``frames`` consecutive pictures starting at a random offset
    within the septuplet (frames=2 gives pairs, up to 7).
    """

    def __init__(self, root: str | Path, *, split: str = "train", frames: int = 2, augment: Augment,
                 seed: int = 0, max_step: int = 1) -> None:
        super().__init__(augment=augment, seed=seed)
        root = Path(root)
        if max_step < 1:
            raise InputError(f"max_step must be >= 1, got {max_step}")
        self.max_step = max_step
        if not 1 <= frames <= 7:
            raise InputError(f"vimeo clips have 1..7 frames, asked for {frames}")
        list_file = root / {"train": "sep_trainlist.txt", "test": "sep_testlist.txt"}[split]
        if not list_file.is_file():
            raise InputError(f"Vimeo-90k list not found: {list_file}")
        names = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
        if not names:
            raise InputError(f"Vimeo-90k list is empty: {list_file}")
        self.dirs = [root / "sequences" / n for n in names]
        for d in self.dirs:
            if not d.is_dir():
                raise InputError(f"Vimeo-90k sequence listed in {list_file.name} is missing: {d}")
        self.frames = frames

    def __len__(self) -> int:
        return len(self.dirs)

    def pictures(self) -> list[Path]:
        """Still pictures of this source: the first, middle and last frame of each septuplet."""
        return [d / f"im{k}.png" for d in self.dirs for k in (1, 4, 7)]

    def load_clip(self, index: int, g: torch.Generator) -> Tensor:
        if self.max_step == 1:  # the draw of the first releases, kept so their runs stay reproducible
            start, step = int(torch.randint(1, 8 - self.frames + 1, (1,), generator=g)), 1
        else:
            step = random_step(self.max_step, self.frames, 7, g)
            start = int(torch.randint(1, 8 - (self.frames - 1) * step, (1,), generator=g))
        d = self.dirs[index]
        return torch.stack([load_rgb(d / f"im{start + i * step}.png") for i in range(self.frames)])


class ImageFolder(EpochDataset):
    """All images under a folder (recursively), each a 1-frame clip."""

    def __init__(self, root: str | Path, *, augment: Augment, seed: int = 0,
                 exclude: Sequence[str] = ()) -> None:
        super().__init__(augment=augment, seed=seed)
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"image folder not found: {root}")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                            and not any(x in str(p) for x in exclude))
        if not self.files:
            raise InputError(f"no images found under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def pictures(self) -> list[Path]:
        """Still pictures of this source: every image."""
        return list(self.files)

    def load_clip(self, index: int, g: torch.Generator) -> Tensor:
        return load_rgb(self.files[index])[None]


class FrameFolders(EpochDataset):
    """Folders of consecutive frames (``00000.jpg``, ``00001.jpg``, ... sorted by name).

    ``root`` is one such folder or a folder of them. Clips of ``frames`` frames
    start every ``stride`` frames; each item draws a frame step in ``1..max_step``
    (capped so the clip fits) and reads its frames from disk.
    """

    def __init__(self, root: str | Path, *, frames: int = 2, stride: int = 4, max_step: int = 1,
                 augment: Augment, seed: int = 0) -> None:
        super().__init__(augment=augment, seed=seed)
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"frame folder not found: {root}")
        if frames < 1 or stride < 1 or max_step < 1:
            raise InputError("frames, stride and max_step must be >= 1")
        folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
        self.frames, self.max_step = frames, max_step
        self.items: list[tuple[list[Path], int]] = []
        for folder in folders:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.items += [(files, start) for start in range(0, len(files) - frames + 1, stride)]
        if not self.items:
            raise InputError(f"no folder under {root} holds {frames} consecutive frames")

    def __len__(self) -> int:
        return len(self.items)

    def pictures(self) -> list[Path]:
        """Still pictures of this source: the first frame of each clip start (every ``stride``-th frame)."""
        return [files[start] for files, start in self.items]

    def load_clip(self, index: int, g: torch.Generator) -> Tensor:
        files, start = self.items[index]
        step = random_step(self.max_step, self.frames, len(files) - start, g)
        return torch.stack([load_rgb(files[start + i * step]) for i in range(self.frames)])


class VideoClips(EpochDataset):
    """Clips of ``frames`` consecutive frames sampled from a video file PyAV (or the
    raw .yuv reader) opens. Clips start every ``stride`` frames; they are decoded
    once at construction and kept as uint8 RGB (bounded by ``max_clips``), since
    random access into most containers is slow and imprecise."""

    def __init__(self, path: str | Path, *, frames: int = 2, stride: int = 8, max_clips: int = 64,
                 augment: Augment, seed: int = 0) -> None:
        super().__init__(augment=augment, seed=seed)
        from ..video import open_video

        if frames < 1 or stride < 1:
            raise InputError("frames and stride must be >= 1")
        clips: list[Tensor] = []
        window: list[Tensor] = []
        with open_video(path) as src:
            for i, yuv in enumerate(src):
                if len(clips) >= max_clips:
                    break
                if i % stride < frames:
                    window.append((yuv420_to_rgb(yuv)[0] * 255).round().to(torch.uint8))
                    if len(window) == frames:
                        clips.append(torch.stack(window))
                        window = []
        if not clips:
            raise InputError(f"{path}: too few frames for a {frames}-frame clip")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def load_clip(self, index: int, g: torch.Generator) -> Tensor:
        return self.clips[index].float() / 255.0


class Mixture(ConcatDataset):
    """Concatenation that forwards ``set_epoch`` to its parts."""

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            d.set_epoch(epoch)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch (for --resume)."""

    def __init__(self, dataset: Dataset, *, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def __iter__(self):  # noqa: ANN204
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return super().__len__() - self.start

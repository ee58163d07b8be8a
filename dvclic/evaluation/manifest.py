"""Dataset manifests (``configs/datasets/*.yaml``): which raw sequences an evaluation codes.

::

    name: hevc-d
    description: JCT-VC class D (416x240), common test conditions
    sequences:
      - {name: BasketballPass, class: HEVC-D, file: BasketballPass_416x240_50.yuv,
         width: 416, height: 240, fps: 50, frames: 500, bit_depth: 8}

Every sequence is a raw planar YUV 4:2:0 file (8-bit, or 10-bit little-endian in 16-bit words)
under a root folder the user passes. :func:`resolve_manifest` checks *every* file (present, a
whole number of frames, enough frames) before any coding starts and raises one
:class:`ManifestError` that lists all problems. Unknown keys are errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError, check_mapping, load_yaml
from ..video.raw_yuv import frame_num_bytes


class ManifestError(ConfigError):
    """A manifest is malformed, or the files it names are missing or of the wrong size."""


_TOP_KEYS = {"name", "description", "sequences"}
_SEQ_KEYS = {"name", "class", "file", "width", "height", "fps", "frames", "bit_depth"}


@dataclass(frozen=True)
class SequenceSpec:
    """One raw sequence of a manifest.

    name: unique within the manifest (results are keyed by it).
    cls: class it is averaged into (``class`` in YAML), e.g. ``UVG`` or ``HEVC-B``.
    file: path relative to the root folder.
    width, height: luma size in pixels; fps: exact frame rate; frames: frames in the file;
    bit_depth: 8 or 10.
    """

    name: str
    cls: str
    file: str
    width: int
    height: int
    fps: Fraction
    frames: int
    bit_depth: int

    @property
    def frame_bytes(self) -> int:
        return frame_num_bytes(self.width, self.height, self.bit_depth)

    def frames_used(self, frames: int | None) -> int:
        """Frames an evaluation codes: all of them (None), or at most ``frames``."""
        return self.frames if frames is None else min(frames, self.frames)


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str
    sequences: tuple[SequenceSpec, ...]
    source: str

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in first-appearance order."""
        return tuple(dict.fromkeys(s.cls for s in self.sequences))


@dataclass(frozen=True)
class ResolvedSequence:
    """A sequence whose file was found and checked; ``frames`` is what will be coded."""

    spec: SequenceSpec
    path: Path
    frames: int


def _positive_int(raw: Mapping[str, Any], key: str, where: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ManifestError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def _sequence(raw: Any, where: str) -> SequenceSpec:
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{where}: expected a mapping, got {raw!r}")
    unknown = set(raw) - _SEQ_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}; valid keys: {sorted(_SEQ_KEYS)}")
    missing = _SEQ_KEYS - set(raw)
    if missing:
        raise ManifestError(f"{where}: missing keys {sorted(missing)}")
    for key in ("name", "class", "file"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise ManifestError(f"{where}: {key} must be a non-empty string, got {raw[key]!r}")
    try:
        fps = Fraction(str(raw["fps"]))
    except (ValueError, ZeroDivisionError):
        raise ManifestError(f"{where}: fps must be a number like 50 or 30000/1001, got {raw['fps']!r}") from None
    if fps <= 0:
        raise ManifestError(f"{where}: fps must be positive, got {raw['fps']!r}")
    bit_depth = raw["bit_depth"]
    if bit_depth not in (8, 10) or isinstance(bit_depth, bool):
        raise ManifestError(f"{where}: bit_depth must be 8 or 10, got {bit_depth!r}")
    return SequenceSpec(
        name=raw["name"], cls=raw["class"], file=raw["file"],
        width=_positive_int(raw, "width", where), height=_positive_int(raw, "height", where),
        fps=fps, frames=_positive_int(raw, "frames", where), bit_depth=int(bit_depth),
    )


def manifest_from_dict(raw: Any, source: str = "<dict>") -> Manifest:
    """Validate a parsed manifest; raises ManifestError naming the problem."""
    check_mapping(raw, _TOP_KEYS, what="a dataset manifest", source=source, error=ManifestError)
    if "name" not in raw or "sequences" not in raw:
        raise ManifestError(f"{source}: needs 'name' and 'sequences'")
    seqs = raw["sequences"]
    if not isinstance(seqs, list) or not seqs:
        raise ManifestError(f"{source}: 'sequences' must be a non-empty list")
    specs = tuple(_sequence(s, f"{source}: sequences[{i}]") for i, s in enumerate(seqs))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ManifestError(f"{source}: duplicate sequence names {dupes}")
    return Manifest(name=str(raw["name"]), description=str(raw.get("description", "")), sequences=specs,
                    source=source)


def load_manifest(path: str | Path) -> Manifest:
    try:
        raw = load_yaml(path)
    except ConfigError as exc:
        raise ManifestError(str(exc)) from None
    return manifest_from_dict(raw, str(path))


def resolve_manifest(manifest: Manifest, root: str | Path, *, frames: int | None = None) -> list[ResolvedSequence]:
    """Find and check every file under ``root``; raise one ManifestError listing all problems.

    frames: code at most this many frames of each sequence (None: all). A file must hold a whole
    number of frames; with ``frames=None`` it must hold exactly the manifest's frame count, otherwise
    at least the frames that will be coded.
    """
    base = Path(root)
    if not base.is_dir():
        raise ManifestError(f"--root {base}: not a folder")
    if frames is not None and frames < 1:
        raise ManifestError(f"frames must be >= 1, got {frames}")
    problems: list[str] = []
    resolved: list[ResolvedSequence] = []
    for spec in manifest.sequences:
        path = base / spec.file
        used = spec.frames_used(frames)
        expected = spec.frames * spec.frame_bytes
        if not path.is_file():
            problems.append(f"{spec.name}: missing file {path}")
            continue
        size = path.stat().st_size
        geometry = f"{spec.width}x{spec.height} {spec.bit_depth}-bit 4:2:0, {spec.frame_bytes} bytes per frame"
        if size % spec.frame_bytes:
            problems.append(f"{spec.name}: {path} is {size} bytes, not a whole number of frames ({geometry}); "
                            f"expected {expected} bytes for {spec.frames} frames")
        elif frames is None and size != expected:
            problems.append(f"{spec.name}: {path} is {size} bytes ({size // spec.frame_bytes} frames), "
                            f"expected {expected} bytes ({spec.frames} frames, {geometry})")
        elif size // spec.frame_bytes < used:
            problems.append(f"{spec.name}: {path} holds {size // spec.frame_bytes} frames, {used} needed ({geometry})")
        else:
            resolved.append(ResolvedSequence(spec=spec, path=path, frames=used))
    if problems:
        lines = "; ".join(problems)
        raise ManifestError(f"{manifest.source}: {len(problems)} problem(s) with the files under {base}: {lines}")
    return resolved

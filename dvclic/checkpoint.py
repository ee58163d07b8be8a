"""Shipped/trained weights: config + state dict (+ entropy tables) in one file.

A weights file is a ``torch.save`` dict::

    {"format": "dvclic-weights", "version": 2, "config": <ModelConfig.to_dict()>,
     "packed": <dvclic.compact.pack_state(...)>, "provenance": {...}}

(version 1 files, with a plain fp16 ``"state_dict"``, still load). Storage is
``fp32``, ``fp16`` or ``int8`` (dvclic/compact.py); the model is rounded to the
stored values *before* its entropy tables are built, and the loader rebuilds
exactly those values, so encoder and decoder always use identical weights. The
CDF tables themselves are stored (without padding), so a loaded model codes
without calling ``update()``. A ``.dvc`` file names its weights by the SHA-256
of the weights file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .compact import check_storage, pack_state, round_model_, unpack_state
from .config import ConfigError, ModelConfig, model_config_from_dict
from .errors import WeightsError
from .model import VideoCodecModel, build_model
from .outputs import atomic_output

FORMAT = "dvclic-weights"
VERSION = 2
READABLE_VERSIONS = (1, 2)


def package_weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def resolve_weights_path(name_or_path: str) -> Path:
    """A path as given, or a file name inside the package's weights folder (``dvclic.store``
    resolves every other kind of reference)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    q = package_weights_dir() / name_or_path
    if q.is_file():
        return q
    raise WeightsError(f"weights file not found: {name_or_path} (looked in . and {package_weights_dir()})")


def file_sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


@dataclass(frozen=True)
class LoadedWeights:
    """A loaded model with what names it: config, SHA-256 of its file, path, provenance.

    kind: ``"weights"`` (a dvclic weights file), a description of a training checkpoint,
    or ``"random init"`` (see :mod:`dvclic.store`, the one place that makes these).
    """

    model: VideoCodecModel
    config: ModelConfig
    sha256: bytes
    path: Path
    provenance: dict[str, Any]
    kind: str = "weights"


def save_weights(model: VideoCodecModel, cfg: ModelConfig, path: str | Path, *, storage: str = "fp16",
                 provenance: dict[str, Any] | None = None) -> bytes:
    """Round the model to ``storage`` *in place*, build its entropy tables, write atomically.

    Returns the file's SHA-256. Because the tables are built from the rounded
    values, the saved tables match what a loader reconstructs.
    """
    check_storage(storage)
    round_model_(model, storage)
    model.update(force=True)
    blob = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(),
            "packed": pack_state(model.state_dict(), storage), "provenance": provenance or {}}
    path = Path(path)
    atomic_torch_save(blob, path)
    return file_sha256(path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, renamed into place on success."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def load_weights(name_or_path: str | Path, *, device: str | torch.device = "cpu") -> LoadedWeights:
    """Load a weights file; every failure is a WeightsError with a one-line message."""
    path = resolve_weights_path(str(name_or_path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means bad weights
        raise WeightsError(f"{path}: not a dvclic weights file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a dvclic weights file")
    if blob.get("version") not in READABLE_VERSIONS:
        raise WeightsError(f"{path}: unsupported weights version {blob.get('version')}")
    try:
        cfg = model_config_from_dict(blob["config"], str(path))
        model = build_model(cfg)
    except ConfigError as exc:
        raise WeightsError(f"{path}: bad embedded config: {exc}") from None
    try:
        if blob["version"] == 1:
            state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
        else:
            state = unpack_state(blob["packed"])
    except (KeyError, AttributeError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged weights file ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the config ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    return LoadedWeights(model=model, config=cfg, sha256=file_sha256(path), path=path,
                         provenance=dict(blob.get("provenance", {})))

"""Shipped/trained weights: config + state dict (+ entropy tables) in one file.

A weights file is a ``torch.save`` dict::

    {"format": "dvclic-weights", "version": 1, "config": <ModelConfig.to_dict()>,
     "state_dict": {...}, "provenance": {...}}

Floating-point tensors may be stored as fp16 to keep files compact; they are
loaded back to fp32, so encoder and decoder always use identical weights. The
entropy coder's CDF tables (int32 buffers) are stored as they are, so a loaded
model codes without calling ``update()``. A ``.dvc`` file names its weights by
the SHA-256 of the weights file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, ModelConfig, model_config_from_dict
from .errors import WeightsError
from .model import VideoCodecModel, build_model

FORMAT = "dvclic-weights"
VERSION = 1


def package_weights_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def resolve_weights_path(name_or_path: str) -> Path:
    """A path as given, or a file name inside the package's weights folder."""
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
    model: VideoCodecModel
    config: ModelConfig
    sha256: bytes
    path: Path
    provenance: dict[str, Any]


def save_weights(model: VideoCodecModel, cfg: ModelConfig, path: str | Path, *, fp16: bool = True,
                 provenance: dict[str, Any] | None = None) -> bytes:
    """Build entropy tables, then write atomically. Returns the file's SHA-256.

    With ``fp16`` the model's floating-point tensors are first rounded to fp16
    precision *in place*, and the entropy tables are built from the rounded
    values, so the saved tables match what a loader reconstructs.
    """
    if fp16:
        with torch.no_grad():
            for t in list(model.parameters()) + list(model.buffers()):
                if t.is_floating_point():
                    t.copy_(t.half().float())
    model.update(force=True)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        state[k] = v.half() if fp16 and v.is_floating_point() else v.clone()
    blob = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(), "state_dict": state,
            "provenance": provenance or {}}
    path = Path(path)
    atomic_torch_save(blob, path)
    return file_sha256(path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file beside ``path``, renamed into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(name_or_path: str | Path, *, device: str | torch.device = "cpu") -> LoadedWeights:
    """Load a weights file; every failure is a WeightsError with a one-line message."""
    path = resolve_weights_path(str(name_or_path))
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means bad weights
        raise WeightsError(f"{path}: not a dvclic weights file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a dvclic weights file")
    if blob.get("version") != VERSION:
        raise WeightsError(f"{path}: unsupported weights version {blob.get('version')}")
    try:
        cfg = model_config_from_dict(blob["config"], str(path))
        model = build_model(cfg)
    except ConfigError as exc:
        raise WeightsError(f"{path}: bad embedded config: {exc}") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the config ({str(exc).splitlines()[0]})") from None
    model.to(device).eval()
    return LoadedWeights(model=model, config=cfg, sha256=file_sha256(path), path=path,
                         provenance=dict(blob.get("provenance", {})))

"""The model store: the one place that turns a weights reference into a loaded model.

A reference is any of:

- a path to a dvclic weights file (``checkpoint.save_weights``), or the name of one in the
  store's search folders (by default the package's shipped ``dvclic/weights``);
- the SHA-256 of a weights file in those folders, in hex (the full 64 digits, or a prefix of
  at least 12), which is how a ``.dvc`` file names its weights;
- with ``checkpoints=True``, a training checkpoint (``OUT/last.pt``; its entropy tables are
  rebuilt). Checkpoints hold RNG state and are read with ``weights_only=False``: open only
  checkpoints of your own runs.

Each file is read once per store (``loads`` counts the reads); callers get the same
:class:`~dvclic.checkpoint.LoadedWeights` (model, config, SHA-256, provenance) every time and
pass it on, so an evaluation of many rate-distortion points reads its weights once. Models are
in eval mode on the store's device. Every failure is a :class:`~dvclic.errors.WeightsError` with
a one-line message.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch

from .bitstream import SequenceHeader
from .checkpoint import LoadedWeights, file_sha256, load_weights, package_weights_dir, save_weights
from .compact import check_storage
from .config import ConfigError, ModelConfig, load_model_config, model_config_from_dict
from .errors import WeightsError
from .model import VideoCodecModel, build_model

#: the shipped model used when nothing else is named
DEFAULT_WEIGHTS = "dvc-dis-8q-r10.pt"
_HEX = re.compile(r"[0-9a-fA-F]{12,64}")


def _same_config(a: ModelConfig, b: ModelConfig) -> bool:
    return a.to_dict() | {"weights": None} == b.to_dict() | {"weights": None}


def read_training_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw dict of a training checkpoint (model, optimizers, RNG, configs): what ``--resume``
    continues from. ``weights_only=False``: open only checkpoints of your own runs."""
    return torch.load(path, map_location=map_location, weights_only=False)


class ModelStore:
    """Resolves and loads weights, once per file (see the module docstring)."""

    def __init__(self, *, device: str | torch.device = "cpu", search: Sequence[Path] | None = None) -> None:
        self.device = torch.device(device)
        self.search = tuple(Path(p) for p in (search if search is not None else (package_weights_dir(),)))
        self._cache: dict[Path, LoadedWeights] = {}
        self._hashes: dict[tuple[Path, int, int], str] = {}
        #: how many files this store has read (a cached reference costs nothing)
        self.loads = 0

    # -- references -------------------------------------------------------------
    def resolve(self, ref: str | Path) -> Path:
        """The file a reference names (path, name in the search folders, or SHA-256 hex)."""
        text = str(ref)
        path = Path(text)
        if path.is_file():
            return path.resolve()
        for folder in self.search:
            if (folder / text).is_file():
                return (folder / text).resolve()
        if _HEX.fullmatch(text):
            matches = [p for p in self._candidates() if self._sha256(p).startswith(text.lower())]
            if len(matches) == 1:
                return matches[0].resolve()
            if len(matches) > 1:
                raise WeightsError(f"SHA-256 prefix {text} matches several weights files: "
                                   f"{', '.join(p.name for p in matches)}")
            raise WeightsError(f"no weights file with SHA-256 {text[:16]}... in {self._where()}")
        raise WeightsError(f"weights file not found: {text} (looked in . and {self._where()})")

    def _sha256(self, path: Path) -> str:
        """The file's SHA-256 (hex), hashed once per store while its size and mtime stay the same."""
        st = path.stat()
        key = (path.resolve(), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = file_sha256(path).hex()
        return self._hashes[key]

    def _candidates(self) -> list[Path]:
        return sorted(p for folder in self.search if folder.is_dir() for p in folder.glob("*.pt"))

    def _where(self) -> str:
        return ", ".join(str(p) for p in self.search) or "no search folders"

    # -- loading ----------------------------------------------------------------
    def load(self, ref: str | Path | None = None, *, checkpoints: bool = False) -> LoadedWeights:
        """Load a weights file (None: the shipped default), or with ``checkpoints`` a training checkpoint."""
        path = self.resolve(DEFAULT_WEIGHTS if ref is None else ref)
        cached = self._cache.get(path)
        if cached is not None and (checkpoints or cached.kind == "weights"):
            return cached
        try:
            self.loads += 1
            loaded = load_weights(path, device=self.device)
        except WeightsError as weights_error:
            if not checkpoints:
                raise
            loaded = self._load_checkpoint(path, weights_error)
        self._cache[path] = loaded
        return loaded

    def _load_checkpoint(self, path: Path, weights_error: WeightsError) -> LoadedWeights:
        try:
            ck = read_training_checkpoint(path)
            cfg = model_config_from_dict(ck["model_config"], str(path))
            model = build_model(cfg)
            model.load_state_dict(ck["model"])
        except Exception:  # noqa: BLE001 - neither kind of file: report the weights error
            raise weights_error from None
        model.update(force=True)
        model.to(self.device).eval()
        provenance = {"train_config": ck.get("train_config"), "steps": ck.get("global_step")}
        if ck.get("init") is not None:
            provenance["init"] = ck["init"]
        return LoadedWeights(model=model, config=cfg, sha256=file_sha256(path), path=path, provenance=provenance,
                             kind=f"training checkpoint (stage {ck.get('stage')}, step {ck.get('step')})")

    def for_config(self, config: str | Path | None = None, weights: str | Path | None = None) -> LoadedWeights:
        """Weights for encoding: ``weights``, else the model config's ``weights`` entry, else the
        default; with a config, the weights must have been trained for exactly that config."""
        if config is None:
            return self.load(weights)
        cfg = load_model_config(config)
        ref = weights if weights is not None else cfg.weights
        if ref is None:
            raise WeightsError(f"{config}: no trained weights named; train it with `dvclic train` or give weights")
        loaded = self.load(ref)
        if not _same_config(loaded.config, cfg):
            raise WeightsError(f"weights {loaded.path} were trained for config {loaded.config.name!r}, not {config}")
        return loaded

    def for_stream(self, header: SequenceHeader, weights: str | Path | None = None) -> LoadedWeights:
        """The weights a ``.dvc`` header names by SHA-256: ``weights`` (checked), else a file in
        the search folders."""
        sha = header.weights_sha256.hex()
        if weights is not None:
            loaded = self.load(weights)
            if loaded.sha256 != header.weights_sha256:
                raise WeightsError(f"weights {weights} do not match the stream (it needs {header.model!r}, "
                                   f"sha256 {sha[:16]}...)")
        else:
            try:
                loaded = self.load(sha)
            except WeightsError:
                raise WeightsError(f"no weights in {self._where()} match this stream (model {header.model!r}, "
                                   f"sha256 {sha[:16]}...); give the weights file") from None
        if loaded.config.name != header.model:
            raise WeightsError(f"weights are for model {loaded.config.name!r}, the stream needs {header.model!r}")
        return loaded

    def random(self, config: str | Path | ModelConfig, *, seed: int = 0) -> LoadedWeights:
        """A model with random weights (seeded), for benchmarks that only time the networks.

        Asked for explicitly; never a fallback for weights that failed to load."""
        try:
            cfg = config if isinstance(config, ModelConfig) else load_model_config(config)
        except ConfigError as exc:
            raise WeightsError(str(exc)) from None
        torch.manual_seed(seed)
        model: VideoCodecModel = build_model(cfg)
        model.update(force=True)
        model.to(self.device).eval()
        return LoadedWeights(model=model, config=replace(cfg, weights=None), sha256=b"", path=Path("<random>"),
                             provenance={"random_init_seed": seed}, kind="random init")


def _with_config(loaded: LoadedWeights, config: str | Path) -> tuple[VideoCodecModel, ModelConfig]:
    """The loaded model's parameters under another model config, which must build exactly the
    same tensors (it may differ in coding options such as ``entropy_parameters``)."""
    try:
        cfg = load_model_config(config)
        model = build_model(cfg)
    except ConfigError as exc:
        raise WeightsError(str(exc)) from None
    try:
        model.load_state_dict(loaded.model.state_dict(), strict=True)
    except RuntimeError:
        raise WeightsError(f"{config}: does not describe the networks of {loaded.path.name} "
                           f"(model {loaded.config.name!r})") from None
    return model.eval(), cfg


def export_weights(source: str | Path, dest: str | Path, *, storage: str = "int8",
                   provenance: dict[str, Any] | None = None, model_config: str | Path | None = None) -> dict[str, Any]:
    """Write a weights file from a weights file or a training checkpoint, in ``storage``.

    ``model_config``: write the weights under this config instead of the source's; it must build
    the same networks (checked by a strict load), and may change coding options such as a
    codec's ``entropy_parameters``. The source is read through a private store, because saving
    rounds the model in place.

    Returns what was done: source kind, storage, size in bytes, SHA-256 (hex).
    """
    check_storage(storage)
    if Path(dest).resolve() == Path(source).resolve():
        raise WeightsError(f"{dest}: export would overwrite its own source")
    loaded = ModelStore().load(source, checkpoints=True)
    info = {**loaded.provenance, "exported_from": Path(source).name, "source_kind": loaded.kind, "storage": storage}
    model, cfg = loaded.model, loaded.config
    if model_config is not None:
        model, cfg = _with_config(loaded, model_config)
        info["trained_as"] = loaded.config.to_dict()
        info["exported_with_config"] = Path(model_config).name
    sha = save_weights(model, cfg, dest, storage=storage, provenance={**info, **(provenance or {})})
    return {"source": str(source), "source_kind": loaded.kind, "dest": str(dest), "storage": storage,
            "bytes": Path(dest).stat().st_size, "sha256": sha.hex()}

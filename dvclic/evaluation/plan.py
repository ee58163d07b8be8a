"""Planning an evaluation: validate the options, check every file, load every model, fix the
sizes — everything that can fail because of the user, before any coding starts."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import torch

from ..api import resolve_device
from ..params import CodingParams, ParameterError
from ..rdo import DEFAULT_MODES
from ..store import ModelStore
from .anchors import ANCHORS, AnchorSpec, check_anchor
from .learned import ModelEntry
from .manifest import Manifest, ResolvedSequence, load_manifest, resolve_manifest
from .measure import EvaluationError, check_measurable
from .sources import SourceClip


@dataclass(frozen=True)
class EvalOptions:
    """Everything ``tools/eval.py`` can set.

    configs: model config YAMLs; ``None`` entries mean the shipped default model (or, with
        ``weights``, the config embedded in those weights).
    frames: code at most N frames of each sequence (None: all).
    sequences: evaluate only these manifest sequences (None: all of them).
    intra_period: I-frame period for dvclic and keyint for the anchors (>= 1, or -1: first only).
    modes: the P-frame candidates dvclic's encoder chooses from (``dvclic.rdo.MODE_NAMES``).
    intra_offset: dvclic codes the intra period's I-frames this many qualities higher (None: each
        model config's).
    qualities: dvclic quality indices (None: all of each model's).
    anchors: anchor families (``x264``, ``x265``, ``svtav1``); presets: one label per family and preset.
    crfs: CRFs for every anchor (None: each family's defaults).
    crop: crop to the codec multiple instead of padding.
    workers: parallel sequence workers (processes; 1 = in this process).
    threads: torch threads per worker (None: this process's setting with one worker, else the
        CPU count divided by the workers).
    """

    dataset: str
    root: str
    out: str
    configs: tuple[str | None, ...] = (None,)
    weights: str | None = None
    frames: int | None = None
    sequences: tuple[str, ...] | None = None
    intra_period: int = 12
    modes: str = DEFAULT_MODES
    intra_offset: int | None = None
    qualities: tuple[int, ...] | None = None
    anchors: tuple[str, ...] = ("x264", "x265")
    presets: tuple[str, ...] = ("medium",)
    crfs: tuple[int, ...] | None = None
    crop: bool = False
    device: str = "auto"
    workers: int = 1
    threads: int | None = None
    progress: bool = False
    command: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Plan:
    """A checked evaluation: what is coded, by which models and anchors, at which sizes."""

    options: EvalOptions
    manifest: Manifest
    sequences: tuple[ResolvedSequence, ...]
    clips: dict[str, SourceClip]
    device: str
    models: tuple[ModelEntry, ...]
    qualities: dict[str, tuple[int, ...]]
    anchors: tuple[AnchorSpec, ...]
    multiple: int
    threads: int
    #: the store the models were loaded from; in-process points reuse it (each file read once)
    store: ModelStore | None = field(default=None, compare=False, repr=False)

    @property
    def labels(self) -> list[str]:
        return [m.label for m in self.models]

    @property
    def anchor_labels(self) -> list[str]:
        return list(dict.fromkeys(s.label for s in self.anchors))

    @property
    def classes(self) -> dict[str, str]:
        return {s.spec.name: s.spec.cls for s in self.sequences}


def resolve_model(store: ModelStore, config: str | None, weights: str | None) -> ModelEntry:
    """Load a model's weights through ``store`` (validating them) and describe it for the workers."""
    loaded = store.for_config(config, weights)
    return ModelEntry(label=loaded.config.name, config=config, weights=str(loaded.path.resolve()),
                      sha256=loaded.sha256.hex(), num_qualities=loaded.model.num_qualities,
                      size_multiple=loaded.model.size_multiple, config_dict=loaded.config.to_dict())


def _check_options(opt: EvalOptions) -> None:
    try:
        CodingParams(frames=opt.frames, intra_period=opt.intra_period, modes=opt.modes, intra_offset=opt.intra_offset)
    except ParameterError as exc:
        raise ParameterError(exc.name, exc.problem + (" (or 'all')" if exc.name == "frames" else "")) from None
    if opt.workers < 1:
        raise ParameterError("workers", f"must be >= 1, got {opt.workers}")
    if opt.threads is not None and opt.threads < 1:
        raise ParameterError("threads", f"must be >= 1, got {opt.threads}")
    if not opt.configs:
        raise EvaluationError("give at least one model (--config YAML or --default)")
    if opt.weights is not None and len(opt.configs) != 1:
        raise EvaluationError("--weights applies to one model; with several --config, name weights in each config")
    if opt.crfs is not None and (not opt.crfs or any(c < 0 or c > 63 for c in opt.crfs)):
        raise ParameterError("crf", f"values must be in 0..63, got {list(opt.crfs)}")
    if opt.qualities is not None and not opt.qualities:
        raise ParameterError("qualities", "needs at least one value")
    for name in opt.anchors:
        for preset in opt.presets:
            check_anchor(name, preset)


def plan_evaluation(opt: EvalOptions) -> Plan:
    """Check everything; raise a :class:`~dvclic.errors.DvclicError` naming the first problem
    (for the files: all of their problems at once)."""
    _check_options(opt)
    manifest = load_manifest(opt.dataset)
    if opt.sequences is not None:
        known = {s.name for s in manifest.sequences}
        unknown = sorted(set(opt.sequences) - known)
        if unknown:
            raise EvaluationError(f"{opt.dataset}: no sequences named {unknown}; it has {sorted(known)}")
        manifest = replace(manifest, sequences=tuple(s for s in manifest.sequences if s.name in opt.sequences))
    sequences = resolve_manifest(manifest, opt.root, frames=opt.frames)
    device = str(resolve_device(opt.device))
    store = ModelStore(device=device)
    models = [resolve_model(store, cfg, opt.weights) for cfg in opt.configs]
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"two models share a name ({labels}); results are keyed by the config's name")
    qualities: dict[str, tuple[int, ...]] = {}
    for m in models:
        qs = tuple(range(m.num_qualities)) if opt.qualities is None else tuple(opt.qualities)
        bad = [q for q in qs if not 0 <= q < m.num_qualities]
        if bad:
            raise EvaluationError(f"{m.label}: qualities {bad} out of range 0..{m.num_qualities - 1}")
        qualities[m.label] = qs
    anchor_specs = tuple(
        AnchorSpec(name=name, preset=preset, crf=crf, intra_period=opt.intra_period)
        for name in opt.anchors for preset in opt.presets
        for crf in (opt.crfs if opt.crfs is not None else ANCHORS[name][2])
    )
    multiple = math.lcm(*(m.size_multiple for m in models))
    clips = {s.spec.name: SourceClip.of(s, multiple if opt.crop else None) for s in sequences}
    for size in dict.fromkeys(c.coded_size for c in clips.values()):
        try:
            check_measurable(*size)
        except EvaluationError as exc:
            names = [n for n, c in clips.items() if c.coded_size == size]
            raise EvaluationError(f"{', '.join(names)}: {exc}") from None
    if anchor_specs:
        odd = [n for n, c in clips.items() if c.coded_size[0] % 2 or c.coded_size[1] % 2]
        if odd:
            raise EvaluationError(f"anchors need even picture sizes; odd: {', '.join(odd)} (use --crop)")
    if opt.threads is not None:
        threads = opt.threads
    else:
        threads = torch.get_num_threads() if opt.workers == 1 else max(1, (os.cpu_count() or 1) // opt.workers)
    return Plan(options=opt, manifest=manifest, sequences=tuple(sequences), clips=clips, device=device,
                models=tuple(models), qualities=qualities, anchors=anchor_specs, multiple=multiple, threads=threads,
                store=store)

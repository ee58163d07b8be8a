"""Training configs (``configs/train/*.yaml``) parsed into frozen dataclasses.

::

    model: configs/models/dvc-hyperprior.yaml   # model config (path relative to the CWD)
    seed: 0
    batch_size: 8
    crop: 256
    distortion: mse            # or ms-ssim
    amp: false                 # bf16 autocast for the networks (entropy terms stay fp32)
    grad_clip: 1.0
    aux_lr: 1.0e-3
    log_every: 20
    ckpt_every: 200
    val_every: 500             # 0: only at the end of each stage
    workers: 2
    time_limit_s: 0            # > 0: stop cleanly after this many seconds (a short GPU window)
    data:                      # training material, mixed
      - {kind: vimeo, root: DIR, split: train}
      - {kind: video, path: FILE, stride: 8, max_clips: 64}
      - {kind: images, root: DIR}
      - {kind: frames, root: DIR, stride: 4, max_step: 2}   # folders of consecutive frames
    downscale: [1.0, 1.0]      # random downscaling before the crop (lo, hi factors)
    val:                       # held-out clips, coded with real bytes
      - {kind: vimeo, root: DIR, split: test}
    stages:                    # DVC-style schedule
      - {name: intra, task: intra, steps: 2000, lr: 1.0e-4, trainable: [intra], loss: {rd: 1, rate: 1}}
      - {name: motion, task: pframe, frames: 2, steps: 500, lr: 1.0e-4, trainable: [estimator], loss: {warp: 1}}
      ...

``extends: OTHER.yaml`` (relative to this file's directory) takes every top-level key from
OTHER and lets this file replace any of them, whole (:func:`resolve_extends`): the three configs
of one run can share one data list.

Stage loss terms (weights): ``rd`` = lambda*D(x_hat), ``rate`` = total bpp,
``motion_rate`` = motion bpp, ``warp`` = lambda*MSE(warp(ref, flow)), ``pred`` =
lambda*MSE(MC prediction), ``flow`` = endpoint error (pixels) of the estimator's flow
against OpenCV's DIS flow of the same frame pair (supervised distillation of a
classical flow into a learned estimator; estimator-only stages). Trainable parts: intra, estimator, motion_codec,
mc_net, residual_codec; everything else is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ..config import ConfigError, check_mapping, load_yaml

PARTS = ("intra", "estimator", "motion_codec", "mc_net", "residual_codec")
LOSS_TERMS = ("rd", "rate", "motion_rate", "warp", "pred", "flow")
TASKS = ("intra", "pframe")
DATA_KINDS = {"vimeo": {"root", "split", "max_step"}, "video": {"path", "stride", "max_clips"},
              "images": {"root", "exclude"}, "frames": {"root", "stride", "max_step"}}


@dataclass(frozen=True)
class DataSpec:
    kind: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class StageConfig:
    name: str
    task: str
    steps: int
    lr: float
    trainable: tuple[str, ...]
    loss: Mapping[str, float]
    frames: int = 2
    detach_reference: bool = True
    batch_size: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    model: str
    stages: tuple[StageConfig, ...]
    data: tuple[DataSpec, ...]
    val: tuple[DataSpec, ...] = ()
    seed: int = 0
    batch_size: int = 8
    crop: int = 256
    downscale: tuple[float, float] = (1.0, 1.0)
    distortion: str = "mse"
    amp: bool = False
    grad_clip: float = 1.0
    aux_lr: float = 1e-3
    log_every: int = 20
    ckpt_every: int = 200
    val_every: int = 0
    val_clips: int = 4
    workers: int = 2
    #: > 0: the run stops after this many seconds of training, at the end of the step that passes it,
    #: with its checkpoint and weights written as at the end of a run (``--resume`` goes on from there).
    time_limit_s: float = 0.0
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_TOP = {"model", "stages", "data", "val", "seed", "batch_size", "crop", "downscale", "distortion", "amp", "grad_clip",
        "aux_lr", "log_every", "ckpt_every", "val_every", "val_clips", "workers", "time_limit_s"}
_STAGE = {"name", "task", "steps", "lr", "trainable", "loss", "frames", "detach_reference", "batch_size"}


def _data(raw: Any, where: str) -> tuple[DataSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: expected a non-empty list of data sources")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or item.get("kind") not in DATA_KINDS:
            raise ConfigError(f"{where}[{i}]: kind must be one of {sorted(DATA_KINDS)}")
        params = {k: v for k, v in item.items() if k != "kind"}
        extra = set(params) - DATA_KINDS[item["kind"]]
        if extra:
            raise ConfigError(f"{where}[{i}]: unknown keys {sorted(extra)} for kind {item['kind']!r}")
        out.append(DataSpec(kind=item["kind"], params=MappingProxyType(params)))
    return tuple(out)


def _stage(raw: Any, i: int, source: str) -> StageConfig:
    where = f"{source}: stages[{i}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    extra = set(raw) - _STAGE
    if extra:
        raise ConfigError(f"{where}: unknown keys {sorted(extra)}; valid: {sorted(_STAGE)}")
    task = raw.get("task")
    if task not in TASKS:
        raise ConfigError(f"{where}: task must be one of {TASKS}")
    trainable = tuple(raw.get("trainable", ()))
    bad = set(trainable) - set(PARTS)
    if not trainable or bad:
        raise ConfigError(f"{where}: trainable must list parts from {PARTS}")
    loss = dict(raw.get("loss", {"rd": 1.0, "rate": 1.0}))
    if set(loss) - set(LOSS_TERMS) or not loss:
        raise ConfigError(f"{where}: loss terms must come from {LOSS_TERMS}")
    if task == "intra" and set(loss) - {"rd", "rate"}:
        raise ConfigError(f"{where}: intra stages take only rd and rate terms")
    frames = int(raw.get("frames", 2))
    if task == "pframe" and frames < 2:
        raise ConfigError(f"{where}: pframe stages need frames >= 2")
    steps = int(raw.get("steps", 0))
    if steps < 1:
        raise ConfigError(f"{where}: steps must be >= 1")
    return StageConfig(
        name=str(raw.get("name", f"stage{i}")), task=task, steps=steps, lr=float(raw.get("lr", 1e-4)),
        trainable=trainable, loss=MappingProxyType({k: float(v) for k, v in loss.items()}),
        frames=1 if task == "intra" else frames, detach_reference=bool(raw.get("detach_reference", True)),
        batch_size=raw.get("batch_size"),
    )


def train_config_from_dict(raw: Any, source: str = "<dict>") -> TrainConfig:
    check_mapping(raw, _TOP, what="a training config", source=source)
    for key in ("model", "stages", "data"):
        if key not in raw:
            raise ConfigError(f"{source}: missing {key!r}")
    if not isinstance(raw["stages"], list) or not raw["stages"]:
        raise ConfigError(f"{source}: stages must be a non-empty list")
    distortion = raw.get("distortion", "mse")
    if distortion not in ("mse", "ms-ssim"):
        raise ConfigError(f"{source}: distortion must be mse or ms-ssim")
    downscale = raw.get("downscale", [1.0, 1.0])
    try:
        lo, hi = (float(v) for v in downscale)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: downscale must be [lo, hi]") from None
    if not 1.0 <= lo <= hi:
        raise ConfigError(f"{source}: downscale must be [lo, hi] with 1 <= lo <= hi, got {list(downscale)}")
    try:
        time_limit = float(raw.get("time_limit_s", 0))
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: time_limit_s must be a number of seconds") from None
    if not 0 <= time_limit < float("inf"):
        raise ConfigError(f"{source}: time_limit_s must be >= 0 (0: no limit), got {raw.get('time_limit_s')!r}")
    return TrainConfig(
        model=str(raw["model"]), downscale=(lo, hi),
        stages=tuple(_stage(s, i, source) for i, s in enumerate(raw["stages"])),
        data=_data(raw["data"], f"{source}: data"),
        val=_data(raw["val"], f"{source}: val") if raw.get("val") else (),
        seed=int(raw.get("seed", 0)), batch_size=int(raw.get("batch_size", 8)), crop=int(raw.get("crop", 256)),
        distortion=distortion, amp=bool(raw.get("amp", False)), grad_clip=float(raw.get("grad_clip", 1.0)),
        aux_lr=float(raw.get("aux_lr", 1e-3)), log_every=int(raw.get("log_every", 20)),
        ckpt_every=int(raw.get("ckpt_every", 200)), val_every=int(raw.get("val_every", 0)),
        val_clips=int(raw.get("val_clips", 4)), workers=int(raw.get("workers", 2)), time_limit_s=time_limit,
        raw=MappingProxyType(dict(raw)),
    )


MAX_EXTENDS_DEPTH = 8
"""Longest ``extends:`` chain a training config may have."""


def resolve_extends(path: str | Path) -> dict[str, Any]:
    """The config at ``path`` with its ``extends:`` chain merged in, as one mapping (no ``extends`` key).

    ``extends: FILE`` names a parent config, relative to the directory of the file that names it
    (``model:`` and data paths stay relative to the working directory, as everywhere else). The
    merge is by top-level key: every key the child sets replaces the parent's whole value (a child's
    ``data:`` or ``stages:`` list replaces the parent's list; nothing is appended). A parent may
    extend another, up to :data:`MAX_EXTENDS_DEPTH` files; a cycle is a ConfigError.
    """
    p = Path(path)
    seen: set[Path] = set()
    layers: list[dict[str, Any]] = []
    while True:
        if p.resolve() in seen:
            raise ConfigError(f"{path}: extends: cycle through {p}")
        if len(seen) == MAX_EXTENDS_DEPTH:
            raise ConfigError(f"{path}: extends: chain longer than {MAX_EXTENDS_DEPTH} files")
        raw = load_yaml(p)
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{p}: a training config must be a mapping")
        seen.add(p.resolve())
        layers.append({k: v for k, v in raw.items() if k != "extends"})
        parent = raw.get("extends")
        if parent is None:
            break
        if not isinstance(parent, str) or not parent:
            raise ConfigError(f"{p}: extends must name one config file")
        p = p.parent / parent
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged.update(layer)
    return merged


def load_train_config(path: str | Path) -> TrainConfig:
    """Parse a training config file, ``extends:`` resolved (see :func:`resolve_extends`).

    The returned config's ``raw`` is the merged mapping, so checkpoints and weights provenance
    record the whole resolved config, not a reference to its parent file.
    """
    return train_config_from_dict(resolve_extends(path), str(path))

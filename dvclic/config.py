"""YAML model configs parsed into frozen dataclasses (unknown keys are errors).

A model config names, from the registries, the codec for each role and the
motion estimator, with their constructor arguments::

    name: dvc-hyperprior            # written into every .dvc file
    num_qualities: 4
    lambdas: [256, 512, 1024, 2048]   # training lambda per quality: lambda * MSE([0,1]) + bpp
    intra_period: 12                # default GOP; -1 = first frame only
    intra_offset: 0                 # default: the GOP's I-frames this many qualities higher
    weights: dvc-hyperprior.pt      # default weights (package dvclic/weights/ or a path)
    intra:    {codec: hyperprior, N: 96, M: 128}
    motion:   {codec: hyperprior, N: 64, M: 96}
    residual: {codec: hyperprior, N: 64, M: 96}
    estimator: {name: spynet, levels: 4}
    motion_compensation: {channels: 32}

Objects never read configs: :func:`dvclic.model.build_model` turns a config into
typed constructor calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from .bitstream import valid_intra_period
from .errors import DvclicError


class ConfigError(DvclicError):
    """A config file is missing, malformed or names something unknown."""


@dataclass(frozen=True)
class ComponentSpec:
    """A registry name plus keyword arguments for its constructor."""

    name: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    intra: ComponentSpec
    motion: ComponentSpec
    residual: ComponentSpec
    estimator: ComponentSpec
    mc_channels: int = 32
    num_qualities: int = 4
    lambdas: tuple[float, ...] = (256.0, 512.0, 1024.0, 2048.0)
    intra_period: int = 12
    intra_offset: int = 0
    weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the YAML schema), stored inside checkpoints."""
        def spec(s: ComponentSpec, key: str) -> dict[str, Any]:
            return {key: s.name, **dict(s.params)}

        out: dict[str, Any] = {
            "name": self.name,
            "num_qualities": self.num_qualities,
            "lambdas": list(self.lambdas),
            "intra_period": self.intra_period,
            "intra": spec(self.intra, "codec"),
            "motion": spec(self.motion, "codec"),
            "residual": spec(self.residual, "codec"),
            "estimator": spec(self.estimator, "name"),
            "motion_compensation": {"channels": self.mc_channels},
        }
        if self.intra_offset:  # written only when set, so earlier files' configs read the same
            out["intra_offset"] = self.intra_offset
        if self.weights is not None:
            out["weights"] = self.weights
        return out


_TOP_KEYS = {"name", "num_qualities", "lambdas", "intra_period", "intra_offset", "weights", "intra", "motion", "residual",
             "estimator", "motion_compensation"}


def _spec(raw: Any, key: str, where: str) -> ComponentSpec:
    if not isinstance(raw, Mapping) or key not in raw:
        raise ConfigError(f"{where}: expected a mapping with a {key!r} entry, got {raw!r}")
    params = {k: v for k, v in raw.items() if k != key}
    return ComponentSpec(name=str(raw[key]), params=MappingProxyType(params))


def check_mapping(raw: Any, allowed: set[str], *, what: str, source: str,
                  error: type[ConfigError] = ConfigError) -> Mapping[str, Any]:
    """``raw`` must be a mapping with only ``allowed`` keys; else ``error`` naming the problem."""
    if not isinstance(raw, Mapping):
        raise error(f"{source}: {what} must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise error(f"{source}: unknown keys {sorted(unknown)}; valid keys: {sorted(allowed)}")
    return raw


def model_config_from_dict(raw: Any, source: str = "<dict>") -> ModelConfig:
    """Validate a parsed YAML mapping; raises ConfigError naming the problem."""
    check_mapping(raw, _TOP_KEYS, what="a model config", source=source)
    missing = {"name", "intra", "motion", "residual", "estimator"} - set(raw)
    if missing:
        raise ConfigError(f"{source}: missing keys {sorted(missing)}")
    mc = raw.get("motion_compensation", {}) or {}
    if not isinstance(mc, Mapping) or set(mc) - {"channels"}:
        raise ConfigError(f"{source}: motion_compensation takes only 'channels'")
    intra_period = int(raw.get("intra_period", 12))
    if not valid_intra_period(intra_period):
        raise ConfigError(f"{source}: intra_period must be >= 1 or -1, got {intra_period}")
    intra_offset = raw.get("intra_offset", 0)
    if not isinstance(intra_offset, int) or isinstance(intra_offset, bool) or intra_offset < 0:
        raise ConfigError(f"{source}: intra_offset must be an integer >= 0, got {intra_offset!r}")
    num_qualities = int(raw.get("num_qualities", 4))
    lambdas = tuple(float(v) for v in raw.get("lambdas", (256.0, 512.0, 1024.0, 2048.0)))
    if len(lambdas) != num_qualities or any(v <= 0 for v in lambdas):
        raise ConfigError(f"{source}: lambdas must be {num_qualities} positive values (one per quality)")
    return ModelConfig(
        name=str(raw["name"]),
        lambdas=lambdas,
        intra=_spec(raw["intra"], "codec", f"{source}: intra"),
        motion=_spec(raw["motion"], "codec", f"{source}: motion"),
        residual=_spec(raw["residual"], "codec", f"{source}: residual"),
        estimator=_spec(raw["estimator"], "name", f"{source}: estimator"),
        mc_channels=int(mc.get("channels", 32)),
        num_qualities=num_qualities,
        intra_period=intra_period,
        intra_offset=intra_offset,
        weights=raw.get("weights"),
    )


def load_yaml(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_model_config(path: str | Path) -> ModelConfig:
    return model_config_from_dict(load_yaml(path), str(path))


__all__ = ["ComponentSpec", "ConfigError", "ModelConfig", "asdict", "check_mapping", "load_model_config", "load_yaml",
           "model_config_from_dict"]

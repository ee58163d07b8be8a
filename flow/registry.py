"""Registry of motion estimators by stable name.

Names are written into bitstreams and checkpoints, so a name never changes
meaning: add new names, never repurpose old ones. The table is static (no
import-time registration side effects); ``build_estimator`` is the only factory.
"""

from __future__ import annotations

from typing import Any

from .base import MotionEstimator
from .dis import DISFlow
from .pwcnet import PWCNet
from .spynet import SpyNet


class UnknownEstimatorError(KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _estimator_table() -> dict[str, type[MotionEstimator]]:
    # Built per call so there is no module-level mutable table to patch.
    return {"dis": DISFlow, "pwcnet": PWCNet, "spynet": SpyNet}


def estimator_names() -> list[str]:
    """Registered names, sorted."""
    return sorted(_estimator_table())


def estimator_class(name: str) -> type[MotionEstimator]:
    """The class registered under ``name``; UnknownEstimatorError lists the valid names."""
    table = _estimator_table()
    if name not in table:
        raise UnknownEstimatorError(
            f"unknown motion estimator {name!r}; valid names: {', '.join(sorted(table))}"
        )
    return table[name]


def build_estimator(name: str, **kwargs: Any) -> MotionEstimator:
    """Build a registered estimator from its keyword arguments (e.g. levels=5 for spynet)."""
    return estimator_class(name)(**kwargs)

"""Bjontegaard delta rate with pchip interpolation (the ``bjontegaard`` package).

BD-rate is the average rate difference, in percent, of a test curve against an anchor curve
at equal quality, over the quality range where both curves exist: log10(rate) is interpolated
as a function of PSNR with a piecewise cubic Hermite interpolant (pchip) and integrated over
the overlap. Negative = the test needs fewer bits.

Curves that do not allow it give ``None`` with a reason instead of an exception: fewer than two
points, non-finite values, non-positive rates, equal PSNRs, a rate that does not grow with PSNR
(pchip needs a monotonic curve; a learned model early in training can produce one), or PSNR
ranges that do not overlap. Overlaps under 75% of the joint range are computed but flagged.

Per class: the arithmetic mean of the class's per-sequence BD-rates, null when any of them is.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import bjontegaard

METHOD = "pchip"
MIN_GOOD_OVERLAP = 0.75
CLASS_RULE = "class BD-rate = arithmetic mean of its per-sequence BD-rates (null if any is null)"
METRICS = ("psnr_rgb", "psnr_yuv")


@dataclass(frozen=True)
class BDResult:
    """BD-rate in percent, or None with the reason; ``overlap`` is the fraction of the joint PSNR
    range both curves cover."""

    value: float | None
    reason: str | None = None
    overlap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bd_rate": self.value, "reason": self.reason}
        if self.overlap is not None:
            out["overlap"] = round(self.overlap, 4)
        return out


def _curve(points: Sequence[tuple[float, float]], name: str) -> tuple[list[float], list[float]] | str:
    """(rates, psnrs) sorted by PSNR, or the reason the curve is unusable."""
    if len(points) < 2:
        return f"{name} curve has {len(points)} point(s); BD-rate needs at least 2"
    if any(not (math.isfinite(r) and math.isfinite(d)) for r, d in points):
        return f"{name} curve has non-finite values"
    if any(r <= 0 for r, _ in points):
        return f"{name} curve has a non-positive rate"
    ordered = sorted(points, key=lambda p: p[1])
    rates, dists = [p[0] for p in ordered], [p[1] for p in ordered]
    if any(b <= a for a, b in zip(dists, dists[1:])):
        return f"{name} curve has equal PSNR values at different rates"
    if any(b <= a for a, b in zip(rates, rates[1:])):
        return f"{name} curve is not monotonic (a higher PSNR at a lower rate)"
    return rates, dists


def bd_rate(anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]]) -> BDResult:
    """BD-rate (%) of ``test`` against ``anchor``; each a sequence of (rate, psnr) points."""
    a = _curve(anchor, "anchor")
    if isinstance(a, str):
        return BDResult(None, a)
    t = _curve(test, "test")
    if isinstance(t, str):
        return BDResult(None, t)
    (ra, da), (rt, dt) = a, t
    low, high = max(da[0], dt[0]), min(da[-1], dt[-1])
    if high <= low:
        return BDResult(None, f"PSNR ranges do not overlap (anchor {da[0]:.2f}..{da[-1]:.2f} dB, "
                              f"test {dt[0]:.2f}..{dt[-1]:.2f} dB)", 0.0)
    overlap = (high - low) / (max(da[-1], dt[-1]) - min(da[0], dt[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(bjontegaard.bd_rate(ra, da, rt, dt, method=METHOD, require_matching_points=False,
                                          min_overlap=0.0))
    if not math.isfinite(value):
        return BDResult(None, "interpolation gave a non-finite value", overlap)
    reason = None if overlap >= MIN_GOOD_OVERLAP else f"low overlap ({overlap:.0%} of the joint PSNR range)"
    return BDResult(value, reason, overlap)


def _points(points: Sequence[Mapping[str, Any]], metric: str) -> list[tuple[float, float]]:
    return [(float(p["bpp"]), float(p[metric])) for p in points]


def bd_rate_table(
    sequences: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    classes: Mapping[str, str],
    tests: Sequence[str],
    anchors: Sequence[str],
) -> dict[str, Any]:
    """``table[test][anchor] = {"per_sequence": {seq: {metric: BD}}, "per_class": {cls: {metric: BD}}}``.

    sequences: name -> label -> points (dicts with ``bpp`` and the metrics); classes: name -> class.
    """
    table: dict[str, Any] = {}
    for test in tests:
        table[test] = {}
        for anchor in anchors:
            per_seq: dict[str, Any] = {}
            for name, labels in sequences.items():
                if test not in labels or anchor not in labels:
                    continue
                per_seq[name] = {m: bd_rate(_points(labels[anchor], m), _points(labels[test], m)).to_dict()
                                 for m in METRICS}
            per_class: dict[str, Any] = {}
            for cls in dict.fromkeys(classes[n] for n in per_seq):
                members = [n for n in per_seq if classes[n] == cls]
                per_class[cls] = {}
                for m in METRICS:
                    missing = [n for n in members if per_seq[n][m]["bd_rate"] is None]
                    if missing:
                        per_class[cls][m] = {"bd_rate": None, "sequences": members,
                                             "reason": f"no BD-rate for {', '.join(missing)}"}
                    else:
                        mean = sum(per_seq[n][m]["bd_rate"] for n in members) / len(members)
                        per_class[cls][m] = {"bd_rate": mean, "sequences": members, "reason": None}
            table[test][anchor] = {"per_sequence": per_seq, "per_class": per_class}
    return table

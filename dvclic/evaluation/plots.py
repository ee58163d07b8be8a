"""RD plots (matplotlib, Agg backend, PNG): one per class, bpp against PSNR-RGB.

A class curve is the per-point mean over the class's sequences of bpp and of PSNR-RGB (points
matched by quality index / CRF, which every sequence shares), one curve per label: dvclic
configs as solid lines, anchors dashed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .cache import safe_name


def class_curve(per_sequence: Sequence[Sequence[Mapping[str, Any]]], metric: str = "psnr_rgb") -> list[tuple[float, float]]:
    """Mean (bpp, metric) per point index over sequences with the same number of points."""
    n = min(len(points) for points in per_sequence)
    return [(sum(p[i]["bpp"] for p in per_sequence) / len(per_sequence),
             sum(p[i][metric] for p in per_sequence) / len(per_sequence)) for i in range(n)]


def plot_classes(
    sequences: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    classes: Mapping[str, str],
    tests: Sequence[str],
    anchors: Sequence[str],
    out_dir: Path,
    *,
    subtitle: str = "",
) -> dict[str, str]:
    """Write ``out_dir/rd_<class>.png`` for each class; returns class -> file name."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for cls in dict.fromkeys(classes[n] for n in sequences):
        members = [n for n in sequences if classes[n] == cls]
        fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
        for label in list(tests) + list(anchors):
            curves = [sequences[n][label] for n in members if sequences[n].get(label)]
            if len(curves) != len(members):
                continue
            points = sorted(class_curve(curves))
            ax.plot([p[0] for p in points], [p[1] for p in points], "-o" if label in tests else "--s",
                    label=label, markersize=4)
        ax.set_xlabel("bpp")
        ax.set_ylabel("PSNR-RGB (dB)")
        ax.set_title(f"{cls} ({len(members)} sequence{'s' if len(members) > 1 else ''})"
                     + (f"\n{subtitle}" if subtitle else ""), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"rd_{safe_name(cls)}.png"
        fig.savefig(out_dir / name)
        plt.close(fig)
        written[cls] = name
    return written

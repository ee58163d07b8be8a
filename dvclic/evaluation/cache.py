"""Per-point result cache, so an interrupted evaluation resumes where it stopped.

One JSON file per (sequence, label, quality/CRF) under ``OUT/cache/``. A file holds the point
and the full *protocol key* it was measured under (sequence file and geometry, frames, crop,
intra period, device, weights hash and model config, or anchor encoder and options, library
versions, and :data:`~dvclic.evaluation.measure.MEASURE_VERSION`). A cached point is reused only
when its key equals the current one; anything else is recomputed and overwritten.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..outputs import atomic_output
from .measure import RDPoint


def safe_name(part: str) -> str:
    """A name usable as one path component (runs of other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def cache_path(root: Path, sequence: str, label: str, point: str) -> Path:
    return root / safe_name(sequence) / safe_name(label) / f"{safe_name(point)}.json"


def _canonical(key: dict[str, Any]) -> Any:
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def load_point(path: Path, key: dict[str, Any]) -> RDPoint | None:
    """The cached point, or None when absent, unreadable or measured under another key."""
    try:
        blob = json.loads(path.read_text())
        if blob.get("key") != _canonical(key):
            return None
        return RDPoint.from_dict(blob["point"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_json_atomic(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write JSON through a temp file + rename (a killed run never leaves half a file), with the
    permissions of a normally created file (0666 & ~umask)."""
    with atomic_output(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=indent)
        f.write("\n")


def save_point(path: Path, key: dict[str, Any], point: RDPoint) -> None:
    write_json_atomic(path, {"key": _canonical(key), "point": point.to_dict(per_frame=True)})

"""Stage timers attached to the real objects, and peak memory.

The benchmark never re-implements a coding path: it wraps methods of the objects the coders
call (``codec.compress``, ``codec.entropy.compress``, ``estimator.forward``, ...) with timers and
then runs the ordinary encoder/decoder. Stages may nest (entropy coding inside a codec's
compress); :func:`entropy_coding_seconds` subtracts the nested network. On CUDA every boundary
synchronises the device, so times are wall times of finished work.
"""

from __future__ import annotations

import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch


class StageTimer:
    """Accumulates seconds per stage name; wraps methods so calls are timed."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._restore: list[Callable[[], None]] = []

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[name] += time.perf_counter() - start
            self.calls[name] += 1

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        """Time every call of ``obj.attr`` (an instance attribute shadows the method) as ``name``."""
        original = getattr(obj, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(obj, attr, timed)
        self._restore.append(lambda: delattr(obj, attr))

    def unwrap(self) -> None:
        """Remove every wrapper (the objects behave exactly as before)."""
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def wrap_codec(timer: StageTimer, codec: Any, prefix: str) -> None:
    """Time ``prefix.compress`` / ``prefix.decompress`` and, inside them, the entropy model's
    compress/decompress (``prefix.entropy.*``), its hyper-synthesis network (``prefix.h_s``) and
    its context network if it has one (``prefix.context``, e.g. msp), so that entropy coding =
    entropy stage minus those networks."""
    timer.wrap(codec, "compress", f"{prefix}.compress")
    timer.wrap(codec, "decompress", f"{prefix}.decompress")
    entropy = getattr(codec, "entropy", None)
    if entropy is None:
        return
    timer.wrap(entropy, "compress", f"{prefix}.entropy.compress")
    timer.wrap(entropy, "decompress", f"{prefix}.entropy.decompress")
    for name in ("h_s", "context"):
        net = getattr(entropy, name, None)
        if isinstance(net, torch.nn.Module):
            timer.wrap(net, "forward", f"{prefix}.{name}")


def entropy_coding_seconds(seconds: Mapping[str, float], prefix: str, direction: str) -> float:
    """Entropy-coding seconds of one codec (``direction`` = compress | decompress) in a snapshot of
    :attr:`StageTimer.seconds`, its h_s (and context) network excluded. Those stages serve both
    directions, so a snapshot must cover one phase only (reset the timer between encoding and decoding)."""
    networks = seconds.get(f"{prefix}.h_s", 0.0) + seconds.get(f"{prefix}.context", 0.0)
    return seconds.get(f"{prefix}.entropy.{direction}", 0.0) - networks


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """(megabytes, what they measure): CUDA max allocated since the last reset, or on CPU the
    process's peak resident set size (ru_maxrss: the whole process, Python and torch included)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "torch.cuda.max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024  # bytes on macOS, KiB on Linux
    return rss * scale, "process peak RSS (ru_maxrss), includes the Python/torch runtime"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

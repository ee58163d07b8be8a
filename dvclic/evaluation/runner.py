"""``evaluate``: the whole evaluation protocol behind ``tools/eval.py``.

::

    manifest + --root ──check every file──> sequences
    --config/--weights ──load, hash──> dvclic models        (all before any coding)
    per sequence (worker process):  dvclic points (encode_file -> .dvc -> decode_file, checked)
                                    anchor points (PyAV x264/x265/svtav1)
                                    each point cached in OUT/cache/
    all points ──> BD-rate tables, RD plots, OUT/results.json, OUT/results.md

Sequences run in parallel worker processes (``spawn``), each with an equal share of the CPU
threads. Every point is cached under its protocol key, so a rerun of an interrupted evaluation
recomputes only what is missing.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import av
import torch

from ..store import ModelStore
from .anchors import AnchorSpec, measure_anchor_point
from .bdrate import bd_rate_table
from .cache import cache_path, load_point, safe_name, save_point, write_json_atomic
from .learned import ModelEntry, measure_learned_point
from .measure import MEASURE_VERSION
from .plan import EvalOptions, plan_evaluation
from .plots import plot_classes
from .protocol import protocol_record
from .report import markdown_summary
from .sources import SourceClip


@dataclass(frozen=True)
class EvalOutcome:
    """What :func:`evaluate` returns: the results (as written to results.json) and the summary."""

    results: dict[str, Any]
    markdown: str
    out: Path


@dataclass(frozen=True)
class SequenceJob:
    """The work for one sequence (picklable: sent to a worker process)."""

    name: str
    clip: SourceClip
    models: tuple[ModelEntry, ...]
    qualities: dict[str, tuple[int, ...]]
    anchors: tuple[AnchorSpec, ...]
    intra_period: int
    modes: str
    intra_offset: int | None
    device: str
    out: Path
    sequence_key: dict[str, Any]
    library_key: dict[str, Any]

    @property
    def num_points(self) -> int:
        return sum(len(self.qualities[m.label]) for m in self.models) + len(self.anchors)


# -- worker side --------------------------------------------------------------------------

_progress_queue: Any = None  # set in each worker process by _init_worker (per-process, not shared state)


def _init_worker(queue: Any, threads: int) -> None:
    global _progress_queue
    _progress_queue = queue
    torch.set_num_threads(threads)


def _report_progress(message: str) -> None:
    if _progress_queue is not None:
        _progress_queue.put(message)


def run_sequence(job: SequenceJob, progress: Callable[[str], None] | None = None,
                 store: ModelStore | None = None) -> tuple[dict[str, list[dict]], int]:
    """Measure every point of one sequence (reusing cached points). Returns (label -> points, reused).

    ``store``: where the weights come from (the plan's in this process; None in a worker
    process: a new store per sequence, so each worker reads each weights file once per sequence).
    """
    notify = progress or _report_progress
    store = store or ModelStore(device=job.device)
    clip = job.clip
    scratch = job.out / "work" / safe_name(job.name)
    results: dict[str, list[dict]] = {}
    reused = 0
    raw_input: Path | None = None
    try:
        for model in job.models:
            points = results.setdefault(model.label, [])
            for q in job.qualities[model.label]:
                key = {**job.sequence_key, "kind": "dvclic", "weights_sha256": model.sha256,
                       "model_config": model.config_dict, "quality": q, "intra_period": job.intra_period, "modes": job.modes,
                       "intra_offset": job.intra_offset, "device": job.device}
                path = cache_path(job.out / "cache", job.name, model.label, f"q{q}")
                point = load_point(path, key)
                if point is None:
                    if raw_input is None:
                        raw_input = clip.as_raw_file(scratch / "cropped_source.yuv")
                    bitstream = job.out / "bitstreams" / safe_name(job.name) / safe_name(model.label) / f"q{q}.dvc"
                    bitstream.parent.mkdir(parents=True, exist_ok=True)
                    point = measure_learned_point(clip, model, quality=q, intra_period=job.intra_period, modes=job.modes,
                                                  intra_offset=job.intra_offset,
                                                  device=job.device, bitstream=bitstream, scratch=scratch,
                                                  raw_input=raw_input, store=store)
                    save_point(path, key, point)
                else:
                    reused += 1
                points.append(point.to_dict())
                notify(f"{job.name} {model.label} q{q}")
        height, width = clip.coded_size
        for spec in job.anchors:
            key = {**job.sequence_key, **job.library_key, "kind": "anchor", "intra_period": job.intra_period,
                   **spec.describe(clip.bit_depth)}
            path = cache_path(job.out / "cache", job.name, spec.label, f"crf{spec.crf}")
            point = load_point(path, key)
            if point is None:
                point = measure_anchor_point(clip, spec, width=width, height=height, fps=clip.fps,
                                             bit_depth=clip.bit_depth, device=job.device)
                save_point(path, key, point)
            else:
                reused += 1
            results.setdefault(spec.label, []).append(point.to_dict())
            notify(f"{job.name} {spec.label} crf {spec.crf}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            scratch.parent.rmdir()  # OUT/work, once no sequence uses it
        except OSError:
            pass
    return results, reused


# -- main process -------------------------------------------------------------------------

def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="eval", unit="point", file=sys.stderr, disable=not enabled, dynamic_ncols=True)


def _run_jobs(jobs: list[SequenceJob], workers: int, threads: int, bar: Any,
              store: ModelStore | None = None) -> tuple[dict[str, dict[str, list[dict]]], int]:
    done: dict[str, dict[str, list[dict]]] = {}
    reused = 0

    def tick(message: str) -> None:
        bar.set_postfix_str(message[-40:], refresh=False)
        bar.update(1)

    if workers == 1 or len(jobs) == 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for job in jobs:
                done[job.name], n = run_sequence(job, tick, store)
                reused += n
        finally:
            torch.set_num_threads(previous)
        return done, reused

    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker,
                             initargs=(queue, threads)) as pool:
        futures = {pool.submit(run_sequence, job): job.name for job in jobs}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    tick(queue.get())
                for fut in finished:
                    done[futures[fut]], n = fut.result()
                    reused += n
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    while True:  # messages still in flight when the last result arrived
        try:
            tick(queue.get(timeout=0.1))
        except Empty:
            break
    return done, reused


def evaluate(opt: EvalOptions) -> EvalOutcome:
    """Run the evaluation; write OUT/results.json, OUT/results.md, OUT/plots/*.png; return the results.

    Every user error (bad options, manifest, missing/wrong-size files, weights) is raised as a
    :class:`~dvclic.errors.DvclicError` before any coding starts (:func:`plan_evaluation`).
    """
    plan = plan_evaluation(opt)
    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    protocol = protocol_record(plan)
    library_key = {"av": av.__version__, "libavcodec": protocol["versions"]["libavcodec"]}
    jobs = []
    for s in plan.sequences:
        clip = plan.clips[s.spec.name]
        seq_key = {"measure_version": MEASURE_VERSION, "file": s.spec.file, "file_bytes": s.path.stat().st_size,
                   "width": s.spec.width, "height": s.spec.height, "fps": str(s.spec.fps),
                   "bit_depth": s.spec.bit_depth, "frames": s.frames, "coded_size": list(clip.coded_size),
                   "crop": opt.crop}
        jobs.append(SequenceJob(name=s.spec.name, clip=clip, models=plan.models, qualities=plan.qualities,
                                anchors=plan.anchors, intra_period=opt.intra_period, modes=opt.modes,
                                intra_offset=opt.intra_offset,
                                device=plan.device, out=out,
                                sequence_key=seq_key, library_key=library_key))

    start = time.perf_counter()
    bar = _progress_bar(sum(j.num_points for j in jobs), opt.progress)
    try:
        done, reused = _run_jobs(jobs, opt.workers, plan.threads, bar, plan.store)
    finally:
        bar.close()
    ordered = {s.spec.name: done[s.spec.name] for s in plan.sequences}
    protocol["run"] = {"seconds": round(time.perf_counter() - start, 1), "points_reused_from_cache": reused}
    results: dict[str, Any] = {
        "protocol": protocol,
        "sequences": ordered,
        "bd_rate": bd_rate_table(ordered, plan.classes, plan.labels, plan.anchor_labels),
    }
    subtitle = (f"{plan.manifest.name}, {protocol['frames']} frames, intra period {opt.intra_period}, "
                f"{protocol['picture_handling']['mode']}")
    plots = plot_classes(ordered, plan.classes, plan.labels, plan.anchor_labels, out / "plots", subtitle=subtitle)
    results["plots"] = {cls: f"plots/{name}" for cls, name in plots.items()}
    write_json_atomic(out / "results.json", results, indent=1)
    summary = markdown_summary(results)
    (out / "results.md").write_text(summary)
    return EvalOutcome(results=results, markdown=summary, out=out)


__all__ = ["EvalOptions", "EvalOutcome", "evaluate", "plan_evaluation", "run_sequence"]

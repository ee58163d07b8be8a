"""File-level entry points behind the tools: encode a video file, decode a .dvc file.

Thin wrappers over :mod:`dvclic.coding` (a loaded model, a source, a sink, the coding
parameters): they resolve the weights through a :class:`~dvclic.store.ModelStore`, open the
input and output, and write outputs atomically (temp file + rename), so a failed run leaves no
half-written file. ``"-"`` as a path means standard input or output: a ``.dvc`` stream, or y4m
video. Both stream frame by frame (memory does not grow with the video's length). User errors
raise :class:`~dvclic.errors.DvclicError`.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import torch

from .bitstream import DEFAULT_MAX_PIXELS
from .coding import CodingReport, FrameStats, Progress, decode, encode  # noqa: F401 (re-exported)
from .errors import BitstreamError, InputError
from .outputs import atomic_output, check_output
from .params import CodingParams
from .refinement import ProgressFn
from .store import DEFAULT_WEIGHTS, ModelStore  # noqa: F401 (re-exported)
from .video import VideoInfo, Y4MPipeWriter, check_video_output, open_video, open_writer

#: the path that means standard input / output
STDIO = "-"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but CUDA is not available")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda)")
    return torch.device(name)


def _is_stdio(path: str | Path | None) -> bool:
    return path is not None and str(path) == STDIO


def encode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    params: CodingParams = CodingParams(),
    store: ModelStore | None = None,
    config: str | None = None,
    weights: str | None = None,
    device: str = "auto",
    size: tuple[int, int] | None = None,
    fps: Fraction | None = None,
    bit_depth: int | None = None,
    reconstruction_path: str | Path | None = None,
    refine_progress: ProgressFn | None = None,
    progress: Progress | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> CodingReport:
    """Encode a video file (``"-"``: a stream on ``stdin``, e.g. y4m) to ``.dvc`` (``"-"``: ``stdout``).

    ``size`` is (width, height) for raw .yuv. The weights come from ``store`` (default: a new
    store on ``device``): ``weights``, else ``config``'s, else the shipped default.
    ``reconstruction_path`` additionally writes the encoder's reconstruction
    (y4m/yuv/mp4/PNG dir), which the decoder reproduces exactly.
    """
    to_stdout = _is_stdio(output_path)
    from_stdin = _is_stdio(input_path)
    if to_stdout and _is_stdio(reconstruction_path):
        raise InputError("the stream and the reconstruction cannot both go to standard output")
    # Pre-flight, before weights load: refuse outputs that would clobber an input or fail late.
    inputs = [None if from_stdin else input_path, config, weights]
    if not to_stdout:
        check_output(output_path, inputs=inputs)
    if reconstruction_path and not _is_stdio(reconstruction_path):
        check_video_output(reconstruction_path, inputs=inputs, outputs=[None if to_stdout else output_path])
    store = store or ModelStore(device=resolve_device(device))
    loaded = store.for_config(config, weights)
    width, height = size if size else (None, None)
    source_arg = (stdin or sys.stdin.buffer) if from_stdin else input_path
    with open_video(source_arg, width=width, height=height, fps=fps, bit_depth=bit_depth,
                    max_frames=params.frames) as src:
        recon = None
        if reconstruction_path:
            recon = (Y4MPipeWriter(stdout or sys.stdout.buffer, src.info) if _is_stdio(reconstruction_path)
                     else open_writer(reconstruction_path, src.info))
        try:
            if to_stdout:
                report = encode(loaded, src, stdout or sys.stdout.buffer, params, reconstruction=recon,
                                progress=progress, refine_progress=refine_progress)
                (stdout or sys.stdout.buffer).flush()
            else:
                with atomic_output(Path(output_path)) as tmp, open(tmp, "wb") as fp:
                    report = encode(loaded, src, fp, params, reconstruction=recon, progress=progress,
                                    refine_progress=refine_progress)
                    fp.flush()
            if recon is not None:
                recon.close()
                recon = None
        finally:
            if recon is not None:
                recon.abort()
    return report


def decode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    store: ModelStore | None = None,
    weights: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    strict: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> CodingReport:
    """Decode a ``.dvc`` file (``"-"``: from ``stdin``) to y4m / yuv / mp4 / a PNG folder (by the
    output's name; ``"-"``: y4m on ``stdout``).

    Version-2 files carry a hash of the encoder's reconstruction per frame; the report says
    whether every decoded frame matches it (``exact``), and ``strict`` makes a mismatch an
    error. ``max_pixels`` limits width * height.
    """
    from_stdin, to_stdout = _is_stdio(input_path), _is_stdio(output_path)
    src = None if from_stdin else Path(input_path)
    if src is not None and not src.is_file():
        raise InputError(f"input file not found: {src}")
    if not to_stdout:
        check_video_output(output_path, inputs=[src, weights])  # pre-flight, before weights load
    store = store or ModelStore(device=resolve_device(device))

    def open_sink(info: VideoInfo):  # noqa: ANN202 - a VideoWriter or a Y4MPipeWriter
        return Y4MPipeWriter(stdout or sys.stdout.buffer, info) if to_stdout else open_writer(output_path, info)

    if from_stdin:
        return decode(store, stdin or sys.stdin.buffer, open_sink, weights=weights, strict=strict,
                      max_pixels=max_pixels, progress=progress)
    with open(src, "rb") as fp:
        return decode(store, fp, open_sink, weights=weights, strict=strict, max_pixels=max_pixels,
                      progress=progress)


__all__ = ["CodingParams", "CodingReport", "ModelStore", "decode_file", "encode_file", "resolve_device",
           "BitstreamError"]

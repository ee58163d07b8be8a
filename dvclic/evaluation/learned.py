"""One dvclic rate-distortion point: encode a file, decode it, check, measure.

The point is measured on what a user would get: :func:`dvclic.api.encode_file` writes a real
``.dvc`` file (its size in bytes, every byte, is the rate) and the encoder's reconstruction as
raw YUV; :func:`dvclic.api.decode_file` decodes the file independently (from the same
:class:`~dvclic.store.ModelStore`, so the weights are read once per run, not per point). The two YUV files must
be byte-identical (no encoder/decoder drift), otherwise the evaluation stops. Metrics compare the
decoded YUV with the source (:mod:`dvclic.evaluation.measure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import decode_file, encode_file
from ..params import CodingParams
from ..rdo import DEFAULT_MODES
from ..store import ModelStore
from ..video import open_video
from ..video.raw_yuv import frame_num_bytes
from .measure import EvaluationError, RDPoint, sequence_metrics
from .sources import SourceClip


@dataclass(frozen=True)
class ModelEntry:
    """A dvclic model under evaluation, resolved before any work starts.

    label: results label (the model config's name, e.g. ``dvc-hyperprior``).
    config: the YAML given with --config, or None for the weights' own config.
    weights: path of the weights file; sha256: its hex digest.
    """

    label: str
    config: str | None
    weights: str
    sha256: str
    num_qualities: int
    size_multiple: int
    config_dict: dict[str, Any]


def first_difference(a: Path, b: Path, frame_bytes: int) -> int | None:
    """Index of the first frame where two raw files differ (None when byte-identical)."""
    if a.stat().st_size != b.stat().st_size:
        return min(a.stat().st_size, b.stat().st_size) // frame_bytes
    with open(a, "rb") as fa, open(b, "rb") as fb:
        index = 0
        while True:
            block_a, block_b = fa.read(frame_bytes), fb.read(frame_bytes)
            if block_a != block_b:
                return index
            if not block_a:
                return None
            index += 1


def measure_learned_point(clip: SourceClip, model: ModelEntry, *, quality: int, intra_period: int, device: str,
                          bitstream: Path, scratch: Path, raw_input: Path,
                          modes: str = DEFAULT_MODES, intra_offset: int | None = None,
                          store: ModelStore | None = None) -> RDPoint:
    """Code ``clip`` (read from ``raw_input``, which holds exactly its pictures) at ``quality``.

    Writes the ``.dvc`` file to ``bitstream`` (kept) and two YUV files under ``scratch`` (removed).
    ``store``: where the weights are loaded from (None: a new store on ``device``).
    """
    store = store or ModelStore(device=device)
    loaded = store.load(model.weights)
    if loaded.sha256.hex() != model.sha256:
        raise EvaluationError(f"{model.weights} changed since the evaluation was planned")
    height, width = clip.coded_size
    scratch.mkdir(parents=True, exist_ok=True)
    enc_yuv, dec_yuv = scratch / "encoder_recon.yuv", scratch / "decoded.yuv"
    what = f"{model.label} quality {quality}"
    try:
        params = CodingParams(quality=quality, frames=clip.frames, intra_period=intra_period, modes=modes,
                              intra_offset=intra_offset)
        enc = encode_file(raw_input, bitstream, params=params, store=store, config=model.config,
                          weights=model.weights, size=(width, height), fps=clip.fps, bit_depth=clip.bit_depth,
                          reconstruction_path=enc_yuv)
        dec = decode_file(bitstream, dec_yuv, store=store, weights=model.weights)
        if enc.frames != clip.frames or dec.frames != clip.frames:
            raise EvaluationError(f"{what}: expected {clip.frames} frames, encoded {enc.frames}, decoded {dec.frames}")
        frame = first_difference(enc_yuv, dec_yuv, frame_num_bytes(width, height, clip.bit_depth))
        if frame is not None:
            raise EvaluationError(f"{what}: the decoder's output differs from the encoder's reconstruction "
                                  f"at frame {frame} ({bitstream})")
        with open_video(dec_yuv, width=width, height=height, fps=clip.fps, bit_depth=clip.bit_depth) as decoded:
            metrics = sequence_metrics(decoded, clip, device=device, what=what)
    finally:
        enc_yuv.unlink(missing_ok=True)
        dec_yuv.unlink(missing_ok=True)
    total = bitstream.stat().st_size
    payload = {k: sum(getattr(f, k + "_bytes") for f in enc.per_frame) * 8 for k in ("intra", "motion", "residual")}
    return RDPoint.from_frames(
        metrics, quality=quality, crf=None, width=width, height=height, bytes=total,
        encode_fps=enc.fps_value, decode_fps=dec.fps_value,
        bits={**payload, "inter": payload["motion"] + payload["residual"],
              "overhead": total * 8 - sum(payload.values())},
        frame_types=enc.frame_types,
    )

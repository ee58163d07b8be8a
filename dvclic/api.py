"""Library entry points behind the tools: encode a video file, decode a .dvc file.

Both stream frame by frame (memory does not grow with the video's length) and
write their output atomically (temp file + rename), so a failed run leaves no
half-written file. User errors raise :class:`~dvclic.errors.DvclicError`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import torch

from .bitstream import DEFAULT_MAX_PIXELS, FRAME_TYPE_CHARS, BitstreamReader, BitstreamWriter, SequenceHeader
from .checkpoint import LoadedWeights, file_sha256, load_weights, package_weights_dir
from .color import yuv420_to_rgb
from .config import load_model_config
from .errors import BitstreamError, InputError, WeightsError
from .metrics import psnr_rgb, psnr_yuv
from .outputs import atomic_output, check_output
from .rdo import DEFAULT_MODES, ModeSet, mode_label
from .refinement import ProgressFn, make_refiner
from .sequence import SequenceDecoder, SequenceEncoder
from .video import VideoInfo, check_video_output, open_video, open_writer, pix_fmt_for_bit_depth
from .video.padding import crop_to, pad_to_multiple

DEFAULT_WEIGHTS = "dvc-dis.pt"

#: Progress callback: (frames done, total or None).
Progress = Callable[[int, "int | None"], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda requested but CUDA is not available")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r} (auto, cpu, cuda)")
    return torch.device(name)


def load_encoder_weights(config: str | None, weights: str | None, device: torch.device) -> LoadedWeights:
    """Weights for encoding: --weights, else the config's ``weights`` entry, else the default."""
    if config is None:
        return load_weights(weights or DEFAULT_WEIGHTS, device=device)
    cfg = load_model_config(config)
    source = weights or cfg.weights
    if source is None:
        raise WeightsError(f"{config}: no trained weights named; train it with tools/train.py or pass --weights")
    loaded = load_weights(source, device=device)
    if loaded.config.to_dict() | {"weights": None} != cfg.to_dict() | {"weights": None}:
        raise WeightsError(f"weights {loaded.path} were trained for config {loaded.config.name!r}, not {config}")
    return loaded


def find_weights_for(header: SequenceHeader, weights: str | None, device: torch.device) -> LoadedWeights:
    """The weights a .dvc file names (by SHA-256): --weights, or a shipped file."""
    if weights is not None:
        loaded = load_weights(weights, device=device)
        if loaded.sha256 != header.weights_sha256:
            raise WeightsError(
                f"weights {weights} do not match the file (it needs {header.model!r}, "
                f"sha256 {header.weights_sha256.hex()[:16]}...)"
            )
        return loaded
    for candidate in sorted(package_weights_dir().glob("*.pt")):
        if file_sha256(candidate) == header.weights_sha256:
            return load_weights(candidate, device=device)
    raise WeightsError(
        f"no shipped weights match this file (model {header.model!r}, sha256 "
        f"{header.weights_sha256.hex()[:16]}...); pass --weights PATH"
    )


@dataclass
class FrameStats:
    type: str
    bytes: int
    intra_bytes: int = 0
    motion_bytes: int = 0
    residual_bytes: int = 0
    psnr_rgb: float | None = None
    psnr_yuv: float | None = None
    modes: str = ""
    skipped_blocks: int = 0
    exact: bool | None = None


@dataclass
class CodingReport:
    """What encode/decode report (``--json`` prints ``summary()``)."""

    frames: int
    width: int
    height: int
    bytes: int
    frame_types: str
    fps_key: str
    fps_value: float
    model: str
    quality: int
    intra_period: int
    device: str
    per_frame: list[FrameStats] = field(default_factory=list)

    @property
    def bpp(self) -> float:
        return self.bytes * 8.0 / (self.width * self.height * max(self.frames, 1))

    def summary(self) -> dict:
        out = {
            "frames": self.frames, "width": self.width, "height": self.height, "bytes": self.bytes,
            "bpp": round(self.bpp, 6), "frame_types": self.frame_types, "model": self.model,
            "quality": self.quality, "intra_period": self.intra_period, "device": self.device,
            self.fps_key: round(self.fps_value, 4),
        }
        rgb = [f.psnr_rgb for f in self.per_frame if f.psnr_rgb is not None]
        if rgb:
            out["psnr_rgb"] = round(sum(rgb) / len(rgb), 4)
            out["psnr_yuv"] = round(sum(f.psnr_yuv for f in self.per_frame) / len(rgb), 4)
            out["bits"] = {k: sum(getattr(f, k + "_bytes") for f in self.per_frame) * 8
                           for k in ("intra", "motion", "residual")}
        counts: dict[str, int] = {}
        for f in self.per_frame:
            counts[f.modes] = counts.get(f.modes, 0) + 1
        out["modes"] = counts
        if any(f.type == "P" for f in self.per_frame) and rgb:
            out["skipped_blocks"] = sum(f.skipped_blocks for f in self.per_frame)
        checked = [f.exact for f in self.per_frame if f.exact is not None]
        if checked:
            out["exact"] = all(checked)
            out["inexact_frames"] = [i for i, f in enumerate(self.per_frame) if f.exact is False]
        return out

    def to_dict(self) -> dict:
        return {**self.summary(), "per_frame": [asdict(f) for f in self.per_frame]}


def encode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    config: str | None = None,
    weights: str | None = None,
    quality: int | None = None,
    frames: int | None = None,
    intra_period: int | None = None,
    device: str = "auto",
    size: tuple[int, int] | None = None,
    fps: Fraction | None = None,
    bit_depth: int | None = None,
    reconstruction_path: str | Path | None = None,
    refine_steps: int = 0,
    refine_progress: ProgressFn | None = None,
    progress: Progress | None = None,
    modes: str = DEFAULT_MODES,
) -> CodingReport:
    """Encode a video file to ``.dvc``. ``size`` is (width, height) for raw .yuv.

    ``modes``: the P-frame candidates the encoder may choose from by rate-distortion
    cost (a comma list of :data:`dvclic.rdo.MODE_NAMES`).

    ``refine_steps`` > 0 refines the latents of I-frames and residuals with SGA
    (encode time only; decoding is unchanged).

    ``reconstruction_path`` additionally writes the encoder's reconstruction
    (y4m/yuv/mp4/PNG dir), which the decoder reproduces exactly.
    """
    dev = resolve_device(device)
    if frames is not None and frames < 1:
        raise InputError(f"--frames must be >= 1, got {frames}")
    # Pre-flight, before weights load: refuse outputs that would clobber an input or fail late.
    check_output(output_path, inputs=[input_path, config, weights])
    if reconstruction_path:
        check_video_output(reconstruction_path, inputs=[input_path, config, weights], outputs=[output_path])
    width, height = size if size else (None, None)
    loaded = load_encoder_weights(config, weights, dev)
    model, cfg = loaded.model, loaded.config
    q = (model.num_qualities - 1) // 2 if quality is None else quality
    if not 0 <= q < model.num_qualities:
        raise InputError(f"--quality must be in 0..{model.num_qualities - 1}, got {q}")
    period = cfg.intra_period if intra_period is None else intra_period
    if period == 0 or period < -1:
        raise InputError(f"--intra-period must be >= 1 or -1, got {period}")
    try:
        mode_set = ModeSet.parse(modes)
    except ValueError as exc:
        raise InputError(f"--modes: {exc}") from None
    out = Path(output_path)
    with open_video(input_path, width=width, height=height, fps=fps, bit_depth=bit_depth,
                    max_frames=frames) as src:
        info = src.info
        header = SequenceHeader(
            width=info.width, height=info.height, frame_count=0, fps=info.fps, bit_depth=info.bit_depth,
            intra_period=period, quality=q, model=cfg.name, weights_sha256=loaded.sha256,
        )
        refine = make_refiner(refine_steps, cfg.lambdas, progress=refine_progress)
        encoder = SequenceEncoder(model, quality=q, intra_period=period, output_size=(info.height, info.width), bit_depth=info.bit_depth,
                                  refine=refine, modes=mode_set, header=header)
        report = CodingReport(0, info.width, info.height, 0, "", "encode_fps", 0.0, cfg.name, q, period, str(dev))
        recon = open_writer(reconstruction_path, info) if reconstruction_path else None
        start = time.perf_counter()
        try:
            with atomic_output(out) as tmp, open(tmp, "wb") as fp:
                writer = BitstreamWriter(fp, header)
                for yuv in src:
                    rgb = yuv420_to_rgb(yuv).to(dev)
                    enc = encoder.encode(pad_to_multiple(rgb, model.size_multiple))
                    x_hat = crop_to(enc.x_hat, info.height, info.width)
                    n = writer.write_frame(enc.unit)
                    if recon is not None:
                        recon.write(enc.yuv)
                    report.per_frame.append(FrameStats(
                        FRAME_TYPE_CHARS[enc.unit.frame_type], n, enc.intra_bytes, enc.motion_bytes,
                        enc.residual_bytes, psnr_rgb(x_hat.cpu(), rgb.cpu()), psnr_yuv(enc.yuv, yuv),
                        modes=mode_label(enc.unit.frame_type, enc.unit.modes), skipped_blocks=enc.skipped_blocks))
                    if progress:
                        progress(len(report.per_frame), info.frame_count)
                if not report.per_frame:
                    raise InputError(f"{input_path}: no frames to encode")
                writer.close()
                fp.flush()
            if recon is not None:
                recon.close()
                recon = None
        finally:
            if recon is not None:
                recon.abort()
    elapsed = time.perf_counter() - start
    report.frames = len(report.per_frame)
    report.bytes = out.stat().st_size
    report.frame_types = "".join(f.type for f in report.per_frame)
    report.fps_value = report.frames / max(elapsed, 1e-9)
    return report


def decode_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    weights: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    strict: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CodingReport:
    """Decode a ``.dvc`` file to y4m / yuv / mp4 / a PNG folder (by the output's name).

    Version-2 files carry a hash of the encoder's reconstruction per frame; the
    report says whether every decoded frame matches it (``exact``), and ``strict``
    makes a mismatch an error. ``max_pixels`` limits width * height.
    """
    dev = resolve_device(device)
    src = Path(input_path)
    if not src.is_file():
        raise InputError(f"input file not found: {src}")
    check_video_output(output_path, inputs=[src, weights])  # pre-flight, before weights load
    with open(src, "rb") as fp:
        reader = BitstreamReader(fp, max_pixels=max_pixels)
        h = reader.header
        loaded = find_weights_for(h, weights, dev)
        model = loaded.model
        if loaded.config.name != h.model:
            raise WeightsError(f"weights are for model {loaded.config.name!r}, the file needs {h.model!r}")
        reader.check_quality(model.num_qualities)
        m = model.size_multiple
        padded = (-(-h.height // m) * m, -(-h.width // m) * m)
        decoder = SequenceDecoder(model, padded_size=padded, output_size=(h.height, h.width),
                                  bit_depth=h.bit_depth, version=reader.version, header=h)
        info = VideoInfo(width=h.width, height=h.height, fps=h.fps, bit_depth=h.bit_depth,
                         pix_fmt=pix_fmt_for_bit_depth(h.bit_depth), frame_count=h.frame_count)
        report = CodingReport(0, h.width, h.height, src.stat().st_size, "", "decode_fps", 0.0, h.model,
                              h.quality, h.intra_period, str(dev))
        start = time.perf_counter()
        with open_writer(output_path, info) as writer:
            for unit in reader:
                dec = decoder.decode(unit)
                if strict and dec.exact is False:
                    raise BitstreamError(f"frame {len(report.per_frame)} at byte offset {unit.offset}: the decoded "
                                         "frame differs from the encoder's reconstruction (--strict)")
                writer.write(dec.yuv)
                report.per_frame.append(FrameStats(FRAME_TYPE_CHARS[unit.frame_type], unit.num_bytes,
                                                   modes=mode_label(unit.frame_type, unit.modes), exact=dec.exact))
                if progress:
                    progress(len(report.per_frame), h.frame_count)
    elapsed = time.perf_counter() - start
    report.frames = len(report.per_frame)
    report.frame_types = "".join(f.type for f in report.per_frame)
    report.fps_value = report.frames / max(elapsed, 1e-9)
    return report


__all__ = ["CodingReport", "decode_file", "encode_file", "resolve_device", "BitstreamError"]

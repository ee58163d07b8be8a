"""``run_benchmark``: build what is benchmarked, pick the picture, run, collect one result dict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import yaml

from image_codecs import UnknownNameError, build_codec

from ..api import resolve_device
from ..checkpoint import file_sha256
from ..errors import InputError, WeightsError
from ..model import VideoCodecModel
from ..params import ParameterError, check_quality, default_quality
from ..store import ModelStore
from .compare import COMPARE_MODELS, bench_mbt2018
from .image import bench_image_codec
from .pictures import bench_frames, bench_picture
from .video import bench_video_model


@dataclass(frozen=True)
class BenchOptions:
    """What ``dvclic bench`` can set. Exactly one of ``codec``, ``config``, ``weights`` (alone)
    names what is measured; ``weights`` with ``codec`` is a state_dict for that codec.
    ``random_weights``: time a video model config with random weights (asked for explicitly;
    a config whose weights cannot be loaded is an error, never a silent fallback)."""

    height: int
    width: int
    codec: str | None = None
    codec_args: dict[str, Any] = field(default_factory=dict)
    config: str | None = None
    weights: str | None = None
    device: str = "auto"
    frames: int = 3
    quality: int | None = None
    picture: str | None = None
    compare: str | None = None
    warmup: int = 1
    repeat: int = 3
    threads: int | None = None
    random_weights: bool = False
    profile: int | None = None


def parse_codec_args(text: str) -> dict[str, Any]:
    """``"N=64,M=96"`` -> ``{"N": 64, "M": 96}`` (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--codec-args: expected NAME=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


INTRA_ROLE = "intra"  # --codec intra --weights W.pt: the trained intra codec of a dvclic weights file


def _image_codec(opt: BenchOptions, store: ModelStore) -> tuple[Any, str]:
    if opt.codec == INTRA_ROLE:
        if opt.weights is None or opt.codec_args:
            raise InputError("--codec intra takes --weights W.pt (a dvclic weights file) and no --codec-args")
        loaded = store.load(opt.weights)
        return loaded.model.intra, (f"{loaded.path} (sha256 {loaded.sha256.hex()[:16]}...), "
                                    f"its intra codec {loaded.config.intra.name}")
    torch.manual_seed(0)
    try:
        codec = build_codec(opt.codec, **opt.codec_args)
    except UnknownNameError as exc:
        raise InputError(str(exc)) from None
    except TypeError as exc:
        raise InputError(f"--codec-args do not fit codec {opt.codec!r}: {exc}") from None
    if opt.weights is None:
        codec.update(force=True)
        return codec, "random init"
    path = store.resolve(opt.weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        codec.load_state_dict(state.get("state_dict", state), strict=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable / mismatched file is the user's input
        raise WeightsError(f"{path}: not a state_dict for {opt.codec} with these --codec-args "
                           f"({str(exc).splitlines()[0]})") from None
    codec.update(force=False)
    return codec, f"{path} (sha256 {file_sha256(path).hex()[:16]}...)"


def _video_model(opt: BenchOptions, store: ModelStore) -> tuple[VideoCodecModel, str, str]:
    if opt.random_weights:
        if opt.config is None:
            raise InputError("--random-weights needs --config YAML (the networks to build)")
        if opt.weights is not None:
            raise InputError("--random-weights and --weights exclude each other")
        loaded = store.random(opt.config)
        return loaded.model, loaded.config.name, "random init (asked for with --random-weights)"
    loaded = store.for_config(opt.config, opt.weights)
    return loaded.model, loaded.config.name, f"{loaded.path} (sha256 {loaded.sha256.hex()[:16]}...)"


def run_benchmark(opt: BenchOptions) -> dict[str, Any]:
    """Run the benchmark; returns the result dict (``tools/bench.py`` prints it as JSON)."""
    previous = torch.get_num_threads()
    try:
        return _run(opt)
    finally:
        torch.set_num_threads(previous)


def _run(opt: BenchOptions) -> dict[str, Any]:
    if opt.height < 1 or opt.width < 1:
        raise ParameterError("size", f"must be positive, got {opt.width}x{opt.height}")
    if opt.warmup < 0 or opt.repeat < 1:
        raise ParameterError("warmup" if opt.warmup < 0 else "repeat", f"warmup must be >= 0 and repeat >= 1, got {opt.warmup}, {opt.repeat}")
    if opt.profile is not None and opt.codec is None:
        raise InputError("--profile applies to an image codec (--codec)")
    if opt.compare is not None and opt.compare not in COMPARE_MODELS:
        raise InputError(f"--compare: unknown model {opt.compare!r}; valid: {', '.join(COMPARE_MODELS)}")
    if sum(x is not None for x in (opt.codec, opt.config)) > 1:
        raise InputError("give --codec or --config, not both")
    if opt.codec is None and opt.config is None and opt.weights is None:
        raise InputError("give --codec NAME, --config YAML, or --weights FILE (a dvclic weights file)")
    device = resolve_device(opt.device)
    store = ModelStore(device="cpu")  # benchmarks move what they time to the device themselves
    if opt.threads is not None:
        if opt.threads < 1:
            raise ParameterError("threads", f"must be >= 1, got {opt.threads}")
        torch.set_num_threads(opt.threads)
    head: dict[str, Any] = {"device": str(device), "size": {"height": opt.height, "width": opt.width},
                            "warmup": opt.warmup, "repeat": opt.repeat, "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        head["device_name"] = torch.cuda.get_device_name(device)
    if opt.codec is not None:
        codec, weights = _image_codec(opt, store)
        quality = _quality(opt.quality, codec.num_qualities)
        picture, source = bench_picture(opt.height, opt.width, opt.picture)
        profiles = tuple(getattr(codec, "profiles", ()))
        if opt.profile is not None and opt.profile not in profiles:
            raise ParameterError("profile", f"{type(codec).__name__} offers {list(profiles) or 'no profiles'}, "
                                            f"got {opt.profile}")
        profile = opt.profile if opt.profile is not None else (getattr(codec, "profile", None) if profiles else None)
        head.update({"kind": "image-codec", "codec": opt.codec, "codec_args": opt.codec_args, "weights": weights,
                     "quality": quality, "picture": source, "profile": profile})
        result = {**head, **bench_image_codec(codec, picture, quality=quality, warmup=opt.warmup, repeat=opt.repeat,
                                              device=device, profile=opt.profile)}
    else:
        if opt.frames < 2:
            raise ParameterError("frames", "must be >= 2 for a video model (one I-frame, then P-frames)")
        model, name, weights = _video_model(opt, store)
        quality = _quality(opt.quality, model.num_qualities)
        frames, source = bench_frames(opt.frames, opt.height, opt.width, opt.picture)
        picture = frames[0]
        head.update({"kind": "video-model", "config": opt.config, "model": name, "weights": weights,
                     "quality": quality, "picture": source})
        result = {**head, **bench_video_model(model, frames, quality=quality, warmup=opt.warmup, repeat=opt.repeat,
                                              device=device)}
    if opt.compare == "mbt2018":
        result.update(bench_mbt2018(picture, warmup=opt.warmup, repeat=opt.repeat, device=device))
        result["decode_speedup"] = result["compare_decode_s"] / result["decode_s"]
    return result


def _quality(quality: int | None, num: int) -> int:
    return check_quality(default_quality(num) if quality is None else quality, num)

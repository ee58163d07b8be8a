"""Command-line front ends (thin: parse, call the library, print).

User errors (missing files, non-video input, bad bitstreams, wrong weights)
print one line to stderr and exit with code 2, never a traceback. Ctrl-C (SIGINT)
and SIGTERM unwind the stack, so temporary outputs are removed, print
``error: interrupted`` and exit with 130 and 143 (128 + signal number).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from fractions import Fraction
from typing import Callable, Iterator, Sequence, TypeVar

from .errors import DvclicError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
T = TypeVar("T")


def quiet_third_party_warnings() -> None:
    """Hide compressai's import-time torch.jit.script deprecation warning, so a user error
    stays the only line on stderr."""
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse already exits 2; keep it to one line
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_size(text: str, order: str = "WxH") -> tuple[int, int]:
    """Parse ``AxB`` into two positive ints, in the order the option documents."""
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {order}, got {text!r}") from None
    if a <= 0 or b <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return a, b


def _fps(text: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a frame rate like 25 or 30000/1001, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("frame rate must be positive")
    return value


def _progress_bar(desc: str, enabled: bool) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A tqdm bar on stderr driven by (done, total) callbacks."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="frame", file=sys.stderr, disable=not enabled, leave=False)

    def update(done: int, total: int | None) -> None:
        if done < bar.n:  # a new picture's refinement starts over
            bar.reset(total=total)
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so ``finally`` blocks and context managers remove temporaries."""


@contextmanager
def _sigterm_raises_terminated() -> Iterator[None]:
    """While the block runs, the first SIGTERM raises :class:`Terminated`; later ones are ignored
    so they cannot cut the cleanup short. The previous handler is restored afterwards. Signal
    handlers can only be set from the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = False

    def handler(signum: int, frame: object) -> None:
        nonlocal received
        if not received:
            received = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def call_guarded(fn: Callable[[], T]) -> tuple[int, T | None]:
    """Run ``fn``; user errors become one ``error:`` line on stderr and exit code 2; SIGINT and
    SIGTERM become ``error: interrupted`` and exit code 130 or 143 (temporaries removed)."""
    try:
        with _sigterm_raises_terminated():
            return 0, fn()
    except DvclicError as exc:
        print(f"error: {flag_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR, None
    except BrokenPipeError:
        print("error: the output pipe was closed by its reader", file=sys.stderr)
        return EXIT_USER_ERROR, None
    except Terminated:
        print("error: interrupted (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED, None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED, None


def run_and_report(fn: Callable[[], dict], as_json: bool, describe: Callable[[dict], str], *,
                   to_stderr: bool = False) -> int:
    """Run a command's work (:func:`call_guarded`); print its summary, one JSON line with ``as_json``
    (to stderr when stdout carries the data); return the exit code."""
    rc, summary = call_guarded(fn)
    if rc == 0:
        print(json.dumps(summary) if as_json else describe(summary), file=sys.stderr if to_stderr else sys.stdout)
    return rc


def flag_error(exc: BaseException) -> DvclicError:
    """A :class:`~dvclic.params.ParameterError` reworded with this command's flag name
    (``quality: must be ...`` -> ``--quality: must be ...``); other errors unchanged."""
    from .params import ParameterError

    if isinstance(exc, ParameterError):
        return DvclicError(f"--{exc.name.replace('_', '-')}: {exc.problem}")
    return exc  # type: ignore[return-value]


def coding_params(**values: object):  # noqa: ANN201 - a CodingParams
    """``CodingParams(**values)`` with its errors in flag form."""
    from .params import CodingParams, ParameterError

    try:
        return CodingParams(**{k: v for k, v in values.items() if v is not None})
    except ParameterError as exc:
        raise flag_error(exc) from None


def _stdout_is_data(args: argparse.Namespace) -> bool:
    """Whether stdout carries data (``-o -``): then the summary goes to stderr."""
    return getattr(args, "output", None) == "-"


def encode_main(argv: Sequence[str] | None = None, *, prog: str = "encode") -> int:
    from .rdo import DEFAULT_MODES

    p = ArgParser(prog=prog, description="Encode a video file to a .dvc bitstream.")
    p.add_argument("input", help="video file: mp4/mkv/avi/mov/y4m, raw 4:2:0 .yuv, or - for a stream "
                                 "(y4m, Matroska, MPEG-TS) on standard input")
    p.add_argument("-o", "--output", required=True, help="output .dvc file, or - for standard output")
    p.add_argument("--config", help="model config YAML (default: the shipped default model)")
    p.add_argument("--weights", help="weights file, shipped name or SHA-256 (default: the config's, or the "
                                     "shipped default)")
    p.add_argument("--quality", type=int, help="quality index 0 (lowest rate) .. num_qualities-1")
    p.add_argument("--frames", type=int, help="encode at most N frames")
    p.add_argument("--intra-period", type=int, help="I-frame every P frames; -1: first frame only")
    p.add_argument("--intra-offset", type=int,
                   help="code the intra period's I-frames this many qualities higher (capped at the highest; "
                        "default: the model config's)")
    p.add_argument("--refine-steps", type=int, default=0,
                   help="encode-time latent refinement steps for I-frames and residuals (SGA; LOF for "
                        "codecs with a context model; 0: off)")
    p.add_argument("--refine-precision", default="float32", choices=["float32", "bfloat16"],
                   help="precision of the refinement steps: bfloat16 is faster where bf16 convolutions are "
                        "native (measured on AMX CPUs; elsewhere measure first); "
                        "the stream and the decoder are unchanged")
    p.add_argument("--profile", type=int,
                   help="entropy-model profile for codecs that have one (msp: decoding passes 1, 2, 4, ...); "
                        "written into the stream")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=parse_size, help="WxH for raw .yuv input (default: from the file name)")
    p.add_argument("--fps", type=_fps, help="frame rate for raw .yuv input")
    p.add_argument("--bit-depth", type=int, choices=[8, 10], help="bit depth of raw .yuv input")
    p.add_argument("--recon", help="also write the encoder's reconstruction (y4m/yuv/mp4/DIR/, or - for y4m "
                                   "on standard output)")
    p.add_argument("--modes", default=DEFAULT_MODES,
                   help="P-frame candidates chosen per frame by rate-distortion cost: a comma list of "
                        "mc (coded flow + MC net), warp (coded flow, no MC net), zero (no motion), "
                        "skip (per-block skip mask), intra (I-frame); default: all")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        from .api import encode_file

        params = coding_params(quality=args.quality, frames=args.frames, intra_period=args.intra_period,
                               refine_steps=args.refine_steps, modes=args.modes, profile=args.profile,
                               intra_offset=args.intra_offset, refine_precision=args.refine_precision)
        update, close = _progress_bar("encode", sys.stderr.isatty())
        refine_update, refine_close = _progress_bar("refine", sys.stderr.isatty() and args.refine_steps > 0)
        try:
            report = encode_file(
                args.input, args.output, params=params, config=args.config, weights=args.weights,
                device=args.device, size=args.size, fps=args.fps, bit_depth=args.bit_depth,
                reconstruction_path=args.recon, refine_progress=lambda i, n, _loss: refine_update(i, n),
                progress=update,
            )
        finally:
            refine_close()
            close()
        return report.summary()

    if args.output == "-" and args.recon == "-":
        print(f"{prog}: error: -o - and --recon - cannot share standard output", file=sys.stderr)
        return EXIT_USER_ERROR
    return run_and_report(work, args.json, lambda s: (
        f"{s['frames']} frames ({s['frame_types'][:40]}{'...' if len(s['frame_types']) > 40 else ''}) "
        f"{s['width']}x{s['height']} -> {args.output}: {s['bytes']} bytes, {s['bpp']:.4f} bpp, "
        f"PSNR RGB {s['psnr_rgb']:.2f} dB, YUV {s['psnr_yuv']:.2f} dB, {s['encode_fps']:.2f} fps"),
        to_stderr=_stdout_is_data(args) or args.recon == "-")


def decode_main(argv: Sequence[str] | None = None, *, prog: str = "decode", store: object = None) -> int:
    """``store``: a :class:`~dvclic.store.ModelStore` to load from (the fuzz runner passes a warm one)."""
    p = ArgParser(prog=prog, description="Decode a .dvc bitstream to y4m / yuv / mp4 / PNG frames.")
    p.add_argument("input", help=".dvc file, or - for a stream on standard input")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.y4m, OUT.yuv, OUT.mp4, DIR/ for PNG frames, or - for y4m on standard output")
    p.add_argument("--weights", help="weights file (default: the shipped file the stream names)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--strict", action="store_true",
                   help="fail when a decoded frame differs from the encoder's reconstruction (its hash)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="largest width*height accepted (default 4096*2304), a memory guard")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        from .api import decode_file
        from .bitstream import DEFAULT_MAX_PIXELS

        update, close = _progress_bar("decode", sys.stderr.isatty())
        try:
            report = decode_file(args.input, args.output, store=store, weights=args.weights, device=args.device,
                                 progress=update, strict=args.strict,
                                 max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
        finally:
            close()
        return report.summary()

    return run_and_report(work, args.json, lambda s: (
        f"{s['frames']} frames {s['width']}x{s['height']} -> {args.output} ({s['decode_fps']:.2f} fps"
        + ("" if "exact" not in s else ", bit-exact" if s["exact"] else
           f", NOT bit-exact in frames {s['inexact_frames'][:10]}") + ")"), to_stderr=_stdout_is_data(args))

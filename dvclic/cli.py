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
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


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
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR, None
    except Terminated:
        print("error: interrupted (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED, None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED, None


def _run(fn: Callable[[], dict], as_json: bool, describe: Callable[[dict], str]) -> int:
    rc, summary = call_guarded(fn)
    if rc == 0:
        print(json.dumps(summary) if as_json else describe(summary))
    return rc


def encode_main(argv: Sequence[str] | None = None) -> int:
    p = ArgParser(prog="encode", description="Encode a video file to a .dvc bitstream.")
    p.add_argument("input", help="video file: mp4/mkv/avi/mov/y4m, or raw 4:2:0 .yuv")
    p.add_argument("-o", "--output", required=True, help="output .dvc file")
    p.add_argument("--config", help="model config YAML (default: the shipped default model)")
    p.add_argument("--weights", help="weights file (default: the config's, or the shipped default)")
    p.add_argument("--quality", type=int, help="quality index 0 (lowest rate) .. num_qualities-1")
    p.add_argument("--frames", type=int, help="encode at most N frames")
    p.add_argument("--intra-period", type=int, help="I-frame every P frames; -1: first frame only")
    p.add_argument("--refine-steps", type=int, default=0,
                   help="encode-time SGA latent refinement steps for I-frames and residuals (0: off)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=parse_size, help="WxH for raw .yuv input (default: from the file name)")
    p.add_argument("--fps", type=_fps, help="frame rate for raw .yuv input")
    p.add_argument("--bit-depth", type=int, choices=[8, 10], help="bit depth of raw .yuv input")
    p.add_argument("--recon", help="also write the encoder's reconstruction (y4m/yuv/mp4/DIR/)")
    p.add_argument("--modes", default="mc,warp,zero,skip,intra",
                   help="P-frame candidates chosen per frame by rate-distortion cost: a comma list of "
                        "mc (coded flow + MC net), warp (coded flow, no MC net), zero (no motion), "
                        "skip (per-block skip mask), intra (I-frame); default: all")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        from .api import encode_file

        update, close = _progress_bar("encode", sys.stderr.isatty())
        refine_update, refine_close = _progress_bar("refine", sys.stderr.isatty() and args.refine_steps > 0)
        try:
            report = encode_file(
                args.input, args.output, config=args.config, weights=args.weights, quality=args.quality,
                frames=args.frames, intra_period=args.intra_period, device=args.device, size=args.size,
                fps=args.fps, bit_depth=args.bit_depth, reconstruction_path=args.recon,
                refine_steps=args.refine_steps, refine_progress=lambda i, n, _loss: refine_update(i, n),
                progress=update, modes=args.modes,
            )
        finally:
            refine_close()
            close()
        return report.summary()

    return _run(work, args.json, lambda s: (
        f"{s['frames']} frames ({s['frame_types'][:40]}{'...' if len(s['frame_types']) > 40 else ''}) "
        f"{s['width']}x{s['height']} -> {args.output}: {s['bytes']} bytes, {s['bpp']:.4f} bpp, "
        f"PSNR RGB {s['psnr_rgb']:.2f} dB, YUV {s['psnr_yuv']:.2f} dB, {s['encode_fps']:.2f} fps"))


def decode_main(argv: Sequence[str] | None = None) -> int:
    p = ArgParser(prog="decode", description="Decode a .dvc bitstream to y4m / yuv / mp4 / PNG frames.")
    p.add_argument("input", help=".dvc file")
    p.add_argument("-o", "--output", required=True, help="OUT.y4m, OUT.yuv, OUT.mp4 or DIR/ for PNG frames")
    p.add_argument("--weights", help="weights file (default: the shipped file the .dvc names)")
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
            report = decode_file(args.input, args.output, weights=args.weights, device=args.device,
                                 progress=update, strict=args.strict,
                                 max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
        finally:
            close()
        return report.summary()

    return _run(work, args.json, lambda s: (
        f"{s['frames']} frames {s['width']}x{s['height']} -> {args.output} ({s['decode_fps']:.2f} fps"
        + ("" if "exact" not in s else ", bit-exact" if s["exact"] else
           f", NOT bit-exact in frames {s['inexact_frames'][:10]}") + ")"))

"""The ``dvclic`` console command: one subcommand per tool, each with ``--help``.

``dvclic SUBCOMMAND [options]``; ``tools/*.py`` are thin wrappers that call the same functions.
Every subcommand exits 0 on success, 2 with one ``error:`` line on a user error, 130/143 when
interrupted (``dvclic fuzz`` also exits 1 when a case broke the decoder's contract).
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from ..cli import EXIT_USER_ERROR, quiet_third_party_warnings

#: name -> (module, function, one-line description); each function takes (argv, prog=...)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "encode": ("dvclic.cli", "encode_main", "encode a video file (or a y4m stream on stdin) to .dvc"),
    "decode": ("dvclic.cli", "decode_main", "decode a .dvc file (or stream) to y4m/yuv/mp4/PNG frames"),
    "train": ("dvclic.train.cli", "main", "train a model on a staged schedule (torchrun for several GPUs)"),
    "eval": ("dvclic.evaluation.cli", "main", "rate-distortion evaluation against x264/x265 on a dataset"),
    "eval-images": ("dvclic.commands.eval_images", "main", "a model's intra codec on a folder of images"),
    "bench": ("dvclic.bench.cli", "main", "speed and complexity of a codec or video model"),
    "inspect-motion": ("dvclic.commands.inspect_motion", "main", "what the motion path predicts on real frames"),
    "export-weights": ("dvclic.commands.export_weights", "main", "compact weights file from a checkpoint"),
    "pack-data": ("dvclic.commands.pack_data", "main", "a training config's pictures as a small folder of patches"),
    "fuzz": ("dvclic.commands.fuzz", "main", "fuzz the decoder with hostile, checksum-valid streams"),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = ["usage: dvclic SUBCOMMAND [options]   (dvclic SUBCOMMAND --help for its options)", "", "subcommands:"]
    lines += [f"  {name:<{width}}  {desc}" for name, (_, _, desc) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def run(name: str, argv: Sequence[str]) -> int:
    """Run subcommand ``name`` with its own arguments."""
    module, function, _ = SUBCOMMANDS[name]
    quiet_third_party_warnings()  # before the imports: compressai warns when it is imported
    entry = getattr(importlib.import_module(module), function)
    try:
        return int(entry(list(argv), prog=f"dvclic {name}") or 0)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(f"dvclic: error: give a subcommand ({', '.join(SUBCOMMANDS)}); dvclic --help lists them",
              file=sys.stderr)
        return EXIT_USER_ERROR
    if args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"dvclic {version('dvclic')}")
        except PackageNotFoundError:
            print("dvclic (not installed)")
        return 0
    if args[0] not in SUBCOMMANDS:
        print(f"dvclic: error: unknown subcommand {args[0]!r}; valid: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return run(args[0], args[1:])


if __name__ == "__main__":  # python -m dvclic.commands
    sys.exit(main())

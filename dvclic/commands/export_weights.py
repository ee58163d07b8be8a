"""``dvclic export-weights``: a compact weights file from a training checkpoint or another weights file.

``int8`` stores convolution kernels as int8 with per-channel scales and the rest as fp16 (see
``dvclic/compact.py``); decoding stays exact because the entropy tables are built from the
stored values. The file is written atomically.
"""

from __future__ import annotations

from typing import Sequence

from ..cli import ArgParser, quiet_third_party_warnings, run_and_report
from ..errors import InputError


def main(argv: Sequence[str] | None = None, *, prog: str = "export-weights") -> int:
    p = ArgParser(prog=prog, description="Write a compact dvclic weights file from a training checkpoint "
                                         "(OUT/last.pt) or another weights file.")
    p.add_argument("source", help="training checkpoint (OUT/last.pt) or dvclic weights file")
    p.add_argument("-o", "--out", required=True, help="weights file to write")
    p.add_argument("--storage", default="int8", choices=["int8", "fp16", "fp32"])
    p.add_argument("--model", metavar="CONFIG",
                   help="write the weights under this model config (it must describe the same networks; "
                        "it may change coding options such as a codec's entropy_parameters)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        from ..store import export_weights

        try:
            return export_weights(args.source, args.out, storage=args.storage, model_config=args.model)
        except OSError as exc:
            raise InputError(f"{args.out}: cannot write ({exc.strerror or exc})") from None

    return run_and_report(work, args.json, lambda res: (
        f"{res['dest']}: {res['bytes'] / 1e6:.2f} MB, {res['storage']}, from {res['source_kind']}, "
        f"sha256 {res['sha256'][:16]}…"))

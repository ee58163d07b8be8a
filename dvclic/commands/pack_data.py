"""``dvclic pack-data``: a training config's pictures as a small folder of patches (``dvclic/train/pack.py``).

For a lent GPU machine, which receives at most 64 MiB with the working tree and reaches no data
(README, "Training on a lent GPU"). The folder is what an ``images`` data source reads.
"""

from __future__ import annotations

from typing import Sequence

from ..cli import ArgParser, quiet_third_party_warnings, run_and_report
from ..errors import InputError


def main(argv: Sequence[str] | None = None, *, prog: str = "pack-data") -> int:
    p = ArgParser(prog=prog, description="Pack the pictures of a training config's data sources (images, frames, "
                                         "vimeo) into one folder of JPEG patches under a size budget.")
    p.add_argument("config", help="training config whose data sources are packed")
    p.add_argument("-o", "--out", required=True, help="folder to create (new, or empty)")
    p.add_argument("--max-mb", type=float, default=28.0, help="budget for the patches in MB (10^6 bytes)")
    p.add_argument("--patch", type=int, default=384, help="patch side in pixels (smaller pictures give smaller ones)")
    p.add_argument("--shrink", type=float, default=2.0,
                   help="shrink each picture by up to this factor first (never below --min-side)")
    p.add_argument("--min-side", type=int, default=256, help="pictures whose short side is smaller are left out")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality of the patches (4:4:4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        from ..train.config import load_train_config
        from ..train.pack import pack_pictures

        cfg = load_train_config(args.config)
        try:
            return pack_pictures(cfg.data, args.out, max_bytes=int(args.max_mb * 1e6), patch=args.patch,
                                 shrink=args.shrink, min_side=args.min_side, quality=args.quality, seed=args.seed)
        except OSError as exc:
            raise InputError(f"{args.out}: cannot write ({exc.strerror or exc})") from None

    def describe(res: dict) -> str:
        left = f"; left out: {', '.join(s['kind'] for s in res['left_out'])}" if res["left_out"] else ""
        return f"{res['dest']}: {res['patches']} patches of {res['candidates']} pictures, {res['bytes'] / 1e6:.1f} MB{left}"

    return run_and_report(work, args.json, describe)

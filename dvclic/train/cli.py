"""``dvclic train`` (``tools/train.py``) front end."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import MappingProxyType
from typing import Sequence

from ..cli import ArgParser, flag_error, quiet_third_party_warnings
from ..errors import DvclicError


def main(argv: Sequence[str] | None = None, *, prog: str = "train") -> int:
    p = ArgParser(prog=prog, description="Train a dvclic model on a staged schedule.")
    p.add_argument("--config", required=True, help="training config YAML (configs/train/*.yaml)")
    p.add_argument("--out", required=True, help="run folder: checkpoints, TensorBoard logs, weights.pt")
    p.add_argument("--model", help="model config YAML replacing the training config's `model` (same schedule)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="start from the networks of a weights file or checkpoint (fresh optimizers, stage 1)")
    p.add_argument("--init-part", metavar="PART=WEIGHTS", action="append", default=[],
                   help="after --init, take one part (intra, estimator, motion_codec, mc_net, residual_codec) "
                        "from another weights file or checkpoint; repeatable")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    args = p.parse_args(argv)
    quiet_third_party_warnings()
    import torch

    from .config import load_train_config
    from .engine import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = load_train_config(args.config)
        if args.model:
            cfg = replace(cfg, model=args.model, raw=MappingProxyType({**cfg.raw, "model": args.model}))
        if args.init and args.resume:
            raise DvclicError("--init and --resume exclude each other (--resume continues OUT/last.pt)")
        parts = {}
        for item in args.init_part:
            part, sep, source = item.partition("=")
            if not sep or not part or not source:
                raise DvclicError(f"--init-part {item}: expected PART=WEIGHTS")
            if part in parts:
                raise DvclicError(f"--init-part {item}: {part} is named twice")
            parts[part] = source
        if parts and args.resume:
            raise DvclicError("--init-part and --resume exclude each other (--resume continues OUT/last.pt)")
        weights = Trainer(cfg, args.out, device=args.device, init=args.init,
                          init_parts=parts).run(resume=args.resume)
    except DvclicError as exc:
        print(f"error: {flag_error(exc)}", file=sys.stderr)
        return 2
    if weights is not None:
        print(f"weights: {weights}")
    return 0

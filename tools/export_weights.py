#!/usr/bin/env python3
"""Write a compact dvclic weights file from a training checkpoint or another weights file.

``python tools/export_weights.py runs/NAME/last.pt -o NAME.pt [--storage int8|fp16|fp32] [--json]``

``int8`` stores convolution kernels as int8 with per-channel scales and the rest
as fp16 (see dvclic/compact.py); decoding stays exact because the entropy tables
are built from the stored values. The file is written atomically.
"""

import argparse
import json
import sys

from dvclic.cli import quiet_third_party_warnings
from dvclic.errors import DvclicError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("source", help="training checkpoint (OUT/last.pt) or dvclic weights file")
    p.add_argument("-o", "--out", required=True, help="weights file to write")
    p.add_argument("--storage", default="int8", choices=["int8", "fp16", "fp32"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    quiet_third_party_warnings()
    from dvclic.checkpoint import export_weights

    try:
        res = export_weights(args.source, args.out, storage=args.storage)
    except (DvclicError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['dest']}: {res['bytes'] / 1e6:.2f} MB, {res['storage']}, from {res['source_kind']}, "
              f"sha256 {res['sha256'][:16]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``dvclic fuzz``: fuzz the decoder with hostile, checksum-valid streams (see :mod:`dvclic.fuzz`).

Without ``--stream`` the bundled sample's first 3 frames are encoded with the shipped weights
first. Prints the outcome counts and every case that broke the decoder's contract. Exit
status: 0 when none did, 1 when some did, 2 (one ``error:`` line) on a user error.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..cli import ArgParser, call_guarded, quiet_third_party_warnings
from ..errors import InputError

EXIT_FAILURES_FOUND = 1


def main(argv: Sequence[str] | None = None, *, prog: str = "fuzz") -> int:
    p = ArgParser(prog=prog, description="Fuzz the .dvc decoder with hostile, checksum-valid streams.")
    p.add_argument("--cases", type=int, default=200, help="number of cases (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the case sample and the random mutants")
    p.add_argument("--stream", help="a valid .dvc file to mutate (default: encode the bundled sample, 3 frames)")
    p.add_argument("--runner", choices=["fork", "subprocess"], default="fork",
                   help="fork: the decoder in a forked child per case (fast); subprocess: tools/decode.py per case")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case before it counts as a hang")
    p.add_argument("--random-share", type=float, default=0.5,
                   help="share of random mutants among the cases, 0..1 (the rest: the hostile-variant generator)")
    p.add_argument("--json", action="store_true", help="print one JSON summary line")
    args = p.parse_args(argv)
    quiet_third_party_warnings()

    def work() -> dict:
        if args.cases < 1:
            raise InputError(f"--cases must be >= 1, got {args.cases}")
        if not 0.0 <= args.random_share <= 1.0:
            raise InputError(f"--random-share must be in 0..1, got {args.random_share}")
        if not args.timeout > 0:
            raise InputError(f"--timeout must be positive, got {args.timeout}")
        from ..fuzz import encode_sample, fuzz_stream

        if args.stream is None:
            with tempfile.TemporaryDirectory(prefix="dvclic-fuzz-") as folder:
                data = encode_sample(Path(folder) / "sample.dvc").read_bytes()
        else:
            path = Path(args.stream)
            if not path.is_file():
                raise InputError(f"stream file not found: {path}")
            data = path.read_bytes()
        report = fuzz_stream(data, cases=args.cases, seed=args.seed, runner=args.runner, timeout=args.timeout,
                             random_share=args.random_share)
        return report.summary()

    rc, summary = call_guarded(work)
    if summary is None:
        return rc
    if args.json:
        print(json.dumps(summary))
    else:
        counts = ", ".join(f"{kind} {n}" for kind, n in summary["counts"].items())
        print(f"{summary['cases']} cases in {summary['seconds']:.1f} s: {counts}")
        if summary["truth_exact"] is False:
            print("note: the unmutated stream does not decode bit-exactly here (the runners decode with one "
                  "thread; was it encoded with more?)")
        for failure in summary["failures"]:
            print(f"  {failure['kind']}: {failure['case']}: {failure['detail']} | {failure['stderr']}")
    return EXIT_FAILURES_FOUND if summary["failures"] else 0

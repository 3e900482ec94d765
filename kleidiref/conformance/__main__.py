"""``python -m kleidiref.conformance BUNDLE [--impl module:callable]``: re-run a repro bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._harness import replay_bundle


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m kleidiref.conformance",
        description="Re-run a conformance repro bundle (a directory written by --kleidiref-repro-dir) "
        "and print kleidiref's diagnosis. Run the suite itself with: pytest --pyargs kleidiref.conformance",
    )
    ap.add_argument("bundle", type=Path, help="the bundle directory (holds case.json, inputs.npz)")
    ap.add_argument("--impl", default=None, help="module:callable (default: the one in case.json)")
    args = ap.parse_args(argv)
    o = replay_bundle(args.bundle, args.impl)
    if o is None:
        print("the implementation does not provide this kernel at this SVL/FZ")
        return 2
    if o.ok:
        print(f"matches: {o.problem.describe()}")
        return 0
    print(o.report)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``kleidiref`` command line.

``kleidiref selfcheck``                       reproduce the bundled golden vectors, print a table
``kleidiref golden check PATH...``            reproduce and compare files or directories
``kleidiref golden reproduce --out-dir D F..`` write the recomputed arrays to D/<same name>
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import golden

__all__ = ["main"]


def _check(paths: Sequence[str | Path]) -> int:
    results = golden.check_paths(paths)
    if not results:
        print("no golden files found", file=sys.stderr)
        return 2
    print(golden.format_table(results))
    return 0 if all(r.ok for r in results) else 1


def _reproduce(out_dir: Path, files: Sequence[str]) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for f in files:
        try:
            arrays = golden.reproduce_file(f)
        except (NotImplementedError, ValueError, TypeError, KeyError) as exc:
            print(f"{f}: {exc}", file=sys.stderr)
            status = 1
            continue
        target = out_dir / Path(f).name
        np.savez(target, **arrays)  # type: ignore[arg-type]
        print(f"{target}: {len(arrays)} arrays")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kleidiref", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selfcheck", help="reproduce every bundled golden vector bit-exactly")
    g = sub.add_parser("golden", help="golden-vector tools")
    gsub = g.add_subparsers(dest="gcmd", required=True)
    gc = gsub.add_parser("check", help="reproduce golden files and compare them")
    gc.add_argument("paths", nargs="+", help=".npz files or directories")
    gr = gsub.add_parser("reproduce", help="write recomputed arrays under the golden field names")
    gr.add_argument("--out-dir", required=True, type=Path)
    gr.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    if args.cmd == "selfcheck":
        return _check([golden.bundled_golden_dir()])
    if args.gcmd == "check":
        return _check(args.paths)
    return _reproduce(args.out_dir, args.files)


if __name__ == "__main__":
    raise SystemExit(main())

"""``kleidiref run``'s command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .compare import max_ulp_distance
from .nodes.common import RefusedByXnnpack
from .program import CPU_NAMES, Runner

__all__ = ["add_parser", "cli_main"]


def add_parser(sub: Any) -> None:
    """Add ``run`` to the CLI's subparsers."""
    p = sub.add_parser("run", help="run a .pte's XNNPACK delegates as a CPU would (bit-exact emulation)")
    p.add_argument("model", type=Path, metavar="MODEL.pte")
    p.add_argument("--cpu", default="sme2", help=f"{', '.join(CPU_NAMES)} or a .json CPU description")
    p.add_argument("--svl", type=int, default=None, help="SVL in bits of an SME CPU (default 512)")
    p.add_argument("--inputs", type=Path, help=".npz with input_0, input_1, ... (default: <model>.io.npz's)")
    p.add_argument("--out", type=Path, help="write output_0, ... to this .npz")
    p.add_argument("--trace", action="store_true", help="per node: type, kernel, output shape")
    p.add_argument("--compare", type=Path, help=".npz with output_0, ...: max ULP distance per output")


def _read_inputs(args: argparse.Namespace) -> list[NDArray[Any]]:
    src = args.inputs or args.model.with_suffix(".io.npz")
    with np.load(src) as z:
        n = sum(1 for k in z.files if k.startswith("input_"))
        return [z[f"input_{i}"] for i in range(n)]


def cli_main(args: argparse.Namespace) -> int:
    """``kleidiref run``: exit 0 on success, 2 when the program cannot be run (the reason on stdout)."""
    try:
        res = Runner(args.model, args.cpu, args.svl).run(_read_inputs(args))
    except (NotImplementedError, RefusedByXnnpack, ValueError, OSError) as exc:
        print(f"kleidiref run: {args.model}: {exc}")
        return 2
    if args.trace:
        for t in res.trace:
            print(t.describe())
    if args.out:
        arrays: dict[str, Any] = {f"output_{i}": o for i, o in enumerate(res.outputs)}
        np.savez(args.out, **arrays)
    if args.compare:
        with np.load(args.compare) as z:
            dist = [max_ulp_distance(o, z[f"output_{i}"]) for i, o in enumerate(res.outputs)]
        print(json.dumps({"max_ulp": dist}))
    return 0

"""``kleidiref run``'s command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .compare import NodeDiff, compare_runs, compare_to_reference, first_divergence, is_node_key, max_ulp_distance
from .compare import node_outputs as node_outputs_of
from .nodes.common import RefusedByXnnpack
from .program import CPU_NAMES, Runner, RunResult, read_inputs

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
    p.add_argument(
        "--compare",
        metavar="REF",
        help=(
            "'eager' (the eager_output_i of <model>.io.npz), an .npz with output_0, ... (max ULP distance per "
            "output), or an .npz of node outputs keyed d<delegate>_n<index> (as --dump-nodes writes: the first "
            "diverging node)"
        ),
    )
    p.add_argument(
        "--compare-cpu",
        metavar="CPU",
        help="run on this CPU too and compare node by node: the first diverging node and how far each node is",
    )
    p.add_argument(
        "--compare-svl",
        type=int,
        metavar="BITS",
        help="the SVL of --compare-cpu (default --svl's): two SVLs of one CPU",
    )
    p.add_argument(
        "--dump-nodes", type=Path, metavar="NODES.npz", help="write every node's output, d<delegate>_n<index>"
    )


def _print_node_diffs(diffs: list[NodeDiff], against: str) -> None:
    """Each node's comparison, then the first diverging node (or that none differs)."""
    for d in diffs:
        print(d.describe())
    first = first_divergence(diffs)
    if first is None:
        print(f"no node differs from {against}")
        return
    ulp = "NaN vs number" if first.max_ulp < 0 else f"max {first.max_ulp} ULP"
    later = [d for d in diffs if (d.delegate, d.index) > (first.delegate, first.index)]
    still = sum(d.differs for d in later)
    print(
        f"first diverging node from {against}: [{first.delegate}:{first.index}] {first.node_type} "
        f"({ulp}, {first.differing} of {first.size} elements); {still} of {len(later)} later nodes still differ"
    )


def _reference(args: argparse.Namespace) -> dict[str, NDArray[Any]]:
    if args.compare == "eager":
        src = args.inputs if args.inputs and args.inputs.name.endswith(".io.npz") else args.model.with_suffix(".io.npz")
        with np.load(src) as z:
            ref = {k.removeprefix("eager_"): z[k] for k in z.files if k.startswith("eager_output_")}
        if not ref:
            raise ValueError(f"{src} holds no eager_output_i")
        return ref
    with np.load(Path(args.compare)) as z:
        return {k: z[k] for k in z.files}


def _compare_outputs(res: RunResult, ref: dict[str, NDArray[Any]]) -> None:
    dist = []
    for i, o in enumerate(res.outputs):
        r = ref[f"output_{i}"]
        if r.dtype != o.dtype:
            raise ValueError(f"output_{i} is {o.dtype}, the reference is {r.dtype}: not comparable in ULPs")
        dist.append(max_ulp_distance(o, r))
    print(json.dumps({"max_ulp": dist}))


def _report(args: argparse.Namespace, res: RunResult, runner: Runner, inputs: list[NDArray[Any]]) -> None:
    if args.trace:
        for t in res.trace:
            print(t.describe())
    if args.out:
        arrays: dict[str, Any] = {f"output_{i}": o for i, o in enumerate(res.outputs)}
        np.savez(args.out, **arrays)
    if args.dump_nodes:
        nodes: dict[str, Any] = dict(node_outputs_of(res))
        np.savez(args.dump_nodes, **nodes)
    if args.compare:
        ref = _reference(args)
        if any(is_node_key(k) for k in ref):
            _print_node_diffs(compare_to_reference(res, ref), str(args.compare))
        else:
            _compare_outputs(res, ref)
    if args.compare_cpu or args.compare_svl:
        cpu = args.compare_cpu or args.cpu
        svl = args.compare_svl if args.compare_svl is not None else args.svl
        other = Runner(runner.program, cpu, svl).run(inputs, keep_node_outputs=True)
        _print_node_diffs(compare_runs(res, other), f"--cpu {cpu}" + (f" --svl {svl}" if svl else ""))


def cli_main(args: argparse.Namespace) -> int:
    """``kleidiref run``: exit 0 on success, 2 when the program cannot be run (the reason on stdout)."""
    keep = bool(args.dump_nodes or args.compare_cpu or args.compare_svl or args.compare)
    try:
        runner = Runner(args.model, args.cpu, args.svl)
        inputs = read_inputs(args.inputs or args.model.with_suffix(".io.npz"))
        _report(args, runner.run(inputs, keep_node_outputs=keep), runner, inputs)
    except (NotImplementedError, RefusedByXnnpack, ValueError, OSError, KeyError) as exc:
        print(f"kleidiref run: {args.model}: {exc}")
        return 2
    return 0

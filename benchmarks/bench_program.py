"""Benchmark ``kleidiref run`` on whole exported programs against float64 BLAS of the same GEMMs.

Run: ``python benchmarks/bench_program.py PROGRAM.pte [...] [--cpu sme2] [--svl 512] [--repeat 3]``

The programs are not in the repository (about 18 MiB per 8da4w and 128 MiB per fp32 program): make them with
``benchmarks/export_transformer.py`` in a separate environment with torch 2.13.0, executorch 1.5.1 and
torchao 0.18.0 (a transformer MLP block, four linears of hidden 2048 / 4096, fp32 and 8da4w, M = 32 and 128):

    /path/to/exportenv/bin/python benchmarks/export_transformer.py /tmp/mlp
    python benchmarks/bench_program.py /tmp/mlp/*.pte

The inputs are ``input_i`` of ``<program>.io.npz`` (the exporter writes it). For each program:

* ``read``: constructing the :class:`~kleidiref.runner.Runner` (reading and decoding the ``.pte``), best of N;
* ``first``: the first run, which decides and packs each GEMM node's weights (pack once);
* the steady runs (best of N), each alternated with float64 BLAS GEMMs of the same M x N x K as the program's
  GEMM nodes (``benchmarks/_common.interleaved``), split from the per-node times of the trace into the GEMM
  nodes, the other nodes (converts, transposes) and the runner's own overhead (the rest of the wall time).

Ratios: the steady run and its GEMM nodes to BLAS; the share that is not GEMM, in a steady run and in a
one-run session (read + first run; the packing counts as GEMM: it is the GEMM operator's creation).
Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _common import best_of, blas_gemm, interleaved, machine, table

from kleidiref.runner import NodeTrace, Runner

GEMM_TYPES = ("XNNFullyConnected", "XNNConv2d", "XNNBatchMatrixMultiply", "XNNDepthwiseConv2d", "XNNConvTranspose2d")


def progress(msg: str) -> None:
    """One status line on stderr, overwritten by the next (only on a terminal)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{msg}")
        sys.stderr.flush()


def inputs_of(path: Path) -> list[NDArray[Any]]:
    io = path.with_suffix(".io.npz")
    if not io.exists():
        raise SystemExit(f"{io} not found: the benchmark reads the program's inputs from it (input_0, ...)")
    with np.load(io) as z:
        return [z[f"input_{i}"] for i in range(sum(k.startswith("input_") for k in z.files))]


def gemm_shapes(runner: Runner, trace: Sequence[NodeTrace]) -> list[tuple[int, int, int]]:
    """(M, N, K) of each GEMM node: M x N from its output, K from its weights (N x K values)."""
    shapes = []
    for t in trace:
        if t.node_type not in GEMM_TYPES:
            continue
        graph = runner.plan.delegates[t.delegate].graph
        assert graph is not None
        node = graph.nodes[t.index]
        f = node.fields
        wid = f.get("filter_id", f.get("input2_id"))
        n = t.shape[-1]
        m = math.prod(t.shape[:-1])
        k = math.prod(graph.value(wid).dims) // max(n, 1)
        if t.node_type == "XNNBatchMatrixMultiply":
            batch = math.prod(t.shape[:-2])
            m, k = t.shape[-2] * batch, k // max(batch, 1)
        shapes.append((m, n, k))
    return shapes


def split(trace: Sequence[NodeTrace]) -> tuple[float, float]:
    """(seconds in GEMM nodes, seconds in the other nodes)."""
    g = sum(t.seconds for t in trace if t.node_type in GEMM_TYPES)
    return g, sum(t.seconds for t in trace) - g


def bench(path: Path, cpu: str, svl: int | None, repeat: int) -> list[Any]:
    name = path.stem
    progress(f"{name}: reading")
    read, _ = best_of(lambda: Runner(path, cpu, svl), repeat)
    runner = Runner(path, cpu, svl)
    xs = inputs_of(path)
    progress(f"{name}: first run (packing)")
    t0 = time.perf_counter()
    first = runner.run(xs)
    first_s = time.perf_counter() - t0
    g_first, _ = split(first.trace)
    blas = [blas_gemm(m, n, k) for m, n, k in gemm_shapes(runner, first.trace)]
    runs: list[tuple[float, Any]] = []

    def one_run() -> None:
        progress(f"{name}: steady run {len(runs) + 1}/{repeat}")
        t = time.perf_counter()
        res = runner.run(xs)
        runs.append((time.perf_counter() - t, res))

    def all_blas() -> None:
        for f in blas:
            f()

    _, tb = interleaved(one_run, all_blas, repeat)
    wall, res = min(runs, key=lambda r: r[0])
    g, other = split(res.trace)
    over = wall - g - other
    b = min(tb)
    session = read + first_s
    return [
        name,
        f"{read * 1e3:.0f}",
        f"{first_s * 1e3:.0f}",
        f"{wall * 1e3:.0f}",
        f"{g * 1e3:.0f}",
        f"{other * 1e3:.1f}",
        f"{over * 1e3:.1f}",
        f"{b * 1e3:.1f}",
        f"{wall / b:.1f}",
        f"{g / b:.1f}",
        f"{100 * (wall - g) / wall:.1f}",
        f"{100 * (session - g_first) / session:.1f}",
    ]


HEADERS = [
    "program",
    "read ms",
    "first ms",
    "run ms",
    "GEMM ms",
    "other ms",
    "runner ms",
    "BLAS ms",
    "run/BLAS",
    "GEMM/BLAS",
    "non-GEMM % run",
    "non-GEMM % session",
]


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", type=Path, nargs="+", metavar="PROGRAM.pte")
    ap.add_argument("--cpu", default="sme2", help="a kleidiref run CPU name (default sme2)")
    ap.add_argument("--svl", type=int, default=None, help="SVL of an SME CPU in bits (default 512)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many reads and steady runs")
    args = ap.parse_args(argv)
    out(f"machine: {machine()}; cpu {args.cpu}, svl {args.svl or 'default'}, best of {args.repeat}")
    rows = [bench(p, args.cpu, args.svl, args.repeat) for p in args.programs]
    progress("")
    out(table(HEADERS, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

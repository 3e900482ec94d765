"""Benchmark ``kleidiref sweep`` with 1 and 2 workers (issue 19: ``--workers 2`` at least 1.7x faster on 2 cores).

A plain script (not a test)::

    python benchmarks/sweep_workers.py MODEL.pte [--repeat 3] [--workers 2] [--cpu sme2,sme,neon-i8mm,x86-avx2]
                                       [--svl 128,256,512,1024,2048]

Times the whole ``kleidiref.sweep(MODEL, cpus, svls, workers=w, times=False)`` call, end to end (the pool's
process start-up, each worker importing kleidiref and reading the program, every unit), alternately with
1 and N workers, ``--repeat`` times each, and checks that both give the same records. Reported: the number
of units, best and median seconds, the ratio of the 1-worker best to the N-worker best, the CPU count and the
load average before and after, and the parallel capacity the machine had then: a pure-Python loop run in N
processes at once vs one after the other (N on an idle N-core machine; on a shared one, the ceiling of the
ratio). This
process's BLAS runs one thread by default, as each pool worker's does (``--default-blas-threads``: as it is).

Use a program whose units take well over the pool's start-up (about 1.3 s here: spawning, importing kleidiref,
reading the program): e.g. the transformer MLP ``mlp_h2048_m128__ao_8da4w_g32.pte`` of
``benchmarks/export_transformer.py OUT --hidden 2048 --tokens 128 --recipes ao_8da4w_g32`` (four 8da4w linears
2048 -> 4096 -> 2048 -> 4096 -> 2048, 128 tokens; about 1.1 s a unit). Figures: docs/run.md, "Sweeps".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
if "--default-blas-threads" not in sys.argv:
    # One BLAS thread in this process too, set before numpy loads, so that 1 worker is measured at its best: with
    # OpenBLAS's default (one thread per core) next to other busy processes, 1 worker was up to 5x slower here.
    for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_k] = "1"

from kleidiref.sweep import DEFAULT_CPUS, DEFAULT_SVLS, strip_times, sweep


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _spin(n: int = 20_000_000) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i
    return time.perf_counter() - t0


def _capacity(workers: int) -> float:
    """How many times faster ``workers`` CPU-bound processes ran at once than one after the other."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        list(ex.map(_spin, [1000] * workers))  # started
        t0 = time.perf_counter()
        list(ex.map(_spin, [20_000_000] * workers))
        together = time.perf_counter() - t0
    alone = sum(_spin() for _ in range(workers))
    return alone / together


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("model", type=Path, metavar="MODEL.pte")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpu", default=",".join(DEFAULT_CPUS))
    p.add_argument("--svl", default=",".join(map(str, DEFAULT_SVLS)))
    p.add_argument("--default-blas-threads", action="store_true", help="leave this process's BLAS threads as they are")
    args = p.parse_args(argv)
    load_before, cap_before = _load(), _capacity(args.workers)
    times: dict[int, list[float]] = {1: [], args.workers: []}
    results = {}
    for _ in range(args.repeat):
        for w in times:
            t0 = time.perf_counter()
            recs = sweep(args.model, args.cpu, args.svl, workers=w, times=False, progress=False)
            times[w].append(time.perf_counter() - t0)
            results[w] = strip_times(recs)
    same = results[1] == results[args.workers]
    units = sum(r["kind"] == "unit" for r in results[1])
    print(f"program: {args.model.name}; {units} units ({args.cpu} x SVL {args.svl}); os.cpu_count() = {os.cpu_count()}")
    print(f"load average before: {load_before}; after: {_load()}; OPENBLAS_NUM_THREADS here: "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")  # fmt: skip
    print(f"parallel capacity ({args.workers} CPU-bound processes at once vs in turn): before {cap_before:.2f}x, "
          f"after {_capacity(args.workers):.2f}x")  # fmt: skip
    for w, ts in times.items():
        runs = ", ".join(f"{t:.2f}" for t in ts)
        print(f"workers={w}: best {min(ts):.2f} s, median {statistics.median(ts):.2f} s ({runs})")
    print(f"speed-up, best vs best: {min(times[1]) / min(times[args.workers]):.2f}x; records identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

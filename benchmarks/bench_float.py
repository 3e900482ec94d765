"""Benchmark the float variants (pf32_gemm, pf16_gemm) against float64 BLAS GEMM.

A plain script (not a test)::

    python benchmarks/bench_float.py [--repeat 5] [--svl 512] [--no-fz] [--quick] [--threads N]

For each shape (M x N x K, weights N x K) it times, alternately with a float64 BLAS GEMM of
the same shape on operands converted beforehand, in the same run:

* ``kernel``: the real kernel object's ``run_matmul`` (the SME2 MOPA kernel for M > 1, the
  SME2 GEMV kernel for M == 1) on operands packed beforehand into plain arrays: every call
  reads the packed RHS blocks afresh;
* ``kernel, packed once``: the same on a :class:`kleidiref._buffers.PackedRhs` (weights packed
  once, as XNNPACK packs them at model load, and as ``pack_weights`` returns them): the first
  call decodes the RHS (its time is the "first ms" column), later calls reuse the decoding;
* ``chain``: the engine's K loop alone (``fma32_chain`` / ``f16_pair_chain``) on a [K, N] W,
  i.e. ``kernel`` minus unpacking and epilogue;
* ``gemm()``: the end-to-end entry point, packing included.

Reported: best and median times, the ratio of the best to the best BLAS time (targets, issue 3:
pf32 <= 40x at 128x2048x2048 and <= 8x at 1x8192x2048; pf16 <= 15x and <= 5x), the time of the
first (warm-up) call and what it keeps allocated (the decoding a PackedRhs keeps), and the
peak memory one later call allocates (tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blas_gemm, interleaved, machine, peak_bytes, table, traced

from kleidiref import _engine
from kleidiref._buffers import as_packed_rhs
from kleidiref.numerics import fma32
from kleidiref.targets import get_target
from kleidiref.variants import pf16_gemm, pf32_gemm

SHAPES = [(128, 2048, 2048), (1, 8192, 2048)]
TARGETS = {("pf32", 128): 40.0, ("pf32", 1): 8.0, ("pf16", 128): 15.0, ("pf16", 1): 5.0}


def _cases(variant: str, m: int, n: int, k: int, svl: int, fz: bool) -> dict[str, Callable[[], Any]]:
    """The timed callables of one variant and shape, operands prepared once."""
    rng = np.random.default_rng(1)
    dt = np.float32 if variant == "pf32" else np.float16
    lhs = rng.standard_normal((m, k)).astype(dt)
    rhs = rng.standard_normal((n, k)).astype(dt)
    bias = rng.standard_normal(n).astype(dt)
    dst = np.zeros((m, n), dtype=dt)
    isz = np.dtype(dt).itemsize
    mod: Any = pf32_gemm if variant == "pf32" else pf16_gemm
    gemv = m == 1
    kern = (mod.SME2_GEMV if gemv else mod.SME2_MOPA)(svl, fz=fz)
    rhs_p = (
        pf32_gemm.kai_rhs_pack_nxk_f32p2vlx1biasf32_f32_f32_sme(svl)
        if variant == "pf32"
        else pf16_gemm.kai_rhs_pack_nxk_x16p2vlx2b_x16_x16_sme(svl)
    ).pack(rhs, bias)
    once = as_packed_rhs(rhs_p)
    lhs_arg = (
        np.ascontiguousarray(lhs)
        if gemv
        else (
            pf32_gemm.kai_lhs_pack_f32p2vlx1_f32_sme(svl)
            if variant == "pf32"
            else pf16_gemm.kai_lhs_pack_x16p2vlx2_x16_sme(svl)
        ).pack(lhs)
    )

    def kernel_on(rhs_buf: Any) -> Callable[[], None]:
        if gemv:
            return lambda: kern.run_matmul(1, n, k, lhs_arg, k * isz, rhs_buf, dst, n * isz, isz, -np.inf, np.inf)
        return lambda: kern.run_matmul(m, n, k, lhs_arg, rhs_buf, dst, n * isz, isz, -np.inf, np.inf)

    w_t = np.ascontiguousarray(rhs.T)
    if variant == "pf32":
        acc0 = np.broadcast_to(fma32(np.float32(1.0), bias, np.float32(0.0), fz=fz), (m, n))

        def run_chain() -> None:
            _engine.fma32_chain(acc0, lhs, w_t, fz=fz)
    else:
        acc16 = np.broadcast_to(bias.astype(np.float32), (m, n))

        def run_chain() -> None:
            _engine.f16_pair_chain(acc16, lhs.view(np.float16), w_t.view(np.float16))

    target = get_target().replace(svl_bits=svl, flush_to_zero=fz)

    def run_gemm() -> None:
        mod.gemm(lhs, rhs, bias=bias, target=target)

    return {"kernel": kernel_on(rhs_p), "kernel, packed once": kernel_on(once), "chain": run_chain, "gemm()": run_gemm}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--svl", type=int, default=512)
    ap.add_argument("--no-fz", action="store_true", help="FPCR.FZ clear (default: set, as XNNPACK's targets)")
    ap.add_argument("--quick", action="store_true", help="K / 4 (a smoke run)")
    ap.add_argument("--threads", type=int, default=0, help="KLEIDIREF_THREADS for the engine (0: default)")
    ap.add_argument("--variant", choices=["pf32", "pf16", "all"], default="all")
    args = ap.parse_args(argv)
    if args.threads:
        os.environ["KLEIDIREF_THREADS"] = str(args.threads)
    fz = not args.no_fz
    print(machine())
    print(f"engine threads: {_engine.worker_threads()}, SVL {args.svl}, FZ {int(fz)}, best of {args.repeat}\n")
    headers = [
        "case",
        "MxNxK",
        "best ms",
        "median ms",
        "BLAS ms",
        "ratio",
        "target",
        "first ms",
        "peak MiB",
        "cache MiB",
    ]
    results = []
    blas_times: dict[tuple[int, int, int], list[float]] = {}
    for variant in ("pf32", "pf16") if args.variant == "all" else (args.variant,):
        for m, n, k in SHAPES:
            k = k // 4 if args.quick else k
            base = blas_gemm(m, n, k)
            for what, fn in _cases(variant, m, n, k, args.svl, fz).items():
                t0 = time.perf_counter()
                cache, _ = traced(fn)  # warm up (pool, caches); what it keeps: the PackedRhs's decoding
                first = time.perf_counter() - t0
                ours, ref = interleaved(fn, base, args.repeat)
                blas_times.setdefault((m, n, k), []).extend(ref)
                results.append((variant, what, (m, n, k), ours, first, peak_bytes(fn), cache))
                print(
                    f"{variant} {what} {m}x{n}x{k}: best {min(ours) * 1e3:.1f} ms, BLAS {min(ref) * 1e3:.2f} ms",
                    flush=True,
                )
    rows = []
    for variant, what, shape, ours, first, peak, cache in results:
        # BLAS: best over every run of that shape (the least disturbed on a shared machine).
        ref_best = min(blas_times[shape])
        ratio = min(ours) / ref_best
        goal = None if what == "chain" else TARGETS.get((variant, min(shape[0], 128)))
        ok = "" if goal is None or args.quick else ("met" if ratio <= goal else "MISSED")
        rows.append(
            [
                f"{variant} {what}",
                "x".join(map(str, shape)),
                f"{min(ours) * 1e3:.1f}",
                f"{statistics.median(ours) * 1e3:.1f}",
                f"{ref_best * 1e3:.2f}",
                f"{ratio:.1f}x",
                f"<= {goal:g}x {ok}" if goal else "",
                f"{first * 1e3:.0f}",
                f"{peak / 2**20:.1f}",
                f"{cache / 2**20:.0f}" if cache >= 2**20 else "",
            ]
        )
    print()
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

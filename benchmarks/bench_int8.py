"""Benchmark the int8 variants (qp8_f32_qc8w_gemm, pqs8_qc8w_gemm) against float64 BLAS GEMM.

A plain script (not a test)::

    python benchmarks/bench_int8.py [--repeat 5] [--svl 512] [--no-fz] [--quick]

Each case times the bit-exact emulation with the weights packed once (``pack_weights``; the
first call also decodes the packed bytes once, reported separately as "first"), and a float64
BLAS GEMM of the same shapes on operands converted beforehand, in the same run. Reported: the
best time of each, the median of their per-repeat ratios (emulation / BLAS, measured alternately;
the target is <= 1.0), the memory the one-time decode keeps, and the peak memory the emulation
allocates during one steady-state call (tracemalloc). Shapes are M x N x K with
weights N x K; the Llama-3.2-1B decoder layer's seven linears are q/o 2048x2048, k/v 512x2048,
gate/up 8192x2048, down 2048x8192.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _common import interleaved, traced

from kleidiref.targets import Target
from kleidiref.variants import pqs8_qc8w_gemm, qp8_f32_qc8w_gemm

LLAMA_LAYER = [
    ("q", 2048, 2048),
    ("k", 512, 2048),
    ("v", 512, 2048),
    ("o", 2048, 2048),
    ("gate", 8192, 2048),
    ("up", 8192, 2048),
    ("down", 2048, 8192),
]


def _interleaved(fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """(best time of ``fn_a``, best time of ``fn_b``, median of the per-pair ratios a/b).

    The two are measured alternately; the median ratio of adjacent pairs is robust to other
    load on a shared machine, the best times are what a quiet machine gives.
    """
    ta, tb = interleaved(fn_a, fn_b, repeat)
    return min(ta), min(tb), statistics.median(a / b for a, b in zip(ta, tb, strict=True))


class Case:
    """One or more linears (a layer) with weights prepared once, plus its float64 baseline."""

    def __init__(
        self, variant: str, label: str, m: int, shapes: list[tuple[int, int]], target: Target, seed: int = 0
    ) -> None:
        rng = np.random.default_rng(seed)
        self.variant, self.label, self.m, self.target = variant, label, m, target
        self.calls: list[Callable[[], Any]] = []
        self.base: list[Callable[[], Any]] = []
        for n, k in shapes:
            w = rng.integers(-127, 128, (n, k), dtype=np.int8)
            w64 = np.ascontiguousarray(w.T.astype(np.float64))  # [K, N], converted beforehand
            if variant == "qp8_f32_qc8w":
                a = rng.standard_normal((m, k)).astype(np.float32)
                scale = (rng.random(n) * 0.01 + 1e-3).astype(np.float32)
                pw = qp8_f32_qc8w_gemm.pack_weights(
                    w, scale, bias=rng.standard_normal(n).astype(np.float32), target=target
                )
                self.calls.append(functools.partial(qp8_f32_qc8w_gemm.gemm_packed, a, pw, target=target))
            else:
                a8 = rng.integers(-128, 128, (m, k), dtype=np.int8)
                scale = (rng.random(n) * 1e-4 + 1e-5).astype(np.float32)
                pq = pqs8_qc8w_gemm.pack_weights(
                    w, scale, input_zero_point=3, bias=rng.integers(-1000, 1000, n).astype(np.int32), target=target
                )
                self.calls.append(
                    functools.partial(pqs8_qc8w_gemm.gemm_packed, a8, pq, output_zero_point=-2, target=target)
                )
                a = a8.astype(np.float32)
            a64 = a.astype(np.float64)
            self.base.append(functools.partial(np.matmul, a64, w64))

    def run(self) -> None:
        for c in self.calls:
            c()

    def run_base(self) -> None:
        for b in self.base:
            b()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--svl", type=int, default=512)
    ap.add_argument("--no-fz", action="store_true", help="run with FPCR.FZ clear (default: set, as XNNPACK)")
    ap.add_argument("--quick", action="store_true", help="only the two single GEMMs per variant")
    args = ap.parse_args()
    target = Target(svl_bits=args.svl, flush_to_zero=not args.no_fz)
    cases: list[Case] = []
    for variant in ("qp8_f32_qc8w", "pqs8_qc8w"):
        cases.append(Case(variant, "gemm 128x2048x2048", 128, [(2048, 2048)], target))
        cases.append(Case(variant, "gemm 1x8192x2048", 1, [(8192, 2048)], target))
        if not args.quick:
            for m in (1, 128):
                shapes = [(n, k) for _, n, k in LLAMA_LAYER]
                cases.append(Case(variant, f"llama-3.2-1B layer M={m}", m, shapes, target))
    print(
        f"SVL {args.svl}, FZ {'off' if args.no_fz else 'on'}, {args.repeat} interleaved repeats; numpy {np.__version__}"
    )
    print(
        "first = first call incl. the one-time decode of the packed weights; emul/f64 = best times; "
        "ratio = median of per-repeat emul/f64; cache = memory the decode keeps; peak = tracemalloc peak "
        "of one steady-state call"
    )
    head = (
        f"{'variant':<14} {'case':<26} {'first s':>8} {'emul s':>8} {'f64 BLAS s':>10} {'ratio':>6} "
        f"{'cache MiB':>9} {'peak MiB':>9}"
    )
    print(head)
    print("-" * len(head))
    for c in cases:
        t0 = time.perf_counter()
        cache, _ = traced(c.run)  # first call: decodes the packed weights once
        first = time.perf_counter() - t0
        c.run_base()
        emu, base, ratio = _interleaved(c.run, c.run_base, args.repeat)
        _, peak = traced(c.run)
        print(
            f"{c.variant:<14} {c.label:<26} {first:>8.4f} {emu:>8.4f} {base:>10.4f} {ratio:>6.2f} "
            f"{cache / 2**20:>9.1f} {peak / 2**20:>9.1f}"
        )


if __name__ == "__main__":
    main()

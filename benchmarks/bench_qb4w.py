"""Benchmark the bit-exact qp8_f32_qb4w emulation against float64 BLAS of the same shapes.

Run: ``python benchmarks/bench_qb4w.py [--repeat R] [--quick]``

For each shape (M x N x K, block size bl) the weights are prepared once
(``qp8_f32_qb4w_gemm.prepare_weights``: XNNPACK's NEON packing plus the decoded BLAS
operands); the timed call is ``gemm(lhs, prepared)`` on the default target (what XNNPACK runs
on an SME2 CPU: NEON i8mm, the 1x4x32 dotprod GEMV for M == 1), i.e. dynamic LHS
quantization + the exact kernel arithmetic. The reference is ``lhs64 @ w64`` (float64 BLAS,
operands converted beforehand), timed in the same run. Peak memory of one ``gemm`` call is
measured with tracemalloc (numpy allocations are traced).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from _common import interleaved, peak_bytes

from kleidiref.quant import qb4
from kleidiref.targets import Target
from kleidiref.variants import qp8_f32_qb4w_gemm as qb4w

SHAPES: list[tuple[str, int, int, int, int]] = [
    ("square bl32", 128, 2048, 2048, 32),
    ("square bl128", 128, 2048, 2048, 128),
    ("gemv bl32", 1, 8192, 2048, 32),
    ("gemv bl128", 1, 8192, 2048, 128),
]
#: Llama-3.2-1B layer linears (N, K).
LLAMA: list[tuple[str, int, int]] = [
    ("q_proj", 2048, 2048),
    ("k_proj", 512, 2048),
    ("v_proj", 512, 2048),
    ("o_proj", 2048, 2048),
    ("gate_proj", 8192, 2048),
    ("up_proj", 8192, 2048),
    ("down_proj", 2048, 8192),
]


def best_of_pair(fa: Callable[[], object], fb: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` times of two calls, interleaved so that load drift hits both alike."""
    ta, tb = interleaved(fa, fb, repeat)
    return min(ta), min(tb)


def peak_mib(fn: Callable[[], object]) -> float:
    return peak_bytes(fn) / 2**20


def bench(label: str, m: int, n: int, k: int, bl: int, repeat: int, target: Target) -> tuple[float, float, float]:
    rng = np.random.default_rng(1234)
    lhs = rng.standard_normal((m, k)).astype(np.float32)
    codes = rng.integers(-8, 8, size=(n, k), dtype=np.int8)
    scales = qb4.f32_scales_to_bf16(rng.uniform(0.005, 0.05, size=(n, k // bl)).astype(np.float32))
    bias = rng.standard_normal(n).astype(np.float32)
    prep = qb4w.prepare_weights(codes, scales, bl=bl, bias=bias, target=target)
    a64 = lhs.astype(np.float64)
    w64 = np.ascontiguousarray(qb4.dequantize_qb4(codes, scales, bl).T.astype(np.float64))
    t_emu, t_ref = best_of_pair(lambda: qb4w.gemm(lhs, prep, target=target), lambda: a64 @ w64, repeat)
    mem = peak_mib(lambda: qb4w.gemm(lhs, prep, target=target))
    ratio = t_emu / t_ref
    wmib = (prep.operand.nbytes + prep.rhs_packed.nbytes) / 2**20
    print(
        f"{label:<22} {m:>4}x{n:>5}x{k:>5} bl{bl:<4} emu {t_emu * 1e3:8.2f} ms  "
        f"f64 BLAS {t_ref * 1e3:8.2f} ms  "
        f"ratio {ratio:5.2f}  peak/call {mem:6.1f} MiB  weights {wmib:6.1f} MiB",
        flush=True,
    )
    return t_emu, t_ref, mem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="only the four headline shapes")
    args = ap.parse_args()
    target = Target(svl_bits=512, name="apple-m4")
    print(f"target: {qb4w.emulated_path(target, 128)}; M=1: {qb4w.select_kernel(target, 1).name}")
    for label, m, n, k, bl in SHAPES:
        bench(label, m, n, k, bl, args.repeat, target)
    if args.quick:
        return
    for m in (1, 128):
        tot_e = tot_r = 0.0
        for name, n, k in LLAMA:
            te, tr, _ = bench(f"llama {name}", m, n, k, 128, args.repeat, target)
            tot_e += te
            tot_r += tr
        print(
            f"llama-3.2-1B layer M={m}: emu {tot_e * 1e3:.1f} ms, f64 BLAS {tot_r * 1e3:.1f} ms, "
            f"ratio {tot_e / tot_r:.2f}"
        )


if __name__ == "__main__":
    main()

"""Shared helpers for the benchmark scripts: timing, float64 BLAS baselines, peak memory, tables."""

from __future__ import annotations

import os
import platform
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    """(best, all) wall times of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


#: Pause before each timed call of :func:`interleaved`. OpenBLAS's worker threads keep spinning
#: for a while after a call returns (~0.05-0.1 s here), competing for the cores with whatever
#: is timed next: measured on the pf32 GEMV right after a float64 GEMM, the median was 25-30 %
#: slower than after a 0.1 s pause. The pause does not change the BLAS times.
SETTLE_S = 0.15


def interleaved(
    fn_a: Callable[[], Any], fn_b: Callable[[], Any], repeat: int, settle: float = SETTLE_S
) -> tuple[list[float], list[float]]:
    """Times of ``fn_a`` and ``fn_b`` measured alternately (shared-machine noise hits both),
    each call after a ``settle`` pause (see :data:`SETTLE_S`)."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeat):
        for fn, acc in ((fn_a, ta), (fn_b, tb)):
            time.sleep(settle)
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return ta, tb


def blas_gemm(m: int, n: int, k: int, seed: int = 0) -> Callable[[], Any]:
    """A float64 BLAS GEMM of the same shape, operands converted beforehand (the baseline)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k))
    w = rng.standard_normal((k, n))
    out = np.empty((m, n))
    return lambda: np.matmul(a, w, out=out)


def traced(fn: Callable[[], Any]) -> tuple[int, int]:
    """(bytes still allocated after, peak bytes during) one call of ``fn``, by tracemalloc
    (numpy reports its buffers to it)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        kept, peak = tracemalloc.get_traced_memory()
        return kept, peak
    finally:
        tracemalloc.stop()


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated during one call of ``fn``."""
    return traced(fn)[1]


def machine() -> str:
    """One line: CPU count, Python, numpy and its BLAS."""
    blas = "?"
    try:
        cfg: Any = np.show_config(mode="dicts")
        info = cfg["Build Dependencies"]["blas"]
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:
        pass
    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, BLAS {blas}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns right-aligned after the first."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)

"""Fast, bit-exact accumulation chains: the K loops of the float kernels.

Each function here equals, bit for bit, iterating a :mod:`kleidiref.numerics` step over k in
increasing order. They exist because that loop, done one numpy call per k on the whole
output, is slow; here the output is cut into tiles run on worker threads (numpy releases the
GIL inside ufunc loops) and the exact-but-costly steps run only where they can matter.

``fma32_chain``: ``acc = fma32(a[:, k], w[k, :], acc)`` for k = 0..K-1 (FMOPA / FMLA).

    s = acc + a*w in float64       # the product is exact; the sum is RN64
    RN32(s) == RN32(exact)         # unless RN64 was inexact AND s is a binary32 midpoint
                                   #   (low 29 significand bits == 0x10000000), or the exact
                                   #   value is tiny (|v| < FLT_MIN: subnormal grid, FZ)
    flagged elements -> numerics.fma32 (round-to-odd), the rest -> one float64->float32 cast

  Tiny values are impossible when ``ulp(min|a|) * ulp(min|w|)`` and ``ulp(min|acc0|)`` are all
  >= FLT_MIN: every exact partial value is then a multiple of that quantum, so nonzero ones
  are >= FLT_MIN. The tiny test only runs when that precheck fails.

``f16_pair_chain``: ``acc = RN32(acc + RN32(a0*b0 + a1*b1))`` (widening FMOPA / FDOT). Each
f16 product is exact in binary32 and the binary32 sum of two of them is correctly rounded, so
plain float32 arithmetic is the instruction. ``f16_mla_chain``: ``acc = RN32(acc + a*b)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .numerics import FLT_MIN, canonical_nan_f32, fma32, ftz32

__all__ = ["f16_mla_chain", "f16_pair_chain", "fma32_chain", "worker_threads"]

F32, F64 = np.float32, np.float64
_MID_MASK = np.int64(0x1FFFFFFF)  # the 29 float64 significand bits below binary32 precision
_MID_BITS = np.int64(0x10000000)  # ... of a binary32 rounding midpoint
_KB = 16  # k steps per block: products formed, and midpoints checked, once per block
_TILE_ELEMS = 1 << 17  # output elements per tile: big enough to amortise the GIL hand-offs

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def worker_threads() -> int:
    """Worker threads for the chains: ``KLEIDIREF_THREADS`` or the CPU count (at most 8)."""
    raw = os.environ.get("KLEIDIREF_THREADS", "")
    if raw:
        n = int(raw)
        if n < 1:
            raise ValueError(f"KLEIDIREF_THREADS must be >= 1, got {raw!r}")
        return n
    return max(1, min(8, os.cpu_count() or 1))


def _run_tiles(fn: Callable[..., None], tiles: Sequence[tuple[Any, ...]]) -> None:
    global _pool
    nthreads = worker_threads()
    if nthreads == 1 or len(tiles) == 1:
        for t in tiles:
            fn(*t)
        return
    with _pool_lock:
        if _pool is None or _pool._max_workers != nthreads:  # noqa: SLF001
            _pool = ThreadPoolExecutor(nthreads, thread_name_prefix="kleidiref")
        pool = _pool
    for fut in [pool.submit(fn, *t) for t in tiles]:
        fut.result()


def _split(m: int, n: int) -> list[tuple[int, int, int, int]]:
    """Cut an m x n output into tiles of about _TILE_ELEMS, at least one per worker thread."""
    nthreads = worker_threads()
    cols = max(64, _TILE_ELEMS // max(m, 1))
    if n > 64 * nthreads:
        cols = min(cols, -(-n // nthreads))
    cols = min(n, cols)
    rows = m if m * cols <= 2 * _TILE_ELEMS else max(1, _TILE_ELEMS // cols)
    return [
        (m0, min(m, m0 + rows), n0, min(n, n0 + cols))
        for m0 in range(0, m, rows)
        for n0 in range(0, n, cols)
    ]


def _min_nonzero_exp(x: NDArray[np.float32]) -> int:
    """Biased binary32 exponent field of the smallest nonzero |x| (0 for a subnormal; 255 if none).

    One pass on the raw bits: ``(bits & 0x7FFFFFFF) - 1`` wraps zeros to 0xFFFFFFFF, so its
    minimum plus one is the smallest nonzero magnitude's bit pattern.
    """
    if x.size == 0:
        return 255
    mag = np.bitwise_and(np.ascontiguousarray(x).view(np.uint32), np.uint32(0x7FFFFFFF))
    np.subtract(mag, np.uint32(1), out=mag)
    low = int(mag.min())
    return 255 if low == 0xFFFFFFFF else (low + 1) >> 23


def _ulp_exp(field: int) -> int:
    """log2 of the ulp of a binary32 with biased exponent ``field`` (subnormals: 2**-149)."""
    return max(field, 1) - 127 - 23


def _tiny_possible(a: NDArray[np.float32], w: NDArray[np.float32], acc0: NDArray[np.float32]) -> bool:
    """Can some exact partial value be nonzero and below FLT_MIN? (see the module docstring)."""
    fa, fw, fc = _min_nonzero_exp(a), _min_nonzero_exp(w), _min_nonzero_exp(acc0)
    q = _ulp_exp(fc) if fc < 255 else 1 << 20
    if fa < 255 and fw < 255:
        q = min(q, _ulp_exp(fa) + _ulp_exp(fw))
    return q < -126


def fma32_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float32], w: NDArray[np.float32], *, fz: bool = False
) -> NDArray[np.float32]:
    """``acc[m, n] = fma32(a[m, k], w[k, n], acc[m, n])`` for k = 0..K-1, from ``acc0``.

    Bit-identical to looping :func:`kleidiref.numerics.fma32` (with ``fz``: FPCR.FZ = 1, inputs
    and the accumulator read through ``ftz32``, tiny results flushed before rounding). NaN
    results are the default NaN.
    """
    m, k = a.shape
    n = w.shape[1]
    if fz:
        a, w, acc0 = ftz32(a), ftz32(w), ftz32(acc0)
    out = np.array(acc0, dtype=F32, copy=True)
    if k == 0 or m == 0 or n == 0:
        return canonical_nan_f32(out)
    a_t = np.ascontiguousarray(a.T, dtype=F64)  # [K, M]
    w32 = np.asarray(w, dtype=F32)

    def tile(m0: int, m1: int, n0: int, n1: int) -> None:
        out[m0:m1, n0:n1] = _fma32_tile(out[m0:m1, n0:n1], a_t[:, m0:m1], w32[:, n0:n1], fz)

    _run_tiles(tile, _split(m, n))
    return canonical_nan_f32(out)


def _fma32_tile(
    acc0: NDArray[np.float32], a_t: NDArray[np.float64], w: NDArray[np.float32], fz: bool
) -> NDArray[np.float32]:
    k_total, mm = a_t.shape
    nn = w.shape[1]
    tiny = _tiny_possible(a_t.astype(F32), w, acc0)
    acc = np.array(acc0, dtype=F32, copy=True)
    kb_max = min(_KB, k_total)
    sums = np.empty((kb_max, mm, nn), dtype=F64)  # products, then the RN64 sums of the block
    low = np.empty((kb_max, mm, nn), dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        for k0 in range(0, k_total, _KB):
            kb = min(_KB, k_total - k0)
            s = sums[:kb]
            start = acc.copy()
            np.multiply(a_t[k0 : k0 + kb, :, None], w[k0 : k0 + kb, None, :], out=s)  # exact
            for j in range(kb):
                np.add(acc, s[j], out=s[j])  # RN64(acc + a*w)
                np.copyto(acc, s[j], casting="unsafe")  # RN32: right unless s[j] is a midpoint
            np.bitwise_and(s.view(np.int64), _MID_MASK, out=low[:kb])
            flag = np.equal(low[:kb], _MID_BITS)
            if tiny:
                flag |= (np.abs(s) < FLT_MIN) & (s != 0)
            if flag.any():
                _redo_exact(acc, start, flag.any(axis=0), a_t[k0 : k0 + kb], w[k0 : k0 + kb], fz)
    return acc


def _redo_exact(
    acc: NDArray[np.float32],
    start: NDArray[np.float32],
    hit: NDArray[np.bool_],
    a_t: NDArray[np.float64],
    w: NDArray[np.float32],
    fz: bool,
) -> None:
    """Recompute the flagged elements over one k block with the exact ``fma32``."""
    rows, cols = np.nonzero(hit)
    v = start[rows, cols]
    for j in range(a_t.shape[0]):
        v = fma32(a_t[j, rows].astype(F32), w[j, cols], v, fz=fz)
    acc[rows, cols] = v


def f16_pair_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float16], w: NDArray[np.float16]
) -> NDArray[np.float32]:
    """``acc = RN32(acc + RN32(a[2p]*w[2p] + a[2p+1]*w[2p+1]))`` for p = 0..K/2-1 (K even).

    FPDotAdd_ZA per pair, in plain binary32 arithmetic (exact, see the module docstring). A
    caller emulating FPCR.FZ16 flushes ``a`` and ``w`` first; no binary32 flush can occur
    because every nonzero partial value is a multiple of 2**-48.
    """
    m, k = a.shape
    n = w.shape[1]
    if k % 2:
        raise ValueError("f16_pair_chain needs an even K (the packers pad K to a multiple of kr = 2)")
    out = np.array(acc0, dtype=F32, copy=True)
    a32 = np.ascontiguousarray(a.T, dtype=F32)  # [K, M]
    w32 = np.asarray(w, dtype=F32)

    def tile(m0: int, m1: int, n0: int, n1: int) -> None:
        acc = out[m0:m1, n0:n1].copy()
        p0 = np.empty_like(acc)
        p1 = np.empty_like(acc)
        at = a32[:, m0:m1, None]
        wt = w32[:, None, n0:n1]
        with np.errstate(over="ignore", invalid="ignore"):
            for kk in range(0, k, 2):
                np.multiply(at[kk], wt[kk], out=p0)
                np.multiply(at[kk + 1], wt[kk + 1], out=p1)
                np.add(p0, p1, out=p0)  # RN32 of the exact pair sum
                np.add(acc, p0, out=acc)  # RN32(acc + pair)
        out[m0:m1, n0:n1] = acc

    if k and m and n:
        _run_tiles(tile, _split(m, n))
    return canonical_nan_f32(out)


def f16_mla_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float16], w: NDArray[np.float16]
) -> NDArray[np.float32]:
    """``acc = RN32(acc + a[k]*w[k])`` for k = 0..K-1 (FMLALB/FMLALT: one rounding per k)."""
    m, k = a.shape
    n = w.shape[1]
    out = np.array(acc0, dtype=F32, copy=True)
    a32 = np.ascontiguousarray(a.T, dtype=F32)
    w32 = np.asarray(w, dtype=F32)

    def tile(m0: int, m1: int, n0: int, n1: int) -> None:
        acc = out[m0:m1, n0:n1].copy()
        p = np.empty_like(acc)
        with np.errstate(over="ignore", invalid="ignore"):
            for kk in range(k):
                np.multiply(a32[kk, m0:m1, None], w32[kk, None, n0:n1], out=p)
                np.add(acc, p, out=acc)
        out[m0:m1, n0:n1] = acc

    if k and m and n:
        _run_tiles(tile, _split(m, n))
    return canonical_nan_f32(out)

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

  The midpoint test is one shift and one reduction: ``bits << 35`` moves the 29 low bits to
  the top, and the pattern 0x10000000 becomes INT64_MIN, the unique minimum of int64. It runs
  once per block of k steps on the stored sums; a hit sends the block's flagged elements back
  through the exact ``fma32`` from the block's starting accumulator.

  Tiny values are impossible when ``ulp(min|a|) * ulp(min|w|)`` and ``ulp(min|acc0|)`` are all
  >= FLT_MIN: every exact partial value is then a multiple of that quantum, so nonzero ones
  are >= FLT_MIN. The tiny test only runs when that precheck fails.

A blocked W (the kernels reading the packed RHS in place) is gathered a few k rows at a time,
each column block's rows copied as one run before the reorder (``_move_units``), by the thread
that runs the tile.

Note: a one-tile chain (a GEMV) once ran as a pipeline, helper threads gathering (and for
the f16 chains widening and multiplying) the next k blocks. On the 2-core machine of
docs/performance.md it was slower than one thread doing it all: the chain reading data
another core had just written lost more than the helper saved.

``f16_pair_chain``: ``acc = RN32(acc + RN32(a0*b0 + a1*b1))`` (widening FMOPA / FDOT). Each
f16 product is exact in binary32 and the binary32 sum of two of them is correctly rounded, so
plain float32 arithmetic is the instruction. ``f16_mla_chain``: ``acc = RN32(acc + a*b)``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .numerics import FLT_MIN, canonical_nan_f32, fma32, ftz32

__all__ = [
    "f16_mla_chain",
    "f16_pair_chain",
    "flushed_row_lows",
    "fma32_chain",
    "gather_rows",
    "row_lows",
    "worker_threads",
]

F32, F64 = np.float32, np.float64
_INT64_MIN = np.iinfo(np.int64).min
_MID_SHIFT = np.int64(35)  # bits << 35: a binary32 midpoint (low 29 bits 0x10000000) -> INT64_MIN
_FLT_MIN_BITS = 0x00800000
_CHUNK = 1 << 18  # elements per pass of the one-pass scans (bounded temporaries)

#: Tuning (measured on a 2-core x86 with 512 KiB L2 per core; see docs/performance.md).
_KB = 4  # k steps per block of stored sums (products formed, ties tested, once per block)
_KB_ROW = 16  # the same for one-row (GEMV) tiles, where per-call overhead dominates
_TILE_ELEMS = 1 << 16  # output elements per tile when the tiles are shared by worker threads
# One thread: smaller tiles keep a tile's float64 temporaries in L2. Measured on the 4-linear fp32 MLP
# (hidden 2048, M = 128) with KLEIDIREF_THREADS=1: 9.6 s at 64 Ki elements, 6.8 s at 16 Ki; and two such
# processes side by side (sweep workers) no longer slow each other down (6.6 s each against 10.4 s).
_TILE_ELEMS_SERIAL = 1 << 14
_MIN_THREADED = 1 << 15  # below this many elements per tile, threads cost more than they gain
_KB16 = 8  # k steps per block in the f16 chains
_KB16_ROW = 32
_pair_blas: bool | None = None  # pair sums by sgemm (K = 2)? Probed once: see _f16_tile_body

_pools: dict[int, ThreadPoolExecutor] = {}
_Bufs: TypeAlias = "list[NDArray[np.uint8]] | None"  # scratch of _move_units
_STAGE_ROWS = 64  # k rows per gather of a packed W in fma32_chain (see _move_units)
_pool_lock = threading.Lock()
_MAX_THREADS = 256


def worker_threads() -> int:
    """Worker threads for the chains: ``KLEIDIREF_THREADS`` or the CPU count (at most 8)."""
    raw = os.environ.get("KLEIDIREF_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_THREADS:
            raise ValueError(f"KLEIDIREF_THREADS must be an integer from 1 to {_MAX_THREADS}, got {raw!r}")
        return int(raw)
    return max(1, min(8, os.cpu_count() or 1))


def _run_tiles(fn: Callable[..., None], tiles: Sequence[tuple[Any, ...]]) -> None:
    nthreads = worker_threads()
    small = max((t[1] - t[0]) * (t[3] - t[2]) for t in tiles) < _MIN_THREADED
    if nthreads == 1 or len(tiles) == 1 or small:
        for t in tiles:
            fn(*t)
        return
    pool = _executor(nthreads)
    for fut in [pool.submit(fn, *t) for t in tiles]:
        fut.result()


def _executor(workers: int) -> ThreadPoolExecutor:
    """The pool of ``workers`` threads that run output tiles."""
    with _pool_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="kleidiref-tiles")
        return pool


def _split(m: int, n: int, elems: int | None = None, align: int = 1) -> list[tuple[int, int, int, int]]:
    """Cut an m x n output into tiles of about ``elems``, at least one per worker thread.

    Column starts are multiples of ``align`` (the nr of a blocked W).
    """
    nthreads = worker_threads()
    if elems is None:
        elems = _TILE_ELEMS if nthreads > 1 else _TILE_ELEMS_SERIAL
    if m * n < nthreads * _MIN_THREADED:  # one tile: threads would not pay
        return [(0, m, 0, n)]
    cols = max(64, elems // max(m, 1))
    if n > 64 * nthreads:
        cols = min(cols, -(-n // nthreads))
    cols = min(n, -(-cols // align) * align)
    rows = m if m * cols <= 2 * elems else max(1, elems // cols)
    return [(m0, min(m, m0 + rows), n0, min(n, n0 + cols)) for m0 in range(0, m, rows) for n0 in range(0, n, cols)]


def _w_shape(w: NDArray[Any], n_acc: int) -> tuple[int, int, int]:
    """(K, N, nr) of a weight operand: [K, N] (nr = 1) or packed blocks (see :func:`fma32_chain`)."""
    if w.ndim == 2:
        return w.shape[0], w.shape[1], 1
    if w.ndim == 3:  # [K, nb, nr]
        k, nb, nr = w.shape
    elif w.ndim == 4:  # [K/kr, kr, nb, nr]
        kg, kr, nb, nr = w.shape
        k = kg * kr
    else:
        raise ValueError(f"w must be [K, N], [K, nb, nr] or [K/kr, kr, nb, nr], got shape {w.shape}")
    if nb * nr < n_acc:
        raise ValueError(f"blocked w {w.shape} has fewer than N = {n_acc} columns")
    return k, n_acc, nr


def gather_rows(w: NDArray[Any], n: int) -> NDArray[Any]:
    """W[K, n], C-contiguous, from a blocked weight view as the chains take it (see
    :func:`f16_pair_chain`), gathered ``_STAGE_ROWS`` k at a time as the chains gather it."""
    k = _w_shape(w, n)[0]
    out = np.empty((k, n), dtype=w.dtype)
    bufs = _new_bufs(w, _STAGE_ROWS, n)
    for k0 in range(0, k, _STAGE_ROWS):
        kb = min(_STAGE_ROWS, k - k0)
        out[k0 : k0 + kb] = _w_rows(w, k0, kb, 0, n, bufs)
    return out


def _w_rows(w: NDArray[Any], k0: int, kb: int, n0: int, n1: int, bufs: _Bufs = None) -> NDArray[Any]:
    """W[k0:k0+kb, n0:n1] as a 2-D array: a view of a [K, N] W, a small gather of packed blocks.

    For the blocked forms, ``n0`` is a multiple of nr (tiles are aligned, see ``_split``).
    ``bufs``: see :func:`_move_units`.
    """
    if w.ndim == 2:
        return w[k0 : k0 + kb, n0:n1]
    nr = w.shape[-1]
    cols = w[..., n0 // nr : -(-n1 // nr), :]
    nbt = cols.shape[-2]
    # Each block's lanes for one k (or one k group) are contiguous bytes: move them as single
    # void elements, ~2x faster than numpy's element loops over nr-long runs.
    unit = np.dtype((np.void, nr * w.itemsize * (1 if w.ndim == 3 else w.shape[1])))
    if w.ndim == 3:
        src = cols[k0 : k0 + kb]
        if src.strides[-1] != w.itemsize:
            src = src.copy()
        out = _move_units(src.view(unit)[..., 0], bufs)
        return out.view(w.dtype).reshape(kb, nbt * nr)[:, : n1 - n0]
    kr = w.shape[1]
    lo, hi = k0 // kr, -(-(k0 + kb) // kr)
    groups = _w_groups(w, lo, hi, n0, n1 - n0, bufs)
    rows: NDArray[Any] = groups.transpose(0, 2, 1).reshape((hi - lo) * kr, -1)  # de-interleave the k groups
    return rows[k0 - lo * kr : k0 - lo * kr + kb]


def _w_groups(w: NDArray[Any], g0: int, g1: int, n0: int, nn: int, bufs: _Bufs = None) -> NDArray[Any]:
    """k groups g0..g1-1 of a [K/kr, kr, nb, nr] W, columns n0..n0+nn-1, as packed: [g, nn, kr].

    Gathered as the packers lay them out (each block's kr lanes per column interleaved), so
    a consumer that wants the kr values of a column together (the f16 pair sums) reads them
    without a de-interleaving copy. ``n0`` is a multiple of nr.

    ``bufs``: see :func:`_move_units`.
    """
    kr, nr = w.shape[1], w.shape[-1]
    cols = w[g0:g1, :, n0 // nr : -(-(n0 + nn) // nr), :]
    g, nbt = g1 - g0, cols.shape[-2]
    grp = cols.transpose(0, 2, 3, 1)  # [g, nb, nr, kr]: the bytes of one (k group, block)
    unit = np.dtype((np.void, nr * kr * w.itemsize))
    contiguous_unit = grp.strides[-1] == w.itemsize and grp.strides[-2] == kr * w.itemsize
    packed = grp if contiguous_unit else np.ascontiguousarray(grp)
    units = _move_units(packed.reshape(g, nbt, nr * kr).view(unit)[..., 0], bufs)
    out: NDArray[Any] = units.view(w.dtype).reshape(g, nbt * nr, kr)[:, :nn]
    return out


def _move_units(src: NDArray[Any], bufs: _Bufs = None) -> NDArray[Any]:
    """A C-contiguous copy of ``src``: [rows, nb] units of packed blocks (one k or k group of nr
    columns each), a column block's units adjacent in memory (a run), the blocks far apart.

    Staged: copied block by block first (the runs, in memory order), then reordered in cache.
    Copied row by row instead, the packed buffer is read as nb interleaved streams of one unit
    each, which the prefetchers follow poorly: ~1.3x slower for 16 rows of 256 blocks, ~1.8x
    for 64 (measured; see docs/performance.md).

    ``bufs``: two byte buffers (:func:`_new_bufs`) for the copy and the runs, reused from call
    to call: fresh pages for every block cost more than the copy (page faults).
    """
    out = _in_buf(bufs, 0, src.shape, src.dtype)
    if src.shape[0] > 1:
        runs = _in_buf(bufs, 1, src.shape[::-1], src.dtype)
        runs[...] = src.T
        out[...] = runs.T
    else:
        out[...] = src
    return out


def _windowed(fetch: Callable[[int, int], NDArray[Any]], total: int, stage: int) -> Callable[[int, int], NDArray[Any]]:
    """``get(lo, hi)``: items lo..hi-1 along the first axis of ``fetch(lo', hi')``, fetched
    ``stage`` items at a time (one window held; a request outside it fetches the next)."""
    state: list[Any] = [0, None]  # [first item, window]

    def get(lo: int, hi: int) -> NDArray[Any]:
        w0, win = state
        if win is None or lo < w0 or hi > w0 + win.shape[0]:
            state[:] = w0, win = lo, fetch(lo, min(total, lo + max(stage, hi - lo)))
        out: NDArray[Any] = win[lo - w0 : hi - w0]
        return out

    return get


def _new_bufs(w: NDArray[Any], rows: int, nn: int) -> _Bufs:
    """Scratch for :func:`_move_units` gathering ``rows`` k of ``nn`` columns of a blocked W."""
    if w.ndim == 2:
        return None
    nr, kr = w.shape[-1], w.shape[1] if w.ndim == 4 else 1
    nbytes = (rows + 2 * kr) * -(-nn // nr) * nr * w.itemsize  # + the k groups cut by a row range
    return [np.empty(nbytes, dtype=np.uint8) for _ in range(2)]


def _in_buf(bufs: _Bufs, i: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
    """An uninitialized array of ``shape``, in ``bufs[i]`` when that is large enough."""
    n = int(np.prod(shape)) * dtype.itemsize
    if bufs is None or bufs[i].size < n:
        return np.empty(shape, dtype=dtype)
    return bufs[i][:n].view(dtype).reshape(shape)


def _min_nonzero_bits(x: NDArray[np.float32]) -> int:
    """Bit pattern of the smallest nonzero |x| (0x7FFFFFFF-ish if none; -1 if x is all zeros).

    One pass on the raw bits in bounded chunks: ``bits << 1`` drops the sign; only when a
    chunk holds a zero is a second pass (``- 1``, wrapping zeros to the top) needed.
    """
    flat = np.ascontiguousarray(x).reshape(-1).view(np.uint32)
    best = -1
    buf = np.empty(min(flat.size, _CHUNK), dtype=np.uint32)
    for i in range(0, flat.size, _CHUNK):
        chunk = flat[i : i + _CHUNK]
        b = buf[: chunk.size]
        np.left_shift(chunk, np.uint32(1), out=b)
        low = int(b.min())
        if low == 0:
            np.subtract(b, np.uint32(1), out=b)
            low = (int(b.min()) + 1) & 0xFFFFFFFF
            if low == 0:  # all zeros
                continue
        low >>= 1
        best = low if best < 0 else min(best, low)
    return best


def _ulp_exp(bits: int) -> int:
    """log2 of the ulp of a nonzero binary32 whose |x| has bit pattern ``bits``."""
    return max(bits >> 23, 1) - 127 - 23


def _flush_if_needed(x: NDArray[np.float32], low: int) -> tuple[NDArray[np.float32], int]:
    """FZ input flush, skipped when the smallest nonzero magnitude is already normal."""
    if 0 <= low < _FLT_MIN_BITS:
        x = ftz32(x)
        return x, _min_nonzero_bits(x)
    return x, low


def fma32_chain(
    acc0: NDArray[np.float32],
    a: NDArray[np.float32],
    w: NDArray[np.float32],
    *,
    fz: bool = False,
    w_lows: NDArray[np.int64] | None = None,
) -> NDArray[np.float32]:
    """``acc[m, n] = fma32(a[m, k], w[k, n], acc[m, n])`` for k = 0..K-1, from ``acc0``.

    Bit-identical to looping :func:`kleidiref.numerics.fma32` (with ``fz``: FPCR.FZ = 1, inputs
    and the accumulator read through ``ftz32``, tiny results flushed before rounding). NaN
    results are the default NaN.

    ``w`` is [K, N], or the packed RHS's blocks as a [K, nb, nr] view (W[k, b*nr + j] =
    w[k, b, j]; nb*nr >= N, columns past N = acc0.shape[1] unused): rows are then gathered a
    k block at a time, so the packed buffer is never copied whole.

    ``w_lows``: :func:`row_lows` of W (or of a W with more columns), computed once for weights
    used many times: the chain then skips its per-block scans of W.
    """
    m, k = a.shape
    a = np.asarray(a, dtype=F32)
    w = np.asarray(w, dtype=F32)
    kw, n, nr = _w_shape(w, np.shape(acc0)[1])
    if kw != k:
        raise ValueError(f"w {w.shape} does not have K = {k} rows")
    out = np.array(acc0, dtype=F32, copy=True, order="C")
    if k == 0 or m == 0 or n == 0:
        return canonical_nan_f32(ftz32(out) if fz else out)
    la, lc = _min_nonzero_bits(a), _min_nonzero_bits(out)
    if fz:
        a, la = _flush_if_needed(a, la)
        out, lc = _flush_if_needed(out, lc)
        out = np.array(out, dtype=F32, copy=True, order="C")
    # Quantum of every exact partial value (module docstring): below FLT_MIN, tiny is possible.
    # W's part is checked block by block inside the tiles, on rows already in cache.
    tiny = lc >= 0 and _ulp_exp(lc) < -126
    ulp_a = _ulp_exp(la) if la >= 0 else None  # None: a is all zeros, products cannot be tiny
    a_t = np.ascontiguousarray(a.T, dtype=F64)  # [K, M]
    tiles = _split(m, n, align=nr)

    if w_lows is not None and np.shape(w_lows) != (k,):
        raise ValueError(f"w_lows must have shape ({k},), got {np.shape(w_lows)}")

    def tile(m0: int, m1: int, n0: int, n1: int) -> None:
        _fma32_tile(out[m0:m1, n0:n1], a_t[:, m0:m1], w, n0, fz, tiny, ulp_a, w_lows)

    _run_tiles(tile, tiles)
    return canonical_nan_f32(out)


def _scan_rows(w: NDArray[np.float32], buf: NDArray[np.uint32]) -> int:
    """:func:`_min_nonzero_bits` of a block of weight rows (in cache), through ``buf``."""
    b = buf[: w.shape[0]]
    np.left_shift(w.view(np.uint32), np.uint32(1), out=b)
    low = int(b.min())
    if low == 0:
        np.subtract(b, np.uint32(1), out=b)
        low = (int(b.min()) + 1) & 0xFFFFFFFF
        if low == 0:
            return -1
    return low >> 1


def row_lows(w: NDArray[np.float32]) -> NDArray[np.int64]:
    """Per row of a [K, N] binary32 W, the bits of its smallest nonzero |w| (-1: all zeros), as
    :func:`_min_nonzero_bits` computes them for a whole array (see :func:`fma32_chain`)."""
    b = np.left_shift(np.ascontiguousarray(w).view(np.uint32), np.uint32(1))
    low: NDArray[np.int64] = b.min(axis=1).astype(np.int64)
    zero = low == 0
    if zero.any():  # a zero in the row: wrap zeros to the top, as _min_nonzero_bits does
        low[zero] = ((b[zero] - np.uint32(1)).min(axis=1).astype(np.int64) + 1) & 0xFFFFFFFF
    low >>= 1
    low[low == 0] = -1
    return low


def flushed_row_lows(w: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """W as FPCR.FZ reads it (:func:`ftz32`, only when a row low shows a subnormal) and its
    :func:`row_lows`: what ``fma32_chain(..., fz=True, w_lows=...)`` then finds nothing to flush in."""
    lows = row_lows(w)
    if ((lows >= 0) & (lows < _FLT_MIN_BITS)).any():
        w = ftz32(w)
        lows = row_lows(w)
    return w, lows


def _lows_min(lows: NDArray[np.int64]) -> int:
    """The smallest of some :func:`row_lows` (-1 if every row is all zeros)."""
    nz = lows[lows >= 0]
    return int(nz.min()) if nz.size else -1


@contextlib.contextmanager
def _bufsize(nn: int) -> Iterator[None]:
    """numpy's ufunc buffer size for rows of ``nn`` (per thread: a context variable)."""
    old = np.setbufsize(_bufsize_for(nn))
    try:
        yield
    finally:
        np.setbufsize(old)


def _bufsize_for(nn: int) -> int:
    """A ufunc buffer size that keeps broadcast products on numpy's fast loop.

    With the default 8192, a broadcast multiply whose rows are shorter than about half the
    buffer goes through the buffered iterator and runs ~2.5x slower (measured: 0.62 vs 0.25
    ns per float64 element on 128 x 512); a buffer no longer than the row avoids it.
    """
    return int(min(8192, max(16, nn & ~15)))


def _fma32_tile(
    acc_out: NDArray[np.float32],
    a_t: NDArray[np.float64],
    w: NDArray[np.float32],
    n0: int,
    fz: bool,
    tiny: bool,
    ulp_a: int | None,
    w_lows: NDArray[np.int64] | None,
) -> None:
    """The chain on one output tile (columns from ``n0``), in place on ``acc_out``."""
    with _bufsize(acc_out.shape[1]):
        _fma32_tile_body(acc_out, a_t, w, n0, fz, tiny, ulp_a, w_lows)


def _fma32_tile_body(
    acc_out: NDArray[np.float32],
    a_t: NDArray[np.float64],
    w: NDArray[np.float32],
    n0: int,
    fz: bool,
    tiny: bool,
    ulp_a: int | None,
    w_lows: NDArray[np.int64] | None,
) -> None:
    k_total, mm = a_t.shape
    nn = acc_out.shape[1]
    one_row = mm == 1
    kb_max = min(_KB_ROW if one_row else _KB, k_total)
    n_blocks = -(-k_total // kb_max)
    scan_buf = np.empty((kb_max, nn), dtype=np.uint32)
    scan = fz or (not tiny and ulp_a is not None)
    # A blocked W is gathered _STAGE_ROWS k at a time (staged: longer runs from memory) and
    # served to the blocks from that window.
    stage = max(_STAGE_ROWS // kb_max, 1) * kb_max
    bufs = _new_bufs(w, stage, nn)
    w_rows = _windowed(lambda lo, hi: _w_rows(w, lo, hi - lo, n0, n0 + nn, bufs), k_total, stage)

    def produce(i: int) -> tuple[int, int, NDArray[Any], bool]:
        """Block i's weight rows (gathered, FZ-flushed), and whether they make tiny values possible."""
        k0 = i * kb_max
        kb = min(kb_max, k_total - k0)
        wk = w_rows(k0, k0 + kb)
        blk_tiny = False
        if scan:
            # Per-row lows over all of W's columns bound this tile's from below: a flush they call
            # for is a no-op where it is not needed (then rescanned), a tiny flag only costs a test.
            low = _scan_rows(wk, scan_buf) if w_lows is None else _lows_min(w_lows[k0 : k0 + kb])
            if fz and 0 <= low < _FLT_MIN_BITS:  # FZ input flush, only where subnormals are
                wk = ftz32(wk)
                low = _scan_rows(wk, scan_buf)
            blk_tiny = ulp_a is not None and low >= 0 and ulp_a + _ulp_exp(low) < -126
        return k0, kb, wk, blk_tiny

    start = acc_out.copy()  # the accumulator at the start of the block
    # The accumulator is kept in float64 too: a pure float64 add and two casts per step (by item
    # assignment, cheaper than copyto) beat one mixed-type add and one cast (8.2 vs 10.3 us per
    # 8192 elements: numpy's mixed-type loop casts through a buffer).
    acc64 = start.astype(F64)
    w64 = None if one_row else np.empty((kb_max, 1, nn), dtype=F64)  # the block's weight rows, widened
    sums = np.empty((kb_max, mm, nn), dtype=F64)  # products, then the RN64 sums of the block
    bits = sums.view(np.int64)
    hist = np.empty((kb_max, mm, nn), dtype=F32)  # the accumulator after each step
    ssteps = [sums[j] for j in range(kb_max)]
    hsteps = [hist[j] for j in range(kb_max)]
    scratch: list[NDArray[np.float64]] = []

    def consume(block: tuple[int, int, NDArray[Any], bool]) -> None:
        nonlocal tiny, scratch
        k0, kb, wk, blk_tiny = block
        tiny = tiny or blk_tiny  # sticky: later partial sums may sit on W's finer grid
        s, sb = sums[:kb], bits[:kb]
        if w64 is None:  # mixed-type multiply: one pass, cheaper than widening W first here
            np.multiply(a_t[k0 : k0 + kb, :, None], wk[:, None, :], out=s)  # exact
        else:
            np.copyto(w64[:kb, 0], wk)
            np.multiply(a_t[k0 : k0 + kb, :, None], w64[:kb], out=s)  # exact
        for j in range(kb):
            sj, hj = ssteps[j], hsteps[j]
            np.add(acc64, sj, out=sj)  # RN64(acc + a*w)
            hj[...] = sj  # RN32: right unless sj is a tie
            acc64[...] = hj
        redo = None
        if tiny:
            mag = np.abs(s)
            small = ((mag <= FLT_MIN) & (mag != 0)).any(axis=0)  # <=: RN64 may round up to FLT_MIN
            redo = small if small.any() else None
        np.left_shift(sb, _MID_SHIFT, out=sb)
        if sb.min() == _INT64_MIN:
            if not scratch:
                scratch = [np.empty((kb_max, mm, nn), dtype=F64) for _ in range(3)]
            w_blk = wk[:, None, :] if w64 is None else w64[:kb]
            bad = _inexact_ties(sb == _INT64_MIN, start, hist[:kb], a_t[k0 : k0 + kb], w_blk, [*scratch, s])
            if bad is not None:
                redo = bad if redo is None else redo | bad
        end = hist[kb - 1]
        if redo is not None:
            _redo_exact(end, start, redo, a_t[k0 : k0 + kb], wk, fz)
            acc64[redo] = end[redo]
        np.copyto(start, end)

    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(n_blocks):
            consume(produce(i))
    acc_out[...] = start


def _inexact_ties(
    tie: NDArray[np.bool_],
    start: NDArray[np.float32],
    hist: NDArray[np.float32],
    a_t: NDArray[np.float64],
    w: NDArray[Any],
    scratch: list[NDArray[np.float64]],
) -> NDArray[np.bool_] | None:
    """Elements of a block where a binary32 tie came from an *inexact* RN64 sum (or None).

    A tie of an exact sum is rounded right by the cast (ties-to-even on the exact value); only
    inexact ones need the exact path. Low-precision data (f16-derived, small integers) makes
    exact ties common, so this block-wide TwoSum keeps them off the slow per-element path.
    """
    kb = tie.shape[0]
    x, y, t, z = (b[:kb] for b in scratch)
    x[0] = start  # the accumulator before each step
    x[1:] = hist[: kb - 1]
    np.multiply(a_t[:, :, None], w, out=y)  # the exact products
    np.add(x, y, out=z)  # s, bit-identical to the forward pass
    # RN64(x + y) is exact iff s - x == y and s - y == x: when |x| >= |y|, s - x is computed
    # exactly (Dekker), so it equals y only if nothing was lost; symmetrically otherwise.
    np.subtract(z, x, out=t)
    bad = t != y
    np.subtract(z, y, out=t)
    bad |= t != x
    bad &= tie
    return bad.any(axis=0) if bad.any() else None


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


_F16_MAG_SIGN = np.int32(-0x70002000)  # 0x8FFFE000: the sign and the 15 f16 magnitude bits, << 13
_F16_SCALE = F32(2.0**112)  # rebias: f16 exponent bias 15 -> binary32 bias 127


def _f16_to_f32(h: NDArray[np.float16], out: NDArray[np.float32], flush: bool = False, scaled: bool = False) -> bool:
    """``out[...] = h`` exactly, about 5x faster than numpy's float16 cast; False if h has Inf/NaN.

    The sign-extended f16 bits shifted left by 13 are, as binary32, ``h * 2**-112`` (normal
    and subnormal f16 alike), so one exact multiply rebiases. Inf/NaN (exponent 31) would come
    out finite: such blocks take numpy's cast instead. ``flush``: FPCR.FZ16, a binary16
    subnormal reads as the signed zero. ``out`` is C-contiguous.

    ``scaled``: leave a finite block as ``h * 2**-112``, a pass fewer, for a caller whose
    other factor carries the 2**112 (see :func:`_f16_tile_body`).
    """
    mag = np.bitwise_and(h.view(np.uint16), np.uint16(0x7FFF))  # 16-bit passes: half the bytes
    finite = mag.size == 0 or int(mag.max()) < 0x7C00
    if finite:
        bits = out.view(np.int32)
        # Widen, then shift: numpy's int16 -> int32 cast loop is vectorized, a mixed-type
        # shift goes through a buffer (~15 % slower in all).
        np.copyto(bits, h.view(np.int16), casting="unsafe")
        np.left_shift(bits, np.int32(13), out=bits)
        np.bitwise_and(bits, _F16_MAG_SIGN, out=bits)
        if not scaled:
            np.multiply(out, _F16_SCALE, out=out)
    else:
        np.copyto(out, h)
    if flush and mag.size and int(mag.min()) < 0x0400:  # a zero or a subnormal somewhere
        # x * 0 is the signed zero of x, exactly: subnormals flush, zeros stay (~2.5x faster
        # than finding the subnormals' indices to clear their bits).
        np.multiply(out, F32(0), out=out, where=mag < 0x0400)
    return finite


def _f16_rows(h: NDArray[np.float16]) -> NDArray[np.float32]:
    out = np.empty(h.shape, dtype=F32)
    _f16_to_f32(h, out)
    return out


def f16_pair_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float16], w: NDArray[np.float16], *, flush_w: bool = False
) -> NDArray[np.float32]:
    """``acc = RN32(acc + RN32(a[2p]*w[2p] + a[2p+1]*w[2p+1]))`` for p = 0..K/2-1 (K even).

    FPDotAdd_ZA per pair, in plain binary32 arithmetic (exact, see the module docstring). A
    caller emulating FPCR.FZ16 flushes ``a`` first and passes ``flush_w``: W's rows are then
    read through ``ftz16`` a block at a time (no flushed copy of a packed W). No binary32
    flush can occur because every nonzero partial value is a multiple of 2**-48.

    ``w`` is [K, N], or a zero-copy view of the packed RHS's blocks: [K/kr, kr, nb, nr]
    (the kr = 2 layout, W[k, b*nr + j] = w[k // kr, k % kr, b, j]) or [K, nb, nr]; columns
    past N = acc0.shape[1] are unused. Rows are gathered a k block at a time.
    """
    m, k = a.shape
    kw, n, nr = _w_shape(w, np.shape(acc0)[1])
    if kw < k:
        raise ValueError(f"w {w.shape} has fewer than K = {k} rows")
    if k % 2:
        raise ValueError("f16_pair_chain needs an even K (the packers pad K to a multiple of kr = 2)")
    out = np.array(acc0, dtype=F32, copy=True, order="C")
    if k and m and n:
        a32 = _f16_rows(np.ascontiguousarray(np.asarray(a, dtype=np.float16).T))  # [K, M]
        w16 = np.asarray(w, dtype=np.float16)
        tiles = _split(m, n, align=nr)
        _run_tiles(lambda m0, m1, n0, n1: _f16_tile(out, a32, w16, m0, m1, n0, n1, True, flush_w), tiles)
    return canonical_nan_f32(out)


def f16_mla_chain(
    acc0: NDArray[np.float32], a: NDArray[np.float16], w: NDArray[np.float16], *, flush_w: bool = False
) -> NDArray[np.float32]:
    """``acc = RN32(acc + a[k]*w[k])`` for k = 0..K-1 (FMLALB/FMLALT: one rounding per k).

    ``w`` and ``flush_w`` as in :func:`f16_pair_chain` (rows past K unused).
    """
    m, k = a.shape
    kw, n, nr = _w_shape(w, np.shape(acc0)[1])
    if kw < k:
        raise ValueError(f"w {w.shape} has fewer than K = {k} rows")
    out = np.array(acc0, dtype=F32, copy=True, order="C")
    if k and m and n:
        a32 = _f16_rows(np.ascontiguousarray(np.asarray(a, dtype=np.float16).T))
        w16 = np.asarray(w, dtype=np.float16)
        tiles = _split(m, n, align=nr)
        _run_tiles(lambda m0, m1, n0, n1: _f16_tile(out, a32, w16, m0, m1, n0, n1, False, flush_w), tiles)
    return canonical_nan_f32(out)


def _blas_pairs_exact() -> bool:
    """Does this numpy's float32 matmul with K = 2 round the exact pair sum once? Probed once.

    True for any IEEE binary32 BLAS (OpenBLAS, MKL, Accelerate); the probe guards against one
    that computes in lower precision or flushes subnormals. The probe values need the full 24
    bits and come scaled as the tile bodies pass them: a * 2**112 (up to 65504 * 2**112) and
    w * 2**-112 (down to binary32 subnormals).
    """
    global _pair_blas
    if _pair_blas is None:
        rng = np.random.default_rng(12345)
        a = rng.standard_normal((64, 2)).astype(np.float16).astype(F32)
        a[0] = [65504.0, -65504.0]
        w = (rng.standard_normal((2, 64)) * 2.0**-11).astype(np.float16).astype(F32)
        w[:, :8] = F32(2.0**-24) * np.arange(1, 9, dtype=F32)  # binary16 subnormals
        ref = a[:, :1] * w[:1] + a[:, 1:] * w[1:]
        _pair_blas = bool(np.array_equal(np.matmul(a * _F16_SCALE, w * F32(2.0**-112)), ref))
    return _pair_blas


def _f16_tile(
    out: NDArray[np.float32],
    a32: NDArray[np.float32],
    w16: NDArray[np.float16],
    m0: int,
    m1: int,
    n0: int,
    n1: int,
    pairs: bool,
    flush_w: bool = False,
) -> None:
    """Both f16 chains on one output tile: products of a block of k formed in one call each."""
    with _bufsize(n1 - n0):
        _f16_tile_body(out, a32, w16, m0, m1, n0, n1, pairs, flush_w)


def _f16_tile_body(
    out: NDArray[np.float32],
    a32: NDArray[np.float32],
    w16: NDArray[np.float16],
    m0: int,
    m1: int,
    n0: int,
    n1: int,
    pairs: bool,
    flush_w: bool,
) -> None:
    k_total = a32.shape[0]
    mm, nn = m1 - m0, n1 - n0
    step = 2 if pairs else 1
    kb_max = min(_KB16_ROW if mm == 1 else _KB16, k_total // step) * step  # k per block
    n_blocks = -(-k_total // kb_max)
    acc = out[m0:m1, n0:n1].copy()
    # A block's f32 weight rows and its products / pair sums.
    wbuf = np.empty((kb_max, nn), dtype=F32)
    prod = np.empty((kb_max, mm, nn), dtype=F32)
    # W gathered _STAGE_ROWS k at a time, as in the fma32 chain: k groups when it is packed
    # with kr = 2 (the pf16 RHS), else rows. The k groups come as laid out, [pair, column, 2]:
    # the pair sums and the per-k products read the two lanes in place (no de-interleaving).
    stage = max(_STAGE_ROWS // kb_max, 1) * kb_max
    bufs = _new_bufs(w16, stage, nn)
    paired = w16.ndim == 4 and w16.shape[1] == 2
    w_groups = _windowed(lambda lo, hi: _w_groups(w16, lo, hi, n0, nn, bufs), k_total // 2, stage // 2)
    at = a32[:, m0:m1, None]
    # Pair sums by BLAS: sgemm with K = 2 is RN32(a0*w0 + a1*w1) whatever its order or FMA use,
    # the products being exact. Only the sign of an exact-zero pair sum may differ, which no
    # accumulator other than -0 can see (x + -0 == x + +0 unless x is -0, and the chain
    # cannot make a -0 from a nonzero or +0 start); Inf/NaN blocks stay elementwise (a BLAS
    # may skip zero operands, losing 0 * Inf = NaN).
    blas = pairs and _blas_pairs_exact() and bool(np.isfinite(at).all()) and not bool(np.signbit(acc[acc == 0]).any())
    # W's finite blocks come as w * 2**-112 (_f16_to_f32, scaled) and A carries the 2**112:
    # a * 2**112 is exact (|a| <= 65504, below 2**128) and so is its product with w * 2**-112,
    # the binary32 value a * w. The terms are those of a * w, one pass cheaper.
    with np.errstate(invalid="ignore"):  # a signalling NaN in A: quieted, as its products are
        at_scaled = at * _F16_SCALE
    a_pairs = (
        np.ascontiguousarray(a32[:, m0:m1].reshape(k_total // 2, 2, mm).transpose(0, 2, 1) * _F16_SCALE)
        if blas
        else None
    )

    def produce(i: int) -> NDArray[np.float32]:
        """Block i's terms: the pair sums (FDOT) or single products (FMLAL), each exact or RN32."""
        k0 = i * kb_max
        kb = min(kb_max, k_total - k0)
        grouped = paired and kb % 2 == 0  # k0 is even: kb_max is
        rows = w_groups(k0 // 2, (k0 + kb) // 2) if grouped else _w_rows(w16, k0, kb, n0, n1)
        wb = wbuf[:kb].reshape(rows.shape)
        finite = _f16_to_f32(rows, wb, flush_w, scaled=True)
        at_k = (at_scaled if finite else at)[k0 : k0 + kb]
        # W's rows [kb, nn] (a strided view when grouped)
        wk = wb.transpose(0, 2, 1).reshape(kb // 2, 2, nn) if grouped else wb.reshape(kb // 2, 2, nn) if pairs else wb
        with _bufsize(nn), np.errstate(over="ignore", invalid="ignore"):
            if a_pairs is not None and finite:
                terms = prod[: kb // 2]
                np.matmul(a_pairs[k0 // 2 : (k0 + kb) // 2], wk, out=terms)
                return terms
            p = prod[:kb]
            if grouped:  # [pair, lane, m, n] = a[2 pair + lane, m] * w[pair, n, lane]
                np.multiply(at_k.reshape(kb // 2, 2, mm, 1), wk[:, :, None, :], out=p.reshape(kb // 2, 2, mm, nn))
            else:
                np.multiply(at_k, wk.reshape(kb, 1, nn), out=p)  # exact f16 x f16 products
            if not pairs:
                return p
            terms = p[0::2]
            np.add(terms, p[1::2], out=terms)  # RN32 of the exact pair sum
            return terms

    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(n_blocks):
            terms = produce(i)
            for j in range(terms.shape[0]):
                np.add(acc, terms[j], out=acc)  # RN32(acc + term)
    out[m0:m1, n0:n1] = acc

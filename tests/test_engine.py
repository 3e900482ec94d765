"""kleidiref._engine chains against the naive per-k loops of kleidiref.numerics (ground truth)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from kleidiref import _engine
from kleidiref._engine import f16_mla_chain, f16_pair_chain, fma32_chain
from kleidiref.numerics import canonical_nan_f32, fdot_add_za, fma32, fmlal, ftz16, ftz32, has_subnormal

F32 = np.float32
KINDS = ["random", "tiny", "midpoint", "double", "huge", "special", "zeros", "subnormal"]


def _naive_fma32(
    acc0: NDArray[np.float32], a: NDArray[np.float32], w: NDArray[np.float32], fz: bool
) -> NDArray[np.float32]:
    acc = ftz32(acc0) if fz else acc0.astype(F32)
    for k in range(a.shape[1]):
        acc = fma32(a[:, k : k + 1], w[k : k + 1, :], acc, fz=fz)
    return canonical_nan_f32(acc)


def _bits(x: NDArray[np.float32]) -> NDArray[np.uint32]:
    return np.ascontiguousarray(x, dtype=F32).view(np.uint32)


def _operands(kind: str, m: int, n: int, k: int, seed: int) -> tuple[NDArray[np.float32], ...]:
    rng = np.random.default_rng(seed)

    def draw(*shape: int, eps: float = 2.0**-23) -> NDArray[np.float32]:
        if kind == "double":  # (1 + e)(1 - e) 2**-24 = 2**-24 - tiny: RN64 lands on a binary32 tie
            sign = rng.choice([-1.0, 1.0], shape)
            return (sign * (1 + eps) * np.exp2(rng.integers(-13, -10, shape))).astype(F32)
        if kind == "midpoint":  # small integers times powers of two, plus 2**-24: many binary32 ties
            ints = rng.integers(-8, 9, shape) * np.exp2(rng.integers(-3, 4, shape))
            return (ints + np.where(rng.random(shape) < 0.3, 2.0**-24, 0.0)).astype(F32)
        v: NDArray[np.float64] = rng.standard_normal(shape)
        if kind == "tiny":
            v *= 1e-20  # products ~1e-40: binary32 subnormals
        elif kind == "subnormal":
            v = np.where(rng.random(shape) < 0.3, v * 1e-39, v)
        elif kind == "huge":
            v *= 1e19  # products ~1e38 and sums overflow to inf
        elif kind == "special":
            r = rng.random(shape)
            v = np.where(r < 0.03, np.inf, np.where(r < 0.06, -np.inf, np.where(r < 0.08, np.nan, v)))
        elif kind == "zeros":
            r = rng.random(shape)
            v = np.where(r < 0.4, 0.0, np.where(r < 0.7, -0.0, v))
        return v.astype(F32)

    if kind == "double":
        return (1 + rng.random((m, n))).astype(F32), draw(m, k), draw(k, n, eps=-(2.0**-23))
    acc0 = draw(m, n)
    if kind == "tiny":
        acc0 *= F32(1e-20)
    return acc0, draw(m, k), draw(k, n)


@settings(max_examples=40, deadline=None)
@given(
    m=st.sampled_from([1, 2, 5, 33]),
    n=st.sampled_from([1, 3, 64, 300]),
    k=st.integers(1, 13),
    kind=st.sampled_from(KINDS),
    fz=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_fma32_chain_matches_naive(m: int, n: int, k: int, kind: str, fz: bool, seed: int) -> None:
    acc0, a, w = _operands(kind, m, n, k, seed)
    got = fma32_chain(acc0, a, w, fz=fz)
    np.testing.assert_array_equal(_bits(got), _bits(_naive_fma32(acc0, a, w, fz)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fz", [False, True])
@pytest.mark.parametrize("shape", [(1, 700, 70), (40, 1100, 9), (70, 600, 11)])
def test_fma32_chain_tiles(kind: str, fz: bool, shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Several tiles and threads, blocks crossing K, and the one-row (GEMV) path."""
    monkeypatch.setattr(_engine, "_TILE_ELEMS", 1 << 12)
    monkeypatch.setattr(_engine, "_MIN_THREADED", 1 << 10)
    m, n, k = shape
    acc0, a, w = _operands(kind, m, n, k, 7)
    got = fma32_chain(acc0, a, w, fz=fz)
    np.testing.assert_array_equal(_bits(got), _bits(_naive_fma32(acc0, a, w, fz)))


def test_fma32_chain_edge_cases() -> None:
    # Exact value just below FLT_MIN that RN64 rounds up to FLT_MIN: FZ must flush it.
    flt_min = np.finfo(F32).tiny
    acc0 = np.array([[flt_min]], dtype=F32)
    a = np.array([[-(2.0**-100)]], dtype=F32)
    w = np.array([[2.0**-100]], dtype=F32)
    for fz in (False, True):
        np.testing.assert_array_equal(_bits(fma32_chain(acc0, a, w, fz=fz)), _bits(_naive_fma32(acc0, a, w, fz)))
    # A midpoint of the largest binade rounds to inf; signed zeros survive; K = 0 returns acc0.
    big = np.array([[np.finfo(F32).max]], dtype=F32)
    half_ulp = np.array([[2.0**103]], dtype=F32)
    one = np.ones((1, 1), dtype=F32)
    assert np.isinf(fma32_chain(big, half_ulp, one)[0, 0])
    neg0 = np.full((2, 3), -0.0, dtype=F32)
    got = fma32_chain(neg0, np.full((2, 4), -0.0, F32), np.zeros((4, 3), F32))
    np.testing.assert_array_equal(_bits(got), _bits(neg0))
    assert fma32_chain(neg0, np.zeros((2, 0), F32), np.zeros((0, 3), F32)).shape == (2, 3)


def _naive_f16(
    step: Callable[..., NDArray[np.float32]],
    acc0: NDArray[np.float32],
    a: NDArray[np.float16],
    w: NDArray[np.float16],
    pairs: bool,
) -> NDArray[np.float32]:
    acc = acc0.astype(F32)
    if pairs:
        for p in range(0, a.shape[1], 2):
            acc = step(acc, a[:, p : p + 1], w[p : p + 1, :], a[:, p + 1 : p + 2], w[p + 1 : p + 2, :])
    else:
        for k in range(a.shape[1]):
            acc = step(acc, a[:, k : k + 1], w[k : k + 1, :])
    return canonical_nan_f32(acc)


def _f16_operands(kind: str, m: int, n: int, k: int, seed: int) -> tuple[NDArray[Any], ...]:
    rng = np.random.default_rng(seed)

    def draw(*shape: int) -> NDArray[np.float16]:
        if kind == "bits":  # every f16 pattern class: subnormals, inf, NaN, signed zeros
            return rng.integers(0, 1 << 16, shape, dtype=np.uint16).view(np.float16)
        if kind == "huge":  # some overflow to +-Inf on purpose
            with np.errstate(over="ignore"):
                return (rng.standard_normal(shape) * 3e4).astype(np.float16)
        if kind == "tiny":
            return (rng.standard_normal(shape) * 1e-6).astype(np.float16)
        v = rng.standard_normal(shape).astype(np.float16)
        if kind in ("zeros", "pluszero"):  # signed zeros: exact-zero pair sums of either sign
            r = rng.random(shape)
            v = np.where(r < 0.4, np.float16(0), np.where(r < 0.8, np.float16(-0.0), v))
        return v

    acc0 = (rng.standard_normal((m, n)) * (1e-10 if kind == "tiny" else 1.0)).astype(F32)
    if kind == "zeros":
        acc0 = np.where(rng.random((m, n)) < 0.5, F32(-0.0), F32(0.0)).astype(F32)
    elif kind == "pluszero":
        acc0 = np.zeros((m, n), dtype=F32)
    return acc0, draw(m, k), draw(k, n)


@settings(max_examples=40, deadline=None)
@given(
    m=st.sampled_from([1, 2, 17]),
    n=st.sampled_from([1, 5, 64, 300]),
    half_k=st.integers(1, 40),
    kind=st.sampled_from(["random", "bits", "huge", "tiny", "zeros", "pluszero"]),
    seed=st.integers(0, 2**31),
)
def test_f16_chains_match_naive(m: int, n: int, half_k: int, kind: str, seed: int) -> None:
    acc0, a, w = _f16_operands(kind, m, n, 2 * half_k, seed)
    np.testing.assert_array_equal(_bits(f16_pair_chain(acc0, a, w)), _bits(_naive_f16(fdot_add_za, acc0, a, w, True)))
    k1 = 2 * half_k - 1
    np.testing.assert_array_equal(
        _bits(f16_mla_chain(acc0, a[:, :k1], w[:k1])), _bits(_naive_f16(fmlal, acc0, a[:, :k1], w[:k1], False))
    )


@pytest.mark.parametrize("kind", ["bits", "random", "zeros", "pluszero"])
@pytest.mark.parametrize("shape", [(1, 5000, 140), (40, 1100, 18)])
def test_f16_chains_tiles(kind: str, shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "_TILE_ELEMS", 1 << 12)
    monkeypatch.setattr(_engine, "_MIN_THREADED", 1 << 10)
    m, n, k = shape
    acc0, a, w = _f16_operands(kind, m, n, k, 3)
    np.testing.assert_array_equal(_bits(f16_pair_chain(acc0, a, w)), _bits(_naive_f16(fdot_add_za, acc0, a, w, True)))
    np.testing.assert_array_equal(_bits(f16_mla_chain(acc0, a, w)), _bits(_naive_f16(fmlal, acc0, a, w, False)))


@pytest.mark.parametrize("flush", [False, True])
@pytest.mark.parametrize("finite_only", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_f16_to_f32_every_pattern(flush: bool, finite_only: bool, scaled: bool) -> None:
    """Every binary16 pattern (or every finite one: the fast path), with and without FZ16;
    ``scaled``: a finite block comes as h * 2**-112, exactly (a non-finite one unscaled)."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    if finite_only:
        h = h[np.isfinite(h)]
    out = np.empty(h.shape, dtype=F32)
    assert _engine._f16_to_f32(h, out, flush, scaled=scaled) == finite_only
    if scaled and finite_only:
        out = out * F32(2.0**112)  # exact: the scaled values are binary32 (subnormals included)
    ref = (ftz16(h) if flush else h).astype(F32)
    same = (_bits(out) == _bits(ref)) | (np.isnan(out) & np.isnan(ref))
    assert same.all()


@pytest.mark.parametrize("fz", [False, True])
@pytest.mark.parametrize("shape", [(1, 100, 9), (1, 70, 33), (37, 300, 6)])
def test_fma32_chain_blocked_w(fz: bool, shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A [K, nb, nr] view of packed blocks gives the same bits as the [K, N] matrix."""
    monkeypatch.setattr(_engine, "_TILE_ELEMS", 1 << 11)
    monkeypatch.setattr(_engine, "_MIN_THREADED", 1 << 9)
    m, n, k = shape
    nr = 32
    nb = -(-n // nr)
    acc0, a, w = _operands("subnormal", m, n, k, 11)
    packed = np.zeros((nb, k, nr), dtype=F32)  # the packers' order: block, k, lane
    padded = np.zeros((k, nb * nr), dtype=F32)
    padded[:, :n] = w
    packed[...] = padded.reshape(k, nb, nr).transpose(1, 0, 2)
    view = packed.transpose(1, 0, 2)  # [K, nb, nr], no copy
    got = fma32_chain(acc0, a, view, fz=fz)
    np.testing.assert_array_equal(_bits(got), _bits(fma32_chain(acc0, a, w, fz=fz)))
    np.testing.assert_array_equal(_bits(got), _bits(_naive_fma32(acc0, a, w, fz)))


@pytest.mark.parametrize("shape", [(1, 100, 10), (1, 70, 34), (37, 300, 6)])
def test_f16_chains_blocked_w(shape: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The pf16 packed view [K/2, 2, nb, nr] gives the same bits as the [K, N] matrix."""
    monkeypatch.setattr(_engine, "_TILE_ELEMS", 1 << 11)
    monkeypatch.setattr(_engine, "_MIN_THREADED", 1 << 9)
    m, n, k = shape
    nr, kr = 32, 2
    nb = -(-n // nr)
    acc0, a, w = _f16_operands("random", m, n, k, 5)
    padded = np.zeros((k, nb * nr), dtype=np.float16)
    padded[:, :n] = w
    packed = np.ascontiguousarray(padded.reshape(k // kr, kr, nb, nr).transpose(2, 0, 3, 1))  # [nb, K/kr, nr, kr]
    view = packed.transpose(1, 3, 0, 2)  # [K/kr, kr, nb, nr], no copy
    np.testing.assert_array_equal(_bits(f16_pair_chain(acc0, a, view)), _bits(f16_pair_chain(acc0, a, w)))
    k1 = k - 1
    np.testing.assert_array_equal(
        _bits(f16_mla_chain(acc0, a[:, :k1], view)), _bits(_naive_f16(fmlal, acc0, a[:, :k1], w[:k1], False))
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.sampled_from([5, 64, 100]),
    k=st.integers(1, 40),
    kind=st.sampled_from(KINDS),
    fz=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_fma32_chain_windowed_blocks(n: int, k: int, kind: str, fz: bool, seed: int) -> None:
    """One-row chains on a blocked W read it through windows of staged rows: the naive bits.

    Small k blocks and windows make many of both, the last ones cut short by K; the kinds
    drive the tie, tiny and FZ paths on rows served from a window.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_engine, "_KB_ROW", 2)
        mp.setattr(_engine, "_STAGE_ROWS", 6)
        acc0, a, w = _operands(kind, 1, n, k, seed)
        nr = 16
        nb = -(-n // nr)
        padded = np.zeros((k, nb * nr), dtype=F32)
        padded[:, :n] = w
        blocks = np.ascontiguousarray(padded.reshape(k, nb, nr).transpose(1, 0, 2))  # the packers' order
        got3 = fma32_chain(acc0, a, blocks.transpose(1, 0, 2), fz=fz)  # [K, nb, nr]
        got4 = fma32_chain(acc0, a, blocks[:, :, :, None].transpose(1, 3, 0, 2), fz=fz)  # [K, 1, nb, nr]
    want = _bits(_naive_fma32(acc0, a, w, fz))
    np.testing.assert_array_equal(_bits(got3), want)
    np.testing.assert_array_equal(_bits(got4), want)


@settings(max_examples=20, deadline=None)
@given(
    n=st.sampled_from([5, 64, 100]),
    half_k=st.integers(1, 20),
    kind=st.sampled_from(["random", "bits", "huge", "tiny", "zeros"]),
    seed=st.integers(0, 2**31),
)
def test_f16_chains_one_row_blocks(n: int, half_k: int, kind: str, seed: int) -> None:
    """The f16 chains on one row of a packed [K/2, 2, nb, nr] view, in many small k blocks
    (buffers reused from block to block, a last block cut short): the naive bits."""
    k = 2 * half_k
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KLEIDIREF_THREADS", "2")
        mp.setattr(_engine, "_KB16_ROW", 4)
        acc0, a, w = _f16_operands(kind, 1, n, k, seed)
        nr, kr = 16, 2
        nb = -(-n // nr)
        padded = np.zeros((k, nb * nr), dtype=np.float16)
        padded[:, :n] = w
        view = np.ascontiguousarray(padded.reshape(k // kr, kr, nb, nr).transpose(2, 0, 3, 1)).transpose(1, 3, 0, 2)
        pair = f16_pair_chain(acc0, a, view)
        mla = f16_mla_chain(acc0, a, view)
    np.testing.assert_array_equal(_bits(pair), _bits(_naive_f16(fdot_add_za, acc0, a, w, True)))
    np.testing.assert_array_equal(_bits(mla), _bits(_naive_f16(fmlal, acc0, a, w, False)))


@pytest.mark.parametrize("threads", ["1", "2"])
@pytest.mark.parametrize("m", [1, 17])
def test_f16_chains_flush_w(threads: str, m: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``flush_w`` (FZ16 on W, block by block) equals the chain on a W flushed beforehand."""
    monkeypatch.setenv("KLEIDIREF_THREADS", threads)
    monkeypatch.setattr(_engine, "_KB16_ROW", 4)
    acc0, a, w = _f16_operands("bits", m, 70, 24, 3)
    nr, kr = 32, 2
    padded = np.zeros((24, 96), dtype=np.float16)
    padded[:, :70] = w
    view = np.ascontiguousarray(padded.reshape(12, kr, 3, nr).transpose(2, 0, 3, 1)).transpose(1, 3, 0, 2)
    flushed = ftz16(w)
    assert not np.array_equal(flushed.view(np.uint16), w.view(np.uint16))  # the draw has subnormals
    for chain in (f16_pair_chain, f16_mla_chain):
        want = _bits(chain(acc0, a, flushed))
        np.testing.assert_array_equal(_bits(chain(acc0, a, view, flush_w=True)), want)
        np.testing.assert_array_equal(_bits(chain(acc0, a, w, flush_w=True)), want)


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 12),
    n=st.integers(1, 40),
    kind=st.sampled_from(["random", "zeros", "subnormal", "tiny", "special"]),
    all_zero_rows=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_row_lows_is_the_whole_array_scan_per_row(k: int, n: int, kind: str, all_zero_rows: bool, seed: int) -> None:
    """``row_lows`` per row equals the one-array scan the chains use (``_min_nonzero_bits``)."""
    w = _operands(kind, 1, n, k, seed)[2]
    if all_zero_rows:
        w[::2] = np.where(np.random.default_rng(seed).random(w[::2].shape) < 0.5, F32(0.0), F32(-0.0))
    lows = _engine.row_lows(w)
    assert lows.dtype == np.int64 and lows.shape == (k,)
    for i in range(k):
        want = _engine._min_nonzero_bits(w[i])
        assert lows[i] == want, (i, hex(int(lows[i])), hex(want))
    flushed, flows = _engine.flushed_row_lows(w)  # W as FZ reads it, and its lows
    np.testing.assert_array_equal(_bits(flushed), _bits(ftz32(w)))
    np.testing.assert_array_equal(flows, _engine.row_lows(ftz32(w)))
    assert (flushed is w) == (not has_subnormal(w))  # no copy without a subnormal


@settings(max_examples=40, deadline=None)
@given(
    m=st.sampled_from([1, 3, 40]),
    n=st.sampled_from([5, 64, 100]),
    k=st.integers(1, 24),
    kind=st.sampled_from(KINDS),
    fz=st.booleans(),
    extra=st.integers(0, 40),
    lone=st.sampled_from([None, 1e-40, -3e-39, 1e-30]),
    seed=st.integers(0, 2**31),
)
def test_fma32_chain_w_lows(
    m: int, n: int, k: int, kind: str, fz: bool, extra: int, lone: float | None, seed: int
) -> None:
    """With ``w_lows`` (of W, or of a W with more columns: a lower bound) the chain skips its
    scans of W and gives the same bits, FZ flushes and tiny values included. ``lone``: one
    small weight (subnormal, or with a tiny product) in one row of a block, the others normal."""
    acc0, a, w = _operands(kind, m, n, k, seed)
    if lone is not None:
        rng = np.random.default_rng(seed)
        w[int(rng.integers(k)), int(rng.integers(n))] = F32(lone)
    more = np.concatenate([w, _operands("subnormal", 1, extra, k, seed + 1)[2]], axis=1)  # more columns
    want = _bits(_naive_fma32(acc0, a, w, fz))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_engine, "_KB_ROW", 4)
        for lows in (_engine.row_lows(w), _engine.row_lows(more)):
            np.testing.assert_array_equal(_bits(fma32_chain(acc0, a, w, fz=fz, w_lows=lows)), want)
            np.testing.assert_array_equal(_bits(fma32_chain(acc0, a, more[:, :n], fz=fz, w_lows=lows)), want)


@pytest.mark.parametrize("fz", [False, True])
@pytest.mark.parametrize("m", [1, 3])
def test_fma32_chain_w_lows_lone_small_weights(fz: bool, m: int) -> None:
    """One row of a block holds a subnormal weight (FZ must flush it) or one whose product is
    tiny (FZ must flush the result), every other row only normal ones: the lows must show it."""
    k, n = 40, 6
    w = np.random.default_rng(1).standard_normal((k, n)).astype(F32)
    a = np.full((m, k), F32(1e-10))
    w[:, 2] = 0
    w[3, 2] = F32(1e-30)  # a * w = 1e-40: a binary32 subnormal result
    a[:, 21] = F32(1e30)
    w[:, 4] = 0
    w[21, 4] = F32(1e-40)  # subnormal: read as 0 under FZ, else a * w = 1e-10
    acc0 = np.zeros((m, n), F32)
    want = _bits(_naive_fma32(acc0, a, w, fz))
    assert (want[:, 2] != 0).all() != fz and (want[:, 4] != 0).all() != fz
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_engine, "_KB_ROW", 8)
        mp.setattr(_engine, "_KB", 8)
        got = fma32_chain(acc0, a, w, fz=fz, w_lows=_engine.row_lows(w))
    np.testing.assert_array_equal(_bits(got), want)


def test_fma32_chain_w_lows_shape() -> None:
    acc0, a, w = _operands("random", 2, 5, 7, 0)
    with pytest.raises(ValueError, match=r"w_lows must have shape \(7,\)"):
        fma32_chain(acc0, a, w, w_lows=np.zeros(6, np.int64))


@pytest.mark.parametrize("kr", [1, 2])
@pytest.mark.parametrize("shape", [(5, 3), (130, 70), (64, 33)])
def test_gather_rows_unblocks(kr: int, shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """``gather_rows`` of a packed view is the [K, n] matrix, in windows cut short by K."""
    monkeypatch.setattr(_engine, "_STAGE_ROWS", 8)
    k, n = shape
    k += k % kr
    nr = 16
    nb = -(-n // nr)
    w = np.random.default_rng(k * n).standard_normal((k, nb * nr)).astype(F32)
    blocks = np.ascontiguousarray(w.reshape(k // kr, kr, nb, nr).transpose(2, 0, 3, 1))  # [nb, K/kr, nr, kr]
    view = blocks.transpose(1, 3, 0, 2)  # [K/kr, kr, nb, nr]
    got = _engine.gather_rows(view if kr == 2 else view[:, 0], n)
    assert got.flags.c_contiguous and got.shape == (k, n)
    np.testing.assert_array_equal(got, w[:, :n])

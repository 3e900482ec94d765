"""kleidiref.numerics against an independent exact oracle (fractions.Fraction)."""

from __future__ import annotations

import math
from fractions import Fraction

import _exact
import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from kleidiref import numerics as nx
from kleidiref.numerics import Clamp

F32, F16 = np.float32, np.float16


def round_fraction(v: Fraction, mant_bits: int, emin: int, emax: int) -> float:
    """Exact value -> nearest-even binary float with ``mant_bits`` fraction bits (subnormals kept)."""
    if v == 0:
        return 0.0
    sign = -1 if v < 0 else 1
    a = abs(v)
    e = math.floor(math.log2(a.numerator) - math.log2(a.denominator))
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    q = Fraction(2) ** (max(e, emin) - mant_bits)
    n = round(a / q)  # Fraction.__round__ is round-half-even
    r = n * q
    if r >= Fraction(2) ** (emax + 1):
        return sign * math.inf
    return sign * float(r)


def to_f32(v: Fraction) -> np.float32:
    return F32(round_fraction(v, 23, -126, 127))  # type: ignore[no-any-return]


def to_f16(v: Fraction) -> np.float16:
    return F16(round_fraction(v, 10, -14, 15))  # type: ignore[no-any-return]


def same_bits(x: ArrayLike, y: ArrayLike) -> bool:
    return bool(
        np.asarray(x).view(np.uint32 if np.asarray(x).dtype == F32 else np.uint16)
        == np.asarray(y).view(np.uint32 if np.asarray(y).dtype == F32 else np.uint16)
    )


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(F32)
finite16 = st.floats(width=16, allow_nan=False, allow_infinity=False).map(F16)


def exact_fma(a: np.float32, b: np.float32, c: np.float32) -> Fraction:
    return Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))


def oracle_fma32(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    v = exact_fma(a, b, c)
    r = to_f32(v)
    if r == 0:  # the sign of an exact zero sum follows IEEE RNE
        return F32(float(a) * float(b) + float(c)) if v == 0 else F32(math.copysign(0.0, v))  # type: ignore[no-any-return]
    return r


@settings(max_examples=400, deadline=None)
@given(finite32, finite32, finite32)
def test_fma32_matches_exact_rounding(a: np.float32, b: np.float32, c: np.float32) -> None:
    got = nx.fma32(a, b, c)
    want = oracle_fma32(a, b, c)
    if np.isinf(want) or np.isnan(got):
        assert np.isinf(got) or np.isnan(want)
        return
    assert same_bits(got, want), (a, b, c, got, want)


@settings(max_examples=300, deadline=None)
@given(finite32, finite32)
def test_fma32_near_cancellation(a: np.float32, b: np.float32) -> None:
    """c = -RN32(a*b): the result is the exact rounding error of the product."""
    with np.errstate(over="ignore"):
        c = F32(-(a * b))
    assume(np.isfinite(c))
    got = nx.fma32(a, b, c)
    assert same_bits(got, oracle_fma32(a, b, c))


def test_fma32_midpoint_double_rounding() -> None:
    """Exact value just below a binary32 midpoint: a float64 sum would round onto the midpoint."""
    t = F32(2.0**-18)
    cases = []
    for e in (30, 0, -20, 100, -100):
        c = F32(2.0**e + 2.0 ** (e - 23))  # odd significand: RNE from the midpoint goes up
        h = 2.0 ** (e - 24)  # half an ulp of c
        a, b = F32(h * (1 - float(t))), F32(1 + float(t))  # a*b = h - h*2**-36
        cases.append((a, b, c))
        cases.append((-a, b, -c))
    for a, b, c in cases:
        naive = F32(float(a) * float(b) + float(c))
        exact = oracle_fma32(a, b, c)
        assert not same_bits(naive, exact), "case does not exercise double rounding"
        assert same_bits(nx.fma32(a, b, c), exact)


def test_fma32_subnormal_results_and_fz() -> None:
    a, b, c = F32(1e-20), F32(3e-20), F32(0.0)
    assert same_bits(nx.fma32(a, b, c), oracle_fma32(a, b, c))  # a subnormal result
    assert same_bits(nx.fma32(a, b, c, fz=True), F32(0.0))
    assert same_bits(nx.fma32(-a, b, c, fz=True), F32(-0.0))  # flushed zeros keep the sign
    # Tininess before rounding: FLT_MIN*(1 - 2**-24) would round up to FLT_MIN but is flushed.
    tmin = F32(nx.FLT_MIN)
    x = F32(float(tmin) * (1 - 2.0**-24) / 2.0**-30)
    assert float(x) * 2.0**-30 == float(tmin) * (1 - 2.0**-24)
    assert nx.fma32(x, F32(2.0**-30), F32(0.0)) == tmin
    assert nx.fma32(x, F32(2.0**-30), F32(0.0), fz=True) == 0
    # Subnormal operands read as zero under FZ.
    assert nx.fma32(F32(1e-40), F32(1e10), F32(0.0), fz=True) == 0


def test_fma32_default_nan_and_shape() -> None:
    r = nx.fma32(np.array([np.inf, 1.0], F32), np.array([0.0, 1.0], F32), np.array([1.0, np.nan], F32))
    assert r.shape == (2,)
    assert (r.view(np.uint32) == nx.DEFAULT_NAN_F32_BITS).all()
    with pytest.raises(TypeError, match="float32"):
        nx.fma32(1.0, 2.0, 3.0)


@settings(max_examples=400, deadline=None)
@given(finite16, finite16, finite16, finite16)
def test_f16_pair_dot_single_rounding(a0: np.float16, b0: np.float16, a1: np.float16, b1: np.float16) -> None:
    v = Fraction(float(a0)) * Fraction(float(b0)) + Fraction(float(a1)) * Fraction(float(b1))
    got = nx.f16_pair_dot(a0, b0, a1, b1)
    want = to_f32(v)
    if v == 0:
        assert got == 0
    else:
        assert same_bits(got, want)


@settings(max_examples=300, deadline=None)
@given(finite32, finite16, finite16, finite16, finite16)
def test_fdot_add_za_two_roundings(
    acc: np.float32, a0: np.float16, b0: np.float16, a1: np.float16, b1: np.float16
) -> None:
    pair = to_f32(Fraction(float(a0)) * Fraction(float(b0)) + Fraction(float(a1)) * Fraction(float(b1)))
    want = to_f32(Fraction(float(acc)) + Fraction(float(pair)))
    got = nx.fdot_add_za(acc, a0, b0, a1, b1)
    if np.isinf(want):
        assert np.isinf(got)
    elif want != 0:
        assert same_bits(got, want)


@settings(max_examples=300, deadline=None)
@given(finite32, finite16, finite16)
def test_fmlal_one_rounding(acc: np.float32, a: np.float16, b: np.float16) -> None:
    want = to_f32(Fraction(float(acc)) + Fraction(float(a)) * Fraction(float(b)))
    got = nx.fmlal(acc, a, b)
    if want != 0 and np.isfinite(want):
        assert same_bits(got, want)


@settings(max_examples=500, deadline=None)
@given(finite32)
def test_rn16_is_rne(x: np.float32) -> None:
    want = to_f16(Fraction(float(x)))
    got = nx.rn16(x)
    if np.isinf(want):
        assert np.isinf(got) and np.sign(got) == np.sign(want)
    elif want != 0:
        assert same_bits(got, want)


def test_round_half_away_and_even_ties() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.49999997, 8388607.5, 3.0], F32)
    assert nx.round_half_away(x).tolist() == [1, 2, 3, -1, -2, -3, 0, 0, 8388608, 3]
    assert nx.round_half_even(x).tolist() == [0, 2, 2, -0, -2, -2, 0, 0, 8388608, 3]


@settings(max_examples=500, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-1e7, max_value=1e7).map(F32))
def test_round_half_away_matches_fraction(x: np.float32) -> None:
    fx = Fraction(float(x))
    fl = math.floor(fx)
    frac = fx - fl
    want = fl + 1 if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and x > 0) else fl
    assert float(nx.round_half_away(x)) == float(want)


def test_clamps_nan_and_signed_zero() -> None:
    x = np.array([np.nan, -0.0, 0.0, -5.0, 5.0, 1.0], F32)
    lo, hi = F32(-1.0), F32(2.0)
    c2 = nx.fclamp(x, lo, hi)
    assert c2[0] == -1.0  # SME2 FCLAMP: NaN becomes the lower bound
    assert c2.tolist()[3:] == [-1.0, 2.0, 1.0]
    c1 = nx.fmin_fmax(x, lo, hi)
    assert c1.view(np.uint32)[0] == nx.DEFAULT_NAN_F32_BITS  # SME1: NaN propagates as the default NaN
    assert nx.fmax_fmin(x, lo, hi).view(np.uint32)[0] == nx.DEFAULT_NAN_F32_BITS
    # -0 orders below +0: clamping -0 to [+0, 1] gives +0.
    z = nx.fclamp(np.array([-0.0], F32), F32(0.0), F32(1.0))
    assert not np.signbit(z[0])
    z = nx.fmin_fmax(np.array([0.0], F32), F32(-1.0), F32(-0.0))
    assert np.signbit(z[0])
    assert nx.fclamp(np.array([np.nan], F16), F16(-1), F16(1)).dtype == F16


def _arm_max(a: float, b: float) -> float:
    """FPMax on non-NaN values (-0 < +0)."""
    if a == b == 0:
        return 0.0 if not (math.copysign(1, a) < 0 and math.copysign(1, b) < 0) else -0.0
    return max(a, b)


def _arm_min(a: float, b: float) -> float:
    """FPMin on non-NaN values (-0 < +0)."""
    if a == b == 0:
        return -0.0 if (math.copysign(1, a) < 0 or math.copysign(1, b) < 0) else 0.0
    return min(a, b)


def _num(op: object, a: float, b: float) -> float:
    """FPMaxNum / FPMinNum: a quiet NaN operand loses to a number."""
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return op(a, b)  # type: ignore[no-any-return,operator]


def _prop(op: object, a: float, b: float) -> float:
    """FMAX / FMIN: a NaN operand gives NaN."""
    return math.nan if math.isnan(a) or math.isnan(b) else op(a, b)  # type: ignore[operator]


_CLAMP_VALUES = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-40, -1e-40, 3e38]


@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(st.sampled_from(_CLAMP_VALUES) | st.floats(width=32), min_size=1, max_size=12),
    lo=st.sampled_from(_CLAMP_VALUES),
    hi=st.sampled_from(_CLAMP_VALUES),
    f16=st.booleans(),
)
def test_clamps_match_the_arm_pseudocode(xs: list[float], lo: float, hi: float, f16: bool) -> None:
    """fclamp, fmin_fmax and fmax_fmin (fast numpy path without NaNs, exact path with them) against
    a scalar model of FPMaxNum/FPMinNum and FMAX/FMIN, signed zeros and NaNs included."""
    dt = F16 if f16 else F32
    with np.errstate(over="ignore"):
        x = np.array(xs, dtype=dt)
        lo_d, hi_d = dt(lo), dt(hi)
    lo_f, hi_f = float(lo_d), float(hi_d)
    refs = {
        nx.fclamp: lambda v: _num(_arm_min, _num(_arm_max, v, lo_f), hi_f),
        nx.fmin_fmax: lambda v: _prop(_arm_max, _prop(_arm_min, v, hi_f), lo_f),
        nx.fmax_fmin: lambda v: _prop(_arm_min, _prop(_arm_max, v, lo_f), hi_f),
    }
    nan_bits = nx.DEFAULT_NAN_F16_BITS if f16 else nx.DEFAULT_NAN_F32_BITS
    ut = np.uint16 if f16 else np.uint32
    for fn, ref in refs.items():
        got = fn(x, lo_d, hi_d)
        assert got.dtype == dt and got.shape == x.shape
        want = np.array([ref(float(v)) for v in x], dtype=dt)  # type: ignore[no-untyped-call]
        want_bits = np.where(np.isnan(want), ut(nan_bits), want.view(ut))
        np.testing.assert_array_equal(got.view(ut), want_bits)


def test_ftz() -> None:
    x = np.array([1e-40, -1e-40, 1e-30, 0.0], F32)
    r = nx.ftz32(x)
    assert r[0] == 0 and not np.signbit(r[0]) and np.signbit(r[1]) and r[2] == x[2]
    h = np.array([6e-5, -3e-5, 1e-7], F16)  # 6e-5 is normal (>= 2**-14 = 6.1e-5? no: subnormal)
    r16 = nx.ftz16(h)
    assert (r16 == 0).all() and np.signbit(r16[1])
    assert nx.ftz16(np.array([F16(2.0**-14)], F16))[0] == F16(2.0**-14)


@settings(max_examples=500, deadline=None)
@given(finite32)
def test_bf16_rne_matches_ml_dtypes(x: np.float32) -> None:
    got = nx.f32_to_bf16_rne(x)
    want = np.asarray(x).astype(ml_dtypes.bfloat16).view(np.uint16)
    assert int(got) == int(want)
    back = nx.bf16_to_f32(np.asarray(got, dtype=np.uint16))
    assert same_bits(back, np.asarray(want.view(ml_dtypes.bfloat16)).astype(F32))


def test_bf16_nan_quiet_bit() -> None:
    snan = np.array([0x7F800001], np.uint32).view(F32)
    assert int(nx.f32_to_bf16_rne(snan)[0]) == 0x7FC0
    with pytest.raises(TypeError, match="uint16"):
        nx.bf16_to_f32(np.array([1.0], F32))


def test_round_to_odd_sum_sticky() -> None:
    x = np.array([1.0]), np.array([2.0**-60])
    s = nx.round_to_odd_sum(*x)
    assert s[0] == np.nextafter(1.0, 2.0)  # inexact: forced odd
    assert nx.round_to_odd_sum(np.array([1.0]), np.array([2.0**-52]))[0] == 1.0 + 2.0**-52


def test_has_subnormal_and_flush_returns_input_when_clean() -> None:
    clean = np.array([1.0, -0.0, 0.0, np.inf, np.nan, nx.FLT_MIN], F32)
    assert not nx.has_subnormal(clean) and nx.ftz32(clean) is clean
    assert nx.has_subnormal(np.array([1.0, -1e-45], F32))
    assert nx.has_subnormal(np.array([F16(6e-8)], F16)) and not nx.has_subnormal(np.array([F16(2.0**-14)], F16))
    assert not nx.has_subnormal(np.zeros(0, F16))
    with pytest.raises(TypeError):
        nx.has_subnormal(np.ones(2))


def _fma32_round_to_odd(a: np.ndarray, b: np.ndarray, c: np.ndarray, fz: bool) -> np.ndarray:
    """fma32 written only with the round-to-odd sum (no fast path), FZ and default NaN included."""
    if fz:
        a, b, c = nx.ftz32(a), nx.ftz32(b), nx.ftz32(c)
    with np.errstate(over="ignore", invalid="ignore"):
        s = nx.round_to_odd_sum(a.astype(np.float64) * b.astype(np.float64), c.astype(np.float64))
        r = s.astype(F32)
    if fz:
        r = np.where((s != 0) & (np.abs(s) < nx.FLT_MIN), np.copysign(F32(0), s), r).astype(F32)
    return nx.canonical_nan_f32(r)


@pytest.mark.parametrize("fz", [False, True])
def test_fma32_fast_path_matches_round_to_odd(fz: bool) -> None:
    """The float64 fast path of fma32 and its redo of midpoints / out-of-range sums, on arrays
    spanning the whole binary32 range (subnormals, overflow, NaN, midpoints)."""
    rng = np.random.default_rng(5)
    n = 20000
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(F32)
    b = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(F32)
    c = (rng.standard_normal(n) * 10.0 ** rng.integers(-38, 38, n)).astype(F32)
    c[:100] = F32(2.0**-130)
    a[100:200], b[100:200] = F32(2.0**-10), F32(1 + 2.0**-23)  # products needing 25+ bits
    c[100:200] = F32(1.0)
    a[200:210], b[200:210], c[200:210] = F32(np.inf), F32(0.0), F32(np.nan)
    want = _fma32_round_to_odd(a, b, c, fz)
    got = nx.fma32(a, b, c, fz=fz)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    if fz:  # operands already read through the flush
        got2 = nx.fma32(nx.ftz32(a), nx.ftz32(b), nx.ftz32(c), fz=True, flushed=True)
        np.testing.assert_array_equal(got2.view(np.uint32), want.view(np.uint32))
    # Broadcasting: a column times a row plus a matrix.
    a2, b2, c2 = a[:64, None], b[None, :50], c[: 64 * 50].reshape(64, 50)
    want2 = _fma32_round_to_odd(*np.broadcast_arrays(a2, b2, c2), fz=fz)  # type: ignore[arg-type,misc]
    np.testing.assert_array_equal(nx.fma32(a2, b2, c2, fz=fz).view(np.uint32), want2.view(np.uint32))


# --- FMUL / FADD / FMLA (.s and .h) against the exact rational oracle of tests/_exact.py --------

_FMT = {F32: "f32", F16: "f16"}
_TINY32 = [0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 1.1754944e-38, 2.0**-63, -(2.0**-64), 3e38, 1.0]
_TINY16 = [0.0, -0.0, 6e-8, -6e-8, 6.1e-5, 2.0**-7, -(2.0**-8), 65504.0, 1.0]


def _operands(dt: type) -> st.SearchStrategy[float]:
    width, extra = (32, _TINY32) if dt is F32 else (16, _TINY16)
    return st.floats(width=width, allow_nan=False, allow_infinity=False) | st.sampled_from(extra)  # type: ignore[arg-type]


def _rd(v: np.floating, fz: bool) -> Fraction:
    return _exact.rd(v, _FMT[type(v)], fz)


def _neg(v: np.floating) -> bool:
    """Sign of an operand as read (the FZ flush keeps it)."""
    return bool(np.signbit(v))


def _want(x: Fraction, dt: type, fz: bool, neg_zero: bool) -> np.ndarray:
    return np.array([_exact.rnd(x, _FMT[dt], fz, neg_zero)], dtype=dt)  # type: ignore[index]


def _check(got: np.ndarray, want: np.ndarray) -> None:
    ut = np.uint32 if got.dtype == F32 else np.uint16
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(ut), want.view(ut))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), dt=st.sampled_from([F32, F16]), fz=st.booleans())
def test_fmul_fadd_fma_match_exact_rounding(data: st.DataObject, dt: type, fz: bool) -> None:
    """fmul32/fadd32/fma32 and fmul16/fadd16/fma16: one RNE rounding of the exact value, FZ with
    tininess before rounding, IEEE signs of exact zeros."""
    a, b, c = (dt(data.draw(_operands(dt))) for _ in range(3))
    ra, rb, rc = _rd(a, fz), _rd(b, fz), _rd(c, fz)
    na, nb, nc = _neg(a), _neg(b), _neg(c)
    mul, add, fma = (nx.fmul32, nx.fadd32, nx.fma32) if dt is F32 else (nx.fmul16, nx.fadd16, nx.fma16)
    arr = [np.array([v], dtype=dt) for v in (a, b, c)]  # type: ignore[var-annotated]
    with np.errstate(over="ignore"):
        _check(mul(arr[0], arr[1], fz=fz), _want(ra * rb, dt, fz, na != nb))
        _check(add(arr[0], arr[1], fz=fz), _want(ra + rb, dt, fz, na and nb))
        _check(fma(*arr, fz=fz), _want(ra * rb + rc, dt, fz, (na != nb) and nc))


@pytest.mark.parametrize("fz", [False, True])
def test_fmul32_fadd32_arrays_broadcast_and_out(fz: bool) -> None:
    """The array forms: an outer product (fmul32's bound on the smallest magnitudes), results
    equal to fma32 as FPMulAdd elementwise, fadd32 into ``out`` (in place), NaN -> default NaN."""
    rng = np.random.default_rng(3)
    col = (rng.standard_normal((40, 1)) * 2.0 ** rng.integers(-70, 10, (40, 1))).astype(F32)
    row = (rng.standard_normal((1, 30)) * 2.0 ** rng.integers(-70, 10, (1, 30))).astype(F32)
    col[:3, 0] = [1e-40, -0.0, np.nan]
    prod = nx.fmul32(col, row, fz=fz)
    _check(prod, nx.fma32(col, row, F32(-0.0), fz=fz))
    total = nx.fadd32(prod, row, fz=fz)
    buf = prod.copy()
    assert nx.fadd32(buf, row, fz=fz, out=buf) is buf
    _check(buf, total)
    _check(total, nx.fma32(F32(1.0), prod, row, fz=fz))
    assert (total[2].view(np.uint32) == nx.DEFAULT_NAN_F32_BITS).all()
    if fz:  # operands already flushed: the same results without the scan
        _check(nx.fmul32(nx.ftz32(col), row, fz=True, flushed=True), prod)


# --- Clamp ---------------------------------------------------------------------------------------


def test_clamp_kinds_strings_and_aliases() -> None:
    assert Clamp("fclamp") is Clamp.FCLAMP and Clamp("fmin_fmax") is Clamp.FMIN_FMAX
    x = np.array([np.nan, -3.0, 0.5, 7.0, -0.0], F32)
    for kind, alias in ((Clamp.FCLAMP, nx.fclamp), (Clamp.FMIN_FMAX, nx.fmin_fmax), (Clamp.FMAX_FMIN, nx.fmax_fmin)):
        want = alias(x, F32(-1.0), F32(2.0))
        _check(nx.clamp(x, F32(-1.0), F32(2.0), kind), want)
        _check(nx.clamp(x, F32(-1.0), F32(2.0), kind.value), want)
    with pytest.raises(ValueError):
        nx.clamp(x, F32(0.0), F32(1.0), "fmaxnm")


@settings(max_examples=200, deadline=None)
@given(
    xs=st.lists(st.sampled_from(_CLAMP_VALUES) | st.floats(width=32), min_size=1, max_size=9),
    lo=st.sampled_from(_CLAMP_VALUES),
    hi=st.sampled_from(_CLAMP_VALUES),
    kind=st.sampled_from(list(Clamp)),
    f16=st.booleans(),
)
def test_clamp_fz_and_out(xs: list[float], lo: float, hi: float, kind: Clamp, f16: bool) -> None:
    """``fz`` reads x and both bounds through the flush; ``out`` (also ``out=x``) gives the same bits."""
    dt = F16 if f16 else F32
    with np.errstate(over="ignore"):
        x = np.array(xs, dtype=dt)
        lo_d, hi_d = dt(lo), dt(hi)
    flush = nx.ftz16 if f16 else nx.ftz32
    want = nx.clamp(flush(x), flush(np.asarray(lo_d)), flush(np.asarray(hi_d)), kind)
    _check(nx.clamp(x, lo_d, hi_d, kind, fz=True), want)
    plain = nx.clamp(x, lo_d, hi_d, kind)
    out = np.empty_like(x)
    assert nx.clamp(x, lo_d, hi_d, kind, out=out) is out
    _check(out, plain)
    xc = x.copy()
    assert nx.clamp(xc, lo_d, hi_d, kind, out=xc) is xc
    _check(xc, plain)


# --- Float -> integer conversions, integer wraparound and saturation ----------------------------


def _cvt_model(v: float, rounding: str, bits: int) -> int:
    """FCVTZS/FCVTNS/FCVTAS as the Arm ARM states them: NaN -> 0, round, saturate."""
    if math.isnan(v):
        return 0
    lim = 2 ** (bits - 1)
    if math.isinf(v):
        return lim - 1 if v > 0 else -lim  # type: ignore[no-any-return]
    f = Fraction(v)
    if rounding == "zero":
        r = math.trunc(f)
    elif rounding == "even":
        r = round(f)  # Fraction rounds half to even
    else:
        r = math.floor(abs(f) + Fraction(1, 2)) * (1 if f >= 0 else -1)
    return max(-lim, min(lim - 1, r))  # type: ignore[no-any-return]


_CVT_VALUES = [0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997, -1.5, 2.0**31, -(2.0**31), 2.0**31 - 128, 3e9, -3e9, 32767.5]


@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(st.floats(width=32) | st.sampled_from(_CVT_VALUES), min_size=1, max_size=8),
    bits=st.sampled_from([16, 32]),
)
def test_float_to_int_conversions(xs: list[float], bits: int) -> None:
    x = np.array(xs, dtype=F32)
    for fn, rounding in ((nx.fcvtzs, "zero"), (nx.fcvtns, "even"), (nx.fcvtas, "away")):
        got = fn(x, bits)
        assert got.dtype == np.int64
        assert got.tolist() == [_cvt_model(float(v), rounding, bits) for v in x]
    assert nx.frintn_fcvtzs(x).tolist() == nx.fcvtns(x).tolist()
    assert nx.frintn_fcvtzs(x).dtype == np.int32


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=8))
def test_wrap_and_saturate(vs: list[int]) -> None:
    x = np.array(vs, dtype=np.int64)
    assert nx.wrap_i32(x).dtype == np.int32
    assert nx.wrap_i32(x).tolist() == [(v + 2**31) % 2**32 - 2**31 for v in vs]
    assert nx.wrap_i16(x).tolist() == [(v + 2**15) % 2**16 - 2**15 for v in vs]
    for dt, lo, hi in ((np.int8, -128, 127), (np.uint8, 0, 255), (np.int16, -32768, 32767), (ml_dtypes.int4, -8, 7)):
        got = nx.saturate(x, dt)
        assert got.dtype == np.int64 and got.tolist() == [min(max(v, lo), hi) for v in vs]


def _x86_max(a: float, b: float) -> float:
    return a if a > b else b  # MAXPS: NaN or equal (zeros of either sign) -> the second operand


def _x86_min(a: float, b: float) -> float:
    return a if a < b else b


@settings(max_examples=200, deadline=None)
@given(
    xs=st.lists(st.sampled_from(_CLAMP_VALUES) | st.floats(width=32), min_size=1, max_size=9),
    lo=st.sampled_from([v for v in _CLAMP_VALUES if not math.isnan(v)]),
    hi=st.sampled_from([v for v in _CLAMP_VALUES if not math.isnan(v)]),
    f16=st.booleans(),
)
def test_x86_clamps_match_maxps_minps(xs: list[float], lo: float, hi: float, f16: bool) -> None:
    dt = F16 if f16 else F32
    with np.errstate(over="ignore"):
        x = np.array(xs, dtype=dt)
        lo_d, hi_d = dt(lo), dt(hi)
    lo_f, hi_f = float(lo_d), float(hi_d)
    refs = {
        Clamp.X86_MAX_MIN: lambda v: _x86_min(_x86_max(v, lo_f), hi_f),
        Clamp.X86_MIN_MAX: lambda v: _x86_max(_x86_min(v, hi_f), lo_f),
        Clamp.X86_BOUND_MAX_MIN: lambda v: _x86_min(hi_f, _x86_max(lo_f, v)),
    }
    ut = np.uint16 if f16 else np.uint32
    nan_bits = nx.DEFAULT_NAN_F16_BITS if f16 else nx.DEFAULT_NAN_F32_BITS
    for kind, ref in refs.items():
        with np.errstate(over="ignore"):
            want = np.array([ref(float(v)) for v in x], dtype=dt)  # type: ignore[no-untyped-call]
        want_bits = np.where(np.isnan(want), ut(nan_bits), want.view(ut))
        np.testing.assert_array_equal(nx.clamp(x, lo_d, hi_d, kind).view(ut), want_bits)
    assert nx.maxps(np.array([-0.0], F32), F32(0.0))[0] == 0 and not np.signbit(nx.maxps(F32(-0.0), F32(0.0)))
    assert np.signbit(nx.minps(F32(0.0), F32(-0.0)))


def test_fma32_x86_tininess_after_rounding() -> None:
    """MXCSR.FTZ flushes after rounding: a product just below FLT_MIN that rounds up to FLT_MIN
    is kept (FPCR.FZ, tininess before rounding, flushes it); DAZ reads subnormal operands as 0."""
    tmin = F32(nx.FLT_MIN)
    a, b = F32((1 - 2.0**-13) * 2.0**-63), F32((1 + 2.0**-13) * 2.0**-63)  # a*b = FLT_MIN * (1 - 2**-26)
    assert nx.fma32_x86(a, b, F32(0.0), ftz_daz=True) == tmin  # rounds (24 bits) up to FLT_MIN: kept
    assert nx.fma32(a, b, F32(0.0), fz=True) == 0
    y = F32(float(tmin) * (1 - 2.0**-22) / 2.0**-30)  # rounds to a value below FLT_MIN
    assert same_bits(nx.fma32_x86(-y, F32(2.0**-30), F32(0.0), ftz_daz=True), F32(-0.0))
    assert nx.fma32_x86(F32(1e-40), F32(1e30), F32(0.0), ftz_daz=True) == 0
    rng = np.random.default_rng(9)
    a, b, c = (rng.standard_normal(500).astype(F32) for _ in range(3))
    _check(nx.fma32_x86(a, b, c, ftz_daz=True), nx.fma32(a, b, c))  # no tiny values: same as FMLA


def test_frintn_biased_bits() -> None:
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 4194303.5, -4194304.0, 7.49], F32)
    want = np.rint(v.astype(np.float64)).astype(np.int64)
    got = nx.frintn_biased_bits(v.copy())
    assert got.dtype == np.int32 and (got.astype(np.int64) - nx.FRINTN_MAGIC_BITS).tolist() == want.tolist()
    buf = np.array([1.25, -3.5], F32)
    assert nx.round_half_even(buf, out=buf) is buf and buf.tolist() == [1.0, -4.0]


@settings(max_examples=200, deadline=None)
@given(
    a=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=8),
    b=st.integers(-(2**31), 2**31 - 1),
    shift=st.integers(1, 31),
)
def test_sqdmulh_srshr_clamp_int(a: list[int], b: int, shift: int) -> None:
    """SQDMULH and SRSHL by a negative shift against their Arm ARM definitions (exact integers)."""
    x = np.array(a, dtype=np.int32)
    want = [max(-(2**31), min(2**31 - 1, (2 * v * b) >> 32)) for v in a]  # floor, then saturate
    assert nx.sqdmulh(x, b).tolist() == want
    assert nx.sqdmulh(np.array([-(2**31)], np.int32), -(2**31)).tolist() == [2**31 - 1]
    assert nx.srshr(x, shift).tolist() == [(v + (1 << (shift - 1))) >> shift for v in a]
    lo, hi = sorted((b, b // 3))
    assert nx.clamp_int(x, lo, hi).tolist() == [min(max(v, lo), hi) for v in a]


_f32_any = st.floats(width=32, allow_nan=False) | st.sampled_from(
    [0.0, -0.0, 1e-40, -1e-40, 1.1754942e-38, 1.1754944e-38, 2.0**-63, 2.0**-64, -(2.0**-63)]
)


@settings(max_examples=300, deadline=None)
@given(a=_f32_any, b=_f32_any, fz=st.booleans())
def test_fmul_fadd_match_fma32_oracle(a: float, b: float, fz: bool) -> None:
    """fmul32/fadd32 (FMUL/FADD with FPCR.FZ) agree with numerics.fma32 used as FPMulAdd."""
    x, y = np.array([a], np.float32), np.array([b], np.float32)
    mul = nx.fmul32(x, y, fz=fz)
    add = nx.fadd32(x, y, fz=fz)
    ref_mul = nx.fma32(x, y, np.float32(-0.0), fz=fz)  # a*b + (-0) == a*b, signed zeros kept
    ref_add = nx.fma32(np.float32(1.0), x, y, fz=fz)
    for got, ref in ((mul, ref_mul), (add, ref_add)):
        if np.isnan(ref[0]):
            assert np.isnan(got[0])
        else:
            assert got.view(np.uint32)[0] == ref.view(np.uint32)[0]

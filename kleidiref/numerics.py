"""Named floating-point steps of the SME/SME2 kernels, each one rounding made explicit.

Every variant builds its arithmetic from these helpers, so each kernel reads as the list of
steps its assembly performs. Names follow the Arm ARM pseudocode they mirror:

=====================  ==================================================================
helper                 instruction semantics (Arm ARM section)
=====================  ==================================================================
``fma32``              FPMulAdd / FPMulAdd_ZA: ``RN32(a*b + c)``, one rounding (FMOPA,
                       FMLA; C9.2.116, C9.2.89, C8.2.216)
``f16_pair_dot``       FPDot: ``RN32(a0*b0 + a1*b1)``, products exact (C9.2.115)
``fdot_add_za``        FPDotAdd_ZA: ``RN32(acc + f16_pair_dot(...))``: two roundings
``fmlal``              FMLALB/FMLALT: ``RN32(acc + a*b)`` for f16 ``a``, ``b`` (C8.2.220)
``fclamp``             SME2 FCLAMP = FPMinNum(FPMaxNum(x, lo), hi): a NaN becomes ``lo``
``fmin_fmax``          SME1/SVE FMIN(x, hi) then FMAX(., lo): NaN propagates
``fmax_fmin``          FMAX(x, lo) then FMIN(., hi): NaN propagates
``rn16``               FCVT f32 -> f16, round to nearest even
``round_half_even``    FRINTN / ``rintf`` (ties to even)
``round_half_away``    FCVTAS / ``roundf`` (ties away from zero)
``ftz32``/``ftz16``    FPCR.FZ / FPCR.FZ16 input flush (signed zero)
=====================  ==================================================================

Rounding names used in docstrings: ``RN32``/``RN16``/``RN64`` = round to nearest, ties to even,
to binary32/binary16/binary64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DEFAULT_NAN_F16_BITS",
    "DEFAULT_NAN_F32_BITS",
    "FLT16_MIN",
    "FLT_MIN",
    "bf16_to_f32",
    "canonical_nan_f16",
    "canonical_nan_f32",
    "f16_pair_dot",
    "f32_to_bf16_rne",
    "fclamp",
    "fdot_add_za",
    "fma32",
    "fmax_fmin",
    "fmin_fmax",
    "fmlal",
    "ftz16",
    "ftz32",
    "has_subnormal",
    "rn16",
    "rn32",
    "round_half_away",
    "round_half_even",
    "round_to_odd_sum",
]

F32 = np.float32
F16 = np.float16
F64 = np.float64

#: Default NaN written by every instruction that targets ZA (Arm ARM D22.6), binary32.
DEFAULT_NAN_F32_BITS = 0x7FC00000
#: Default NaN, binary16.
DEFAULT_NAN_F16_BITS = 0x7E00
#: Smallest normal binary32 (2**-126).
FLT_MIN = float(np.finfo(np.float32).tiny)
#: Smallest normal binary16 (2**-14).
FLT16_MIN = float(np.finfo(np.float16).tiny)

_DEFAULT_NAN_F32 = np.array(DEFAULT_NAN_F32_BITS, dtype=np.uint32).view(F32)[()]
_DEFAULT_NAN_F16 = np.array(DEFAULT_NAN_F16_BITS, dtype=np.uint16).view(F16)[()]


def _f32(x: ArrayLike) -> NDArray[np.float32]:
    arr = np.asarray(x)
    if arr.dtype != F32:
        raise TypeError(f"expected float32 values, got {arr.dtype}")
    return arr


def _f16(x: ArrayLike) -> NDArray[np.float16]:
    arr = np.asarray(x)
    if arr.dtype != F16:
        raise TypeError(f"expected float16 values, got {arr.dtype}")
    return arr


def rn32(x: ArrayLike) -> NDArray[np.float32]:
    """``RN32(x)``: round float64 values to binary32, nearest even (numpy's cast is IEEE RNE)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x, dtype=F64).astype(F32)


def rn16(x: ArrayLike) -> NDArray[np.float16]:
    """``RN16(x)``: FCVT binary32 -> binary16, round to nearest even, overflow to +-inf.

    numpy converts float32 to float16 directly (one rounding), which is what FCVT does.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _f32(x).astype(F16)


def round_to_odd_sum(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x + y`` rounded to float64 with round-to-odd.

    ::

        s, e = TwoSum(x, y)            # s = RN64(x + y), e = exact error
        if e != 0 and s is even:       # inexact and RN64 landed on an even significand
            s = nextafter(s, s + e)    # move one ulp toward the exact value: s is now odd

    Rounding the result once more to any format of at most 51 significant bits (binary32,
    binary16, the binary32 subnormal grid) gives the correctly rounded value of ``x + y``
    (Boldo & Melquiond; glibc's ``fmaf`` uses the same step). Non-finite sums are left alone.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        s = x + y
        bp = s - x
        e = (x - (s - bp)) + (y - bp)
        odd = (s.view(np.int64) & 1).astype(bool)
        nudge = np.isfinite(s) & np.isfinite(e) & (e != 0) & ~odd
        if np.any(nudge):
            s = np.where(nudge, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s


def ftz32(x: ArrayLike) -> NDArray[np.float32]:
    """FPCR.FZ input flush: a binary32 subnormal reads as a zero of the same sign.

    An integer test on the bits (exponent 0, fraction nonzero); the input is returned unchanged
    (not copied) when it holds no subnormal, the common case.
    """
    a = _f32(x)
    return _flush(a, np.uint32, 0x7F800000, 0x007FFFFF, 0x80000000)


def ftz16(x: ArrayLike) -> NDArray[np.float16]:
    """FPCR.FZ16 input flush: a binary16 subnormal (``|x| < 2**-14``) reads as a signed zero."""
    a = _f16(x)
    return _flush(a, np.uint16, 0x7C00, 0x03FF, 0x8000)


def has_subnormal(x: ArrayLike) -> bool:
    """Whether a binary32 or binary16 array holds a subnormal (one pass on the bits)."""
    a = np.asarray(x)
    if a.dtype == F32:
        ut, frac_mask = np.uint32, 0x007FFFFF
    elif a.dtype == F16:
        ut, frac_mask = np.uint16, 0x03FF
    else:
        raise TypeError(f"has_subnormal takes float32 or float16, got {a.dtype}")
    if a.size == 0:
        return False
    # (bits << 1) drops the sign; "- 1" wraps zeros to the top: a subnormal is then < 2*frac_mask.
    mag = np.left_shift(np.ascontiguousarray(a).view(ut), ut(1))
    np.subtract(mag, ut(1), out=mag)
    return int(mag.min()) < 2 * frac_mask


def _flush(a: NDArray[Any], ut: Any, exp_mask: int, frac_mask: int, sign: int) -> NDArray[Any]:
    if not has_subnormal(a):
        return a
    out = np.array(a, order="C", copy=True)
    bits = out.view(ut)
    # Exponent field 0 means zero or subnormal: both read as the signed zero (keep only the sign).
    np.bitwise_and(bits, ut(sign), out=bits, where=(bits & ut(exp_mask)) == 0)
    return out


def fma32(a: ArrayLike, b: ArrayLike, c: ArrayLike, *, fz: bool = False) -> NDArray[np.float32]:
    """FPMulAdd: ``RN32(a*b + c)`` with a single rounding, exact for every binary32 input.

    ::

        p = f64(a) * f64(b)               # exact: <= 48 significant bits
        s = round_to_odd_sum(p, f64(c))   # 53-bit round-to-odd, no information lost
        r = RN32(s)                       # == RN32(a*b + c)

    A plain ``float32(float64(a)*b + c)`` can round twice; this cannot. With ``fz=True``
    (FPCR.FZ = 1) the operands are read through :func:`ftz32` and an exact result whose
    magnitude is below ``FLT_MIN`` becomes a signed zero: tininess is detected *before*
    rounding (Arm ARM FPRound with AH = 0), so a value that would round up to ``FLT_MIN`` is
    flushed too. NaN results are the default NaN (0x7FC00000) since ZA-writing instructions
    behave as if FPCR.DN = 1.
    """
    a32, b32, c32 = _f32(a), _f32(b), _f32(c)
    if fz:
        a32, b32, c32 = ftz32(a32), ftz32(b32), ftz32(c32)
    a32, b32, c32 = np.broadcast_arrays(a32, b32, c32)
    shape = a32.shape
    with np.errstate(over="ignore", invalid="ignore"):
        p = a32.astype(F64).reshape(-1) * b32.astype(F64).reshape(-1)
        s = round_to_odd_sum(p, c32.astype(F64).reshape(-1))
        r = s.astype(F32)
        if fz:
            tiny = (s != 0) & (np.abs(s) < FLT_MIN)
            r = np.where(tiny, np.copysign(F32(0), s).astype(F32), r)
    return canonical_nan_f32(r.reshape(shape))


def f16_pair_dot(a0: ArrayLike, b0: ArrayLike, a1: ArrayLike, b1: ArrayLike) -> NDArray[np.float32]:
    """FPDot of one f16 pair: ``RN32(a0*b0 + a1*b1)``, products exact, one rounding.

    Each f16 x f16 product has at most 22 significant bits and an exponent in [-48, 31], so it
    is exact in binary32, and the binary32 sum of two of them is the correctly rounded exact
    sum. Hence plain float32 arithmetic *is* FPDot here (no double rounding is possible).
    An exact-zero sum is +0 except ``(-0) + (-0) = -0`` (IEEE RNE), as in the pseudocode.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        p0 = _f16(a0).astype(F32) * _f16(b0).astype(F32)
        p1 = _f16(a1).astype(F32) * _f16(b1).astype(F32)
        return canonical_nan_f32(p0 + p1)


def fdot_add_za(acc: ArrayLike, a0: ArrayLike, b0: ArrayLike, a1: ArrayLike, b1: ArrayLike) -> NDArray[np.float32]:
    """FPDotAdd_ZA (widening FMOPA, FDOT into ZA): ``RN32(acc + RN32(a0*b0 + a1*b1))``.

    Two roundings per pair: the pair sum is rounded to binary32 before it is added to the
    binary32 accumulator (Arm ARM C9.2.115).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return canonical_nan_f32(_f32(acc) + f16_pair_dot(a0, b0, a1, b1))


def fmlal(acc: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.float32]:
    """FMLALB/FMLALT (indexed, FP16 -> FP32): ``RN32(acc + a*b)``; the f16 product is exact."""
    with np.errstate(over="ignore", invalid="ignore"):
        return canonical_nan_f32(_f32(acc) + _f16(a).astype(F32) * _f16(b).astype(F32))


def canonical_nan_f32(x: ArrayLike) -> NDArray[np.float32]:
    """Replace every NaN by the default NaN 0x7FC00000 (positive, quiet, zero payload)."""
    a = _f32(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F32, a).astype(F32)


def canonical_nan_f16(x: ArrayLike) -> NDArray[np.float16]:
    """Replace every NaN by the binary16 default NaN 0x7E00."""
    a = _f16(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F16, a).astype(F16)


def _fpmax(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FPMax on non-NaN values: -0 < +0."""
    take_y = (y > x) | ((y == x) & np.signbit(x) & ~np.signbit(y))
    return np.where(take_y, y, x)


def _fpmin(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FPMin on non-NaN values: -0 < +0."""
    take_y = (y < x) | ((y == x) & np.signbit(y) & ~np.signbit(x))
    return np.where(take_y, y, x)


def _default_nan(dtype: np.dtype[Any]) -> Any:
    return _DEFAULT_NAN_F16 if dtype == F16 else _DEFAULT_NAN_F32


def _clamp(
    x: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    max_first: bool,
    exact: Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[Any]],
) -> NDArray[Any]:
    """A two-step float clamp: numpy's maximum/minimum when nothing is NaN, else ``exact``.

    Without NaNs each step is the true max/min except when a zero meets a zero of the other
    sign (-0 < +0 here; numpy picks either). A wrong-signed zero can only reach the result as
    a zero (a nonzero second operand would win or lose whatever the zero's sign), so only the
    zero results are redone with ``exact``.
    """
    xa = np.asarray(x)
    dt = xa.dtype
    lo_a, hi_a = np.asarray(lo, dtype=dt), np.asarray(hi, dtype=dt)
    if np.isnan(lo_a).any() or np.isnan(hi_a).any() or np.isnan(xa).any():
        return exact(xa, lo_a, hi_a)
    t: NDArray[Any] = xa
    steps = ((np.maximum, lo_a), (np.minimum, hi_a)) if max_first else ((np.minimum, hi_a), (np.maximum, lo_a))
    for op, bound in steps:
        if not (bound.ndim == 0 and np.isinf(bound) and (bound < 0) == (op is np.maximum)):
            t = np.asarray(op(t, bound))  # an infinite bound on its own side changes nothing: skipped
    if t is xa:
        return xa.astype(dt, copy=True)
    zero = t == 0
    if zero.any():
        xb, lb, hb = np.broadcast_arrays(xa, lo_a, hi_a)
        t[zero] = exact(xb[zero], lb[zero], hb[zero])
    return t.astype(dt, copy=False)


def _fclamp_exact(xa: NDArray[Any], lo_a: NDArray[Any], hi_a: NDArray[Any]) -> NDArray[Any]:
    dt = xa.dtype
    t = np.where(np.isnan(xa), lo_a, np.where(np.isnan(lo_a), xa, _fpmax(xa, lo_a)))
    t = np.where(np.isnan(t), hi_a, np.where(np.isnan(hi_a), t, _fpmin(t, hi_a)))
    return np.where(np.isnan(t), _default_nan(dt), t).astype(dt)


def fclamp(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """SME2 FCLAMP: ``FPMinNum(FPMaxNum(x, lo), hi)``.

    FPMaxNum treats a quiet NaN operand as -inf and FPMinNum as +inf, so a NaN ``x`` clamps to
    ``lo`` (to -inf under XNNPACK's default unbounded clamp). -0 orders below +0.
    """
    return _clamp(x, lo, hi, True, _fclamp_exact)


def _nan_min(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, _default_nan(x.dtype), _fpmin(x, y)).astype(x.dtype)


def _nan_max(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, _default_nan(x.dtype), _fpmax(x, y)).astype(x.dtype)


def fmin_fmax(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """SME1 float clamp ``FMAX(FMIN(x, hi), lo)``: a NaN propagates as the default NaN.

    The pf32/pf16 ``_sme_`` kernels clamp in this order (FMIN with the maximum first).
    """
    return _clamp(x, lo, hi, False, lambda x_, lo_, hi_: _nan_max(_nan_min(x_, hi_), lo_))


def fmax_fmin(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """``FMIN(FMAX(x, lo), hi)``: a NaN propagates (qp8 ``_sme_`` kernels, NEON kernels)."""
    return _clamp(x, lo, hi, True, lambda x_, lo_, hi_: _nan_min(_nan_max(x_, lo_), hi_))


def round_half_even(x: ArrayLike) -> NDArray[Any]:
    """FRINTN / C ``rintf`` in the default mode: round to integral, ties to even."""
    out: NDArray[Any] = np.rint(np.asarray(x))
    return out


def round_half_away(x: ArrayLike) -> NDArray[Any]:
    """FCVTAS / C ``roundf``: round to integral, ties away from zero.

    ``trunc(x + 0.5)`` is wrong for 0.49999997 (the addition rounds up); the fractional part
    ``x - trunc(x)`` is exact, so comparing it with 0.5 is.
    """
    a = np.asarray(x)
    t = np.trunc(a)
    frac = np.abs(a - t)
    out: NDArray[Any] = np.where(frac >= 0.5, t + np.sign(a), t).astype(a.dtype)
    return out


def f32_to_bf16_rne(x: ArrayLike) -> NDArray[np.uint16]:
    """XNNPACK ``math_cvt_bf16_fp32``: binary32 -> bfloat16 bits, round to nearest even.

    Finite values add ``0x7FFF + ((bits >> 16) & 1)`` and keep the high half; a NaN keeps its
    high half with the quiet bit (0x0040) set.
    """
    bits = _f32(x).view(np.uint32).astype(np.uint64)
    is_nan = (bits & 0x7FFFFFFF) > 0x7F800000
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF
    nan_bits = (bits >> 16) | 0x0040
    return np.where(is_nan, nan_bits, rounded).astype(np.uint16)


def bf16_to_f32(bits: ArrayLike) -> NDArray[np.float32]:
    """``kai_cast_f32_bf16``: bfloat16 bits -> binary32 (``bits << 16``, exact)."""
    b = np.asarray(bits)
    if b.dtype != np.uint16:
        raise TypeError(f"bfloat16 values are passed as their uint16 bit patterns, got {b.dtype}")
    return (b.astype(np.uint32) << 16).view(F32)

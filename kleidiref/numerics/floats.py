"""The binary32 / binary16 arithmetic steps, FPCR.FZ/FZ16 and the default NaN (see
:mod:`kleidiref.numerics` for the table of every step and the conventions they share)."""

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
    "canonical_nan_f16",
    "canonical_nan_f32",
    "default_nan",
    "f16_pair_dot",
    "fadd16",
    "fadd32",
    "fdot_add_za",
    "fma16",
    "fma32",
    "fma32_x86",
    "fmlal",
    "fmul16",
    "fmul32",
    "ftz",
    "ftz16",
    "ftz32",
    "has_nan",
    "has_subnormal",
    "require_f16",
    "require_f32",
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


def require_f32(x: ArrayLike) -> NDArray[np.float32]:
    """``x`` as an array, or TypeError unless it holds float32 values."""
    arr = np.asarray(x)
    if arr.dtype != F32:
        raise TypeError(f"expected float32 values, got {arr.dtype}")
    return arr


def require_f16(x: ArrayLike) -> NDArray[np.float16]:
    """``x`` as an array, or TypeError unless it holds float16 values."""
    arr = np.asarray(x)
    if arr.dtype != F16:
        raise TypeError(f"expected float16 values, got {arr.dtype}")
    return arr


def ftz32(x: ArrayLike) -> NDArray[np.float32]:
    """FPCR.FZ input flush: a binary32 subnormal reads as a zero of the same sign.

    An integer test on the bits (exponent 0, fraction nonzero); the input is returned unchanged
    (not copied) when it holds no subnormal, the common case.
    """
    a = require_f32(x)
    return _flush(a, np.uint32, 0x7F800000, 0x80000000)


def ftz16(x: ArrayLike) -> NDArray[np.float16]:
    """FPCR.FZ16 input flush: a binary16 subnormal (``|x| < 2**-14``) reads as a signed zero."""
    a = require_f16(x)
    return _flush(a, np.uint16, 0x7C00, 0x8000)


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


def _flush(a: NDArray[Any], ut: Any, exp_mask: int, sign: int) -> NDArray[Any]:
    if not has_subnormal(a):
        return a
    out = np.array(a, order="C", copy=True)
    bits = out.view(ut)
    # Exponent field 0 means zero or subnormal: both read as the signed zero (keep only the sign).
    np.bitwise_and(bits, ut(sign), out=bits, where=(bits & ut(exp_mask)) == 0)
    return out


def canonical_nan_f32(x: ArrayLike) -> NDArray[np.float32]:
    """Replace every NaN by the default NaN 0x7FC00000 (positive, quiet, zero payload)."""
    a = require_f32(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F32, a).astype(F32)


def canonical_nan_f16(x: ArrayLike) -> NDArray[np.float16]:
    """Replace every NaN by the binary16 default NaN 0x7E00."""
    a = require_f16(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F16, a).astype(F16)


def _default_nan_inplace(r: NDArray[Any]) -> NDArray[Any]:
    """:func:`canonical_nan_f32` / ``_f16`` in place on a result the caller owns (one NaN scan)."""
    if has_nan(r):
        np.copyto(r, default_nan(r.dtype), where=np.isnan(r))
    return r


def has_nan(x: NDArray[Any]) -> bool:
    """Whether ``x`` holds a NaN: one reduction (max propagates NaNs), no temporary array."""
    return x.size > 0 and bool(np.isnan(np.max(x)))


# Note: every NaN result is the default NaN. Instructions that write ZA behave as if FPCR.DN = 1;
# NEON/SVE with FPCR.DN = 0 would instead propagate a NaN operand's (quieted) payload. Payloads
# are not modelled: NaN operands are outside XNNPACK's contract.
def default_nan(dtype: np.dtype[Any]) -> Any:
    """The default NaN of a binary16 or binary32 dtype, as a numpy scalar."""
    return _DEFAULT_NAN_F16 if dtype == F16 else _DEFAULT_NAN_F32


def ftz(x: NDArray[Any]) -> NDArray[Any]:
    """:func:`ftz16` or :func:`ftz32` by dtype."""
    return ftz16(x) if x.dtype == F16 else ftz32(x)


# ---------------------------------------------------------------------------------------------


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


def fma32(a: ArrayLike, b: ArrayLike, c: ArrayLike, *, fz: bool = False, flushed: bool = False) -> NDArray[np.float32]:
    """FPMulAdd (FMLA, FMOPA, FMADD .s; C ``fmaf``): ``RN32(a*b + c)``, one rounding, exact for
    every binary32 input.

    ::

        s = RN64(f64(a) * f64(b) + f64(c))    # the product is exact (<= 48 significant bits)
        r = RN32(s)                           # == RN32(a*b + c) unless s is a binary32
                                              # midpoint or outside the binary32 normal range

    ``RN32(RN64(v))`` differs from ``RN32(v)`` only when ``RN64(v)`` lands on a binary32
    midpoint (low 29 significand bits 0x10000000); those elements and every ``s`` outside
    [2**-125, 2**128) (zeros, subnormals, FZ tininess, overflow, NaN) are redone by the
    round-to-odd form (:func:`round_to_odd_sum`), which cannot double-round.

    ``fz=True`` (FPCR.FZ): operands read through :func:`ftz32`, an exact result below
    ``FLT_MIN`` becomes a signed zero (tininess before rounding, so a value that would round up
    to ``FLT_MIN`` is flushed too). ``flushed=True`` promises that no operand is subnormal (already
    read through ``ftz32``): the input scan is skipped. NaN results are the default NaN.
    """
    a32, b32, c32 = require_f32(a), require_f32(b), require_f32(c)
    if fz and not flushed:
        a32, b32, c32 = ftz32(a32), ftz32(b32), ftz32(c32)
    s = np.empty(np.broadcast_shapes(a32.shape, b32.shape, c32.shape), dtype=F64)
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(a32, b32, out=s, dtype=F64)
        np.add(s, c32, out=s)
        r = s.astype(F32)
        bits = s.view(np.uint64)
        redo = (bits & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
        expo = (bits >> np.uint64(52)) & np.uint64(0x7FF)
        expo -= np.uint64(1023 - 125)  # wraps below 2**-125 (a 0-d s gives numpy scalars here)
        redo |= expo > np.uint64(252)
    if redo.any():
        ab, bb, cb = np.broadcast_arrays(a32, b32, c32)
        r[redo] = _fma32_round_to_odd(ab[redo], bb[redo], cb[redo], fz)
    return r


def _fma32_round_to_odd(
    a: NDArray[np.float32], b: NDArray[np.float32], c: NDArray[np.float32], fz: bool
) -> NDArray[np.float32]:
    """:func:`fma32` on 1-D operands, every element through the round-to-odd sum::

    p = f64(a) * f64(b)               # exact
    s = round_to_odd_sum(p, f64(c))   # 53-bit round-to-odd, no information lost
    r = RN32(s)                       # == RN32(a*b + c); FZ: |s| < FLT_MIN -> +-0
    """
    if fz:
        a, b, c = ftz32(a), ftz32(b), ftz32(c)
    with np.errstate(over="ignore", invalid="ignore"):
        s = round_to_odd_sum(a.astype(F64) * b.astype(F64), c.astype(F64))
        r = s.astype(F32)
    if fz:
        tiny = (s != 0) & (np.abs(s) < FLT_MIN)
        r[tiny] = np.copysign(F32(0), s[tiny])
    return _default_nan_inplace(r)


def fmul32(a: ArrayLike, b: ArrayLike, *, fz: bool = False, flushed: bool = False) -> NDArray[np.float32]:
    """FMUL .s (NEON, SVE; C ``a * b`` in binary32): ``RN32(a*b)`` (= ``fma32(a, b, -0)``).

    numpy's float32 multiply is the IEEE one (one rounding). Under FZ a product that is tiny
    before rounding (decided from its exact float64 value; only results with ``|r| <= FLT_MIN``
    can be) becomes a signed zero. ``flushed`` as in :func:`fma32`.
    """
    a32, b32 = require_f32(a), require_f32(b)
    if fz and not flushed:
        a32, b32 = ftz32(a32), ftz32(b32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.asarray(np.multiply(a32, b32, dtype=F32))
    # An outer product of small operands: their smallest magnitudes bound every product.
    if fz and not (a32.size + b32.size < r.size and _min_nonzero_abs(a32) * _min_nonzero_abs(b32) > FLT_MIN):
        ab, bb = np.broadcast_to(a32, r.shape), np.broadcast_to(b32, r.shape)
        r = _flush_tiny(r, lambda m: ab[m].astype(F64) * bb[m].astype(F64))
    return _default_nan_inplace(r)


def fadd32(
    a: ArrayLike,
    b: ArrayLike,
    *,
    fz: bool = False,
    flushed: bool = False,
    out: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """FADD .s (NEON, SVE; C ``a + b`` in binary32): ``RN32(a + b)`` (= ``fma32(1, a, b)``).

    Under FZ: a sum of two binary32 values below ``FLT_MIN`` is a multiple of 2**-149 with
    fewer than 24 bits, hence exact, and a sum at or above ``FLT_MIN`` rounds to at least
    ``FLT_MIN``: the sum is tiny before rounding exactly when the result is subnormal, which
    :func:`ftz32` then flushes. ``out`` may be ``a`` or ``b`` (in-place accumulation).
    ``flushed`` as in :func:`fma32`.
    """
    a32, b32 = require_f32(a), require_f32(b)
    if fz and not flushed:
        a32, b32 = ftz32(a32), ftz32(b32)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.asarray(np.add(a32, b32, out=out, dtype=F32))
    if fz and has_subnormal(r):
        np.copyto(r, ftz32(r))
    return _default_nan_inplace(r)


def _min_nonzero_abs(x: NDArray[np.float32]) -> float:
    ax = np.abs(x[x != 0]).astype(F64)
    return float(ax.min()) if ax.size else np.inf


def _flush_tiny(
    r: NDArray[np.float32], exact: Callable[[NDArray[np.bool_]], NDArray[np.float64]]
) -> NDArray[np.float32]:
    """FZ on results: where the exact value (``exact(mask)``, float64, of the elements in
    ``mask``) is nonzero and below FLT_MIN, a signed zero. Only nonzero ``|r| <= FLT_MIN`` can be."""
    t = np.ascontiguousarray(r).view(np.uint32) & np.uint32(0x7FFFFFFF)
    t -= np.uint32(1)  # 0 wraps to the top
    cand = t < np.uint32(0x00800000)
    if not cand.any():
        return r
    ex = exact(cand)
    tiny = np.abs(ex) < FLT_MIN
    if tiny.any():
        sub = r[cand]
        sub[tiny] = np.copysign(F32(0), ex[tiny])
        r[cand] = sub
    return r


# ---------------------------------------------------------------------------------------------
# binary16 arithmetic and the widening f16 -> f32 steps
# ---------------------------------------------------------------------------------------------


def _round16(s: NDArray[np.float64], fz: bool) -> NDArray[np.float16]:
    """``RN16(s)`` of a float64 value that is exact or round-to-odd (FZ16: tiny -> +-0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.asarray(s.astype(F16))  # numpy converts float64 -> float16 with one RNE rounding
    if fz:
        tiny = (s != 0) & (np.abs(s) < FLT16_MIN)
        r[tiny] = np.copysign(F16(0), s[tiny])
    return _default_nan_inplace(r)


def fma16(a: ArrayLike, b: ArrayLike, c: ArrayLike, *, fz: bool = False) -> NDArray[np.float16]:
    """FMLA .h (FPMulAdd, binary16; x86 VFMADD...PH): ``RN16(a*b + c)`` with one rounding.

    ::

        p = f64(a) * f64(b)                 # exact (22 significant bits)
        s = round_to_odd_sum(p, f64(c))     # 53-bit round-to-odd: no information lost
        r = RN16(s)                         # == RN16(a*b + c); FZ16: |s| < 2**-14 -> +-0
    """
    a16, b16, c16 = require_f16(a), require_f16(b), require_f16(c)
    if fz:
        a16, b16, c16 = ftz16(a16), ftz16(b16), ftz16(c16)
    a16, b16, c16 = np.broadcast_arrays(a16, b16, c16)
    with np.errstate(over="ignore", invalid="ignore"):
        p = a16.astype(F64) * b16.astype(F64)
        s = round_to_odd_sum(p.reshape(-1), c16.astype(F64).reshape(-1)).reshape(p.shape)
    return _round16(s, fz)


def fadd16(x: ArrayLike, y: ArrayLike, *, fz: bool = False) -> NDArray[np.float16]:
    """FADD .h: ``RN16(x + y)`` (the float64 sum of two binary16 values is exact)."""
    x16, y16 = require_f16(x), require_f16(y)
    if fz:
        x16, y16 = ftz16(x16), ftz16(y16)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x16.astype(F64) + y16.astype(F64)
    return _round16(np.asarray(s), fz)


def fmul16(x: ArrayLike, y: ArrayLike, *, fz: bool = False) -> NDArray[np.float16]:
    """FMUL .h (``vmulq_f16``): ``RN16(x * y)`` (the float64 product of two binary16 values is exact)."""
    x16, y16 = require_f16(x), require_f16(y)
    if fz:
        x16, y16 = ftz16(x16), ftz16(y16)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x16.astype(F64) * y16.astype(F64)
    return _round16(np.asarray(s), fz)


def f16_pair_dot(a0: ArrayLike, b0: ArrayLike, a1: ArrayLike, b1: ArrayLike) -> NDArray[np.float32]:
    """FPDot of one f16 pair: ``RN32(a0*b0 + a1*b1)``, products exact, one rounding.

    Each f16 x f16 product has at most 22 significant bits and an exponent in [-48, 31], so it
    is exact in binary32, and the binary32 sum of two of them is the correctly rounded exact
    sum. Hence plain float32 arithmetic *is* FPDot here (no double rounding is possible).
    An exact-zero sum is +0 except ``(-0) + (-0) = -0`` (IEEE RNE), as in the pseudocode.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        p0 = require_f16(a0).astype(F32) * require_f16(b0).astype(F32)
        p1 = require_f16(a1).astype(F32) * require_f16(b1).astype(F32)
        return canonical_nan_f32(p0 + p1)


def fdot_add_za(acc: ArrayLike, a0: ArrayLike, b0: ArrayLike, a1: ArrayLike, b1: ArrayLike) -> NDArray[np.float32]:
    """FPDotAdd_ZA (widening FMOPA, FDOT into ZA): ``RN32(acc + RN32(a0*b0 + a1*b1))``.

    Two roundings per pair: the pair sum is rounded to binary32 before it is added to the
    binary32 accumulator (Arm ARM C9.2.115).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return canonical_nan_f32(require_f32(acc) + f16_pair_dot(a0, b0, a1, b1))


def fmlal(acc: ArrayLike, a: ArrayLike, b: ArrayLike) -> NDArray[np.float32]:
    """FMLALB/FMLALT (indexed, FP16 -> FP32): ``RN32(acc + a*b)``; the f16 product is exact."""
    with np.errstate(over="ignore", invalid="ignore"):
        return canonical_nan_f32(require_f32(acc) + require_f16(a).astype(F32) * require_f16(b).astype(F32))


# ---------------------------------------------------------------------------------------------


def fma32_x86(a: ArrayLike, b: ArrayLike, c: ArrayLike, *, ftz_daz: bool = False) -> NDArray[np.float32]:
    """x86 VFMADD231PS under MXCSR.FTZ|DAZ (and MULPS = ``fma32_x86(x, y, -0)``, ADDPS =
    ``fma32_x86(1, x, y)``): ``RN32(a*b + c)``, one rounding.

    DAZ: subnormal operands read as signed zeros. FTZ: a result whose value rounded to 24 bits
    with an unbounded exponent is below FLT_MIN becomes a signed zero (tininess *after*
    rounding, unlike FPCR.FZ). NaN results are the default NaN.
    """
    a32, b32, c32 = (np.asarray(v, dtype=F32) for v in (a, b, c))
    if ftz_daz:
        a32, b32, c32 = ftz32(a32), ftz32(b32), ftz32(c32)
    a32, b32, c32 = np.broadcast_arrays(a32, b32, c32)
    with np.errstate(over="ignore", invalid="ignore"):
        p = a32.astype(F64).reshape(-1) * b32.astype(F64).reshape(-1)
        sm = round_to_odd_sum(p, c32.astype(F64).reshape(-1)).reshape(a32.shape)
        r = sm.astype(F32)
        if ftz_daz:
            small = np.abs(sm) < 2.0**-125
            if np.any(small):
                # x * 2**64 is exact and puts the tiny range among normals: one RN32 there is the
                # unbounded-exponent rounding (sm is round-to-odd, so no double rounding).
                ru = np.where(small, sm * 2.0**64, 1.0).astype(F32)
                tiny = small & (np.abs(ru) < F32(2.0**-62))
                r = np.where(tiny, np.copysign(F32(0), sm).astype(F32), r)
    return canonical_nan_f32(r)

"""Every numeric step of the emulated kernels, named once, each rounding made explicit.

Kernels (the KleidiAI mirror, the XNNPACK fallbacks, the quantizers) build their arithmetic from
these helpers only, so each reads as the list of steps its code performs. Names follow the
instruction or C function they mirror (Arm ARM pseudocode names in parentheses):

=======================  ===========================================================================
helper                   instruction / upstream function it mirrors
=======================  ===========================================================================
``fma32``                FMLA/FMOPA/FMADD .s (FPMulAdd): ``RN32(a*b + c)``, one rounding; C ``fmaf``
``fmul32``/``fadd32``    FMUL/FADD .s: ``RN32(a*b)``, ``RN32(a + b)``
``fma16``                FMLA .h (FPMulAdd, binary16): ``RN16(a*b + c)``, one rounding
``fmul16``/``fadd16``    FMUL/FADD .h
``f16_pair_dot``         FPDot: ``RN32(a0*b0 + a1*b1)``, products exact
``fdot_add_za``          FPDotAdd_ZA (widening FMOPA, FDOT into ZA): two roundings
``fmlal``                FMLALB/FMLALT: ``RN32(acc + a*b)`` for f16 ``a``, ``b``
``clamp``                the float clamps, one function; ``kind`` (:class:`Clamp`) picks
                         ``FCLAMP`` (SME2 FCLAMP: NaN -> lo), ``FMIN_FMAX`` (FMIN then FMAX) or
                         ``FMAX_FMIN`` (FMAX then FMIN; NaN propagates in both);
                         ``fclamp``/``fmin_fmax``/``fmax_fmin`` are the three as functions
``rn32``/``rn16``        FCVT to binary32 / binary16, round to nearest even
``f32_to_bf16_rne``      XNNPACK ``math_cvt_bf16_fp32`` (RNE); ``bf16_to_f32``: ``kai_cast_f32_bf16``
``round_half_even``      FRINTN / C ``rintf``, ``lrintf`` (ties to even)
``round_half_away``      FRINTA / C ``roundf`` (ties away from zero)
``fcvtzs``               FCVTZS: toward zero, saturating, NaN -> 0
``fcvtns``               FCVTNS / ``vcvtnq_s32_f32``: ties to even, saturating, NaN -> 0
``fcvtas``               FCVTAS / ``lroundf`` on AArch64: ties away, saturating, NaN -> 0
``frintn_fcvtzs``        FRINTN then FCVTZS (the SME requantization), to int32
``wrap_i32``/``wrap_i16``  two's-complement wrap of an integer register (ADD/MLA/SDOT/SMOPA)
``saturate``             SQXTN/SQXTUN/SQADD (``vqmovn``, ``vqmovun``, ``vqadd``): clamp to a type
``ftz32``/``ftz16``      FPCR.FZ / FPCR.FZ16 input flush (signed zero)
=======================  ===========================================================================

Rounding names used in docstrings: ``RN32``/``RN16``/``RN64`` = round to nearest, ties to even,
to binary32/binary16/binary64.

Conventions shared by the float steps:

* ``fz=True`` is FPCR.FZ (binary32) / FPCR.FZ16 (binary16): subnormal operands read as zeros of
  the same sign and a result whose exact value is below the smallest normal becomes a signed
  zero, tininess detected *before* rounding (Arm ARM FPRound with FPCR.AH = 0).
* NaN results are the default NaN (0x7FC00000 / 0x7E00).

# Note: every NaN result is the default NaN. Instructions that write ZA behave as if FPCR.DN = 1;
# NEON/SVE with FPCR.DN = 0 would instead propagate a NaN operand's (quieted) payload. Payloads
# are not modelled: NaN operands are outside XNNPACK's contract.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = [
    "DEFAULT_NAN_F16_BITS",
    "DEFAULT_NAN_F32_BITS",
    "FLT16_MIN",
    "FLT_MIN",
    "Clamp",
    "bf16_to_f32",
    "canonical_nan_f16",
    "canonical_nan_f32",
    "clamp",
    "f16_pair_dot",
    "f32_to_bf16_rne",
    "fadd16",
    "fadd32",
    "fclamp",
    "fcvtas",
    "fcvtns",
    "fcvtzs",
    "fdot_add_za",
    "fma16",
    "fma32",
    "fmax_fmin",
    "fmin_fmax",
    "fmlal",
    "fmul16",
    "fmul32",
    "frintn_fcvtzs",
    "ftz16",
    "ftz32",
    "has_subnormal",
    "rn16",
    "rn32",
    "round_half_away",
    "round_half_even",
    "round_to_odd_sum",
    "saturate",
    "wrap_i16",
    "wrap_i32",
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


# ---------------------------------------------------------------------------------------------
# Conversions between float formats
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Flush to zero and the default NaN
# ---------------------------------------------------------------------------------------------


def ftz32(x: ArrayLike) -> NDArray[np.float32]:
    """FPCR.FZ input flush: a binary32 subnormal reads as a zero of the same sign.

    An integer test on the bits (exponent 0, fraction nonzero); the input is returned unchanged
    (not copied) when it holds no subnormal, the common case.
    """
    a = _f32(x)
    return _flush(a, np.uint32, 0x7F800000, 0x80000000)


def ftz16(x: ArrayLike) -> NDArray[np.float16]:
    """FPCR.FZ16 input flush: a binary16 subnormal (``|x| < 2**-14``) reads as a signed zero."""
    a = _f16(x)
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
    a = _f32(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F32, a).astype(F32)


def canonical_nan_f16(x: ArrayLike) -> NDArray[np.float16]:
    """Replace every NaN by the binary16 default NaN 0x7E00."""
    a = _f16(x)
    return np.where(np.isnan(a), _DEFAULT_NAN_F16, a).astype(F16)


def _default_nan_inplace(r: NDArray[Any]) -> NDArray[Any]:
    """:func:`canonical_nan_f32` / ``_f16`` in place on a result the caller owns (one NaN scan)."""
    if _has_nan(r):
        np.copyto(r, _default_nan(r.dtype), where=np.isnan(r))
    return r


def _has_nan(x: NDArray[Any]) -> bool:
    """Whether ``x`` holds a NaN: one reduction (max propagates NaNs), no temporary array."""
    return x.size > 0 and bool(np.isnan(np.max(x)))


def _default_nan(dtype: np.dtype[Any]) -> Any:
    return _DEFAULT_NAN_F16 if dtype == F16 else _DEFAULT_NAN_F32


def _ftz(x: NDArray[Any]) -> NDArray[Any]:
    """:func:`ftz16` or :func:`ftz32` by dtype."""
    return ftz16(x) if x.dtype == F16 else ftz32(x)


# ---------------------------------------------------------------------------------------------
# binary32 arithmetic
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
    a32, b32, c32 = _f32(a), _f32(b), _f32(c)
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
    a32, b32 = _f32(a), _f32(b)
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
    a32, b32 = _f32(a), _f32(b)
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
    a16, b16, c16 = _f16(a), _f16(b), _f16(c)
    if fz:
        a16, b16, c16 = ftz16(a16), ftz16(b16), ftz16(c16)
    a16, b16, c16 = np.broadcast_arrays(a16, b16, c16)
    with np.errstate(over="ignore", invalid="ignore"):
        p = a16.astype(F64) * b16.astype(F64)
        s = round_to_odd_sum(p.reshape(-1), c16.astype(F64).reshape(-1)).reshape(p.shape)
    return _round16(s, fz)


def fadd16(x: ArrayLike, y: ArrayLike, *, fz: bool = False) -> NDArray[np.float16]:
    """FADD .h: ``RN16(x + y)`` (the float64 sum of two binary16 values is exact)."""
    x16, y16 = _f16(x), _f16(y)
    if fz:
        x16, y16 = ftz16(x16), ftz16(y16)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x16.astype(F64) + y16.astype(F64)
    return _round16(np.asarray(s), fz)


def fmul16(x: ArrayLike, y: ArrayLike, *, fz: bool = False) -> NDArray[np.float16]:
    """FMUL .h (``vmulq_f16``): ``RN16(x * y)`` (the float64 product of two binary16 values is exact)."""
    x16, y16 = _f16(x), _f16(y)
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


# ---------------------------------------------------------------------------------------------
# Clamps
# ---------------------------------------------------------------------------------------------


class Clamp(str, enum.Enum):
    """Which float clamp a kernel runs: the order of its min and max and what a NaN does.

    All three order -0 below +0 (FPMax/FPMin) and return the default NaN for a NaN result; the
    values are the names the kernels have always used (``Clamp("fclamp") is Clamp.FCLAMP``).
    """

    #: SME2 FCLAMP: ``FPMinNum(FPMaxNum(x, lo), hi)``; FPMaxNum/FPMinNum treat a quiet NaN
    #: operand as missing, so a NaN ``x`` clamps to ``lo`` (KleidiAI ``_sme2_`` kernels).
    FCLAMP = "fclamp"
    #: ``FMAX(FMIN(x, hi), lo)``: a NaN propagates (KleidiAI pf32/pf16 ``_sme_`` kernels).
    FMIN_FMAX = "fmin_fmax"
    #: ``FMIN(FMAX(x, lo), hi)``: a NaN propagates (KleidiAI qp8 ``_sme_`` and NEON kernels,
    #: XNNPACK's ``vmaxq_f32``-then-``vminq_f32`` fallbacks).
    FMAX_FMIN = "fmax_fmin"


def clamp(
    x: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    kind: Clamp | str,
    *,
    fz: bool = False,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """``x`` clamped to [``lo``, ``hi``] the way ``kind`` (:class:`Clamp`) does it.

    ``fz=True`` (FPCR.FZ / FZ16, by ``x``'s dtype): every operand, bounds included, is read
    through the input flush. ``out`` (of the broadcast shape; may be ``x``) receives the result.

    Without NaNs numpy's maximum/minimum are the true steps except when a zero meets a zero of
    the other sign, so only a zero bound can leave a wrong-signed zero, and only zero results
    are then redone exactly; with a NaN anywhere the whole clamp runs the exact form.
    """
    k = Clamp(kind)
    xa = np.asarray(x)
    dt = xa.dtype
    lo_a, hi_a = np.asarray(lo, dtype=dt), np.asarray(hi, dtype=dt)
    if fz:
        xa, lo_a, hi_a = _ftz(xa), _ftz(lo_a), _ftz(hi_a)
    exact = _EXACT[k]
    if _has_nan(lo_a) or _has_nan(hi_a) or _has_nan(xa):
        res = exact(xa, lo_a, hi_a)
    else:
        res = _minmax(xa, lo_a, hi_a, k is not Clamp.FMIN_FMAX, exact, out)
    if out is not None and res is not out:
        np.copyto(out, res)
        return out
    return res


def _minmax(
    xa: NDArray[Any],
    lo_a: NDArray[Any],
    hi_a: NDArray[Any],
    max_first: bool,
    exact: Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[Any]],
    out: NDArray[Any] | None,
) -> NDArray[Any]:
    """The NaN-free clamp: numpy's maximum/minimum, zero results redone when a bound is zero."""
    shape = np.broadcast_shapes(xa.shape, lo_a.shape, hi_a.shape)
    xb = np.broadcast_to(xa, shape)
    zero_bound = bool((lo_a == 0).any() or (hi_a == 0).any())
    if zero_bound and out is not None and np.shares_memory(out, xa):
        out = None  # the redo reads x: compute aside, the caller copies into out
    t: NDArray[Any] = xb
    steps = ((np.maximum, lo_a), (np.minimum, hi_a)) if max_first else ((np.minimum, hi_a), (np.maximum, lo_a))
    for op, bound in steps:
        if not (bound.ndim == 0 and np.isinf(bound) and (bound < 0) == (op is np.maximum)):
            # an infinite bound on its own side changes nothing: skipped
            t = np.asarray(op(t, bound, out=out if t is xb else t))
    if t is xb:
        return xb.astype(xa.dtype, copy=True)
    if zero_bound:
        zero = t == 0
        if zero.any():
            lb, hb = np.broadcast_to(lo_a, shape), np.broadcast_to(hi_a, shape)
            t[zero] = exact(xb[zero], lb[zero], hb[zero])
    return t


def _fpmax(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FPMax on non-NaN values: -0 < +0."""
    take_y = (y > x) | ((y == x) & np.signbit(x) & ~np.signbit(y))
    return np.where(take_y, y, x)


def _fpmin(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FPMin on non-NaN values: -0 < +0."""
    take_y = (y < x) | ((y == x) & np.signbit(y) & ~np.signbit(x))
    return np.where(take_y, y, x)


def _fclamp_exact(xa: NDArray[Any], lo_a: NDArray[Any], hi_a: NDArray[Any]) -> NDArray[Any]:
    dt = xa.dtype
    t = np.where(np.isnan(xa), lo_a, np.where(np.isnan(lo_a), xa, _fpmax(xa, lo_a)))
    t = np.where(np.isnan(t), hi_a, np.where(np.isnan(hi_a), t, _fpmin(t, hi_a)))
    return np.where(np.isnan(t), _default_nan(dt), t).astype(dt)


def _nan_min(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FMIN: FPMin, a NaN operand gives the default NaN."""
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, _default_nan(x.dtype), _fpmin(x, y)).astype(x.dtype)


def _nan_max(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FMAX: FPMax, a NaN operand gives the default NaN."""
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, _default_nan(x.dtype), _fpmax(x, y)).astype(x.dtype)


_EXACT: dict[Clamp, Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[Any]]] = {
    Clamp.FCLAMP: _fclamp_exact,
    Clamp.FMIN_FMAX: lambda x, lo, hi: _nan_max(_nan_min(x, hi), lo),
    Clamp.FMAX_FMIN: lambda x, lo, hi: _nan_min(_nan_max(x, lo), hi),
}


def fclamp(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """``clamp(x, lo, hi, Clamp.FCLAMP)``: SME2 FCLAMP, a NaN ``x`` becomes ``lo``."""
    return clamp(x, lo, hi, Clamp.FCLAMP)


def fmin_fmax(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """``clamp(x, lo, hi, Clamp.FMIN_FMAX)``: ``FMAX(FMIN(x, hi), lo)``, NaN propagates."""
    return clamp(x, lo, hi, Clamp.FMIN_FMAX)


def fmax_fmin(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """``clamp(x, lo, hi, Clamp.FMAX_FMIN)``: ``FMIN(FMAX(x, lo), hi)``, NaN propagates."""
    return clamp(x, lo, hi, Clamp.FMAX_FMIN)


# ---------------------------------------------------------------------------------------------
# Rounding to integral, float -> integer conversions
# ---------------------------------------------------------------------------------------------


def round_half_even(x: ArrayLike) -> NDArray[Any]:
    """FRINTN / C ``rintf`` in the default mode: round to integral, ties to even."""
    out: NDArray[Any] = np.rint(np.asarray(x))
    return out


def round_half_away(x: ArrayLike) -> NDArray[Any]:
    """FRINTA / C ``roundf``: round to integral, ties away from zero.

    ``trunc(x + 0.5)`` is wrong for 0.49999997 (the addition rounds up); the fractional part
    ``x - trunc(x)`` is exact, so comparing it with 0.5 is.
    """
    a = np.asarray(x)
    t = np.trunc(a)
    with np.errstate(invalid="ignore"):  # inf - inf: an infinity stays itself
        frac = np.abs(a - t)
    out: NDArray[Any] = np.where(frac >= 0.5, t + np.sign(a), t).astype(a.dtype)
    return out


def fcvtzs(x: ArrayLike, bits: int = 32) -> NDArray[np.int64]:
    """FCVTZS to a ``bits``-bit signed integer: toward zero, saturating, NaN -> 0 (as int64)."""
    lim = 2.0 ** (bits - 1)
    a = np.asarray(x)
    with np.errstate(invalid="ignore"):
        r64 = np.where(np.isnan(a), 0.0, a.astype(F64))
        out: NDArray[np.int64] = np.trunc(np.clip(r64, -lim, lim - 1)).astype(np.int64)
    return out


def fcvtns(x: ArrayLike, bits: int = 32) -> NDArray[np.int64]:
    """FCVTNS (``vcvtnq_s32_f32``, ``vcvtnq_s16_f16``; x86 CVTPS2DQ in range): ties to even,
    saturating to ``bits`` bits, NaN -> 0 (as int64)."""
    return fcvtzs(round_half_even(x), bits)


def fcvtas(x: ArrayLike, bits: int = 32) -> NDArray[np.int64]:
    """FCVTAS (C ``lroundf`` on AArch64): ties away from zero, saturating, NaN -> 0 (as int64)."""
    return fcvtzs(round_half_away(x), bits)


def frintn_fcvtzs(y: NDArray[np.float32]) -> NDArray[np.int32]:
    """FRINTN (ties to even) then saturating FCVTZS (NaN -> 0), as int32: :func:`fcvtns`.

    Fast path: when every rounded value is below 2**31 in magnitude (the usual case) the plain
    conversion is exact; otherwise :func:`fcvtzs` saturates.
    """
    r = round_half_even(y)
    with np.errstate(invalid="ignore"):
        big = ~(np.abs(r) < F32(2.0**31))  # NaN counts as big
    if not big.any():
        out: NDArray[np.int32] = r.astype(np.int32)
        return out
    return fcvtzs(r).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Integer registers: wraparound and saturation
# ---------------------------------------------------------------------------------------------


def wrap_i32(x: ArrayLike) -> NDArray[np.int32]:
    """Two's-complement reduction of integers to int32: what a 32-bit register holds after
    ADD, MLA, SDOT, SMOPA (numpy int32 arithmetic wraps the same way)."""
    return np.asarray(x).astype(np.int64, copy=False).astype(np.int32)


def wrap_i16(x: ArrayLike) -> NDArray[np.int16]:
    """Two's-complement reduction of integers to int16 (a 16-bit lane after ADD .8h)."""
    return np.asarray(x).astype(np.int64, copy=False).astype(np.int16)


def saturate(x: ArrayLike, dtype: DTypeLike) -> NDArray[Any]:
    """``x`` clamped to the range of the integer ``dtype`` (its own dtype kept): the saturating
    narrowings and adds SQXTN, SQXTUN, SQADD (``vqmovn``, ``vqmovun``, ``vqadd``; x86 PACKSS/PACKUS)."""
    info = ml_dtypes.iinfo(dtype)  # type: ignore[no-untyped-call]  # numpy ints, ml_dtypes.int4
    out: NDArray[Any] = np.clip(np.asarray(x), info.min, info.max)
    return out

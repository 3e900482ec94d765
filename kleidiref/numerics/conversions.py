"""Conversions: between float formats (FCVT, bfloat16), to integral (FRINTN, FRINTA) and from
float to integer (FCVTZS, FCVTNS, FCVTAS), each saturating as the instruction does."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .floats import F16, F32, F64, require_f32

__all__ = [
    "FRINTN_MAGIC",
    "FRINTN_MAGIC_BITS",
    "bf16_to_f32",
    "f32_to_bf16_rne",
    "fcvtas",
    "fcvtns",
    "fcvtzs",
    "frintn_biased_bits",
    "frintn_fcvtzs",
    "rn16",
    "rn32",
    "round_half_away",
    "round_half_even",
]


def rn32(x: ArrayLike) -> NDArray[np.float32]:
    """``RN32(x)``: round float64 values to binary32, nearest even (numpy's cast is IEEE RNE)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(x, dtype=F64).astype(F32)


def rn16(x: ArrayLike) -> NDArray[np.float16]:
    """``RN16(x)``: FCVT binary32 -> binary16, round to nearest even, overflow to +-inf.

    numpy converts float32 to float16 directly (one rounding), which is what FCVT does.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return require_f32(x).astype(F16)


def f32_to_bf16_rne(x: ArrayLike) -> NDArray[np.uint16]:
    """XNNPACK ``math_cvt_bf16_fp32``: binary32 -> bfloat16 bits, round to nearest even.

    Finite values add ``0x7FFF + ((bits >> 16) & 1)`` and keep the high half; a NaN keeps its
    high half with the quiet bit (0x0040) set.
    """
    bits = require_f32(x).view(np.uint32).astype(np.uint64)
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


def round_half_even(x: ArrayLike, *, out: NDArray[Any] | None = None) -> NDArray[Any]:
    """FRINTN / C ``rintf`` in the default mode: round to integral, ties to even (into ``out``)."""
    r: NDArray[Any] = np.rint(np.asarray(x), out=out)
    return r


#: 1.5 * 2**23: ``RN32(v + FRINTN_MAGIC) == FRINTN_MAGIC + rint(v)`` (ties to even) for |v| <= 2**22.
FRINTN_MAGIC = np.float32(1.5 * 2**23)
#: The bits of FRINTN_MAGIC: the bits of ``FRINTN_MAGIC + r`` are ``FRINTN_MAGIC_BITS + r`` for
#: integers |r| <= 2**22.
FRINTN_MAGIC_BITS = 0x4B400000


def frintn_biased_bits(v: NDArray[np.float32]) -> NDArray[np.int32]:
    """FRINTN of binary32 values with ``|v| <= 2**22``, in place: ``v`` is overwritten and its
    int32 view, ``FRINTN_MAGIC_BITS + rint(v)``, returned (the constant of XNNPACK's ``fmagic``
    requantization, xnn_qs8_requantize_fp32__scalar_fmagic).

    ``v + 1.5 * 2**23`` rounds to ``1.5 * 2**23 + rint(v)`` with ties to even (the constant is
    even and the binary32 spacing there is 1), so integer clamps and the low byte can be taken
    on the bits directly.
    """
    np.add(v, FRINTN_MAGIC, out=v)
    return v.view(np.int32)


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

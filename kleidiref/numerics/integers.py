"""Integer registers: two's-complement wraparound and saturation."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["clamp_int", "saturate", "sqdmulh", "srshr", "wrap_i16", "wrap_i32"]


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


def clamp_int(x: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> NDArray[Any]:
    """The integer clamp ``min(max(x, lo), hi)``: SMAX then SMIN (SME2 SCLAMP gives the same),
    ``vmaxq_s8``/``vminq_s8``, ``vmaxq_u8``/``vminq_u8``. No NaN, no signed zero: one order fits all."""
    out: NDArray[Any] = np.minimum(np.maximum(x, lo), hi)
    return out


def sqdmulh(a: ArrayLike, b: ArrayLike) -> NDArray[np.int64]:
    """SQDMULH .s (``vqdmulhq_s32``): ``sat32(floor(2*a*b / 2**32))`` for int32 values (as int64)."""
    p = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)  # |a*b| <= 2**62: exact
    return saturate(p >> 31, np.int32)


def srshr(a: ArrayLike, shift: int) -> NDArray[np.int64]:
    """SRSHR / SRSHL by ``-shift`` (``vrshlq_s32``): ``(a + 2**(shift-1)) >> shift``, rounding
    half up, for ``shift >= 1`` (as int64; the int32 add cannot overflow in int64)."""
    a64 = np.asarray(a, dtype=np.int64)
    out: NDArray[np.int64] = (a64 + (1 << (shift - 1))) >> shift
    return out

"""Integer registers: two's-complement wraparound and saturation."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["saturate", "wrap_i16", "wrap_i32"]


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

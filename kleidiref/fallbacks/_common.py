"""Shared numerics of the generic XNNPACK kernels: NEON FADD/FMLA (f32 and f16) under FPCR.FZ/FZ16.

Every helper is one instruction over whole arrays, with its rounding named:

    fadd32(x, y)        FADD  .4s    RN32(x + y)                 (= fma32(1, x, y), one rounding)
    fmul32(x, y)        FMUL  .4s    RN32(x * y)
    fma16(a, b, c)      FMLA  .8h    RN16(a*b + c), fused        (exact product, round-to-odd sum)
    fadd16(x, y)        FADD  .8h    RN16(x + y)
    fmul16(x, y)        FMUL  .8h    RN16(x * y)
    clamp_max_min       FMAX(x, lo) then FMIN(., hi)  (NaN propagates)
    clamp_min_max       FMIN(x, hi) then FMAX(., lo)  (NaN propagates)

``fz=True`` is FPCR.FZ (f32) / FZ16 (f16): subnormal inputs read as signed zeros, and a result
whose exact value is below the smallest normal (tininess before rounding) becomes a signed zero.

# Note: NaN results are the default NaN (0x7FC00000 / 0x7E00). NEON with FPCR.DN = 0 would
# propagate the (quieted) NaN operand's payload instead; payloads are not modelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._engine import fma32_chain
from ..numerics import (
    FLT16_MIN,
    canonical_nan_f16,
    fma32,
    fmax_fmin,
    fmin_fmax,
    ftz16,
    ftz32,
    round_to_odd_sum,
)

__all__ = [
    "as_f16",
    "as_f32",
    "clamp_max_min",
    "clamp_min_max",
    "fadd16",
    "fadd32",
    "fma16",
    "fma16_chain",
    "fma32",
    "fma32_chain",
    "fmul16",
    "fmul32",
    "qd8_codes",
]

F32, F16, F64 = np.float32, np.float16, np.float64


def as_f32(
    name: str, x: object, *, ndim: int | None = None, shape: tuple[int, ...] | None = None
) -> NDArray[np.float32]:
    """``x`` as a float32 array (of ``shape`` if given), or TypeError/ValueError naming the constraint."""
    if not isinstance(x, np.ndarray) or x.dtype != F32:
        raise TypeError(f"{name} must be a float32 numpy array, got {getattr(x, 'dtype', type(x).__name__)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if shape is not None and x.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {x.shape}")
    return x


def qd8_codes(q: object, ndim: int = 2) -> NDArray[np.int8]:
    """Dynamically quantized activations: int8 [M, K] rows (or NHWC images), else TypeError."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8 or q.ndim != ndim:
        raise TypeError(f"q must be a {ndim}-D int8 array ({'NHWC ' if ndim == 4 else ''}qd8 codes)")
    return q


def as_f16(name: str, x: object, *, ndim: int | None = None) -> NDArray[np.float16]:
    """``x`` as a float16 array, or TypeError/ValueError naming the constraint."""
    if not isinstance(x, np.ndarray) or x.dtype != F16:
        raise TypeError(f"{name} must be a float16 numpy array, got {getattr(x, 'dtype', type(x).__name__)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    return x


def fadd32(x: ArrayLike, y: ArrayLike, *, fz: bool) -> NDArray[np.float32]:
    """NEON FADD (f32): ``RN32(x + y)``; ``fma32(1, x, y)`` is exactly that (and flushes like it)."""
    return fma32(np.float32(1.0), x, y, fz=fz)


def fmul32(x: ArrayLike, y: ArrayLike, *, fz: bool) -> NDArray[np.float32]:
    """NEON FMUL (f32): ``RN32(x * y)``; ``fma32(x, y, -0)`` is exactly that (-0 keeps x*y's sign)."""
    return fma32(x, y, np.float32(-0.0), fz=fz)


def _f16(x: ArrayLike) -> NDArray[np.float16]:
    a = np.asarray(x)
    if a.dtype != F16:
        raise TypeError(f"expected float16 values, got {a.dtype}")
    return a


def _round16(s: NDArray[np.float64], fz: bool) -> NDArray[np.float16]:
    with np.errstate(over="ignore", invalid="ignore"):
        r = s.astype(F16)  # numpy converts float64 -> float16 with one RNE rounding
    if fz:
        tiny = (s != 0) & (np.abs(s) < FLT16_MIN)
        r = np.where(tiny, np.copysign(F16(0), s).astype(F16), r)
    return canonical_nan_f16(r.astype(F16))


def fma16(a: ArrayLike, b: ArrayLike, c: ArrayLike, *, fz: bool) -> NDArray[np.float16]:
    """NEON FMLA .8h: ``RN16(a*b + c)`` with one rounding.

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


def fadd16(x: ArrayLike, y: ArrayLike, *, fz: bool) -> NDArray[np.float16]:
    """NEON FADD .8h: ``RN16(x + y)`` (the float64 sum of two binary16 values is exact)."""
    x16, y16 = _f16(x), _f16(y)
    if fz:
        x16, y16 = ftz16(x16), ftz16(y16)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x16.astype(F64) + y16.astype(F64)
    return _round16(np.asarray(s), fz)


def fmul16(x: ArrayLike, y: ArrayLike, *, fz: bool) -> NDArray[np.float16]:
    """NEON FMUL .8h: ``RN16(x * y)`` (the float64 product of two binary16 values is exact)."""
    x16, y16 = _f16(x), _f16(y)
    if fz:
        x16, y16 = ftz16(x16), ftz16(y16)
    with np.errstate(over="ignore", invalid="ignore"):
        s = x16.astype(F64) * y16.astype(F64)
    return _round16(np.asarray(s), fz)


def fma16_chain(
    acc0: NDArray[np.float16], a: NDArray[np.float16], w: NDArray[np.float16], *, fz: bool
) -> NDArray[np.float16]:
    """``acc = fma16(a[:, k], w[k, :], acc)`` for k = 0..K-1 in order; ``a`` [M, K], ``w`` [K, N]."""
    acc = np.array(np.broadcast_to(acc0, (a.shape[0], w.shape[1])), dtype=F16)
    for k in range(a.shape[1]):
        acc = fma16(a[:, k : k + 1], w[k : k + 1, :], acc, fz=fz)
    return acc


def clamp_max_min(x: NDArray[Any], lo: Any, hi: Any, *, fz: bool) -> NDArray[Any]:
    """``FMAX(x, lo)`` then ``FMIN(., hi)`` (bounds flushed under FZ like any operand)."""
    lo_a, hi_a = _bounds(x, lo, hi, fz)
    return fmax_fmin(x, lo_a, hi_a)


def clamp_min_max(x: NDArray[Any], lo: Any, hi: Any, *, fz: bool) -> NDArray[Any]:
    """``FMIN(x, hi)`` then ``FMAX(., lo)`` (bounds flushed under FZ like any operand)."""
    lo_a, hi_a = _bounds(x, lo, hi, fz)
    return fmin_fmax(x, lo_a, hi_a)


def _bounds(x: NDArray[Any], lo: Any, hi: Any, fz: bool) -> tuple[NDArray[Any], NDArray[Any]]:
    lo_a = np.asarray(lo, dtype=x.dtype)
    hi_a = np.asarray(hi, dtype=x.dtype)
    if fz:
        flush = ftz16 if x.dtype == F16 else ftz32
        lo_a, hi_a = flush(lo_a), flush(hi_a)
    return lo_a, hi_a


# Re-exported so kernels import every step from one place.
fma32_chain = fma32_chain
fma32 = fma32

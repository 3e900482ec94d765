"""The float clamps, one vocabulary: :class:`Clamp` names each kernel's min/max order and NaN and
signed-zero semantics, :func:`clamp` runs it."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .floats import default_nan, ftz, has_nan

__all__ = ["Clamp", "clamp", "fclamp", "fmax_fmin", "fmin_fmax", "maxps", "minps"]


class Clamp(str, enum.Enum):
    """Which float clamp a kernel runs: the order of its min and max and what a NaN does.

    The Arm kinds order -0 below +0 (FPMax/FPMin); the x86 kinds compare with ``>``/``<`` only
    (equal zeros and NaNs give the second operand). All return the default NaN for a NaN
    result. The values are the names the kernels have always used (``Clamp("fclamp") is
    Clamp.FCLAMP``).
    """

    #: SME2 FCLAMP: ``FPMinNum(FPMaxNum(x, lo), hi)``; FPMaxNum/FPMinNum treat a quiet NaN
    #: operand as missing, so a NaN ``x`` clamps to ``lo`` (KleidiAI ``_sme2_`` kernels).
    FCLAMP = "fclamp"
    #: ``FMAX(FMIN(x, hi), lo)``: a NaN propagates (KleidiAI pf32/pf16 ``_sme_`` kernels).
    FMIN_FMAX = "fmin_fmax"
    #: ``FMIN(FMAX(x, lo), hi)``: a NaN propagates (KleidiAI qp8 ``_sme_`` and NEON kernels,
    #: XNNPACK's ``vmaxq_f32``-then-``vminq_f32`` fallbacks).
    FMAX_FMIN = "fmax_fmin"
    #: x86 ``MINPS(MAXPS(x, lo), hi)`` (:func:`maxps`: a NaN or a zero tie gives the second
    #: operand): a NaN ``x`` becomes ``lo`` (XNNPACK ``f16-f32acc`` avx2/avx512skx GEMMs).
    X86_MAX_MIN = "x86_max_min"
    #: x86 ``MAXPS(MINPS(x, hi), lo)``: a NaN ``x`` becomes ``hi`` (``qc8w`` sse41 GEMMs).
    X86_MIN_MAX = "x86_min_max"
    #: x86 ``MINPS(hi, MAXPS(lo, x))``, bound first: a NaN ``x`` propagates (``qc8w`` avx/fma3
    #: GEMMs, ``avx512fp16`` f16 GEMMs).
    X86_BOUND_MAX_MIN = "x86_bound_max_min"

    def __str__(self) -> str:  # the upstream-style name ("fclamp"), also in f-strings
        return str(self.value)


def clamp(
    x: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    kind: Clamp | str,
    *,
    fz: bool = False,
    flushed: bool = False,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """``x`` clamped to [``lo``, ``hi``] the way ``kind`` (:class:`Clamp`) does it.

    ``fz=True`` (FPCR.FZ / FZ16, by ``x``'s dtype): every operand, bounds included, is read
    through the input flush; ``flushed=True`` promises that ``x`` holds no subnormal (an FZ
    result never does), skipping its scan. ``out`` (of the broadcast shape; may be ``x``)
    receives the result.

    Without NaNs numpy's maximum/minimum are the true steps except when a zero meets a zero of
    the other sign, so only a zero bound can leave a wrong-signed zero, and only zero results
    are then redone exactly; with a NaN anywhere the whole clamp runs the exact form.
    """
    k = Clamp(kind)
    xa = np.asarray(x)
    dt = xa.dtype
    lo_a, hi_a = np.asarray(lo, dtype=dt), np.asarray(hi, dtype=dt)
    if fz:
        xa, lo_a, hi_a = (xa if flushed else ftz(xa)), ftz(lo_a), ftz(hi_a)
    if k in _X86:
        r = _X86[k](xa, lo_a, hi_a)
        res = np.where(np.isnan(r), default_nan(dt), r).astype(dt)
    elif has_nan(lo_a) or has_nan(hi_a) or has_nan(xa):
        res = _EXACT[k](xa, lo_a, hi_a)
    else:
        res = _minmax(xa, lo_a, hi_a, k is not Clamp.FMIN_FMAX, _EXACT[k], out)
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
    """The NaN-free clamp: numpy's maximum/minimum, zero results redone when a bound is zero.

    A lower bound of +0 (ReLU) needs no redo: ``FPMax(t, +0)`` is +0 for every ``t <= 0``, and
    adding +0 (``-0 + 0 = +0`` in RNE, any other value unchanged) makes every zero +0.
    """
    shape = np.broadcast_shapes(xa.shape, lo_a.shape, hi_a.shape)
    xb = np.broadcast_to(xa, shape)
    relu = lo_a.ndim == 0 and lo_a == 0 and not np.signbit(lo_a)
    zero_bound = bool((hi_a == 0).any() or (not relu and (lo_a == 0).any()))
    if zero_bound and out is not None and np.shares_memory(out, xa):
        out = None  # the redo reads x: compute aside, the caller copies into out
    t: NDArray[Any] = xb
    steps = ((np.maximum, lo_a), (np.minimum, hi_a)) if max_first else ((np.minimum, hi_a), (np.maximum, lo_a))
    for op, bound in steps:
        if not (bound.ndim == 0 and np.isinf(bound) and (bound < 0) == (op is np.maximum)):
            # an infinite bound on its own side changes nothing: skipped
            t = np.asarray(op(t, bound, out=out if t is xb else t))
            if relu and op is np.maximum:
                np.add(t, 0, out=t)
    if t is xb:
        if out is None:
            return xb.astype(xa.dtype, copy=True)
        if out is not xa:
            np.copyto(out, xb)
        return out
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
    return np.where(np.isnan(t), default_nan(dt), t).astype(dt)


def _nan_min(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FMIN: FPMin, a NaN operand gives the default NaN."""
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, default_nan(x.dtype), _fpmin(x, y)).astype(x.dtype)


def _nan_max(x: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]:
    """FMAX: FPMax, a NaN operand gives the default NaN."""
    nan = np.isnan(x) | np.isnan(y)
    return np.where(nan, default_nan(x.dtype), _fpmax(x, y)).astype(x.dtype)


_EXACT: dict[Clamp, Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[Any]]] = {
    Clamp.FCLAMP: _fclamp_exact,
    Clamp.FMIN_FMAX: lambda x, lo, hi: _nan_max(_nan_min(x, hi), lo),
    Clamp.FMAX_FMIN: lambda x, lo, hi: _nan_min(_nan_max(x, lo), hi),
}


def maxps(x: ArrayLike, y: ArrayLike) -> NDArray[Any]:
    """x86 MAXPS / MAXPH (``_mm_max_ps``): ``x > y ? x : y``; a NaN or equal zeros give ``y``."""
    return np.where(np.asarray(x) > y, x, y)


def minps(x: ArrayLike, y: ArrayLike) -> NDArray[Any]:
    """x86 MINPS / MINPH (``_mm_min_ps``): ``x < y ? x : y``; a NaN or equal zeros give ``y``."""
    return np.where(np.asarray(x) < y, x, y)


_X86: dict[Clamp, Callable[[NDArray[Any], NDArray[Any], NDArray[Any]], NDArray[Any]]] = {
    Clamp.X86_MAX_MIN: lambda x, lo, hi: minps(maxps(x, lo), hi),
    Clamp.X86_MIN_MAX: lambda x, lo, hi: maxps(minps(x, hi), lo),
    Clamp.X86_BOUND_MAX_MIN: lambda x, lo, hi: minps(hi, maxps(lo, x)),
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

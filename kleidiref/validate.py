"""Argument checks every public entry point shares: flags, output ranges, quantization scales, sizes.

One home per kind of input (issue 15): a flag is a real ``bool`` (:func:`check_bool`), an
operator's float output range is what XNNPACK's operator creation accepts
(:func:`check_output_range`), a quantization scale is finite, positive and normal
(:func:`check_scales`), and an allocation is sized against :mod:`kleidiref.limits` before it is
made (:func:`check_alloc`). Errors are ``ValueError``/``TypeError`` naming the constraint.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._buffers import check_float
from .limits import check_bytes
from .numerics import rn16

__all__ = ["check_alloc", "check_bool", "check_output_range", "check_scales", "nbytes_of"]

_TINY = float(np.finfo(np.float32).tiny)


def check_bool(name: str, value: object) -> bool:
    """A flag must be a ``bool`` (``'no'`` would be truthy): TypeError otherwise."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_output_range(
    clamp_min: object, clamp_max: object, *, op: str, f16: bool = False
) -> tuple[np.float32, np.float32]:
    """An operator's output range, refused as XNNPACK's ``xnn_create_*`` refuses it.

    ``xnn_create_fully_connected_nc_f32`` / ``xnn_create_convolution2d_nhwc_f32``: neither bound
    NaN and ``output_min <= output_max``; the f16 operators (``..._f16``) compare the bounds
    rounded to binary16 and need ``rounded min < rounded max``. Kernel objects are not checked
    here: a kernel's ``run_matmul`` keeps its own clamp semantics for any pair of floats.
    """
    # The C arguments are floats: a bound that binary32 cannot hold is refused, not rounded.
    lo, hi = float(check_float("clamp_min", clamp_min)), float(check_float("clamp_max", clamp_max))
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError(f"clamp bounds must be non-NaN, got [{lo}, {hi}] ({op}: output min/max must not be NaN)")
    if lo > hi:
        raise ValueError(f"clamp_min {lo} must be <= clamp_max {hi} ({op}: output min must be below output max)")
    if f16 and not float(rn16(np.float32(lo))) < float(rn16(np.float32(hi))):
        raise ValueError(f"[{lo}, {hi}] rounded to f16 is empty ({op}: the rounded output min must be below the max)")
    return np.float32(lo), np.float32(hi)


def check_scales(name: str, scales: object, *, source: str) -> NDArray[np.float32]:
    """Quantization scales (a number or an array): every one finite, > 0 and normal in binary32.

    Mirrors ``xnn_define_quantized_tensor_value`` / ``xnn_define_channelwise_quantized_tensor_value``
    (``scale <= 0.0f || !isnormal(scale)`` is ``xnn_status_invalid_parameter``).
    """
    if isinstance(scales, (bool, np.bool_)) or not isinstance(scales, (int, float, np.number, np.ndarray)):
        raise TypeError(f"{name} must be a real number or a float32 array, got {type(scales).__name__}")
    arr = np.asarray(scales)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be real numbers, got {arr.dtype}")
    with np.errstate(over="ignore"):
        s = arr.astype(np.float32)
    bad = ~(np.isfinite(s) & (s >= np.float32(_TINY)))
    if np.any(bad):
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"{name} {float(arr.reshape(-1)[i])!r} must be finite, > 0 and normal ({source}; "
            "xnn_define_quantized_tensor_value: scale <= 0 or !isnormal(scale) is invalid)"
        )
    return s


def nbytes_of(shape: tuple[int, ...], dtype: Any) -> int:
    """Bytes of a dense array of ``shape`` and ``dtype`` (Python ints: no overflow)."""
    n = int(np.dtype(dtype).itemsize)
    for d in shape:
        n *= int(d)
    return n


def check_alloc(what: str, *parts: tuple[tuple[int, ...], Any], factor: int = 1) -> None:
    """Refuse before allocating the arrays ``parts`` (``(shape, dtype)`` each) times ``factor``
    (the temporaries a call keeps alive at once) above the memory limit (:mod:`kleidiref.limits`)."""
    check_bytes(factor * sum(nbytes_of(s, d) for s, d in parts), what)

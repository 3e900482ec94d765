"""``qsi8cx``: per-channel symmetric int8 weights (the ``rhs`` of qp8_f32_qc8w and pqs8_qc8w).

XNNPACK receives these weights already quantized (``qcint8`` tensors, zero point 0); this is
how KleidiAI's test reference makes them (``quantize_symmetric_per_block_dynamic`` with one block
per channel, test/reference/quantize.cpp), binary32 throughout::

    max_abs[n] = max_k |w[n][k]|                        (0 for an all-zero channel)
    scale[n]   = RN32(max_abs[n] / 127)                 the dequantization scale
    inv[n]     = RN32(1 / scale[n])   (0 if scale == 0)
    q[n][k]    = clamp(RNE_int(RN32(w[n][k] * inv[n])), -128, 127)   ties to even (round_half_even)

Real value of a code: ``q * scale[n]`` (exact in float64). Codes lie in [-127, 127]; 0 maps to 0.
A channel with ``0 < max_abs < 127 * FLT_MIN`` would get a subnormal scale whose inverse can
overflow (the C reference then converts NaN to int, which is undefined): it is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import FLT_MIN, round_half_even, saturate

__all__ = ["dequantize_qsi8cx", "qsi8cx_scale", "quantize_qsi8cx"]

F32 = np.float32


def _check(w: object) -> NDArray[np.float32]:
    if not isinstance(w, np.ndarray) or w.dtype != F32 or w.ndim != 2:
        raise TypeError("qsi8cx quantizes a 2-D float32 array [N, K] (one scale per row n)")
    if w.shape[1] < 1:
        raise ValueError("qsi8cx needs K >= 1")
    if not np.all(np.isfinite(w)):
        raise ValueError("qsi8cx weights must be finite (the per-channel max |w| defines the scale)")
    return w


def qsi8cx_scale(w: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per-channel dequantization scale ``RN32(max_k |w[n][k]| / 127)``."""
    w = _check(w)
    max_abs = np.max(np.abs(w), axis=1)
    tiny = (max_abs > 0) & (max_abs < F32(127 * FLT_MIN))
    if np.any(tiny):
        raise ValueError(
            f"channel {int(np.flatnonzero(tiny)[0])}: max |w| < 127 * FLT_MIN gives a subnormal qsi8cx scale"
        )
    scale: NDArray[np.float32] = (max_abs / F32(127)).astype(F32)
    return scale


def quantize_qsi8cx(w: NDArray[np.float32]) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """``(q [N, K] int8, scale [N] float32)``: symmetric per-channel, ties to even."""
    scale = qsi8cx_scale(w)
    with np.errstate(divide="ignore"):
        inv = np.where(scale != 0, F32(1) / scale, F32(0)).astype(F32)
    r = round_half_even((w * inv[:, None]).astype(F32))
    q = saturate(r, np.int8).astype(np.int8)
    return q, scale


def dequantize_qsi8cx(q: NDArray[np.int8], scale: NDArray[np.float32]) -> NDArray[Any]:
    """``q[n][k] * scale[n]`` in float64 (exact: |q| <= 128, scale is binary32)."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8 or q.ndim != 2:
        raise TypeError("q must be a 2-D int8 array [N, K]")
    if not isinstance(scale, np.ndarray) or scale.dtype != F32 or scale.shape != (q.shape[0],):
        raise TypeError(f"scale must be float32 of shape ({q.shape[0]},)")
    return q.astype(np.float64) * scale.astype(np.float64)[:, None]

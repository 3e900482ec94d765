"""Operand checks shared by the generic XNNPACK kernels, and the f16 FMLA chain.

The arithmetic (NEON FADD/FMUL/FMLA in f32 and f16 under FPCR.FZ/FZ16, the clamps) is named in
:mod:`kleidiref.numerics`; this module only checks operands and loops :func:`~kleidiref.numerics.fma16`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..numerics import fma16

__all__ = [
    "as_f16",
    "as_f32",
    "fma16_chain",
    "qd8_codes",
]

F32, F16 = np.float32, np.float16


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


def fma16_chain(
    acc0: NDArray[np.float16], a: NDArray[np.float16], w: NDArray[np.float16], *, fz: bool
) -> NDArray[np.float16]:
    """``acc = fma16(a[:, k], w[k, :], acc)`` for k = 0..K-1 in order; ``a`` [M, K], ``w`` [K, N]."""
    acc = np.array(np.broadcast_to(acc0, (a.shape[0], w.shape[1])), dtype=F16)
    for k in range(a.shape[1]):
        acc = fma16(a[:, k : k + 1], w[k : k + 1, :], acc, fz=fz)
    return acc

"""Generic XNNPACK ``qd8_f32_qc8w`` GEMM and IGEMM: qd8 activations x per-channel int8 weights -> f32.

The LHS arrives quantized by :mod:`kleidiref.quant.qd8` (per row for FC/BMM, per image for a
convolution). ARM64 NEON kernels (``…_4x16c8__neoni8mm``, ``…_4x16c4__asm_aarch64_neondot_ld128``,
``…_1x16c4__neondot``; src/qd8-f32-qc8w-gemm/gen/qd8-f32-qc8w-gemm-1x16c4-minmax-neondot.c
L104-160)::

    acc = (-sum_k w[n,k]) * zp[m] + sum_k q[m,k] * w[n,k]     int32, exact (the packer stores -sum w)
    t   = RN32(float(acc) * a[m])                           SCVTF (RNE), FMUL
    y   = fma32(t, ws[n], b[n])                             vfmaq_f32(b, t, ws)
    y   = FMIN(FMAX(y, min), max)

IGEMM (convolution): the same per output pixel, with ``k' = tap * gic + c`` and padding taps
reading the image's zero point (so they contribute 0 to ``acc``).

The integer sum is computed exactly through float64 BLAS (every partial sum < 2**53).
FPCR.FZ (``fz``) applies to the f32 epilogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fma32, fmul32, wrap_i32
from ._common import as_f32, qd8_codes
from ._conv import grouped_conv, grouped_geometry

__all__ = [
    "check_qc8w_weights",
    "int_dot",
    "qc8w_acc",
    "qd8_f32_qc8w_epilogue",
    "qd8_f32_qc8w_gemm",
    "qd8_f32_qc8w_igemm",
    "qd8_gemm_operands",
]

F32 = np.float32


def int_dot(q: NDArray[Any], w: NDArray[Any]) -> NDArray[np.int64]:
    """Exact ``q @ w.T`` for int8-range operands, via float64 BLAS (never numpy integer ``@``)."""
    out: NDArray[np.int64] = np.rint(q.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
    return out


def qd8_f32_qc8w_epilogue(
    acc: NDArray[np.int64],
    a: NDArray[np.float32],
    ws: NDArray[np.float32],
    b: NDArray[np.float32],
    *,
    clamp_min: float,
    clamp_max: float,
    fz: bool,
) -> NDArray[np.float32]:
    """``FMIN(FMAX(fma32(RN32(float(acc) * a[m]), ws[n], b[n]), min), max)`` on int32 ``acc`` [M, N]."""
    accf = wrap_i32(acc).astype(F32)  # SCVTF: RNE
    t = fmul32(accf, a[:, None], fz=fz)
    y = fma32(t, ws[None, :], b[None, :], fz=fz)
    return clamp(y, F32(clamp_min), F32(clamp_max), Clamp.FMAX_FMIN, fz=fz)


def _check_w(w: object, ndim: int) -> NDArray[np.int8]:
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != ndim:
        raise TypeError(f"weights must be a {ndim}-D int8 array (qcint8, symmetric per output channel)")
    return w


def qd8_gemm_operands(
    q: object, a: object, w: object, ws: object, bias: object, check_w: Callable[[object], NDArray[np.int8]]
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int8], NDArray[np.float32], NDArray[np.float32]]:
    """The checked operands ``(q, a, w, ws, bias)`` of a per-channel qd8 GEMM (bias None: zeros).

    ``q`` [M, K] int8 codes, ``a`` [M] dequantization scales, ``w`` [N, K] (checked by ``check_w``:
    int8 or int4 values), ``ws`` [N], ``bias`` [N] float32.
    """
    q = qd8_codes(q)
    w = check_w(w)
    m, k = q.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"K mismatch: q is {q.shape}, w is {w.shape} ([N, K])")
    b = np.zeros(n, F32) if bias is None else as_f32("bias", bias, shape=(n,))
    return q, as_f32("a", a, shape=(m,)), w, as_f32("ws", ws, shape=(n,)), b


def qc8w_acc(q: NDArray[Any], zp: NDArray[Any], w: NDArray[np.int8]) -> NDArray[np.int64]:
    """The exact accumulator ``sum_k q*w - zp * sum_k w`` [M, N] (one zero point per row of ``q``)."""
    zp64 = np.asarray(zp, dtype=np.int64).reshape(q.shape[0])
    acc: NDArray[np.int64] = int_dot(q, w) - zp64[:, None] * w.astype(np.int64).sum(axis=1)[None, :]
    return acc


def check_qc8w_weights(w: object) -> NDArray[np.int8]:
    """qcint8 GEMM weights: a 2-D int8 array [N, K], else TypeError."""
    return _check_w(w, 2)


def qd8_f32_qc8w_gemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    ws: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
) -> NDArray[np.float32]:
    """``[M, N]`` f32 for qd8 rows ``q`` [M, K] (``a``, ``zp`` per row) and ``w`` [N, K] int8, ``ws`` [N]."""
    q, a, w, ws, b = qd8_gemm_operands(q, a, w, ws, bias, check_qc8w_weights)
    return qd8_f32_qc8w_epilogue(qc8w_acc(q, zp, w), a, ws, b, clamp_min=clamp_min, clamp_max=clamp_max, fz=fz)


def qd8_f32_qc8w_igemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    ws: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
) -> NDArray[np.float32]:
    """Convolution of qd8 images ``q`` [N,H,W,C] (``a``, ``zp`` per image) by int8 ``w`` [O,kh,kw,C/g]."""
    q = qd8_codes(q, 4)
    w = _check_w(w, 4)
    geo = grouped_geometry(q.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    cout = w.shape[0]
    a = as_f32("a", a, shape=(geo.batch,))
    ws = as_f32("ws", ws, shape=(cout,))
    b = np.zeros(cout, F32) if bias is None else as_f32("bias", bias, shape=(cout,))
    zp8 = np.asarray(zp, dtype=np.int32).reshape(geo.batch)
    per_pixel = geo.out_h * geo.out_w
    zp_rows = np.repeat(zp8.astype(np.int64), per_pixel)
    a_rows = np.repeat(a, per_pixel)

    def gemm(rows: NDArray[np.int8], wg: NDArray[np.int8], cols: slice) -> NDArray[np.float32]:
        acc = qc8w_acc(rows, zp_rows, wg)
        return qd8_f32_qc8w_epilogue(acc, a_rows, ws[cols], b[cols], clamp_min=clamp_min, clamp_max=clamp_max, fz=fz)

    return grouped_conv(q, w, geo, zp8.astype(np.int8), F32, gemm)

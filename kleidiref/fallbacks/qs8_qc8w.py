"""Generic XNNPACK ``qs8_qc8w`` GEMM / IGEMM with fp32 requantization (static int8 -> int8).

ARM64 kernels ``xnn_qs8_qc8w_{gemm,igemm}_minmax_fp32_ukernel_*`` (neoni8mm / neondot / neon_mlal),
params from ``xnn_init_qs8_qc8w_conv_minmax_fp32_neonv8_params``::

    s[n]   = RN32(RN32(sx * sw[n]) / sy)                 at creation (rejected if >= 256)
    B[n]   = bias_q[n] - zx * sum_k w[n,k]               int32 packed bias (wraps)
    acc    = B[n] + sum_k x_q[m,k] * w[n,k]              int32 (wraps); padding taps read zx
    f      = RN32(float(acc) * s[n])                     SCVTF (RNE), FMUL
    r      = FCVTNS(f)                                   ties to even, saturating
    y      = sat8(sat16(sat16(r) + zy))                  vqmovn, vqadd, vqmovn
    y      = min(max(y, ymin), ymax)

This is ``xnn_qs8_requantize_fp32`` (src/xnnpack/requantization.h) exactly; pqs8 (KleidiAI SME) is
tested bit-exact against it upstream. Per-tensor weights broadcast ``sw``. The int32 sum is exact
through float64 BLAS. FPCR.FZ (``fz``) matters only if ``RN32(float(acc) * s)`` is subnormal,
which rounds to 0 either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import clamp_int, fcvtns, fmul32, saturate, wrap_i32
from ._conv import grouped_conv, grouped_geometry
from .qd8_f32_qc8w import int_dot

__all__ = ["qs8_qc8w_gemm", "qs8_qc8w_igemm", "qs8_requantization_scale", "qs8_requantize_fp32"]

F32 = np.float32


def qs8_requantization_scale(sx: float, sw: NDArray[np.float32] | float, sy: float, n: int) -> NDArray[np.float32]:
    """``RN32(RN32(sx * sw[n]) / sy)`` per output channel; ValueError if any is >= 256 (creation fails)."""
    w = np.broadcast_to(np.asarray(sw, dtype=F32), (n,))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = ((F32(sx) * w).astype(F32) / F32(sy)).astype(F32)
    if not np.all(s < F32(256.0)):
        i = int(np.argmax(~(s < F32(256.0))))
        raise ValueError(f"requantization scale [{i}] = {float(s[i])!r} is >= 256: XNNPACK rejects the qs8 operator")
    if not np.all(s > 0):
        raise ValueError("requantization scales must be positive (input, filter and output scales > 0)")
    out: NDArray[np.float32] = s
    return out


def qs8_requantize_fp32(
    acc: NDArray[np.int64], s: NDArray[np.float32], zy: int, ymin: int, ymax: int
) -> NDArray[np.int8]:
    """``xnn_qs8_requantize_fp32`` on int32 ``acc`` [M, N] (NEON v8 saturation sequence)."""
    f = fmul32(wrap_i32(acc).astype(F32), s[None, :])  # SCVTF, FMUL
    r = fcvtns(f)  # vcvtnq_s32_f32
    r16 = saturate(saturate(r, np.int16) + zy, np.int16)  # vqmovn_s32, vqaddq_s16
    y = saturate(r16, np.int8)  # vqmovn_s16
    res: NDArray[np.int8] = clamp_int(y, ymin, ymax).astype(np.int8)  # vmaxq_s8, vminq_s8
    return res


def _check_q(name: str, x: object, ndim: int) -> NDArray[np.int8]:
    if not isinstance(x, np.ndarray) or x.dtype != np.int8 or x.ndim != ndim:
        raise TypeError(f"{name} must be a {ndim}-D int8 array")
    return x


def _bias(bias: NDArray[Any] | None, n: int) -> NDArray[np.int64]:
    if bias is None:
        return np.zeros(n, np.int64)
    b = np.asarray(bias)
    if b.dtype != np.int32 or b.shape != (n,):
        raise TypeError(f"bias must be int32 (qint32/qcint32) of shape ({n},), got {b.dtype} {b.shape}")
    return b.astype(np.int64)


def _bounds(ymin: int, ymax: int) -> None:
    if not -128 <= ymin < ymax <= 127:
        raise ValueError(f"output bounds must satisfy -128 <= ymin < ymax <= 127, got {ymin}, {ymax}")


def qs8_qc8w_gemm(
    x: NDArray[np.int8],
    w: NDArray[np.int8],
    bias: NDArray[np.int32] | None,
    *,
    zx: int,
    s: NDArray[np.float32],
    zy: int,
    ymin: int = -128,
    ymax: int = 127,
) -> NDArray[np.int8]:
    """``[M, N]`` int8: ``x`` [M, K] int8 (zero point ``zx``), ``w`` [N, K] int8, requant scales ``s`` [N]."""
    x = _check_q("x", x, 2)
    w = _check_q("w", w, 2)
    _bounds(ymin, ymax)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"K mismatch: x is {x.shape}, w is {w.shape} ([N, K])")
    n = w.shape[0]
    acc = _bias(bias, n)[None, :] - zx * w.astype(np.int64).sum(axis=1)[None, :] + int_dot(x, w)
    return qs8_requantize_fp32(acc, np.asarray(s, F32).reshape(n), zy, ymin, ymax)


def qs8_qc8w_igemm(
    x: NDArray[np.int8],
    w: NDArray[np.int8],
    bias: NDArray[np.int32] | None,
    *,
    zx: int,
    s: NDArray[np.float32],
    zy: int,
    ymin: int = -128,
    ymax: int = 127,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
) -> NDArray[np.int8]:
    """NHWC int8 convolution; padding taps read the input zero point ``zx``."""
    x = _check_q("x", x, 4)
    w = _check_q("w", w, 4)
    _bounds(ymin, ymax)
    geo = grouped_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    cout = w.shape[0]
    b = _bias(bias, cout)
    s = np.asarray(s, F32).reshape(cout)

    def gemm(rows: NDArray[np.int8], wg: NDArray[np.int8], cols: slice) -> NDArray[np.int8]:
        acc = b[cols][None, :] - zx * wg.astype(np.int64).sum(axis=1)[None, :] + int_dot(rows, wg)
        return qs8_requantize_fp32(acc, s[cols], zy, ymin, ymax)

    return grouped_conv(x, w, geo, np.int8(zx), np.int8, gemm)

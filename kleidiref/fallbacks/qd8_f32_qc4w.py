"""Generic XNNPACK ``qd8_f32_qc4w`` GEMM: qd8 rows x 4-bit per-channel weights -> f32 (from source).

Weights ``w[n,k]`` are the signed 4-bit values: the serialized nibble minus the kernel zero
point (8: unsigned nibbles, ExecuTorch's choice; 0: two's-complement nibbles). Packing
(``xnn_pack_qs4_weights_and_biases`` -> ``pack_qs8_qc4w_gemm_goi_w``, src/reference/packing.cc)
with ``input_zero_point = 1`` (``setup_packing_params_qs8_qc4w_izp_1``, fully-connected-nc.c)
stores each byte as ``(lo | hi << 4) ^ 0x88`` for zero point 8 (two's-complement nibbles either
way) and the int32 slot ``ksum[n] = -16 * sum_k w[n,k]``. ARM64 kernels
(``xnn_qd8_f32_qc4w_gemm_minmax_ukernel_{1,4}x16c8__neoni8mm``, ``…_{1,4}x16c4__neondot``,
``…_{1,6}x16__neon_mlal_lane``; e.g. src/qd8-f32-qc4w-gemm/gen/qd8-f32-qc4w-gemm-1x16c4-minmax-neondot.c)::

    acc = ksum[n] * zp[m] + sum_k q[m,k] * (16 * w[n,k])     int32, wraps; the nibbles are
                                                             widened by SHL #4 / AND #0xF0 (16x)
    f   = vcvtq_n_f32_s32(acc, 4)                            SCVTF #4: RN32(acc / 16), one rounding
    t   = RN32(f * a[m])                                     FMUL
    y   = fma32(t, ws[n], b[n])                              vfmaq_f32(b, t, ws)
    y   = FMIN(FMAX(y, min), max)

Without wraparound ``acc = 16 * A`` with ``A = sum_k q*w - zp * sum_k w``, so ``f = RN32(A)``
and the result equals the ``qd8_f32_qc8w`` epilogue on ``A``; the emulation
keeps the 16x int32 register (its wraparound happens 16 times earlier than qc8w's).
FPCR.FZ (``fz``) applies to the f32 epilogue.

# Note: an odd K is where XNNPACK's generic packer (flat nibble index ``n*K + k``) and
# KleidiAI's qc4w packer (rows padded to whole bytes) read the serialized tensor differently;
# kleidiref takes the logical 4-bit values, so the byte layout does not enter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fma32, fmul32, wrap_i32
from .qd8_f32_qc8w import int_dot, qd8_gemm_operands

__all__ = ["check_int4_weights", "qd8_f32_qc4w_gemm"]

F32 = np.float32


def check_int4_weights(w: object) -> NDArray[np.int8]:
    """``w`` as a 2-D int8 [N, K] array of 4-bit values in [-8, 7], or TypeError/ValueError."""
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != 2:
        raise TypeError("w must be a 2-D int8 array [N, K] of signed 4-bit weights (nibble - zero point)")
    if w.size and (int(w.min()) < -8 or int(w.max()) > 7):
        raise ValueError("4-bit weights must lie in [-8, 7] (nibble minus the kernel zero point 8 or 0)")
    return w


def qc4w_acc16(q: NDArray[np.int8], zp: NDArray[Any], w: NDArray[np.int8]) -> NDArray[np.int64]:
    """The kernels' int32 register ``wrap32(-16*sum w * zp + sum q * 16w)`` [M, N] (as int64)."""
    ksum = wrap_i32(-16 * w.astype(np.int64).sum(axis=1)).astype(np.int64)
    zp64 = np.asarray(zp, dtype=np.int64).reshape(-1)
    acc = wrap_i32(ksum[None, :] * zp64[:, None]).astype(np.int64) + wrap_i32(16 * int_dot(q, w))
    return wrap_i32(acc).astype(np.int64)


def qd8_f32_qc4w_gemm(
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
    """``[M, N]`` f32 for qd8 rows ``q`` [M, K] (``a``, ``zp`` per row), 4-bit ``w`` [N, K], ``ws`` [N]."""
    q, a, w, ws, b = qd8_gemm_operands(q, a, w, ws, bias, check_int4_weights)
    acc = qc4w_acc16(q, zp, w)
    # SCVTF with 4 fraction bits: one RNE rounding of acc / 16 (an integer / 16 is never subnormal).
    f = (acc.astype(np.float64) / 16.0).astype(F32)
    t = fmul32(f, a[:, None], fz=fz)
    y = fma32(t, ws[None, :], b[None, :], fz=fz)
    return clamp(y, F32(clamp_min), F32(clamp_max), Clamp.FMAX_FMIN, fz=fz)

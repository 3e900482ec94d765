"""``qai8dx``: KleidiAI's dynamic per-row asymmetric int8 quantization (docs/kernels.md §4).

Mirrors ``kai_run_lhs_quant_pack_qai8dxp_f32`` (kai/ukernels/matmul/pack/), binary32 throughout::

    mx, mn  = max/min of the row       NEON FMAX/FMIN (NaN-propagating) on the first 8*(K//8)
                                       elements, then C fmaxf/fminf (NaN-ignoring) on the rest
    rmin    = fminf(0, mn)             the range always contains 0
    rmax    = fmaxf(0, mx)
    scale0  = 1                        if rmin == rmax, else RN32(255 / RN32(rmax - rmin))
    dq      = RN32(1 / scale0)         the stored dequantization scale (0 if scale0 == 0)
    zpf     = RN32(-128 - RN32(rmin*scale0))  if RN32(RN32(-128 + dmin) + RN32(127 + dmax)) > 0
              RN32( 127 - RN32(rmax*scale0))  otherwise
    zp      = rint(clamp(zpf, -128, 127))      RNE
    q       = clamp(RNA(RN32(x*scale0)) + zp, -128, 127)   ties away from zero (FCVTAS/roundf)

Real value of a code: ``(q - zp) * dq``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fcvtas, fmul32, round_half_even, saturate, wrap_i16, wrap_i32
from ..validate import check_alloc

__all__ = ["dequantize_qai8dx", "qai8dx_params", "quantize_qai8dx"]

F32 = np.float32
_FLT_MAX = np.finfo(np.float32).max


def _check(x: object) -> NDArray[np.float32]:
    if not isinstance(x, np.ndarray) or x.dtype != F32 or x.ndim != 2:
        raise TypeError("qai8dx quantizes a 2-D float32 array [rows, K] (kai_lhs_quant_pack_qai8dxp_f32 reads f32)")
    if x.shape[1] < 1:
        raise ValueError("qai8dx needs K >= 1")
    check_alloc(f"qai8dx quantization of {x.shape}", (x.shape, np.float64), factor=3)
    return x


def _check_kbl(k_block_len: object) -> int:
    """kr / sr of the packing: a positive int (4 and 8 take the NEON paths, others the scalar one)."""
    if isinstance(k_block_len, (bool, np.bool_)) or not isinstance(k_block_len, (int, np.integer)):
        raise TypeError(f"k_block_len must be an int (kr / sr of the packing), got {type(k_block_len).__name__}")
    if int(k_block_len) < 1:
        raise ValueError(f"k_block_len must be >= 1 (kr / sr, KAI_ASSERT((kr % sr) == 0)), got {k_block_len}")
    return int(k_block_len)


def qai8dx_params(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32]]:
    """Per-row ``(scale0, dq, zp)``: quantize multiplier, stored dequant scale, zero point."""
    x = _check(x)
    k = x.shape[1]
    kv = 8 * (k // 8)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mx = np.full(x.shape[0], -_FLT_MAX, dtype=F32)
        mn = np.full(x.shape[0], _FLT_MAX, dtype=F32)
        if kv:  # NEON FMAX/FMIN then FMAXV/FMINV: a NaN anywhere propagates
            mx = np.maximum(mx, x[:, :kv].max(axis=1))
            mn = np.minimum(mn, x[:, :kv].min(axis=1))
        if kv < k:  # C fmaxf/fminf on the tail: a NaN operand is ignored
            mx = np.fmax.reduce(np.concatenate([mx[:, None], x[:, kv:]], axis=1), axis=1)
            mn = np.fmin.reduce(np.concatenate([mn[:, None], x[:, kv:]], axis=1), axis=1)
        rmin = np.fmin(F32(0), mn).astype(F32)
        rmax = np.fmax(F32(0), mx).astype(F32)
        scale0 = np.where(rmin == rmax, F32(1), F32(255) / (rmax - rmin)).astype(F32)
        dq = np.where(scale0 != 0, F32(1) / scale0, F32(0)).astype(F32)
        dmin = rmin * scale0
        dmax = rmax * scale0
        t = (F32(-128) + dmin) + (F32(127) + dmax)
        zpf = np.where(t > 0, F32(-128) - dmin, F32(127) - dmax).astype(F32)
        zpf = clamp(zpf, F32(-128), F32(127), Clamp.FCLAMP)  # fmaxf, fminf: NaN -> -128
        zp = round_half_even(zpf).astype(np.int32)  # lrintf
    return scale0, dq, zp


def quantize_qai8dx(
    x: NDArray[np.float32], *, k_block_len: int = 4
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """``(q, dq, zp)`` with q [rows, K] int8, exactly as the packer computes them.

    ``k_block_len`` (= kr / sr of the packing) selects which elements take the NEON path
    (k_block_len 4 or 8: the first ``K // k_block_len`` blocks; saturating int16 zero-point add)
    and which the scalar ``roundf`` path; the two differ only for non-finite inputs. When every
    input is finite, the element step is evaluated in fewer passes as::

        v = RN32(x * scale0)                    binary32 product, as the packer
        r = trunc(f64(v) + copysign(0.5, v))    RNA_int (FCVTAS / roundf): exact in float64
        q = clamp(r + zp, -128, 127)            |v| <= 255 * (1 + 2**-23): no saturation or wrap

    which equals both paths when every input and every row's scale0 is finite; otherwise they
    are emulated literally.
    """
    k_block_len = _check_kbl(k_block_len)
    scale0, dq, zp = qai8dx_params(x)
    # A row of tiny values overflows 255 / (rmax - rmin) to Inf: x * Inf is then +-Inf or NaN
    # (for x = 0), which FCVTAS saturates or takes to 0: the literal path.
    if not (bool(np.isfinite(x).all()) and bool(np.isfinite(scale0).all())):
        return _literal_codes(x, scale0, zp, k_block_len), dq, zp
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.multiply(x, scale0[:, None], dtype=F32).astype(np.float64)
    v += np.copysign(0.5, v)
    np.trunc(v, out=v)
    v += zp[:, None]
    np.clip(v, -128, 127, out=v)
    return v.astype(np.int8), dq, zp


def _quantize_literal(
    x: NDArray[np.float32], *, k_block_len: int
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """The packer's NEON and scalar element paths emulated step by step (any input)."""
    k_block_len = _check_kbl(k_block_len)
    scale0, dq, zp = qai8dx_params(x)
    return _literal_codes(x, scale0, zp, k_block_len), dq, zp


def _literal_codes(
    x: NDArray[np.float32], scale0: NDArray[np.float32], zp: NDArray[np.int32], k_block_len: int
) -> NDArray[np.int8]:
    """The codes of :func:`_quantize_literal` for the row parameters ``scale0``, ``zp``."""
    k = x.shape[1]
    r = fcvtas(fmul32(x, scale0[:, None]))  # FMUL, FCVTAS (vcvtaq_s32_f32 / lroundf)
    neon_k = (k // k_block_len) * k_block_len if k_block_len in (4, 8) else 0
    zp64 = zp.astype(np.int64)[:, None]
    # NEON: saturate to int16, int16 add of zp (wraps), clamp to int8.
    s16 = wrap_i16(saturate(r[:, :neon_k], np.int16) + zp64).astype(np.int64)
    # Scalar tail: int32 add (wraps), clamp.
    s32 = wrap_i32(r[:, neon_k:] + zp64).astype(np.int64)
    q: NDArray[np.int8] = saturate(np.concatenate([s16, s32], axis=1), np.int8).astype(np.int8)
    return q


def dequantize_qai8dx(q: NDArray[np.int8], dq: NDArray[np.float32], zp: NDArray[np.int32]) -> NDArray[Any]:
    """``(q - zp) * dq`` per row, in float64 (exact: |q - zp| <= 255, dq is binary32)."""
    if q.dtype != np.int8:
        raise TypeError("q must be int8")
    return (q.astype(np.float64) - zp.astype(np.float64)[:, None]) * dq.astype(np.float64)[:, None]

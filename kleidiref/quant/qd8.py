"""``qd8``: XNNPACK's own dynamic asymmetric int8 quantization, with its dequantization.

What XNNPACK runs for a ``qdint8`` value that is *not* packed by KleidiAI (the generic
``qd8_*`` GEMM/IGEMM paths): one parameter set per group (a row of the 2-D
view for FC/BMM; a whole image for ExecuTorch convolutions, ``num_nonbatch_dims = 3``), all in
binary32 (``xnn_qd8_asymmetric_quantization_params``, src/xnnpack/quantization.h; the reduce
``xnn_f32_rminmax_ukernel__neon_u16_acc4``; the convert ``xnn_f32_qs8_vcvt_ukernel__neonv8_u32``)::

    mn, mx = min(x), max(x)                    reduce from (+inf, -inf); FMIN/FMAX
    rmin = min(0, mn);  rmax = max(0, mx)
    s    = 1                                   if rmin == rmax
           RN32(255 / RN32(rmax - rmin))       otherwise (quantization multiplier)
    dmin = RN32(rmin * s);  dmax = RN32(rmax * s)
    zpf  = RN32(-128 - dmin)  if RN32(RN32(-128 + dmin) + RN32(127 + dmax)) > 0
           RN32( 127 - dmax)  otherwise
    zp   = lrintf(clamp(zpf, -128, 127))       ties to even
    q    = sat8(sat16(sat16(FCVTNS(RN32(x * s))) + zp))   NEON: vcvtnq (ties to even, NaN -> 0),
                                                vqmovn, vqadd, vqmovn
    a    = RN32(1 / s)                         the dequantization scale the GEMM epilogue uses

Real value of a code: ``(q - zp) * a``. KleidiAI's ``qai8dx`` (:mod:`kleidiref.quant.qai8dx`) has
the same ``s``, ``zp`` and ``a`` for finite rows but rounds ``x*s`` half *away* from zero.

With ``fz=True`` (FPCR.FZ, set by XNNPACK's threadpool) subnormal inputs read as signed zeros in
the reduce and the convert, and tiny products flush.

# Note: a row with +-Inf gets XNNPACK's own parameters (s = 0, a = +Inf; zero point -128 for
# +Inf, as math_max_f32 ignores the NaN zero point; see qd8_params).
# Note: rows containing NaN are not specified upstream; here the reduce
# propagates NaN (NEON FMIN/FMAX) and the convert maps NaN to 0 (FCVTNS), as the NEON code does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fcvtns, fmul32, ftz32, round_half_even, saturate
from ..validate import check_alloc

__all__ = ["dequantize_qd8", "qd8_params", "quantize_qd8"]

F32 = np.float32


def _check(x: object) -> NDArray[np.float32]:
    if not isinstance(x, np.ndarray) or x.dtype != F32 or x.ndim != 2:
        raise TypeError("qd8 quantizes a 2-D float32 array [groups, elements] (one parameter set per row)")
    if x.shape[1] < 1:
        raise ValueError("qd8 needs at least one element per group")
    check_alloc(f"qd8 quantization of {x.shape}", (x.shape, F32), factor=4)  # products and codes
    return x


def qd8_params(
    x: NDArray[np.float32], *, fz: bool = False
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int32]]:
    """Per-row ``(s, a, zp)``: quantization multiplier, dequantization scale, zero point."""
    x = _check(x)
    if fz:
        x = ftz32(x)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mn = x.min(axis=1)
        mx = x.max(axis=1)
        rmin = np.minimum(F32(0), mn).astype(F32)
        rmax = np.maximum(F32(0), mx).astype(F32)
        s = np.where(rmin == rmax, F32(1), F32(255) / (rmax - rmin)).astype(F32)
        dmin = fmul32(rmin, s, fz=fz)
        dmax = fmul32(rmax, s, fz=fz)
        t = (F32(-128) + dmin) + (F32(127) + dmax)
        zpf = np.where(t > 0, F32(-128) - dmin, F32(127) - dmax).astype(F32)
        # Note: math_max_f32/math_min_f32 (fmaxf/fminf, or `b < a ? a : b`) ignore a NaN zpf, which a
        # row with +-Inf gives (Inf * 0): XNNPACK's zero point is then -128; FCLAMP's NaN -> lo is
        # exactly that (equal to FMAX_FMIN on every non-NaN value).
        zpf = clamp(zpf, F32(-128), F32(127), Clamp.FCLAMP)
        zp = round_half_even(zpf).astype(np.int32)  # lrintf
        a = (F32(1) / s).astype(F32)
    return s.astype(F32), a, zp


def quantize_qd8(
    x: NDArray[np.float32], *, fz: bool = False
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """``(q, a, zp)``: int8 codes [rows, K], dequantization scale and zero point per row."""
    s, a, zp = qd8_params(x, fz=fz)
    p = fmul32(x, s[:, None], fz=fz)
    r = fcvtns(p)  # vcvtnq_s32_f32
    r16 = saturate(saturate(r, np.int16) + zp[:, None], np.int16)  # vqmovn_s32, vqaddq_s16
    q = saturate(r16, np.int8).astype(np.int8)  # vqmovn_s16
    return q, a, zp


def dequantize_qd8(q: NDArray[np.int8], a: NDArray[np.float32], zp: NDArray[np.int32]) -> NDArray[Any]:
    """``(q - zp) * a`` per row, in float64 (exact: |q - zp| <= 255 and ``a`` is binary32)."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8 or q.ndim != 2:
        raise TypeError("q must be a 2-D int8 array")
    for name, v in (("a", a), ("zp", zp)):
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a numpy array of one number per row")
        if v.shape != (q.shape[0],):
            raise ValueError(f"{name} must have shape ({q.shape[0]},) (one per row of q), got {v.shape}")
    check_alloc(f"qd8 dequantization of {q.shape}", (q.shape, np.float64), factor=2)
    return (q.astype(np.float64) - zp.astype(np.float64)[:, None]) * a.astype(np.float64)[:, None]

"""``qd8`` from fp16 activations: XNNPACK's dynamic int8 quantization of an fp16 row (from source).

What ``xnn_pack_lh_f16_qdint8`` (src/pack-lh.cc, ``pack_lh_fx_qd``) runs per row of a
``qdint8`` fully-connected node whose producer converts fp16 (the qd8_f16_* GEMMs): the fp16
reduce ``xnn_f16_rminmax_ukernel`` (NEON FMIN/FMAX .8h), the parameters of
``xnn_f16_qd8_asymmetric_quantization_params`` (src/xnnpack/quantization.h) and the convert
``xnn_f16_qs8_vcvt_ukernel__neonfp16arith_u32`` (src/f16-qs8-vcvt/gen/)::

    mn, mx = min(x), max(x)                    fp16 FMIN/FMAX from (+inf, -inf)
    s, a, zp = qd8 parameters of (float(mn), float(mx))      binary32, as kleidiref.quant.qd8
    s16 = RN16(s)                              xnn_float16_from_float: the multiplier the convert uses
    a   = RN32(1 / s)                          dequantization scale from the *unrounded* s
    q   = sat8(sat16(FCVTNS16(RN16(x * s16))) + zp)   vmulq_f16 (one fp16 rounding), vcvtnq_s16_f16
                                               (ties to even, saturating, NaN -> 0), vqaddq_s16,
                                               vqmovn_s16

Real value of a code: ``(q - zp) * a``. ``fz=True`` is FPCR.FZ16 (XNNPACK's threadpool sets it):
subnormal fp16 inputs read as signed zeros in FMIN/FMAX and FMUL, and an fp16 product below
2**-14 before rounding becomes a signed zero.

# Note: RN16(s) overflows to +inf when the row's range is below about 255 / 65504 (fp16 has
# no larger finite value); the convert then saturates (and 0 * inf = NaN -> 0 + zp), as the
# NEON code does. Rows holding NaN are not specified upstream (as for quant.qd8).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..numerics import fcvtns, fmul16, ftz16, saturate
from .qd8 import qd8_params

__all__ = ["qd8_f16_params", "quantize_qd8_f16"]

F16, F32 = np.float16, np.float32


def _check(x: object) -> NDArray[np.float16]:
    if not isinstance(x, np.ndarray) or x.dtype != F16 or x.ndim != 2:
        raise TypeError("qd8 (fp16) quantizes a 2-D float16 array [rows, elements] (one parameter set per row)")
    if x.shape[1] < 1:
        raise ValueError("qd8 needs at least one element per row")
    return x


def qd8_f16_params(
    x: NDArray[np.float16], *, fz: bool = False
) -> tuple[NDArray[np.float16], NDArray[np.float32], NDArray[np.int32]]:
    """Per-row ``(s16, a, zp)``: fp16 quantization multiplier, f32 dequantization scale, zero point."""
    x = _check(x)
    xs = ftz16(x) if fz else x
    with np.errstate(invalid="ignore"):
        mm = np.stack([xs.min(axis=1), xs.max(axis=1)], axis=1).astype(F32)  # fp16 -> f32 exact
    # The binary32 parameter math only sees min and max (and 0), so the qd8 helper on the pair
    # gives xnn_qd8_asymmetric_quantization_params exactly.
    s, a, zp = qd8_params(mm, fz=False)
    with np.errstate(over="ignore"):
        s16 = s.astype(F16)  # RNE; may overflow to +inf
    return s16, a, zp


def quantize_qd8_f16(
    x: NDArray[np.float16], *, fz: bool = False, x86: bool = False
) -> tuple[NDArray[np.int8], NDArray[np.float32], NDArray[np.int32]]:
    """``(q, a, zp)``: int8 codes [rows, K], f32 dequantization scale and zero point per row.

    ``x86=True``: x86-64 has no fp16 arithmetic; XNNPACK's AVX2 convert widens the fp16 values and the
    fp16 multiplier to binary32 and multiplies there (one binary32 rounding), then ``_mm256_cvtps_epi32``
    (ties to even; NaN and overflow give INT32_MIN, so -128 after the saturating packs); its min/max reduce
    runs on the widened values (no FZ16). The codes run as qdu8 there (code + 128, zero point + 128), which
    leaves every product sum unchanged. Measured: bit-exact with ExecuTorch's x86-64 output of a qd8_f16_qc8w
    convolution, where the fp16 multiply of the ARM64 path is up to thousands of fp16 ULPs away.
    """
    if x86:
        s16, a, zp = qd8_f16_params(x, fz=False)
        with np.errstate(over="ignore", invalid="ignore"):
            p32 = (x.astype(F32) * s16.astype(F32)[:, None]).astype(F32)
            p32 = np.minimum(p32, (F32(127) - zp[:, None]).astype(F32))  # _mm256_min_ps(vx, max - zp)
            r = np.where(np.isfinite(p32), np.rint(np.nan_to_num(p32)), -(2.0**31))
        qx: NDArray[np.int8] = np.clip(r + zp[:, None], -128, 127).astype(np.int8)
        return qx, a, zp
    s16, a, zp = qd8_f16_params(x, fz=fz)
    p = fmul16(x, s16[:, None], fz=fz)  # vmulq_f16: one RNE rounding
    r = fcvtns(p, bits=16)  # vcvtnq_s16_f16: ties to even, saturating, NaN -> 0
    r16 = saturate(r + zp[:, None], np.int16)  # vqaddq_s16
    q: NDArray[np.int8] = saturate(r16, np.int8).astype(np.int8)  # vqmovn_s16
    return q, a, zp

"""``qai8``: static asymmetric int8 activations and outputs, and XNNPACK's fp32 requantization scale.

Used by pqs8_qc8w (``qint8`` tensors: one scale and zero point per tensor). XNNPACK's conversions
(``src/xnnpack/requantization.h``, ``src/xnnpack/reference-utils.h``), binary32 throughout::

    quantize   (xnn_qs8_quantize):  q = (int8) lrintf(fminf(fmaxf(RN32(RN32(x / s) + zp), -128), 127))
                                    lrintf in the default mode = ties to even (round_half_even);
                                    fmaxf/fminf ignore a NaN operand, so NaN -> -128
    dequantize (dequantize<T>):     x = RN32(RN32(q - zp) * s)      (q - zp is exact)

Requantization scale of a qs8 x qc8w fully-connected layer or convolution, per output channel
(``setup_scale_params_qx8_qcyw`` in fully-connected-nc.c, ``init_requantization_scale_qx8_qc8w`` in
convolution-nhwc.c; left to right in float)::

    scale[n] = RN32(RN32(s_in * s_w[n]) / s_out)       must be < 256, else creation fails

Choosing ``(s, zp)`` for a range is the framework's job; :func:`choose_qai8_params` mirrors
PyTorch's per-tensor affine observer (``torch.ao.quantization`` ``_calculate_qparams``, int8,
float32 arithmetic), which ExecuTorch's XNNPACK quantizer uses::

    lo = min(min_val, 0), hi = max(max_val, 0)                     the range always contains 0
    s  = max(RN32(RN32(hi - lo) / 255), FLT_EPSILON)
    zp = clamp(-128 - RNE_int(RN32(lo / s)), -128, 127)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..numerics import Clamp, clamp, round_half_even, saturate
from ..validate import check_alloc, check_scales

__all__ = [
    "choose_qai8_params",
    "dequantize_qai8",
    "quantize_qai8",
    "quantize_qai8_vcvt",
    "requantization_scale",
]

F32 = np.float32
_EPS = F32(np.finfo(np.float32).eps)


def _scalar_f32(name: str, v: object) -> np.float32:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    out: np.float32 = F32(v)
    return out


def _scale(name: str, v: object) -> np.float32:
    """A quantization scale: finite, > 0 and normal (``xnn_define_quantized_tensor_value``)."""
    s = _scalar_f32(name, v)
    check_scales(name, s, source="a qint8 scale")
    return s


def _check_zp(zero_point: object) -> int:
    if isinstance(zero_point, bool) or not isinstance(zero_point, (int, np.integer)):
        raise TypeError("zero_point must be an integer")
    zp = int(zero_point)
    if not -128 <= zp <= 127:
        raise ValueError(f"an int8 zero point must be in [-128, 127], got {zp}")
    return zp


def quantize_qai8(x: ArrayLike, scale: float, zero_point: int) -> NDArray[np.int8]:
    """``xnn_qs8_quantize``: float32 values to int8 codes (see the module docstring)."""
    xa = np.asarray(x)
    if xa.dtype != F32:
        raise TypeError(f"qai8 quantizes float32 values, got {xa.dtype}")
    s = _scale("scale", scale)
    zp = _check_zp(zero_point)
    check_alloc(f"qai8 quantization of {xa.shape}", (xa.shape, F32), factor=3)
    with np.errstate(over="ignore", invalid="ignore"):
        t = ((xa / s).astype(F32) + F32(zp)).astype(F32)
        t = clamp(t, F32(-128), F32(127), Clamp.FCLAMP)  # fmaxf/fminf: a NaN operand is ignored
    return round_half_even(t).astype(np.int8)


def dequantize_qai8(q: NDArray[np.int8], scale: float, zero_point: int) -> NDArray[np.float32]:
    """``(float(q) - zp) * s`` rounded to binary32 (XNNPACK's reference ``dequantize``)."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8:
        raise TypeError("q must be an int8 array")
    s = _scale("scale", scale)
    zp = _check_zp(zero_point)
    check_alloc(f"qai8 dequantization of {q.shape}", (q.shape, np.int32), factor=3)
    diff = (q.astype(np.int32) - zp).astype(F32)  # exact: |q - zp| <= 255
    out: NDArray[np.float32] = (diff * s).astype(F32)
    return out


def requantization_scale(input_scale: float, kernel_scale: ArrayLike, output_scale: float) -> NDArray[np.float32]:
    """``RN32(RN32(s_in * s_w[n]) / s_out)`` per channel; ValueError if any is >= 256.

    XNNPACK refuses to create the operator then (``setup_scale_params_qx8_qcyw`` /
    ``init_requantization_scale_qx8_qc8w``: "requantization scale ... is greater or equal to
    256.0", ``xnn_status_unsupported_parameter``).
    """
    s_in, s_out = _scale("input_scale", input_scale), _scale("output_scale", output_scale)
    sw = np.asarray(kernel_scale)
    if sw.dtype != F32:
        raise TypeError(f"kernel_scale must be float32, got {sw.dtype}")
    check_scales("kernel_scale", sw, source="xnn_define_channelwise_quantized_tensor_value")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s: NDArray[np.float32] = ((s_in * sw).astype(F32) / s_out).astype(F32)
    bad = ~(s < F32(256))
    if np.any(bad):
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"requantization scale {float(s.reshape(-1)[i]):.7g} (channel {i}) is >= 256.0: XNNPACK's "
            "setup_scale_params_qx8_qcyw / init_requantization_scale_qx8_qc8w reject it "
            "(xnn_status_unsupported_parameter)"
        )
    return s


def choose_qai8_params(min_val: float, max_val: float) -> tuple[np.float32, int]:
    """``(scale, zero_point)`` for values in [min_val, max_val] (PyTorch per-tensor affine int8)."""
    mn, mx = _scalar_f32("min_val", min_val), _scalar_f32("max_val", max_val)
    if not (np.isfinite(mn) and np.isfinite(mx)):
        raise ValueError("min_val and max_val must be finite")
    # Compared before widening to 0: after lo <= 0 <= hi the test could never fire.
    if mn > mx:
        raise ValueError(f"min_val {min_val!r} > max_val {max_val!r} (PyTorch's observer asserts min_val <= max_val)")
    lo, hi = min(mn, F32(0)), max(mx, F32(0))
    with np.errstate(over="ignore"):
        s = F32(F32(hi - lo) / F32(255))
    s = max(s, _EPS)
    zp = -128 - int(round_half_even(F32(lo / s)))
    return F32(s), int(saturate(zp, np.int8))


def quantize_qai8_vcvt(x: NDArray[np.float32], scale: float, zero_point: int, x86: bool) -> NDArray[np.int8]:
    """float32 to int8 as XNNPACK's Convert operator does it (``xnn_f32_qs8_vcvt``), unlike
    :func:`quantize_qai8` by the reciprocal of the scale: ``sat8(RNE(RN32(x * RN32(1 / scale))) + zp)``.

    The operator passes the reciprocal of the output scale (``xnn_create_convert_nc_f32_qs8``); the NEON kernels
    (``f32-qs8-vcvt-neonv8``) convert with ``vcvtnq_s32_f32`` (ties to even, saturating, NaN -> 0) and add the
    zero point with saturation. Note: on x86 (``f32-qs8-vcvt-avx2``) ``_mm256_cvtps_epi32`` gives INT32_MIN
    for NaN, so NaN becomes -128 there.
    """
    inv = np.float32(1.0) / np.float32(scale)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (np.asarray(x, np.float32) * inv).astype(np.float32)
        r = np.rint(np.clip(t, -(2.0**31), 2.0**31 - 128)).astype(np.float64)
    r = np.where(np.isnan(t), -(2.0**31) if x86 else 0.0, r)
    out: NDArray[np.int8] = np.clip(r + zero_point, -128, 127).astype(np.int8)
    return out

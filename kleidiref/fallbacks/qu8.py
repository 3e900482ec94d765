"""Generic XNNPACK ``qu8`` GEMM / IGEMM / DWConv: static uint8 asymmetric, rndnu requantization (from source).

ARM64 ``init_qu8_gemm_config`` (src/configs/gemm-config.c, default uarch):
``xnn_qu8_{gemm,igemm}_minmax_rndnu_ukernel_1x16__neon_mlal_lane`` and
``…_4x16__asm_aarch64_neon_mlal_lane_cortex_a75``; depthwise shapes
``xnn_qu8_dwconv_minmax_rndnu_ukernel_{9p16c,25p8c}__neon_mul8``. All use
``xnn_init_qu8_conv_minmax_rndnu_neon_params`` (src/microparams-init.c)::

    s      = RN32(RN32(sx * sw) / sy)                 at creation (rejected if >= 256)
    acc    = b[n] + sum_k (x[m,k] - zx) * (w[n,k] - zw)   int32, wraps (packed bias holds
                                                     b + K*zx*zw - zx*sum w; VSUBL subtracts zw)
    mult   = ((bits(s) & 0x7FFFFF) | 0x800000) << 7  Q31 mantissa in [2**30, 2**31)
    shift  = 126 - (bits(s) >> 23);  post = max(shift, 1);  pre = post - shift (a left shift)
    a = SQSHL(acc, pre)                               vqshlq_s32: saturating left shift
    a = SQDMULH(a, mult)                              vqdmulhq_s32: floor(2*a*mult / 2**32)
    a = SRSHL(a, -post)                               vrshlq_s32: (a + 2**(post-1)) >> post
    y = sat_u8(sat16(sat16(a) + zy))                  vqmovn_s32, vqaddq_s16, vqmovun_s16
    y = min(max(y, ymin), ymax)                       vmaxq_u8, vminq_u8

``requant='fp32'`` is the x86-64 scheme instead (``xnn_qu8_{gemm,igemm}_minmax_fp32_ukernel_*`` with
``xnn_init_qu8_conv_minmax_fp32_scalar_params``): ``y = sat_u8(RNE(RN32(float(acc) * s)) + zy)``
then the bounds, ties to even where rndnu rounds half up.

Without pre-shift saturation rndnu is ``floor(acc * s + 1/2)`` exactly (round half up), i.e.
``xnn_qu8_requantize_rndnu`` (src/xnnpack/requantization.h). Every step is integer: the
micro-kernel type (GEMM, IGEMM, DWConv) does not change the bits, since the int32 sum wraps
modulo 2**32 whatever the order. Padding taps read the input zero point (contribute 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..numerics import clamp_int, fmul32, round_half_even, saturate, sqdmulh, srshr, wrap_i32
from ._conv import grouped_conv, grouped_geometry
from .qd8_f32_qc8w import int_dot

__all__ = [
    "qu8_gemm",
    "qu8_igemm",
    "qu8_requantization_scale",
    "qu8_requantize_fp32",
    "qu8_requantize_rndnu",
    "rndnu_params",
]

F32 = np.float32


def qu8_requantization_scale(sx: float, sw: float, sy: float) -> float:
    """``RN32(RN32(sx * sw) / sy)`` (``setup_params_qu8``, fully-connected-nc.c); ValueError if >= 256."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = F32(F32(F32(sx) * F32(sw)) / F32(sy))
    if not s < F32(256.0):
        raise ValueError(
            f"requantization scale input_scale * filter_scale / output_scale = {float(s)!r} is >= 256: "
            "XNNPACK rejects the qu8 operator (setup_params_qu8)"
        )
    return float(s)


def rndnu_params(scale: float) -> tuple[int, int, int]:
    """``(left pre-shift, multiplier, post-shift)`` of ``xnn_init_qu8_conv_minmax_rndnu_neon_params``."""
    s = F32(scale)
    if not (F32(2.0**-32) <= s < F32(256.0)):
        raise ValueError(f"rndnu requantization needs 2**-32 <= scale < 256 (asserted upstream), got {float(s)!r}")
    bits = int(np.asarray(s).view(np.uint32))
    mult = ((bits & 0x007FFFFF) | 0x00800000) << 7
    shift = 127 + 31 - 32 - (bits >> 23)
    post = max(shift, 1)
    return post - shift, mult, post


def qu8_requantize_rndnu(
    acc: NDArray[np.int64], scale: float, zy: int, ymin: int = 0, ymax: int = 255
) -> NDArray[np.uint8]:
    """The NEON rndnu sequence on int32 ``acc`` (any shape), to uint8."""
    pre, mult, post = rndnu_params(scale)
    a = wrap_i32(acc).astype(np.int64)
    a = saturate(a * (1 << pre), np.int32)  # SQSHL (|a| << pre < 2**63: pre <= 9)
    a = sqdmulh(a, mult)  # vqdmulhq_s32
    a = srshr(a, post)  # vrshlq_s32 by -post: round half up
    y16 = saturate(saturate(a, np.int16) + zy, np.int16)  # VQMOVN, VQADD
    y = saturate(y16, np.uint8)  # VQMOVUN
    out: NDArray[np.uint8] = clamp_int(y, ymin, ymax).astype(np.uint8)  # vmaxq_u8, vminq_u8
    return out


def qu8_requantize_fp32(
    acc: NDArray[np.int64], scale: float, zy: int, ymin: int = 0, ymax: int = 255
) -> NDArray[np.uint8]:
    """x86 fp32 scheme: ``RN32(float(acc) * s)``, RNE to int (CVTPS2DQ), saturating adds and packs."""
    f = fmul32(wrap_i32(acc).astype(F32), F32(scale))  # CVTDQ2PS, MULPS
    r = saturate(round_half_even(f.astype(np.float64)), np.int32)  # CVTPS2DQ: ties to even
    y = saturate(saturate(saturate(r, np.int16) + zy, np.int16), np.uint8)  # PACKSSDW, PADDSW, PACKUSWB
    out: NDArray[np.uint8] = clamp_int(y, ymin, ymax).astype(np.uint8)
    return out


def _requant(kind: str) -> Callable[[NDArray[np.int64], float, int, int, int], NDArray[np.uint8]]:
    if kind not in ("rndnu", "fp32"):
        raise ValueError(f"requant must be 'rndnu' (ARM64) or 'fp32' (x86-64), got {kind!r}")
    return qu8_requantize_rndnu if kind == "rndnu" else qu8_requantize_fp32


def _check_u8(name: str, x: object, ndim: int) -> NDArray[np.uint8]:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != ndim:
        raise TypeError(f"{name} must be a {ndim}-D uint8 array (quint8)")
    return x


def _check_params(zx: int, zw: int, zy: int, ymin: int, ymax: int) -> None:
    for name, v in (("input zero point", zx), ("filter zero point", zw), ("output zero point", zy)):
        if not 0 <= v <= 255:
            raise ValueError(f"{name} must be in [0, 255] (uint8_t in xnn_create_*_qu8), got {v}")
    if not 0 <= ymin <= ymax <= 255:
        raise ValueError(f"output bounds must satisfy 0 <= ymin <= ymax <= 255, got {ymin}, {ymax}")


def _bias(bias: NDArray[Any] | None, n: int) -> NDArray[np.int64]:
    if bias is None:
        return np.zeros(n, np.int64)
    b = np.asarray(bias)
    if b.dtype != np.int32 or b.shape != (n,):
        raise TypeError(f"bias must be int32 (qint32) of shape ({n},), got {b.dtype} {b.shape}")
    return b.astype(np.int64)


def _acc(x: NDArray[Any], w: NDArray[Any], zx: int, zw: int, b: NDArray[np.int64]) -> NDArray[np.int64]:
    """``b + sum (x - zx)(w - zw)`` exactly (float64 BLAS on the centred int16-range values)."""
    xc = x.astype(np.int16) - np.int16(zx)
    wc = w.astype(np.int16) - np.int16(zw)
    return b[None, :] + int_dot(xc, wc)


def qu8_gemm(
    x: NDArray[np.uint8],
    w: NDArray[np.uint8],
    bias: NDArray[np.int32] | None,
    *,
    zx: int,
    zw: int,
    scale: float,
    zy: int,
    ymin: int = 0,
    ymax: int = 255,
    requant: str = "rndnu",
) -> NDArray[np.uint8]:
    """``[M, N]`` uint8: ``x`` [M, K], ``w`` [N, K] (per-tensor zero points), requantization ``scale``."""
    x = _check_u8("x", x, 2)
    w = _check_u8("w", w, 2)
    _check_params(zx, zw, zy, ymin, ymax)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"K mismatch: x is {x.shape}, w is {w.shape} ([N, K])")
    rq = _requant(requant)
    return rq(_acc(x, w, zx, zw, _bias(bias, w.shape[0])), scale, zy, ymin, ymax)


def qu8_igemm(
    x: NDArray[np.uint8],
    w: NDArray[np.uint8],
    bias: NDArray[np.int32] | None,
    *,
    zx: int,
    zw: int,
    scale: float,
    zy: int,
    ymin: int = 0,
    ymax: int = 255,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    requant: str = "rndnu",
) -> NDArray[np.uint8]:
    """NHWC uint8 convolution (IGEMM or DWConv: same bits); padding taps read ``zx``."""
    x = _check_u8("x", x, 4)
    w = _check_u8("w", w, 4)
    _check_params(zx, zw, zy, ymin, ymax)
    rq = _requant(requant)
    geo = grouped_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    cout = w.shape[0]
    b = _bias(bias, cout)

    def gemm(rows: NDArray[np.uint8], wg: NDArray[np.uint8], cols: slice) -> NDArray[np.uint8]:
        return rq(_acc(rows, wg, zx, zw, b[cols]), scale, zy, ymin, ymax)

    return grouped_conv(x, w, geo, np.uint8(zx), np.uint8, gemm)

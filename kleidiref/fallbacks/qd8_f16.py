"""Generic XNNPACK ``qd8_f16_{qc8w,qc4w,qb4w}`` GEMMs: qd8 rows (from fp16) x int8/int4 weights -> fp16.

The LHS codes come from :func:`kleidiref.quant.qd8_f16.quantize_qd8_f16`. The ARM64 kernels
(``init_qd8_f16_*_gemm_config``, src/configs/gemm-config.c) compute in **binary32** exactly as
their ``qd8_f32_*`` siblings, then convert once to fp16 and clamp in fp16; no fp16 arithmetic::

    y32 = the qd8_f32_qc8w / qc4w / qb4w epilogue without its clamp (bias f32)
    y16 = FCVTN(y32)                       vcvt_f16_f32: RNE; conversions ignore FZ16
    y16 = FMIN(FMAX(y16, min16), max16)    vmaxq_f16 / vminq_f16; FZ16 flushes subnormal operands

(e.g. src/qd8-f16-qc8w-gemm/gen/qd8-f16-qc8w-gemm-1x16c8-minmax-neoni8mm.c; qc4w: SCVTF #4 as in
:mod:`.qd8_f32_qc4w`; qb4w: per-block FMA as in :mod:`.qd8_f32_qb4w`). ``min16`` / ``max16``
are the output bounds rounded to fp16 (``xnn_init_f16_minmax_scalar_params``).

One exception, ``kernel='asm_ld128'`` for qc8w: the dotprod M > 1 kernel
``xnn_qd8_f16_qc8w_gemm_minmax_ukernel_4x16c4__asm_aarch64_neondotfp16arith_ld128``
(src/qd8-f16-qc8w-gemm/gen/qd8-f16-qc8w-gemm-4x16c4-minmax-asm-aarch64-neondot-ld128.S) folds the
scales first and never fuses::

    sc = RN32(ws[n] * a[m]);  y32 = RN32(RN32(float(acc) * sc) + b[n])      FMUL, FMUL, FADD

instead of the C kernels' ``fma32(RN32(float(acc) * a[m]), ws[n], b[n])`` (``kernel='c'``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fadd32, fmul32, ftz16, wrap_i32
from ._common import as_f32, qd8_codes
from ._conv import grouped_conv, grouped_geometry
from .qd8_f32_qb4w import qd8_f32_qb4w_gemm
from .qd8_f32_qc4w import qd8_f32_qc4w_gemm
from .qd8_f32_qc8w import check_qc8w_weights, qc8w_acc, qd8_f32_qc8w_epilogue, qd8_gemm_operands

__all__ = ["f16_output", "qd8_f16_qb4w_gemm", "qd8_f16_qc4w_gemm", "qd8_f16_qc8w_gemm", "qd8_f16_qc8w_igemm"]

F32, F16 = np.float32, np.float16
INF = float("inf")


def f16_output(y32: NDArray[np.float32], clamp_min: float, clamp_max: float, *, fz: bool) -> NDArray[np.float16]:
    """FCVTN to fp16 (RNE, no flush), then fp16 ``FMIN(FMAX(y, min16), max16)`` (FZ16 flushes operands)."""
    with np.errstate(over="ignore"):
        y16 = np.asarray(y32, dtype=F32).astype(F16)
        lo16, hi16 = F16(clamp_min), F16(clamp_max)  # bounds rounded to fp16 (RNE)
    if fz:
        y16 = ftz16(y16)
    out: NDArray[np.float16] = clamp(y16, lo16, hi16, Clamp.FMAX_FMIN, fz=fz)
    return out


def qd8_f16_qc8w_gemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    ws: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    kernel: Literal["c", "asm_ld128"] = "c",
    clamp_min: float = -INF,
    clamp_max: float = INF,
    fz: bool = True,
) -> NDArray[np.float16]:
    """``[M, N]`` fp16 for qd8 rows ``q`` [M, K] and int8 ``w`` [N, K] (per-channel ``ws``, f32 ``bias``)."""
    _check_kernel(kernel)
    q, a, w, ws, b = qd8_gemm_operands(q, a, w, ws, bias, check_qc8w_weights)
    acc = qc8w_acc(q, zp, w)
    return f16_output(_qc8w_f32(acc, a, ws, b, kernel, fz), clamp_min, clamp_max, fz=fz)


def _check_kernel(kernel: str) -> None:
    if kernel not in ("c", "asm_ld128"):
        raise ValueError(f"kernel must be 'c' or 'asm_ld128', got {kernel!r}")


def _qc8w_f32(
    acc: NDArray[np.int64],
    a: NDArray[np.float32],
    ws: NDArray[np.float32],
    b: NDArray[np.float32],
    kernel: str,
    fz: bool,
) -> NDArray[np.float32]:
    """The binary32 epilogue before the fp16 conversion: the C kernels', or the ld128 assembly's."""
    if kernel == "c":
        return qd8_f32_qc8w_epilogue(acc, a, ws, b, clamp_min=-INF, clamp_max=INF, fz=fz)
    accf = wrap_i32(acc).astype(F32)  # SCVTF (RNE) of the int32 register
    sc = fmul32(ws[None, :], a[:, None], fz=fz)  # FMUL kernel_scale * scale
    out: NDArray[np.float32] = fadd32(fmul32(accf, sc, fz=fz), b[None, :], fz=fz)
    return out


def qd8_f16_qc8w_igemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    ws: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    kernel: Literal["c", "asm_ld128"] = "c",
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    clamp_min: float = -INF,
    clamp_max: float = INF,
    fz: bool = True,
) -> NDArray[np.float16]:
    """fp16 convolution of qd8 images ``q`` [N,H,W,C] (``a``, ``zp`` per image, quantized from fp16) by int8
    ``w`` [O,kh,kw,C/g]: XNNPACK's qd8_f16_qc8w IGEMM (``xnn_qd8_f16_qc8w_igemm_minmax_ukernel_*``).

    The same integer accumulation and epilogue as :func:`qd8_f16_qc8w_gemm` over the indirection rows (padding
    reads the image's zero point); ``asm_ld128`` is the AArch64 ``4x16c4__asm_aarch64_neondotfp16arith_ld128``
    kernel (SCVTF, FMUL by kernel_scale x scale, FADD bias, FCVTN), ``c`` the C kernels.
    """
    _check_kernel(kernel)
    q = qd8_codes(q, 4)
    if not isinstance(w, np.ndarray) or w.dtype != np.int8 or w.ndim != 4:
        raise TypeError("weights must be a 4-D int8 array [O, kh, kw, C/g] (qcint8, symmetric per output channel)")
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
        return _qc8w_f32(qc8w_acc(rows, zp_rows, wg), a_rows, ws[cols], b[cols], kernel, fz)

    y = grouped_conv(q, w, geo, zp8.astype(np.int8), F32, gemm)
    return f16_output(y, clamp_min, clamp_max, fz=fz)


def qd8_f16_qc4w_gemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    ws: NDArray[np.float32],
    bias: NDArray[np.float32] | None = None,
    *,
    clamp_min: float = -INF,
    clamp_max: float = INF,
    fz: bool = True,
) -> NDArray[np.float16]:
    """``[M, N]`` fp16 for qd8 rows and 4-bit per-channel ``w`` [N, K] in [-8, 7] (SCVTF #4 epilogue)."""
    y = qd8_f32_qc4w_gemm(q, a, zp, w, ws, bias, clamp_min=-INF, clamp_max=INF, fz=fz)
    return f16_output(y, clamp_min, clamp_max, fz=fz)


def qd8_f16_qb4w_gemm(
    q: NDArray[np.int8],
    a: NDArray[np.float32],
    zp: NDArray[np.int32],
    w: NDArray[np.int8],
    scales: NDArray[np.uint16],
    block_size: int,
    bias: NDArray[np.float32] | None = None,
    *,
    kr: int = 8,
    clamp_min: float = -INF,
    clamp_max: float = INF,
    fz: bool = True,
) -> NDArray[np.float16]:
    """``[M, N]`` fp16 for qd8 rows and 4-bit block-wise ``w`` with bf16 ``scales`` (kr as the config)."""
    y = qd8_f32_qb4w_gemm(q, a, zp, w, scales, block_size, bias, kr=kr, clamp_min=-INF, clamp_max=INF, fz=fz)
    return f16_output(y, clamp_min, clamp_max, fz=fz)

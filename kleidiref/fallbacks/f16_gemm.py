"""Generic XNNPACK f16 GEMM / IGEMM (``f16_gemm`` config, ``neon_fp16_arith``): fp16 accumulation.

Every step is an FP16 FMLA (``RN16(a*b + acc)``, fused) or FADD; the bias is fp16 (an fp32
static bias is converted with RNE at creation, :func:`kleidiref.numerics.rn16`); the clamp is
in fp16 (bounds converted with RNE).

``6x16`` - ``xnn_f16_gemm_minmax_ukernel_6x16__asm_aarch64_neonfp16arith_cortex_a75`` (M > 1) and
the 6x16 IGEMM: one accumulator per output::

    acc = bias[n];  acc = fma16(a[m,k], w[n,k], acc)  for k = 0 .. K-1
    y = FMIN(FMAX(acc, min), max)

``1x16`` - ``xnn_f16_gemm_minmax_ukernel_1x16__asm_aarch64_neonfp16arith_ld64`` (M == 1) and the
1x16 IGEMM (the same per tap, the position p counted inside each tap), four accumulators
(src/f16-gemm/gen/f16-gemm-1x16-minmax-asm-aarch64-neonfp16arith-ld64.S)::

    A = bias[n]; B = C = D = +0;  G = K // 4
    for i < G:  A,B,C,D = fma16(a[4i+0..3], w, A,B,C,D)
    if K % 4 >= 2: A = fma16(a[4G], w, A); B = fma16(a[4G+1], w, B)
    if K % 2 == 1: A = fma16(a[K-1], w, A)
    y = FMIN(FMAX((A + B) + (C + D), min), max)

FPCR.FZ16 (``fz``) flushes fp16 subnormal operands and tiny results (XNNPACK's threadpool sets it).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..numerics import Clamp, clamp, fadd16
from ._common import as_f16, fma16_chain
from ._conv import grouped_conv, grouped_geometry

__all__ = ["F16_GEMM_KERNELS", "f16_gemm", "f16_igemm"]

F16, F32 = np.float16, np.float32
F16_GEMM_KERNELS: dict[str, str] = {
    "1x16": "xnn_f16_{gemm,igemm}_minmax_ukernel_1x16__asm_aarch64_neonfp16arith_ld64",
    "6x16": "xnn_f16_{gemm,igemm}_minmax_ukernel_6x16__asm_aarch64_neonfp16arith_cortex_a75",
}


def _acc_slot(pos: NDArray[np.int64], length: int) -> NDArray[np.int64]:
    """Accumulator (0=A .. 3=D) of each position of a run of ``length`` k values (1x16 kernel)."""
    g = length // 4
    slot = pos % 4
    rem = pos >= 4 * g
    # remainder: a pair goes to A, B; a single to A
    r = length - 4 * g
    tail = pos - 4 * g
    slot = np.where(rem, np.where((r >= 2) & (tail < 2), tail, 0), slot)
    return slot


def _accumulate(
    rows: NDArray[np.float16],
    wt: NDArray[np.float16],
    acc0: NDArray[np.float16],
    slots: NDArray[np.int64] | None,
    fz: bool,
) -> NDArray[np.float16]:
    if slots is None:
        return fma16_chain(acc0, rows, wt, fz=fz)
    zero = np.zeros((rows.shape[0], wt.shape[1]), F16)
    acc = [fma16_chain(acc0 if j == 0 else zero, rows[:, slots == j], wt[slots == j], fz=fz) for j in range(4)]
    return fadd16(fadd16(acc[0], acc[1], fz=fz), fadd16(acc[2], acc[3], fz=fz), fz=fz)


def _bias(bias: NDArray[np.float16] | None, n: int) -> NDArray[np.float16]:
    b = np.zeros(n, F16) if bias is None else as_f16("bias", bias, ndim=1)
    if b.shape != (n,):
        raise ValueError(f"bias must have shape ({n},), got {b.shape}")
    return b


def _check_kernel(kernel: str) -> None:
    if kernel not in F16_GEMM_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(F16_GEMM_KERNELS)}, got {kernel!r}")


def f16_gemm(
    a: NDArray[np.float16],
    w: NDArray[np.float16],
    bias: NDArray[np.float16] | None = None,
    *,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["1x16", "6x16"] = "6x16",
) -> NDArray[np.float16]:
    """``[M, N]`` float16 output for ``a`` [M, K], ``w`` [N, K] float16, ``bias`` [N] float16 or None."""
    a = as_f16("a", a, ndim=2)
    w = as_f16("w", w, ndim=2)
    _check_kernel(kernel)
    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k:
        raise ValueError(f"K mismatch: a is {a.shape}, w is {w.shape} ([N, K])")
    if k < 1:
        raise ValueError("K must be >= 1")
    if kernel == "1x16" and m != 1:
        raise ValueError(f"the 1x16 kernel computes one row; M = {m}")
    b = _bias(bias, n)
    slots = _acc_slot(np.arange(k), k) if kernel == "1x16" else None
    acc = _accumulate(a, np.ascontiguousarray(w.T), np.broadcast_to(b, (m, n)), slots, fz)
    return clamp(acc, F16(F32(clamp_min)), F16(F32(clamp_max)), Clamp.FMAX_FMIN, fz=fz)


def f16_igemm(
    x: NDArray[np.float16],
    w: NDArray[np.float16],
    bias: NDArray[np.float16] | None = None,
    *,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    groups: int = 1,
    clamp_min: float = -np.inf,
    clamp_max: float = np.inf,
    fz: bool = True,
    kernel: Literal["1x16", "6x16"] = "6x16",
) -> NDArray[np.float16]:
    """NHWC f16 convolution ``x`` [N,H,W,C] * ``w`` [O,kh,kw,C/groups] -> [N,Ho,Wo,O]; padding reads +0."""
    x = as_f16("x", x, ndim=4)
    w = as_f16("w", w, ndim=4)
    _check_kernel(kernel)
    geo = grouped_geometry(x.shape, w.shape, stride=stride, dilation=dilation, padding=padding, groups=groups)
    cout = w.shape[0]
    b = _bias(bias, cout)
    slots = None
    if kernel == "1x16":
        slots = np.tile(_acc_slot(np.arange(geo.gic), geo.gic), geo.kh * geo.kw)

    def gemm(rows: NDArray[np.float16], wg: NDArray[np.float16], cols: slice) -> NDArray[np.float16]:
        acc0 = np.broadcast_to(b[cols], (rows.shape[0], geo.goc))
        acc = _accumulate(np.ascontiguousarray(rows), np.ascontiguousarray(wg.T), acc0, slots, fz)
        return clamp(acc, F16(F32(clamp_min)), F16(F32(clamp_max)), Clamp.FMAX_FMIN, fz=fz)

    return grouped_conv(x, w, geo, F16(0.0), F16, gemm)
